-- ecs_metadata.region: the AWS region a task runs in, found the way the AWS
-- libraries for OpenResty and the SDKs look for it, and saying where:
--
--   1. AWS_REGION            (the agent sets it since 1.104, as the SDKs read it)
--   2. AWS_DEFAULT_REGION    (the agent sets it too; the CLI's name)
--   3. the task's TaskARN    arn:<partition>:ecs:<region>:<account>:task/...
--   4. its AvailabilityZone  us-west-2a, us-west-2-lax-1a (Local Zone),
--                            us-east-1-wl1-bos-wlz-1 (Wavelength)
--
-- The first two cost nothing; the last two need the task document (or the
-- container metadata file, which has both), which the caller fetches.
--
-- Caveats:
--  * A variable is taken as it is, like the SDKs take it: it is the user's
--    choice, and may name a region this module does not know yet.
--  * From a document, only something shaped like a region is answered
--    (letters, dashes, a number): an ARN with a placeholder in it names no
--    region, and the next source is tried.
--  * The zone's ID (AvailabilityZoneID, "use1-az6") is not a region's name
--    and is not used.

local type = type
local ipairs = ipairs
local match = string.match

local _M = { _NAME = "ecs_metadata.region" }

_M.VARIABLES = { "AWS_REGION", "AWS_DEFAULT_REGION" }

-- "us-east-1", "us-gov-west-1", "eu-isoe-west-1", "cn-northwest-1".
local function region_like(s)
    return type(s) == "string"
        and (match(s, "^%l+%-%l+%-%d+$") or match(s, "^%l+%-%l+%-%l+%-%d+$")) ~= nil
end
_M.region_like = region_like

-- The region field of an ARN, or nil.
function _M.of_arn(arn)
    if type(arn) ~= "string" then
        return nil
    end
    local region = match(arn, "^arn:[^:]+:[^:]+:([^:]*):")
    if region_like(region) then
        return region
    end
    return nil
end

-- The region of an availability zone's name, or nil. A zone is its region
-- and a letter; a Local Zone or Wavelength Zone its region, a dash and more.
function _M.of_az(az)
    if type(az) ~= "string" then
        return nil
    end
    return match(az, "^(%l+%-%l+%-%l+%-%d+)%l$")
        or match(az, "^(%l+%-%l+%-%d+)%l$")
        or match(az, "^(%l+%-%l+%-%l+%-%d+)%-%w[%w%-]*$")
        or match(az, "^(%l+%-%l+%-%d+)%-%w[%w%-]*$")
end

-- resolve(getenv, fetch) -> region, source | nil, msg, code
--   getenv(name) -> the variable's value or nil (empty counts as unset)
--   fetch()      -> the task document (or the metadata file's) | nil, msg, code
-- source is "AWS_REGION", "AWS_DEFAULT_REGION", "TaskARN" or
-- "AvailabilityZone": the variable or the field the region came from.
function _M.resolve(getenv, fetch)
    for _, name in ipairs(_M.VARIABLES) do
        local v = getenv(name)
        if v then
            return v, name
        end
    end
    local doc, msg, code, status = fetch()
    if doc == nil then
        return nil, "region: neither AWS_REGION nor AWS_DEFAULT_REGION is set, and "
            .. msg, code, status
    end
    if type(doc) == "table" then
        local r = _M.of_arn(doc.TaskARN)
        if r then
            return r, "TaskARN"
        end
        r = _M.of_az(doc.AvailabilityZone)
        if r then
            return r, "AvailabilityZone"
        end
    end
    return nil, "region: neither AWS_REGION nor AWS_DEFAULT_REGION is set, and the task "
        .. "document has no TaskARN or AvailabilityZone that names a region", "bad_json"
end

return _M
