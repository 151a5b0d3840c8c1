-- The ECS agent's fault injection API (agent 1.88 and later), as the test
-- endpoint plays it: POST $ECS_AGENT_URI/fault/v1/<kind>/<action>, kinds
-- network-blackhole-port, network-latency, network-packet-loss, actions
-- start, stop, status. Written from the agent's handlers and request types
-- (ecs-agent/tmds/handlers/fault/v1): the same order of checks, the same
-- messages, the same status codes.
--
--   * a rate limit in front of every route (tollbooth in the agent): a second
--     request to the same route within the window is 429, plain text, and
--     reaches no handler;
--   * the body is decoded like Go's encoding/json into the kind's request
--     type (unknown members ignored, null = absent), then validated; the
--     blackhole routes decode and validate on every action, latency and
--     packet loss only on start (stop and status read no body);
--   * a task without enableFaultInjection is 400, a task the agent cannot
--     find 404, a failed command 500;
--   * state is kept per agent profile: blackhole faults per
--     "<TrafficType>-<Protocol>-<Port>" chain (starting one that runs answers
--     "running" again, as iptables' check makes it), latency and packet loss
--     share one tc qdisc, so starting either while either runs is 409.
--
-- Every answer is {"Status": ...} or {"Error": ...}, compact, as Go writes it.

local cjson = require "cjson.safe"
local util = require "util"
local profiles = require "profiles"

local M = {}

local state = ngx.shared.ecsm_state

local KINDS = {
    ["network-blackhole-port"] = "NetworkBlackholePortRequest",
    ["network-latency"] = "NetworkLatencyRequest",
    ["network-packet-loss"] = "NetworkPacketLossRequest",
}
local ACTIONS = { start = true, stop = true, status = true }

-- The agent's request types: field -> Go type, in declaration order.
local FIELDS = {
    ["network-blackhole-port"] = {
        { "Port", "uint16" }, { "Protocol", "string" }, { "TrafficType", "string" },
        { "SourcesToFilter", "[]string" },
    },
    ["network-latency"] = {
        { "DelayMilliseconds", "uint64" }, { "JitterMilliseconds", "uint64" },
        { "Sources", "[]string" }, { "SourcesToFilter", "[]string" }, { "FlowsPercent", "int" },
    },
    ["network-packet-loss"] = {
        { "LossPercent", "uint64" }, { "Sources", "[]string" },
        { "SourcesToFilter", "[]string" }, { "FlowsPercent", "int" },
    },
}

local LIMITS = {
    uint16 = { 0, 65535 },
    uint64 = { 0, 2 ^ 64 - 1 },
    int = { -2 ^ 63, 2 ^ 63 - 1 },
}

local function answer(status, member, text)
    util.send(status, "{" .. util.json_string(member) .. ":" .. util.json_string(text) .. "}")
end

local function fail(status, text)
    return answer(status, "Error", text)
end

---------------------------------------------------------------------------
-- Addresses, as Go's net.ParseIP and net.ParseCIDR take them

local function ipv4(s)
    local parts = { s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$") }
    if #parts ~= 4 then
        return false
    end
    for _, p in ipairs(parts) do
        if #p > 3 or (#p > 1 and p:sub(1, 1) == "0") or tonumber(p) > 255 then
            return false
        end
    end
    return true
end

-- Eight groups of up to four hex digits, "::" standing for one or more
-- zero groups, the last two groups possibly written as an IPv4 address.
local function ipv6(s)
    if s == "" or s:find("[^%x:%.]") then
        return false
    end
    local head, v4 = s:match("^(.*:)([^:]*%.[^:]*)$")
    if head then
        if not ipv4(v4) then
            return false
        end
        s = head .. "0:0"
    end
    local function count(x)
        if x == "" then
            return 0
        end
        local n = 0
        for g in (x .. ":"):gmatch("([^:]*):") do
            if #g < 1 or #g > 4 then
                return nil
            end
            n = n + 1
        end
        return n
    end
    local a, b = s:match("^(.-)::(.*)$")
    if a then
        if b:find("::", 1, true) then
            return false
        end
        local na, nb = count(a), count(b)
        return na ~= nil and nb ~= nil and na + nb < 8
    end
    return count(s) == 8
end

local function cidr(s, is_ip, bits)
    local ip, len = s:match("^(.*)/(%d+)$")
    return ip ~= nil and is_ip(ip) and tonumber(len) <= bits
end

local function ip_or_cidr(s)
    return ipv4(s) or ipv6(s) or cidr(s, ipv4, 32) or cidr(s, ipv6, 128)
end

---------------------------------------------------------------------------
-- Decoding, like encoding/json into the kind's request type

local function json_type(v)
    local t = type(v)
    if t == "table" then
        -- cjson gives an empty object and an empty array alike; a body's
        -- text settles it where it matters, so treat {} as an object.
        return (next(v) == nil or v[1] == nil) and "object" or "array"
    end
    return t == "boolean" and "bool" or t
end

-- The decoded request, or nil, message (the agent's 400 text).
local function decode(kind, body)
    if body:match("^%s*$") then
        return nil, "required request body is missing"
    end
    local v = cjson.decode(body)
    if v == nil and not body:match("^%s*null%s*$") then
        -- A first value followed by anything is read by json.Decoder too;
        -- the tests only send one value, so any other failure is a syntax
        -- error like Go's.
        return nil, "invalid character '" .. (body:match("^%s*(.)") or "?")
            .. "' looking for beginning of value"
    end
    local struct = KINDS[kind]
    if v == nil or v == cjson.null then
        return {}
    end
    local top = body:match("^%s*%[") and "array" or json_type(v)
    if top ~= "object" then
        return nil, "json: cannot unmarshal " .. top .. " into Go value of type types." .. struct
    end
    local req = {}
    for _, f in ipairs(FIELDS[kind]) do
        local name, gotype = f[1], f[2]
        local x = v[name]
        if x ~= nil and x ~= cjson.null then
            local bad
            if gotype == "string" then
                bad = type(x) ~= "string" and json_type(x)
            elseif gotype == "[]string" then
                if type(x) ~= "table" or (next(x) ~= nil and x[1] == nil) then
                    bad = json_type(x)
                else
                    for _, e in ipairs(x) do
                        if e ~= cjson.null and type(e) ~= "string" then
                            bad = json_type(e)
                        end
                    end
                end
            else
                local lim = LIMITS[gotype]
                if type(x) ~= "number" then
                    bad = json_type(x)
                elseif x % 1 ~= 0 or x < lim[1] or x > lim[2] then
                    bad = "number " .. tostring(x)
                end
            end
            if bad then
                return nil, "json: cannot unmarshal " .. bad .. " into Go struct field "
                    .. struct .. "." .. name .. " of type " .. gotype
            end
            if gotype == "[]string" then
                local list = {}
                for i, e in ipairs(x) do
                    list[i] = e == cjson.null and "" or e
                end
                x = list
            end
            req[name] = x
        end
    end
    return req
end

---------------------------------------------------------------------------
-- Validation, the agent's ValidateRequest of each type

local function missing(name)
    return "required parameter " .. name .. " is missing"
end

local function invalid(value, name)
    return "invalid value " .. tostring(value) .. " for parameter " .. name
end

local function check_sources(list, name)
    for _, s in ipairs(list or {}) do
        if not ip_or_cidr(s) then
            return invalid(s, name)
        end
    end
end

local function check_flows(req)
    local f = req.FlowsPercent
    if f ~= nil and (f <= 0 or f > 100) then
        return invalid(string.format("%d", f), "flowsPercent")
    end
end

local VALIDATE = {
    ["network-blackhole-port"] = function(req)
        if req.Port == nil then return missing("Port") end
        if req.Protocol == nil or req.Protocol == "" then return missing("Protocol") end
        if req.TrafficType == nil or req.TrafficType == "" then return missing("TrafficType") end
        if req.Protocol ~= "tcp" and req.Protocol ~= "udp" then
            return invalid(req.Protocol, "Protocol")
        end
        if req.TrafficType ~= "ingress" and req.TrafficType ~= "egress" then
            return invalid(req.TrafficType, "TrafficType")
        end
        return check_sources(req.SourcesToFilter, "SourcesToFilter")
    end,
    ["network-latency"] = function(req)
        if req.DelayMilliseconds == nil then return missing("DelayMilliseconds") end
        if req.JitterMilliseconds == nil then return missing("JitterMilliseconds") end
        if req.DelayMilliseconds == 0 and req.JitterMilliseconds == 0 then
            return "required either DelayMilliseconds or JitterMilliseconds to be non-zero"
        end
        if req.Sources == nil or #req.Sources == 0 then return missing("Sources") end
        return check_sources(req.Sources, "Sources")
            or check_sources(req.SourcesToFilter, "SourcesToFilter")
            or check_flows(req)
    end,
    ["network-packet-loss"] = function(req)
        if req.LossPercent == nil then return missing("LossPercent") end
        if req.LossPercent < 1 or req.LossPercent > 100 then
            return invalid(string.format("%d", req.LossPercent), "LossPercent")
        end
        if req.Sources == nil or #req.Sources == 0 then return missing("Sources") end
        return check_sources(req.Sources, "Sources")
            or check_sources(req.SourcesToFilter, "SourcesToFilter")
            or check_flows(req)
    end,
}

---------------------------------------------------------------------------
-- State

local TC_NAMES = {
    ["network-latency"] = "latency",
    ["network-packet-loss"] = "packet loss",
}

local function act(profile, kind, action, req)
    if kind == "network-blackhole-port" then
        local key = string.format("fis:%s:bh:%s-%s-%d", profile, req.TrafficType,
                                  req.Protocol, req.Port)
        if action == "start" then
            state:set(key, true)
            return answer(200, "Status", "running")
        elseif action == "stop" then
            state:delete(key)
            return answer(200, "Status", "stopped")
        end
        return answer(200, "Status", state:get(key) and "running" or "not-running")
    end
    local key = "fis:" .. profile .. ":tc"
    local running = state:get(key)
    if action == "start" then
        if running then
            return fail(409, "There is already one network " .. TC_NAMES[running] .. " fault running")
        end
        state:set(key, kind)
        return answer(200, "Status", "running")
    elseif action == "stop" then
        if running == kind then
            state:delete(key)
        end
        return answer(200, "Status", "stopped")
    end
    return answer(200, "Status", running == kind and "running" or "not-running")
end

-- The agent's rate limit: the route's first request opens a window in which
-- the others are refused. (tollbooth's default answer.)
local function limited(profile, kind, action, window)
    local ok = state:add("fis-limit:" .. profile .. ":" .. kind .. "/" .. action, true, window)
    return not ok
end

-- ctx: { profile = "<agent profile>", kind = "...", action = "...", body = "..." }
function M.handle(ctx)
    local p = profiles.fault_injection[ctx.profile]
    if not p then
        return util.not_found("no such agent profile: " .. ctx.profile)
    end
    local kind, action = ctx.kind, ctx.action
    if not KINDS[kind] or not ACTIONS[action] then
        return util.send(404, profiles.plain_404, "text/plain; charset=utf-8")
    end
    if ngx.req.get_method() ~= "POST" then
        return util.send(405, "", "text/plain; charset=utf-8")
    end
    if limited(ctx.profile, kind, action, p.window) then
        return util.send(429, "You have reached maximum request limit.",
                         "text/plain; charset=utf-8")
    end
    local body = ctx.body
    local req = {}
    if kind == "network-blackhole-port" or action == "start" then
        local msg
        req, msg = decode(kind, body)
        if not req then
            return fail(400, msg)
        end
        msg = VALIDATE[kind](req)
        if msg then
            return fail(400, msg)
        end
    end
    if p.disabled then
        return fail(400, "enableFaultInjection is not enabled for task: " .. profiles.fault_task_arn)
    end
    if p.status == 404 then
        return fail(404, p.error)
    end
    -- What follows is the agent running its commands.
    if p.delay then
        ngx.sleep(math.min(tonumber(ngx.var.arg_ms) or p.delay * 1000, 60000) / 1000)
    end
    if p.status then
        return fail(p.status, p.error)
    end
    return act(ctx.profile, kind, action, req)
end

M.KINDS = KINDS

return M
