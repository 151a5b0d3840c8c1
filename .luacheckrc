std = "max"
max_line_length = 110
include_files = { "**/*.lua", "bin/ecs-metadata" }
exclude_files = { "build/", ".luarocks/", "lua_modules/" }

files["spec/"] = { std = "+busted" }
files["endpoint/"] = { std = "ngx_lua" }
files["lua/ecs_metadata/resty/"] = { std = "ngx_lua" }
