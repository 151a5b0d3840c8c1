-- The `ecs-metadata` command, run as a process against the test endpoint:
-- every source subcommand's human output (golden files) and JSON (read back
-- and compared with what the library answers), --field, --env, the
-- library's options, every exit status, one-line errors, a closed pipe,
-- --help, and the installed command.
local helpers = require "spec.helpers"
local R = require "spec.cli_runner"
local ecs = require "ecs_metadata"
local cli = require "ecs_metadata.cli"
local cjson = require "cjson"

local E = R.E
local run = R.run

local FILE = helpers.fixture_root() .. "/metadata-file/docs-ready-bridge.json"
local NOT_READY = helpers.fixture_root() .. "/metadata-file/docs-not-ready.json"
local V2_ID = "43481a6ce4842eec8fe72fc28500c6b52edcc0917f105b83379f88cac1ff3946"

-- A library client for the same environment as a command.
local function client(env)
  return helpers.client(env, { array_mt = cli.ARRAY_MT })
end

-- Decodes the command's JSON exactly (integers stay integers on 5.3+).
local function decode(out)
  local v, msg = ecs.decode(out, { array_mt = cli.ARRAY_MT })
  assert(v ~= nil, msg)
  return v
end

-- The body of the last PUT the endpoint's agent took.
local function last_put()
  local body, status = assert(require("ecs_metadata.core").http()):get(helpers.url("/_last_put"))
  assert.are.equal(200, status)
  return body
end

-- The command's stderr: one line, "ecs-metadata: ... [code]".
local function assert_error_line(err, code)
  assert.matches("^ecs%-metadata: [^\n]+ %[" .. code:gsub("%p", "%%%0") .. "%]\n$", err)
  assert.not_matches("traceback", err)
  assert.not_matches("%.lua:%d+:", err)
end

-- Every source subcommand: its words, its environment, and the library's
-- answer to compare with.
local SOURCES = {
  { name = "container-v4-fargate", args = { "container" }, env = R.V4,
    call = function(c) return c:container() end },
  { name = "task-v4-ec2", args = { "task" }, env = R.EC2,
    call = function(c) return c:task() end },
  { name = "task-v3", args = { "task" }, env = R.V3,
    call = function(c) return c:task() end },
  { name = "task-with-tags-v4-ec2", args = { "task-with-tags" }, env = R.EC2,
    call = function(c) return c:task_with_tags() end },
  { name = "stats-v4-ec2", args = { "stats" }, env = R.EC2,
    call = function(c) return c:container_stats() end },
  { name = "task-stats-v4-ec2", args = { "task-stats" }, env = R.EC2,
    call = function(c) return c:task_stats() end },
  { name = "container-v2", args = { "container", "--version", "v2", "--container-id", V2_ID },
    env = R.NONE,
    call = function(c) return c:container { version = "v2", container_id = V2_ID } end },
  { name = "file", args = { "file" }, env = { ECS_CONTAINER_METADATA_FILE = FILE },
    call = function(c) return c:metadata_file() end },
  { name = "protection-docs", args = { "protection" },
    env = { ECS_AGENT_URI = E .. "/agent/docs" },
    call = function(c) return c:protection() end },
  { name = "credentials", args = { "credentials", "--show-secrets" }, env = R.V4,
    call = function(c) return c:credentials() end },
}

describe("ecs-metadata, source subcommands", function()
  before_each(function()
    helpers.reset()
  end)

  for _, s in ipairs(SOURCES) do
    it(s.name .. ": human output as in spec/golden/" .. s.name .. ".txt", function()
      local args = {}
      for _, a in ipairs(s.args) do
        if a ~= "--show-secrets" then
          args[#args + 1] = a
        end
      end
      local out, status, err = run(args, s.env)
      assert.are.equal("", err)
      assert.are.equal(0, status)
      assert.are.equal(R.golden(s.name .. ".txt", R.normalize(out)), R.normalize(out))
    end)

    it(s.name .. ": every human line is the library's value at its PATH", function()
      local out, status, err = run(s.args, s.env)
      assert.are.equal(0, status, err)
      local want = assert(s.call(client(s.env)))
      local lines = 0
      for line in out:gmatch("[^\n]+") do
        local path, text = line:match("^(%S+)%s%s+(.*)$")
        assert.is_not_nil(path, line)
        local v = cli.lookup_path(want, path)
        assert(v ~= nil, path)
        local expect
        if type(v) == "table" then
          assert.is_nil(next(v), path)
          expect = getmetatable(v) == cli.ARRAY_MT and "[]" or "{}"
        elseif type(v) == "string" then
          expect = (v == "" or v:find("%c")) and cli.json(v) or v
        elseif type(v) == "number" then
          assert.are.equal(v, tonumber(text), path)
          if math.type then
            assert.are.equal(math.type(v), math.type(tonumber(text)), path)
          end
          expect = text
        elseif v == ecs.null then
          expect = "null"
        else
          expect = tostring(v)
        end
        assert.are.equal(expect, text, path)
        lines = lines + 1
      end
      -- one line per leaf: as many as the JSON has scalars and empty containers
      local leaves = 0
      local function count(v)
        if type(v) == "table" and next(v) ~= nil then
          for _, x in pairs(v) do
            count(x)
          end
        else
          leaves = leaves + 1
        end
      end
      count(want)
      assert.are.equal(leaves, lines)
    end)

    it(s.name .. ": --json reads back as the library's answer", function()
      local args = { "--json" }
      for _, a in ipairs(s.args) do
        args[#args + 1] = a
      end
      local out, status, err = run(args, s.env)
      assert.are.equal("", err)
      assert.are.equal(0, status)
      assert.matches("^[^\n]*\n$", out)
      local want = assert(s.call(client(s.env)))
      assert.are.same(want, decode(out))
      -- the same bytes as the encoder gives the library's answer: keys sorted
      assert.are.equal(cli.json(want) .. "\n", out)
      -- valid JSON for an independent parser too
      assert.is_table(cjson.decode(out))
    end)
  end

  it("keeps [] as [] and {} as {}", function()
    local out = run({ "--json", "stats" }, R.EC2)
    assert.matches('"io_merged_recursive":[]', out, 1, true)
    local human = run({ "stats" }, R.EC2)
    assert.matches("^blkio_stats.io_merged_recursive +%[%]\n", human)
    -- a task stats map with an empty entry
    local env = { ECS_CONTAINER_METADATA_URI_V4 =
                  E .. "/v4/each/v4-task-stats/otel-collector-fargate-stopped-container-empty-object" }
    out = run({ "--json", "task-stats" }, env)
    local doc = decode(out)
    local empty = 0
    for id, v in pairs(doc) do
      if next(v) == nil then
        empty = empty + 1
        assert.matches('"' .. id .. '":{}', out, 1, true)
      end
    end
    assert.are.equal(1, empty)
  end)

  it("writes integers exactly: the cgroup 'no limit' 9223372036854771712", function()
    local env = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/each/v4-task-stats/ecs-exporter-fargate" }
    local out, status = run({ "--json", "task-stats" }, env)
    assert.are.equal(0, status)
    assert.matches('"limit":9223372036854771712[,}]', out)
    assert.not_matches("9%.22337", out)
    local doc = decode(out)
    for _, s in pairs(doc) do
      assert.are.equal(9223372036854771712, s.memory_stats.limit)
      if math.type then
        assert.are.equal("integer", math.type(s.memory_stats.limit))
      end
    end
    -- and in the human format, and through --field
    local id = next(doc)
    local field = run({ "task-stats", "--field", id .. ".memory_stats.limit" }, env)
    assert.are.equal("9223372036854771712\n", field)
    -- floats keep their digits
    assert.matches('"rx_bytes_per_sec":2464.6679803462657', out, 1, true)
  end)

  it("masks the credentials' secrets unless --show-secrets", function()
    local env = R.with(R.V4, { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/fresh" })
    for _, args in ipairs({ { "credentials" }, { "--json", "credentials" } }) do
      local out, status = run(args, env)
      assert.are.equal(0, status)
      assert.not_matches("TEST%-SECRET", out)
      assert.not_matches("TEST%-TOKEN", out)
      assert.matches("ASIAECSMTESTACCESSKEY", out, 1, true)
    end
    local doc = decode(run({ "--json", "credentials" }, env))
    assert.are.equal("<redacted>", doc.SecretAccessKey)
    assert.are.equal("<redacted>", doc.Token)
    assert.are.equal("<redacted>\n", (run({ "credentials", "--field", "Token" }, env)))
    assert.are.equal("TEST-SECRET-do-not-log\n",
                     (run({ "credentials", "--show-secrets", "--field", "SecretAccessKey" }, env)))
  end)

  it("endpoint: the base and the version discovery finds", function()
    local out, status = run({ "endpoint" }, R.V4)
    assert.are.equal(0, status)
    assert.are.equal(R.golden("endpoint-v4.txt", R.normalize(out)), R.normalize(out))
    assert.are.same({ base = E .. "/v4/fargate", version = "v4" },
                    decode((run({ "--json", "endpoint" }, R.V4))))
    assert.are.same({ base = E .. "/v3/ec2", version = "v3" },
                    decode((run({ "--json", "endpoint" }, R.V3))))
    assert.are.equal(E .. "/v2\n", (run({ "endpoint", "--version", "v2", "--field", "base" }, R.NONE)))
    assert.are.equal("file\n",
                     (run({ "endpoint", "--field", "version" }, { ECS_CONTAINER_METADATA_FILE = FILE })))
  end)

  it("protect on [MINUTES] and protect off set the agent's state", function()
    local out, status, err = run({ "protect", "on", "60" }, R.V4)
    assert.are.equal(0, status, err)
    assert.are.same({ ProtectionEnabled = true, ExpiresInMinutes = 60 }, cjson.decode(last_put()))
    local normalized = out:gsub("%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ", "<date>")
    assert.are.equal(R.golden("protect-on.txt", normalized), normalized)
    assert.are.equal("true\n", (run({ "protection", "--field", "ProtectionEnabled" }, R.V4)))

    out, status = run({ "protect", "off", "--json" }, R.V4)
    assert.are.equal(0, status)
    local doc = decode(out)
    assert.is_false(doc.ProtectionEnabled)
    assert.are.equal("false\n", (run({ "protection", "--field", "ProtectionEnabled" }, R.V4)))

    -- without MINUTES: no ExpiresInMinutes, ECS's default
    run({ "protect", "on" }, R.V4)
    assert.are.same({ ProtectionEnabled = true }, cjson.decode(last_put()))
  end)
end)

describe("ecs-metadata --field", function()
  it("takes nested paths through objects and arrays", function()
    local c = client(R.EC2)
    local task = assert(c:task())
    local cases = {
      ["Containers.1.Name"] = task.Containers[1].Name,
      ["Containers.2.DockerId"] = task.Containers[2].DockerId,
      ["Containers.1.Networks.1.IPv4Addresses.1"] = task.Containers[1].Networks[1].IPv4Addresses[1],
      ["Containers.1.Labels.com.amazonaws.ecs.cluster"] =
        task.Containers[1].Labels["com.amazonaws.ecs.cluster"],
      ["Containers.1.Limits.CPU"] = tostring(task.Containers[1].Limits.CPU),
      ["Revision"] = task.Revision,
    }
    for path, want in pairs(cases) do
      local out, status, err = run({ "task", "--field", path }, R.EC2)
      assert.are.equal(0, status, err)
      assert.are.equal(want .. "\n", out, path)
    end
  end)

  it("prints a table below the path in either format", function()
    local task = assert(client(R.EC2):task())
    local out = run({ "task", "--field", "Containers.1.Networks", "--json" }, R.EC2)
    assert.are.same(task.Containers[1].Networks, decode(out))
    out = run({ "task", "--field", "Containers.1.Networks" }, R.EC2)
    assert.matches("^1%.AttachmentIndex +0\n", out)
    local ip = task.Containers[1].Networks[1].IPv4Addresses[1]
    assert.matches("\n1%.IPv4Addresses%.1 +" .. ip:gsub("%p", "%%%0") .. "\n", out)
    assert.are.equal('"' .. task.Family .. '"\n', (run({ "task", "--field", "Family", "--json" }, R.EC2)))
  end)

  it("fails with no_field, status 1, for a path the answer lacks", function()
    for _, path in ipairs({ "Nope", "Containers.0.Name", "Containers.9.Name", "Family.x", "",
                            "Containers..Name" }) do
      local out, status, err = run({ "task", "--field", path }, R.EC2)
      assert.are.equal("", out)
      assert.are.equal(1, status, path)
      assert_error_line(err, "no_field")
    end
  end)
end)

describe("ecs-metadata --env and the library's options", function()
  before_each(function()
    helpers.reset()
  end)

  it("--env sets a variable over the environment, KEY= unsets it", function()
    local out = run({ "--env", "ECS_CONTAINER_METADATA_URI_V4=" .. E .. "/v4/ec2",
                      "task", "--field", "Family" }, R.V4)
    assert.are.equal("curltest\n", out)
    -- the other variables still come from the environment
    out = run({ "--env=ECS_CONTAINER_METADATA_URI_V4=", "endpoint", "--json" }, R.V4)
    assert.are.same({ base = E .. "/v3/ec2", version = "v3" }, decode(out))
    local _, status, err = run({ "--env", "ECS_CONTAINER_METADATA_URI_V4=",
                                "--env", "ECS_CONTAINER_METADATA_URI=", "task" }, R.V4)
    assert.are.equal(3, status)
    assert_error_line(err, "not_on_ecs")
    -- an environment made only of --env
    out = run({ "--env", "ECS_CONTAINER_METADATA_FILE=" .. FILE, "file", "--field", "ContainerName" },
              R.NONE)
    assert.are.equal("simple-app\n", out)
  end)

  it("--version picks the source", function()
    assert.are.equal("v3\n", (run({ "--version", "v3", "endpoint", "--field", "version" }, R.V4)))
    local out = run({ "--version", "v3", "container", "--json" }, R.V4)
    assert.are.same(assert(client(R.V3):container()), decode(out))
    local _, status, err = run({ "--version", "file", "task" }, R.V4)
    assert.are.equal(3, status)
    assert_error_line(err, "not_on_ecs")
  end)

  it("--retries: a flaky endpoint answers on the third attempt", function()
    local env = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/fault/flaky/cli-a/2" }
    local _, status, err = run({ "--retries", "0", "task" }, env)
    assert.are.equal(1, status)
    assert_error_line(err, "http_status")
    helpers.reset()
    local out
    out, status, err = run({ "--retries", "2", "task", "--field", "Family" }, env)
    assert.are.equal(0, status, err)
    assert.are.equal("curltest\n", out)
    assert.are.equal(3, helpers.stats().requests["/fault/flaky/cli-a/2/task"])
  end)

  it("--timeout bounds the call", function()
    local env = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/fault/slow" }
    local _, status, err = run({ "--timeout", "0.3", "--retries", "0", "task" }, env)
    assert.are.equal(1, status)
    assert_error_line(err, "timeout")
    assert.matches("timed out after %d+ milliseconds", err)
  end)

  it("--wait waits for the metadata file to be READY, then fails not_ready", function()
    local _, status, err = run({ "file", "--wait", "0.2" }, { ECS_CONTAINER_METADATA_FILE = NOT_READY })
    assert.are.equal(1, status)
    assert_error_line(err, "not_ready")
  end)

  it("--connect-timeout is taken", function()
    local out, status = run({ "--connect-timeout", "0.5", "task", "--field", "Family" }, R.EC2)
    assert.are.equal(0, status)
    assert.are.equal("curltest\n", out)
  end)
end)

describe("ecs-metadata exit status and errors", function()
  it("0: ok", function()
    local _, status, err = run({ "task" }, R.V4)
    assert.are.equal(0, status)
    assert.are.equal("", err)
  end)

  it("1: the endpoint failed, one line with the code", function()
    local cases = {
      { E .. "/fault/404", "http_status" },
      { E .. "/fault/500", "http_status" },
      { E .. "/fault/garbage", "bad_json" },
      { E .. "/fault/html", "bad_json" },
      { E .. "/fault/truncated", "unreachable" },
      { E .. "/fault/429-bare", "throttled" },
      { "http://127.0.0.1:9/v4/x", "unreachable" },
    }
    for _, case in ipairs(cases) do
      local out, status, err = run({ "--retries", "0", "task" },
                                   { ECS_CONTAINER_METADATA_URI_V4 = case[1] })
      assert.are.equal("", out)
      assert.are.equal(1, status, case[1])
      assert_error_line(err, case[2])
    end
    local _, status, err = run({ "file" }, { ECS_CONTAINER_METADATA_FILE = "/nonexistent/x.json" })
    assert.are.equal(1, status)
    assert_error_line(err, "io_error")
    _, status, err = run({ "protection" }, { ECS_AGENT_URI = E .. "/agent/denied" })
    assert.are.equal(1, status)
    assert_error_line(err, "http_status")
    assert.matches("AccessDeniedException", err, 1, true)
  end)

  it("1: output that cannot be written", function()
    local out, status, err = R.shell(R.env_prefix(R.V4) .. " " .. R.command({ "task" }) .. " >/dev/full")
    assert.are.equal("", out)
    assert.are.equal(1, status)
    assert_error_line(err, "io_error")
  end)

  it("2: usage, for every kind of bad command line", function()
    local cases = {
      {},
      { "nope" },
      { "--nope", "task" },
      { "-x", "task" },
      { "task", "extra" },
      { "task", "--json=1" },
      { "--field" },
      { "--timeout", "0", "task" },
      { "--timeout", "-1", "task" },
      { "--timeout", "nan", "task" },
      { "--timeout", "inf", "task" },
      { "--timeout", "soon", "task" },
      { "--retries", "1.5", "task" },
      { "--version", "v5", "task" },
      { "--env", "=x", "task" },
      { "--env", "NOEQUALS", "task" },
      { "--link-local-url", "ftp://x", "task" },
      { "--show-secrets", "task" },
      { "--wait", "1", "task" },
      { "--wait", "86401", "file" },
      { "--timeout", "86401", "task" },
      { "--retries", "101", "task" },
      { "--container-id", "abc", "container" },
      { "--version", "v2", "container" },
      { "--version", "v2", "stats" },
      { "protect" },
      { "protect", "maybe" },
      { "protect", "on", "0" },
      { "protect", "on", "2881" },
      { "protect", "on", "1.5" },
      { "protect", "on", "60", "more" },
      { "protect", "off", "60" },
      { "help", "nope" },
      { "\255binary", "--\1" },
    }
    for _, args in ipairs(cases) do
      local out, status, err = run(args, R.V4)
      local shown = table.concat(args, " ")
      assert.are.equal("", out, shown)
      assert.are.equal(2, status, shown)
      assert_error_line(err, "usage")
    end
  end)

  it("3: not on ECS", function()
    for _, args in ipairs({ { "task" }, { "container" }, { "stats" }, { "task-stats" },
                            { "task-with-tags" }, { "file" }, { "protection" },
                            { "protect", "off" }, { "credentials" }, { "endpoint" } }) do
      local out, status, err = run(args, R.NONE)
      assert.are.equal("", out)
      assert.are.equal(3, status, args[1])
      assert_error_line(err, "not_on_ecs")
      -- the library's message, which names the function once
      assert.not_matches("(%w+): %1:", err)
    end
    -- a source that is not there, though another is
    local _, status, err = run({ "--version", "v3", "task" },
                               { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/ec2" })
    assert.are.equal(3, status)
    assert_error_line(err, "not_on_ecs")
  end)

  it("never shows a stack trace, whatever the arguments", function()
    local words = { "task", "stats", "protect", "on", "off", "--json", "--field", "--env",
                    "--timeout", "--version", "v2", "x=y", "", "-", "--", "Containers.1",
                    "1e999", "--wait", "\1\255", "--help", "help", "endpoint" }
    math.randomseed(11)
    for _ = 1, 40 do
      local args = {}
      for i = 1, math.random(1, 5) do
        args[i] = words[math.random(#words)]
      end
      local _, status, err = run(args, R.V4)
      assert.is_true(status == 0 or status == 1 or status == 2 or status == 3,
                     table.concat(args, " "))
      if status ~= 0 then
        assert_error_line(err, err:match("%[([%w_]+)%]\n$") or "?")
      end
      assert.not_matches("traceback", err)
    end
  end)
end)

describe("ecs-metadata and a closed pipe", function()
  it("ecs-metadata task | head -1: the first line, and no error", function()
    local out, status, err = R.shell(R.env_prefix(R.EC2) .. " " .. R.command({ "task" })
                                     .. " | head -1")
    assert.are.equal(0, status)
    assert.are.equal("", err)
    local golden = helpers.read(helpers.fixture_root() .. "/../golden/task-v4-ec2.txt")
    assert.are.equal(golden:match("^[^\n]*\n"), out)
  end)

  -- The reader is gone before the command writes: the write gets SIGPIPE
  -- (which ends it without a word) or, where SIGPIPE is ignored, EPIPE.
  local function closed(trap)
    local script = trap .. "{ { sleep 0.3; " .. R.env_prefix(R.EC2) .. " "
      .. R.command({ "task-stats" }) .. "; echo $? >&3; } | true; } 3>&1"
    return R.shell(script)
  end

  it("dies of SIGPIPE quietly", function()
    local out, _, err = closed("")
    assert.are.equal("141\n", out)         -- 128 + SIGPIPE, as sh reports it
    assert.are.equal("", err)
  end)

  it("exits 0 quietly when SIGPIPE is ignored", function()
    local out, _, err = closed("trap '' PIPE; ")
    assert.are.equal("0\n", out)
    assert.are.equal("", err)
  end)
end)

describe("ecs-metadata --help", function()
  it("lists every subcommand, the options and the exit statuses", function()
    local out, status, err = run({ "--help" }, R.NONE)
    assert.are.equal(0, status)
    assert.are.equal("", err)
    for name in pairs(cli.COMMANDS) do
      assert.matches("[ \n]" .. name:gsub("%p", "%%%0") .. "[ \n]", out)
    end
    for _, opt in ipairs({ "--json", "--field PATH", "--env KEY=VALUE", "--timeout", "--retries",
                           "--version v4|v3|v2|file", "--wait", "--show-secrets" }) do
      assert.matches(opt, out, 1, true)
    end
    for _, line in ipairs({ "  0  ok", "  1  ", "  2  usage", "  3  not on ECS" }) do
      assert.matches(line, out, 1, true)
    end
    assert.are.equal(out, (run({ "-h" }, R.NONE)))
    assert.are.equal(out, (run({ "help" }, R.NONE)))
  end)

  it("has a page for every subcommand", function()
    for name in pairs(cli.COMMANDS) do
      local out, status, err = run({ name, "--help" }, R.NONE)
      assert.are.equal(0, status, name)
      assert.are.equal("", err)
      assert.matches("^Usage: ecs%-metadata %[OPTIONS%] " .. name:gsub("%p", "%%%0"), out)
      assert.matches("Exit status:", out, 1, true)
      assert.are.equal(out, (run({ "help", name }, R.NONE)), name)
    end
  end)
end)

describe("ecs-metadata, installed", function()
  local function sh(cmd)
    local p = assert(io.popen(cmd .. " 2>&1; echo $?"))
    local s = p:read("*a")
    p:close()
    return s
  end

  -- The build the specs run against: make test's LUA_CPATH, else .busted's.
  local lua = rawget(_G, "jit") and "luajit" or _VERSION:match("%d+%.%d+")
  local build = (os.getenv("LUA_CPATH") or ""):match("^([^;]*)/%?%.so") or "build/" .. lua
  local abi = rawget(_G, "jit") and "5.1" or lua

  it("by make install: the first line names the interpreter", function()
    local dest = os.tmpname()
    os.remove(dest)
    local log = sh("make -s install LUA=" .. lua .. " BUILD=" .. build .. " DESTDIR=" .. dest
                   .. " PREFIX=/usr")
    assert.matches("0\n$", log)
    local bin = dest .. "/usr/bin/ecs-metadata"
    local f = assert(io.open(bin, "rb"))
    local first = f:read("*l")
    f:close()
    local interp = sh("command -v " .. helpers.interpreter()):match("^[^\n]+")
    assert.are.equal("#!" .. interp, first)
    local tree = dest .. "/usr/share/lua/" .. abi
    local lpath = tree .. "/?.lua;" .. tree .. "/?/init.lua;;"
    local out = sh("cd / && env LUA_PATH=" .. helpers.shell_quote(lpath)
                   .. " LUA_CPATH=" .. helpers.shell_quote(dest .. "/usr/lib/lua/" .. abi .. "/?.so;;")
                   .. " ECS_CONTAINER_METADATA_URI_V4=" .. E .. "/v4/ec2 " .. bin .. " task --field Family")
    assert.are.equal("curltest\n0\n", out)
    sh("rm -rf " .. helpers.shell_quote(dest))
  end)

  it("from the checkout: finds lua/ next to bin/ without LUA_PATH", function()
    local root = sh("pwd"):match("^[^\n]+")
    local cpath = root .. "/" .. build .. "/?.so;;"
    local out = sh("cd / && env -u LUA_PATH LUA_CPATH=" .. helpers.shell_quote(cpath)
                   .. " ECS_CONTAINER_METADATA_URI_V4=" .. E .. "/v4/ec2 "
                   .. helpers.interpreter() .. " " .. root .. "/bin/ecs-metadata task --field Family")
    assert.are.equal("curltest\n0\n", out)
  end)

  it("says in one line when the module cannot be loaded", function()
    local out = sh("cd / && env LUA_PATH=/nonexistent/?.lua LUA_CPATH=/nonexistent/?.so "
                   .. helpers.interpreter() .. " " .. sh("pwd"):match("^[^\n]+")
                   .. "/bin/ecs-metadata task")
    assert.matches("^ecs%-metadata: cannot load ecs_metadata%.cli: [^\n]* %[internal%]\n1\n$", out)
  end)
end)

describe("ecs_metadata.cli's JSON", function()
  it("sorts keys, keeps [] and {}, escapes what JSON must", function()
    local A = cli.ARRAY_MT
    assert.are.equal('{"a":{"c":2,"d":[],"e":{}},"b":[1,"x",true,null]}',
                     cli.json({ b = setmetatable({ 1, "x", true, ecs.null }, A),
                                a = { e = {}, d = setmetatable({}, A), c = 2 } }))
    assert.are.equal('"q\\"\\\\\\n\\t\\u0001\\u007f/é"', cli.json('q"\\\n\t\1\127/é'))
  end)

  it("writes numbers exactly, in the shortest form that reads back", function()
    assert.are.equal("0.1", cli.json(0.1))
    assert.are.equal("0.3333333333333333", cli.json(1 / 3))
    assert.are.equal("1e+300", cli.json(1e300))
    assert.are.equal("null", cli.json(0 / 0))
    assert.are.equal("null", cli.json(math.huge))
    assert.are.equal("1.8446744073709552e+19", cli.json(2 ^ 64))
    if math.type then
      assert.are.equal("9223372036854775807", cli.json(math.maxinteger))
      assert.are.equal("-9223372036854775808", cli.json(math.mininteger))
      assert.are.equal("2.0", cli.json(2.0))
      assert.are.equal("2", cli.json(2))
    else
      assert.are.equal("2", cli.json(2))
      assert.are.equal("9223372036854771712", cli.json(9223372036854771712))
    end
  end)

  it("reads back as the very document, for every fixture", function()
    local n = 0
    for _, f in ipairs(helpers.fixtures()) do
      local doc = ecs.decode(f.body, { array_mt = cli.ARRAY_MT })
      if doc ~= nil then
        assert.are.same(doc, decode(cli.json(doc)), f.rel)
        n = n + 1
      end
    end
    assert.is_true(n >= 50, n)
  end)
end)

describe("ecs_metadata.cli.main", function()
  local function files()
    return { stdout = assert(io.tmpfile()), stderr = assert(io.tmpfile()) }
  end
  local function text(f)
    f:seek("set")
    return f:read("*a")
  end

  it("runs in this process, writing where io says", function()
    local io_ = files()
    assert.are.equal(0, cli.main({ "--help" }, io_))
    assert.matches("^Usage: ecs%-metadata", text(io_.stdout))
    assert.are.equal("", text(io_.stderr))

    io_ = files()
    assert.are.equal(2, cli.main({ "nope" }, io_))
    assert.are.equal("", text(io_.stdout))
    assert.matches("^ecs%-metadata: no subcommand 'nope' [^\n]*%[usage%]\n$", text(io_.stderr))

    io_ = files()
    assert.are.equal(0, cli.main({ "--env", "ECS_CONTAINER_METADATA_URI_V4=" .. E .. "/v4/ec2",
                                   "task", "--field", "Family" }, io_))
    assert.are.equal("curltest\n", text(io_.stdout))
  end)
end)
