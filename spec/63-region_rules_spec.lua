-- The region chain (ecs_metadata.region) and launch type detection
-- (ecs_metadata.launch_type), without a client: the order of the sources,
-- what each one gives, and what is refused. The documents are the fixtures.
local helpers = require "spec.helpers"
local region = require "ecs_metadata.region"
local launch_type = require "ecs_metadata.launch_type"
local cjson = require "cjson"

local function env(t)
    return function(name)
        local v = t[name]
        if v == "" then
            return nil
        end
        return v
    end
end

local function doc(rel)
    return cjson.decode(helpers.read(rel))
end

local function never()
    error("fetched the task when it was not needed")
end

describe("region", function()
    it("takes AWS_REGION, then AWS_DEFAULT_REGION, before any request", function()
        assert.are.same({ "eu-west-3", "AWS_REGION" },
            { region.resolve(env { AWS_REGION = "eu-west-3", AWS_DEFAULT_REGION = "us-east-1" }, never) })
        assert.are.same({ "us-east-1", "AWS_DEFAULT_REGION" },
            { region.resolve(env { AWS_DEFAULT_REGION = "us-east-1" }, never) })
        -- taken as they are, like the SDKs do
        assert.are.same({ "xx-made-up-9", "AWS_REGION" },
            { region.resolve(env { AWS_REGION = "xx-made-up-9" }, never) })
    end)

    it("then the TaskARN's region, then the AvailabilityZone's", function()
        local function from(t)
            return { region.resolve(env {}, function() return t end) }
        end
        assert.are.same({ "us-west-2", "TaskARN" }, from(doc("v4-task/docs-ec2-awsvpc-curltest.json")))
        assert.are.same({ "eu-west-1", "TaskARN" },
            from(doc("v4-task/otel-collector-managed-instances-tasks-array-no-networks.json")[1]))
        assert.are.same({ "us-east-2", "AvailabilityZone" },
            from({ TaskARN = "arn:aws:ecs:<region>:1:task/x", AvailabilityZone = "us-east-2b" }))
        assert.are.same({ "us-west-2", "AvailabilityZone" }, from({ AvailabilityZone = "us-west-2-lax-1a" }))
        -- the metadata file has both too
        assert.are.same({ "us-west-2", "TaskARN" }, from(doc("metadata-file/docs-ready-bridge.json")))
    end)

    it("says when no source names a region", function()
        local v, msg, code = region.resolve(env {}, function()
            return doc("v3-task/docs-2018-ec2-awsvpc-nginx-no-az.json") and { Cluster = "x" }
        end)
        assert.is_nil(v)
        assert.are.equal("bad_json", code)
        assert.matches("^region: neither AWS_REGION nor AWS_DEFAULT_REGION is set, and the task "
            .. "document has no TaskARN or AvailabilityZone", msg)
    end)

    it("passes the task's failure on, after saying what it looked at", function()
        local v, msg, code, status = region.resolve(env {}, function()
            return nil, "task: not on ECS: none of ... is set", "not_on_ecs"
        end)
        assert.is_nil(v)
        assert.are.equal("not_on_ecs", code)
        assert.is_nil(status)
        assert.are.equal("region: neither AWS_REGION nor AWS_DEFAULT_REGION is set, and task: "
            .. "not on ECS: none of ... is set", msg)
        v, msg, code, status = region.resolve(env {}, function()
            return nil, "GET x: HTTP 500", "http_status", 500
        end)
        assert.are.same({ "http_status", 500 }, { code, status })
        assert.is_nil(v)
        assert.is_string(msg)
    end)

    it("reads ARNs and zones of every partition", function()
        assert.are.equal("us-gov-west-1", region.of_arn("arn:aws-us-gov:ecs:us-gov-west-1:1:task/c/x"))
        assert.are.equal("cn-northwest-1", region.of_arn("arn:aws-cn:ecs:cn-northwest-1:1:task/x"))
        assert.are.equal("eu-isoe-west-1", region.of_arn("arn:aws-iso-e:ecs:eu-isoe-west-1:1:task/x"))
        for _, bad in ipairs { "arn:aws:ecs::1:task/x", "arn:aws:ecs:US-EAST-1:1:task/x", "task/x",
                               "arn:aws:ecs:us-east-1", 7 } do
            assert.is_nil(region.of_arn(bad), tostring(bad))
        end
        local zones = {
            ["us-east-1a"] = "us-east-1", ["ap-southeast-2c"] = "ap-southeast-2",
            ["us-gov-west-1a"] = "us-gov-west-1", ["us-west-2-lax-1a"] = "us-west-2",
            ["us-east-1-wl1-bos-wlz-1"] = "us-east-1", ["cn-north-1b"] = "cn-north-1",
        }
        for az, r in pairs(zones) do
            assert.are.equal(r, region.of_az(az), az)
        end
        for _, bad in ipairs { "use1-az6", "us-east-1", "local", "", "us-east-1A" } do
            assert.is_nil(region.of_az(bad), bad)
        end
    end)

    it("reads the region of every task document in the fixtures", function()
        local n = 0
        for _, f in ipairs(helpers.fixtures()) do
            if f.dir:match("task$") or f.dir == "metadata-file" then
                local d = cjson.decode(f.body)
                for _, t in ipairs(d[1] and d or { d }) do
                    local r, src = region.resolve(env {}, function() return t end)
                    if t.TaskARN and not t.TaskARN:find("&", 1, true) then
                        assert.are.equal("TaskARN", src, f.rel)
                        assert.is_true(region.region_like(r), f.rel)
                        n = n + 1
                    end
                end
            end
        end
        assert.is_true(n > 20)
    end)
end)

describe("launch_type", function()
    it("takes AWS_EXECUTION_ENV first, without a request", function()
        for v, lt in pairs {
            AWS_ECS_EC2 = "EC2", AWS_ECS_FARGATE = "FARGATE",
            AWS_ECS_MANAGED_INSTANCES = "MANAGED_INSTANCES",
        } do
            assert.are.same({ lt, "AWS_EXECUTION_ENV" },
                            { launch_type.resolve(env { AWS_EXECUTION_ENV = v }, never) })
        end
    end)

    it("then the task's LaunchType, upper case", function()
        local function from(e, t)
            return { launch_type.resolve(env(e), function() return t end) }
        end
        local mi = doc("v4-task/otel-collector-managed-instances-tasks-array-no-networks.json")[1]
        assert.are.same({ "MANAGED_INSTANCES", "LaunchType" }, from({}, mi))
        -- another runtime's value says nothing about ECS
        assert.are.same({ "MANAGED_INSTANCES", "LaunchType" },
                        from({ AWS_EXECUTION_ENV = "AWS_Lambda_python3.12" }, mi))
        assert.are.same({ "FARGATE", "LaunchType" }, from({}, doc("v4-task/ecs-exporter-fargate.json")))
        assert.are.same({ "EC2", "LaunchType" },
                        from({}, doc("v4-task/otel-collector-ecsutil-bridge-stopped-exitcode-3.json")))
    end)

    it("gives no guess for a task without LaunchType", function()
        local v, msg, code = launch_type.resolve(env {}, function()
            return doc("v4-task/otel-collector-ec2-bridge-three-nginx.json")
        end)
        assert.is_nil(v)
        assert.are.equal("bad_json", code)
        assert.are.equal("launch_type: AWS_EXECUTION_ENV names no ECS launch type, and the task "
            .. "document has no LaunchType", msg)
        v, msg, code = launch_type.resolve(env {}, function()
            return nil, "task: not on ECS: x", "not_on_ecs"
        end)
        assert.is_nil(v)
        assert.are.equal("not_on_ecs", code)
        assert.are.equal("launch_type: AWS_EXECUTION_ENV names no ECS launch type, and task: "
            .. "not on ECS: x", msg)
        assert.is_nil(launch_type.of_task({ LaunchType = "EC2; x" }))
    end)
end)
