-- What only the cosocket transport has: https through sslhandshake with the
-- certificate verified, one object shared by many requests of a worker at
-- once, and the phases without cosockets, where it refuses at once. In a real
-- nginx with 4 workers (spec/nginx.lua), against the test endpoint.
local helpers = require "spec.helpers"
local nginx = require "spec.nginx"
local cjson = require "cjson"

local function shell(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"rc=$?\""))
  local out = p:read("*a")
  p:close()
  assert(out:match("rc=0%s*$"), cmd .. ":\n" .. out)
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- A self-signed certificate for localhost and 127.0.0.1 (and another one,
-- which nothing trusts).
local function certificates()
  local dir = os.tmpname()
  os.remove(dir)
  shell("mkdir -p " .. dir)
  local files = {}
  for _, name in ipairs { "trusted", "stranger" } do
    shell(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
           .. "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
           .. "-keyout %s/%s.key -out %s/%s.pem"):format(dir, name, dir, name))
    files[name .. ".key"] = slurp(dir .. "/" .. name .. ".key")
    files[name .. ".pem"] = slurp(dir .. "/" .. name .. ".pem")
  end
  shell("rm -rf " .. dir)
  return files
end

local HTTP = [[
    lua_ssl_trusted_certificate "@DIR@/trusted.pem";
    lua_ssl_verify_depth 2;
    init_worker_by_lua_block {
        -- One transport object per worker, shared by all its requests.
        SHARED = require("ecs_metadata.transport.cosocket").new()
    }
    server {
        listen 127.0.0.1:@PORT2@ ssl;
        ssl_certificate "@DIR@/trusted.pem";
        ssl_certificate_key "@DIR@/trusted.key";
        add_header X-Connection $connection always;
        location / { return 200 '{"tls":"trusted"}'; }
    }
    server {
        listen 127.0.0.1:@PORT3@ ssl;
        ssl_certificate "@DIR@/stranger.pem";
        ssl_certificate_key "@DIR@/stranger.key";
        location / { return 200 '{"tls":"stranger"}'; }
    }
]]

local SERVER = [[
    location = /tls {
        content_by_lua_block {
            local cjson = require "cjson"
            local t = SHARED
            local out = { ids = {} }
            local function rec(url)
                local v, a, b = t:get_json(url)
                return { ok = v ~= nil, value = v, status = a, msg = not v and a or nil,
                         code = not v and b or nil }
            end
            out.ip = rec("https://127.0.0.1:@PORT2@/x")
            out.name = rec("https://localhost:@PORT2@/x")
            out.stranger = rec("https://127.0.0.1:@PORT3@/x")
            out.plain = rec("https://127.0.0.1:@PORT@/_nginx_ready")
            for i = 1, 5 do
                local _, _, h = t:request("GET", "https://127.0.0.1:@PORT2@/x")
                out.ids[i] = h and h["x-connection"] or "none"
            end
            ngx.say(cjson.encode(out))
        }
    }

    # 60 requests at once in one worker, through one object, for three
    # documents: every answer must be the one asked for.
    location = /concurrent {
        content_by_lua_block {
            local cjson = require "cjson"
            local E = "@ENDPOINT@"
            local paths = { "/v4/ec2/task", "/v4/ec2", "/chunked/v4/fargate/task" }
            local threads = {}
            for i = 1, 60 do
                local path = paths[i % 3 + 1]
                threads[i] = ngx.thread.spawn(function()
                    local v, status = SHARED:get_json(E .. path)
                    return path, v, status
                end)
            end
            local out = { answers = 0, crossed = 0, failed = {} }
            for i = 1, 60 do
                local _, path, v, status = ngx.thread.wait(threads[i])
                if type(v) ~= "table" or status ~= 200 then
                    out.failed[#out.failed + 1] = path .. " " .. tostring(status)
                else
                    out.answers = out.answers + 1
                    local is_task = v.Containers ~= nil
                    local want_task = path ~= "/v4/ec2"
                    if is_task ~= want_task then
                        out.crossed = out.crossed + 1
                    end
                end
            end
            ngx.say(cjson.encode(out))
        }
    }

    # The phases without cosockets: a request there is refused at once.
    location = /phases {
        set_by_lua_block $in_set {
            local _, msg, code = SHARED:get_json("@ENDPOINT@/v4/ec2/task")
            return tostring(code) .. " " .. tostring(msg)
        }
        header_filter_by_lua_block {
            local _, msg, code = SHARED:get_json("@ENDPOINT@/v4/ec2/task")
            ngx.header["X-Header-Filter"] = tostring(code) .. " " .. tostring(msg)
        }
        log_by_lua_block {
            local _, msg, code = SHARED:get_json("@ENDPOINT@/v4/ec2/task")
            ngx.log(ngx.WARN, "in log phase: ", code, " ", msg)
        }
        content_by_lua_block {
            ngx.say(ngx.var.in_set)
        }
    }
]]

describe("cosocket transport #nginx", function()
  local server

  lazy_setup(function()
    helpers.reset()
    server = nginx.start { workers = 4, ports = 2, files = certificates(), http = HTTP,
                           server = SERVER }
  end)

  lazy_teardown(function()
    if server then
      server:stop()
    end
  end)

  it("speaks https, verifying the certificate against lua_ssl_trusted_certificate", function()
    local body, status = server:get("/tls")
    assert.are.equal(200, status, body)
    local r = cjson.decode(body)
    assert.is_true(r.ip.ok, r.ip.msg)
    assert.are.equal("trusted", r.ip.value.tls)
    assert.is_true(r.name.ok, r.name.msg)
    assert.are.equal("trusted", r.name.value.tls)
    assert.is_false(r.stranger.ok)
    assert.are.equal("unreachable", r.stranger.code)
    assert.matches("TLS handshake with 127.0.0.1 port " .. server.ports[3], r.stranger.msg, 1, true)
    assert.matches("certificate", r.stranger.msg, 1, true)
    assert.is_false(r.plain.ok)
    assert.are.equal("unreachable", r.plain.code)
    -- The TLS connection is kept alive like a plain one.
    assert.are.equal(5, #r.ids)
    for i = 2, 5 do
      assert.are.equal(r.ids[1], r.ids[i])
    end
    assert.are_not.equal("none", r.ids[1])
  end)

  it("serves many requests of a worker at once through one object, none crossed", function()
    for _ = 1, 4 do
      local body, status = server:get("/concurrent", { timeout = 20 })
      assert.are.equal(200, status, table.concat(server:errors(), "\n"))
      local r = cjson.decode(body)
      assert.are.same({}, r.failed)
      assert.are.equal(60, r.answers)
      assert.are.equal(0, r.crossed)
    end
  end)

  it("refuses at once, sending nothing, in the phases without cosockets", function()
    helpers.reset()
    local body, status, headers = server:get("/phases")
    assert.are.equal(200, status)
    assert.matches("^invalid_argument GET .*: cosockets are not available in nginx's set phase",
                   body)
    assert.matches("^invalid_argument .*header_filter phase", headers["x-header-filter"])
    local log
    for _ = 1, 50 do
      log = server:log()
      if log:find("in log phase", 1, true) then
        break
      end
      require("ecs_metadata.core")._sleep(0.02)
    end
    assert.matches("in log phase: invalid_argument GET [^\n]*log phase", log)
    assert.are.equal(0, helpers.stats().total)
  end)
end)
