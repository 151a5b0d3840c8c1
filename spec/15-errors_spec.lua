-- Failures and retries: every fault of the endpoint through ecs.task(), the
-- error code it gives, which ones are retried, Retry-After, backoff, and the
-- total timeout that bounds it all.
local helpers = require "spec.helpers"
local core = require "ecs_metadata.core"
local request = require "ecs_metadata.request"

local E = helpers.endpoint()

local SLACK = helpers.SLACK

local function client(base, extra)
  return helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = base }, { cache_ttl = 0 }, extra)
end

-- Calls c:task() and returns v, msg, code, status, seconds taken.
local function task(c, opts)
  local t0 = core.now()
  local v, msg, code, status = c:task(opts)
  return v, msg, code, status, core.now() - t0
end

local requests = helpers.requests

-- A fresh key per flaky spec, so reruns don't share counters.
local function key()
  return tostring(math.floor(core.now() * 1e6))
end

describe("failures", function()
  before_each(function()
    helpers.reset()
  end)

  local cases = {
    -- fault, code, attempts with the default retries (2), HTTP status
    { "404", "http_status", 1, 404 },
    { "redirect", "http_status", 1, 302 },
    { "500", "http_status", 3, 500 },
    { "503", "http_status", 3, 503 },
    { "429-bare", "throttled", 3, 429 },
    { "empty", "bad_json", 1, 200 },
    { "html", "bad_json", 1, 200 },
    { "garbage", "bad_json", 1, 200 },
    { "deep", "bad_json", 1, 200 },
    { "huge", "too_large", 1 },
    { "huge-chunked", "too_large", 1 },
  }
  for _, case in ipairs(cases) do
    it(case[1] .. " is " .. case[2] .. " after " .. case[3] .. " attempt(s)", function()
      local base = E .. "/fault/" .. case[1]
      local v, msg, code, status = task(client(base))
      assert.is_nil(v)
      assert.are.equal(case[2], code)
      assert.are.equal(case[4], status)
      assert.matches("GET " .. base .. "/task", msg, 1, true)
      assert.are.equal(case[3], requests("/fault/" .. case[1] .. "/task"))
      if case[3] > 1 then
        assert.matches("(after " .. case[3] .. " attempts)", msg, 1, true)
      end
    end)
  end

  it("says what the agent said with a 5xx", function()
    local _, msg = client(E .. "/fault/500", { retries = 0 }):task()
    assert.matches("HTTP 500 Internal Server Error: V4 task metadata handler: unable to get "
                   .. "task metadata: injected internal error", msg, 1, true)
  end)

  it("times out a slow endpoint once, not once per retry", function()
    local v, msg, code, _, took = task(client(E .. "/fault/slow?ms=3000#", { timeout = 0.4 }))
    assert.is_nil(v)
    assert.are.equal("timeout", code)
    assert.is_string(msg)
    assert.is_true(took >= 0.35 and took < 0.9 + SLACK, "took " .. took)
  end)

  it("times out an endpoint that trickles", function()
    local v, _, code, _, took = task(client(E .. "/fault/trickle", { timeout = 0.5 }))
    assert.is_nil(v)
    assert.are.equal("timeout", code)
    assert.is_true(took < 1.2 + SLACK, "took " .. took)
  end)

  it("answers a truncated body as a failure, never half a table", function()
    local v, msg, code = client(E .. "/fault/truncated", { retries = 0 }):task()
    assert.is_nil(v)
    assert.is_truthy(code == "unreachable" or code == "bad_json", code)
    assert.is_string(msg)
  end)

  it("retries a refused connection and answers unreachable", function()
    local v, msg, code, _, took = task(client("http://127.0.0.1:1"))
    assert.is_nil(v)
    assert.are.equal("unreachable", code)
    assert.matches("(after 3 attempts)", msg, 1, true)
    assert.is_true(took < 1 + SLACK, "took " .. took)
  end)

  it("answers too_large for max_bytes", function()
    local v, _, code = client(E .. "/v4/fargate", { max_bytes = 64 }):task()
    assert.is_nil(v)
    assert.are.equal("too_large", code)
  end)
end)

describe("retries", function()
  before_each(function()
    helpers.reset()
  end)

  it("get through a flaky 503 within the retries", function()
    local k = key()
    local t = assert(client(E .. "/fault/flaky/" .. k .. "/2"):task())
    assert.is_string(t.TaskARN)
    assert.are.equal(3, requests("/fault/flaky/" .. k .. "/2/task"))
  end)

  it("give up when the failures outlast them", function()
    local k = key()
    local v, msg, code = client(E .. "/fault/flaky/" .. k .. "/3"):task()
    assert.is_nil(v)
    assert.are.equal("http_status", code)
    assert.matches("HTTP 503", msg, 1, true)
    assert.are.equal(3, requests("/fault/flaky/" .. k .. "/3/task"))
    k = key()
    assert(client(E .. "/fault/flaky/" .. k .. "/3", { retries = 3 }):task())
  end)

  it("can be switched off", function()
    local k = key()
    local _, _, code = client(E .. "/fault/flaky/" .. k .. "/1", { retries = 0 }):task()
    assert.are.equal("http_status", code)
    assert.are.equal(1, requests("/fault/flaky/" .. k .. "/1/task"))
  end)

  it("honor Retry-After: 0 at once", function()
    local k = key()
    local v, msg, _, _, took = task(client(E .. "/fault/flaky429/" .. k .. "/2"))
    assert(v, msg)
    assert.is_true(took < 0.5 + SLACK, "took " .. took)
    assert.are.equal(3, requests("/fault/flaky429/" .. k .. "/2/task"))
  end)

  it("honor Retry-After: 1", function()
    local v, msg, code, status, took = task(client(E .. "/fault/429", { retries = 1 }))
    assert.is_nil(v)
    assert.are.equal("throttled", code)
    assert.are.equal(429, status)
    assert.matches("HTTP 429 Too Many Requests", msg, 1, true)
    assert.is_true(took >= 0.95 and took < 2 + SLACK, "took " .. took)
    assert.are.equal(2, requests("/fault/429/task"))
  end)

  it("never wait past the timeout", function()
    -- Retry-After: 1 does not fit in 0.5 s: answered at once.
    local v, _, code, _, took = task(client(E .. "/fault/429", { timeout = 0.5 }))
    assert.is_nil(v)
    assert.are.equal("throttled", code)
    assert.is_true(took < 0.3 + SLACK, "took " .. took)
    assert.are.equal(1, requests("/fault/429/task"))
    -- Many retries of a failure that never ends stop at the timeout.
    local k = key()
    v, _, code, _, took = task(client(E .. "/fault/flaky/" .. k .. "/1000",
                                      { timeout = 0.5, retries = 100 }))
    assert.is_nil(v)
    assert.are.equal("http_status", code)
    assert.is_true(took < 0.6 + SLACK, "took " .. took)
    local n = requests("/fault/flaky/" .. k .. "/1000/task")
    assert.is_true(n >= 3 and n < 100, n .. " attempts")
  end)

  it("back off exponentially with jitter", function()
    local t0 = core.now()
    local _, _, code = client(E .. "/fault/503", { retries = 3 }):task()
    local took = core.now() - t0
    assert.are.equal("http_status", code)
    -- waits: [25,50] + [50,100] + [100,200] ms
    local base = request.BACKOFF_BASE
    assert.is_true(took >= base * 3.5 - 0.01 and took < base * 7 + 0.5 + SLACK, "took " .. took)
  end)

  it("parse Retry-After as seconds or an HTTP date", function()
    local ra = request.retry_after
    assert.are.equal(3, ra { ["retry-after"] = "3" })
    assert.are.equal(0, ra { ["retry-after"] = " 0 " })
    assert.is_nil(ra { ["retry-after"] = "soon" })
    assert.is_nil(ra {})
    assert.is_nil(ra(nil))
    assert.are.equal(0, ra { ["retry-after"] = "Sun, 06 Nov 1994 08:49:37 GMT" })
    local future = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 30)
    local s = ra { ["retry-after"] = future }
    assert.is_true(s >= 28 and s <= 31, tostring(s))
  end)

  it("read timestamps without the local time zone", function()
    local time = require "ecs_metadata.time"
    assert.are.equal(1234567890, time.iso8601("2009-02-13T23:31:30Z"))
    assert.are.equal(1234567890.25, time.iso8601("2009-02-13T23:31:30.25Z"))
    assert.are.equal(1234567890, time.iso8601("2009-02-14T01:31:30+02:00"))
    assert.are.equal(1234567890, time.iso8601("2009-02-13T18:31:30-0500"))
    assert.are.equal(0, time.iso8601("1970-01-01T00:00:00Z"))
    assert.are.equal(951782400, time.iso8601("2000-02-29T00:00:00Z"))
    for _, bad in ipairs { "EXPIRATION_DATE", "2009-13-01T00:00:00Z", "2009-02-13 23:31", "", 5 } do
      assert.is_nil(time.iso8601(bad), tostring(bad))
    end
    assert.are.equal(784111777, time.http_date("Sun, 06 Nov 1994 08:49:37 GMT"))
    assert.is_nil(time.http_date("Sunday, 06-Nov-94 08:49:37 GMT"))
  end)
end)
