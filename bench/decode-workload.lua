-- The fixed workload that bench/decode-callgrind runs under callgrind:
--   lua5.4 bench/decode-workload.lua base|core|cjson ROUNDS [fixture dir]
-- Every mode reads the same fixtures; "base" stops there, the others then
-- decode each fixture ROUNDS times. Prints the bytes decoded, then the
-- scan that core.decode was built with (sse2, neon or swar).
local mode, rounds, dir = arg[1], tonumber(arg[2]) or 20, arg[3] or "spec/fixtures"
local core = require "ecs_metadata.core"
local cjson = require "cjson"
local util = require "bench.util"

local bodies, bytes = {}, 0
for _, f in ipairs(util.fixtures(dir)) do
  bodies[#bodies + 1] = f.body
  bytes = bytes + #f.body
end

local decode
if mode == "core" then
  decode = core.decode
elseif mode == "cjson" then
  decode = cjson.decode
elseif mode ~= "base" then
  error("mode must be base, core or cjson")
end
if decode then
  for _ = 1, rounds do
    for i = 1, #bodies do
      decode(bodies[i])
    end
  end
end
print(bytes * rounds)
print(core._decode_scan)
