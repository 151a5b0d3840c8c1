/*
 * decode_fuzz.c -- libFuzzer harness for the JSON decoder (src/decode.c),
 * built and run by fuzz/run. Links Lua 5.4 itself; the module never does.
 *
 * Every input is decoded by ecsm_json_decode, from libFuzzer's own buffer of
 * exactly the input's size (so ASan sees any read past the end), inside one
 * long-lived Lua 5.4 state (so the key cache lives across inputs, as in a
 * real process). The options come from the input's length. Checked:
 * - the decoder returns 1 with one value pushed, or 0 with one string
 *   "bad_json: <known what> at byte N", N within 1..len+1; nothing else on
 *   the stack either way, and no Lua error but out-of-memory;
 * - on success, every string in the value is valid UTF-8, and the value
 *   agrees with lua-cjson's decoding of the same bytes whenever that one
 *   succeeds too (apart from the documented integer and null differences);
 * - some inputs run with an allocator that starts failing part-way through
 *   the decode, so the memory-error longjmp is taken at random points; ASan
 *   then reports any C memory it would orphan, and the state must stay
 *   usable;
 * - half the inputs run as if the Lua stack held only 24 to 87 slots (see
 *   ECSM_DECODE_CHECK in decode.c), so that pending items are moved into
 *   their tables early all the time, a path real documents take only on
 *   LuaJIT and 5.1 and only past 8000 slots.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "ecsm.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern int ecsm_decode_stack_limit;    /* decode.c, ECSM_DECODE_CHECK */

/* core.c's, which this harness does not link (decode.c's core.decode
 * answers invalid_argument with it). */
int ecsm_fail(lua_State *Ls, const char *code, const char *fmt, ...)
{
    va_list ap;

    lua_pushnil(Ls);
    va_start(ap, fmt);
    lua_pushvfstring(Ls, fmt, ap);
    va_end(ap);
    lua_pushstring(Ls, code);
    return 3;
}

static lua_State *L;
static long alloc_budget = -1;     /* allocations left; -1 = unlimited */

static void *fuzz_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (alloc_budget == 0 && nsize > osize)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return realloc(ptr, nsize);
}

/* The Lua side of the checks: check(value, input, keep_null) -> true | nil, why */
static const char checker[] =
    "local cjson_ok, cjson = pcall(require, 'cjson')\n"
    "if not cjson_ok then io.stderr:write('decode_fuzz: no lua-cjson, no differential check\\n') end\n"
    "local null = ...\n"
    "local function utf8ok(v, path)\n"
    "  if type(v) == 'string' then\n"
    "    if not utf8.len(v) then error(path .. ': invalid UTF-8 in a decoded string') end\n"
    "  elseif type(v) == 'table' then\n"
    "    for k, x in pairs(v) do utf8ok(k, path .. '<key>'); utf8ok(x, path .. '.' .. tostring(k)) end\n"
    "  end\n"
    "end\n"
    "local function agree(ours, theirs, keep_null, path)\n"
    "  if type(theirs) == 'table' then\n"
    "    if type(ours) ~= 'table' then error(path .. ': table expected') end\n"
    "    for k, v in pairs(theirs) do\n"
    "      local p = path .. '.' .. tostring(k)\n"
    "      if v == cjson.null and type(k) == 'string' and not keep_null then\n"
    "        if ours[k] ~= nil then error(p .. ': null member present') end\n"
    "      else agree(ours[k], v, keep_null, p) end\n"
    "    end\n"
    "    for k in pairs(ours) do if theirs[k] == nil then error(path .. ': extra key') end end\n"
    "  elseif math.type(theirs) then\n"
    "    if not math.type(ours) then error(path .. ': number expected') end\n"
    "    if math.type(ours) == 'integer' then\n"
    "      if theirs ~= ours + 0.0 then error(path .. ': integer differs') end\n"
    "    elseif not (theirs == ours or (theirs ~= theirs and ours ~= ours)) then\n"
    "      error(path .. ': float differs ' .. ours .. ' ' .. theirs)\n"
    "    end\n"
    "  elseif ours ~= theirs then\n"
    "    error(path .. ': ' .. tostring(ours) .. ' vs ' .. tostring(theirs))\n"
    "  end\n"
    "end\n"
    "if cjson_ok then cjson.decode_invalid_numbers(false) end\n"
    "return function(v, s, keep_null)\n"
    "  utf8ok(v, '$')\n"
    "  if not cjson_ok then return true end\n"
    "  local ok, theirs = pcall(cjson.decode, s)\n"
    "  if ok then agree(v, theirs, keep_null, '$') end\n"
    "  return true\n"
    "end\n";

static const char *const whats[] = {
    "unexpected end of input", "unexpected character",
    "unexpected data after the value", "byte order mark", "invalid literal",
    "invalid number", "number out of range", "unterminated string",
    "control character in string", "invalid UTF-8 in string",
    "invalid escape", "invalid \\u escape", "lone surrogate escape",
    "expected a string key", "expected ':'", "expected ',' or ']'",
    "expected ',' or '}'", "nesting too deep",
    "nesting too deep for the Lua stack", NULL
};

struct call {
    const char *s;
    size_t len;
    ecsm_json_opts opts;
    int result;
};

/* Runs the decoder under lua_pcall, with the array_mt table at index 1. */
static int run_decode(lua_State *Ls)
{
    struct call *c = (struct call *)lua_touserdata(Ls, 1);
    int top;

    lua_settop(Ls, 1);
    lua_newtable(Ls);                 /* array_mt at index 2 */
    if (c->opts.array_mt)
        c->opts.array_mt = 2;
    top = lua_gettop(Ls);
    c->result = ecsm_json_decode(Ls, c->s, c->len, &c->opts);
    if (lua_gettop(Ls) != top + 1) {
        fprintf(stderr, "stack: %d before, %d after\n", top, lua_gettop(Ls));
        abort();
    }
    return 1;
}

static void check_error(const char *msg, size_t len)
{
    const char *at;
    unsigned long n;
    size_t wlen;
    int i;
    char tail[32];

    if (strncmp(msg, "bad_json: ", 10) != 0)
        goto bad;
    at = strstr(msg, " at byte ");
    if (at == NULL)
        goto bad;
    wlen = (size_t)(at - (msg + 10));
    for (i = 0; whats[i] != NULL; i++)
        if (strlen(whats[i]) == wlen && memcmp(whats[i], msg + 10, wlen) == 0)
            break;
    if (whats[i] == NULL)
        goto bad;
    if (sscanf(at, " at byte %lu%31s", &n, tail) != 1 || n < 1 || n > len + 1)
        goto bad;
    return;
bad:
    fprintf(stderr, "bad error message: %s\n", msg);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    L = lua_newstate(fuzz_alloc, NULL);
    luaL_openlibs(L);
    if (luaL_loadbuffer(L, checker, sizeof checker - 1, "=checker") != LUA_OK)
        abort();
    lua_pushlightuserdata(L, NULL);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "decode_fuzz.check");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct call c;
    int status, base = lua_gettop(L);

    c.s = (const char *)data;
    c.len = size;
    c.opts.keep_null = size & 1;
    c.opts.array_mt = (size & 2) != 0;
    c.opts.max_depth = size & 4 ? 1 + (int)(size % 13) : ECSM_DEFAULT_MAX_DEPTH;
    c.result = -1;
    ecsm_decode_stack_limit = size & 8 ? 24 + (int)(size % 64) : 0;
    /* One input in 16 runs out of memory after some allocations. */
    if (size % 16 == 15)
        alloc_budget = (long)((size * 2654435761u) % 64);

    lua_pushcfunction(L, run_decode);
    lua_pushlightuserdata(L, &c);
    status = lua_pcall(L, 1, 1, 0);
    alloc_budget = -1;
    if (status == LUA_ERRMEM) {
        lua_settop(L, base);
        lua_gc(L, LUA_GCCOLLECT, 0);
        return 0;
    }
    if (status != LUA_OK) {
        fprintf(stderr, "decode raised: %s\n", lua_tostring(L, -1));
        abort();
    }
    if (c.result == 0) {
        if (lua_type(L, -1) != LUA_TSTRING)
            abort();
        check_error(lua_tostring(L, -1), size);
    } else if (c.result == 1) {
        lua_getfield(L, LUA_REGISTRYINDEX, "decode_fuzz.check");
        lua_insert(L, -2);
        lua_pushlstring(L, c.s, c.len);
        lua_pushboolean(L, c.opts.keep_null);
        if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
            const char *msg = lua_tostring(L, -1);

            if (msg != NULL && strstr(msg, "not enough memory") == NULL) {
                fprintf(stderr, "check failed: %s\n", msg);
                abort();
            }
        }
    } else {
        abort();
    }
    lua_settop(L, base);
    return 0;
}
