-- Helpers shared by the specs. Pure Lua (5.1-5.4, LuaJIT) plus lua-cjson.
--
-- The specs run against the test endpoint (endpoint/serve), which `make test`
-- starts; they never skip because it is missing.
--
--   helpers.endpoint()        base url of the endpoint ($ECSM_ENDPOINT)
--   helpers.url(path)         endpoint() .. path
--   helpers.fixture_root()    the fixture directory (spec/fixtures)
--   helpers.fixtures()        every fixture, sorted by dir/file:
--                               { dir = "v4-task", name = "docs-taskwithtags",
--                                 file = "docs-taskwithtags.json",
--                                 rel = "v4-task/docs-taskwithtags.json",
--                                 path = "<root>/v4-task/docs-taskwithtags.json",
--                                 body = <the bytes> }
--   helpers.fixture(rel)      one of those entries, by "dir/file"
--   helpers.read(path)        a file's bytes; a relative path is looked up
--                             under the fixture root first
--   helpers.stats()           the endpoint's request counters (/_stats)
--   helpers.requests(path)    its count of requests for path (0 if none)
--   helpers.reset()           clears counters and endpoint state (/_reset)
--   helpers.run_lua(src, env) runs src in a fresh interpreter like this one,
--                             with env changes (false unsets); returns
--                             stdout, exit status, stderr
--   helpers.run(command, env) runs the shell command line (words quoted by
--                             the caller) with env changes; returns stdout,
--                             exit status, stderr
--   helpers.shell_quote(s)    s quoted for sh
--   helpers.interpreter()     the command that starts an interpreter like
--                             this one ($ECSM_LUA, else luajit or lua5.N)
--   helpers.client(env, ...)  an ecs_metadata client with opts.env = env and
--                             link_local_url = the endpoint, then the option
--                             tables ... merged in order
--   helpers.SLACK             seconds added to the upper bounds of durations
--                             under valgrind (make valgrind), else 0

local cjson = require "cjson"

local helpers = {}

local function dirname(p)
    return p:match("^(.*)/[^/]*$") or "."
end

local ROOT = (function()
    local src = debug.getinfo(1, "S").source
    local here = src:sub(1, 1) == "@" and dirname(src:sub(2)) or "spec"
    here = here:gsub("^%./", "")
    return here .. "/fixtures"
end)()

local function shell_quote(s)
    return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end

helpers.SLACK = os.getenv("ECSM_UNDER_VALGRIND") and 1 or 0

function helpers.client(env, ...)
    local o = { env = env, link_local_url = helpers.endpoint() }
    for i = 1, select("#", ...) do
        for k, v in pairs(select(i, ...) or {}) do
            o[k] = v
        end
    end
    return assert(require("ecs_metadata").new(o))
end

function helpers.endpoint()
    local e = os.getenv("ECSM_ENDPOINT")
    if not e or e == "" then
        error("ECSM_ENDPOINT is not set: the specs need the test endpoint. "
              .. "Run them with `make test` (or `endpoint/serve exec busted ...`).", 2)
    end
    return (e:gsub("/+$", ""))
end

function helpers.url(path)
    return helpers.endpoint() .. path
end

function helpers.fixture_root()
    return ROOT
end

local function read_file(path)
    local f, err = io.open(path, "rb")
    if not f then
        return nil, err
    end
    local body = f:read("*a")
    f:close()
    return body
end

function helpers.read(path)
    if path:sub(1, 1) ~= "/" then
        local body = read_file(ROOT .. "/" .. path)
        if body then
            return body
        end
    end
    local body, err = read_file(path)
    if not body then
        error("cannot read " .. path .. ": " .. tostring(err), 2)
    end
    return body
end

-- Relative paths ("dir/file.json") of every .json file under the root.
local function list_json()
    local rels = {}
    local ok, lfs = pcall(require, "lfs")
    if ok and type(lfs) == "table" and lfs.dir then
        local function walk(dir, prefix)
            for entry in lfs.dir(dir) do
                if entry ~= "." and entry ~= ".." then
                    local full = dir .. "/" .. entry
                    local mode = lfs.attributes(full, "mode")
                    if mode == "directory" then
                        walk(full, prefix .. entry .. "/")
                    elseif mode == "file" and entry:match("%.json$") then
                        rels[#rels + 1] = prefix .. entry
                    end
                end
            end
        end
        walk(ROOT, "")
    else
        local p = assert(io.popen("cd " .. shell_quote(ROOT)
                                  .. " && find . -type f -name '*.json'"))
        for line in p:lines() do
            rels[#rels + 1] = line:gsub("^%./", "")
        end
        p:close()
    end
    table.sort(rels)
    if #rels == 0 then
        error("no fixtures found under " .. ROOT)
    end
    return rels
end

local fixture_list, fixture_index

function helpers.fixtures()
    if not fixture_list then
        fixture_list, fixture_index = {}, {}
        for _, rel in ipairs(list_json()) do
            local dir, file = rel:match("^(.*)/([^/]+)$")
            dir, file = dir or "", file or rel
            local entry = {
                dir = dir,
                name = file:gsub("%.json$", ""),
                file = file,
                rel = rel,
                path = ROOT .. "/" .. rel,
                body = helpers.read(ROOT .. "/" .. rel),
            }
            fixture_list[#fixture_list + 1] = entry
            fixture_index[rel] = entry
        end
    end
    -- A fresh list each time, so a spec may sort or filter it.
    local copy = {}
    for i, e in ipairs(fixture_list) do
        copy[i] = e
    end
    return copy
end

function helpers.fixture(rel)
    helpers.fixtures()
    return fixture_index[rel] or error("no fixture " .. rel, 2)
end

-- A client of the C core, made on first use (the core is what is under
-- test; these two calls only read the endpoint's own bookkeeping).
local client

local function control(path)
    if not client then
        client = assert(require("ecs_metadata.core").http())
    end
    local url = helpers.endpoint() .. path
    local body, status = client:get(url)
    if not body then
        error("GET " .. url .. " failed: " .. tostring(status), 3)
    end
    if status ~= 200 then
        error("GET " .. url .. " answered " .. tostring(status), 3)
    end
    return body
end

-- Counts as integers on 5.3+ (cjson decodes every number as a float there).
local toint = math.tointeger or function(x) return x end

function helpers.stats()
    local s = cjson.decode(control("/_stats"))
    for _, k in ipairs({ "total", "redirect_target" }) do
        s[k] = toint(s[k]) or s[k]
    end
    for _, map in ipairs({ s.requests, s.connections }) do
        for k, v in pairs(map) do
            map[k] = toint(v) or v
        end
    end
    return s
end

-- How many requests the endpoint has had for path since the last reset.
function helpers.requests(path)
    return helpers.stats().requests[path] or 0
end

function helpers.reset()
    control("/_reset")
end

-- The command that starts an interpreter like the running one.
local function interpreter()
    local lua = os.getenv("ECSM_LUA")
    if lua and lua ~= "" then
        return lua
    end
    if rawget(_G, "jit") then
        return "luajit"
    end
    return "lua" .. _VERSION:match("%d+%.%d+")
end

helpers.interpreter = interpreter
helpers.shell_quote = shell_quote

-- Runs the shell command line `command` (its words quoted by the caller)
-- with env changes, stdin from /dev/null.
function helpers.run(command, env)
    local out, err = os.tmpname(), os.tmpname()
    -- env(1) wants its -u options before the assignments.
    local unset, set = {}, {}
    for k, v in pairs(env or {}) do
        if v == false then
            unset[#unset + 1] = "-u " .. shell_quote(k)
        else
            set[#set + 1] = shell_quote(k .. "=" .. tostring(v))
        end
    end
    local p = assert(io.popen(table.concat({
        "env", table.concat(unset, " "), table.concat(set, " "), command,
        "</dev/null >" .. shell_quote(out) .. " 2>" .. shell_quote(err), "; echo $?",
    }, " ")))
    local status = tonumber(p:read("*a"):match("%d+"))
    p:close()
    local stdout, stderr = read_file(out) or "", read_file(err) or ""
    os.remove(out)
    os.remove(err)
    return stdout, status, stderr
end

function helpers.run_lua(src, env)
    local script = os.tmpname()
    local f = assert(io.open(script, "wb"))
    f:write(src)
    f:close()
    local stdout, status, stderr = helpers.run(interpreter() .. " " .. shell_quote(script), env)
    os.remove(script)
    return stdout, status, stderr
end

return helpers
