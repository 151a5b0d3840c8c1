-- ecs_metadata.transport: the seam between the sources and HTTP. Every
-- request of the Lua layer goes through exchange(), which checks what the
-- transports must never see, names the request for messages, and hands it
-- to the transport chosen for the call.
--
-- A transport is a module with new(opts), now() and sleep(seconds), whose
-- objects have, with the C core's conventions:
--   t:get_json(url, opts)              -> value, status, headers
--                                       | nil, msg, code
--                                       | nil, msg, "bad_json", status, headers
--   t:request(method, url, body, opts) -> body, status, headers
--                                       | nil, msg, code
--   t:close()
-- opts: timeout and connect_timeout (seconds, > 0), max_bytes, headers (a
-- table this module validated), label (what messages call the request),
-- response_headers (false: no headers table for a 2xx answer) and, for
-- get_json, the decoder's keep_null, array_mt and max_depth (a GET with
-- raw_body set goes through request: the body as a string). HTTP statuses
-- are answers at that level, not failures; failures are unreachable,
-- timeout, too_large and invalid_argument (a url or TLS setting the
-- transport cannot use), with messages "<METHOD> <label>: <cause>".
--
-- Transports: "curl" (transport/curl.lua) everywhere; "cosocket"
-- (transport/cosocket.lua) inside nginx where cosockets exist. A client
-- makes one object of each transport it uses, on first use, so its
-- connections are kept alive.

local type = type
local pairs = pairs
local pcall = pcall
local require = require
local find = string.find
local match = string.match

local errors = require "ecs_metadata.errors"

-- nginx's phase function, where there is one (OpenResty, nginx's Lua module).
local ngx = rawget(_G, "ngx")
local ngx_get_phase = ngx and ngx.get_phase
-- What nginx's phase allows (resty/phase.lua), under nginx only.
local phase = ngx_get_phase and require "ecs_metadata.resty.phase"

local _M = {}

local MODULES = {
    curl = "ecs_metadata.transport.curl",
    cosocket = "ecs_metadata.transport.cosocket",
}

-- ===================================================================
-- What no transport may see
-- ===================================================================

-- nil when url is an http(s) url with a host and nothing a request line
-- could be split by; else why not.
function _M.check_url(url)
    if find(url, "[%z\1-\32\127]") then
        return "the url has white space or a control character in it"
    end
    local authority = match(url, "^[Hh][Tt][Tt][Pp][Ss]?://([^/?#]*)")
    if authority == nil then
        return "the url must be an http:// or https:// url"
    end
    local host = authority:gsub("^.*@", ""):gsub(":%d*$", "")
    if host == "" or host == "[]" then
        return "the url has no host"
    end
    return nil
end

local function is_token(s)
    return s ~= "" and not find(s, "[^%w!#$%%&'*+%-.^_`|~]")
end

-- nil when every name is an HTTP token and no value has a control byte
-- other than HTAB; else why not (naming the header, never its value: it
-- may be a token).
function _M.check_headers(headers)
    for name, value in pairs(headers) do
        if type(name) ~= "string" or type(value) ~= "string" then
            return "headers must map strings to strings"
        end
        if not is_token(name) then
            return "header name " .. errors.escape(name)
                .. " is not an HTTP token"
        end
        if find(value, "[%z\1-\8\10-\31\127]") then
            return "header " .. name .. " has a control character in its "
                .. "value"
        end
    end
    return nil
end

-- The label and the verdict of check_url for a url, worked out once: a
-- poller asks for the same few urls again and again, and Lua patterns cost
-- more than the rest of a cached request. Bounded: emptied when full.
local MAX_PREPARED = 256
local prepared, nprepared = {}, 0

-- prepare(url) -> label, why (nil when the url is fine)
local function prepare(url)
    local p = prepared[url]
    if p == nil then
        if nprepared >= MAX_PREPARED then
            prepared, nprepared = {}, 0
        end
        p = { errors.label(url), _M.check_url(url) }
        prepared[url] = p
        nprepared = nprepared + 1
    end
    return p[1], p[2]
end
_M.prepare = prepare

-- ===================================================================
-- Choosing and using a transport
-- ===================================================================

local loaded = {}        -- transport name -> module

local function load(name)
    local mod = loaded[name]
    if mod == nil then
        mod = require(MODULES[name])
        loaded[name] = mod
    end
    return mod
end

-- The name of the transport a call uses: the one asked for; else, under
-- nginx, the phase's: cosocket where cosockets exist, curl in init_by_lua
-- (the master, before any client: blocking harms nobody), none where no
-- I/O may happen (init_worker outside a timer, set, filters, log,
-- balancer); else curl.
local function choose(o)
    local name = o.transport
    if name then
        return name
    end
    if phase then
        local m = phase.mode()
        if m == "yield" then
            local ok, cosocket = pcall(load, "cosocket")
            if ok and cosocket.available() then
                return "cosocket"
            end
        elseif m == "defer" then
            return nil
        end
    end
    return "curl"
end

-- Where no I/O may happen: a clock, and waits that do not wait.
local NO_IO = {
    now = function()
        ngx.update_time()
        return ngx.now()
    end,
    sleep = function() end,
    no_wait = true,
}

local function no_io()
    return nil, "nginx's " .. phase.name() .. " phase cannot do I/O (call "
        .. "it in rewrite, access or content, or in a timer; cached results "
        .. "are answered in every phase)", "invalid_argument"
end

-- for_call(c, o) -> object, module | nil, msg, code
-- The client's object of the call's transport, made on first use, and its
-- module (now, sleep).
function _M.for_call(c, o)
    local name = choose(o)
    if name == nil then
        return no_io()
    end
    local mod = load(name)
    local list = c._transports
    local t = list[name]
    if t == nil then
        local s = c.settings
        local msg, code
        t, msg, code = mod.new {
            timeout = s.timeout,
            connect_timeout = s.connect_timeout,
            max_bytes = s.max_bytes,
        }
        if not t then
            return nil, msg, code
        end
        list[name] = t
    end
    return t, mod
end

-- The module of the call's transport (its now and sleep), for waits that
-- make no request. Where no I/O may happen, one whose sleep returns at once
-- and whose no_wait is true: a wait there must not be tried.
function _M.module(o)
    local name = choose(o)
    if name == nil then
        return NO_IO
    end
    return load(name)
end

-- Closes every transport object of a client.
function _M.close(c)
    for name, t in pairs(c._transports) do
        c._transports[name] = nil
        t:close()
    end
end

-- exchange(t, method, url, body, topts) -> as the transport answers
--   t      the call's transport object (for_call)
--   topts  the transport's per-request options; topts.label is set here
--          when the caller has not named the request
function _M.exchange(t, method, url, body, topts)
    local label, why = prepare(url)
    if topts.label then
        label = topts.label
    else
        topts.label = label
    end
    if not why and topts.headers then
        why = _M.check_headers(topts.headers)
    end
    if why then
        return nil, method .. " " .. label .. ": " .. why, "invalid_argument"
    end
    if method == "GET" and not topts.raw_body then
        return t:get_json(url, topts)
    end
    return t:request(method, url, body, topts)
end

return _M
