-- The cache's tiers and policies: every client's sources are C cells, a
-- failing endpoint is asked at most once per error_ttl, stale-if-error for
-- metadata only, clear_cache on the module and on a client.
local helpers = require "spec.helpers"
local core = require "ecs_metadata.core"

local E = helpers.endpoint()

local requests = helpers.requests

-- A fresh key per spec, so reruns don't share the endpoint's counters.
local function key()
  return tostring(math.floor(core.now() * 1e6))
end

describe("the cache", function()
  before_each(function()
    helpers.reset()
  end)

  it("answers every client's fresh results from a C cell", function()
    local c = helpers.client { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate" }
    for _, name in ipairs { "container", "task", "task_with_tags", "container_stats",
                            "task_stats" } do
      assert.are.equal("C", debug.getinfo(c[name], "S").what, name)
    end
    local t = assert(c:task())
    assert.are.equal(t, c:task())
    assert.are.equal(t, c:task(nil))
    assert.are.equal(1, requests("/v4/fargate/task"))
    -- Another client's cell never answers for this one.
    local other = helpers.client { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/ec2" }
    local mine = assert(other:task())
    assert.are_not.equal(t, mine)
    assert.are.equal(mine, c.task(other))
    assert.are.equal("curltest", c.task(other).Family)
  end)

  it("asks a failing endpoint at most once per error_ttl", function()
    local base = E .. "/fault/503"
    local c = helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = base }, { retries = 0, error_ttl = 0.3 })
    local v, msg, code, status = c:task()
    assert.is_nil(v)
    assert.are.equal("http_status", code)
    assert.are.equal(503, status)
    for _ = 1, 20 do
      assert.are.same({ nil, msg, code, status }, { c:task() })
    end
    assert.are.equal(1, requests("/fault/503/task"))
    core._sleep(0.35)
    assert.is_nil(c:task())
    assert.are.equal(2, requests("/fault/503/task"))
    -- Per url: another source of the same endpoint is asked on its own.
    assert.is_nil(c:task_stats())
    assert.are.equal(1, requests("/fault/503/task/stats"))
    -- Calls that never reach an endpoint are not remembered.
    assert.are.equal("invalid_argument", select(3, c:task { timeout = -1 }))
  end)

  it("answers the last good metadata within stale_ttl when the endpoint fails", function()
    local base = E .. "/fault/fading/" .. key() .. "/1"
    local c = helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = base },
                             { retries = 0, cache_ttl = 0.1, stale_ttl = 0.5, error_ttl = 0 })
    local good = assert(c:task())
    core._sleep(0.15)
    local v, msg, code = c:task()             -- fresh no more, the endpoint fails
    assert.are.equal(good, v)
    assert.are.equal("http_status", code)
    assert.matches("^task: GET .* HTTP 503", msg)
    core._sleep(0.5)
    v, msg, code = c:task()                   -- past the stale window
    assert.is_nil(v)
    assert.are.equal("http_status", code)
    assert.is_string(msg)
  end)

  it("never answers stale stats, and not without stale_ttl", function()
    local k = key()
    local base = E .. "/fault/fading/" .. k .. "/1"
    local c = helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = base },
                             { retries = 0, cache_ttl = 0.05, stale_ttl = 60, error_ttl = 0 })
    -- fading serves one task document for every path: good enough as stats
    assert(c:task_stats())
    core._sleep(0.1)
    assert.is_nil(c:task_stats())
    local plain = helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/fault/fading/" .. k .. "x/1" },
                                 { retries = 0, cache_ttl = 0.05, error_ttl = 0 })
    assert(plain:task())
    core._sleep(0.1)
    assert.is_nil(plain:task())
  end)

  it("is emptied by c:clear_cache(), failures and cells included", function()
    local c = helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/fault/503" }, { retries = 0 })
    assert.is_nil(c:task())
    c:clear_cache()
    assert.is_nil(c:task())
    assert.are.equal(2, requests("/fault/503/task"))
    local ok = helpers.client { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate" }
    local t = assert(ok:task())
    ok:clear_cache()
    assert.are_not.equal(t, assert(ok:task()))
    assert.are.equal(2, requests("/v4/fargate/task"))
  end)

  it("is emptied for the module's functions by ecs.clear_cache()", function()
    local out, status, err = helpers.run_lua([[
      local ecs = require "ecs_metadata"
      ecs.clear_cache()                       -- before the default client exists
      local a = assert(ecs.task())
      assert(ecs.task() == a)
      ecs.clear_cache()
      local b = assert(ecs.task())
      io.write(tostring(a ~= b))
    ]], { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/ec2" })
    assert.are.equal(0, status, err)
    assert.are.equal("true", out)
    assert.are.equal(2, requests("/v4/ec2/task"))
  end)
end)
