-- The `ecs-metadata` command's views, run as a process against the test
-- endpoint: summary, resource, prometheus, stats-view (one sample, and
-- consecutive samples whose CPU % is worked out here from the fixture) and
-- the single fields, against golden files and the library's own views.
local helpers = require "spec.helpers"
local R = require "spec.cli_runner"
local ecs = require "ecs_metadata"
local cli = require "ecs_metadata.cli"

local E = R.E
local run = R.run

local FILE = helpers.fixture_root() .. "/metadata-file/docs-ready-bridge.json"

local function client(env)
  return helpers.client(env, { array_mt = cli.ARRAY_MT })
end

local function decode(out)
  local v, msg = ecs.decode(out, { array_mt = cli.ARRAY_MT })
  assert(v ~= nil, msg)
  return v
end

local function assert_error_line(err, code)
  assert.matches("^ecs%-metadata: [^\n]+ %[" .. code:gsub("%p", "%%%0") .. "%]\n$", err)
end

-- The library's views: the client's methods and ecs.* where the library
-- has them, else the views modules.
local function library(c)
  local methods = require "ecs_metadata.views.methods"
  local stats = require "ecs_metadata.views.stats"
  return {
    summary = function() return (c.summary and c:summary() or methods.summary(c)) end,
    resource = function() return (c.resource and c:resource() or methods.resource(c)) end,
    prometheus = function() return (c.prometheus and c:prometheus() or methods.prometheus(c)) end,
    task_stats_view = ecs.task_stats_view or stats.task_stats_view,
  }
end

local NAMED = function(name)
  return { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/named/" .. name }
end

describe("ecs-metadata summary and resource", function()
  for _, which in ipairs({ "summary", "resource" }) do
    it(which .. ": human output as in spec/golden/" .. which .. "-v4-ec2.txt", function()
      local out, status, err = run({ which }, R.EC2)
      assert.are.equal("", err)
      assert.are.equal(0, status)
      assert.are.equal(R.golden(which .. "-v4-ec2.txt", out), out)
    end)

    it(which .. ": --json reads back as the library's view", function()
      for _, env in ipairs({ R.EC2, R.V4, R.V3 }) do
        local out, status, err = run({ which, "--json" }, env)
        assert.are.equal(0, status, err)
        assert.are.same(assert(library(client(env))[which]()), decode(out))
      end
    end)
  end

  it("summary: from the metadata file alone when it is the only source", function()
    local env = { ECS_CONTAINER_METADATA_FILE = FILE }
    local out, status, err = run({ "summary", "--json" }, env)
    assert.are.equal(0, status, err)
    local s = decode(out)
    assert.are.equal("2b88376d-aba3-4950-9ddf-bcb0f388a40c", s.task_id)
    assert.are.equal("simple-app", s.container_name)
    assert.are.equal("2b88376d-aba3-4950-9ddf-bcb0f388a40c\n", (run({ "task-id" }, env)))
  end)

  it("resource: --field takes keys with dots in them", function()
    local r = assert(library(client(R.EC2)).resource())
    assert.are.equal(r["cloud.region"] .. "\n", (run({ "resource", "--field", "cloud.region" }, R.EC2)))
    assert.are.equal(r["aws.log.group.names"][1] .. "\n",
                     (run({ "resource", "--field", "aws.log.group.names.1" }, R.EC2)))
  end)
end)

describe("ecs-metadata prometheus", function()
  it("prints the library's text as it is", function()
    for _, env in ipairs({ R.EC2, NAMED("ecs-exporter-ec2"), NAMED("ecs-exporter-fargate") }) do
      local out, status, err = run({ "prometheus" }, env)
      assert.are.equal(0, status, err)
      local want = assert(library(client(env)).prometheus())
      assert.are.equal(want:sub(-1) == "\n" and want or want .. "\n", out)
      assert.matches("^# HELP ", out)
    end
  end)

  it("takes neither --json nor --field", function()
    for _, args in ipairs({ { "prometheus", "--json" }, { "prometheus", "--field", "x" } }) do
      local out, status, err = run(args, R.EC2)
      assert.are.equal("", out)
      assert.are.equal(2, status)
      assert_error_line(err, "usage")
    end
  end)
end)

describe("ecs-metadata stats-view", function()
  before_each(function()
    helpers.reset()
  end)

  it("one sample: docker stats' columns, as in spec/golden/stats-view-ecs-exporter-ec2.txt", function()
    local out, status, err = run({ "stats-view" }, NAMED("ecs-exporter-ec2"))
    assert.are.equal("", err)
    assert.are.equal(0, status)
    assert.are.equal(R.golden("stats-view-ecs-exporter-ec2.txt", out), out)
    -- the same figures, worked out here from the fixture: ecs-exporter's
    -- total_usage 331125000 (before 325963000), system_cpu_usage
    -- 1045600000000 (before 1043620000000), 2 CPUs
    local cpu = (331125000 - 325963000) / (1045600000000 - 1043620000000) * 2 * 100
    assert.matches("\necs%-exporter +" .. ("%.2f%%"):format(cpu):gsub("%p", "%%%0") .. " ", out)
  end)

  it("one sample: stats the task does not name by short id, and a TOTAL row", function()
    local out = run({ "stats-view" }, R.EC2)
    assert.are.equal(R.golden("stats-view-v4-ec2.txt", out), out)
    assert.matches("\n01999f2e5c6c ", out)
    assert.matches("\nTOTAL ", out)
  end)

  it("--json: the library's view of the task's stats", function()
    for _, env in ipairs({ R.EC2, NAMED("ecs-exporter-ec2"), NAMED("ecs-exporter-fargate"),
                           NAMED("docs-2020-fargate-query-metadata") }) do
      local out, status, err = run({ "stats-view", "--json" }, env)
      assert.are.equal(0, status, err)
      local c = client(env)
      local view = library(c).task_stats_view(assert(c:task_stats()), assert(c:task()))
      assert.are.same(view, decode(out))
      assert.matches('"without_stats":%[', out)
    end
    local out = run({ "stats-view", "--field", "totals.pids" }, NAMED("ecs-exporter-ec2"))
    assert.are.equal("58\n", out)
  end)

  -- /v4/ticking/<key>/<name> answers the fixture's previous reading first,
  -- then the fixture: the second sample's CPU % is the fixture's own.
  local function expected_cpu(name)
    local stats = assert(ecs.decode(helpers.fixture("v4-task-stats/" .. name .. ".json").body))
    local task = assert(ecs.decode(helpers.fixture("v4-task/" .. name .. ".json").body))
    local want = {}
    for _, c in ipairs(task.Containers) do
      local s = stats[c.DockerId]
      if type(s) == "table" and s.cpu_stats then
        local cur, pre = s.cpu_stats, s.precpu_stats
        want[c.Name] = (cur.cpu_usage.total_usage - pre.cpu_usage.total_usage)
          / (cur.system_cpu_usage - pre.system_cpu_usage) * cur.online_cpus * 100
      end
    end
    return want
  end

  it("--interval: CPU % from consecutive samples", function()
    local env = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/ticking/cli-json/ecs-exporter-fargate" }
    local out, status, err = run({ "stats-view", "--json", "--interval", "0.1", "--count", "2" }, env)
    assert.are.equal(0, status, err)
    local lines = {}
    for line in out:gmatch("[^\n]+") do
      lines[#lines + 1] = decode(line)
    end
    assert.are.equal(2, #lines)
    local want = expected_cpu("ecs-exporter-fargate")
    local names = 0
    for name, cpu in pairs(want) do
      names = names + 1
      -- the first sample's own previous reading is later: no CPU % at all
      assert.is_nil(lines[1].containers[name].cpu_percent, name)
      assert.is_true(math.abs(lines[2].containers[name].cpu_percent - cpu) <= cpu * 1e-12, name)
    end
    assert.are.equal(2, names)
    assert.are.same({ "nonessential" }, lines[2].without_stats)
    assert.are.equal(2, helpers.stats().requests["/v4/ticking/cli-json/ecs-exporter-fargate/task/stats"])
  end)

  it("--interval: a table per sample, the second with CPU %", function()
    local env = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/ticking/cli-human/ecs-exporter-fargate" }
    local out, status, err = run({ "stats-view", "--interval", "0.1", "--count", "2" }, env)
    assert.are.equal(0, status, err)
    assert.are.equal(R.golden("stats-view-ticking-ecs-exporter-fargate.txt", out), out)
    local first, second = out:match("^(.-)\n\n(.*)$")
    assert.is_string(second)
    for name, cpu in pairs(expected_cpu("ecs-exporter-fargate")) do
      local pat = "\n" .. name:gsub("%p", "%%%0") .. " +"
      assert.matches(pat .. "%-%- ", first)
      assert.matches(pat .. ("%.2f%%"):format(cpu):gsub("%p", "%%%0") .. " ", second)
    end
  end)

  it("--count alone samples every second", function()
    local env = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/ticking/cli-count/ecs-exporter-fargate" }
    local out, status, err = run({ "stats-view", "--count", "2", "--json" }, env)
    assert.are.equal(0, status, err)
    local lines = {}
    for line in out:gmatch("[^\n]+") do
      lines[#lines + 1] = decode(line)
    end
    assert.are.equal(2, #lines)
    local total = 0
    for _, cpu in pairs(expected_cpu("ecs-exporter-fargate")) do
      total = total + cpu
    end
    assert.is_nil(lines[1].totals.cpu_percent)
    assert.is_true(math.abs(lines[2].totals.cpu_percent - total) <= total * 1e-12)
  end)

  it("a closed pipe ends an endless --interval", function()
    local cmd = R.env_prefix(NAMED("ecs-exporter-fargate")) .. " "
      .. R.command({ "stats-view", "--interval", "0.05" })
    for _, case in ipairs({ { "", "141\n" }, { "trap '' PIPE; ", "0\n" } }) do
      local out, _, err = R.shell(case[1] .. "{ { " .. cmd .. "; echo $? >&3; } | head -2 >/dev/null; } 3>&1")
      assert.are.equal(case[2], out)
      assert.are.equal("", err)
    end
  end)

  it("Ctrl-C ends it with 130 and no message", function()
    local cmd = R.env_prefix(NAMED("ecs-exporter-fargate")) .. " "
      .. R.command({ "stats-view", "--interval", "0.1" })
    local out, status, err = R.shell("timeout --preserve-status -s INT 0.5 " .. cmd)
    assert.are.equal(130, status)
    assert.are.equal("", err)
    assert.matches("^NAME ", out)
  end)

  it("takes --interval and --count only", function()
    for _, args in ipairs({ { "task", "--interval", "1" }, { "summary", "--count", "2" },
                            { "stats-view", "--interval", "0" }, { "stats-view", "--count", "0" },
                            { "stats-view", "--show-secrets" }, { "stats-view", "now" } }) do
      local out, status, err = run(args, R.EC2)
      assert.are.equal("", out)
      assert.are.equal(2, status, table.concat(args, " "))
      assert_error_line(err, "usage")
    end
  end)
end)

describe("ecs-metadata single fields", function()
  local FIELDS = {
    ["task-id"] = "task_id", ["task-arn"] = "task_arn", cluster = "cluster", family = "family",
    revision = "revision", az = "availability_zone", region = "region", account = "account",
    ["container-id"] = "docker_id", ["container-name"] = "container_name", image = "image",
    ip = "private_ipv4", ["log-group"] = "awslogs_group", ["log-stream"] = "awslogs_stream",
  }

  it("print the summary's value, alone on its line", function()
    local s = assert(library(client(R.EC2)).summary())
    local seen = 0
    for name, key in pairs(FIELDS) do
      assert.is_string(s[key], key)
      local out, status, err = run({ name }, R.EC2)
      assert.are.equal(0, status, err)
      assert.are.equal(s[key] .. "\n", out, name)
      seen = seen + 1
    end
    -- every single-field subcommand is here
    local commands = 0
    for _, def in pairs(cli.COMMANDS) do
      if def.field_of then
        commands = commands + 1
        assert.are.equal(def.field_of, FIELDS[def.name])
      end
    end
    assert.are.equal(seen, commands)
  end)

  it("--json prints a JSON string", function()
    assert.are.equal('"158d1c8083dd49d6b527399fd6414f5c"\n', (run({ "task-id", "--json" }, R.EC2)))
  end)

  it("a value the metadata lacks: status 1, no_field", function()
    local out, status, err = run({ "log-group" }, R.V4)
    assert.are.equal("", out)
    assert.are.equal(1, status)
    assert_error_line(err, "no_field")
  end)

  it("not on ECS: status 3; --field: status 2", function()
    local _, status, err = run({ "task-id" }, R.NONE)
    assert.are.equal(3, status)
    assert_error_line(err, "not_on_ecs")
    _, status, err = run({ "task-id", "--field", "x" }, R.EC2)
    assert.are.equal(2, status)
    assert_error_line(err, "usage")
  end)
end)
