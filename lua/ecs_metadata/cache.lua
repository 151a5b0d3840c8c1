-- ecs_metadata.cache: every result a client keeps, behind one interface.
--
--   local cache = require "ecs_metadata.cache"
--   local store = cache.new()
--   get = store:cell(name, fallback, owner)   -- a C cell (core._memo)
--   store:feed_cell(name, set)                -- feed a cell made elsewhere
--   store:fetch(key, policy, fetch)           -- the one way to read through
--   store:drop(key[, name]), store:clear()
--
-- Tiers, all owned here:
--  1. cells: for each source, the result of its call without options, in C
--     (core._memo): a hit is one C call, no Lua at all. The client's own
--     methods are such cells, and so are the module's functions over the
--     default client; a name may have several cells, all fed together.
--  2. entries: key (a url, a path, credentials' url and token) -> the
--     decoded value, when it was stored and until when it is fresh.
--  3. failures: key -> the last failure of an endpoint, answered again
--     until policy.error_ttl has passed (a negative cache), so a failing
--     endpoint is asked at most once per error_ttl per client.
--  A stale-if-error answer comes from tier 2: an entry past its freshness
--  but within policy.stale_ttl is answered when a fetch fails, with the
--  failure's message and code after the value: value, msg, code.
--
-- Under nginx, fetch() hands what it would fetch to the nginx cache
-- (resty/shared.lua, set with use_resty), which shares serialized documents
-- across workers through a lua_shared_dict, keeps the tables per worker,
-- and knows which phases may do I/O. Cells are still fed here, so a fresh
-- ecs.task() stays one C call there too. Only policies that allow it go
-- there (not policy.resty == false: the metadata file, read locally), and
-- only with a ttl (a call asking for no caching fetches as everywhere).
--
-- Caveats:
--  * A hit returns the very table stored: results are shared and must be
--    treated as read-only. (A copy would cost far more than the hit.)
--  * Freshness is measured on the coarse monotonic clock, the clock of the
--    cells, so the tiers always agree on what has expired.

local pairs = pairs
local type = type
local setmetatable = setmetatable

local core = require "ecs_metadata.core"

local clock = core._now_coarse

local ngx = rawget(_G, "ngx")

-- A cell: get, set with core._memo's contract. Under nginx a miss may yield
-- (a cosocket request, ngx.sleep), and nothing may yield across a C call:
-- there the cell is a Lua closure (which LuaJIT compiles), on nginx's
-- cached clock. Sources take one argument, opts; with owner, get is a
-- method.
local function lua_memo(fallback, owner)
    local now = ngx.now
    local value, expires = nil, 0
    local get
    if owner then
        get = function(self, opts)
            if opts == nil and value ~= nil and now() < expires then
                return value
            end
            return fallback(self, opts)
        end
    else
        get = function(opts)
            if opts == nil and value ~= nil and now() < expires then
                return value
            end
            return fallback(opts)
        end
    end
    local function set(v, ttl)
        if v == nil or not ttl or ttl <= 0 then
            value, expires = nil, 0
        else
            value, expires = v, now() + ttl
        end
    end
    return get, set
end

local memo = (ngx and ngx.get_phase) and lua_memo or core._memo

local _M = { memo = memo }
local mt = { __index = _M }

local UNKEPT = { invalid_argument = true, not_on_ecs = true, too_large = true }

function _M.new()
    return setmetatable({
        entries = {},      -- key -> { value, time, expires, stale_until }
        failures = {},     -- key -> { until_, msg, code, status }
        setters = {},      -- source name -> { set, set, ... }
    }, mt)
end

-- Feeds the setter of a cell made elsewhere (core._memo's set) with every
-- fresh value of `name` from now on.
function _M:feed_cell(name, set)
    local list = self.setters[name]
    if not list then
        list = {}
        self.setters[name] = list
    end
    list[#list + 1] = set
end

-- A cell for `name`: get(...) answers its fresh value, else fallback(...).
-- With owner, get is a method of owner (see core._memo).
function _M:cell(name, fallback, owner)
    local get, set = memo(fallback, owner)
    self:feed_cell(name, set)
    return get
end

local function feed(self, name, value, ttl)
    local list = name and self.setters[name]
    if list then
        for i = 1, #list do
            list[i](value, ttl)
        end
    end
end

-- The fresh value under key, or nil.
function _M:get(key)
    local e = self.entries[key]
    if e and clock() < e.expires then
        return e.value
    end
    return nil
end

-- Stores value under key: fresh for ttl seconds, answerable on failure for
-- stale_ttl more. `cell` names the source whose cells also get the value
-- (the call had no options). A ttl of 0 keeps it only for stale answers.
function _M:put(key, value, ttl, stale_ttl, cell)
    local now = clock()
    stale_ttl = stale_ttl or 0
    if ttl > 0 or stale_ttl > 0 then
        self.entries[key] = {
            value = value, time = now, expires = now + ttl,
            stale_until = now + ttl + stale_ttl,
        }
    else
        self.entries[key] = nil
    end
    self.failures[key] = nil
    if ttl > 0 then
        feed(self, cell, value, ttl)
    end
end

function _M:drop(key, name)
    self.entries[key] = nil
    self.failures[key] = nil
    if self.resty then
        self.resty:drop(key)
    end
    feed(self, name, nil, 0)
end

-- Under nginx: the cache of resty/shared.lua, which fetch() then goes
-- through (see the header).
function _M:use_resty(r)
    self.resty = r
end

-- In init_by_lua (the master), what is fetched goes into the shared dict
-- and the master's own tables, never into cells: every worker inherits the
-- cells by fork and would answer from them before it had looked at its own
-- environment (where a missing `env` line must show at once).
local function in_master()
    return ngx ~= nil and ngx.get_phase() == "init"
end

local function resty_fetch(self, key, policy, fetch)
    local v, fetched_at, stale, msg, code = self.resty:fetch(key, policy, fetch)
    if v == nil then
        return nil, fetched_at, stale, msg       -- nil, msg, code, status
    end
    if stale == "error" then
        return v, msg, code
    end
    local ttl = policy.ttl
    if stale == nil and policy.cell and type(ttl) == "number"
       and not in_master() then
        local left = fetched_at + ttl - ngx.now()
        if left > 0 then
            feed(self, policy.cell, v, left)
        end
    end
    return v
end

-- Forgets everything. (Tables are emptied, not replaced.)
function _M:clear()
    for _, t in pairs({ self.entries, self.failures }) do
        for k in pairs(t) do
            t[k] = nil
        end
    end
    if self.resty then
        self.resty:clear()
    end
    for _, list in pairs(self.setters) do
        for i = 1, #list do
            list[i](nil, 0)
        end
    end
end

-- fetch(key, policy, fetch) -> value[, msg, code] | nil, msg, code, status
--   policy.ttl        seconds a result stays fresh (0: not cached), or a
--                     function(value) -> ttl, stale cap (seconds from now
--                     past which the value may never be answered, e.g.
--                     credentials' Expiration)
--   policy.stale_ttl  seconds past freshness a value may answer a failure
--   policy.error_ttl  seconds a failure is answered again without asking
--   policy.cell       the source name whose cells get a fresh value
--   fetch()           -> value | nil, msg, code, status (a request)
--   under nginx also (see resty/shared.lua): policy.decode (then fetch(true)
--   answers the raw body, for the shared dict), policy.timeout,
--   policy.share, policy.name
function _M:fetch(key, policy, fetch)
    local ttl = policy.ttl
    if self.resty and ttl ~= 0 and policy.resty ~= false then
        return resty_fetch(self, key, policy, fetch)
    end
    local now = clock()
    local e = self.entries[key]
    -- A call that asks for no caching (ttl 0) skips fresh copies, not
    -- stale ones: those only ever answer a failure.
    if e and now < e.expires and ttl ~= 0 then
        return e.value
    end
    local f = self.failures[key]
    if f and now < f.until_ then
        if e and now < e.stale_until then
            return e.value, f.msg, f.code
        end
        return nil, f.msg, f.code, f.status
    end

    local v, msg, code, status = fetch()
    if v ~= nil then
        local stale_ttl = policy.stale_ttl or 0
        if type(ttl) == "function" then
            local cap
            ttl, cap = ttl(v)
            if cap then
                if ttl > cap then ttl = cap end
                if ttl + stale_ttl > cap then stale_ttl = cap - ttl end
            end
            if ttl < 0 then ttl = 0 end
            if stale_ttl < 0 then stale_ttl = 0 end
        end
        self:put(key, v, ttl, stale_ttl, policy.cell)
        return v
    end

    -- Not kept: what never reached an endpoint, and what a call's own limits
    -- made (too_large: another call with a larger max_bytes may well work).
    local error_ttl = policy.error_ttl or 0
    if error_ttl > 0 and not UNKEPT[code] then
        self.failures[key] = {
            until_ = clock() + error_ttl, msg = msg, code = code,
            status = status,
        }
    end
    if e and clock() < e.stale_until then
        return e.value, msg, code
    end
    return nil, msg, code, status
end

return _M
