-- What ecs.task() costs through the whole Lua layer: fetch+decode over a
-- kept-alive connection, against the bare libcurl GET of the same bytes
-- (bench/bare_get.c) in interleaved rounds, and a cached ecs.task().
--
--   endpoint/serve exec --profile ec2 lua5.4 bench/api.lua build/bench/bare_get
local ecs = require "ecs_metadata"
local core = require "ecs_metadata.core"
local util = require "bench.util"

local bare = assert(arg[1], "usage: api.lua path/to/bare_get [rounds] [calls per round]")
local rounds = tonumber(arg[2]) or 7
local per_round = tonumber(arg[3]) or 3000
local base = os.getenv("ECS_CONTAINER_METADATA_URI_V4")
assert(base, "run through endpoint/serve exec --profile ec2")
local url = base .. "/task"

-- Cache off: every call is a GET and a decode, through the same path as
-- ecs.task() takes without options.
local fresh = assert(ecs.new { cache_ttl = 0 })
local function fetch(n)
  for _ = 1, n do
    if not fresh:task() then error("task() failed: " .. select(2, fresh:task())) end
  end
end
local ours, bare_us = util.side_by_side(bare, url, fetch, rounds, per_round)

-- Cached: the module-level ecs.task() on its default client (1 s ttl, kept
-- warm by a call per round; the clock read is part of every hit).
local task = ecs.task
assert(task())
local hits = {}
for _ = 1, rounds do
  local n = 1000000
  assert(task())
  local t0 = core.now()
  for _ = 1, n do task() end
  hits[#hits + 1] = (core.now() - t0) * 1e9 / n
end

local doc = assert(core.http():get(url))
print(("ecs.task(), %s, %d-byte task document, median of %d rounds"):format(
  util.interpreter(), #doc, rounds))
print(("  ecs.task() fetch+decode  %8.2f us/call"):format(ours))
print(("  bare libcurl GET (C)     %8.2f us/call"):format(bare_us))
print(("  ratio                    %8.3fx   (goal <= 1.3x)"):format(ours / bare_us))
print(("  ecs.task() cached        %8.1f ns/call (goal <= 100 ns)"):format(util.median(hits)))
