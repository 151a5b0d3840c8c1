-- ecs.region and ecs.launch_type through a client: which source answers,
-- what is asked of the endpoint (nothing when a variable answers), the
-- metadata file as the only source, the failures, misuse.
local helpers = require "spec.helpers"
local ecs = require "ecs_metadata"

local E = helpers.endpoint()
local client = helpers.client

local requests = helpers.requests

describe("ecs.region", function()
    before_each(helpers.reset)

    it("takes AWS_REGION, then AWS_DEFAULT_REGION, without a request", function()
        local env = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate",
                      AWS_REGION = "eu-central-1", AWS_DEFAULT_REGION = "us-east-1" }
        assert.are.same({ "eu-central-1", "AWS_REGION" }, { client(env):region() })
        env.AWS_REGION = ""                       -- empty counts as unset
        assert.are.same({ "us-east-1", "AWS_DEFAULT_REGION" }, { client(env):region() })
        assert.are.equal(0, helpers.stats().total)
    end)

    it("then reads the task's ARN, through the task's cache", function()
        local c = client { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/ec2" }
        assert.are.same({ "us-west-2", "TaskARN" }, { c:region() })
        assert.are.same({ "us-west-2", "TaskARN" }, { c:region() })
        assert(c:task())
        assert.are.equal(1, requests("/v4/ec2/task"))
        -- with options too, checked as region's
        assert.are.same({ "us-west-2", "TaskARN" }, { c:region { cache_ttl = 0 } })
        assert.are.equal(2, requests("/v4/ec2/task"))
        assert.are.same({ "eu-west-1", "TaskARN" },
                        { client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/managed" }):region() })
    end)

    it("reads the container metadata file where it is the only source", function()
        local path = helpers.fixture_root() .. "/metadata-file/docs-ready-bridge.json"
        local c = client { ECS_CONTAINER_METADATA_FILE = path }
        assert.are.same({ "us-west-2", "TaskARN" }, { c:region() })
        assert.are.equal(0, helpers.stats().total)
    end)

    it("reads v3's task too, and an ARN whatever its account says", function()
        -- The base is the fixture server here: its /task is that document.
        local c = client { ECS_CONTAINER_METADATA_URI =
            E .. "/each/v4-task/docs-2020-fargate-unexpanded-account-entity" }
        local r, src = c:region()
        assert.are.equal("TaskARN", src)
        assert.are.equal("us-west-2", r)
        local v3 = client { ECS_CONTAINER_METADATA_URI =
            E .. "/each/v3-task/docs-2018-ec2-awsvpc-nginx-no-az" }
        assert.are.same({ "us-west-2", "TaskARN" }, { v3:region() })
        assert.are.equal(1, requests("/each/v3-task/docs-2018-ec2-awsvpc-nginx-no-az/task"))
    end)

    it("passes the task's failure on, saying what it looked at", function()
        local v, msg, code, status = client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/fault/500" }):region()
        assert.is_nil(v)
        assert.are.same({ "http_status", 500 }, { code, status })
        assert.matches("^region: neither AWS_REGION nor AWS_DEFAULT_REGION is set, and task: GET ", msg)
        v, msg, code = client({}):region()
        assert.is_nil(v)
        assert.are.equal("not_on_ecs", code)
        assert.matches("^region: neither AWS_REGION nor AWS_DEFAULT_REGION is set, and task: not on ECS", msg)
        v, msg, code = client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/each/v4-stats/docs-ec2-awsvpc-curl" })
            :region()
        assert.is_nil(v)
        assert.are.equal("bad_json", code)
        assert.matches("has no TaskARN or AvailabilityZone that names a region", msg, 1, true)
    end)

    it("checks its options as region's, and raises for misuse", function()
        local c = client { AWS_REGION = "eu-west-1" }
        local v, msg, code = c:region { timeout = 0 }
        assert.is_nil(v)
        assert.are.equal("invalid_argument", code)
        assert.matches("^region: timeout ", msg)
        local ok, err = pcall(c.region, c, { regoin = 1 })
        assert.is_false(ok)
        assert.matches("bad argument #1 to 'region' (unknown option 'regoin'", err, 1, true)
        ok, err = pcall(function() return ecs.region(5) end)
        assert.is_false(ok)
        assert.matches("64%-region_spec%.lua:%d+: bad argument #1 to 'region' %(table expected", err)
    end)

    it("is a function of the module, reading the real environment", function()
        local out, status, err = helpers.run_lua([[
            local ecs = require "ecs_metadata"
            print(ecs.region())
            print(ecs.launch_type())
        ]], { AWS_REGION = false, AWS_DEFAULT_REGION = "ap-south-1", AWS_EXECUTION_ENV = "AWS_ECS_FARGATE",
              ECS_CONTAINER_METADATA_URI_V4 = false, ECS_CONTAINER_METADATA_URI = false,
              ECS_CONTAINER_METADATA_FILE = false })
        assert.are.equal(0, status, err)
        assert.are.equal("ap-south-1\tAWS_DEFAULT_REGION\nFARGATE\tAWS_EXECUTION_ENV\n", out)
    end)
end)

describe("ecs.launch_type", function()
    before_each(helpers.reset)

    it("tells Managed Instances apart, from AWS_EXECUTION_ENV without a request", function()
        local c = client { AWS_EXECUTION_ENV = "AWS_ECS_MANAGED_INSTANCES",
                           ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate" }
        assert.are.same({ "MANAGED_INSTANCES", "AWS_EXECUTION_ENV" }, { c:launch_type() })
        assert.are.equal(0, helpers.stats().total)
    end)

    it("or from the task's LaunchType", function()
        local c = client { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/managed" }
        assert.are.same({ "MANAGED_INSTANCES", "LaunchType" }, { c:launch_type() })
        c = client { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/ec2", AWS_EXECUTION_ENV = "AWS_Lambda_java21" }
        assert.are.same({ "EC2", "LaunchType" }, { c:launch_type() })
        assert.are.same({ "FARGATE", "LaunchType" },
                        { client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/newer" }):launch_type() })
    end)

    it("gives no guess where there is nothing to read", function()
        local v, msg, code = client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate" }):launch_type()
        assert.is_nil(v)
        assert.are.equal("bad_json", code)
        assert.matches("the task document has no LaunchType", msg, 1, true)
        v, msg, code = client({}):launch_type()
        assert.is_nil(v)
        assert.are.equal("not_on_ecs", code)
        assert.matches("^launch_type: ", msg)
        local ok, err = pcall(function() return ecs.launch_type { versoin = "v4" } end)
        assert.is_false(ok)
        assert.matches("unknown option 'versoin' (did you mean 'version'?)", err, 1, true)
    end)
end)
