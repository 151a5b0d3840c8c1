-- ecs_metadata.transport.curl: the transport on libcurl, the C core's http
-- object (blocking, one easy handle per client, keep-alive). Its objects
-- already have the transport interface (see ecs_metadata.transport), so
-- new() hands one back unwrapped and a request costs no extra Lua call.
--
-- It is the transport everywhere but inside nginx's request and timer
-- phases, where ecs_metadata.transport.cosocket takes over.

local core = require "ecs_metadata.core"

local _M = {
    _NAME = "ecs_metadata.transport.curl",
    now = core.now,
    sleep = core._sleep,
}

local core_http = core.http

-- new{timeout=, connect_timeout=, max_bytes=} -> transport | nil, msg, code
function _M.new(opts)
    return core_http(opts)
end

return _M
