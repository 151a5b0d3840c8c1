-- ecs.summary: the flat table to log, from a container's and a task's
-- documents. Expected values are read off the documents in this file.
local vf = require "spec.views_fixtures"
local summary = require "ecs_metadata.views.summary"

local build = summary.build

describe("ecs.summary", function()
  it("summarises an EC2 awsvpc container and its task", function()
    local c = vf.decode("v4-container/docs-ec2-awsvpc-curl.json")
    local t = vf.decode("v4-task/docs-ec2-awsvpc-curltest.json")
    assert.are.same({
      cluster = "default",
      -- Cluster is a bare name on EC2: the ARN is built from the task ARN's parts.
      cluster_arn = "arn:aws:ecs:us-west-2:111122223333:cluster/default",
      task_arn = "arn:aws:ecs:us-west-2:111122223333:task/default/158d1c8083dd49d6b527399fd6414f5c",
      task_id = "158d1c8083dd49d6b527399fd6414f5c",
      family = "curltest", revision = "26", task_definition = "curltest" .. ":" .. "26",
      launch_type = "EC2",
      availability_zone = "us-west-2d",
      partition = "aws", region = "us-west-2", account = "111122223333",
      service_name = "MyService", vpc_id = "vpc-1234567890abcdef0",
      container_name = "curl",
      docker_id = "ea32192c8553fbff06c9340478a2ff089b2bb5646fb718b4ee206641c9086d66",
      docker_name = "ecs-curltest-24-curl-cca48e8dcadd97805600",
      container_arn = "arn:aws:ecs:us-west-2:111122223333:container/0206b271-b33f-47ab-86c6-a0ba208a70a9",
      image = "111122223333.dkr.ecr.us-west-2.amazonaws.com/curltest:latest",
      image_id = "sha256:d691691e9652791a60114e67b365688d20d19940dde7c4736ea30e660d8d3553",
      log_driver = "awslogs",
      awslogs_group = "/ecs/metadata", awslogs_region = "us-west-2",
      awslogs_stream = "ecs/curl/8f03e41243824aea923aca126495f665",
      network_mode = "awsvpc", private_ipv4 = "10.0.2.100",
      ipv4_subnet_cidr = "10.0.2.0/24", subnet_gateway_ipv4 = "10.0.2.1/24",
      private_dns_name = "ip-10-0-2-100.us-west-2.compute.internal",
      mac_address = "0e:9e:32:c7:48:85",
    }, build(c, t))
  end)

  it("summarises a Fargate container: the cluster out of its ARN, no empty gateway", function()
    local c = vf.decode("v4-container/docs-2020-fargate-query-metadata.json")
    local t = vf.decode("v4-task/docs-2020-fargate-query-metadata.json")
    local s = build(c, t)
    assert.are.equal("default", s.cluster)
    assert.are.equal("arn:aws:ecs:us-west-2:111122223333:cluster/default", s.cluster_arn)
    assert.are.equal("febee046097849aba589d4435207c04a", s.task_id)
    assert.are.equal("query-metadata:7", s.task_definition)
    assert.are.equal("us-west-2c", s.availability_zone)
    assert.are.equal("mreferre/eksutils", s.image)
    assert.is_nil(s.subnet_gateway_ipv4)   -- "SubnetGatewayIpv4Address": ""
    assert.is_nil(s.launch_type)           -- the 2020 example has no LaunchType
    assert.is_nil(s.log_driver)
  end)

  it("gives both IPv6 addresses and the container's awslogs options (Fargate 2025)", function()
    local t = vf.decode("v4-task/ecs-exporter-fargate.json")
    local s = build(t.Containers[3], t)
    assert.are.equal("ecs-exporter", s.container_name)
    assert.are.equal("FARGATE", s.launch_type)
    assert.are.equal("10.0.117.145", s.private_ipv4)
    assert.are.equal("2600:1f18:4ae8:400:7ca9:f2:a4c:8285", s.private_ipv6)
    assert.are.equal("2600:1f18:4ae8:400::/64", s.ipv6_subnet_cidr)
    assert.are.equal("10.0.0.1/17", s.subnet_gateway_ipv4)
    assert.are.equal("ecs-exporter/ecs-exporter/bae32def0ab64f06818e8862e58f8d6d", s.awslogs_stream)
    assert.are.equal("us-east-1", s.awslogs_region)
    -- The second container logs nowhere: no awslogs fields.
    local other = build(t.Containers[2], t)
    assert.is_nil(other.log_driver)
    assert.is_nil(other.awslogs_group)
  end)

  it("gives the newer agents' fields: zone id, service, group, IPv6 gateway", function()
    local t = vf.decode("v4-task/derived-ecs-exporter-fargate-newer-fields.json")
    local s = build(vf.decode("v4-container/derived-ecs-exporter-fargate-newer-fields.json"), t)
    assert.are.equal("use1-az6", s.availability_zone_id)
    assert.are.equal("prom-ecs-exporter-sandbox-main", s.service_name)
    assert.are.equal("service:prom-ecs-exporter-sandbox-main", s.group)
    assert.are.equal("2600:1f18:4ae8:400::1/64", s.subnet_gateway_ipv6)
    assert.are.equal("ecs-exporter", s.container_name)
  end)

  it("reads both spellings of the IPv6 gateway", function()
    for _, key in ipairs({ "SubnetGatewayIpv6Address", "SubnetGatewayIPv6Address" }) do
      local net = { NetworkMode = "awsvpc", [key] = "2600:1f18:4ae8:400::1/64" }
      local c = { Name = "app", Networks = { net } }
      assert.are.equal("2600:1f18:4ae8:400::1/64", build(c).subnet_gateway_ipv6, key)
    end
  end)

  it("gives awslogs options only when the log driver is awslogs", function()
    local c = { Name = "app", LogDriver = "awsfirelens",
                LogOptions = { ["awslogs-group"] = "g", ["awslogs-stream"] = "s" } }
    local s = build(c)
    assert.are.equal("awsfirelens", s.log_driver)
    assert.is_nil(s.awslogs_group)
    assert.is_nil(s.awslogs_stream)
  end)

  it("spells the launch type as AWS does", function()
    local t = vf.decode("v4-task/otel-collector-ecsutil-bridge-stopped-exitcode-3.json")
    assert.are.equal("ec2", t.LaunchType)
    assert.are.equal("EC2", build(nil, t).launch_type)
    local mi = vf.decode("v4-task/otel-collector-managed-instances-tasks-array-no-networks.json")[1]
    local s = build(mi.Containers[1], mi)
    assert.are.equal("MANAGED_INSTANCES", s.launch_type)
    assert.are.equal("mi-cluster", s.cluster)
    assert.are.equal("daemon:app-monitor", s.group)
    assert.are.equal("eu-west-1", s.region)
    assert.are.equal("111222333444", s.account)
    assert.are.equal("daemon-app-monitor:2", s.task_definition)
    assert.is_nil(s.network_mode)          -- Managed Daemon containers have no Networks
  end)

  it("reads the container metadata file, with no task document", function()
    local s = build(vf.decode("metadata-file/docs-ready-bridge.json"))
    assert.are.same({
      cluster = "default",
      cluster_arn = "arn:aws:ecs:us-west-2:012345678910:cluster/default",
      task_arn = "arn:aws:ecs:us-west-2:012345678910:task/default/2b88376d-aba3-4950-9ddf-bcb0f388a40c",
      task_id = "2b88376d-aba3-4950-9ddf-bcb0f388a40c",
      family = "console-sample-app-static", revision = "1",
      task_definition = "console-sample-app-static:1",
      container_instance_arn = "arn:aws:ecs:us-west-2:012345678910:container-instance/default/"
        .. "1f73d099-b914-411c-a9ff-81633b7741dd",
      container_name = "simple-app",
      docker_id = "aec2557997f4eed9b280c2efd7afccdcedfda4ac399f7480cae870cfc7e163fd",
      docker_name = "ecs-console-sample-app-static-1-simple-app-e4e8e495e8baa5de1a00",
      image = "httpd:2.4",
      image_id = "sha256:2ae34abc2ed0a22e280d17e13f9c01aaf725688b09b7a1525d1a2750e2c0d1de",
      -- The document's own AZ, although its ARNs say us-west-2 (SOURCES.md).
      availability_zone = "us-east-1b",
      partition = "aws", region = "us-west-2", account = "012345678910",
      network_mode = "bridge", private_ipv4 = "192.0.2.0",
    }, s)
  end)

  it("takes an old-format task ARN and a v2 task without a launch type", function()
    local t = vf.decode("v2-metadata/datadog-integrations-fargate-2017-pause-container.json")
    local s = build(nil, t)
    assert.are.equal("648ca535-cbe0-4de7-b102-28e50b81e888", s.task_id)
    assert.are.equal("pierrem-test-fargate", s.cluster)
    assert.are.equal("arn:aws:ecs:eu-west-1:172597598159:cluster/pierrem-test-fargate", s.cluster_arn)
    assert.are.equal("redis-datadog:1", s.task_definition)
    assert.is_nil(s.container_name)
  end)

  it("finds the task in a container's labels when there is no task document", function()
    local s = build(vf.decode("v3-container/docs-ec2-awsvpc-nginx-curl.json"))
    assert.is_string(s.task_arn)
    assert.is_string(s.task_id)
    assert.is_string(s.family)
    assert.are.equal(s.family .. ":" .. s.revision, s.task_definition)
  end)

  it("leaves out what a broken ARN would give, keeps what the document says", function()
    local t = vf.decode("v4-task/docs-2020-fargate-unexpanded-account-entity.json")
    local s = build(nil, t)
    assert.are.equal(t.TaskARN, s.task_arn)
    assert.is_nil(s.task_id)
    assert.is_nil(s.account)
    assert.is_nil(s.region)
    assert.is_nil(s.cluster)
  end)

  it("computes on every container and task the fixtures carry, leaving them as they were", function()
    local n = 0
    local function check(c, t, what)
      local before_c, before_t = vf.copy(c), vf.copy(t)
      local s = build(c, t)
      for k, v in pairs(s) do
        assert.is_string(k, what)
        assert.is_string(v, what .. " " .. k)
        assert.are_not.equal("", v, what .. " " .. k)
      end
      assert.are.same(before_c, c, what)
      assert.are.same(before_t, t, what)
      n = n + 1
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
    assert.is_true(n > 60)
  end)

  it("raises for what is not a document", function()
    assert.has_error(function() build() end,
                     "bad argument #1 to 'summary' (a container or a task document expected, got neither)")
    assert.has_error(function() build("x") end, "bad argument #1 to 'summary' (table expected, got string)")
    assert.has_error(function() build(nil, 1) end,
                     "bad argument #2 to 'summary' (table expected, got number)")
  end)
end)
