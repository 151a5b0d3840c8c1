-- ecs_metadata: Amazon ECS container and task metadata, stats, the container
-- metadata file, task scale-in protection and task role credentials, as Lua
-- tables.
--
--   local ecs = require "ecs_metadata"
--   local task, err, code = ecs.task()
--
-- Every function answers its value, or nil, message, code (see README, "Lua
-- API"). The module-level functions share one default client, made on first
-- use and kept (so its connection stays alive); ecs.new(opts) makes
-- independent ones with their own settings and cache.
--
-- Caveats:
--  * Results may be shared with the cache: treat them as read-only.
--  * The default client reads the environment with os.getenv when it is
--    first used, and remembers what it found.

local core = require "ecs_metadata.core"
local client = require "ecs_metadata.client"

local new_client = client.new

local _M = {
    _NAME = "ecs_metadata",
    _VERSION = core._VERSION,
    null = core.null,
    decode = core.decode,
    new = new_client,
}

local default      -- the default client, made on first use

-- The module's sources answer a fresh result of the default client's
-- opts-less call from a cell of core._memo: a cached ecs.task() is one C
-- call. The client tells the cells what it caches (and drops) through
-- _on_hot; anything else goes to the client.
local cells = {}

local function get_default()
    local c, msg = new_client()
    if not c then
        -- Without options nothing can be invalid; this is a broken install.
        error("ecs_metadata: cannot create the default client: " .. msg, 3)
    end
    c._on_hot = function(what, value, ttl)
        local set = cells[what]
        if set then
            set(value, ttl)
        end
    end
    default = c
    return c
end

local function source(what)
    local get, set = core._memo(function(opts)
        local c = default or get_default()
        return c[what](c, opts)
    end)
    cells[what] = set
    return get
end

_M.container = source("container")
_M.task = source("task")
_M.task_with_tags = source("task_with_tags")
_M.container_stats = source("container_stats")
_M.task_stats = source("task_stats")

function _M.metadata_file(opts)
    local c = default or get_default()
    return c:metadata_file(opts)
end

function _M.protection(opts)
    local c = default or get_default()
    return c:protection(opts)
end

function _M.protect(enabled, minutes, opts)
    local c = default or get_default()
    return c:protect(enabled, minutes, opts)
end

function _M.credentials(opts)
    local c = default or get_default()
    return c:credentials(opts)
end

function _M.endpoint(opts)
    local c = default or get_default()
    return c:endpoint(opts)
end

-- ecs.Fargate(opts): the Python helper's interface (see fargate.lua).
function _M.Fargate(opts)
    return require("ecs_metadata.fargate").new(opts)
end

return _M
