-- ecs_metadata.transport.curl: the one interface through which the Lua layer does
-- HTTP, sleeps and reads the clock. Sources never call libcurl directly.
--
-- A transport object has two methods, with the C client's conventions:
--   t:get_json(url, opts)               -> value, status, headers
--                                        | nil, msg, code
--                                        | nil, msg, "bad_json", status, headers
--   t:request(method, url, body, opts)  -> body, status, headers | nil, msg, code
-- where opts carries timeout, connect_timeout, max_bytes, headers, name,
-- response_headers (false: headers may be nil for a 2xx answer) and, for
-- get_json, the decoder's keep_null, array_mt and max_depth. HTTP statuses
-- are not failures at this level.
--
-- The module also gives now() (monotonic seconds, for timeouts and backoff),
-- clock() (monotonic seconds that may be coarse, a few milliseconds, for
-- cache lifetimes: the cheapest clock there is, since every cache hit reads
-- it) and sleep(seconds).
--
-- This one is the C client of ecs_metadata.core (blocking libcurl, one easy
-- handle per client, keep-alive): its objects already have exactly this
-- interface, so new() hands one back unwrapped and a request costs no extra
-- Lua call. A cosocket transport for OpenResty, with the same interface, is
-- another module; a client takes it through the `transport` option.

local core = require "ecs_metadata.core"

local _M = {
    _NAME = "ecs_metadata.transport.curl",
    now = core.now,
    clock = core._now_coarse,
    sleep = core._sleep,
}

local core_http = core.http

-- new{timeout=, connect_timeout=, max_bytes=, headers=} -> transport
--                                                     | nil, msg, code
function _M.new(opts)
    return core_http(opts)
end

return _M
