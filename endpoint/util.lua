-- Shared pieces of the test endpoint: the fixture store, response helpers
-- and a small JSON scanner that finds the bytes of one member or element
-- (so derived documents keep the fixture's exact text, big integers included).

local cjson = require "cjson.safe"
local modes = require "modes"

local M = {}

local fixture_root
local cache = {}

function M.init(root)
    fixture_root = root
end

function M.fixture_root()
    return fixture_root
end

-- The bytes of <dir>/<name>.json, or nil if there is no such fixture.
-- Names are restricted so a request can never leave the fixture tree.
function M.fixture(dir, name)
    if not dir:match("^[%w_%-]+$") or not name:match("^[%w_%-][%w_%-%.]*$") then
        return nil
    end
    local rel = dir .. "/" .. name .. ".json"
    local body = cache[rel]
    if body == nil then
        local f = io.open(fixture_root .. "/" .. rel, "rb")
        if not f then
            return nil
        end
        body = f:read("*a")
        f:close()
        cache[rel] = body
    end
    return body
end

-- Like M.fixture, but a missing file is a bug in the endpoint's own tables.
function M.must_fixture(rel)
    local dir, name = rel:match("^([^/]+)/(.+)%.json$")
    local body = dir and M.fixture(dir, name)
    if not body then
        error("endpoint: fixture missing: " .. rel)
    end
    return body
end

-- Send a whole response. Content-Length is always set, so keep-alive works.
-- Under /chunked/ (modes.lua) the body goes out chunked instead.
function M.send(status, body, content_type, headers)
    ngx.status = status
    ngx.header["Content-Type"] = content_type or "application/json"
    local chunk = modes.chunk_size()
    if not chunk then
        ngx.header["Content-Length"] = #body
    end
    if headers then
        for k, v in pairs(headers) do
            ngx.header[k] = v
        end
    end
    if chunk then
        return modes.send_chunked(body, chunk)
    end
    ngx.print(body)
end

function M.send_fixture(status, rel, headers)
    M.send(status, M.must_fixture(rel), "application/json", headers)
end

-- A JSON string, escaped the way Go's encoder does it (cjson would also
-- turn "/" into "\/").
function M.json_string(s)
    return '"' .. s:gsub('[%c"\\]', function(c)
        if c == '"' or c == "\\" then
            return "\\" .. c
        end
        return string.format("\\u%04x", c:byte())
    end) .. '"'
end

-- A 404 whose body is a bare JSON string, like the ECS agent's.
function M.not_found(what)
    M.send(404, M.json_string(what))
end

function M.iso8601(t)
    return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

---------------------------------------------------------------------------
-- JSON spans. These assume the text is valid JSON (it is checked with cjson
-- first); they only skip over values to find where one starts and ends.

local function skip_ws(s, i)
    return s:find("[^ \t\r\n]", i) or #s + 1
end

local function skip_string(s, i)          -- s:sub(i, i) == '"'
    local j = i + 1
    while true do
        local k = s:find('["\\]', j)
        if s:byte(k) == 92 then           -- backslash: skip the escaped byte
            j = k + 2
        else
            return k + 1
        end
    end
end

-- Returns the index just past the value starting at (or after whitespace at) i.
local function skip_value(s, i)
    i = skip_ws(s, i)
    local c = s:byte(i)
    if c == 34 then                        -- "
        return skip_string(s, i)
    elseif c == 123 or c == 91 then        -- { [
        local depth, j = 0, i
        while true do
            j = s:find('[%[%]{}"]', j)
            local ch = s:byte(j)
            if ch == 34 then
                j = skip_string(s, j)
            else
                depth = depth + ((ch == 123 or ch == 91) and 1 or -1)
                j = j + 1
                if depth == 0 then
                    return j
                end
            end
        end
    end
    return s:find("[,%]} \t\r\n]", i) or #s + 1
end

-- Calls fn(key_or_index, start, stop) for each member/element of the
-- top-level container whose value is at s:sub(start, stop). Stops early
-- when fn returns true.
local function each_child(s, fn)
    local i = skip_ws(s, 1)
    local open = s:byte(i)
    local is_object = open == 123
    i = skip_ws(s, i + 1)
    local n = 0
    while s:byte(i) ~= 125 and s:byte(i) ~= 93 do
        local key
        if is_object then
            local kend = skip_string(s, i)
            key = cjson.decode(s:sub(i, kend - 1))
            i = skip_ws(s, kend)           -- at ':'
            i = skip_ws(s, i + 1)
        else
            n = n + 1
            key = n
        end
        local stop = skip_value(s, i)
        if fn(key, i, stop - 1) then
            return
        end
        i = skip_ws(s, stop)
        if s:byte(i) == 44 then            -- ,
            i = skip_ws(s, i + 1)
        end
    end
end

-- The exact text of the value under `key` in the top-level object `s`.
function M.member_text(s, key)
    local found
    each_child(s, function(k, a, b)
        if k == key then
            found = s:sub(a, b)
            return true
        end
    end)
    return found
end

-- The exact text of element `n` (1-based) of the top-level array `s`.
function M.element_text(s, n)
    return M.member_text(s, n)
end

return M
