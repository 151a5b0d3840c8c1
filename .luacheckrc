std = "max"
max_line_length = 110
exclude_files = { "build/", ".luarocks/", "lua_modules/" }

files["spec/"] = { std = "+busted" }
files["endpoint/"] = { std = "ngx_lua" }
files["lua/ecs_metadata/resty/"] = { std = "ngx_lua" }
