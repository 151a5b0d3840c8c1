-- Decoding speed, core.decode against cjson.decode, per fixture and for the
-- whole corpus, in one run:
--
--   LUA_CPATH='build/5.4/?.so;;' lua5.4 bench/decode.lua [fixture dir] [seconds]
--   LUA_CPATH='build/luajit/?.so;;' luajit bench/decode.lua
--
-- Times are CPU seconds (os.clock), the best of several rounds, each round
-- decoding the same input enough times to take about 20 ms. "x" is cjson's
-- time divided by ours: above 1 means core.decode is faster.
local core = require "ecs_metadata.core"
local cjson = require "cjson"
local util = require "bench.util"

local dir = arg[1] or "spec/fixtures"
local budget = tonumber(arg[2]) or 0.3     -- seconds per fixture and decoder


-- Best time per call of f(s), over rounds of n calls, within about budget.
local function measure(f, s)
  local n = 1
  while true do
    local t0 = os.clock()
    for _ = 1, n do f(s) end
    local t = os.clock() - t0
    if t >= 0.02 then break end
    n = n * 2
  end
  local best, spent = math.huge, 0
  repeat
    collectgarbage()
    local t0 = os.clock()
    for _ = 1, n do f(s) end
    local t = os.clock() - t0
    spent = spent + t
    if t < best then best = t end
  until spent >= budget
  return best / n
end

local list = util.fixtures(dir)
local decode, cdecode = core.decode, cjson.decode
for _, fx in ipairs(list) do
  assert(decode(fx.body), fx.name)
end

print(("%-72s %7s %10s %10s %6s"):format("fixture", "bytes", "cjson us", "core us", "x"))
local sum_c, sum_o, bytes = 0, 0, 0
for _, fx in ipairs(list) do
  local tc = measure(cdecode, fx.body)
  local to = measure(decode, fx.body)
  sum_c, sum_o, bytes = sum_c + tc, sum_o + to, bytes + #fx.body
  print(("%-72s %7d %10.2f %10.2f %6.2f"):format(fx.name, #fx.body, tc * 1e6, to * 1e6, tc / to))
end
print(("%-72s %7d %10.2f %10.2f %6.2f"):format(("corpus (%d documents, sum)"):format(#list),
                                                bytes, sum_c * 1e6, sum_o * 1e6, sum_c / sum_o))
print(("cjson %.1f MB/s, core.decode %.1f MB/s (%s)"):format(bytes / sum_c / 1e6, bytes / sum_o / 1e6,
                                                        jit and jit.version or _VERSION))
