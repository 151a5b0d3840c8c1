-- The test endpoint's routes for the newer agents (endpoint/README.md):
-- Managed Instances daemon tasks, v3 and v2 tags, the derived documents with
-- the newer fields, fault injection with the agent's checks and rate limit,
-- and the newer credentials forms. Checked with plain curl, so that a fault
-- in the endpoint is not mistaken for one in the client.
local helpers = require "spec.helpers"
local cjson = require "cjson"

local E = helpers.endpoint()

local function q(s)
    return "'" .. s:gsub("'", [['\'']]) .. "'"
end

-- curl with the given arguments: status, headers (lowercase names), body.
local function curl(args)
    local hdr, body = os.tmpname(), os.tmpname()
    -- Not the sanitizer runtime of a SANITIZE=1 build (curl deadlocks with it).
    local p = assert(io.popen("env -u LD_PRELOAD curl -sS --max-time 30 -D " .. q(hdr)
        .. " -o " .. q(body) .. " " .. args .. " 2>/dev/null; echo $?"))
    p:read("*a")
    p:close()
    local function slurp(path)
        local f = io.open(path, "rb")
        local s = f and f:read("*a") or ""
        if f then f:close() end
        os.remove(path)
        return s
    end
    local raw, data = slurp(hdr), slurp(body)
    local headers = {}
    for name, value in raw:gmatch("([%w-]+):%s*([^\r\n]*)") do
        headers[name:lower()] = value
    end
    return tonumber(raw:match("^HTTP/[%d.]+ (%d%d%d)")), headers, data
end

local function get(path, extra)
    return curl((extra or "") .. " " .. q(E .. path))
end

local function post(path, body)
    return curl("-X POST " .. (body and ("--data-binary " .. q(body)) or "") .. " "
                .. q(E .. path))
end

local function fixture(rel)
    return helpers.read(rel)
end

describe("test endpoint, newer agents", function()
    before_each(function()
        helpers.reset()
    end)

    describe("Managed Instances daemon tasks", function()
        local TASKS = "v4-task/otel-collector-managed-instances-tasks-array-no-networks.json"
        local STATS = "v4-task-stats/otel-collector-managed-instances-tasks-stats-array.json"

        it("serves /tasks and /tasks/stats as arrays, byte for byte", function()
            local status, headers, body = get("/v4/managed/tasks")
            assert.are.equal(200, status)
            assert.are.equal("application/json", headers["content-type"])
            assert.is_true(fixture(TASKS) == body)
            status, headers, body = get("/v4/managed/tasks/stats")
            assert.are.equal("application/json", headers["content-type"])
            assert.are.equal(200, status)
            assert.is_true(fixture(STATS) == body)
        end)

        it("answers the daemon's own documents out of the arrays", function()
            local tasks = cjson.decode(fixture(TASKS))
            local stats = cjson.decode(fixture(STATS))
            local id = tasks[1].Containers[1].DockerId
            local status, _, body = get("/v4/managed/task")
            assert.are.equal(200, status)
            local task = cjson.decode(body)
            assert.are.equal(tasks[1].TaskARN, task.TaskARN)
            assert.are.equal("MANAGED_INSTANCES", task.LaunchType)
            -- the exact bytes of the element: a substring of the fixture
            assert.truthy(fixture(TASKS):find(body, 1, true))
            status, _, body = get("/v4/managed")
            assert.are.equal(200, status)
            assert.are.equal(id, cjson.decode(body).DockerId)
            status, _, body = get("/v4/managed/stats")
            assert.are.equal(200, status)
            assert.are.equal(id, cjson.decode(body).id)
            status, _, body = get("/v4/managed/task/stats")
            assert.are.equal(200, status)
            assert.are.equal(stats[1][id].name, cjson.decode(body)[id].name)
        end)

        it("answers a plain-text 404 for them everywhere else", function()
            for _, base in ipairs { "/v4/fargate", "/v4/ec2", "/v3/ec2", "/v4/newer" } do
                for _, sub in ipairs { "/tasks", "/tasks/stats" } do
                    local status, headers, body = get(base .. sub)
                    assert.are.equal(404, status, base .. sub)
                    assert.are.equal("text/plain; charset=utf-8", headers["content-type"])
                    assert.are.equal("404 page not found\n", body)
                end
            end
        end)
    end)

    describe("tags on v3 and v2", function()
        it("serves /taskWithTags on v3", function()
            local status, _, body = get("/v3/ec2/taskWithTags")
            assert.are.equal(200, status)
            assert.is_true(fixture("v4-task/docs-taskwithtags.json") == body)
        end)

        it("serves /v2/metadataWithTags: the v2 task with the tags spliced in", function()
            local status, _, body = get("/v2/metadataWithTags")
            assert.are.equal(200, status)
            local doc = cjson.decode(body)
            local v2 = cjson.decode(fixture("v2-metadata/docs-task-ec2-awsvpc-nginx.json"))
            assert.are.equal(v2.TaskARN, doc.TaskARN)
            assert.are.equal(#v2.Containers, #doc.Containers)
            assert.are.equal("task-metadata-endpoint-test", doc.TaskTags["tag-use"])
            assert.are.equal("tag_value", doc.ContainerInstanceTags.tag_key)
        end)
    end)

    describe("the newer fields", function()
        it("serves the derived documents, which have them all", function()
            local _, _, body = get("/v4/newer/task")
            assert.is_true(fixture("v4-task/derived-ecs-exporter-fargate-newer-fields.json") == body)
            local t = cjson.decode(body)
            assert.are.equal("use1-az6", t.AvailabilityZoneID)
            assert.are.equal(true, t.FaultInjectionEnabled)
            assert.are.equal("service:prom-ecs-exporter-sandbox-main", t.Group)
            assert.is_table(t.ClockDrift)
            assert.is_table(t.EphemeralStorageMetrics)
            assert.are.equal(3, t.Containers[1].RestartCount)
            local net = t.Containers[1].Networks[1]
            assert.is_string(net.IPv6Addresses[1])
            assert.is_string(net.IPv6SubnetCIDRBlock)
            assert.is_string(net.SubnetGatewayIpv6Address)
            local status
            status, _, body = get("/v4/newer")
            assert.are.equal(200, status)
            local c = cjson.decode(body)
            assert.are.equal("ecs-exporter", c.Name)
            assert.are.equal(0, c.RestartCount)
            status, _, body = get("/v4/newer/stats")
            assert.are.equal(200, status)
            assert.are.equal(c.DockerId, cjson.decode(body).id)
        end)

        it("differs from its origin only by what SOURCES.md lists", function()
            local origin = cjson.decode(fixture("v4-task/ecs-exporter-fargate.json"))
            local derived = cjson.decode(fixture("v4-task/derived-ecs-exporter-fargate-newer-fields.json"))
            local added = { AvailabilityZoneID = true, ServiceName = true, Group = true,
                            FaultInjectionEnabled = true }
            for k, v in pairs(derived) do
                if not added[k] and k ~= "Containers" then
                    assert.are.same(origin[k], v, k)
                end
            end
            for i, c in ipairs(derived.Containers) do
                for k, v in pairs(c) do
                    if k == "Networks" then
                        for j, n in ipairs(v) do
                            n.SubnetGatewayIpv6Address = nil
                            assert.are.same(origin.Containers[i].Networks[j], n)
                        end
                    elseif k ~= "RestartCount" then
                        assert.are.same(origin.Containers[i][k], v, k)
                    end
                end
            end
        end)
    end)

    describe("fault injection", function()
        local BH = '{"Port":8080,"Protocol":"tcp","TrafficType":"ingress"}'
        local LAT = '{"DelayMilliseconds":100,"JitterMilliseconds":10,"Sources":["10.0.0.0/8"]}'
        local LOSS = '{"LossPercent":20,"Sources":["2600:1f18::/32","192.0.2.7"]}'

        local function fault(profile, kind, action, body)
            local status, headers, text = post("/agent/" .. profile .. "/fault/v1/" .. kind
                                               .. "/" .. action, body)
            local doc = headers["content-type"] == "application/json" and cjson.decode(text)
            return status, doc, text, headers
        end

        -- The quick profile's window is 0.2 s: a route is asked again after it.
        local function pause()
            os.execute("sleep 0.25")
        end

        it("walks a latency fault through start, status and stop", function()
            local s, doc = fault("quick", "network-latency", "status")
            assert.are.equal(200, s)
            assert.are.same({ Status = "not-running" }, doc)
            s, doc = fault("quick", "network-latency", "start", LAT)
            assert.are.same({ 200, { Status = "running" } }, { s, doc })
            pause()
            s, doc = fault("quick", "network-latency", "status")
            assert.are.same({ 200, { Status = "running" } }, { s, doc })
            -- packet loss shares the tc qdisc: 409 while latency runs
            s, doc = fault("quick", "network-packet-loss", "start", LOSS)
            assert.are.same({ 409, { Error = "There is already one network latency fault running" } },
                            { s, doc })
            s, doc = fault("quick", "network-packet-loss", "status")
            assert.are.same({ 200, { Status = "not-running" } }, { s, doc })
            s, doc = fault("quick", "network-latency", "stop")
            assert.are.same({ 200, { Status = "stopped" } }, { s, doc })
            pause()
            s, doc = fault("quick", "network-packet-loss", "start", LOSS)
            assert.are.same({ 200, { Status = "running" } }, { s, doc })
            s, doc = fault("quick", "network-latency", "start", LAT)
            assert.are.same({ 409, { Error = "There is already one network packet loss fault running" } },
                            { s, doc })
        end)

        it("keeps blackhole faults per chain, and a second start is no conflict", function()
            local s, doc = fault("quick", "network-blackhole-port", "start", BH)
            assert.are.same({ 200, { Status = "running" } }, { s, doc })
            pause()
            s, doc = fault("quick", "network-blackhole-port", "start", BH)
            assert.are.same({ 200, { Status = "running" } }, { s, doc })
            s, doc = fault("quick", "network-blackhole-port", "status",
                           '{"Port":8080,"Protocol":"udp","TrafficType":"ingress"}')
            assert.are.same({ 200, { Status = "not-running" } }, { s, doc })
            pause()
            s, doc = fault("quick", "network-blackhole-port", "status", BH)
            assert.are.same({ 200, { Status = "running" } }, { s, doc })
            s, doc = fault("quick", "network-blackhole-port", "stop", BH)
            assert.are.same({ 200, { Status = "stopped" } }, { s, doc })
        end)

        it("limits each route to one request per window, before any check", function()
            local s = fault("default", "network-latency", "status")
            assert.are.equal(200, s)
            local doc, text, headers
            s, doc, text, headers = fault("default", "network-latency", "status")
            assert.are.equal(429, s)
            assert.is_false(doc)
            assert.are.equal("text/plain; charset=utf-8", headers["content-type"])
            assert.are.equal("You have reached maximum request limit.", text)
            assert.is_nil(headers["retry-after"])
            -- another route has its own window; a bad body is still limited
            s = fault("default", "network-latency", "stop")
            assert.are.equal(200, s)
            s = fault("default", "network-latency", "start", "not json")
            assert.are.equal(400, s)
            s = fault("default", "network-latency", "start", LAT)
            assert.are.equal(429, s)
        end)

        it("decodes and validates bodies like the agent", function()
            local cases = {
                { "network-blackhole-port", "", "required request body is missing" },
                { "network-blackhole-port", "{}", "required parameter Port is missing" },
                { "network-blackhole-port", '{"Port":80}', "required parameter Protocol is missing" },
                { "network-blackhole-port", '{"Port":80,"Protocol":""}',
                  "required parameter Protocol is missing" },
                { "network-blackhole-port", '{"Port":80,"Protocol":"tcp"}',
                  "required parameter TrafficType is missing" },
                { "network-blackhole-port", '{"Port":80,"Protocol":"icmp","TrafficType":"egress"}',
                  "invalid value icmp for parameter Protocol" },
                { "network-blackhole-port", '{"Port":80,"Protocol":"udp","TrafficType":"both"}',
                  "invalid value both for parameter TrafficType" },
                { "network-blackhole-port", '{"Port":70000}',
                  "json: cannot unmarshal number 70000 into Go struct field "
                  .. "NetworkBlackholePortRequest.Port of type uint16" },
                { "network-blackhole-port", '{"Port":"80"}',
                  "json: cannot unmarshal string into Go struct field "
                  .. "NetworkBlackholePortRequest.Port of type uint16" },
                { "network-blackhole-port", '[1]',
                  "json: cannot unmarshal array into Go value of type types.NetworkBlackholePortRequest" },
                { "network-blackhole-port",
                  '{"Port":80,"Protocol":"tcp","TrafficType":"egress","SourcesToFilter":["10.0.0.300"]}',
                  "invalid value 10.0.0.300 for parameter SourcesToFilter" },
                { "network-latency", '{"JitterMilliseconds":1,"Sources":["10.0.0.1"]}',
                  "required parameter DelayMilliseconds is missing" },
                { "network-latency", '{"DelayMilliseconds":0,"JitterMilliseconds":0,"Sources":["10.0.0.1"]}',
                  "required either DelayMilliseconds or JitterMilliseconds to be non-zero" },
                { "network-latency", '{"DelayMilliseconds":5,"JitterMilliseconds":0,"Sources":[]}',
                  "required parameter Sources is missing" },
                { "network-latency", '{"DelayMilliseconds":5,"JitterMilliseconds":0,"Sources":["host"]}',
                  "invalid value host for parameter Sources" },
                { "network-latency",
                  '{"DelayMilliseconds":5,"JitterMilliseconds":0,"Sources":["::1"],"FlowsPercent":0}',
                  "invalid value 0 for parameter flowsPercent" },
                { "network-packet-loss", '{"LossPercent":0,"Sources":["10.0.0.1"]}',
                  "invalid value 0 for parameter LossPercent" },
                { "network-packet-loss", '{"LossPercent":101,"Sources":["10.0.0.1"]}',
                  "invalid value 101 for parameter LossPercent" },
                { "network-packet-loss", '{"LossPercent":1,"Sources":["10.0.0.1/33"]}',
                  "invalid value 10.0.0.1/33 for parameter Sources" },
            }
            for _, c in ipairs(cases) do
                helpers.reset()
                local s, doc = fault("default", c[1], "start", c[2])
                assert.are.same({ 400, { Error = c[3] } }, { s, doc }, c[2])
            end
            -- accepted: unknown members, null as absent, IPv6 and CIDR sources, Port 0
            for _, body in ipairs {
                '{"Port":0,"Protocol":"tcp","TrafficType":"egress","Other":1,"SourcesToFilter":null}',
                '{"Port":443,"Protocol":"udp","TrafficType":"ingress",'
                .. '"SourcesToFilter":["fd00:ec2::254","::ffff:10.0.0.1","2001:db8::/32","0.0.0.0/0"]}',
            } do
                helpers.reset()
                local s, doc = fault("default", "network-blackhole-port", "start", body)
                assert.are.same({ 200, { Status = "running" } }, { s, doc }, body)
            end
            -- latency and packet loss read no body for stop and status
            helpers.reset()
            local s, doc = fault("default", "network-latency", "stop", "not json")
            assert.are.same({ 200, { Status = "stopped" } }, { s, doc })
        end)

        it("answers 400 when the task has no enableFaultInjection, 404, 500", function()
            local s, doc = fault("disabled", "network-latency", "status")
            assert.are.equal(400, s)
            assert.are.equal("enableFaultInjection is not enabled for task: "
                .. "arn:aws:ecs:us-east-1:829490980523:task/prom-ecs-exporter-sandbox/"
                .. "bae32def0ab64f06818e8862e58f8d6d", doc.Error)
            s, doc = fault("notask", "network-latency", "status")
            assert.are.equal(404, s)
            assert.is_string(doc.Error)
            s, doc = fault("broken", "network-packet-loss", "stop")
            assert.are.same({ 500, { Error = "internal error" } }, { s, doc })
        end)

        it("knows only its kinds, actions and POST", function()
            local s, _, text = fault("quick", "network-latency", "add-sources", "{}")
            assert.are.equal(404, s)
            assert.are.equal("404 page not found\n", text)
            s = fault("quick", "cpu-stress", "start", "{}")
            assert.are.equal(404, s)
            s = get("/agent/quick/fault/v1/network-latency/status")
            assert.are.equal(405, s)
        end)

        it("records the last POST", function()
            fault("quick", "network-latency", "start", LAT)
            local s, headers, body = get("/_last_post")
            assert.are.equal(200, s)
            assert.are.equal(LAT, body)
            assert.are.equal("/agent/quick/fault/v1/network-latency/start", headers["x-last-post-uri"])
        end)
    end)

    describe("credentials of newer agents", function()
        local AUTH = "TEST-POD-AUTH-1-do-not-log"

        it("answers CredentialsUninitialized n times, then credentials", function()
            for _ = 1, 2 do
                local s, _, body = get("/v2/credentials/uninitialized/k/2")
                assert.are.equal(503, s)
                assert.are.same({ code = "CredentialsUninitialized",
                                  message = "CredentialsV2Request: Credentials uninitialized for ID",
                                  HTTPErrorCode = 503 }, cjson.decode(body))
            end
            local s, _, body = get("/v2/credentials/uninitialized/k/2")
            assert.are.equal(200, s)
            assert.are.equal("ASIAECSMTESTACCESSKEY", cjson.decode(body).AccessKeyId)
        end)

        it("plays the Pod Identity agent, with a rotating token", function()
            local s, headers, body = get("/creds/pod-identity")
            assert.are.equal(400, s)
            assert.are.equal("text/plain; charset=utf-8", headers["content-type"])
            assert.are.equal("Service account token cannot be empty\n", body)
            s, headers, body = get("/creds/pod-identity", "-H " .. q("Authorization: " .. AUTH))
            assert.are.equal("application/json", headers["content-type"])
            assert.are.equal(200, s)
            local doc = cjson.decode(body)
            assert.is_nil(doc.RoleArn)
            assert.are.equal("111122223333", doc.AccountId)
            assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%d%d%d%dZ$", doc.Expiration)
            get("/_pod_token/TEST-POD-AUTH-2-do-not-log")
            local _
            s, _, body = get("/creds/pod-identity", "-H " .. q("Authorization: " .. AUTH))
            assert.are.equal(403, s)
            assert.are.equal("Token is not valid for this pod\n", body)
            s = get("/creds/pod-identity", "-H " .. q("Authorization: TEST-POD-AUTH-2-do-not-log"))
            assert.are.equal(200, s)
        end)

        it("answers plain-text errors", function()
            for _, status in ipairs { 400, 403, 429, 500, 502, 503 } do
                local s, headers, body = get("/creds/text/" .. status)
                assert.are.equal(status, s)
                assert.are.equal("text/plain; charset=utf-8", headers["content-type"])
                assert.matches("^[%w ]+\n$", body)
            end
            local s, _, body = get("/creds/text/echo", "-H " .. q("Authorization: " .. AUTH))
            assert.are.equal(400, s)
            assert.are.equal("invalid token " .. AUTH .. " for /creds/text/echo\n", body)
        end)
    end)
end)
