/*
 * memo.c -- core._memo(fallback [, owner]) -> get, set: a one-value cache
 * cell whose hit is a single C call, for the Lua layer's sources (ecs.task(),
 * c:task() and friends), which are called per request and usually answered
 * from the cache. Private to the Lua layer: its cache.lua owns every cell.
 *
 * get(...) with no argument (or nil) returns the stored value while it is
 * fresh; otherwise, and with any argument, it calls fallback(...) and
 * returns what that returns. With an owner, get is a method of the owner:
 * get(owner) and get(owner, nil) are the hits, anything else (another self,
 * options) goes to the fallback with every argument. set(value, ttl) stores value for ttl seconds
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
    const void *owner;  /* a method cell's owner (also upvalue 4), or NULL */
} ecsm_memo;

/* Calls the fallback (upvalue 3) with every argument, answering all it
 * answers. */
static int memo_miss(lua_State *L, int n)
{
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

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
    return memo_miss(L, n);
}

/*
 * The method form: get(owner) or get(owner, nil) is the hit. The owner is
 * compared by address (cheaper than lua_rawequal on an upvalue, and exact:
 * upvalue 4 keeps the owner alive, so no other object can take its address
 * while this cell exists). Upvalues as memo_get's, and 4 the owner.
 */
static int memo_method_get(lua_State *L)
{
    int n = lua_gettop(L);

    if (n == 1 || (n == 2 && lua_isnil(L, 2))) {
        const ecsm_memo *m = lua_touserdata(L, lua_upvalueindex(1));
        if (lua_topointer(L, 1) == m->owner
            && m->expires > ecsm_coarse_now()) {
            lua_pushvalue(L, lua_upvalueindex(2));
            return 1;
        }
    }
    return memo_miss(L, n);
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

/* core._memo(fallback [, owner]) -> get, set */
static int memo_new(lua_State *L)
{
    ecsm_memo *m;
    int method = !lua_isnoneornil(L, 2);

    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (method)
        luaL_argcheck(L, lua_topointer(L, 2) != NULL, 2,
                      "an owner must be a table or another object");
    lua_settop(L, 2);                   /* fallback, owner */
    m = ecsm_newuserdata(L, sizeof *m);
    m->expires = -HUGE_VAL;
    m->owner = method ? lua_topointer(L, 2) : NULL;
    lua_pushvalue(L, -1);               /* f, o, memo, memo */
    lua_pushnil(L);                     /* the value */
    lua_pushvalue(L, 1);                /* the fallback */
    if (method) {
        lua_pushvalue(L, 2);            /* the owner */
        lua_pushcclosure(L, memo_method_get, 4);
    } else {
        lua_pushcclosure(L, memo_get, 3);
    }                                   /* f, o, memo, get */
    lua_pushvalue(L, -1);
    lua_insert(L, 3);                   /* f, o, get, memo, get */
    lua_pushcclosure(L, memo_set, 2);   /* f, o, get, set */
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
