-- core._read_file, the reader of the container metadata file and of the
-- authorization token file: whole files, max_bytes and its range, misuse,
-- and files that are not regular (a FIFO, a device, a directory), which
-- must answer io_error at once instead of blocking. Those calls run in a
-- child interpreter under `timeout 5`, so a read that blocks fails the spec
-- instead of hanging the suite. The last block goes through the public API
-- and needs the endpoint (tag #endpoint).
local helpers = require "spec.helpers"
local core = require "ecs_metadata.core"

local read_file = core._read_file

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function shell_quote(s)
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end

local function mkfifo(path)
  local ok = os.execute("mkfifo " .. shell_quote(path))
  assert(ok == true or ok == 0, "mkfifo failed")
end

-- Runs src (which reads ... as its arguments) in a child interpreter under
-- `timeout 5`. Returns its stdout and exit status (124: it hung).
local function run_bounded(src, ...)
  local script = os.tmpname()
  write(script, src)
  local args = {}
  for i = 1, select("#", ...) do
    args[i] = shell_quote(select(i, ...))
  end
  local p = assert(io.popen(("timeout 5 %s %s %s </dev/null 2>&1; echo \"exit $?\""):format(
    helpers.interpreter(), shell_quote(script), table.concat(args, " "))))
  local out = p:read("*a")
  p:close()
  os.remove(script)
  local body, status = out:match("^(.-)exit (%d+)%s*$")
  return body, tonumber(status)
end

-- In the child: read each path, print "<path> <code> <seconds> <message>".
local READ_EACH = [[
local core = require "ecs_metadata.core"
for _, path in ipairs { ... } do
  local t0 = core.now()
  local s, msg, code = core._read_file(path)
  io.write(path, "\t", tostring(code), "\t", ("%.3f"):format(core.now() - t0), "\t",
           tostring(s and #s or msg), "\n")
end
]]

describe("core._read_file", function()
  local dir

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. shell_quote(dir)))
  end)

  after_each(function()
    os.execute("rm -rf " .. shell_quote(dir))
  end)

  it("reads a whole file", function()
    local path = helpers.fixture_root() .. "/metadata-file/docs-ready-bridge.json"
    assert.are.equal(helpers.read("metadata-file/docs-ready-bridge.json"), read_file(path))
    write(dir .. "/empty", "")
    assert.are.equal("", read_file(dir .. "/empty"))
    local big = ("0123456789abcdef"):rep(65536 * 2)     -- 2 MiB, past the default 1 MiB
    write(dir .. "/big", big)
    assert.are.equal(big, read_file(dir .. "/big", #big))
    assert.are.equal(1048576, core.DEFAULT_FILE_MAX_BYTES)
    assert.are.equal("too_large", select(3, read_file(dir .. "/big")))
    os.execute("ln -s big " .. shell_quote(dir .. "/link"))
    assert.are.equal(big, read_file(dir .. "/link", #big))
  end)

  it("fails with io_error or too_large", function()
    local s, msg, code = read_file("/nonexistent/ecs-metadata.json")
    assert.is_nil(s)
    assert.are.equal("io_error", code)
    assert.matches("/nonexistent/ecs%-metadata%.json", msg)
    write(dir .. "/eleven", "01234567890")
    assert.are.equal("01234567890", read_file(dir .. "/eleven", 11))
    s, msg, code = read_file(dir .. "/eleven", 10)
    assert.is_nil(s)
    assert.are.equal("too_large", code)
    assert.matches("larger than max_bytes %(10%)", msg)
  end)

  it("answers invalid_argument for a max_bytes out of range, up to 1 GiB", function()
    local path = helpers.fixture_root() .. "/metadata-file/docs-ready-bridge.json"
    local msg = "read_file: max_bytes must be a whole number from 1 to 1073741824"
    for _, max in ipairs { 0, -1, 0.5, 1.5, 2^30 + 1, 2^31, 2^63, 1e300, math.huge, -math.huge, 0 / 0 } do
      assert.are.same({ nil, msg, "invalid_argument" }, { read_file(path, max) }, tostring(max))
    end
    assert.are.equal(helpers.read(path), read_file(path, 2^30))
    assert.are.equal(helpers.read(path), read_file(path, 1e6 + 0.0))
  end)

  it("raises on misuse", function()
    local path = helpers.fixture_root() .. "/metadata-file/docs-ready-bridge.json"
    assert.has_error(function() read_file() end)
    assert.has_error(function() read_file({}) end)
    assert.has_error(function() read_file(path, "10") end)
    assert.has_error(function() read_file(path, true) end)
    assert.has_error(function() read_file(path, {}) end)
  end)

  it("answers io_error at once for a FIFO, a device or a directory, and never blocks", function()
    local fifo = dir .. "/fifo"
    mkfifo(fifo)
    local out, status = run_bounded(READ_EACH, fifo, "/dev/zero", "/dev/null", dir)
    assert.are.equal(0, status, out)     -- 124: the child hung until timeout killed it
    local kinds = {
      [fifo] = "a FIFO", ["/dev/zero"] = "a character device",
      ["/dev/null"] = "a character device", [dir] = "a directory",
    }
    local seen = 0
    for path, code, seconds, msg in out:gmatch("([^\t\n]+)\t([^\t]+)\t([^\t]+)\t([^\n]*)\n") do
      seen = seen + 1
      assert.are.equal("io_error", code, path)
      assert.are.equal(path .. ": cannot read: " .. kinds[path] .. ", not a regular file", msg)
      assert.is_true(tonumber(seconds) < 1 + helpers.SLACK, path .. " took " .. seconds .. " s")
    end
    assert.are.equal(4, seen, out)
  end)

  it("refuses a FIFO that has a writer, too", function()
    local fifo = dir .. "/fifo"
    mkfifo(fifo)
    -- The writer's open waits for a reader; the child's open is that reader.
    local writer = assert(io.popen("exec timeout 5 sh -c 'echo {} > " .. shell_quote(fifo) .. "'", "r"))
    local out, status = run_bounded(READ_EACH, fifo)
    writer:close()
    assert.are.equal(0, status, out)
    assert.matches("^[^\t]+\tio_error\t[%d.]+\t[^\n]*a FIFO, not a regular file\n$", out)
  end)
end)

describe("files that are not regular, through the API #endpoint", function()
  local dir, fifo

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. shell_quote(dir)))
    fifo = dir .. "/fifo"
    mkfifo(fifo)
  end)

  after_each(function()
    os.execute("rm -rf " .. shell_quote(dir))
  end)

  -- In the child: one call of a client with env = { [var] = fifo, ... }.
  local CALL = [[
local ecs = require "ecs_metadata"
local core = require "ecs_metadata.core"
local fn, var, path, endpoint = ...
local env = { [var] = path }
if fn == "credentials" then env.AWS_CONTAINER_CREDENTIALS_FULL_URI = endpoint .. "/creds/full" end
local c = assert(ecs.new { env = env, link_local_url = endpoint, timeout = 2 })
local t0 = core.now()
local v, msg, code = c[fn](c, fn == "metadata_file" and { wait = 0.5 } or nil)
io.write(tostring(code), "\t", ("%.3f"):format(core.now() - t0), "\t", tostring(msg), "\n")
]]

  it("answers io_error for a FIFO as the metadata file, within wait", function()
    local out, status = run_bounded(CALL, "metadata_file", "ECS_CONTAINER_METADATA_FILE", fifo,
                                    helpers.endpoint())
    assert.are.equal(0, status, out)
    local code, seconds, msg = out:match("^(%S+)\t([%d.]+)\t([^\n]*)\n$")
    assert.are.equal("io_error", code, out)
    assert.matches("a FIFO, not a regular file", msg)
    assert.is_true(tonumber(seconds) < 0.5 + 1 + helpers.SLACK, out)
  end)

  it("answers io_error for a FIFO as the authorization token file, without a request", function()
    helpers.reset()
    local out, status = run_bounded(CALL, "credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", fifo,
                                    helpers.endpoint())
    assert.are.equal(0, status, out)
    local code, seconds, msg = out:match("^(%S+)\t([%d.]+)\t([^\n]*)\n$")
    assert.are.equal("io_error", code, out)
    assert.matches("a FIFO, not a regular file", msg)
    assert.is_true(tonumber(seconds) < 1 + helpers.SLACK, out)
    assert.are.equal(0, helpers.stats().total)
  end)
end)
