/*
 * ecsm.h -- private interface between the files of ecs_metadata.core.
 *
 * core.c      luaopen_ecs_metadata_core: the module table, curl_global_init;
 *             the process: core._pid, core._random, the fork generation
 * http.c      the HTTP object on one libcurl easy handle
 * decode.c    the JSON decoder (core.decode, core.null)
 * file.c      core._read_file
 * clock.c     core.now, core._now_coarse, core._sleep
 * memo.c      core._memo, the one-call cache cell of the module's functions
 *
 * Everything here is hidden from the shared object's symbol table; only
 * luaopen_ecs_metadata_core is exported (see ECSM_EXPORT).
 */
#ifndef ECSM_H
#define ECSM_H

#include <stddef.h>

#include "compat.h"

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(hidden)
#define ECSM_EXPORT __attribute__((visibility("default")))
#else
#define ECSM_EXPORT
#endif

#define ECSM_VERSION "0.1.0"

/* Error codes: the third value of every nil, message, code triple. */
#define ECSM_E_UNREACHABLE      "unreachable"
#define ECSM_E_TIMEOUT          "timeout"
#define ECSM_E_TOO_LARGE        "too_large"
#define ECSM_E_BAD_JSON         "bad_json"
#define ECSM_E_IO               "io_error"
#define ECSM_E_INVALID_ARGUMENT "invalid_argument"

/* Pushes nil, message, code and returns 3, the count a C function returns. */
int ecsm_fail(lua_State *L, const char *code, const char *fmt, ...);

/* ---- core.c ---- */

/*
 * Incremented in the child of every fork() (a pthread_atfork handler, set up
 * once per process). Whatever belongs to one process (a connection, a
 * random sequence) records the value with the pid, and compares both before
 * use. Written only in a child right after fork, while it has one thread.
 */
extern unsigned ecsm_fork_generation;

/* ---- decode.c ---- */

#define ECSM_DEFAULT_MAX_DEPTH 1000
/* The largest max_depth accepted: more could not fit the Lua stack anyway
 * (a level takes at least one slot, and Lua allows a million). */
#define ECSM_MAX_MAX_DEPTH     100000

#define ECSM_STRINGIFY_(x) #x
#define ECSM_STRINGIFY(x) ECSM_STRINGIFY_(x)

typedef struct ecsm_json_opts {
    int keep_null;    /* keep JSON null as core.null in objects too */
    int array_mt;     /* stack index of the metatable for arrays, 0 = none */
    int max_depth;    /* nesting deeper than this is bad_json */
} ecsm_json_opts;

/*
 * Reads keep_null, array_mt and max_depth from the table at index idx (0,
 * an absent or a nil idx gives the defaults). Raises on a wrongly typed
 * option, as misuse does everywhere in this module. Always pushes exactly
 * one value, the array_mt table or nil, and records its absolute index in
 * opts->array_mt: the caller leaves it in place until decoding is done.
 * Returns NULL, or what is wrong with a value out of range (max_depth not
 * a whole number in 1..ECSM_MAX_MAX_DEPTH), which the caller answers as
 * invalid_argument; opts->max_depth is then 0, which refuses every array
 * and object, should it decode anyway.
 */
const char *ecsm_json_checkopts(lua_State *L, int idx, ecsm_json_opts *opts);

/*
 * Decodes s[0..len). On success pushes the value and returns 1. On malformed
 * input pushes one string, "bad_json: <what> at byte N" (never any of the
 * input's content), and returns 0; the stack is otherwise as it was. The only
 * thing that can raise is a Lua memory error, and then no C memory is lost.
 */
int ecsm_json_decode(lua_State *L, const char *s, size_t len,
                     const ecsm_json_opts *opts);

/* Adds decode and null to the module table at the top of the stack. */
void ecsm_json_register(lua_State *L);

/* ---- http.c ---- */

#define ECSM_HTTP_MT "ecs_metadata.core.http"

/* Adds http to the module table at the top of the stack. */
void ecsm_http_register(lua_State *L);

/* ---- file.c ---- */

/* The largest max_bytes read_file accepts: 1 GiB, the HTTP client's too. */
#define ECSM_MAX_FILE_MAX_BYTES (1024 * 1024 * 1024)

/* Adds read_file to the module table at the top of the stack. */
void ecsm_file_register(lua_State *L);

/* ---- clock.c ---- */

/* Adds now, now_coarse and sleep to the module table at the top of the stack. */
void ecsm_clock_register(lua_State *L);

/* Seconds on the coarse monotonic clock, the clock of core._now_coarse. */
double ecsm_coarse_now(void);

/* ---- memo.c ---- */

/* Adds memo to the module table at the top of the stack. */
void ecsm_memo_register(lua_State *L);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#endif
