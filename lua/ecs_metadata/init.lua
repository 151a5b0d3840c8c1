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

local pairs = pairs
local ipairs = ipairs
local error = error

local new_client = client.new
-- core._memo, or its Lua twin under nginx, where a miss may yield.
local cache_memo = require("ecs_metadata.cache").memo

local _M = {
    _NAME = "ecs_metadata",
    _VERSION = core._VERSION,
    null = core.null,
    decode = core.decode,
    new = new_client,
}

local default      -- the default client, made on first use

-- The module's metadata functions are cells of the default client's cache
-- (see cache.lua): a fresh ecs.task() is one C call. The cells exist before
-- the client does; it is made, and learns of them, on the first miss.
local cells = {}

local function get_default()
    if default then
        return default
    end
    local c, msg = new_client()
    if not c then
        -- Without options nothing can be invalid; this is a broken install.
        error("ecs_metadata: cannot create the default client: " .. msg, 0)
    end
    for name, set in pairs(cells) do
        c:module_cell(name, set)
    end
    default = c
    return c
end

local function source(what)
    local get, set = cache_memo(function(opts)
        local c = get_default()
        return c[what](c, opts)
    end)
    cells[what] = set
    return get
end

for _, what in ipairs(client.SOURCES) do
    _M[what] = source(what)
end

-- Every other method of the default client, as a module function.
local DEFAULT_METHODS = {
    "metadata_file", "protection", "protect", "credentials", "endpoint",
    "fault", "region", "launch_type", "summary", "resource", "prometheus",
}
for _, name in ipairs(DEFAULT_METHODS) do
    _M[name] = function(...)
        local c = get_default()
        return c[name](c, ...)
    end
end

-- The views over tables the caller has (no I/O).
local arn = require "ecs_metadata.views.arn"
local stats = require "ecs_metadata.views.stats"

function _M.arn(s)
    return arn.parse(s, "arn")
end

function _M.cluster_name(cluster)
    return arn.cluster_name(cluster, "cluster_name")
end

function _M.stats_view(s, prev)
    return stats.stats_view(s, prev, "stats_view")
end

function _M.task_stats_view(task_stats, task, prev)
    return stats.task_stats_view(task_stats, task, prev, "task_stats_view")
end

-- Under OpenResty/nginx, in init_worker_by_lua: one timer for the whole
-- node keeps the default client's sources fresh (resty/refresh.lua).
function _M.refresh_every(seconds, sources)
    local c = get_default()
    return c:refresh_every(seconds, sources)
end

-- Drops every cached result of the default client.
function _M.clear_cache()
    if default then
        default:clear_cache()
    end
end

-- ecs.Fargate(opts): the Python helper's interface (see fargate.lua).
function _M.Fargate(opts)
    return require("ecs_metadata.fargate").new(opts)
end

return _M
