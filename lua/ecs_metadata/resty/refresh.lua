-- ecs_metadata.resty.refresh: ecs.refresh_every(seconds, sources) under
-- OpenResty/nginx. Called in init_worker_by_lua, it keeps the chosen
-- sources of a client fresh in the background, so that the request path
-- answers from the cache and never waits for the endpoint.
--
-- One refresh per period for the whole node, not one per worker: every
-- worker starts a timer (ngx.timer.every), and each tick refreshes a source
-- only when the node's document (in the lua_shared_dict) is older than 90 %
-- of the period and the tick gets the source's lock (resty/shared.lua).
-- The worker that ticks first in a period does the fetch; the others find
-- the document young and do nothing. Without a shared dict each worker
-- refreshes its own copy.
--
-- Caveats:
--  * The refreshed sources stay fresh for the period plus the client's
--    timeout plus a second (their cache_ttl is raised to that when it is
--    shorter), so that the next refresh lands before they expire; their
--    documents are therefore up to about `seconds` old.
--  * A refresh that fails leaves the last document in place until it
--    expires, and says why in the error log (at warn, once per failure).

local ngx = rawget(_G, "ngx")

local type = type
local ipairs = ipairs
local tostring = tostring
local huge = math.huge

local errors = require "ecs_metadata.errors"

local argerror = errors.argerror

local _M = {}

local DEFAULT_SOURCES = { "task", "container" }
local MIN_AGE = 0.9            -- of the period: who ticks first refreshes
_M.DEFAULT_SOURCES = DEFAULT_SOURCES

local KNOWN = {
    container = true, task = true, task_with_tags = true,
    container_stats = true, task_stats = true, tasks = true, tasks_stats = true,
}

-- every(c, seconds[, sources], fname) -> true | nil, msg, code
function _M.every(c, seconds, sources, fname)
    if type(seconds) ~= "number" then
        argerror(1, fname, "number expected, got " .. type(seconds))
    end
    if sources == nil then
        sources = DEFAULT_SOURCES
    elseif type(sources) ~= "table" then
        argerror(2, fname, "table of source names or nil expected, got "
            .. type(sources))
    end
    for _, what in ipairs(sources) do
        if not KNOWN[what] then
            argerror(2, fname, "unknown source '" .. tostring(what)
                .. "' (container, task, task_with_tags, container_stats, "
                .. "task_stats, tasks or tasks_stats)")
        end
    end
    if not (seconds >= 0.1 and seconds < huge) then
        return nil, fname .. ": seconds must be a number from 0.1 on",
            "invalid_argument"
    end
    if not (ngx and ngx.timer and c._cache.resty) then
        return nil, fname .. ": works under OpenResty/nginx only (call it "
            .. "in init_worker_by_lua)", "invalid_argument"
    end
    local phase = ngx.get_phase()
    if phase == "init" then
        return nil, fname .. ": nginx has no timers in init_by_lua: call it "
            .. "in init_worker_by_lua", "invalid_argument"
    end

    -- The next refresh must land before the documents expire.
    local s = c.settings
    local need = seconds + s.timeout + 1
    for _, what in ipairs(sources) do
        if (s.cache_ttl[what] or 0) < need then
            s.cache_ttl[what] = need
            c._policies[what] = nil
        end
    end

    local list = {}
    for i, what in ipairs(sources) do
        list[i] = what
    end
    local min_age = seconds * MIN_AGE
    local function tick(premature)
        if premature then
            return
        end
        for _, what in ipairs(list) do
            local ok, msg = c:_refresh(what, min_age)
            if ok == nil then
                ngx.log(ngx.WARN, "ecs_metadata: refresh_every: ", msg)
            end
        end
    end
    local ok, err = ngx.timer.every(seconds, tick)
    if not ok then
        return nil, fname .. ": cannot start a timer: " .. tostring(err),
            "invalid_argument"
    end
    -- And at once: the first requests should find the documents there.
    ngx.timer.at(0, tick)
    return true
end

return _M
