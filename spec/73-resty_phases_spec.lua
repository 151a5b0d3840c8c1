-- The public API in a real nginx with 4 workers (spec/nginx.lua) against the
-- test endpoint: what each function does in each phase, init_by_lua's fetch
-- kept for the workers and never shared unsafely with them, zero crossed
-- answers with the cache off, refresh_every's one timer for the node, the
-- env lines a worker needs, and the metadata file's wait under ngx.sleep.
local helpers = require "spec.helpers"
local nginx = require "spec.nginx"
local cjson = require "cjson"
local core = require "ecs_metadata.core"

local E = helpers.endpoint()
local SLACK = helpers.SLACK

local TASK_ARN = cjson.decode(helpers.read("v4-task/docs-ec2-awsvpc-curltest.json")).TaskARN
local DOCKER_ID = cjson.decode(helpers.read("v4-container/docs-ec2-awsvpc-curl.json")).DockerId

-- The agent sends large documents chunked: so does the endpoint here.
local BASE = "/chunked/v4/ec2"

local ENV = {
  ECS_CONTAINER_METADATA_URI_V4 = E .. BASE,
  ECS_AGENT_URI = E .. "/agent/default",
  AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/creds/full",
  AWS_CONTAINER_AUTHORIZATION_TOKEN = "TEST-AUTH-do-not-log",
}

local function sleep(s)
  core._sleep(s)
end

local count = helpers.requests

-- RECORD(phase, id, src, ttl) answers one call of ecs[src] as a line and
-- keeps it in the results dict under id:phase.
local HTTP = [[
    init_by_lua_block {
        local ecs = require "ecs_metadata"
        local t, msg = ecs.task { cache_ttl = 60 }
        INIT = { arn = t and t.TaskARN, msg = msg }
        function ANSWER(src, ttl)
            local ecs = require "ecs_metadata"
            local v, msg, code = ecs[src] { cache_ttl = ttl }
            if v == nil then
                return tostring(code) .. " " .. tostring(msg)
            end
            return "ok " .. tostring(v.TaskARN or v.DockerId or v.AccessKeyId
                                     or (v.protection and "protection") or "?")
        end
        function RECORD(phase, id, src, ttl)
            local line = ANSWER(src, ttl)
            ngx.shared.results:set(id .. ":" .. phase, line)
            return line
        end
    }
    init_worker_by_lua_block {
        ngx.shared.results:set("init_worker:" .. ngx.worker.pid(), ANSWER("task", 60))
        ngx.shared.results:set("init_worker_stats:" .. ngx.worker.pid(),
                               ANSWER("task_stats", 0))
    }
    upstream backend {
        server 127.0.0.1:1;
        balancer_by_lua_block {
            local v = ngx.var
            RECORD("balancer", v.arg_id, v.arg_src, tonumber(v.arg_ttl))
            assert(require("ngx.balancer").set_current_peer("127.0.0.1", @PORT2@))
        }
    }
    server {
        listen 127.0.0.1:@PORT2@;
        location / { return 204; }
    }
]]

local SERVER = [[
    location = /phases {
        set_by_lua_block $set_answer {
            local v = ngx.var
            return RECORD("set", v.arg_id, v.arg_src, tonumber(v.arg_ttl))
        }
        rewrite_by_lua_block {
            local v = ngx.var
            RECORD("rewrite", v.arg_id, v.arg_src, tonumber(v.arg_ttl))
        }
        access_by_lua_block {
            local v = ngx.var
            RECORD("access", v.arg_id, v.arg_src, tonumber(v.arg_ttl))
        }
        content_by_lua_block {
            local v = ngx.var
            local id, src, ttl = v.arg_id, v.arg_src, tonumber(v.arg_ttl)
            RECORD("content", id, src, ttl)
            local sema = require("ngx.semaphore").new()
            ngx.timer.at(0, function()
                RECORD("timer", id, src, ttl)
                sema:post()
            end)
            sema:wait(10)
            ngx.say("done")
        }
        header_filter_by_lua_block {
            local v = ngx.var
            RECORD("header_filter", v.arg_id, v.arg_src, tonumber(v.arg_ttl))
        }
        body_filter_by_lua_block {
            if ngx.arg[2] then
                local v = ngx.var
                RECORD("body_filter", v.arg_id, v.arg_src, tonumber(v.arg_ttl))
            end
        }
        log_by_lua_block {
            local v = ngx.var
            RECORD("log", v.arg_id, v.arg_src, tonumber(v.arg_ttl))
        }
    }
    location = /creds {
        content_by_lua_block {
            local ecs = require "ecs_metadata"
            local c = ecs
            if ngx.var.arg_shared == "1" then
                SHARED_CREDS = SHARED_CREDS or assert(ecs.new { shared_credentials = true })
                c = SHARED_CREDS
            end
            local cr, msg, code = c == ecs and ecs.credentials() or c:credentials()
            if not cr then ngx.status = 503 return ngx.say(code, " ", msg) end
            ngx.say(cr.AccessKeyId, " ", tostring(cr))
        }
    }
    location = /dict_text {
        content_by_lua_block {
            local d = ngx.shared.ecs_metadata
            local out = {}
            for _, k in ipairs(d:get_keys(0)) do
                out[#out + 1] = k .. "=" .. tostring(d:get(k))
            end
            ngx.print(table.concat(out, "\n"))
        }
    }
    location = /balanced {
        proxy_pass http://backend;
    }
    location = /results {
        content_by_lua_block {
            local cjson = require "cjson"
            local d = ngx.shared.results
            local out = {}
            for _, k in ipairs(d:get_keys(0)) do
                out[k] = d:get(k)
            end
            out.INIT_arn = INIT.arn
            out.INIT_msg = INIT.msg
            ngx.say(cjson.encode(out))
        }
    }
    # The cache off, two documents: a crossed answer is a 500.
    location = /task_off {
        content_by_lua_block {
            local t = require("ecs_metadata").task { cache_ttl = 0 }
            if not t then ngx.exit(503) end
            if not t.Containers then ngx.exit(500) end
            ngx.say(t.TaskARN)
        }
    }
    location = /container_off {
        content_by_lua_block {
            local c = require("ecs_metadata").container { cache_ttl = 0 }
            if not c then ngx.exit(503) end
            if c.Containers or not c.DockerId then ngx.exit(500) end
            ngx.say(c.DockerId)
        }
    }
]]

local server

local function results()
  return cjson.decode((server:get("/results")))
end

local function env_lines()
  local e = {}
  for k, v in pairs(ENV) do
    e[k] = v
  end
  return e
end

describe("under nginx, with 4 workers #nginx", function()
  lazy_setup(function()
    helpers.reset()
    server = nginx.start { workers = 4, ports = 1, env = env_lines(),
                           dicts = { ecs_metadata = "1m", results = "1m" },
                           http = HTTP, server = SERVER }
  end)

  lazy_teardown(function()
    if server then
      server:stop()
    end
  end)

  it("keeps what init_by_lua fetched for every worker, and fetches nothing again", function()
    local r = results()
    assert.are.equal(TASK_ARN, r.INIT_arn, r.INIT_msg)
    -- Each worker's init_worker found it in the dict already.
    local workers = 0
    for k, v in pairs(r) do
      if k:match("^init_worker:") then
        workers = workers + 1
        assert.are.equal("ok " .. TASK_ARN, v)
      end
    end
    assert.are.equal(4, workers)
    for _ = 1, 16 do
      local body, status = server:get_new("/phases?id=init&src=task&ttl=60")
      assert.are.equal(200, status, body)
    end
    assert.are.equal(1, count(BASE .. "/task"))
  end)

  it("answers from the cache in every phase, cosockets where there are some", function()
    helpers.reset()
    for _, src in ipairs { "task", "container", "task_stats" } do
      -- The first request's set phase finds nothing yet (see the next test).
      assert.are.equal(200, select(2, server:get("/phases?id=first&src=" .. src .. "&ttl=60")))
      local id = "warm-" .. src
      assert.are.equal(200, select(2, server:get("/phases?id=" .. id .. "&src=" .. src
                                                  .. "&ttl=60")))
      assert.are.equal(204, select(2, server:get("/balanced?id=" .. id .. "&src=" .. src
                                                  .. "&ttl=60")))
    end
    sleep(0.1)
    local r = results()
    for _, phase in ipairs { "set", "rewrite", "access", "content", "timer", "header_filter",
                             "body_filter", "log", "balancer" } do
      assert.are.equal("ok " .. TASK_ARN, r["warm-task:" .. phase], phase)
      assert.are.equal("ok " .. DOCKER_ID, r["warm-container:" .. phase], phase)
      assert.are.equal("ok ?", r["warm-task_stats:" .. phase], phase)
    end
    -- Each document was asked for once, for the whole node.
    assert.are.equal(1, count(BASE .. "/task/stats"))
    assert.are.equal(1, count(BASE))
  end)

  it("with nothing cached, answers not_ready in a phase without I/O and fetches in a timer", function()
    helpers.reset()
    -- stats with a ttl, asked first in the log phase of a static answer
    local _, status = server:get("/balanced?id=cold&src=container_stats&ttl=30")
    assert.are.equal(204, status)
    sleep(0.2)
    local r = results()
    assert.matches("^not_ready container_stats: not in the cache yet, and nginx's balancer "
                   .. "phase cannot wait for the endpoint; a fetch has been scheduled",
                   r["cold:balancer"])
    -- The timer fetched it: every phase of the next request finds it.
    assert.are.equal(200, select(2, server:get("/phases?id=cold2&src=container_stats&ttl=30")))
    sleep(0.1)
    r = results()
    for _, phase in ipairs { "set", "content", "log" } do
      assert.matches("^ok ", r["cold2:" .. phase], phase)
    end
    assert.are.equal(1, count(BASE .. "/stats"))
  end)

  it("refuses an uncached call where no I/O may happen, and never blocks there", function()
    helpers.reset()
    assert.are.equal(200, select(2, server:get("/phases?id=off&src=task_stats&ttl=0")))
    sleep(0.1)
    local r = results()
    for _, phase in ipairs { "rewrite", "access", "content", "timer" } do
      assert.are.equal("ok ?", r["off:" .. phase], phase)
    end
    for _, phase in ipairs { "set", "header_filter", "body_filter", "log" } do
      assert.matches("^invalid_argument task_stats: nginx's " .. phase .. " phase cannot do I/O",
                     r["off:" .. phase], phase)
    end
    for k, v in pairs(r) do
      if k:match("^init_worker_stats:") then
        assert.matches("^invalid_argument task_stats: nginx's init_worker phase cannot do I/O", v)
      end
    end
    assert.are.equal(4, count(BASE .. "/task/stats"))
  end)

  it("keeps credentials out of the shared dict unless the client opts in", function()
    helpers.reset()
    local secret = "TEST-SECRET-do-not-log"
    for _ = 1, 8 do
      local body, status = server:get_new("/creds")
      assert.are.equal(200, status, body)
      assert.matches("^ASIA", body)
      assert.is_nil(body:find(secret, 1, true))
    end
    local text = server:get("/dict_text")
    assert.is_nil(text:find(secret, 1, true))
    assert.is_nil(text:find("credentials", 1, true))
    -- Each worker fetched its own: more than one request for 8 answers.
    local own = count("/creds/full")
    assert.is_true(own >= 2 and own <= 4, own .. " requests")
    helpers.reset()
    for _ = 1, 8 do
      assert.are.equal(200, select(2, server:get_new("/creds?shared=1")))
    end
    text = server:get("/dict_text")
    assert.matches(secret, text, 1, true)
    -- With the dict, the node asked once.
    assert.are.equal(1, count("/creds/full"))
  end)

  it("gives zero crossed answers with the cache off, after init_by_lua fetched", function()
    helpers.reset()
    local out = os.tmpname()
    -- Two wrk runs at once, one per location, on 4 workers.
    local cmd = nginx.wrk_command("-t1 -c16 -d3s " .. server:url("/container_off"))
      .. " > " .. out .. " 2>&1 &"
    assert(os.execute(cmd))
    local t = nginx.wrk(server:url("/task_off"), { seconds = 3, connections = 16 })
    sleep(0.5)
    local f = assert(io.open(out))
    local text = f:read("*a")
    f:close()
    os.remove(out)
    assert.are.equal(0, t.non2xx, t.text)
    assert.is_true(t.requests > 100, t.text)
    assert.is_nil(text:find("Non-2xx", 1, true), text)
    local c = tonumber(text:match("(%d+) requests in"))
    assert.is_true(c and c > 100, text)
    -- Every answer was asked for (some more were under way when wrk stopped).
    assert.is_true(count(BASE .. "/task") + count(BASE) >= t.requests + c)
  end)
end)

describe("refresh_every under nginx #nginx", function()
  local n

  lazy_setup(function()
    helpers.reset()
    n = nginx.start {
      workers = 4, env = env_lines(), dicts = { ecs_metadata = "1m" },
      http = [[
        init_worker_by_lua_block {
            assert(require("ecs_metadata").refresh_every(0.5, { "task", "container" }))
        }
      ]],
      server = [[
        location = /task {
            content_by_lua_block {
                local t, msg = require("ecs_metadata").task()
                if not t then ngx.status = 503 ngx.say(msg) return end
                ngx.say(t.TaskARN)
            }
        }
      ]],
    }
  end)

  lazy_teardown(function()
    if n then
      n:stop()
    end
  end)

  it("keeps the sources fresh with one refresh per period for the whole node", function()
    sleep(0.3)
    helpers.reset()
    local w = nginx.wrk(n:url("/task"), { seconds = 3, connections = 16 })
    assert.are.equal(0, w.non2xx, w.text)
    local tasks, containers = count(BASE .. "/task"), count(BASE)
    -- 3 s at one refresh per 0.45-0.5 s: 6 or 7, never 4 workers' worth.
    assert.is_true(tasks >= 5 and tasks <= 8 + SLACK, tasks .. " task refreshes in 3 s")
    assert.is_true(containers >= 5 and containers <= 8 + SLACK,
                   containers .. " container refreshes in 3 s")
    -- The request path never waited for the endpoint.
    assert.is_true(w.p99 < 50, w.text)
  end)

  it("raises on misuse and refuses where it cannot work", function()
    local ecs = require "ecs_metadata"
    assert.has_error(function() ecs.refresh_every("1") end)
    assert.has_error(function() ecs.refresh_every(1, { "tsak" }) end)
    local ok, msg, code = ecs.refresh_every(1)
    assert.is_nil(ok)
    assert.are.equal("invalid_argument", code)
    assert.matches("^refresh_every: works under OpenResty/nginx only", msg)
  end)
end)

describe("under nginx without env lines #nginx", function()
  local n

  lazy_setup(function()
    n = nginx.start {
      workers = 2, dicts = { ecs_metadata = "1m" },
      -- The master sees the variables (nginx.conf names none with `env`).
      process_env = ENV,
      http = [[
        init_by_lua_block {
            local t = require("ecs_metadata").task()
            INIT = t and t.TaskARN or "none"
        }
      ]],
      server = [[
        location = /each {
            content_by_lua_block {
                local ecs = require "ecs_metadata"
                local out = { INIT }
                for _, f in ipairs { "task", "container", "protection", "credentials" } do
                    local v, msg, code = ecs[f]()
                    out[#out + 1] = f .. " " .. tostring(code) .. " " .. tostring(msg)
                end
                ngx.say(table.concat(out, "\n"))
            }
        }
      ]],
    }
  end)

  lazy_teardown(function()
    if n then
      n:stop()
    end
  end)

  it("answers not_on_ecs in every function, naming the env lines to add", function()
    local body, status = n:get("/each")
    assert.are.equal(200, status)
    local lines = {}
    for line in body:gmatch("[^\n]+") do
      lines[#lines + 1] = line
    end
    -- The master found the task: a worker does not take its word for it.
    assert.are.equal(TASK_ARN, lines[1])
    assert.matches("^task not_on_ecs task: not on ECS: .*add `env ECS_CONTAINER_METADATA_URI_V4; "
                   .. "env ECS_CONTAINER_METADATA_URI; env ECS_CONTAINER_METADATA_FILE;` to its "
                   .. "main context", lines[2])
    assert.matches("^container not_on_ecs .*env ECS_CONTAINER_METADATA_URI_V4;", lines[3])
    assert.matches("^protection not_on_ecs .*`env ECS_AGENT_URI;`", lines[4])
    assert.matches("^credentials not_on_ecs .*env AWS_CONTAINER_CREDENTIALS_RELATIVE_URI; "
                   .. "env AWS_CONTAINER_CREDENTIALS_FULL_URI;", lines[5])
  end)
end)

describe("the metadata file under nginx #nginx", function()
  local n
  local path

  lazy_setup(function()
    path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write('{"ContainerName":"web"}')       -- no MetadataFileStatus: not ready
    f:close()
    n = nginx.start {
      workers = 1, env = { ECS_CONTAINER_METADATA_FILE = path },
      server = [[
        location = /wait {
            content_by_lua_block {
                local t0 = ngx.now()
                local m, msg, code = require("ecs_metadata").metadata_file { wait = 1 }
                ngx.update_time()
                ngx.say(tostring(code), " ", string.format("%.2f", ngx.now() - t0))
            }
        }
        location = /static { return 204; }
        location = /in_log {
            return 204;
            log_by_lua_block {
                ngx.update_time()
                local t0 = ngx.now()
                local m, msg, code = require("ecs_metadata").metadata_file { wait = 1 }
                ngx.update_time()
                ngx.log(ngx.WARN, "metadata_file in log: ", code, " after ",
                        string.format("%.2f", ngx.now() - t0))
            }
        }
      ]],
    }
  end)

  lazy_teardown(function()
    if n then
      n:stop()
    end
    os.remove(path)
  end)

  it("waits with ngx.sleep: the worker keeps serving meanwhile", function()
    local out = os.tmpname()
    assert(os.execute(("env -u LD_PRELOAD curl -s %s > %s &"):format(n:url("/wait"), out)))
    sleep(0.2)
    -- One worker, waiting for the file: a static answer still comes at once.
    local t0 = core.now()
    local _, status = n:get_new("/static")
    local took = core.now() - t0
    assert.are.equal(204, status)
    assert.is_true(took < 0.1, ("a static answer took %.3f s"):format(took))
    sleep(1.2)
    local f = assert(io.open(out))
    local text = f:read("*a")
    f:close()
    os.remove(out)
    local code, waited = text:match("^(%S+) ([%d.]+)")
    assert.are.equal("not_ready", code, text)
    assert.is_true(tonumber(waited) >= 0.95 and tonumber(waited) < 1.5, text)
  end)

  it("does not wait at all where nothing may (the log phase)", function()
    assert.are.equal(204, select(2, n:get("/in_log")))
    local log
    for _ = 1, 50 do
      log = n:log()
      if log:find("metadata_file in log", 1, true) then
        break
      end
      sleep(0.02)
    end
    local waited = log:match("metadata_file in log: not_ready after ([%d.]+)")
    assert.is_truthy(waited, log)
    assert.is_true(tonumber(waited) < 0.05, log)
  end)
end)

describe("Managed Instances daemon tasks under nginx #nginx", function()
  local n

  lazy_setup(function()
    n = nginx.start {
      workers = 4, env = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/chunked/v4/managed" },
      dicts = { ecs_metadata = "1m" },
      server = [[
        location = /tasks {
            content_by_lua_block {
                local tasks, msg = require("ecs_metadata").tasks()
                if not tasks then ngx.status = 503 return ngx.say(msg) end
                ngx.say(#tasks, " ", tasks[1].TaskARN)
            }
        }
      ]],
    }
  end)

  lazy_teardown(function()
    if n then
      n:stop()
    end
  end)

  it("shares the checked array through the dict: one request for the node", function()
    helpers.reset()
    local want = cjson.decode(helpers.read(
      "v4-task/otel-collector-managed-instances-tasks-array-no-networks.json"))
    for _ = 1, 12 do
      local body, status = n:get_new("/tasks")
      assert.are.equal(200, status, body)
      assert.are.equal(#want .. " " .. want[1].TaskARN .. "\n", body)
    end
    assert.are.equal(1, count("/chunked/v4/managed/tasks"))
  end)
end)
