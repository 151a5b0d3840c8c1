rockspec_format = "3.0"
package = "ecs-metadata"
version = "scm-1"

source = {
  url = "git+https://github.com/ecs-metadata/ecs-metadata.git",
}

description = {
  summary = "Amazon ECS task and container metadata, stats and credentials as Lua tables",
  detailed = [[
A C module on libcurl, with a strict and exact JSON decoder, and a thin Lua
layer: the task metadata endpoint (v4, v3, v2), Docker stats, the container
metadata file, task scale-in protection and task role credentials, from plain
Lua, LuaJIT and OpenResty.
]],
  homepage = "https://github.com/ecs-metadata/ecs-metadata",
  license = "MIT",
  labels = { "aws", "ecs", "fargate", "metadata", "json" },
}

-- lua-cjson is only the specs' reference decoder and the demo's encoder:
-- the library itself needs nothing but Lua and libcurl.
dependencies = {
  "lua >= 5.1, < 5.5",
}

-- Only the library is checked: on Debian the header sits in a multiarch
-- folder that LuaRocks 3.8 does not search, and the compiler finds it anyway.
-- Without libcurl's development files (Debian: libcurl4-openssl-dev) the
-- check fails with LuaRocks' "Could not find library file for CURL".
external_dependencies = {
  CURL = { library = "curl" },
}

build = {
  type = "builtin",
  modules = {
    ["ecs_metadata.core"] = {
      sources = {
        "src/core.c", "src/http.c", "src/decode.c", "src/file.c", "src/clock.c",
        "src/memo.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "curl", "pthread" },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
    },
    ["ecs_metadata.cli"] = "lua/ecs_metadata/cli.lua",
    ["ecs_metadata.client"] = "lua/ecs_metadata/client.lua",
    ["ecs_metadata.credentials"] = "lua/ecs_metadata/credentials.lua",
    ["ecs_metadata.discovery"] = "lua/ecs_metadata/discovery.lua",
    ["ecs_metadata.errors"] = "lua/ecs_metadata/errors.lua",
    ["ecs_metadata.fargate"] = "lua/ecs_metadata/fargate.lua",
    ["ecs_metadata"] = "lua/ecs_metadata/init.lua",
    ["ecs_metadata.metadata_file"] = "lua/ecs_metadata/metadata_file.lua",
    ["ecs_metadata.protection"] = "lua/ecs_metadata/protection.lua",
    ["ecs_metadata.request"] = "lua/ecs_metadata/request.lua",
    ["ecs_metadata.time"] = "lua/ecs_metadata/time.lua",
    ["ecs_metadata.transport"] = "lua/ecs_metadata/transport/init.lua",
    ["ecs_metadata.transport.curl"] = "lua/ecs_metadata/transport/curl.lua",
    ["ecs_metadata.transport.cosocket"] = "lua/ecs_metadata/transport/cosocket.lua",
    ["ecs_metadata.resty.phase"] = "lua/ecs_metadata/resty/phase.lua",
    ["ecs_metadata.resty.shared"] = "lua/ecs_metadata/resty/shared.lua",
    ["ecs_metadata.resty.refresh"] = "lua/ecs_metadata/resty/refresh.lua",
    ["ecs_metadata.views.arn"] = "lua/ecs_metadata/views/arn.lua",
    ["ecs_metadata.views.common"] = "lua/ecs_metadata/views/common.lua",
    ["ecs_metadata.views.methods"] = "lua/ecs_metadata/views/methods.lua",
    ["ecs_metadata.views.prometheus"] = "lua/ecs_metadata/views/prometheus.lua",
    ["ecs_metadata.views.resource"] = "lua/ecs_metadata/views/resource.lua",
    ["ecs_metadata.views.stats"] = "lua/ecs_metadata/views/stats.lua",
    ["ecs_metadata.views.summary"] = "lua/ecs_metadata/views/summary.lua",
    ["ecs_metadata.options"] = "lua/ecs_metadata/options.lua",
    ["ecs_metadata.cache"] = "lua/ecs_metadata/cache.lua",
    ["ecs_metadata.daemon"] = "lua/ecs_metadata/daemon.lua",
    ["ecs_metadata.fault"] = "lua/ecs_metadata/fault.lua",
    ["ecs_metadata.launch_type"] = "lua/ecs_metadata/launch_type.lua",
    ["ecs_metadata.region"] = "lua/ecs_metadata/region.lua",
  },
  -- LuaRocks wraps it in a script that starts the Lua the rock is built for.
  install = {
    bin = { ["ecs-metadata"] = "bin/ecs-metadata" },
  },
}

test = {
  type = "command",
  command = "make test",
}
