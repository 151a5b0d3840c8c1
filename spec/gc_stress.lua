-- A busted helper (`make test-gc`, i.e. busted --helper=spec/gc_stress.lua)
-- that keeps the garbage collector running all the time, so that
-- finalizers run inside the module's C calls (while a headers table is
-- built, while get_json decodes from the receive buffer) the way they
-- seldom do in a short test run. luv's CI runs its tests this way too.
--
-- Lua 5.4: generational mode with a minor collection after every 1 %
-- growth (ECSM_GC=incremental: the incremental collector with no pause, big
-- steps). Lua 5.1, 5.3 and LuaJIT: no pause between cycles, and each step
-- does a great deal of work.

local collectgarbage = collectgarbage

local mode = os.getenv("ECSM_GC")
if _VERSION == "Lua 5.4" and mode ~= "incremental" then
    collectgarbage("generational", 1, 10)
elseif _VERSION == "Lua 5.4" then
    -- 0 would mean "leave as it is" here: 1 is the smallest pause.
    collectgarbage("incremental", 1, 1000, 0)
else
    collectgarbage("setpause", 0)
    collectgarbage("setstepmul", 1000)
end
collectgarbage("restart")
