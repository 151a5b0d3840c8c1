-- The public API under load in a real nginx with 4 workers, against the test
-- endpoint: the whole node asks at most once per path per TTL under wrk; an
-- endpoint slower than the timeout slows neither a static location nor one
-- answering from the cache, and the calls that do wait answer `timeout` in
-- time; an endpoint that is down gets a clear 503 with the code, is asked
-- once per error_ttl for the node, and is used again within a TTL after it
-- comes back.
local helpers = require "spec.helpers"
local nginx = require "spec.nginx"
local core = require "ecs_metadata.core"

local E = helpers.endpoint()
local SLACK = helpers.SLACK
local BASE = "/chunked/v4/ec2"

local count = helpers.requests

local function mode(q)
  local c = core.http()
  assert(c:get(E .. "/_mode" .. (q or "")))
  c:close()
end

local function sleep(s)
  core._sleep(s)
end

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("*a")
  f:close()
  return s
end

local HTTP = [[
    init_worker_by_lua_block {
        local ecs = require "ecs_metadata"
        -- A client that answers its last document when the endpoint fails.
        FORGIVING = assert(ecs.new { stale_ttl = 300 })
        -- One that says so at once.
        STRICT = assert(ecs.new { retries = 0 })
    }
]]

local SERVER = [[
    location = /static { return 200 "ok\n"; }
    location = /fields {
        content_by_lua_block {
            local ecs = require "ecs_metadata"
            local t, msg, code = ecs.task()
            local c = ecs.container()
            if not t or not c then
                ngx.status = 503
                return ngx.say(code)
            end
            ngx.say(t.TaskARN, " ", t.AvailabilityZone, " ", c.DockerId)
        }
    }
    location = /forgiving {
        content_by_lua_block {
            local t, msg, code = FORGIVING:task()
            if not t then ngx.status = 503 return ngx.say(code, ": ", msg) end
            ngx.say(t.TaskARN)
        }
    }
    location = /strict {
        content_by_lua_block {
            local t, msg, code = STRICT:task()
            if not t then ngx.status = 503 return ngx.say(code, ": ", msg) end
            ngx.say(t.TaskARN)
        }
    }
    location = /uncached {
        content_by_lua_block {
            ngx.update_time()
            local t0 = ngx.now()
            local t, msg, code = require("ecs_metadata").task { cache_ttl = 0, timeout = 1 }
            ngx.update_time()
            ngx.say(tostring(code), " ", string.format("%.3f", ngx.now() - t0))
        }
    }
]]

local function start()
  return nginx.start { workers = 4, env = { ECS_CONTAINER_METADATA_URI_V4 = E .. BASE },
                       dicts = { ecs_metadata = "1m" }, http = HTTP, server = SERVER }
end

describe("under nginx, with the endpoint down from the start #nginx", function()
  local n

  lazy_setup(function()
    helpers.reset()
    mode("?down=1")
    n = start()
  end)

  lazy_teardown(function()
    mode()
    if n then
      n:stop()
    end
  end)

  it("answers a clear 503, asks once per error_ttl for the node, and recovers", function()
    local body, status = n:get_new("/strict")
    assert.are.equal(503, status)
    assert.matches("^unreachable: task: GET " .. E:gsub("%p", "%%%0") .. BASE
                   .. "/task: Empty reply from server", body)
    local t0 = core.now()
    local w = nginx.wrk(n:url("/strict"), { seconds = 3, connections = 16 })
    local elapsed = core.now() - t0
    assert.are.equal(w.requests, w.non2xx, w.text)
    assert.is_true(w.requests > 1000, w.text)
    -- error_ttl is 1 s: one request at the start, then one a second.
    local asked = count(BASE .. "/task")
    assert.is_true(asked >= 3 and asked <= math.floor(elapsed) + 2 + SLACK,
                   ("%d requests in %.2f s"):format(asked, elapsed))
    -- Back up: a fresh answer within one error_ttl.
    mode()
    local back = core.now()
    local ok
    repeat
      ok = select(2, n:get_new("/strict")) == 200
      if not ok then sleep(0.05) end
    until ok or core.now() - back > 1.5 + SLACK
    assert.is_true(ok, "no recovery within error_ttl")
  end)
end)

describe("under nginx, with 4 workers and the endpoint up #nginx", function()
  local n

  lazy_setup(function()
    helpers.reset()
    n = start()
  end)

  lazy_teardown(function()
    mode()
    if n then
      n:stop()
    end
  end)

  it("asks at most once per path per TTL for the whole node under wrk for 10 s", function()
    assert.are.equal(200, select(2, n:get("/fields")))
    helpers.reset()
    local t0 = core.now()
    local w = nginx.wrk(n:url("/fields"), { seconds = 10, connections = 32 })
    local elapsed = core.now() - t0
    assert.are.equal(0, w.non2xx, w.text)
    assert.are.equal(0, w.errors, w.text)
    assert.is_true(w.requests > 10000, w.text)
    -- The default cache_ttl is 1 s.
    local most = math.floor(elapsed) + 1
    for _, path in ipairs { BASE .. "/task", BASE } do
      local asked = count(path)
      -- (At least half as many: it does refresh, however busy the machine.)
      assert.is_true(asked >= most / 2 and asked <= most + SLACK,
                     ("%s: %d requests in %.2f s"):format(path, asked, elapsed))
    end
  end)

  it("keeps static and cached answers fast while the endpoint is slower than the timeout", function()
    assert.are.equal(200, select(2, n:get("/forgiving")))
    mode("?slow=5000")
    -- Calls that must ask (cache_ttl = 0, timeout = 1), under way throughout.
    local outs = {}
    for i = 1, 6 do
      outs[i] = os.tmpname()
      assert(os.execute(("env -u LD_PRELOAD curl -s %s > %s &"):format(n:url("/uncached"),
                                                                    outs[i])))
    end
    local static_out = os.tmpname()
    assert(os.execute(nginx.wrk_command("--latency -t1 -c8 -d3s " .. n:url("/static"))
                      .. " > " .. static_out .. " 2>&1 &"))
    sleep(0.1)
    local cached = nginx.wrk(n:url("/forgiving"), { seconds = 3, connections = 8, threads = 1 })
    sleep(0.5)
    local static = read(static_out)
    os.remove(static_out)
    local p99 = tonumber(static:match("\n%s*99%%%s+([%d.]+)ms"))
    local p99us = tonumber(static:match("\n%s*99%%%s+([%d.]+)us"))
    local static_p99 = p99 or (p99us and p99us / 1000)
    assert.is_truthy(static_p99, static)
    assert.is_true(static_p99 < 50, static)
    assert.is_nil(static:find("Non-2xx", 1, true), static)
    assert.are.equal(0, cached.non2xx, cached.text)
    assert.is_true(cached.requests > 500, cached.text)
    assert.is_true(cached.p99 < 50, cached.text)
    for _, out in ipairs(outs) do
      local code, took = read(out):match("^(%S+) ([%d.]+)")
      os.remove(out)
      assert.are.equal("timeout", code)
      assert.is_true(tonumber(took) < 1 + 0.5 + SLACK, took)
    end
  end)
end)
