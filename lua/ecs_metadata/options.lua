-- ecs_metadata.options: every option of the Lua layer, defined once (name,
-- type, range, scope, default), and the one place that checks them.
--
--   options.client(opts, fname)        -> settings | nil, msg, code
--   options.call(base, opts, fname, n) -> settings | nil, msg, code
--   options.DEFAULTS, options.DEFAULT_CACHE_TTL, options.SPEC
--
-- The rules, the same for every public function:
--  * An unknown option raises, with a hint when a known name is close
--    ("unknown option 'timout' (did you mean 'timeout'?)"); so does an
--    option of the wrong type, an enumerated value that does not exist
--    (version = "v5"), and a client-only option given to one call. These are
--    mistakes in the program: the message points at the caller's line.
--  * A value of the right type out of its range answers
--    nil, "<fname>: <why>", "invalid_argument": it may come from
--    configuration the program did not write.
--  * Settings are checked before anything else happens, before the
--    environment is read: ecs.protect(true, 5000) outside ECS is
--    invalid_argument, not not_on_ecs.
-- C only guards memory safety; it never sees a value this module refused.

local type = type
local pairs = pairs
local tostring = tostring
local setmetatable = setmetatable
local floor = math.floor
local huge = math.huge
local find = string.find
local sort = table.sort

local core = require "ecs_metadata.core"
local errors = require "ecs_metadata.errors"
local transport = require "ecs_metadata.transport"

local argerror = errors.argerror

local _M = {}

-- Upper bounds: the C core's own (core.LIMITS: large enough for any real
-- use, small enough that no later arithmetic overflows), so that a value
-- accepted here is never refused below; retries are the Lua layer's.
local LIMITS = core.LIMITS
local MAX_SECONDS = floor(LIMITS.timeout)     -- a whole number, as messages print it
local MAX_BYTES = LIMITS.max_bytes
local MAX_HEADER_BYTES = LIMITS.max_header_bytes
local MAX_RETRIES = 100
local MAX_DEPTH = LIMITS.max_depth
_M.MAX_SECONDS, _M.MAX_BYTES = MAX_SECONDS, MAX_BYTES
_M.MAX_RETRIES, _M.MAX_DEPTH = MAX_RETRIES, MAX_DEPTH
_M.MAX_HEADER_BYTES = MAX_HEADER_BYTES

-- Seconds a result is kept, per function. Metadata changes rarely (a
-- container's status, a task's health); stats and protection are asked for
-- because they change. Credentials follow their own Expiration (their
-- entry caps it).
local DEFAULT_CACHE_TTL = {
    container = 1, task = 1, task_with_tags = 1, metadata_file = 1,
    container_stats = 0, task_stats = 0, protection = 0, credentials = huge,
    -- Managed Instances daemon tasks: the instance's tasks like a task,
    -- their stats like stats.
    tasks = 1, tasks_stats = 0,
}
_M.DEFAULT_CACHE_TTL = DEFAULT_CACHE_TTL

-- ===================================================================
-- Value checks: each answers nil when the value is fine, else why not.
-- ===================================================================

local function finite(x)
    return x == x and x > -huge and x < huge
end

local function seconds(max, min_word)
    return function(v)
        if not (finite(v) and v > 0 and v <= max) then
            return "must be " .. min_word .. " number of seconds up to " .. max
        end
    end
end

local function whole(lo, hi)
    return function(v)
        if not (finite(v) and v == floor(v) and v >= lo and v <= hi) then
            return "must be a whole number from " .. lo .. " to " .. hi
        end
    end
end

local function ttl(v)
    if not (v == v and v >= 0) then
        return "must be a number of seconds >= 0"
    end
end

local function bounded_ttl(v)
    if not (finite(v) and v >= 0 and v <= MAX_SECONDS) then
        return "must be a number of seconds from 0 to " .. MAX_SECONDS
    end
end

local function http_url(v)
    if not find(v, "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@%s]+") then
        return "must be an http:// or https:// url with a host"
    end
end

local VERSIONS = { v4 = true, v3 = true, v2 = true, file = true }
local TRANSPORTS = { curl = true, cosocket = true }

-- ===================================================================
-- The schema
-- ===================================================================

-- name -> { types, scope, default, check, enum }
--   types   the Lua types accepted ("number", "table", "number|table")
--   scope   "both" (ecs.new and every call), "client" (ecs.new only),
--           "call" (a call only)
--   check   range check of a value of the right type (see above)
--   enum    the accepted strings; another one raises
local SPEC = {
    timeout = { types = "number", scope = "both", default = 3,
                check = seconds(MAX_SECONDS, "a positive") },
    connect_timeout = { types = "number", scope = "both", default = 1,
                        check = seconds(MAX_SECONDS, "a positive") },
    retries = { types = "number", scope = "both", default = 2,
                check = whole(0, MAX_RETRIES) },
    max_bytes = { types = "number", scope = "both", default = 4 * 1024 * 1024,
                  check = whole(1, MAX_BYTES) },
    max_header_bytes = { types = "number", scope = "both",
                         default = core.DEFAULT_MAX_HEADER_BYTES,
                         check = whole(1, MAX_HEADER_BYTES) },
    version = { types = "string", scope = "both", enum = VERSIONS },
    link_local_url = { types = "string", scope = "both",
                       default = "http://169.254.170.2", check = http_url },
    env = { types = "table", scope = "both" },
    transport = { types = "string", scope = "both", enum = TRANSPORTS },
    cache_ttl = { types = "number|table", scope = "both" },
    error_ttl = { types = "number", scope = "both", default = 1,
                  check = bounded_ttl },
    stale_ttl = { types = "number", scope = "both", default = 0,
                  check = bounded_ttl },
    protection_timeout = { types = "number", scope = "client", default = 5,
                           check = seconds(MAX_SECONDS, "a positive") },
    -- The agent gives a fault request 5 s for its commands.
    fault_timeout = { types = "number", scope = "client", default = 6,
                      check = seconds(MAX_SECONDS, "a positive") },
    keep_null = { types = "boolean", scope = "client", default = false },
    array_mt = { types = "table", scope = "client" },
    max_depth = { types = "number", scope = "client", default = 1000,
                  check = whole(1, MAX_DEPTH) },
    headers = { types = "table", scope = "client",
                check = transport.check_headers },
    -- Under nginx: the lua_shared_dict the client's results are shared
    -- through (false: none, each worker keeps its own), and whether
    -- credentials may go there too.
    shared_dict = { types = "string|boolean", scope = "client",
                    default = "ecs_metadata",
                    check = function(v)
                        if v == true or v == "" then
                            return "must be the name of a lua_shared_dict, "
                                .. "or false"
                        end
                    end },
    shared_credentials = { types = "boolean", scope = "client",
                           default = false },
    container_id = { types = "string", scope = "call" },
    wait = { types = "number", scope = "call",
             check = function(v)
                 if not (finite(v) and v >= 0 and v <= MAX_SECONDS) then
                     return "must be a number of seconds from 0 to "
                         .. MAX_SECONDS
                 end
             end },
}
_M.SPEC = SPEC

local DEFAULTS = {}
for name, o in pairs(SPEC) do
    DEFAULTS[name] = o.default
    o.accepts = {}
    for t in o.types:gmatch("[^|]+") do
        o.accepts[t] = true
    end
end
_M.DEFAULTS = DEFAULTS

-- Names of every option, sorted, for hints.
local NAMES = {}
for name in pairs(SPEC) do
    NAMES[#NAMES + 1] = name
end
sort(NAMES)

-- ===================================================================
-- Checking
-- ===================================================================

-- Edit distance of two short strings (for "did you mean").
local function distance(a, b)
    local prev, cur = {}, {}
    for j = 0, #b do
        prev[j] = j
    end
    for i = 1, #a do
        cur[0] = i
        local ai = a:byte(i)
        for j = 1, #b do
            local cost = ai == b:byte(j) and 0 or 1
            local x = prev[j] + 1
            if cur[j - 1] + 1 < x then x = cur[j - 1] + 1 end
            if prev[j - 1] + cost < x then x = prev[j - 1] + cost end
            cur[j] = x
        end
        prev, cur = cur, prev
    end
    return prev[#b]
end

local function hint(name, own)
    local best, best_d = nil, 3
    local function try(candidate)
        local d = distance(name, candidate)
        if d < best_d then
            best, best_d = candidate, d
        end
    end
    for i = 1, #NAMES do
        try(NAMES[i])
    end
    for candidate in pairs(own or {}) do
        try(candidate)
    end
    if best then
        return " (did you mean '" .. best .. "'?)"
    end
    return ""
end
_M.hint = hint


-- The per-function cache_ttl table of ecs.new: function name -> seconds.
local function check_ttl_table(v, fname, argn, extra)
    for k, x in pairs(v) do
        if DEFAULT_CACHE_TTL[k] == nil and not (extra and extra[k]) then
            argerror(argn, fname, "option 'cache_ttl': unknown function '"
                .. tostring(k) .. "'")
        end
        if type(x) ~= "number" then
            argerror(argn, fname, "option 'cache_ttl." .. tostring(k)
                .. "': number expected, got " .. type(x))
        end
        local why = ttl(x)
        if why then
            return "cache_ttl." .. k .. " " .. why
        end
    end
end

-- Checks a table of options given to fname (argument argn) for the scope
-- "client" (ecs.new) or "call". `own` lists further names that fname takes
-- itself (Fargate's raise_errors, summary's tables...): they are skipped.
-- Raises for misuse. Returns nil, or why a value is out of range.
local function check(opts, fname, argn, scope, own)
    for k, v in pairs(opts) do
        local o = SPEC[k]
        if o == nil then
            if not (own and own[k]) then
                if type(k) ~= "string" then
                    argerror(argn, fname, "option names are strings, got "
                        .. type(k))
                end
                argerror(argn, fname, "unknown option '" .. k .. "'"
                    .. hint(k, own))
            end
        else
            local t = type(v)
            if not o.accepts[t] then
                argerror(argn, fname, "option '" .. k .. "': "
                    .. o.types:gsub("|", " or ") .. " expected, got " .. t)
            end
            if scope == "call" and o.scope == "client" then
                argerror(argn, fname, "option '" .. k .. "' is set per "
                    .. "client (ecs.new), not per call")
            end
            if scope == "client" and o.scope == "call" then
                argerror(argn, fname, "option '" .. k .. "' is set per "
                    .. "call, not per client")
            end
            if o.enum and not o.enum[v] then
                local names = {}
                for name in pairs(o.enum) do
                    names[#names + 1] = '"' .. name .. '"'
                end
                sort(names)
                argerror(argn, fname, "unknown " .. k .. " '" .. v
                    .. "' (expected " .. table.concat(names, ", ") .. ")")
            end
            if k == "cache_ttl" then
                if t == "table" then
                    if scope == "call" then
                        argerror(argn, fname, "option 'cache_ttl': number "
                            .. "expected per call, got table")
                    end
                    local why = check_ttl_table(v, fname, argn, own)
                    if why then
                        return why
                    end
                else
                    local why = ttl(v)
                    if why then
                        return "cache_ttl " .. why
                    end
                end
            elseif k == "headers" then
                local why = o.check(v)
                if why then
                    return "headers: " .. why
                end
            elseif o.check then
                local why = o.check(v)
                if why then
                    return k .. " " .. why
                end
            end
        end
    end
end

local function invalid(fname, why)
    return nil, fname .. ": " .. why, "invalid_argument"
end

-- client(opts, fname[, own]) -> settings | nil, msg, "invalid_argument"
-- The settings of a new client: every option with its default, cache_ttl
-- resolved to a table of function name -> seconds.
function _M.client(opts, fname, own)
    local why = check(opts, fname, 1, "client", own)
    if why then
        return invalid(fname, why)
    end
    local s = {}
    for name, o in pairs(SPEC) do
        local v = opts[name]
        if v == nil then
            v = o.default
        end
        s[name] = v
    end
    local ttls = {}
    for k, v in pairs(DEFAULT_CACHE_TTL) do
        ttls[k] = v
    end
    local given = opts.cache_ttl
    if type(given) == "number" then
        for k in pairs(ttls) do
            ttls[k] = given
        end
    elseif type(given) == "table" then
        for k, v in pairs(given) do
            ttls[k] = v
        end
    end
    s.cache_ttl = ttls
    -- What a call's settings inherit through (see call()).
    s._inherit = { __index = s }
    return s
end

-- call(base, opts, fname, argn[, own]) -> settings | nil, msg, code
-- The settings of one call: opts over the client's settings `base`. Raises
-- for misuse, at the caller of the public function.
function _M.call(base, opts, fname, argn, own)
    if type(opts) ~= "table" then
        argerror(argn, fname, "table expected, got " .. type(opts))
    end
    local why = check(opts, fname, argn, "call", own)
    if why then
        return invalid(fname, why)
    end
    local s = setmetatable({}, base._inherit)
    for k, v in pairs(opts) do
        if SPEC[k] then
            s[k] = v
        end
    end
    return s
end

-- The cache ttl of `what` under settings s (a call's number, or the
-- client's table).
function _M.ttl_of(s, what)
    local t = s.cache_ttl
    if type(t) == "table" then
        return t[what] or 0
    end
    return t
end

return _M
