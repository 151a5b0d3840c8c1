-- The Python helper's interface: Fargate(raise_errors=True, logger=...).
--
--   lua5.4 examples/fargate.lua
local ecs = require "ecs_metadata"

-- raise_errors = false: a failure is logged and {} comes back.
local fargate = ecs.Fargate {
  raise_errors = false,
  logger = function(msg) io.stderr:write("metadata unavailable: ", msg, "\n") end,
}
local meta = fargate:get_container_metadata_v4()
print("container:", meta.Name or "(none)")
local task = fargate:get_task_metadata_v4()
print("task:", task.TaskARN or "(none)")

-- raise_errors = true (the default): a failure is a Lua error.
local strict = ecs.Fargate()
local ok, err = pcall(strict.get_task_stats_v4, strict)
if not ok then
  print("raised: " .. err)
end
