-- ecs_metadata.resty.phase: what the current nginx phase allows, and so how
-- a call is carried out there.
--
--   mode()        "yield"  cosockets and ngx.sleep exist (rewrite, access,
--                          content, timers, ssl_certificate): fetch
--                          through the cosocket transport, sleep with
--                          ngx.sleep, wait for another worker's fetch
--                 "block"  init_by_lua (the master, before any worker and
--                          any client): a short blocking fetch through the
--                          curl transport is the only way, and harms nobody
--                 "defer"  everything else (init_worker outside a timer, set,
--                          header and body filters, log, balancer,
--                          ssl_client_hello, ssl_session_fetch, ...): no
--                          I/O at all; answer from the cache, and on a miss
--                          schedule the fetch in a zero-delay timer
--   transport()   the transport module of this phase (nil for "defer")
--   sleep(s)      ngx.sleep, or the C sleep in "block"; in "defer" it does
--                 not sleep (nothing may block there) and answers false
--   can_sleep()   whether sleep(s) really waits
--
-- Caveats:
--  * The set below follows lua-nginx-module's documentation of which
--    contexts have cosockets and ngx.sleep (both are the same set), less
--    the two TLS phases that need OpenResty's patches (see YIELD).
--  * Under plain Lua (no ngx) mode() is "block" and transport() the curl
--    one: this module can be required anywhere.

local ngx = rawget(_G, "ngx")

local _M = {}

-- ssl_client_hello and ssl_session_fetch have cosockets too, but only
-- OpenResty's patched nginx and OpenSSL can resume a handshake whose
-- callback yielded there: with a stock nginx (Debian's, say) a yield in
-- ssl_client_hello ends the handshake, and in ssl_session_fetch nginx logs
-- "cannot yield in sess get cb" and goes on without the Lua code. A module
-- cannot tell which it runs under, so those two phases do no I/O here.
local YIELD = {
    rewrite = true, access = true, content = true, timer = true,
    ssl_cert = true,
}
_M.YIELD_PHASES = YIELD

local get_phase = ngx and ngx.get_phase

local function mode()
    if not get_phase then
        return "block"
    end
    local p = get_phase()
    if YIELD[p] then
        return "yield"
    elseif p == "init" then
        return "block"
    end
    return "defer"
end
_M.mode = mode

-- The phase's name, for messages ("log", "header_filter", ...).
function _M.name()
    return get_phase and get_phase() or "plain Lua"
end

local cosocket, curl

function _M.transport()
    local m = mode()
    if m == "yield" then
        cosocket = cosocket or require "ecs_metadata.transport.cosocket"
        return cosocket
    elseif m == "block" then
        curl = curl or require "ecs_metadata.transport.curl"
        return curl
    end
    return nil
end

local core_sleep

function _M.sleep(seconds)
    local m = mode()
    if m == "yield" then
        ngx.sleep(seconds)
        return true
    elseif m == "block" then
        core_sleep = core_sleep or require("ecs_metadata.core")._sleep
        core_sleep(seconds)
        return true
    end
    return false
end

function _M.can_sleep()
    return mode() ~= "defer"
end

return _M
