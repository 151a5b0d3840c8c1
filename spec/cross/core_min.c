/*
 * core_min.c -- ecs_metadata.core without libcurl: the decoder, read_file,
 * the clock and memo, for running their specs on another CPU under
 * qemu-user (spec/cross/run), where no libcurl for that CPU is at hand.
 * Not installed, not part of the module.
 */
#include <stdarg.h>

#include "ecsm.h"

int ecsm_fail(lua_State *L, const char *code, const char *fmt, ...)
{
    va_list ap;

    lua_pushnil(L);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_pushstring(L, code);
    return 3;
}

ECSM_EXPORT int luaopen_ecs_metadata_core(lua_State *L);

int luaopen_ecs_metadata_core(lua_State *L)
{
    lua_newtable(L);
    ecsm_json_register(L);
    ecsm_file_register(L);
    ecsm_clock_register(L);
    ecsm_memo_register(L);
    lua_pushliteral(L, "ecs_metadata.core");
    lua_setfield(L, -2, "_NAME");
    return 1;
}
