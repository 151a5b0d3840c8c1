-- ecs_metadata.transport.cosocket: the transport for OpenResty/nginx, a
-- small HTTP/1.1 client on ngx.socket.tcp with the interface of
-- transport/curl.lua (and of the C object behind it, src/http.c):
--
--   M.new(opts)                        -> t | nil, msg, code
--   t:request(method, url, body, opts) -> body, status, headers
--                                       | nil, msg, code
--   t:get_json(url, opts)              -> value, status, headers
--                                       | nil, msg, code
--                                       | nil, msg, "bad_json", status, headers
--   t:close()
--   M.now(), M.clock(), M.sleep(seconds)
--
-- opts (new: the defaults; a request: over them): timeout (seconds, the
-- whole request: connect, send and read), connect_timeout, max_bytes,
-- max_header_bytes (the status lines, headers and trailers together),
-- headers, response_headers (false: no headers table for a 2xx answer),
-- label (what messages call the request: "<METHOD> <label>: <cause>"), and
-- for get_json the decoder's keep_null, array_mt and max_depth. Statuses
-- are answers, not failures; failures are unreachable, timeout, too_large
-- and invalid_argument, with messages worded like libcurl's.
--
-- Caveats:
--  * A cosocket belongs to the request (or timer) that made it, so the
--    object holds no socket: every request takes one from the worker's
--    keep-alive pool for its host:port (setkeepalive), or connects, and puts
--    it back when the answer was read to its end. One object can therefore
--    serve every request of a worker at once.
--  * ngx_lua's read timeout restarts whenever a byte arrives, so a server
--    that trickles would never time out. Every read here is a receiveany()
--    whose timeout is what is left of the total, so `timeout` is a bound on
--    the whole request, as with libcurl. (receiveany answers at most
--    lua_socket_buffer_size bytes, 4 KiB by default: raise it in nginx.conf
--    for documents of megabytes.)
--  * A pooled connection the server has closed meanwhile fails at once;
--    such a request is sent again once, on a new connection (closed after
--    its answer), like libcurl does, but only when nothing of an answer had
--    arrived. A server that accepts and hangs up at once is therefore asked
--    twice when a pooled connection to it was taken.
--  * Redirects are answers (never followed); only http and https are spoken;
--    https verifies the server's certificate against
--    lua_ssl_trusted_certificate, which nginx.conf must then declare.
--  * Names: "localhost" is 127.0.0.1 (no resolver is needed for the
--    endpoints, which are addresses); any other name needs nginx's
--    `resolver` directive.
--  * The options are read before the first yield: the caller may reuse its
--    table as soon as the call has started.
--  * Runs only in the phases that have cosockets (rewrite, access,
--    content, timers, ssl_*); elsewhere a request is invalid_argument and
--    nothing is sent (ecs_metadata.resty.phase chooses the transport).

local ngx = rawget(_G, "ngx")
if type(ngx) ~= "table" or type(ngx.socket) ~= "table" then
    error("ecs_metadata.transport.cosocket needs nginx's Lua module "
          .. "(ngx.socket.tcp): it runs under OpenResty/nginx only", 2)
end

local type = type
local error = error
local pairs = pairs
local tonumber = tonumber
local tostring = tostring
local setmetatable = setmetatable
local ceil = math.ceil
local floor = math.floor
local byte = string.byte
local find = string.find
local lower = string.lower
local match = string.match
local sub = string.sub
local gsub = string.gsub
local concat = table.concat

local tcp = ngx.socket.tcp
local ngx_now = ngx.now
local update_time = ngx.update_time
local get_phase = ngx.get_phase

local core = require "ecs_metadata.core"

local decode = core.decode

local DEFAULT_TIMEOUT = core.DEFAULT_TIMEOUT
local DEFAULT_CONNECT_TIMEOUT = core.DEFAULT_CONNECT_TIMEOUT
local DEFAULT_MAX_BYTES = core.DEFAULT_MAX_BYTES
local DEFAULT_MAX_HEADER_BYTES = core.DEFAULT_MAX_HEADER_BYTES
local LIMITS = core.LIMITS             -- the bounds src/http.c holds to
local READ_SIZE = 65536                -- receiveany's ask; nginx caps it
local KEEPALIVE_MS = 60000             -- idle time of a pooled connection
local POOL_SIZE = 16                   -- pooled connections per host:port
local USER_AGENT = "ecs-metadata-lua/" .. tostring(core._VERSION)

local _M = {
    _NAME = "ecs_metadata.transport.cosocket",
    DEFAULT_TIMEOUT = DEFAULT_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT = DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_BYTES = DEFAULT_MAX_BYTES,
}

local http = {}                       -- the transport object's methods
local http_mt = { __index = http, __name = "ecs_metadata.transport.cosocket" }

-- ===================================================================
-- Clocks
-- ===================================================================

-- Seconds, to the millisecond. nginx caches the time once per turn of its
-- event loop; now() refreshes it, clock() reads the cached value (the
-- cheapest clock there is, good enough for cache lifetimes).
function _M.now()
    update_time()
    return ngx_now()
end

_M.clock = ngx_now

function _M.sleep(seconds)
    -- ngx.sleep(0) only yields (and warns, without OpenResty's patches).
    if seconds > 0 then
        return ngx.sleep(seconds)
    end
end

-- The phases in which a cosocket may be used (and may yield).
local COSOCKET_PHASES = require("ecs_metadata.resty.phase").YIELD_PHASES

-- Whether this phase has cosockets (the transport seam asks).
function _M.available()
    return COSOCKET_PHASES[get_phase()] == true
end

-- ===================================================================
-- Options
-- ===================================================================

local function option_type_error(name, expected, v, level)
    error("bad option '" .. name .. "' (" .. expected .. " expected, got "
          .. type(v) .. ")", level + 1)
end

local function seconds_ok(name)
    local most = LIMITS[name]
    return function(v)
        return v > 0 and v <= most
    end
end

local function bytes_ok(name)
    local most = LIMITS[name]
    return function(v)
        return v >= 1 and v <= most and v == floor(v)
    end
end

-- The settings an object or a request takes, as src/http.c reads them,
-- with its bounds and words: name, Lua type, the test of a value in range
-- and what a value out of it is told (none for a boolean).
local SETTINGS = {}
for _, name in ipairs { "timeout", "connect_timeout" } do
    SETTINGS[#SETTINGS + 1] = { name, "number", seconds_ok(name),
        ("must be a positive number of seconds, at most %.0f"):format(LIMITS[name]) }
end
SETTINGS[#SETTINGS + 1] = { "response_headers", "boolean" }
for _, name in ipairs { "max_bytes", "max_header_bytes" } do
    SETTINGS[#SETTINGS + 1] = { name, "number", bytes_ok(name),
        ("must be a whole number of bytes, 1 to %.0f"):format(LIMITS[name]) }
end

-- Reads the SETTINGS of o over s. Returns nil, or what is wrong with a
-- value. Raises for a wrong type.
local function read_settings(o, s, level)
    for i = 1, #SETTINGS do
        local setting = SETTINGS[i]
        local name, kind, in_range = setting[1], setting[2], setting[3]
        local v = o[name]
        if v ~= nil then
            if type(v) ~= kind then
                option_type_error(name, kind, v, level + 1)
            end
            if in_range and not in_range(v) then
                return name .. " " .. setting[4]
            end
            s[name] = v
        end
    end
    return nil
end

local TOKEN = "^[%w!#%$%%&'%*%+%-%.%^_`|~]+$"

-- Adds the headers of table h to list (lowercase name -> {name, value}).
-- Returns nil, or what is wrong (never quoting a value: it may be a token).
local function add_headers(h, list, level)
    for name, value in pairs(h) do
        if type(name) ~= "string" or type(value) ~= "string" then
            error("bad option 'headers' (string keys and values expected)",
                  level + 1)
        end
        if not find(name, TOKEN) then
            return "header name " .. name .. " is not an HTTP token"
        end
        if find(value, "[\r\n%z]") then
            return "header " .. name .. " has a line break or NUL in its value"
        end
        list[lower(name)] = { name, value }
    end
    return nil
end

-- new([opts]) -> transport | nil, msg, "invalid_argument"
function _M.new(opts)
    if opts ~= nil and type(opts) ~= "table" then
        error("bad argument #1 to 'new' (table expected, got " .. type(opts)
              .. ")", 2)
    end
    local self = {
        timeout = DEFAULT_TIMEOUT,
        connect_timeout = DEFAULT_CONNECT_TIMEOUT,
        max_bytes = DEFAULT_MAX_BYTES,
        max_header_bytes = DEFAULT_MAX_HEADER_BYTES,
        response_headers = true,
        headers = nil,          -- lowercase name -> {name, value}
        closed = false,
    }
    if opts then
        local bad = read_settings(opts, self, 2)
        if bad then
            return nil, "http: " .. bad, "invalid_argument"
        end
        local h = opts.headers
        if h ~= nil then
            if type(h) ~= "table" then
                option_type_error("headers", "table", h, 2)
            end
            local list = {}
            bad = add_headers(h, list, 2)
            if bad then
                return nil, "http: " .. bad, "invalid_argument"
            end
            self.headers = list
        end
    end
    return setmetatable(self, http_mt)
end

function http:close()
    self.closed = true
end

function http_mt.__tostring(self)
    if self.closed then
        return "ecs_metadata.transport.cosocket (closed)"
    end
    return "ecs_metadata.transport.cosocket"
end

-- ===================================================================
-- Urls
-- ===================================================================

-- What a message calls a url: without user info and without its query.
local function url_label(url)
    local scheme, rest = match(url, "^(%a[%w+.-]*://)(.*)$")
    if scheme then
        local slash = find(rest, "/", 1, true)
        local at = find(rest, "@", 1, true)
        if at and (not slash or at < slash) then
            url = scheme .. sub(rest, at + 1)
        end
    end
    local q = find(url, "?", 1, true)
    if q then
        url = sub(url, 1, q - 1)
    end
    return url
end
_M.url_label = url_label

-- parse(url) -> scheme, host, port, target, host_header | nil, why
local function parse_url(url)
    if find(url, "[%s%z]") then
        return nil, "the url has white space in it"
    end
    local scheme, rest = match(url, "^([Hh][Tt][Tt][Pp][Ss]?)://(.*)$")
    if not scheme then
        return nil, "the url must be an http:// or https:// url"
    end
    scheme = lower(scheme)
    local authority, target = match(rest, "^([^/?#]*)(.*)$")
    authority = gsub(authority, "^.*@", "")
    local host, port = match(authority, "^(%[[%x:.]+%]):?(%d*)$")
    if not host then
        host, port = match(authority, "^([^:]+):?(%d*)$")
    end
    if not host or (port == "" and byte(authority, -1) == 58) then
        return nil, "the url has no usable host"
    end
    local default_port = scheme == "https" and 443 or 80
    local n = port == "" and default_port or tonumber(port)
    if n < 1 or n > 65535 then
        return nil, "the url's port is out of range"
    end
    target = gsub(target, "#.*$", "")
    if target == "" then
        target = "/"
    elseif byte(target) == 63 then            -- "?"
        target = "/" .. target
    end
    local host_header = n == default_port and host or host .. ":" .. n
    return scheme, host, n, target, host_header
end
_M._parse_url = parse_url

-- ===================================================================
-- Reading an answer
-- ===================================================================

-- A reader: the socket, what it has read and not consumed (buf from pos),
-- the deadline, and the counts messages use.
-- head_left: what max_header_bytes leaves for the status lines, header
-- lines and trailers still to come (src/http.c counts all of them, line
-- ends included, together).
local function new_reader(sock, deadline, max_header_bytes)
    return { sock = sock, buf = "", pos = 1, deadline = deadline,
             got = 0, body_got = 0, head_left = max_header_bytes }
end

-- Reads more into r.buf. true, or nil, "timeout" | socket error.
local function fill(r)
    local left = r.deadline - ngx_now()
    if left <= 0 then
        return nil, "timeout"
    end
    r.sock:settimeout(ceil(left * 1000))
    local data, err = r.sock:receiveany(READ_SIZE)
    if not data then
        return nil, err
    end
    r.got = r.got + #data
    if r.pos > #r.buf then
        r.buf = data
    else
        r.buf = sub(r.buf, r.pos) .. data
    end
    r.pos = 1
    return true
end

-- One line, without its CR LF; head_left bounds how far it may run.
local function read_line(r, limit)
    while true do
        local nl = find(r.buf, "\n", r.pos, true)
        if nl then
            local line = sub(r.buf, r.pos, nl - 1)
            r.line_bytes = nl - r.pos + 1
            r.pos = nl + 1
            if byte(line, -1) == 13 then
                line = sub(line, 1, -2)
            end
            return line
        end
        if #r.buf - r.pos + 1 > limit then
            return nil, "too_large"
        end
        local ok, err = fill(r)
        if not ok then
            return nil, err
        end
    end
end

-- Exactly n bytes, appended to parts.
local function read_exact(r, n, parts)
    while n > 0 do
        local have = #r.buf - r.pos + 1
        if have > 0 then
            local take = have < n and have or n
            parts[#parts + 1] = sub(r.buf, r.pos, r.pos + take - 1)
            r.pos = r.pos + take
            r.body_got = r.body_got + take
            n = n - take
        else
            local ok, err = fill(r)
            if not ok then
                return nil, err
            end
        end
    end
    return true
end

-- Everything until the server closes, at most max bytes (then too_large).
local function read_to_close(r, max, parts)
    while true do
        local have = #r.buf - r.pos + 1
        if have > 0 then
            if r.body_got + have > max then
                return nil, "too_large"
            end
            parts[#parts + 1] = sub(r.buf, r.pos)
            r.body_got = r.body_got + have
            r.pos = #r.buf + 1
        end
        local ok, err = fill(r)
        if not ok then
            if err == "closed" then
                return true
            end
            return nil, err
        end
    end
end

-- A line of the head (status, header or trailer line), charged to
-- r.head_left. Returns the line, or nil, err ("too_large" or read_line's).
local function read_head_line(r)
    local line, err = read_line(r, r.head_left)
    if not line then
        return nil, err
    end
    r.head_left = r.head_left - r.line_bytes
    if r.head_left < 0 then
        return nil, "too_large"
    end
    return line
end

-- Header and trailer lines into one table: lowercase name -> value, a
-- repeated name's values joined by ", " and folded lines by " ". A
-- repeated or folded value is gathered as a list and joined once, at the
-- end (joining as lines come would copy the value each time: quadratic).
local function new_headers()
    return { h = {}, lists = nil, last = nil }
end

-- Adds one line; false if it is not a header line.
local function add_header_line(head, line)
    local h, last = head.h, head.last
    local c = byte(line)
    local name, value, sep
    if (c == 32 or c == 9) and last then      -- obsolete line folding
        name, value, sep = last, match(line, "^%s*(.-)%s*$"), " "
    else
        name, value = match(line, "^([^:%s]+):%s*(.-)%s*$")
        if not name then
            return false
        end
        name, sep = lower(name), ", "
        head.last = name
    end
    local prev = h[name]
    if prev == nil then
        h[name] = value
        return true
    end
    head.lists = head.lists or {}
    local parts = head.lists[name]
    if not parts then
        parts = { prev }
        head.lists[name] = parts
    end
    parts[#parts + 1] = sep
    parts[#parts + 1] = value
    return true
end

-- Reads lines up to the blank one that ends a header section or the
-- trailers into head. Returns true, or nil, err ("too_large", "bad", or a
-- socket error).
local function read_header_lines(r, head)
    while true do
        local line, err = read_head_line(r)
        if not line then
            return nil, err
        end
        if line == "" then
            return true
        end
        if not add_header_line(head, line) then
            return nil, "bad"
        end
    end
end

-- The header table, its repeated and folded values joined.
local function finish_headers(head)
    local h = head.h
    for name, parts in pairs(head.lists or {}) do
        h[name] = concat(parts)
    end
    return h
end

-- Whether a comma-separated header value lists token tok (lowercase).
local function lists(value, tok)
    if not value then
        return false
    end
    for item in (lower(value) .. ","):gmatch("%s*([^,]-)%s*,") do
        if item == tok then
            return true
        end
    end
    return false
end

-- The body, as a framing: "none", "chunked", "close" or a length.
local function framing(method, status, h)
    if method == "HEAD" or status == 204 or status == 304
        or (status >= 100 and status < 200) then
        return "none"
    end
    local te = h["transfer-encoding"]
    if te then
        local last = match(lower(te), "([^,%s]+)%s*$")
        if last == "chunked" then
            return "chunked"
        end
        return "close"
    end
    local cl = h["content-length"]
    if cl then
        -- "10, 10" (a repeated header) is one length; "10, 11" is none.
        local n
        for item in (cl .. ","):gmatch("%s*([^,]-)%s*,") do
            local v = match(item, "^%d+$") and tonumber(item)
            if not v or (n and v ~= n) then
                return nil
            end
            n = v
        end
        return n
    end
    return "close"
end

-- A chunked body into parts, at most max bytes, and its trailers into head.
-- Returns true, or nil, err ("too_large", "head_too_large", "bad", or a
-- socket error).
local function read_chunked(r, max, parts, head)
    local total = 0
    while true do
        local line, err = read_line(r, 1024)
        if not line then
            return nil, err == "too_large" and "bad" or err
        end
        local hex = match(line, "^%s*(%x+)%s*[;]?")
        if not hex or #hex > 16 then
            return nil, "bad"
        end
        local size = tonumber(hex, 16)
        if size == 0 then
            -- Trailers (headers, as libcurl gives them), then the blank
            -- line that ends the answer.
            local ok
            ok, err = read_header_lines(r, head)
            if not ok then
                return nil, err == "too_large" and "head_too_large" or err
            end
            return true
        end
        if total + size > max then
            return nil, "too_large"
        end
        total = total + size
        local ok
        ok, err = read_exact(r, size, parts)
        if not ok then
            return nil, err
        end
        line, err = read_line(r, 2)
        if not line then
            return nil, err == "too_large" and "bad" or err
        end
        if line ~= "" then
            return nil, "bad"
        end
    end
end

-- ===================================================================
-- A request
-- ===================================================================

local pool_options = {}            -- pool name -> the option table connect takes

local function ms(seconds)
    local m = ceil(seconds * 1000)
    return m > 0 and m or 1
end

local function fail(code, method, label, cause)
    return nil, method .. " " .. label .. ": " .. cause, code
end

-- Connects (or takes a pooled connection; never with `fresh`, which is for
-- sending again after a pooled one failed). sock or nil, code, cause.
local function connect(scheme, host, port, deadline, connect_timeout, fresh)
    local sock = tcp()
    local left = deadline - ngx_now()
    local limit = connect_timeout < left and connect_timeout or left
    if limit <= 0 then
        return nil, "timeout", "Connection timed out after 0 milliseconds"
    end
    sock:settimeout(ms(limit))
    local pool = scheme .. "://" .. host .. ":" .. port
    if fresh then
        -- Nothing is ever put back into this pool: it is always empty.
        pool = pool .. "#fresh"
    end
    local popts = pool_options[pool]
    if not popts then
        popts = { pool = pool }
        pool_options[pool] = popts
    end
    local addr = host == "localhost" and "127.0.0.1" or host
    local ok, err = sock:connect(addr, port, popts)
    if not ok then
        if err == "timeout" then
            return nil, "timeout", "Connection timed out after "
                .. ms(limit) .. " milliseconds"
        end
        return nil, "unreachable", "Failed to connect to " .. host
            .. " port " .. port .. ": " .. tostring(err)
    end
    if scheme == "https" and sock:getreusedtimes() == 0 then
        local server_name = not match(host, "^[%d.]+$")
            and not match(host, "^%[") and host or nil
        local session
        session, err = sock:sslhandshake(nil, server_name, true)
        if not session then
            sock:close()
            if err == "timeout" then
                return nil, "timeout", "Connection timed out after "
                    .. ms(limit) .. " milliseconds (TLS handshake)"
            end
            return nil, "unreachable", "TLS handshake with " .. host
                .. " port " .. port .. " failed: " .. tostring(err)
        end
    end
    return sock
end

local function head_text(method, target, host_header, headers, body)
    local parts = { method, " ", target, " HTTP/1.1\r\nHost: ", host_header,
                    "\r\nUser-Agent: ", USER_AGENT, "\r\nAccept: */*\r\n" }
    local n = #parts
    for _, nv in pairs(headers) do
        parts[n + 1] = nv[1]
        parts[n + 2] = ": "
        parts[n + 3] = nv[2]
        parts[n + 4] = "\r\n"
        n = n + 4
    end
    if body then
        parts[n + 1] = "Content-Length: "
        parts[n + 2] = tostring(#body)
        parts[n + 3] = "\r\n"
        n = n + 3
    elseif method ~= "GET" and method ~= "HEAD" and method ~= "DELETE" then
        parts[n + 1] = "Content-Length: 0\r\n"
        n = n + 1
    end
    parts[n + 1] = "\r\n"
    if body and body ~= "" then
        parts[n + 2] = body
    end
    return parts
end

-- One exchange on one connection. Returns
--   true, status, headers, body, reusable
-- | false, code, cause, retryable (nothing of an answer arrived on a
--   pooled connection: the request may go again on a fresh one)
local function exchange(sock, r, method, request, s)
    local max_bytes, timeout = s.max_bytes, s.timeout
    local elapsed_ms = function()
        return floor((ngx_now() - (r.deadline - timeout)) * 1000 + 0.5)
    end
    local function timed_out()
        return false, "timeout", "Operation timed out after " .. elapsed_ms()
            .. " milliseconds with " .. r.body_got .. " bytes received"
    end
    local function head_too_large()
        return false, "too_large", "the response headers are larger than "
            .. "max_header_bytes (" .. s.max_header_bytes .. ")"
    end
    local left = r.deadline - ngx_now()
    if left <= 0 then
        return timed_out()
    end
    sock:settimeout(ms(left))
    local reused = sock:getreusedtimes() > 0
    local sent, err = sock:send(request)
    if not sent then
        if err == "timeout" then
            return timed_out()
        end
        return false, "unreachable", "Send failure: " .. tostring(err), reused
    end

    local line, status, minor, head
    repeat
        line, err = read_head_line(r)
        if not line then
            if err == "timeout" then
                return timed_out()
            elseif err == "too_large" then
                return head_too_large()
            elseif r.got == 0 then
                return false, "unreachable", "Empty reply from server",
                       reused
            end
            return false, "unreachable", "Recv failure: " .. tostring(err)
        end
        local mj, mn, code = match(line, "^HTTP/(%d)%.(%d) (%d%d%d)")
        if mj ~= "1" then
            return false, "unreachable", "the answer is not HTTP/1.x"
        end
        status, minor = tonumber(code), tonumber(mn)
        head = new_headers()     -- a 1xx answer's headers are not kept
        local ok
        ok, err = read_header_lines(r, head)
        if not ok then
            if err == "timeout" then
                return timed_out()
            elseif err == "too_large" then
                return head_too_large()
            elseif err == "bad" then
                return false, "unreachable", "the answer has a malformed "
                    .. "header line"
            end
            return false, "unreachable", "the connection closed before the "
                .. "answer's headers were complete (" .. tostring(err) .. ")"
        end
        -- 1xx (100 Continue, 103 Early Hints) comes before the real answer.
    until status >= 200 or status == 101

    local h = finish_headers(head)
    local how = framing(method, status, h)
    local parts = {}
    local ok
    if how == nil then
        return false, "unreachable", "the answer has an invalid Content-Length"
    elseif how == "none" then
        ok = true
    elseif how == "chunked" then
        ok, err = read_chunked(r, max_bytes, parts, head)
        h = finish_headers(head)     -- with the trailers
    elseif how == "close" then
        ok, err = read_to_close(r, max_bytes, parts)
    else
        if how > max_bytes then
            err = "too_large"
        else
            ok, err = read_exact(r, how, parts)
            if not ok and err == "closed" then
                return false, "unreachable", "transfer closed with "
                    .. (how - r.body_got) .. " bytes remaining to read"
            end
        end
    end
    if not ok then
        if err == "too_large" then
            return false, "too_large", "the answer is larger than max_bytes ("
                .. max_bytes .. ")"
        elseif err == "head_too_large" then
            return head_too_large()
        elseif err == "timeout" then
            return timed_out()
        elseif err == "bad" then
            return false, "unreachable", "the answer's chunked encoding is "
                .. "malformed"
        elseif err == "closed" then
            return false, "unreachable", "transfer closed with outstanding "
                .. "read data remaining"
        end
        return false, "unreachable", "Recv failure: " .. tostring(err)
    end
    local conn = h["connection"]
    local reusable = how ~= "close" and r.pos > #r.buf
        and not lists(conn, "close")
        and (minor >= 1 or lists(conn, "keep-alive"))
        and status ~= 101
    return true, status, h, concat(parts), reusable
end

-- The settings of one request, read at once (before anything yields).
local function call_settings(self, url, body, opts, level)
    if self.closed then
        error("attempt to use a closed http object", level + 1)
    end
    if type(url) ~= "string" then
        error("bad argument #2 to 'request' (string expected, got "
              .. type(url) .. ")", level + 1)
    end
    if body ~= nil and type(body) ~= "string" then
        error("bad argument #3 to 'request' (string or nil expected, got "
              .. type(body) .. ")", level + 1)
    end
    local s = {
        timeout = self.timeout,
        connect_timeout = self.connect_timeout,
        max_bytes = self.max_bytes,
        max_header_bytes = self.max_header_bytes,
        response_headers = self.response_headers,
    }
    local label, bad, headers = nil, nil, self.headers
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("bad argument #4 to 'request' (table expected, got "
                  .. type(opts) .. ")", level + 1)
        end
        bad = read_settings(opts, s, level + 1)
        label = opts.label
        if label ~= nil and type(label) ~= "string" then
            option_type_error("label", "string", label, level + 1)
        end
        local h = opts.headers
        if h ~= nil then
            if type(h) ~= "table" then
                option_type_error("headers", "table", h, level + 1)
            end
            headers = {}
            for k, nv in pairs(self.headers or {}) do
                headers[k] = nv
            end
            bad = bad or add_headers(h, headers, level + 1)
        end
    end
    s.label = label or url_label(url)
    s.headers = headers or {}
    return s, bad
end

local function perform(self, method, url, body, opts, level)
    local s, bad = call_settings(self, url, body, opts, level + 1)
    local label = s.label
    if bad then
        return fail("invalid_argument", method, label, bad)
    end
    local scheme, host, port, target, host_header = parse_url(url)
    if not scheme then
        return fail("invalid_argument", method, label, host)
    end
    local phase = get_phase()
    if not COSOCKET_PHASES[phase] then
        return fail("invalid_argument", method, label, "cosockets are not "
            .. "available in nginx's " .. phase .. " phase")
    end
    local request = head_text(method, target, host_header, s.headers, body)

    update_time()
    local deadline = ngx_now() + s.timeout
    local fresh = false
    while true do
        local sock, code, cause = connect(scheme, host, port, deadline,
                                          s.connect_timeout, fresh)
        if not sock then
            return fail(code, method, label, cause)
        end
        local r = new_reader(sock, deadline, s.max_header_bytes)
        local ok, status, h, answer, reusable =
            exchange(sock, r, method, request, s)
        if ok then
            if reusable and not fresh then
                sock:setkeepalive(KEEPALIVE_MS, POOL_SIZE)
            else
                sock:close()
            end
            return answer, status, h, s.response_headers
        end
        sock:close()
        -- ok is false: status, h, answer are code, cause, retryable. Once
        -- only, and on a new connection: another pooled one may be as dead.
        if not answer or fresh then
            return fail(status, method, label, h)
        end
        fresh = true
    end
end

-- t:request(method, url, body|nil [, opts]) -> body, status, headers
--                                            | nil, msg, code
function http:request(method, url, body, opts)
    if type(method) ~= "string" or not find(method, "^%u+$") or #method > 16 then
        error("bad argument #1 to 'request' (method must be an upper-case "
              .. "HTTP token)", 2)
    end
    local answer, status, h, want_headers =
        perform(self, method, url, body, opts, 2)
    if not want_headers and answer and status >= 200 and status < 300 then
        h = nil
    end
    return answer, status, h
end

-- t:get(url [, opts]) -> as request
function http:get(url, opts)
    local answer, status, h, want_headers =
        perform(self, "GET", url, nil, opts, 2)
    if not want_headers and answer and status >= 200 and status < 300 then
        h = nil
    end
    return answer, status, h
end

-- The decoder's options of opts, checked now (a wrong type raises before
-- anything is sent, as in the C client), or nil when there are none.
local function decoder_options(opts)
    if opts == nil or (opts.keep_null == nil and opts.array_mt == nil
                       and opts.max_depth == nil) then
        return nil
    end
    local d = { keep_null = opts.keep_null, array_mt = opts.array_mt,
                max_depth = opts.max_depth }
    decode("0", d)
    return d
end

-- t:get_json(url [, opts]) -> value, status, headers
--                           | nil, msg, code
--                           | nil, msg, "bad_json", status, headers
function http:get_json(url, opts)
    local d = decoder_options(opts)
    local label = opts and opts.label
    local body, status, headers, want_headers =
        perform(self, "GET", url, nil, opts, 2)
    if body == nil then
        return nil, status, headers
    end
    local v, msg = decode(body, d)
    if v == nil and msg ~= nil then
        return nil, "GET " .. (label or url_label(url)) .. ": " .. msg,
               "bad_json", status, headers
    end
    if not want_headers and status >= 200 and status < 300 then
        headers = nil
    end
    return v, status, headers
end

return _M
