-- The test endpoint's request router. Loaded by the nginx config that
-- endpoint/serve generates: init() in init_by_lua, handle() for every request.

local cjson = require "cjson.safe"
local util = require "util"
local profiles = require "profiles"
local faults = require "faults"
local modes = require "modes"

local M = {}

local conf = {}

function M.init(c)
    conf = c
    util.init(c.fixtures)
end

local counters = ngx.shared.ecsm_counters
local state = ngx.shared.ecsm_state

---------------------------------------------------------------------------
-- Counters

local function count(uri, role)
    counters:incr("total", 1, 0)
    counters:incr("r:" .. uri, 1, 0)
    counters:incr("c:" .. ngx.var.connection, 1, 0)
    if role == "redirect-target" then
        counters:incr("redirect_target", 1, 0)
    end
end

local function stats()
    local requests, connections = {}, {}
    for _, k in ipairs(counters:get_keys(0)) do
        local v = counters:get(k)
        if v then
            local kind, name = k:sub(1, 2), k:sub(3)
            if kind == "r:" then
                requests[name] = v
            elseif kind == "c:" then
                connections[name] = v
            end
        end
    end
    util.send(200, cjson.encode({
        total = counters:get("total") or 0,
        redirect_target = counters:get("redirect_target") or 0,
        requests = requests,
        connections = connections,
    }))
end

local function reset()
    counters:flush_all()
    state:flush_all()
    util.send(200, '{"reset":true}')
end

local function last_put()
    local body = state:get("last_put")
    if not body then
        return util.not_found("no PUT recorded since the last /_reset")
    end
    util.send(200, body, "application/octet-stream", {
        ["X-Last-Put-Uri"] = state:get("last_put_uri"),
        ["X-Last-Put-Content-Type"] = state:get("last_put_content_type") or "",
    })
end

---------------------------------------------------------------------------
-- Task metadata v4/v3

-- The bytes of the element at path (indexes and member names) of a fixture.
local function cut(rel, path)
    local text = util.must_fixture(rel)
    for _, step in ipairs(path) do
        text = util.member_text(text, step)
        if not text then
            error("endpoint: no " .. tostring(step) .. " in " .. rel)
        end
    end
    return text
end

local function metadata(base, sub)
    local rel = profiles.metadata[base][sub]
    if not rel then
        if profiles.daemon_only[sub] then
            -- Only Managed Instances daemon tasks have these: elsewhere the
            -- agent's router knows no such route.
            return util.send(404, profiles.plain_404, "text/plain; charset=utf-8")
        end
        local v = base:sub(2, 3):upper()
        return util.not_found(v .. " metadata handler: no such path below "
                              .. base .. ": " .. sub)
    end
    if type(rel) == "table" then
        return util.send(200, cut(rel[1], rel[2]))
    end
    util.send_fixture(200, rel)
end

---------------------------------------------------------------------------
-- Task metadata v2 (link-local base)

local function v2_metadata(id)
    local doc = util.must_fixture(profiles.v2.metadata)
    if not id then
        return util.send(200, doc)
    end
    local t = cjson.decode(doc)
    for i, c in ipairs(t.Containers or {}) do
        if c.DockerId == id then
            local containers = util.member_text(doc, "Containers")
            return util.send(200, util.element_text(containers, i))
        end
    end
    util.not_found("v2 metadata handler: no container " .. id)
end

-- /v2/metadataWithTags: the task document with the tags of a taskWithTags
-- document, spliced in byte for byte.
local function v2_metadata_with_tags()
    local doc = util.must_fixture(profiles.v2.metadata)
    local tags = util.must_fixture(profiles.v2.with_tags_from)
    local close = doc:find("}%s*$")
    util.send(200, doc:sub(1, close - 1):gsub("%s*$", "")
        .. ',\n  "ContainerInstanceTags": ' .. util.member_text(tags, "ContainerInstanceTags")
        .. ',\n  "TaskTags": ' .. util.member_text(tags, "TaskTags")
        .. "\n" .. doc:sub(close))
end

local function v2_stats(id)
    local doc = util.must_fixture(profiles.v2.stats)
    if not id then
        return util.send(200, doc)
    end
    local t = cjson.decode(doc)
    if t[id] == nil then
        return util.not_found("v2 stats handler: no container " .. id)
    end
    util.send(200, util.member_text(doc, id))
end

---------------------------------------------------------------------------
-- Credentials

local function credentials_document(ttl)
    local g = profiles.generated_credentials
    -- Built by hand to keep the agent's key order.
    return string.format(
        '{"RoleArn":%s,"AccessKeyId":%s,"SecretAccessKey":%s,"Token":%s,"Expiration":%s}',
        util.json_string(g.RoleArn), util.json_string(g.AccessKeyId),
        util.json_string(g.SecretAccessKey), util.json_string(g.Token),
        util.json_string(util.iso8601(ngx.time() + ttl)))
end

local function credentials_error(code, message, status)
    util.send(status, string.format('{"code":%s,"message":%s,"HTTPErrorCode":%d}',
                                    util.json_string(code), util.json_string(message), status))
end

local function credentials(id)
    local p = profiles.credentials[id]
    if id == "" then
        return credentials_error("NoIdInRequest",
            "CredentialsV2Request: No Credential ID in the request", 400)
    elseif type(p) == "number" then
        return util.send(200, credentials_document(p))
    elseif id == "invalid" or not p then
        return util.send_fixture(400, profiles.credentials.invalid)
    end
    util.send_fixture(200, p)
end

local function credentials_full()
    if ngx.var.http_authorization ~= profiles.full_uri_authorization then
        return credentials_error("Unauthorized",
            "Authorization header missing or not the expected token", 401)
    end
    util.send(200, credentials_document(profiles.credentials.fresh))
end

---------------------------------------------------------------------------
-- Credentials of newer agents and of the EKS Pod Identity agent

local function credentials_uninitialized(key, n)
    local seen = state:incr("uninit:" .. key, 1, 0)
    if seen <= tonumber(n) then
        return credentials_error("CredentialsUninitialized",
            "CredentialsV2Request: Credentials uninitialized for ID", 503)
    end
    util.send(200, credentials_document(profiles.credentials.fresh))
end

-- The token /creds/pod-identity accepts now; /_pod_token/<token> rotates it.
local function pod_token()
    return state:get("pod_token") or profiles.pod_identity.authorization
end

-- An Expiration with nanoseconds, as the Pod Identity agent writes it.
local function nano_iso8601(t)
    return os.date("!%Y-%m-%dT%H:%M:%S", t) .. ".123456789Z"
end

local function pod_identity()
    local auth = ngx.var.http_authorization
    if auth ~= pod_token() then
        return util.send(auth and 403 or 400, (auth and profiles.text_errors[403]
            or profiles.text_errors[400]) .. "\n", "text/plain; charset=utf-8")
    end
    local g = profiles.pod_identity
    util.send(200, string.format(
        '{"AccessKeyId":%s,"SecretAccessKey":%s,"Token":%s,"AccountId":%s,"Expiration":%s}',
        util.json_string(g.AccessKeyId), util.json_string(g.SecretAccessKey),
        util.json_string(g.Token), util.json_string(g.AccountId),
        util.json_string(nano_iso8601(ngx.time() + profiles.credentials.fresh))))
end

-- /creds/text/<status>: a plain-text error; /creds/text/echo: a 400 whose
-- text repeats the request's Authorization and path (a careless server).
local function text_error(which)
    if which == "echo" then
        return util.send(400, "invalid token " .. tostring(ngx.var.http_authorization)
            .. " for " .. ngx.var.request_uri .. "\n", "text/plain; charset=utf-8")
    end
    local status = tonumber(which)
    local text = status and profiles.text_errors[status]
    if not text then
        return util.not_found("no such text error: " .. which)
    end
    util.send(status, text .. "\n", "text/plain; charset=utf-8")
end

---------------------------------------------------------------------------
-- Task scale-in protection

local function protection_document()
    local exp = state:get("protection_expires")
    return string.format(
        '{"protection":{"ExpirationDate":%s,"ProtectionEnabled":%s,"TaskArn":%s}}',
        exp and util.json_string(exp) or "null",
        state:get("protection_enabled") and "true" or "false",
        util.json_string(profiles.protection_task_arn))
end

local function protection_error(message, with_arn)
    local arn = with_arn and ('"Arn":' .. util.json_string(profiles.protection_task_arn) .. ",") or ""
    util.send(400, string.format('{"error":{%s"Code":"InvalidParameterException","Message":%s}}',
                                 arn, util.json_string(message)))
end

local function read_body()
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    if not body then
        local file = ngx.req.get_body_file()
        if file then
            local f = io.open(file, "rb")
            if f then
                body = f:read("*a")
                f:close()
            end
        end
    end
    return body or ""
end

local function protection_put()
    local body = read_body()
    state:set("last_put", body)
    state:set("last_put_uri", ngx.var.request_uri)
    state:set("last_put_content_type", ngx.var.content_type or "")
    return body
end

-- Validates like the agent: unknown fields and wrong types are refused.
local function protection_update(body)
    local req = body:match("^%s*{") and cjson.decode(body)
    if type(req) ~= "table" then
        return protection_error("UpdateTaskProtection: failed to decode request")
    end
    for k in pairs(req) do
        if k ~= "ProtectionEnabled" and k ~= "ExpiresInMinutes" then
            return protection_error("UpdateTaskProtection: failed to decode request")
        end
    end
    local enabled, minutes = req.ProtectionEnabled, req.ExpiresInMinutes
    if minutes == cjson.null then
        minutes = nil
    end
    if enabled == nil or enabled == cjson.null then
        return protection_error("Invalid request: does not contain 'ProtectionEnabled' field", true)
    end
    if type(enabled) ~= "boolean" then
        return protection_error("UpdateTaskProtection: failed to decode request")
    end
    if minutes ~= nil and (type(minutes) ~= "number" or minutes % 1 ~= 0) then
        return protection_error("UpdateTaskProtection: failed to decode request")
    end
    if minutes ~= nil and (minutes < 1 or minutes > 2880) then
        return protection_error("ExpiresInMinutes must be between 1 and 2880", true)
    end
    state:set("protection_enabled", enabled)
    if enabled then
        state:set("protection_expires", util.iso8601(ngx.time() + 60 * (minutes or 120)))
    else
        state:delete("protection_expires")
    end
    util.send(200, protection_document())
end

local function protection(profile, sub)
    local method = ngx.req.get_method()
    if sub ~= "/task-protection/v1/state" then
        return util.not_found("no such path below /agent/" .. profile .. ": " .. sub)
    end
    if method ~= "GET" and method ~= "PUT" then
        return util.send(405, "Method Not Allowed\n", "text/plain", { Allow = "GET, PUT" })
    end
    local body = method == "PUT" and protection_put()
    if profile == "default" then
        if body then
            return protection_update(body)
        end
        return util.send(200, protection_document())
    end
    local p = profiles.protection[profile]
    if not p then
        return util.not_found("no such protection profile: " .. profile)
    end
    util.send_fixture(p[1], p[2])
end

---------------------------------------------------------------------------
-- Fault injection ($ECS_AGENT_URI/fault/v1/<kind>/<action>)

local fault_injection = require "fault_injection"

local function fault_route(profile, kind, action)
    local body = read_body()
    if ngx.req.get_method() == "POST" then
        state:set("last_post", body)
        state:set("last_post_uri", ngx.var.request_uri)
        state:set("last_post_content_type", ngx.var.content_type or "")
    end
    return fault_injection.handle({ profile = profile, kind = kind, action = action, body = body })
end

local function last_post()
    local body = state:get("last_post")
    if not body then
        return util.not_found("no fault POST recorded since the last /_reset")
    end
    util.send(200, body, "application/octet-stream", {
        ["X-Last-Post-Uri"] = state:get("last_post_uri"),
        ["X-Last-Post-Content-Type"] = state:get("last_post_content_type") or "",
    })
end

---------------------------------------------------------------------------
-- Router

---------------------------------------------------------------------------
-- One fixture name for every path: /v4/named/<name>, /v4/ticking/<key>/<name>

local NAMED = {
    [""] = "v4-container", ["/task"] = "v4-task", ["/taskWithTags"] = "v4-task",
    ["/stats"] = "v4-stats", ["/task/stats"] = "v4-task-stats",
}

-- The reading before the document's: its cpu_stats and precpu_stats (and
-- read and preread) swapped, in the bytes, so the numbers stay exact.
local function earlier(body)
    local function swap(s, a, b)
        local mark = "ecsmswapping"
        s = s:gsub('"' .. a .. '"(%s*):', '"' .. mark .. '"%1:')
        s = s:gsub('"' .. b .. '"(%s*):', '"' .. a .. '"%1:')
        return (s:gsub('"' .. mark .. '"(%s*):', '"' .. b .. '"%1:'))
    end
    return swap(swap(body, "precpu_stats", "cpu_stats"), "preread", "read")
end

local function named(name, path, key)
    local dir = NAMED[path]
    local body = dir and util.fixture(dir, name)
    if not body then
        return util.not_found("no fixture for " .. path .. " of " .. name)
    end
    if key and dir:find("stats$") then
        if state:incr("ticking:" .. key .. ":" .. path, 1, 0) == 1 then
            body = earlier(body)
        end
    end
    return util.send(200, body)
end

local function route(uri)
    local m1, m2

    if uri == "/_stats" then return stats() end
    if uri == "/_reset" then return reset() end
    if uri == "/_last_put" then return last_put() end
    if uri == "/_mode" then return modes.set() end
    if uri == "/_last_post" then return last_post() end
    m1 = uri:match("^/_pod_token/([^/]+)$")
    if m1 then
        state:set("pod_token", m1)
        return util.send(200, '{"rotated":true}')
    end

    m1, m2 = uri:match("^/fixtures/([^/]+)/([^/]+)%.json$")
    if m1 then
        local body = util.fixture(m1, m2)
        if body then
            return util.send(200, body)
        end
        return util.not_found("no such fixture: " .. m1 .. "/" .. m2 .. ".json")
    end

    m1, m2 = uri:match("^/each/([^/]+)/([^/]+)")
    if not m1 then
        m1, m2 = uri:match("^/v[34]/each/([^/]+)/([^/]+)")
    end
    if m1 then
        local body = util.fixture(m1, m2)
        if body then
            return util.send(200, body)
        end
        return util.not_found("no such fixture: " .. m1 .. "/" .. m2 .. ".json")
    end

    m1, m2 = uri:match("^/v4/named/([^/]+)(.*)$")
    if m1 then return named(m1, m2) end
    local key
    key, m1, m2 = uri:match("^/v4/ticking/([^/]+)/([^/]+)(.*)$")
    if key then return named(m1, m2, key) end

    for base in pairs(profiles.metadata) do
        if uri == base or uri:sub(1, #base + 1) == base .. "/" then
            return metadata(base, uri:sub(#base + 1))
        end
    end

    if uri == "/v2/metadata" then return v2_metadata() end
    if uri == "/v2/metadataWithTags" then return v2_metadata_with_tags() end
    m1 = uri:match("^/v2/metadata/([^/]+)$")
    if m1 then return v2_metadata(m1) end
    if uri == "/v2/stats" then return v2_stats() end
    m1 = uri:match("^/v2/stats/([^/]+)$")
    if m1 then return v2_stats(m1) end

    if uri == "/v2/credentials" or uri == "/v2/credentials/" then return credentials("") end
    m1, m2 = uri:match("^/v2/credentials/uninitialized/([^/]+)/(%d+)$")
    if m1 then return credentials_uninitialized(m1, m2) end
    if uri == "/creds/pod-identity" then return pod_identity() end
    m1 = uri:match("^/creds/text/([^/]+)$")
    if m1 then return text_error(m1) end
    m1 = uri:match("^/v2/credentials/([^/]+)$")
    if m1 then return credentials(m1) end
    if uri == "/creds/full" then return credentials_full() end

    local kind, action
    m1, kind, action = uri:match("^/agent/([^/]+)/fault/v1/([^/]+)/([^/]+)$")
    if m1 then return fault_route(m1, kind, action) end
    m1, m2 = uri:match("^/agent/([^/]+)(.*)$")
    if m1 then return protection(m1, m2) end

    m1, m2 = uri:match("^/fault/([^/]+)(.*)$")
    if m1 then
        return faults.handle({ name = m1, rest = m2, redirect_port = conf.redirect_port })
    end

    return util.not_found("no route for " .. uri)
end

-- role: "main" or "redirect-target" (the second port).
function M.handle(role)
    local uri = ngx.var.uri
    if uri:sub(1, 2) ~= "/_" then
        count(uri, role)
        if modes.apply() then
            return
        end
    end
    return route(modes.strip_chunked(uri))
end

return M
