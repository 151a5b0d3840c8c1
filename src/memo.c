/*
 * memo.c -- core._memo(fallback) -> get, set: a one-value cache cell whose
 * hit is a single C call, for the module-level functions of the Lua layer
 * (ecs.task() and friends), which are called per request and usually
 * answered from the cache.
 *
 * get(...) with no argument (or nil) returns the stored value while it is
 * fresh; otherwise, and with any argument, it calls fallback(...) and
 * returns what that returns. set(value, ttl) stores value for ttl seconds
 * (nil or ttl <= 0 empties the cell). The cell keeps its own expiry on the
 * coarse monotonic clock, from the ttl it is given, so it never compares
 * times taken from another clock (a transport's, say).
 *
 * The value lives in an upvalue of get and the expiry in a userdata shared
 * by both closures: nothing outside Lua's memory, nothing for __gc to do.
 */
#include <math.h>

#include "ecsm.h"

typedef struct ecsm_memo {
    double expires;     /* on ecsm_coarse_now's clock; -HUGE_VAL when empty */
} ecsm_memo;

/* Upvalues: 1 the ecsm_memo, 2 the value, 3 the fallback. */
static int memo_get(lua_State *L)
{
    int n = lua_gettop(L);

    if (n == 0 || (n == 1 && lua_isnil(L, 1))) {
        const ecsm_memo *m = lua_touserdata(L, lua_upvalueindex(1));
        if (m->expires > ecsm_coarse_now()) {
            lua_pushvalue(L, lua_upvalueindex(2));
            return 1;
        }
    }
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* Upvalues: 1 the ecsm_memo, 2 get. */
static int memo_set(lua_State *L)
{
    ecsm_memo *m = lua_touserdata(L, lua_upvalueindex(1));
    lua_Number ttl = luaL_optnumber(L, 2, 0);

    lua_settop(L, 1);
    m->expires = !lua_isnil(L, 1) && ttl > 0 ? ecsm_coarse_now() + ttl
                                             : -HUGE_VAL;
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, 1);
    lua_setupvalue(L, -2, 2);
    return 0;
}

/* core._memo(fallback) -> get, set */
static int memo_new(lua_State *L)
{
    ecsm_memo *m;

    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    m = ecsm_newuserdata(L, sizeof *m);
    m->expires = -HUGE_VAL;
    lua_pushvalue(L, -1);               /* memo, memo */
    lua_pushnil(L);                     /* the value */
    lua_pushvalue(L, 1);                /* the fallback */
    lua_pushcclosure(L, memo_get, 3);   /* fallback, memo, get */
    lua_pushvalue(L, -1);
    lua_insert(L, 2);                   /* fallback, get, memo, get */
    lua_pushcclosure(L, memo_set, 2);   /* fallback, get, set */
    return 2;
}

static const luaL_Reg ecsm_memo_functions[] = {
    {"_memo", memo_new},
    {NULL, NULL}
};

void ecsm_memo_register(lua_State *L)
{
    ecsm_setfuncs(L, ecsm_memo_functions);
}
