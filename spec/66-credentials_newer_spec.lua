-- Credentials from the EKS Pod Identity agent and newer ECS agents:
-- AccountId without RoleArn, Expiration with nanoseconds, plain-text
-- failures that reach the message (scrubbed), CredentialsUninitialized asked
-- again within the timeout, a token file that rotates and is read again on
-- every fetch.
local helpers = require "spec.helpers"
local time = require "ecs_metadata.time"
local request = require "ecs_metadata.request"

local E = helpers.endpoint()
local client = helpers.client

local AUTH1, AUTH2 = "TEST-POD-AUTH-1-do-not-log", "TEST-POD-AUTH-2-do-not-log"
local SECRETS = { "TEST-POD-SECRET-do-not-log", "TEST-POD-TOKEN-do-not-log", AUTH1, AUTH2,
                  "TEST-SECRET-do-not-log", "TEST-TOKEN-do-not-log" }

local function assert_clean(s)
    assert.is_string(s)
    for _, secret in ipairs(SECRETS) do
        assert.is_nil(s:find(secret, 1, true), "a secret in: " .. s)
        assert.is_nil(s:find(secret:sub(1, 12), 1, true), "a piece of a secret in: " .. s)
    end
end

local requests = helpers.requests

local function write(path, s)
    local f = assert(io.open(path, "wb"))
    f:write(s)
    f:close()
end

local function rotate(token)
    local http = assert(require("ecs_metadata.core").http())
    assert(http:get(E .. "/_pod_token/" .. token))
    http:close()
end

describe("credentials of newer agents", function()
    local token_file

    before_each(function()
        helpers.reset()
        token_file = os.tmpname()
        write(token_file, AUTH1 .. "\n")
    end)

    after_each(function()
        os.remove(token_file)
    end)

    local function pod(extra)
        return client({ AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/creds/pod-identity",
                        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = token_file }, extra)
    end

    it("takes the Pod Identity form: AccountId, no RoleArn, nanoseconds", function()
        local cr = assert(pod():credentials())
        assert.are.equal("ASIAECSMTESTPODIDENTITY", cr.AccessKeyId)
        assert.are.equal("TEST-POD-SECRET-do-not-log", cr.SecretAccessKey)
        assert.are.equal("111122223333", cr.AccountId)
        assert.is_nil(cr.RoleArn)
        assert.matches("%.123456789Z$", cr.Expiration)
        local s = tostring(cr)
        assert_clean(s)
        assert.matches("AccountId=111122223333", s, 1, true)
        assert.is_nil(s:find("RoleArn", 1, true))
    end)

    it("reads an Expiration with nanoseconds, so the answer is cached until near it", function()
        local c = pod()
        local a = assert(c:credentials())
        assert.are.equal(a, assert(c:credentials()))
        assert.are.equal(1, requests("/creds/pod-identity"))
        local t = time.iso8601("2026-05-14T17:56:14.123456789Z")
        assert.are.equal(time.iso8601("2026-05-14T17:56:14Z") + 0.123456789, t)
        assert.is_true(time.iso8601(a.Expiration) - os.time() > 3000)
    end)

    it("reads the token file again on every fetch, as it rotates", function()
        -- error_ttl = 0: a failure is not answered again from the cache
        local c = pod { cache_ttl = 0, error_ttl = 0 }
        assert(c:credentials())
        -- the agent takes the new token only; the file still has the old one
        rotate(AUTH2)
        local v, msg, code, status = c:credentials()
        assert.is_nil(v)
        assert.are.same({ "http_status", 403 }, { code, status })
        assert.are.equal("credentials: GET credentials endpoint: HTTP 403 Forbidden: "
            .. "Token is not valid for this pod", msg)
        assert_clean(msg)
        write(token_file, AUTH2)
        assert(c:credentials())
        assert.are.equal(3, requests("/creds/pod-identity"))
        -- a cached answer reads no file: a missing one is found at the next fetch
        local cached = pod()
        assert(cached:credentials())
        os.remove(token_file)
        assert(cached:credentials())
        v, msg, code = pod({ cache_ttl = 0 }):credentials()
        assert.is_nil(v)
        assert.are.equal("io_error", code)
        assert.matches("^credentials: the authorization token file: ", msg)
    end)

    it("quotes plain-text failures, with the codes of their statuses", function()
        local cases = {
            { 400, "http_status", "Service account token cannot be empty" },
            { 403, "http_status", "Token is not valid for this pod" },
            { 429, "throttled", "Rate exceeded" },
            { 500, "http_status", "Internal server error" },
            { 502, "http_status", "Unable to reach the EKS Auth service" },
            { 503, "http_status", "Service unavailable" },
        }
        for _, case in ipairs(cases) do
            local c = client({ AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/creds/text/" .. case[1],
                               AWS_CONTAINER_AUTHORIZATION_TOKEN = AUTH1 }, { retries = 1 })
            local v, msg, code, status = c:credentials()
            assert.is_nil(v)
            assert.are.same({ case[2], case[1] }, { code, status })
            assert.matches(": " .. case[3], msg, 1, true)
            -- 429 and 5xx are asked again, 4xx not
            local again = case[1] == 429 or case[1] >= 500
            assert.are.equal(again and 2 or 1, requests("/creds/text/" .. case[1]))
            if again then
                assert.matches("%(after 2 attempts%)$", msg)
            end
            assert_clean(msg)
            assert.is_nil(msg:find("/creds/text", 1, true), msg)
        end
    end)

    it("scrubs what a careless server repeats of the token and the uri", function()
        local c = client({ AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/creds/text/echo",
                           AWS_CONTAINER_AUTHORIZATION_TOKEN = AUTH1 })
        local v, msg, code = c:credentials()
        assert.is_nil(v)
        assert.are.equal("http_status", code)
        assert.are.equal("credentials: GET credentials endpoint: HTTP 400 Bad Request: "
            .. "invalid token <redacted> for <redacted>", msg)
        assert_clean(msg)
    end)

    it("asks again while the agent has no credentials yet, past retries, within the timeout", function()
        local c = client({ AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/uninitialized/a/4" },
                         { retries = 0, timeout = 5 })
        local cr = assert(c:credentials())
        assert.are.equal("ASIAECSMTESTACCESSKEY", cr.AccessKeyId)
        assert.are.equal(5, requests("/v2/credentials/uninitialized/a/4"))
        -- never past the timeout: then the agent's words, and 503
        local t0 = require("ecs_metadata.core").now()
        c = client({ AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/uninitialized/b/100000" },
                   { timeout = 0.6 })
        local v, msg, code, status = c:credentials()
        local took = require("ecs_metadata.core").now() - t0
        assert.is_nil(v)
        assert.are.same({ "http_status", 503 }, { code, status })
        assert.matches("HTTP 503 Service Unavailable: CredentialsUninitialized: "
            .. "CredentialsV2Request: Credentials uninitialized for ID", msg, 1, true)
        assert.is_nil(msg:find("uninitialized/b", 1, true), msg)
        assert.is_true(took < 0.6 + 0.2 + helpers.SLACK, tostring(took))
        assert.is_true(requests("/v2/credentials/uninitialized/b/100000") >= 3)
        -- other 503s keep to retries
        c = client({ AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/creds/text/503" }, { retries = 0 })
        assert.is_nil((c:credentials()))
        assert.are.equal(1, requests("/creds/text/503"))
    end)

    it("keeps the first non-blank line of a text body as the reason", function()
        assert.are.equal("Rate exceeded", request.text_reason("\n  Rate exceeded \r\nmore\n"))
        assert.is_nil(request.text_reason(" \n\t\n"))
        assert.is_nil(request.text_reason(nil))
    end)
end)
