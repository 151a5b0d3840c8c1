-- The rules of fault injection (ecs_metadata.fault), without a client: every
-- parameter rule, the body that is sent, what an answer becomes, the codes.
-- The bodies it builds are then sent as they are to the test endpoint,
-- which checks them as the agent does.
local helpers = require "spec.helpers"
local fault = require "ecs_metadata.fault"
local core = require "ecs_metadata.core"
local cjson = require "cjson"

local BH = "network-blackhole-port"
local LAT = "network-latency"
local LOSS = "network-packet-loss"

local function refused(kind, action, params, pattern)
    local body, msg, code = fault.check(kind, action, params)
    assert.is_nil(body, tostring(body))
    assert.are.equal("invalid_argument", code)
    assert.matches("^fault: ", msg)
    if pattern then
        assert.matches(pattern, msg, 1, true)
    end
    return msg
end

describe("fault rules", function()
    it("knows the agent's kinds and actions", function()
        assert.are.same({ BH, LAT, LOSS }, fault.KINDS)
        assert.are.same({ "start", "stop", "status" }, fault.ACTIONS)
        refused("network-cpu", "start", {}, 'unknown kind "network-cpu"')
        refused(LAT, "add-sources", {}, 'unknown action "add-sources"')
        refused(LAT, "Start", {}, 'unknown action "Start"')
    end)

    describe("network-blackhole-port", function()
        local ok = { Port = 8080, Protocol = "tcp", TrafficType = "ingress" }
        local function with(k, v)
            local t = {}
            for key, val in pairs(ok) do t[key] = val end
            t[k] = v
            return t
        end

        it("sends Port, Protocol and TrafficType on every action, in the agent's order", function()
            for _, action in ipairs(fault.ACTIONS) do
                assert.are.equal('{"Port":8080,"Protocol":"tcp","TrafficType":"ingress"}',
                                 fault.check(BH, action, ok))
            end
            assert.are.equal('{"Port":53,"Protocol":"udp","TrafficType":"egress",'
                .. '"SourcesToFilter":["10.0.0.0/8","fd00:ec2::254"]}',
                fault.check(BH, "start", { SourcesToFilter = { "10.0.0.0/8", "fd00:ec2::254" },
                                           TrafficType = "egress", Protocol = "udp", Port = 53 }))
            -- an empty optional list is left out
            assert.are.equal('{"Port":8080,"Protocol":"tcp","TrafficType":"ingress"}',
                             fault.check(BH, "start", with("SourcesToFilter", {})))
        end)

        it("checks Port: a whole number from 1 to 65535", function()
            for _, port in ipairs { 0, 65536, -1, 80.5, 1 / 0, 0 / 0 } do
                refused(BH, "start", with("Port", port), "Port must be a whole number from 1 to 65535")
            end
            refused(BH, "start", with("Port", "80"), '(got "80")')
            assert.truthy(fault.check(BH, "start", with("Port", 1)))
            assert.truthy(fault.check(BH, "start", with("Port", 65535)))
            assert.truthy(fault.check(BH, "start", with("Port", 443.0)))
        end)

        it("checks Protocol and TrafficType", function()
            refused(BH, "start", with("Protocol", "icmp"), 'Protocol must be "tcp" or "udp" (got "icmp")')
            refused(BH, "start", with("Protocol", "TCP"), "Protocol")
            refused(BH, "status", with("TrafficType", "both"),
                    'TrafficType must be "ingress" or "egress" (got "both")')
            refused(BH, "stop", with("TrafficType", true), "TrafficType")
        end)

        it("needs all three, on stop and status too", function()
            for _, name in ipairs { "Port", "Protocol", "TrafficType" } do
                for _, action in ipairs(fault.ACTIONS) do
                    refused(BH, action, with(name, nil), name .. " is required")
                end
            end
            refused(BH, "status", nil, "Port is required")
        end)

        it("refuses a parameter the agent does not take, naming those it does", function()
            local msg = refused(BH, "start", with("port", 80), 'unknown parameter "port"')
            assert.matches("Port, Protocol, TrafficType, SourcesToFilter", msg, 1, true)
            refused(BH, "start", with("Sources", { "10.0.0.1" }), 'unknown parameter "Sources"')
        end)
    end)

    describe("sources", function()
        local function start(sources)
            return fault.check(LOSS, "start", { LossPercent = 10, Sources = sources })
        end

        it("takes IPv4 and IPv6 addresses and CIDR blocks", function()
            for _, s in ipairs {
                "10.0.0.1", "0.0.0.0", "255.255.255.255", "10.0.0.0/8", "0.0.0.0/0",
                "192.0.2.0/32", "::1", "::", "fd00:ec2::254", "2600:1f18:4ae8:400::/64",
                "2001:db8:0:0:0:0:0:1", "::ffff:10.0.0.1", "64:ff9b::192.0.2.33/120",
                "FD00:EC2::23", "1:2:3:4:5:6:7::", "::/0",
            } do
                assert.is_true(fault.is_source(s), s)
                assert.truthy(start({ s }), s)
            end
        end)

        it("refuses anything else, saying which entry", function()
            for _, s in ipairs {
                "", "host", "10.0.0", "10.0.0.256", "010.0.0.1", "10.0.0.1/33", "10.0.0.1/", "/8",
                "10.0.0.1/08", "::1/129", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "fe80::1%eth0",
                "10.0.0.1 ", " 10.0.0.1", "::ffff:10.0.0.256", "1.2.3.4::", "g::1", "10.0.0.1/8/8",
            } do
                assert.is_false(fault.is_source(s), s)
                refused(LOSS, "start", { LossPercent = 10, Sources = { "10.0.0.1", s } },
                        "Sources[2] must be an IPv4/IPv6 address or CIDR block")
            end
            assert.is_false(fault.is_source(10))
        end)

        it("wants a list: a sequence of strings, not empty when required", function()
            refused(LOSS, "start", { LossPercent = 10, Sources = "10.0.0.1" },
                    "Sources must be a list of IPv4/IPv6 addresses or CIDR blocks (got string)")
            refused(LOSS, "start", { LossPercent = 10, Sources = { a = "10.0.0.1" } }, "a sequence")
            refused(LOSS, "start", { LossPercent = 10, Sources = { "10.0.0.1", nil, "10.0.0.2" } })
            refused(LOSS, "start", { LossPercent = 10, Sources = {} }, "Sources must list at least one")
            refused(LOSS, "start", { LossPercent = 10 }, "Sources is required")
            refused(LOSS, "start", { LossPercent = 10, Sources = { 10 } }, "Sources[1]")
            refused(LOSS, "start", { LossPercent = 10, Sources = { "10.0.0.1" },
                                     SourcesToFilter = { "nope" } }, 'SourcesToFilter[1]')
        end)

        it("keeps long values short in messages", function()
            local msg = refused(LOSS, "start", { LossPercent = 10, Sources = { string.rep("x", 500) } })
            assert.is_true(#msg < 250)
        end)
    end)

    describe("network-latency", function()
        local base = { DelayMilliseconds = 100, JitterMilliseconds = 0, Sources = { "10.0.0.0/16" } }
        local function with(t)
            local p = {}
            for k, v in pairs(base) do p[k] = v end
            for k, v in pairs(t) do p[k] = v end
            return p
        end

        it("sends the start's body in the agent's order", function()
            assert.are.equal('{"DelayMilliseconds":100,"JitterMilliseconds":0,"Sources":["10.0.0.0/16"]}',
                             fault.check(LAT, "start", base))
            assert.are.equal('{"DelayMilliseconds":0,"JitterMilliseconds":5,"Sources":["10.0.0.0/16"],'
                .. '"SourcesToFilter":["10.0.0.7"],"FlowsPercent":50}',
                fault.check(LAT, "start", with { DelayMilliseconds = 0, JitterMilliseconds = 5,
                                                 FlowsPercent = 50, SourcesToFilter = { "10.0.0.7" } }))
        end)

        it("checks Delay and Jitter: both given, whole, >= 0, not both 0", function()
            refused(LAT, "start", with { JitterMilliseconds = false }, "JitterMilliseconds must be")
            local p = with {}
            p.JitterMilliseconds = nil
            refused(LAT, "start", p, "JitterMilliseconds is required")
            refused(LAT, "start", with { DelayMilliseconds = -1 },
                    "DelayMilliseconds must be a whole number from 0")
            refused(LAT, "start", with { DelayMilliseconds = 1.5 }, "DelayMilliseconds")
            refused(LAT, "start", with { DelayMilliseconds = 2 ^ 53 }, "DelayMilliseconds")
            refused(LAT, "start", with { DelayMilliseconds = 0 },
                    "DelayMilliseconds and JitterMilliseconds must not both be 0")
        end)

        it("checks FlowsPercent: 1 to 100 when given", function()
            for _, f in ipairs { 0, 101, 50.5, "50" } do
                refused(LAT, "start", with { FlowsPercent = f },
                        "FlowsPercent must be a whole number from 1 to 100")
            end
            assert.truthy(fault.check(LAT, "start", with { FlowsPercent = 1 }))
            assert.truthy(fault.check(LAT, "start", with { FlowsPercent = 100 }))
        end)

        it("sends no body, and checks nothing, for stop and status", function()
            assert.is_false(fault.check(LAT, "stop", nil))
            assert.is_false(fault.check(LAT, "status", { whatever = true }))
            assert.is_false(fault.check(LOSS, "stop", {}))
        end)
    end)

    describe("network-packet-loss", function()
        it("checks LossPercent: 1 to 100", function()
            for _, l in ipairs { 0, 101, -5, 12.5 } do
                refused(LOSS, "start", { LossPercent = l, Sources = { "::1" } },
                        "LossPercent must be a whole number from 1 to 100")
            end
            refused(LOSS, "start", { Sources = { "::1" } }, "LossPercent is required")
            assert.are.equal('{"LossPercent":100,"Sources":["::1"],"FlowsPercent":10}',
                             fault.check(LOSS, "start", { LossPercent = 100, Sources = { "::1" },
                                                          FlowsPercent = 10 }))
        end)
    end)

    describe("answers", function()
        it("gives the agent's Status of a 2xx answer", function()
            for s in pairs(fault.STATUSES) do
                assert.are.equal(s, fault.status_of({ Status = s }, "x"))
            end
            for _, doc in ipairs { {}, { Status = "" }, { Status = 1 }, "running", { Error = "x" } } do
                local v, msg, code = fault.status_of(doc, "http://x/fault/v1/network-latency/start")
                assert.is_nil(v)
                assert.are.equal("bad_json", code)
                assert.are.equal("POST http://x/fault/v1/network-latency/start: bad_json: "
                    .. "the answer has no Status", msg)
            end
        end)

        it("has a code of its own for 409", function()
            assert.are.equal("conflict", fault.code_of(409))
            assert.are.equal("throttled", fault.code_of(429))
            for _, s in ipairs { 400, 404, 405, 500, 503 } do
                assert.are.equal("http_status", fault.code_of(s))
            end
        end)

        it("never repeats a start; stop and status as the caller allows", function()
            assert.are.equal(0, fault.retries("start", 5))
            assert.are.equal(5, fault.retries("stop", 5))
            assert.are.equal(2, fault.retries("status", 2))
            assert.matches("one request per 5 s", fault.THROTTLED_NOTE, 1, true)
        end)
    end)

    describe("against the endpoint's copy of the agent's checks", function()
        local agent = helpers.endpoint() .. "/agent/quick"
        before_each(helpers.reset)

        it("every body built is one the agent takes", function()
            local http = assert(core.http())
            local cases = {
                { BH, "start", { Port = 1, Protocol = "tcp", TrafficType = "egress",
                                 SourcesToFilter = { "169.254.170.2", "fd00:ec2::23/128" } } },
                { BH, "status", { Port = 65535, Protocol = "udp", TrafficType = "ingress" } },
                { LAT, "start", { DelayMilliseconds = 9007199254740991, JitterMilliseconds = 0,
                                  Sources = { "0.0.0.0/0", "::/0" }, FlowsPercent = 100 } },
            }
            for _, c in ipairs(cases) do
                local body = assert(fault.check(c[1], c[2], c[3]))
                local text, status = http:request("POST", agent .. fault.PATH .. c[1] .. "/" .. c[2], body)
                assert.are.equal(200, status, text)
                assert.is_true(fault.STATUSES[cjson.decode(text).Status], text)
            end
            http:close()
        end)
    end)
end)
