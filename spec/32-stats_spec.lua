-- ecs.stats_view and ecs.task_stats_view: docker stats math on every kind of
-- stats document the fixtures carry. Every expected figure is worked out in
-- this file from the document's own numbers (quoted in the comments).
local vf = require "spec.views_fixtures"
local stats = require "ecs_metadata.views.stats"

local stats_view, task_stats_view = stats.stats_view, stats.task_stats_view
local mtype = math.type

local function near(expected, actual, what)
  assert.is_number(actual, what)
  assert.is_true(math.abs(actual - expected) <= 1e-12 * math.max(1, math.abs(expected)),
                 ("%s: expected %.17g, got %.17g"):format(what or "value", expected, actual))
end

-- An exact integer: equal, and the integer subtype on 5.3+.
local function exact(expected, actual, what)
  assert.are.equal(expected, actual, what)
  if mtype then
    assert.are.equal("integer", mtype(actual), what)
  end
end

local function finite_numbers(view, what)
  for k, v in pairs(view) do
    assert.is_number(v, what .. " " .. k)
    assert.is_true(v == v and v ~= math.huge and v ~= -math.huge, what .. " " .. k)
  end
end

describe("ecs.stats_view", function()
  it("EC2, cgroup v1: an idle container", function()
    local v = stats_view(vf.decode("v4-stats/docs-ec2-awsvpc-curl.json"))
    -- total_usage 360968065 both times, system 13939680000000 - 13937670000000
    near((360968065 - 360968065) / (13939680000000 - 13937670000000) * 2 * 100, v.cpu_percent, "cpu")
    exact(2, v.online_cpus)
    exact(1806336 - 0, v.memory_used, "used = usage - total_inactive_file")
    exact(1806336, v.memory_usage)
    exact(134217728, v.memory_limit)
    near(1806336 / 134217728 * 100, v.memory_percent, "memory %")
    exact(0, v.memory_cache)
    exact(84, v.network_rx_bytes)
    exact(84, v.network_tx_bytes)
    exact(2, v.network_rx_packets)
    exact(0, v.block_read_bytes, "io_service_bytes_recursive is []")
    exact(0, v.block_write_bytes)
    exact(3, v.pids)
    exact(0, v.network_rx_bytes_per_sec)
  end)

  it("Fargate, cgroup v1", function()
    local v = stats_view(vf.decode("v4-stats/docs-2020-fargate-query-metadata.json"))
    -- total 412520458 - 412420561 = 99897 over system 2243010000000 - 2241010000000, 2 CPUs
    near(99897 / 2000000000 * 2 * 100, v.cpu_percent, "cpu")
    exact(1896448, v.memory_used)
    near(1896448 / 134217728 * 100, v.memory_percent, "memory %")
    exact(1802, v.network_rx_bytes)
    exact(567, v.network_tx_bytes)
    exact(2, v.pids)
  end)

  it("Managed Instances, cgroup v2: inactive_file, file, lower-case read/write", function()
    local ts = vf.decode("v4-task-stats/ecs-exporter-managed-instances.json")
    local v = stats_view(ts["de02d89bb57c4ef0b6e3745d7c2c9347-4159844948"])
    -- 148526000 - 147973000 over 375040000000 - 355200000000, 2 CPUs
    near((148526000 - 147973000) / (375040000000 - 355200000000) * 2 * 100, v.cpu_percent, "cpu")
    exact(38309888 - 18046976, v.memory_used, "used = usage - inactive_file")
    exact(134217728, v.memory_limit)
    near((38309888 - 18046976) / 134217728 * 100, v.memory_percent)
    exact(18239488, v.memory_cache, "page cache = file on cgroup v2")
    exact(0 + 5505024 + 5505024, v.block_read_bytes, "three devices' read")
    exact(36864 + 0 + 0, v.block_write_bytes)
    local main = stats_view(ts["de02d89bb57c4ef0b6e3745d7c2c9347-3935363592"])
    exact(99540992 - 43839488, main.memory_used)
    near((99540992 - 43839488) / 100663296 * 100, main.memory_percent)
    exact(15007744 + 15007744 + 805318656, main.block_read_bytes)
    exact(0 + 0 + 268472320, main.block_write_bytes)
    near(32.99856422917053, main.network_rx_bytes_per_sec)
  end)

  it("EC2 bridge, cgroup v2, with pids and their limit", function()
    local ts = vf.decode("v4-task-stats/ecs-exporter-ec2.json")
    local v = stats_view(ts["01cf1f3208005cda71d5ac936ded65d2ecc0a8cc8ff8a82d2e00410bf4fbbd6d"])
    near((331125000 - 325963000) / (1045600000000 - 1043620000000) * 2 * 100, v.cpu_percent, "cpu")
    exact(65249280 - 17641472, v.memory_used)
    exact(25296896, v.memory_cache)
    exact(60960768, v.block_read_bytes)
    exact(57344, v.block_write_bytes)
    exact(33, v.pids)
    exact(404, v.pids_limit)
    exact(101869, v.network_rx_bytes)
  end)

  it("Windows: private working set, storage_stats, 100 ns intervals", function()
    local doc = vf.decode("v3-stats/ecs-agent-windows-test-stats.json")
    local v = stats_view(doc)
    exact(85532672, v.memory_used, "the private working set")
    exact(114061312, v.memory_commit)
    exact(139227136, v.memory_commit_peak)
    exact(3, v.block_read_bytes, "storage_stats.read_size_bytes")
    exact(15, v.block_write_bytes)
    exact(8, v.num_procs)
    assert.is_nil(v.memory_limit)
    assert.is_nil(v.online_cpus)
    assert.is_nil(v.cpu_percent, "no preread: no previous reading")
    exact(796 + 300, v.network_rx_bytes)
    exact(5 + 5, v.network_tx_dropped)
    assert.is_nil(v.network_rx_errors, "neither interface has rx_errors")
    -- With a previous reading one second earlier ("1969-12-31T23:59:58.99999999Z"):
    -- 1e9 ns / 100 = 10000000 intervals per CPU, 8 CPUs, 100 - 40 of them used.
    local prev = { read = "1969-12-31T23:59:58.99999999Z", cpu_stats = { cpu_usage = { total_usage = 40 } } }
    near((100 - 40) / (1000000000 / 100 * 8) * 100, stats_view(doc, prev).cpu_percent, "windows cpu")
  end)

  it("Fargate Windows: no num_procs, so no CPU %", function()
    local ts = vf.decode("v4-task-stats/datadog-integrations-fargate-windows.json")
    local v = stats_view(ts["e8d4a9a20a0d931f8f632ec166b3f71a6ff00450aa7e99607f650e586df7d068"])
    exact(140673024, v.memory_used)
    exact(210485248, v.memory_usage)
    exact(248714240, v.block_read_bytes, "blkio is \"None\": storage_stats")
    exact(5464064, v.block_write_bytes)
    exact(1220430883, v.network_rx_bytes, "the interface \"Ethernet 3\"")
    assert.is_nil(v.cpu_percent)
  end)

  it("Fargate 2017: percpu_usage, blkio entries without a value, the old network key", function()
    local ts = vf.decode("v2-stats/datadog-integrations-fargate-2017-task-stats.json")
    local v = stats_view(ts["39e13ccc425e7777187a603fe33f466a18515030707c4063de1dc1b63d14d411"])
    -- online_cpus 4 (the 15 percpu entries are not the count); 22386676 - 22386675
    near((22386676 - 22386675) / (60519620000000 - 60518620000000) * 4 * 100, v.cpu_percent, "cpu")
    exact(1110016 - 786432, v.memory_used)
    exact(2098675712, v.memory_limit)
    exact(794624, v.block_read_bytes)
    exact(0, v.block_write_bytes, "Write has no value: 0")
    assert.is_nil(v.network_rx_bytes, "\"network\": {} says nothing")
    local big = stats_view(ts["e8d4a9a20a0d931f8f632ec166b3f71a6ff00450aa7e99607f650e586df7d068"])
    exact(5578752 * 3 + 95875072, big.block_read_bytes)
    exact(45666304 * 3 + 46002176, big.block_write_bytes)
    near((253894656 - 22790144) / 268435456 * 100, big.memory_percent)
  end)

  it("reports the kernel's no-limit values as no limit", function()
    local fargate = vf.decode("v4-task-stats/ecs-exporter-fargate.json")
    local docs = vf.decode("v4-task-stats/docs-2020-fargate-query-metadata.json")
    local mi = vf.decode("v4-task-stats/otel-collector-managed-instances-tasks-stats-array.json")
    for what, s in pairs({
      ["9223372036854771712"] = fargate["bae32def0ab64f06818e8862e58f8d6d-4159844948"],
      ["9223372036854772000"] = docs["1823e1f6-7248-43c3-bed6-eea1fa7501a5query-metadata"],
      ["18446744073709551615"] = mi[1]["081d2c75d3a2419d95ab6f8979fb61fb-1547245599"],
      ["2^63 - 1"] = { memory_stats = { usage = 5, limit = 9223372036854775807 } },
    }) do
      local v = stats_view(s)
      assert.is_nil(v.memory_limit, what)
      assert.is_nil(v.memory_percent, what)
      assert.is_number(v.memory_used, what)
    end
    local v = stats_view(fargate["bae32def0ab64f06818e8862e58f8d6d-4159844948"])
    exact(84111360 - 39100416, v.memory_used)
    exact(42442752, v.memory_cache)
    exact(28639232 + 14655488, v.block_read_bytes, "Read of two devices; Sync and Total not counted")
    exact(0 + 4096, v.block_write_bytes)
    -- An array element of /tasks/stats with only "file" in its memory stats: usage as is.
    exact(66203648, stats_view(mi[1]["081d2c75d3a2419d95ab6f8979fb61fb-1547245599"]).memory_used)
  end)

  it("takes the cache as the last fallback, and a Linux document with a working set as Linux", function()
    local v = stats_view(vf.decode("v3-stats/ecs-agent-unix-test-stats.json"))
    exact(30 - 20, v.memory_used, "usage - cache")
    exact(1 + 1 + 1, v.block_read_bytes)
    exact(5 + 5 + 5, v.block_write_bytes)
    exact(2, v.online_cpus)
    assert.is_nil(v.cpu_percent, "no system_cpu_usage")
  end)

  it("gives no CPU % for a first sample or a counter that went back", function()
    local first = vf.decode("v4-task-stats/docs-2020-fargate-query-metadata.json")
    assert.is_nil(stats_view(first["1823e1f6-7248-43c3-bed6-eea1fa7501a5query-metadata"]).cpu_percent)
    local zero = {
      cpu_stats = { cpu_usage = { total_usage = 5000 }, system_cpu_usage = 900000, online_cpus = 2 },
      precpu_stats = { cpu_usage = { total_usage = 0 }, system_cpu_usage = 0 },
    }
    assert.is_nil(stats_view(zero).cpu_percent, "precpu zeroed")
    local doc = vf.decode("v4-stats/docs-ec2-awsvpc-curl.json")
    local back = { cpu_stats = { cpu_usage = { total_usage = 400000000 },
                                 system_cpu_usage = 13930000000000 } }
    assert.is_nil(stats_view(doc, back).cpu_percent, "total_usage went back")
    -- prev replaces precpu_stats: 360968065 - 360000000 over 13939680000000 - 13930000000000.
    local prev = { cpu_stats = { cpu_usage = { total_usage = 360000000 },
                                 system_cpu_usage = 13930000000000 } }
    near((360968065 - 360000000) / (13939680000000 - 13930000000000) * 2 * 100,
         stats_view(doc, prev).cpu_percent)
  end)

  it("keeps integers above 2^53 exact on Lua 5.3+", function()
    local v = stats_view({
      memory_stats = { usage = 9007199254740993, stats = { total_inactive_file = 1 } },
      networks = { eth0 = { rx_bytes = 9007199254740993, tx_bytes = 1 },
                   eth1 = { rx_bytes = 2, tx_bytes = 1 } },
    })
    if mtype then
      exact(9007199254740992, v.memory_used)
      exact(9007199254740995, v.network_rx_bytes)
    else
      -- Doubles: 2^53 + 1 is already 2^53 when the document is read.
      assert.are.equal(2^53 - 1, v.memory_used)
    end
  end)

  it("computes on every stats document the fixtures carry, never NaN, input unchanged", function()
    local n = 0
    for _, e in ipairs(vf.stats()) do
      local what = e.rel .. (e.key and (" " .. e.key) or "")
      local before = vf.copy(e.stats)
      finite_numbers(stats_view(e.stats), what)
      assert.are.same(before, e.stats, what)
      n = n + 1
    end
    assert.is_true(n >= 20)
  end)

  it("raises for what is not a document", function()
    assert.has_error(function() stats_view() end,
                     "bad argument #1 to 'stats_view' (table expected, got no value)")
    assert.has_error(function() stats_view({}, "x") end,
                     "bad argument #2 to 'stats_view' (table expected, got string)")
  end)
end)

describe("ecs.task_stats_view", function()
  it("sums an EC2 bridge task's containers, each with its own eth0", function()
    local task = vf.decode("v4-task/ecs-exporter-ec2.json")
    local r = task_stats_view(vf.decode("v4-task-stats/ecs-exporter-ec2.json"), task)
    assert.are.same({ "nonessential" }, r.without_stats, "its stats are {}")
    assert.are.same({}, r.unmatched)
    exact(65249280 - 17641472, r.containers["ecs-exporter"].memory_used)
    exact(60981248 - 11046912, r.containers.prometheus.memory_used)
    local t = r.totals
    exact((65249280 - 17641472) + (60981248 - 11046912), t.memory_used)
    exact(101869 + 45368, t.network_rx_bytes, "bridge: one eth0 per container")
    exact(43958 + 13532, t.network_tx_bytes)
    exact(33 + 25, t.pids)
    near((331125000 - 325963000) / (1045600000000 - 1043620000000) * 2 * 100
         + (566060000 - 566060000) / (1045600000000 - 1043620000000) * 2 * 100, t.cpu_percent)
    near(2764.084716796875 + 41.86697006225586, t.network_rx_bytes_per_sec)
    assert.is_nil(t.memory_limit, "the task sets no memory limit")
  end)

  it("counts a Fargate task's shared interface once", function()
    local task = vf.decode("v4-task/ecs-exporter-fargate.json")
    local r = task_stats_view(vf.decode("v4-task-stats/ecs-exporter-fargate.json"), task)
    -- nonessential's stats are null, which the decoder leaves out of the map.
    assert.are.same({ "nonessential" }, r.without_stats)
    local t = r.totals
    -- eth1 in both containers, read a moment apart: the later (larger) reading.
    exact(math.max(129045374, 129046293), t.network_rx_bytes)
    exact(math.max(347839, 348223), t.network_tx_bytes)
    exact(math.max(88933, 88938), t.network_rx_packets)
    near(math.max(2464.6679803462657, 2556.879064581499), t.network_rx_bytes_per_sec)
    exact((127934464 - 52383744) + (84111360 - 39100416), t.memory_used)
    -- Limits.Memory 512 (MiB) for the task.
    exact(512 * 1048576, t.memory_limit)
    near(((127934464 - 52383744) + (84111360 - 39100416)) / (512 * 1048576) * 100, t.memory_percent)
    near((932439492 - 925246189) / (2121200000000 - 2101320000000) * 2 * 100
         + (322633383 - 242770940) / (2121630000000 - 2101780000000) * 2 * 100, t.cpu_percent)
  end)

  it("without a task: every container unmatched, a repeated identical interface once", function()
    local ts = vf.decode("v4-task-stats/ecs-exporter-managed-instances.json")
    local r = task_stats_view(ts)
    assert.are.same({}, r.containers)
    assert.is_table(r.unmatched["de02d89bb57c4ef0b6e3745d7c2c9347-4159844948"])
    assert.is_table(r.unmatched["de02d89bb57c4ef0b6e3745d7c2c9347-3935363592"])
    -- eth1: rx_bytes 33386 and tx_bytes 23290 in both containers.
    exact(33386, r.totals.network_rx_bytes)
    exact(23290, r.totals.network_tx_bytes)
    exact((0 + 5505024 + 5505024) + (15007744 + 15007744 + 805318656), r.totals.block_read_bytes)
  end)

  it("joins a v2 task's containers by DockerId", function()
    local task = vf.decode("v2-metadata/datadog-integrations-fargate-2017-pause-container.json")
    local r = task_stats_view(vf.decode("v2-stats/datadog-integrations-fargate-2017-task-stats.json"), task)
    assert.are.same({}, r.without_stats)
    exact(1110016 - 786432, r.containers["~internal~ecs~pause"].memory_used)
    exact(7901184 - 4059136, r.containers.redis.memory_used)
    exact(253894656 - 22790144, r.containers["dd-agent"].memory_used)
    exact((1110016 - 786432) + (7901184 - 4059136) + (253894656 - 22790144), r.totals.memory_used)
    assert.is_nil(r.totals.network_rx_bytes, "no container has network counters")
  end)

  it("lists a container whose stats are {} as without stats (Fargate 2021)", function()
    local task = vf.decode("v4-task/otel-collector-fargate-stopped-exitcode-42.json")
    local ts = vf.decode("v4-task-stats/otel-collector-fargate-stopped-container-empty-object.json")
    local r = task_stats_view(ts, task)
    assert.are.same({ "non" }, r.without_stats)
    near(0, r.containers.essential.cpu_percent, "201366568 both times")
    exact(64794122, r.totals.network_rx_bytes)
  end)

  it("uses prev per container", function()
    local ts = vf.decode("v4-task-stats/ecs-exporter-ec2.json")
    local id = "01cf1f3208005cda71d5ac936ded65d2ecc0a8cc8ff8a82d2e00410bf4fbbd6d"
    local prev = { [id] = { cpu_stats = { cpu_usage = { total_usage = 300000000 },
                                          system_cpu_usage = 1000000000000 } } }
    local r = task_stats_view(ts, vf.decode("v4-task/ecs-exporter-ec2.json"), prev)
    near((331125000 - 300000000) / (1045600000000 - 1000000000000) * 2 * 100,
         r.containers["ecs-exporter"].cpu_percent)
  end)

  it("computes on every task stats document, alone and with its task, input unchanged", function()
    local function check(task_stats, task, what)
      local before_s, before_t = vf.copy(task_stats), vf.copy(task)
      local r = task_stats_view(task_stats, task)
      finite_numbers(r.totals, what .. " totals")
      for name, v in pairs(r.containers) do finite_numbers(v, what .. " " .. name) end
      for id, v in pairs(r.unmatched) do finite_numbers(v, what .. " " .. id) end
      for _, name in ipairs(r.without_stats) do assert.is_string(name) end
      assert.are.same(before_s, task_stats, what)
      assert.are.same(before_t, task, what)
    end
    for _, e in ipairs(vf.task_stats()) do
      check(e.task_stats, nil, e.rel)
    end
    for _, p in ipairs(vf.paired()) do
      check(p.task_stats, p.task, p.rel)
    end
  end)

  it("raises for what is not a document", function()
    assert.has_error(function() task_stats_view() end,
                     "bad argument #1 to 'task_stats_view' (table expected, got no value)")
    assert.has_error(function() task_stats_view({}, "t") end,
                     "bad argument #2 to 'task_stats_view' (table expected, got string)")
  end)
end)
