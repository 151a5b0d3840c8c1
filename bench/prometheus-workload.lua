-- The fixed workload that bench/prometheus-callgrind runs under callgrind:
--   lua5.4 bench/prometheus-workload.lua base|decode|render|fetch ROUNDS
-- Every mode reads and decodes the largest task stats fixture and its task
-- once, and makes a client of the endpoint ($ECSM_ENDPOINT) that answers
-- that fixture and asks for it once; "base" stops there, "decode" then
-- decodes the stats document ROUNDS times, "render" renders the Prometheus
-- text ROUNDS times, "fetch" asks the endpoint for the document ROUNDS
-- times (c:task_stats(), uncached: this process's share of a fetch).
local mode, rounds = arg[1], tonumber(arg[2]) or 200
local core = require "ecs_metadata.core"
local prometheus = require "ecs_metadata.views.prometheus"

local function read(rel)
  local f = assert(io.open("spec/fixtures/" .. rel, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local body = read("v4-task-stats/ecs-exporter-fargate.json")
local task = assert(core.decode(read("v4-task/ecs-exporter-fargate.json")))
local stats = assert(core.decode(body))
local endpoint = assert(os.getenv("ECSM_ENDPOINT"), "run under endpoint/serve exec")
local client = assert(require("ecs_metadata").new {
  env = { ECS_CONTAINER_METADATA_URI_V4 = endpoint .. "/v4/each/v4-task-stats/ecs-exporter-fargate" },
  cache_ttl = 0,
})
assert(client:task_stats())

if mode == "decode" then
  local decode = core.decode
  for _ = 1, rounds do decode(body) end
elseif mode == "render" then
  local render = prometheus.render
  for _ = 1, rounds do render(task, stats) end
elseif mode == "fetch" then
  for _ = 1, rounds do assert(client:task_stats()) end
elseif mode ~= "base" then
  error("mode must be base, decode, render or fetch")
end
print(#body)
