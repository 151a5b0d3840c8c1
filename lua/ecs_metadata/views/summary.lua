-- ecs_metadata.views.summary: one flat table of what people log and route
-- on, from a container's metadata and its task's (v4, v3 or v2 documents; the
-- container metadata file's document in place of the container's works too).
-- Every field is a string, and absent when the documents do not have it; the
-- README lists each field and where it comes from.
--
--   build(container, task) -> { cluster = "default", task_id = "158d...",
--                               task_definition = "curltest:26", ... }
--
-- Caveats:
--  * Pure: no I/O, and the tables given are only read (cached results are
--    shared), never changed or kept.
--  * Region, account and partition come from the task's ARN (else the
--    container's, else the cluster's), never from the availability zone's
--    name, which does not always begin with the region's (Local Zones).
--  * An empty string in a document ("ImageID": "", "IPv4Addresses": [""])
--    counts as absent.

local type = type
local upper = string.upper
local match = string.match
local sub = string.sub

local common = require "ecs_metadata.views.common"
local arn = require "ecs_metadata.views.arn"

local str = common.str
local text = common.text
local check_table = common.check_table

local _M = {}

local function label(container, name)
    local labels = container and container.Labels
    if type(labels) == "table" then
        return str(labels[name])
    end
    return nil
end

-- The first non-empty string of an array, or nil.
local function first(list)
    if type(list) ~= "table" then
        return nil
    end
    for i = 1, #list do
        local s = str(list[i])
        if s then
            return s
        end
    end
    return nil
end

-- "repo/name:tag@sha256:..." -> the digest after the "@", if any.
local function image_digest(image)
    return image and match(image, "@([%w%+%-%._]+:%x+)$") or nil
end

local function parse_arn(s)
    if not s then
        return nil
    end
    return (arn.parse(s, "summary"))
end

-- fname names the public function for argument errors (default "summary").
function _M.build(container, task, fname)
    fname = fname or "summary"
    check_table(container, 1, fname, true)
    check_table(task, 2, fname, true)
    if container == nil and task == nil then
        common.argerror(1, fname, "a container or a task document expected, got neither")
    end
    local c = container or {}
    local t = task or {}
    local s = {}

    -- The task: its own document first, then what the container's labels
    -- (v3/v4) or the metadata file repeat of it.
    s.task_arn = str(t.TaskARN) or label(container, "com.amazonaws.ecs.task-arn") or str(c.TaskARN)
    s.family = str(t.Family) or label(container, "com.amazonaws.ecs.task-definition-family")
        or str(c.TaskDefinitionFamily)
    s.revision = text(t.Revision) or label(container, "com.amazonaws.ecs.task-definition-version")
        or text(c.TaskDefinitionRevision)
    if s.family and s.revision then
        s.task_definition = s.family .. ":" .. s.revision
    end
    local launch = str(t.LaunchType)
    s.launch_type = launch and upper(launch)
    s.availability_zone = str(t.AvailabilityZone) or str(c.AvailabilityZone)
    s.availability_zone_id = str(t.AvailabilityZoneID) or str(t.AvailabilityZoneId)
    s.service_name = str(t.ServiceName)
    s.group = str(t.Group)
    s.vpc_id = str(t.VPCID)

    local task_arn = parse_arn(s.task_arn)
    if task_arn and task_arn.service == "ecs" and task_arn.resource_type == "task" then
        s.task_id = task_arn.task_id
    else
        task_arn = nil
    end

    -- The cluster: a bare name on EC2, an ARN on Fargate.
    local cluster = str(t.Cluster) or label(container, "com.amazonaws.ecs.cluster") or str(c.Cluster)
    local cluster_arn
    if cluster then
        if sub(cluster, 1, 4) == "arn:" then
            cluster_arn = parse_arn(cluster)
            if cluster_arn and cluster_arn.resource_type == "cluster" then
                s.cluster = cluster_arn.cluster
                s.cluster_arn = cluster
            else
                cluster_arn = nil
            end
        else
            s.cluster = arn.cluster_name(cluster, fname)
        end
    end
    if not s.cluster and task_arn then
        s.cluster = task_arn.cluster       -- the task's ARN names it too (new format)
    end

    -- The container.
    s.container_name = str(c.Name) or str(c.ContainerName)
    s.docker_id = str(c.DockerId) or str(c.ContainerID)
    local docker_name = str(c.DockerName) or str(c.DockerContainerName)
    s.docker_name = docker_name and (match(docker_name, "^/(.+)$") or docker_name)
    s.container_arn = str(c.ContainerARN)
    s.container_instance_arn = str(c.ContainerInstanceARN) or str(t.ContainerInstanceARN)
    s.image = str(c.Image) or str(c.ImageName)
    s.image_id = str(c.ImageID)
    s.image_digest = image_digest(s.image)

    s.log_driver = str(c.LogDriver)
    if s.log_driver == "awslogs" and type(c.LogOptions) == "table" then
        local o = c.LogOptions
        s.awslogs_group = str(o["awslogs-group"])
        s.awslogs_stream = str(o["awslogs-stream"])
        s.awslogs_region = str(o["awslogs-region"])
    end

    local net = type(c.Networks) == "table" and c.Networks[1]
    if type(net) == "table" then
        s.network_mode = str(net.NetworkMode)
        s.private_ipv4 = first(net.IPv4Addresses)
        s.private_ipv6 = first(net.IPv6Addresses)
        s.ipv4_subnet_cidr = str(net.IPv4SubnetCIDRBlock)
        s.ipv6_subnet_cidr = str(net.IPv6SubnetCIDRBlock)
        s.subnet_gateway_ipv4 = str(net.SubnetGatewayIpv4Address) or str(net.SubnetGatewayIPv4Address)
        -- Agents have written both spellings.
        s.subnet_gateway_ipv6 = str(net.SubnetGatewayIpv6Address) or str(net.SubnetGatewayIPv6Address)
        s.private_dns_name = str(net.PrivateDNSName)
        s.mac_address = str(net.MACAddress)
    end

    -- Where: the task's ARN, else the container's, else the cluster's.
    local where = task_arn or parse_arn(s.container_arn) or cluster_arn
    if where then
        s.partition = where.partition
        s.region = where.region
        s.account = where.account
    end
    if s.cluster and not s.cluster_arn and s.partition and s.region and s.account then
        s.cluster_arn = "arn:" .. s.partition .. ":ecs:" .. s.region .. ":" .. s.account
            .. ":cluster/" .. s.cluster
    end
    return s
end

return _M
