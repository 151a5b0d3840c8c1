-- What `make demo` runs: this container's and this task's metadata through
-- the module, against the bundled endpoint (endpoint/serve exec --profile v4
-- sets the environment an ECS task would have). Inside a real ECS task it
-- prints the real thing.
--
--   lua5.4 examples/demo.lua
local ecs = require "ecs_metadata"

local function fail(what, msg, code)
  io.stderr:write(what, ": ", tostring(msg), " [", tostring(code), "]\n")
  os.exit(1)
end

local function s(x)
  if x == nil then
    return "-"
  end
  return tostring(x)
end

local base, version = ecs.endpoint()
if not base then
  fail("endpoint", version, "not_on_ecs")
end
print(("source: %s  %s"):format(version, base))

local c, msg, code = ecs.container()
if not c then
  fail("container", msg, code)
end
print(("container: %s (%s), image %s, status %s"):format(
  s(c.Name), s(c.DockerId), s(c.Image), s(c.KnownStatus)))

local t
t, msg, code = ecs.task()
if not t then
  fail("task", msg, code)
end
print(("task: %s  %s:%s  %s  %s"):format(s(t.TaskARN), s(t.Family), s(t.Revision),
  s(t.LaunchType), s(t.AvailabilityZone)))
for _, ct in ipairs(t.Containers or {}) do
  print(("  - %-24s %s"):format(s(ct.Name), s(ct.KnownStatus)))
end

local stats = ecs.task_stats()
if stats then
  for id, st in pairs(stats) do
    local mem = st.memory_stats and st.memory_stats.usage
    print(("  stats %s...: memory usage %s bytes"):format(id:sub(1, 12), s(mem)))
  end
end

-- The derived views: the summary people log, and the numbers docker stats
-- shows, for this container and for the whole task.
local function show(title, fields)
  local keys = {}
  for k in pairs(fields) do keys[#keys + 1] = k end
  table.sort(keys)
  print(title)
  for _, k in ipairs(keys) do
    local v = fields[k]
    if math.type and math.type(v) == "float" or (type(v) == "number" and v % 1 ~= 0) then
      v = ("%.4f"):format(v)
    end
    print(("  %-26s %s"):format(k, s(v)))
  end
end

local summary = ecs.summary()
if summary then
  show("summary:", summary)
end
local cs = ecs.container_stats()
if cs then
  show("stats view of this container:", ecs.stats_view(cs))
end
if stats then
  show("task stats totals:", ecs.task_stats_view(stats, t).totals)
end

-- Protection and credentials, when the environment has them (the bundled
-- endpoint's profile gives a loopback credentials uri: nothing here ever
-- touches the link-local address).
local p = ecs.protection()
if p then
  print(("protection: %s"):format(s(p.ProtectionEnabled)))
end
local cr = ecs.credentials()
if cr then
  print("credentials: " .. tostring(cr))   -- the secret is masked
end
