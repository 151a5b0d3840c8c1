-- The C http object against an endpoint that is broken or hostile (the
-- endpoint's raw routes, endpoint/README.md): header sections and trailers
-- that never end, names repeated thousands of times, replies that are not
-- HTTP, TLS against plain http. Every call answers nil, message, code with
-- the right code within timeout + 0.5 s, keeps a bounded amount of memory,
-- and gives back what one big answer grew.
local helpers = require "spec.helpers"
local core = require "ecs_metadata.core"

local E = helpers.endpoint()
local TIMEOUT = 1
local SLACK = 0.5 + helpers.SLACK

-- Calls f and returns its results and the seconds it took.
local function timed(f, ...)
  local t0 = core.now()
  local r = { f(...) }
  r.elapsed = core.now() - t0
  return r
end

local function quoted(s)
  return (s:gsub("%p", "%%%0"))
end

describe("response headers and trailers", function()
  local c

  before_each(function()
    c = assert(core.http { timeout = TIMEOUT })
  end)

  after_each(function()
    c:close()
  end)

  it("are capped at max_header_bytes, 64 KiB unless set", function()
    for _, fault in ipairs { "trailers-endless", "headers-endless" } do
      local r = timed(c.get, c, E .. "/fault/" .. fault)
      assert.is_nil(r[1])
      assert.are.equal("too_large", r[3], fault)
      assert.matches("^GET " .. quoted(E) .. "/fault/" .. quoted(fault)
                     .. ": the response headers are larger than max_header_bytes %(65536%)$", r[2])
      assert.is_true(r.elapsed < TIMEOUT + SLACK, ("%s took %.3f s"):format(fault, r.elapsed))
    end
    assert.are.equal(65536, core.DEFAULT_MAX_HEADER_BYTES)
  end)

  it("take max_header_bytes per object and per call", function()
    local url = E .. "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json"
    local small = assert(core.http { max_header_bytes = 100 })
    local _, msg, code = small:get(url)
    assert.are.equal("too_large", code)
    assert.matches("max_header_bytes (100)", msg, 1, true)
    assert.are.equal(200, select(2, small:get(url, { max_header_bytes = 4096 })))
    assert.are.equal("too_large", select(3, c:get(url, { max_header_bytes = 100 })))
    assert.are.equal(200, select(2, c:get(url)))
    -- get_json too, and a failure there leaves nothing half done.
    assert.are.equal("too_large", select(3, small:get_json(url)))
    assert.are.equal("RUNNING", small:get_json(url, { max_header_bytes = 4096 }).KnownStatus)
    small:close()
  end)

  it("bound trailers however they repeat, within timeout + 0.5 s", function()
    local big = assert(core.http { timeout = TIMEOUT,
                                   max_header_bytes = core.LIMITS.max_header_bytes })
    local r = timed(big.get, big, E .. "/fault/repeated-headers?n=60000&trailers=1")
    assert.is_nil(r[1])
    assert.are.equal("too_large", r[3])
    assert.is_true(r.elapsed < TIMEOUT + SLACK, ("took %.3f s"):format(r.elapsed))
    big:close()
  end)

  it("join a name repeated thousands of times, in order", function()
    local big = assert(core.http { timeout = TIMEOUT,
                                   max_header_bytes = core.LIMITS.max_header_bytes })
    local want = {}
    for i = 1, 14000 do want[i] = tostring(i) end
    want = table.concat(want, ", ")
    for _, q in ipairs { "n=14000", "n=14000&trailers=1" } do
      local r = timed(big.get, big, E .. "/fault/repeated-headers?" .. q)
      assert.are.equal("{}", r[1], r[2])
      assert.are.equal(200, r[2])
      assert.are.equal(want, r[3]["x-repeat"])
      assert.are.equal("application/json", r[3]["content-type"])
      assert.is_true(r.elapsed < TIMEOUT + SLACK, ("took %.3f s"):format(r.elapsed))
    end
    -- Twice, and three times: the first value stays a string when alone.
    local _, _, h = assert(big:get(E .. "/fault/repeated-headers?n=2"))
    assert.are.equal("1, 2", h["x-repeat"])
    _, _, h = assert(big:get(E .. "/fault/repeated-headers?n=3"))
    assert.are.equal("1, 2, 3", h["x-repeat"])
    _, _, h = assert(big:get(E .. "/fault/repeated-headers?n=1"))
    assert.are.equal("1", h["x-repeat"])
    big:close()
  end)

  it("never hold the call past timeout + 0.5 s when they trickle", function()
    local r = timed(c.get, c, E .. "/fault/headers-trickle")
    assert.is_nil(r[1])
    assert.are.equal("timeout", r[3])
    assert.is_true(r.elapsed < TIMEOUT + SLACK, ("took %.3f s"):format(r.elapsed))
  end)
end)

describe("the receive buffers", function()
  it("are given back after one big answer, kept after ordinary ones", function()
    local c = assert(core.http { max_header_bytes = core.LIMITS.max_header_bytes })
    local url = E .. "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json"
    assert(c:get(url))
    local body_cap, head_cap = c:_buffers()
    assert.is_true(body_cap >= #helpers.read("v4-task/docs-ec2-awsvpc-curltest.json"))
    assert.is_true(head_cap > 0)
    -- Ordinary answers keep them, so a poller does not allocate.
    assert(c:get(url))
    assert.are.same({ body_cap, head_cap }, { c:_buffers() })

    -- 200 KiB of headers: the header buffer is freed after the call.
    assert(c:get(E .. "/fault/repeated-headers?n=12000"))
    local _, head_after = c:_buffers()
    assert.is_true(head_after <= 16 * 1024, head_after)
    -- So is a body that grew past 1 MiB, also when the call failed.
    local _, _, code = c:get(E .. "/fault/huge", { max_bytes = 3 * 1024 * 1024 })
    assert.are.equal("too_large", code)
    local body_after = c:_buffers()
    assert.is_true(body_after <= 1024 * 1024, body_after)
    -- And the object works as before.
    assert.are.equal(helpers.read("v4-task/docs-ec2-awsvpc-curltest.json"), (c:get(url)))
    c:close()
    assert.are.same({ 0, 0 }, { c:_buffers() })
  end)
end)

describe("a reply that is not HTTP", function()
  local kinds = { "no-status", "status-0", "status-1000", "status-99", "status-text",
                  "bad-version", "not-a-version", "binary" }
  for _, kind in ipairs(kinds) do
    it(kind .. " is unreachable", function()
      local c = assert(core.http { timeout = TIMEOUT })
      for _, method in ipairs { "get", "get_json" } do
        local r = timed(c[method], c, E .. "/fault/not-http/" .. kind)
        assert.is_nil(r[1])
        assert.are.equal("unreachable", r[3], method)
        assert.matches("^GET " .. quoted(E) .. "/fault/not%-http/" .. quoted(kind)
                       .. ": the reply is not HTTP: ", r[2])
        assert.is_true(r.elapsed < TIMEOUT + SLACK)
      end
      -- The next request, elsewhere, is fine.
      assert.are.equal(200, select(2, c:get(E .. "/v4/ec2/task")))
      c:close()
    end)
  end
end)

describe("TLS", function()
  it("against an endpoint that speaks plain http is invalid_argument", function()
    -- OpenSSL reads the CA store at the first handshake, which counts
    -- against connect_timeout too: seconds under valgrind.
    local timeout = TIMEOUT + 20 * helpers.SLACK
    local c = assert(core.http { timeout = timeout, connect_timeout = timeout })
    local https = E:gsub("^http:", "https:")
    for _, method in ipairs { "get", "get_json" } do
      local r = timed(c[method], c, https .. "/v4/ec2/task")
      assert.is_nil(r[1])
      assert.are.equal("invalid_argument", r[3])
      assert.matches("^GET " .. quoted(https) .. "/v4/ec2/task: TLS failed, the endpoint may not "
                     .. "speak TLS %(ECS endpoints are plain http%): ", r[2])
      assert.is_true(r.elapsed < timeout + SLACK)
    end
    local _, msg = c:request("PUT", https .. "/agent/default/task-protection/v1/state", "{}",
                             { label = "task protection" })
    assert.matches("^PUT task protection: TLS failed", msg)
    assert.are.equal(200, select(2, c:get(E .. "/v4/ec2/task")))
    c:close()
  end)
end)
