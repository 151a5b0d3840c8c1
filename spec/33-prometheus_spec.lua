-- ecs.prometheus: the text exposition format 0.0.4, with ecs_exporter's
-- families on ecs_exporter's own test documents, checked sample by sample
-- against values worked out here from the documents; and promtool's
-- `check metrics` on the output of every fixture.
local vf = require "spec.views_fixtures"
local prometheus = require "ecs_metadata.views.prometheus"

local render = prometheus.render
local MIB = 1048576

-- Reads the text format strictly: every sample after its family's HELP and
-- TYPE, families once each, series once each. Returns name -> { help, type,
-- samples = { [labels text] = value text } } and the family names in order.
local function parse(text)
  local families, order, current = {}, {}, nil
  local n = 0
  for line in text:gmatch("([^\n]*)\n") do
    n = n + 1
    local name, help = line:match("^# HELP ([%a_:][%w_:]*) (.+)$")
    if name then
      assert.is_nil(families[name], "family " .. name .. " twice")
      current = { help = help, samples = {}, count = 0 }
      families[name] = current
      order[#order + 1] = name
    else
      local tname, typ = line:match("^# TYPE ([%a_:][%w_:]*) (%a+)$")
      if tname then
        assert.are.equal(order[#order], tname, "TYPE right after HELP")
        assert.is_nil(current.type)
        current.type = typ
      else
        local sname, labels, value = line:match("^([%a_:][%w_:]*)({.*}) (%S+)$")
        if not sname then
          sname, value = line:match("^([%a_:][%w_:]*) (%S+)$")
          labels = ""
        end
        assert.is_string(sname, "line " .. n .. ": " .. line)
        assert.are.equal(order[#order], sname, "sample under its own family: " .. line)
        assert.is_string(current.type, "TYPE before samples")
        assert.is_nil(current.samples[labels], "series twice: " .. line)
        assert.is_number(tonumber(value), line)
        current.samples[labels] = value
        current.count = current.count + 1
      end
    end
  end
  assert.is_true(text == "" or text:sub(-1) == "\n", "ends in a newline")
  return families, order
end

-- Checks a rendering against { name = { type, { [labels] = value, ... } } }:
-- the same families, the same series, the same values. An integer value
-- must be written as digits, exactly.
local function check(text, expected)
  local families = parse(text)
  for name, fam in pairs(families) do
    assert.is_table(expected[name], "unexpected family " .. name)
    assert.are.equal(expected[name][1], fam.type, name)
  end
  for name, want in pairs(expected) do
    local fam = families[name]
    assert.is_table(fam, "missing family " .. name)
    local n = 0
    for labels, value in pairs(want[2]) do
      n = n + 1
      local got = fam.samples[labels]
      assert.is_string(got, name .. labels .. " missing")
      if value % 1 == 0 and math.abs(value) < 2^53 then
        assert.are.equal(("%d"):format(value), got, name .. labels)
      else
        assert.are.equal(value, tonumber(got), name .. labels)
      end
    end
    assert.are.equal(n, fam.count, name .. ": series count")
  end
end

local function per_container(values)
  local t = {}
  for name, v in pairs(values) do
    t['{container_name="' .. name .. '"}'] = v
  end
  return t
end

local function per_interface(name, v)
  return { ['{interface="' .. name .. '"}'] = v }
end

local function network(iface, c)
  return {
    ecs_network_receive_bytes_total = { "counter", per_interface(iface, c.rx_bytes) },
    ecs_network_receive_packets_total = { "counter", per_interface(iface, c.rx_packets) },
    ecs_network_receive_packets_dropped_total = { "counter", per_interface(iface, c.rx_dropped) },
    ecs_network_receive_errors_total = { "counter", per_interface(iface, c.rx_errors) },
    ecs_network_transmit_bytes_total = { "counter", per_interface(iface, c.tx_bytes) },
    ecs_network_transmit_packets_total = { "counter", per_interface(iface, c.tx_packets) },
    ecs_network_transmit_packets_dropped_total = { "counter", per_interface(iface, c.tx_dropped) },
    ecs_network_transmit_errors_total = { "counter", per_interface(iface, c.tx_errors) },
  }
end

local function merge(a, b)
  for k, v in pairs(b) do a[k] = v end
  return a
end

local function info(t)
  return '{availability_zone="' .. t.az .. '",cluster="' .. t.cluster .. '",desired_status="RUNNING",'
    .. 'family="' .. t.family .. '",known_status="RUNNING",launch_type="' .. t.launch .. '",'
    .. 'revision="' .. t.revision .. '",task_arn="' .. t.arn .. '"}'
end

-- ecs_exporter's timestamps: nanoseconds since the epoch, as a float, * 1e-9.
-- The whole seconds are `date -u -d <time> +%s` of the document's time.
local function epoch(seconds, nanoseconds)
  return (seconds * 1000000000 + nanoseconds) * 1e-9
end

describe("ecs.prometheus", function()
  it("writes ecs_exporter's Fargate test documents as ecs_exporter does", function()
    local task = vf.decode("v4-task/ecs-exporter-fargate.json")
    local ts = vf.decode("v4-task-stats/ecs-exporter-fargate.json")
    -- nonessential's stats are null: no series for it. Neither container has
    -- a memory limit of its own: the task's 512 MiB.
    local expected = {
      ecs_task_metadata_info = { "gauge", { [info {
        az = "us-east-1a", launch = "FARGATE", revision = "9",
        cluster = "arn:aws:ecs:us-east-1:829490980523:cluster/prom-ecs-exporter-sandbox",
        family = "prom-ecs-exporter-sandbox-main-fargate",
        arn = "arn:aws:ecs:us-east-1:829490980523:task/prom-ecs-exporter-sandbox/"
          .. "bae32def0ab64f06818e8862e58f8d6d",
      }] = 1 } },
      ecs_task_cpu_limit_vcpus = { "gauge", { [""] = 0.25 } },
      ecs_task_memory_limit_bytes = { "gauge", { [""] = 512 * MIB } },
      ecs_task_ephemeral_storage_used_bytes = { "gauge", { [""] = 427 * MIB } },
      ecs_task_ephemeral_storage_allocated_bytes = { "gauge", { [""] = 20496 * MIB } },
      -- 2025-02-27T05:06:03.714437592Z and 2025-02-27T05:06:18.599126545Z
      ecs_task_image_pull_start_timestamp_seconds = { "gauge", { [""] = epoch(1740632763, 714437592) } },
      ecs_task_image_pull_stop_timestamp_seconds = { "gauge", { [""] = epoch(1740632778, 599126545) } },
      ecs_container_cpu_usage_seconds_total = { "counter", per_container {
        prometheus = 932439492 * 1e-9, ["ecs-exporter"] = 322633383 * 1e-9 } },
      ecs_container_memory_usage_bytes = { "gauge", per_container {
        prometheus = 127934464, ["ecs-exporter"] = 84111360 } },
      ecs_container_memory_limit_bytes = { "gauge", per_container {
        prometheus = 512 * MIB, ["ecs-exporter"] = 512 * MIB } },
      ecs_container_memory_page_cache_size_bytes = { "gauge", per_container {
        prometheus = 85426176, ["ecs-exporter"] = 42442752 } },
      -- Ours.
      ecs_container_memory_cache_bytes = { "gauge", per_container {
        prometheus = 85426176, ["ecs-exporter"] = 42442752 } },
      ecs_container_memory_working_set_bytes = { "gauge", per_container {
        prometheus = 127934464 - 52383744, ["ecs-exporter"] = 84111360 - 39100416 } },
      ecs_container_cpu_throttling_periods_total = { "counter", per_container {
        prometheus = 0, ["ecs-exporter"] = 0 } },
      ecs_container_cpu_throttled_periods_total = { "counter", per_container {
        prometheus = 0, ["ecs-exporter"] = 0 } },
      ecs_container_cpu_throttled_seconds_total = { "counter", per_container {
        prometheus = 0, ["ecs-exporter"] = 0 } },
      ecs_container_block_io_read_bytes_total = { "counter", per_container {
        prometheus = 23793664 + 65409024, ["ecs-exporter"] = 28639232 + 14655488 } },
      ecs_container_block_io_write_bytes_total = { "counter", per_container {
        prometheus = 0 + 0, ["ecs-exporter"] = 0 + 4096 } },
    }
    -- eth1 is in both containers' stats; the last of task.Containers (ecs-exporter) gives it.
    merge(expected, network("eth1", { rx_bytes = 129046293, rx_packets = 88938, rx_dropped = 0, rx_errors = 0,
                                      tx_bytes = 348223, tx_packets = 3507, tx_dropped = 0, tx_errors = 0 }))
    check(render(task, ts), expected)
  end)

  it("writes ecs_exporter's EC2 test documents as ecs_exporter does", function()
    local task = vf.decode("v4-task/ecs-exporter-ec2.json")
    local ts = vf.decode("v4-task-stats/ecs-exporter-ec2.json")
    -- No task limits on EC2; each container has Memory 256 (MiB). nonessential's stats are {}.
    -- cgroup v2: no "cache", so ecs_exporter's page cache is 0; ours is "file".
    local expected = {
      ecs_task_metadata_info = { "gauge", { [info {
        az = "us-east-1a", launch = "EC2", revision = "13", cluster = "prom-ecs-exporter-sandbox",
        family = "prom-ecs-exporter-sandbox-main-ec2",
        arn = "arn:aws:ecs:us-east-1:829490980523:task/prom-ecs-exporter-sandbox/"
          .. "506f22fab0414cde856201584703fed9",
      }] = 1 } },
      -- 2025-02-27T05:09:52.332595252Z and 2025-02-27T05:10:01.206072368Z
      ecs_task_image_pull_start_timestamp_seconds = { "gauge", { [""] = epoch(1740632992, 332595252) } },
      ecs_task_image_pull_stop_timestamp_seconds = { "gauge", { [""] = epoch(1740633001, 206072368) } },
      ecs_container_cpu_usage_seconds_total = { "counter", per_container {
        ["ecs-exporter"] = 331125000 * 1e-9, prometheus = 566060000 * 1e-9 } },
      ecs_container_memory_usage_bytes = { "gauge", per_container {
        ["ecs-exporter"] = 65249280, prometheus = 60981248 } },
      ecs_container_memory_limit_bytes = { "gauge", per_container {
        ["ecs-exporter"] = 256 * MIB, prometheus = 256 * MIB } },
      ecs_container_memory_page_cache_size_bytes = { "gauge", per_container {
        ["ecs-exporter"] = 0, prometheus = 0 } },
      ecs_container_memory_cache_bytes = { "gauge", per_container {
        ["ecs-exporter"] = 25296896, prometheus = 19619840 } },
      ecs_container_memory_working_set_bytes = { "gauge", per_container {
        ["ecs-exporter"] = 65249280 - 17641472, prometheus = 60981248 - 11046912 } },
      ecs_container_cpu_throttling_periods_total = { "counter", per_container {
        ["ecs-exporter"] = 0, prometheus = 0 } },
      ecs_container_cpu_throttled_periods_total = { "counter", per_container {
        ["ecs-exporter"] = 0, prometheus = 0 } },
      ecs_container_cpu_throttled_seconds_total = { "counter", per_container {
        ["ecs-exporter"] = 0, prometheus = 0 } },
      ecs_container_block_io_read_bytes_total = { "counter", per_container {
        ["ecs-exporter"] = 60960768, prometheus = 99926016 } },
      ecs_container_block_io_write_bytes_total = { "counter", per_container {
        ["ecs-exporter"] = 57344, prometheus = 274432 } },
      ecs_container_pids = { "gauge", per_container { ["ecs-exporter"] = 33, prometheus = 25 } },
    }
    -- Bridge mode: each container has its own eth0, yet ecs_exporter writes one
    -- series per interface name: the last container's (prometheus).
    merge(expected, network("eth0", { rx_bytes = 45368, rx_packets = 132, rx_dropped = 0, rx_errors = 0,
                                      tx_bytes = 13532, tx_packets = 118, tx_dropped = 0, tx_errors = 0 }))
    check(render(task, ts), expected)
  end)

  it("writes ecs_exporter's Managed Instances test stats as ecs_exporter does", function()
    -- The task metadata of this run is not among the fixtures: this task is
    -- written here from the stats document's container names and limits.
    local task = {
      Cluster = "mi", TaskARN = "arn:aws:ecs:us-east-1:111122223333:task/mi/de02d89bb57c4ef0b6e3745d7c2c9347",
      Family = "f", Revision = "1", DesiredStatus = "RUNNING", KnownStatus = "RUNNING",
      AvailabilityZone = "us-east-1a", LaunchType = "MANAGED_INSTANCES",
      Containers = {
        { DockerId = "de02d89bb57c4ef0b6e3745d7c2c9347-1585788040", Name = "nonessential" },
        { DockerId = "de02d89bb57c4ef0b6e3745d7c2c9347-4159844948", Name = "ecs-exporter",
          Limits = { Memory = 128 } },
        { DockerId = "de02d89bb57c4ef0b6e3745d7c2c9347-3935363592", Name = "main",
          Limits = { Memory = 96 } },
      },
    }
    local ts = vf.decode("v4-task-stats/ecs-exporter-managed-instances.json")
    local expected = {
      ecs_task_metadata_info = { "gauge", { [info {
        az = "us-east-1a", launch = "MANAGED_INSTANCES", revision = "1", cluster = "mi", family = "f",
        arn = task.TaskARN }] = 1 } },
      ecs_container_cpu_usage_seconds_total = { "counter", per_container {
        ["ecs-exporter"] = 148526000 * 1e-9, main = 1210199000 * 1e-9 } },
      ecs_container_memory_usage_bytes = { "gauge", per_container {
        ["ecs-exporter"] = 38309888, main = 99540992 } },
      ecs_container_memory_limit_bytes = { "gauge", per_container {
        ["ecs-exporter"] = 128 * MIB, main = 96 * MIB } },
      ecs_container_memory_page_cache_size_bytes = { "gauge", per_container {
        ["ecs-exporter"] = 0, main = 0 } },
      ecs_container_memory_cache_bytes = { "gauge", per_container {
        ["ecs-exporter"] = 18239488, main = 59150336 } },
      ecs_container_memory_working_set_bytes = { "gauge", per_container {
        ["ecs-exporter"] = 38309888 - 18046976, main = 99540992 - 43839488 } },
      ecs_container_cpu_throttling_periods_total = { "counter", per_container {
        ["ecs-exporter"] = 0, main = 0 } },
      ecs_container_cpu_throttled_periods_total = { "counter", per_container {
        ["ecs-exporter"] = 0, main = 0 } },
      ecs_container_cpu_throttled_seconds_total = { "counter", per_container {
        ["ecs-exporter"] = 0, main = 0 } },
      ecs_container_block_io_read_bytes_total = { "counter", per_container {
        ["ecs-exporter"] = 0 + 5505024 + 5505024, main = 15007744 + 15007744 + 805318656 } },
      ecs_container_block_io_write_bytes_total = { "counter", per_container {
        ["ecs-exporter"] = 36864 + 0 + 0, main = 0 + 0 + 268472320 } },
    }
    merge(expected, network("eth1", { rx_bytes = 33386, rx_packets = 100, rx_dropped = 0, rx_errors = 0,
                                      tx_bytes = 23290, tx_packets = 112, tx_dropped = 0, tx_errors = 0 }))
    check(render(task, ts), expected)
  end)

  it("writes RestartCount for the containers with stats, as ecs_exporter does", function()
    -- RestartCount 3 on nonessential (its stats are null: no series) and 0 on ecs-exporter.
    local task = vf.decode("v4-task/derived-ecs-exporter-fargate-newer-fields.json")
    local families = parse(render(task, vf.decode("v4-task-stats/ecs-exporter-fargate.json")))
    assert.are.equal("counter", families.ecs_container_restarts_total.type)
    assert.are.same({ ['{container_name="ecs-exporter"}'] = "0" },
                    families.ecs_container_restarts_total.samples)
  end)

  it("writes only the task's families without stats, and one container's with a container", function()
    local task = vf.decode("v4-task/ecs-exporter-fargate.json")
    local families = parse(render(task))
    for name in pairs(families) do
      assert.matches("^ecs_task_", name)
    end
    local one = parse(render(task, vf.decode("v4-task-stats/ecs-exporter-fargate.json"), task.Containers[3]))
    assert.are.same({ ['{container_name="ecs-exporter"}'] = "84111360" },
                    one.ecs_container_memory_usage_bytes.samples)
  end)

  it("writes a field the task lacks as an empty label value", function()
    -- The 2018 v3 task has neither AvailabilityZone nor LaunchType.
    local info_series = parse(render(vf.decode("v3-task/docs-2018-ec2-awsvpc-nginx-no-az.json")))
      .ecs_task_metadata_info.samples
    assert.are.same({ ['{availability_zone="",cluster="default",desired_status="RUNNING",family="nginx",'
                      .. 'known_status="RUNNING",launch_type="",revision="5",task_arn="arn:aws:ecs:us-west-2:'
                      .. '012345678910:task/9781c248-0edd-4cdb-9a93-f63cb662a5d3"}'] = "1" }, info_series)
  end)

  it("escapes label values, writes a series once, keeps integers exact", function()
    local task = {
      Family = 'a"b\\c\nd', TaskARN = "t",
      Containers = { { DockerId = "x", Name = "same" }, { DockerId = "y", Name = "same" } },
    }
    local ts = {
      x = { memory_stats = { usage = 9007199254740993 } },
      y = { memory_stats = { usage = 7 } },
    }
    local text = render(task, ts)
    assert.matches('family="a\\"b\\\\c\\nd"', text, 1, true)
    local usage = parse(text).ecs_container_memory_usage_bytes
    -- Two containers named "same": the first one's series, once.
    assert.are.equal(1, usage.count)
    if math.type then
      assert.are.equal("9007199254740993", usage.samples['{container_name="same"}'])
    else
      assert.are.equal(2^53, tonumber(usage.samples['{container_name="same"}']))
    end
  end)

  it("writes floats with the fewest digits that read back the same", function()
    local vt = prometheus.value_text
    for _, x in ipairs({ 0.25, 0.1, 1 / 3, 932439492 * 1e-9, 1740632763.7144377, 1e300, -2.5e-9,
                         18446744073709551615, 2^53 }) do
      local s = vt(x)
      assert.are.equal(x, tonumber(s), s)
      assert.is_true(#s <= 22, s)
    end
    assert.are.equal("0.1", vt(0.1))
    assert.are.equal("536870912", vt(536870912.0))
  end)

  it("gives each document its own text, whatever was rendered before", function()
    local fargate = vf.decode("v4-task/ecs-exporter-fargate.json")
    local first = render(fargate, vf.decode("v4-task-stats/ecs-exporter-fargate.json"))
    -- More distinct tasks, containers and timestamps than the caches keep.
    for i = 1, 300 do
      -- 2020-01-01T00:00:00Z is 1577836800 (date -u -d ... +%s).
      local t = { Family = "f" .. i, TaskARN = "t" .. i,
                  PullStartedAt = ("2020-01-01T00:00:%02dZ"):format(i % 60),
                  Containers = { { DockerId = "d", Name = "c" .. i } } }
      local text = render(t, { d = { memory_stats = { usage = i } } })
      assert.matches('family="f' .. i .. '"', text, 1, true)
      assert.matches('ecs_container_memory_usage_bytes{container_name="c' .. i .. '"} ' .. i .. "\n",
                     text, 1, true)
      assert.matches("ecs_task_image_pull_start_timestamp_seconds " .. (1577836800 + i % 60) .. "\n",
                     text, 1, true)
    end
    assert.are.equal(first, render(fargate, vf.decode("v4-task-stats/ecs-exporter-fargate.json")))
  end)

  it("leaves the documents it renders as they were", function()
    for _, p in ipairs(vf.paired()) do
      local before_t, before_s = vf.copy(p.task), vf.copy(p.task_stats)
      render(p.task, p.task_stats)
      assert.are.same(before_t, p.task, p.rel)
      assert.are.same(before_s, p.task_stats, p.rel)
    end
  end)

  it("raises without a task", function()
    assert.has_error(function() render() end,
                     "bad argument #1 to 'prometheus' (table expected, got no value)")
    assert.has_error(function() render({}, "s") end,
                     "bad argument #2 to 'prometheus' (table expected, got string)")
  end)
end)

describe("promtool check metrics", function()
  -- A task for a stats map that has none among the fixtures: its containers
  -- named by the documents' own names.
  local function task_for(task_stats)
    local t = { TaskARN = "arn:aws:ecs:us-east-1:111122223333:task/c/0", Containers = {} }
    local ids = {}
    for id in pairs(task_stats) do ids[#ids + 1] = id end
    table.sort(ids)
    for _, id in ipairs(ids) do
      local s = task_stats[id]
      local name = type(s) == "table" and type(s.name) == "string" and s.name:gsub("^/", "") or id
      t.Containers[#t.Containers + 1] = { DockerId = id, Name = name }
    end
    return t
  end

  local function promtool(text)
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
    local p = assert(io.popen("promtool check metrics < '" .. path .. "' 2>&1; echo \"exit=$?\""))
    local out = p:read("*a")
    p:close()
    os.remove(path)
    return out
  end

  it("finds no problem in the output of any fixture", function()
    local outputs = {}
    for _, e in ipairs(vf.tasks()) do
      outputs[#outputs + 1] = { e.rel .. (e.index and ("#" .. e.index) or ""), render(e.task) }
    end
    for _, p in ipairs(vf.paired()) do
      outputs[#outputs + 1] = { p.rel .. " with its stats", render(p.task, p.task_stats) }
    end
    for _, e in ipairs(vf.task_stats()) do
      outputs[#outputs + 1] = { e.rel .. (e.index and ("#" .. e.index) or ""),
                                render(task_for(e.task_stats), e.task_stats) }
    end
    local samples = 0
    for _, o in ipairs(outputs) do
      parse(o[2])
      local _, lines = o[2]:gsub("\n[^#]", "")
      samples = samples + lines
      assert.are.equal("exit=0\n", promtool(o[2]), o[1])
    end
    assert.is_true(#outputs >= 30, #outputs .. " outputs")
    assert.is_true(samples >= 400, samples .. " samples")
  end)

  it("is itself able to fail", function()
    -- A counter without _total and a family without HELP: promtool says so.
    assert.are_not.equal("exit=0\n", promtool("# TYPE bad_counter counter\nbad_counter 1\n"))
  end)
end)
