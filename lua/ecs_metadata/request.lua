-- ecs_metadata.request: one logical call to an ECS endpoint, made of up to
-- 1 + retries attempts through the call's transport (ecs_metadata.transport),
-- answering a decoded document or nil, message, code, status.
--
-- Policy:
--  * 2xx with a JSON body is the answer. Any other status is a failure whose
--    message carries what the agent said (agent_reason in errors.lua);
--    429 is `throttled`, everything else `http_status`.
--  * Retried: 429, 5xx, and the transport's `unreachable` and `timeout`.
--    Never retried: other statuses, bad JSON, too_large, invalid_argument
--    (a configuration error: a bad url, TLS against a plain-http endpoint).
--  * Between attempts: jittered exponential backoff from BACKOFF_BASE
--    doubling up to BACKOFF_MAX, each wait a random point in its upper half,
--    or the server's Retry-After (seconds or an HTTP date) when that is
--    longer. A server cannot shorten the backoff: with Retry-After: 0 a
--    flapping endpoint still gets only a few requests a second from a call.
--  * `timeout` bounds the whole call: each attempt gets only what is left,
--    and no wait starts that would end past the deadline (the last failure
--    is answered at once instead). A wait that overslept the deadline (a
--    throttled CPU, a busy nginx worker) ends the call with `timeout`.
--  * The jitter comes from the C core's per-process generator, seeded anew
--    in every process (after a fork too), so many workers and containers
--    retrying together spread out.
--  * A caller may narrow or widen this per call (`how`): no retry of 429
--    (fault injection: the agent's window is longer than a call), answers
--    retried past `retries` while time is left (credentials while the agent
--    has none yet), and the raw body of a GET, so that a failure's plain
--    text reaches the message (the EKS Pod Identity agent answers in text).

local type = type
local pairs = pairs
local match = string.match
local tonumber = tonumber
local os_time = os.time

local core = require "ecs_metadata.core"
local errors = require "ecs_metadata.errors"
local time = require "ecs_metadata.time"
local transport = require "ecs_metadata.transport"

local random = core._random or math.random
local decode = core.decode
local exchange = transport.exchange
local for_call = transport.for_call
local prepare = transport.prepare
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
-- JSON body; nil, msg, code[, status, headers[, text]] otherwise, where
-- text is a body that was not JSON (when the body was read as a string).
-- With `as_string`, a 2xx answer's value is its body as it came (other
-- answers are still decoded, for what the agent said).
local function attempt(t, method, url, body, topts, as_string)
    if method == "GET" and not topts.raw_body then
        return exchange(t, method, url, nil, topts)
    end
    local raw, status, headers = exchange(t, method, url, body, topts)
    if raw == nil then
        return nil, status, headers
    end
    if as_string and status >= 200 and status < 300 then
        return raw, status, headers
    end
    local v, msg, code = decode(raw, topts)
    if v == nil then
        return nil, method .. " " .. topts.label .. ": " .. msg, code, status,
               headers, raw
    end
    return v, status, headers
end

-- The first line of a plain-text body with something in it, trimmed, or
-- nil: what a failure's message quotes of it (errors.agent_reason then
-- scrubs, escapes and cuts it).
local function text_reason(raw)
    if type(raw) ~= "string" then
        return nil
    end
    for line in raw:gmatch("[^\r\n]+") do
        local s = line:match("^%s*(.-)%s*$")
        if s ~= "" then
            return s
        end
    end
    return nil
end
_M.text_reason = text_reason

local function is_retried_status(status)
    return status == 429 or (status >= 500 and status <= 599)
end

-- json(c, o, method, url, body, how) -> value, status, headers
--                                     | nil, msg, code, status
--   c     the client (its transports)
--   o     the call's settings: timeout, connect_timeout, retries,
--         max_bytes, keep_null, array_mt, max_depth, transport
--   how   nil, or { label = what messages call the url (default: the url,
--         redacted), headers = extra request headers, secrets = what no
--         message may contain, raw_body = true (GET: read the body as a
--         string, so a plain-text failure reaches the message),
--         retry_429 = false (a 429 is answered at once),
--         keep_trying = function(status, doc) -> true for a failed answer
--         retried past `retries` for as long as the timeout allows }
local function run(c, o, method, url, body, how, as_string)
    local t, mod, code0 = for_call(c, o)
    if not t then
        return nil, mod, code0
    end
    local now, sleep = mod.now, mod.sleep
    local deadline = now() + o.timeout
    local retries = o.retries
    local connect_timeout = o.connect_timeout
    local label = how and how.label or prepare(url)
    local headers = o.headers
    if how and how.headers then
        if headers then
            local merged = {}
            for k, v in pairs(headers) do merged[k] = v end
            for k, v in pairs(how.headers) do merged[k] = v end
            headers = merged
        else
            headers = how.headers
        end
    end
    local secrets = how and how.secrets
    local raw_body = as_string or (how and how.raw_body)
    local no_429 = how and how.retry_429 == false
    local keep_trying = how and how.keep_trying
    local n, counted = 0, 0
    local last_msg, last_status
    while true do
        n = n + 1
        local left = deadline - now()
        if left < MIN_ATTEMPT then
            -- The wait before this attempt overslept the deadline.
            return gave_up((last_msg or method .. " " .. label)
                .. " (timed out waiting to retry)", "timeout", last_status,
                n - 1)
        end
        -- Only what is set: most calls have no headers or decoder options,
        -- and a smaller table is cheaper to make and to collect.
        local topts = {
            timeout = left,
            connect_timeout = connect_timeout < left and connect_timeout
                or left,
            max_bytes = o.max_bytes,
            max_header_bytes = o.max_header_bytes,
            label = label,
            -- Only failures need the answer's headers (Retry-After).
            response_headers = false,
        }
        if headers then topts.headers = headers end
        if raw_body then topts.raw_body = true end
        if o.keep_null then topts.keep_null = true end
        if o.array_mt then topts.array_mt = o.array_mt end
        if o.max_depth then topts.max_depth = o.max_depth end
        local v, s, h, x4, x5, text = attempt(t, method, url, body, topts,
                                              as_string)
        local status, rheaders, msg, code
        if v == nil then        -- nil, msg, code[, status, headers[, text]]
            msg, code, status, rheaders = s, h, x4, x5
        else
            status, rheaders = s, h
        end

        if status and status >= 200 and status < 300 then
            if v == nil then
                return nil, msg, code, status
            end
            return v, status, rheaders
        end

        local retry, extra
        if status then
            code = status == 429 and "throttled" or "http_status"
            if v == nil then
                v = text_reason(text)
            end
            msg = http_message(method, label, status, v, secrets)
            extra = keep_trying and keep_trying(status, v)
            retry = extra or (is_retried_status(status)
                              and not (no_429 and status == 429))
        else
            retry = code == "unreachable" or code == "timeout"
        end
        if not extra then
            counted = counted + 1
        end
        if not retry or (not extra and counted > retries) then
            return gave_up(msg, code, status, n)
        end
        local wait = backoff(n)
        local asked = retry_after(rheaders)
        if asked and asked > wait then
            wait = asked
        end
        if now() + wait + MIN_ATTEMPT >= deadline then
            return gave_up(msg, code, status, n)
        end
        last_msg, last_status = msg, status
        sleep(wait)
    end
end

function _M.json(c, o, method, url, body, how)
    return run(c, o, method, url, body, how, false)
end

-- raw(c, o, method, url, body, how) -> body, status, headers
--                                    | nil, msg, code, status
-- As json, but a 2xx answer is its body as it came, not decoded: what the
-- shared cache under nginx stores (and decodes once per worker).
function _M.raw(c, o, method, url, body, how)
    return run(c, o, method, url, body, how, true)
end

return _M
