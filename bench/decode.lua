-- Decoding speed, per fixture and for the whole corpus, in one run:
-- cjson.decode, core.decode as built (its scan: SSE2 on x86-64, NEON on
-- arm64) and, given the path of a `make SIMD=0` build's core.so, the same
-- decoder with its portable SWAR scan, loaded beside the first.
--
--   LUA_CPATH='build/5.4/?.so;;' lua5.4 bench/decode.lua [fixture dir] [seconds] [portable core.so]
--   LUA_CPATH='build/5.4/?.so;;' lua5.4 bench/decode.lua spec/fixtures 0.2 \
--       build/5.4-nosimd/ecs_metadata/core.so
-- (`make bench-decode` builds both and runs this and bench/decode-callgrind.)
--
-- Times are CPU seconds (os.clock), the best of rounds that take turns
-- between the decoders, each round decoding the same input enough times to
-- take about 20 ms; seconds is the budget per fixture and decoder.
-- "cjson/x" is cjson's time over the native build's (above 1: faster than
-- cjson); "swar/x" the portable build's over the native one's.
local core = require "ecs_metadata.core"
local cjson = require "cjson"
local util = require "bench.util"

local dir = arg[1] or "spec/fixtures"
local budget = tonumber(arg[2]) or 0.2
local portable_path = arg[3]

local decoders = {
  { name = "cjson", decode = cjson.decode },
  { name = core._decode_scan, decode = core.decode },
}
if portable_path then
  local open = assert(package.loadlib(portable_path, "luaopen_ecs_metadata_core"))
  local portable = open()
  assert(portable.decode ~= core.decode)
  decoders[3] = { name = portable._decode_scan .. ", SIMD=0", decode = portable.decode }
end

-- Calls per round for f(s) to take about 20 ms.
local function calls_per_round(f, s)
  local n = 1
  while true do
    local t0 = os.clock()
    for _ = 1, n do f(s) end
    if os.clock() - t0 >= 0.02 then return n end
    n = n * 2
  end
end

-- Best seconds per call of each decoder on s, rounds taking turns.
local function measure(s)
  local n, best = {}, {}
  for i, d in ipairs(decoders) do
    n[i], best[i] = calls_per_round(d.decode, s), math.huge
  end
  local spent = 0
  repeat
    for i, d in ipairs(decoders) do
      local f, k = d.decode, n[i]
      collectgarbage()
      local t0 = os.clock()
      for _ = 1, k do f(s) end
      local t = os.clock() - t0
      spent = spent + t
      if t / k < best[i] then best[i] = t / k end
    end
  until spent >= budget * #decoders
  return best
end

local list = util.fixtures(dir)
for _, fx in ipairs(list) do
  for _, d in ipairs(decoders) do
    assert(d.decode(fx.body), fx.name)
  end
end

local head = ("%-64s %7s"):format("fixture", "bytes")
for _, d in ipairs(decoders) do
  head = head .. ("%12s"):format(d.name:match("^%S+") .. " us")
end
head = head .. ("%8s"):format("cjson/x") .. (decoders[3] and ("%8s"):format("swar/x") or "")
print(head)

local function row(name, bytes, t)
  local line = ("%-64s %7d"):format(name, bytes)
  for i = 1, #decoders do
    line = line .. ("%12.2f"):format(t[i] * 1e6)
  end
  line = line .. ("%8.2f"):format(t[1] / t[2])
  if t[3] then line = line .. ("%8.3f"):format(t[3] / t[2]) end
  print(line)
end

local sum, bytes = {}, 0
for i = 1, #decoders do sum[i] = 0 end
for _, fx in ipairs(list) do
  local t = measure(fx.body)
  for i = 1, #decoders do sum[i] = sum[i] + t[i] end
  bytes = bytes + #fx.body
  row(fx.name, #fx.body, t)
end
row(("corpus (%d documents, sum)"):format(#list), bytes, sum)

local summary = {}
for i, d in ipairs(decoders) do
  summary[i] = ("%s %.1f MB/s"):format(i == 1 and "cjson" or "core.decode (" .. d.name .. ")",
                                      bytes / sum[i] / 1e6)
end
print(table.concat(summary, ", ") .. " (" .. util.interpreter() .. ")")
print(("core.decode (%s) is %.2fx cjson"):format(decoders[2].name, sum[1] / sum[2]))
if decoders[3] then
  print(("portable / %s: %.3f (%+.1f%% time)"):format(decoders[2].name, sum[3] / sum[2],
                                                      (sum[3] / sum[2] - 1) * 100))
end
