-- ecs_metadata.views.resource: the OpenTelemetry resource attributes of this
-- container and its task, by the semantic conventions (cloud.*, aws.ecs.*,
-- aws.log.*, container.*), as a flat table of attribute name -> string, or
-- -> array of strings for the aws.log.* and container.image.tags ones.
--
--   resource(container, task) -> { ["cloud.provider"] = "aws",
--                                  ["aws.ecs.task.id"] = "158d...", ... }
--
-- Built on summary.build, so the two always agree. Where each attribute is
-- taken from is in the README. What the official detectors (Go, JS, Python,
-- Java) get wrong, and this does not:
--  * ARNs are built with the task ARN's partition (arn:aws-cn:, arn:aws-us-gov:
--    ...), never a hard-coded "arn:aws:".
--  * aws.ecs.task.id is there, cut out of the task ARN.
--  * aws.ecs.container.arn is the container instance's ARN, as the
--    convention defines it (the metadata file has it; v4 does not, so it is
--    left out there), never the container's own ARN.
--  * aws.ecs.launchtype is one of the convention's values, ec2 or fargate;
--    launch types it has no value for (MANAGED_INSTANCES, EXTERNAL) leave
--    the attribute out.
--  * container.id is the endpoint's DockerId, never a guess from cgroups.
--
-- Caveats:
--  * Pure: the tables given are only read, never changed or kept.

local match = string.match

local summary = require "ecs_metadata.views.summary"

local _M = {}

local LAUNCH_TYPES = { EC2 = "ec2", FARGATE = "fargate" }

-- "registry:5000/repo/name:tag@sha256:..." -> name, tag (either may be nil).
local function image_parts(image)
    if not image then
        return nil, nil
    end
    local ref = match(image, "^(.-)@") or image
    local name, tag = match(ref, "^(.*):([%w_][%w_%.%-]*)$")
    if name and name ~= "" then
        return name, tag
    end
    return ref ~= "" and ref or nil, nil
end

function _M.resource(container, task, fname)
    fname = fname or "resource"
    local s = summary.build(container, task, fname)
    local r = {
        ["cloud.provider"] = "aws",
        ["cloud.platform"] = "aws_ecs",
    }
    r["cloud.region"] = s.region
    r["cloud.account.id"] = s.account
    r["cloud.availability_zone"] = s.availability_zone
    r["cloud.resource_id"] = s.container_arn or s.task_arn

    r["aws.ecs.cluster.arn"] = s.cluster_arn
    r["aws.ecs.task.arn"] = s.task_arn
    r["aws.ecs.task.id"] = s.task_id
    r["aws.ecs.task.family"] = s.family
    r["aws.ecs.task.revision"] = s.revision
    r["aws.ecs.launchtype"] = s.launch_type and LAUNCH_TYPES[s.launch_type]
    r["aws.ecs.container.arn"] = s.container_instance_arn

    local group, stream = s.awslogs_group, s.awslogs_stream
    if group then
        r["aws.log.group.names"] = { group }
        local region = s.awslogs_region or s.region
        local prefix
        if s.partition and region and s.account then
            prefix = "arn:" .. s.partition .. ":logs:" .. region .. ":" .. s.account
                .. ":log-group:" .. group
            r["aws.log.group.arns"] = { prefix .. ":*" }
        end
        if stream then
            r["aws.log.stream.names"] = { stream }
            if prefix then
                r["aws.log.stream.arns"] = { prefix .. ":log-stream:" .. stream }
            end
        end
    end

    r["container.id"] = s.docker_id
    r["container.name"] = s.docker_name or s.container_name
    local name, tag = image_parts(s.image)
    r["container.image.name"] = name
    r["container.image.tags"] = tag and { tag } or nil
    r["container.image.id"] = s.image_id
    return r
end

return _M
