-- The container metadata file: both formats, not-ready files, waiting for
-- READY, files caught mid-rewrite, and the file's failures.
local helpers = require "spec.helpers"
local core = require "ecs_metadata.core"
local cjson = require "cjson"

local DIR = "spec/fixtures/metadata-file/"

local SLACK = helpers.SLACK

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function client(path, extra)
  return helpers.client({ ECS_CONTAINER_METADATA_FILE = path }, extra)
end

local function list(dir)
  local p = assert(io.popen("ls " .. dir))
  local names = {}
  for name in p:lines() do
    names[#names + 1] = name
  end
  p:close()
  return names
end

-- Runs a shell command in the background.
local function background(cmd)
  assert(os.execute("(" .. cmd .. ") >/dev/null 2>&1 &"))
end

describe("ecs.metadata_file", function()
  local tmp

  before_each(function()
    tmp = os.tmpname()
  end)

  after_each(function()
    os.remove(tmp)
  end)

  it("reads every fixture: READY ones as cjson does, the rest not_ready", function()
    local names = list(DIR)
    assert.is_true(#names >= 8)
    local ready, waiting = 0, 0
    for _, name in ipairs(names) do
      local path = DIR .. name
      local ref = cjson.decode(read(path))
      local v, msg, code = client(path):metadata_file()
      if ref.MetadataFileStatus == "READY" then
        ready = ready + 1
        assert(v, path .. ": " .. tostring(msg))
        for k, x in pairs(ref) do
          if type(x) ~= "table" then
            assert.are.equal(x, v[k], path .. " " .. k)
          end
        end
      else
        waiting = waiting + 1
        assert.is_nil(v, path)
        assert.are.equal("not_ready", code, path)
        assert.matches(path, msg, 1, true)
        assert.matches("no MetadataFileStatus", msg, 1, true)
      end
    end
    assert.is_true(ready >= 5 and waiting >= 3)
  end)

  it("reads the first design's Status and Version", function()
    local doc = read(DIR .. "docs-ready-bridge.json")
      :gsub('"MetadataFileStatus"%s*:%s*"READY"', '"Status": "READY", "Version": "1"')
    assert.is_nil(doc:find("MetadataFileStatus", 1, true))
    write(tmp, doc)
    local v = assert(client(tmp):metadata_file())
    assert.are.equal("READY", v.Status)
    assert.are.equal("1", v.Version)

    write(tmp, (doc:gsub('"Status": "READY"', '"Status": "NOT_READY"')))
    local _, msg, code = client(tmp):metadata_file()
    assert.are.equal("not_ready", code)
    assert.matches("NOT_READY", msg, 1, true)
  end)

  it("waits for READY without busy-waiting", function()
    write(tmp, read(DIR .. "docs-not-ready.json"))
    local ready = DIR .. "docs-ready-bridge.json"
    background(string.format("sleep 0.3; cp %s %s.new && mv %s.new %s", ready, tmp, tmp, tmp))
    local t0, c0 = core.now(), os.clock()
    local v, msg = client(tmp):metadata_file { wait = 5 }
    local took, cpu = core.now() - t0, os.clock() - c0
    assert(v, msg)
    assert.are.equal("READY", v.MetadataFileStatus)
    assert.is_true(took >= 0.25 and took < 3 + SLACK, "took " .. took)
    assert.is_true(SLACK > 0 or cpu < 0.2, "used " .. cpu .. " s of CPU while waiting")
  end)

  it("answers not_ready when the wait is over", function()
    write(tmp, read(DIR .. "docs-not-ready.json"))
    local t0 = core.now()
    local v, msg, code = client(tmp):metadata_file { wait = 0.3 }
    local took = core.now() - t0
    assert.is_nil(v)
    assert.are.equal("not_ready", code)
    assert.matches(tmp, msg, 1, true)
    assert.is_true(took >= 0.3 and took < 1 + SLACK, "took " .. took)
  end)

  it("retries a file caught mid-rewrite instead of answering half of it", function()
    local full = read(DIR .. "docs-ready-bridge.json")
    local whole = tmp .. ".whole"
    write(whole, full)
    write(tmp, full:sub(1, math.floor(#full / 2)))
    background(string.format("sleep 0.04; mv %s %s", whole, tmp))
    local v, msg = client(tmp):metadata_file()
    assert(v, msg)
    assert.are.equal("READY", v.MetadataFileStatus)
    os.remove(whole)
  end)

  it("never answers part of a file rewritten in place", function()
    local full = read(DIR .. "docs-ready-bridge.json")
    local ref = cjson.decode(full)
    local keys = 0
    for _ in pairs(ref) do
      keys = keys + 1
    end
    local whole, half = tmp .. ".whole", tmp .. ".half"
    write(whole, full)
    write(half, full:sub(1, math.floor(#full / 2)))
    write(tmp, full)
    -- Rewrites tmp in place (truncate, then write) for about a second.
    local done = tmp .. ".done"
    background(string.format(
      "i=0; while [ $i -lt 40 ]; do cat %s > %s; cat %s > %s; sleep 0.01; i=$((i+1)); done; touch %s",
      half, tmp, whole, tmp, done))
    local c = client(tmp, { cache_ttl = 0 })
    local t0, good = core.now(), 0
    while core.now() - t0 < 0.3 do
      local v, msg, code = c:metadata_file()
      if v then
        good = good + 1
        local n = 0
        for _ in pairs(v) do
          n = n + 1
        end
        assert.are.equal(keys, n)
      else
        assert.are.equal("bad_json", code, msg)
      end
    end
    assert.is_true(good > 0)
    while not io.open(done) and core.now() - t0 < 10 do
      core._sleep(0.05)
    end
    os.remove(done)
    os.remove(whole)
    os.remove(half)
  end)

  it("answers io_error, too_large and bad_json", function()
    local v, msg, code = client("/nonexistent/ecs-metadata.json"):metadata_file()
    assert.is_nil(v)
    assert.are.equal("io_error", code)
    assert.matches("/nonexistent/ecs-metadata.json", msg, 1, true)

    v, msg, code = client(DIR .. "docs-ready-bridge.json", { max_bytes = 100 }):metadata_file()
    assert.is_nil(v)
    assert.are.equal("too_large", code)
    assert.matches("docs-ready-bridge.json", msg, 1, true)

    write(tmp, "<html>not json</html>")
    v, msg, code = client(tmp):metadata_file()
    assert.is_nil(v)
    assert.are.equal("bad_json", code)
    assert.matches(tmp, msg, 1, true)

    write(tmp, '"READY"')
    assert.are.equal("bad_json", select(3, client(tmp):metadata_file()))
  end)

  it("caches a READY document, never a not-ready one", function()
    write(tmp, read(DIR .. "docs-not-ready.json"))
    local c = client(tmp, { cache_ttl = 60 })
    assert.are.equal("not_ready", select(3, c:metadata_file()))
    write(tmp, read(DIR .. "docs-ready-bridge.json"))
    local a = assert(c:metadata_file())
    write(tmp, read(DIR .. "docs-not-ready.json"))
    assert.are.equal(a, c:metadata_file())
    assert.are.equal(a, c:metadata_file { wait = 1 })
    assert.are.equal("not_ready", select(3, c:metadata_file { cache_ttl = 0 }))
  end)
end)
