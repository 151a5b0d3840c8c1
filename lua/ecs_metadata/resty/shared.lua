-- ecs_metadata.resty.shared: the cross-worker cache for OpenResty/nginx, in
-- a lua_shared_dict (by default `lua_shared_dict ecs_metadata 1m;`), so that
-- a whole node asks the endpoint at most once per TTL per url.
--
--   local shared = require "ecs_metadata.resty.shared"
--   local dict = shared.dict()            -- ngx.shared.ecs_metadata, or nil
--   local cache = shared.new(dict)
--   local v, fetched_at, stale = cache:fetch(key, policy, fetch_raw)
--                          -- | nil, msg, code, status
--   cache:refresh(key, policy, fetch_raw, min_age) -> fetched?
--   cache:drop(key); cache:clear()
--
-- key is what identifies the document on the node (the url). fetch_raw()
-- does the request (with retries) and answers the raw 2xx body, or nil, msg,
-- code, status; it is called by one worker of the node at a time, and only
-- where a fetch may happen (see resty/phase.lua): in "yield" phases
-- (cosockets) and in "block" (init_by_lua, curl). policy:
--   ttl        seconds a document is fresh (> 0)
--   error_ttl  seconds a failure is answered to every worker without asking
--              again (negative cache; default 1, 0 = none)
--   stale_ttl  stale-if-error: on a failure, a document up to ttl + stale_ttl
--              old is answered instead (default 0; never give it for stats
--              or protection)
--   timeout    the longest a fetch_raw() can take (default 3): the refresh
--              lock lives that long plus a second, and a worker without
--              any document waits that long for another's fetch
--   decode     function(raw) -> value | nil, msg, code (required); a body it
--              refuses is a failure and is not stored
--   expires    optional function(value) -> epoch seconds after which the
--              value is never answered, stale or not (credentials)
--   share      false: this worker only, nothing in the dict (credentials,
--              unless the user opts in)
--   name       what this cache's own messages start with (the function)
--
-- Answers: value, fetched_at (epoch seconds of the fetch, ngx.now()), and
-- stale: nil when fresh, "updating" when the document is past its ttl and
-- another worker is fetching its successor, "error" for stale-if-error.
--
-- Per worker (per cache object) the decoded tables are kept, with the time
-- of the fetch they came from; the dict holds the serialized document and
-- that time, so a worker whose table is older than the dict's document
-- decodes the newer one. One worker refreshes an entry: the one that takes
-- the lock, a key added with an expiry (shdict:add is atomic across
-- workers); the others answer what they have meanwhile
-- (stale-while-revalidate, for at most `timeout` past the ttl), or, with
-- nothing at all, wait for the fetch, up to `timeout`. In phases that
-- cannot do I/O, a miss answers nil, msg, "not_ready" and the fetch is
-- scheduled in a zero-delay timer (one per key and worker at a time).
--
-- Dict keys: "b:" .. key  "<fetched_at>\n<raw body>"
--            "e:" .. key  "<code>\n<status>\n<message>" (expires: error_ttl)
--            "l:" .. key  the lock holder's token (expires: timeout + 1)
--
-- Caveats:
--  * Times are ngx.now(), the wall clock nginx caches per event-loop turn:
--    the same for every worker, and comparable with credentials'
--    Expiration.
--  * Results are shared, read-only tables, as everywhere in this module.
--  * clear() empties the whole dict: give the cache a dict of its own.
--  * A dict that is full drops the oldest entries (nginx's LRU) or refuses
--    a document; then the worker keeps its own copy and says so once in
--    the error log.

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

local cache = {}
local cache_mt = { __index = cache }

-- The shared dict of that name (default "ecs_metadata"), or nil when nginx
-- has none (or this is not nginx).
function _M.dict(name)
    return ngx.shared[name or _M.DEFAULT_DICT]
end

-- new(dict) -> cache. dict is an ngx.shared.DICT.
function _M.new(dict)
    if type(dict) ~= "table" and type(dict) ~= "userdata" then
        error("bad argument #1 to 'new' (a lua_shared_dict expected, got "
              .. type(dict) .. ")", 2)
    end
    return setmetatable({
        dict = dict,
        own = {},          -- key -> this worker's entry
        failed = {},       -- key -> this worker's failure (share = false)
        scheduled = {},    -- key -> true while a timer is to fetch it
    }, cache_mt)
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
-- Entries
-- ===================================================================

-- A worker's entry: { value =, fetched_at =, expires = epoch or nil }.

local function usable(e, now)
    return e and (e.expires == nil or now < e.expires)
end

-- The dict's document for key, as this worker's entry, when it is newer
-- than the one the worker has (decoding it then). Returns the entry.
local function load(self, key, policy, e)
    local s = self.dict:get("b:" .. key)
    if type(s) ~= "string" then
        return e
    end
    local nl = find(s, "\n", 1, true)
    local t = nl and tonumber(sub(s, 1, nl - 1))
    if not t then
        return e
    end
    if e and e.fetched_at >= t then
        return e
    end
    local v = policy.decode(sub(s, nl + 1))
    if v == nil then
        -- Only documents that decoded are stored: this one is damaged.
        self.dict:delete("b:" .. key)
        return e
    end
    local expires = policy.expires
    e = { value = v, fetched_at = t, expires = expires and expires(v) }
    self.own[key] = e
    return e
end

-- The failure cached for key: msg, code, status, or nil.
local function cached_failure(self, key)
    local s = self.dict:get("e:" .. key)
    if type(s) ~= "string" then
        return nil
    end
    local code, status, msg = match(s, "^([^\n]*)\n([^\n]*)\n(.*)$")
    if not code then
        return nil
    end
    return msg, code, tonumber(status)
end

local function stale_if_error(e, policy, now)
    local extra = policy.stale_ttl
    return extra and extra > 0 and usable(e, now)
        and now - e.fetched_at < policy.ttl + extra
end

-- ===================================================================
-- Fetching
-- ===================================================================

local function release(self, key, token)
    local lk = "l:" .. key
    if self.dict:get(lk) == token then
        self.dict:delete(lk)
    end
end

-- Fetches under the lock (token), stores, answers.
local function refresh_locked(self, key, policy, fetch_raw, token, e)
    local ok, raw, msg, code, status = pcall(fetch_raw)
    if not ok then
        -- A bug in the caller's fetch must not leave the lock taken.
        release(self, key, token)
        error(raw, 0)
    end
    -- As the dict will say it, so that no worker takes its own document
    -- for a newer one.
    local now = tonumber(format("%.3f", ngx_now()))
    local v
    if raw ~= nil then
        v, msg, code = policy.decode(raw)
        if v == nil then
            status = nil
        end
    end
    if v ~= nil then
        local expires = policy.expires
        local entry = { value = v, fetched_at = now,
                        expires = expires and expires(v) }
        self.own[key] = entry
        if policy.share ~= false then
            local keep = policy.ttl + (policy.stale_ttl or 0)
                + (policy.timeout or DEFAULT_TIMEOUT) + LOCK_MARGIN
            local stored, err = self.dict:set("b:" .. key,
                format("%.3f", now) .. "\n" .. raw, keep)
            if not stored then
                warn_full(key, err)
            end
            self.dict:delete("e:" .. key)
            release(self, key, token)
        end
        self.failed[key] = nil
        return v, now
    end
    local error_ttl = policy.error_ttl or DEFAULT_ERROR_TTL
    if policy.share ~= false then
        if error_ttl > 0 then
            self.dict:set("e:" .. key, tostring(code) .. "\n"
                .. (status and tostring(status) or "") .. "\n"
                .. tostring(msg), error_ttl)
        end
        release(self, key, token)
    elseif error_ttl > 0 then
        self.failed[key] = { msg, code, status, till = now + error_ttl }
    end
    if stale_if_error(e, policy, now) then
        return e.value, e.fetched_at, "error"
    end
    return nil, msg, code, status
end

local function policy_copy(p)
    return {
        ttl = p.ttl, error_ttl = p.error_ttl, stale_ttl = p.stale_ttl,
        timeout = p.timeout, decode = p.decode, expires = p.expires,
        share = p.share, name = p.name,
    }
end

-- In a phase without I/O: a timer does the fetch, once per key and worker
-- at a time.
local function schedule(self, key, policy, fetch_raw)
    if self.scheduled[key] then
        return true
    end
    local p = policy_copy(policy)
    local ok = timer_at(0, function(premature)
        if not premature then
            pcall(self.fetch, self, key, p, fetch_raw)
        end
        self.scheduled[key] = nil
    end)
    if ok then
        self.scheduled[key] = true
    end
    return ok
end

-- Waits for the lock holder's document (or failure); takes over when the
-- lock goes away with neither. Answers like fetch, or nil when the wait is
-- over without an answer.
local function wait_for_other(self, key, policy, fetch_raw, e)
    local limit = policy.timeout or DEFAULT_TIMEOUT
    local deadline = ngx_now() + limit
    local pause = WAIT_FIRST
    local lk = "l:" .. key
    while true do
        local left = deadline - ngx_now()
        if left <= 0 then
            return nil
        end
        ngx.sleep(pause < left and pause or left)
        pause = pause * 2 < WAIT_MAX and pause * 2 or WAIT_MAX
        local now = ngx_now()
        local newer = load(self, key, policy, e)
        if newer ~= e and usable(newer, now) then
            return newer.value, newer.fetched_at
        end
        local msg, code, status = cached_failure(self, key)
        if msg then
            if stale_if_error(e, policy, now) then
                return e.value, e.fetched_at, "error"
            end
            return nil, msg, code, status
        end
        if self.dict:get(lk) == nil then
            local token = new_token()
            if self.dict:add(lk, token, limit + LOCK_MARGIN) then
                return refresh_locked(self, key, policy, fetch_raw, token, e)
            end
        end
    end
end

local function name_of(policy, key)
    return policy.name or key
end

-- cache:fetch(key, policy, fetch_raw) -> value, fetched_at, stale
--                                      | nil, msg, code, status
function cache:fetch(key, policy, fetch_raw)
    local now = ngx_now()
    local ttl = policy.ttl
    local e = self.own[key]
    if e and now < e.fetched_at + ttl and usable(e, now) then
        return e.value, e.fetched_at
    end

    local share = policy.share ~= false
    local msg, code, status
    if share then
        e = load(self, key, policy, e)
        if e and now < e.fetched_at + ttl and usable(e, now) then
            return e.value, e.fetched_at
        end
        msg, code, status = cached_failure(self, key)
    else
        local f = self.failed[key]
        if f and now < f.till then
            msg, code, status = f[1], f[2], f[3]
        end
    end
    if msg then
        if stale_if_error(e, policy, now) then
            return e.value, e.fetched_at, "error"
        end
        return nil, msg, code, status
    end
    local timeout = policy.timeout or DEFAULT_TIMEOUT
    local m = mode()

    if m == "defer" then
        local scheduled = schedule(self, key, policy, fetch_raw)
        if usable(e, now) and now - e.fetched_at < ttl + timeout then
            return e.value, e.fetched_at, "updating"
        end
        return nil, name_of(policy, key) .. ": not in the cache yet, and "
            .. "nginx's " .. phase.name() .. " phase cannot wait for the "
            .. "endpoint" .. (scheduled and "; a fetch has been scheduled"
                              or "; no timer could be scheduled"),
            "not_ready"
    end

    if not share then
        return refresh_locked(self, key, policy, fetch_raw, nil, e)
    end
    local token = new_token()
    if self.dict:add("l:" .. key, token, timeout + LOCK_MARGIN) then
        return refresh_locked(self, key, policy, fetch_raw, token, e)
    end
    -- Another worker (or request) is fetching.
    if usable(e, now) and now - e.fetched_at < ttl + timeout then
        return e.value, e.fetched_at, "updating"
    end
    if m == "yield" then
        local v, a, b, c = wait_for_other(self, key, policy, fetch_raw, e)
        if v ~= nil or a ~= nil then
            return v, a, b, c
        end
    end
    return nil, name_of(policy, key) .. ": timed out after " .. timeout
        .. " s waiting for another worker's request to the endpoint",
        "timeout"
end

-- cache:refresh(key, policy, fetch_raw, min_age) -> true when it fetched,
-- false when the node's document is younger than min_age or another worker
-- is fetching it; nil, msg, code, status when the fetch failed. Never waits:
-- this is for a background timer (refresh_every).
function cache:refresh(key, policy, fetch_raw, min_age)
    local now = ngx_now()
    local e = self.own[key]
    if policy.share ~= false then
        e = load(self, key, policy, e)
    end
    if e and now - e.fetched_at < (min_age or 0) and usable(e, now) then
        return false
    end
    local token
    if policy.share ~= false then
        token = new_token()
        local timeout = policy.timeout or DEFAULT_TIMEOUT
        if not self.dict:add("l:" .. key, token, timeout + LOCK_MARGIN) then
            return false
        end
    end
    local v, msg, code, status = refresh_locked(self, key, policy, fetch_raw,
                                                token, nil)
    if v == nil then
        return nil, msg, code, status
    end
    return true
end

-- This worker's entry for key, whatever its age: value, fetched_at, or nil.
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
    self.failed[key] = nil
    self.dict:delete("b:" .. key)
    self.dict:delete("e:" .. key)
end

-- Forgets everything, here and in the whole dict.
function cache:clear()
    for _, t in pairs { self.own, self.failed } do
        for k in pairs(t) do
            t[k] = nil
        end
    end
    self.dict:flush_all()
end

return _M
