-- ecs_metadata.views.common: what the derived views share. The misuse check
-- that raises, guards that let only finite numbers and non-empty strings
-- through, checked integer sums, and RFC 3339 timestamps read exactly (whole
-- seconds and nanoseconds apart, so no digit is lost to a float).
--
-- Caveats:
--  * Pure functions over their arguments: nothing here does I/O or changes
--    a table it is given.
--  * On Lua 5.1 and LuaJIT every number is a double, so "integer" means
--    "a double with no fraction" there; on 5.3+ it means the integer subtype.

local type = type
local tonumber = tonumber
local huge = math.huge
local match = string.match
local sub = string.sub
local rep = string.rep

local timegm = require("ecs_metadata.time").timegm

local mtype = math.type

local _M = {}

-- Misuse raises through the library's one rule (errors.argerror): at the
-- user's line, whatever path the call took through the library.
local argerror = require("ecs_metadata.errors").argerror
_M.argerror = argerror

-- Raises unless v is a table (or nil when optional is true).
function _M.check_table(v, n, fname, optional)
    local t = type(v)
    if t == "table" or (optional and v == nil) then
        return v
    end
    argerror(n, fname, "table expected, got " .. (v == nil and "no value" or t))
end

-- x when it is a finite number, else nil. The decoder never makes NaN or an
-- infinity, but a table from elsewhere may hold one.
local function number(x)
    if type(x) == "number" and x == x and x ~= huge and x ~= -huge then
        return x
    end
    return nil
end
_M.number = number

-- s when it is a non-empty string, else nil (the agent writes "" for values
-- it does not have: ImageID, SubnetGatewayIpv4Address, IPv4Addresses [""]).
function _M.str(s)
    if type(s) == "string" and s ~= "" then
        return s
    end
    return nil
end

-- A label or field value that may arrive as a number ("Revision": 26 in
-- some hand-written documents): integral numbers without a ".0".
function _M.text(v)
    if type(v) == "string" then
        return v ~= "" and v or nil
    end
    v = number(v)
    if not v then
        return nil
    end
    if v % 1 == 0 and v > -2^53 and v < 2^53 then
        return ("%d"):format(v)
    end
    return ("%.17g"):format(v)
end

-- True when x is an exact integer of the running Lua (see the header).
if mtype then
    function _M.is_integer(x)
        return mtype(x) == "integer"
    end
else
    function _M.is_integer(x)
        return type(x) == "number" and x % 1 == 0 and x > -huge and x < huge
    end
end

-- a + b, where an integer sum that would wrap around on 5.3+ becomes the
-- float it approximates instead.
if mtype then
    function _M.add(a, b)
        local s = a + b
        if mtype(s) == "integer" and ((b > 0 and s < a) or (b < 0 and s > a)) then
            return (a + 0.0) + b
        end
        return s
    end
else
    function _M.add(a, b)
        return a + b
    end
end

-- "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)" -> seconds since the
-- epoch (an integer) and nanoseconds (an integer, 0 to 999999999), or nil.
-- Digits past the ninth are dropped, as Go's time package drops them.
function _M.timestamp(s)
    if type(s) ~= "string" then
        return nil
    end
    local y, m, d, hh, mm, ss, rest = match(s,
        "^(%d%d%d%d)-(%d%d)-(%d%d)[Tt](%d%d):(%d%d):(%d%d)(.*)$")
    if not y then
        return nil
    end
    y, m, d = tonumber(y), tonumber(m), tonumber(d)
    hh, mm, ss = tonumber(hh), tonumber(mm), tonumber(ss)
    if m < 1 or m > 12 or d < 1 or d > 31 or hh > 23 or mm > 59 or ss > 60 then
        return nil
    end
    local ns = 0
    local frac = match(rest, "^%.(%d+)")
    if frac then
        rest = sub(rest, #frac + 2)
        if #frac > 9 then
            frac = sub(frac, 1, 9)
        end
        ns = tonumber(frac .. rep("0", 9 - #frac))
    end
    local offset = 0
    if rest ~= "Z" and rest ~= "z" then
        local sign, oh, om = match(rest, "^([%+%-])(%d%d):(%d%d)$")
        if not sign then
            return nil
        end
        offset = tonumber(oh) * 3600 + tonumber(om) * 60
        if sign == "-" then
            offset = -offset
        end
    end
    return timegm(y, m, d, hh, mm, ss) - offset, ns
end

-- Go's zero time.Time, which the agent writes for a reading it never took.
function _M.is_zero_time(sec)
    return sec ~= nil and sec <= -62135596800
end

return _M
