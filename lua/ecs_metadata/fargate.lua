-- ecs_metadata.fargate: ecs.Fargate(opts), a mirror of the small Python
-- helper `Fargate(raise_errors=True, logger=...)`, method for method, over
-- the same client every other function uses (one implementation; this only
-- decides what a failure becomes).
--
--   raise_errors  true (default): a failure raises a Lua error whose message
--                 is the `nil, msg` message, without position information.
--                 false: the failure is logged and {} is returned.
--   logger        a function(msg), or an object with :error(msg) (or :warn,
--                 :warning), like a Python logging.Logger; false = silent.
--                 Default: a line on io.stderr, as Python's logging does
--                 for an unconfigured logger.
-- Every other option is a client option (timeout, retries, env, ...); the
-- helper reads the v4 endpoint only and caches nothing (results nor
-- failures) unless cache_ttl or error_ttl is given, as the Python one does.

local type = type
local error = error
local setmetatable = setmetatable
local pairs = pairs
local io_stderr = io.stderr

local client = require "ecs_metadata.client"
local errors = require "ecs_metadata.errors"

local _M = {}
local mt = { __index = _M }

-- Options of Fargate's own, beside the client's.
local OWN_OPTIONS = { raise_errors = true, logger = true }

local function stderr_logger(msg)
    io_stderr:write("ecs_metadata: ", msg, "\n")
end

local function log(logger, msg)
    if logger == false then
        return
    end
    if type(logger) == "function" then
        return logger(msg)
    end
    local f = logger.error or logger.warn or logger.warning
    if f then
        return f(logger, msg)
    end
end

-- new([opts]) -> Fargate object. Raises for misuse and for invalid option
-- values when raise_errors is true.
function _M.new(opts)
    if opts ~= nil and type(opts) ~= "table" then
        errors.argerror(1, "Fargate", "table or nil expected, got "
            .. type(opts))
    end
    opts = opts or {}
    local raise = opts.raise_errors
    if raise == nil then
        raise = true
    elseif type(raise) ~= "boolean" then
        errors.argerror(1, "Fargate", "option 'raise_errors': boolean "
            .. "expected, got " .. type(raise))
    end
    local logger = opts.logger
    if logger == nil then
        logger = stderr_logger
    elseif logger ~= false and type(logger) ~= "function"
           and type(logger) ~= "table" then
        errors.argerror(1, "Fargate", "option 'logger': function, table or "
            .. "false expected, got " .. type(logger))
    end
    local copts = {}
    for k, v in pairs(opts) do
        copts[k] = v
    end
    copts.version = "v4"
    if copts.cache_ttl == nil then
        copts.cache_ttl = 0          -- the Python helper asks every time
    end
    if copts.error_ttl == nil then
        copts.error_ttl = 0
    end
    copts.raise_errors, copts.logger = nil, nil
    local c, msg = client.new(copts, "Fargate", OWN_OPTIONS)
    if not c then
        if raise then
            error(msg, 0)
        end
        log(logger, msg)
        -- Keep an object whose every call fails the same way.
        c = { _failed = msg }
    end
    return setmetatable({
        raise_errors = raise,
        logger = logger,
        client = c,
    }, mt)
end

local function call(self, method)
    local c = self.client
    local v, msg
    if c._failed then
        msg = c._failed
    else
        v, msg = c[method](c)
        if v ~= nil then
            return v
        end
    end
    if self.raise_errors then
        error(msg, 0)
    end
    log(self.logger, msg)
    return {}
end

function _M:get_container_metadata_v4()
    return call(self, "container")
end

function _M:get_task_metadata_v4()
    return call(self, "task")
end

function _M:get_container_stats_v4()
    return call(self, "container_stats")
end

function _M:get_task_stats_v4()
    return call(self, "task_stats")
end

function _M:get_task_metadata_with_tags_v4()
    return call(self, "task_with_tags")
end

return _M
