-- Task IAM role credentials: relative and full uris, the authorization
-- token, which hosts a full uri may name, caching until Expiration, and that
-- no secret ever shows up in a message or in tostring().
local helpers = require "spec.helpers"
local credentials = require "ecs_metadata.credentials"

local E = helpers.endpoint()

local SECRETS = { "TEST-SECRET-do-not-log", "TEST-TOKEN-do-not-log", "TEST-AUTH-do-not-log" }

local client = helpers.client

local function assert_clean(s, ...)
  assert.is_string(s)
  for _, secret in ipairs(SECRETS) do
    assert.is_nil(s:find(secret, 1, true), "a secret in: " .. s)
  end
  for i = 1, select("#", ...) do
    local also = select(i, ...)
    assert.is_nil(s:find(also, 1, true), also .. " in: " .. s)
  end
end

local requests = helpers.requests

describe("ecs.credentials", function()
  before_each(function()
    helpers.reset()
  end)

  it("fetches the relative uri under link_local_url", function()
    local c = client { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/fresh" }
    local cr = assert(c:credentials())
    assert.are.equal("ASIAECSMTESTACCESSKEY", cr.AccessKeyId)
    assert.are.equal("TEST-SECRET-do-not-log", cr.SecretAccessKey)
    assert.are.equal("TEST-TOKEN-do-not-log", cr.Token)
    assert.are.equal("arn:aws:iam::111122223333:role/ecsm-test-task-role", cr.RoleArn)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", cr.Expiration)
  end)

  it("masks the secret in tostring()", function()
    local c = client { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/fresh" }
    local s = tostring(assert(c:credentials()))
    assert_clean(s)
    assert.matches("AccessKeyId=ASIAECSMTESTACCESSKEY", s, 1, true)
    assert.matches("SecretAccessKey=<redacted>", s, 1, true)
    assert.matches("Token=<redacted>", s, 1, true)
  end)

  it("caches until shortly before Expiration", function()
    local c = client { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/fresh" }
    local a = assert(c:credentials())
    assert.are.equal(a, assert(c:credentials()))
    assert.are.equal(1, requests("/v2/credentials/fresh"))
    -- cache_ttl caps it; 0 fetches anew
    assert.are_not.equal(a, assert(c:credentials { cache_ttl = 0 }))
    assert.are.equal(2, requests("/v2/credentials/fresh"))

    -- Expiring in 30 s, or expired in 2009: answered, never cached.
    for _, id in ipairs { "soon", "fixture" } do
      local cs = client { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/" .. id }
      assert(cs:credentials())
      assert(cs:credentials())
      assert.are.equal(2, requests("/v2/credentials/" .. id))
    end
    local old = assert(client { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/fixture" }
      :credentials())
    assert.are.equal("2009-02-13T23:31:30Z", old.Expiration)
    assert.are.equal("secretkeycorrect", old.SecretAccessKey)
  end)

  it("gives the agent's error, never the uri", function()
    local c = client { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/invalid" }
    local v, msg, code, status = c:credentials()
    assert.is_nil(v)
    assert.are.equal("http_status", code)
    assert.are.equal(400, status)
    assert.are.equal("credentials: GET credentials endpoint: HTTP 400 Bad Request: InvalidIdInRequest: "
      .. "CredentialsV2Request: Credentials not found", msg)
    assert_clean(msg, "/v2/credentials/invalid", E)
  end)

  it("uses a loopback full uri with the authorization token", function()
    local env = {
      AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/creds/full",
      AWS_CONTAINER_AUTHORIZATION_TOKEN = "TEST-AUTH-do-not-log",
    }
    local cr = assert(client(env):credentials())
    assert.are.equal("TEST-SECRET-do-not-log", cr.SecretAccessKey)

    env.AWS_CONTAINER_AUTHORIZATION_TOKEN = nil
    local v, msg, code, status = client(env):credentials()
    assert.is_nil(v)
    assert.are.equal("http_status", code)
    assert.are.equal(401, status)
    assert.matches("Unauthorized", msg, 1, true)
    assert_clean(msg, "/creds/full")

    env.AWS_CONTAINER_AUTHORIZATION_TOKEN = "TEST-AUTH-do-not-log\r\nX-Evil: 1"
    v, msg, code = client(env):credentials()
    assert.is_nil(v)
    assert.are.equal("invalid_argument", code)
    assert_clean(msg, "/creds/full", "X-Evil")
  end)

  it("re-reads the token file on every fetch", function()
    local tmp = os.tmpname()
    local function token(s)
      local f = assert(io.open(tmp, "wb"))
      f:write(s)
      f:close()
    end
    local env = {
      AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/creds/full",
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = tmp,
      AWS_CONTAINER_AUTHORIZATION_TOKEN = "wrong token, the file wins",
    }
    local c = client(env, { cache_ttl = 0, error_ttl = 0 })
    token("TEST-AUTH-do-not-log\n")
    assert(c:credentials())
    token("stale-token")
    local v, msg, code = c:credentials()
    assert.is_nil(v)
    assert.are.equal("http_status", code)
    assert_clean(msg, "stale-token")
    token("TEST-AUTH-do-not-log\nsecond line")
    v, msg, code = c:credentials()
    assert.is_nil(v)
    assert.are.equal("invalid_argument", code)
    assert_clean(msg, "second line")
    os.remove(tmp)
    v, msg, code = c:credentials()
    assert.is_nil(v)
    assert.are.equal("io_error", code)
    assert_clean(msg)
  end)

  it("uses a full uri only on loopback and the ECS/EKS link-local hosts", function()
    local allowed = {
      "http://127.0.0.1/x", "http://127.0.0.1:51679/v2/credentials", "https://127.1.2.3/",
      "http://localhost:8080/creds", "http://LOCALHOST/", "http://[::1]:80/x", "http://[::1]",
      "http://[0:0:0:0:0:0:0:1]/", "http://169.254.170.2/v2/credentials/x",
      "http://169.254.170.23/v1/credentials", "http://[fd00:ec2::23]/v1/credentials",
      "http://[FD00:EC2:0:0:0:0:0:23]/", "HTTP://127.0.0.1/",
    }
    local refused = {
      "http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://example.com/",
      "http://127.0.0.1.example.com/", "http://user@127.0.0.1/", "http://127.0.0.1@example.com/",
      "http://[::2]/", "http://0177.0.0.1/", "http://127.0.0.256/", "ftp://127.0.0.1/",
      "http://169.254.170.3/", "http://[fd00:ec2::24]/", "http://[::ffff:127.0.0.1]/",
      "file:///etc/passwd", "127.0.0.1/x", "http://127.0.0.1:x/", "http://2130706433/",
      "http://[::1/", "",
    }
    for _, u in ipairs(allowed) do
      assert.is_true(credentials.allowed_full_uri(u), u)
    end
    for _, u in ipairs(refused) do
      assert.is_false(credentials.allowed_full_uri(u), u)
    end
  end)

  it("refuses any other full uri without a request or a trace of it", function()
    local v, msg, code = client({
      AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://192.0.2.1/secret-path",
      AWS_CONTAINER_AUTHORIZATION_TOKEN = "TEST-AUTH-do-not-log",
    }):credentials()
    assert.is_nil(v)
    assert.are.equal("invalid_argument", code)
    assert_clean(msg, "192.0.2.1", "secret-path")
    assert.are.equal(0, helpers.stats().total)
  end)

  it("prefers the relative uri when both are set", function()
    local cr = assert(client({
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/fresh",
      AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://192.0.2.1/never",
    }):credentials())
    assert.are.equal("ASIAECSMTESTACCESSKEY", cr.AccessKeyId)
  end)

  it("answers not_on_ecs, unreachable and bad_json without secrets", function()
    local v, msg, code = client({}):credentials()
    assert.is_nil(v)
    assert.are.equal("not_on_ecs", code)
    assert.matches("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", msg, 1, true)

    v, msg, code = client({
      AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://127.0.0.1:1/secret-path",
      AWS_CONTAINER_AUTHORIZATION_TOKEN = "TEST-AUTH-do-not-log",
    }, { retries = 0 }):credentials()
    assert.is_nil(v)
    assert.are.equal("unreachable", code)
    assert.matches("credentials endpoint", msg, 1, true)
    assert_clean(msg, "secret-path", "127.0.0.1:1")

    -- A document that is no credentials, and one that is no JSON.
    v, msg, code = client({
      AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/each/v4-task/docs-ec2-awsvpc-curltest",
    }):credentials()
    assert.is_nil(v)
    assert.are.equal("bad_json", code)
    assert_clean(msg, "/each/")
    v, msg, code = client({
      AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/fault/garbage/secret-path",
    }):credentials()
    assert.is_nil(v)
    assert.are.equal("bad_json", code)
    assert_clean(msg, "secret-path", "/fault/")
  end)

  it("reads every credentials fixture", function()
    for _, f in ipairs(helpers.fixtures()) do
      if f.dir == "credentials" then
        local c = client { AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/each/credentials/" .. f.name }
        local v, msg, code = c:credentials()
        if f.body:find("AccessKeyId", 1, true) then
          assert(v, f.path .. ": " .. tostring(msg))
          assert.is_string(v.SecretAccessKey)
          assert.matches("<redacted>", tostring(v), 1, true)
          assert.is_nil(tostring(v):find(v.SecretAccessKey, 1, true))
        else
          assert.are.equal("bad_json", code, f.path)
        end
      end
    end
  end)
end)
