-- The transport conformance spec: the same cases (spec/transport_cases.lua)
-- against every transport there is, with the same assertions. The curl
-- transport runs them here, in plain Lua; the cosocket transport runs them
-- inside a real nginx with 4 workers (spec/nginx.lua), in a content handler
-- and in a timer, and answers each case's result as JSON.
local helpers = require "spec.helpers"
local nginx = require "spec.nginx"
local cases = require "spec.transport_cases"
local cjson = require "cjson"
local socket = require "socket"

local E = helpers.endpoint()
local SLACK = helpers.SLACK

-- A listener that never accepts, its backlog filled: a connect to it hangs
-- until the client gives up (loopback only, nothing leaves the machine).
local function blackhole()
  local s = assert(socket.tcp())
  assert(s:bind("127.0.0.1", 0))
  assert(s:listen(0))
  local _, port = s:getsockname()
  local fillers = { s }
  for _ = 1, 4 do
    local c = socket.tcp()
    c:settimeout(0)
    c:connect("127.0.0.1", port)
    fillers[#fillers + 1] = c
  end
  socket.sleep(0.05)
  return "http://127.0.0.1:" .. port, fillers
end

local function escape(s)
  return (s:gsub("[^%w]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local BLACKHOLE, fillers = blackhole()

local CASE_LOCATIONS = [[
    location = /case {
        content_by_lua_block {
            local cjson = require "cjson"
            local cases = require "spec.transport_cases"
            local root = "@ROOT@/spec/fixtures"
            local list = {}
            local p = io.popen("cd " .. root .. " && find . -type f -name '*.json' | sort")
            for line in p:lines() do
                local rel = line:gsub("^%./", "")
                list[#list + 1] = { rel = rel, path = root .. "/" .. rel }
            end
            p:close()
            local ctx = {
                transport = require "ecs_metadata.transport.cosocket",
                E = "@ENDPOINT@",
                blackhole = ngx.unescape_uri(ngx.var.arg_blackhole or ""),
                fixtures = list,
                fixtures_root = root,
                limits = require("ecs_metadata.core").LIMITS,
            }
            local result
            local name = ngx.var.arg_name
            if ngx.var.arg_in == "timer" then
                local sema = require("ngx.semaphore").new()
                local ok, err = ngx.timer.at(0, function()
                    local done, r = pcall(cases.run, name, ctx)
                    result = done and r or { error = tostring(r) }
                    sema:post()
                end)
                assert(ok, err)
                assert(sema:wait(60))
            else
                result = cases.run(name, ctx)
            end
            ngx.header["Content-Type"] = "application/json"
            ngx.say(cjson.encode(result))
        }
    }
]]

local server

local function in_nginx(where)
  return function(name)
    local url = "/case?name=" .. name .. "&blackhole=" .. escape(BLACKHOLE)
    if where == "timer" then
      url = url .. "&in=timer"
    end
    local body, status = server:get(url, { timeout = 120 })
    assert(status == 200, "the case " .. name .. " failed in nginx: " .. tostring(status)
           .. " " .. tostring(body) .. "\n" .. table.concat(server:errors(), "\n"))
    local r = cjson.decode(body)
    assert(not r.error, r.error)
    return r
  end
end

local function in_lua(name)
  local list = {}
  for _, f in ipairs(helpers.fixtures()) do
    list[#list + 1] = { rel = f.rel, path = f.path }
  end
  return cases.run(name, {
    transport = require "ecs_metadata.transport.curl",
    E = E, blackhole = BLACKHOLE, fixtures = list,
    fixtures_root = helpers.fixture_root(),
    limits = require("ecs_metadata.core").LIMITS,
  })
end

local TRANSPORTS = {
  -- Only the cosocket cases run the module inside nginx (#nginx); the curl
  -- transport's run in busted's own Lua, so every CI pass (valgrind, ASan)
  -- has them.
  { name = "curl transport (plain Lua)", run = in_lua },
  { name = "cosocket transport (nginx, content phase) #nginx", run = in_nginx("content") },
}

local function escaped(s)
  return (s:gsub("%p", "%%%0"))
end

lazy_setup(function()
  server = nginx.start { workers = 4, server = CASE_LOCATIONS }
end)

lazy_teardown(function()
  if server then
    server:stop()
  end
  for _, s in ipairs(fillers) do
    s:close()
  end
end)

for _, tr in ipairs(TRANSPORTS) do
  describe(tr.name, function()
    local run = tr.run

    it("answers every fixture byte for byte, with Content-Length and chunked", function()
      local r = run("fixtures")
      assert.is_true(r.count >= 150)
      assert.are.same({}, r.mismatches)
      assert.are.same({}, r.framing)
    end)

    it("decodes a chunked answer like a length-delimited one", function()
      local r = run("json_chunked")
      assert.is_true(r.same)
      assert.are.equal(200, r.status)
      assert.matches("^arn:aws:ecs:", r.arn)
    end)

    it("keeps one connection alive for consecutive requests, either framing", function()
      assert.are.same({ 1, 1 }, run("keepalive").connections)
    end)

    it("keeps working after a failure", function()
      local r = run("after_failure")
      assert.are.equal("too_large", r.big.code)
      assert.are.equal("timeout", r.slow.code)
      assert.is_true(r.ok.ok)
      assert.is_true(r.same)
    end)

    it("answers statuses, not failures, with lowercase headers", function()
      local r = run("statuses")
      for name, want in pairs { ["404"] = 404, ["500"] = 500, ["503"] = 503, ["429"] = 429 } do
        assert.is_true(r[name].ok, name)
        assert.are.equal(want, r[name].status)
        assert.is_true(r[name].has_headers)
      end
      assert.are.equal("1", r["429"].headers["retry-after"])
    end)

    it("leaves out a 2xx answer's headers when response_headers is false", function()
      local r = run("response_headers")
      assert.is_true(r.off.ok)
      assert.is_false(r.off.has_headers)
      assert.are.equal(429, r.off_429.status)
      assert.are.equal("1", r.off_429.headers["retry-after"])
      assert.is_false(r.client_off.has_headers)
      assert.is_true(r.client_off_call_on.has_headers)
      assert.is_true(r.client_off_json.ok)
      assert.is_false(r.client_off_json.has_headers)
      assert.is_true(r.json_on.has_headers)
    end)

    it("does not follow a redirect", function()
      local r = run("redirect")
      assert.are.equal(302, r.r.status)
      assert.matches("^http://127%.0%.0%.1:%d+/", r.r.headers.location)
      assert.are.equal(0, r.followed)
    end)

    it("answers empty bodies and HTML as they are", function()
      local r = run("empty")
      assert.are.equal("", r.length.body)
      assert.are.equal(200, r.length.status)
      assert.are.equal("", r.chunked.body)
      assert.are.equal("chunked", r.chunked.headers["transfer-encoding"])
      assert.matches("text/html", r.html.headers["content-type"], 1, true)
    end)

    it("fails with nil, message, code within timeout + 0.5 s", function()
      local r = run("faults")
      for name, want in pairs { slow = "timeout", trickle = "timeout", truncated = "unreachable",
                                huge = "too_large", huge_chunked = "too_large",
                                slow_chunked = "timeout", refused = "unreachable" } do
        local x = r[name]
        assert.is_false(x.ok, name)
        assert.are.equal(want, x.code, name .. ": " .. tostring(x.msg))
        assert.is_string(x.msg)
        assert.is_true(x.elapsed < 0.5 + 0.5 + SLACK, ("%s took %.3f s"):format(name, x.elapsed))
      end
      for _, name in ipairs { "slow", "trickle", "truncated", "huge", "huge_chunked" } do
        assert.matches("^GET " .. escaped(E) .. "/fault/", r[name].msg)
      end
      assert.are.equal("GET http://127.0.0.1:1/: ", r.refused.msg:sub(1, 25))
      assert.matches("900 bytes remaining", r.truncated.msg, 1, true)
      assert.matches("max_bytes (4194304)", r.huge.msg, 1, true)
      assert.matches("timed out", r.slow.msg, 1, true)
    end)

    it("bounds the connect by connect_timeout and by timeout", function()
      local r = run("connect_timeout")
      assert.are.equal("timeout", r.connect.code, r.connect.msg)
      assert.is_true(r.connect.elapsed >= 0.25 and r.connect.elapsed < 0.3 + 0.5 + SLACK,
                     ("took %.3f s"):format(r.connect.elapsed))
      assert.are.equal("timeout", r.total.code, r.total.msg)
      assert.is_true(r.total.elapsed >= 0.35 and r.total.elapsed < 0.4 + 0.5 + SLACK,
                     ("took %.3f s"):format(r.total.elapsed))
    end)

    it("caps the body at max_bytes, per call over the transport's", function()
      local r = run("max_bytes")
      for _, k in ipairs { "length", "chunked", "client" } do
        assert.are.equal("too_large", r[k].code, k)
        assert.matches("max_bytes (100)", r[k].msg, 1, true)
      end
      assert.is_true(r.client_call.ok)
      assert.is_true(r.exact.ok)
    end)

    it("caps status lines, headers and trailers at max_header_bytes, and joins repeats in order",
       function()
      local r = run("header_bytes")
      for _, k in ipairs { "headers", "trailers", "client" } do
        assert.are.equal("too_large", r[k].code, k .. ": " .. tostring(r[k].msg))
        assert.are.equal("GET " .. E .. "/fault/repeated-headers: the response headers are "
                         .. "larger than max_header_bytes (1000)", r[k].msg, k)
      end
      assert.are.equal(200, r.client_call.status)
      -- 14,000 header lines are about 200 KB, over the 64 KiB default.
      assert.are.equal("too_large", r.default.code)
      assert.matches("max_header_bytes (65536)", r.default.msg, 1, true)
      for _, q in ipairs { "14000", "14000&trailers=1" } do
        local j = r.joined[q]
        assert.are.equal(200, j.status, q)
        assert.is_true(j.in_order, q)
        assert.are.equal("application/json", j.content_type, q)
        assert.is_true(j.elapsed < 1 + SLACK, ("%s took %.3f s"):format(q, j.elapsed))
      end
      assert.are.equal("1, 2, 3", r.joined["3"].value)
    end)

    it("sends headers, per call over the transport's, and never shows their values", function()
      local r = run("headers")
      assert.are.equal(401, r.none.status)
      assert.are.equal(200, r.call.status)
      assert.are.equal(401, r.client.status)
      assert.are.equal(200, r.over.status)
      assert.are.equal("unreachable", r.refused.code)
      assert.is_nil(r.refused.msg:find(r.token, 1, true))
      assert.are.equal("invalid_argument", r.crlf.code)
      assert.matches("Authorization", r.crlf.msg, 1, true)
      assert.is_nil(r.crlf.msg:find(r.token, 1, true))
    end)

    it("names a request by its label, or by the url without user info and query", function()
      local r = run("labels")
      assert.matches("GET http://127.0.0.1:1/path", r.userinfo.msg, 1, true)
      assert.is_nil(r.userinfo.msg:find("secret", 1, true))
      assert.matches("^GET credentials endpoint: ", r.label.msg)
      assert.is_nil(r.label.msg:find("abc", 1, true))
    end)

    it("refuses what is not an http(s) url or a valid value, and raises on misuse", function()
      local r = run("invalid")
      assert.are.equal(6, #r.urls)
      for i, x in ipairs(r.urls) do
        assert.are.equal("invalid_argument", x.code, i)
        assert.is_string(x.msg)
      end
      -- The same words from every transport, with the bounds of core.LIMITS.
      local seconds = "must be a positive number of seconds, at most 86400"
      local want = {
        "timeout " .. seconds, "timeout " .. seconds, "timeout " .. seconds,
        "connect_timeout " .. seconds,
        "max_bytes must be a whole number of bytes, 1 to 1073741824",
        "max_bytes must be a whole number of bytes, 1 to 1073741824",
        "timeout " .. seconds,
        "max_bytes must be a whole number of bytes, 1 to 1073741824",
        "max_header_bytes must be a whole number of bytes, 1 to 262144",
        "max_header_bytes must be a whole number of bytes, 1 to 262144",
      }
      assert.are.equal(#want, #r.opts)
      for i, x in ipairs(r.opts) do
        assert.are.equal("invalid_argument", x.code, i)
        assert.are.equal("GET " .. E .. "/fault/empty: " .. want[i], x.msg, i)
      end
      assert.are.same({ "invalid_argument" }, r.new)
      for i, raised in ipairs(r.raised) do
        assert.is_true(raised, "misuse " .. i .. " did not raise")
      end
      assert.are.equal(11, #r.raised)
    end)

    it("PUTs a body, then GETs plainly again", function()
      local r = run("put")
      assert.are.equal(200, r.put.status)
      assert.matches('"ProtectionEnabled":%s*true', r.put.body)
      assert.are.equal(r.sent, r.last)
      assert.matches('"ProtectionEnabled":%s*true', r.get.body)
      assert.is_true(r.plain_same)
    end)

    it("get_json decodes whatever the status and gives bad_json with status and headers", function()
      local r = run("get_json")
      assert.is_true(r.task.ok)
      assert.are.equal(200, r.task.status)
      assert.is_true(r.array_mt)
      assert.are.same({ kind = "string", status = 404 }, r.not_found)
      for fault, x in pairs(r.bad) do
        assert.is_false(x.ok, fault)
        assert.are.equal("bad_json", x.code, fault)
        assert.matches("^GET " .. escaped(E) .. "/fault/" .. fault .. ": bad_json", x.msg)
        assert.are.equal(200, x.status, fault)
        assert.is_true(x.has_headers, fault)
      end
      assert.are.equal("bad_json", r.bare429.code)
      assert.are.equal(429, r.bare429.status)
      assert.matches("^GET named: bad_json", r.label.msg)
    end)
  end)
end

describe("cosocket transport in a timer #nginx", function()
  it("runs the same cases there", function()
    local run = in_nginx("timer")
    assert.are.same({ 1, 1 }, run("keepalive").connections)
    local r = run("faults")
    assert.are.equal("timeout", r.trickle.code)
    assert.are.equal("too_large", r.huge_chunked.code)
    assert.is_true(r.trickle.elapsed < 1 + SLACK)
  end)
end)
