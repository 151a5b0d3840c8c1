-- The C http object's safety beyond one plain call: an object inherited
-- through fork() never touches its parent's connection; an object in use
-- refuses to be used again by a finalizer or a metamethod that runs inside
-- its call, and a close() meanwhile waits for the call's end; core._random
-- gives every process, and every forked child, its own sequence.
--
-- Forking needs fork_helper (spec/fork_helper.c, built by `make test`).
-- Children write what they saw into a file and leave with _exit, so a child
-- never goes on running busted.
local helpers = require "spec.helpers"
local core = require "ecs_metadata.core"
local fork = require "fork_helper"

local E = helpers.endpoint()

-- Runs fn() in a child; answers a handle for finish().
local function spawn(fn)
  local out = os.tmpname()
  local pid = assert(fork.fork())
  if pid == 0 then
    local ok, text = pcall(fn)
    local f = io.open(out, "wb")
    if f then
      f:write(ok and tostring(text) or ("error: " .. tostring(text)))
      f:close()
    end
    fork.exit(ok and 0 or 1)
  end
  return { pid = pid, out = out }
end

-- Waits for a child; answers what it wrote, and fails if it did not end well.
local function finish(child)
  local status, why = fork.wait(child.pid)
  local text = helpers.read(child.out)
  os.remove(child.out)
  assert(status == 0, ("child %d: %s %s"):format(child.pid, tostring(why or status), text))
  return text
end

-- Deep equality of decoded documents (core.null compares by identity).
local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    return a == b
  end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local DOCS = {
  "v4-task/docs-ec2-awsvpc-curltest.json",
  "v4-container/docs-ec2-awsvpc-curl.json",
  "v4-stats/docs-ec2-awsvpc-curl.json",
  "v4-task-stats/docs-ec2-awsvpc-curltest.json",
  "v3-task/docs-2018-ec2-awsvpc-nginx-no-az.json",
  "v2-metadata/docs-task-ec2-awsvpc-nginx.json",
  "v4-task/ecs-exporter-fargate.json",
  "metadata-file/docs-ready-bridge.json",
}

-- The work of one child: fetch documents (get and get_json alternately),
-- one line per request: "ok <connection> <seconds>" or "bad ...".
local function fetch_all(c, first, n)
  local lines = {}
  for j = 1, n do
    local rel = DOCS[(first + j) % #DOCS + 1]
    local expected = helpers.read(rel)
    local t0 = core.now()
    local got, status, headers
    if j % 2 == 0 then
      got, status, headers = c:get(E .. "/fixtures/" .. rel, { timeout = 3 })
      got = got == expected
    else
      got, status, headers = c:get_json(E .. "/fixtures/" .. rel, { timeout = 3 })
      got = got ~= nil and same(got, core.decode(expected))
    end
    local dt = core.now() - t0
    if got and status == 200 then
      lines[#lines + 1] = ("ok %s %.3f"):format(headers["x-connection"], dt)
    else
      lines[#lines + 1] = ("bad %s %s %s"):format(rel, tostring(status), tostring(headers))
    end
  end
  return table.concat(lines, "\n")
end

describe("an http object inherited through fork()", function()
  local doc = "v4-task/docs-ec2-awsvpc-curltest.json"

  it("answers every child on a connection of its own, never the parent's", function()
    helpers.reset()
    local c = assert(core.http())
    local _, status, headers = c:get(E .. "/fixtures/" .. doc)
    assert.are.equal(200, status)
    local parent_conn = headers["x-connection"]

    local children, per_child = {}, 40
    for i = 1, 12 do
      children[i] = spawn(function() return fetch_all(c, i, per_child) end)
    end
    local answered, conns, slowest = 0, {}, 0
    for _, child in ipairs(children) do
      for line in finish(child):gmatch("[^\n]+") do
        local conn, dt = line:match("^ok (%S+) (%S+)$")
        assert(conn, line)         -- a crossed, failed or stalled answer
        assert.are_not.equal(parent_conn, conn)
        conns[conn] = true
        slowest = math.max(slowest, tonumber(dt))
        answered = answered + 1
      end
    end
    assert.are.equal(12 * per_child, answered)
    -- One keep-alive connection per child.
    local distinct = 0
    for _ in pairs(conns) do distinct = distinct + 1 end
    assert.are.equal(12, distinct)
    -- No 3 s stall (a child waiting for an answer another one read).
    assert.is_true(slowest < 1 + 2 * helpers.SLACK, ("slowest %.3f s"):format(slowest))

    -- The parent's connection is intact and only the parent used it.
    local body, status2, headers2 = c:get(E .. "/fixtures/" .. doc)
    assert.are.equal(200, status2)
    assert.are.equal(helpers.read(doc), body)
    assert.are.equal(parent_conn, headers2["x-connection"])
    assert.are.equal(2, helpers.stats().connections[parent_conn])
    c:close()
  end)

  it("can be closed or collected in a child, and the parent's connection still works", function()
    helpers.reset()
    local c = assert(core.http())
    local _, _, headers = assert(c:get(E .. "/fixtures/" .. doc))
    local parent_conn = headers["x-connection"]
    finish(spawn(function() c:close() return "closed" end))
    finish(spawn(function() getmetatable(c).__gc(c) return "collected" end))
    -- A child that used it first, then closed it.
    finish(spawn(function()
      assert(c:get(E .. "/fixtures/" .. doc))
      c:close()
      return "used and closed"
    end))
    local body, status, headers2 = c:get(E .. "/fixtures/" .. doc)
    assert.are.equal(200, status)
    assert.are.equal(helpers.read(doc), body)
    assert.are.equal(parent_conn, headers2["x-connection"])
    assert.are.equal(2, helpers.stats().connections[parent_conn])
    c:close()
  end)

  it("works in a child and a grandchild, made and used or not in the parent", function()
    local used = assert(core.http())
    assert(used:get(E .. "/fixtures/" .. doc))
    local unused = assert(core.http())
    local text = finish(spawn(function()
      local mine = fetch_all(used, 1, 4) .. "\n" .. fetch_all(unused, 2, 4)
      local grandchild = spawn(function()
        return fetch_all(used, 3, 4) .. "\n" .. fetch_all(unused, 4, 4)
      end)
      return mine .. "\n" .. finish(grandchild)
    end))
    local n = 0
    for line in text:gmatch("[^\n]+") do
      assert.matches("^ok ", line)
      n = n + 1
    end
    assert.are.equal(16, n)
    used:close()
    unused:close()
  end)
end)

describe("core._pid and core._random", function()
  it("_pid tells a child from its parent", function()
    local parent = core._pid()
    assert.is_true(math.type == nil or math.type(parent) == "integer")
    local child = tonumber(finish(spawn(function() return core._pid() end)))
    assert.is_number(child)
    assert.are_not.equal(parent, child)
    assert.are.equal(parent, core._pid())
  end)

  it("_random answers floats in [0, 1), spread evenly", function()
    local n, sum, low, high = 20000, 0, 0, 0
    for _ = 1, n do
      local x = core._random()
      assert(type(x) == "number" and x >= 0 and x < 1, x)
      sum = sum + x
      if x < 0.1 then low = low + 1 elseif x >= 0.9 then high = high + 1 end
    end
    assert.is_true(math.abs(sum / n - 0.5) < 0.02)
    assert.is_true(math.abs(low / n - 0.1) < 0.02 and math.abs(high / n - 0.1) < 0.02)
  end)

  local function sequence()
    local t = {}
    for i = 1, 8 do t[i] = ("%.17g"):format(core._random()) end
    return table.concat(t, " ")
  end

  it("gives a forked child and its parent different sequences", function()
    core._random()                       -- the parent's generator is under way
    local a = spawn(sequence)
    local b = spawn(sequence)
    local mine = sequence()
    local in_a, in_b = finish(a), finish(b)
    assert.are_not.equal(mine, in_a)
    assert.are_not.equal(mine, in_b)
    assert.are_not.equal(in_a, in_b)
  end)

  it("gives two processes different sequences", function()
    local script = [[
      local core = require "ecs_metadata.core"
      local t = {}
      for i = 1, 8 do t[i] = ("%.17g"):format(core._random()) end
      io.write(table.concat(t, " "))
    ]]
    local one, s1 = helpers.run_lua(script)
    local two, s2 = helpers.run_lua(script)
    assert.are.equal(0, s1)
    assert.are.equal(0, s2)
    assert.are.equal(8, select(2, one:gsub("%S+", "")))
    assert.are_not.equal(one, two)
  end)
end)

-- Finalizers that run inside a C call depend on where the collector is when
-- the call starts, and in busted's big heap a cycle spans many calls. So the
-- finalizer tests run in a fresh interpreter (under valgrind when the specs
-- are), whose small heap and eager collector run finalizers inside nearly
-- every call. The script ends in lines "name value", parsed into a table.
local PRELUDE = [==[
local core = require "ecs_metadata.core"
local E = os.getenv("ECSM_ENDPOINT")
local function read(rel)
  local f = assert(io.open("spec/fixtures/" .. rel, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end
local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
-- Finalizers: tables with __gc on 5.2+, newproxy userdata on 5.1 and LuaJIT.
local newproxy = rawget(_G, "newproxy")
local function finalizable(fn)
  if newproxy then
    local u = newproxy(true)
    getmetatable(u).__gc = fn
    return u
  end
  return setmetatable({}, { __gc = fn })
end
if _VERSION == "Lua 5.4" then
  collectgarbage("generational", 1, 100)
else
  collectgarbage("setpause", 0)
  collectgarbage("setstepmul", 1000)
end
-- Runs call(during) up to `tries` times, with garbage always waiting to be
-- finalized, until `enough` finalizers ran inside a call. call sets
-- during.on around the call under test, where nothing else allocates; each
-- finalizer that runs meanwhile runs inside(). Answers the results of
-- every call and how many finalizers ran inside one.
local function finalizers_during(call, inside, tries, enough)
  local during, ran, results = { on = false }, 0, {}
  local armed = true
  local function arm()
    finalizable(function()
      if during.on then
        ran = ran + 1
        inside()
      end
      if armed then arm() end
    end)
  end
  for _ = 1, 20 do arm() end
  for i = 1, tries do
    results[i] = { call(during) }
    if ran >= enough then break end
  end
  armed = false
  return results, ran
end
local report = {}
local function say(name, value) report[#report + 1] = name .. " " .. tostring(value) end
]==]

local function run_fresh(body)
  local script = os.tmpname()
  local f = assert(io.open(script, "wb"))
  f:write(PRELUDE, body, '\nio.write(table.concat(report, "\\n"))\n')
  f:close()
  local cmd = helpers.interpreter()
  if os.getenv("ECSM_UNDER_VALGRIND") then
    cmd = "valgrind --quiet --error-exitcode=99 --leak-check=full "
      .. "--errors-for-leak-kinds=definite --show-leak-kinds=definite " .. cmd
  end
  local p = assert(io.popen(cmd .. " " .. script .. " 2>&1; s=$?; echo; echo exit $s"))
  local out = p:read("*a")
  p:close()
  os.remove(script)
  local got = {}
  for name, value in out:gmatch("([%w_]+) ([^\n]*)") do
    got[name] = tonumber(value) or value
  end
  assert(got.exit == 0, out)
  return got, out
end

describe("an http object in use", function()
  local task = "v4-task/docs-ec2-awsvpc-curltest.json"

  it("refuses re-entry from a finalizer while get_json decodes", function()
    local got, out = run_fresh [[
      local c = assert(core.http())
      local url = E .. "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json"
      local expected = core.decode(read("v4-task/docs-ec2-awsvpc-curltest.json"))
      local refusals, wrong = 0, 0
      local results, ran = finalizers_during(function(during)
        during.on = true
        local v, status = c:get_json(url)
        during.on = false
        return v, status
      end, function()
        local ok, err = pcall(c.get, c, E .. "/fixtures/v4-stats/docs-ec2-awsvpc-curl.json")
        if not ok and tostring(err):find("ecs_metadata.core.http: re-entered during a request", 1, true) then
          refusals = refusals + 1
        else
          wrong = wrong + 1
        end
      end, 200, 50)
      local bad = 0
      for _, r in ipairs(results) do
        if r[2] ~= 200 or not same(expected, r[1]) then bad = bad + 1 end
      end
      say("ran", ran) say("refusals", refusals) say("wrong", wrong) say("bad", bad)
      say("after", select(2, c:get(url)))
    ]]
    assert.is_true(got.ran > 0, "no finalizer ran during get_json: " .. out)
    assert.are.equal(got.ran, got.refusals)
    assert.are.equal(0, got.wrong)
    assert.are.equal(0, got.bad)
    assert.are.equal(200, got.after)     -- not left busy
  end)

  it("refuses re-entry from a finalizer while the headers table is built", function()
    local got, out = run_fresh [[
      local c = assert(core.http { max_header_bytes = core.LIMITS.max_header_bytes })
      local url = E .. "/fault/repeated-headers?n=3000"
      local want = {}
      for i = 1, 3000 do want[i] = tostring(i) end
      want = table.concat(want, ", ")
      local refusals = 0
      local results, ran = finalizers_during(function(during)
        during.on = true
        local body, status, headers = c:get(url)
        during.on = false
        return body, status, headers
      end, function()
        local ok, err = pcall(c.get_json, c, E .. "/v4/ec2/task")
        if not ok and tostring(err):find("re-entered during a request", 1, true) then
          refusals = refusals + 1
        end
      end, 200, 50)
      local bad = 0
      for _, r in ipairs(results) do
        if r[1] ~= "{}" or r[2] ~= 200 or r[3]["x-repeat"] ~= want then bad = bad + 1 end
      end
      say("ran", ran) say("refusals", refusals) say("bad", bad) say("calls", #results)
    ]]
    assert.is_true(got.ran > 0, "no finalizer ran while the headers were built: " .. out)
    assert.are.equal(got.ran, got.refusals)
    assert.are.equal(0, got.bad)
    assert.is_true(got.calls > 0)
  end)

  it("closes when the call ends if a finalizer closes it during the call", function()
    local got, out = run_fresh [[
      local c = assert(core.http())
      local url = E .. "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json"
      local expected = core.decode(read("v4-task/docs-ec2-awsvpc-curltest.json"))
      local function closed() return tostring(c):find("closed", 1, true) ~= nil end
      local closes, closed_at_once = 0, 0
      local results, ran = finalizers_during(function(during)
        during.on = true
        local v, status = c:get_json(url)
        during.on = false
        return v, status
      end, function()
        if closed() then return end
        closes = closes + 1
        c:close()
        if closed() then closed_at_once = closed_at_once + 1 end
      end, 200, 1)
      local last = results[#results]
      say("ran", ran) say("closes", closes) say("closed_at_once", closed_at_once)
      say("last_status", last[2]) say("last_same", same(expected, last[1]))
      say("closed_after", closed())
      say("use_after", select(2, pcall(c.get, c, url)))
    ]]
    assert.is_true(got.ran > 0, "no finalizer ran during get_json: " .. out)
    assert.is_true(got.closes >= 1)     -- each one waits for the call
    assert.are.equal(0, got.closed_at_once)
    -- The call that was interrupted answered in full; then the object was closed.
    assert.are.equal(200, got.last_status)
    assert.are.equal("true", got.last_same)
    assert.are.equal("true", got.closed_after)
    assert.matches("attempt to use a closed http object", got.use_after, 1, true)
  end)

  if _VERSION ~= "Lua 5.4" then
    -- 5.1, 5.3 and LuaJIT pass a finalizer's error on to the allocation that
    -- ran it: here, one inside the decoder. (5.4 turns it into a warning.)
    it("is usable again after a finalizer's error escaped from the decoder", function()
      local got, out = run_fresh [[
        local c = assert(core.http())
        local url = E .. "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json"
        local raised = 0
        finalizers_during(function(during)
          during.on = true
          local ok, e = pcall(c.get_json, c, url)
          during.on = false
          if not ok and tostring(e):find("finalizer says no", 1, true) then
            raised = raised + 1
          end
        end, function() error("finalizer says no") end, 200, 5)
        say("raised", raised)
        say("after", select(2, c:get(url)))
      ]]
      assert.is_true(got.raised > 0, out)
      assert.are.equal(200, got.after)
    end)
  end

  it("refuses re-entry from an option's metamethod", function()
    local c = assert(core.http())
    local url = E .. "/fixtures/" .. task
    local inner
    local opts = setmetatable({}, { __index = function(_, k)
      if k == "timeout" and not inner then
        inner = { pcall(c.get, c, url) }
      end
    end })
    local body, status = c:get(url, opts)
    assert.are.equal(200, status)
    assert.are.equal(helpers.read(task), body)
    assert.is_false(inner[1])
    assert.matches("re-entered during a request", inner[2], 1, true)
    c:close()
  end)

  it("is usable again after an error escaped from the middle of a call", function()
    local c = assert(core.http())
    local url = E .. "/fixtures/" .. task
    local opts = setmetatable({}, { __index = function(_, k)
      if k == "label" then error("boom from __index") end
    end })
    local ok, err = pcall(c.get_json, c, url, opts)
    assert.is_false(ok)
    assert.matches("boom from __index", err, 1, true)
    local body, status = c:get(url)
    assert.are.equal(200, status)
    assert.are.equal(helpers.read(task), body)
    c:close()
  end)
end)
