-- ecs_metadata.request: one logical call to an ECS endpoint, made of up to
-- 1 + retries attempts through the client's transport, answering a decoded
-- document or nil, message, code, status.
--
-- Policy:
--  * 2xx with a JSON body is the answer. Any other status is a failure whose
--    message carries what the agent said (agent_reason in errors.lua);
--    429 is `throttled`, everything else `http_status`.
--  * Retried: 429, 5xx, and the transport's `unreachable` and `timeout`.
--    Never retried: other statuses, bad JSON, too_large, invalid_argument.
--  * Between attempts: the server's Retry-After when it sent one (seconds or
--    an HTTP date), else jittered exponential backoff from BACKOFF_BASE
--    doubling up to BACKOFF_MAX, each wait a random point in its upper half.
--  * `timeout` bounds the whole call: each attempt gets only what is left,
--    and no wait starts that would end past the deadline (the last failure
--    is answered at once instead).

local type = type
local random = math.random
local match = string.match
local tonumber = tonumber
local os_time = os.time

local core = require "ecs_metadata.core"
local errors = require "ecs_metadata.errors"
local time = require "ecs_metadata.time"

local decode = core.decode
local http_message = errors.http_message
local http_date = time.http_date

local _M = {}

local BACKOFF_BASE = 0.05     -- seconds before the first retry (upper bound)
local BACKOFF_MAX = 1.0       -- the longest backoff wait
local MIN_ATTEMPT = 0.01      -- an attempt is not started with less left
_M.BACKOFF_BASE = BACKOFF_BASE
_M.BACKOFF_MAX = BACKOFF_MAX

-- Seconds the server asked us to wait, or nil.
local function retry_after(headers)
    local v = headers and headers["retry-after"]
    if type(v) ~= "string" then
        return nil
    end
    local n = match(v, "^%s*(%d+)%s*$")
    if n then
        return tonumber(n)
    end
    local t = http_date(v)
    if t then
        t = t - os_time()
        return t > 0 and t or 0
    end
    return nil
end
_M.retry_after = retry_after

local function backoff(attempt)
    local b = BACKOFF_BASE * 2 ^ (attempt - 1)
    if b > BACKOFF_MAX then
        b = BACKOFF_MAX
    end
    return b * (0.5 + 0.5 * random())
end

local function gave_up(msg, code, status, attempts)
    if attempts > 1 then
        msg = msg .. " (after " .. attempts .. " attempts)"
    end
    return nil, msg, code, status
end

-- One attempt. Returns value, status, headers on any HTTP answer with a
-- JSON body; nil, msg, code[, status, headers] otherwise.
local function attempt(t, method, url, body, topts, label)
    if method == "GET" then
        return t:get_json(url, topts)
    end
    local raw, status, headers = t:request(method, url, body, topts)
    if raw == nil then
        return nil, status, headers
    end
    local v, msg, code = decode(raw, topts)
    if code then
        return nil, method .. " " .. label .. ": " .. msg, code, status,
               headers
    end
    return v, status, headers
end

-- json(c, o, method, url, body, name, headers)
--   c       the client (its _transport, _now, _sleep)
--   o       the call's settings: timeout, connect_timeout, retries,
--           max_bytes, keep_null, array_mt, max_depth
--   name    what messages call the url (nil = the url itself)
--   headers extra request headers, or nil
-- -> value, status, headers | nil, msg, code, status
function _M.json(c, o, method, url, body, name, headers)
    local now, t = c._now, c._transport
    local deadline = now() + o.timeout
    local retries = o.retries
    local connect_timeout = o.connect_timeout
    local label = name or url
    local n = 0
    while true do
        n = n + 1
        local left = deadline - now()
        -- Only what is set: most calls have no headers, name or decoder
        -- options, and a smaller table is cheaper to make and to collect.
        local topts = {
            timeout = left,
            connect_timeout = connect_timeout < left and connect_timeout
                or left,
            max_bytes = o.max_bytes,
            -- Only failures need the answer's headers (Retry-After).
            response_headers = false,
        }
        if headers then topts.headers = headers end
        if name then topts.label = name end
        if o.keep_null then topts.keep_null = true end
        if o.array_mt then topts.array_mt = o.array_mt end
        if o.max_depth then topts.max_depth = o.max_depth end
        local v, s, h, x4, x5 = attempt(t, method, url, body, topts, label)
        local status, rheaders, msg, code
        if type(s) == "string" then        -- failure: nil, msg, code, ...
            msg, code, status, rheaders = s, h, x4, x5
        else
            status, rheaders = s, h
        end

        if status and status >= 200 and status < 300 then
            if code then
                return nil, msg, code, status
            end
            return v, status, rheaders
        end

        local retry
        if status then
            code = status == 429 and "throttled" or "http_status"
            msg = http_message(method, label, status, v)
            retry = status == 429 or status >= 500
        else
            retry = code == "unreachable" or code == "timeout"
        end
        if not retry or n > retries then
            return gave_up(msg, code, status, n)
        end
        local wait = retry_after(rheaders) or backoff(n)
        if now() + wait + MIN_ATTEMPT >= deadline then
            return gave_up(msg, code, status, n)
        end
        if wait > 0 then
            c._sleep(wait)
        end
    end
end

return _M
