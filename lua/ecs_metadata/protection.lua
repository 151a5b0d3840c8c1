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
--  * minutes are checked before the environment: protect(true, 5000)
--    outside ECS is invalid_argument.
--  * The answer is the `protection` object of the agent's document:
--    {ProtectionEnabled = bool, ExpirationDate = "...", TaskArn = "..."}.

local type = type
local setmetatable = setmetatable
local floor = math.floor
local format = string.format

local discovery = require "ecs_metadata.discovery"
local errors = require "ecs_metadata.errors"

local getenv = discovery.getenv

local _M = {}

local PATH = "/task-protection/v1/state"
local MAX_MINUTES = 2880       -- ECS's limit: 48 hours
local JSON_BODY = { headers = { ["Content-Type"] = "application/json" } }
_M.PATH = PATH

local function state_url(o, fname)
    local v = getenv(o.env, "ECS_AGENT_URI")
    if not v then
        return nil, fname .. ": not on ECS: ECS_AGENT_URI is not set",
               "not_on_ecs"
    end
    local base, msg, code = discovery.base_url("ECS_AGENT_URI", v)
    if not base then
        return nil, fname .. ": " .. msg, code
    end
    return base .. PATH
end

-- The settings of a protection call: its own default timeout, unless the
-- call gives one.
local function protection_settings(c, o, opts)
    if opts and opts.timeout then
        return o
    end
    return setmetatable({ timeout = c.settings.protection_timeout },
                        { __index = o })
end

-- The protection object of a 2xx answer, or nil, msg, code.
local function answer(doc, method, label, status)
    if type(doc) == "table"
       and (type(doc.failure) == "table" or type(doc.error) == "table") then
        return nil, errors.http_message(method, label, status, doc),
               "http_status"
    end
    local p = type(doc) == "table" and doc.protection
    if type(p) ~= "table" then
        return nil, method .. " " .. label .. ": bad_json: the answer has no "
            .. "protection object", "bad_json"
    end
    return p
end

-- One call to the agent: its protection object | nil, msg, code, status.
local function exchange(c, o, fname, method, url, body)
    local v, status, code, failed_status = c:request(o, method, url, body,
        body and JSON_BODY or nil)
    if v == nil then
        return nil, fname .. ": " .. status, code, failed_status
    end
    local p, msg
    p, msg, code = answer(v, method, errors.label(url), status)
    if not p then
        return nil, fname .. ": " .. msg, code, status
    end
    return p
end

-- get(c, o, opts) -> protection | nil, msg, code, status
function _M.get(c, o, opts)
    local url, msg, code = state_url(o, "protection")
    if not url then
        return nil, msg, code
    end
    local po = protection_settings(c, o, opts)
    return c:cached(url, c:policy("protection", o), function()
        return exchange(c, po, "protection", "GET", url)
    end)
end

-- set(c, o, opts, enabled, minutes) -> protection | nil, msg, code, status
function _M.set(c, o, opts, enabled, minutes)
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
    local url, msg, code = state_url(o, "protect")
    if not url then
        return nil, msg, code
    end
    local p, status
    p, msg, code, status = exchange(c, protection_settings(c, o, opts),
                                    "protect", "PUT", url, body)
    -- Whatever happened, a cached state may be stale now.
    c:drop(url, "protection")
    return p, msg, code, status
end

return _M
