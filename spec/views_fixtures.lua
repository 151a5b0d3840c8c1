-- The fixtures as the derived views' specs (spec/3x-*_spec.lua) take them:
-- decoded with the project's decoder, sorted by kind, and paired where a
-- task's containers and a task stats document belong together.
--
--   vf.decode(rel)        the fixture's decoded document (a fresh table each call)
--   vf.copy(v)            a deep copy, to check that a view left its input alone
--   vf.tasks()            { rel =, index =, task = } for every task document
--                         (v2, v3, v4; each task of a /tasks array)
--   vf.containers()       { rel =, container = } for every container document
--                         (v3, v4, the metadata file)
--   vf.stats()            { rel =, key =, stats = } for every Docker stats
--                         document (v3/v4 stats, each entry of a task stats map)
--   vf.task_stats()       { rel =, index =, task_stats = } for every task stats map
--   vf.PAIRS              { task stats fixture, the task fixture it belongs to }
--   vf.paired()           { rel =, task =, task_stats = } for the pairs; the
--                         /tasks and /tasks/stats arrays give one pair per task
local helpers = require "spec.helpers"
local core = require "ecs_metadata.core"

local vf = {}

function vf.decode(rel)
  return assert(core.decode(helpers.fixture(rel).body))
end

function vf.copy(v)
  if type(v) ~= "table" then
    return v
  end
  local t = {}
  for k, x in pairs(v) do
    t[k] = vf.copy(x)
  end
  return setmetatable(t, getmetatable(v))
end

local function each(dirs, f)
  local out = {}
  for _, fx in ipairs(helpers.fixtures()) do
    if dirs[fx.dir] then
      f(out, fx.rel, vf.decode(fx.rel))
    end
  end
  return out
end

function vf.tasks()
  return each({ ["v4-task"] = true, ["v3-task"] = true, ["v2-metadata"] = true }, function(out, rel, doc)
    if doc[1] then
      for i, t in ipairs(doc) do
        out[#out + 1] = { rel = rel, index = i, task = t }
      end
    else
      out[#out + 1] = { rel = rel, task = doc }
    end
  end)
end

function vf.containers()
  return each({ ["v4-container"] = true, ["v3-container"] = true, ["metadata-file"] = true },
    function(out, rel, doc)
      out[#out + 1] = { rel = rel, container = doc }
    end)
end

local function stats_maps(doc)
  if doc[1] then
    return doc
  end
  return { doc }
end

function vf.task_stats()
  return each({ ["v4-task-stats"] = true, ["v2-stats"] = true }, function(out, rel, doc)
    for i, m in ipairs(stats_maps(doc)) do
      out[#out + 1] = { rel = rel, index = i, task_stats = m }
    end
  end)
end

function vf.stats()
  local out = each({ ["v4-stats"] = true, ["v3-stats"] = true }, function(list, rel, doc)
    list[#list + 1] = { rel = rel, stats = doc }
  end)
  for _, ts in ipairs(vf.task_stats()) do
    for key, s in pairs(ts.task_stats) do
      if type(s) == "table" then
        out[#out + 1] = { rel = ts.rel, key = key, stats = s }
      end
    end
  end
  return out
end

-- { task stats fixture, the task fixture it belongs to }.
vf.PAIRS = {
  { "v4-task-stats/ecs-exporter-ec2.json", "v4-task/ecs-exporter-ec2.json" },
  { "v4-task-stats/ecs-exporter-fargate.json", "v4-task/ecs-exporter-fargate.json" },
  -- The same task with the newer agents' fields added (RestartCount ...).
  { "v4-task-stats/ecs-exporter-fargate.json", "v4-task/derived-ecs-exporter-fargate-newer-fields.json" },
  { "v4-task-stats/otel-collector-fargate-stopped-container-empty-object.json",
    "v4-task/otel-collector-fargate-stopped-exitcode-42.json" },
  { "v4-task-stats/otel-collector-managed-instances-tasks-stats-array.json",
    "v4-task/otel-collector-managed-instances-tasks-array-no-networks.json" },
  { "v2-stats/datadog-integrations-fargate-2017-task-stats.json",
    "v2-metadata/datadog-integrations-fargate-2017-pause-container.json" },
  -- The endpoint's own pairs (their ids do not match: documentation examples).
  { "v4-task-stats/docs-2020-fargate-query-metadata.json", "v4-task/docs-2020-fargate-query-metadata.json" },
  { "v4-task-stats/docs-ec2-awsvpc-curltest.json", "v4-task/docs-ec2-awsvpc-curltest.json" },
}

function vf.paired()
  local out = {}
  for _, pair in ipairs(vf.PAIRS) do
    local stats_rel, task_rel = pair[1], pair[2]
    local tasks, stats = vf.decode(task_rel), vf.decode(stats_rel)
    if tasks[1] then
      -- /tasks and /tasks/stats: the stats maps merged, one pair per task.
      local all = {}
      for _, m in ipairs(stats) do
        for k, v in pairs(m) do all[k] = v end
      end
      for i, t in ipairs(tasks) do
        out[#out + 1] = { rel = task_rel .. "#" .. i, task = t, task_stats = all }
      end
    else
      out[#out + 1] = { rel = task_rel, task = tasks, task_stats = stats }
    end
  end
  return out
end

return vf
