-- The fields newer agents add pass through untouched: the derived documents
-- of /v4/newer (spec/fixtures/SOURCES.md) through ecs.task and
-- ecs.container, compared value by value with lua-cjson's reading.
local helpers = require "spec.helpers"
local cjson = require "cjson"

local E = helpers.endpoint()

-- True when a and b hold the same values (numbers by value: cjson reads
-- every number as a float, the decoder integers as integers).
local function same(a, b, path)
    if type(a) ~= type(b) then
        return false, path
    end
    if type(a) ~= "table" then
        return a == b, path
    end
    for k, v in pairs(a) do
        local ok, where = same(v, b[k], path .. "." .. tostring(k))
        if not ok then
            return false, where
        end
    end
    for k in pairs(b) do
        if a[k] == nil then
            return false, path .. "." .. tostring(k)
        end
    end
    return true
end

local NEWER = "derived-ecs-exporter-fargate-newer-fields.json"

describe("newer fields", function()
    local c = helpers.client { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/newer" }

    it("pass through the task document untouched", function()
        local t = assert(c:task())
        local ref = cjson.decode(helpers.read("v4-task/" .. NEWER))
        local ok, where = same(ref, t, "task")
        assert.is_true(ok, where)
        assert.are.equal("use1-az6", t.AvailabilityZoneID)
        assert.are.equal("prom-ecs-exporter-sandbox-main", t.ServiceName)
        assert.are.equal("service:prom-ecs-exporter-sandbox-main", t.Group)
        assert.is_true(t.FaultInjectionEnabled)
        assert.are.equal(20496, t.EphemeralStorageMetrics.Reserved)
        assert.are.equal("SYNCHRONIZED", t.ClockDrift.ClockSynchronizationStatus)
        assert.are.equal(3, t.Containers[1].RestartCount)
        local net = t.Containers[2].Networks[1]
        assert.are.equal("2600:1f18:4ae8:400:7ca9:f2:a4c:8285", net.IPv6Addresses[1])
        assert.are.equal("2600:1f18:4ae8:400::/64", net.IPv6SubnetCIDRBlock)
        assert.are.equal("10.0.0.1/17", net.SubnetGatewayIpv4Address)
        assert.are.equal("2600:1f18:4ae8:400::1/64", net.SubnetGatewayIpv6Address)
        if math.type then
            assert.are.equal("integer", math.type(t.Containers[1].RestartCount))
            assert.are.equal("float", math.type(t.ClockDrift.ClockErrorBound))
        end
    end)

    it("pass through the container document untouched", function()
        local ct = assert(c:container())
        local ok, where = same(cjson.decode(helpers.read("v4-container/" .. NEWER)), ct, "container")
        assert.is_true(ok, where)
        assert.are.equal(0, ct.RestartCount)
        assert.are.equal("2600:1f18:4ae8:400::1/64", ct.Networks[1].SubnetGatewayIpv6Address)
        local st = assert(c:container_stats())
        assert.are.equal(ct.DockerId, st.id)
    end)

    it("say where fault injection is enabled, and the region and launch type agree", function()
        local t = assert(c:task())
        assert.is_true(t.FaultInjectionEnabled)
        assert.are.same({ "us-east-1", "TaskARN" }, { c:region() })
        assert.are.same({ "FARGATE", "LaunchType" }, { c:launch_type() })
        -- the older documents have none of them, and nothing is made up
        local old = assert(helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/ec2" }):task())
        assert.is_nil(old.FaultInjectionEnabled)
        assert.is_nil(old.AvailabilityZoneID)
    end)
end)
