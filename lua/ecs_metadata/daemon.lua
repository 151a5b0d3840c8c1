-- ecs_metadata.daemon: the documents only daemon tasks on ECS Managed
-- Instances have, under the task metadata endpoint v4:
--
--   $ECS_CONTAINER_METADATA_URI_V4/tasks         an array of task documents,
--                                                one per task on the instance
--   $ECS_CONTAINER_METADATA_URI_V4/tasks/stats   an array of maps, one per
--                                                task: container id -> stats
--
-- What this module owns, with no I/O: where they are, what a good answer
-- looks like, and what the endpoint's 404 means.
--
-- Caveats:
--  * Anywhere else (EC2, Fargate, a task on Managed Instances that is not a
--    daemon) the agent's router does not know the paths and answers a
--    plain-text 404. That is `http_status` with status 404, and the message
--    says that these exist only for daemon tasks on Managed Instances.
--  * v3, v2 and the metadata file never have them: asked there, the answer
--    is `invalid_argument` at once, without a request.
--  * A stopped container's stats are `null` in a map and so left out of
--    it; an empty array is an empty table (no daemon task has stats yet).

local type = type
local pairs = pairs

local _M = { _NAME = "ecs_metadata.daemon" }

_M.PATHS = { tasks = "/tasks", tasks_stats = "/tasks/stats" }

-- What asking for `what` ("tasks" or "tasks_stats") answers where the
-- source is not v4: nil, msg, "invalid_argument".
function _M.not_v4(what, version)
    return nil, what .. ": only the task metadata endpoint v4 of a daemon task on ECS "
        .. "Managed Instances has " .. _M.PATHS[what] .. " (this is "
        .. (version == "file" and "the container metadata file" or version) .. ")",
        "invalid_argument"
end

-- What a 404 there adds to the message.
_M.NOT_HERE = "only daemon tasks on ECS Managed Instances have it"

-- True when t is an array: keys 1..n and nothing else.
local function is_array(t)
    if type(t) ~= "table" then
        return false
    end
    local n = 0
    for _ in pairs(t) do
        n = n + 1
    end
    return n == #t
end

-- The decoded answer if it has the documented shape, or nil, msg, "bad_json".
function _M.check(what, doc, label)
    local ok = is_array(doc)
    if ok then
        for i = 1, #doc do
            if type(doc[i]) ~= "table" then
                ok = false
                break
            end
        end
    end
    if not ok then
        return nil, "GET " .. label .. ": bad_json: the answer is not an array of "
            .. (what == "tasks" and "task documents" or "maps of container id to stats"),
            "bad_json"
    end
    return doc
end

return _M
