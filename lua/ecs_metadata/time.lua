-- ecs_metadata.time: the two timestamp formats the endpoints send, turned
-- into POSIX seconds without going through the local time zone (os.time on
-- a table reads it as local time).
--
--   iso8601("2009-02-13T23:31:30Z")          credentials' Expiration
--   http_date("Sun, 06 Nov 1994 08:49:37 GMT") a Retry-After date

local type = type
local tonumber = tonumber
local floor = math.floor
local match = string.match

local _M = {}

-- Seconds since the epoch of a UTC civil date and time (proleptic Gregorian;
-- Howard Hinnant's days-from-civil, with floor division written out so it
-- also runs on Lua 5.1).
function _M.timegm(y, m, d, hh, mm, ss)
    if m <= 2 then
        y = y - 1
    end
    local era = floor(y / 400)
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
    local days = era * 146097 + doe - 719468
    return days * 86400 + hh * 3600 + mm * 60 + ss
end

local function valid(y, m, d, hh, mm, ss)
    return y and m >= 1 and m <= 12 and d >= 1 and d <= 31 and hh <= 23
        and mm <= 59 and ss <= 60
end

-- "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)" -> seconds, or nil.
function _M.iso8601(s)
    if type(s) ~= "string" then
        return nil
    end
    local y, m, d, hh, mm, ss, rest = match(s,
        "^(%d%d%d%d)-(%d%d)-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
    if not y then
        return nil
    end
    y, m, d = tonumber(y), tonumber(m), tonumber(d)
    hh, mm, ss = tonumber(hh), tonumber(mm), tonumber(ss)
    if not valid(y, m, d, hh, mm, ss) then
        return nil
    end
    local frac = match(rest, "^(%.%d+)")
    local t = _M.timegm(y, m, d, hh, mm, ss)
    if frac then
        t = t + tonumber("0" .. frac)
        rest = rest:sub(#frac + 1)
    end
    if rest == "Z" or rest == "z" then
        return t
    end
    local sign, oh, om = match(rest, "^([%+%-])(%d%d):?(%d%d)$")
    if not sign then
        return nil
    end
    local off = tonumber(oh) * 3600 + tonumber(om) * 60
    if sign == "+" then
        return t - off
    end
    return t + off
end

local MONTHS = {
    Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
    Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12,
}

-- "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110's IMF-fixdate) -> seconds, or nil.
function _M.http_date(s)
    local d, mon, y, hh, mm, ss = match(s,
        "^%s*%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT%s*$")
    local m = MONTHS[mon]
    if not m then
        return nil
    end
    y, d = tonumber(y), tonumber(d)
    hh, mm, ss = tonumber(hh), tonumber(mm), tonumber(ss)
    if not valid(y, m, d, hh, mm, ss) then
        return nil
    end
    return _M.timegm(y, m, d, hh, mm, ss)
end

return _M
