/*
 * clock.c -- core.now and core._sleep: a monotonic clock and a real sleep for
 * the Lua layer's timeouts, cache lifetimes and retry backoff, which plain
 * Lua cannot do (os.time has one-second steps and follows the wall clock).
 *
 * core._now_coarse is the same clock in steps of a few milliseconds (the
 * kernel's tick), read without a hardware counter: cache lifetimes are
 * seconds, and every cache hit reads the clock, so the cheaper read wins.
 */
#include <errno.h>
#include <math.h>
#include <time.h>

#include "ecsm.h"

#ifdef CLOCK_MONOTONIC_COARSE
#define ECSM_COARSE_CLOCK CLOCK_MONOTONIC_COARSE
#else
#define ECSM_COARSE_CLOCK CLOCK_MONOTONIC
#endif

/* Seconds on the given clock since its arbitrary fixed point. */
static double ecsm_seconds(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double ecsm_coarse_now(void)
{
    return ecsm_seconds(ECSM_COARSE_CLOCK);
}

/* core.now() -> seconds since an arbitrary fixed point, as a float. */
static int ecsm_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)ecsm_seconds(CLOCK_MONOTONIC));
    return 1;
}

/* core._now_coarse() -> as core.now, in steps of a few milliseconds. */
static int ecsm_now_coarse(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)ecsm_coarse_now());
    return 1;
}

/* core._sleep(seconds): sleeps that long, resuming after signals. */
static int ecsm_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    struct timespec ts;

    luaL_argcheck(L, s >= 0 && s <= 86400 * 365, 1, "seconds out of range");
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - floor(s)) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 0;
}

static const luaL_Reg ecsm_clock_functions[] = {
    {"now", ecsm_now},
    {"_now_coarse", ecsm_now_coarse},
    {"_sleep", ecsm_sleep},
    {NULL, NULL}
};

void ecsm_clock_register(lua_State *L)
{
    ecsm_setfuncs(L, ecsm_clock_functions);
}
