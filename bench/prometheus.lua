-- What ecs.prometheus costs next to the fetch it follows: rendering the
-- largest task stats fixture (with its task) against decoding that same
-- document with core.decode, side by side in one run:
--
--   LUA_PATH='lua/?.lua;;' LUA_CPATH='build/5.4/?.so;;' lua5.4 bench/prometheus.lua [rounds]
--   LUA_PATH='lua/?.lua;;' LUA_CPATH='build/luajit/?.so;;' luajit bench/prometheus.lua
--
-- Under endpoint/serve exec (as make bench runs it) the fetch of that
-- document, c:task_stats() uncached (the GET and the decode), is timed too.
-- Times are CPU seconds of this process (os.clock) per call, the median of
-- interleaved rounds, each round repeating the call enough times to take
-- about 20 ms. A ratio below 1 means the view costs less.
local core = require "ecs_metadata.core"
local util = require "bench.util"
local prometheus = require "ecs_metadata.views.prometheus"

local rounds = tonumber(arg[1]) or 15
local root = "spec/fixtures"

-- The largest task stats document, and the task it belongs to.
local TASK_OF = {
  ["v4-task-stats/ecs-exporter-fargate.json"] = "v4-task/ecs-exporter-fargate.json",
  ["v4-task-stats/ecs-exporter-ec2.json"] = "v4-task/ecs-exporter-ec2.json",
}
local largest
for _, fx in ipairs(util.fixtures(root)) do
  if fx.name:find("^v4%-task%-stats/") and (not largest or #fx.body > #largest.body) then
    largest = fx
  end
end
local task_rel = assert(TASK_OF[largest.name], "no task for " .. largest.name)
local f = assert(io.open(root .. "/" .. task_rel, "rb"))
local task = assert(core.decode(f:read("*a")))
f:close()
local body = largest.body
local stats = assert(core.decode(body))
local text = prometheus.render(task, stats)

local decode, render = core.decode, prometheus.render
local function decode_n(n)
  for _ = 1, n do decode(body) end
end
local function render_n(n)
  for _ = 1, n do render(task, stats) end
end
local fetch_n
local endpoint = os.getenv("ECSM_ENDPOINT")
if endpoint then
  local client = assert(require("ecs_metadata").new {
    env = { ECS_CONTAINER_METADATA_URI_V4 = endpoint .. "/v4/each/" .. largest.name:gsub("%.json$", "") },
    cache_ttl = 0,
  })
  assert(client:task_stats())
  fetch_n = function(n)
    for _ = 1, n do assert(client:task_stats()) end
  end
end

-- Calls per round so that a round takes about 20 ms.
local function calibrate(loop)
  local n = 1
  while true do
    local t0 = os.clock()
    loop(n)
    if os.clock() - t0 >= 0.02 then return n end
    n = n * 2
  end
end

local nd, nr = calibrate(decode_n), calibrate(render_n)
local nf = fetch_n and calibrate(fetch_n)
local td, tr, tf = {}, {}, {}
for _ = 1, rounds do
  collectgarbage()
  local t0 = os.clock()
  decode_n(nd)
  td[#td + 1] = (os.clock() - t0) / nd
  collectgarbage()
  t0 = os.clock()
  render_n(nr)
  tr[#tr + 1] = (os.clock() - t0) / nr
  if fetch_n then
    collectgarbage()
    t0 = os.clock()
    fetch_n(nf)
    tf[#tf + 1] = (os.clock() - t0) / nf
  end
end
local d, r = util.median(td), util.median(tr)
print(("%s; %s (%d bytes) with %s; %d rounds"):format(util.interpreter(), largest.name, #body,
                                                       task_rel, rounds))
local _, samples = text:gsub("\n[^#]", "")
print(("core.decode of the stats document   %9.2f us"):format(d * 1e6))
print(("prometheus.render (task, stats)     %9.2f us   (%d bytes, %d series)"):format(r * 1e6, #text,
                                                                                       samples))
print(("render / decode                     %9.2f"):format(r / d))
if fetch_n then
  local fetch = util.median(tf)
  print(("c:task_stats() (GET and decode)     %9.2f us"):format(fetch * 1e6))
  print(("render / fetch                      %9.2f"):format(r / fetch))
end
