-- The fixed workloads that bench/api-callgrind counts under callgrind:
--   lua5.4 bench/api-workload.lua MODE N
-- MODE: get, get-no-headers, decode, task (cache off), hit (cached ecs.task()),
-- client-hit (cached c:task() of a client from ecs.new()).
-- Each warms up first, then runs N times; the script subtracts an N = 0 run.
-- Needs $ECS_CONTAINER_METADATA_URI_V4 (endpoint/serve exec --profile ec2).
local ecs = require "ecs_metadata"
local core = require "ecs_metadata.core"

local mode, n = arg[1], tonumber(arg[2])
local url = assert(os.getenv("ECS_CONTAINER_METADATA_URI_V4"), "no endpoint") .. "/task"

local step
if mode == "get" or mode == "get-no-headers" then
  local c = assert(core.http())
  local opts = mode == "get-no-headers" and { response_headers = false } or nil
  step = function() assert(c:get(url, opts)) end
elseif mode == "decode" then
  local body = assert(core.http():get(url))
  step = function() assert(core.decode(body)) end
elseif mode == "task" then
  local c = assert(ecs.new { cache_ttl = 0 })
  step = function() assert(c:task()) end
elseif mode == "hit" then
  step = ecs.task
elseif mode == "client-hit" then
  -- A method call is written out in the loop: a wrapper function would
  -- count a Lua call of its own.
  local c = assert(ecs.new())
  assert(c:task())
  for _ = 1, 100 do c:task() end
  for _ = 1, n do c:task() end
  return
else
  error("mode must be get, get-no-headers, decode, task, hit or client-hit")
end
for _ = 1, 100 do step() end
for _ = 1, n do step() end
