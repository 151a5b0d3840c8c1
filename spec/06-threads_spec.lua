-- Several Lua states in several threads of one process open the module at
-- once, as a host that embeds one state per thread does: what the module
-- sets up for the process (curl_global_init, libcurl's version string, the
-- fork hook) is made once and shared without a data race, as helgrind sees
-- it.
--
-- threads_helper (spec/threads_helper.c) makes the states and the threads.
-- helgrind cannot run code built with AddressSanitizer, so this runs the C
-- core built for LuaJIT without sanitizers (nginx.build_dir(), which every
-- test target builds for the nginx specs), in a child, whatever interpreter
-- runs busted. Needs no endpoint.
local helpers = require "spec.helpers"
local nginx = require "spec.nginx"

local core = require "ecs_metadata.core"

local ROOT = nginx.ROOT
local BUILD = nginx.build_dir()
local THREADS = 8

-- What the child runs: THREADS states each require the module, all at once.
local OPEN_IN_THREADS = ([[
  local versions = assert(require("threads_helper").open_module(%d, %q))
  print(#versions, table.concat(versions, " "))
]]):format(THREADS, BUILD .. "/?.so")

-- The child's environment: nothing of a sanitized parent, and the plain
-- LuaJIT build for both the helper and the module.
local CHILD_ENV = {
  LD_PRELOAD = false, ASAN_OPTIONS = false, UBSAN_OPTIONS = false,
  LUA_CPATH = BUILD .. "/?.so",
}

local function run_luajit(command_prefix)
  local script = os.tmpname()
  local f = assert(io.open(script, "wb"))
  f:write(OPEN_IN_THREADS)
  f:close()
  local out, status, err = helpers.run(command_prefix .. " luajit " .. helpers.shell_quote(script),
                                       CHILD_ENV)
  os.remove(script)
  return out, status, err
end

local function expected_versions()
  return THREADS .. "\t" .. (core.curl_version .. " "):rep(THREADS):sub(1, -2) .. "\n"
end

describe("the module opened in " .. THREADS .. " threads at once", function()
  it("opens in every state, each seeing libcurl's version", function()
    local out, status, err = run_luajit("")
    assert.are.equal("", err)
    assert.are.equal(0, status)
    assert.are.equal(expected_versions(), out)
  end)

  it("shares its per-process set-up without a data race (helgrind)", function()
    -- Before the version string was read under the once-guard, each state
    -- called curl_version_info as it opened, and helgrind reported some 500
    -- races inside libcurl. spec/helgrind.supp says what it suppresses.
    local out, status, err = run_luajit(
      "valgrind --tool=helgrind --error-exitcode=99 --suppressions="
      .. helpers.shell_quote(ROOT .. "/spec/helgrind.supp"))
    assert.are.equal(expected_versions(), out)
    local errors = err:match("ERROR SUMMARY: (%d+) errors")
    local first = err:match("Possible data race.-\n==%d+== \n") or err:sub(1, 2000)
    assert.are.equal("0", errors, "helgrind's first report:\n" .. first)
    assert.are.equal(0, status)
  end)
end)
