-- spec/nginx.lua: a real nginx (Debian's nginx-light with its Lua module,
-- as a user would run it) for the specs that test the module under nginx.
-- Test::Nginx is not in Debian; this is the small part of it the specs need.
--
--   local nginx = require "spec.nginx"
--   local n = nginx.start {
--       workers = 4,                          -- worker_processes (default 4)
--       env = { NAME = "value", OTHER = true },  -- `env NAME=value;` / `env OTHER;`
--       dicts = { ecs_metadata = "1m" },      -- lua_shared_dict lines
--       main = "...",                         -- more main-context lines
--       http = "...",                         -- more http-context lines
--       server = "...",                       -- the server's locations
--       error_log_level = "warn",
--       ports = 2,                            -- more ports: @PORT2@, @PORT3@
--       files = { ["cert.pem"] = "..." },     -- written into @DIR@ first
--       process_env = { NAME = "value" },     -- the master's environment
--   }
-- or, for a config of its own (examples/nginx.conf):
--   nginx.start { config = function(dir, port) return text end,
--                 ready = "/healthz", pid = "logs/nginx.pid",
--                 dirs = { "logs" }, links = { lua = "/path/to/lua" } }
--   n:url(path)          "http://127.0.0.1:PORT" .. path
--   n:get(path, opts)    body, status, headers (the C client, core.http)
--   n:get_json(path)     the same, decoded
--   n:get_new(path)      the same on a new connection (so, some worker)
--   n:log()              the error log's text so far
--   n:errors()           its lines at level error, crit, alert or emerg
--   n:stop()             stops this nginx (TERM to its master, by pid)
--   nginx.wrk(url, o)    a bounded wrk run: requests/s, p50/p99, non-2xx
--   nginx.build_dir()    the LuaJIT build of the C core these configs load
--                        ($ECSM_NGINX_BUILD, else build/luajit); raises if
--                        it is not built
--
-- The config runs the checkout's Lua layer (lua/) and the LuaJIT build of
-- the C core (build/luajit, `make LUA=luajit`), whatever Lua runs busted;
-- spec/ is on the path too, for modules that run inside nginx. The strings
-- @ENDPOINT@ (the test endpoint's base url), @ROOT@ (the checkout), @DIR@
-- (the instance's directory), @PORT@ and @PORT2@... are replaced in main,
-- http and server; n.ports lists the ports in that order. Everything lives in a temporary
-- directory, no root needed; the master is daemonized, so start() returns
-- once it answers on its port.

local core = require "ecs_metadata.core"
local helpers = require "spec.helpers"

local M = {}

local NGINX = os.getenv("ECSM_NGINX") or "/usr/sbin/nginx"
local MODULES = os.getenv("ECSM_NGINX_MODULES") or "/usr/lib/nginx/modules"

local function shell_quote(s)
    return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end

-- A command line run without the sanitizer runtime that busted may run
-- under (make SANITIZE=1): preloaded, it deadlocks some tools (pgrep, curl).
local function clean(cmd)
    return "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS sh -c "
        .. shell_quote(cmd)
end

-- Runs a shell command; true when it exits with 0 (on any Lua version).
local function run(cmd)
    local a, _, c = os.execute(clean(cmd))
    if type(a) == "number" then
        return a == 0
    end
    return a == true and (c == nil or c == 0)
end

local function read_file(path)
    local f = io.open(path, "rb")
    if not f then
        return nil
    end
    local s = f:read("*a")
    f:close()
    return s
end

local function write_file(path, s)
    local f = assert(io.open(path, "wb"))
    f:write(s)
    f:close()
end

local function capture(cmd)
    local p = assert(io.popen(clean(cmd)))
    local s = p:read("*a")
    p:close()
    return (s:gsub("%s+$", ""))
end

-- The checkout's absolute path (spec/.. of this file).
local ROOT = (function()
    local src = debug.getinfo(1, "S").source
    local here = src:sub(1, 1) == "@" and src:sub(2):match("^(.*)/[^/]*$") or "spec"
    return capture("cd " .. shell_quote(here .. "/..") .. " && pwd")
end)()
M.ROOT = ROOT

-- Debian's lua-cjson for the 5.1 ABI (nginx's LuaJIT), on any architecture:
-- this machine's own multiarch folder first (a cross build may have put
-- another architecture's beside it).
local function cjson_cpath()
    local native = capture("gcc -dumpmachine 2>/dev/null")
    local found = capture("ls /usr/lib/" .. native .. "/lua/5.1/cjson.so "
                          .. "/usr/lib/*/lua/5.1/cjson.so /usr/local/lib/lua/5.1/cjson.so "
                          .. "2>/dev/null | head -n 1")
    if found == "" then
        error("lua-cjson for Lua 5.1 is not installed (apt-get install lua-cjson)", 3)
    end
    return (found:gsub("/cjson%.so$", "/?.so"))
end

local function build_dir()
    local dir = os.getenv("ECSM_NGINX_BUILD") or (ROOT .. "/build/luajit")
    if not read_file(dir .. "/ecs_metadata/core.so") then
        error("the nginx specs need the C core built for LuaJIT: "
              .. dir .. "/ecs_metadata/core.so is missing (make LUA=luajit)", 3)
    end
    return dir
end
M.build_dir = build_dir

local function port_free(port)
    -- Anything that accepts a connection there is in the way.
    return not run("bash -c 'exec 3<>/dev/tcp/127.0.0.1/" .. port .. "' 2>/dev/null")
end

local function alive(pid)
    local stat = read_file("/proc/" .. pid .. "/stat")
    if not stat then
        return false
    end
    return stat:match("%) (%a)") ~= "Z"
end

local function sleep(s)
    core._sleep(s)
end

-- Ports below Linux's ephemeral range (32768 on), so that no outgoing
-- connection holds one, and below endpoint/serve's (20000-31999); spread by
-- time and pid, so that instances started at once differ. (Not math.random:
-- the specs must not move the library's random state.)
-- This Lua process (the parent of the shell popen starts).
local SPEC_PID = (function()
    local p = assert(io.popen("echo $PPID"))
    local pid = tonumber(p:read("*a"))
    p:close()
    return pid
end)()
-- Park and Miller's generator: every product stays below 2^53, so it is
-- exact in LuaJIT's and 5.1's doubles too (a larger multiplier lost the
-- low bits there, and drew the same port twice for one config).
local port_seed = (os.time() + SPEC_PID * 7919) % 2147483646 + 1
local function next_port()
    port_seed = port_seed * 48271 % 2147483647
    return 10000 + port_seed % 10000
end

-- A free port none of taken has (a list).
local function another_port(taken)
    while true do
        local p = next_port()
        local clash = not port_free(p)
        for _, t in ipairs(taken) do
            clash = clash or t == p
        end
        if not clash then
            return p
        end
    end
end

local TEMPLATE = [[
load_module @MODULES@/ndk_http_module.so;
load_module @MODULES@/ngx_http_lua_module.so;

@USER@
daemon on;
master_process on;
worker_processes @WORKERS@;
pid "@DIR@/nginx.pid";
lock_file "@DIR@/nginx.lock";
error_log "@DIR@/error.log" @LEVEL@;
@ENV@
@MAIN@

events {
    worker_connections 4096;
}

http {
    access_log @ACCESS_LOG@;
    default_type application/octet-stream;
    server_tokens off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;

    client_body_temp_path "@DIR@/tmp/body";
    proxy_temp_path "@DIR@/tmp/proxy";
    fastcgi_temp_path "@DIR@/tmp/fastcgi";
    uwsgi_temp_path "@DIR@/tmp/uwsgi";
    scgi_temp_path "@DIR@/tmp/scgi";

    lua_package_path "@ROOT@/lua/?.lua;@ROOT@/lua/?/init.lua;@ROOT@/?.lua;;";
    lua_package_cpath "@BUILD@/?.so;@CJSON@;;";
@DICTS@
@HTTP@

    server {
        listen 127.0.0.1:@PORT@ reuseport;
        location = /_nginx_ready { return 204; }
@SERVER@
    }
}
]]

local function fill(template, values)
    return (template:gsub("@([%u%d_]+)@", function(k)
        local v = values[k]
        if v == nil then
            return "@" .. k .. "@"
        end
        return tostring(v)
    end))
end

local Nginx = {}
Nginx.__index = Nginx

local function config(conf, dir, port, extra)
    local env = {}
    for name, v in pairs(conf.env or {}) do
        if v == true then
            env[#env + 1] = "env " .. name .. ";"
        else
            env[#env + 1] = "env " .. name .. "=" .. tostring(v) .. ";"
        end
    end
    table.sort(env)
    local dicts = {}
    for name, size in pairs(conf.dicts or {}) do
        dicts[#dicts + 1] = "    lua_shared_dict " .. name .. " " .. size .. ";"
    end
    table.sort(dicts)
    local user = ""
    if capture("id -u") == "0" then
        -- Workers would otherwise run as nobody and could not use dir.
        user = "user " .. capture("id -un") .. " " .. capture("id -gn") .. ";"
    end
    local sub = { ENDPOINT = helpers.endpoint(), ROOT = ROOT, DIR = dir, PORT = port }
    for i, p in ipairs(extra) do
        sub["PORT" .. (i + 1)] = p
    end
    return fill(TEMPLATE, {
        MODULES = MODULES, USER = user, WORKERS = conf.workers or 4,
        DIR = dir, LEVEL = conf.error_log_level or "warn",
        ENV = table.concat(env, "\n"), MAIN = fill(conf.main or "", sub),
        ACCESS_LOG = conf.access_log and ('"' .. dir .. '/access.log"') or "off",
        ROOT = ROOT, BUILD = build_dir(), CJSON = cjson_cpath(),
        DICTS = table.concat(dicts, "\n"), HTTP = fill(conf.http or "", sub),
        PORT = port, SERVER = fill(conf.server or "", sub),
    })
end

-- start(conf) -> instance; raises (with the error log) when nginx does not
-- come up.
function M.start(conf)
    conf = conf or {}
    local dir = capture("mktemp -d " .. shell_quote((os.getenv("TMPDIR") or "/tmp")
                                                   .. "/ecsm-nginx.XXXXXX"))
    assert(run("mkdir -p " .. shell_quote(dir .. "/tmp")))
    -- A config of its own may leave the workers to nginx's default user
    -- (nobody, when the master is root): they must be able to enter dir.
    assert(run("chmod 755 " .. shell_quote(dir)))
    for _, sub in ipairs(conf.dirs or {}) do
        assert(run("mkdir -p " .. shell_quote(dir .. "/" .. sub)))
    end
    for name, target in pairs(conf.links or {}) do
        assert(run("ln -s " .. shell_quote(target) .. " " .. shell_quote(dir .. "/" .. name)))
    end
    local port, started, extra
    for _ = 1, 40 do
        port = next_port()
        if port_free(port) then
            extra = {}
            local taken = { port }
            for i = 1, conf.ports or 0 do
                extra[i] = another_port(taken)
                taken[#taken + 1] = extra[i]
            end
            for name, text in pairs(conf.files or {}) do
                write_file(dir .. "/" .. name, text)
            end
            local text = conf.config and conf.config(dir, port)
                or config(conf, dir, port, extra)
            write_file(dir .. "/nginx.conf", text)
            write_file(dir .. "/error.log", "")
            -- Sanitizer runtimes that busted may run under are not nginx's,
            -- nor are its Lua paths (LuaJIT would take them for ";;").
            local assign = {}
            for name, v in pairs(conf.process_env or {}) do
                assign[#assign + 1] = shell_quote(name .. "=" .. v)
            end
            local cmd = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS "
                .. "-u LUA_PATH -u LUA_CPATH -u LUA_INIT "
                .. table.concat(assign, " ") .. " " .. shell_quote(NGINX) .. " -p " .. shell_quote(dir .. "/")
                .. " -c " .. shell_quote(dir .. "/nginx.conf")
                .. " -e " .. shell_quote(dir .. "/error.log")
                .. " >" .. shell_quote(dir .. "/start.log") .. " 2>&1"
            if run(cmd) then
                started = true
                break
            end
            local log = (read_file(dir .. "/start.log") or "")
                .. (read_file(dir .. "/error.log") or "")
            if not log:find("Address already in use", 1, true) then
                break
            end
        end
    end
    local self = setmetatable({ dir = dir, port = port, conf = conf, ports = { port } }, Nginx)
    for _, p in ipairs(extra or {}) do
        self.ports[#self.ports + 1] = p
    end
    if not started then
        local log = (read_file(dir .. "/start.log") or "") .. (read_file(dir .. "/error.log") or "")
        run("rm -rf " .. shell_quote(dir))
        error("spec/nginx: nginx did not start:\n" .. log, 2)
    end
    self.pid = tonumber(read_file(dir .. "/" .. (conf.pid or "nginx.pid")))
    -- nginx is a daemon: should this process die before stop(), a watchdog
    -- stops that master (by its pid) within a second.
    -- (It kills only a master still alive after its spec process is gone.)
    run(M.detached(("while kill -0 %d; do kill -0 %d || { kill -TERM %d; exit; }; sleep 1; done")
        :format(self.pid, SPEC_PID, self.pid)) .. " >/dev/null 2>&1 &")
    self.http = assert(core.http { timeout = 5 })
    for _ = 1, 200 do
        local _, status = self.http:get(self:url(conf.ready or "/_nginx_ready"))
        if status and status >= 200 and status < 300 then
            -- Give every worker the time to run init_worker_by_lua.
            sleep(0.05)
            return self
        end
        sleep(0.025)
    end
    local log = self:log()
    self:stop()
    error("spec/nginx: nginx started but does not answer:\n" .. log, 2)
end

function Nginx:url(path)
    return "http://127.0.0.1:" .. self.port .. (path or "")
end

function Nginx:get(path, opts)
    return self.http:get(self:url(path), opts)
end

function Nginx:get_json(path, opts)
    return self.http:get_json(self:url(path), opts)
end

-- A GET on a new connection: the port is `reuseport`, so the kernel hands
-- each new connection to one worker by its source port, and consecutive
-- calls reach different workers (without it one worker takes nearly all).
-- (reuseport would also let another process bind the same port: start()
-- only takes a port nothing listens on.)
function Nginx:get_new(path, opts)
    local c = assert(core.http { timeout = 10 })
    local body, status, headers = c:get(self:url(path), opts)
    c:close()
    return body, status, headers
end

function Nginx:log()
    return read_file(self.dir .. "/error.log") or ""
end

function Nginx:errors()
    local out = {}
    for line in self:log():gmatch("[^\n]+") do
        if line:find("%[error%]") or line:find("%[crit%]") or line:find("%[alert%]")
            or line:find("%[emerg%]") then
            out[#out + 1] = line
        end
    end
    return out
end

-- The worker pids, from the master's children.
function Nginx:workers()
    local out = {}
    for pid in capture("pgrep -P " .. self.pid):gmatch("%d+") do
        out[#out + 1] = tonumber(pid)
    end
    return out
end

function Nginx:stop()
    if self.stopped then
        return
    end
    self.stopped = true
    if self.http then
        self.http:close()
    end
    local pid = self.pid
    if pid and alive(pid) then
        local kids = self:workers()
        run("kill -TERM " .. pid .. " 2>/dev/null")
        for _ = 1, 250 do
            if not alive(pid) then
                break
            end
            sleep(0.02)
        end
        if alive(pid) then
            run("kill -KILL " .. pid .. " " .. table.concat(kids, " ") .. " 2>/dev/null")
        end
    end
    if not os.getenv("ECSM_KEEP_NGINX") then
        run("rm -rf " .. shell_quote(self.dir))
    end
end

Nginx.__gc = Nginx.stop

-- Durations wrk prints ("812.00us", "1.20ms", "2.01s") in milliseconds.
local function wrk_ms(s)
    local n, unit = s:match("^([%d.]+)(%a+)$")
    n = tonumber(n)
    if not n then
        return nil
    end
    return n * ({ us = 0.001, ms = 1, s = 1000, m = 60000 })[unit]
end

-- A bash command line that runs script without the descriptors this
-- process has open (a long-lived child would keep its sockets alive).
function M.detached(script)
    return "bash -c " .. shell_quote("for fd in /proc/$$/fd/*; do fd=${fd##*/}; "
        .. "if [ \"$fd\" -gt 2 ]; then eval \"exec $fd>&-\"; fi; done 2>/dev/null; "
        .. script)
end

-- The shell command that runs wrk with its arguments: without the
-- sanitizer runtime, and without the descriptors this process has open
-- (wrk sizes its event loop for its own connections: an inherited fd 30
-- makes its connections fail as "connect" errors).
function M.wrk_command(args)
    return M.detached("exec env -u LD_PRELOAD wrk " .. args)
end

-- wrk(url, {seconds = 2, connections = 16, threads = 2}) runs Debian's wrk
-- (bounded: at most 12 s) and answers { requests, rps, p50, p99 (ms),
-- non2xx, errors, text }.
function M.wrk(url, o)
    o = o or {}
    local seconds = math.min(o.seconds or 2, 12)
    local cmd = M.wrk_command(("--latency -t%d -c%d -d%ds %s"):format(
        o.threads or 2, o.connections or 16, seconds, shell_quote(url))) .. " 2>&1"
    local text = capture(cmd)
    local r = { text = text }
    -- (capture runs it without the sanitizer runtime)
    r.requests = tonumber(text:match("(%d+) requests in"))
    r.rps = tonumber(text:match("Requests/sec:%s*([%d.]+)"))
    r.p50 = wrk_ms(text:match("\n%s*50%%%s+(%S+)") or "")
    r.p99 = wrk_ms(text:match("\n%s*99%%%s+(%S+)") or "")
    r.non2xx = tonumber(text:match("Non%-2xx or 3xx responses:%s*(%d+)")) or 0
    local c, rd, w, t = text:match("Socket errors: connect (%d+), read (%d+), write (%d+), timeout (%d+)")
    r.errors = c and (tonumber(c) + tonumber(rd) + tonumber(w) + tonumber(t)) or 0
    if not r.requests or not r.rps then
        error("spec/nginx: wrk printed no figures:\n" .. text, 2)
    end
    return r
end

return M
