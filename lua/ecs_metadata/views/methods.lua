-- ecs_metadata.views.methods: the derived views as methods of a client,
-- over its public methods only (c:container(o), c:task(o), c:task_stats(o),
-- each answering its value or nil, message, code[, status]).
--
--   methods.summary(c [, opts])     -> summary.build(c:container(o), c:task(o))
--   methods.resource(c [, opts])    -> resource.resource(c:container(o), c:task(o))
--   methods.prometheus(c [, opts])  -> prometheus.render(c:task(o), c:task_stats(o), opts.container)
--
-- opts.container, opts.task (and opts.task_stats for prometheus) are tables
-- to build from instead of asking the client; every other key of opts goes
-- to the client's calls unchanged (and none at all when there is no other
-- key, so the client takes its fast, cached path).
--
-- Caveats:
--  * A failure answers nil, "<name>: <the client's message>", code[, status]
--    and no partial view.
--  * Misuse raises: opts that is not a table, or a container, task or
--    task_stats in it that is not a table.

local type = type
local tostring = tostring
local pairs = pairs
local next = next

local common = require "ecs_metadata.views.common"
local summary = require "ecs_metadata.views.summary"
local resource = require "ecs_metadata.views.resource"
local prometheus = require "ecs_metadata.views.prometheus"

local _M = {}

local OWN = { container = true, task = true, task_stats = true }

-- The tables opts names, checked, and the rest of opts for the client.
local function split(opts, fname)
    if opts == nil then
        return nil, nil
    end
    if type(opts) ~= "table" then
        common.argerror(1, fname, "table expected, got " .. type(opts))
    end
    local rest
    for k, v in pairs(opts) do
        if OWN[k] then
            if type(v) ~= "table" then
                common.argerror(1, fname, "opts." .. k .. " must be a table, got " .. type(v))
            end
        else
            rest = rest or {}
            rest[k] = v
        end
    end
    if rest and next(rest) == nil then
        rest = nil
    end
    return opts, rest
end

local function ask(c, what, rest, fname)
    local v, msg, code, status = c[what](c, rest)
    if v == nil then
        return nil, fname .. ": " .. tostring(msg), code, status
    end
    return v
end

local function container_and_task(c, opts, fname)
    local own, rest = split(opts, fname)
    local container = own and own.container
    local task = own and own.task
    local msg, code, status
    if not container then
        container, msg, code, status = ask(c, "container", rest, fname)
        if not container then
            return nil, msg, code, status
        end
    end
    if not task then
        task, msg, code, status = ask(c, "task", rest, fname)
        if not task then
            return nil, msg, code, status
        end
    end
    return container, task
end

function _M.summary(c, opts)
    local container, task, code, status = container_and_task(c, opts, "summary")
    if not container then
        return nil, task, code, status
    end
    return summary.build(container, task, "summary")
end

function _M.resource(c, opts)
    local container, task, code, status = container_and_task(c, opts, "resource")
    if not container then
        return nil, task, code, status
    end
    return resource.resource(container, task, "resource")
end

function _M.prometheus(c, opts)
    local fname = "prometheus"
    local own, rest = split(opts, fname)
    local task = own and own.task
    local task_stats = own and own.task_stats
    local msg, code, status
    if not task then
        task, msg, code, status = ask(c, "task", rest, fname)
        if not task then
            return nil, msg, code, status
        end
    end
    if not task_stats then
        task_stats, msg, code, status = ask(c, "task_stats", rest, fname)
        if not task_stats then
            return nil, msg, code, status
        end
    end
    return prometheus.render(task, task_stats, own and own.container, fname)
end

return _M
