-- ecs_metadata.views.prometheus: a task's metadata and stats in the
-- Prometheus text exposition format 0.0.4, with the metric names, types,
-- labels and values of prometheus-community's ecs_exporter v0.4, so the
-- dashboards and alerts written for it work on the same documents; then,
-- under names of our own in the same style, what it leaves out.
--
--   render(task [, task_stats [, container]]) -> "# HELP ecs_container_cpu_usage_seconds_total ..."
--
-- ecs_exporter's families, as it computes them:
--   ecs_task_metadata_info{cluster,task_arn,family,revision,desired_status,
--     known_status,availability_zone,launch_type} 1   (the task's fields as written)
--   ecs_task_cpu_limit_vcpus, ecs_task_memory_limit_bytes (Limits; MiB * 2^20)
--   ecs_task_ephemeral_storage_used_bytes, _allocated_bytes (Utilized, Reserved MiB)
--   ecs_task_image_pull_start_timestamp_seconds, _stop_ (PullStartedAt, PullStoppedAt)
--   per container of task.Containers with stats, {container_name}:
--     ecs_container_restarts_total (RestartCount, when present)
--     ecs_container_cpu_usage_seconds_total (total_usage * 1e-9)
--     ecs_container_memory_usage_bytes (usage)
--     ecs_container_memory_limit_bytes (its Limits.Memory, else the task's; MiB)
--     ecs_container_memory_page_cache_size_bytes (stats.cache: 0 on cgroup v2)
--   per interface, {interface}: ecs_network_{receive,transmit}_{bytes,packets,
--     packets_dropped,errors}_total. The agent repeats an awsvpc task's
--     interfaces in every container's stats; like ecs_exporter, the last
--     container in task.Containers that reports an interface gives its values.
-- Ours, {container_name}:
--   ecs_container_memory_cache_bytes (cache on cgroup v1, file on v2)
--   ecs_container_memory_working_set_bytes (memory used as docker stats counts it)
--   ecs_container_cpu_throttling_periods_total, _throttled_periods_total,
--     _throttled_seconds_total (throttling_data)
--   ecs_container_block_io_read_bytes_total, _write_bytes_total
--   ecs_container_pids (pids_stats.current)
--
-- Caveats:
--  * In ecs_exporter's families a number the stats document lacks counts as
--    0, as the exporter's Go structures make it (memory usage on a Windows
--    document without one, the page cache on cgroup v2); our families leave
--    such a series out instead.
--  * Families come sorted by name and series by label values, as the Go
--    client writes them; a family with no series is left out; a second
--    series with the same labels is dropped, never written twice.
--  * Integers are written as integers (exact above 2^53 on Lua 5.3+),
--    floats with the fewest digits that read back the same.
--  * Pure: the tables given are only read, never changed or kept.

local type = type
local pairs = pairs
local ipairs = ipairs
local huge = math.huge
local find = string.find
local gsub = string.gsub
local format = string.format
local concat = table.concat
local sort = table.sort
local tonumber = tonumber

local common = require "ecs_metadata.views.common"
local stats = require "ecs_metadata.views.stats"

local number = common.number
local str = common.str
local text = common.text
local timestamp = common.timestamp
local check_table = common.check_table
local has_stats = stats.has_stats
local stats_view = stats.stats_view
local interfaces = stats.interfaces

local mtype = math.type

local _M = {}

local MIB = 1048576
local NS = 1e-9      -- what ecs_exporter multiplies nanoseconds by

-- name -> { type, help }. Help texts are ours; names and types are
-- ecs_exporter's for its families.
local FAMILIES = {
    ecs_task_metadata_info = { "gauge",
        "The task's identity and state from the task metadata endpoint; always 1." },
    ecs_task_cpu_limit_vcpus = { "gauge",
        "The task's CPU limit in vCPUs (1024 CPU units each), when the task sets one." },
    ecs_task_memory_limit_bytes = { "gauge",
        "The task's memory limit in bytes, when the task sets one." },
    ecs_task_ephemeral_storage_used_bytes = { "gauge",
        "Ephemeral storage the task uses, in bytes (Fargate)." },
    ecs_task_ephemeral_storage_allocated_bytes = { "gauge",
        "Ephemeral storage reserved for the task, in bytes (Fargate)." },
    ecs_task_image_pull_start_timestamp_seconds = { "gauge",
        "When the task began pulling its container images, in seconds since the epoch." },
    ecs_task_image_pull_stop_timestamp_seconds = { "gauge",
        "When the task finished pulling its container images, in seconds since the epoch." },
    ecs_container_restarts_total = { "counter",
        "Times ECS restarted the container under its restart policy." },
    ecs_container_cpu_usage_seconds_total = { "counter",
        "CPU time the container has used, in seconds." },
    ecs_container_memory_usage_bytes = { "gauge",
        "The container's memory usage as the runtime reports it, page cache included, in bytes." },
    ecs_container_memory_limit_bytes = { "gauge",
        "The container's memory limit from the task definition (its own, else the task's), in bytes." },
    ecs_container_memory_page_cache_size_bytes = { "gauge",
        "The container's page cache on cgroup v1 in bytes; 0 on cgroup v2, as ecs_exporter has it." },
    ecs_network_receive_bytes_total = { "counter", "Bytes received on the interface." },
    ecs_network_receive_packets_total = { "counter", "Packets received on the interface." },
    ecs_network_receive_packets_dropped_total = { "counter",
        "Received packets dropped on the interface." },
    ecs_network_receive_errors_total = { "counter", "Receive errors on the interface." },
    ecs_network_transmit_bytes_total = { "counter", "Bytes transmitted on the interface." },
    ecs_network_transmit_packets_total = { "counter", "Packets transmitted on the interface." },
    ecs_network_transmit_packets_dropped_total = { "counter",
        "Packets to transmit dropped on the interface." },
    ecs_network_transmit_errors_total = { "counter", "Transmit errors on the interface." },
    -- Ours.
    ecs_container_memory_cache_bytes = { "gauge",
        "The container's page cache in bytes: cache on cgroup v1, file on cgroup v2." },
    ecs_container_memory_working_set_bytes = { "gauge",
        "The container's memory without its inactive page cache, in bytes, as docker stats "
        .. "counts it (the private working set on Windows)." },
    ecs_container_cpu_throttling_periods_total = { "counter",
        "CPU scheduler periods in which the container could run." },
    ecs_container_cpu_throttled_periods_total = { "counter",
        "CPU scheduler periods in which the container was throttled." },
    ecs_container_cpu_throttled_seconds_total = { "counter",
        "Time the container spent throttled, in seconds." },
    ecs_container_block_io_read_bytes_total = { "counter",
        "Bytes the container read from block devices." },
    ecs_container_block_io_write_bytes_total = { "counter",
        "Bytes the container wrote to block devices." },
    ecs_container_pids = { "gauge", "Processes and threads in the container." },
}
_M.FAMILIES = FAMILIES

-- Docker's interface counter -> the family it feeds.
local NETWORK = {
    rx_bytes = "ecs_network_receive_bytes_total",
    rx_packets = "ecs_network_receive_packets_total",
    rx_dropped = "ecs_network_receive_packets_dropped_total",
    rx_errors = "ecs_network_receive_errors_total",
    tx_bytes = "ecs_network_transmit_bytes_total",
    tx_packets = "ecs_network_transmit_packets_total",
    tx_dropped = "ecs_network_transmit_packets_dropped_total",
    tx_errors = "ecs_network_transmit_errors_total",
}

-- ===================================================================
-- Writing
-- ===================================================================

local ESCAPES = { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }

local function escape(v)
    if find(v, '[\\"\n]') then
        return (gsub(v, '[\\"\n]', ESCAPES))
    end
    return v
end

local function shortest(x)
    for digits = 15, 17 do
        local s = format("%." .. digits .. "g", x)
        if tonumber(s) == x then
            return s
        end
    end
    return format("%.17g", x)
end

local function value_text(x)
    if mtype and mtype(x) == "integer" then
        return format("%d", x)
    end
    if x ~= x then
        return "NaN"
    elseif x == huge then
        return "+Inf"
    elseif x == -huge then
        return "-Inf"
    end
    if x % 1 == 0 and x > -2^53 and x < 2^53 then
        return format("%d", x)
    end
    return shortest(x)
end
_M.value_text = value_text

-- The samples of one rendering gather in a sheet: family name ->
-- { keys = { key, ... }, lines = { key -> line } }. put adds a series;
-- labels is a flat list of name, value pairs (strings, never nil: a hole
-- would cut the list short) already sorted by name. The first series with
-- given labels stays.
local function put(sheet, name, labels, value)
    if value == nil then
        return
    end
    local fam = sheet[name]
    if not fam then
        fam = { keys = {}, lines = {} }
        sheet[name] = fam
    end
    local key, head
    if labels then
        local vals, pairs_out = {}, {}
        for i = 1, #labels, 2 do
            local v = labels[i + 1]
            vals[#vals + 1] = v
            pairs_out[#pairs_out + 1] = labels[i] .. '="' .. escape(v) .. '"'
        end
        key = concat(vals, "\0")
        head = name .. "{" .. concat(pairs_out, ",") .. "} "
    else
        key = ""
        head = name .. " "
    end
    if fam.lines[key] then
        return
    end
    fam.keys[#fam.keys + 1] = key
    fam.lines[key] = head .. value_text(value) .. "\n"
end

local function write(sheet)
    local names = {}
    for name in pairs(sheet) do
        names[#names + 1] = name
    end
    sort(names)
    local out = {}
    for _, name in ipairs(names) do
        local fam, def = sheet[name], FAMILIES[name]
        out[#out + 1] = "# HELP " .. name .. " " .. def[2] .. "\n# TYPE " .. name .. " " .. def[1] .. "\n"
        local keys = fam.keys
        sort(keys)
        for _, key in ipairs(keys) do
            out[#out + 1] = fam.lines[key]
        end
    end
    return concat(out)
end

-- ===================================================================
-- The task
-- ===================================================================

local function tab(x)
    return type(x) == "table" and x or nil
end

-- A timestamp as ecs_exporter turns it into seconds: its nanoseconds since
-- the epoch as a float, times 1e-9.
local function epoch_seconds(s)
    local sec, ns = timestamp(s)
    if not sec then
        return nil
    end
    return (sec * 1000000000 + ns) * NS
end

local function task_families(sheet, task)
    -- A field the task lacks is an empty label value, as in ecs_exporter.
    put(sheet, "ecs_task_metadata_info", {
        "availability_zone", text(task.AvailabilityZone) or "",
        "cluster", text(task.Cluster) or "",
        "desired_status", text(task.DesiredStatus) or "",
        "family", text(task.Family) or "",
        "known_status", text(task.KnownStatus) or "",
        "launch_type", text(task.LaunchType) or "",
        "revision", text(task.Revision) or "",
        "task_arn", text(task.TaskARN) or "",
    }, 1)
    local lim = tab(task.Limits)
    if lim then
        put(sheet, "ecs_task_cpu_limit_vcpus", nil, number(lim.CPU))
        local mem = number(lim.Memory)
        put(sheet, "ecs_task_memory_limit_bytes", nil, mem and mem * MIB)
    end
    local eph = tab(task.EphemeralStorageMetrics)
    if eph then
        local used, reserved = number(eph.Utilized), number(eph.Reserved)
        put(sheet, "ecs_task_ephemeral_storage_used_bytes", nil, used and used * MIB)
        put(sheet, "ecs_task_ephemeral_storage_allocated_bytes", nil, reserved and reserved * MIB)
    end
    put(sheet, "ecs_task_image_pull_start_timestamp_seconds", nil, epoch_seconds(task.PullStartedAt))
    put(sheet, "ecs_task_image_pull_stop_timestamp_seconds", nil, epoch_seconds(task.PullStoppedAt))
end

-- ===================================================================
-- The containers
-- ===================================================================

local function container_families(sheet, task, c, s, networks, order)
    local labels = { "container_name", text(c.Name) or "" }
    put(sheet, "ecs_container_restarts_total", labels, number(c.RestartCount))

    local cpu = tab(s.cpu_stats) or {}
    local usage = tab(cpu.cpu_usage) or {}
    put(sheet, "ecs_container_cpu_usage_seconds_total", labels, (number(usage.total_usage) or 0) * NS)

    local mem = tab(s.memory_stats) or {}
    local st = tab(mem.stats) or {}
    put(sheet, "ecs_container_memory_usage_bytes", labels, number(mem.usage) or 0)
    put(sheet, "ecs_container_memory_page_cache_size_bytes", labels, number(st.cache) or 0)
    local own = tab(c.Limits)
    local mib = own and number(own.Memory)
    if not mib then
        local lim = tab(task.Limits)
        mib = lim and number(lim.Memory)
    end
    put(sheet, "ecs_container_memory_limit_bytes", labels, mib and mib * MIB)

    for name, iface in pairs(interfaces(s) or {}) do
        if type(name) == "string" and type(iface) == "table" then
            if not networks[name] then
                order[#order + 1] = name
            end
            networks[name] = iface          -- the last container's wins
        end
    end

    -- Ours.
    local v = stats_view(s, nil, "prometheus")
    put(sheet, "ecs_container_memory_cache_bytes", labels, v.memory_cache)
    put(sheet, "ecs_container_memory_working_set_bytes", labels, v.memory_used)
    put(sheet, "ecs_container_cpu_throttling_periods_total", labels, v.cpu_throttling_periods)
    put(sheet, "ecs_container_cpu_throttled_periods_total", labels, v.cpu_throttled_periods)
    put(sheet, "ecs_container_cpu_throttled_seconds_total", labels,
        v.cpu_throttled_time_ns and v.cpu_throttled_time_ns * NS)
    put(sheet, "ecs_container_block_io_read_bytes_total", labels, v.block_read_bytes)
    put(sheet, "ecs_container_block_io_write_bytes_total", labels, v.block_write_bytes)
    put(sheet, "ecs_container_pids", labels, v.pids)
end

-- render(task, task_stats, container): task_stats and container are
-- optional; with container (a container's metadata), only its series.
function _M.render(task, task_stats, container, fname)
    fname = fname or "prometheus"
    check_table(task, 1, fname)
    check_table(task_stats, 2, fname, true)
    check_table(container, 3, fname, true)
    local sheet = {}
    task_families(sheet, task)
    if task_stats then
        local only = container and str(container.DockerId)
        local networks, order = {}, {}
        for _, c in ipairs(tab(task.Containers) or {}) do
            local id = type(c) == "table" and str(c.DockerId)
            local s = id and task_stats[id]
            if id and (not container or id == only) and has_stats(s) then
                container_families(sheet, task, c, s, networks, order)
            end
        end
        for _, name in ipairs(order) do
            local iface = networks[name]
            local labels = { "interface", name }
            for field, family in pairs(NETWORK) do
                put(sheet, family, labels, number(iface[field]) or 0)
            end
        end
    end
    return write(sheet)
end

return _M
