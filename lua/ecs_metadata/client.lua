-- ecs_metadata.client: the client object behind every public function. It
-- holds the settings, one transport (so connections are kept alive between
-- calls), the memo of discovery and the cache.
--
-- Caveats:
--  * A cache hit returns the very table stored: results are shared and must
--    be treated as read-only. (A copy would cost far more than the hit.)
--  * Without opts a call takes a short path: discovery is done once per
--    client and remembered, and a fresh cache entry is answered after one
--    table lookup and one clock read. With opts, the options are checked
--    and discovery is done again with them.
--  * Errors are never cached.

local type = type
local tostring = tostring
local pairs = pairs
local setmetatable = setmetatable
local huge = math.huge
local floor = math.floor

local errors = require "ecs_metadata.errors"
local discovery = require "ecs_metadata.discovery"
local request = require "ecs_metadata.request"
local transport_c = require "ecs_metadata.transport.curl"

local argerror = errors.argerror
local endpoint = discovery.endpoint
local make_url = discovery.url

local _M = { _NAME = "ecs_metadata.client" }
local mt = { __index = _M }

local DEFAULT_TIMEOUT = 3                       -- seconds, like the Python helper
local DEFAULT_CONNECT_TIMEOUT = 1               -- seconds
local DEFAULT_RETRIES = 2
local DEFAULT_MAX_BYTES = 4 * 1024 * 1024
local DEFAULT_PROTECTION_TIMEOUT = 5            -- the agent itself waits 4 s on ECS

-- Seconds a result is kept, per function. Metadata changes rarely (a
-- container's status, a task's health); stats and protection are asked for
-- because they change. Credentials follow their own Expiration.
local DEFAULT_CACHE_TTL = {
    container = 1, task = 1, task_with_tags = 1, metadata_file = 1,
    container_stats = 0, task_stats = 0, protection = 0,
}

_M.DEFAULT_TIMEOUT = DEFAULT_TIMEOUT
_M.DEFAULT_CONNECT_TIMEOUT = DEFAULT_CONNECT_TIMEOUT
_M.DEFAULT_RETRIES = DEFAULT_RETRIES
_M.DEFAULT_MAX_BYTES = DEFAULT_MAX_BYTES
_M.DEFAULT_PROTECTION_TIMEOUT = DEFAULT_PROTECTION_TIMEOUT
_M.DEFAULT_CACHE_TTL = DEFAULT_CACHE_TTL

-- ===================================================================
-- Options
-- ===================================================================

-- Option name -> Lua type. Options not listed are ignored (Fargate and
-- callers may carry their own).
local CLIENT_OPTIONS = {
    timeout = "number", connect_timeout = "number", retries = "number",
    max_bytes = "number", version = "string", link_local_url = "string",
    env = "table", protection_timeout = "number", keep_null = "boolean",
    array_mt = "table", max_depth = "number", headers = "table",
    transport = "table",
    -- cache_ttl: a number or a table (checked apart)
}
local CALL_OPTIONS = {
    timeout = "number", connect_timeout = "number", retries = "number",
    max_bytes = "number", version = "string", link_local_url = "string",
    env = "table", cache_ttl = "number", container_id = "string",
    wait = "number",
}

local function invalid(msg)
    return nil, msg, "invalid_argument"
end

local function is_finite(x)
    return x == x and x > -huge and x < huge
end

-- Checks the values of a table of options already type-checked.
-- Returns true, or nil, msg, "invalid_argument". Raises for an unknown
-- version (misuse).
local function check_values(t, fname, argn, level)
    local v = t.version
    if v ~= nil and not discovery.versions[v] then
        argerror(argn, fname, "unknown version '" .. v
            .. "' (expected \"v4\", \"v3\", \"v2\" or \"file\")", level + 1)
    end
    for _, k in pairs({ "timeout", "connect_timeout", "protection_timeout" }) do
        v = t[k]
        if v ~= nil and not (is_finite(v) and v > 0) then
            return invalid(k .. " must be a positive number of seconds")
        end
    end
    v = t.retries
    if v ~= nil and not (is_finite(v) and v >= 0 and v == floor(v)) then
        return invalid("retries must be a whole number >= 0")
    end
    v = t.max_bytes
    if v ~= nil and not (is_finite(v) and v >= 1 and v == floor(v)) then
        return invalid("max_bytes must be a whole number >= 1")
    end
    v = t.max_depth
    if v ~= nil and not (is_finite(v) and v >= 1 and v == floor(v)) then
        return invalid("max_depth must be a whole number >= 1")
    end
    v = t.wait
    if v ~= nil and not (is_finite(v) and v >= 0) then
        return invalid("wait must be a number of seconds >= 0")
    end
    v = t.cache_ttl
    if type(v) == "number" and not (v >= 0 and v == v) then
        return invalid("cache_ttl must be a number of seconds >= 0")
    end
    v = t.link_local_url
    if v ~= nil then
        local ok, msg, code = discovery.check_base_url("link_local_url", v)
        if not ok then
            return nil, msg, code
        end
    end
    return true
end

local function check_types(t, spec, fname, argn, level)
    for k, want in pairs(spec) do
        local v = t[k]
        if v ~= nil and type(v) ~= want then
            argerror(argn, fname, "option '" .. k .. "': " .. want
                .. " expected, got " .. type(v), level + 1)
        end
    end
end

local function check_ttl(v, fname, argn, level)
    if type(v) == "number" then
        if not (v >= 0 and v == v) then
            return invalid("cache_ttl must be a number of seconds >= 0")
        end
        return true
    end
    if type(v) ~= "table" then
        argerror(argn, fname, "option 'cache_ttl': number or table expected, "
            .. "got " .. type(v), level + 1)
    end
    for k, x in pairs(v) do
        if DEFAULT_CACHE_TTL[k] == nil and k ~= "credentials" then
            argerror(argn, fname, "option 'cache_ttl': unknown function '"
                .. tostring(k) .. "'", level + 1)
        end
        if type(x) ~= "number" then
            argerror(argn, fname, "option 'cache_ttl." .. k
                .. "': number expected, got " .. type(x), level + 1)
        end
        if not (x >= 0 and x == x) then
            return invalid("cache_ttl." .. k
                .. " must be a number of seconds >= 0")
        end
    end
    return true
end

-- The settings of one call: opts over the client's own, or nil, msg, code.
-- Raises (at the caller of the public function) for misuse.
function _M._settings(self, opts, fname, argn)
    argn = argn or 1
    if type(opts) ~= "table" then
        argerror(argn, fname, "table expected, got " .. type(opts), 3)
    end
    check_types(opts, CALL_OPTIONS, fname, argn, 3)
    local ok, msg, code = check_values(opts, fname, argn, 3)
    if not ok then
        return nil, fname .. ": " .. msg, code
    end
    local o = {}
    for k in pairs(CALL_OPTIONS) do
        o[k] = opts[k]
    end
    return setmetatable(o, self._inherit)
end

-- The settings of a call: the client's own without opts. (A tail call, so
-- a misuse error still points at the caller of the public function.)
local function settings(self, opts, fname, argn)
    if opts == nil then
        return self
    end
    return _M._settings(self, opts, fname, argn)
end

-- ===================================================================
-- Construction
-- ===================================================================

-- new([opts]) -> client | nil, msg, "invalid_argument"
function _M.new(opts)
    if opts == nil then
        opts = {}
    elseif type(opts) ~= "table" then
        argerror(1, "new", "table or nil expected, got " .. type(opts))
    end
    check_types(opts, CLIENT_OPTIONS, "new", 1, 2)
    local ok, msg, code = check_values(opts, "new", 1, 2)
    if ok and opts.cache_ttl ~= nil then
        ok, msg, code = check_ttl(opts.cache_ttl, "new", 1, 2)
    end
    if not ok then
        return nil, "new: " .. msg, code
    end

    local ttl = {}
    for k, v in pairs(DEFAULT_CACHE_TTL) do
        ttl[k] = v
    end
    local cttl = opts.cache_ttl
    if type(cttl) == "number" then
        for k in pairs(DEFAULT_CACHE_TTL) do
            ttl[k] = cttl
        end
        ttl.credentials = cttl
    elseif type(cttl) == "table" then
        for k, v in pairs(cttl) do
            ttl[k] = v
        end
    end

    local tmod = opts.transport or transport_c
    local self = {
        timeout = opts.timeout or DEFAULT_TIMEOUT,
        connect_timeout = opts.connect_timeout or DEFAULT_CONNECT_TIMEOUT,
        retries = opts.retries or DEFAULT_RETRIES,
        max_bytes = opts.max_bytes or DEFAULT_MAX_BYTES,
        protection_timeout = opts.protection_timeout
            or DEFAULT_PROTECTION_TIMEOUT,
        version = opts.version,
        link_local_url = opts.link_local_url
            or discovery.DEFAULT_LINK_LOCAL_URL,
        env = opts.env,
        keep_null = opts.keep_null,
        array_mt = opts.array_mt,
        max_depth = opts.max_depth,
        _ttl = ttl,
        _cache = {},       -- key (url or path) -> entry
        _hot = {},         -- function name -> entry of its opts-less call
        _now = tmod.now,
        _clock = tmod.clock or tmod.now,
        _sleep = tmod.sleep,
    }
    self._inherit = { __index = self }
    local t, terr, tcode = tmod.new({
        timeout = self.timeout,
        connect_timeout = self.connect_timeout,
        max_bytes = self.max_bytes,
        headers = opts.headers,
    })
    if not t then
        return nil, "new: " .. terr, tcode
    end
    self._transport = t
    return setmetatable(self, mt)
end

-- Closes the transport; the client must not be used afterwards.
function _M:close()
    local t = self._transport
    if t and t.close then
        t:close()
    end
end

-- Forgets every cached result. (The tables are emptied, not replaced: the
-- module's functions keep a reference to the default client's.)
function _M:clear_cache()
    local on_hot = self._on_hot
    for name in pairs(self._hot) do
        if on_hot then
            on_hot(name, nil, 0)
        end
    end
    for _, t in pairs({ self._cache, self._hot }) do
        for k in pairs(t) do
            t[k] = nil
        end
    end
end

-- ===================================================================
-- Cache
-- ===================================================================

-- The ttl of `what` for this call.
function _M:_ttl_of(what, opts)
    local t = opts and opts.cache_ttl
    if t == nil then
        t = self._ttl[what]
    end
    return t
end

-- The cached value under key, if younger than ttl seconds.
function _M:_cache_get(key, ttl)
    if ttl and ttl > 0 then
        local e = self._cache[key]
        if e and self._clock() < e.time + ttl then
            return e.value
        end
    end
    return nil
end

-- Stores value under key for ttl seconds; with `hot`, it is also the entry
-- of the opts-less call of that function, and self._on_hot (the module's
-- one-call cache cells, for the default client) hears of it.
function _M:_cache_put(key, value, ttl, hot)
    if ttl and ttl > 0 then
        local t = self._clock()
        local e = { value = value, time = t, expires = t + ttl }
        self._cache[key] = e
        if hot then
            self._hot[hot] = e
            if self._on_hot then
                self._on_hot(hot, value, ttl)
            end
        end
    end
end

function _M:_cache_drop(key, hot)
    self._cache[key] = nil
    if hot then
        self._hot[hot] = nil
        if self._on_hot then
            self._on_hot(hot, nil, 0)
        end
    end
end

-- ===================================================================
-- Discovery
-- ===================================================================

-- The client's own endpoint, found once.
local function own_endpoint(self)
    local d = self._disc
    if d == nil then
        local base, version, code = endpoint(self.env, self.version,
                                             self.link_local_url)
        d = { base = base, version = version, code = code, urls = {} }
        self._disc = d
    end
    if d.base then
        return d.base, d.version
    end
    return nil, d.version, d.code
end

-- endpoint([opts]) -> base url (or file path), version | nil, msg, code
function _M:endpoint(opts)
    if opts == nil then
        return own_endpoint(self)
    end
    local o, msg, code = _M._settings(self, opts, "endpoint")
    if not o then
        return nil, msg, code
    end
    return endpoint(o.env, o.version, o.link_local_url)
end

-- ===================================================================
-- The metadata sources
-- ===================================================================

local metadata_file = require "ecs_metadata.metadata_file"

local function fetch(self, what, opts)
    local o, base, version, code = self
    if opts == nil then
        base, version, code = own_endpoint(self)
    else
        local msg
        o, msg, code = _M._settings(self, opts, what)
        if not o then
            return nil, msg, code
        end
        base, version, code = endpoint(o.env, o.version, o.link_local_url)
    end
    if not base then
        return nil, what .. ": " .. version, code
    end
    if version == "file" then
        if what == "container" then
            return metadata_file.read(self, o, opts, base, "container")
        end
        return nil, what .. ": not available from the container metadata "
            .. "file, the only source here (no task metadata endpoint)",
            "not_on_ecs"
    end
    local url, err
    -- Without opts the url is the client's own, worked out once.
    local urls = opts == nil and self._disc.urls
    url = urls and urls[what]
    if not url then
        url, err, code = make_url(base, version, what, o.container_id)
        if not url then
            return nil, err, code
        end
        if urls then
            urls[what] = url
        end
    end
    local ttl = self:_ttl_of(what, opts)
    local v = self:_cache_get(url, ttl)
    if v ~= nil then
        return v
    end
    local status, headers, failed_status
    v, status, headers, failed_status = request.json(self, o, "GET", url)
    if type(status) ~= "number" then
        return nil, status, headers, failed_status   -- nil, msg, code, status
    end
    self:_cache_put(url, v, ttl, opts == nil and what)
    return v
end

-- One method per source. Without opts, a fresh cache entry is answered
-- straight away.
local function source(what)
    return function(self, opts)
        if opts == nil then
            local e = self._hot[what]
            if e and self._clock() < e.expires then
                return e.value
            end
        end
        return fetch(self, what, opts)
    end
end

_M.container = source("container")
_M.task = source("task")
_M.task_with_tags = source("task_with_tags")
_M.container_stats = source("container_stats")
_M.task_stats = source("task_stats")

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
    return metadata_file.read(self, o, opts, path, "metadata_file")
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
    return credentials.get(self, o, opts)
end

return _M
