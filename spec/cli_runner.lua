-- Runs the `ecs-metadata` command (bin/ecs-metadata) as a process, the way
-- a shell script would, for the specs of the command.
--
--   local cli = require "spec.cli_runner"
--   local out, status, err = cli.run({ "task", "--json" }, cli.EC2)
--
-- The child gets exactly the ECS variables given (every other one the
-- library reads is unset) and `--link-local-url <endpoint>` ahead of the
-- arguments, so that nothing it does can reach 169.254.170.2.

local helpers = require "spec.helpers"

local E = helpers.endpoint()
local q = helpers.shell_quote

local R = {}

R.E = E
R.BIN = "bin/ecs-metadata"

-- Every variable the library reads.
R.ENV_NAMES = {
    "ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI",
    "ECS_CONTAINER_METADATA_FILE", "ECS_AGENT_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_REGION", "AWS_DEFAULT_REGION",
}

-- Environments, like the endpoint's profiles (endpoint/README.md).
R.V4 = {
    ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/fargate",
    ECS_CONTAINER_METADATA_URI = E .. "/v3/ec2",
    ECS_AGENT_URI = E .. "/agent/default",
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/fixture",
}
R.EC2 = {
    ECS_CONTAINER_METADATA_URI_V4 = E .. "/v4/ec2",
    ECS_CONTAINER_METADATA_URI = E .. "/v3/ec2",
    ECS_AGENT_URI = E .. "/agent/default",
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/fixture",
}
R.V3 = { ECS_CONTAINER_METADATA_URI = E .. "/v3/ec2" }
R.NONE = {}

-- env with the changes in `over` (false unsets).
function R.with(env, over)
    local t = {}
    for k, v in pairs(env) do
        t[k] = v
    end
    for k, v in pairs(over) do
        t[k] = v or nil
    end
    return t
end

local function read(path)
    local f = io.open(path, "rb")
    if not f then
        return ""
    end
    local s = f:read("*a")
    f:close()
    return s
end

-- The `env ...` prefix that gives a child exactly env's ECS variables.
function R.env_prefix(env)
    local parts = { "env" }
    for _, k in ipairs(R.ENV_NAMES) do
        if env[k] == nil then
            parts[#parts + 1] = "-u " .. k
        end
    end
    local names = {}
    for k in pairs(env) do
        names[#names + 1] = k
    end
    table.sort(names)
    for _, k in ipairs(names) do
        parts[#parts + 1] = q(k .. "=" .. env[k])
    end
    return table.concat(parts, " ")
end

-- The command line that runs ecs-metadata with args (quoted), no env.
function R.command(args, opts)
    local parts = { helpers.interpreter(), q((opts and opts.bin) or R.BIN) }
    if not (opts and opts.no_link_local) then
        parts[#parts + 1] = "--link-local-url " .. q(E)
    end
    for _, a in ipairs(args) do
        parts[#parts + 1] = q(a)
    end
    return table.concat(parts, " ")
end

-- Runs a shell script; answers stdout, the script's exit status, stderr.
function R.shell(script)
    local out, err = os.tmpname(), os.tmpname()
    local p = assert(io.popen("( " .. script .. " ) </dev/null >" .. q(out)
                              .. " 2>" .. q(err) .. "; echo $?"))
    local status = tonumber(p:read("*a"):match("%d+"))
    p:close()
    local stdout, stderr = read(out), read(err)
    os.remove(out)
    os.remove(err)
    return stdout, status, stderr
end

-- run(args, env [, opts]) -> stdout, exit status, stderr
-- opts.no_link_local: no --link-local-url; opts.bin: another launcher.
function R.run(args, env, opts)
    return R.shell(R.env_prefix(env or R.NONE) .. " " .. R.command(args, opts))
end

-- What goldens never depend on: the endpoint's port.
function R.normalize(s)
    return (s:gsub(E:gsub("%p", "%%%0"), "$E"))
end

local GOLDEN = "spec/golden/"

-- The golden file's text; with ECSM_UPDATE_GOLDEN=1 it is (re)written
-- from `actual` first, and the spec fails so that the update is seen.
function R.golden(name, actual)
    local path = GOLDEN .. name
    if os.getenv("ECSM_UPDATE_GOLDEN") == "1" then
        local f = assert(io.open(path, "wb"))
        f:write(actual)
        f:close()
        error("golden " .. path .. " rewritten: review it and run again", 2)
    end
    local f = io.open(path, "rb")
    if not f then
        error("no golden file " .. path .. " (ECSM_UPDATE_GOLDEN=1 writes it)", 2)
    end
    local s = f:read("*a")
    f:close()
    return s
end

return R
