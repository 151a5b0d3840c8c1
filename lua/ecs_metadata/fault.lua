-- ecs_metadata.fault: the rules of the ECS agent's fault injection API
-- (agent 1.88 and later, tasks with enableFaultInjection):
--
--   POST $ECS_AGENT_URI/fault/v1/<kind>/<action>
--     kinds    network-blackhole-port, network-latency, network-packet-loss
--     actions  start, stop, status
--     answer   {"Status": "running" | "stopped" | "not-running"}
--     errors   {"Error": "..."} with 400 (a bad parameter, or fault injection
--              not enabled for the task), 404, 409 (a latency or packet loss
--              fault already runs), 500; 429 in plain text from the agent's
--              rate limit, one request per 5 s on each route
--
-- What this module owns: the parameters' rules (the agent's, so that a bad
-- parameter never costs a request, the agent's rate-limit window or a
-- half-started fault), the body sent, what an answer becomes, which
-- failures may be asked again (all without I/O), and run(), the exchange
-- with the agent through the client's request.
--
-- Caveats:
--  * A start is never repeated: whatever failed (a timeout, a reset
--    connection, a 5xx) may have come after the agent began the fault, and a
--    second start of a latency or packet loss fault is a 409 anyway.
--  * A 429 is never retried, for any action. The agent's limiter answers it
--    before the handler, so nothing was done and the caller may ask again
--    after the window; but the window (5 s) is longer than a call's budget
--    is meant to wait, and a stop or status asked again at once would only
--    be refused again. The code is `throttled`, the fourth value 429.
--  * Nothing is cached: every call asks the agent.
--  * The agent gives a request 5 s for its commands, so these calls default
--    to fault_timeout (6 s) rather than timeout; a timeout in the call's
--    opts overrides it.
--  * stop and status of latency and packet loss take no parameters (the
--    agent reads no body there); params given to them are not checked and
--    not sent. The blackhole routes need Port, Protocol and TrafficType on
--    every action: they name the iptables chain.

local type = type
local setmetatable = setmetatable
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local floor = math.floor
local huge = math.huge
local format = string.format
local match = string.match
local find = string.find
local gmatch = string.gmatch
local sub = string.sub
local concat = table.concat

local discovery = require "ecs_metadata.discovery"
local errors = require "ecs_metadata.errors"

local _M = { _NAME = "ecs_metadata.fault" }

_M.PATH = "/fault/v1/"
_M.RATE_WINDOW = 5          -- seconds: the agent's limit, one request per route
-- What the agent answers in Status.
_M.STATUSES = { running = true, stopped = true, ["not-running"] = true }

local BLACKHOLE = "network-blackhole-port"
local LATENCY = "network-latency"
local PACKET_LOSS = "network-packet-loss"

_M.KINDS = { BLACKHOLE, LATENCY, PACKET_LOSS }
_M.ACTIONS = { "start", "stop", "status" }

local KNOWN_KIND = { [BLACKHOLE] = true, [LATENCY] = true, [PACKET_LOSS] = true }
local KNOWN_ACTION = { start = true, stop = true, status = true }

-- The request types, field by field in the agent's order (the body keeps
-- it). kind: uint = whole number in [min, max]; enum; sources = a list of
-- addresses or CIDR blocks.
local MAX_EXACT = 2 ^ 53 - 1      -- the largest whole number a double keeps exactly
local FIELDS = {
    [BLACKHOLE] = {
        { name = "Port", kind = "uint", min = 1, max = 65535, required = true },
        { name = "Protocol", kind = "enum", values = { "tcp", "udp" }, required = true },
        { name = "TrafficType", kind = "enum", values = { "ingress", "egress" }, required = true },
        { name = "SourcesToFilter", kind = "sources" },
    },
    [LATENCY] = {
        { name = "DelayMilliseconds", kind = "uint", min = 0, max = MAX_EXACT, required = true },
        { name = "JitterMilliseconds", kind = "uint", min = 0, max = MAX_EXACT, required = true },
        { name = "Sources", kind = "sources", required = true },
        { name = "SourcesToFilter", kind = "sources" },
        { name = "FlowsPercent", kind = "uint", min = 1, max = 100 },
    },
    [PACKET_LOSS] = {
        { name = "LossPercent", kind = "uint", min = 1, max = 100, required = true },
        { name = "Sources", kind = "sources", required = true },
        { name = "SourcesToFilter", kind = "sources" },
        { name = "FlowsPercent", kind = "uint", min = 1, max = 100 },
    },
}

local NAMES = {}
for kind, fields in pairs(FIELDS) do
    local names, list = {}, {}
    for i, f in ipairs(fields) do
        names[f.name] = true
        list[i] = f.name
    end
    NAMES[kind] = { set = names, text = concat(list, ", ") }
end

-- ===================================================================
-- Addresses: IPv4 or IPv6, or a CIDR block of either (what Go's
-- net.ParseIP and net.ParseCIDR take, which the agent uses)
-- ===================================================================

local function ipv4(s)
    local a, b, c, d = match(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if not a then
        return false
    end
    for _, o in ipairs({ a, b, c, d }) do
        -- Leading zeros are refused, as Go does: some parsers read octal.
        if #o > 3 or (#o > 1 and sub(o, 1, 1) == "0") or tonumber(o) > 255 then
            return false
        end
    end
    return true
end

-- Groups of 1-4 hex digits between colons, or nil.
local function count_groups(s)
    if s == "" then
        return 0
    end
    local n = 0
    for g in gmatch(s .. ":", "([^:]*):") do
        if #g < 1 or #g > 4 then
            return nil
        end
        n = n + 1
    end
    return n
end

local function ipv6(s)
    if s == "" or find(s, "[^%x:%.]") then
        return false
    end
    -- The last 32 bits may be written as an IPv4 address ("::ffff:10.0.0.1").
    local head, v4 = match(s, "^(.*:)([^:]*%.[^:]*)$")
    if head then
        if not ipv4(v4) then
            return false
        end
        s = head .. "0:0"
    end
    local a, b = match(s, "^(.-)::(.*)$")
    if a then
        if find(b, "::", 1, true) then
            return false
        end
        local na, nb = count_groups(a), count_groups(b)
        return na ~= nil and nb ~= nil and na + nb < 8
    end
    return count_groups(s) == 8
end

local function prefix_ok(len, bits)
    return #len <= 3 and not (#len > 1 and sub(len, 1, 1) == "0") and tonumber(len) <= bits
end

-- True for an IPv4/IPv6 address or CIDR block.
function _M.is_source(s)
    if type(s) ~= "string" then
        return false
    end
    local ip, len = match(s, "^([^/]*)/(%d+)$")
    if ip then
        return (ipv4(ip) and prefix_ok(len, 32)) or (ipv6(ip) and prefix_ok(len, 128)) or false
    end
    return ipv4(s) or ipv6(s)
end

-- ===================================================================
-- Parameters
-- ===================================================================

-- A value for a message: short, and quoted when it is a string.
local function shown(v)
    if type(v) == "string" then
        if #v > 64 then
            v = sub(v, 1, 64) .. "..."
        end
        return format("%q", v)
    end
    return tostring(v)
end

local function whole(x, min, max)
    return type(x) == "number" and x == x and x > -huge and x < huge
        and x == floor(x) and x >= min and x <= max
end

-- The JSON text of one checked field, or nil, msg.
local function field_text(f, v)
    local kind = f.kind
    if kind == "uint" then
        if not whole(v, f.min, f.max) then
            return nil, format("%s must be a whole number from %d to %.0f (got %s)",
                               f.name, f.min, f.max, shown(v))
        end
        return format("%d", v)
    elseif kind == "enum" then
        for _, ok in ipairs(f.values) do
            if v == ok then
                return '"' .. v .. '"'
            end
        end
        return nil, format("%s must be \"%s\" (got %s)", f.name,
                           concat(f.values, "\" or \""), shown(v))
    end
    -- sources: a list (a sequence, nothing else in it) of addresses.
    if type(v) ~= "table" then
        return nil, f.name .. " must be a list of IPv4/IPv6 addresses or CIDR blocks (got "
            .. type(v) .. ")"
    end
    local n, count = #v, 0
    for _ in pairs(v) do
        count = count + 1
    end
    if count ~= n then
        return nil, f.name .. " must be a list (a sequence) of addresses"
    end
    if n == 0 then
        if f.required then
            return nil, f.name .. " must list at least one IPv4/IPv6 address or CIDR block"
        end
        return nil
    end
    local parts = {}
    for i = 1, n do
        local s = v[i]
        if not _M.is_source(s) then
            return nil, format("%s[%d] must be an IPv4/IPv6 address or CIDR block (got %s)",
                               f.name, i, shown(s))
        end
        parts[i] = '"' .. s .. '"'
    end
    return "[" .. concat(parts, ",") .. "]"
end

-- check(kind, action, params) -> body | false (no body) | nil, msg, "invalid_argument"
-- kind and action are strings, params a table or nil (the caller checked
-- the types). The body is the agent's request type as compact JSON, its
-- members in the agent's order; an optional list given empty is left out.
function _M.check(kind, action, params)
    if not KNOWN_KIND[kind] then
        return nil, "fault: unknown kind " .. shown(kind) .. " (expected "
            .. concat(_M.KINDS, ", ") .. ")", "invalid_argument"
    end
    if not KNOWN_ACTION[action] then
        return nil, "fault: unknown action " .. shown(action)
            .. " (expected start, stop or status)", "invalid_argument"
    end
    if kind ~= BLACKHOLE and action ~= "start" then
        return false
    end
    params = params or {}
    local names = NAMES[kind]
    for k in pairs(params) do
        if not names.set[k] then
            return nil, "fault: " .. kind .. ": unknown parameter " .. shown(k)
                .. " (it takes " .. names.text .. ")", "invalid_argument"
        end
    end
    local parts = {}
    for _, f in ipairs(FIELDS[kind]) do
        local v = params[f.name]
        if v == nil then
            if f.required then
                return nil, "fault: " .. kind .. ": " .. f.name .. " is required",
                    "invalid_argument"
            end
        else
            local text, msg = field_text(f, v)
            if msg then
                return nil, "fault: " .. kind .. ": " .. msg, "invalid_argument"
            end
            if text then
                parts[#parts + 1] = '"' .. f.name .. '":' .. text
            end
        end
    end
    if kind == LATENCY and params.DelayMilliseconds == 0 and params.JitterMilliseconds == 0 then
        return nil, "fault: " .. kind .. ": DelayMilliseconds and JitterMilliseconds "
            .. "must not both be 0", "invalid_argument"
    end
    return "{" .. concat(parts, ",") .. "}"
end

-- ===================================================================
-- Answers
-- ===================================================================

-- The agent's Status of a 2xx answer's document, or nil, msg, "bad_json".
function _M.status_of(doc, label)
    local s = type(doc) == "table" and doc.Status
    if type(s) == "string" and s ~= "" then
        return s
    end
    return nil, "POST " .. label .. ": bad_json: the answer has no Status", "bad_json"
end

-- The code of a failed answer's status: 409 is `conflict` (a fault of that
-- kind already runs), 429 `throttled`, the rest `http_status`.
function _M.code_of(status)
    if status == 409 then
        return "conflict"
    elseif status == 429 then
        return "throttled"
    end
    return "http_status"
end

-- What a 429 message adds: what the agent's limit is, and that it did
-- nothing.
_M.THROTTLED_NOTE = " (the agent takes one request per " .. _M.RATE_WINDOW
    .. " s on each fault route and did nothing; ask again after that)"

-- Further attempts a call may make: none for a start (it may have reached
-- the agent), the caller's `retries` for stop and status. 429 is never
-- retried (see the header).
function _M.retries(action, retries)
    if action == "start" then
        return 0
    end
    return retries
end

-- ===================================================================
-- The exchange
-- ===================================================================

local JSON_BODY = { headers = { ["Content-Type"] = "application/json" }, retry_429 = false }
local NO_BODY = { retry_429 = false }

-- run(c, o, opts, kind, action, params) -> the agent's Status
--                                        | nil, msg, code, status
-- c the client, o the call's settings (opts over the client's), opts what
-- the call was given (nil or a table).
function _M.run(c, o, opts, kind, action, params)
    local body, msg, code = _M.check(kind, action, params)
    if body == nil then
        return nil, msg, code
    end
    local v = discovery.getenv(o.env, "ECS_AGENT_URI")
    if not v then
        return nil, "fault: not on ECS: ECS_AGENT_URI is not set", "not_on_ecs"
    end
    local base
    base, msg, code = discovery.base_url("ECS_AGENT_URI", v)
    if not base then
        return nil, "fault: " .. msg, code
    end
    local url = base .. _M.PATH .. kind .. "/" .. action
    local fo = setmetatable({
        timeout = opts and opts.timeout or c.settings.fault_timeout,
        retries = _M.retries(action, o.retries),
    }, { __index = o })
    local doc, status, failed_status
    doc, status, code, failed_status = c:request(fo, "POST", url, body or nil,
                                                 body and JSON_BODY or NO_BODY)
    if doc == nil then
        msg = status
        if code == "http_status" then
            code = _M.code_of(failed_status)
        elseif code == "throttled" then
            msg = msg .. _M.THROTTLED_NOTE
        end
        return nil, "fault: " .. msg, code, failed_status
    end
    local s
    s, msg, code = _M.status_of(doc, errors.label(url))
    if not s then
        return nil, "fault: " .. msg, code, status
    end
    return s
end

return _M
