-- ecs_metadata.protection: task scale-in protection through the ECS agent,
-- GET and PUT $ECS_AGENT_URI/task-protection/v1/state.
--
-- Caveats:
--  * The agent calls ECS for every request and gives up after 4 s with
--    504 RequestCanceled, so these calls default to a longer timeout
--    (protection_timeout, 5 s) than the metadata sources.
--  * The agent reports ECS's refusals in the body: {"failure": {Reason,
--    Detail, Arn}} or {"error": {Code, Message}}, with 200 or with a 4xx/5xx
--    status. Any of them is a failure (`http_status`, or `throttled` for 429)
--    whose message carries the agent's reason.
--  * The answer is the `protection` object of the agent's document:
--    {ProtectionEnabled = bool, ExpirationDate = "...", TaskArn = "..."}.

local type = type
local floor = math.floor
local format = string.format

local discovery = require "ecs_metadata.discovery"
local errors = require "ecs_metadata.errors"
local request = require "ecs_metadata.request"

local getenv = discovery.getenv
local trim_slash = discovery.trim_slash

local _M = {}

local PATH = "/task-protection/v1/state"
local MAX_MINUTES = 2880       -- ECS's limit: 48 hours
local JSON_HEADERS = { ["Content-Type"] = "application/json" }
_M.PATH = PATH

local function state_url(o, fname)
    local base = getenv(o.env, "ECS_AGENT_URI")
    if not base then
        return nil, fname .. ": not on ECS: ECS_AGENT_URI is not set",
               "not_on_ecs"
    end
    return trim_slash(base) .. PATH
end

-- The settings of a protection call: its own default timeout.
local function call_settings(c, o, opts)
    return {
        timeout = opts and opts.timeout or c.protection_timeout,
        connect_timeout = o.connect_timeout,
        retries = o.retries,
        max_bytes = o.max_bytes,
        keep_null = o.keep_null,
        array_mt = o.array_mt,
        max_depth = o.max_depth,
    }
end

-- The protection object of a 2xx answer, or nil, msg, code.
local function answer(doc, method, url, status)
    if type(doc) == "table"
       and (type(doc.failure) == "table" or type(doc.error) == "table") then
        return nil, errors.http_message(method, url, status, doc),
               "http_status"
    end
    local p = type(doc) == "table" and doc.protection
    if type(p) ~= "table" then
        return nil, method .. " " .. url .. ": bad_json: the answer has no "
            .. "protection object", "bad_json"
    end
    return p
end

-- One call to the agent: its protection object | nil, msg, code, status.
local function exchange(c, o, opts, method, url, body)
    local v, status, code, failed_status =
        request.json(c, call_settings(c, o, opts), method, url, body, nil,
                     body and JSON_HEADERS or nil)
    if type(status) ~= "number" then
        return nil, status, code, failed_status
    end
    local p, msg
    p, msg, code = answer(v, method, url, status)
    if not p then
        return nil, msg, code, status
    end
    return p
end

-- get(c, o, opts) -> protection | nil, msg, code, status
function _M.get(c, o, opts)
    local url, msg, code = state_url(o, "protection")
    if not url then
        return nil, msg, code
    end
    local ttl = c:_ttl_of("protection", opts)
    local v = c:_cache_get(url, ttl)
    if v ~= nil then
        return v
    end
    local p, status
    p, msg, code, status = exchange(c, o, opts, "GET", url)
    if not p then
        return nil, msg, code, status
    end
    c:_cache_put(url, p, ttl, opts == nil and "protection")
    return p
end

-- set(c, o, opts, enabled, minutes) -> protection | nil, msg, code, status
function _M.set(c, o, opts, enabled, minutes)
    local url, msg, code = state_url(o, "protect")
    if not url then
        return nil, msg, code
    end
    local body
    if not enabled then
        body = '{"ProtectionEnabled":false}'
    elseif minutes == nil then
        body = '{"ProtectionEnabled":true}'
    elseif minutes == floor(minutes) and minutes >= 1
           and minutes <= MAX_MINUTES then
        body = format('{"ProtectionEnabled":true,"ExpiresInMinutes":%d}',
                      minutes)
    else
        return nil, "protect: minutes must be a whole number from 1 to "
            .. MAX_MINUTES, "invalid_argument"
    end
    local p, status
    p, msg, code, status = exchange(c, o, opts, "PUT", url, body)
    -- Whatever happened, a cached state may be stale now.
    c:_cache_drop(url, "protection")
    return p, msg, code, status
end

return _M
