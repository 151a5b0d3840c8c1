-- The transport conformance cases: each one drives a transport (the curl one
-- in plain Lua, the cosocket one inside nginx) against the test endpoint and
-- answers what happened as a plain table that JSON can carry, so that
-- spec/70-transport_conformance_spec.lua applies the same assertions to
-- every transport. Pure Lua: this file runs in busted and inside nginx.
--
--   cases.run(name, ctx) -> result
--     ctx.transport   the transport module (new, now)
--     ctx.E           the endpoint's base url
--     ctx.blackhole   base url of a listener whose backlog is full (a
--                     connect there hangs), for the connect timeout
--     ctx.fixtures    list of { rel = "dir/file.json", path = <file> }
--     ctx.limits      core.LIMITS (the bounds every transport holds to)
--
-- A call's answer is recorded as { ok, body|value, status, headers, msg,
-- code, elapsed } (call()); bodies are compared here, not carried back.

local M = {}

local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

-- Runs f(...) and records its answer in the transport's conventions.
local function call(now, f, ...)
    local t0 = now()
    local a, b, c, d, e = f(...)
    local r = { elapsed = now() - t0 }
    if a == nil then
        r.ok = false
        r.msg, r.code, r.status = b, c, d
        r.has_headers = type(e) == "table"
    else
        r.ok = true
        r.status = b
        r.has_headers = type(c) == "table"
        r.headers = type(c) == "table" and c or nil
        r.body = a
    end
    return r
end

-- Only the headers a spec looks at (the rest would not survive JSON as is).
local KEEP = { "content-length", "transfer-encoding", "retry-after", "location",
               "x-connection", "content-type" }

local function slim(r, keep_body)
    if r.headers then
        local h = {}
        for _, k in ipairs(KEEP) do
            h[k] = r.headers[k]
        end
        r.headers = h
    end
    if not keep_body then
        if type(r.body) == "string" then
            r.len = #r.body
        end
        r.body = nil
    end
    return r
end

local cases = {}

-- Every fixture, with Content-Length and chunked (Go's 4 KiB chunks, and
-- 7-byte ones so chunk boundaries fall everywhere).
cases.fixtures = function(ctx, t)
    local out = { count = 0, mismatches = {}, framing = {} }
    for _, f in ipairs(ctx.fixtures) do
        local want = read(f.path)
        for _, form in ipairs {
            { "/fixtures/", "", "length" },
            { "/chunked/fixtures/", "", "chunked" },
            { "/chunked/fixtures/", "?chunk=7", "chunked" },
        } do
            local body, status, h = t:request("GET", ctx.E .. form[1] .. f.rel .. form[2])
            out.count = out.count + 1
            if body ~= want or status ~= 200 then
                out.mismatches[#out.mismatches + 1] = form[1] .. f.rel .. form[2] .. " "
                    .. tostring(status) .. " " .. tostring(body and #body) .. "/" .. #want
            end
            local framed = h and (h["transfer-encoding"] == "chunked" and "chunked"
                                  or h["content-length"] and "length")
            if framed ~= form[3] then
                out.framing[#out.framing + 1] = form[1] .. f.rel .. ": " .. tostring(framed)
            end
        end
    end
    return out
end

-- get_json decodes chunked answers the same as length-delimited ones.
cases.json_chunked = function(ctx, t)
    local a = call(ctx.now, t.get_json, t, ctx.E .. "/v4/ec2/task")
    local b = call(ctx.now, t.get_json, t, ctx.E .. "/chunked/v4/ec2/task?chunk=5")
    local same = a.ok and b.ok and a.body.TaskARN == b.body.TaskARN
        and #a.body.Containers == #b.body.Containers
        and a.body.Containers[1].DockerId == b.body.Containers[1].DockerId
    return { same = same, arn = a.ok and a.body.TaskARN, status = b.status }
end

-- Consecutive requests reuse one connection, with either framing, and after
-- failures too.
cases.keepalive = function(ctx, t)
    local out = {}
    for _, path in ipairs { "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json",
                            "/chunked/fixtures/v4-task/docs-ec2-awsvpc-curltest.json" } do
        local seen, n = {}, 0
        for _ = 1, 20 do
            local _, status, h = t:request("GET", ctx.E .. path)
            local id = h and h["x-connection"]
            if status == 200 and id and not seen[id] then
                seen[id] = true
                n = n + 1
            end
        end
        out[#out + 1] = n
    end
    return { connections = out }
end

cases.after_failure = function(ctx, t)
    local big = call(ctx.now, t.request, t, "GET", ctx.E .. "/fault/huge")
    local slow = call(ctx.now, t.request, t, "GET", ctx.E .. "/fault/slow?ms=2000", nil,
                      { timeout = 0.2 })
    local ok = call(ctx.now, t.request, t, "GET",
                    ctx.E .. "/fixtures/v4-stats/docs-ec2-awsvpc-curl.json")
    local same = ok.body == read(ctx.fixtures_root .. "/v4-stats/docs-ec2-awsvpc-curl.json")
    return { big = slim(big), slow = slim(slow), ok = slim(ok), same = same }
end

cases.statuses = function(ctx, t)
    local out = {}
    for _, name in ipairs { "404", "500", "503", "429" } do
        out[name] = slim(call(ctx.now, t.request, t, "GET", ctx.E .. "/fault/" .. name))
    end
    return out
end

cases.response_headers = function(ctx, t)
    local url = ctx.E .. "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json"
    local quiet = assert(ctx.transport.new { response_headers = false })
    return {
        off = slim(call(ctx.now, t.request, t, "GET", url, nil, { response_headers = false })),
        off_429 = slim(call(ctx.now, t.request, t, "GET", ctx.E .. "/fault/429", nil,
                            { response_headers = false })),
        client_off = slim(call(ctx.now, quiet.request, quiet, "GET", url)),
        client_off_call_on = slim(call(ctx.now, quiet.request, quiet, "GET", url, nil,
                                       { response_headers = true })),
        client_off_json = slim(call(ctx.now, quiet.get_json, quiet, url)),
        json_on = slim(call(ctx.now, t.get_json, t, url)),
    }
end

cases.redirect = function(ctx, t)
    local before = assert(t:get_json(ctx.E .. "/_stats")).redirect_target
    local r = slim(call(ctx.now, t.request, t, "GET", ctx.E .. "/fault/redirect"))
    local after = assert(t:get_json(ctx.E .. "/_stats")).redirect_target
    return { r = r, followed = after - before }
end

cases.empty = function(ctx, t)
    return {
        length = slim(call(ctx.now, t.request, t, "GET", ctx.E .. "/fault/empty"), true),
        chunked = slim(call(ctx.now, t.request, t, "GET", ctx.E .. "/chunked/fault/empty"), true),
        html = slim(call(ctx.now, t.request, t, "GET", ctx.E .. "/fault/html")),
    }
end

-- Failures within timeout + 0.5 s (timeout = 0.5).
local FAULTS = {
    slow = "/fault/slow?ms=3000",
    trickle = "/fault/trickle",
    truncated = "/fault/truncated",
    huge = "/fault/huge",
    huge_chunked = "/fault/huge-chunked",
    slow_chunked = "/chunked/fault/slow?ms=3000",
}

cases.faults = function(ctx, t)
    local out = {}
    for name, path in pairs(FAULTS) do
        out[name] = slim(call(ctx.now, t.request, t, "GET", ctx.E .. path, nil, { timeout = 0.5 }))
    end
    out.refused = slim(call(ctx.now, t.request, t, "GET", "http://127.0.0.1:1/", nil,
                            { timeout = 0.5 }))
    return out
end

-- The connect timeout, and the total one covering the connect.
cases.connect_timeout = function(ctx, t)
    return {
        connect = slim(call(ctx.now, t.request, t, "GET", ctx.blackhole .. "/x", nil,
                            { timeout = 3, connect_timeout = 0.3 })),
        total = slim(call(ctx.now, t.request, t, "GET", ctx.blackhole .. "/x", nil,
                          { timeout = 0.4, connect_timeout = 2 })),
    }
end

cases.max_bytes = function(ctx, t)
    local path = "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json"
    local small = assert(ctx.transport.new { max_bytes = 100 })
    return {
        length = slim(call(ctx.now, t.request, t, "GET", ctx.E .. path, nil, { max_bytes = 100 })),
        chunked = slim(call(ctx.now, t.request, t, "GET", ctx.E .. "/chunked" .. path, nil,
                            { max_bytes = 100 })),
        client = slim(call(ctx.now, small.request, small, "GET", ctx.E .. path)),
        client_call = slim(call(ctx.now, small.request, small, "GET", ctx.E .. path, nil,
                                { max_bytes = 1e6 })),
        exact = slim(call(ctx.now, t.request, t, "GET", ctx.E .. "/fault/empty", nil,
                          { max_bytes = 1 })),
    }
end

cases.headers = function(ctx, t)
    local token = "TEST-AUTH-do-not-log"
    local url = ctx.E .. "/creds/full"
    local with = assert(ctx.transport.new { headers = { Authorization = "wrong" } })
    local out = {
        none = slim(call(ctx.now, t.request, t, "GET", url)),
        call = slim(call(ctx.now, t.request, t, "GET", url, nil,
                         { headers = { Authorization = token } })),
        client = slim(call(ctx.now, with.request, with, "GET", url)),
        over = slim(call(ctx.now, with.request, with, "GET", url, nil,
                         { headers = { authorization = token } })),
        refused = slim(call(ctx.now, t.request, t, "GET", "http://127.0.0.1:1/", nil,
                            { headers = { Authorization = token } })),
        crlf = slim(call(ctx.now, t.request, t, "GET", url, nil,
                         { headers = { Authorization = token .. "\r\nX-Evil: 1" } })),
    }
    out.token = token
    return out
end

cases.labels = function(ctx, t)
    return {
        userinfo = slim(call(ctx.now, t.request, t, "GET",
                             "http://user:secret@127.0.0.1:1/path?token=secret", nil,
                             { timeout = 0.5 })),
        label = slim(call(ctx.now, t.request, t, "GET", "http://127.0.0.1:1/v2/credentials/abc",
                          nil, { label = "credentials endpoint" })),
    }
end

-- The head (status lines, headers and trailers together) capped at
-- max_header_bytes, per call over the transport's; repeats joined in order.
cases.header_bytes = function(ctx, t)
    local repeated = ctx.E .. "/fault/repeated-headers?n="
    local small = assert(ctx.transport.new { max_header_bytes = 1000 })
    local most = ctx.limits.max_header_bytes
    local out = {
        headers = slim(call(ctx.now, t.request, t, "GET", repeated .. "2000", nil,
                            { max_header_bytes = 1000 })),
        trailers = slim(call(ctx.now, t.request, t, "GET", repeated .. "2000&trailers=1", nil,
                             { max_header_bytes = 1000 })),
        client = slim(call(ctx.now, small.request, small, "GET", repeated .. "2000")),
        client_call = slim(call(ctx.now, small.request, small, "GET", repeated .. "3", nil,
                                { max_header_bytes = most })),
        default = slim(call(ctx.now, t.request, t, "GET", repeated .. "14000")),
        joined = {},
    }
    local want = {}
    for i = 1, 14000 do
        want[i] = tostring(i)
    end
    want = table.concat(want, ", ")
    for _, q in ipairs { "14000", "14000&trailers=1", "3" } do
        local r = call(ctx.now, t.request, t, "GET", repeated .. q, nil,
                       { max_header_bytes = most })
        local got = r.headers and r.headers["x-repeat"]
        out.joined[q] = {
            status = r.status, elapsed = r.elapsed,
            value = q == "3" and got or nil,
            in_order = got == want,
            content_type = r.headers and r.headers["content-type"],
        }
    end
    small:close()
    return out
end

cases.invalid = function(ctx, t)
    local out = { urls = {}, opts = {} }
    for _, url in ipairs { "ftp://127.0.0.1/", "file:///etc/passwd", "127.0.0.1/x", "",
                           "http://127.0.0.1/a b", "http://127.0.0.1/\0x" } do
        out.urls[#out.urls + 1] = slim(call(ctx.now, t.request, t, "GET", url))
    end
    for _, o in ipairs { { timeout = 0 }, { timeout = -1 }, { timeout = 0 / 0 },
                         { connect_timeout = 0 }, { max_bytes = 0 }, { max_bytes = 1.5 },
                         { timeout = 86401 }, { max_bytes = 2 ^ 30 + 1 },
                         { max_header_bytes = 0 }, { max_header_bytes = 2 ^ 18 + 1 } } do
        out.opts[#out.opts + 1] = slim(call(ctx.now, t.request, t, "GET", ctx.E .. "/fault/empty",
                                            nil, o))
    end
    out.new = { select(3, ctx.transport.new { timeout = -1 }) }
    local raised = {}
    for _, f in ipairs {
        function() t:request("GET") end,
        function() t:request("GET", ctx.E, nil, "opts") end,
        function() t:request("GET", ctx.E, nil, { timeout = "3" }) end,
        function() t:request("GET", ctx.E, nil, { headers = "x" }) end,
        function() t:request("GET", ctx.E, nil, { headers = { 1 } }) end,
        function() t:request("GET", ctx.E, nil, { label = 1 }) end,
        function() t:request("get", ctx.E) end,
        function() t:get_json(ctx.E .. "/v4/ec2/task", { keep_null = "yes" }) end,
        function() ctx.transport.new("x") end,
        function() ctx.transport.new { max_bytes = "1" } end,
        function() ctx.transport.new { max_header_bytes = "1" } end,
    } do
        raised[#raised + 1] = not pcall(f)
    end
    out.raised = raised
    return out
end

cases.put = function(ctx, t)
    t:request("GET", ctx.E .. "/_reset")
    local url = ctx.E .. "/agent/default/task-protection/v1/state"
    local put = '{"ProtectionEnabled":true,"ExpiresInMinutes":5}'
    local r = slim(call(ctx.now, t.request, t, "PUT", url, put,
                        { headers = { ["Content-Type"] = "application/json" } }), true)
    local last = t:request("GET", ctx.E .. "/_last_put")
    local get = slim(call(ctx.now, t.request, t, "GET", url), true)
    local plain = t:request("GET", ctx.E .. "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json")
    return {
        put = r, sent = put, last = last, get = get,
        plain_same = plain == read(ctx.fixtures_root .. "/v4-task/docs-ec2-awsvpc-curltest.json"),
    }
end

cases.get_json = function(ctx, t)
    local out = { bad = {} }
    local mt = {}
    out.task = slim(call(ctx.now, t.get_json, t, ctx.E .. "/v4/ec2/task"))
    local doc = t:get_json(ctx.E .. "/v4/ec2/task", { array_mt = mt })
    out.array_mt = doc and getmetatable(doc.Containers) == mt
    local v, status = t:get_json(ctx.E .. "/fault/404")
    out.not_found = { kind = type(v), status = status }
    for _, fault in ipairs { "garbage", "html", "empty", "deep" } do
        out.bad[fault] = slim(call(ctx.now, t.get_json, t, ctx.E .. "/fault/" .. fault))
    end
    out.bare429 = slim(call(ctx.now, t.get_json, t, ctx.E .. "/fault/429-bare"))
    out.label = slim(call(ctx.now, t.get_json, t, ctx.E .. "/fault/garbage",
                          { label = "named" }))
    return out
end

M.names = {}
for name in pairs(cases) do
    M.names[#M.names + 1] = name
end
table.sort(M.names)

function M.run(name, ctx)
    local case = cases[name]
    if not case then
        error("no such transport case: " .. tostring(name))
    end
    ctx.now = ctx.now or ctx.transport.now
    local t = assert(ctx.transport.new())
    local result = case(ctx, t)
    t:close()
    return result
end

return M
