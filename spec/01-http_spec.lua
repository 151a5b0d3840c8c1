-- The C HTTP object (ecs_metadata.core.http) against the real endpoint on
-- loopback: fixtures byte for byte, every fault, connection reuse, proxies
-- and redirects, options, and the object's life cycle.
local helpers = require "spec.helpers"
local core = require "ecs_metadata.core"

local E = helpers.endpoint()

-- Calls f and returns its results and the seconds it took.
local function timed(f, ...)
  local t0 = core.now()
  local r = { f(...) }
  r.elapsed = core.now() - t0
  return r
end

describe("client:get", function()
  local c

  before_each(function()
    c = assert(core.http())
  end)

  after_each(function()
    c:close()
  end)

  it("fetches every fixture byte for byte", function()
    local fixtures = helpers.fixtures()
    assert.is_true(#fixtures >= 50)
    for _, f in ipairs(fixtures) do
      local body, status, headers = c:get(E .. "/fixtures/" .. f.dir .. "/" .. f.file)
      assert.are.equal(200, status, f.path)
      assert.are.equal(#f.body, #body, f.path)
      assert.is_true(f.body == body, f.path)
      assert.matches("application/json", headers["content-type"], 1, true)
    end
  end)

  it("reuses one connection for 100 requests", function()
    local url = E .. "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json"
    local seen, n = {}, 0
    for _ = 1, 100 do
      local _, status, headers = assert(c:get(url))
      assert.are.equal(200, status)
      local id = assert(headers["x-connection"])
      if not seen[id] then
        seen[id] = true
        n = n + 1
      end
    end
    assert.are.equal(1, n)
  end)

  it("returns statuses, not errors, and lowercase headers", function()
    for _, case in ipairs { { "404", 404 }, { "500", 500 }, { "503", 503 }, { "429", 429 } } do
      local body, status, headers = c:get(E .. "/fault/" .. case[1])
      assert.are.equal(case[2], status)
      assert.is_string(body)
      assert.is_table(headers)
    end
    local _, status, headers = c:get(E .. "/fault/429")
    assert.are.equal(429, status)
    assert.are.equal("1", headers["retry-after"])
  end)

  it("leaves out a 2xx answer's headers when response_headers is false", function()
    local url = E .. "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json"
    local body, status, headers = c:get(url, { response_headers = false })
    assert.are.equal(helpers.read("v4-task/docs-ec2-awsvpc-curltest.json"), body)
    assert.are.equal(200, status)
    assert.is_nil(headers)
    local _, s429, h429 = c:get(E .. "/fault/429", { response_headers = false })
    assert.are.equal(429, s429)
    assert.are.equal("1", h429["retry-after"])
    local quiet = assert(core.http { response_headers = false })
    assert.is_nil(select(3, quiet:get(url)))
    assert.is_table(select(3, quiet:get(url, { response_headers = true })))
    assert.is_nil(select(3, quiet:get_json(url)))
    quiet:close()
    assert.has_error(function() c:get(url, { response_headers = "no" }) end)
  end)

  it("does not follow a redirect", function()
    helpers.reset()
    local _, status, headers = assert(c:get(E .. "/fault/redirect"))
    assert.are.equal(302, status)
    assert.matches("^http://127%.0%.0%.1:%d+/", headers["location"])
    assert.are.equal(0, helpers.stats().redirect_target)
    -- The target does answer, so a followed redirect would have counted.
    assert.are.equal(200, select(2, c:get(headers["location"])))
    assert.are.equal(1, helpers.stats().redirect_target)
  end)

  it("answers an empty body and an HTML page as they are", function()
    local body, status = assert(c:get(E .. "/fault/empty"))
    assert.are.equal("", body)
    assert.are.equal(200, status)
    local html, _, headers = assert(c:get(E .. "/fault/html"))
    assert.matches("<", html, 1, true)
    assert.matches("text/html", headers["content-type"], 1, true)
  end)

  describe("fails with nil, message, code within timeout + 0.5 s", function()
    local timeout = 0.5
    local cases = {
      { "/fault/slow?ms=3000", "timeout" },
      { "/fault/trickle", "timeout" },
      { "/fault/truncated", "unreachable" },
      { "/fault/huge", "too_large" },
      { "/fault/huge-chunked", "too_large" },
    }
    for _, case in ipairs(cases) do
      it(case[1] .. " -> " .. case[2], function()
        local r = timed(c.get, c, E .. case[1], { timeout = timeout })
        assert.is_nil(r[1])
        assert.is_string(r[2])
        assert.are.equal(case[2], r[3])
        assert.matches("GET " .. E .. "/fault/", r[2], 1, true)
        assert.is_true(r.elapsed < timeout + 0.5, ("took %.3f s"):format(r.elapsed))
      end)
    end

    it("a closed port -> unreachable", function()
      local r = timed(c.get, c, "http://127.0.0.1:1/", { timeout = timeout })
      assert.is_nil(r[1])
      assert.are.equal("unreachable", r[3])
      assert.is_true(r.elapsed < timeout + 0.5)
    end)

    it("max_bytes is a hard cap on the body", function()
      local url = E .. "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json"
      local body, msg, code = c:get(url, { max_bytes = 100 })
      assert.is_nil(body)
      assert.are.equal("too_large", code)
      assert.matches("max_bytes %(100%)", msg)
      local small = assert(core.http { max_bytes = 100 })
      assert.are.equal("too_large", select(3, small:get(url)))
      assert.is_string(small:get(url, { max_bytes = 1e6 }))
      small:close()
    end)
  end)

  it("keeps working on the same connection after a failure", function()
    assert.are.equal("too_large", select(3, c:get(E .. "/fault/huge")))
    assert.are.equal("timeout", select(3, c:get(E .. "/fault/slow?ms=2000", { timeout = 0.2 })))
    local body, status = c:get(E .. "/fixtures/v4-stats/docs-ec2-awsvpc-curl.json")
    assert.are.equal(200, status)
    assert.are.equal(helpers.read("v4-stats/docs-ec2-awsvpc-curl.json"), body)
  end)

  it("sends headers, per call over the client's, and never shows their values", function()
    local token = "TEST-AUTH-do-not-log"
    local url = E .. "/creds/full"
    assert.are.equal(401, select(2, c:get(url)))
    assert.are.equal(200, select(2, c:get(url, { headers = { Authorization = token } })))
    local with = assert(core.http { headers = { Authorization = "wrong" } })
    assert.are.equal(401, select(2, with:get(url)))
    assert.are.equal(200, select(2, with:get(url, { headers = { authorization = token } })))
    with:close()

    local _, msg, code = c:get("http://127.0.0.1:1/", { headers = { Authorization = token } })
    assert.are.equal("unreachable", code)
    assert.is_nil(msg:find(token, 1, true))
    _, msg, code = c:get(url, { headers = { Authorization = token .. "\r\nX-Evil: 1" } })
    assert.are.equal("invalid_argument", code)
    assert.matches("Authorization", msg, 1, true)
    assert.is_nil(msg:find(token, 1, true))
  end)

  it("names the request by opts.label, or by the url without user info and query", function()
    local _, msg = c:get("http://user:secret@127.0.0.1:1/path?token=secret", { timeout = 0.5 })
    assert.matches("GET http://127.0.0.1:1/path", msg, 1, true)
    assert.is_nil(msg:find("secret", 1, true))
    _, msg = c:get("http://127.0.0.1:1/v2/credentials/abc", { label = "credentials endpoint" })
    assert.matches("^GET credentials endpoint: ", msg)
    assert.is_nil(msg:find("abc", 1, true))
  end)

  it("rejects what is not an http(s) url with invalid_argument", function()
    for _, url in ipairs { "ftp://127.0.0.1/", "file:///etc/passwd", "127.0.0.1/x", "",
                           "http://127.0.0.1/a b", "http://127.0.0.1/\0x" } do
      local body, msg, code = c:get(url)
      assert.is_nil(body)
      assert.are.equal("invalid_argument", code, url)
      assert.is_string(msg)
    end
    for _, opts in ipairs { { timeout = 0 }, { timeout = -1 }, { timeout = 0 / 0 },
                            { timeout = 86400.5 }, { connect_timeout = 0 },
                            { connect_timeout = 1 / 0 }, { max_bytes = 0 }, { max_bytes = 1.5 },
                            { max_bytes = core.LIMITS.max_bytes + 1 }, { max_header_bytes = 0 },
                            { max_header_bytes = core.LIMITS.max_header_bytes + 1 } } do
      assert.are.equal("invalid_argument", select(3, c:get(E .. "/fault/empty", opts)))
    end
    assert.are.equal("invalid_argument", select(3, core.http { timeout = -1 }))
    -- What would split the request, or change which header is sent; other
    -- checks of names are the Lua layer's.
    for _, name in ipairs { "Bad\r\nName", "Bad\nName", "Bad\0Name", "", "X-A:b" } do
      assert.are.equal("invalid_argument", select(3, core.http { headers = { [name] = "x" } }))
    end
    for _, value in ipairs { "a\rb", "a\nb", "a\0b" } do
      assert.are.equal("invalid_argument", select(3, core.http { headers = { X = value } }))
    end
  end)

  it("raises on misuse", function()
    assert.has_error(function() c:get() end)
    assert.has_error(function() c:get(E, "opts") end)
    assert.has_error(function() c:get(E, { timeout = "3" }) end)
    assert.has_error(function() c:get(E, { headers = "x" }) end)
    assert.has_error(function() c:get(E, { headers = { 1 } }) end)
    assert.has_error(function() c:get(E, { label = 1 }) end)
    assert.has_error(function() c:request("get", E) end)
    assert.has_error(function() core.http("x") end)
    assert.has_error(function() core.http { max_bytes = "1" } end)
  end)

  it("ignores proxies named in the environment", function()
    local script = ([[
      local c = require("ecs_metadata.core").http()
      local body, status = c:get(%q)
      io.write(tostring(status), " ", tostring(body and #body))
    ]]):format(E .. "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json")
    local out = helpers.run_lua(script, {
      HTTP_PROXY = "http://127.0.0.1:9", http_proxy = "http://127.0.0.1:9",
      HTTPS_PROXY = "http://127.0.0.1:9", ALL_PROXY = "http://127.0.0.1:9",
      all_proxy = "http://127.0.0.1:9",
    })
    local size = #helpers.read("v4-task/docs-ec2-awsvpc-curltest.json")
    assert.are.equal("200 " .. size, out)
  end)
end)

describe("client:request", function()
  it("PUTs a body and the endpoint keeps it", function()
    helpers.reset()
    local c = assert(core.http())
    local url = E .. "/agent/default/task-protection/v1/state"
    local put = '{"ProtectionEnabled":true,"ExpiresInMinutes":5}'
    local body, status = c:request("PUT", url, put, {
      headers = { ["Content-Type"] = "application/json" },
    })
    assert.are.equal(200, status)
    assert.matches('"ProtectionEnabled":%s*true', body)
    assert.are.equal(put, (c:get(E .. "/_last_put")))
    body, status = c:request("GET", url)
    assert.are.equal(200, status)
    assert.matches('"ProtectionEnabled":%s*true', body)
    -- A GET after the PUT is a plain GET again.
    assert.are.equal(helpers.read("v4-task/docs-ec2-awsvpc-curltest.json"),
                     (c:get(E .. "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json")))
    c:close()
  end)
end)

describe("client:get_json", function()
  local c = assert(core.http())

  it("decodes the answer, whatever its status", function()
    local doc, status, headers = c:get_json(E .. "/v4/ec2/task")
    assert.are.equal(200, status)
    assert.is_table(headers)
    assert.are.equal("RUNNING", doc.KnownStatus)
    local msg
    msg, status = c:get_json(E .. "/fault/404")
    assert.are.equal(404, status)
    assert.is_string(msg)
  end)

  it("gives bad_json with the status and headers when the body is not JSON", function()
    for _, fault in ipairs { "garbage", "html", "empty", "deep" } do
      local v, msg, code, status, headers = c:get_json(E .. "/fault/" .. fault)
      assert.is_nil(v)
      assert.are.equal("bad_json", code, fault)
      assert.matches("^GET " .. E:gsub("%p", "%%%0") .. "/fault/" .. fault .. ": bad_json", msg)
      assert.are.equal(200, status)
      assert.is_table(headers)
    end
    local v, _, code, status = c:get_json(E .. "/fault/429-bare")
    assert.is_nil(v)
    assert.are.equal("bad_json", code)
    assert.are.equal(429, status)
  end)

  it("passes the decoder's options", function()
    local mt = {}
    local doc = assert(c:get_json(E .. "/v4/ec2/task", { array_mt = mt }))
    assert.are.equal(mt, getmetatable(doc.Containers))
    assert.has_error(function() c:get_json(E .. "/v4/ec2/task", { keep_null = "yes" }) end)
  end)
end)

describe("the client object", function()
  it("can be closed any number of times, by close and by __gc", function()
    local c = assert(core.http())
    local gc = getmetatable(c).__gc
    gc(c)
    gc(c)
    c:close()
    assert.are.equal("ecs_metadata.core.http (closed)", tostring(c))
    assert.has_error(function() c:get(E) end, "attempt to use a closed http object")
  end)

  it("is closed by a to-be-closed variable on Lua 5.4", function()
    if _VERSION ~= "Lua 5.4" then
      assert.is_nil(getmetatable(core.http()).__close)
      return
    end
    local chunk = assert(load([[
      local core = ...
      local kept
      do
        local c <close> = core.http()
        kept = c
      end
      return kept
    ]]))
    assert.are.equal("ecs_metadata.core.http (closed)", tostring(chunk(core)))
  end)

  it("is named after the module", function()
    local c = core.http()
    assert.matches("^ecs_metadata%.core%.http %(", tostring(c))
    assert.are.equal("ecs_metadata.core.http", getmetatable(c).__name)
    c:close()
  end)
end)

