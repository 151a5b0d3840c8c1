-- ecs_metadata.cli: the `ecs-metadata` command. bin/ecs-metadata only loads
-- this module and calls main(arg); everything else is here, so specs can
-- drive it.
--
--   local cli = require "ecs_metadata.cli"
--   os.exit(cli.main({ "task", "--json" }))
--
-- It owns the command line (subcommands, options, --help), the two output
-- formats (aligned `PATH  value` lines, and JSON), --field, stats-view's
-- table and its sampling, the exit codes and the one-line error messages.
-- The data comes from the library's public API: ecs.new(opts), the
-- client's methods and the views (c:summary(), ecs.task_stats_view ...);
-- stats-view's clock is the C core's now() and _sleep().
--
-- Caveats:
--  * JSON is written by a small encoder of its own, not lua-cjson: cjson
--    2.1.0 (Debian's) has no array_mt, prints integers past 2^53 as floats
--    with 14 digits (9223372036854771712 -> 9.2233720368548e+18) and writes
--    "/" as "\/". Arrays are told from objects by ARRAY_MT, which the client
--    hands to its decoder, so an empty array stays [].
--  * Nothing reaches the user as a Lua error: main() runs under pcall and a
--    failure is one line on stderr ("ecs-metadata: <message> [<code>]").
--  * A reader that goes away (`ecs-metadata task | head -1`) ends the
--    command quietly: by SIGPIPE, or, where SIGPIPE is ignored, by the
--    EPIPE of a write, which exits 0 without a word.
--  * Secrets of `credentials` are masked in both formats unless
--    --show-secrets.

local type = type
local pairs = pairs
local ipairs = ipairs
local next = next
local tostring = tostring
local tonumber = tonumber
local pcall = pcall
local require = require
local getmetatable = getmetatable
local setmetatable = setmetatable
local getenv = os.getenv
local format = string.format
local gsub = string.gsub
local find = string.find
local match = string.match
local sub = string.sub
local byte = string.byte
local rep = string.rep
local concat = table.concat
local sort = table.sort
local floor = math.floor
local huge = math.huge
local math_type = math.type       -- nil before 5.3: every number is a float

local _M = { _NAME = "ecs_metadata.cli" }

-- Exit codes.
local EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_ON_ECS = 0, 1, 2, 3
_M.EXIT = { ok = EXIT_OK, failed = EXIT_FAILED, usage = EXIT_USAGE,
            not_on_ecs = EXIT_NOT_ON_ECS }

-- The metatable the decoder gives every array (ecs.new's array_mt option).
local ARRAY_MT = { __name = "ecs_metadata.cli.array" }
_M.ARRAY_MT = ARRAY_MT

-- What a credentials answer must not show without --show-secrets.
local SECRETS = { "SecretAccessKey", "Token" }
local REDACTED = "<redacted>"

-- The variables the library reads. --env starts from their values in the
-- process's environment (see env_table).
local ENV_NAMES = {
    "ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI",
    "ECS_CONTAINER_METADATA_FILE", "ECS_AGENT_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_REGION", "AWS_DEFAULT_REGION",
}

-- ===================================================================
-- Values: numbers, strings, arrays
-- ===================================================================

local null                 -- ecs.null, once the library is loaded

local function is_null(v)
    return v ~= nil and v == null
end

-- An array: what the decoder marked, or a table whose keys are 1..n.
local function is_array(t)
    local mt = getmetatable(t)
    if mt == ARRAY_MT then
        return true
    end
    if mt ~= nil or next(t) == nil then
        return false
    end
    local n = #t
    if n == 0 then
        return false
    end
    local count = 0
    for k in pairs(t) do
        if type(k) ~= "number" or k < 1 or k > n or k ~= floor(k) then
            return false
        end
        count = count + 1
    end
    return count == n
end

local TWO_63 = 2 ^ 63

-- A number as JSON writes it, exactly: integers in full (on 5.1 and LuaJIT
-- too, where the decoder made them floats), other floats in the shortest
-- form that reads back the same. nil for NaN and infinities.
local function number_text(x)
    if math_type and math_type(x) == "integer" then
        return format("%d", x)
    end
    if x ~= x or x == huge or x == -huge then
        return nil
    end
    if not math_type and x == floor(x) and -TWO_63 < x and x < TWO_63 then
        return format("%.0f", x)
    end
    local s
    for digits = 14, 17 do
        s = format("%." .. digits .. "g", x)
        if tonumber(s) == x then
            break
        end
    end
    -- On 5.3+ a float stays a float when read back.
    if math_type and not find(s, "[%.eEn]") then
        s = s .. ".0"
    end
    return s
end
_M.number_text = number_text

local JSON_ESCAPES = {
    ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
    ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function escape_char(ch)
    return JSON_ESCAPES[ch] or format("\\u%04x", byte(ch))
end

local function json_string(s)
    return '"' .. gsub(s, '[%c"\\]', escape_char) .. '"'
end

-- The keys of an object, sorted (strings before other keys).
local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do
        keys[#keys + 1] = k
    end
    sort(keys, function(a, b)
        local ta, tb = type(a), type(b)
        if ta ~= tb then
            return ta == "string"
        end
        if ta == "string" or ta == "number" then
            return a < b
        end
        return tostring(a) < tostring(b)
    end)
    return keys
end

-- ===================================================================
-- JSON
-- ===================================================================

local function encode(v, out)
    local t = type(v)
    if t == "string" then
        out[#out + 1] = json_string(v)
    elseif t == "number" then
        out[#out + 1] = number_text(v) or "null"
    elseif t == "boolean" then
        out[#out + 1] = v and "true" or "false"
    elseif t == "table" then
        if is_array(v) then
            out[#out + 1] = "["
            for i = 1, #v do
                if i > 1 then
                    out[#out + 1] = ","
                end
                encode(v[i], out)
            end
            out[#out + 1] = "]"
        else
            out[#out + 1] = "{"
            for i, k in ipairs(sorted_keys(v)) do
                if i > 1 then
                    out[#out + 1] = ","
                end
                out[#out + 1] = json_string(tostring(k))
                out[#out + 1] = ":"
                encode(v[k], out)
            end
            out[#out + 1] = "}"
        end
    else
        -- ecs.null, and anything else a table could hold
        out[#out + 1] = "null"
    end
end

-- json(value) -> one line of JSON: keys sorted, integers exact, arrays
-- (ARRAY_MT, or keys 1..n) as arrays.
function _M.json(v)
    local out = {}
    encode(v, out)
    return concat(out)
end

-- ===================================================================
-- The human format: one `PATH  value` line per leaf
-- ===================================================================

-- A scalar as the human format shows it: strings as they are, unless they
-- would break the line or vanish (then quoted like JSON).
local function scalar_text(v)
    local t = type(v)
    if t == "string" then
        if v == "" or find(v, "%c") then
            return json_string(v)
        end
        return v
    elseif t == "number" then
        return number_text(v) or tostring(v)
    elseif is_null(v) then
        return "null"
    end
    return tostring(v)
end

-- Appends { path, text } for every leaf of v to lines.
local function flatten(v, path, lines)
    if type(v) == "table" then
        if is_array(v) then
            for i = 1, #v do
                flatten(v[i], path and path .. "." .. i or tostring(i), lines)
            end
            if #v == 0 then
                lines[#lines + 1] = { path, "[]" }
            end
        else
            local ks = sorted_keys(v)
            for _, k in ipairs(ks) do
                local name = tostring(k)
                flatten(v[k], path and path .. "." .. name or name, lines)
            end
            if #ks == 0 then
                lines[#lines + 1] = { path, "{}" }
            end
        end
    else
        lines[#lines + 1] = { path, scalar_text(v) }
    end
end

-- Beyond this width a key breaks the alignment rather than pushing every
-- value to the right.
local MAX_KEY_WIDTH = 48

-- human(value) -> text: a scalar alone on its line; a table as one line
-- per leaf, `PATH  value`, PATH being what --field takes, aligned.
function _M.human(v)
    local lines = {}
    flatten(v, nil, lines)
    local width = 0
    for _, l in ipairs(lines) do
        local k = l[1]
        if k and #k > width and #k <= MAX_KEY_WIDTH then
            width = #k
        end
    end
    local out = {}
    for i, l in ipairs(lines) do
        local k, text = l[1], l[2]
        if k == nil then
            out[i] = text
        else
            out[i] = k .. rep(" ", width > #k and width - #k + 2 or 2) .. text
        end
    end
    out[#out + 1] = ""
    return concat(out, "\n")
end

-- A table: rows of cells under a header, each column as wide as its widest
-- cell, three spaces apart.
local function text_table(header, rows)
    local widths = {}
    local all = { header }
    for _, row in ipairs(rows) do
        all[#all + 1] = row
    end
    for _, row in ipairs(all) do
        for i, cell in ipairs(row) do
            if #cell > (widths[i] or 0) then
                widths[i] = #cell
            end
        end
    end
    local out = {}
    for _, row in ipairs(all) do
        local cells = {}
        for i, cell in ipairs(row) do
            cells[i] = i < #row and cell .. rep(" ", widths[i] - #cell) or cell
        end
        out[#out + 1] = concat(cells, "   ")
    end
    out[#out + 1] = ""
    return concat(out, "\n")
end
_M.text_table = text_table

-- ===================================================================
-- --field PATH
-- ===================================================================

-- The value at PATH ("Containers.1.Name") in v, or nil. Segments are
-- matched longest first, so keys that hold dots ("cloud.region", in the
-- resource view) are found too; a number segment indexes an array.
local function lookup_path(v, path)
    local segs = {}
    for seg in (path .. "."):gmatch("([^.]*)%.") do
        segs[#segs + 1] = seg
    end
    local i = 1
    while i <= #segs do
        if type(v) ~= "table" then
            return nil
        end
        local found
        for j = #segs, i, -1 do
            local key = concat(segs, ".", i, j)
            local x = v[key]
            if x == nil and j == i and match(key, "^%d+$") then
                x = v[tonumber(key)]
            end
            if x ~= nil then
                v, found, i = x, true, j + 1
                break
            end
        end
        if not found then
            return nil
        end
    end
    return v
end
_M.lookup_path = lookup_path

-- ===================================================================
-- Output
-- ===================================================================

local EPIPE = 32         -- Linux, the BSDs and macOS agree on it

-- Raised (as a table) to stop quietly when the reader has gone.
local CLOSED = {}

-- An error to report: one line, a code, an exit status.
local function failure(msg, code, exit)
    return { msg = msg, code = code, exit = exit }
end

local EXIT_OF = { not_on_ecs = EXIT_NOT_ON_ECS, usage = EXIT_USAGE }

-- The exit status of a library error code.
local function exit_of(code)
    return EXIT_OF[code] or EXIT_FAILED
end

-- Writes s and flushes; a closed pipe raises CLOSED, any other write error
-- a failure.
local function emit(io_, s)
    local f = io_.stdout
    local ok, err, errno = f:write(s)
    if ok then
        ok, err, errno = f:flush()
    end
    if not ok then
        if errno == EPIPE or (type(err) == "string" and find(err, "[Bb]roken pipe")) then
            error(CLOSED, 0)
        end
        error(failure("cannot write the output: " .. tostring(err),
                      "io_error", EXIT_FAILED), 0)
    end
end

-- ===================================================================
-- The command line
-- ===================================================================

-- Options: name -> { arg = what it takes, key = field in the parsed
-- options, check = fn(value) -> value | nil, reason }.
local function positive_seconds(s)
    local n = tonumber(s)
    if not n or n ~= n or n <= 0 or n == huge then
        return nil, "a number of seconds > 0"
    end
    return n
end

-- The library's own bound for a wait (a day).
local MAX_WAIT = 86400

local function seconds_or_zero(s)
    local n = tonumber(s)
    if not n or n ~= n or n < 0 or n > MAX_WAIT then
        return nil, "a number of seconds from 0 to " .. MAX_WAIT
    end
    return n
end

local function whole(min)
    return function(s)
        local n = match(s, "^%d+$") and tonumber(s)
        if not n or n < min then
            return nil, "a whole number >= " .. min
        end
        return n
    end
end

local VERSIONS = { v4 = true, v3 = true, v2 = true, file = true }

local OPTIONS = {
    json = { key = "json" },
    field = { arg = "PATH", key = "field" },
    env = { arg = "KEY=VALUE", key = "env", many = true, check = function(s)
        local k, v = match(s, "^([%a_][%w_]*)=(.*)$")
        if not k then
            return nil, "KEY=VALUE, KEY a variable name"
        end
        return { k, v }
    end },
    timeout = { arg = "SECONDS", key = "timeout", check = positive_seconds },
    ["connect-timeout"] = { arg = "SECONDS", key = "connect_timeout",
                            check = positive_seconds },
    retries = { arg = "N", key = "retries", check = whole(0) },
    version = { arg = "v4|v3|v2|file", key = "version", check = function(s)
        if not VERSIONS[s] then
            return nil, "one of v4, v3, v2, file"
        end
        return s
    end },
    ["link-local-url"] = { arg = "URL", key = "link_local_url" },
    wait = { arg = "SECONDS", key = "wait", check = seconds_or_zero },
    ["container-id"] = { arg = "ID", key = "container_id" },
    ["show-secrets"] = { key = "show_secrets" },
    interval = { arg = "SECONDS", key = "interval", check = positive_seconds },
    count = { arg = "N", key = "count", check = whole(1) },
    help = { key = "help" },
}

-- Options every subcommand takes; the others only where a subcommand says.
local COMMON = {
    json = true, field = true, env = true, timeout = true,
    ["connect-timeout"] = true, retries = true, version = true,
    ["link-local-url"] = true, help = true,
}

local function usage_error(msg)
    return failure(msg, "usage", EXIT_USAGE)
end

-- parse(argv) -> { opts = {...}, seen = {name = true}, words = {...} }
-- | nil, failure
local function parse(argv)
    local opts, seen, words = { env = {} }, {}, {}
    local i, n = 1, #argv
    while i <= n do
        local a = argv[i]
        if a == "--" then
            for j = i + 1, n do
                words[#words + 1] = argv[j]
            end
            break
        elseif a == "-h" then
            opts.help, seen.help = true, true
        elseif sub(a, 1, 2) == "--" then
            local name, value = match(a, "^%-%-([^=]+)=(.*)$")
            name = name or sub(a, 3)
            local spec = OPTIONS[name]
            if not spec then
                return nil, usage_error("unknown option --" .. name)
            end
            if spec.arg then
                if value == nil then
                    i = i + 1
                    value = argv[i]
                    if value == nil then
                        return nil, usage_error("--" .. name .. " needs "
                                                .. spec.arg)
                    end
                end
                if spec.check then
                    local v, why = spec.check(value)
                    if v == nil then
                        return nil, usage_error("--" .. name .. " " .. value
                                                .. ": expected " .. why)
                    end
                    value = v
                end
                if spec.many then
                    local list = opts[spec.key]
                    list[#list + 1] = value
                else
                    opts[spec.key] = value
                end
            elseif value ~= nil then
                return nil, usage_error("--" .. name .. " takes no value")
            else
                opts[spec.key] = true
            end
            seen[name] = true
        elseif sub(a, 1, 1) == "-" and a ~= "-" then
            return nil, usage_error("unknown option " .. a)
        else
            words[#words + 1] = a
        end
        i = i + 1
    end
    return { opts = opts, seen = seen, words = words }
end
_M.parse = parse

-- The environment the client reads: the process's, with --env over it.
-- An empty VALUE unsets the variable (the library counts "" as unset).
local function env_table(pairs_list)
    local env = {}
    for _, name in ipairs(ENV_NAMES) do
        env[name] = getenv(name)
    end
    for _, kv in ipairs(pairs_list) do
        env[kv[1]] = kv[2]
    end
    -- Any other variable a newer library reads comes from the process.
    return setmetatable(env, { __index = function(_, k)
        return getenv(k)
    end })
end

-- ===================================================================
-- Subcommands
-- ===================================================================

local ecs                  -- the library, loaded by main()

-- Each subcommand: summary (one line for --help), usage, help (more
-- lines), takes (options beyond COMMON), args (the words it takes: a
-- function(words) -> parsed | nil, reason), kind ("doc": a table in either
-- format, "text": printed as it is, "field": one value), and run(ctx)
-- -> value | nil, msg, code.
local COMMANDS = {}
local ORDER = {}

local function command(name, def)
    def.name = name
    COMMANDS[name] = def
    ORDER[#ORDER + 1] = name
end

local function no_words(words)
    if #words > 0 then
        return nil, "takes no arguments (got '" .. words[1] .. "')"
    end
    return true
end

-- The call options of a source: only what was given, or nil (the client's
-- short path).
local function call_opts(ctx, names)
    local o
    for _, k in ipairs(names) do
        local v = ctx.opts[k]
        if v ~= nil then
            o = o or {}
            o[k] = v
        end
    end
    return o
end

local function source(name, method, summary, extra)
    local takes, per_call = {}, {}
    for _, k in ipairs(extra or {}) do
        takes[k] = true
        per_call[#per_call + 1] = OPTIONS[k].key
    end
    command(name, {
        summary = summary,
        takes = takes,
        kind = "doc",
        run = function(ctx)
            local c = ctx.client
            return c[method](c, call_opts(ctx, per_call))
        end,
    })
end

source("container", "container",
       "this container's metadata",
       { "container-id", "wait" })
source("task", "task", "the task's metadata, with its Containers")
source("task-with-tags", "task_with_tags",
       "the task's metadata with its tags (v4)")
source("stats", "container_stats",
       "Docker stats of this container",
       { "container-id" })
source("task-stats", "task_stats",
       "Docker stats of the task's containers, by Docker id")
source("file", "metadata_file",
       "the container metadata file",
       { "wait" })
source("protection", "protection",
       "the task's scale-in protection")

command("protect", {
    summary = "set or clear the task's scale-in protection",
    usage = "protect on [MINUTES] | protect off",
    list = "protect on|off",
    help = {
        "MINUTES: 1 to 2880; without, ECS's default of 2 hours.",
        "Prints the protection state the agent answers.",
    },
    kind = "doc",
    args = function(words)
        local what, minutes = words[1], words[2]
        if what == "on" then
            if #words > 2 then
                return nil, "takes on [MINUTES]"
            end
            if minutes ~= nil then
                local m = match(minutes, "^%d+$") and tonumber(minutes)
                if not m or m < 1 or m > 2880 then
                    return nil, "MINUTES must be a whole number from 1 to 2880"
                end
                minutes = m
            end
            return { enabled = true, minutes = minutes }
        elseif what == "off" then
            if #words > 1 then
                return nil, "off takes no MINUTES"
            end
            return { enabled = false }
        end
        return nil, "needs on [MINUTES] or off"
    end,
    run = function(ctx)
        local a = ctx.args
        if a.enabled then
            return ctx.client:protect(true, a.minutes)
        end
        return ctx.client:protect(false)
    end,
})

command("credentials", {
    summary = "the task role's credentials (secrets masked)",
    help = {
        "SecretAccessKey and Token show as " .. REDACTED
            .. " unless --show-secrets.",
        "With AWS_CONTAINER_CREDENTIALS_RELATIVE_URI the request goes to",
        "--link-local-url (default http://169.254.170.2).",
    },
    takes = { ["show-secrets"] = true },
    kind = "doc",
    run = function(ctx)
        local cr, msg, code = ctx.client:credentials()
        if not cr then
            return nil, msg, code
        end
        local shown = {}
        for k, v in pairs(cr) do
            shown[k] = v
        end
        if not ctx.opts.show_secrets then
            for _, k in ipairs(SECRETS) do
                if shown[k] ~= nil then
                    shown[k] = REDACTED
                end
            end
        end
        return shown
    end,
})

command("endpoint", {
    summary = "the source in use: base url (or file) and version",
    kind = "doc",
    run = function(ctx)
        local base, version, code = ctx.client:endpoint()
        if not base then
            return nil, version, code
        end
        return { base = base, version = version }
    end,
})

-- ===================================================================
-- The derived views
-- ===================================================================

-- The views, as the library gives them: the client's methods and ecs.*.
local VIEWS = {
    summary = function(c, o) return c:summary(o) end,
    resource = function(c, o) return c:resource(o) end,
    prometheus = function(c, o) return c:prometheus(o) end,
    task_stats_view = function(...) return ecs.task_stats_view(...) end,
}

-- A view of this container and its task. With only the metadata file
-- there is no task document: the file's own (it names the task) stands in.
local function container_view(ctx, which)
    local c = ctx.client
    local view = VIEWS[which]
    local _, version = c:endpoint()
    if version == "file" then
        return view(c, { task = {} })
    end
    return view(c)
end

command("summary", {
    summary = "what to log and route on, in one flat table",
    help = { "Built from this container's metadata and its task's." },
    kind = "doc",
    run = function(ctx)
        return container_view(ctx, "summary")
    end,
})

command("resource", {
    summary = "OpenTelemetry resource attributes",
    help = { "By the semantic conventions (cloud.*, aws.ecs.*, aws.log.*, container.*)." },
    kind = "doc",
    run = function(ctx)
        return container_view(ctx, "resource")
    end,
})

command("prometheus", {
    summary = "task metadata and stats in the Prometheus text format",
    help = { "With the metric names, types and labels of prometheus-community's",
             "ecs_exporter (v0.4), and more under names of the same style." },
    kind = "text",
    run = function(ctx)
        return VIEWS.prometheus(ctx.client)
    end,
})

-- Sizes as `docker stats` writes them: memory in powers of 1024 with four
-- digits, network and block I/O in powers of 1000 with three.
local BINARY = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" }
local DECIMAL = { "B", "kB", "MB", "GB", "TB", "PB", "EB" }

local function size(x, base, units, digits)
    if type(x) ~= "number" then
        return "--"
    end
    local i = 1
    while x >= base and i < #units do
        x, i = x / base, i + 1
    end
    return format("%." .. digits .. "g", x) .. units[i]
end

local function percent(x)
    return type(x) == "number" and format("%.2f%%", x) or "--"
end

local STATS_HEADER = { "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                       "BLOCK I/O", "PIDS" }

local function stats_row(name, v)
    if not v then
        return { name, "--", "-- / --", "--", "-- / --", "-- / --", "--" }
    end
    return {
        name,
        percent(v.cpu_percent),
        size(v.memory_used, 1024, BINARY, 4) .. " / " .. size(v.memory_limit, 1024, BINARY, 4),
        percent(v.memory_percent),
        size(v.network_rx_bytes, 1000, DECIMAL, 3) .. " / "
            .. size(v.network_tx_bytes, 1000, DECIMAL, 3),
        size(v.block_read_bytes, 1000, DECIMAL, 3) .. " / "
            .. size(v.block_write_bytes, 1000, DECIMAL, 3),
        type(v.pids) == "number" and number_text(v.pids) or "--",
    }
end

-- One sample as a table: a row per container of the task (in the task's
-- order), then stats the task does not name (by short id), then TOTAL.
local function stats_table(view, task)
    local rows, done = {}, {}
    local without = {}
    for _, name in ipairs(view.without_stats or {}) do
        without[name] = true
    end
    for _, c in ipairs(type(task) == "table" and type(task.Containers) == "table"
                       and task.Containers or {}) do
        local name = type(c) == "table" and (c.Name or c.DockerId)
        if type(name) == "string" and not done[name] then
            done[name] = true
            local v = view.containers and view.containers[name]
            if v or without[name] then
                rows[#rows + 1] = stats_row(name, v)
            end
        end
    end
    local ids = sorted_keys(view.unmatched or {})
    for _, id in ipairs(ids) do
        rows[#rows + 1] = stats_row(sub(id, 1, 12), view.unmatched[id])
    end
    for _, name in ipairs(view.without_stats or {}) do
        if not done[name] then
            rows[#rows + 1] = stats_row(sub(name, 1, 12), nil)
        end
    end
    rows[#rows + 1] = stats_row("TOTAL", view.totals or {})
    return text_table(STATS_HEADER, rows)
end

local function sleep_until(t)
    local core = require "ecs_metadata.core"
    -- In short naps, so that Ctrl-C is heard soon.
    while true do
        local left = t - core.now()
        if left <= 0 then
            return
        end
        core._sleep(left < 0.1 and left or 0.1)
    end
end

command("stats-view", {
    summary = "CPU %, memory, network and block I/O per container",
    usage = "stats-view [--interval SECONDS] [--count N]",
    list = "stats-view",
    help = {
        "The numbers `docker stats` shows, per container of the task and in total.",
        "One sample: CPU % from the agent's own previous reading. With --interval,",
        "a sample every SECONDS (CPU % from the previous sample), --count N times",
        "or until interrupted; --count alone samples every second. With --json,",
        "one line per sample.",
    },
    takes = { interval = true, count = true },
    kind = "doc",
    stream = function(ctx)
        local c, o = ctx.client, ctx.opts
        local view_of = VIEWS.task_stats_view
        local interval = o.interval or (o.count and o.count > 1 and 1) or nil
        local start = require("ecs_metadata.core").now()
        local prev
        local n = 0
        while true do
            local task, msg, code = c:task()
            if not task then
                error(failure(tostring(msg), code or "error", exit_of(code)), 0)
            end
            local stats
            stats, msg, code = c:task_stats()
            if not stats then
                error(failure(tostring(msg), code or "error", exit_of(code)), 0)
            end
            local view = view_of(stats, task, prev)
            if type(view.without_stats) == "table" then
                setmetatable(view.without_stats, ARRAY_MT)
            end
            local text
            if o.json or o.field then
                text = ctx.render(view)
            else
                text = stats_table(view, task)
            end
            ctx.emit((n > 0 and not o.json and not o.field) and "\n" .. text or text)
            n = n + 1
            if not interval or (o.count and n >= o.count) then
                break
            end
            prev = stats
            sleep_until(start + n * interval)
        end
        c:close()
        return EXIT_OK
    end,
})

-- Single values for scripts, out of the summary.
local FIELDS = {
    { "task-id", "task_id", "the task's id (the end of its ARN)" },
    { "task-arn", "task_arn", "the task's ARN" },
    { "cluster", "cluster", "the cluster's name" },
    { "family", "family", "the task definition's family" },
    { "revision", "revision", "the task definition's revision" },
    { "az", "availability_zone", "the availability zone" },
    { "region", "region", "the region" },
    { "account", "account", "the AWS account id" },
    { "container-id", "docker_id", "this container's Docker id" },
    { "container-name", "container_name", "this container's name" },
    { "image", "image", "this container's image" },
    { "ip", "private_ipv4", "this container's private IPv4 address" },
    { "log-group", "awslogs_group", "the awslogs group" },
    { "log-stream", "awslogs_stream", "the awslogs stream" },
}

for _, f in ipairs(FIELDS) do
    local name, key, what = f[1], f[2], f[3]
    command(name, {
        summary = what,
        help = { "The summary's " .. key .. "; --json prints it as a JSON string." },
        kind = "field",
        field_of = key,
        run = function(ctx)
            local s, msg, code = container_view(ctx, "summary")
            if s == nil then
                return nil, msg, code
            end
            local v = s[key]
            if v == nil then
                return nil, name .. ": no " .. key .. " in the summary of "
                    .. "this container's and task's metadata", "no_field"
            end
            return v
        end,
    })
end

command("help", {
    summary = "this text, or a subcommand's",
    usage = "help [SUBCOMMAND]",
    args = function(words)
        if #words > 1 then
            return nil, "takes one SUBCOMMAND"
        end
        if words[1] and not COMMANDS[words[1]] then
            return nil, "no subcommand '" .. words[1] .. "'"
        end
        return { topic = words[1] }
    end,
})

-- ===================================================================
-- Help
-- ===================================================================

local EXIT_HELP = {
    "Exit status:",
    "  0  ok",
    "  1  the endpoint (or the file, or the output) failed",
    "  2  usage: a bad subcommand, option or argument",
    "  3  not on ECS: the variables the subcommand needs are not set",
    "Errors are one line on stderr: ecs-metadata: <message> [<code>]",
}

local OPTION_HELP = {
    { "--json", "print JSON (one line; keys sorted, integers exact)" },
    { "--field PATH", "print only the value at PATH, e.g. Containers.1.Name" },
    { "--env KEY=VALUE", "set a variable for the lookup (repeatable; KEY= unsets)" },
    { "--timeout SECONDS", "for the whole call, retries included (default 3)" },
    { "--connect-timeout SECONDS", "per connection attempt (default 1)" },
    { "--retries N", "after a 429, a 5xx or a failed connection (default 2)" },
    { "--version v4|v3|v2|file", "the source to use instead of discovering one" },
    { "--link-local-url URL", "instead of http://169.254.170.2 (v2, credentials)" },
    { "--wait SECONDS", "file, container: wait for the file to be READY" },
    { "--container-id ID", "container, stats on v2: the Docker id" },
    { "--show-secrets", "credentials: show SecretAccessKey and Token" },
    { "--interval SECONDS", "stats-view: a sample every SECONDS" },
    { "--count N", "stats-view: N samples" },
    { "-h, --help", "this text; SUBCOMMAND --help: the subcommand's" },
}

local function columns(rows, indent)
    local width = 0
    for _, r in ipairs(rows) do
        if #r[1] > width then
            width = #r[1]
        end
    end
    local out = {}
    for _, r in ipairs(rows) do
        out[#out + 1] = indent .. r[1] .. rep(" ", width - #r[1] + 2) .. r[2]
    end
    return out
end

local function main_help()
    local lines = {
        "Usage: ecs-metadata [OPTIONS] SUBCOMMAND [ARGS]",
        "",
        "Amazon ECS task and container metadata, stats, the metadata file, scale-in",
        "protection and role credentials, for shell scripts and people.",
        "",
        "Subcommands:",
    }
    local rows = {}
    for _, name in ipairs(ORDER) do
        local def = COMMANDS[name]
        if not def.field_of then
            rows[#rows + 1] = { def.list or def.usage or name, def.summary }
        end
    end
    for _, l in ipairs(columns(rows, "  ")) do
        lines[#lines + 1] = l
    end
    local fields = {}
    for _, name in ipairs(ORDER) do
        if COMMANDS[name].field_of then
            fields[#fields + 1] = name
        end
    end
    if #fields > 0 then
        lines[#lines + 1] = ""
        lines[#lines + 1] = "Single values, for scripts (from the summary):"
        local line = " "
        for _, f in ipairs(fields) do
            if #line + #f + 1 > 78 then
                lines[#lines + 1] = line
                line = " "
            end
            line = line .. " " .. f
        end
        lines[#lines + 1] = line
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Options (before or after the subcommand):"
    for _, l in ipairs(columns(OPTION_HELP, "  ")) do
        lines[#lines + 1] = l
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = "The default output is one `PATH  value` line per value, PATH being what"
    lines[#lines + 1] = "--field takes."
    lines[#lines + 1] = ""
    for _, l in ipairs(EXIT_HELP) do
        lines[#lines + 1] = l
    end
    lines[#lines + 1] = ""
    return concat(lines, "\n")
end

local function command_help(def)
    local lines = {
        "Usage: ecs-metadata [OPTIONS] " .. (def.usage or def.name),
        "",
        def.summary:sub(1, 1):upper() .. def.summary:sub(2) .. ".",
    }
    for _, l in ipairs(def.help or {}) do
        lines[#lines + 1] = l
    end
    local rows = {}
    for _, r in ipairs(OPTION_HELP) do
        local name = match(r[1], "^%-%-([%w-]+)") or "help"
        if COMMON[name] or (def.takes and def.takes[name]) then
            if not (def.kind == "text" and (name == "json" or name == "field"))
               and not (def.kind == "field" and name == "field") then
                rows[#rows + 1] = r
            end
        end
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Options:"
    for _, l in ipairs(columns(rows, "  ")) do
        lines[#lines + 1] = l
    end
    lines[#lines + 1] = ""
    for _, l in ipairs(EXIT_HELP) do
        lines[#lines + 1] = l
    end
    lines[#lines + 1] = ""
    return concat(lines, "\n")
end

-- ===================================================================
-- main
-- ===================================================================

-- The client's options from the command line: only those given.
local function client_opts(opts)
    local o = { array_mt = ARRAY_MT }
    for _, k in ipairs({ "timeout", "connect_timeout", "retries", "version",
                         "link_local_url" }) do
        o[k] = opts[k]
    end
    if opts.timeout then
        -- protection's own default (5 s) yields to an explicit --timeout
        o.protection_timeout = opts.timeout
    end
    if #opts.env > 0 then
        o.env = env_table(opts.env)
    end
    return o
end

-- Checks what the parsed command line asks of def; a failure, or nil.
local function check_command(def, cmd)
    local seen = cmd.seen
    for name in pairs(seen) do
        if not COMMON[name] and not (def.takes and def.takes[name]) then
            return usage_error("--" .. name .. " does not apply to "
                               .. def.name)
        end
    end
    if def.kind == "text" and (seen.json or seen.field) then
        return usage_error(def.name .. " prints text: --json and --field "
                           .. "do not apply")
    end
    if def.kind == "field" and seen.field then
        return usage_error(def.name .. " prints one value: --field does "
                           .. "not apply")
    end
    local o = cmd.opts
    if o.version == "v2" and not o.container_id
       and (def.name == "container" or def.name == "stats") then
        return usage_error(def.name .. " on v2 needs --container-id")
    end
    if o.container_id and o.version ~= "v2" then
        return usage_error("--container-id is for --version v2")
    end
    return nil
end

local function render(def, value, opts)
    if def.kind == "text" then
        local s = tostring(value)
        if s ~= "" and sub(s, -1) ~= "\n" then
            s = s .. "\n"
        end
        return s
    end
    if opts.field then
        local v = lookup_path(value, opts.field)
        if v == nil then
            error(failure(def.name .. ": no field '" .. opts.field
                          .. "' in the answer", "no_field", EXIT_FAILED), 0)
        end
        value = v
    end
    if opts.json then
        return _M.json(value) .. "\n"
    end
    return _M.human(value)
end

local function run(argv, io_)
    local cmd, err = parse(argv)
    if not cmd then
        error(err, 0)
    end
    local words = cmd.words
    local name = words[1]
    local def = name and COMMANDS[name]
    if cmd.opts.help and not name then
        emit(io_, main_help())
        return EXIT_OK
    end
    if not name then
        error(usage_error("no subcommand (ecs-metadata --help lists them)"), 0)
    end
    if not def then
        error(usage_error("no subcommand '" .. name
                          .. "' (ecs-metadata --help lists them)"), 0)
    end
    if cmd.opts.help then
        emit(io_, command_help(def))
        return EXIT_OK
    end
    local rest = {}
    for i = 2, #words do
        rest[#rest + 1] = words[i]
    end
    local args, why = (def.args or no_words)(rest)
    if not args then
        error(usage_error(name .. ": " .. why), 0)
    end
    local bad = check_command(def, cmd)
    if bad then
        error(bad, 0)
    end
    if name == "help" then
        local topic = args.topic and COMMANDS[args.topic]
        emit(io_, topic and command_help(topic) or main_help())
        return EXIT_OK
    end

    if not ecs then
        local ok, mod = pcall(require, "ecs_metadata")
        if not ok then
            -- require lists every place it tried: the first few are
            -- enough to go on.
            local cause = gsub(tostring(mod), "\n\t?", " ")
            if #cause > 300 then
                cause = sub(cause, 1, 300) .. "..."
            end
            error(failure("cannot load the ecs_metadata module: " .. cause,
                          "internal", EXIT_FAILED), 0)
        end
        ecs = mod
    end
    null = ecs.null
    local client, msg, code = ecs.new(client_opts(cmd.opts))
    if not client then
        -- an option value the library refuses: a usage error
        if code == "invalid_argument" then
            error(usage_error(tostring(msg)), 0)
        end
        error(failure(tostring(msg), code or "internal", exit_of(code)), 0)
    end
    local ctx = { client = client, opts = cmd.opts, args = args,
                  emit = function(s) emit(io_, s) end,
                  render = function(v) return render(def, v, cmd.opts) end }
    if def.stream then
        return def.stream(ctx)
    end
    local value
    value, msg, code = def.run(ctx)
    client:close()
    if value == nil then
        error(failure(tostring(msg), code or "error", exit_of(code)), 0)
    end
    emit(io_, render(def, value, cmd.opts))
    return EXIT_OK
end

-- One line: no line breaks, whatever the message holds.
local function one_line(s)
    return (gsub(gsub(tostring(s), "[\r\n]+", " "), "%s+$", ""))
end

-- main(argv [, io]) -> exit status. argv is the command's arguments (the
-- launcher's `arg`); io = { stdout = file, stderr = file } for specs.
function _M.main(argv, io_)
    io_ = io_ or { stdout = io.stdout, stderr = io.stderr }
    local args = {}
    for i = 1, #(argv or {}) do
        args[i] = tostring(argv[i])
    end
    local ok, status = pcall(run, args, io_)
    if ok then
        return status
    end
    local e = status
    if e == CLOSED then
        return EXIT_OK
    end
    if type(e) ~= "table" then
        -- The standalone interpreter's answer to Ctrl-C.
        if type(e) == "string" and find(e, "interrupted!$") then
            return 130
        end
        e = failure("internal error: " .. tostring(e), "internal",
                    EXIT_FAILED)
    end
    local line = "ecs-metadata: " .. one_line(e.msg) .. " [" .. e.code .. "]\n"
    pcall(function()
        io_.stderr:write(line)
        io_.stderr:flush()
    end)
    return e.exit
end

-- For specs and views: the subcommand table and the helpers above.
_M.COMMANDS = COMMANDS
_M.ORDER = ORDER

return _M
