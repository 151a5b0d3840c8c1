-- ecs_metadata.resty.shared: the cache of a client under OpenResty/nginx.
-- With a lua_shared_dict (by default `lua_shared_dict ecs_metadata 1m;`) it
-- is shared by every worker of the node, so that the node asks the endpoint
-- at most once per TTL per url; without one, or for what must stay out of
-- shared memory, it is the worker's own. Either way it knows nginx's phases:
-- a fetch happens only where I/O may (resty/phase.lua).
--
--   local shared = require "ecs_metadata.resty.shared"
--   local cache = shared.new(shared.dict())      -- or shared.new(nil)
--   cache:fetch(key, policy, fetch)
--       -> value, fetched_at, stale[, msg, code]
--        | nil, msg, code, status
--   cache:refresh(key, policy, fetch, min_age) -> true | false | nil, msg, code
--   cache:drop(key), cache:clear(), cache:peek(key)
--
-- key identifies the document on the node (its url). policy:
--   ttl        seconds a document is fresh, or function(value) -> ttl, cap
--              (seconds from now; cap: past it the value is never answered,
--              stale or not: credentials' Expiration). A ttl <= 0 from the
--              function: answered, not kept.
--   error_ttl  seconds a failure is answered again without asking (negative
--              cache; default 1, 0 = none)
--   stale_ttl  stale-if-error: on a failure, a document up to this long past
--              its freshness is answered, with the failure's msg and code
--              after it (default 0; the client gives none for stats or
--              protection)
--   timeout    the longest a fetch can take (default 3): the refresh lock
--              lives that long plus a second, a worker without a document
--              waits that long for another's fetch, and a past-ttl document
--              is answered that long while another worker fetches its
--              successor (stale-while-revalidate)
--   decode     function(raw, key) -> value | nil, msg, code. With it,
--              fetch is called as fetch(true) and answers the raw 2xx body,
--              which goes into the dict (unless share = false or there is
--              none); without it fetch() answers the value, which stays in
--              the worker.
--   share      false: this worker only (credentials, unless the user opts in)
--   name       what this cache's own messages start with (the function)
-- fetch(raw) -> raw body (or value) | nil, msg, code, status: one request, with
-- its retries. It runs in one worker of the node at a time, and only where
-- I/O may happen: in a phase with cosockets, or in init_by_lua (blocking).
--
-- Answers: value, fetched_at (epoch seconds, ngx.now(), of the fetch), and
-- stale: nil when fresh, "updating" when past its ttl while another worker
-- fetches its successor, "error" for stale-if-error (then msg, code). In a
-- phase without I/O a miss answers nil, msg, "not_ready" and a zero-delay
-- timer fetches (one per key and worker at a time).
--
-- Dict keys: "b:" .. key  "<fetched_at>\n<raw body>"
--            "e:" .. key  "<code>\n<status>\n<message>" (expires: error_ttl)
--            "l:" .. key  the lock holder's token (expires: timeout + 1)
-- A lock is an shdict:add (atomic across workers) with an expiry, so a
-- worker that dies holding it holds it no longer than that. Each worker
-- keeps the decoded tables with the time of the fetch they came from: a
-- newer document in the dict replaces them, and is decoded once per worker.
--
-- Caveats:
--  * Times are ngx.now(), the wall clock nginx caches per turn of its event
--    loop: the same in every worker, comparable with credentials'
--    Expiration.
--  * clear() empties the whole dict: give the cache a dict of its own.
--  * A full dict drops its oldest entries (nginx's LRU) or refuses a
--    document; then each worker keeps its own copy, and the error log says
--    so once per worker.

local ngx = rawget(_G, "ngx")
if type(ngx) ~= "table" or type(ngx.shared) ~= "table" then
    error("ecs_metadata.resty.shared needs nginx's Lua module (ngx.shared)", 2)
end

local type = type
local error = error
local pairs = pairs
local pcall = pcall
local tonumber = tonumber
local tostring = tostring
local setmetatable = setmetatable
local find = string.find
local sub = string.sub
local format = string.format
local match = string.match

local ngx_now = ngx.now
local ngx_log = ngx.log
local WARN = ngx.WARN
local timer_at = ngx.timer.at
local worker_pid = ngx.worker.pid

local phase = require "ecs_metadata.resty.phase"

local mode = phase.mode

local _M = {
    _NAME = "ecs_metadata.resty.shared",
    DEFAULT_DICT = "ecs_metadata",
    DEFAULT_ERROR_TTL = 1,
    DEFAULT_TIMEOUT = 3,
}

local DEFAULT_ERROR_TTL = _M.DEFAULT_ERROR_TTL
local DEFAULT_TIMEOUT = _M.DEFAULT_TIMEOUT
local LOCK_MARGIN = 1          -- seconds a lock outlives the longest fetch
local WAIT_FIRST = 0.002       -- first pause of a waiting worker, doubling
local WAIT_MAX = 0.05          -- ... up to this

-- The shared dict of that name (default "ecs_metadata"), or nil when nginx
-- has none declared.
function _M.dict(name)
    return ngx.shared[name or _M.DEFAULT_DICT]
end

-- ===================================================================
-- The worker's own store: the dict's operations on a Lua table, for what
-- stays in the worker (locks and failures between its own requests).
-- ===================================================================

local function own_store()
    local data, expiry = {}, {}
    local s = {}
    function s.get(_, k)
        local t = expiry[k]
        if t and ngx_now() >= t then
            data[k], expiry[k] = nil, nil
        end
        return data[k]
    end
    function s.set(_, k, v, ttl)
        data[k] = v
        expiry[k] = (ttl and ttl > 0) and ngx_now() + ttl or nil
        return true
    end
    function s.add(self, k, v, ttl)
        if self:get(k) ~= nil then
            return false, "exists"
        end
        return self:set(k, v, ttl)
    end
    function s.delete(_, k)
        data[k], expiry[k] = nil, nil
    end
    function s.flush_all()
        for k in pairs(data) do
            data[k], expiry[k] = nil, nil
        end
    end
    return s
end

local cache = {}
local cache_mt = { __index = cache }

-- new(dict) -> cache. dict: an ngx.shared.DICT, or nil for a cache of this
-- worker only.
function _M.new(dict)
    if dict ~= nil and type(dict) ~= "table" and type(dict) ~= "userdata" then
        error("bad argument #1 to 'new' (a lua_shared_dict or nil expected, "
              .. "got " .. type(dict) .. ")", 2)
    end
    return setmetatable({
        dict = dict,          -- nil: none
        mine = own_store(),   -- locks and failures of unshared keys
        own = {},             -- key -> this worker's entry
        scheduled = {},       -- key -> true while a timer is to fetch it
    }, cache_mt)
end

-- Where key's locks and failures live for this policy.
local function store_of(self, policy)
    if policy.share ~= false and self.dict and policy.decode then
        return self.dict, true
    end
    return self.mine, false
end

local token_count = 0

local function new_token()
    token_count = token_count + 1
    return worker_pid() .. ":" .. token_count
end

local warned_full = false

local function warn_full(key, err)
    if not warned_full then
        warned_full = true
        ngx_log(WARN, "ecs_metadata: the lua_shared_dict cannot keep ", key,
                " (", tostring(err), "): each worker keeps its own copy; ",
                "make the dict larger")
    end
end

-- ===================================================================
-- Entries: { value, fetched_at, fresh_until (function ttls), expires }
-- ===================================================================

-- A worker's entry for v fetched at t, or nil when v is not to be kept.
local function make_entry(v, t, policy, now)
    local ttl = policy.ttl
    local e = { value = v, fetched_at = t }
    if type(ttl) == "function" then
        local fresh, cap = ttl(v)
        fresh = fresh or 0
        if cap then
            e.expires = now + cap
            if fresh > cap then
                fresh = cap
            end
        end
        if fresh <= 0 then
            return nil
        end
        e.fresh_until = now + fresh
    end
    return e
end

local function usable(e, now)
    return e ~= nil and (e.expires == nil or now < e.expires)
end

-- Until when e is fresh under this policy.
local function fresh_until(e, policy)
    local ttl = policy.ttl
    if type(ttl) == "number" then
        return e.fetched_at + ttl
    end
    return e.fresh_until or e.fetched_at
end

local function fresh(e, policy, now)
    return usable(e, now) and now < fresh_until(e, policy)
end

-- The dict's document for key as this worker's entry, when it is newer than
-- the worker's own (decoding it then). Returns the entry to use.
local function load(self, key, policy, e, now)
    local s = self.dict:get("b:" .. key)
    if type(s) ~= "string" then
        return e
    end
    local nl = find(s, "\n", 1, true)
    local t = nl and tonumber(sub(s, 1, nl - 1))
    if not t or (e and e.fetched_at >= t) then
        return e
    end
    local v = policy.decode(sub(s, nl + 1), key)
    if v == nil then
        -- Only documents that decoded are stored: this one is damaged.
        self.dict:delete("b:" .. key)
        return e
    end
    local entry = make_entry(v, t, policy, now)
    if not entry then
        return e
    end
    self.own[key] = entry
    return entry
end

-- The failure kept for key: msg, code, status; or nil.
local function kept_failure(store, key)
    local s = store:get("e:" .. key)
    if type(s) ~= "string" then
        return nil
    end
    local code, status, msg = match(s, "^([^\n]*)\n([^\n]*)\n(.*)$")
    if not code then
        return nil
    end
    return msg, code, tonumber(status)
end

local function stale_ok(e, policy, now)
    local extra = policy.stale_ttl
    return extra ~= nil and extra > 0 and usable(e, now)
        and now < fresh_until(e, policy) + extra
end

-- The answer to a failure: the stale document when allowed, else it.
local function failed(e, policy, now, msg, code, status)
    if stale_ok(e, policy, now) then
        return e.value, e.fetched_at, "error", msg, code
    end
    return nil, msg, code, status
end

-- ===================================================================
-- Fetching
-- ===================================================================

local function release(store, key, token)
    local lk = "l:" .. key
    if store:get(lk) == token then
        store:delete(lk)
    end
end

-- fetch, then decode: value, raw | nil, msg, code, status.
local function fetch_decoded(key, policy, fetch)
    local decode = policy.decode
    local got, msg, code, status = fetch(decode ~= nil)
    if got == nil or not decode then
        return got, got, code, status, msg
    end
    local v
    v, msg, code = decode(got, key)
    if v == nil then
        return nil, nil, code, nil, msg
    end
    return v, got
end

-- Fetches under the lock (token), stores, answers.
local function refresh_locked(self, key, policy, fetch, token, e)
    local store, shared = store_of(self, policy)
    local ok, v, got, code, status, msg = pcall(fetch_decoded, key, policy,
                                                fetch)
    if not ok then
        -- A bug in the caller's fetch or decode must not leave the lock
        -- taken.
        release(store, key, token)
        error(v, 0)
    end
    -- As the dict will say it, so that no worker takes its own document for
    -- a newer one.
    local now = tonumber(format("%.3f", ngx_now()))
    if v ~= nil then
        local entry = make_entry(v, now, policy, now)
        self.own[key] = entry
        if shared and entry then
            local keep = fresh_until(entry, policy) - now
                + (policy.stale_ttl or 0) + (policy.timeout or DEFAULT_TIMEOUT)
                + LOCK_MARGIN
            local stored, err = store:set("b:" .. key,
                format("%.3f", now) .. "\n" .. got, keep)
            if not stored then
                warn_full(key, err)
            end
        end
        store:delete("e:" .. key)
        release(store, key, token)
        return v, now
    end
    local error_ttl = policy.error_ttl or DEFAULT_ERROR_TTL
    if error_ttl > 0 and code ~= "invalid_argument" then
        store:set("e:" .. key, tostring(code) .. "\n"
            .. (status and tostring(status) or "") .. "\n" .. tostring(msg),
            error_ttl)
    end
    release(store, key, token)
    return failed(e, policy, now, msg, code, status)
end

local function copy(p)
    local c = {}
    for k, v in pairs(p) do
        c[k] = v
    end
    return c
end

-- In a phase without I/O: a timer fetches, once per key and worker at a
-- time. true when one is (or was already) scheduled.
local function schedule(self, key, policy, fetch)
    if self.scheduled[key] then
        return true
    end
    local p = copy(policy)
    local ok = timer_at(0, function(premature)
        if not premature then
            pcall(self.fetch, self, key, p, fetch)
        end
        self.scheduled[key] = nil
    end)
    if ok then
        self.scheduled[key] = true
    end
    return ok and true or false
end

-- Waits for the lock holder's document (or failure); takes over when the
-- lock goes away with neither. Answers like fetch, or nil when the wait is
-- over without an answer.
local function wait_for_other(self, key, policy, fetch, e)
    local store, shared = store_of(self, policy)
    local limit = policy.timeout or DEFAULT_TIMEOUT
    local deadline = ngx_now() + limit
    local pause = WAIT_FIRST
    local lk = "l:" .. key
    local seen = e
    while true do
        local left = deadline - ngx_now()
        if left <= 0 then
            return nil
        end
        ngx.sleep(pause < left and pause or left)
        pause = pause * 2 < WAIT_MAX and pause * 2 or WAIT_MAX
        local now = ngx_now()
        local got = shared and load(self, key, policy, seen, now)
            or self.own[key]
        if got ~= seen and fresh(got, policy, now) then
            return got.value, got.fetched_at
        end
        local msg, code, status = kept_failure(store, key)
        if msg then
            return failed(seen, policy, now, msg, code, status)
        end
        if store:get(lk) == nil then
            local token = new_token()
            if store:add(lk, token, limit + LOCK_MARGIN) then
                got = shared and load(self, key, policy, seen, now)
                if got and got ~= seen and fresh(got, policy, ngx_now()) then
                    release(store, key, token)
                    return got.value, got.fetched_at
                end
                msg, code, status = kept_failure(store, key)
                if msg then
                    release(store, key, token)
                    return failed(seen, policy, ngx_now(), msg, code, status)
                end
                return refresh_locked(self, key, policy, fetch, token, seen)
            end
        end
    end
end

-- cache:fetch(key, policy, fetch) -> value, fetched_at, stale[, msg, code]
--                                  | nil, msg, code, status
function cache:fetch(key, policy, fetch)
    local now = ngx_now()
    local e = self.own[key]
    if fresh(e, policy, now) then
        return e.value, e.fetched_at
    end
    local store, shared = store_of(self, policy)
    if shared then
        e = load(self, key, policy, e, now)
        if fresh(e, policy, now) then
            return e.value, e.fetched_at
        end
    end
    local msg, code, status = kept_failure(store, key)
    if msg then
        return failed(e, policy, now, msg, code, status)
    end

    local timeout = policy.timeout or DEFAULT_TIMEOUT
    local revalidating = usable(e, now)
        and now < fresh_until(e, policy) + timeout
    local m = mode()
    if m == "defer" then
        local scheduled = schedule(self, key, policy, fetch)
        if revalidating then
            return e.value, e.fetched_at, "updating"
        end
        return nil, (policy.name or key) .. ": not in the cache yet, and "
            .. "nginx's " .. phase.name() .. " phase cannot wait for the "
            .. "endpoint" .. (scheduled and "; a fetch has been scheduled"
                              or "; no timer could be scheduled"),
            "not_ready"
    end

    local token = new_token()
    if store:add("l:" .. key, token, timeout + LOCK_MARGIN) then
        -- Another worker may have stored a document (or a failure) and let
        -- the lock go between our look at the dict and our taking the lock.
        if shared then
            e = load(self, key, policy, e, ngx_now())
            if fresh(e, policy, ngx_now()) then
                release(store, key, token)
                return e.value, e.fetched_at
            end
        end
        msg, code, status = kept_failure(store, key)
        if msg then
            release(store, key, token)
            return failed(e, policy, ngx_now(), msg, code, status)
        end
        return refresh_locked(self, key, policy, fetch, token, e)
    end
    -- Another worker (or request) is fetching.
    if revalidating then
        return e.value, e.fetched_at, "updating"
    end
    if m == "yield" then
        local v, a, b, c, d = wait_for_other(self, key, policy, fetch, e)
        if v ~= nil or a ~= nil then
            return v, a, b, c, d
        end
    end
    return nil, (policy.name or key) .. ": timed out after " .. timeout
        .. " s waiting for another worker's request to the endpoint",
        "timeout"
end

-- cache:refresh(key, policy, fetch, min_age) -> true when it fetched, false
-- when the document is younger than min_age, another worker is fetching it
-- or a failure is kept (error_ttl), nil, msg, code, status when the fetch
-- failed. Never waits: this is for
-- a background timer (refresh_every).
function cache:refresh(key, policy, fetch, min_age)
    local now = ngx_now()
    local store, shared = store_of(self, policy)
    local e = self.own[key]
    if shared then
        e = load(self, key, policy, e, now)
    end
    if usable(e, now) and now - e.fetched_at < (min_age or 0) then
        return false
    end
    local token = new_token()
    local timeout = policy.timeout or DEFAULT_TIMEOUT
    if not store:add("l:" .. key, token, timeout + LOCK_MARGIN) then
        return false
    end
    if shared then
        -- As in fetch: someone may have refreshed it just now.
        e = load(self, key, policy, e, now)
        if usable(e, now) and ngx_now() - e.fetched_at < (min_age or 0) then
            release(store, key, token)
            return false
        end
    end
    -- A failure still kept is not asked again before error_ttl (and was
    -- said already).
    if kept_failure(store, key) then
        release(store, key, token)
        return false
    end
    local v, msg, code, status = refresh_locked(self, key, policy, fetch,
                                                token, nil)
    if v == nil then
        return nil, msg, code, status
    end
    return true
end

-- This worker's entry for key, whatever its age: value, fetched_at; or nil.
function cache:peek(key)
    local e = self.own[key]
    if e then
        return e.value, e.fetched_at
    end
    return nil
end

-- Forgets key, here and on the node.
function cache:drop(key)
    self.own[key] = nil
    self.mine:delete("e:" .. key)
    if self.dict then
        self.dict:delete("b:" .. key)
        self.dict:delete("e:" .. key)
    end
end

-- Forgets everything, here and in the whole dict.
function cache:clear()
    for k in pairs(self.own) do
        self.own[k] = nil
    end
    self.mine:flush_all()
    if self.dict then
        self.dict:flush_all()
    end
end

return _M
