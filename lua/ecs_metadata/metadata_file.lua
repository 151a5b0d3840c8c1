-- ecs_metadata.metadata_file: the container metadata file, which the ECS
-- agent on EC2 writes when ECS_ENABLE_CONTAINER_METADATA=true and points
-- the container at through ECS_CONTAINER_METADATA_FILE.
--
-- Caveats:
--  * The agent rewrites the file as the container starts. It is complete
--    when MetadataFileStatus (the first design's `Status`, next to
--    `Version`) is "READY"; until then the field is absent (the agent drops
--    the empty value), so a file without either field is not ready.
--  * A read can catch the file mid-rewrite (Windows rewrites it in place):
--    empty, truncated or mixed JSON. Such a read is retried a few times,
--    TORN_PAUSE apart and doubling; half a document is never answered.
--  * opts.wait = seconds polls (POLL_INTERVAL apart, sleeping through the
--    transport's sleep, so under OpenResty ngx.sleep) until READY, and
--    answers the last failure -- `not_ready` for a file that never got
--    ready -- when the time is up. Only READY documents are cached, and
--    failures never are: there is no endpoint to spare, and a file that
--    becomes READY is seen at the next read.

local type = type
local tostring = tostring

local core = require "ecs_metadata.core"
local transport = require "ecs_metadata.transport"

local read_file = core._read_file
local decode = core.decode

local _M = {}

local POLL_INTERVAL = 0.1      -- seconds between reads while waiting
local TORN_RETRIES = 4         -- re-reads of a torn file: 10, 20, 40, 80 ms
local TORN_PAUSE = 0.01
_M.POLL_INTERVAL = POLL_INTERVAL

-- One read: the READY document, or nil, msg, code.
local function read_once(path, o)
    local s, msg, code = read_file(path, o.max_bytes)
    if not s then
        return nil, msg, code
    end
    local doc
    doc, msg, code = decode(s, {
        keep_null = o.keep_null, array_mt = o.array_mt, max_depth = o.max_depth,
    })
    if code then
        return nil, path .. ": " .. msg, code
    end
    if type(doc) ~= "table" then
        return nil, path .. ": bad_json: not a JSON object", "bad_json"
    end
    local status = doc.MetadataFileStatus
    if status == nil then
        status = doc.Status
    end
    if status == "READY" then
        return doc
    end
    if status == nil then
        return nil, path .. ": not ready yet (no MetadataFileStatus)",
               "not_ready"
    end
    return nil, path .. ": not ready yet (MetadataFileStatus is "
        .. tostring(status) .. ")", "not_ready"
end

-- The READY document, polling and re-reading as the caveats say, or the
-- last failure.
local function read_ready(o, path)
    local mod = transport.module(o)
    local now, sleep = mod.now, mod.sleep
    local deadline = now() + (o.wait or 0)
    local torn = 0
    while true do
        local doc, msg, code = read_once(path, o)
        if doc then
            return doc
        end
        if code == "too_large" then
            return nil, msg, code
        end
        local pause
        if code == "bad_json" and torn < TORN_RETRIES then
            pause = TORN_PAUSE * 2 ^ torn
            torn = torn + 1
        else
            local left = deadline - now()
            if left <= 0 then
                return nil, msg, code
            end
            pause = POLL_INTERVAL < left and POLL_INTERVAL or left
        end
        sleep(pause)
    end
end

-- read(c, o, path, fname) -> document | nil, msg, code
--   c      the client (its cache)
--   o      the call's settings (wait, max_bytes, decoder options)
--   fname  the public function: "metadata_file", or "container" when the
--          file is the only source
function _M.read(c, o, path, fname)
    return c:cached(path, c:policy(fname, o), function()
        local doc, msg, code = read_ready(o, path)
        if doc == nil then
            return nil, fname .. ": " .. msg, code
        end
        return doc
    end)
end

return _M
