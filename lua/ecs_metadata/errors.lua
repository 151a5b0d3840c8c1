-- ecs_metadata.errors: the misuse check that raises, and the helpers that
-- build the messages of runtime failures (`nil, message, code`).
--
-- The codes themselves are plain strings, documented in the README:
-- not_on_ecs, unreachable, timeout, http_status, throttled, bad_json,
-- too_large, not_ready, io_error, invalid_argument.
--
-- Caveats:
--  * Misuse (a wrong argument type, an unknown version) raises, with a
--    message shaped like luaL_argerror's. Everything that can go wrong at run
--    time returns nil, message, code instead; nothing here raises for it.
--  * Messages built here may quote what an agent said; scrub() is how the
--    credentials code keeps secrets out of them.

local type = type
local error = error
local tostring = tostring
local find = string.find
local sub = string.sub
local concat = table.concat

local _M = {}

-- Raises "bad argument #n to 'fname' (msg)" at the caller of the public
-- function (level counts from the function that calls argerror).
function _M.argerror(n, fname, msg, level)
    error("bad argument #" .. n .. " to '" .. fname .. "' (" .. msg .. ")",
          (level or 2) + 1)
end

-- What an ECS agent said when it failed, out of its answer's decoded body:
--   v4/v3 handlers:          a JSON string
--   credentials:             {"code": ..., "message": ...}
--   task protection:         {"error": {"Code": ..., "Message": ...}}
--                            {"failure": {"Reason": ..., "Detail": ..., "Arn": ...}}
-- Returns a short string, or nil when the body says nothing usable.
local MAX_REASON = 300

local function str(v)
    if type(v) == "string" and v ~= "" then
        return v
    end
    return nil
end

local function join(a, b)
    a, b = str(a), str(b)
    if a and b then
        return a .. ": " .. b
    end
    return a or b
end

local function shorten(s)
    if s and #s > MAX_REASON then
        return sub(s, 1, MAX_REASON) .. "..."
    end
    return s
end

function _M.agent_reason(v)
    local t = type(v)
    if t == "string" then
        return shorten(str(v))
    end
    if t ~= "table" then
        return nil
    end
    local e = v.error
    if type(e) == "table" then
        return shorten(join(e.Code, e.Message))
    end
    if type(e) == "string" then
        return shorten(str(e))
    end
    local f = v.failure
    if type(f) == "table" then
        local r = join(f.Reason, f.Detail)
        if r and str(f.Arn) then
            r = r .. " (" .. f.Arn .. ")"
        end
        return shorten(r)
    end
    return shorten(join(v.code, v.message) or join(v.Code, v.Message))
end

-- The standard HTTP reason phrases this module meets.
local PHRASES = {
    [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
    [404] = "Not Found", [405] = "Method Not Allowed",
    [429] = "Too Many Requests", [500] = "Internal Server Error",
    [502] = "Bad Gateway", [503] = "Service Unavailable",
    [504] = "Gateway Timeout",
}

-- "<method> <label>: HTTP <status> <phrase>[: <agent reason>]"
function _M.http_message(method, label, status, body)
    local parts = { method, " ", label, ": HTTP ", tostring(status) }
    local phrase = PHRASES[status]
    if phrase then
        parts[#parts + 1] = " " .. phrase
    end
    local reason = _M.agent_reason(body)
    if reason then
        parts[#parts + 1] = ": " .. reason
    end
    return concat(parts)
end

-- Replaces every plain occurrence of each string of `secrets` (those of 4
-- bytes or more) in msg with "<redacted>".
function _M.scrub(msg, secrets)
    if type(msg) ~= "string" or secrets == nil then
        return msg
    end
    for i = 1, #secrets do
        local s = secrets[i]
        if type(s) == "string" and #s >= 4 then
            local start = 1
            while true do
                local a, b = find(msg, s, start, true)
                if not a then
                    break
                end
                msg = sub(msg, 1, a - 1) .. "<redacted>" .. sub(msg, b + 1)
                start = a + 10
            end
        end
    end
    return msg
end

return _M
