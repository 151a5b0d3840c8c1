/*
 * bare_get.c -- the yardstick for client:get: N keep-alive GETs of one url
 * on one libcurl easy handle, appending the body to a reused buffer, as
 * plainly as libcurl allows. Prints microseconds per GET.
 *
 * It sends the same request as client:get, User-Agent included (libcurl
 * spends about 7,000 instructions a request on that header alone), so the
 * difference between the two is what the Lua client adds.
 *
 *   bare_get URL N
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

struct sink {
    char *data;
    size_t len, cap;
};

static size_t append(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t len = size * n;

    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16384;
        char *grown;
        while (cap < s->len + len)
            cap *= 2;
        grown = realloc(s->data, cap);
        if (grown == NULL)
            return 0;
        s->data = grown;
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, len);
    s->len += len;
    return len;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int get(CURL *h, struct sink *s)
{
    long status = 0;

    s->len = 0;
    if (curl_easy_perform(h) != CURLE_OK)
        return 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return status == 200;
}

int main(int argc, char **argv)
{
    struct sink s = {NULL, 0, 0};
    CURL *h;
    long i, n;
    double t0;

    if (argc != 3 || (n = atol(argv[2])) <= 0) {
        fprintf(stderr, "usage: bare_get URL N\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_ALL);
    h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, argv[1]);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "ecs-metadata-lua/0.1.0");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)&s);
    for (i = 0; i < 100; i++)
        if (!get(h, &s)) {
            fprintf(stderr, "bare_get: GET %s failed\n", argv[1]);
            return 1;
        }
    t0 = now();
    for (i = 0; i < n; i++)
        if (!get(h, &s)) {
            fprintf(stderr, "bare_get: GET %s failed\n", argv[1]);
            return 1;
        }
    printf("%.3f\n", (now() - t0) * 1e6 / (double)n);
    curl_easy_cleanup(h);
    free(s.data);
    curl_global_cleanup();
    return 0;
}
