-- The option schema: one definition per option, checked in one place, the
-- same for every public entry point. Unknown options and wrong types raise
-- at the caller's line; values out of range answer invalid_argument; and
-- arguments are checked before the environment is read.
local helpers = require "spec.helpers"
local ecs = require "ecs_metadata"
local options = require "ecs_metadata.options"

local E = helpers.endpoint()

local env = {
  ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate",
  ECS_AGENT_URI = E .. "/agent/default",
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/fresh",
}

local c = helpers.client(env)

-- Every public entry point that takes options, as a function of the options
-- table, so each can be called from a line of this file.
local entries = {
  { "new", function(o) local a, b, k = ecs.new(o); return a, b, k end },
  { "Fargate", function(o) local a, b, k = ecs.Fargate(o); return a, b, k end },
  { "container", function(o) local a, b, k = ecs.container(o); return a, b, k end },
  { "task", function(o) local a, b, k = ecs.task(o); return a, b, k end },
  { "task_with_tags", function(o) local a, b, k = ecs.task_with_tags(o); return a, b, k end },
  { "container_stats", function(o) local a, b, k = ecs.container_stats(o); return a, b, k end },
  { "task_stats", function(o) local a, b, k = ecs.task_stats(o); return a, b, k end },
  { "metadata_file", function(o) local a, b, k = ecs.metadata_file(o); return a, b, k end },
  { "protection", function(o) local a, b, k = ecs.protection(o); return a, b, k end },
  { "protect", function(o) local a, b, k = ecs.protect(true, 5, o); return a, b, k end },
  { "credentials", function(o) local a, b, k = ecs.credentials(o); return a, b, k end },
  { "endpoint", function(o) local a, b, k = ecs.endpoint(o); return a, b, k end },
  { "container", function(o) local a, b, k = c:container(o); return a, b, k end },
  { "task", function(o) local a, b, k = c:task(o); return a, b, k end },
  { "task_with_tags", function(o) local a, b, k = c:task_with_tags(o); return a, b, k end },
  { "container_stats", function(o) local a, b, k = c:container_stats(o); return a, b, k end },
  { "task_stats", function(o) local a, b, k = c:task_stats(o); return a, b, k end },
  { "metadata_file", function(o) local a, b, k = c:metadata_file(o); return a, b, k end },
  { "protection", function(o) local a, b, k = c:protection(o); return a, b, k end },
  { "protect", function(o) local a, b, k = c:protect(false, o); return a, b, k end },
  { "credentials", function(o) local a, b, k = c:credentials(o); return a, b, k end },
  { "endpoint", function(o) local a, b, k = c:endpoint(o); return a, b, k end },
}

-- Runs f(o) and answers the error it raised and the line the call to the
-- library is on (each entry above makes its call on the line it starts).
local function raised(f, o)
  local ok, err = pcall(function() local v = f(o); return v end)
  assert.is_false(ok, "did not raise")
  return err, debug.getinfo(f, "S").linedefined
end

describe("the option schema", function()
  it("raises for an unknown option, with a hint, at the caller's line", function()
    for _, e in ipairs(entries) do
      local err, line = raised(e[2], { timout = 1 })
      assert.matches("19%-options_spec%.lua:" .. line .. ": ", err, nil, false)
      assert.matches("bad argument #%d to '" .. e[1] .. "' %(unknown option 'timout' "
                     .. "%(did you mean 'timeout'%?%)%)", err)
    end
    local err = raised(ecs.new, { zzzzzz = true })
    assert.matches("unknown option 'zzzzzz')", err, 1, true)   -- no hint when nothing is close
  end)

  it("raises for a wrong type with one wording, at the caller's line", function()
    for _, e in ipairs(entries) do
      local err, line = raised(e[2], { retries = "2" })
      assert.matches("19%-options_spec%.lua:" .. line .. ": ", err)
      assert.matches("bad argument #%d to '" .. e[1]
                     .. "' %(option 'retries': number expected, got string%)", err)
    end
  end)

  it("raises for an option given in the wrong scope", function()
    for _, e in ipairs(entries) do
      if e[1] ~= "new" and e[1] ~= "Fargate" then
        local err, line = raised(e[2], { keep_null = true })
        assert.matches("19%-options_spec%.lua:" .. line .. ": ", err)
        assert.matches("option 'keep_null' is set per client (ecs.new), not per call", err, 1, true)
      end
    end
    local err = raised(ecs.new, { container_id = "abc" })
    assert.matches("option 'container_id' is set per call, not per client", err, 1, true)
    err = raised(function(o) return c:task(o) end, { cache_ttl = { task = 1 } })
    assert.matches("option 'cache_ttl': number expected per call, got table", err, 1, true)
  end)

  it("answers invalid_argument for a value out of range, upper bounds included", function()
    local bad = {
      { timeout = 0 }, { timeout = options.MAX_SECONDS + 1 }, { connect_timeout = -1 },
      { retries = options.MAX_RETRIES + 1 }, { retries = 0.5 }, { max_bytes = 0 },
      { max_bytes = options.MAX_BYTES + 1 }, { error_ttl = -1 }, { stale_ttl = 1e12 },
      { cache_ttl = -1 }, { link_local_url = "http://" }, { timeout = 0 / 0 },
    }
    for _, e in ipairs(entries) do
      for _, o in ipairs(e[1] == "Fargate" and {} or bad) do
        local v, msg, code = e[2](o)
        assert.is_nil(v)
        assert.are.equal("invalid_argument", code, e[1])
        assert.matches("^" .. e[1] .. ": ", msg)
      end
    end
    for _, o in ipairs { { max_depth = options.MAX_DEPTH + 1 }, { max_depth = 1e10 },
                         { protection_timeout = 0 } } do
      local v, msg, code = ecs.new(o)
      assert.is_nil(v)
      assert.are.equal("invalid_argument", code)
      assert.matches("^new: ", msg)
    end
    -- Fargate raises its failures by default, and logs them otherwise.
    local ok, err = pcall(ecs.Fargate, { timeout = 0 })
    assert.is_false(ok)
    assert.matches("^Fargate: timeout must be", err)
  end)

  it("never lets a value ecs.new accepted make a later call raise", function()
    local at_max = helpers.client(env, {
      max_depth = options.MAX_DEPTH, timeout = 2, max_bytes = options.MAX_BYTES,
      retries = options.MAX_RETRIES, error_ttl = options.MAX_SECONDS,
      stale_ttl = options.MAX_SECONDS,
    })
    assert.is_table(assert(at_max:task()))
    assert.is_table(assert(at_max:container_stats()))
    assert.is_table(assert(at_max:protection()))
    assert.is_table(assert(at_max:credentials()))
  end)

  it("checks the arguments before the environment", function()
    local outside = ecs.new { env = {} }
    local v, msg, code = outside:protect(true, 5000)
    assert.is_nil(v)
    assert.are.equal("invalid_argument", code)
    assert.matches("^protect: minutes", msg)
    v, msg, code = outside:task { timeout = -1 }
    assert.is_nil(v)
    assert.are.equal("invalid_argument", code)
    assert.matches("^task: timeout", msg)
    assert.has_error(function() outside:task { timout = 1 } end)
    assert.are.equal("not_on_ecs", select(3, outside:task()))
  end)

  it("defines each default once: what a new client has is the table", function()
    local s = assert(ecs.new()).settings
    for name, default in pairs(options.DEFAULTS) do
      assert.are.equal(default, s[name], name)
    end
    assert.are.equal(3, options.DEFAULTS.timeout)
    assert.are.equal(1, options.DEFAULTS.error_ttl)
    assert.are.equal(0, options.DEFAULTS.stale_ttl)
    for what, ttl in pairs(options.DEFAULT_CACHE_TTL) do
      assert.are.equal(ttl, s.cache_ttl[what], what)
    end
  end)

  it("lets Fargate take its own options and no unknown one", function()
    assert.is_table(ecs.Fargate { raise_errors = false, logger = false, timeout = 1 })
    local err = raised(ecs.Fargate, { raise_error = false })
    assert.matches("unknown option 'raise_error' (did you mean 'raise_errors'?)", err, 1, true)
  end)
end)
