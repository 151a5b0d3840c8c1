/*
 * file.c -- core._read_file(path [, max_bytes]): a whole file as a string,
 * for the container metadata file and the authorization token file.
 *
 * Only a regular file is read. The path is opened with O_NONBLOCK, so that
 * opening a FIFO without a writer (or a device that would wait) returns at
 * once, and anything fstat does not call a regular file is io_error before
 * any read; O_NONBLOCK is then cleared for the reads of the regular file.
 * O_NOCTTY keeps a terminal named by mistake from becoming the process's.
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

/* What a file that is not regular is, for the message. */
static const char *file_kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    return "not a regular file";
}

static int read_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    ecsm_file_guard *g;
    struct stat st;
    luaL_Buffer b;
    size_t limit = ECSM_DEFAULT_FILE_MAX_BYTES, total = 0;
    int flags;

    if (!lua_isnoneornil(L, 2)) {
        lua_Number max;

        luaL_checktype(L, 2, LUA_TNUMBER);
        max = lua_tonumber(L, 2);
        /* The range is checked first, so the cast is defined. */
        if (!(max >= 1 && max <= ECSM_MAX_FILE_MAX_BYTES
              && max == (lua_Number)(size_t)max))
            return ecsm_fail(L, ECSM_E_INVALID_ARGUMENT,
                             "read_file: max_bytes must be a whole number "
                             "from 1 to %d", ECSM_MAX_FILE_MAX_BYTES);
        limit = (size_t)max;
    }

    g = ecsm_newuserdata(L, sizeof *g);
    g->fd = -1;
    luaL_getmetatable(L, ECSM_FILE_GUARD_MT);
    lua_setmetatable(L, -2);

    do {
        g->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    } while (g->fd < 0 && errno == EINTR);
    if (g->fd < 0)
        return io_failure(L, g, path, "cannot open", errno);
    if (fstat(g->fd, &st) != 0)
        return io_failure(L, g, path, "cannot stat", errno);
    if (!S_ISREG(st.st_mode)) {
        guard_release(g);
        return ecsm_fail(L, ECSM_E_IO, "%s: cannot read: %s, not a regular "
                         "file", path, file_kind(st.st_mode));
    }
    flags = fcntl(g->fd, F_GETFL);
    if (flags < 0 || fcntl(g->fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
        return io_failure(L, g, path, "cannot read", errno);
    if ((uintmax_t)st.st_size > limit)
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
                     path, (int)limit);
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
