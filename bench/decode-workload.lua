-- The fixed workload that bench/decode-callgrind runs under callgrind:
--   lua5.4 bench/decode-workload.lua base|core|cjson ROUNDS [fixture dir]
-- Every mode reads the same fixtures; "base" stops there, the others then
-- decode each fixture ROUNDS times. Prints the bytes decoded.
local mode, rounds, dir = arg[1], tonumber(arg[2]) or 20, arg[3] or "spec/fixtures"
local core = require "ecs_metadata.core"
local cjson = require "cjson"

local bodies, bytes = {}, 0
local find = io.popen("find '" .. dir .. "' -name '*.json' -type f | LC_ALL=C sort")
for path in find:lines() do
  local f = assert(io.open(path, "rb"))
  bodies[#bodies + 1] = f:read("*a")
  bytes = bytes + #bodies[#bodies]
  f:close()
end
find:close()

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
