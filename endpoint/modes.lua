-- The endpoint's modes, for the specs that run the module inside nginx:
--
--   /chunked/<route>   the answer of <route>, with Transfer-Encoding: chunked
--                      instead of Content-Length, as the ECS agent (a Go
--                      server) sends large documents; ?chunk=N bytes per
--                      chunk (default 4096, the size of Go's write buffer),
--                      each chunk flushed on its own
--   /_mode?slow=MS     from now on every counted request waits MS ms first
--   /_mode?down=1      ... or is counted and then closed without an answer
--   /_mode             back to normal (so does /_reset)
--
-- The mode lives in the ecsm_state dict, so it holds for every worker and
-- for both ports.

local M = {}

local state = ngx.shared.ecsm_state

local DEFAULT_CHUNK = 4096

-- Strips a /chunked prefix off uri and remembers, for util.send, that the
-- answer goes out chunked. Returns the uri to route.
function M.strip_chunked(uri)
    if uri:sub(1, 9) ~= "/chunked/" then
        return uri
    end
    local n = tonumber(ngx.var.arg_chunk)
    ngx.ctx.chunk_size = (n and n >= 1) and math.floor(n) or DEFAULT_CHUNK
    return uri:sub(9)
end

-- The chunk size of this request's answer, or nil for Content-Length.
function M.chunk_size()
    return ngx.ctx.chunk_size
end

-- Writes body in chunks of n bytes, each flushed, so the client sees them
-- arrive apart. nginx does the chunked framing: no Content-Length is set.
function M.send_chunked(body, n)
    ngx.send_headers()
    for i = 1, #body, n do
        if not ngx.print(body:sub(i, i + n - 1)) or not ngx.flush(true) then
            return ngx.exit(ngx.ERROR)
        end
    end
end

-- /_mode: sets the mode and answers it.
function M.set()
    local args = ngx.req.get_uri_args()
    local slow = tonumber(args.slow)
    state:delete("mode_slow")
    state:delete("mode_down")
    if slow and slow > 0 then
        state:set("mode_slow", math.min(slow, 600000))
    end
    if args.down == "1" then
        state:set("mode_down", true)
    end
    ngx.status = 200
    ngx.header["Content-Type"] = "application/json"
    local body = string.format('{"slow":%d,"down":%s}', state:get("mode_slow") or 0,
                               state:get("mode_down") and "true" or "false")
    ngx.header["Content-Length"] = #body
    ngx.print(body)
end

-- Applies the mode to a counted request: waits, or ends it unanswered.
-- Returns true when the request was ended.
function M.apply()
    if state:get("mode_down") then
        ngx.exit(444)                 -- closes the connection, sends nothing
        return true
    end
    local slow = state:get("mode_slow")
    if slow then
        ngx.sleep(slow / 1000)
    end
    return false
end

return M
