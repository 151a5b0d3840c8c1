-- ecs.resource: OpenTelemetry resource attributes by the semantic
-- conventions, without the official detectors' mistakes.
local vf = require "spec.views_fixtures"
local resource = require "ecs_metadata.views.resource"

local build = resource.resource

describe("ecs.resource", function()
  it("describes an EC2 awsvpc container and its task", function()
    local c = vf.decode("v4-container/docs-ec2-awsvpc-curl.json")
    local t = vf.decode("v4-task/docs-ec2-awsvpc-curltest.json")
    local group, stream = "/ecs/metadata", "ecs/curl/8f03e41243824aea923aca126495f665"
    assert.are.same({
      ["cloud.provider"] = "aws",
      ["cloud.platform"] = "aws_ecs",
      ["cloud.region"] = "us-west-2",
      ["cloud.account.id"] = "111122223333",
      ["cloud.availability_zone"] = "us-west-2d",
      ["cloud.resource_id"] = "arn:aws:ecs:us-west-2:111122223333:container/"
        .. "0206b271-b33f-47ab-86c6-a0ba208a70a9",
      ["aws.ecs.cluster.arn"] = "arn:aws:ecs:us-west-2:111122223333:cluster/default",
      ["aws.ecs.task.arn"] = "arn:aws:ecs:us-west-2:111122223333:task/default/"
        .. "158d1c8083dd49d6b527399fd6414f5c",
      ["aws.ecs.task.id"] = "158d1c8083dd49d6b527399fd6414f5c",
      ["aws.ecs.task.family"] = "curltest",
      ["aws.ecs.task.revision"] = "26",
      ["aws.ecs.launchtype"] = "ec2",
      ["aws.log.group.names"] = { group },
      ["aws.log.group.arns"] = { "arn:aws:logs:us-west-2:111122223333:log-group:" .. group .. ":*" },
      ["aws.log.stream.names"] = { stream },
      ["aws.log.stream.arns"] = { "arn:aws:logs:us-west-2:111122223333:log-group:" .. group
                                  .. ":log-stream:" .. stream },
      ["container.id"] = "ea32192c8553fbff06c9340478a2ff089b2bb5646fb718b4ee206641c9086d66",
      ["container.name"] = "ecs-curltest-24-curl-cca48e8dcadd97805600",
      ["container.image.name"] = "111122223333.dkr.ecr.us-west-2.amazonaws.com/curltest",
      ["container.image.tags"] = { "latest" },
      ["container.image.id"] = "sha256:d691691e9652791a60114e67b365688d20d19940dde7c4736ea30e660d8d3553",
    }, build(c, t))
  end)

  it("puts the container instance's ARN in aws.ecs.container.arn, never the container's", function()
    local t = vf.decode("v4-task/ecs-exporter-fargate.json")
    local r = build(t.Containers[3], t)
    assert.is_string(t.Containers[3].ContainerARN)
    assert.is_nil(r["aws.ecs.container.arn"], "Fargate has no container instance")
    assert.are.equal(t.Containers[3].ContainerARN, r["cloud.resource_id"])
    local file = build(vf.decode("metadata-file/docs-ready-bridge.json"))
    assert.are.equal("arn:aws:ecs:us-west-2:012345678910:container-instance/default/"
                     .. "1f73d099-b914-411c-a9ff-81633b7741dd", file["aws.ecs.container.arn"])
  end)

  it("builds ARNs in the task's own partition", function()
    for partition, region in pairs({ ["aws-cn"] = "cn-north-1", ["aws-us-gov"] = "us-gov-west-1",
                                     ["aws-iso-b"] = "us-isob-east-1" }) do
      local t = { Cluster = "prod", LaunchType = "EC2",
                  TaskARN = "arn:" .. partition .. ":ecs:" .. region .. ":111122223333:task/prod/abc" }
      local c = { DockerId = "d", Name = "app", LogDriver = "awslogs",
                  LogOptions = { ["awslogs-group"] = "g", ["awslogs-stream"] = "s/app/abc",
                                 ["awslogs-region"] = region } }
      local r = build(c, t)
      assert.are.equal("arn:" .. partition .. ":ecs:" .. region .. ":111122223333:cluster/prod",
                       r["aws.ecs.cluster.arn"])
      assert.are.same({ "arn:" .. partition .. ":logs:" .. region .. ":111122223333:log-group:g:*" },
                      r["aws.log.group.arns"])
      assert.are.same({ "arn:" .. partition .. ":logs:" .. region .. ":111122223333:log-group:g"
                        .. ":log-stream:s/app/abc" }, r["aws.log.stream.arns"])
      assert.are.equal(region, r["cloud.region"])
      assert.are.equal("abc", r["aws.ecs.task.id"])
    end
  end)

  it("gives only the convention's launch types", function()
    local function launch(lt)
      return build(nil, { LaunchType = lt, TaskARN = "arn:aws:ecs:us-east-1:111122223333:task/c/t" })
        ["aws.ecs.launchtype"]
    end
    assert.are.equal("ec2", launch("EC2"))
    assert.are.equal("ec2", launch("ec2"))
    assert.are.equal("fargate", launch("FARGATE"))
    assert.is_nil(launch("MANAGED_INSTANCES"))
    assert.is_nil(launch("EXTERNAL"))
    local mi = vf.decode("v4-task/otel-collector-managed-instances-tasks-array-no-networks.json")[2]
    assert.is_nil(build(mi.Containers[1], mi)["aws.ecs.launchtype"])
  end)

  it("splits image names from tags and digests", function()
    local function image(s)
      local r = build({ DockerId = "d", Image = s })
      return r["container.image.name"], r["container.image.tags"]
    end
    assert.are.same({ "mreferre/eksutils" }, { image("mreferre/eksutils") })
    assert.are.same({ "localhost:5000/app" }, { image("localhost:5000/app") })
    assert.are.same({ "localhost:5000/app", { "v2" } }, { image("localhost:5000/app:v2") })
    assert.are.same({ "repo/app", { "1.2" } }, { image("repo/app:1.2@sha256:" .. ("ab"):rep(32)) })
    assert.are.same({ "repo/app" }, { image("repo/app@sha256:" .. ("ab"):rep(32)) })
    assert.are.same({ "quay.io/prometheuscommunity/ecs-exporter", { "main" } },
                    { image("quay.io/prometheuscommunity/ecs-exporter:main") })
  end)

  it("takes container.id from DockerId as the endpoint gives it", function()
    local t = vf.decode("v4-task/datadog-agent-task-with-tags-health-snapshotter.json")
    for _, c in ipairs(t.Containers) do
      assert.are.equal(c.DockerId, build(c, t)["container.id"])
    end
  end)

  it("computes on every container and task the fixtures carry, leaving them as they were", function()
    local function check(c, t, what)
      local before_c, before_t = vf.copy(c), vf.copy(t)
      for k, v in pairs(build(c, t)) do
        assert.is_string(k)
        if type(v) == "table" then
          assert.is_true(#v >= 1, what .. " " .. k)
          for _, s in ipairs(v) do assert.is_string(s, what .. " " .. k) end
        else
          assert.is_string(v, what .. " " .. k)
        end
      end
      assert.are.same(before_c, c, what)
      assert.are.same(before_t, t, what)
    end
    for _, e in ipairs(vf.tasks()) do
      check(nil, e.task, e.rel)
      for i, c in ipairs(e.task.Containers or {}) do
        check(c, e.task, e.rel .. " container " .. i)
      end
    end
    for _, e in ipairs(vf.containers()) do
      check(e.container, nil, e.rel)
    end
  end)

  it("raises for what is not a document", function()
    assert.has_error(function() build(1) end, "bad argument #1 to 'resource' (table expected, got number)")
  end)
end)
