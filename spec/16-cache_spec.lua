-- Caching: the defaults per function, cache_ttl per client (a number or a
-- table) and per call, shared results, and that failures are never kept.
local helpers = require "spec.helpers"
local ecs = require "ecs_metadata"
local core = require "ecs_metadata.core"
local client_mod = require "ecs_metadata.client"

local E = helpers.endpoint()
local BASE = E .. "/v4/fargate"

local function client(extra)
  return helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = BASE }, extra)
end

local requests = helpers.requests

describe("the cache", function()
  before_each(function()
    helpers.reset()
  end)

  it("keeps task metadata for a second and stats not at all, by default", function()
    local d = client_mod.DEFAULT_CACHE_TTL
    assert.are.equal(1, d.task)
    assert.are.equal(1, d.container)
    assert.are.equal(1, d.task_with_tags)
    assert.are.equal(0, d.task_stats)
    assert.are.equal(0, d.container_stats)
    assert.are.equal(0, d.protection)

    local c = client()
    local a = assert(c:task())
    assert.are.equal(a, c:task())          -- the same table
    assert.are.equal(a, c:task {})         -- with opts too, while fresh
    assert.are.equal(1, requests("/v4/fargate/task"))
    assert(c:task_stats())
    assert(c:task_stats())
    assert.are.equal(2, requests("/v4/fargate/task/stats"))

    core._sleep(1.05)
    local b = assert(c:task())
    assert.are_not.equal(a, b)
    assert.are.equal(2, requests("/v4/fargate/task"))
  end)

  it("takes cache_ttl per call", function()
    local c = client()
    local a = assert(c:task())
    local b = assert(c:task { cache_ttl = 0 })
    assert.are_not.equal(a, b)
    assert.are.equal(2, requests("/v4/fargate/task"))
    local s = assert(c:task_stats { cache_ttl = 30 })
    assert.are.equal(s, c:task_stats { cache_ttl = 30 })
    assert.are.equal(1, requests("/v4/fargate/task/stats"))
  end)

  it("takes cache_ttl per client, as a number or per function", function()
    local c = client { cache_ttl = 60 }
    local s = assert(c:container_stats())
    assert.are.equal(s, c:container_stats())
    assert.are.equal(1, requests("/v4/fargate/stats"))

    c = client { cache_ttl = { task = 0, task_stats = 60 } }
    assert(c:task())
    assert(c:task())
    assert.are.equal(2, requests("/v4/fargate/task"))
    assert.are.equal(c:task_stats(), c:task_stats())
    assert.are.equal(1, requests("/v4/fargate/task/stats"))
    assert.are.equal(c:container(), c:container())   -- the default for the rest

    local ok, err = pcall(ecs.new, { cache_ttl = { taks = 1 } })
    assert.is_false(ok)
    assert.matches("unknown function 'taks'", err, 1, true)
  end)

  it("keeps one entry per url", function()
    local c = client()
    local v4 = assert(c:task())
    local v2 = assert(c:task { version = "v2" })
    assert.are_not.equal(v4, v2)
    assert.are.equal(v4, c:task())
    assert.are.equal(v2, c:task { version = "v2" })
    assert.are.equal(1, requests("/v4/fargate/task"))
    assert.are.equal(1, requests("/v2/metadata"))
  end)

  it("answers a failure again for error_ttl, then asks anew", function()
    local c = ecs.new { env = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/fault/404" }, cache_ttl = 60,
                        error_ttl = 0.2 }
    local v, msg, code, status = c:task()
    assert.is_nil(v)
    assert.are.same({ msg, code, status }, { select(2, c:task()) })
    assert.are.same({ msg, code, status }, { select(2, c:task {}) })
    assert.are.equal(1, requests("/fault/404/task"))
    core._sleep(0.25)
    assert.is_nil(c:task())
    assert.are.equal(2, requests("/fault/404/task"))
    assert.are.equal(1, assert(ecs.new()).settings.error_ttl)      -- the default
    -- error_ttl = 0 asks every time
    c = ecs.new { env = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/fault/404" }, error_ttl = 0 }
    assert.is_nil(c:container())
    assert.is_nil(c:container())
    assert.are.equal(2, requests("/fault/404"))
  end)

  it("is cleared by clear_cache and independent per client", function()
    local c1, c2 = client(), client()
    local a = assert(c1:task())
    local b = assert(c2:task())
    assert.are_not.equal(a, b)
    c1:clear_cache()
    assert.are_not.equal(a, assert(c1:task()))
    assert.are.equal(3, requests("/v4/fargate/task"))
  end)
end)
