-- ecs.tasks and ecs.tasks_stats: Managed Instances daemon tasks. The arrays
-- as the agent sends them, the answer elsewhere (a 404 that says why, or
-- invalid_argument without a request), the shape checked, the cache.
local helpers = require "spec.helpers"
local ecs = require "ecs_metadata"
local cjson = require "cjson"

local E = helpers.endpoint()
local client = helpers.client

local TASKS = "v4-task/otel-collector-managed-instances-tasks-array-no-networks.json"
local STATS = "v4-task-stats/otel-collector-managed-instances-tasks-stats-array.json"

local requests = helpers.requests

local function managed(extra)
    return client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/managed" }, extra)
end

describe("ecs.tasks", function()
    before_each(helpers.reset)

    it("answers every task document of the instance", function()
        local ref = cjson.decode(helpers.read(TASKS))
        local tasks = assert(managed():tasks())
        assert.are.equal(#ref, #tasks)
        for i, t in ipairs(tasks) do
            assert.are.equal(ref[i].TaskARN, t.TaskARN)
            assert.are.equal(ref[i].Group, t.Group)
            assert.are.equal("MANAGED_INSTANCES", t.LaunchType)
            assert.are.equal(#ref[i].Containers, #t.Containers)
            -- no Networks in a daemon's documents: left out, not made up
            assert.is_nil(t.Containers[1].Networks)
        end
    end)

    it("answers the stats of every task: an array of maps", function()
        local stats = assert(managed():tasks_stats())
        local ref = cjson.decode(helpers.read(STATS))
        assert.are.equal(#ref, #stats)
        for i, map in ipairs(ref) do
            for cid, s in pairs(map) do
                assert.are.equal(s.id, stats[i][cid].id)
            end
        end
        local id = "081d2c75d3a2419d95ab6f8979fb61fb-1547245599"
        assert.are.equal("monitor-agent", stats[1][id].name)
        -- 18446744073709551615 (cgroup v2 "max") is beyond int64: a float
        assert.are.equal(18446744073709551615, stats[1][id].memory_stats.limit)
        if math.type then
            assert.are.equal("float", math.type(stats[1][id].memory_stats.limit))
            assert.are.equal("integer", math.type(stats[1][id].memory_stats.usage))
        end
    end)

    it("keeps tasks for a second and asks for stats every time", function()
        local c = managed()
        local a = assert(c:tasks())
        assert.are.equal(a, c:tasks())
        assert.are.equal(1, requests("/v4/managed/tasks"))
        assert(c:tasks_stats())
        assert(c:tasks_stats())
        assert.are.equal(2, requests("/v4/managed/tasks/stats"))
        assert.are_not.equal(a, c:tasks { cache_ttl = 0 })
        assert.are.equal(2, requests("/v4/managed/tasks"))
        c = managed { cache_ttl = { tasks = 0, tasks_stats = 60 } }
        assert(c:tasks())
        assert(c:tasks())
        assert.are.equal(4, requests("/v4/managed/tasks"))
        assert.are.equal(c:tasks_stats(), c:tasks_stats())
    end)

    it("says, on EC2 and Fargate, that only daemon tasks on Managed Instances have them", function()
        for _, base in ipairs { "/v4/ec2", "/v4/fargate" } do
            local c = client { ECS_CONTAINER_METADATA_URI_V4 = E .. base }
            for _, what in ipairs { "tasks", "tasks_stats" } do
                local v, msg, code, status = c[what](c)
                assert.is_nil(v)
                assert.are.same({ "http_status", 404 }, { code, status })
                assert.are.equal(what .. ": GET " .. E .. base
                    .. (what == "tasks" and "/tasks" or "/tasks/stats")
                    .. ": HTTP 404 Not Found (only daemon tasks on ECS Managed Instances have it)", msg)
            end
        end
    end)

    it("answers invalid_argument without a request where the source is not v4", function()
        local path = helpers.fixture_root() .. "/metadata-file/docs-ready-bridge.json"
        for _, case in ipairs {
            { { ECS_CONTAINER_METADATA_URI = E .. "/v3/ec2" }, "v3" },
            { { ECS_CONTAINER_METADATA_FILE = path }, "the container metadata file" },
            { { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/managed" }, "v2", { version = "v2" } },
        } do
            local c = client(case[1])
            for _, what in ipairs { "tasks", "tasks_stats" } do
                local v, msg, code = c[what](c, case[3])
                assert.is_nil(v)
                assert.are.equal("invalid_argument", code)
                assert.matches("^" .. what .. ": only the task metadata endpoint v4 of a daemon task on "
                    .. "ECS Managed Instances has /tasks", msg)
                assert.matches("(this is " .. case[2] .. ")", msg, 1, true)
            end
        end
        assert.are.equal(0, helpers.stats().total)
        local v, msg, code = client({}):tasks()
        assert.is_nil(v)
        assert.are.equal("not_on_ecs", code)
        assert.matches("^tasks: not on ECS", msg)
    end)

    it("refuses an answer that is not an array of documents", function()
        -- /each/... answers the fixture below any path: here, one task object
        local c = client { ECS_CONTAINER_METADATA_URI_V4 = E .. "/each/v4-task/docs-ec2-awsvpc-curltest" }
        local v, msg, code, status = c:tasks()
        assert.is_nil(v)
        assert.are.same({ "bad_json", 200 }, { code, status })
        assert.matches("the answer is not an array of task documents", msg, 1, true)
        c = client { ECS_CONTAINER_METADATA_URI_V4 = E .. "/each/v4-task-stats/docs-ec2-awsvpc-curltest" }
        v, msg, code = c:tasks_stats()
        assert.is_nil(v)
        assert.are.equal("bad_json", code)
        assert.matches("the answer is not an array of maps of container id to stats", msg, 1, true)
        c = client { ECS_CONTAINER_METADATA_URI_V4 = E .. "/fault/garbage" }
        v, msg, code = c:tasks()
        assert.is_nil(v)
        assert.are.equal("bad_json", code)
        assert.matches("^tasks: GET ", msg)
    end)

    it("are functions of the module, cached in C like the others", function()
        local out, status, err = helpers.run_lua([[
            local ecs = require "ecs_metadata"
            local a = assert(ecs.tasks())
            print(#a, a == ecs.tasks(), #assert(ecs.tasks_stats()))
            print(ecs.tasks { version = "v3" })
        ]], { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/managed",
              ECS_CONTAINER_METADATA_URI = E .. "/v3/ec2" })
        assert.are.equal(0, status, err)
        assert.matches("^2\ttrue\t2\nnil\ttasks: only the task metadata endpoint v4", out)
        assert.is_function(ecs.tasks)
        assert.is_function(ecs.tasks_stats)
    end)
end)
