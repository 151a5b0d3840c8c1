/*
 * threads_helper.c -- the Lua module "threads_helper", for specs only: opens
 * ecs_metadata.core in several Lua states at once, one per thread, as a host
 * program that embeds Lua in each of its threads does. Run under helgrind,
 * it shows whether the module's per-process set-up is shared without a
 * race. Built by `make test` into $(BUILD)/threads_helper.so; never
 * installed.
 *
 *   threads_helper.open_module(n, cpath)
 *       -> the curl_version each of n new states saw (a list)
 *        | nil, message
 *   Each state gets the standard libraries and package.cpath = cpath; the n
 *   threads all require the module at once, and close their states when
 *   all have.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define MAX_THREADS 64

/* The n threads wait for each other, so that their requires overlap. */
typedef struct meeting {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int expected;
    int arrived;
} meeting;

static void meet(meeting *m)
{
    pthread_mutex_lock(&m->lock);
    m->arrived++;
    pthread_cond_broadcast(&m->changed);
    while (m->arrived < m->expected)
        pthread_cond_wait(&m->changed, &m->lock);
    pthread_mutex_unlock(&m->lock);
}

typedef struct opener {
    pthread_t thread;
    lua_State *L;
    meeting *meeting;
    char result[256];   /* the version string, or what went wrong */
    int ok;
} opener;

static void *open_module(void *arg)
{
    opener *o = arg;
    const char *s;

    meet(o->meeting);
    o->ok = luaL_dostring(o->L, "return require('ecs_metadata.core').curl_version") == 0
            && lua_type(o->L, -1) == LUA_TSTRING;
    s = lua_tostring(o->L, -1);
    strncpy(o->result, s ? s : "(not a string)", sizeof o->result - 1);
    return NULL;
}

/* The states are made and closed by the calling thread: what that takes
 * (LuaJIT's allocator keeps an unguarded hint for mmap) is not the
 * module's business; each is then used by one thread only. */
static lua_State *new_state(const char *cpath)
{
    lua_State *L = luaL_newstate();

    if (L != NULL) {
        luaL_openlibs(L);
        lua_getglobal(L, "package");
        lua_pushstring(L, cpath);
        lua_setfield(L, -2, "cpath");
        lua_pop(L, 1);
    }
    return L;
}

static int helper_open_module(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    const char *cpath = luaL_checkstring(L, 2);
    opener openers[MAX_THREADS];
    meeting m = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
    int i, made = 0, started = 0;
    const char *failure = NULL;

    luaL_argcheck(L, n >= 1 && n <= MAX_THREADS, 1, "1 to 64 threads");
    memset(openers, 0, sizeof openers);
    for (; made < n; made++)
        if ((openers[made].L = new_state(cpath)) == NULL)
            break;
    m.expected = made;
    for (i = 0; i < made; i++) {
        openers[i].meeting = &m;
        if (pthread_create(&openers[i].thread, NULL, open_module,
                           &openers[i]) != 0)
            break;
        started++;
    }
    if (started < made) {
        /* Those started wait for all: let them through with fewer. */
        pthread_mutex_lock(&m.lock);
        m.expected = started;
        pthread_cond_broadcast(&m.changed);
        pthread_mutex_unlock(&m.lock);
    }
    for (i = 0; i < started; i++)
        pthread_join(openers[i].thread, NULL);

    if (made < n)
        failure = "luaL_newstate failed";
    else if (started < n)
        failure = "pthread_create failed";
    lua_createtable(L, (int)n, 0);
    for (i = 0; i < started && failure == NULL; i++) {
        if (!openers[i].ok) {
            lua_pushfstring(L, "state %d: %s", i + 1, openers[i].result);
            failure = lua_tostring(L, -1);
            break;
        }
        lua_pushstring(L, openers[i].result);
        lua_rawseti(L, -2, i + 1);
    }
    for (i = 0; i < made; i++)
        lua_close(openers[i].L);
    if (failure != NULL) {
        lua_pushnil(L);
        lua_pushstring(L, failure);
        return 2;
    }
    return 1;
}

__attribute__((visibility("default"))) int luaopen_threads_helper(lua_State *L);

int luaopen_threads_helper(lua_State *L)
{
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, helper_open_module);
    lua_setfield(L, -2, "open_module");
    return 1;
}
