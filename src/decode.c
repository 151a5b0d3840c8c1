/*
 * decode.c -- the JSON decoder: core.decode, core.null, and
 * ecsm_json_decode, which the client also runs on its receive buffer.
 *
 * One pass over the bytes builds the Lua values directly. The items of an
 * open array or object wait on the Lua stack and the table is created once,
 * exactly sized, at the closing bracket; nesting is tracked in an explicit
 * frame stack, never by C recursion. The loops over whitespace and over a
 * string's plain bytes are in decode_scan.h (SSE2, NEON or portable SWAR).
 *
 * Choices and caveats:
 * - Strict RFC 8259: one value with only space, tab, LF and CR around it; no
 *   comments, trailing commas, NaN/Infinity, leading zeros, "+1", ".5", "1.";
 *   a byte-order mark is an error, and so is any NUL byte outside a "\u0000"
 *   escape. Strings must be well-formed UTF-8 (no overlong forms, no encoded
 *   surrogates, nothing above U+10FFFF, no truncated sequences) and may not
 *   hold raw control characters below 0x20.
 * - A "\u" escape of a lone surrogate (a high one not followed by a low one,
 *   or a low one alone) is rejected, since it has no UTF-8 form; a proper
 *   pair becomes the 4-byte UTF-8 sequence.
 * - Errors are "bad_json: <what> at byte N", N the 1-based position of the
 *   offending byte (as string.sub counts); input that ends too soon gives
 *   N = #s + 1. The message never contains any of the input.
 * - Numbers: on Lua 5.3+, a number without fraction or exponent that fits a
 *   lua_Integer becomes an integer ("-0" is the float -0.0); every other
 *   number becomes a float, correctly rounded (an exact fast path when both
 *   the digits and the power of ten are exact doubles, otherwise strtod on a
 *   copy of the token). On 5.1 and LuaJIT every number is a float, so
 *   integers above 2^53 are rounded. A number beyond the double range
 *   ("1e400") is bad_json; one that underflows ("1e-400") becomes 0.0 or a
 *   subnormal, as strtod gives it.
 * - strtod follows LC_NUMERIC: the copy given to it has its '.' replaced by
 *   the current locale's decimal point, so a decimal-comma locale in the host
 *   program changes nothing.
 * - null: in an array it is core.null (a NULL lightuserdata, equal to
 *   cjson.null); as an object member the key is left out, unless keep_null
 *   is set. Duplicate keys: the last one wins, and a last null removes the
 *   key.
 * - Arrays get opts.array_mt (empty ones too); objects get no metatable, so
 *   an empty JSON object and an empty array without array_mt look alike.
 * - Depth: more than max_depth (default ECSM_DEFAULT_MAX_DEPTH, at most
 *   ECSM_MAX_MAX_DEPTH; core.decode answers invalid_argument for a value
 *   out of that range) nested arrays and objects is bad_json. Pending items live on the Lua stack;
 *   when it cannot grow (LuaJIT and 5.1 allow a C function 8000 slots) they
 *   are moved into their tables early, so arrays of any length decode
 *   everywhere, and only nesting that no longer fits even then is bad_json.
 * - Memory: all scratch space (a deep frame stack, the buffer for strings
 *   with escapes, long number tokens) is either on the C stack or in Lua
 *   userdata, so a Lua memory error mid-parse leaks nothing.
 */
#include <float.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecsm.h"
#include "decode_scan.h"

/* The fast float path relies on each double operation rounding once. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define ECSM_EXACT_DOUBLES 1
#else
#define ECSM_EXACT_DOUBLES 0
#endif

/*
 * Stack slots requested from Lua at a time. ECSM_STACK_MARGIN is what a
 * value may push beyond the last check: a key, the value, a transient
 * userdata or metatable, and the two copies an object's close pushes.
 */
#define ECSM_STACK_CHUNK  256
#define ECSM_STACK_MARGIN 8
#define ECSM_LOCAL_FRAMES 32
#define ECSM_LOCAL_BUF    128

/*
 * The key cache: object keys of up to ECSM_KEYCACHE_MAXLEN bytes, kept
 * across calls (the same schema is decoded again and again), direct-mapped
 * by a hash into 2^ECSM_KEYCACHE_BITS slots. It is per Lua state: a table
 * in the registry holds the strings in slots 1..N and, in slot N+1, a
 * userdata (ecsm_keycache) with a copy of each slot's bytes, which a hit is
 * checked against (a copy, not a pointer into Lua memory, so nothing can
 * dangle).
 *
 * The cache also finds objects that cannot have duplicate keys. Every
 * object gets a serial number, increasing across calls, and every slot
 * remembers the serial of the last object that used it. A key whose slot
 * already carries the current object's serial or a later one (one of a
 * nested object) may be a duplicate, and so may any key the cache does not
 * take; such an object is closed in document order, so that the last of
 * duplicate keys wins. Every other object is closed by popping its pairs
 * straight into the table, which saves copying each pair.
 */
#define ECSM_KEYCACHE_BITS   10
#define ECSM_KEYCACHE_SIZE   (1 << ECSM_KEYCACHE_BITS)
#define ECSM_KEYCACHE_MAXLEN 40
#define ECSM_KEYCACHE_NAME   "ecs_metadata.keycache"

/*
 * ECSM_DECODE_CHECK (the fuzzing build) asserts that the parser's mirror of
 * the stack top is right, and lets the harness pretend that the Lua stack
 * ends ecsm_decode_stack_limit slots above the decoder's base, so that the
 * rare path that runs out of stack is taken all the time.
 */
#ifdef ECSM_DECODE_CHECK
#include <assert.h>
#define CHECK_TOP(ps) assert(lua_gettop((ps)->L) == (ps)->top)
extern int ecsm_decode_stack_limit;
int ecsm_decode_stack_limit = 0;    /* 0: no pretence */
#define CHECK_STACK(ps, n) \
    ((ecsm_decode_stack_limit <= 0 \
      || (ps)->top + (n) - (ps)->frame_slot < ecsm_decode_stack_limit) \
     && lua_checkstack((ps)->L, (n)))
#else
#define CHECK_TOP(ps) ((void)0)
#define CHECK_STACK(ps, n) lua_checkstack((ps)->L, (n))
#endif

/* {====================================================== byte classes */

#define IS_DIGIT(c) ((unsigned)((c) - '0') < 10u)

static int hex_value(unsigned c)
{
    if (c - '0' < 10)
        return (int)(c - '0');
    c |= 0x20;
    if (c - 'a' < 6)
        return (int)(c - 'a' + 10);
    return -1;
}

static const double exact_pow10[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

/* }====================================================== */

/* {====================================================== parser state */

enum { FRAME_ARRAY, FRAME_OBJECT };

typedef struct ecsm_keyslot {
    uint64_t serial;         /* of the last object that had a key here */
    unsigned char len1;      /* the key's length + 1; 0 for an empty slot */
    unsigned char bytes[ECSM_KEYCACHE_MAXLEN];
} ecsm_keyslot;

typedef struct ecsm_keycache {
    uint64_t serial;         /* the last object's serial */
    ecsm_keyslot slots[ECSM_KEYCACHE_SIZE];
} ecsm_keycache;


/*
 * An array's item count may pass INT_MAX (the Lua stack never holds more
 * than a million, but items are moved into the table as the stack fills),
 * so it is a lua_Integer: 64 bits on 5.3+, where rawseti takes one. On 5.1
 * and LuaJIT rawseti takes an int, and their tables refuse to grow past
 * 2^28 or so items ("table overflow") long before that.
 */
#if LUA_VERSION_NUM >= 503
#define RAWSETI(L, t, i) lua_rawseti((L), (t), (i))
#else
#define RAWSETI(L, t, i) lua_rawseti((L), (t), (int)(i))
#endif

typedef struct ecsm_frame {
    int base;     /* stack slot of the table (a nil placeholder until made) */
    int kind;     /* FRAME_ARRAY or FRAME_OBJECT */
    lua_Integer done;  /* items already in the table, -1 while not made */
    int dups;     /* an object that may have duplicate keys */
    uint64_t serial;  /* an object's serial, for the key cache */
} ecsm_frame;

typedef struct ecsm_parser {
    lua_State *L;
    const unsigned char *start, *end;
    const ecsm_json_opts *opts;
    int top;          /* mirrors lua_gettop */
    int limit;        /* top may reach this without lua_checkstack */
    int frame_slot;   /* stack slot holding the frame userdata, if any */
    int buf_slot;     /* stack slot holding the string buffer, if any */
    int keys_slot;    /* stack slot holding the key cache, once loaded */
    ecsm_keycache *keys;  /* its userdata, NULL until loaded */
    ecsm_frame *frames;
    int nframes, frames_cap;
    unsigned char *buf;
    size_t buf_cap;
    const char *what;             /* error: what went wrong */
    const unsigned char *where;   /* error: the offending byte */
    ecsm_frame local_frames[ECSM_LOCAL_FRAMES];
    unsigned char local_buf[ECSM_LOCAL_BUF];
} ecsm_parser;

/* Records an error and returns NULL, for the parse functions' returns. */
static const unsigned char *fail(ecsm_parser *ps, const char *what,
                                 const unsigned char *where)
{
    ps->what = what;
    ps->where = where;
    return NULL;
}

/* Makes room for need bytes in the scratch buffer, keeping its first used
 * bytes. A bigger buffer is a new userdata in buf_slot. */
static void buf_reserve(ecsm_parser *ps, size_t used, size_t need)
{
    size_t cap;
    unsigned char *nb;

    if (need <= ps->buf_cap)
        return;
    cap = ps->buf_cap * 2;
    if (cap < need)
        cap = need;
    if (cap < 256)
        cap = 256;
    nb = (unsigned char *)ecsm_newuserdata(ps->L, cap);
    if (used > 0)
        memcpy(nb, ps->buf, used);
    lua_replace(ps->L, ps->buf_slot);
    ps->buf = nb;
    ps->buf_cap = cap;
}


/*
 * Moves the finished items of every open container into its table (making
 * the table if need be) and packs the stack, so that each frame keeps only
 * its table slot and, for an object, the key still waiting for its value.
 * Called when the Lua stack cannot grow any more; rare, so it is simple.
 */
static void flush_frames(ecsm_parser *ps)
{
    lua_State *L = ps->L;
    int i, j, w;

    for (i = 0; i < ps->nframes; i++) {
        ecsm_frame *f = &ps->frames[i];
        int lo = f->base + 1;
        int hi = i + 1 < ps->nframes ? ps->frames[i + 1].base : ps->top + 1;
        int k = hi - lo;

        if (f->kind == FRAME_OBJECT)
            k &= ~1;    /* an odd one out is a key without its value yet */
        if (k == 0)
            continue;
        if (f->done < 0) {
            if (f->kind == FRAME_ARRAY)
                lua_createtable(L, k, 0);
            else
                lua_createtable(L, 0, k / 2);
            lua_replace(L, f->base);
            f->done = 0;
        }
        if (f->kind == FRAME_ARRAY) {
            for (j = 0; j < k; j++) {
                lua_pushvalue(L, lo + j);
                RAWSETI(L, f->base, f->done + j + 1);
            }
            f->done += k;
        } else {
            for (j = 0; j < k; j += 2) {
                lua_pushvalue(L, lo + j);
                lua_pushvalue(L, lo + j + 1);
                lua_rawset(L, f->base);
            }
        }
    }
    /* Pack, reading upwards and writing at or below what was read. */
    w = ps->frames[0].base;
    for (i = 0; i < ps->nframes; i++) {
        ecsm_frame *f = &ps->frames[i];
        int hi = i + 1 < ps->nframes ? ps->frames[i + 1].base : ps->top + 1;
        int key = f->kind == FRAME_OBJECT && ((hi - f->base - 1) & 1);

        if (w != f->base) {
            lua_pushvalue(L, f->base);
            lua_replace(L, w);
        }
        f->base = w++;
        if (key) {
            if (w != hi - 1) {
                lua_pushvalue(L, hi - 1);
                lua_replace(L, w);
            }
            w++;
        }
    }
    lua_settop(L, w - 1);
    ps->top = w - 1;
}

/* Makes sure ECSM_STACK_MARGIN more slots may be pushed; 0 if the Lua stack
 * is exhausted even after flushing every open container. */
static int make_room(ecsm_parser *ps)
{
    int n;

    for (n = ECSM_STACK_CHUNK; n >= 2 * ECSM_STACK_MARGIN; n /= 4) {
        if (CHECK_STACK(ps, n)) {
            ps->limit = ps->top + n - ECSM_STACK_MARGIN;
            return 1;
        }
        if (n == ECSM_STACK_CHUNK && ps->nframes > 0)
            flush_frames(ps);
    }
    return 0;
}

static void keycache_load(ecsm_parser *ps);

/* Opens an array or object at the next stack slot: a nil placeholder for
 * its table, and a frame (the frame array grows into Lua userdata). */
static void open_frame(ecsm_parser *ps, int kind)
{
    ecsm_frame *f;

    if (ps->nframes == ps->frames_cap) {
        int cap = ps->frames_cap > ps->opts->max_depth / 2
                  ? ps->opts->max_depth : ps->frames_cap * 2;
        ecsm_frame *nf;

        nf = (ecsm_frame *)ecsm_newuserdata(ps->L, (size_t)cap * sizeof *nf);
        memcpy(nf, ps->frames, (size_t)ps->nframes * sizeof *nf);
        lua_replace(ps->L, ps->frame_slot);
        ps->frames = nf;
        ps->frames_cap = cap;
    }
    if (kind == FRAME_OBJECT && ps->keys == NULL)
        keycache_load(ps);
    f = &ps->frames[ps->nframes++];
    f->base = ++ps->top;
    f->kind = kind;
    f->done = -1;
    f->dups = 0;
    f->serial = kind == FRAME_OBJECT ? ++ps->keys->serial : 0;
    lua_pushnil(ps->L);
}

/* Creates the innermost array's table from the items above its base, which
 * is where the table then stands, alone, as the new top. */
static void close_array(ecsm_parser *ps)
{
    lua_State *L = ps->L;
    ecsm_frame *f = &ps->frames[--ps->nframes];
    int base = f->base, n = ps->top - base;
    lua_Integer i;

    if (f->done < 0) {
        lua_createtable(L, n, 0);
        lua_replace(L, base);
        f->done = 0;
    }
    for (i = f->done + n; i > f->done; i--)
        RAWSETI(L, base, i);         /* pops the top item */
    ps->top = base;
    if (ps->opts->array_mt) {
        lua_pushvalue(L, ps->opts->array_mt);
        lua_setmetatable(L, base);
    }
}

/* The same for an object. One that may have duplicate keys has its pairs
 * set in document order, so that the last one wins; any other, popped. */
static void close_object(ecsm_parser *ps)
{
    lua_State *L = ps->L;
    ecsm_frame *f = &ps->frames[--ps->nframes];
    int base = f->base, top = ps->top, i;

    if (f->done < 0) {
        lua_createtable(L, 0, (top - base) / 2);
        lua_replace(L, base);
    }
    if (f->dups) {
        for (i = base + 1; i < top; i += 2) {
            lua_pushvalue(L, i);
            lua_pushvalue(L, i + 1);
            lua_rawset(L, base);
        }
        lua_settop(L, base);
    } else {
        for (i = top; i > base; i -= 2)
            lua_rawset(L, base);      /* pops the top pair */
    }
    ps->top = base;
}

/* }====================================================== */

/* {====================================================== scanning */

/* The out-of-line part of skip_ws. */
static const unsigned char *skip_ws_run(const unsigned char *p,
                                        const unsigned char *end)
{
    return ecsm_scan_ws(p, end);
}

/* Skips JSON whitespace; returns the first other byte or end. Every byte
 * that can start or continue a token is above ' ', and most gaps are empty
 * or one space, so those are decided here. */
static ECSM_INLINE const unsigned char *skip_ws(const unsigned char *p,
                                                const unsigned char *end)
{
    if (p < end && *p > ' ')
        return p;
    if (end - p >= 2 && *p == ' ' && p[1] > ' ')
        return p + 1;
    return skip_ws_run(p, end);
}

/* The first byte at or after p that ends a plain run inside a string: a
 * quote, a backslash, a control character or a non-ASCII byte; or end.
 * Inlined into its three callers, the decoder runs 0.4 % fewer
 * instructions on the corpus with SSE2 and 1.7 % fewer with SWAR
 * (bench/decode-callgrind). */
static ECSM_INLINE const unsigned char *scan_plain(const unsigned char *p,
                                                   const unsigned char *end)
{
    return ecsm_scan_plain(p, end);
}

/*
 * Length of the well-formed UTF-8 sequence of two or more bytes at p, or 0
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
 */
static int utf8_length(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    ptrdiff_t left = end - p;

    if (c >= 0xc2 && c <= 0xdf)
        return left >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;

        return left >= 3 && p[1] >= lo && p[1] <= hi
               && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;

        return left >= 4 && p[1] >= lo && p[1] <= hi
               && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* Reads 4 hex digits at p (which has at least 4 bytes); -1 if not hex. */
static long hex4(const unsigned char *p)
{
    int a = hex_value(p[0]), b = hex_value(p[1]);
    int c = hex_value(p[2]), d = hex_value(p[3]);

    if ((a | b | c | d) < 0)
        return -1;
    return ((long)a << 12) | (b << 8) | (c << 4) | d;
}

/*
 * The rest of a string once the fast scan stopped at p, at a backslash or a
 * byte outside printable ASCII. Escapes are resolved into the scratch
 * buffer; a string that turns out to have none is still pushed straight
 * from the input. Returns the byte after the closing quote, or NULL.
 */
static const unsigned char *string_slow(ecsm_parser *ps,
                                        const unsigned char *s,
                                        const unsigned char *p)
{
    const unsigned char *end = ps->end, *run = s;
    size_t used = 0;
    int escaped = 0;

    for (;;) {
        unsigned c;

        p = scan_plain(p, end);
        if (p == end)
            return fail(ps, "unterminated string", p);
        c = *p;
        if (c == '"')
            break;
        if (c >= 0x80) {
            int n = utf8_length(p, end);

            if (n == 0)
                return fail(ps, "invalid UTF-8 in string", p);
            p += n;
        } else if (c != '\\') {
            return fail(ps, "control character in string", p);
        } else {
            const unsigned char *esc = p;
            unsigned char out[4];
            size_t nout = 1;
            size_t runlen = (size_t)(p - run);

            if (end - p < 2)
                return fail(ps, "unterminated string", end);
            switch (p[1]) {
            case '"': case '\\': case '/': out[0] = p[1]; break;
            case 'b': out[0] = '\b'; break;
            case 'f': out[0] = '\f'; break;
            case 'n': out[0] = '\n'; break;
            case 'r': out[0] = '\r'; break;
            case 't': out[0] = '\t'; break;
            case 'u': {
                long cp;

                if (end - p < 6)
                    return fail(ps, "unterminated string", end);
                cp = hex4(p + 2);
                if (cp < 0)
                    return fail(ps, "invalid \\u escape", esc);
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return fail(ps, "lone surrogate escape", esc);
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    long lo;

                    if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
                        return fail(ps, "lone surrogate escape", esc);
                    lo = hex4(p + 8);
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return fail(ps, "lone surrogate escape", esc);
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
                p += 4;
                if (cp < 0x80) {
                    out[0] = (unsigned char)cp;
                } else if (cp < 0x800) {
                    out[0] = (unsigned char)(0xc0 | (cp >> 6));
                    out[1] = (unsigned char)(0x80 | (cp & 0x3f));
                    nout = 2;
                } else if (cp < 0x10000) {
                    out[0] = (unsigned char)(0xe0 | (cp >> 12));
                    out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                    out[2] = (unsigned char)(0x80 | (cp & 0x3f));
                    nout = 3;
                } else {
                    out[0] = (unsigned char)(0xf0 | (cp >> 18));
                    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
                    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
                    nout = 4;
                }
                break;
            }
            default:
                return fail(ps, "invalid escape", esc);
            }
            p += 2;
            buf_reserve(ps, used, used + runlen + nout);
            memcpy(ps->buf + used, run, runlen);
            memcpy(ps->buf + used + runlen, out, nout);
            used += runlen + nout;
            run = p;
            escaped = 1;
        }
    }
    if (!escaped) {
        lua_pushlstring(ps->L, (const char *)s, (size_t)(p - s));
    } else {
        size_t runlen = (size_t)(p - run);

        buf_reserve(ps, used, used + runlen);
        memcpy(ps->buf + used, run, runlen);
        lua_pushlstring(ps->L, (const char *)ps->buf, used + runlen);
    }
    ps->top++;
    return p + 1;
}

/* Pushes the string whose contents start at p (after the opening quote).
 * Returns the byte after the closing quote, or NULL. */
static const unsigned char *parse_string(ecsm_parser *ps,
                                         const unsigned char *p)
{
    const unsigned char *s = p;

    p = scan_plain(p, ps->end);
    if (p == ps->end)
        return fail(ps, "unterminated string", p);
    if (*p != '"')
        return string_slow(ps, s, p);
    lua_pushlstring(ps->L, (const char *)s, (size_t)(p - s));
    ps->top++;
    return p + 1;
}

/* Reads n bytes at p as a little- or big-endian integer; which does not
 * matter to a hash. */
static uint64_t load64(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t load32(const unsigned char *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof v);
    return v;
}

/* A cheap hash of a key: its length, first and last 8 (or 4) bytes. */
static unsigned key_hash(const unsigned char *s, size_t len)
{
    uint64_t h;

    if (len >= 8)
        h = load64(s) * 0x9e3779b97f4a7c15u
            ^ load64(s + len - 8) * 0xc2b2ae3d27d4eb4fu;
    else if (len >= 4)
        h = ((uint64_t)load32(s) << 32 | load32(s + len - 4))
            * 0x9e3779b97f4a7c15u;
    else if (len > 0)
        h = ((uint64_t)s[0] << 16 | (uint64_t)s[len / 2] << 8 | s[len - 1])
            * 0x9e3779b97f4a7c15u;
    else
        h = 0;
    h ^= len * 0x165667b19e3779f9u;
    return (unsigned)(h >> (64 - ECSM_KEYCACHE_BITS));
}

/* Pushes t[i] (t a stack index) if it is a string and returns 1; otherwise
 * pushes nothing and returns 0. Only a registry edited by hand makes a
 * cache slot hold anything else. */
static int rawgeti_string(lua_State *L, int t, int i)
{
#if LUA_VERSION_NUM >= 503
    if (lua_rawgeti(L, t, i) == LUA_TSTRING)
        return 1;
#else
    lua_rawgeti(L, t, i);
    if (lua_type(L, -1) == LUA_TSTRING)
        return 1;
#endif
    lua_pop(L, 1);
    return 0;
}

/* Puts the key cache table in keys_slot, creating it on first use. */
static void keycache_load(ecsm_parser *ps)
{
    lua_State *L = ps->L;
    ecsm_keycache *keys = NULL;
    size_t size = sizeof *keys;

    lua_getfield(L, LUA_REGISTRYINDEX, ECSM_KEYCACHE_NAME);
    if (lua_istable(L, -1)) {
        lua_rawgeti(L, -1, ECSM_KEYCACHE_SIZE + 1);
        if (lua_type(L, -1) == LUA_TUSERDATA && ecsm_rawlen(L, -1) == size)
            keys = (ecsm_keycache *)lua_touserdata(L, -1);
        lua_pop(L, 1);
    }
    if (keys == NULL) {
        lua_pop(L, 1);
        lua_createtable(L, ECSM_KEYCACHE_SIZE + 1, 0);
        keys = (ecsm_keycache *)ecsm_newuserdata(L, size);
        memset(keys, 0, size);
        lua_rawseti(L, -2, ECSM_KEYCACHE_SIZE + 1);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, ECSM_KEYCACHE_NAME);
    }
    lua_replace(L, ps->keys_slot);
    ps->keys = keys;
}

/* Pushes an object key, through the key cache when it is short and has no
 * escapes: a hit costs a table read instead of Lua hashing and interning
 * the string again. Returns the byte after the closing quote, or NULL. */
static const unsigned char *parse_key(ecsm_parser *ps,
                                      const unsigned char *p)
{
    lua_State *L = ps->L;
    ecsm_frame *f = &ps->frames[ps->nframes - 1];
    const unsigned char *s = p;
    size_t len;

    p = scan_plain(p, ps->end);
    if (p == ps->end)
        return fail(ps, "unterminated string", p);
    if (*p != '"') {
        f->dups = 1;
        return string_slow(ps, s, p);
    }
    len = (size_t)(p - s);
    if (len <= ECSM_KEYCACHE_MAXLEN) {
        unsigned h = key_hash(s, len);
        ecsm_keyslot *k = &ps->keys->slots[h];

        if (k->serial >= f->serial)
            f->dups = 1;
        k->serial = f->serial;
        if (k->len1 != len + 1 || memcmp(k->bytes, s, len) != 0
            || !rawgeti_string(L, ps->keys_slot, (int)h + 1)) {
            lua_pushlstring(L, (const char *)s, len);
            lua_pushvalue(L, -1);
            lua_rawseti(L, ps->keys_slot, (int)h + 1);
            memcpy(k->bytes, s, len);
            k->len1 = (unsigned char)(len + 1);
        }
    } else {
        f->dups = 1;
        lua_pushlstring(L, (const char *)s, len);
    }
    ps->top++;
    return p + 1;
}

/*
 * Converts the number token [s, e) with strtod, on a NUL-terminated copy
 * whose '.' is the current locale's decimal point. Returns 0 if the value
 * is outside the double range.
 */
static int number_strtod(ecsm_parser *ps, const unsigned char *s,
                         const unsigned char *e, double *out)
{
    const char *point = localeconv()->decimal_point;
    size_t plen, n = (size_t)(e - s), need, i, w = 0;
    char *copy, *stop;
    double d;

    if (point == NULL || point[0] == '\0')
        point = ".";
    plen = strlen(point);
    need = n + plen + 1;

    if (need <= sizeof ps->local_buf) {
        copy = (char *)ps->local_buf;
    } else {
        buf_reserve(ps, 0, need);
        copy = (char *)ps->buf;
    }
    for (i = 0; i < n; i++) {
        if (s[i] == '.') {
            memcpy(copy + w, point, plen);
            w += plen;
        } else {
            copy[w++] = (char)s[i];
        }
    }
    copy[w] = '\0';
    d = strtod(copy, &stop);
    if (stop != copy + w)   /* cannot happen with a validated token */
        return 0;
    if (d > DBL_MAX || d < -DBL_MAX)
        return 0;
    *out = d;
    return 1;
}

/*
 * Pushes the number at p (a '-' or a digit). Returns the byte after it, or
 * NULL. Up to 19 significant digits are gathered exactly in a uint64 and
 * the power of ten in exp10; when either is incomplete ("exact" is 0) the
 * value comes from strtod.
 *
 * No counter here grows with the token: "digits" stops at 19, exp10 moves
 * only while it is above -ECSM_EXP_LIMIT, and the exponent's digits are
 * gathered only while below ECSM_EXP_LIMIT, so a number of any length (the
 * token is a size_t span, e - s) never overflows an int.
 */
#define ECSM_EXP_LIMIT 100000
static const unsigned char *parse_number(ecsm_parser *ps,
                                         const unsigned char *p)
{
    const unsigned char *s = p, *end = ps->end;
    uint64_t v = 0;
    int neg = 0, digits = 0, exp10 = 0, isfloat = 0, exact = 1;
    double d;

    if (*p == '-') {
        neg = 1;
        if (++p == end)
            return fail(ps, "invalid number", p);
    }
    if (*p == '0') {
        p++;
        if (p < end && IS_DIGIT(*p))
            return fail(ps, "invalid number", p);
    } else if ((unsigned)(*p - '1') < 9u) {
        do {
            if (digits < 19) {
                v = v * 10 + (unsigned)(*p - '0');
                digits++;
            } else {
                exact = 0;
            }
            p++;
        } while (p < end && IS_DIGIT(*p));
    } else {
        return fail(ps, "invalid number", p);
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || !IS_DIGIT(*p))
            return fail(ps, "invalid number", p);
        isfloat = 1;
        do {
            /* Leading zeros count in exp10 only, which may not run away. */
            if (digits < 19 && exp10 > -ECSM_EXP_LIMIT) {
                v = v * 10 + (unsigned)(*p - '0');
                if (v != 0)
                    digits++;
                exp10--;
            } else {
                exact = 0;
            }
            p++;
        } while (p < end && IS_DIGIT(*p));
    }
    if (p < end && (*p | 0x20) == 'e') {
        int eneg = 0, e = 0;

        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p == end || !IS_DIGIT(*p))
            return fail(ps, "invalid number", p);
        isfloat = 1;
        do {
            if (e < ECSM_EXP_LIMIT)
                e = e * 10 + (*p - '0');
            else
                exact = 0;    /* only strtod sees the true exponent */
            p++;
        } while (p < end && IS_DIGIT(*p));
        exp10 += eneg ? -e : e;
    }

    if (!isfloat && exact) {
#if ECSM_HAVE_INTEGERS
        if (!neg && v <= (uint64_t)LUA_MAXINTEGER) {
            lua_pushinteger(ps->L, (lua_Integer)v);
            ps->top++;
            return p;
        }
        if (neg && v != 0 && v - 1 <= (uint64_t)LUA_MAXINTEGER) {
            lua_pushinteger(ps->L, -(lua_Integer)(v - 1) - 1);
            ps->top++;
            return p;
        }
#endif
        d = (double)v;   /* one correctly rounded conversion */
    } else if (exact && ECSM_EXACT_DOUBLES && v <= ((uint64_t)1 << 53)
               && exp10 >= -22 && exp10 <= 22) {
        d = (double)v;   /* exact, so the one operation rounds once */
        d = exp10 < 0 ? d / exact_pow10[-exp10] : d * exact_pow10[exp10];
    } else {
        if (!number_strtod(ps, s, p, &d))
            return fail(ps, "number out of range", s);
        lua_pushnumber(ps->L, (lua_Number)d);
        ps->top++;
        return p;
    }
    lua_pushnumber(ps->L, (lua_Number)(neg ? -d : d));
    ps->top++;
    return p;
}

/* Checks for the literal lit (of length n, starting with the byte at p). */
static int literal(const unsigned char *p, const unsigned char *end,
                   const char *lit, size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

/* }====================================================== */

/* {====================================================== the parser */

/*
 * Parses the whole document from p, leaving its value as the one item
 * above the scratch slots. Returns 1, or 0 with ps->what/where set.
 */
static int parse(ecsm_parser *ps, const unsigned char *p)
{
    lua_State *L = ps->L;
    const unsigned char *end = ps->end;
    ecsm_frame *f = NULL;    /* the innermost open container */

value:
    if (ps->top >= ps->limit && !make_room(ps)) {
        ps->what = "nesting too deep for the Lua stack";
        ps->where = p;
        return 0;
    }
    f = ps->nframes > 0 ? &ps->frames[ps->nframes - 1] : NULL;
    p = skip_ws(p, end);
    if (p == end)
        goto eof;
    switch (*p) {
    case '{':
        if (ps->nframes >= ps->opts->max_depth)
            goto too_deep;
        p = skip_ws(p + 1, end);
        if (p < end && *p == '}') {
            lua_createtable(L, 0, 0);
            ps->top++;
            p++;
            goto next;
        }
        open_frame(ps, FRAME_OBJECT);
        f = &ps->frames[ps->nframes - 1];
        goto key;
    case '[':
        if (ps->nframes >= ps->opts->max_depth)
            goto too_deep;
        p = skip_ws(p + 1, end);
        if (p < end && *p == ']') {
            lua_createtable(L, 0, 0);
            if (ps->opts->array_mt) {
                lua_pushvalue(L, ps->opts->array_mt);
                lua_setmetatable(L, -2);
            }
            ps->top++;
            p++;
            goto next;
        }
        open_frame(ps, FRAME_ARRAY);
        goto value;
    case '"':
        p = parse_string(ps, p + 1);
        break;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        p = parse_number(ps, p);
        break;
    case 't':
        if (!literal(p, end, "true", 4))
            goto bad_literal;
        lua_pushboolean(L, 1);
        ps->top++;
        p += 4;
        break;
    case 'f':
        if (!literal(p, end, "false", 5))
            goto bad_literal;
        lua_pushboolean(L, 0);
        ps->top++;
        p += 5;
        break;
    case 'n':
        if (!literal(p, end, "null", 4))
            goto bad_literal;
        /* As an object member, nil makes close_object leave the key out. */
        if (f != NULL && f->kind == FRAME_OBJECT && !ps->opts->keep_null)
            lua_pushnil(L);
        else
            lua_pushlightuserdata(L, NULL);
        ps->top++;
        p += 4;
        break;
    default:
        if (p == ps->start && end - p >= 3
            && memcmp(p, "\xef\xbb\xbf", 3) == 0)
            ps->what = "byte order mark";
        else
            ps->what = "unexpected character";
        ps->where = p;
        return 0;
    }
    if (p == NULL)
        return 0;

next:
    CHECK_TOP(ps);
    if (ps->nframes == 0)
        goto done;
    f = &ps->frames[ps->nframes - 1];
    p = skip_ws(p, end);
    if (p == end)
        goto eof;
    if (*p == ',') {
        p = skip_ws(p + 1, end);
        if (f->kind == FRAME_ARRAY)
            goto value;
        goto key;
    }
    if (f->kind == FRAME_ARRAY) {
        if (*p != ']') {
            ps->what = "expected ',' or ']'";
            ps->where = p;
            return 0;
        }
        close_array(ps);
    } else {
        if (*p != '}') {
            ps->what = "expected ',' or '}'";
            ps->where = p;
            return 0;
        }
        close_object(ps);
    }
    p++;
    goto next;

key:
    /* p is past any whitespace. */
    if (p == end)
        goto eof;
    if (*p != '"') {
        ps->what = "expected a string key";
        ps->where = p;
        return 0;
    }
    p = parse_key(ps, p + 1);
    if (p == NULL)
        return 0;
    p = skip_ws(p, end);
    if (p == end)
        goto eof;
    if (*p != ':') {
        ps->what = "expected ':'";
        ps->where = p;
        return 0;
    }
    p++;
    goto value;

done:
    p = skip_ws(p, end);
    if (p != end) {
        ps->what = "unexpected data after the value";
        ps->where = p;
        return 0;
    }
    return 1;

eof:
    ps->what = "unexpected end of input";
    ps->where = end;
    return 0;
too_deep:
    ps->what = "nesting too deep";
    ps->where = p;
    return 0;
bad_literal:
    ps->what = "invalid literal";
    ps->where = p;
    return 0;
}

int ecsm_json_decode(lua_State *L, const char *s, size_t len,
                     const ecsm_json_opts *opts)
{
    ecsm_parser ps;
    int base = lua_gettop(L);
    char msg[96];

    luaL_checkstack(L, 2 * ECSM_STACK_MARGIN, "JSON decoder");
    ps.L = L;
    ps.start = (const unsigned char *)s;
    ps.end = ps.start + len;
    ps.opts = opts;
    ps.frames = ps.local_frames;
    ps.nframes = 0;
    ps.frames_cap = ECSM_LOCAL_FRAMES;
    ps.buf = ps.local_buf;
    ps.buf_cap = sizeof ps.local_buf;
    ps.what = NULL;
    ps.where = NULL;
    lua_pushnil(L);    /* frame_slot */
    lua_pushnil(L);    /* buf_slot */
    lua_pushnil(L);    /* keys_slot */
    ps.frame_slot = base + 1;
    ps.buf_slot = base + 2;
    ps.keys_slot = base + 3;
    ps.keys = NULL;
    ps.top = base + 3;
    ps.limit = ps.top;  /* the first value asks Lua for room */

    if (parse(&ps, ps.start)) {
        lua_replace(L, base + 1);
        lua_settop(L, base + 1);
        return 1;
    }
    lua_settop(L, base);
    snprintf(msg, sizeof msg, "bad_json: %s at byte %llu", ps.what,
             (unsigned long long)(ps.where - ps.start) + 1);
    lua_pushstring(L, msg);
    return 0;
}

/* }====================================================== */

/* {====================================================== Lua side */

static void option_type_error(lua_State *L, const char *name,
                              const char *expected)
{
    luaL_error(L, "bad option '%s' (%s expected, got %s)", name, expected,
               luaL_typename(L, -1));
}

/*
 * Reads the options table at idx (idx 0, none or nil: defaults). Always
 * pushes exactly one value, the array_mt table or nil, which the caller
 * leaves in place while decoding; opts->array_mt is its absolute index.
 * Every option's type is checked (misuse raises) before any range.
 */
const char *ecsm_json_checkopts(lua_State *L, int idx, ecsm_json_opts *opts)
{
    const char *bad = NULL;

    opts->keep_null = 0;
    opts->array_mt = 0;
    opts->max_depth = ECSM_DEFAULT_MAX_DEPTH;
    if (idx == 0 || lua_isnoneornil(L, idx)) {
        lua_pushnil(L);
        return NULL;
    }
    idx = idx < 0 && idx > LUA_REGISTRYINDEX ? lua_gettop(L) + idx + 1 : idx;
    luaL_checktype(L, idx, LUA_TTABLE);

    lua_getfield(L, idx, "keep_null");
    if (!lua_isnil(L, -1)) {
        if (!lua_isboolean(L, -1))
            option_type_error(L, "keep_null", "boolean");
        opts->keep_null = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "max_depth");
    if (!lua_isnil(L, -1)) {
        lua_Number n;

        if (lua_type(L, -1) != LUA_TNUMBER)
            option_type_error(L, "max_depth", "number");
        n = lua_tonumber(L, -1);
        /* The range is checked first, so the cast is defined. */
        if (n >= 1 && n <= ECSM_MAX_MAX_DEPTH && n == (lua_Number)(int)n)
            opts->max_depth = (int)n;
        else
            bad = "max_depth must be a whole number from 1 to "
                  ECSM_STRINGIFY(ECSM_MAX_MAX_DEPTH);
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "array_mt");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            option_type_error(L, "array_mt", "table");
        opts->array_mt = lua_gettop(L);
    }
    if (bad != NULL) {
        /* Should a caller decode all the same: no array, no object. */
        opts->max_depth = 0;
        return bad;
    }
    return NULL;
}

/* core.decode(s [, opts]) -> value | nil, "bad_json: ...", "bad_json"
 *                          | nil, "decode: <option> ...", "invalid_argument" */
static int json_decode(lua_State *L)
{
    size_t len;
    const char *s, *bad;
    ecsm_json_opts opts;

    luaL_checktype(L, 1, LUA_TSTRING);
    s = lua_tolstring(L, 1, &len);
    bad = ecsm_json_checkopts(L, 2, &opts);
    if (bad != NULL)
        return ecsm_fail(L, ECSM_E_INVALID_ARGUMENT, "decode: %s", bad);
    if (ecsm_json_decode(L, s, len, &opts))
        return 1;
    lua_pushnil(L);
    lua_insert(L, -2);
    lua_pushliteral(L, ECSM_E_BAD_JSON);
    return 3;
}

static const luaL_Reg json_functions[] = {
    {"decode", json_decode},
    {NULL, NULL}
};

void ecsm_json_register(lua_State *L)
{
    ecsm_setfuncs(L, json_functions);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    lua_pushliteral(L, ECSM_SCAN_NAME);
    lua_setfield(L, -2, "_decode_scan");
    lua_pushinteger(L, ECSM_DEFAULT_MAX_DEPTH);
    lua_setfield(L, -2, "DEFAULT_MAX_DEPTH");
}

/* }====================================================== */
