-- ecs_metadata.credentials: the task's IAM role credentials, the way the AWS
-- SDKs' container credential provider finds them.
--
--   AWS_CONTAINER_CREDENTIALS_RELATIVE_URI   under link_local_url (ECS)
--   AWS_CONTAINER_CREDENTIALS_FULL_URI       used only when its host is
--       loopback (127.0.0.0/8, ::1, localhost) or an ECS/EKS link-local
--       address (169.254.170.2, 169.254.170.23, fd00:ec2::23), then with
--       `Authorization:` from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read
--       again on every fetch) or AWS_CONTAINER_AUTHORIZATION_TOKEN
--
-- Caveats:
--  * Nothing this module returns or builds -- messages, tostring() of the
--    result -- ever contains the SecretAccessKey, the Token, the
--    authorization value or the endpoint's uri (its path is an identifier
--    that grants the credentials). Requests are labelled "credentials
--    endpoint", and every message is scrubbed of those strings besides.
--  * The result is cached until REFRESH_MARGIN seconds before its
--    Expiration (cache_ttl, when given, caps that); a document whose
--    Expiration is nearer, past or unreadable is answered but not cached.
--    With stale_ttl, a failed refresh answers the cached credentials, but
--    never past their Expiration.
--  * The cache is keyed by the url and the token's source, and a hit reads
--    nothing: the token file is read only when a request is made.
--  * The relative uri wins when both are set, as in the SDKs.
--  * Newer forms are taken as they come: the EKS Pod Identity agent's body
--    has AccountId and no RoleArn, and an Expiration with nanoseconds; its
--    failures are plain text (400, 403, 429, 5xx), which the message quotes
--    (scrubbed, like everything else: the body is read as a string for
--    that). A 503 CredentialsUninitialized, the ECS agent's answer while it
--    has no credentials for the task yet (after its restart), is asked
--    again for as long as the timeout allows, whatever `retries` says.

local type = type
local tonumber = tonumber
local setmetatable = setmetatable
local os_time = os.time
local find = string.find
local match = string.match
local lower = string.lower
local gsub = string.gsub
local gmatch = string.gmatch
local concat = table.concat

local core = require "ecs_metadata.core"
local discovery = require "ecs_metadata.discovery"
local errors = require "ecs_metadata.errors"
local time = require "ecs_metadata.time"

local getenv = discovery.getenv
local scrub = errors.scrub
local read_file = core._read_file
local decode = core.decode

local _M = {}

local RELATIVE = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
local FULL = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
local TOKEN = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
local TOKEN_FILE = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
local LABEL = "credentials endpoint"
local REFRESH_MARGIN = 300        -- seconds before Expiration a refetch is due
local MAX_TOKEN_BYTES = 16384
_M.REFRESH_MARGIN = REFRESH_MARGIN
_M.LABEL = LABEL

-- ===================================================================
-- Which hosts a FULL_URI may name
-- ===================================================================

-- The 8 groups of an IPv6 address (no zone, no embedded IPv4), or nil.
local function ipv6_groups(s)
    if s == "" or find(s, "[^%x:]") then
        return nil
    end
    local function split(x, out)
        if x == "" then
            return true
        end
        for g in gmatch(x .. ":", "([^:]*):") do
            if #g < 1 or #g > 4 then
                return false
            end
            out[#out + 1] = tonumber(g, 16)
        end
        return true
    end
    local head, tail = match(s, "^(.-)::(.*)$")
    local groups = {}
    if not head then
        if not split(s, groups) or #groups ~= 8 then
            return nil
        end
        return groups
    end
    local rest = {}
    if find(tail, "::", 1, true) or not split(head, groups)
       or not split(tail, rest) then
        return nil
    end
    local fill = 8 - #groups - #rest
    if fill < 1 then
        return nil
    end
    for _ = 1, fill do
        groups[#groups + 1] = 0
    end
    for i = 1, #rest do
        groups[#groups + 1] = rest[i]
    end
    return groups
end

local function same_groups(a, b)
    for i = 1, 8 do
        if a[i] ~= b[i] then
            return false
        end
    end
    return true
end

local IPV6_ALLOWED = {
    { 0, 0, 0, 0, 0, 0, 0, 1 },                     -- ::1
    { 0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x23 },        -- fd00:ec2::23 (EKS)
}

-- The four octets of a dotted-decimal IPv4 address, or nil. Leading zeros
-- are refused: some parsers read them as octal.
local function ipv4_octets(s)
    local a, b, c, d = match(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if not a then
        return nil
    end
    local o = { a, b, c, d }
    for i = 1, 4 do
        local x = o[i]
        if #x > 3 or (#x > 1 and find(x, "^0")) or tonumber(x) > 255 then
            return nil
        end
        o[i] = tonumber(x)
    end
    return o
end

local function allowed_host(host)
    host = lower(host)
    if host == "localhost" then
        return true
    end
    local v6 = match(host, "^%[(.*)%]$")
    if v6 then
        local g = ipv6_groups(v6)
        if not g then
            return false
        end
        for i = 1, #IPV6_ALLOWED do
            if same_groups(g, IPV6_ALLOWED[i]) then
                return true
            end
        end
        return false
    end
    local o = ipv4_octets(host)
    if not o then
        return false
    end
    return o[1] == 127
        or (o[1] == 169 and o[2] == 254 and o[3] == 170
            and (o[4] == 2 or o[4] == 23))
end

-- True when url is http(s)://<allowed host>[:port][/...].
local function allowed_full_uri(url)
    local authority = match(url, "^[Hh][Tt][Tt][Pp][Ss]?://([^/?#]*)")
    if not authority or find(authority, "@", 1, true) then
        return false
    end
    local host, port = match(authority, "^(%[[^%]]*%])(.*)$")
    if not host then
        host, port = match(authority, "^([^:]*)(.*)$")
    end
    if port ~= "" and not match(port, "^:%d+$") then
        return false
    end
    return allowed_host(host)
end
_M.allowed_full_uri = allowed_full_uri

-- ===================================================================
-- The credentials table
-- ===================================================================

local SHOWN = { "AccessKeyId", "AccountId", "Expiration", "RoleArn" }

local credentials_mt = {
    __tostring = function(t)
        local parts = {}
        for i = 1, #SHOWN do
            local k = SHOWN[i]
            if type(t[k]) == "string" then
                parts[#parts + 1] = k .. "=" .. t[k]
            end
        end
        parts[#parts + 1] = "SecretAccessKey=<redacted>"
        parts[#parts + 1] = "Token=<redacted>"
        return "ecs_metadata.credentials{" .. concat(parts, ", ") .. "}"
    end,
}
_M.mt = credentials_mt

-- ===================================================================
-- Fetching
-- ===================================================================

-- The strings no message may show, for errors.scrub: whole, the url and
-- its path; in pieces too, what identifies the credentials or grants them
-- (the relative uri's id, the url's query, the token).
local function secrets_of(url, rel, token)
    local whole, pieces = { url }, {}
    local path = match(url, "^%a+://[^/?#]*(/[^?#]*)")
    if path and path ~= "/" then
        whole[#whole + 1] = path
    end
    local query = match(url, "%?([^#]*)")
    if query and query ~= "" then
        pieces[#pieces + 1] = query
    end
    if rel then
        whole[#whole + 1] = rel
        local id = match(rel, "([^/?#]+)[/?#]*$")
        if id then
            pieces[#pieces + 1] = id
        end
    end
    if token then
        pieces[#pieces + 1] = token
    end
    return { whole = whole, pieces = pieces }
end

local function scrub_all(msg, secrets)
    return scrub(msg, secrets.pieces, secrets.whole)
end

-- Where the credentials are: url, cache key, token source | nil, msg, code.
-- The key names the token's source (its value, or the token file's path),
-- so a call with another token never gets credentials fetched with the
-- first, and a cache hit needs no read of the token file.
local function locate(o)
    local env = o.env
    local rel = getenv(env, RELATIVE)
    if rel then
        if not find(rel, "^/") then
            return nil, "credentials: " .. RELATIVE
                .. " must start with '/'", "invalid_argument"
        end
        local url = discovery.trim_slash(o.link_local_url) .. rel
        return url, "relative " .. url, { rel = rel }
    end
    local full = getenv(env, FULL)
    if not full then
        return nil, "credentials: not on ECS: neither " .. RELATIVE
            .. " nor " .. FULL .. " is set"
            .. discovery.env_hint(env, { RELATIVE, FULL, TOKEN, TOKEN_FILE }),
            "not_on_ecs"
    end
    if not allowed_full_uri(full) then
        return nil, "credentials: " .. FULL .. " must be an http or https "
            .. "url whose host is loopback (127.0.0.0/8, ::1, localhost) or "
            .. "an ECS/EKS link-local address (169.254.170.2, "
            .. "169.254.170.23, fd00:ec2::23)", "invalid_argument"
    end
    local path = getenv(env, TOKEN_FILE)
    if path then
        return full, "full " .. full .. "\0file " .. path, { file = path }
    end
    local token = getenv(env, TOKEN)
    if token and not find(token, "%S") then
        token = nil                   -- blank counts as unset, like empty
    end
    return full, "full " .. full .. "\0token " .. (token or ""),
           { token = token }
end

-- The token to send, read now: token | nil (none) | nil, msg, code.
local function read_token(how, url)
    local token = how.token
    if how.file then
        local s, msg, code = read_file(how.file, MAX_TOKEN_BYTES)
        if not s then
            if code == "too_large" then
                msg = "the file is larger than " .. MAX_TOKEN_BYTES .. " bytes"
            end
            return nil, "credentials: the authorization token file: "
                .. scrub_all(msg, secrets_of(url)), "io_error"
        end
        token = gsub(s, "[\r\n]+$", "")
        if not find(token, "%S") then
            return nil, "credentials: the authorization token file is "
                .. "empty or blank", "invalid_argument"
        end
    end
    if token and find(token, "[%z\1-\8\10-\31\127]") then
        return nil, "credentials: the authorization token has a control "
            .. "character (a line break?) in it", "invalid_argument"
    end
    return token
end

-- The document's lifetime for the cache: seconds until a refetch is due,
-- and seconds until it expires (no copy is ever answered past that).
local function lifetime(doc)
    local exp = time.iso8601(doc.Expiration)
    if not exp then
        return 0, 0
    end
    local left = exp - os_time()
    return left - REFRESH_MARGIN, left
end

-- A failed answer that is asked again while time is left: the agent has
-- no credentials for the task yet.
local function uninitialized(status, doc)
    return status == 503 and type(doc) == "table"
        and doc.code == "CredentialsUninitialized"
end
_M.uninitialized = uninitialized

-- get(c, o) -> credentials | nil, msg, code, status
-- A decoded answer as credentials, or nil, msg, "bad_json", status.
local function checked(doc, status)
    if type(doc) ~= "table" or type(doc.AccessKeyId) ~= "string"
       or type(doc.SecretAccessKey) ~= "string" then
        return nil, "credentials: GET " .. LABEL .. ": bad_json: the "
            .. "answer has no AccessKeyId and SecretAccessKey",
            "bad_json", status
    end
    return setmetatable(doc, credentials_mt)
end

function _M.get(c, o)
    local url, key, how = locate(o)
    if not url then
        return nil, key, how
    end
    local policy = c:policy("credentials", o)
    local cap = policy.ttl
    local cached_policy = {
        ttl = cap == 0 and 0 or function(doc)
            local refetch, left = lifetime(doc)
            if cap < refetch then
                refetch = cap
            end
            return refetch, left
        end,
        stale_ttl = policy.stale_ttl, error_ttl = policy.error_ttl,
        -- Under nginx: kept in the worker, out of the shared dict, unless
        -- the client opted in (shared_credentials).
        share = o.shared_credentials == true,
        timeout = o.timeout, name = "credentials",
    }
    if o.shared_credentials then
        cached_policy.decode = function(raw)
            local doc, msg, code = decode(raw)
            if doc == nil then
                return nil, "credentials: GET " .. LABEL .. ": " .. msg, code
            end
            return checked(doc)
        end
    end
    return c:cached(key, cached_policy, function(as_string)
        local token, msg, code = read_token(how, url)
        if msg then
            return nil, msg, code
        end
        local secrets = secrets_of(url, how.rel, token)
        local doc, status, failed_status
        doc, status, code, failed_status = c:request(o, "GET", url, nil, {
            label = LABEL, secrets = secrets,
            headers = token and { Authorization = token } or nil,
            raw_body = true, keep_trying = uninitialized,
            as_string = as_string,
        })
        if doc == nil then
            return nil, "credentials: " .. scrub_all(status, secrets), code,
                   failed_status
        end
        if as_string then
            return doc             -- the nginx cache decodes and checks it
        end
        return checked(doc, status)
    end)
end

return _M
