-- ecs.Fargate: the Python helper's interface, raise_errors and logger.
local helpers = require "spec.helpers"
local ecs = require "ecs_metadata"

local E = helpers.endpoint()
local V4 = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate" }

local METHODS = {
  get_container_metadata_v4 = "container",
  get_task_metadata_v4 = "task",
  get_container_stats_v4 = "container_stats",
  get_task_stats_v4 = "task_stats",
  get_task_metadata_with_tags_v4 = "task_with_tags",
}

describe("ecs.Fargate", function()
  before_each(function()
    helpers.reset()
  end)

  it("answers what the client answers, method for method", function()
    local f = ecs.Fargate { env = V4 }
    local c = assert(ecs.new { env = V4 })
    for method, fn in pairs(METHODS) do
      assert.are.same(assert(c[fn](c)), f[method](f), method)
    end
  end)

  it("asks the endpoint every time, like the Python helper", function()
    local f = ecs.Fargate { env = V4 }
    f:get_task_metadata_v4()
    f:get_task_metadata_v4()
    assert.are.equal(2, helpers.stats().requests["/v4/fargate/task"])
  end)

  it("raises the nil, msg message by default", function()
    local env = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/fault/404" }
    local c = assert(ecs.new { env = env, retries = 0 })
    local f = ecs.Fargate { env = env, retries = 0, logger = false }
    for method, fn in pairs(METHODS) do
      local _, msg = c[fn](c)
      local ok, err = pcall(f[method], f)
      assert.is_false(ok, method)
      assert.are.equal(msg, err)
    end
  end)

  it("reads v4 only", function()
    local f = ecs.Fargate { env = { ECS_CONTAINER_METADATA_URI = E .. "/v3/ec2" } }
    local ok, err = pcall(f.get_task_metadata_v4, f)
    assert.is_false(ok)
    assert.matches("ECS_CONTAINER_METADATA_URI_V4 is not set", err, 1, true)
  end)

  it("logs and answers {} with raise_errors = false", function()
    local logged = {}
    local f = ecs.Fargate { env = {}, raise_errors = false,
                            logger = function(msg) logged[#logged + 1] = msg end }
    for method in pairs(METHODS) do
      assert.are.same({}, f[method](f))
    end
    assert.are.equal(5, #logged)
    for _, msg in ipairs(logged) do
      assert.matches("not on ECS", msg, 1, true)
    end
  end)

  it("takes a logger object with :error, or with :warn only", function()
    local obj = { seen = {} }
    function obj:error(msg) self.seen[#self.seen + 1] = "error: " .. msg end
    function obj:warn(msg) self.seen[#self.seen + 1] = "warn: " .. msg end
    local f = ecs.Fargate { env = {}, raise_errors = false, logger = obj }
    assert.are.same({}, f:get_task_stats_v4())
    assert.matches("^error: task_stats: not on ECS", obj.seen[1])

    local warn_only = { seen = {} }
    function warn_only:warn(msg) self.seen[#self.seen + 1] = msg end
    f = ecs.Fargate { env = {}, raise_errors = false, logger = warn_only }
    assert.are.same({}, f:get_container_metadata_v4())
    assert.are.equal(1, #warn_only.seen)

    f = ecs.Fargate { env = {}, raise_errors = false, logger = false }
    assert.are.same({}, f:get_container_metadata_v4())
  end)

  it("raises or logs an invalid option value like any failure", function()
    local ok, err = pcall(ecs.Fargate, { timeout = -1 })
    assert.is_false(ok)
    assert.matches("timeout must be a positive number", err, 1, true)
    local logged
    local f = ecs.Fargate { timeout = -1, raise_errors = false, logger = function(m) logged = m end }
    assert.matches("timeout must be a positive number", logged, 1, true)
    assert.are.same({}, f:get_task_metadata_v4())
  end)

  it("raises for misuse", function()
    local ok, err = pcall(ecs.Fargate, { raise_errors = "no" })
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'Fargate' (option 'raise_errors': boolean expected, got string)",
                   err, 1, true)
    ok, err = pcall(ecs.Fargate, { logger = 42 })
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'Fargate' (option 'logger': function, table or false "
                   .. "expected, got number)", err, 1, true)
    ok, err = pcall(ecs.Fargate, "v4")
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'Fargate' (table or nil expected, got string)", err, 1, true)
  end)
end)
