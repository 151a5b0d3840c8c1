/*
 * long_input_helper.c -- the Lua module "long_input_helper", for specs
 * only: the decoder (src/decode.c, compiled into this module) run on a
 * document longer than 2^31 bytes that takes about a megabyte of memory.
 * The long middle is one file of repeated bytes mapped again and again, so
 * a spec can show that no counter of the decoder wraps on a token of
 * billions of bytes, which a Lua string would need gigabytes to hold.
 * Signed overflow traps in this module whatever the build (see the
 * Makefile). Built by `make test` into $(BUILD)/long_input_helper.so;
 * never installed.
 *
 *   long_input_helper.decode(head, byte, count, tail)
 *       -> what core.decode answers for head .. byte:rep(count) .. tail
 *          (the value, or nil and the bad_json message)
 *        | raises if the document cannot be mapped
 */
#define _DEFAULT_SOURCE       /* MAP_ANONYMOUS */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "ecsm.h"

/* One mapping of the repeated byte. A multiple of every page size in use
 * (4 KiB to 64 KiB); 2^31 bytes take 2048 mappings, far below the kernel's
 * default limit of 65,530 a process. */
#define RUN_CHUNK ((size_t)1 << 20)

typedef struct mapped_document {
    unsigned char *base;   /* the whole reservation */
    size_t size;
    const char *start;     /* the document inside it */
    size_t len;
} mapped_document;

static size_t round_up(size_t n, size_t page)
{
    return (n + page - 1) / page * page;
}

/* A file of RUN_CHUNK copies of byte in $TMPDIR (or /tmp), already
 * unlinked; -1 on failure. */
static int run_file(unsigned char byte)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    unsigned char *block;
    size_t done = 0;
    int fd;

    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    if ((size_t)snprintf(path, sizeof path, "%s/ecsm-long-input-XXXXXX", dir)
        >= sizeof path)
        return -1;
    fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    block = malloc(RUN_CHUNK);
    if (block == NULL) {
        close(fd);
        return -1;
    }
    memset(block, byte, RUN_CHUNK);
    while (done < RUN_CHUNK) {
        ssize_t n = write(fd, block + done, RUN_CHUNK - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    free(block);
    if (done < RUN_CHUNK) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * Lays out [head pages][count / RUN_CHUNK mappings of the file][tail pages]
 * in one reservation: head ends where the run begins, and the tail pages
 * hold the run's last count % RUN_CHUNK bytes, then tail. Returns NULL or
 * what failed.
 */
static const char *map_document(mapped_document *d, const char *head,
                                size_t head_len, unsigned char byte,
                                size_t count, const char *tail,
                                size_t tail_len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t head_size = round_up(head_len, page);
    size_t chunks = count / RUN_CHUNK, rest = count % RUN_CHUNK;
    size_t tail_size = round_up(rest + tail_len, page), i;
    unsigned char *run, *end_part;
    int fd;

    d->size = head_size + chunks * RUN_CHUNK + tail_size;
    /* Address space only (no commit charge even under strict overcommit):
     * the writable pages are the head's and the tail's, mapped below. */
    d->base = mmap(NULL, d->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (d->base == MAP_FAILED) {
        d->base = NULL;
        return "mmap of the reservation";
    }
    run = d->base + head_size;
    if ((head_size > 0 && mmap(d->base, head_size, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
                          == MAP_FAILED)
        || (tail_size > 0 && mmap(run + chunks * RUN_CHUNK, tail_size,
                                  PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
                             == MAP_FAILED))
        return "mmap of the head and tail pages";
    if (chunks > 0) {
        if ((fd = run_file(byte)) < 0)
            return "the file of repeated bytes";
        for (i = 0; i < chunks; i++) {
            if (mmap(run + i * RUN_CHUNK, RUN_CHUNK, PROT_READ,
                     MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
                close(fd);
                return "mmap of the repeated bytes";
            }
        }
        close(fd);
    }
    memcpy(run - head_len, head, head_len);
    end_part = run + chunks * RUN_CHUNK;
    memset(end_part, byte, rest);
    memcpy(end_part + rest, tail, tail_len);
    d->start = (const char *)(run - head_len);
    d->len = head_len + count + tail_len;
    return NULL;
}

/* The mapping is held by a userdata, so that a memory error raised by the
 * decoder does not leave it mapped. */
static void unmap_document(mapped_document *d)
{
    if (d->base != NULL) {
        munmap(d->base, d->size);
        d->base = NULL;
    }
}

static int document_gc(lua_State *L)
{
    unmap_document(lua_touserdata(L, 1));
    return 0;
}

static int helper_decode(lua_State *L)
{
    size_t head_len, byte_len, tail_len;
    const char *head = luaL_checklstring(L, 1, &head_len);
    const char *byte = luaL_checklstring(L, 2, &byte_len);
    lua_Integer count = luaL_checkinteger(L, 3);
    const char *tail = luaL_checklstring(L, 4, &tail_len);
    mapped_document *d;
    ecsm_json_opts opts;
    const char *failed;
    int ok;

    luaL_argcheck(L, byte_len == 1, 2, "one byte");
    luaL_argcheck(L, count >= 0 && (uint64_t)count <= SIZE_MAX / 2, 3,
                  "out of range");
    d = lua_newuserdata(L, sizeof *d);
    memset(d, 0, sizeof *d);
    lua_newtable(L);
    lua_pushcfunction(L, document_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    failed = map_document(d, head, head_len, (unsigned char)byte[0],
                          (size_t)count, tail, tail_len);
    if (failed != NULL)
        return luaL_error(L, "long_input_helper: %s: %s", failed, strerror(errno));
    ecsm_json_checkopts(L, 0, &opts);   /* the defaults; pushes a nil */
    ok = ecsm_json_decode(L, d->start, d->len, &opts);
    unmap_document(d);   /* now, not at a collection: 2 GiB of address space */
    if (ok)
        return 1;
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

__attribute__((visibility("default"))) int luaopen_long_input_helper(lua_State *L);

int luaopen_long_input_helper(lua_State *L)
{
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, helper_decode);
    lua_setfield(L, -2, "decode");
    return 1;
}
