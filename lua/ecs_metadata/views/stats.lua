-- ecs_metadata.views.stats: the numbers `docker stats` shows, out of the
-- Docker stats documents the endpoint answers: one container's
-- (stats_view) and a task's, per container and in total (task_stats_view).
--
--   stats_view(stats [, prev])               -> { cpu_percent = 0.41, memory_used = 3514368, ... }
--   task_stats_view(task_stats, task [, prev]) -> { containers = { curl = {...} },
--                                                  without_stats = { "..." },
--                                                  unmatched = {}, totals = {...} }
--
-- The formulas are the Docker CLI's (cli/command/container/stats_helpers.go):
--   Linux   cpu % = (total_usage - previous total_usage)
--                   / (system_cpu_usage - previous system_cpu_usage)
--                   * online_cpus (else the length of percpu_usage) * 100
--           memory used = usage - total_inactive_file (cgroup v1)
--                         or - inactive_file (cgroup v2), or - cache (old
--                         documents), when that is less than usage
--   Windows cpu % = (total_usage - previous total_usage)
--                   / ((read - previous read) in 100 ns intervals * num_procs) * 100
--           memory used = the private working set
-- The previous reading is the document's own precpu_stats (and preread), or
-- the cpu_stats (and read) of prev, the same container's earlier document,
-- when prev is given.
--
-- Caveats:
--  * Every field is a number or absent. A figure that cannot be worked out
--    honestly is left out, never guessed: no cpu_percent for a first sample
--    (the previous reading is zero or missing) or a counter that went back;
--    no memory_limit or memory_percent for the kernel's "no limit"
--    sentinels (2^63 rounded down to a page, 2^63 - 1, 2^64 - 1).
--  * Never NaN or an infinity; integers from the document stay integers on
--    Lua 5.3+ (sums are checked, and one that would wrap becomes a float).
--  * Pure: the tables given are only read, never changed or kept.
--  * Windows is recognised by what the document has: none of Linux's
--    system_cpu_usage, online_cpus and percpu_usage, and num_procs above 0
--    or a private working set or commit size (Docker itself asks the
--    daemon for its OS, which a document does not carry).

local type = type
local pairs = pairs
local ipairs = ipairs
local next = next
local lower = string.lower
local floor = math.floor
local sort = table.sort
local mtype = math.type

local common = require "ecs_metadata.views.common"

local number = common.number
local str = common.str
local add = common.add
local timestamp = common.timestamp
local is_zero_time = common.is_zero_time
local check_table = common.check_table

local _M = {}

-- At or above this a limit is one of the kernel's "no limit" values:
-- 9223372036854771712 (cgroup v1), 2^63 - 1, 18446744073709551615 (v2
-- "max"), 9223372036854772000 (the same sentinel rounded by JavaScript).
local NO_LIMIT = 2^62

local MIB = 1048576

local EMPTY = {}        -- read only: what a missing table reads as

local function tab(x)
    return type(x) == "table" and x or nil
end

-- A limit, or nil for none.
local function limit(x)
    x = number(x)
    if x and x > 0 and x < NO_LIMIT then
        return x
    end
    return nil
end

-- A stats document is one with anything Docker writes in it: the agent
-- answers null or {} for a container it has no stats for.
local function has_stats(s)
    if type(s) ~= "table" then
        return false
    end
    for k in pairs(s) do
        if k ~= "network_rate_stats" then
            return true
        end
    end
    return false
end
_M.has_stats = has_stats

local function is_windows(s, cpu, mem)
    local u = tab(cpu.cpu_usage)
    if number(cpu.system_cpu_usage) or number(cpu.online_cpus) or (u and u.percpu_usage) then
        return false
    end
    local procs = number(s.num_procs)
    return (procs and procs > 0) or number(mem.privateworkingset) ~= nil
        or number(mem.commitbytes) ~= nil
end

-- Nanoseconds from the timestamp a to b (both RFC 3339), or nil when either
-- is missing, unreadable or Go's zero time.
local function ns_between(a, b)
    local sa, na = timestamp(a)
    local sb, nb = timestamp(b)
    if not sa or not sb or is_zero_time(sa) or is_zero_time(sb) then
        return nil
    end
    return (sb - sa) * 1000000000 + (nb - na)
end

local function usage_of(cpu)
    local u = tab(cpu.cpu_usage)
    return u and number(u.total_usage)
end

local function cpu_linux(v, cpu, pre)
    local total, pre_total = usage_of(cpu), usage_of(pre)
    local system, pre_system = number(cpu.system_cpu_usage), number(pre.system_cpu_usage)
    local online = number(cpu.online_cpus)
    if not online or online <= 0 then
        local per = tab(tab(cpu.cpu_usage) and cpu.cpu_usage.percpu_usage)
        online = per and #per or nil
    end
    if online and online > 0 then
        v.online_cpus = online
    end
    if not (total and pre_total and system and pre_system and v.online_cpus) then
        return
    end
    -- A previous reading of zero is the agent's first sample, not a reading.
    if pre_system <= 0 or system <= pre_system or total < pre_total then
        return
    end
    v.cpu_percent = (total - pre_total) / (system - pre_system) * online * 100
end

local function cpu_windows(v, s, cpu, pre, read, preread)
    local procs = number(s.num_procs)
    if procs then
        v.num_procs = procs
    end
    local total, pre_total = usage_of(cpu), usage_of(pre)
    local ns = ns_between(preread, read)
    if not (total and pre_total and ns and procs and procs > 0) or total < pre_total then
        return
    end
    local intervals = floor(ns / 100) * procs
    if intervals > 0 then
        v.cpu_percent = (total - pre_total) / intervals * 100
    end
end

-- Memory used, as docker stats counts it on Linux: usage less the
-- inactive file cache; and the page cache.
local function used_linux(usage, st)
    local inactive = number(st.total_inactive_file) or number(st.inactive_file) or number(st.cache)
    if inactive and inactive < usage then
        return usage - inactive
    end
    return usage
end

local function cache_linux(st)
    -- cgroup v1 "cache", cgroup v2 "file".
    return number(st.cache) or number(st.total_cache) or number(st.file)
end

local function memory_linux(v, mem)
    local usage = number(mem.usage)
    local st = tab(mem.stats) or EMPTY
    if usage then
        v.memory_usage = usage
        v.memory_used = used_linux(usage, st)
    end
    v.memory_cache = cache_linux(st)
    v.memory_max_usage = number(mem.max_usage)
    v.memory_limit = limit(mem.limit)
    if v.memory_used and v.memory_limit then
        v.memory_percent = v.memory_used / v.memory_limit * 100
    end
end

local function memory_windows(v, mem)
    v.memory_used = number(mem.privateworkingset)
    v.memory_usage = number(mem.usage)
    v.memory_max_usage = number(mem.max_usage)
    v.memory_commit = number(mem.commitbytes)
    v.memory_commit_peak = number(mem.commitpeakbytes)
end

-- name -> interface counters: Docker's "networks" map, or the single
-- "network" object of API versions before 1.21.
local function interfaces(s)
    local nets = tab(s.networks)
    if nets then
        return nets
    end
    local one = tab(s.network)
    if one and next(one) ~= nil then
        return { eth0 = one }
    end
    return nil
end
_M.interfaces = interfaces

local NET_FIELDS = {
    rx_bytes = "network_rx_bytes", tx_bytes = "network_tx_bytes",
    rx_packets = "network_rx_packets", tx_packets = "network_tx_packets",
    rx_errors = "network_rx_errors", tx_errors = "network_tx_errors",
    rx_dropped = "network_rx_dropped", tx_dropped = "network_tx_dropped",
}
_M.NET_FIELDS = NET_FIELDS

-- Sums of each counter over the interfaces; a counter some interface lacks
-- is left out rather than summed in part.
local function network(v, s)
    local nets = interfaces(s)
    if nets then
        for field, out in pairs(NET_FIELDS) do
            local sum, complete, any = 0, true, false
            for _, iface in pairs(nets) do
                local x = type(iface) == "table" and number(iface[field])
                if x then
                    sum, any = add(sum, x), true
                else
                    complete = false
                end
            end
            if any and complete then
                v[out] = sum
            end
        end
    end
    local rate = tab(s.network_rate_stats)
    if rate then
        v.network_rx_bytes_per_sec = number(rate.rx_bytes_per_sec)
        v.network_tx_bytes_per_sec = number(rate.tx_bytes_per_sec)
    end
end

-- The op names Docker writes, and what they count for (others are looked
-- up in lower case).
local OPS = {
    Read = "read", read = "read", Write = "write", write = "write",
    Sync = false, Async = false, Total = false, Discard = false,
    sync = false, async = false, total = false, discard = false,
}

-- Bytes read and written, summed over devices; "Read"/"Write" on cgroup v1,
-- "read"/"write" on v2 and Managed Instances. null and "None" (a Python
-- artefact) say nothing; [] says nothing was done; an entry without a
-- value counts as 0 (Go's omitempty dropped it).
local function block_io(s)
    local b = tab(s.blkio_stats)
    local list = b and tab(b.io_service_bytes_recursive)
    if not list then
        return nil, nil
    end
    local read, write = 0, 0
    for i = 1, #list do
        local e = list[i]
        local op = type(e) == "table" and e.op
        local kind = OPS[op]
        if kind == nil and type(op) == "string" then
            kind = lower(op)
        end
        if kind == "read" or kind == "write" then
            local x = e.value
            if x == nil then
                x = 0                -- Go's omitempty dropped a 0
            else
                x = number(x)
            end
            -- add() written out: this loop runs for every scrape.
            if x and kind == "read" then
                local sum = read + x
                if mtype and ((x > 0 and sum < read) or (x < 0 and sum > read)) then
                    sum = (read + 0.0) + x
                end
                read = sum
            elseif x then
                local sum = write + x
                if mtype and ((x > 0 and sum < write) or (x < 0 and sum > write)) then
                    sum = (write + 0.0) + x
                end
                write = sum
            end
        end
    end
    return read, write
end

local function storage_windows(s)
    local st = tab(s.storage_stats)
    if st then
        return number(st.read_size_bytes), number(st.write_size_bytes)
    end
    return nil, nil
end

-- Memory used, page cache, bytes read and written, as stats_view gives
-- them, without a table (the Prometheus view needs no more, per container
-- and scrape).
function _M.memory_and_io(s)
    local cpu = tab(s.cpu_stats) or EMPTY
    local mem = tab(s.memory_stats) or EMPTY
    if is_windows(s, cpu, mem) then
        return number(mem.privateworkingset), nil, storage_windows(s)
    end
    local usage = number(mem.usage)
    local st = tab(mem.stats) or EMPTY
    local read, write = block_io(s)
    return usage and used_linux(usage, st), cache_linux(st), read, write
end

function _M.stats_view(stats, prev, fname)
    fname = fname or "stats_view"
    check_table(stats, 1, fname)
    check_table(prev, 2, fname, true)
    local v = {}
    local cpu = tab(stats.cpu_stats) or {}
    local pre, preread
    if prev then
        pre, preread = tab(prev.cpu_stats) or {}, prev.read
    else
        pre, preread = tab(stats.precpu_stats) or {}, stats.preread
    end
    local mem = tab(stats.memory_stats) or {}
    local windows = is_windows(stats, cpu, mem)

    v.cpu_total_usage = usage_of(cpu)
    if windows then
        cpu_windows(v, stats, cpu, pre, stats.read, preread)
        memory_windows(v, mem)
        v.block_read_bytes, v.block_write_bytes = storage_windows(stats)
    else
        cpu_linux(v, cpu, pre)
        memory_linux(v, mem)
        v.block_read_bytes, v.block_write_bytes = block_io(stats)
    end
    local thr = tab(cpu.throttling_data)
    if thr then
        v.cpu_throttling_periods = number(thr.periods)
        v.cpu_throttled_periods = number(thr.throttled_periods)
        v.cpu_throttled_time_ns = number(thr.throttled_time)
    end
    network(v, stats)
    local pids = tab(stats.pids_stats)
    if pids then
        v.pids = number(pids.current)
        v.pids_limit = limit(pids.limit)
    end
    return v
end

-- ===================================================================
-- A task's stats
-- ===================================================================

-- Fields of the totals that are plain sums over the containers with stats;
-- each is left out unless every one of them has it.
local SUMMED = {
    "cpu_percent", "cpu_total_usage", "memory_used", "memory_usage", "memory_cache",
    "block_read_bytes", "block_write_bytes", "pids",
    "cpu_throttling_periods", "cpu_throttled_periods", "cpu_throttled_time_ns",
}

-- How the task's containers share interfaces: "shared" when they are in
-- one network namespace (awsvpc, which Fargate always is, and host),
-- "own" when each has its own (bridge), nil when the task does not say.
local function sharing(task)
    if not task then
        return nil
    end
    local launch = str(task.LaunchType)
    if launch and lower(launch) == "fargate" then
        return "shared"
    end
    local mode
    for _, c in ipairs(tab(task.Containers) or {}) do
        for _, n in ipairs(type(c) == "table" and tab(c.Networks) or {}) do
            local m = type(n) == "table" and str(n.NetworkMode)
            if m then
                m = lower(m)
                if m == "awsvpc" or m == "host" then
                    return "shared"
                end
                mode = "own"
            end
        end
    end
    return mode
end

local function same_counters(list)
    for i = 2, #list do
        for field in pairs(NET_FIELDS) do
            if list[i][field] ~= list[1][field] then
                return false
            end
        end
    end
    return true
end

-- One interface's counter across the containers that report it: once
-- (the largest: the latest reading of a counter that only grows) when
-- the interface is shared, else the sum.
local function combine(list, field, once)
    local out
    for _, iface in ipairs(list) do
        local x = number(iface[field])
        if not x then
            return nil
        end
        if not out then
            out = x
        elseif once then
            if x > out then
                out = x
            end
        else
            out = add(out, x)
        end
    end
    return out
end

local function network_totals(totals, docs, mode)
    local by_name, names = {}, {}
    for _, s in ipairs(docs) do
        for name, iface in pairs(interfaces(s) or {}) do
            if type(iface) == "table" then
                if not by_name[name] then
                    by_name[name] = {}
                    names[#names + 1] = name
                end
                local list = by_name[name]
                list[#list + 1] = iface
            end
        end
    end
    sort(names)
    local sums = {}
    for _, name in ipairs(names) do
        local list = by_name[name]
        local once = mode == "shared" or (mode == nil and same_counters(list))
        for field, out in pairs(NET_FIELDS) do
            if sums[out] ~= false then
                local x = combine(list, field, once)
                if x then
                    sums[out] = add(sums[out] or 0, x)
                else
                    sums[out] = false
                end
            end
        end
    end
    for out, x in pairs(sums) do
        if x then
            totals[out] = x
        end
    end
    -- The agent's rates: per task in awsvpc (the same in every container).
    for _, key in ipairs({ "rx_bytes_per_sec", "tx_bytes_per_sec" }) do
        local list = {}
        for _, s in ipairs(docs) do
            local r = tab(s.network_rate_stats)
            local x = r and number(r[key])
            if x then
                list[#list + 1] = { [key] = x }
            end
        end
        if #list > 0 then
            local equal = true
            for i = 2, #list do
                equal = equal and list[i][key] == list[1][key]
            end
            totals["network_" .. key] = combine(list, key, mode == "shared" or (mode == nil and equal))
        end
    end
end

function _M.task_stats_view(task_stats, task, prev, fname)
    fname = fname or "task_stats_view"
    check_table(task_stats, 1, fname)
    check_table(task, 2, fname, true)
    check_table(prev, 3, fname, true)
    local containers, without, unmatched = {}, {}, {}
    local views, docs = {}, {}
    local joined = {}

    local function view_of(id)
        local p = prev and prev[id]
        return _M.stats_view(task_stats[id], has_stats(p) and p or nil, fname)
    end

    for _, c in ipairs(task and tab(task.Containers) or {}) do
        if type(c) == "table" then
            local id = str(c.DockerId)
            local name = str(c.Name) or id
            if id then
                joined[id] = true
            end
            if id and name and has_stats(task_stats[id]) then
                local v = view_of(id)
                containers[name] = v
                views[#views + 1], docs[#docs + 1] = v, task_stats[id]
            elseif name then
                without[#without + 1] = name
            end
        end
    end
    local ids = {}
    for id in pairs(task_stats) do
        if type(id) == "string" and not joined[id] then
            ids[#ids + 1] = id
        end
    end
    sort(ids)
    for _, id in ipairs(ids) do
        if has_stats(task_stats[id]) then
            local v = view_of(id)
            unmatched[id] = v
            views[#views + 1], docs[#docs + 1] = v, task_stats[id]
        else
            without[#without + 1] = id
        end
    end

    local totals = {}
    if #views > 0 then
        for _, field in ipairs(SUMMED) do
            local sum = 0
            for _, v in ipairs(views) do
                local x = v[field]
                if x == nil then
                    sum = nil
                    break
                end
                sum = add(sum, x)
            end
            totals[field] = sum
        end
        network_totals(totals, docs, sharing(task))
    end
    local lim = task and tab(task.Limits)
    local mib = lim and number(lim.Memory)
    if mib and mib > 0 then
        totals.memory_limit = mib * MIB
        if totals.memory_used then
            totals.memory_percent = totals.memory_used / totals.memory_limit * 100
        end
    end
    return { containers = containers, without_stats = without, unmatched = unmatched, totals = totals }
end

return _M
