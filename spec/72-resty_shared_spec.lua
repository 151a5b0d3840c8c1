-- The cross-worker cache (ecs_metadata.resty.shared) in a real nginx with 4
-- workers and a lua_shared_dict, against the test endpoint: one request per
-- ttl for the whole node, a cold start that asks once, the negative cache,
-- stale-if-error, stale-while-revalidate, each worker's tables replaced by
-- a newer document, what stays out of the dict, and phases without I/O.
local helpers = require "spec.helpers"
local nginx = require "spec.nginx"
local cjson = require "cjson"
local core = require "ecs_metadata.core"

local SLACK = helpers.SLACK
local TASK = "/v4/ec2/task"

local HTTP = [[
    init_worker_by_lua_block {
        local shared = require "ecs_metadata.resty.shared"
        local core = require "ecs_metadata.core"
        local t = require("ecs_metadata.transport.cosocket").new()
        CACHE = shared.new(shared.dict())
        -- The cache under test, with fetch_raw a plain GET (no retries).
        function FETCH(args)
            local url = "@ENDPOINT@" .. args.path
            local expires = tonumber(args.expires)
            local ttl = tonumber(args.ttl) or 1
            local policy = {
                -- With expires, the ttl is capped like credentials' one.
                ttl = expires and function() return ttl, expires - ngx.now() end or ttl,
                error_ttl = tonumber(args.error_ttl),
                stale_ttl = tonumber(args.stale_ttl),
                timeout = tonumber(args.timeout) or 1,
                decode = function(raw) return core.decode(raw) end,
                share = args.share ~= "0",
                name = "spec",
            }
            return CACHE:fetch(url, policy, function()
                ngx.shared.spec_counts:incr("fetches", 1, 0)
                local body, status, h = t:request("GET", url, nil, { timeout = policy.timeout })
                if not body then
                    return nil, status, h
                end
                if status ~= 200 then
                    return nil, "GET " .. url .. ": HTTP " .. status, "http_status", status
                end
                return body
            end)
        end
        function ANSWER(args, v, a, b, c)
            local cjson = require "cjson"
            local out
            if v == nil then
                ngx.status = 503
                out = { code = b, msg = a, status = c }
            else
                out = { fetched_at = a, stale = b, pid = ngx.worker.pid(),
                        kind = v.Containers and "task" or "container" }
                if args.want and out.kind ~= args.want then
                    ngx.status = 500        -- a crossed answer
                end
            end
            return cjson.encode(out)
        end
    }
]]

local SERVER = [[
    location = /fetch {
        content_by_lua_block {
            local args = ngx.req.get_uri_args()
            ngx.say(ANSWER(args, FETCH(args)))
        }
    }
    location = /fetches {
        content_by_lua_block {
            local n = ngx.shared.spec_counts:get("fetches") or 0
            if ngx.var.arg_reset then
                ngx.shared.spec_counts:set("fetches", 0)
            end
            ngx.say(n)
        }
    }
    location = /dict {
        content_by_lua_block {
            local cjson = require "cjson"
            local d = ngx.shared.ecs_metadata
            local keys = {}
            for _, k in ipairs(d:get_keys(0)) do
                keys[#keys + 1] = k
            end
            table.sort(keys)
            ngx.say(cjson.encode(keys))
        }
    }
    # A phase without I/O: the answer goes into a header.
    location = /in_header_filter {
        header_filter_by_lua_block {
            local args = ngx.req.get_uri_args()
            local v, a, b = FETCH(args)
            ngx.header["X-Answer"] = v and ("ok " .. tostring(b)) or (tostring(b) .. " " .. a)
        }
        return 204;
    }
]]

local server

local function get(query)
  local body, status = server:get_new("/fetch?" .. query)
  return status, cjson.decode(body)
end

local count = helpers.requests

-- How many times fetch_raw ran on the node since the last call.
local function fetches()
  return tonumber((server:get("/fetches?reset=1")))
end

local function mode(q)
  assert(core.http():get(helpers.url("/_mode" .. (q or ""))))
end

local function sleep(s)
  core._sleep(s)
end

lazy_setup(function()
  server = nginx.start { workers = 4, dicts = { ecs_metadata = "1m", spec_counts = "1m" }, http = HTTP,
                         server = SERVER }
end)

lazy_teardown(function()
  if server then
    server:stop()
  end
end)

before_each(function()
  helpers.reset()
  fetches()
  -- Each test starts from an empty dict and empty worker tables: the
  -- documents' urls differ per test (a query string the endpoint ignores).
end)

-- A url of its own per test (the endpoint ignores the query string), so
-- each test starts with nothing cached for it.
local seq = 0
local function fresh_path()
  seq = seq + 1
  return TASK .. "?t=" .. seq .. "-" .. os.time()
end

local function escape(s)
  return (s:gsub("[^%w%-_.]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- The query string of /fetch for path, with more arguments before it.
local function query(path, more)
  return (more and more .. "&" or "") .. "path=" .. escape(path)
end

describe("the shared cache #nginx", function()
  it("asks the endpoint once per ttl for the whole node under load", function()
    local t0 = core.now()
    local r = nginx.wrk(server:url("/fetch?" .. query(fresh_path(), "ttl=1&want=task")),
                        { seconds = 3, connections = 32 })
    local elapsed = core.now() - t0
    assert.are.equal(0, r.non2xx, r.text)
    assert.are.equal(0, r.errors, r.text)
    assert.is_true(r.requests > 1000, r.text)
    -- One at the start, then one per second of the run at most.
    local most = math.floor(elapsed) + 1
    local n = fetches()
    assert.is_true(n >= 2 and n <= most + SLACK,
                   ("%d fetches in %.2f s with ttl 1"):format(n, elapsed))
    assert.are.equal(n, count(TASK))
  end)

  it("on a cold start, fetches once while every worker waits for it", function()
    mode("?slow=400")
    local r = nginx.wrk(server:url("/fetch?" .. query(fresh_path(), "ttl=30&timeout=2&want=task")),
                        { seconds = 1, connections = 40 })
    assert.are.equal(0, r.non2xx, r.text)
    assert.is_true(r.requests > 40, r.text)
    assert.are.equal(1, count(TASK))
  end)

  it("replaces each worker's table when the node has a newer document", function()
    local path = fresh_path()
    local first, pids = nil, {}
    for _ = 1, 24 do
      local status, r = get(query(path, "ttl=0.6"))
      assert.are.equal(200, status)
      first = first or r.fetched_at
      assert.are.equal(first, r.fetched_at)
      pids[r.pid] = true
    end
    local workers = 0
    for _ in pairs(pids) do workers = workers + 1 end
    assert.is_true(workers >= 2, "only " .. workers .. " worker answered")
    sleep(0.7)
    local second
    for _ = 1, 24 do
      local _, r = get(query(path, "ttl=0.6"))
      second = second or r.fetched_at
      assert.are.equal(second, r.fetched_at)
    end
    assert.is_true(second > first)
    assert.are.equal(2, count(TASK))
  end)

  it("answers a failure to every worker for error_ttl without asking again", function()
    local path = fresh_path()
    local q = query(path, "error_ttl=1")
    mode("?down=1")
    local status, r = get(q)
    assert.are.equal(503, status)
    assert.are.equal("unreachable", r.code)
    assert.matches("Empty reply from server", r.msg, 1, true)
    local w = nginx.wrk(server:url("/fetch?" .. q), { seconds = 2, connections = 16 })
    assert.are.equal(w.requests, w.non2xx, w.text)
    assert.is_true(w.requests > 1000, w.text)
    -- t = 0 (above), then about once a second: at most 4 fetches in these
    -- ~2 s. (A fetch that takes a pooled connection asks twice: the server
    -- hangs up without a word, as a stale keep-alive connection would.)
    local n = fetches()
    assert.is_true(n >= 2 and n <= 4 + SLACK, n .. " fetches, error_ttl 1")
    assert.is_true(count(TASK) <= 2 * n, count(TASK) .. " requests for " .. n .. " fetches")
    -- It comes back within one error_ttl.
    mode()
    local t0, ok = core.now(), false
    while core.now() - t0 < 1.5 + SLACK do
      if get(q) == 200 then
        ok = true
        break
      end
      sleep(0.05)
    end
    assert.is_true(ok, "no recovery within error_ttl")
  end)

  it("answers the last document for stale_ttl when the endpoint fails (stale-if-error)", function()
    local path = fresh_path()
    local q = query(path, "ttl=0.5&stale_ttl=1")
    local status, r = get(q)
    assert.are.equal(200, status)
    local fetched = r.fetched_at
    mode("?down=1")
    sleep(0.6)
    for _ = 1, 8 do
      status, r = get(q)
      assert.are.equal(200, status)
      assert.are.equal("error", r.stale)
      assert.are.equal(fetched, r.fetched_at)
    end
    sleep(1.0)
    status, r = get(q)
    assert.are.equal(503, status)
    assert.are.equal("unreachable", r.code)
  end)

  it("never answers a document past its expires, stale or not", function()
    local path = fresh_path()
    local expires = os.time() + 1.2
    local q = query(path, ("ttl=10&stale_ttl=60&expires=%f"):format(expires))
    assert.are.equal(200, (get(q)))
    mode("?down=1")
    assert.are.equal(200, (get(q)))
    sleep(expires - os.time() + 0.3)
    local status, r = get(q)
    assert.are.equal(503, status)
    assert.are.equal("unreachable", r.code)
  end)

  it("keeps answering the last document while one worker fetches the next", function()
    local path = fresh_path()
    local q = query(path, "ttl=0.5&timeout=3&want=task")
    assert.are.equal(200, (get(q)))
    mode("?slow=1500")
    sleep(0.6)
    local w = nginx.wrk(server:url("/fetch?" .. q), { seconds = 1, connections = 8 })
    assert.are.equal(0, w.non2xx, w.text)
    assert.is_true(w.requests > 100, w.text)
    -- The one request that fetches waits 1.5 s; every other one is served
    -- at once from the last document (the bound is far below 1.5 s and far
    -- above what a busy machine adds).
    assert.is_true(w.p99 < 250, w.text)
    assert.are.equal(2, count(TASK))
  end)

  it("keeps a document out of the dict when share is false", function()
    local path = fresh_path()
    local q = query(path, "share=0")
    assert.are.equal(200, (get(q)))
    local keys = cjson.decode((server:get("/dict")))
    for _, k in ipairs(keys) do
      assert.is_nil(k:find(path, 1, true), k)
    end
    local shared_path = fresh_path()
    get(query(shared_path))
    keys = table.concat(cjson.decode((server:get("/dict"))), " ")
    assert.matches("b:" .. helpers.url(shared_path), keys, 1, true)
  end)

  it("in a phase without I/O, answers not_ready and has a timer fetch it", function()
    local path = fresh_path()
    local q = query(path, "ttl=30")
    local _, status, headers = server:get("/in_header_filter?" .. q)
    assert.are.equal(204, status)
    assert.matches("^not_ready spec: not in the cache yet, and nginx's header_filter phase",
                   headers["x-answer"])
    assert.matches("a fetch has been scheduled", headers["x-answer"], 1, true)
    local t0 = core.now()
    repeat
      sleep(0.02)
      headers = select(3, server:get("/in_header_filter?" .. q))
    until headers["x-answer"]:match("^ok") or core.now() - t0 > 2
    assert.are.equal("ok nil", headers["x-answer"])
    -- Every worker answers it from the dict now.
    for _ = 1, 12 do
      assert.are.equal(200, (get(q)))
    end
    assert.are.equal(1, count(TASK))
  end)
end)
