/*
 * core.c -- luaopen_ecs_metadata_core: builds the module table from the
 * files of each concern and initialises libcurl once per process.
 *
 * curl_global_init is not thread-safe on every libcurl build, and two Lua
 * states in two threads may open this module at once, so it runs under
 * pthread_once. There is deliberately no curl_global_cleanup: other states,
 * or the host program, may still be using libcurl when one state closes.
 */
#include <pthread.h>
#include <stdarg.h>

#include <curl/curl.h>

#include "ecsm.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void ecsm_curl_init(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_ALL);
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

ECSM_EXPORT int luaopen_ecs_metadata_core(lua_State *L);

int luaopen_ecs_metadata_core(lua_State *L)
{
    pthread_once(&curl_once, ecsm_curl_init);
    if (curl_init_result != CURLE_OK)
        return luaL_error(L, "ecs_metadata.core: curl_global_init failed: %s",
                          curl_easy_strerror(curl_init_result));

    lua_newtable(L);
    ecsm_http_register(L);
    ecsm_json_register(L);
    ecsm_file_register(L);
    ecsm_clock_register(L);
    ecsm_memo_register(L);

    lua_pushliteral(L, "ecs_metadata.core");
    lua_setfield(L, -2, "_NAME");
    lua_pushliteral(L, ECSM_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
    lua_setfield(L, -2, "curl_version");
    return 1;
}
