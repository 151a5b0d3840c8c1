-- ecs_metadata.client: the client object behind every public function. It
-- holds the settings (ecs_metadata.options), the transports of its calls
-- (ecs_metadata.transport, so connections are kept alive), what discovery
-- found, and its cache (ecs_metadata.cache).
--
-- The source modules (metadata_file, protection, credentials) use a client
-- through three methods, and nothing else of it:
--   c:request(o, method, url, body, how)   one logical request (request.lua)
--   c:cached(key, policy, fetch)           read through the cache
--   c:policy(what, o)                      the cache policy of a call
--
-- Caveats:
--  * A cache hit returns the very table stored: results are shared and must
--    be treated as read-only. (A copy would cost far more than the hit.)
--  * Each source is also a field of the client itself: a C cell that answers
--    a fresh result of the call without options in one C call. Everything
--    else (options, a miss) goes to the Lua method below.
--  * Without options discovery is done once per client and remembered;
--    with options, the options are checked and discovery is done again
--    with them.

local type = type
local pairs = pairs
local ipairs = ipairs
local setmetatable = setmetatable

local core = require "ecs_metadata.core"
local cache = require "ecs_metadata.cache"
local discovery = require "ecs_metadata.discovery"
local errors = require "ecs_metadata.errors"
local options = require "ecs_metadata.options"
local request = require "ecs_metadata.request"
local transport = require "ecs_metadata.transport"

local decode = core.decode
local prepare = transport.prepare
local argerror = errors.argerror
local endpoint = discovery.endpoint
local make_url = discovery.url
local call_settings = options.call
local ttl_of = options.ttl_of

-- Under nginx (OpenResty, or nginx's Lua module): the worker's pid, and
-- the cache that knows nginx (resty/shared.lua).
local ngx = rawget(_G, "ngx")
local under_nginx = type(ngx) == "table" and type(ngx.shared) == "table"
    and ngx.get_phase ~= nil
local worker_pid = under_nginx and ngx.worker.pid or nil

local _M = { _NAME = "ecs_metadata.client" }
local mt = { __index = _M }

_M.DEFAULT_CACHE_TTL = options.DEFAULT_CACHE_TTL
_M.DEFAULTS = options.DEFAULTS

-- The HTTP sources of the task metadata endpoint (tasks and tasks_stats:
-- Managed Instances daemon tasks only, see daemon.lua).
local SOURCES = {
    "container", "task", "task_with_tags", "container_stats", "task_stats",
    "tasks", "tasks_stats",
}
_M.SOURCES = SOURCES
local IS_SOURCE = {}
for _, what in ipairs(SOURCES) do
    IS_SOURCE[what] = true
end

-- What the cache may do for each function: answer a stale copy when a fetch
-- fails (metadata yes; stats and protection never: an old number is a
-- wrong one; credentials only until their Expiration, see credentials.lua),
-- and answer a failure again for error_ttl (not for a local file: there is
-- no endpoint to spare).
local TRAITS = {
    container = { stale = true, negative = true },
    task = { stale = true, negative = true },
    task_with_tags = { stale = true, negative = true },
    container_stats = { stale = false, negative = true },
    task_stats = { stale = false, negative = true },
    tasks = { stale = true, negative = true },
    tasks_stats = { stale = false, negative = true },
    protection = { stale = false, negative = true },
    credentials = { stale = true, negative = true },
    metadata_file = { stale = true, negative = false },
}
_M.TRAITS = TRAITS

-- ===================================================================
-- The interface of the source modules
-- ===================================================================

-- how.as_string: a 2xx answer's body as it came (request.raw), for the
-- nginx cache's shared dict.
function _M:request(o, method, url, body, how)
    if how and how.as_string then
        return request.raw(self, o, method, url, body, how)
    end
    return request.json(self, o, method, url, body, how)
end

function _M:cached(key, policy, fetch)
    return self._cache:fetch(key, policy, fetch)
end

-- The cache policy of a call of `what` with settings o (see cache.fetch).
-- Calls without options share one policy per function, which also feeds
-- the function's cells.
-- Under nginx, a source's documents are kept serialized in the shared dict
-- and decoded in each worker with the client's decoder options.
local function decoder(what, o)
    local dopts = { keep_null = o.keep_null, array_mt = o.array_mt,
                    max_depth = o.max_depth }
    local daemon_source = require("ecs_metadata.daemon").PATHS[what]
    return function(raw, url)
        local v, msg, code = decode(raw, dopts)
        if v == nil then
            return nil, what .. ": GET " .. prepare(url) .. ": " .. msg, code
        end
        if daemon_source then
            v, msg, code = require("ecs_metadata.daemon").check(what, v,
                errors.label(url))
            if v == nil then
                return nil, what .. ": " .. msg, code
            end
        end
        return v
    end
end

local function make_policy(what, o)
    local traits = TRAITS[what]
    return {
        ttl = ttl_of(o, what),
        error_ttl = traits.negative and o.error_ttl or 0,
        stale_ttl = traits.stale and o.stale_ttl or 0,
        -- For the nginx cache (resty/shared.lua).
        timeout = o.timeout,
        name = what,
        decode = IS_SOURCE[what] and decoder(what, o) or nil,
        resty = what ~= "metadata_file",
    }
end

function _M:policy(what, o)
    if o ~= self.settings then
        return make_policy(what, o)
    end
    local p = self._policies[what]
    if not p then
        p = make_policy(what, o)
        p.cell = what
        self._policies[what] = p
    end
    return p
end

function _M:drop(key, what)
    self._cache:drop(key, what)
end

-- ===================================================================
-- Construction
-- ===================================================================

local source_methods = {}     -- name -> the Lua method behind the cell

-- new([opts][, fname]) -> client | nil, msg, "invalid_argument"
-- fname is what misuse messages call the constructor (Fargate's own).
function _M.new(opts, fname, own)
    fname = fname or "new"
    if opts == nil then
        opts = {}
    elseif type(opts) ~= "table" then
        argerror(1, fname, "table or nil expected, got " .. type(opts))
    end
    local s, msg, code = options.client(opts, fname, own)
    if not s then
        return nil, msg, code
    end
    local self = setmetatable({
        settings = s,
        env = s.env,
        _cache = cache.new(),
        _policies = {},
        _transports = {},
        _urls = {},          -- source name -> url, for calls without opts
    }, mt)
    for name, method in pairs(source_methods) do
        self[name] = self._cache:cell(name, method, self)
    end
    if under_nginx then
        local ok2, msg2 = _M._use_nginx(self, opts, fname)
        if not ok2 then
            return nil, msg2, "invalid_argument"
        end
    end
    return self
end

-- Under nginx: the client's results go through resty/shared.lua, shared by
-- every worker through the lua_shared_dict `shared_dict` when nginx.conf
-- declares it (an explicitly named one must exist).
function _M._use_nginx(self, opts, fname)
    local shared = require "ecs_metadata.resty.shared"
    local name = self.settings.shared_dict
    local dict = name and shared.dict(name) or nil
    if name and not dict and opts.shared_dict ~= nil then
        return nil, fname .. ": no lua_shared_dict '" .. name .. "' in "
            .. "nginx.conf (declare `lua_shared_dict " .. name .. " 1m;` "
            .. "in its http block)"
    end
    self._cache:use_resty(shared.new(dict))
    return true
end

-- Feeds a cell of the module's own (ecs.task() over the default client,
-- core._memo's set) with every fresh result of the call without options.
function _M:module_cell(name, set)
    self._cache:feed_cell(name, set)
end

-- Closes the transports; the client must not be used afterwards.
function _M:close()
    transport.close(self)
end

-- Forgets every cached result, failures included.
function _M:clear_cache()
    self._cache:clear()
end

-- The settings of a call: the client's own without opts, else opts over
-- them (or nil, msg, code). Raises for misuse, at the user's line.
local function settings(self, opts, fname, argn)
    if opts == nil then
        return self.settings
    end
    return call_settings(self.settings, opts, fname, argn or 1)
end

-- ===================================================================
-- Discovery
-- ===================================================================

-- The client's own endpoint, found once per process: under nginx a worker
-- looks at its own environment again, since what the master found in
-- init_by_lua may not be there (nginx hides every variable nginx.conf does
-- not name with `env`).
local function own_endpoint(self)
    local d = self._disc
    local pid = worker_pid and worker_pid()
    if d == nil or d.pid ~= pid then
        local s = self.settings
        local base, version, code = endpoint(s.env, s.version,
                                             s.link_local_url)
        d = { base = base, version = version, code = code, pid = pid }
        self._disc = d
        self._urls = {}
    end
    if d.base then
        return d.base, d.version
    end
    return nil, d.version, d.code
end

-- endpoint([opts]) -> base url (or file path), version | nil, msg, code
function _M:endpoint(opts)
    local base, version, code
    if opts == nil then
        base, version, code = own_endpoint(self)
    else
        local o, msg
        o, msg, code = settings(self, opts, "endpoint")
        if not o then
            return nil, msg, code
        end
        base, version, code = endpoint(o.env, o.version, o.link_local_url)
    end
    if not base then
        return nil, "endpoint: " .. version, code
    end
    return base, version
end

-- ===================================================================
-- The metadata sources
-- ===================================================================

local metadata_file = require "ecs_metadata.metadata_file"
local daemon = require "ecs_metadata.daemon"

local DAEMON = daemon.PATHS

local function fetch(self, what, opts)
    local o, base, version, code = self.settings
    if opts == nil then
        base, version, code = own_endpoint(self)
    else
        local msg
        o, msg, code = settings(self, opts, what)
        if not o then
            return nil, msg, code
        end
        base, version, code = endpoint(o.env, o.version, o.link_local_url)
    end
    if not base then
        return nil, what .. ": " .. version, code
    end
    if DAEMON[what] and version ~= "v4" then
        return daemon.not_v4(what, version)
    end
    if version == "file" then
        if what == "container" then
            return metadata_file.read(self, o, base, "container")
        end
        return nil, what .. ": not available from the container metadata "
            .. "file, the only source here (no task metadata endpoint)",
            "invalid_argument"
    end
    -- Without opts the url is the client's own, worked out once.
    local url = opts == nil and self._urls[what]
    if not url then
        local err
        url, err, code = make_url(base, version, what, o.container_id)
        if not url then
            return nil, err, code
        end
        if opts == nil then
            self._urls[what] = url
        end
    end
    return self._cache:fetch(url, self:policy(what, o),
        function(raw)
            -- raw: the nginx cache stores the body as it came.
            local v, msg, c, status = (raw and request.raw or request.json)(
                self, o, "GET", url)
            if v == nil then
                if status == 404 and DAEMON[what] then
                    msg = msg .. " (" .. daemon.NOT_HERE .. ")"
                end
                return nil, what .. ": " .. msg, c, status
            end
            -- (A raw body is checked by the policy's decoder instead.)
            if DAEMON[what] and not raw then
                v, msg, c = daemon.check(what, v, errors.label(url))
                if v == nil then
                    return nil, what .. ": " .. msg, c, 200
                end
            end
            return v
        end)
end

-- c:refresh_every(seconds[, sources]) -> true | nil, msg, code: under
-- nginx, one timer for the node keeps these sources fresh (resty/refresh.lua).
function _M:refresh_every(seconds, sources)
    return require("ecs_metadata.resty.refresh").every(self, seconds,
        sources, "refresh_every")
end

-- Refreshes `what` (a source, called without options) through the nginx
-- cache unless the node's document is younger than min_age: for
-- refresh_every's timer. true | false | nil, msg, code.
function _M:_refresh(what, min_age)
    local r = self._cache.resty
    if not r then
        return nil, what .. ": refresh_every works under nginx only",
            "invalid_argument"
    end
    local base, version, code = own_endpoint(self)
    if not base then
        return nil, what .. ": " .. version, code
    end
    if version == "file" then
        return nil, what .. ": the only source here is the container "
            .. "metadata file, which refresh_every does not read",
            "invalid_argument"
    end
    local url = self._urls[what]
    if not url then
        local err
        url, err, code = make_url(base, version, what, nil)
        if not url then
            return nil, err, code
        end
        self._urls[what] = url
    end
    local o = self.settings
    return r:refresh(url, self:policy(what, o), function(raw)
        local v, msg, c, status = (raw and request.raw or request.json)(
            self, o, "GET", url)
        if v == nil then
            return nil, what .. ": " .. msg, c, status
        end
        return v
    end, min_age)
end

for _, what in ipairs(SOURCES) do
    local method = function(self, opts)
        return fetch(self, what, opts)
    end
    source_methods[what] = method
    _M[what] = method
end

function _M:metadata_file(opts)
    local o, msg, code = settings(self, opts, "metadata_file")
    if not o then
        return nil, msg, code
    end
    local path
    path, msg, code = endpoint(o.env, "file")
    if not path then
        return nil, "metadata_file: " .. msg, code
    end
    return metadata_file.read(self, o, path, "metadata_file")
end

local protection = require "ecs_metadata.protection"

function _M:protection(opts)
    local o, msg, code = settings(self, opts, "protection")
    if not o then
        return nil, msg, code
    end
    return protection.get(self, o, opts)
end

function _M:protect(enabled, minutes, opts)
    if type(enabled) ~= "boolean" then
        argerror(1, "protect", "boolean expected, got " .. type(enabled))
    end
    if type(minutes) == "table" and opts == nil then
        minutes, opts = nil, minutes       -- protect(false, opts)
    end
    if minutes ~= nil and type(minutes) ~= "number" then
        argerror(2, "protect", "number or nil expected, got "
            .. type(minutes))
    end
    local o, msg, code = settings(self, opts, "protect", 3)
    if not o then
        return nil, msg, code
    end
    return protection.set(self, o, opts, enabled, minutes)
end

local credentials = require "ecs_metadata.credentials"

function _M:credentials(opts)
    local o, msg, code = settings(self, opts, "credentials")
    if not o then
        return nil, msg, code
    end
    return credentials.get(self, o)
end

-- ===================================================================
-- What the newer agents add: fault injection, the region, launch types
-- ===================================================================

local fault = require "ecs_metadata.fault"

-- fault(kind, action[, params][, opts]) -> the agent's Status | nil, msg, code
function _M:fault(kind, action, params, opts)
    if type(kind) ~= "string" then
        argerror(1, "fault", "string expected, got " .. type(kind))
    end
    if type(action) ~= "string" then
        argerror(2, "fault", "string expected, got " .. type(action))
    end
    if params ~= nil and type(params) ~= "table" then
        argerror(3, "fault", "table or nil expected, got " .. type(params))
    end
    local o, msg, code = settings(self, opts, "fault", 4)
    if not o then
        return nil, msg, code
    end
    return fault.run(self, o, opts, kind, action, params)
end

local region = require "ecs_metadata.region"
local launch_type = require "ecs_metadata.launch_type"
local getenv = discovery.getenv

-- The task document a region or a launch type is read from: the task's,
-- or the container metadata file's where that is the only source (it has
-- TaskARN and AvailabilityZone too). The options were checked already.
local function task_document(self, o, opts)
    local _, version = endpoint(o.env, o.version, o.link_local_url)
    if version == "file" then
        return self:metadata_file(opts)
    end
    if opts == nil then
        return self:task()
    end
    return self:task(opts)
end

local function resolver(module, fname)
    return function(self, opts)
        local o, msg, code = settings(self, opts, fname)
        if not o then
            return nil, msg, code
        end
        return module.resolve(function(name) return getenv(o.env, name) end,
                              function() return task_document(self, o, opts) end)
    end
end

-- region([opts]) -> region, source | nil, msg, code
_M.region = resolver(region, "region")
-- launch_type([opts]) -> launch type, source | nil, msg, code
_M.launch_type = resolver(launch_type, "launch_type")

-- ===================================================================
-- The derived views that fetch (views/methods.lua)
-- ===================================================================

local views = require "ecs_metadata.views.methods"

-- summary([opts]), resource([opts]), prometheus([opts]): built from this
-- client's container(), task() (and task_stats()), or from tables in opts.
function _M:summary(opts)
    return views.summary(self, opts)
end

function _M:resource(opts)
    return views.resource(self, opts)
end

function _M:prometheus(opts)
    return views.prometheus(self, opts)
end

return _M
