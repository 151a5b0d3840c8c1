-- ecs_metadata.errors: the one error rule of the Lua layer, and the helpers
-- that build the messages of runtime failures.
--
-- The rule (luv's): a runtime failure answers nil, message, code[, status
-- [, headers]], discriminated by the first value being nil; misuse (a
-- wrong argument type, an unknown option) raises. Codes are plain strings,
-- documented in the README: not_on_ecs, unreachable, timeout, http_status,
-- throttled, conflict, bad_json, too_large, not_ready, io_error,
-- invalid_argument.
--
-- Caveats:
--  * argerror finds the caller from the real stack: the first frame that is
--    not this library's Lua code nor a C function (the module's cached
--    sources are C cells), so a misuse error points at the user's line
--    whatever path it took through the library.
--  * Every message is built from a redacted label of the url (no user
--    info, no query) and the agent's words with control characters escaped,
--    so nothing an endpoint sends can forge a log line; secrets are scrubbed
--    before anything is cut short.

local type = type
local error = error
local tostring = tostring
local find = string.find
local sub = string.sub
local gsub = string.gsub
local format = string.format
local byte = string.byte
local concat = table.concat
local getinfo = debug.getinfo

local _M = {}

-- ===================================================================
-- Misuse
-- ===================================================================

-- The folder this library's Lua files live in, as debug.getinfo spells
-- sources ("@lua/ecs_metadata/", "@/usr/share/lua/5.4/ecs_metadata/").
local OWN = getinfo(1, "S").source:match("^(@.*[/\\])[^/\\]*$") or "@"

local function ours(source)
    return source == "=[C]" or source == "=(tail call)"
        or sub(source, 1, #OWN) == OWN
end

-- The level, counted as error() counts from its caller's caller, of the
-- first frame outside the library; 1 when there is none (a C host).
local function caller_level()
    local level = 3               -- 1 is caller_level, 2 is argerror
    while true do
        local info = getinfo(level, "S")
        if info == nil then
            return 1
        end
        if not ours(info.source) then
            return level - 1      -- as error() counts from argerror
        end
        level = level + 1
    end
end

-- Raises "bad argument #n to 'fname' (msg)" at the user's line.
function _M.argerror(n, fname, msg)
    error("bad argument #" .. n .. " to '" .. fname .. "' (" .. msg .. ")",
          caller_level())
end

-- ===================================================================
-- Redaction
-- ===================================================================

-- Control characters (and DEL) as \xNN, so a message is one line.
local function escape(s)
    return (gsub(s, "[%c\127]", function(c)
        return format("\\x%02X", byte(c))
    end))
end
_M.escape = escape

-- What a message calls a url: without user info, query or fragment, with
-- control characters escaped.
function _M.label(url)
    local scheme, rest = url:match("^(%a[%w+.-]*://)(.*)$")
    if not scheme then
        scheme, rest = "", url
    end
    rest = gsub(rest, "[?#].*$", "")
    local authority_end = find(rest, "/", 1, true) or #rest + 1
    local authority = sub(rest, 1, authority_end - 1)
    local at = authority:match("^.*()@")
    if at then
        rest = sub(rest, at + 1)
    end
    return escape(scheme .. rest)
end

-- Replaces in msg, with "<redacted>", every occurrence of each string of
-- `whole`, and of each string of `secrets` together with every run of 8 or
-- more of its bytes that a message may hold after a cut or an echo (a
-- prefix, a suffix, a middle part), whatever the secret's length.
local MIN_PIECE = 8

local function replace_plain(msg, s)
    local start = 1
    while true do
        local a, b = find(msg, s, start, true)
        if not a then
            return msg
        end
        msg = sub(msg, 1, a - 1) .. "<redacted>" .. sub(msg, b + 1)
        start = a + 10
    end
end

function _M.scrub(msg, secrets, whole)
    if type(msg) ~= "string" then
        return msg
    end
    for i = 1, whole and #whole or 0 do
        local s = whole[i]
        if type(s) == "string" and s ~= "" then
            msg = replace_plain(msg, s)
        end
    end
    for i = 1, secrets and #secrets or 0 do
        local s = secrets[i]
        if type(s) == "string" and s ~= "" then
            msg = replace_plain(msg, s)
            for j = 1, #s - MIN_PIECE + 1 do
                local piece = sub(s, j, j + MIN_PIECE - 1)
                if find(msg, piece, 1, true) then
                    msg = replace_plain(msg, piece)
                end
            end
        end
    end
    return msg
end

-- ===================================================================
-- What an agent said
-- ===================================================================

-- The agent's reason, out of its answer's decoded body:
--   v4/v3 handlers:          a JSON string
--   credentials:             {"code": ..., "message": ...}, or plain text
--   task protection:         {"error": {"Code": ..., "Message": ...}}
--                            {"failure": {"Reason": ..., "Detail": ..., "Arn": ...}}
--   fault injection:         {"Error": "..."}
-- Returns a string, or nil when the body says nothing usable.
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

local function raw_reason(v)
    local t = type(v)
    if t == "string" then
        return str(v)
    end
    if t ~= "table" then
        return nil
    end
    local e = v.error
    if type(e) == "table" then
        return join(e.Code, e.Message)
    end
    if type(e) == "string" then
        return str(e)
    end
    if type(v.Error) == "string" then
        return str(v.Error)
    end
    local f = v.failure
    if type(f) == "table" then
        local r = join(f.Reason, f.Detail)
        if r and str(f.Arn) then
            r = r .. " (" .. f.Arn .. ")"
        end
        return r
    end
    return join(v.code, v.message) or join(v.Code, v.Message)
end

-- The reason ready for a message: scrubbed, escaped, then cut short.
-- `secrets` is { pieces = {...}, whole = {...} } (see scrub), or nil.
function _M.agent_reason(v, secrets)
    local r = raw_reason(v)
    if r == nil then
        return nil
    end
    if secrets then
        r = _M.scrub(r, secrets.pieces, secrets.whole)
    end
    r = escape(r)
    if #r > MAX_REASON then
        r = sub(r, 1, MAX_REASON) .. "..."
    end
    return r
end

-- The standard HTTP reason phrases this module meets.
local PHRASES = {
    [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
    [404] = "Not Found", [405] = "Method Not Allowed", [409] = "Conflict",
    [429] = "Too Many Requests", [500] = "Internal Server Error",
    [502] = "Bad Gateway", [503] = "Service Unavailable",
    [504] = "Gateway Timeout",
}

-- "<method> <label>: HTTP <status> <phrase>[: <agent reason>]"
function _M.http_message(method, label, status, body, secrets)
    local parts = { method, " ", label, ": HTTP ", tostring(status) }
    local phrase = PHRASES[status]
    if phrase then
        parts[#parts + 1] = " " .. phrase
    end
    local reason = _M.agent_reason(body, secrets)
    if reason then
        parts[#parts + 1] = ": " .. reason
    end
    return concat(parts)
end

return _M
