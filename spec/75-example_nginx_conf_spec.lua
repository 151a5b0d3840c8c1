-- examples/nginx.conf as the README shows it, run by nginx against the test
-- endpoint with a task's environment (only its port changed, and the
-- checkout's lua/ and build/ put under the prefix as `nginx -p "$PWD/"`
-- would find them): the task summary as JSON, the Prometheus text, the task
-- id in the access log, and one request per TTL for the node.
local helpers = require "spec.helpers"
local nginx = require "spec.nginx"
local cjson = require "cjson"
local core = require "ecs_metadata.core"

local E = helpers.endpoint()

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("*a")
  f:close()
  return s
end

describe("examples/nginx.conf #nginx", function()
  local n
  local text = read(nginx.ROOT .. "/examples/nginx.conf")

  lazy_setup(function()
    helpers.reset()
    n = nginx.start {
      config = function(_, port)
        local conf, changed = text:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:" .. port .. ";")
        assert(changed == 1, "the example listens elsewhere now")
        return conf
      end,
      ready = "/healthz", pid = "logs/nginx.pid", dirs = { "logs" },
      links = { lua = nginx.ROOT .. "/lua", build = nginx.ROOT .. "/build" },
      -- What endpoint/serve exec --profile v4 gives a command.
      process_env = {
        ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate",
        ECS_CONTAINER_METADATA_URI = E .. "/v3/ec2",
        ECS_AGENT_URI = E .. "/agent/default",
      },
    }
  end)

  lazy_teardown(function()
    if n then
      n:stop()
    end
  end)

  it("is the file the README shows", function()
    local readme = read(nginx.ROOT .. "/README.md")
    local shown = readme:match("\n### examples/nginx%.conf\n.-\n```nginx\n(.-)```\n")
    assert.is_truthy(shown, "README has no examples/nginx.conf block")
    assert.are.equal(text, shown)
  end)

  it("answers the task summary as JSON and the Prometheus text", function()
    local want = cjson.decode(helpers.read("v4-task/docs-2020-fargate-query-metadata.json"))
    local body, status, headers = n:get("/task")
    assert.are.equal(200, status, body)
    assert.matches("application/json", headers["content-type"], 1, true)
    local s = cjson.decode(body)
    assert.are.equal(want.TaskARN, s.task_arn)
    assert.are.equal(want.TaskARN:match("([^/]+)$"), s.task_id)
    assert.are.equal(want.AvailabilityZone, s.availability_zone)
    local metrics
    metrics, status = n:get("/metrics")
    assert.are.equal(200, status)
    assert.matches("\n# TYPE ecs_task_metadata_info gauge\n", metrics, 1, true)
    assert.matches('task_arn="' .. want.TaskARN .. '"', metrics, 1, true)
  end)

  it("writes the task id into the access log", function()
    local id = cjson.decode(helpers.read("v4-task/docs-2020-fargate-query-metadata.json"))
      .TaskARN:match("([^/]+)$")
    assert.are.equal(200, select(2, n:get("/healthz")))
    local log
    for _ = 1, 50 do
      log = read(n.dir .. "/logs/access.log")
      if log:find('"GET /healthz HTTP/1.1" 200 3 task=' .. id, 1, true) then
        break
      end
      core._sleep(0.02)
    end
    assert.matches('"GET /healthz HTTP/1.1" 200 3 task=' .. id, log, 1, true)
  end)

  it("keeps the node at one request per second per path, refreshed in the background", function()
    helpers.reset()
    local t0 = core.now()
    local w = nginx.wrk(n:url("/task"), { seconds = 2, connections = 8 })
    local elapsed = core.now() - t0
    assert.are.equal(0, w.non2xx, w.text)
    for _, path in ipairs { "/v4/fargate/task", "/v4/fargate" } do
      local asked = helpers.requests(path)
      assert.is_true(asked >= 1 and asked <= math.floor(elapsed) + 1 + helpers.SLACK,
                     ("%s: %d in %.2f s"):format(path, asked, elapsed))
    end
    -- refresh_every fetches; the requests never wait for the endpoint.
    assert.is_true(w.p99 < 100, w.text)
  end)
end)
