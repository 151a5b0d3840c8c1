/*
 * file.c -- core._read_file(path [, max_bytes]): a whole file as a string,
 * for the container metadata file.
 *
 * The descriptor lives in a small userdata whose __gc closes it, so a memory
 * error while the contents grow in a luaL_Buffer cannot leak it. The size is
 * not trusted from fstat alone: the agent rewrites the metadata file while
 * containers start, so the read stops at max_bytes + 1 whatever the file
 * claimed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ecsm.h"

#define ECSM_FILE_GUARD_MT "ecs_metadata.file_guard"
#define ECSM_DEFAULT_FILE_MAX_BYTES (1024 * 1024)

typedef struct ecsm_file_guard {
    int fd;
} ecsm_file_guard;

static void guard_release(ecsm_file_guard *g)
{
    if (g->fd >= 0) {
        close(g->fd);
        g->fd = -1;
    }
}

static int guard_close(lua_State *L)
{
    guard_release(luaL_checkudata(L, 1, ECSM_FILE_GUARD_MT));
    return 0;
}

static int io_failure(lua_State *L, ecsm_file_guard *g, const char *path,
                      const char *what, int err)
{
    guard_release(g);
    return ecsm_fail(L, ECSM_E_IO, "%s: %s: %s", path, what, strerror(err));
}

static int read_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Number max = luaL_optnumber(L, 2, ECSM_DEFAULT_FILE_MAX_BYTES);
    ecsm_file_guard *g;
    struct stat st;
    luaL_Buffer b;
    size_t limit, total = 0;

    luaL_argcheck(L, max >= 1 && max <= (lua_Number)(SIZE_MAX / 4), 2,
                  "max_bytes must be a positive number");
    limit = (size_t)max;

    g = ecsm_newuserdata(L, sizeof *g);
    g->fd = -1;
    luaL_getmetatable(L, ECSM_FILE_GUARD_MT);
    lua_setmetatable(L, -2);

    do {
        g->fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (g->fd < 0 && errno == EINTR);
    if (g->fd < 0)
        return io_failure(L, g, path, "cannot open", errno);
    if (fstat(g->fd, &st) != 0)
        return io_failure(L, g, path, "cannot stat", errno);
    if (S_ISDIR(st.st_mode))
        return io_failure(L, g, path, "cannot read", EISDIR);
    if (S_ISREG(st.st_mode) && (size_t)st.st_size > limit)
        goto too_large;

    luaL_buffinit(L, &b);
    for (;;) {
        size_t want = LUAL_BUFFERSIZE;
        char *p = luaL_prepbuffer(&b);
        ssize_t got;

        if (want > limit + 1 - total)
            want = limit + 1 - total;
        got = read(g->fd, p, want);
        if (got < 0) {
            int err = errno;
            if (err == EINTR)
                continue;
            luaL_pushresult(&b);
            return io_failure(L, g, path, "cannot read", err);
        }
        if (got == 0)
            break;
        luaL_addsize(&b, (size_t)got);
        total += (size_t)got;
        if (total > limit) {
            luaL_pushresult(&b);
            goto too_large;
        }
    }
    luaL_pushresult(&b);
    guard_release(g);
    return 1;

too_large:
    guard_release(g);
    return ecsm_fail(L, ECSM_E_TOO_LARGE, "%s: larger than max_bytes (%d)",
                     path, (int)(limit > 0x7fffffff ? 0x7fffffff : limit));
}

static const luaL_Reg file_functions[] = {
    {"_read_file", read_file},
    {NULL, NULL}
};

static const luaL_Reg guard_metamethods[] = {
    {"__gc", guard_close},
#if LUA_VERSION_NUM >= 504
    {"__close", guard_close},
#endif
    {NULL, NULL}
};

void ecsm_file_register(lua_State *L)
{
    luaL_newmetatable(L, ECSM_FILE_GUARD_MT);
    ecsm_setfuncs(L, guard_metamethods);
    lua_pop(L, 1);
    ecsm_setfuncs(L, file_functions);
    lua_pushinteger(L, ECSM_DEFAULT_FILE_MAX_BYTES);
    lua_setfield(L, -2, "DEFAULT_FILE_MAX_BYTES");
}
