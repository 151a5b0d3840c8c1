-- The TLS phases of the README's phase table, in a real nginx with 4 workers
-- (spec/nginx.lua). ssl_certificate_by_lua has cosockets that may yield, so
-- a call there fetches what is missing (one request for the node) and
-- answers what is cached, as in the content phase. ssl_client_hello_by_lua
-- and ssl_session_fetch_by_lua yield only under OpenResty's patched nginx
-- and OpenSSL (with Debian's nginx a yield in the first ends the handshake;
-- shown below), so there the module does no I/O: it answers from the cache,
-- says not_ready on a miss and schedules the fetch, and refuses an uncached
-- call, as in init_worker. The handshakes are curl's (TLS 1.2 to a
-- self-signed certificate made here by openssl); the second of two
-- connections of one curl offers its session id, which is what makes nginx
-- run ssl_session_fetch_by_lua.
local helpers = require "spec.helpers"
local nginx = require "spec.nginx"
local cjson = require "cjson"

local E = helpers.endpoint()

local TASK_ARN = cjson.decode(helpers.read("v4-task/docs-ec2-awsvpc-curltest.json")).TaskARN
local BASE = "/chunked/v4/ec2"

-- RECORD(phase) makes the calls of one phase and keeps their answers in the
-- results dict: "<phase>:<run>:<call>" -> "ok <TaskARN or ?>" | "<code>
-- <msg>", run counting that phase's handshakes from 1.
local HTTP = [[
    init_by_lua_block {
        local function answer(src, ttl)
            local v, msg, code = require("ecs_metadata")[src] { cache_ttl = ttl }
            if v == nil then
                return tostring(code) .. " " .. tostring(msg)
            end
            return "ok " .. tostring(v.TaskARN or "?")
        end
        function RECORD(phase)
            local results = ngx.shared.results
            local run = results:incr(phase .. ":runs", 1, 0)
            local key = phase .. ":" .. run .. ":"
            results:set(key .. "task", answer("task", 60))
            results:set(key .. "task_stats", answer("task_stats", 0))
        end
    }
    ssl_session_fetch_by_lua_block { RECORD("ssl_session_fetch") }
    # A session is given an id that the client may offer again; nothing is
    # kept, so every handshake is a full one and reaches the certificate.
    ssl_session_store_by_lua_block { }
    server {
        listen 127.0.0.1:@PORT2@ ssl;
        ssl_certificate @DIR@/cert.pem;
        ssl_certificate_key @DIR@/key.pem;
        # Session ids (what ssl_session_fetch looks up) are TLS 1.2's.
        ssl_protocols TLSv1.2;
        ssl_session_tickets off;
        ssl_client_hello_by_lua_block { RECORD("ssl_client_hello") }
        ssl_certificate_by_lua_block { RECORD("ssl_certificate") }
        location / { return 204; }
    }
    # Why the module does no I/O in ssl_client_hello: a yield there.
    server {
        listen 127.0.0.1:@PORT3@ ssl;
        ssl_certificate @DIR@/cert.pem;
        ssl_certificate_key @DIR@/key.pem;
        ssl_client_hello_by_lua_block { ngx.sleep(0.001) }
        location / { return 204; }
    }
]]

local SERVER = [[
    location = /results {
        content_by_lua_block {
            local d = ngx.shared.results
            local out = {}
            for _, k in ipairs(d:get_keys(0)) do
                out[k] = d:get(k)
            end
            ngx.say(require("cjson").encode(out))
        }
    }
]]

local ENV = {
  ECS_CONTAINER_METADATA_URI_V4 = E .. BASE,
}

-- Tools run without the sanitizer runtime busted may run under.
local SANITIZER_FREE = { LD_PRELOAD = false, ASAN_OPTIONS = false, UBSAN_OPTIONS = false }

-- A self-signed certificate and its key, made for this run.
local function certificate()
  local dir = os.tmpname()
  os.remove(dir)
  local q = helpers.shell_quote
  local _, status, err = helpers.run(
    "mkdir " .. q(dir) .. " && openssl req -x509 -newkey rsa:2048 -nodes -days 1"
    .. " -subj /CN=127.0.0.1 -keyout " .. q(dir .. "/key.pem") .. " -out " .. q(dir .. "/cert.pem"),
    SANITIZER_FREE)
  assert(status == 0, "openssl could not make a certificate: " .. err)
  local files = { ["cert.pem"] = helpers.read(dir .. "/cert.pem"),
                  ["key.pem"] = helpers.read(dir .. "/key.pem") }
  helpers.run("rm -rf " .. q(dir))
  return files
end

local count = helpers.requests

-- curl's https GETs of url, n times in one run (one session): stdout
-- ("<status> <new connections>" a line each), exit status, stderr.
local function handshakes(url, n)
  local urls = {}
  for i = 1, n do
    urls[i] = helpers.shell_quote(url)
  end
  return helpers.run("curl -sSk --tlsv1.2 --tls-max 1.2 -H 'Connection: close'"
                     .. " -o /dev/null -w '%{http_code} %{num_connects}\\n' "
                     .. table.concat(urls, " "), SANITIZER_FREE)
end

describe("the TLS phases under nginx, with 4 workers #nginx", function()
  local server

  lazy_setup(function()
    helpers.reset()
    server = nginx.start { workers = 4, ports = 2, env = ENV, files = certificate(),
                           dicts = { ecs_metadata = "1m", results = "1m" },
                           http = HTTP, server = SERVER }
  end)

  lazy_teardown(function()
    if server then
      server:stop()
    end
  end)

  it("fetch in ssl_certificate, and only answer from the cache in the other two", function()
    local out, status, err = handshakes("https://127.0.0.1:" .. server.ports[2] .. "/", 2)
    assert.are.equal(0, status, err .. server:log())
    assert.are.equal("204 1\n204 1\n", out)

    local r = cjson.decode((server:get("/results")))
    assert.are.equal(2, r["ssl_client_hello:runs"])
    assert.are.equal(1, r["ssl_session_fetch:runs"])
    assert.are.equal(2, r["ssl_certificate:runs"])
    local function no_io(phase)
      return "invalid_argument task_stats: nginx's " .. phase .. " phase cannot do I/O "
        .. "(call it in rewrite, access or content, or in a timer; cached results are "
        .. "answered in every phase)"
    end
    -- The first handshake: nothing cached in client hello, then fetched in
    -- the certificate phase (which the scheduled timer's fetch waited for).
    assert.are.equal("not_ready task: not in the cache yet, and nginx's ssl_client_hello "
                     .. "phase cannot wait for the endpoint; a fetch has been scheduled",
                     r["ssl_client_hello:1:task"])
    assert.are.equal(no_io("ssl_client_hello"), r["ssl_client_hello:1:task_stats"])
    assert.are.equal("ok " .. TASK_ARN, r["ssl_certificate:1:task"])
    assert.are.equal("ok ?", r["ssl_certificate:1:task_stats"])
    -- The second: cached everywhere; the stats fetched in ssl_certificate only.
    for _, phase in ipairs { "ssl_client_hello:2", "ssl_session_fetch:1", "ssl_certificate:2" } do
      assert.are.equal("ok " .. TASK_ARN, r[phase .. ":task"], phase)
    end
    assert.are.equal(no_io("ssl_session_fetch"), r["ssl_session_fetch:1:task_stats"])
    assert.are.equal("ok ?", r["ssl_certificate:2:task_stats"])
    assert.are.equal(1, count(BASE .. "/task"))
    assert.are.equal(2, count(BASE .. "/task/stats"))
    assert.are.same({}, server:errors())
  end)

  it("(a yield in ssl_client_hello ends the handshake with this nginx)", function()
    local out, status = handshakes("https://127.0.0.1:" .. server.ports[3] .. "/", 1)
    -- curl: (35) the handshake failed. Under OpenResty's nginx it would
    -- succeed; should this nginx ever be such, this says so.
    assert.are.equal(35, status, out)
  end)
end)
