-- The derived views as client methods (views/methods.lua), against the
-- endpoint: what they ask for, what they build from tables passed in
-- without asking, and their failures.
local helpers = require "spec.helpers"
local vf = require "spec.views_fixtures"
local methods = require "ecs_metadata.views.methods"
local summary = require "ecs_metadata.views.summary"
local resource = require "ecs_metadata.views.resource"
local prometheus = require "ecs_metadata.views.prometheus"

local E = helpers.endpoint()
local V4 = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate" }

-- What /v4/fargate answers (endpoint/README.md).
local function fargate()
  return vf.decode("v4-container/docs-2020-fargate-query-metadata.json"),
         vf.decode("v4-task/docs-2020-fargate-query-metadata.json"),
         vf.decode("v4-task-stats/docs-2020-fargate-query-metadata.json")
end

describe("the views as client methods", function()
  before_each(function()
    helpers.reset()
  end)

  it("build from what the client answers", function()
    local c = helpers.client(V4)
    local container, task, task_stats = fargate()
    assert.are.same(summary.build(container, task), assert(methods.summary(c)))
    assert.are.same(resource.resource(container, task), assert(methods.resource(c)))
    assert.are.equal(prometheus.render(task, task_stats), assert(methods.prometheus(c)))
    local s = helpers.stats().requests
    assert.are.equal(1, s["/v4/fargate"], "container, cached between summary and resource")
    assert.are.equal(1, s["/v4/fargate/task"])
    assert.are.equal(1, s["/v4/fargate/task/stats"])
  end)

  it("build from the tables passed in without asking", function()
    local c = helpers.client(V4)
    local t = vf.decode("v4-task/ecs-exporter-fargate.json")
    local ts = vf.decode("v4-task-stats/ecs-exporter-fargate.json")
    local s = assert(methods.summary(c, { container = t.Containers[3], task = t }))
    assert.are.equal("ecs-exporter", s.container_name)
    assert.are.equal("bae32def0ab64f06818e8862e58f8d6d", s.task_id)
    local r = assert(methods.resource(c, { container = t.Containers[3], task = t }))
    assert.are.equal("fargate", r["aws.ecs.launchtype"])
    local opts = { task = t, task_stats = ts, container = t.Containers[3] }
    assert.are.equal(prometheus.render(t, ts, t.Containers[3]), assert(methods.prometheus(c, opts)))
    assert.are.equal(0, helpers.stats().total)
  end)

  it("ask only for what is not passed in", function()
    local c = helpers.client(V4)
    local container = vf.decode("v4-container/docs-ec2-awsvpc-curl.json")
    local s = assert(methods.summary(c, { container = container }))
    assert.are.equal("curl", s.container_name)
    assert.are.equal("query-metadata", s.family, "the endpoint's task")
    local req = helpers.stats().requests
    assert.are.equal(1, req["/v4/fargate/task"])
    assert.is_nil(req["/v4/fargate"])
  end)

  it("pass every other option to the client's calls", function()
    local c = helpers.client(V4)
    assert(methods.summary(c, { cache_ttl = 0 }))
    assert(methods.summary(c, { cache_ttl = 0 }))
    local req = helpers.stats().requests
    assert.are.equal(2, req["/v4/fargate"], "cache_ttl = 0 reached the client")
    assert.are.equal(2, req["/v4/fargate/task"])
  end)

  it("answer nil, message, code when the client fails, and no partial view", function()
    local off = helpers.client({})
    for name, f in pairs(methods) do
      local v, msg, code = f(off)
      assert.is_nil(v, name)
      assert.are.equal("not_on_ecs", code, name)
      assert.are.equal(name .. ": ", msg:sub(1, #name + 2), msg)
    end
    local broken = helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/fault/404" }, { retries = 0 })
    local v, msg, code, status = methods.prometheus(broken)
    assert.is_nil(v)
    assert.are.equal("http_status", code)
    assert.are.equal(404, status)
    assert.matches("^prometheus: ", msg)
  end)

  it("raise for opts that are not tables", function()
    local c = helpers.client(V4)
    assert.has_error(function() methods.summary(c, "x") end,
                     "bad argument #1 to 'summary' (table expected, got string)")
    assert.has_error(function() methods.prometheus(c, { task_stats = 1 }) end,
                     "bad argument #1 to 'prometheus' (opts.task_stats must be a table, got number)")
    assert.are.equal(0, helpers.stats().total)
  end)
end)
