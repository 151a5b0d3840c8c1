-- Task scale-in protection through the agent: GET and PUT with the body the
-- agent expects, and every way the agent says no.
local helpers = require "spec.helpers"
local ecs = require "ecs_metadata"
local core = require "ecs_metadata.core"
local cjson = require "cjson"

local E = helpers.endpoint()

local SLACK = helpers.SLACK

local function client(profile, extra)
  return helpers.client({ ECS_AGENT_URI = E .. "/agent/" .. profile }, extra)
end

local function last_put()
  local c = assert(core.http())
  local body, status, headers = assert(c:get(E .. "/_last_put"))
  c:close()
  assert.are.equal(200, status)
  return body, headers
end

describe("ecs.protection and ecs.protect", function()
  before_each(function()
    helpers.reset()
  end)

  it("reads the state", function()
    local p = assert(client("default"):protection())
    assert.is_false(p.ProtectionEnabled)
    assert.is_nil(p.ExpirationDate)
    assert.matches("^arn:aws:ecs:", p.TaskArn)

    p = assert(client("docs"):protection())
    assert.is_true(p.ProtectionEnabled)
    assert.are.equal("2022-10-06T02:29:16Z", p.ExpirationDate)
    assert.are.equal("arn:aws:ecs:us-west-2:111122223333:task/1234567890abcdef0", p.TaskArn)
  end)

  it("sets it with a PUT of the JSON the agent expects", function()
    local c = client("default")
    local p = assert(c:protect(true, 60))
    assert.is_true(p.ProtectionEnabled)
    assert.is_string(p.ExpirationDate)
    local body, headers = last_put()
    assert.are.same({ ProtectionEnabled = true, ExpiresInMinutes = 60 }, cjson.decode(body))
    assert.are.equal("application/json", headers["x-last-put-content-type"])
    assert.matches("/task%-protection/v1/state$", headers["x-last-put-uri"])
    assert.is_true(assert(c:protection()).ProtectionEnabled)

    p = assert(c:protect(true))
    assert.is_true(p.ProtectionEnabled)
    assert.are.same({ ProtectionEnabled = true }, cjson.decode((last_put())))

    p = assert(c:protect(false))
    assert.is_false(p.ProtectionEnabled)
    assert.are.same({ ProtectionEnabled = false }, cjson.decode((last_put())))
    assert.is_false(assert(c:protection()).ProtectionEnabled)

    -- opts may come second when there are no minutes
    assert.is_false(assert(c:protect(false, { timeout = 2 })).ProtectionEnabled)
    assert.is_true(assert(ecs.new { env = { ECS_AGENT_URI = E .. "/agent/default" } })
      :protect(true, 5, { retries = 0 }).ProtectionEnabled)
  end)

  it("refuses minutes ECS would refuse, without asking", function()
    local c = client("default")
    for _, m in ipairs { 0, -5, 2.5, 2881, 0 / 0 } do
      local v, msg, code = c:protect(true, m)
      assert.is_nil(v)
      assert.are.equal("invalid_argument", code)
      assert.matches("minutes", msg, 1, true)
    end
    assert.are.equal(0, helpers.stats().total)
  end)

  it("turns the agent's failure documents into nil, msg, code", function()
    local cases = {
      { "denied", "http_status", 400, "AccessDeniedException: User: arn:aws:sts::" },
      { "throttled", "throttled", 429, "ThrottlingException: Rate exceeded" },
      { "canceled", "http_status", 504,
        "RequestCanceled: Timed out calling Amazon ECS Task Protection API" },
      { "failure", "http_status", 200, "TASK_NOT_VALID" },
      { "notfound", "http_status", 404,
        "ResourceNotFoundException: Failed to find a task for the request" },
      { "lookup500", "http_status", 500, "ServerException: Failed to find a task" },
    }
    for _, case in ipairs(cases) do
      local c = client(case[1], { retries = 0 })
      for _, call in ipairs { "protection", "protect" } do
        local v, msg, code, status
        if call == "protect" then
          v, msg, code, status = c:protect(true, 10)
        else
          v, msg, code, status = c:protection()
        end
        assert.is_nil(v, case[1])
        assert.are.equal(case[2], code, case[1])
        assert.are.equal(case[3], status, case[1])
        assert.matches(case[4], msg, 1, true)
        assert.matches(E .. "/agent/" .. case[1] .. "/task-protection/v1/state", msg, 1, true)
      end
    end
  end)

  it("retries the agent's 5xx and 429 only", function()
    client("lookup500"):protection()
    client("throttled"):protection()
    client("denied"):protection()
    client("failure"):protection()
    local r = helpers.stats().requests
    local path = "/task-protection/v1/state"
    assert.are.equal(3, r["/agent/lookup500" .. path])
    assert.are.equal(3, r["/agent/throttled" .. path])
    assert.are.equal(1, r["/agent/denied" .. path])
    assert.are.equal(1, r["/agent/failure" .. path])
  end)

  it("waits longer than the agent's own 4 s call to ECS by default", function()
    local options = require "ecs_metadata.options"
    assert.is_true(options.DEFAULTS.protection_timeout > 4)
    assert.are.equal(5, assert(ecs.new()).settings.protection_timeout)
    -- An agent that takes 4.2 s: fine for protection, a timeout for task().
    local slow = E .. "/fault/slow?ms=4200#"
    local c = assert(ecs.new { env = { ECS_AGENT_URI = slow, ECS_CONTAINER_METADATA_URI_V4 = slow },
                               retries = 0 })
    local t0 = core.now()
    local v, msg, code = c:protection()
    assert.is_nil(v)                    -- the slow fault serves task metadata,
    assert.are.equal("bad_json", code)  -- which has no protection object
    assert.matches("no protection object", msg, 1, true)
    assert.is_true(core.now() - t0 >= 4.1)
    t0 = core.now()
    assert.are.equal("timeout", select(3, c:task()))
    local took = core.now() - t0
    assert.is_true(took >= 2.9 and took < 3.5 + SLACK, "took " .. took)
  end)

  it("answers not_on_ecs without ECS_AGENT_URI", function()
    local c = assert(ecs.new { env = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate" } })
    local v, msg, code = c:protection()
    assert.is_nil(v)
    assert.are.equal("not_on_ecs", code)
    assert.matches("ECS_AGENT_URI", msg, 1, true)
    assert.are.equal("not_on_ecs", select(3, c:protect(false)))
    assert.are.equal(0, helpers.stats().total)
  end)
end)
