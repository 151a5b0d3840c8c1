-- client:get against the bare libcurl loop (bench/bare_get.c), on the same
-- endpoint and the same task document, in interleaved rounds; then RSS after
-- 1,000 and after 100,000 GETs.
--
--   endpoint/serve exec lua5.4 bench/get.lua build/bench/bare_get
local core = require "ecs_metadata.core"
local util = require "bench.util"

local bare = assert(arg[1], "usage: get.lua path/to/bare_get [rounds] [gets per round]")
local rounds = tonumber(arg[2]) or 7
local per_round = tonumber(arg[3]) or 3000
local base = assert(os.getenv("ECSM_ENDPOINT"), "run through endpoint/serve exec")
local url = base .. "/fixtures/v4-task/docs-ec2-awsvpc-curltest.json"

local c = assert(core.http())
local function loop(opts)
  return function(n)
    for _ = 1, n do
      local body, status = c:get(url, opts)
      if status ~= 200 then error("GET failed: " .. tostring(status)) end
      assert(body)
    end
  end
end
local gets = loop(nil)

print(("client:get, %s, %d-byte task document, median of %d rounds of %d GETs"):format(
  util.interpreter(), #c:get(url), rounds, per_round))
for _, case in ipairs {
  { "client:get", nil },
  { "client:get, response_headers = false", { response_headers = false } },
} do
  local ours, bare_us = util.side_by_side(bare, url, loop(case[2]), rounds, per_round)
  print(("  %s"):format(case[1]))
  print(("    ours %8.2f us/GET, bare libcurl (C) %8.2f us/GET, ratio %.3fx (goal <= 1.05x)"):format(
    ours, bare_us, ours / bare_us))
end

collectgarbage()
gets(1000)
collectgarbage()
local after_1k = util.rss_kib()
gets(99000)
collectgarbage()
local after_100k = util.rss_kib()
print(("  RSS after 1,000 GETs   %6d KiB"):format(after_1k))
print(("  RSS after 100,000 GETs %6d KiB   (%+d KiB, goal: flat)"):format(
  after_100k, after_100k - after_1k))
c:close()
