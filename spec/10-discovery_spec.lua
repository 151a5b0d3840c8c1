-- The Lua layer's discovery, its behaviour outside ECS, and how it treats
-- misuse (raises) and bad option values (invalid_argument).
--
-- The environment is given per spec through the `env` option, which
-- replaces os.getenv for that client; one spec runs a child interpreter
-- with a real environment to check the os.getenv path.
local helpers = require "spec.helpers"
local ecs = require "ecs_metadata"
local core = require "ecs_metadata.core"

local E = helpers.endpoint()
local unpack = table.unpack or unpack

local SLACK = helpers.SLACK

local client = helpers.client

describe("ecs.endpoint", function()
  it("prefers v4, then v3, then the metadata file", function()
    local all = {
      ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate",
      ECS_CONTAINER_METADATA_URI = E .. "/v3/ec2",
      ECS_CONTAINER_METADATA_FILE = "/nonexistent/metadata.json",
    }
    local base, version = client(all):endpoint()
    assert.are.equal(E .. "/v4/fargate", base)
    assert.are.equal("v4", version)

    all.ECS_CONTAINER_METADATA_URI_V4 = nil
    base, version = client(all):endpoint()
    assert.are.equal(E .. "/v3/ec2", base)
    assert.are.equal("v3", version)

    all.ECS_CONTAINER_METADATA_URI = nil
    base, version = client(all):endpoint()
    assert.are.equal("/nonexistent/metadata.json", base)
    assert.are.equal("file", version)
  end)

  it("never discovers v2, and counts an empty variable as unset", function()
    local v, msg, code = client({ ECS_CONTAINER_METADATA_URI_V4 = "" }):endpoint()
    assert.is_nil(v)
    assert.are.equal("not_on_ecs", code)
    assert.matches("ECS_CONTAINER_METADATA_URI_V4", msg, 1, true)
  end)

  it("takes a named version, and v2 from link_local_url", function()
    local env = {
      ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate",
      ECS_CONTAINER_METADATA_URI = E .. "/v3/ec2/",
    }
    local c = client(env)
    local base, version = c:endpoint { version = "v3" }
    assert.are.equal(E .. "/v3/ec2", base)      -- the trailing slash is dropped
    assert.are.equal("v3", version)
    base, version = c:endpoint { version = "v2" }
    assert.are.equal(E .. "/v2", base)
    assert.are.equal("v2", version)
    local _, msg, code = c:endpoint { version = "file" }
    assert.are.equal("not_on_ecs", code)
    assert.matches("ECS_CONTAINER_METADATA_FILE", msg, 1, true)
    base, version = client(env, { version = "v3" }):endpoint()
    assert.are.equal("v3", version)
    assert.are.equal(E .. "/v3/ec2", base)
  end)

  it("defaults link_local_url to the ECS address without contacting it", function()
    local base, version = assert(ecs.new { env = {}, version = "v2" }):endpoint()
    assert.are.equal("http://169.254.170.2/v2", base)
    assert.are.equal("v2", version)
  end)
end)

describe("outside ECS", function()
  local calls = {
    { "container" }, { "task" }, { "task_with_tags" }, { "container_stats" },
    { "task_stats" }, { "metadata_file" }, { "protection" }, { "credentials" },
    { "protect", true, 10 }, { "protect", false },
  }

  it("every function answers not_on_ecs at once and sends nothing", function()
    helpers.reset()
    local c = client({})
    for _, call in ipairs(calls) do
      local name = call[1]
      local t0 = core.now()
      local v, msg, code = c[name](c, unpack(call, 2))
      local took = core.now() - t0
      assert.is_nil(v, name)
      assert.are.equal("not_on_ecs", code, name)
      assert.is_string(msg, name)
      assert.matches(name, msg, 1, true)
      assert.is_true(took < 0.05 + SLACK, name .. " took " .. took .. " s")
    end
    -- The same through opts, which rediscovers.
    for _, call in ipairs(calls) do
      if call[1] ~= "protect" then
        local _, _, code = c[call[1]](c, { timeout = 1 })
        assert.are.equal("not_on_ecs", code, call[1])
      end
    end
    assert.are.equal(0, helpers.stats().total)
  end)

  it("is what the module's default client says in this environment", function()
    -- endpoint/serve never passes ECS_* or AWS_CONTAINER_* on.
    for _, name in ipairs { "ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI",
                            "ECS_CONTAINER_METADATA_FILE", "ECS_AGENT_URI" } do
      assert.is_nil(os.getenv(name), name .. " reached the specs")
    end
    local v, msg, code = ecs.task()
    assert.is_nil(v)
    assert.are.equal("not_on_ecs", code)
    assert.matches("not on ECS", msg, 1, true)
    assert.are.equal("not_on_ecs", select(3, ecs.container()))
    assert.are.equal("not_on_ecs", select(3, ecs.endpoint()))
  end)

  it("only the metadata file: container() reads it, task() is invalid_argument", function()
    local c = client({
      ECS_CONTAINER_METADATA_FILE = "spec/fixtures/metadata-file/docs-ready-bridge.json",
    })
    local doc = assert(c:container())
    assert.are.equal("READY", doc.MetadataFileStatus)
    for _, name in ipairs { "task", "task_with_tags", "container_stats", "task_stats" } do
      local v, msg, code = c[name](c)
      assert.is_nil(v)
      assert.are.equal("invalid_argument", code, name)
      assert.matches("^" .. name .. ": ", msg)
      assert.matches("metadata file", msg, 1, true)
    end
  end)
end)

describe("the real environment", function()
  it("is read with os.getenv when no env option is given", function()
    local out, status, err = helpers.run_lua([[
      local ecs = require "ecs_metadata"
      local t, msg = ecs.task()
      local _, version = ecs.endpoint()
      io.write(tostring(version), " ", t and t.Family or msg)
    ]], { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate" })
    assert.are.equal(0, status, err)
    assert.are.equal("v4 query-metadata", out)

    out, status, err = helpers.run_lua([[
      local ecs = require "ecs_metadata"
      local _, _, code = ecs.task()
      io.write(code)
    ]], { ECS_CONTAINER_METADATA_URI_V4 = false, ECS_CONTAINER_METADATA_URI = false,
          ECS_CONTAINER_METADATA_FILE = false })
    assert.are.equal(0, status, err)
    assert.are.equal("not_on_ecs", out)
  end)
end)

describe("misuse", function()
  local c = client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate" })

  it("raises like luaL_argerror for wrong argument types", function()
    local ok, err = pcall(ecs.task, "x")
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'task' (table expected, got string)", err, 1, true)
    ok, err = pcall(ecs.new, 42)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'new' (table or nil expected, got number)", err, 1, true)
    ok, err = pcall(c.protect, c, nil)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'protect' (boolean expected, got nil)", err, 1, true)
    ok, err = pcall(ecs.protect, "yes")
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'protect' (boolean expected, got string)", err, 1, true)
    ok, err = pcall(c.protect, c, true, "5")
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'protect' (number or nil expected, got string)", err, 1, true)
    ok, err = pcall(c.task, c, { timeout = "1" })
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'task' (option 'timeout': number expected, got string)",
                   err, 1, true)
    ok, err = pcall(ecs.new, { env = "x" })
    assert.is_false(ok)
    assert.matches("option 'env': table expected, got string", err, 1, true)
  end)

  -- PUC 5.1 counts a tail call as a level of its own, so there the error
  -- has no position; elsewhere it names this file.
  local function at_caller(err, what)
    if _VERSION == "Lua 5.1" and not jit then
      assert.matches(what, err, 1, true)
    else
      assert.matches("10%-discovery_spec%.lua:%d+: " .. what:gsub("%p", "%%%0"), err)
    end
  end

  it("points the error at the caller", function()
    local ok, err = pcall(function()
      local v = c:task(7)
      return v
    end)
    assert.is_false(ok)
    at_caller(err, "bad argument")
    ok, err = pcall(function()
      local v = ecs.protect(1)
      return v
    end)
    assert.is_false(ok)
    at_caller(err, "bad argument #1 to 'protect'")
    ok, err = pcall(function()
      local v = c:metadata_file { wait = "1" }
      return v
    end)
    assert.is_false(ok)
    at_caller(err, "bad argument #1 to 'metadata_file'")
    ok, err = pcall(function()
      local v = ecs.new { retries = "1" }
      return v
    end)
    assert.is_false(ok)
    at_caller(err, "bad argument #1 to 'new'")
  end)

  it("raises for an unknown version", function()
    local ok, err = pcall(ecs.new, { version = "v5" })
    assert.is_false(ok)
    assert.matches("unknown version 'v5'", err, 1, true)
    ok, err = pcall(c.task, c, { version = "V4" })
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'task' (unknown version 'V4'", err, 1, true)
  end)

  it("answers invalid_argument for bad option values", function()
    local cases = {
      { timeout = 0 }, { timeout = -1 }, { timeout = 0 / 0 }, { connect_timeout = 0 },
      { retries = -1 }, { retries = 1.5 }, { max_bytes = 0 }, { max_bytes = 2.5 },
      { link_local_url = "ftp://127.0.0.1" }, { link_local_url = "169.254.170.2" },
      { protection_timeout = 0 }, { cache_ttl = -1 },
    }
    for _, opts in ipairs(cases) do
      local v, msg, code = ecs.new(opts)
      assert.is_nil(v)
      assert.are.equal("invalid_argument", code)
      assert.matches("^new: ", msg)
    end
    local v, msg, code = c:task { timeout = -1 }
    assert.is_nil(v)
    assert.are.equal("invalid_argument", code)
    assert.are.equal("task: timeout must be a positive number of seconds up to 86400", msg)
    assert.are.equal("invalid_argument", select(3, c:metadata_file { wait = -1 }))
    assert.are.equal("invalid_argument", select(3, c:task_stats { cache_ttl = -1 }))
    assert.are.equal("invalid_argument", select(3, c:credentials { retries = -1 }))
    assert.are.equal("invalid_argument", select(3, c:protect(true, 5, { timeout = 0 })))
  end)

  it("answers invalid_argument for a url the transport cannot use", function()
    helpers.reset()
    local v, msg, code = client({ ECS_CONTAINER_METADATA_URI_V4 = "not a url" }):task()
    assert.is_nil(v)
    assert.are.equal("invalid_argument", code)
    assert.is_string(msg)
    assert.are.equal(0, helpers.stats().total)
  end)
end)
