/*
 * http.c -- the HTTP object, "ecs_metadata.core.http": one libcurl
 * easy handle per object, so consecutive requests reuse the connection.
 *
 * Caveats:
 *  - Nothing here calls back into Lua while libcurl runs: the write and
 *    header callbacks only append to buffers the client owns. A Lua error can
 *    therefore never longjmp through libcurl, and everything allocated in C
 *    (buffers, header lists) hangs off the userdata, so __gc frees it even
 *    when a memory error interrupts a request half way.
 *  - HTTP statuses are not errors here: a 404 is a body, 404 and headers.
 *    Failures are transport failures only: unreachable, timeout, too_large,
 *    invalid_argument.
 *  - Proxies named in the environment are ignored, redirects are not
 *    followed and only http and https are spoken: the endpoints this module
 *    reads are on the local link, and a container's HTTP_PROXY must not
 *    capture them.
 *  - Messages name the method, the url (without user info or query) or the
 *    caller's label for it, and libcurl's reason; never a header value.
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ecsm.h"

#define ECSM_DEFAULT_TIMEOUT         3.0                  /* seconds */
#define ECSM_DEFAULT_CONNECT_TIMEOUT 1.0                  /* seconds */
#define ECSM_DEFAULT_MAX_BYTES       (4 * 1024 * 1024)    /* bytes */
/* A receive buffer larger than this is freed after its request, so one big
 * answer does not pin its memory for the client's lifetime. */
#define ECSM_KEEP_BUFFER             (1024 * 1024)
#define ECSM_MAX_SECONDS             86400.0
#define ECSM_USER_AGENT              "ecs-metadata-lua/" ECSM_VERSION

typedef struct ecsm_buf {
    char *data;
    size_t len;
    size_t cap;
} ecsm_buf;

/* What a request may set, over the client's own defaults. */
typedef struct ecsm_settings {
    long timeout_ms;
    long connect_timeout_ms;
    size_t max_bytes;
    int success_headers;   /* a headers table for 2xx answers too */
} ecsm_settings;

/*
 * The per-request options as last given to the handle. libcurl keeps
 * options between transfers, and setting one costs more than comparing it
 * (CURLOPT_URL copies and re-checks the string), so an option is set again
 * only when it changed: the steady state of a poller is one url, one set of
 * options, GET after GET.
 */
typedef struct ecsm_applied {
    char *url;                         /* a copy, NULL when none is set */
    size_t url_len;
    const struct curl_slist *headers;
    ecsm_settings settings;
    int plain_get;                     /* the handle is set up for a GET */
} ecsm_applied;

typedef struct ecsm_http {
    CURL *curl;                        /* NULL once closed */
    struct curl_slist *base_headers;   /* the client's own, always sent */
    struct curl_slist *call_headers;   /* a request's merged list, or NULL */
    ecsm_applied applied;
    ecsm_buf body;
    ecsm_buf head;
    ecsm_settings defaults;
    size_t limit;                      /* max_bytes of the request under way */
    int too_large;
    int out_of_memory;
    char error[CURL_ERROR_SIZE];
} ecsm_http;

/* ===================================================================== */
/* Buffers                                                                */
/* ===================================================================== */

static int buf_reserve(ecsm_buf *b, size_t extra)
{
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 4096;
    char *p;

    if (need <= b->cap)
        return 1;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = realloc(b->data, cap);
    if (p == NULL)
        return 0;
    b->data = p;
    b->cap = cap;
    return 1;
}

static void buf_free(ecsm_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ===================================================================== */
/* libcurl callbacks: plain C, no Lua                                     */
/* ===================================================================== */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    ecsm_http *c = ud;
    size_t len = size * n;

    if (len > c->limit - c->body.len) {
        c->too_large = 1;
        return 0;
    }
    if (c->body.len == 0) {
        /* Size the buffer once when the server said how much is coming. */
        curl_off_t announced = -1;
        if (curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
                              &announced) == CURLE_OK
            && announced > 0 && (curl_off_t)c->limit >= announced)
            (void)buf_reserve(&c->body, (size_t)announced);
    }
    if (!buf_reserve(&c->body, len)) {
        c->out_of_memory = 1;
        return 0;
    }
    memcpy(c->body.data + c->body.len, p, len);
    c->body.len += len;
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    ecsm_http *c = ud;
    size_t len = size * n;

    /* A new status line starts a new response (after a 100 Continue). */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        c->head.len = 0;
    if (!buf_reserve(&c->head, len)) {
        c->out_of_memory = 1;
        return 0;
    }
    memcpy(c->head.data + c->head.len, p, len);
    c->head.len += len;
    return len;
}

/* ===================================================================== */
/* Options                                                                */
/* ===================================================================== */

/* Raises for an option of the wrong type: that is a programming error. */
static void option_type_error(lua_State *L, const char *name,
                              const char *expected)
{
    luaL_error(L, "bad option '%s' (%s expected, got %s)", name, expected,
               luaL_typename(L, -1));
}

/* Reads a duration in seconds into milliseconds. Returns 0 when the value is
 * not a positive, finite number of seconds. */
static int read_seconds(lua_State *L, int idx, const char *name, long *ms)
{
    lua_Number s;

    lua_getfield(L, idx, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 1;
    }
    if (lua_type(L, -1) != LUA_TNUMBER)
        option_type_error(L, name, "number");
    s = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(s > 0 && s <= ECSM_MAX_SECONDS))
        return 0;
    *ms = (long)ceil(s * 1000.0);
    return 1;
}

/*
 * Reads timeout, connect_timeout, max_bytes and response_headers from the
 * table at idx (0 = no table) over the values already in *s. Returns NULL, or what is wrong with
 * a value; that becomes an invalid_argument failure.
 */
static const char *read_settings(lua_State *L, int idx, ecsm_settings *s)
{
    lua_Number max;

    if (idx == 0)
        return NULL;
    if (!read_seconds(L, idx, "timeout", &s->timeout_ms))
        return "timeout must be a positive number of seconds";
    if (!read_seconds(L, idx, "connect_timeout", &s->connect_timeout_ms))
        return "connect_timeout must be a positive number of seconds";
    lua_getfield(L, idx, "response_headers");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TBOOLEAN)
            option_type_error(L, "response_headers", "boolean");
        s->success_headers = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "max_bytes");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            option_type_error(L, "max_bytes", "number");
        max = lua_tonumber(L, -1);
        if (!(max >= 1 && max <= (lua_Number)(SIZE_MAX / 4)
              && max == floor(max))) {
            lua_pop(L, 1);
            return "max_bytes must be a positive whole number";
        }
        s->max_bytes = (size_t)max;
    }
    lua_pop(L, 1);
    return NULL;
}

static int is_token_char(unsigned char ch)
{
    return isalnum(ch) || (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int valid_header_name(const char *s, size_t len)
{
    size_t i;

    if (len == 0)
        return 0;
    for (i = 0; i < len; i++)
        if (!is_token_char((unsigned char)s[i]))
            return 0;
    return 1;
}

static int valid_header_value(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return 0;
    return 1;
}

static int same_header_name(const char *line, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (tolower((unsigned char)line[i]) != tolower((unsigned char)name[i]))
            return 0;
    return line[len] == ':' || line[len] == ';';
}

/* Appends "Name: value" to *list; raises only when memory runs out, and then
 * *list still holds everything appended so far, for its owner to free. */
static void append_header(lua_State *L, struct curl_slist **list,
                          const char *name, const char *value, size_t vlen)
{
    struct curl_slist *grown;

    /* "Name;" is libcurl's way to send a header with an empty value. */
    if (vlen == 0)
        lua_pushfstring(L, "%s;", name);
    else
        lua_pushfstring(L, "%s: %s", name, value);
    grown = curl_slist_append(*list, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (grown == NULL)
        luaL_error(L, "not enough memory");
    *list = grown;
}

/*
 * Appends the headers of the table at idx to *list. Returns NULL, or what is
 * wrong as a format whose one %s is the header's name (its first bytes are
 * copied to bad_name); the stack is as it was either way. A message never
 * shows a header's value: it may be a token.
 */
static const char *append_headers(lua_State *L, int idx,
                                  struct curl_slist **list,
                                  char *bad_name, size_t bad_size)
{
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *name, *value, *bad = NULL;
        size_t nlen, vlen;

        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "bad option 'headers' (string keys and values "
                          "expected)");
        name = lua_tolstring(L, -2, &nlen);
        value = lua_tolstring(L, -1, &vlen);
        if (!valid_header_name(name, nlen))
            bad = "header name %s is not an HTTP token";
        else if (!valid_header_value(value, vlen))
            bad = "header %s has a line break or NUL in its value";
        if (bad != NULL) {
            size_t n = nlen < bad_size - 1 ? nlen : bad_size - 1;
            memcpy(bad_name, name, n);
            bad_name[n] = '\0';
            lua_pop(L, 2);
            return bad;
        }
        append_header(L, list, name, value, vlen);
        lua_pop(L, 1);
    }
    return NULL;
}

/* Appends to *list each line of base whose header *list does not name. */
static void append_missing(lua_State *L, struct curl_slist **list,
                           const struct curl_slist *base)
{
    for (; base != NULL; base = base->next) {
        const char *end = strpbrk(base->data, ":;");
        size_t nlen = end ? (size_t)(end - base->data) : 0;
        const struct curl_slist *o;
        struct curl_slist *grown;

        for (o = *list; o != NULL; o = o->next)
            if (same_header_name(o->data, base->data, nlen))
                break;
        if (o != NULL)
            continue;
        grown = curl_slist_append(*list, base->data);
        if (grown == NULL)
            luaL_error(L, "not enough memory");
        *list = grown;
    }
}

/* ===================================================================== */
/* The client object                                                      */
/* ===================================================================== */

static ecsm_http *check_http(lua_State *L)
{
    ecsm_http *c = luaL_checkudata(L, 1, ECSM_HTTP_MT);

    if (c->curl == NULL)
        luaL_error(L, "attempt to use a closed http object");
    return c;
}

/* Frees everything the client holds; safe to run any number of times. */
static int http_close(lua_State *L)
{
    ecsm_http *c = luaL_checkudata(L, 1, ECSM_HTTP_MT);

    if (c->curl != NULL) {
        curl_easy_cleanup(c->curl);
        c->curl = NULL;
    }
    curl_slist_free_all(c->call_headers);
    c->call_headers = NULL;
    curl_slist_free_all(c->base_headers);
    c->base_headers = NULL;
    free(c->applied.url);
    memset(&c->applied, 0, sizeof c->applied);
    buf_free(&c->body);
    buf_free(&c->head);
    return 0;
}

static int http_tostring(lua_State *L)
{
    ecsm_http *c = luaL_checkudata(L, 1, ECSM_HTTP_MT);

    if (c->curl == NULL)
        lua_pushliteral(L, "ecs_metadata.core.http (closed)");
    else
        lua_pushfstring(L, "ecs_metadata.core.http (%p)", (void *)c);
    return 1;
}

/* Options that never change over the handle's life. */
static CURLcode set_fixed_options(ecsm_http *c)
{
    CURL *h = c->curl;
    CURLcode rc = CURLE_OK;

#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_NOPROXY, "*");
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_USERAGENT, ECSM_USER_AGENT);
    SET(CURLOPT_ERRORBUFFER, c->error);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, (void *)c);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, (void *)c);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
#undef SET
    return rc;
}

/*
 * core.http([opts]) -> http object, or nil, message, "invalid_argument".
 * The userdata exists, with its metatable and every field empty, before
 * anything is allocated, so a failure at any later step leaves nothing that
 * __gc cannot free.
 */
static int http_new(lua_State *L)
{
    ecsm_http *c;
    const char *bad;
    char bad_name[64];
    int opts = lua_isnoneornil(L, 1) ? 0 : 1;
    int self;

    if (opts)
        luaL_checktype(L, 1, LUA_TTABLE);
    c = ecsm_newuserdata(L, sizeof *c);
    self = lua_gettop(L);
    memset(c, 0, sizeof *c);
    luaL_getmetatable(L, ECSM_HTTP_MT);
    lua_setmetatable(L, -2);

    c->defaults.timeout_ms = (long)(ECSM_DEFAULT_TIMEOUT * 1000);
    c->defaults.connect_timeout_ms = (long)(ECSM_DEFAULT_CONNECT_TIMEOUT * 1000);
    c->defaults.max_bytes = ECSM_DEFAULT_MAX_BYTES;
    c->defaults.success_headers = 1;
    bad = read_settings(L, opts, &c->defaults);
    if (bad != NULL)
        return ecsm_fail(L, ECSM_E_INVALID_ARGUMENT, "http: %s", bad);

    if (opts) {
        lua_getfield(L, 1, "headers");
        if (!lua_isnil(L, -1)) {
            if (!lua_istable(L, -1))
                option_type_error(L, "headers", "table");
            bad = append_headers(L, lua_gettop(L), &c->base_headers,
                                 bad_name, sizeof bad_name);
            if (bad != NULL) {
                lua_pushfstring(L, bad, bad_name);
                return ecsm_fail(L, ECSM_E_INVALID_ARGUMENT, "http: %s",
                                 lua_tostring(L, -1));
            }
        }
        lua_pop(L, 1);
    }

    c->curl = curl_easy_init();
    if (c->curl == NULL)
        return luaL_error(L, "curl_easy_init failed");
    if (set_fixed_options(c) != CURLE_OK)
        return luaL_error(L, "libcurl refused a basic option: %s", c->error);
    lua_pushvalue(L, self);
    return 1;
}

/* Pushes what a message calls the request: opts.label, or the url without
 * user info and without its query. */
static void push_label(lua_State *L, int opts, const char *url)
{
    const char *scheme_end, *host, *at, *slash, *query;

    if (opts != 0) {
        lua_getfield(L, opts, "label");
        if (lua_type(L, -1) == LUA_TSTRING)
            return;
        lua_pop(L, 1);
    }
    scheme_end = strstr(url, "://");
    host = scheme_end ? scheme_end + 3 : url;
    slash = strchr(host, '/');
    at = strchr(host, '@');
    if (at != NULL && (slash == NULL || at < slash)) {
        lua_pushlstring(L, url, (size_t)(host - url));
        lua_pushstring(L, at + 1);
        lua_concat(L, 2);
    } else {
        lua_pushstring(L, url);
    }
    query = strchr(lua_tostring(L, -1), '?');
    if (query != NULL) {
        lua_pushlstring(L, lua_tostring(L, -1),
                        (size_t)(query - lua_tostring(L, -1)));
        lua_replace(L, -2);
    }
}

static int has_http_scheme(const char *url)
{
    return curl_strnequal(url, "http://", 7)
        || curl_strnequal(url, "https://", 8);
}

static int valid_method(const char *m)
{
    size_t i;

    for (i = 0; m[i] != '\0'; i++)
        if (!(m[i] >= 'A' && m[i] <= 'Z'))
            return 0;
    return i > 0 && i <= 16;
}

static const char *failure_code(CURLcode rc, const ecsm_http *c)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return ECSM_E_TIMEOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return ECSM_E_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        return c->too_large ? ECSM_E_TOO_LARGE : ECSM_E_UNREACHABLE;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return ECSM_E_INVALID_ARGUMENT;
    default:
        return ECSM_E_UNREACHABLE;
    }
}

/* Gives the handle the url, headers and settings of this request, each
 * only if it differs from what the handle already has. */
static void apply_options(lua_State *L, ecsm_http *c, const char *url,
                          size_t url_len, const ecsm_settings *s)
{
    ecsm_applied *a = &c->applied;
    const struct curl_slist *headers =
        c->call_headers ? c->call_headers : c->base_headers;

    if (a->url == NULL || a->url_len != url_len
        || memcmp(a->url, url, url_len) != 0) {
        char *copy = malloc(url_len + 1);
        if (copy == NULL)
            luaL_error(L, "not enough memory");
        memcpy(copy, url, url_len + 1);
        curl_easy_setopt(c->curl, CURLOPT_URL, url);
        free(a->url);
        a->url = copy;
        a->url_len = url_len;
    }
    /* A new merged list may reuse the address of the one just freed. */
    if (a->headers != headers || c->call_headers != NULL) {
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
        a->headers = headers;
    }
    if (a->settings.timeout_ms != s->timeout_ms) {
        curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, s->timeout_ms);
        a->settings.timeout_ms = s->timeout_ms;
    }
    if (a->settings.connect_timeout_ms != s->connect_timeout_ms) {
        curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
                         s->connect_timeout_ms);
        a->settings.connect_timeout_ms = s->connect_timeout_ms;
    }
    if (a->settings.max_bytes != s->max_bytes) {
        curl_easy_setopt(c->curl, CURLOPT_MAXFILESIZE_LARGE,
                         (curl_off_t)s->max_bytes);
        a->settings.max_bytes = s->max_bytes;
    }
}

/*
 * Runs one request. On success returns 0 with the answer in c->body and
 * c->head, its status in *status and the request's settings in *used. On failure pushes nil, message, code
 * and returns 3. Arguments: the url at index url_arg, a body (or NULL), and
 * an opts table at index opts (0 = none).
 */
static int perform(lua_State *L, ecsm_http *c, const char *method,
                   int url_arg, const char *body, size_t body_len, int opts,
                   long *status, ecsm_settings *used)
{
    size_t url_len;
    const char *url = luaL_checklstring(L, url_arg, &url_len);
    ecsm_settings s = c->defaults;
    const char *bad;
    char bad_name[64] = "";
    CURLcode rc;
    CURL *h = c->curl;

    bad = read_settings(L, opts, &s);
    if (opts != 0) {
        lua_getfield(L, opts, "label");
        if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
            option_type_error(L, "label", "string");
        lua_pop(L, 1);
    }
    if (bad == NULL && (url_len != strlen(url) || !has_http_scheme(url)))
        bad = "the url must be an http:// or https:// url";
    if (bad == NULL && strpbrk(url, " \r\n\t") != NULL)
        bad = "the url has white space in it";

    /* The merged header list replaces the previous request's. */
    curl_slist_free_all(c->call_headers);
    c->call_headers = NULL;
    if (bad == NULL && opts != 0) {
        lua_getfield(L, opts, "headers");
        if (!lua_isnil(L, -1)) {
            if (!lua_istable(L, -1))
                option_type_error(L, "headers", "table");
            bad = append_headers(L, lua_gettop(L), &c->call_headers,
                                 bad_name, sizeof bad_name);
            if (bad == NULL)
                append_missing(L, &c->call_headers, c->base_headers);
        }
        lua_pop(L, 1);
    }
    if (bad != NULL) {
        push_label(L, opts, url);
        lua_pushfstring(L, bad, bad_name);
        return ecsm_fail(L, ECSM_E_INVALID_ARGUMENT, "%s %s: %s", method,
                         lua_tostring(L, -2), lua_tostring(L, -1));
    }

    c->body.len = c->head.len = 0;
    c->too_large = c->out_of_memory = 0;
    c->error[0] = '\0';
    c->limit = s.max_bytes;

    apply_options(L, c, url, url_len, &s);
    if (strcmp(method, "GET") == 0) {
        if (!c->applied.plain_get) {
            curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, (char *)NULL);
            c->applied.plain_get = 1;
        }
    } else {
        c->applied.plain_get = 0;
        if (strcmp(method, "HEAD") == 0) {
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, (char *)NULL);
        } else if (body == NULL && strcmp(method, "DELETE") == 0) {
            curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        } else {
            curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t)body_len);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        }
    }

    rc = curl_easy_perform(h);

    /* The body string belongs to the caller's stack frame: forget it. */
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, (char *)NULL);
    if (c->out_of_memory)
        return luaL_error(L, "not enough memory");
    if (rc != CURLE_OK) {
        const char *code = failure_code(rc, c);
        push_label(L, opts, url);
        if (strcmp(code, ECSM_E_TOO_LARGE) == 0)
            return ecsm_fail(L, code, "%s %s: the answer is larger than "
                             "max_bytes (%d)", method, lua_tostring(L, -1),
                             (int)(s.max_bytes > INT_MAX ? INT_MAX
                                                         : s.max_bytes));
        return ecsm_fail(L, code, "%s %s: %s", method, lua_tostring(L, -1),
                         c->error[0] ? c->error : curl_easy_strerror(rc));
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    *used = s;
    return 0;
}

static char ascii_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch | 0x20) : ch;
}

/* Pushes a table of the response headers: lowercase name -> value, with
 * repeated headers joined by ", ". */
static void push_headers(lua_State *L, const ecsm_buf *head)
{
    const char *p = head->data, *end = head->data + head->len;
    int lines = 0;
    const char *q;

    for (q = p; q < end; q++)
        lines += *q == '\n';
    /* Every line but the status line and the blank one is a header. */
    lua_createtable(L, 0, lines > 2 ? lines - 2 : 0);
    while (p < end) {
        const char *line = p;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(line, ':', (size_t)(line_end - line));
        const char *v, *v_end = line_end;
        size_t nlen, i;
        char lower[64];

        p = line_end + 1;
        if (colon == NULL || colon == line
            || (line_end - line >= 5 && memcmp(line, "HTTP/", 5) == 0))
            continue;
        nlen = (size_t)(colon - line);
        if (nlen <= sizeof lower) {
            for (i = 0; i < nlen; i++)
                lower[i] = ascii_lower(line[i]);
            lua_pushlstring(L, lower, nlen);
        } else {
            luaL_Buffer name;
            luaL_buffinit(L, &name);
            for (i = 0; i < nlen; i++)
                luaL_addchar(&name, ascii_lower(line[i]));
            luaL_pushresult(&name);
        }
        for (v = colon + 1; v < v_end && (*v == ' ' || *v == '\t'); v++)
            ;
        while (v_end > v && (v_end[-1] == '\r' || v_end[-1] == ' '
                             || v_end[-1] == '\t'))
            v_end--;
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushlstring(L, v, (size_t)(v_end - v));
        } else {
            lua_pushliteral(L, ", ");
            lua_pushlstring(L, v, (size_t)(v_end - v));
            lua_concat(L, 3);
        }
        lua_rawset(L, -3);
    }
}

/* Pushes the headers table, or nil for a 2xx answer when the request said
 * response_headers = false: building the table is a good part of what a
 * request costs in Lua, and only failures (Retry-After) usually need it. */
static void push_response_headers(lua_State *L, const ecsm_http *c,
                                  long status, const ecsm_settings *used)
{
    if (used->success_headers || status < 200 || status > 299)
        push_headers(L, &c->head);
    else
        lua_pushnil(L);
}

/* Frees a receive buffer that one big answer grew. */
static void trim_buffers(ecsm_http *c)
{
    if (c->body.cap > ECSM_KEEP_BUFFER)
        buf_free(&c->body);
}

static int opts_index(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    return idx;
}

/* Runs a request and answers body, status, headers, or the failure. */
static int answer(lua_State *L, ecsm_http *c, const char *method,
                  int url_arg, const char *body, size_t body_len, int opts)
{
    long status = 0;
    ecsm_settings used;
    int failed = perform(L, c, method, url_arg, body, body_len, opts, &status,
                         &used);

    if (failed)
        return failed;
    lua_pushlstring(L, c->body.data ? c->body.data : "", c->body.len);
    lua_pushinteger(L, (lua_Integer)status);
    push_response_headers(L, c, status, &used);
    trim_buffers(c);
    return 3;
}

/* http:get(url [, opts]) -> body, status, headers | nil, message, code */
static int http_get(lua_State *L)
{
    ecsm_http *c = check_http(L);

    return answer(L, c, "GET", 2, NULL, 0, opts_index(L, 3));
}

/* http:request(method, url, body|nil [, opts]) -> as http:get */
static int http_request(lua_State *L)
{
    ecsm_http *c = check_http(L);
    const char *method = luaL_checkstring(L, 2);
    size_t body_len = 0;
    const char *body = luaL_optlstring(L, 4, NULL, &body_len);
    int opts = opts_index(L, 5);

    luaL_argcheck(L, valid_method(method), 2,
                  "method must be an upper-case HTTP token");
    return answer(L, c, method, 3, body, body_len, opts);
}

/*
 * http:get_json(url [, opts]) -> value, status, headers
 *                                | nil, message, code
 *                                | nil, message, "bad_json", status, headers
 * Decodes straight from the receive buffer, whatever the status.
 */
static int http_get_json(lua_State *L)
{
    ecsm_http *c = check_http(L);
    int opts = opts_index(L, 3);
    ecsm_json_opts jopts;
    long status = 0;
    ecsm_settings used;
    int failed;

    ecsm_json_checkopts(L, opts, &jopts);
    failed = perform(L, c, "GET", 2, NULL, 0, opts, &status, &used);
    if (failed)
        return failed;
    if (!ecsm_json_decode(L, c->body.data ? c->body.data : "", c->body.len,
                          &jopts)) {
        int why = lua_gettop(L);
        trim_buffers(c);
        push_label(L, opts, lua_tostring(L, 2));
        lua_pushnil(L);
        lua_pushfstring(L, "GET %s: %s", lua_tostring(L, why + 1),
                        lua_tostring(L, why));
        lua_pushliteral(L, ECSM_E_BAD_JSON);
        lua_pushinteger(L, (lua_Integer)status);
        push_headers(L, &c->head);
        return 5;
    }
    trim_buffers(c);
    lua_pushinteger(L, (lua_Integer)status);
    push_response_headers(L, c, status, &used);
    return 3;
}

static const luaL_Reg http_functions[] = {
    {"http", http_new},
    {NULL, NULL}
};

static const luaL_Reg http_methods[] = {
    {"get", http_get},
    {"get_json", http_get_json},
    {"request", http_request},
    {"close", http_close},
    {NULL, NULL}
};

static const luaL_Reg http_metamethods[] = {
    {"__gc", http_close},
#if LUA_VERSION_NUM >= 504
    {"__close", http_close},
#endif
    {"__tostring", http_tostring},
    {NULL, NULL}
};

void ecsm_http_register(lua_State *L)
{
    luaL_newmetatable(L, ECSM_HTTP_MT);
    ecsm_setfuncs(L, http_metamethods);
    ecsm_newlib(L, http_methods);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, ECSM_HTTP_MT);
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);

    ecsm_setfuncs(L, http_functions);
    lua_pushnumber(L, ECSM_DEFAULT_TIMEOUT);
    lua_setfield(L, -2, "DEFAULT_TIMEOUT");
    lua_pushnumber(L, ECSM_DEFAULT_CONNECT_TIMEOUT);
    lua_setfield(L, -2, "DEFAULT_CONNECT_TIMEOUT");
    lua_pushinteger(L, ECSM_DEFAULT_MAX_BYTES);
    lua_setfield(L, -2, "DEFAULT_MAX_BYTES");
}
