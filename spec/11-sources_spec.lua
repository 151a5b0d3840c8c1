-- Every metadata source of the Lua layer against the real endpoint: v4, v3
-- and v2 through their profiles, and every fixture through /each, each
-- result checked against lua-cjson's decoding of the bytes served (apart
-- from integers, which ours keeps exact, and null, which ours drops from
-- objects and keeps as ecs.null in arrays).
local helpers = require "spec.helpers"
local ecs = require "ecs_metadata"
local cjson = require "cjson"

local E = helpers.endpoint()

local function client(env, extra)
  return helpers.client(env, { cache_ttl = 0 }, extra)
end

local function fixture(rel)
  local f = assert(io.open("spec/fixtures/" .. rel, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- True if ours (our decoder's value) agrees with ref (cjson's), else false
-- and where they part.
local function agrees(ours, ref, path)
  path = path or "$"
  if ref == cjson.null then
    if ours == ecs.null then
      return true
    end
    return false, path .. ": ecs.null expected, got " .. tostring(ours)
  end
  local t = type(ref)
  if t == "number" then
    if type(ours) ~= "number" or ours + 0.0 ~= ref + 0.0 then
      return false, path .. ": " .. tostring(ours) .. " ~= " .. tostring(ref)
    end
    return true
  end
  if t ~= "table" then
    if ours ~= ref then
      return false, path .. ": " .. tostring(ours) .. " ~= " .. tostring(ref)
    end
    return true
  end
  if type(ours) ~= "table" then
    return false, path .. ": table expected, got " .. type(ours)
  end
  for k, v in pairs(ref) do
    local sub = path .. "." .. tostring(k)
    if v == cjson.null and type(k) == "string" then
      if ours[k] ~= nil then
        return false, sub .. ": a null member must be absent"
      end
    else
      local ok, why = agrees(ours[k], v, sub)
      if not ok then
        return false, why
      end
    end
  end
  for k in pairs(ours) do
    if ref[k] == nil then
      return false, path .. ": extra key " .. tostring(k)
    end
  end
  return true
end

local function assert_agrees(ours, rel)
  local ok, why = agrees(ours, cjson.decode(fixture(rel)))
  assert(ok, rel .. ": " .. tostring(why))
end

local profiles = {
  ["/v4/fargate"] = {
    container = "v4-container/docs-2020-fargate-query-metadata.json",
    task = "v4-task/docs-2020-fargate-query-metadata.json",
    task_with_tags = "v4-task/docs-taskwithtags.json",
    container_stats = "v4-stats/docs-2020-fargate-query-metadata.json",
    task_stats = "v4-task-stats/docs-2020-fargate-query-metadata.json",
  },
  ["/v4/ec2"] = {
    container = "v4-container/docs-ec2-awsvpc-curl.json",
    task = "v4-task/docs-ec2-awsvpc-curltest.json",
    task_with_tags = "v4-task/docs-taskwithtags-errors.json",
    container_stats = "v4-stats/docs-ec2-awsvpc-curl.json",
    task_stats = "v4-task-stats/docs-ec2-awsvpc-curltest.json",
  },
  ["/v3/ec2"] = {
    container = "v3-container/docs-ec2-awsvpc-nginx-curl.json",
    task = "v3-task/docs-2018-ec2-awsvpc-nginx-no-az.json",
    container_stats = "v3-stats/ecs-agent-unix-test-stats.json",
    task_stats = "v4-task-stats/docs-ec2-awsvpc-curltest.json",
  },
}

describe("task metadata endpoints v4 and v3", function()
  for base, sources in pairs(profiles) do
    it("answers every source of " .. base, function()
      local env = base:match("^/v4") and "ECS_CONTAINER_METADATA_URI_V4"
        or "ECS_CONTAINER_METADATA_URI"
      local c = client({ [env] = E .. base })
      for name, rel in pairs(sources) do
        local v, msg, code = c[name](c)
        assert(v ~= nil, name .. ": " .. tostring(msg) .. " " .. tostring(code))
        assert_agrees(v, rel)
      end
    end)
  end

  it("keeps the Errors of /taskWithTags next to the data", function()
    local t = assert(client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/ec2" }):task_with_tags())
    assert.is_string(t.TaskARN)
    assert.are.equal(2, #t.Errors)
    assert.are.equal("AccessDeniedException", t.Errors[1].ErrorCode)
    assert.are.equal("ContainerInstanceTags", t.Errors[1].ErrorField)
  end)

  it("asks v3 for /taskWithTags like v4 (the agent serves it on both)", function()
    helpers.reset()
    local t = assert(client({ ECS_CONTAINER_METADATA_URI = E .. "/v3/ec2" }):task_with_tags())
    assert.are.equal("task-metadata-endpoint-test", t.TaskTags["tag-use"])
    assert.are.equal("tag_value", t.ContainerInstanceTags.tag_key)
    assert.are.equal(1, helpers.stats().requests["/v3/ec2/taskWithTags"])
  end)

  it("gives the agent's JSON-string error in the message", function()
    local v, msg, code, status = client({
      ECS_CONTAINER_METADATA_URI_V4 = E .. "/fault/404",
    }):task()
    assert.is_nil(v)
    assert.are.equal("http_status", code)
    assert.are.equal(404, status)
    assert.matches("V4 task metadata handler: unable to get task arn from request", msg, 1, true)
  end)

  it("leaves a stopped container's null out of the task stats map", function()
    local base = E .. "/each/v4-task-stats/ecs-exporter-fargate"
    local stats = assert(client({ ECS_CONTAINER_METADATA_URI_V4 = base }):task_stats())
    assert.is_nil(stats["bae32def0ab64f06818e8862e58f8d6d-1585788040"])
    assert.is_table(stats["bae32def0ab64f06818e8862e58f8d6d-1819985369"])
    local n = 0
    for _ in pairs(stats) do
      n = n + 1
    end
    assert.are.equal(2, n)
  end)

  it("keeps integers exact where the Lua has them", function()
    local base = E .. "/each/v4-task-stats/ecs-exporter-fargate"
    local stats = assert(client({ ECS_CONTAINER_METADATA_URI_V4 = base }):task_stats())
    local s = stats["bae32def0ab64f06818e8862e58f8d6d-1819985369"]
    if math.type then
      assert.are.equal("integer", math.type(s.memory_stats.limit))
      assert.are.equal(9223372036854771712, s.memory_stats.limit)
    else
      assert.are.equal(2 ^ 63 - 4096, s.memory_stats.limit)
    end
  end)

  it("reuses one connection between calls", function()
    local c = client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate" })
    helpers.reset()
    for _ = 1, 20 do
      assert(c:task())
      assert(c:container_stats())
    end
    local stats = helpers.stats()
    assert.are.equal(40, stats.total)
    local n = 0
    for _ in pairs(stats.connections) do
      n = n + 1
    end
    assert.are.equal(1, n)
  end)

  it("hands the decoder options on", function()
    local c = client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate" },
                     { array_mt = cjson.array_mt, keep_null = true })
    local t = assert(c:task())
    assert.are.equal(cjson.array_mt, getmetatable(t.Containers))
    local c2 = client({ ECS_CONTAINER_METADATA_URI_V4 =
                          E .. "/each/v4-task-stats/ecs-exporter-fargate" },
                      { keep_null = true })
    local stats = assert(c2:task_stats())
    assert.are.equal(ecs.null, stats["bae32def0ab64f06818e8862e58f8d6d-1585788040"])
  end)
end)

describe("task metadata endpoint v2", function()
  local ids = {
    "731a0d6a3b4210e2448339bc7015aaa79bfe4fa256384f4102db86ef94cbbc4c",
    "43481a6ce4842eec8fe72fc28500c6b52edcc0917f105b83379f88cac1ff3946",
  }
  local c = client({}, { version = "v2" })

  it("answers the task and its stats", function()
    assert_agrees(assert(c:task()), "v2-metadata/docs-task-ec2-awsvpc-nginx.json")
    assert_agrees(assert(c:task_stats()),
                  "v2-stats/datadog-integrations-fargate-2017-task-stats.json")
  end)

  it("answers one container's metadata and stats by container_id", function()
    local ref = cjson.decode(fixture("v2-metadata/docs-task-ec2-awsvpc-nginx.json"))
    for i, id in ipairs(ids) do
      local m = assert(c:container { container_id = id })
      assert(agrees(m, ref.Containers[i]))
    end
    local sref = cjson.decode(fixture("v2-stats/datadog-integrations-fargate-2017-task-stats.json"))
    local id = "39e13ccc425e7777187a603fe33f466a18515030707c4063de1dc1b63d14d411"
    assert(agrees(assert(c:container_stats { container_id = id }), sref[id]))
  end)

  it("needs a container_id for the per-container forms", function()
    helpers.reset()
    for _, name in ipairs { "container", "container_stats" } do
      local v, msg, code = c[name](c)
      assert.is_nil(v)
      assert.are.equal("invalid_argument", code)
      assert.matches("container_id", msg, 1, true)
      assert.are.equal("invalid_argument", select(3, c[name](c, { container_id = "../x" })))
    end
    assert.are.equal(0, helpers.stats().total)
    local v, msg, code = c:container { container_id = "0123abc" }
    assert.is_nil(v)
    assert.are.equal("http_status", code)
    assert.matches("no container 0123abc", msg, 1, true)
  end)

  it("serves the task with tags at /v2/metadataWithTags", function()
    helpers.reset()
    local t = assert(c:task_with_tags())
    assert.is_table(t.Containers)
    assert.are.equal(1, helpers.stats().requests["/v2/metadataWithTags"])
  end)

  it("is used through a per-call version too", function()
    local c4 = client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate" })
    assert_agrees(assert(c4:task { version = "v2" }), "v2-metadata/docs-task-ec2-awsvpc-nginx.json")
    assert_agrees(assert(c4:task()), "v4-task/docs-2020-fargate-query-metadata.json")
  end)
end)

describe("every fixture", function()
  it("comes back as lua-cjson reads it, through task() and container()", function()
    local fixtures = helpers.fixtures()
    assert.is_true(#fixtures >= 50)
    local c = client({})
    for _, f in ipairs(fixtures) do
      local base = E .. "/each/" .. f.dir .. "/" .. f.name
      local ref = cjson.decode(f.body)
      for _, name in ipairs { "task", "container" } do
        local v, msg = c[name](c, { env = { ECS_CONTAINER_METADATA_URI_V4 = base } })
        assert(v ~= nil, f.path .. ": " .. tostring(msg))
        local ok, why = agrees(v, ref)
        assert(ok, f.path .. ": " .. tostring(why))
      end
    end
  end)
end)
