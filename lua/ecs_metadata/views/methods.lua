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

-- The documents a view is built from, in the order of `names`: each from
-- opts when it hands one over, else from the client. -> docs, own opts |
-- nil, msg, code, status (the first failure; no partial view).
local function gather(c, opts, fname, names)
    local own, rest = split(opts, fname)
    local docs = {}
    for i = 1, #names do
        local what = names[i]
        local v = own and own[what]
        if not v then
            local msg, code, status
            v, msg, code, status = c[what](c, rest)
            if v == nil then
                return nil, fname .. ": " .. tostring(msg), code, status
            end
        end
        docs[i] = v
    end
    return docs, own
end

-- Each view: the documents it is built from, and its builder.
local VIEWS = {
    summary = { { "container", "task" }, function(docs)
        return summary.build(docs[1], docs[2], "summary")
    end },
    resource = { { "container", "task" }, function(docs)
        return resource.resource(docs[1], docs[2], "resource")
    end },
    prometheus = { { "task", "task_stats" }, function(docs, own)
        return prometheus.render(docs[1], docs[2], own and own.container, "prometheus")
    end },
}

for name, view in pairs(VIEWS) do
    local needs, build = view[1], view[2]
    _M[name] = function(c, opts)
        local docs, own, code, status = gather(c, opts, name, needs)
        if not docs then
            return nil, own, code, status
        end
        return build(docs, own)
    end
end

return _M
