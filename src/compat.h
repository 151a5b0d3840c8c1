/*
 * compat.h -- the few Lua C API differences between 5.1/LuaJIT, 5.3 and 5.4
 * that this module meets.
 *
 * The 5.1 shims carry the ecsm_ prefix instead of redefining luaL_* names:
 * LuaJIT 2.1 already exports some 5.2 functions under their real names, and
 * a second definition would clash with them.
 */
#ifndef ECSM_COMPAT_H
#define ECSM_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM >= 502

#define ecsm_setfuncs(L, l)     luaL_setfuncs((L), (l), 0)
#define ecsm_rawlen(L, i)       lua_rawlen((L), (i))
#define ecsm_testudata(L, i, n) luaL_testudata((L), (i), (n))

#else

#define ecsm_rawlen(L, i)       lua_objlen((L), (i))

static inline void ecsm_setfuncs(lua_State *L, const luaL_Reg *l)
{
    for (; l->name != NULL; l++) {
        lua_pushcfunction(L, l->func);
        lua_setfield(L, -2, l->name);
    }
}

static inline void *ecsm_testudata(lua_State *L, int i, const char *name)
{
    void *p = lua_touserdata(L, i);
    int same;

    if (p == NULL || !lua_getmetatable(L, i))
        return NULL;
    luaL_getmetatable(L, name);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? p : NULL;
}

#endif

#if LUA_VERSION_NUM >= 504
#define ecsm_newuserdata(L, size) lua_newuserdatauv((L), (size), 0)
#else
#define ecsm_newuserdata(L, size) lua_newuserdata((L), (size))
#endif

/* Builds a module table without the global that 5.1's luaL_register makes. */
#define ecsm_newlib(L, l) \
    (lua_createtable((L), 0, (int)(sizeof(l) / sizeof((l)[0]) - 1)), \
     ecsm_setfuncs((L), (l)))

/* Lua integers exist from 5.3 on; before that every number is a double. */
#if LUA_VERSION_NUM >= 503
#define ECSM_HAVE_INTEGERS 1
#else
#define ECSM_HAVE_INTEGERS 0
#endif

#endif
