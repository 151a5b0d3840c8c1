-- Injected faults: /fault/<name> and /fault/<name>/<anything>, so each one
-- can stand in for a base url.

local util = require "util"
local profiles = require "profiles"

local M = {}

local HUGE_ZEROS = 32 * 1024 * 1024     -- "[0,0,...,0]" is 2n+1 bytes: 64 MiB + 1
local CHUNK_ZEROS = 32 * 1024           -- 64 KiB of "0," per write

-- Ends the request without finishing the body: nginx closes the connection
-- and the client sees fewer bytes than Content-Length promised.
local function abort()
    return ngx.exit(ngx.ERROR)
end

-- Writes and waits until the bytes are on the socket; false if the client left.
local function write(s)
    if not ngx.print(s) then
        return false
    end
    return ngx.flush(true) and true or false
end

local function serve_document()
    util.send_fixture(200, profiles.fault_document)
end

local function stream_huge(with_length)
    ngx.status = 200
    ngx.header["Content-Type"] = "application/json"
    if with_length then
        ngx.header["Content-Length"] = 2 * HUGE_ZEROS + 1
    end
    local chunk = string.rep("0,", CHUNK_ZEROS)
    if not write("[") then return abort() end
    local left = HUGE_ZEROS - 1           -- "0," pieces before the last "0]"
    while left > 0 do
        local n = left < CHUNK_ZEROS and left or CHUNK_ZEROS
        if not write(n == CHUNK_ZEROS and chunk or string.rep("0,", n)) then
            return abort()
        end
        left = left - n
    end
    if not write("0]") then return abort() end
end

local handlers = {}

handlers.slow = function()
    local ms = tonumber(ngx.var.arg_ms) or 5000
    if ms > 0 then
        ngx.sleep(math.min(ms, 600000) / 1000)
    end
    serve_document()
end

handlers.trickle = function()
    local prefix = '{"Cluster":"trickle","Padding":"'
    ngx.status = 200
    ngx.header["Content-Type"] = "application/json"
    ngx.header["Content-Length"] = 1024 * 1024
    if not ngx.send_headers() or not ngx.flush(true) then return abort() end
    for i = 1, 100 do                      -- one byte every 200 ms for 20 s
        ngx.sleep(0.2)
        local b = i <= #prefix and prefix:sub(i, i) or "x"
        if not write(b) then return abort() end
    end
    return abort()
end

handlers.truncated = function()
    local text = '{"Cluster":"arn:aws:ecs:us-west-2:111122223333:cluster/default",'
        .. '"TaskARN":"arn:aws:ecs:us-west-2:111122223333:task/default/0123456789abcdef"}'
    ngx.status = 200
    ngx.header["Content-Type"] = "application/json"
    ngx.header["Content-Length"] = 1000
    write(text:sub(1, 100))
    return abort()
end

handlers["429"] = function()
    util.send(429, "Too Many Requests: retry after 1 second\n", "text/plain",
              { ["Retry-After"] = "1" })
end

handlers["429-bare"] = function()
    util.send(429, "Too Many Requests", "text/plain")
end

handlers["500"] = function()
    util.send(500, util.json_string(
        "V4 task metadata handler: unable to get task metadata: injected internal error"))
end

handlers["503"] = function()
    util.send(503, "Service Unavailable\n", "text/plain")
end

handlers["404"] = function()
    util.send_fixture(404, profiles.fault_404)
end

handlers.redirect = function(ctx)
    local to = "http://127.0.0.1:" .. ctx.redirect_port .. profiles.redirect_path
    util.send(302, "Found: " .. to .. "\n", "text/plain", { Location = to })
end

handlers.empty = function()
    util.send(200, "", "application/json")
end

handlers.html = function()
    util.send(200, "<!DOCTYPE html>\n<html><head><title>Welcome</title></head>"
        .. "<body><h1>It works!</h1></body></html>\n", "text/html")
end

handlers.garbage = function()
    util.send(200, '{"Cluster": "x", ' .. "\0\255\254 <<garbage>> ]]}{ \1\2 NaN, 'x': undefined",
              "application/json")
end

handlers.huge = function()
    return stream_huge(true)
end

handlers["huge-chunked"] = function()
    return stream_huge(false)
end

handlers.deep = function()
    util.send(200, string.rep("[", 100000) .. string.rep("]", 100000))
end

-- /fault/flaky/<key>/<n>: the first n requests for <key> fail, later ones work.
local function flaky(status, headers)
    return function(ctx)
        local key, n = ctx.rest:match("^/([^/]+)/(%d+)")
        if not key then
            return util.not_found("flaky: expected /fault/<flaky|flaky429>/<key>/<n>")
        end
        local seen = ngx.shared.ecsm_state:incr("flaky:" .. ctx.name .. ":" .. key, 1, 0)
        if seen <= tonumber(n) then
            if status == 429 then
                return util.send(429, "Too Many Requests", "text/plain", headers)
            end
            return util.send(503, "Service Unavailable\n", "text/plain", headers)
        end
        serve_document()
    end
end

handlers.flaky = flaky(503)
handlers.flaky429 = flaky(429, { ["Retry-After"] = "0" })

-- /fault/fading/<key>/<n>: the first n requests for <key> work, later ones
-- fail with 503 (an endpoint that goes away, for stale-if-error).
handlers.fading = function(ctx)
    local key, n = ctx.rest:match("^/([^/]+)/(%d+)")
    if not key then
        return util.not_found("fading: expected /fault/fading/<key>/<n>")
    end
    local seen = ngx.shared.ecsm_state:incr("fading:" .. key, 1, 0)
    if seen > tonumber(n) then
        return util.send(503, "Service Unavailable\n", "text/plain")
    end
    serve_document()
end

-- /fault/echo[/<anything>]?pad=N: 400 {"code":"Echo","message":...} whose
-- message repeats the request back after N bytes of padding: its path and
-- query, and its Authorization header (what a careless agent would quote).
handlers.echo = function()
    local pad = math.min(tonumber(ngx.var.arg_pad) or 0, 10000)
    local auth = ngx.var.http_authorization or ""
    local text = string.rep("x", pad) .. " request " .. ngx.var.request_uri
        .. " authorization " .. auth
    util.send(400, '{"code":"Echo","message":' .. util.json_string(text) .. "}")
end

-- /fault/evil: 500 with a reason that would forge log lines if printed raw.
handlers.evil = function()
    util.send(500, util.json_string("bad\r\nFORGED line\027[31m red\0 nul"))
end

-- /fault/status/<n>[/<anything>]: an empty JSON object with status n (any
-- three digits nginx will send, 999 included).
handlers.status = function(ctx)
    local n = tonumber(ctx.rest:match("^/(%d%d%d)"))
    if not n then
        return util.not_found("status: expected /fault/status/<3 digits>")
    end
    util.send(n, "{}")
end

---------------------------------------------------------------------------
-- Hostile replies, written as raw bytes on the connection (ngx.req.socket):
-- what a broken or malicious endpoint can send that nginx itself never would.
-- Each one closes the connection when done; the endless ones stop when the
-- client leaves, or after RAW_SECONDS / RAW_BYTES so a client that never
-- gives up cannot keep a worker busy.

local RAW_SECONDS = 30
local RAW_BYTES = 1024 * 1024 * 1024

local function raw_socket()
    local sock, err = ngx.req.socket(true)
    if not sock then
        ngx.log(ngx.ERR, "raw socket: ", err)
        return nil
    end
    return sock
end

-- Sends the parts of a reply, then closes: false if the client left.
local function raw_reply(...)
    local sock = raw_socket()
    if not sock then
        return ngx.exit(500)
    end
    for i = 1, select("#", ...) do
        if not sock:send((select(i, ...))) then
            return false
        end
    end
    sock:close()
    return true
end

-- Sends head once, then line(i) for i = 1, 2, ... until the client leaves
-- or the bounds are reached: as fast as the client reads, or one line every
-- `delay` seconds.
local function raw_endless(head, line, delay)
    local sock = raw_socket()
    if not sock then
        return ngx.exit(500)
    end
    if not sock:send(head) then
        return
    end
    local deadline, sent, i = ngx.now() + RAW_SECONDS, #head, 0
    local per_batch = delay and 1 or 64
    while sent < RAW_BYTES and ngx.now() < deadline do
        local batch = {}
        for k = 1, per_batch do
            batch[k] = line(i + k)
        end
        i = i + per_batch
        local s = table.concat(batch)
        if not sock:send(s) then
            return
        end
        sent = sent + #s
        if delay then
            ngx.sleep(delay)
        end
        ngx.update_time()
    end
    sock:close()
end

local JSON_HEAD = "Content-Type: application/json\r\nConnection: close\r\n"
local PAD = string.rep("t", 1000)

-- /fault/not-http/<kind>: replies that are not HTTP/1.x.
local not_http = {
    ["no-status"] = '{"Cluster":"not-http"}\n',
    ["status-0"] = "HTTP/1.1 000 OK\r\n" .. JSON_HEAD .. "Content-Length: 2\r\n\r\n{}",
    ["status-1000"] = "HTTP/1.1 1000 OK\r\n" .. JSON_HEAD .. "Content-Length: 2\r\n\r\n{}",
    ["status-99"] = "HTTP/1.1 099 OK\r\n" .. JSON_HEAD .. "Content-Length: 2\r\n\r\n{}",
    ["status-text"] = "HTTP/1.1 OK 200\r\n" .. JSON_HEAD .. "Content-Length: 2\r\n\r\n{}",
    ["bad-version"] = "HTTP/7.3 200 OK\r\n" .. JSON_HEAD .. "Content-Length: 2\r\n\r\n{}",
    ["not-a-version"] = "HTXP/1.1 200 OK\r\n" .. JSON_HEAD .. "Content-Length: 2\r\n\r\n{}",
    ["binary"] = "\0\1\2\3\255\254\r\n\r\n",
}

handlers["not-http"] = function(ctx)
    local reply = not_http[ctx.rest:match("^/([^/]+)") or ""]
    if not reply then
        return util.not_found("not-http: expected /fault/not-http/<kind>")
    end
    return raw_reply(reply)
end

-- A 200 whose chunked body ends and whose trailers never do.
handlers["trailers-endless"] = function()
    return raw_endless("HTTP/1.1 200 OK\r\n" .. JSON_HEAD
        .. "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n",
        function(i) return "X-Trailer-" .. i .. ": " .. PAD .. "\r\n" end)
end

-- A 200 whose header section never ends.
handlers["headers-endless"] = function()
    return raw_endless("HTTP/1.1 200 OK\r\n" .. JSON_HEAD,
        function(i) return "X-Header-" .. i .. ": " .. PAD .. "\r\n" end)
end

-- A 200 whose header lines come one every 100 ms, for ever.
handlers["headers-trickle"] = function()
    return raw_endless("HTTP/1.1 200 OK\r\n" .. JSON_HEAD,
        function(i) return "X-Header-" .. i .. ": slow\r\n" end, 0.1)
end

-- /fault/repeated-headers?n=N: a 200 with N lines "X-Repeat: <i>" (default
-- 10000, at most 1000000), then the body {}; with &trailers=1, a chunked
-- body {} and the N lines as its trailers.
handlers["repeated-headers"] = function()
    local n = math.min(tonumber(ngx.var.arg_n) or 10000, 1000000)
    local lines = {}
    for i = 1, n do
        lines[i] = "X-Repeat: " .. i .. "\r\n"
    end
    if ngx.var.arg_trailers then
        return raw_reply("HTTP/1.1 200 OK\r\n" .. JSON_HEAD
            .. "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n",
            table.concat(lines), "\r\n")
    end
    return raw_reply("HTTP/1.1 200 OK\r\n" .. JSON_HEAD .. "Content-Length: 2\r\n",
                     table.concat(lines), "\r\n{}")
end

-- ctx: { name = "<fault>", rest = "<path after the name>", redirect_port = N }
function M.handle(ctx)
    local h = handlers[ctx.name]
    if not h then
        return util.not_found("no such fault: " .. ctx.name)
    end
    return h(ctx)
end

return M
