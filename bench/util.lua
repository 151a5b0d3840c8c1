-- Shared by the benchmarks: the bare libcurl yardstick run side by side with
-- a Lua loop, in interleaved rounds so both see the same machine, and medians.
local core = require "ecs_metadata.core"

local util = {}

function util.median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  return s[math.floor((#s + 1) / 2)]
end

-- Every .json under dir, sorted: { name = path below dir, body = bytes }.
function util.fixtures(dir)
  local list = {}
  local find = assert(io.popen("find '" .. dir .. "' -name '*.json' -type f | LC_ALL=C sort"))
  for path in find:lines() do
    local f = assert(io.open(path, "rb"))
    list[#list + 1] = { name = path:sub(#dir + 2), body = f:read("*a") }
    f:close()
  end
  find:close()
  assert(#list > 0, "no fixtures under " .. dir)
  return list
end

function util.rss_kib()
  for line in io.lines("/proc/self/status") do
    local kib = line:match("^VmRSS:%s+(%d+)")
    if kib then return tonumber(kib) end
  end
end

function util.interpreter()
  return _VERSION .. (rawget(_G, "jit") and (" (" .. jit.version .. ")") or "")
end

-- Microseconds per GET of url by bench/bare_get.c, n GETs after a warm-up.
function util.bare_get(bare, url, n)
  local p = assert(io.popen(("%q %q %d"):format(bare, url, n)))
  local us = tonumber(p:read("*a"))
  p:close()
  return assert(us, "bare_get failed on " .. url)
end

-- Runs `rounds` rounds of: the bare GET of url n times, then loop(n).
-- Returns the medians of microseconds per call: ours, bare.
function util.side_by_side(bare, url, loop, rounds, n)
  local ours, theirs = {}, {}
  loop(100)
  for _ = 1, rounds do
    theirs[#theirs + 1] = util.bare_get(bare, url, n)
    local t0 = core.now()
    loop(n)
    ours[#ours + 1] = (core.now() - t0) * 1e6 / n
  end
  return util.median(ours), util.median(theirs)
end

return util
