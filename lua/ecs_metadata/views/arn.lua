-- ecs_metadata.views.arn: Amazon Resource Names taken apart, with the parts
-- ECS puts in its own (cluster, task id, container instance id, task
-- definition family and revision, container id, service name), in both the
-- current format and the old one that had no cluster in it.
--
--   parse("arn:aws:ecs:us-west-2:111122223333:task/default/158d...")
--     -> { partition = "aws", service = "ecs", region = "us-west-2",
--          account = "111122223333", resource = "task/default/158d...",
--          resource_type = "task", id = "default/158d...",
--          cluster = "default", task_id = "158d..." }
--   cluster_name("default"), cluster_name("arn:aws:ecs:...:cluster/default")
--     -> "default"
--
-- Caveats:
--  * Strict: anything that is not an ARN answers nil, message,
--    "invalid_argument" (an account that is not 12 digits, such as the AWS
--    documentation's unexpanded "&ExampleAWSAccountNo1;", an empty part, a
--    control character, an ECS resource of a shape ECS never writes).
--  * Every part is a string: the revision too, as the task's Revision is.
--    region and account are absent when the ARN leaves them empty (IAM, S3).
--  * The partition is not checked against a list (aws, aws-cn, aws-us-gov,
--    aws-iso, aws-iso-b, ... and those still to come): any lower-case name.

local type = type
local ipairs = ipairs
local find = string.find
local sub = string.sub
local match = string.match
local gmatch = string.gmatch
local gsub = string.gsub

local common = require "ecs_metadata.views.common"

local _M = {}

local MAX_LENGTH = 2048      -- the longest ARN any AWS API accepts

-- s quoted for a message: at most 80 bytes, control characters as "?".
local function quote(s)
    local shown = gsub(sub(s, 1, 80), "%c", "?")
    return '"' .. shown .. (#s > 80 and '..."' or '"')
end

local function invalid(fname, s, why)
    return nil, fname .. ": not an ARN (" .. why .. "): " .. quote(s), "invalid_argument"
end

-- "a/b/c" -> { "a", "b", "c" }, or nil when a component is empty.
local function components(s)
    local list = {}
    if s == "" or find(s, "//", 1, true) or sub(s, 1, 1) == "/" or sub(s, -1) == "/" then
        return nil
    end
    for part in gmatch(s, "[^/]+") do
        list[#list + 1] = part
    end
    return list
end

-- The ECS resource types and the shapes of their ids, old format first.
-- Each entry names the fields the components go to, in order.
local ECS_SHAPES = {
    cluster = { { "cluster" } },
    task = { { "task_id" }, { "cluster", "task_id" } },
    ["container-instance"] = { { "container_instance_id" },
                               { "cluster", "container_instance_id" } },
    container = { { "container_id" }, { "cluster", "task_id", "container_id" } },
    service = { { "service_name" }, { "cluster", "service_name" } },
}

local function ecs_parts(r, fname, s)
    local t = r.resource_type
    if t == "task-definition" then
        local family, revision = match(r.id, "^([A-Za-z0-9_%-]+):(%d+)$")
        if not family then
            return invalid(fname, s, "a task definition is family:revision")
        end
        r.family, r.revision = family, revision
        return r
    end
    if t == "task-set" then
        -- cluster/service/id, where the id has a slash of its own ("ecs-svc/123...").
        local cluster, service, id = match(r.id, "^([^/]+)/([^/]+)/(.+)$")
        if not cluster or not components(id) then
            return invalid(fname, s, "a task set is cluster/service/id")
        end
        r.cluster, r.service_name, r.task_set_id = cluster, service, id
        return r
    end
    local shapes = ECS_SHAPES[t]
    if not shapes then
        return r                 -- capacity-provider and the like: generic parts only
    end
    local list = components(r.id)
    if list then
        for _, shape in ipairs(shapes) do
            if #shape == #list then
                for i, field in ipairs(shape) do
                    r[field] = list[i]
                end
                return r
            end
        end
    end
    return invalid(fname, s, "an ECS " .. t .. " id of an unknown shape")
end

-- Parses s; fname names the public function in messages (default "arn").
function _M.parse(s, fname)
    fname = fname or "arn"
    if type(s) ~= "string" then
        common.argerror(1, fname, "string expected, got " .. (s == nil and "no value" or type(s)))
    end
    if #s > MAX_LENGTH then
        return invalid(fname, s, "longer than " .. MAX_LENGTH .. " bytes")
    end
    if find(s, "%c") then
        return invalid(fname, s, "a control character")
    end
    local partition, service, region, account, resource =
        match(s, "^arn:([^:]*):([^:]*):([^:]*):([^:]*):(.*)$")
    if not partition then
        return invalid(fname, s, "not arn:partition:service:region:account:resource")
    end
    if not find(partition, "^[a-z][a-z0-9%-]*$") then
        return invalid(fname, s, "bad partition")
    end
    if not find(service, "^[a-z0-9][a-z0-9%-]*$") then
        return invalid(fname, s, "bad service")
    end
    if region ~= "" and not find(region, "^[a-z0-9][a-z0-9%-]*$") then
        return invalid(fname, s, "bad region")
    end
    -- Twelve digits; "aws" for AWS-managed resources (IAM's own policies);
    -- empty for services without accounts in their ARNs (S3 buckets).
    if account ~= "" and account ~= "aws" and not find(account, "^%d%d%d%d%d%d%d%d%d%d%d%d$") then
        return invalid(fname, s, "the account is not 12 digits")
    end
    if resource == "" then
        return invalid(fname, s, "no resource")
    end
    local r = {
        partition = partition, service = service, resource = resource,
        region = region ~= "" and region or nil,
        account = account ~= "" and account or nil,
    }
    -- type/id or type:id; a resource without either separator is an id alone.
    local cut = find(resource, "[/:]")
    if cut then
        r.resource_type, r.id = sub(resource, 1, cut - 1), sub(resource, cut + 1)
        if r.resource_type == "" or r.id == "" then
            return invalid(fname, s, "an empty resource type or id")
        end
    else
        r.id = resource
    end
    if service == "ecs" then
        if region == "" or account == "" then
            return invalid(fname, s, "an ECS ARN names a region and an account")
        end
        if not cut or sub(resource, cut, cut) ~= "/" then
            return invalid(fname, s, "an ECS resource is type/id")
        end
        return ecs_parts(r, fname, s)
    end
    return r
end

-- The cluster's name from a task's Cluster: a bare name (EC2, and the
-- metadata file) or the cluster's ARN (Fargate, Managed Instances).
function _M.cluster_name(s, fname)
    fname = fname or "cluster_name"
    if type(s) ~= "string" then
        common.argerror(1, fname, "string expected, got " .. (s == nil and "no value" or type(s)))
    end
    if sub(s, 1, 4) == "arn:" then
        local r, msg, code = _M.parse(s, fname)
        if not r then
            return nil, msg, code
        end
        if r.service ~= "ecs" or r.resource_type ~= "cluster" then
            return nil, fname .. ": not the ARN of an ECS cluster: " .. quote(s),
                "invalid_argument"
        end
        return r.cluster
    end
    -- ECS allows up to 255 letters, digits, hyphens and underscores.
    if #s >= 1 and #s <= 255 and find(s, "^[A-Za-z0-9_%-]+$") then
        return s
    end
    return nil, fname .. ": not a cluster name or ARN: " .. quote(s),
        "invalid_argument"
end

return _M
