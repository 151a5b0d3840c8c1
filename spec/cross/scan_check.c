/*
 * scan_check.c -- checks the decoder's scans (src/decode_scan.h) against
 * their byte-at-a-time definition, whichever build the compiler picks
 * (sse2, neon or swar; -DECSM_NO_SIMD forces swar, -DECSM_SCAN_NO_BUILTINS
 * its fallback without __builtin_ctzll). Run by spec/cross/run, natively
 * and under qemu-user. Exits 0 when every answer agrees, 1 otherwise.
 *
 * Each input ends exactly where a page that may not be read begins (mmap
 * with a PROT_NONE guard), so a scan that reads past its end crashes.
 * Built with -DSCAN_CHECK_FREESTANDING (no C library: a big-endian CPU
 * whose libc is not at hand), the same checks run on a static buffer,
 * without the guard page, and report through the write and exit syscalls
 * of AArch64 Linux.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../src/decode_scan.h"

#ifndef SCAN_CHECK_FREESTANDING
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#define MAXLEN 72

static unsigned long failures, checks;

#ifdef SCAN_CHECK_FREESTANDING
static long sys3(long nr, long a, long b, long c)
{
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;

    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}

static void say(const char *s)
{
    size_t n = 0;

    while (s[n])
        n++;
    sys3(64, 1, (long)s, (long)n);     /* write(1, s, n) */
}

static unsigned char arena[2 * MAXLEN + 16];

/* A buffer of n bytes; the caller fills it. */
static unsigned char *buffer(size_t n)
{
    return arena + sizeof arena - n;
}
#else
static void say(const char *s)
{
    fputs(s, stdout);
}

static unsigned char *page;
static size_t pagesize;

static unsigned char *buffer(size_t n)
{
    return page + pagesize - n;
}
#endif

static void say_num(unsigned long v)
{
    char b[24];
    int i = (int)sizeof b - 1;

    b[i] = '\0';
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    say(b + i);
}

static int is_ws(unsigned c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_plain(unsigned c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Scans buf[0..n) from each offset up to maxfrom with both scans and
 * compares. (Only the distances from the start to the stop and to the end
 * matter: every load is unaligned.) */
static void check(const unsigned char *buf, size_t n, size_t maxfrom)
{
    size_t from;

    for (from = 0; from <= n && from <= maxfrom; from++) {
        const unsigned char *p = buf + from, *end = buf + n, *ws = p, *pl = p;

        while (ws < end && is_ws(*ws))
            ws++;
        while (pl < end && is_plain(*pl))
            pl++;
        checks += 2;
        if (ecsm_scan_ws(p, end) != ws || ecsm_scan_plain(p, end) != pl) {
            if (failures++ < 10) {
                say("mismatch: length ");
                say_num((unsigned long)n);
                say(" from ");
                say_num((unsigned long)from);
                say(" ws ");
                say_num((unsigned long)(ecsm_scan_ws(p, end) - buf));
                say("/");
                say_num((unsigned long)(ws - buf));
                say(" plain ");
                say_num((unsigned long)(ecsm_scan_plain(p, end) - buf));
                say("/");
                say_num((unsigned long)(pl - buf));
                say("\n");
            }
        }
    }
}

static uint64_t rng = 0x9e3779b97f4a7c15u;

static unsigned next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 32);
}

/* Bytes next to the scans' edges: each class's members and neighbours. */
static const unsigned char edges[] = {
    ' ', '\t', '\n', '\r', 0x00, 0x01, 0x08, 0x0b, 0x0c, 0x1f, 0x21, '"',
    0x23, 0x5b, '\\', 0x5d, 0x7f, 0x80, 0xa0, 0xdc, 0xfe, 0xff, 'a', '{'
};

static int run(void)
{
    size_t n, k, i;
    unsigned b;

    /* Every byte value at every position of a run of each filler. */
    for (n = 1; n <= MAXLEN; n++) {
        static const unsigned char fillers[] = { ' ', '\t', 'a', '\n' };
        size_t f;

        for (f = 0; f < sizeof fillers; f++) {
            for (k = 0; k < n; k++) {
                for (b = 0; b < 256; b++) {
                    unsigned char *buf = buffer(n);

                    for (i = 0; i < n; i++)
                        buf[i] = fillers[f];
                    buf[k] = (unsigned char)b;
                    check(buf, n, 1);
                }
            }
        }
    }
    /* Random mixes of the edge bytes, mostly runs, of every length. */
    for (i = 0; i < 200000; i++) {
        unsigned char *buf;

        n = next() % (MAXLEN + 1);
        buf = buffer(n);
        for (k = 0; k < n;) {
            unsigned char c = edges[next() % sizeof edges];
            size_t len = next() % 4 == 0 ? next() % 20 : 1;

            while (len-- > 0 && k < n)
                buf[k++] = c;
        }
        check(buf, n, n);
    }
    say("scan_check (");
    say(ECSM_SCAN_NAME);
    say("): ");
    say_num(checks);
    say(" checks, ");
    say_num(failures);
    say(" failures\n");
    return failures != 0;
}

#ifdef SCAN_CHECK_FREESTANDING
void _start(void);
void _start(void)
{
    sys3(93, run(), 0, 0);     /* exit */
    for (;;)
        ;
}
#else
int main(void)
{
    pagesize = (size_t)sysconf(_SC_PAGESIZE);
    page = mmap(NULL, 2 * pagesize, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED || mprotect(page + pagesize, pagesize, PROT_NONE)) {
        perror("scan_check: mmap");
        return 2;
    }
    return run();
}
#endif
