-- The test endpoint itself (endpoint/serve), checked with plain curl so that
-- a fault in it is not mistaken for one in the client.
local helpers = require "spec.helpers"
local cjson = require "cjson"

local E = helpers.endpoint()

local function q(s)
    return "'" .. s:gsub("'", [['\'']]) .. "'"
end

-- curl with the given arguments; returns status, headers (lowercase names),
-- body, curl's exit code and its stderr.
local function curl(args)
    local hdr, body, err = os.tmpname(), os.tmpname(), os.tmpname()
    -- Not the sanitizer runtime of a SANITIZE=1 build: curl is no part of
    -- what is being checked, and deadlocks with it preloaded.
    local cmd = "env -u LD_PRELOAD curl -sS --max-time 30 -D " .. q(hdr) .. " -o " .. q(body)
                .. " " .. args .. " 2>" .. q(err) .. "; echo $?"
    local p = assert(io.popen(cmd))
    local rc = tonumber(p:read("*a"):match("%d+"))
    p:close()
    local function slurp(path)
        local f = io.open(path, "rb")
        local s = f and f:read("*a") or ""
        if f then f:close() end
        os.remove(path)
        return s
    end
    local raw, data, stderr = slurp(hdr), slurp(body), slurp(err)
    -- With several urls, -D holds every response's headers: keep the last.
    local last = raw:match(".*(HTTP/[%d.]+ %d%d%d.-)$") or raw
    local headers = {}
    for name, value in last:gmatch("([%w-]+):%s*([^\r\n]*)") do
        headers[name:lower()] = value
    end
    return tonumber(last:match("^HTTP/[%d.]+ (%d%d%d)")), headers, data, rc, stderr
end

local function get_json(path)
    local status, _, body = curl(q(E .. path))
    assert.are.equal(200, status)
    return cjson.decode(body)
end

describe("test endpoint", function()
    before_each(function()
        local status = curl(q(E .. "/_reset"))
        assert.are.equal(200, status)
    end)

    it("carries the fixtures with known licences only", function()
        local fixtures = helpers.fixtures()
        -- 56 public documents and 2 derived by the project (SOURCES.md).
        assert.are.equal(58, #fixtures)
        local derived = 0
        for _, f in ipairs(fixtures) do
            assert.is_nil(f.file:match("^blog%-040code"), f.rel)
            assert.is_nil(f.file:match("^readme%-ec2%-awsvpc%-container"), f.rel)
            if f.file:match("^derived%-") then
                derived = derived + 1
            end
        end
        assert.are.equal(2, derived)
    end)

    it("serves a fixture byte for byte, as application/json", function()
        local f = helpers.fixture("v4-task-stats/docs-ec2-awsvpc-curltest.json")
        local status, headers, body = curl(q(E .. "/fixtures/" .. f.rel))
        assert.are.equal(200, status)
        assert.are.equal("application/json", headers["content-type"])
        assert.are.equal(#f.body, tonumber(headers["content-length"]))
        assert.is_true(f.body == body)
    end)

    it("answers a named profile like the agent, 404 for a path it lacks", function()
        local status, _, body = curl(q(E .. "/v4/fargate/task"))
        assert.are.equal(200, status)
        assert.is_true(helpers.read("v4-task/docs-2020-fargate-query-metadata.json") == body)

        status, _, body = curl(q(E .. "/each/v4-stats/docs-ec2-awsvpc-curl/v2/anything"))
        assert.are.equal(200, status)
        assert.is_true(helpers.read("v4-stats/docs-ec2-awsvpc-curl.json") == body)

        local headers
        status, headers, body = curl(q(E .. "/v3/ec2/associations"))
        assert.are.equal(404, status)
        assert.are.equal("application/json", headers["content-type"])
        assert.are.equal("string", type(cjson.decode(body)))
    end)

    it("counts requests per uri and per connection", function()
        local url = q(E .. "/v4/ec2/task")
        -- One curl, two requests: the second reuses the connection.
        local status, headers = curl(url .. " " .. url)
        assert.are.equal(200, status)
        assert.are.equal("2", headers["x-connection-requests"])
        local stats = get_json("/_stats")
        assert.are.equal(2, stats.total)
        assert.are.equal(2, stats.requests["/v4/ec2/task"])
        assert.are.equal(2, stats.connections[headers["x-connection"]])
        assert.is_nil(stats.requests["/_stats"])
        assert.is_nil(stats.requests["/_reset"])
    end)

    it("keeps task protection state across PUT and GET", function()
        local url = q(E .. "/agent/default/task-protection/v1/state")
        local doc = get_json("/agent/default/task-protection/v1/state")
        assert.is_false(doc.protection.ProtectionEnabled)
        assert.are.equal(cjson.null, doc.protection.ExpirationDate)

        local put = '{"ProtectionEnabled":true,"ExpiresInMinutes":5}'
        local status, _, body = curl("-X PUT -H 'Content-Type: application/json' --data-binary "
                                     .. q(put) .. " " .. url)
        assert.are.equal(200, status)
        assert.is_true(cjson.decode(body).protection.ProtectionEnabled)

        doc = get_json("/agent/default/task-protection/v1/state")
        assert.is_true(doc.protection.ProtectionEnabled)
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", doc.protection.ExpirationDate)

        local _, headers, last = curl(q(E .. "/_last_put"))
        assert.are.equal(put, last)
        assert.are.equal("application/json", headers["x-last-put-content-type"])

        status, _, body = curl("-X PUT --data-binary '{\"ProtectionEnabled\":\"yes\"}' " .. url)
        assert.are.equal(400, status)
        assert.are.equal("InvalidParameterException", cjson.decode(body).error.Code)
    end)

    it("really truncates /fault/truncated", function()
        local status, headers, body, rc, stderr = curl(q(E .. "/fault/truncated"))
        assert.are.equal(200, status)
        assert.are.equal("1000", headers["content-length"])
        assert.are.equal(100, #body)
        assert.are.equal(18, rc)   -- CURLE_PARTIAL_FILE
        assert.matches("transfer closed with 900 bytes remaining", stderr, 1, true)
    end)
end)
