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
    local get, set = core._memo(function(opts)
        local c = get_default()
        return c[what](c, opts)
    end)
    cells[what] = set
    return get
end

for _, what in ipairs(client.SOURCES) do
    _M[what] = source(what)
end

function _M.metadata_file(opts)
    local c = get_default()
    return c:metadata_file(opts)
end

function _M.protection(opts)
    local c = get_default()
    return c:protection(opts)
end

function _M.protect(enabled, minutes, opts)
    local c = get_default()
    return c:protect(enabled, minutes, opts)
end

function _M.credentials(opts)
    local c = get_default()
    return c:credentials(opts)
end

function _M.endpoint(opts)
    local c = get_default()
    return c:endpoint(opts)
end

function _M.fault(kind, action, params, opts)
    local c = get_default()
    return c:fault(kind, action, params, opts)
end

function _M.region(opts)
    local c = get_default()
    return c:region(opts)
end

function _M.launch_type(opts)
    local c = get_default()
    return c:launch_type(opts)
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
