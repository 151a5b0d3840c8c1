-- ecs_metadata.launch_type: how a task was launched, which tells ECS Managed
-- Instances apart from EC2 and Fargate, and saying where it was read:
--
--   1. AWS_EXECUTION_ENV   the agent sets AWS_ECS_EC2, AWS_ECS_FARGATE or
--                          AWS_ECS_MANAGED_INSTANCES in every container
--   2. the task document's LaunchType  "EC2", "FARGATE", "EXTERNAL",
--                          "MANAGED_INSTANCES"
--
-- The answer is spelled as LaunchType is: "EC2", "FARGATE", "EXTERNAL",
-- "MANAGED_INSTANCES" (upper case: one test document of a real agent's
-- wrapper writes "ec2").
--
-- Caveats:
--  * The variable comes first because it costs no request. Only the three
--    values above are read from it: other runtimes use the same variable
--    (AWS Lambda writes AWS_Lambda_<runtime>), and say nothing about ECS.
--  * A task document without LaunchType (older agents, some test
--    documents) gives no answer rather than a guess.

local type = type
local upper = string.upper
local match = string.match

local _M = { _NAME = "ecs_metadata.launch_type" }

_M.VARIABLE = "AWS_EXECUTION_ENV"

local FROM_ENV = {
    AWS_ECS_EC2 = "EC2",
    AWS_ECS_FARGATE = "FARGATE",
    AWS_ECS_MANAGED_INSTANCES = "MANAGED_INSTANCES",
}
_M.FROM_ENV = FROM_ENV

-- The launch type a value of AWS_EXECUTION_ENV names, or nil.
function _M.of_env(v)
    return v and FROM_ENV[v] or nil
end

-- The LaunchType of a task document, upper case, or nil.
function _M.of_task(doc)
    local lt = type(doc) == "table" and doc.LaunchType
    if type(lt) == "string" and match(lt, "^[%w_]+$") then
        return upper(lt)
    end
    return nil
end

-- resolve(getenv, fetch) -> launch type, source | nil, msg, code
--   getenv(name) -> the variable's value or nil
--   fetch()      -> the task document | nil, msg, code
-- source is "AWS_EXECUTION_ENV" or "LaunchType".
function _M.resolve(getenv, fetch)
    local lt = _M.of_env(getenv(_M.VARIABLE))
    if lt then
        return lt, _M.VARIABLE
    end
    local doc, msg, code, status = fetch()
    if doc == nil then
        return nil, "launch_type: AWS_EXECUTION_ENV names no ECS launch type, and " .. msg,
            code, status
    end
    lt = _M.of_task(doc)
    if lt then
        return lt, "LaunchType"
    end
    return nil, "launch_type: AWS_EXECUTION_ENV names no ECS launch type, and the task "
        .. "document has no LaunchType", "bad_json"
end

return _M
