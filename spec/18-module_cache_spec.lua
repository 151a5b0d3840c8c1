-- The module-level functions' one-call cache (core._memo) and how the default
-- client feeds it: hits, expiry, clear_cache, options bypassing it, and a
-- protect() dropping protection's entry.
local helpers = require "spec.helpers"
local core = require "ecs_metadata.core"

local E = helpers.endpoint()

describe("core._memo", function()
  it("answers the stored value while fresh, else calls the fallback", function()
    local calls = 0
    local get, set = core._memo(function(...)
      calls = calls + 1
      return "fresh", select("#", ...), ...
    end)
    assert.are.same({ "fresh", 0 }, { get() })
    assert.are.equal(1, calls)
    local value = {}
    set(value, 60)
    assert.are.equal(value, get())
    assert.are.equal(value, get(nil))
    assert.are.equal(1, calls)
    -- Any argument goes to the fallback, with every value it returns.
    assert.are.same({ "fresh", 2, "a", "b" }, { get("a", "b") })
    assert.are.equal(2, calls)
  end)

  it("expires after ttl seconds, and empties with nil or ttl <= 0", function()
    local get, set = core._memo(function() return "miss" end)
    set("hit", 0.05)
    assert.are.equal("hit", get())
    core._sleep(0.08)
    assert.are.equal("miss", get())
    set("hit", 60)
    set(nil, 60)
    assert.are.equal("miss", get())
    set("hit", 0)
    assert.are.equal("miss", get())
    set("hit")
    assert.are.equal("miss", get())
  end)

  it("lets the fallback's errors through", function()
    local get = core._memo(function() error("boom", 0) end)
    assert.has_error(function() get() end, "boom")
    assert.has_error(function() core._memo("x") end)
  end)
end)

describe("the module's functions", function()
  -- They use the default client, which reads the real environment: run them
  -- in a child interpreter that has one.
  local function run(src)
    local out, status, err = helpers.run_lua(src, {
      ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/ec2",
      ECS_AGENT_URI = E .. "/agent/default",
    })
    assert.are.equal(0, status, err)
    return out
  end

  it("answer a fresh result from the cache, and ask again when it is old", function()
    helpers.reset()
    local out = run([[
      local ecs = require "ecs_metadata"
      local a = assert(ecs.task())
      local b = assert(ecs.task())
      io.write(tostring(a == b), " ")
      require("ecs_metadata.core")._sleep(1.1)       -- the default ttl is 1 s
      local c = assert(ecs.task())
      io.write(tostring(c ~= a), " ", c.Family)
    ]])
    assert.are.equal("true true curltest", out)
    assert.are.equal(2, helpers.stats().requests["/v4/ec2/task"])
  end)

  it("bypass the cache when given options, and keep it from other clients", function()
    helpers.reset()
    local out = run([[
      local ecs = require "ecs_metadata"
      local a = assert(ecs.container())
      local b = assert(ecs.container { cache_ttl = 0 })
      io.write(tostring(a ~= b), " ")
      assert(ecs.container() == a)
      ecs.new()                                    -- no effect on the module
      assert(ecs.container() == a)
    ]])
    assert.are.equal("true ", out)
    assert.are.equal(2, helpers.stats().requests["/v4/ec2"])
  end)

  it("do not cache failures or what has no ttl", function()
    helpers.reset()
    run([[
      local ecs = require "ecs_metadata"
      for _ = 1, 3 do assert(ecs.task_stats()) end        -- ttl 0
      for _ = 1, 2 do assert(ecs.protection()) end        -- ttl 0
    ]])
    local r = helpers.stats().requests
    assert.are.equal(3, r["/v4/ec2/task/stats"])
    assert.are.equal(2, r["/agent/default/task-protection/v1/state"])
  end)
end)
