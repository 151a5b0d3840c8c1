-- ecs.arn: ARNs taken apart, ECS parts in the current and the old format,
-- and the cluster name out of a task's Cluster.
local helpers = require "spec.helpers"
local core = require "ecs_metadata.core"
local arn = require "ecs_metadata.views.arn"

local parse = arn.parse

-- Every string in a decoded document, depth first.
local function strings(v, out)
  out = out or {}
  if type(v) == "string" then
    out[#out + 1] = v
  elseif type(v) == "table" then
    for k, x in pairs(v) do
      strings(k, out)
      strings(x, out)
    end
  end
  return out
end

describe("ecs.arn", function()
  it("takes a current-format task ARN apart", function()
    assert.are.same({
      partition = "aws", service = "ecs", region = "us-west-2", account = "111122223333",
      resource = "task/default/158d1c8083dd49d6b527399fd6414f5c",
      resource_type = "task", id = "default/158d1c8083dd49d6b527399fd6414f5c",
      cluster = "default", task_id = "158d1c8083dd49d6b527399fd6414f5c",
    }, parse("arn:aws:ecs:us-west-2:111122223333:task/default/158d1c8083dd49d6b527399fd6414f5c"))
  end)

  it("reads the old formats, which have no cluster in them", function()
    local t = assert(parse("arn:aws:ecs:us-west-2:012345678910:task/9781c248-0edd-4cdb-9a93-f63cb662a5d3"))
    assert.are.equal("9781c248-0edd-4cdb-9a93-f63cb662a5d3", t.task_id)
    assert.is_nil(t.cluster)
    local ci = assert(parse("arn:aws:ecs:us-west-2:012345678910:container-instance/"
                            .. "1f73d099-b914-411c-a9ff-81633b7741dd"))
    assert.are.equal("1f73d099-b914-411c-a9ff-81633b7741dd", ci.container_instance_id)
    assert.is_nil(ci.cluster)
    local c = assert(parse("arn:aws:ecs:us-west-2:111122223333:container/"
                           .. "abb51bdd-11b4-467f-8f6c-adcfe1fe059d"))
    assert.are.equal("abb51bdd-11b4-467f-8f6c-adcfe1fe059d", c.container_id)
    assert.is_nil(c.cluster)
    assert.is_nil(c.task_id)
    local s = assert(parse("arn:aws:ecs:us-east-1:123456789012:service/my-service"))
    assert.are.equal("my-service", s.service_name)
    assert.is_nil(s.cluster)
  end)

  it("gives every ECS part of the current formats", function()
    local ci = assert(parse("arn:aws:ecs:us-west-2:012345678910:container-instance/default/"
                            .. "1f73d099-b914-411c-a9ff-81633b7741dd"))
    assert.are.equal("default", ci.cluster)
    assert.are.equal("1f73d099-b914-411c-a9ff-81633b7741dd", ci.container_instance_id)
    local c = assert(parse("arn:aws:ecs:eu-west-1:111222333444:container/mi-cluster/"
                           .. "081d2c75d3a2419d95ab6f8979fb61fb/be452a3e-7694-43fe-ad76-9d91f6a021e1"))
    assert.are.equal("mi-cluster", c.cluster)
    assert.are.equal("081d2c75d3a2419d95ab6f8979fb61fb", c.task_id)
    assert.are.equal("be452a3e-7694-43fe-ad76-9d91f6a021e1", c.container_id)
    local td = assert(parse("arn:aws:ecs:us-west-2:111122223333:task-definition/curltest:26"))
    assert.are.equal("curltest", td.family)
    assert.are.equal("26", td.revision)
    local s = assert(parse("arn:aws:ecs:us-east-1:123456789012:service/prod/web"))
    assert.are.equal("prod", s.cluster)
    assert.are.equal("web", s.service_name)
    local cl = assert(parse("arn:aws:ecs:us-east-1:829490980523:cluster/prom-ecs-exporter-sandbox"))
    assert.are.equal("prom-ecs-exporter-sandbox", cl.cluster)
    local ts = assert(parse("arn:aws:ecs:us-east-1:123456789012:task-set/prod/web/ecs-svc/1234567890"))
    -- A task set's own id has a slash in it.
    assert.are.same({ "prod", "web", "ecs-svc/1234567890" }, { ts.cluster, ts.service_name, ts.task_set_id })
  end)

  it("takes every partition, the ones to come included", function()
    for _, p in ipairs({ "aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-f", "aws-eusc" }) do
      local r = assert(parse("arn:" .. p .. ":ecs:x-region-1:111122223333:cluster/c"), p)
      assert.are.equal(p, r.partition)
      assert.are.equal("c", r.cluster)
    end
    local gov = assert(parse("arn:aws-us-gov:ecs:us-gov-west-1:111122223333:task/c/abc"))
    assert.are.same({ "us-gov-west-1", "c", "abc" }, { gov.region, gov.cluster, gov.task_id })
  end)

  it("parses other services generically", function()
    local role = assert(parse("arn:aws:iam::123456789012:role/ecs-task-role"))
    assert.are.same({ "iam", "role", "ecs-task-role" }, { role.service, role.resource_type, role.id })
    assert.is_nil(role.region)
    local managed = assert(parse("arn:aws:iam::aws:policy/AdministratorAccess"))
    assert.are.equal("aws", managed.account)
    local bucket = assert(parse("arn:aws:s3:::my-bucket"))
    assert.is_nil(bucket.account)
    assert.is_nil(bucket.resource_type)
    assert.are.equal("my-bucket", bucket.id)
    local stream = assert(parse("arn:aws:logs:us-west-1:123456789012:log-group:/ecs/x:log-stream:ecs/c/1"))
    assert.are.same({ "log-group", "/ecs/x:log-stream:ecs/c/1" }, { stream.resource_type, stream.id })
  end)

  it("answers invalid_argument for what is not an ARN", function()
    local bad = {
      "", "arn", "arn:aws:ecs", "task/default/abc", "ARN:aws:ecs:us-west-2:111122223333:task/x",
      "arn:aws:ecs:us-west-2:111122223333:",                         -- no resource
      "arn::ecs:us-west-2:111122223333:task/x",                      -- no partition
      "arn:AWS:ecs:us-west-2:111122223333:task/x",                   -- upper case
      "arn:aws:ecs:us-west-2:&ExampleAWSAccountNo1;:cluster/default", -- unexpanded docs entity
      "arn:aws:iam::123456789:role/ecs-task-role",                   -- 9-digit account (test data)
      "arn:aws:ecs:us-west-2:111122223333:task",                     -- ECS without type/id
      "arn:aws:ecs::111122223333:task/c/x",                          -- ECS without a region
      "arn:aws:ecs:us-west-2:111122223333:task/a/b/c",               -- a task id of no known shape
      "arn:aws:ecs:us-west-2:111122223333:task//x",
      "arn:aws:ecs:us-west-2:111122223333:task-definition/curltest", -- no revision
      "arn:aws:ecs:us-west-2:111122223333:task/c/x\n",
      "arn:aws:ecs:us-west-2:111122223333:task/" .. ("x"):rep(2100),
    }
    for _, s in ipairs(bad) do
      local r, msg, code = parse(s)
      assert.is_nil(r, s)
      assert.are.equal("invalid_argument", code)
      assert.matches("^arn: not an ARN", msg)
      assert.is_nil(msg:find("\n", 1, true), "a message on one line")
    end
  end)

  it("raises for an argument that is not a string", function()
    for _, v in ipairs({ 42, true, {} }) do
      assert.has_error(function() parse(v) end,
                       "bad argument #1 to 'arn' (string expected, got " .. type(v) .. ")")
    end
    assert.has_error(function() parse() end, "bad argument #1 to 'arn' (string expected, got no value)")
  end)

  it("parses every ARN in every fixture, or refuses it cleanly", function()
    local seen, refused = 0, {}
    for _, fx in ipairs(helpers.fixtures()) do
      local doc = core.decode(fx.body)
      for _, s in ipairs(doc and strings(doc) or {}) do
        for candidate in s:gmatch("arn:[%w%-]+:[^%s\"]+") do
          seen = seen + 1
          local r, msg, code = parse(candidate)
          if r then
            assert.are.equal(candidate, "arn:" .. r.partition .. ":" .. r.service .. ":"
                             .. (r.region or "") .. ":" .. (r.account or "") .. ":" .. r.resource)
          else
            assert.are.equal("invalid_argument", code, msg)
            refused[candidate] = true
          end
        end
      end
    end
    assert.is_true(seen > 100)
    -- Exactly the two broken ones the fixtures carry (SOURCES.md).
    local list = {}
    for s in pairs(refused) do list[#list + 1] = s end
    table.sort(list)
    assert.are.same({
      "arn:aws:ecs:us-west-2:&ExampleAWSAccountNo1;:cluster/default",
      "arn:aws:ecs:us-west-2:&ExampleAWSAccountNo1;:task/default/febee046097849aba589d4435207c04a",
      "arn:aws:iam::123456789:role/ecs-task-role",
    }, list)
  end)
end)

describe("the cluster name", function()
  it("is the bare name on EC2 and the ARN's on Fargate", function()
    local ec2 = assert(core.decode(helpers.fixture("v4-task/ecs-exporter-ec2.json").body))
    local fargate = assert(core.decode(helpers.fixture("v4-task/ecs-exporter-fargate.json").body))
    assert.are.equal("prom-ecs-exporter-sandbox", ec2.Cluster)
    assert.are.equal("arn:aws:ecs:us-east-1:829490980523:cluster/prom-ecs-exporter-sandbox", fargate.Cluster)
    assert.are.equal("prom-ecs-exporter-sandbox", arn.cluster_name(ec2.Cluster))
    assert.are.equal("prom-ecs-exporter-sandbox", arn.cluster_name(fargate.Cluster))
  end)

  it("refuses what is neither", function()
    for _, s in ipairs({ "", "my cluster", ("c"):rep(256), "arn:aws:ecs:us-west-2:111122223333:task/c/x",
                         "arn:aws:ecs:us-west-2:&ExampleAWSAccountNo1;:cluster/default" }) do
      local name, msg, code = arn.cluster_name(s)
      assert.is_nil(name, s)
      assert.are.equal("invalid_argument", code)
      assert.matches("^cluster_name: ", msg)
    end
    assert.has_error(function() arn.cluster_name(nil) end,
                     "bad argument #1 to 'cluster_name' (string expected, got no value)")
  end)
end)
