-- bench/resty.lua: the module under nginx (4 workers, Debian's nginx-light
-- with its Lua module, the shared dict declared) against the bundled
-- endpoint, which sends the task document chunked as the agent does.
-- Printed in one run, in interleaved rounds so all see the same machine
-- (medians of the rounds):
--   * requests/s of a location answering ecs.task() fields from a warm cache
--     against a static `return 200` location on the same nginx (ratio),
--     and of a Lua location that only says "ok" (what content_by_lua costs
--     by itself);
--   * the p99 latency of each, and the workers' CPU time per request (what
--     other load on the machine moves least);
--   * endpoint requests per TTL per path (task and container) while the
--     cached location is under that load, in a longer run of it.
--
--   endpoint/serve exec env LUA_PATH='lua/?.lua;lua/?/init.lua;;' \
--       LUA_CPATH='build/5.4/?.so;;' lua5.4 bench/resty.lua [seconds] [rounds]
-- (`make bench-resty` does this; needs `make LUA=luajit` for nginx.)
package.path = "./?.lua;" .. package.path
local nginx = require "spec.nginx"
local helpers = require "spec.helpers"
local core = require "ecs_metadata.core"

local SECONDS = tonumber(arg[1]) or 2
local ROUNDS = tonumber(arg[2]) or 5
local CONNECTIONS = 32
local LONG = 10        -- seconds of the run that counts the endpoint's requests
local E = helpers.endpoint()
local BASE = "/chunked/v4/ec2"
local TTL = 1          -- the default cache_ttl of task and container

local n = nginx.start {
  workers = 4,
  env = { ECS_CONTAINER_METADATA_URI_V4 = E .. BASE },
  dicts = { ecs_metadata = "1m" },
  server = [[
    location = /static { return 200 "ok\n"; }
    location = /lua { content_by_lua_block { ngx.say("ok") } }
    location = /task_set {
        set_by_lua_block $task_fields {
            local t = require("ecs_metadata").task()
            return t.TaskARN .. " " .. t.AvailabilityZone .. " " .. t.Family .. ":" .. t.Revision
        }
        return 200 "$task_fields\n";
    }
    location = /task {
        content_by_lua_block {
            local ecs = require "ecs_metadata"
            local t, c = ecs.task(), ecs.container()
            ngx.say(t.TaskARN, " ", t.AvailabilityZone, " ", t.Family, ":", t.Revision,
                    " ", c.DockerId)
        }
    }
  ]],
}

-- CPU seconds the workers have used so far (utime + stime, from /proc):
-- the cost per request, which other load on the machine moves much less
-- than it moves requests/s.
local TICK = 1 / 100
local function workers_cpu()
  local total = 0
  for _, pid in ipairs(n:workers()) do
    local f = io.open("/proc/" .. pid .. "/stat")
    if f then
      local stat = f:read("*a")
      f:close()
      local fields = {}
      for x in stat:match("%) (.*)$"):gmatch("%S+") do
        fields[#fields + 1] = x
      end
      total = total + (tonumber(fields[12]) + tonumber(fields[13])) * TICK
    end
  end
  return total
end

local function median(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  local m = #c
  if m % 2 == 1 then return c[(m + 1) / 2] end
  return (c[m / 2] + c[m / 2 + 1]) / 2
end

local ok, err = pcall(function()
  -- Warm: every worker has the document.
  for _ = 1, 40 do
    assert(select(2, n:get_new("/task")) == 200)
  end
  local NAMES = { "static", "task", "lua", "task_set" }
  local rps, p99, cpu = {}, {}, {}
  local ratio_static, ratio_lua, ratio_set = {}, {}, {}
  for _, name in ipairs(NAMES) do
    rps[name], p99[name], cpu[name] = {}, {}, {}
  end
  local asked, task_time = 0, 0
  for _ = 1, ROUNDS do
    local round = {}
    for _, name in ipairs(NAMES) do
      helpers.reset()
      local c0, t0 = workers_cpu(), core.now()
      local w = nginx.wrk(n:url("/" .. name), { seconds = SECONDS, connections = CONNECTIONS })
      local took, c1 = core.now() - t0, workers_cpu()
      assert(w.non2xx == 0 and w.errors == 0, w.text)
      round[name] = w.rps
      table.insert(rps[name], w.rps)
      table.insert(p99[name], w.p99)
      table.insert(cpu[name], (c1 - c0) / w.requests * 1e6)
      if name == "task" then
        asked = asked + (helpers.stats().requests[BASE .. "/task"] or 0)
        task_time = task_time + took
      end
    end
    table.insert(ratio_static, round.task / round.static)
    table.insert(ratio_lua, round.task / round.lua)
    table.insert(ratio_set, round.task_set / round.static)
  end
  print(("bench/resty: nginx, 4 workers, wrk %d connections, %d interleaved rounds of %d s;"
         .. " medians"):format(CONNECTIONS, ROUNDS, SECONDS))
  local LABEL = { static = "static `return 200`", lua = "content_by_lua ngx.say(\"ok\")",
                  task = "ecs.task() in content_by_lua", task_set = "ecs.task() in set_by_lua" }
  for _, name in ipairs { "static", "lua", "task", "task_set" } do
    print(("  %-30s %9.0f req/s   p99 %6.2f ms   workers' CPU %5.1f us/request"):format(
      LABEL[name], median(rps[name]), median(p99[name]), median(cpu[name])))
  end
  print(("  ratio cached ecs.task() / static: %.3f req/s (rounds: %s)"):format(
    median(ratio_static), table.concat((function()
      local t = {}
      for i, r in ipairs(ratio_static) do t[i] = ("%.2f"):format(r) end
      return t
    end)(), " ")))
  print(("  ratio cached ecs.task() / content_by_lua ngx.say: %.3f req/s"):format(
    median(ratio_lua)))
  print(("  ratio cached ecs.task() in set_by_lua + return 200 / static: %.3f req/s"):format(
    median(ratio_set)))
  print(("  CPU per request, static / ecs.task(): %.3f in content_by_lua, %.3f in set_by_lua"):format(
    median(cpu.static) / median(cpu.task), median(cpu.static) / median(cpu.task_set)))
  print(("  endpoint requests for %s/task during those rounds: %d in %.1f s (each round of"
         .. " T s may hold floor(T/TTL) + 1)"):format(BASE, asked, task_time))
  -- And under one longer run of the cached location, per TTL.
  helpers.reset()
  local t0 = core.now()
  local w = nginx.wrk(n:url("/task"), { seconds = LONG, connections = CONNECTIONS })
  local took = core.now() - t0
  assert(w.non2xx == 0 and w.errors == 0, w.text)
  local st = helpers.stats().requests
  print(("  under %d s of wrk on it (%.0f req/s): endpoint requests per TTL (%d s):"
         .. " %.2f for %s/task, %.2f for %s"):format(LONG, w.rps, TTL,
    (st[BASE .. "/task"] or 0) / (took / TTL), BASE, (st[BASE] or 0) / (took / TTL), BASE))
end)
n:stop()
if not ok then
  error(err, 0)
end
