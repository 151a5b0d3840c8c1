-- What a hostile or broken endpoint, environment or caller can still try
-- against the Lua layer (issue "Hardening"), and the seam every transport
-- shares: urls and headers are checked and requests labelled in Lua.
local helpers = require "spec.helpers"
local ecs = require "ecs_metadata"
local core = require "ecs_metadata.core"

local E = helpers.endpoint()

local requests = helpers.requests

local function key()
  return tostring(math.floor(core.now() * 1e6))
end

-- No run of 8 or more bytes of any of secrets appears in msg.
local function assert_no_piece(msg, ...)
  assert.is_string(msg)
  for i = 1, select("#", ...) do
    local s = select(i, ...)
    for j = 1, math.max(1, #s - 7) do
      local piece = s:sub(j, j + 7)
      assert.is_nil(msg:find(piece, 1, true), "'" .. piece .. "' of a secret in: " .. msg)
    end
  end
end

describe("the transport seam", function()
  before_each(function()
    helpers.reset()
  end)

  it("refuses a url no transport should see, without a request", function()
    for _, url in ipairs { "http://", "http:///x", "http://127.0.0.1:1/a b", "http://h/\r\nX: y",
                           "ftp://127.0.0.1/", "http://127.0.0.1/\0" } do
      local c = helpers.client { ECS_CONTAINER_METADATA_URI_V4 = url }
      local v, msg, code = c:task()
      assert.is_nil(v)
      assert.are.equal("invalid_argument", code, url)
      assert.is_nil(msg:find("[%c]"), "a control character in: " .. msg)
    end
    assert.are.equal(0, helpers.stats().total)
  end)

  it("refuses header names that are no token and values with control bytes", function()
    for _, h in ipairs { { ["Bad Name"] = "x" }, { X = "a\rb" }, { X = "a\nb" }, { X = "a\vb" },
                         { X = "a\fb" }, { X = "a\127b" }, { X = "a\0b" } } do
      local v, msg, code = ecs.new { env = { ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate" },
                                     headers = h }
      assert.is_nil(v)
      assert.are.equal("invalid_argument", code)
      assert.matches("^new: headers: header", msg)
      assert.is_nil(msg:find("a.b"), msg)       -- never the value
    end
    local tab = helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate" },
                               { headers = { X = "a\tb" } })
    assert(tab:task())
    assert.are.equal(1, requests("/v4/fargate/task"))
  end)

  it("labels every request without user info or query", function()
    local url = "http://user:pa55word@" .. E:gsub("^http://", "") .. "/fault/404?token=s3cr3tvalue"
    local c = helpers.client { ECS_CONTAINER_METADATA_URI_V4 = url }
    local _, msg = c:task()
    assert.is_nil(msg:find("pa55word", 1, true), msg)
    assert.is_nil(msg:find("s3cr3tvalue", 1, true), msg)
    assert.matches("GET http://127.0.0.1:%d+/fault/404", msg)
  end)

  it("escapes control characters an agent sends, so no log line is forged", function()
    local c = helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/fault/evil" }, { retries = 0 })
    local _, msg = c:task()
    assert.is_nil(msg:find("[%c\127]"), msg)
    assert.matches("bad\\x0D\\x0AFORGED line\\x1B[31m red\\x00 nul", msg, 1, true)
  end)
end)

describe("retries", function()
  before_each(function()
    helpers.reset()
  end)

  it("keep a floor between attempts whatever Retry-After says", function()
    local k = key()
    local c = helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = E .. "/fault/flaky429/" .. k .. "/100000" },
                             { retries = 100, timeout = 1, cache_ttl = 0, error_ttl = 0 })
    local v, _, code = c:task()
    assert.is_nil(v)
    assert.are.equal("throttled", code)
    local n = requests("/fault/flaky429/" .. k .. "/100000/task")
    assert.is_true(n >= 2 and n <= 10, n .. " requests in one second")
  end)

  it("do not take statuses past 599 for 5xx", function()
    local c = helpers.client { ECS_CONTAINER_METADATA_URI_V4 = E .. "/fault/status/999" }
    local v, msg, code, status = c:task()
    assert.is_nil(v)
    assert.are.equal("http_status", code)
    assert.are.equal(999, status)
    assert.is_nil(msg:find("attempts", 1, true), msg)
    assert.are.equal(1, requests("/fault/status/999/task"))
  end)

  it("answer timeout when a wait overslept the deadline", function()
    -- The child waits Retry-After: 1 s between attempts; it is stopped in
    -- that wait and resumed after its 2 s deadline, as a throttled CPU or a
    -- busy worker would leave it.
    local script = os.tmpname()
    local f = assert(io.open(script, "wb"))
    f:write([[
      local ecs = require "ecs_metadata"
      local c = assert(ecs.new { env = { ECS_CONTAINER_METADATA_URI_V4 = "]] .. E .. [[/fault/429" },
                                 timeout = 2, retries = 3, cache_ttl = 0, error_ttl = 0 })
      local v, msg, code = c:task()
      io.write(tostring(code), " ", msg)
    ]])
    f:close()
    local p = assert(io.popen("(" .. helpers.interpreter() .. " " .. script .. " & pid=$!; sleep 0.4; "
                              .. "kill -STOP $pid; sleep 2.2; kill -CONT $pid; wait $pid) 2>&1"))
    local out = p:read("*a")
    p:close()
    os.remove(script)
    assert.matches("^timeout ", out)
    assert.matches("HTTP 429", out, 1, true)
  end)
end)

describe("credentials", function()
  before_each(function()
    helpers.reset()
  end)

  it("never let 8 bytes of the token, the query or the credentials id into a message", function()
    local token = "TOKEN-0123456789abcdefghijklmnopqrstuvwxyz-END"
    for pad = 270, 330, 7 do                     -- the 300-byte cut falls across the token
      local full = E .. "/fault/echo/p4thsecret?pad=" .. pad .. "&q=qu3ryS3cretValue"
      local c = helpers.client({ AWS_CONTAINER_CREDENTIALS_FULL_URI = full,
                                 AWS_CONTAINER_AUTHORIZATION_TOKEN = token }, { error_ttl = 0 })
      local v, msg, code = c:credentials()
      assert.is_nil(v)
      assert.are.equal("http_status", code)
      assert_no_piece(msg, token, "qu3ryS3cretValue", "p4thsecret?pad=")
    end
    local rel = "/fault/echo/cred-id-5f1e2d3c4b5a?pad=5"
    local c = helpers.client { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = rel }
    local _, msg = c:credentials()
    assert_no_piece(msg, "cred-id-5f1e2d3c4b5a")
  end)

  it("scrub a token however short it is", function()
    local c = helpers.client { AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/fault/echo",
                               AWS_CONTAINER_AUTHORIZATION_TOKEN = "Zq" }
    local _, msg = c:credentials()
    assert.is_nil(msg:find("Zq", 1, true), msg)
  end)

  it("are cached per token: another token never gets them", function()
    local env = { AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/creds/full",
                  AWS_CONTAINER_AUTHORIZATION_TOKEN = "TEST-AUTH-do-not-log" }
    local c = helpers.client(env)
    assert(c:credentials())
    local other = { AWS_CONTAINER_CREDENTIALS_FULL_URI = env.AWS_CONTAINER_CREDENTIALS_FULL_URI,
                    AWS_CONTAINER_AUTHORIZATION_TOKEN = "someone else's token" }
    local v, _, code, status = c:credentials { env = other }
    assert.is_nil(v)
    assert.are.equal("http_status", code)
    assert.are.equal(401, status)
    assert.are.equal(2, requests("/creds/full"))
  end)

  it("read the token file only for a fetch", function()
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "wb"))
    f:write("TEST-AUTH-do-not-log\n")
    f:close()
    local c = helpers.client { AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/creds/full",
                               AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = tmp }
    local a = assert(c:credentials())
    os.remove(tmp)                             -- rotating: briefly missing
    assert.are.equal(a, assert(c:credentials()))
    assert.are.equal(1, requests("/creds/full"))
  end)

  it("treat empty and blank tokens alike, and refuse control bytes", function()
    local tmp = os.tmpname()
    for _, content in ipairs { "", "   ", "\n", " \t \n" } do
      local f = assert(io.open(tmp, "wb"))
      f:write(content)
      f:close()
      local c = helpers.client { AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/creds/full",
                                 AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = tmp }
      local v, msg, code = c:credentials()
      assert.is_nil(v)
      assert.are.equal("invalid_argument", code)
      assert.matches("empty or blank", msg, 1, true)
    end
    os.remove(tmp)
    -- A blank variable is no token, like an empty one: no Authorization sent.
    for _, token in ipairs { "", "   " } do
      local c = helpers.client { AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/creds/full",
                                 AWS_CONTAINER_AUTHORIZATION_TOKEN = token }
      local v, _, code, status = c:credentials()
      assert.is_nil(v)
      assert.are.equal("http_status", code)
      assert.are.equal(401, status)
    end
    for _, token in ipairs { "a\vb", "a\127b", "a\rb" } do
      local c = helpers.client { AWS_CONTAINER_CREDENTIALS_FULL_URI = E .. "/creds/full",
                                 AWS_CONTAINER_AUTHORIZATION_TOKEN = token }
      local v, msg, code = c:credentials()
      assert.is_nil(v)
      assert.are.equal("invalid_argument", code)
      assert.matches("control character", msg, 1, true)
    end
  end)
end)

describe("v2 container ids", function()
  it("are hex: '.', '..' and the like never make another path", function()
    helpers.reset()
    local c = helpers.client({}, { version = "v2" })
    for _, id in ipairs { ".", "..", "../metadata", "a/b", "abc?x", "xyz", string.rep("a", 65) } do
      local v, _, code = c:container { container_id = id }
      assert.is_nil(v)
      assert.are.equal("invalid_argument", code, id)
    end
    assert.are.equal(0, helpers.stats().total)
  end)
end)

describe("configuration errors and replies that are not HTTP", function()
  before_each(function()
    helpers.reset()
  end)

  it("answer TLS against a plain-http endpoint as invalid_argument, never retried", function()
    local https = E:gsub("^http:", "https:")
    -- OpenSSL's first handshake (part of the connect) is slow under valgrind:
    -- limits that never decide the answer.
    local c = helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = https .. "/v4/fargate" },
                             { retries = 5, timeout = 30, connect_timeout = 30 })
    local v, msg, code = c:task()
    assert.is_nil(v)
    assert.are.equal("invalid_argument", code)
    assert.matches("TLS", msg, 1, true)
    assert.is_nil(msg:find("attempts", 1, true), msg)
  end)

  it("answer a reply that is not HTTP as unreachable, and retry it", function()
    for _, kind in ipairs { "no-status", "status-1000", "bad-version" } do
      local base = E .. "/fault/not-http/" .. kind
      local c = helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = base }, { retries = 1, error_ttl = 0 })
      local v, msg, code = c:task()
      assert.is_nil(v)
      assert.are.equal("unreachable", code, kind)
      assert.matches("(after 2 attempts)", msg, 1, true)
    end
  end)

  it("take max_header_bytes from the schema, per client and per call", function()
    local base = E .. "/fault/repeated-headers"
    local c = helpers.client({ ECS_CONTAINER_METADATA_URI_V4 = base }, { max_header_bytes = 1024 })
    assert.are.equal("too_large", select(3, c:task()))
    assert.is_table(assert(c:task { max_header_bytes = 262144 }))
    local v, msg, code = ecs.new { max_header_bytes = 262145 }
    assert.is_nil(v)
    assert.are.equal("invalid_argument", code)
    assert.matches("^new: max_header_bytes", msg)
  end)
end)
