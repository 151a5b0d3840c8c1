/*
 * core.c -- luaopen_ecs_metadata_core: builds the module table from the
 * files of each concern and initialises libcurl once per process; and what
 * belongs to the process: core._pid, core._random, the fork generation.
 *
 * Caveats:
 *  - curl_global_init and curl_version_info are not thread-safe on every
 *    libcurl build, and two Lua states in two threads may open this module
 *    at once, so they run under pthread_once, and the version string is
 *    read once. There is deliberately no curl_global_cleanup: other states,
 *    or the host program, may still be using libcurl when one state closes.
 *  - core._random is for the Lua layer's backoff jitter, so that many
 *    containers and nginx workers that fail together retry apart: not for
 *    anything secret. Each Lua state has its own generator (no shared state
 *    between threads), seeded from the pid, two clocks and an address, and
 *    seeded again in a forked child, which would otherwise repeat its
 *    parent's sequence (math.random is unseeded on 5.1-5.3 and LuaJIT, and
 *    a fork copies 5.4's seed too).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "ecsm.h"

unsigned ecsm_fork_generation;

static pthread_once_t process_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;
static const char *curl_version_string;

static void after_fork_in_child(void)
{
    ecsm_fork_generation++;
}

static void init_process(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_ALL);
    if (curl_init_result == CURLE_OK)
        curl_version_string = curl_version_info(CURLVERSION_NOW)->version;
    /* Should it fail (out of memory), the pid still tells a child. */
    (void)pthread_atfork(NULL, NULL, after_fork_in_child);
}

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

/* ===================================================================== */
/* The process                                                            */
/* ===================================================================== */

/* core._pid() -> the process id, to tell a forked child from its parent. */
static int ecsm_pid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

typedef struct ecsm_random {
    uint64_t state;
    pid_t pid;
    unsigned fork_generation;
} ecsm_random;

/* splitmix64: one 64-bit state, every value a full-period step. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));

    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/* Mixes what differs between processes and states into r's state: a child
 * that reseeds also keeps its parent's state in the mix, and two states of
 * one process differ by address. */
static void seed_random(ecsm_random *r)
{
    uint64_t s = r->state;

    r->pid = getpid();
    r->fork_generation = ecsm_fork_generation;
    s ^= (uint64_t)r->pid * UINT64_C(0xD1B54A32D192ED03);
    s ^= clock_ns(CLOCK_REALTIME);
    s = splitmix64(&s) ^ clock_ns(CLOCK_MONOTONIC);
    s = splitmix64(&s) ^ (uint64_t)(uintptr_t)r;
    r->state = splitmix64(&s);
}

/* core._random() -> a float in [0, 1), from this state's generator. */
static int ecsm_random_float(lua_State *L)
{
    ecsm_random *r = lua_touserdata(L, lua_upvalueindex(1));

    if (r->fork_generation != ecsm_fork_generation || r->pid != getpid())
        seed_random(r);
    /* The top 53 bits, the precision of a double. */
    lua_pushnumber(L, (lua_Number)(splitmix64(&r->state) >> 11)
                      * (1.0 / 9007199254740992.0));
    return 1;
}

static void register_process(lua_State *L)
{
    ecsm_random *r = ecsm_newuserdata(L, sizeof *r);

    r->state = 0;
    seed_random(r);
    lua_pushcclosure(L, ecsm_random_float, 1);
    lua_setfield(L, -2, "_random");
    lua_pushcfunction(L, ecsm_pid);
    lua_setfield(L, -2, "_pid");
}

/* ===================================================================== */
/* The module                                                             */
/* ===================================================================== */

ECSM_EXPORT int luaopen_ecs_metadata_core(lua_State *L);

int luaopen_ecs_metadata_core(lua_State *L)
{
    pthread_once(&process_once, init_process);
    if (curl_init_result != CURLE_OK)
        return luaL_error(L, "ecs_metadata.core: curl_global_init failed: %s",
                          curl_easy_strerror(curl_init_result));

    lua_newtable(L);
    ecsm_http_register(L);
    ecsm_json_register(L);
    ecsm_file_register(L);
    ecsm_clock_register(L);
    ecsm_memo_register(L);
    register_process(L);

    lua_pushliteral(L, "ecs_metadata.core");
    lua_setfield(L, -2, "_NAME");
    lua_pushliteral(L, ECSM_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushstring(L, curl_version_string);
    lua_setfield(L, -2, "curl_version");
    return 1;
}
