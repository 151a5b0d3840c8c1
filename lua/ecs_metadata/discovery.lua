-- ecs_metadata.discovery: which metadata source this process has, and the
-- url (or path) of each thing it can be asked for.
--
--   v4    ECS_CONTAINER_METADATA_URI_V4      (agent 1.39+, Fargate 1.4+)
--   v3    ECS_CONTAINER_METADATA_URI         (agent 1.21+, Fargate 1.3)
--   file  ECS_CONTAINER_METADATA_FILE        (EC2 with the file enabled)
--   v2    <link_local_url>/v2                (awsvpc tasks; asked for only)
--
-- Caveats:
--  * v2 is never discovered: nothing in the environment says it is there,
--    and finding out would mean probing the link-local address, which must
--    never be touched outside ECS. It is used only with version = "v2".
--  * The environment is a table of name -> value when the caller gives one
--    (opts.env, which then replaces os.getenv entirely), else os.getenv. An
--    empty value counts as unset.

local type = type
local getenv = os.getenv
local byte = string.byte
local sub = string.sub
local ipairs = ipairs
local find = string.find

local transport = require "ecs_metadata.transport"

local concat = table.concat

local _M = {}

-- Under nginx a worker sees only the variables nginx.conf names with `env`
-- (the master, in init_by_lua, sees them all): a not_on_ecs there says
-- which lines to add. Nothing is said when the caller gave opts.env.
local ngx = rawget(_G, "ngx")
local under_nginx = type(ngx) == "table" and ngx.get_phase ~= nil

function _M.env_hint(env, names)
    if env ~= nil or not under_nginx then
        return ""
    end
    local lines = {}
    for i, name in ipairs(names) do
        lines[i] = "env " .. name .. ";"
    end
    return " (nginx passes a variable to its workers only when nginx.conf "
        .. "declares it: add `" .. concat(lines, " ") .. "` to its main "
        .. "context)"
end

_M.DEFAULT_LINK_LOCAL_URL = "http://169.254.170.2"

_M.versions = { v4 = true, v3 = true, v2 = true, file = true }

local ENV = {
    v4 = "ECS_CONTAINER_METADATA_URI_V4",
    v3 = "ECS_CONTAINER_METADATA_URI",
    file = "ECS_CONTAINER_METADATA_FILE",
}
_M.ENV = ENV

-- Path below the base, per version and function. A path ending in "/" takes
-- the container id (v2's per-container forms).
local PATHS = {
    v4 = {
        container = "", task = "/task", task_with_tags = "/taskWithTags",
        container_stats = "/stats", task_stats = "/task/stats",
        -- Managed Instances daemon tasks only (see daemon.lua).
        tasks = "/tasks", tasks_stats = "/tasks/stats",
    },
    v3 = {
        container = "", task = "/task", task_with_tags = "/taskWithTags",
        container_stats = "/stats", task_stats = "/task/stats",
    },
    v2 = {
        container = "/metadata/", task = "/metadata",
        task_with_tags = "/metadataWithTags",
        container_stats = "/stats/", task_stats = "/stats",
    },
}
_M.PATHS = PATHS

-- The value of an environment variable, from env when given.
local function lookup(env, name)
    local v
    if env then
        v = env[name]
    else
        v = getenv(name)
    end
    if type(v) ~= "string" or v == "" then
        return nil
    end
    return v
end
_M.getenv = lookup

-- A base url without its trailing slash.
local function trim_slash(s)
    if byte(s, -1) == 47 then   -- "/"
        return sub(s, 1, -2)
    end
    return s
end
_M.trim_slash = trim_slash

-- A base url from the environment, or nil, msg, "invalid_argument" when it
-- is no http url with a host (a bare "http://" would otherwise make the
-- paths below it hosts of their own: http://task, http://stats).
local function base_url(name, v)
    local why = transport.check_url(v)
    if why then
        return nil, name .. " is not a usable url: " .. why,
               "invalid_argument"
    end
    return trim_slash(v)
end
_M.base_url = base_url

-- endpoint(env, version, link_local_url) -> base, version
--                                        | nil, msg, code
-- version nil = discover; a known version = only that one. The code is
-- not_on_ecs, or invalid_argument for a variable that is no usable url.
function _M.endpoint(env, version, link_local_url)
    if version == "v2" then
        return trim_slash(link_local_url or _M.DEFAULT_LINK_LOCAL_URL) .. "/v2",
               "v2"
    end
    if version then
        local name = ENV[version]
        local v = lookup(env, name)
        if not v then
            return nil, "not on ECS: " .. name .. " is not set"
                .. _M.env_hint(env, { name }), "not_on_ecs"
        end
        if version == "file" then
            return v, "file"
        end
        local base, msg, code = base_url(name, v)
        if not base then
            return nil, msg, code
        end
        return base, version
    end
    for _, which in ipairs({ "v4", "v3" }) do
        local v = lookup(env, ENV[which])
        if v then
            local base, msg, code = base_url(ENV[which], v)
            if not base then
                return nil, msg, code
            end
            return base, which
        end
    end
    local v
    v = lookup(env, ENV.file)
    if v then
        return v, "file"
    end
    return nil, "not on ECS: none of " .. ENV.v4 .. ", " .. ENV.v3 .. " or "
        .. ENV.file .. " is set"
        .. _M.env_hint(env, { ENV.v4, ENV.v3, ENV.file }), "not_on_ecs"
end

-- url(base, version, what, container_id) -> url | nil, msg, code
-- `what` is a source of PATHS (container, task, ...). Not for version
-- "file" (see the client). A source the version lacks is invalid_argument,
-- answered without a request.
function _M.url(base, version, what, container_id)
    local path = PATHS[version][what]
    if path == nil then
        return nil, what .. ": the task metadata endpoint " .. version
            .. " has no such source", "invalid_argument"
    end
    if byte(path, -1) == 47 then
        if container_id == nil then
            return nil, what .. ": the v2 endpoint needs opts.container_id "
                .. "(the Docker id of the container)", "invalid_argument"
        end
        -- Docker ids are hex; anything else ('.', '..', '/') would make
        -- another path of the url.
        if container_id == "" or #container_id > 64
           or find(container_id, "[^%x]") then
            return nil, what .. ": opts.container_id must be a Docker "
                .. "container id (1 to 64 hex digits)", "invalid_argument"
        end
        return base .. path .. container_id
    end
    return base .. path
end


return _M
