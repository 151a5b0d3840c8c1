/*
 * fork_helper.c -- the Lua module "fork_helper", for specs only: fork(),
 * waitpid() and _exit(), which plain Lua lacks, so a spec can show what an
 * object made in a parent does in its children. Built by `make test` into
 * $(BUILD)/fork_helper.so; never installed.
 *
 *   fork_helper.fork()      -> pid in the parent, 0 in the child
 *                            | nil, message
 *   fork_helper.wait(pid)   -> exit status | nil, "signal N"
 *   fork_helper.exit(code)  ends the process at once: no atexit handlers,
 *                            no stdio flush, no Lua finalizers (a child of
 *                            busted must not go on running busted)
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

static int helper_fork(lua_State *L)
{
    pid_t pid = fork();

    if (pid < 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)pid);
    return 1;
}

static int helper_wait(lua_State *L)
{
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    int status;

    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return luaL_error(L, "waitpid: %s", strerror(errno));
    if (WIFEXITED(status)) {
        lua_pushinteger(L, WEXITSTATUS(status));
        return 1;
    }
    lua_pushnil(L);
    lua_pushfstring(L, "signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return 2;
}

static int helper_exit(lua_State *L)
{
    _exit((int)luaL_optinteger(L, 1, 0));
    return 0;
}

__attribute__((visibility("default"))) int luaopen_fork_helper(lua_State *L);

int luaopen_fork_helper(lua_State *L)
{
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, helper_fork);
    lua_setfield(L, -2, "fork");
    lua_pushcfunction(L, helper_wait);
    lua_setfield(L, -2, "wait");
    lua_pushcfunction(L, helper_exit);
    lua_setfield(L, -2, "exit");
    return 1;
}
