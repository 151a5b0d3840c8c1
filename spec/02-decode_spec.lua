-- The C decoder, core.decode: every fixture against lua-cjson, numbers,
-- strings, the grammar's edges, nesting, options, and the error contract.
-- Needs no endpoint.
local core = require "ecs_metadata.core"
local cjson = require "cjson"
local helpers = require "spec.helpers"

local decode, null = core.decode, core.null
local has_integers = math.type ~= nil
local unpack = table.unpack or unpack

-- Every JSON fixture, as { path = ..., body = ... }, in a stable order.
local function fixtures()
  local list = {}
  local find = io.popen("find spec/fixtures -name '*.json' -type f | LC_ALL=C sort")
  for path in find:lines() do
    local f = assert(io.open(path, "rb"))
    list[#list + 1] = { path = path, body = f:read("*a") }
    f:close()
  end
  find:close()
  return list
end

-- Compares our value with lua-cjson's decoding of the same bytes, allowing
-- the documented differences: our integers against cjson's floats (equal
-- once rounded to a float), and null members, which we leave out.
local function agree(ours, theirs, path)
  if type(theirs) == "table" then
    assert(type(ours) == "table", path .. ": table expected, got " .. type(ours))
    for k, v in pairs(theirs) do
      local p = path .. "." .. tostring(k)
      if v == cjson.null and type(k) == "string" then
        assert(ours[k] == nil, p .. ": null member should be absent")
      else
        agree(ours[k], v, p)
      end
    end
    for k in pairs(ours) do
      assert(theirs[k] ~= nil, path .. "." .. tostring(k) .. ": extra key")
    end
  elseif type(theirs) == "number" then
    assert(type(ours) == "number", path .. ": number expected, got " .. type(ours))
    if has_integers and math.type(ours) == "integer" then
      assert(theirs == ours + 0.0, path .. ": " .. ours .. " vs " .. theirs)
    else
      assert(theirs == ours, path .. ": " .. tostring(ours) .. " vs " .. tostring(theirs))
    end
  else
    assert(ours == theirs, path .. ": " .. tostring(ours) .. " vs " .. tostring(theirs))
  end
end

-- decode's three results, for checking a failure.
local function bad(s, opts)
  local v, msg, code = decode(s, opts)
  assert(v == nil, ("expected %q to fail"):format(#s > 60 and s:sub(1, 60) .. "..." or s))
  assert.are.equal("bad_json", code)
  return msg
end

local function is_negative_zero(x)
  return x == 0 and 1 / x < 0
end

-- Every <what> the decoder may report.
local WHAT = {
  ["unexpected end of input"] = true,
  ["unexpected character"] = true,
  ["unexpected data after the value"] = true,
  ["byte order mark"] = true,
  ["invalid literal"] = true,
  ["invalid number"] = true,
  ["number out of range"] = true,
  ["unterminated string"] = true,
  ["control character in string"] = true,
  ["invalid UTF-8 in string"] = true,
  ["invalid escape"] = true,
  ["invalid \\u escape"] = true,
  ["lone surrogate escape"] = true,
  ["expected a string key"] = true,
  ["expected ':'"] = true,
  ["expected ',' or ']'"] = true,
  ["expected ',' or '}'"] = true,
  ["nesting too deep"] = true,
  ["nesting too deep for the Lua stack"] = true,
}

describe("core.decode", function()
  it("decodes every fixture and agrees with lua-cjson", function()
    local list = fixtures()
    assert.is_true(#list >= 50)
    for _, f in ipairs(list) do
      local v, err = decode(f.body)
      assert(v ~= nil, f.path .. ": " .. tostring(err))
      agree(v, cjson.decode(f.body), f.path)
    end
  end)

  it("keeps the cgroup 'no limit' values exact", function()
    local t = assert(decode('{"limit": 9223372036854771712, "max": 18446744073709551615}'))
    if has_integers then
      assert.are.equal("integer", math.type(t.limit))
      assert.are.equal(9223372036854771712, t.limit)
      assert.are.equal("float", math.type(t.max))
    end
    assert.are.equal(2 ^ 64, t.max)
  end)

  describe("numbers", function()
    it("makes integers of what fits lua_Integer on 5.3+, rounded doubles before", function()
      if not has_integers then
        -- No integers: 2^53 + 1 has no double, and rounds to even.
        assert.are.equal(9007199254740992, decode("9007199254740993"))
        assert.are.equal(-9007199254740992, decode("-9007199254740993"))
        assert.are.equal(2 ^ 63, decode("9223372036854775807"))
        assert.are.equal(123456789, decode("123456789"))
        return
      end
      local cases = {
        { "0", 0 }, { "-1", -1 }, { "2", 2 }, { "123456789", 123456789 },
        { "9223372036854775807", math.maxinteger },
        { "-9223372036854775808", math.mininteger },
        { "9007199254740993", 9007199254740993 },       -- 2^53 + 1, exact
        { "-9007199254740993", -9007199254740993 },
      }
      for _, c in ipairs(cases) do
        local v = decode(c[1])
        assert.are.equal("integer", math.type(v), c[1])
        assert.are.equal(c[2], v, c[1])
      end
    end)

    it("makes floats of everything else", function()
      local cases = {
        { "9223372036854775808", 2 ^ 63 },
        { "-9223372036854775809", -2 ^ 63 },
        { "18446744073709551615", 2 ^ 64 },
        { "18446744073709551616", 2 ^ 64 },
        { "123456789012345678901234567890", 1.2345678901234568e29 },
        { "1e2", 100 }, { "1E2", 100 }, { "1e+2", 100 }, { "100e-2", 1 },
        { "0.1", 0.1 }, { "-0.5", -0.5 }, { "3.14159", 3.14159 },
        { "0.000001", 1e-6 }, { "1.5e300", 1.5e300 }, { "0e0", 0 },
        { "2.2250738585072014e-308", 2.2250738585072014e-308 },
        { "1.7976931348623157e308", 1.7976931348623157e308 },
        { "4.9e-324", 4.9e-324 },
        { "0.30000000000000004", 0.30000000000000004 },
        { "123456.789e3", 123456789 },
      }
      for _, c in ipairs(cases) do
        local v = decode(c[1])
        assert.are.equal(c[2], v, c[1])
        if has_integers then
          assert.are.equal("float", math.type(v), c[1])
        end
      end
    end)

    it("gives -0 as the float -0.0", function()
      local v = decode("-0")
      assert.is_true(is_negative_zero(v))
      if has_integers then
        assert.are.equal("float", math.type(v))
      end
      assert.is_true(is_negative_zero(decode("-0.0")))
      assert.is_true(is_negative_zero(decode("-0e5")))
    end)

    it("rounds correctly, however long the digits", function()
      -- 2^53 + 1 lies halfway between two doubles: alone it rounds to even,
      -- but any later non-zero digit must round it up.
      assert.are.equal(9007199254740992, decode("9007199254740993.0"))
      local long = "9007199254740993." .. ("0"):rep(782) .. "1"
      assert.are.equal(800, #long)
      assert.are.equal(9007199254740994, decode(long))
      assert.are.equal(0.1, decode("0." .. ("0"):rep(0) .. "1" .. ("0"):rep(797)))
      assert.are.equal(1e-300, decode("0." .. ("0"):rep(299) .. "1"))
      assert.are.equal(1e300, decode("1" .. ("0"):rep(300)))
      -- Exponents and leading zeros far beyond any double still add up.
      assert.are.equal(1e4, decode("0." .. ("0"):rep(200000) .. "1e200005"))
      assert.are.equal(1e-11, decode("0." .. ("0"):rep(200000) .. "1e199990"))
      assert.are.equal(100, decode("1e0000000000000000000000000000002"))
      assert.are.equal(1.5, decode("15" .. ("0"):rep(400) .. "e-401"))
    end)

    it("reads numbers of millions of digits, with counters that cannot overflow", function()
      -- Every counter of the number parser is bounded whatever the token's
      -- length (see parse_number). These go through core.decode and
      -- strtod, so they take 2^22 digits (2^24 outside valgrind); the next
      -- spec takes 2^31 + 1, where an int would wrap.
      local n = os.getenv("ECSM_UNDER_VALGRIND") and 4194304 or 16777216
      local zeros = ("0"):rep(n)
      assert.are.equal("bad_json: number out of range at byte 1", bad("1" .. zeros))
      assert.are.equal("bad_json: number out of range at byte 2", bad("[-" .. ("7"):rep(n) .. "]"))
      assert.are.equal(0.0, decode("0." .. zeros .. "1"))
      assert.are.equal(1.0, decode("1" .. zeros .. "e-" .. n))
      assert.are.equal(1.0, decode("0." .. zeros:sub(2) .. "1e" .. n))
      assert.are.equal(10.0, decode(("9"):rep(n) .. ".5e-" .. n - 1))
      assert.are.equal(1e-308, decode("1" .. zeros .. "e-" .. n + 308))
      assert.are.equal("bad_json: invalid number at byte " .. n + 3, bad("1" .. zeros .. "ex"))
    end)

    it("reads a number of more than 2^31 digits, where an int counter would wrap", function()
      -- 2^31 + 1 digits held in a Lua string would take 2 GiB, so this runs
      -- the decoder from long_input_helper (spec/long_input_helper.c) on a
      -- mapped document of that length, in a child, since under valgrind it
      -- would take minutes. A signed overflow there traps (SIGILL), as the
      -- digit counter's did before it stopped counting at 19.
      local out, status, err = helpers.run_lua([[
        local long_input = require "long_input_helper"
        local n = 2^31 + 1
        print(long_input.decode("", "9", n, ".x"))
        print(long_input.decode("[-", "7", n, "e]"))
        print(#long_input.decode("[", "1", 19, "]"), long_input.decode("", "7", 19, "")
              == 7777777777777777777)
      ]], { ECSM_UNDER_VALGRIND = false })
      assert.are.equal("", err)
      assert.are.equal(0, status)
      assert.are.equal("nil\tbad_json: invalid number at byte 2147483651\n"
                       .. "nil\tbad_json: invalid number at byte 2147483653\n"
                       .. "1\ttrue\n", out)
    end)

    it("rejects numbers outside the double range", function()
      for _, s in ipairs { "1E400", "-1e400", "1e309", "1.8e308", "1" .. ("0"):rep(400),
                           "[1, 2e999999999999999999999]" } do
        assert.matches("^bad_json: number out of range at byte %d+$", bad(s))
      end
      assert.are.equal("bad_json: number out of range at byte 5", bad("[1, 2e999]"))
    end)

    it("turns underflow into zero", function()
      assert.are.equal(0, decode("1e-400"))
      assert.is_true(is_negative_zero(decode("-1e-400")))
      assert.are.equal(0, decode("1e-99999999999999999999"))
      assert.are.equal(0, decode("0e99999999999999999999"))
    end)

    it("ignores the C library's locale", function()
      -- .ci/install-deps makes de_DE.UTF-8, whose decimal point is a comma.
      local old = os.setlocale(nil, "numeric")
      assert.is_truthy(os.setlocale("de_DE.UTF-8", "numeric"),
                       "no de_DE.UTF-8 locale: run .ci/install-deps")
      local ok, v = pcall(decode, "[1.5, 0.25e1, 12345678901234567890.5]")
      os.setlocale(old, "numeric")
      assert.is_true(ok)
      assert.are.same({ 1.5, 2.5, 12345678901234567890.5 }, v)
    end)
  end)

  describe("strings", function()
    it("resolves every escape", function()
      assert.are.equal('"\\/\b\f\n\r\t', decode([["\"\\\/\b\f\n\r\t"]]))
      assert.are.equal("a\0b", decode([["a\u0000b"]]))
      assert.are.equal("\1\31", decode([["\u0001\u001F"]]))
      assert.are.equal("A\127", decode([["\u0041\u007f"]]))
      assert.are.equal("\194\128", decode([["\u0080"]]))
      assert.are.equal("\195\169", decode([["\u00e9"]]))
      assert.are.equal("\223\191", decode([["\u07FF"]]))
      assert.are.equal("\224\160\128", decode([["\u0800"]]))
      assert.are.equal("\226\130\172", decode([["\u20AC"]]))
      assert.are.equal("\239\191\191", decode([["\uffff"]]))
      assert.are.equal("\240\159\152\128", decode([["\ud83d\ude00"]]))
      assert.are.equal("\240\144\128\128", decode([["\uD800\uDC00"]]))
      assert.are.equal("\244\143\191\191", decode([["\uDBFF\uDFFF"]]))
      assert.are.equal("x\240\159\152\128y\n", decode([["x\ud83d\ude00y\n"]]))
    end)

    it("rejects lone surrogate escapes", function()
      for _, s in ipairs { [["\ud83d"]], [["\ud83dx"]], [["\ud83d\u0041"]], [["\ud83d\ud83d"]],
                           [["\ude00"]], [["a\udfff"]], [["\ud83d\n"]], [["\ud83d\"]] } do
        assert.matches("^bad_json: lone surrogate escape at byte %d+$", bad(s))
      end
      assert.are.equal("bad_json: lone surrogate escape at byte 3", bad([["a\ude00b"]]))
    end)

    it("rejects bad escapes", function()
      assert.are.equal("bad_json: invalid escape at byte 2", bad([["\x41"]]))
      assert.are.equal("bad_json: invalid escape at byte 2", bad([["\U0041"]]))
      assert.are.equal("bad_json: invalid escape at byte 2", bad([["\'"]]))
      assert.are.equal("bad_json: invalid \\u escape at byte 2", bad([["\u12G4"]]))
      assert.are.equal("bad_json: invalid \\u escape at byte 2", bad([["\u-123"]]))
      assert.are.equal("bad_json: unterminated string at byte 6", bad([["\u12]]))
      assert.are.equal("bad_json: unterminated string at byte 3", bad([["\]]))
    end)

    it("passes well-formed UTF-8 through", function()
      for _, s in ipairs { "\194\128", "\223\191", "\224\160\128", "\237\159\191", "\238\128\128",
                           "\239\191\191", "\240\144\128\128", "\243\191\191\191", "\244\143\191\191",
                           "caf\195\169 \226\130\172 \240\159\152\128" } do
        assert.are.equal(s, decode('"' .. s .. '"'))
        local long = ("x"):rep(37) .. s .. ("y"):rep(20)
        assert.are.equal(long, decode('"' .. long .. '"'))
      end
    end)

    it("rejects malformed UTF-8", function()
      local cases = {
        "\128", "\191",                          -- continuation bytes alone
        "\192\128", "\193\191",                  -- overlong 2-byte forms
        "\224\128\128", "\224\159\191",          -- overlong 3-byte forms
        "\237\160\128", "\237\191\191",          -- encoded surrogates
        "\240\128\128\128", "\240\143\191\191",  -- overlong 4-byte forms
        "\244\144\128\128",                      -- above U+10FFFF
        "\245\128\128\128", "\248\136\128\128\128", "\254", "\255",
        "\194", "\226\130", "\240\159\152",      -- truncated by the quote
        "\194A", "\226\130A", "\240\159\152A",   -- truncated by ASCII
        "\226\40\161",
      }
      for _, s in ipairs(cases) do
        assert.are.equal("bad_json: invalid UTF-8 in string at byte 3", bad('"a' .. s .. '"'))
        assert.are.equal("bad_json: invalid UTF-8 in string at byte 32",
                         bad('"' .. ("a"):rep(30) .. s .. ("b"):rep(30) .. '"'))
      end
      assert.are.equal("bad_json: invalid UTF-8 in string at byte 3", bad('"a\226'))
      assert.are.equal("bad_json: unterminated string at byte 5", bad('"a\195\169'))
    end)

    it("finds every byte that ends a run, at every distance from the start and the end", function()
      -- The scans read 8 or 16 bytes at a time (SWAR, SSE2, NEON): a byte
      -- that ends a run must be found in every lane of a word, in the tail
      -- after the last whole word, and right at the end of the input.
      local stops = {
        { '"', nil },
        { "\\n", "\n" },
        { "\1", "bad_json: control character in string" },
        { "\31", "bad_json: control character in string" },
        { "\195\169", "\195\169" },
        { "\255", "bad_json: invalid UTF-8 in string" },
        { "\127", "\127" },
      }
      for before = 0, 40 do
        for after = 0, 20 do
          local a, b = ("a"):rep(before), ("b"):rep(after)
          for _, stop in ipairs(stops) do
            local s = '"' .. a .. stop[1] .. b .. '"'
            if stop[1] == '"' then
              assert.are.equal("bad_json: unexpected data after the value at byte " .. before + 3,
                               bad(s))
              assert.are.equal(a, decode('"' .. a .. '"'))
            elseif stop[2]:sub(1, 9) == "bad_json:" then
              assert.are.equal(stop[2] .. " at byte " .. before + 2, bad(s))
            else
              assert.are.equal(a .. stop[2] .. b, decode(s))
              assert.are.equal(a .. stop[2], decode('["' .. a .. stop[1] .. '"]')[1])
            end
          end
          -- The same bytes in a key.
          assert.are.equal(1, decode('{"' .. a .. "\\t" .. b .. '":1}')[a .. "\t" .. b])
          assert.are.equal("bad_json: control character in string at byte " .. before + 3,
                           bad('{"' .. a .. "\2" .. b .. '":1}'))
        end
      end
    end)

    it("rejects raw control characters", function()
      for c = 0, 31 do
        assert.are.equal("bad_json: control character in string at byte 3",
                         bad('"a' .. string.char(c) .. 'b"'))
      end
      assert.are.equal("\127", decode('"\127"'))
    end)

    it("handles long strings and long runs of escapes", function()
      local s = ("0123456789abcdef"):rep(4096)
      assert.are.equal(s, decode('"' .. s .. '"'))
      assert.are.equal(("\n"):rep(5000), decode('"' .. ("\\n"):rep(5000) .. '"'))
      assert.are.equal(("\226\130\172"):rep(3000), decode('"' .. ("\\u20ac"):rep(3000) .. '"'))
      assert.are.equal(s .. "\t" .. s, decode('"' .. s .. "\\t" .. s .. '"'))
    end)
  end)

  describe("whitespace", function()
    it("skips runs of every length and kind, and stops at the first other byte", function()
      local runs = { " ", "\t", "\n", "\r", "\r\n", "\n  ", "\n\t\t", " \t" }
      for n = 0, 40 do
        for _, unit in ipairs(runs) do
          local ws = unit:rep(n):sub(1, n)
          assert.are.same({ 1, 2 }, decode("[" .. ws .. "1" .. ws .. "," .. ws .. "2" .. ws .. "]"))
          assert.are.same({ a = true }, decode(ws .. '{' .. ws .. '"a"' .. ws .. ":" .. ws .. "true}" .. ws))
          assert.are.equal(7, decode(ws .. "7" .. ws))
          -- A control byte, NUL or a non-ASCII byte inside the run ends it.
          for _, other in ipairs { "\0", "\11", "\12", "\31", "\128", "\255", "x" } do
            assert.are.equal("bad_json: unexpected character at byte " .. #ws + 2,
                             bad("[" .. ws .. other .. ws .. "1]"))
            assert.are.equal("bad_json: unexpected data after the value at byte " .. #ws + 2,
                             bad("1" .. ws .. other .. ws))
          end
        end
      end
    end)
  end)

  describe("the grammar", function()
    it("decodes top-level scalars", function()
      assert.are.equal("x", decode('"x"'))
      assert.are.equal("", decode('""'))
      assert.are.equal(true, decode("true"))
      assert.are.equal(false, decode(" false "))
      assert.are.equal(null, decode("null"))
      assert.are.equal(42, decode("\t\r\n 42 \n"))
    end)

    it("decodes empty containers", function()
      assert.are.same({}, decode("[]"))
      assert.are.same({}, decode("{}"))
      assert.are.same({ {}, {} }, decode("[ [ ] , { } ]"))
      assert.are.same({ a = {} }, decode('{"a":[]}'))
    end)

    it("rejects what RFC 8259 does not allow", function()
      local cases = {
        { "", "unexpected end of input", 1 },
        { " \n\t", "unexpected end of input", 4 },
        { "[", "unexpected end of input", 2 },
        { "[1,", "unexpected end of input", 4 },
        { '{"a":', "unexpected end of input", 6 },
        { '{"a"', "unexpected end of input", 5 },
        { "{", "unexpected end of input", 2 },
        { "[1,]", "unexpected character", 4 },
        { "[,1]", "unexpected character", 2 },
        { '{"a":1,}', "expected a string key", 8 },
        { "{,}", "expected a string key", 2 },
        { "{1:2}", "expected a string key", 2 },
        { "{'a':2}", "expected a string key", 2 },
        { "{a:2}", "expected a string key", 2 },
        { '{"a" 1}', "expected ':'", 6 },
        { '{"a"=1}', "expected ':'", 5 },
        { "[1 2]", "expected ',' or ']'", 4 },
        { "[1}", "expected ',' or ']'", 3 },
        { '{"a":1 "b":2}', "expected ',' or '}'", 8 },
        { '{"a":1]', "expected ',' or '}'", 7 },
        { "01", "invalid number", 2 },
        { "-01", "invalid number", 3 },
        { "00", "invalid number", 2 },
        { "-", "invalid number", 2 },
        { "-a", "invalid number", 2 },
        { "- 1", "invalid number", 2 },
        { "1.", "invalid number", 3 },
        { "1.e5", "invalid number", 3 },
        { "1e", "invalid number", 3 },
        { "1e+", "invalid number", 4 },
        { "1E-x", "invalid number", 4 },
        { "-Infinity", "invalid number", 2 },
        { ".5", "unexpected character", 1 },
        { "+1", "unexpected character", 1 },
        { "NaN", "unexpected character", 1 },
        { "Infinity", "unexpected character", 1 },
        { "0x10", "unexpected data after the value", 2 },
        { "1.5.2", "unexpected data after the value", 4 },
        { "nul", "invalid literal", 1 },
        { "tru", "invalid literal", 1 },
        { "fals", "invalid literal", 1 },
        { "nil", "invalid literal", 1 },
        { "True", "unexpected character", 1 },
        { "[truex]", "expected ',' or ']'", 6 },
        { "'a'", "unexpected character", 1 },
        { '"abc', "unterminated string", 5 },
        { '["abc]', "unterminated string", 7 },
        { "[1] x", "unexpected data after the value", 5 },
        { "1 2", "unexpected data after the value", 3 },
        { "{} {}", "unexpected data after the value", 4 },
        { "// c\n1", "unexpected character", 1 },
        { "/* c */ 1", "unexpected character", 1 },
        { "[1,/*c*/2]", "unexpected character", 4 },
        { "[1]\0", "unexpected data after the value", 4 },
        { "\0", "unexpected character", 1 },
        { "\0[1]", "unexpected character", 1 },
        { "[1,\0 2]", "unexpected character", 4 },
        { '"a\0b"', "control character in string", 3 },
        { "\239\187\191{}", "byte order mark", 1 },
        { "\239\187\191", "byte order mark", 1 },
        { "\f1", "unexpected character", 1 },
        { "\v1", "unexpected character", 1 },
        { "1\f", "unexpected data after the value", 2 },
        { "\194\160 1", "unexpected character", 1 },
        { "[1,\2272]", "unexpected character", 4 },
      }
      for _, c in ipairs(cases) do
        assert.are.equal(("bad_json: %s at byte %d"):format(c[2], c[3]), bad(c[1]), ("%q"):format(c[1]))
      end
    end)
  end)

  describe("nulls, duplicates and options", function()
    it("keeps null in arrays as core.null, which is cjson.null", function()
      assert.are.equal(cjson.null, null)
      assert.are.equal("userdata", type(null))
      local t = decode("[null, 1, null]")
      assert.are.equal(3, #t)
      assert.are.equal(null, t[1])
      assert.are.equal(null, t[3])
    end)

    it("leaves null members out of objects unless keep_null", function()
      local t = decode('{"a": null, "b": 1, "c": [null]}')
      assert.is_nil(t.a)
      assert.are.equal(1, t.b)
      assert.are.equal(null, t.c[1])
      t = decode('{"a": null, "b": {"c": null}}', { keep_null = true })
      assert.are.equal(null, t.a)
      assert.are.equal(null, t.b.c)
      assert.is_nil(decode('{"a": null}', { keep_null = false }).a)
    end)

    it("lets the last of duplicate keys win", function()
      assert.are.same({ a = 3, b = 2 }, decode('{"a":1,"b":2,"a":3}'))
      assert.are.same({ b = 2 }, decode('{"a":1,"b":2,"a":null}'))
      assert.are.same({ a = 1 }, decode('{"a":null,"a":1}'))
      assert.are.equal(null, decode('{"a":1,"a":null}', { keep_null = true }).a)
    end)

    it("lets the last duplicate win in nested, long, escaped and colliding keys", function()
      assert.are.same({ a = 3, b = { a = 2 } }, decode('{"a":1,"b":{"a":2},"a":3}'))
      assert.are.same({ b = { a = 2, c = 1 } }, decode('{"b":{"a":1,"c":1,"a":2}}'))
      assert.are.same({ a = { a = { a = 3 } } }, decode('{"a":{"a":{"a":1,"a":3}}}'))
      local long = ("k"):rep(60)
      assert.are.same({ [long] = 2 }, decode('{"' .. long .. '":1,"' .. long .. '":2}'))
      assert.are.same({ a = 2, ["\n"] = 4 }, decode('{"a":1,"\\u0061":2,"\\n":3,"\\u000a":4}'))
      assert.are.same({ a = 2 }, decode('{"\\u0061":1,"a":2}'))
      -- So many keys that the cache's slots are shared: the first comes back.
      local parts = {}
      for i = 1, 5000 do
        parts[i] = ('"key%d":%d'):format(i, i)
      end
      parts[#parts + 1] = '"key1":0'
      local t = decode("{" .. table.concat(parts, ",") .. "}")
      assert.are.equal(0, t.key1)
      assert.are.equal(5000, t.key5000)
      -- The same keys again in a later call are no duplicates.
      for _ = 1, 3 do
        assert.are.same({ a = 1, b = 2 }, decode('{"a":1,"b":2}'))
      end
    end)

    it("agrees with lua-cjson on random documents full of duplicate keys", function()
      local keys = { "a", "b", "Name", "id", "a", "b", "\\u0061", ("long"):rep(12), "", "\\n" }
      local function gen(depth)
        local r = math.random(10)
        if depth > 3 or r <= 4 then
          local scalars = { "1", "-2", "3.5", '"x"', '"' .. ("y"):rep(50) .. '"', "true", "false", "null",
                            "9007199254740993", '"\\u00e9"' }
          return scalars[math.random(#scalars)]
        elseif r <= 8 then
          local members = {}
          for i = 1, math.random(0, 6) do
            members[i] = '"' .. keys[math.random(#keys)] .. '":' .. gen(depth + 1)
          end
          return "{" .. table.concat(members, ",") .. "}"
        else
          local items = {}
          for i = 1, math.random(0, 6) do
            items[i] = gen(depth + 1)
          end
          return "[" .. table.concat(items, ",") .. "]"
        end
      end
      math.randomseed(8259)
      for i = 1, 1000 do
        local s = gen(0)
        local v, err = decode(s)
        assert(v ~= nil, err)
        agree(v, cjson.decode(s), "random #" .. i)
      end
    end)

    it("gives arrays array_mt, objects none", function()
      local mt = {}
      local t = decode('{"a": [], "b": [1, [2]], "c": {}, "d": {"e": []}}', { array_mt = mt })
      assert.is_nil(getmetatable(t))
      assert.are.equal(mt, getmetatable(t.a))
      assert.are.equal(mt, getmetatable(t.b))
      assert.are.equal(mt, getmetatable(t.b[2]))
      assert.is_nil(getmetatable(t.c))
      assert.are.equal(mt, getmetatable(t.d.e))
      assert.are.equal(mt, getmetatable(decode("[]", { array_mt = mt })))
      assert.is_nil(getmetatable(decode("[]")))
      local cj = decode("[[]]", { array_mt = cjson.array_mt })
      if cjson.array_mt then
        assert.are.equal("[[]]", cjson.encode(cj))
      end
    end)

    it("raises on misuse", function()
      assert.has_error(function() decode() end)
      assert.has_error(function() decode(nil) end)
      assert.has_error(function() decode(12) end)
      assert.has_error(function() decode({}) end)
      assert.has_error(function() decode("1", 5) end)
      assert.has_error(function() decode("1", "x") end)
      assert.has_error(function() decode("1", { keep_null = 1 }) end)
      assert.has_error(function() decode("1", { array_mt = true }) end)
      assert.has_error(function() decode("1", { max_depth = "3" }) end)
      assert.has_error(function() decode("1", { max_depth = true }) end)
      -- A type error raises even when another option is out of range.
      assert.has_error(function() decode("1", { max_depth = 0, array_mt = 1 }) end)
      assert.are.equal(1, decode("1", {}))
      assert.are.equal(1, decode("1", nil))
    end)

    it("answers invalid_argument for a max_depth out of range, up to 100000", function()
      local msg = "decode: max_depth must be a whole number from 1 to 100000"
      for _, depth in ipairs { 0, -3, 1.5, 100001, 1e10, 2^31, 2^53, 1e300, math.huge,
                               -math.huge, 0 / 0 } do
        local r = { decode("[[1]]", { max_depth = depth }) }
        assert.are.same({ nil, msg, "invalid_argument" }, r, tostring(depth))
        -- ... and the next call is as if nothing had happened.
        assert.are.same({ { 1 } }, decode("[[1]]"))
      end
      assert.are.same({ { 1 } }, decode("[[1]]", { max_depth = 100000 }))
      assert.are.same({ { 1 } }, decode("[[1]]", { max_depth = 2.0 }))
      assert.are.equal(1000, core.DEFAULT_MAX_DEPTH)
    end)
  end)

  describe("nesting", function()
    local function nest(n, open, close, inner)
      return open:rep(n) .. (inner or "") .. close:rep(n)
    end

    it("allows max_depth levels, default 1000, and no more", function()
      assert.is_table(decode(nest(1000, "[", "]")))
      assert.are.equal("bad_json: nesting too deep at byte 1001", bad(nest(1001, "[", "]")))
      assert.is_table(decode(nest(1000, '{"a":', "}", "1")))
      assert.are.equal("bad_json: nesting too deep at byte 5001",
                       bad(nest(1001, '{"a":', "}", "1")))
      assert.is_table(decode(nest(5, "[", "]"), { max_depth = 5 }))
      assert.are.equal("bad_json: nesting too deep at byte 6", bad(nest(6, "[", "]"), { max_depth = 5 }))
      assert.are.equal("bad_json: nesting too deep at byte 2", bad("[{}]", { max_depth = 1 }))
      assert.are.equal(1, decode("1", { max_depth = 1 }))
      local t = decode(nest(1000, "[", "]", "7"))
      for _ = 1, 999 do
        t = t[1]
      end
      assert.are.same({ 7 }, t)
    end)

    it("rejects 100,000 levels at once", function()
      assert.are.equal("bad_json: nesting too deep at byte 1001", bad(nest(100000, "[", "]")))
      assert.are.equal("bad_json: nesting too deep at byte 1001", bad(("["):rep(100000)))
      -- Allowed that deep (the most max_depth allows), it decodes where the
      -- Lua stack holds it (5.3+) and is bad_json where it does not (8000
      -- slots on LuaJIT and 5.1).
      local over = bad(nest(100001, "[", "]", "1"), { max_depth = 100000 })
      if over:find("for the Lua stack", 1, true) then
        assert.matches("^bad_json: nesting too deep for the Lua stack at byte %d+$", over)
      else
        assert.are.equal("bad_json: nesting too deep at byte 100001", over)
      end
      local v, msg = decode(nest(100000, "[", "]", "1"), { max_depth = 100000 })
      if v == nil then
        assert.are.equal("bad_json: nesting too deep for the Lua stack at byte ", msg:match("^.-byte "))
      else
        for _ = 1, 100000 do
          v = v[1]
        end
        assert(v == 1)
      end
    end)

    it("decodes very long arrays and objects", function()
      local parts = {}
      for i = 1, 100000 do
        parts[i] = tostring(i)
      end
      local t = decode("[" .. table.concat(parts, ",") .. "]")
      assert.are.equal(100000, #t)
      for i = 1, 100000 do
        assert(t[i] == i)
      end
      for i = 1, 50000 do
        parts[i] = ('"k%d":%d'):format(i, i)
      end
      t = decode("{" .. table.concat(parts, ",", 1, 50000) .. "}")
      for i = 1, 50000 do
        assert(t["k" .. i] == i)
      end
      local mt = {}
      t = decode("[" .. ("null,"):rep(70000) .. "[]]", { array_mt = mt })
      assert.are.equal(70001, #t)
      assert.are.equal(mt, getmetatable(t))
      assert.are.equal(null, t[70000])
    end)

    it("decodes deep documents with many items at every level", function()
      -- 1000 levels of 10 pending items each outgrow the 8000 stack slots
      -- that LuaJIT and 5.1 give a C function, which the decoder must survive.
      local depth, width = 1000, 10
      local open = {}
      for _ = 1, depth do
        open[#open + 1] = '{"x":[' .. ("1,"):rep(width) .. '{"k":0,"' .. ("y"):rep(3) .. '":'
      end
      local s = table.concat(open) .. "true" .. ("}]}"):rep(depth)
      local t = assert(decode(s, { max_depth = 3 * depth }))
      for _ = 1, depth do
        assert.are.equal(width + 1, #t.x)
        assert.are.equal(1, t.x[width])
        assert.are.equal(0, t.x[width + 1].k)
        t = t.x[width + 1].yyy
      end
      assert.are.equal(true, t)
    end)
  end)

  describe("errors", function()
    it("never quote the input", function()
      local secret = "S3cr3tT0k3n"
      local docs = {
        '{"Token": "' .. secret .. '", ' .. secret .. "}",
        '["' .. secret .. '\1"]',
        '{"' .. secret .. '" ' .. secret .. "}",
        secret,
        "[1, " .. secret .. "]",
        '"' .. secret .. "\\q" .. secret .. '"',
        '{"a": "' .. secret .. '"} ' .. secret,
        "[" .. secret:rep(100),
      }
      for _, s in ipairs(docs) do
        local msg = bad(s)
        assert.is_nil(msg:find(secret, 1, true))
        assert.is_nil(msg:find("S3c", 1, true))
        local what, at = msg:match("^bad_json: (.-) at byte (%d+)$")
        assert.is_truthy(WHAT[what], msg)
        assert.is_true(tonumber(at) >= 1 and tonumber(at) <= #s + 1)
      end
    end)

    it("return nil, message, 'bad_json' and nothing else", function()
      local r = { decode("[1,", { array_mt = {} }) }
      assert.are.equal(3, select("#", unpack(r, 1, 3)))
      assert.are.same({ nil, "bad_json: unexpected end of input at byte 4", "bad_json" }, r)
      assert.are.equal(3, select("#", decode("}")))
      assert.are.equal(1, select("#", decode("[]")))
    end)

    it("leave nothing behind over many calls", function()
      local before = collectgarbage("count")
      for _ = 1, 2000 do
        decode('{"a": [1, 2, {"b": "\\u00e9"}], "c": ')
        decode(('['):rep(2000))
        decode('{"a": [1, 2, {"b": "\\u00e9x"}]}')
      end
      collectgarbage()
      collectgarbage()
      assert.is_true(collectgarbage("count") < before + 1024)
    end)
  end)
end)
