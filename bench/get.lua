-- client:get against the bare libcurl loop (bench/bare_get.c), on the same
-- endpoint and the same task document, in interleaved rounds so that both
-- see the same machine; then RSS after 1,000 and after 100,000 GETs.
--
--   endpoint/serve exec lua5.4 bench/get.lua build/bench/bare_get
local core = require "ecs_metadata.core"

local bare = assert(arg[1], "usage: get.lua path/to/bare_get [rounds] [gets per round]")
local rounds = tonumber(arg[2]) or 7
local per_round = tonumber(arg[3]) or 3000
local base = assert(os.getenv("ECSM_ENDPOINT"), "run through endpoint/serve exec")
local url = base .. "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json"

local function median(t)
  table.sort(t)
  return t[math.floor((#t + 1) / 2)]
end

local function rss_kib()
  for line in io.lines("/proc/self/status") do
    local kib = line:match("^VmRSS:%s+(%d+)")
    if kib then return tonumber(kib) end
  end
end

local c = assert(core.client())
local function gets(n)
  for _ = 1, n do
    local body, status = c:get(url)
    if status ~= 200 then error("GET failed: " .. tostring(status)) end
    assert(body)
  end
end

gets(100)
local ours, theirs = {}, {}
for _ = 1, rounds do
  local p = assert(io.popen(("%q %q %d"):format(bare, url, per_round)))
  theirs[#theirs + 1] = assert(tonumber(p:read("*a")), "bare_get failed")
  p:close()
  local t0 = core.now()
  gets(per_round)
  ours[#ours + 1] = (core.now() - t0) * 1e6 / per_round
end
local body = c:get(url)
local a, b = median(ours), median(theirs)
print(("%s, %d-byte task document, median of %d rounds of %d GETs"):format(
  _VERSION .. (jit and (" (" .. jit.version .. ")") or ""), #body, rounds, per_round))
print(("  client:get          %8.2f us/GET"):format(a))
print(("  bare libcurl (C)    %8.2f us/GET"):format(b))
print(("  ratio               %8.3fx   (goal <= 1.05x)"):format(a / b))

collectgarbage()
gets(1000)
collectgarbage()
local after_1k = rss_kib()
gets(99000)
collectgarbage()
local after_100k = rss_kib()
print(("  RSS after 1,000 GETs   %6d KiB"):format(after_1k))
print(("  RSS after 100,000 GETs %6d KiB   (%+d KiB, goal: flat)"):format(
  after_100k, after_100k - after_1k))
c:close()
