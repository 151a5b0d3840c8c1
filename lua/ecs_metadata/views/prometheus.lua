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
--    client writes them; a family with no series is left out; of two
--    containers with one name, the first one's series are written, so no
--    series is ever written twice.
--  * Label texts and timestamps, which repeat from scrape to scrape, are
--    kept in small caches keyed by the strings they come from (bounded:
--    emptied past 256 entries). Nothing else outlives a call.
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
local memory_and_io = stats.memory_and_io
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

-- Docker's interface counters, each followed by the family it feeds.
local NETWORK = {
    "rx_bytes", "ecs_network_receive_bytes_total",
    "rx_packets", "ecs_network_receive_packets_total",
    "rx_dropped", "ecs_network_receive_packets_dropped_total",
    "rx_errors", "ecs_network_receive_errors_total",
    "tx_bytes", "ecs_network_transmit_bytes_total",
    "tx_packets", "ecs_network_transmit_packets_total",
    "tx_dropped", "ecs_network_transmit_packets_dropped_total",
    "tx_errors", "ecs_network_transmit_errors_total",
}

-- ===================================================================
-- Writing
-- ===================================================================

local ESCAPES = { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }

local function escape(v)
    if find(v, "\\", 1, true) or find(v, '"', 1, true) or find(v, "\n", 1, true) then
        return (gsub(v, '[\\"\n]', ESCAPES))
    end
    return v
end

-- Label texts and timestamp values repeat from one rendering to the next
-- (the same task, the same containers): they are kept, keyed by the
-- strings they are made of, in caches of bounded size. Strings never
-- change, so a kept text is always the one the string gives.
local MAX_KEPT = 256

local function new_cache()
    return { n = 0, map = {} }
end

local function keep(cache, key, value)
    if cache.n >= MAX_KEPT then
        cache.n, cache.map = 0, {}
    end
    cache.n = cache.n + 1
    cache.map[key] = value
    return value
end

local label_caches = {}

-- A series' labels as written: '{name="value"}'.
local function label(name, value)
    local cache = label_caches[name]
    if not cache then
        cache = new_cache()
        label_caches[name] = cache
    end
    return cache.map[value] or keep(cache, value, "{" .. name .. '="' .. escape(value) .. '"}')
end

local FLOAT_FORMATS = { "%.15g", "%.16g", "%.17g" }

local function shortest(x)
    for i = 1, 2 do
        local s = format(FLOAT_FORMATS[i], x)
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

-- Each family's HELP and TYPE lines, written once; the families in the
-- order they are written; and the rows their series are in.
local HEADERS, ORDER, KIND = {}, {}, {}
for name, def in pairs(FAMILIES) do
    HEADERS[name] = "# HELP " .. name .. " " .. def[2] .. "\n# TYPE " .. name .. " " .. def[1] .. "\n"
    ORDER[#ORDER + 1] = name
    KIND[name] = find(name, "^ecs_task_") and "task" or find(name, "^ecs_network_") and "interface"
        or "container"
end
sort(ORDER)

-- A rendering gathers rows: one for the task, one per container, one per
-- interface. A row maps a family's name to its series' line. Each
-- container's family has one label, container_name, and each interface's
-- one, interface, so a family's series come out sorted by label value, as
-- the Go client writes them, when the rows are sorted by name.
--
-- set writes a series into a row: labels is its label text (label(), or ""),
-- value a number or the value's text.
local function set(row, name, labels, value)
    if value == nil then
        return
    end
    -- Integers (5.3+) go straight into the line: ".." writes them as %d.
    if not ((mtype and mtype(value) == "integer") or type(value) == "string") then
        value = value_text(value)
    end
    row[name] = name .. labels .. " " .. value .. "\n"
end

local function write(task_row, containers, interfaces_rows)
    local out, n = {}, 0
    for i = 1, #ORDER do
        local name = ORDER[i]
        local kind = KIND[name]
        if kind == "task" then
            local line = task_row[name]
            if line then
                out[n + 1], out[n + 2] = HEADERS[name], line
                n = n + 2
            end
        else
            local rows = kind == "container" and containers or interfaces_rows
            local header = false
            for j = 1, #rows do
                local line = rows[j][name]
                if line then
                    if not header then
                        header = true
                        n = n + 1
                        out[n] = HEADERS[name]
                    end
                    n = n + 1
                    out[n] = line
                end
            end
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
-- the epoch as a float, times 1e-9; kept as the text written.
local times = new_cache()

local function epoch_seconds(s)
    if type(s) ~= "string" then
        return nil
    end
    local v = times.map[s]
    if v == nil then
        local sec, ns = timestamp(s)
        v = keep(times, s, sec and value_text((sec * 1000000000 + ns) * NS) or false)
    end
    return v or nil
end

-- The metadata info series' labels, sorted by name, and the fields they
-- are taken from.
local INFO_LABELS = { "availability_zone", "cluster", "desired_status", "family",
                      "known_status", "launch_type", "revision", "task_arn" }
local INFO_FIELDS = { "AvailabilityZone", "Cluster", "DesiredStatus", "Family",
                      "KnownStatus", "LaunchType", "Revision", "TaskARN" }
local infos = new_cache()

local function task_row(task)
    local row = {}
    -- A field the task lacks is an empty label value, as in ecs_exporter.
    local values = {}
    for i = 1, #INFO_LABELS do
        local v = task[INFO_FIELDS[i]]
        if type(v) ~= "string" then
            v = text(v) or ""
        end
        values[i] = v
    end
    local key = concat(values, "\0")
    local labels = infos.map[key]
    if not labels then
        local parts = {}
        for i = 1, #INFO_LABELS do
            parts[i] = INFO_LABELS[i] .. '="' .. escape(values[i]) .. '"'
        end
        labels = keep(infos, key, "{" .. concat(parts, ",") .. "}")
    end
    set(row, "ecs_task_metadata_info", labels, 1)
    local lim = tab(task.Limits)
    if lim then
        set(row, "ecs_task_cpu_limit_vcpus", "", number(lim.CPU))
        local mem = number(lim.Memory)
        set(row, "ecs_task_memory_limit_bytes", "", mem and mem * MIB)
    end
    local eph = tab(task.EphemeralStorageMetrics)
    if eph then
        local used, reserved = number(eph.Utilized), number(eph.Reserved)
        set(row, "ecs_task_ephemeral_storage_used_bytes", "", used and used * MIB)
        set(row, "ecs_task_ephemeral_storage_allocated_bytes", "", reserved and reserved * MIB)
    end
    set(row, "ecs_task_image_pull_start_timestamp_seconds", "", epoch_seconds(task.PullStartedAt))
    set(row, "ecs_task_image_pull_stop_timestamp_seconds", "", epoch_seconds(task.PullStoppedAt))
    return row
end

-- ===================================================================
-- The containers
-- ===================================================================

local EMPTY = {}

local function container_row(task, c, s, name, networks, order)
    local row = {}
    local labels = label("container_name", name)
    set(row, "ecs_container_restarts_total", labels, number(c.RestartCount))

    local cpu = tab(s.cpu_stats) or EMPTY
    local usage = tab(cpu.cpu_usage) or EMPTY
    set(row, "ecs_container_cpu_usage_seconds_total", labels, (number(usage.total_usage) or 0) * NS)

    local mem = tab(s.memory_stats) or EMPTY
    local st = tab(mem.stats) or EMPTY
    set(row, "ecs_container_memory_usage_bytes", labels, number(mem.usage) or 0)
    set(row, "ecs_container_memory_page_cache_size_bytes", labels, number(st.cache) or 0)
    local own = tab(c.Limits)
    local mib = own and number(own.Memory)
    if not mib then
        local lim = tab(task.Limits)
        mib = lim and number(lim.Memory)
    end
    set(row, "ecs_container_memory_limit_bytes", labels, mib and mib * MIB)

    for iface_name, iface in pairs(interfaces(s) or EMPTY) do
        if type(iface_name) == "string" and type(iface) == "table" then
            if not networks[iface_name] then
                order[#order + 1] = iface_name
            end
            networks[iface_name] = iface          -- the last container's wins
        end
    end

    -- Ours.
    local used, cache, bytes_read, bytes_written = memory_and_io(s)
    set(row, "ecs_container_memory_cache_bytes", labels, cache)
    set(row, "ecs_container_memory_working_set_bytes", labels, used)
    set(row, "ecs_container_block_io_read_bytes_total", labels, bytes_read)
    set(row, "ecs_container_block_io_write_bytes_total", labels, bytes_written)
    local thr = tab(cpu.throttling_data)
    if thr then
        set(row, "ecs_container_cpu_throttling_periods_total", labels, number(thr.periods))
        set(row, "ecs_container_cpu_throttled_periods_total", labels, number(thr.throttled_periods))
        local ns = number(thr.throttled_time)
        set(row, "ecs_container_cpu_throttled_seconds_total", labels, ns and ns * NS)
    end
    local pids = tab(s.pids_stats)
    set(row, "ecs_container_pids", labels, pids and number(pids.current))
    return row
end

-- render(task, task_stats, container): task_stats and container are
-- optional; with container (a container's metadata), only its series.
function _M.render(task, task_stats, container, fname)
    fname = fname or "prometheus"
    check_table(task, 1, fname)
    check_table(task_stats, 2, fname, true)
    check_table(container, 3, fname, true)
    local containers, interfaces_rows = {}, {}
    if task_stats then
        local only = container and str(container.DockerId)
        local by_name, names = {}, {}
        local networks, order = {}, {}
        for _, c in ipairs(tab(task.Containers) or EMPTY) do
            local id = type(c) == "table" and str(c.DockerId)
            local s = id and task_stats[id]
            if id and (not container or id == only) and has_stats(s) then
                local name = c.Name
                if type(name) ~= "string" then
                    name = text(name) or ""
                end
                -- Two containers of one name would make two series with
                -- the same labels: the first one's stay.
                if not by_name[name] then
                    by_name[name] = container_row(task, c, s, name, networks, order)
                    names[#names + 1] = name
                end
            end
        end
        sort(names)
        for i = 1, #names do
            containers[i] = by_name[names[i]]
        end
        sort(order)
        for i = 1, #order do
            local iface = networks[order[i]]
            local labels = label("interface", order[i])
            local row = {}
            for j = 1, #NETWORK, 2 do
                set(row, NETWORK[j + 1], labels, number(iface[NETWORK[j]]) or 0)
            end
            interfaces_rows[i] = row
        end
    end
    return write(task_row(task), containers, interfaces_rows)
end

return _M
