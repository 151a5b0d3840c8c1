-- ecs.fault and c:fault against the test endpoint's copy of the agent's
-- fault injection API: every action of every kind, the codes (conflict,
-- throttled, http_status, timeout, not_on_ecs, invalid_argument), what is
-- and is not asked again, the body and headers sent, the timeout, misuse.
local helpers = require "spec.helpers"
local ecs = require "ecs_metadata"

local E = helpers.endpoint()

local BH = "network-blackhole-port"
local LAT = "network-latency"
local LOSS = "network-packet-loss"

local BH_PARAMS = { Port = 8080, Protocol = "tcp", TrafficType = "ingress" }
local LAT_PARAMS = { DelayMilliseconds = 250, JitterMilliseconds = 20, Sources = { "10.0.0.0/16" } }
local LOSS_PARAMS = { LossPercent = 30, Sources = { "2600:1f18::/32" } }

local function client(profile, extra)
    return helpers.client({ ECS_AGENT_URI = E .. "/agent/" .. (profile or "quick") }, extra)
end

local function requests(profile, kind, action)
    return helpers.requests("/agent/" .. profile .. "/fault/v1/" .. kind .. "/" .. action)
end

local function last_post()
    local http = assert(require("ecs_metadata.core").http())
    local body, status, headers = http:get(E .. "/_last_post")
    http:close()
    return status == 200 and body or nil, headers
end

-- The quick profile's window is 0.2 s: a route is asked again after it.
local function pause()
    os.execute("sleep 0.25")
end

describe("ecs.fault", function()
    before_each(helpers.reset)

    it("starts, checks and stops a latency fault, answering the agent's Status", function()
        local c = client()
        assert.are.equal("not-running", c:fault(LAT, "status"))
        assert.are.equal("running", c:fault(LAT, "start", LAT_PARAMS))
        pause()
        assert.are.equal("running", c:fault(LAT, "status"))
        assert.are.equal("stopped", c:fault(LAT, "stop"))
        pause()
        assert.are.equal("not-running", c:fault(LAT, "status"))
    end)

    it("sends the checked body as JSON, and no body where the agent reads none", function()
        local c = client()
        assert.are.equal("running", c:fault(LOSS, "start", LOSS_PARAMS))
        local body, headers = last_post()
        assert.are.equal('{"LossPercent":30,"Sources":["2600:1f18::/32"]}', body)
        assert.are.equal("application/json", headers["x-last-post-content-type"])
        assert.are.equal("stopped", c:fault(LOSS, "stop", LOSS_PARAMS))
        assert.are.equal("", (last_post()))
        assert.are.equal("running", c:fault(BH, "start", BH_PARAMS))
        assert.are.equal('{"Port":8080,"Protocol":"tcp","TrafficType":"ingress"}', (last_post()))
        assert.are.equal("running", c:fault(BH, "status", BH_PARAMS))
        assert.are.equal("stopped", c:fault(BH, "stop", BH_PARAMS))
    end)

    it("answers conflict for a 409: one tc fault at a time", function()
        local c = client()
        assert.are.equal("running", c:fault(LAT, "start", LAT_PARAMS))
        local v, msg, code, status = c:fault(LOSS, "start", LOSS_PARAMS)
        assert.is_nil(v)
        assert.are.equal("conflict", code)
        assert.are.equal(409, status)
        assert.are.equal("fault: POST " .. E .. "/agent/quick/fault/v1/network-packet-loss/start: "
            .. "HTTP 409 Conflict: There is already one network latency fault running", msg)
        assert.are.equal(1, requests("quick", LOSS, "start"))
    end)

    it("answers a 429 at once, for every action, and says what the agent's limit is", function()
        local c = client("default", { timeout = 10, retries = 5 })
        local cases = { { LAT, "status" }, { BH, "stop", BH_PARAMS }, { LOSS, "start", LOSS_PARAMS } }
        for _, case in ipairs(cases) do
            assert(c:fault(case[1], case[2], case[3]))
            local t0 = os.time()
            local v, msg, code, status = c:fault(case[1], case[2], case[3])
            assert.is_nil(v)
            assert.are.equal("throttled", code)
            assert.are.equal(429, status)
            assert.matches("HTTP 429 Too Many Requests: You have reached maximum request limit.",
                           msg, 1, true)
            assert.matches("one request per 5 s on each fault route and did nothing", msg, 1, true)
            assert.is_nil(msg:find("attempts", 1, true))
            assert.is_true(os.time() - t0 <= 1)
            assert.are.equal(2, requests("default", case[1], case[2]))
        end
    end)

    it("never repeats a start; asks stop and status again after a 5xx", function()
        local c = client("broken", { retries = 2 })
        local v, msg, code, status = c:fault(LAT, "start", LAT_PARAMS)
        assert.is_nil(v)
        assert.are.same({ "http_status", 500 }, { code, status })
        assert.are.equal("fault: POST " .. E .. "/agent/broken/fault/v1/network-latency/start: "
            .. "HTTP 500 Internal Server Error: internal error", msg)
        assert.are.equal(1, requests("broken", LAT, "start"))
        -- the broken profile's window is 0.2 s, longer than the backoff: the
        -- retries of a stop meet 429s, which are not asked again
        v, msg, code = c:fault(LAT, "stop", nil, { retries = 1 })
        assert.is_nil(v)
        assert.are.equal(2, requests("broken", LAT, "stop"))
        assert.are.equal("throttled", code)
        assert.matches("(after 2 attempts)", msg, 1, true)
    end)

    it("never repeats a start that timed out; fault_timeout is its default", function()
        local c = client("slow", { fault_timeout = 0.5 })
        local t0 = require("ecs_metadata.core").now()
        local v, msg, code = c:fault(LAT, "start", LAT_PARAMS)
        local took = require("ecs_metadata.core").now() - t0
        assert.is_nil(v)
        assert.are.equal("timeout", code)
        assert.matches("^fault: POST ", msg)
        assert.is_true(took >= 0.45 and took < 1.5 + helpers.SLACK, tostring(took))
        assert.are.equal(1, requests("slow", LAT, "start"))
        -- a timeout in the call's opts overrides fault_timeout
        assert.are.equal("running", c:fault(BH, "start", BH_PARAMS, { timeout = 5 }))
        -- and the default, 6 s, outlasts the agent's own 5 s
        assert.are.equal(6, ecs.new().settings.fault_timeout)
    end)

    it("passes the agent's 400 and 404 on, with its words", function()
        local v, msg, code, status = client("disabled"):fault(LAT, "status")
        assert.is_nil(v)
        assert.are.same({ "http_status", 400 }, { code, status })
        assert.matches("HTTP 400 Bad Request: enableFaultInjection is not enabled for task: "
            .. "arn:aws:ecs:us-east-1:829490980523:task/", msg, 1, true)
        v, msg, code, status = client("notask"):fault(BH, "status", BH_PARAMS)
        assert.is_nil(v)
        assert.are.same({ "http_status", 404 }, { code, status })
        assert.matches("HTTP 404 Not Found: unable to get task metadata", msg, 1, true)
    end)

    it("refuses a bad parameter before any request", function()
        local c = client()
        for _, case in ipairs {
            { "network-cpu", "start", {} }, { LAT, "pause", {} },
            { BH, "start", { Port = 0, Protocol = "tcp", TrafficType = "ingress" } },
            { BH, "status", { Port = 80, Protocol = "tcp" } },
            { LAT, "start", { DelayMilliseconds = 0, JitterMilliseconds = 0, Sources = { "10.0.0.1" } } },
            { LOSS, "start", { LossPercent = 30, Sources = { "example.com" } } },
            { LOSS, "start", { LossPercent = 30, Sources = { "10.0.0.1" }, Extra = 1 } },
        } do
            local v, msg, code = c:fault(case[1], case[2], case[3])
            assert.is_nil(v)
            assert.are.equal("invalid_argument", code)
            assert.matches("^fault: ", msg)
        end
        assert.are.equal(0, helpers.stats().total)
    end)

    it("checks the parameters and the options before the environment", function()
        local c = helpers.client({})
        local v, msg, code = c:fault(LOSS, "start", { LossPercent = 0, Sources = { "10.0.0.1" } })
        assert.are.same({ "invalid_argument", "fault: network-packet-loss: LossPercent must be a whole "
                          .. "number from 1 to 100 (got 0)" }, { code, msg })
        assert.is_nil(v)
        v, msg, code = c:fault(LAT, "status", nil, { timeout = -1 })
        assert.is_nil(v)
        assert.are.equal("invalid_argument", code)
        assert.matches("^fault: timeout", msg)
        v, msg, code = c:fault(LAT, "status")
        assert.is_nil(v)
        assert.are.equal("not_on_ecs", code)
        assert.are.equal("fault: not on ECS: ECS_AGENT_URI is not set", msg)
        v, msg, code = helpers.client({ ECS_AGENT_URI = "http://" }):fault(LAT, "status")
        assert.is_nil(v)
        assert.are.equal("invalid_argument", code)
        assert.matches("^fault: ECS_AGENT_URI is not a usable url", msg)
        assert.are.equal(0, helpers.stats().total)
    end)

    it("raises for misuse, at the caller's line", function()
        local c = client()
        local function expect(f, pattern)
            local ok, err = pcall(f)
            assert.is_false(ok)
            assert.matches(pattern, err, 1, true)
            assert.matches("62%-fault_spec%.lua:%d+:", err)
        end
        expect(function() return c:fault(nil, "start") end,
               "bad argument #1 to 'fault' (string expected, got nil)")
        expect(function() return c:fault(LAT, 1) end,
               "bad argument #2 to 'fault' (string expected, got number)")
        expect(function() return c:fault(LAT, "start", "x") end,
               "bad argument #3 to 'fault' (table or nil expected, got string)")
        expect(function() return c:fault(LAT, "status", nil, { timout = 1 }) end,
               "unknown option 'timout' (did you mean 'timeout'?)")
        expect(function() return c:fault(LAT, "status", nil, { fault_timeout = 1 }) end,
               "option 'fault_timeout' is set per client (ecs.new), not per call")
        expect(function() return ecs.fault(LAT) end, "bad argument #2 to 'fault'")
        local ok, err = pcall(c.fault, c, 1, "start")
        assert.is_false(ok)
        assert.matches("bad argument #1 to 'fault'", err, 1, true)
    end)

    it("is a function of the module over the default client", function()
        local out, status, err = helpers.run_lua([[
            local ecs = require "ecs_metadata"
            print(ecs.fault("network-latency", "status"))
            print(ecs.fault("network-latency", "start", { DelayMilliseconds = 1, JitterMilliseconds = 1,
                                                          Sources = { "::1" } }))
            print((select(3, ecs.fault("network-packet-loss", "start", { LossPercent = 5,
                                                                         Sources = { "::1" } }))))
        ]], { ECS_AGENT_URI = E .. "/agent/quick" })
        assert.are.equal(0, status, err)
        assert.are.equal("not-running\nrunning\nconflict\n", out)
    end)

    it("answers bad_json for a 2xx without Status", function()
        local c = helpers.client({ ECS_AGENT_URI = E .. "/each/v4-task/docs-ec2-awsvpc-curltest" })
        -- /each/... answers the fixture to a POST too: a document with no Status
        local v, msg, code, status = c:fault(LAT, "status")
        assert.is_nil(v)
        assert.are.same({ "bad_json", 200 }, { code, status })
        assert.matches("the answer has no Status", msg, 1, true)
    end)
end)
