/*
 * decode_scan.h -- the decoder's two hot loops: over whitespace, and over
 * the plain bytes of a string. Included by decode.c, and by the harness
 * spec/cross/scan_check.c, which checks them against the byte-at-a-time
 * definition on any CPU (qemu-user for the ones this machine is not).
 *
 * Three builds of each, picked at compile time (ECSM_SCAN_NAME says which):
 * - "sse2": 16 bytes at a time, where __SSE2__ is defined (all of x86-64);
 * - "neon": 16 bytes at a time on arm64 (__aarch64__, e.g. Graviton);
 * - "swar": 8 bytes at a time in a uint64_t, in plain C99, everywhere else,
 *   and on every CPU when ECSM_NO_SIMD is defined (make SIMD=0).
 * All three give the same answers; only the speed differs. Each reads only
 * inside [p, end): the input may be the client's receive buffer, which has
 * no padding past its end.
 *
 * The SWAR words are assembled from bytes in memory order, so the first
 * byte is the least significant whatever the CPU's byte order, and the
 * lowest set bit of a result is the first byte it flags. Per-byte sums may
 * carry into the next byte; every sum below carries only out of a byte that
 * is itself flagged, so the lowest flagged byte is always exact (and that
 * is the only one used).
 */
#ifndef ECSM_DECODE_SCAN_H
#define ECSM_DECODE_SCAN_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define ECSM_INLINE inline __attribute__((always_inline))
#else
#define ECSM_INLINE inline
#endif

#if !defined(ECSM_NO_SIMD) && defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#define ECSM_SCAN_SSE2 1
#define ECSM_SCAN_NEON 0
#define ECSM_SCAN_NAME "sse2"
#elif !defined(ECSM_NO_SIMD) && defined(__aarch64__) && defined(__AARCH64EL__) \
    && defined(__ARM_NEON) && defined(__GNUC__)
#include <arm_neon.h>
#define ECSM_SCAN_SSE2 0
#define ECSM_SCAN_NEON 1
#define ECSM_SCAN_NAME "neon"
#else
#define ECSM_SCAN_SSE2 0
#define ECSM_SCAN_NEON 0
#define ECSM_SCAN_NAME "swar"
#endif

/* Whitespace: space, tab, LF, CR. */
static const unsigned char ecsm_ws_class[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, [' '] = 1
};

/* 1 for bytes that a string can contain as they are and that end no scan:
 * printable ASCII (DEL included) except '"' and '\\'. */
#define R8(v) v, v, v, v, v, v, v, v
static const unsigned char ecsm_str_plain[256] = {
    R8(0), R8(0), R8(0), R8(0),                     /* 0x00-0x1f */
    1, 1, 0, 1, 1, 1, 1, 1, R8(1),                  /* 0x20-0x2f, '"' */
    R8(1), R8(1), R8(1), R8(1),                     /* 0x30-0x4f */
    R8(1), 1, 1, 1, 1, 0, 1, 1, 1,                  /* 0x50-0x5f, '\\' */
    R8(1), R8(1), R8(1), R8(1),                     /* 0x60-0x7f */
    R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0),
    R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0)
};
#undef R8

#if ECSM_SCAN_SSE2 || ECSM_SCAN_NEON

#if ECSM_SCAN_SSE2
/* Bit i of the result is the high bit of byte i of m. */
static ECSM_INLINE unsigned ecsm_mask16(__m128i m)
{
    return (unsigned)_mm_movemask_epi8(m);
}
#else
/* Four bits per byte of m (each byte of m is 0x00 or 0xff), byte i in bits
 * 4i..4i+3: the narrowing shift is the usual stand-in for movemask. */
static ECSM_INLINE uint64_t ecsm_mask16(uint8x16_t m)
{
    uint8x8_t n = vshrn_n_u16(vreinterpretq_u16_u8(m), 4);

    return vget_lane_u64(vreinterpret_u64_u8(n), 0);
}
#endif

static ECSM_INLINE const unsigned char *ecsm_scan_ws(const unsigned char *p,
                                                     const unsigned char *end)
{
#if ECSM_SCAN_SSE2
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
                         _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))),
            _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t')),
                         _mm_cmpeq_epi8(v, _mm_set1_epi8('\r'))));
        unsigned bits = ecsm_mask16(m) ^ 0xffffu;

        if (bits)
            return p + __builtin_ctz(bits);
        p += 16;
    }
#else
    while (end - p >= 16) {
        uint8x16_t v = vld1q_u8(p);
        uint8x16_t m = vorrq_u8(
            vorrq_u8(vceqq_u8(v, vdupq_n_u8(' ')), vceqq_u8(v, vdupq_n_u8('\n'))),
            vorrq_u8(vceqq_u8(v, vdupq_n_u8('\t')), vceqq_u8(v, vdupq_n_u8('\r'))));
        uint64_t bits = ~ecsm_mask16(m);

        if (bits)
            return p + (__builtin_ctzll(bits) >> 2);
        p += 16;
    }
#endif
    while (p < end && ecsm_ws_class[*p])
        p++;
    return p;
}

static ECSM_INLINE const unsigned char *
ecsm_scan_plain(const unsigned char *p, const unsigned char *end)
{
#if ECSM_SCAN_SSE2
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(' ');

    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* Signed compare: bytes >= 0x80 are negative, so they count too. */
        __m128i m = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
            _mm_cmplt_epi8(v, space));
        unsigned bits = ecsm_mask16(m);

        if (bits)
            return p + __builtin_ctz(bits);
        p += 16;
    }
#else
    const uint8x16_t quote = vdupq_n_u8('"'), bslash = vdupq_n_u8('\\');
    const int8x16_t space = vdupq_n_s8(' ');

    while (end - p >= 16) {
        uint8x16_t v = vld1q_u8(p);
        /* Signed compare: bytes >= 0x80 are negative, so they count too. */
        uint8x16_t m = vorrq_u8(
            vorrq_u8(vceqq_u8(v, quote), vceqq_u8(v, bslash)),
            vcltq_s8(vreinterpretq_s8_u8(v), space));
        uint64_t bits = ecsm_mask16(m);

        if (bits)
            return p + (__builtin_ctzll(bits) >> 2);
        p += 16;
    }
#endif
    while (p < end && ecsm_str_plain[*p])
        p++;
    return p;
}

#else /* SWAR */

#define ECSM_ONES  ((uint64_t)0x0101010101010101u)
#define ECSM_HIGHS ((uint64_t)0x8080808080808080u)
#define ECSM_LOW7  ((uint64_t)0x7f7f7f7f7f7f7f7fu)

/* The 8 bytes at p, the first one least significant (compilers make this
 * one load on a little-endian CPU, a load and a byte swap on a big one). */
static ECSM_INLINE uint64_t ecsm_load8(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16
           | (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32
           | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48
           | (uint64_t)p[7] << 56;
}

/* Index of the first byte of x that is not zero (x != 0). */
static ECSM_INLINE unsigned ecsm_first_nonzero(uint64_t x)
{
#if defined(__GNUC__) && !defined(ECSM_SCAN_NO_BUILTINS)
    return (unsigned)__builtin_ctzll(x) >> 3;
#else
    /* Flag each nonzero byte in its high bit (exact: no sum reaches the
     * next byte), keep the lowest flag, 1 << 8i once shifted down, and
     * multiply by a constant whose byte 7 - i is i: the top byte is i. */
    uint64_t m = (((x & ECSM_LOW7) + ECSM_LOW7) | x) & ECSM_HIGHS;

    return (unsigned)((((m & (0 - m)) >> 7) * (uint64_t)0x0001020304050607u)
                      >> 56);
#endif
}

/*
 * JSON puts whitespace between tokens, mostly as a line break and then a
 * run of one byte repeated (the indentation: spaces or tabs). So a line
 * break is stepped over, and a run of spaces or tabs is measured 8 bytes at
 * a time: the first byte that differs from the run's is the first nonzero
 * byte of the word XOR the run's byte repeated.
 */
static ECSM_INLINE const unsigned char *ecsm_scan_ws(const unsigned char *p,
                                                     const unsigned char *end)
{
    while (end - p >= 9) {
        const unsigned char *last = end - 8;
        unsigned c = *p;
        uint64_t run;

        if (c == '\n' || c == '\r')
            c = *++p;
        if (c != ' ' && c != '\t') {
            if (!ecsm_ws_class[c])
                return p;
            p++;
            continue;
        }
        run = c * ECSM_ONES;
        for (p++; p <= last; p += 8) {
            uint64_t other = ecsm_load8(p) ^ run;

            if (other) {
                p += ecsm_first_nonzero(other);
                if (*p > ' ')    /* the usual end: the next token */
                    return p;
                break;
            }
        }
    }
    while (p < end && ecsm_ws_class[*p])
        p++;
    return p;
}

/*
 * The first byte that ends a plain run is the first one where one of these
 * has its high bit set: b itself (b >= 0x80); (b ^ 0x02) - 0x21, which
 * borrows for exactly the bytes below 0x20 and '"' (the XOR turns '"' into
 * 0x20 and keeps 0x00-0x1f among themselves); and (b ^ '\\') - 1, which
 * borrows for '\\' alone. A borrow out of a byte reaches the next byte only
 * from a byte that is flagged already, so the first flag is exact; the ones
 * after it may not be, and are not used.
 */
static ECSM_INLINE uint64_t ecsm_string_stops(uint64_t x)
{
    return (x | ((x ^ 0x0202020202020202u) - 0x2121212121212121u)
            | ((x ^ 0x5c5c5c5c5c5c5c5cu) - ECSM_ONES)) & ECSM_HIGHS;
}

static ECSM_INLINE const unsigned char *
ecsm_scan_plain(const unsigned char *p, const unsigned char *end)
{
    if (end - p >= 8) {
        const unsigned char *last = end - 8;

        do {
            uint64_t stops = ecsm_string_stops(ecsm_load8(p));

            if (stops)
                return p + ecsm_first_nonzero(stops);
            p += 8;
        } while (p <= last);
    }
    while (p < end && ecsm_str_plain[*p])
        p++;
    return p;
}

#endif /* SWAR */

#endif
