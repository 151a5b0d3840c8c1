/*
 * http.c -- the HTTP object, "ecs_metadata.core.http": one libcurl
 * easy handle per object, so consecutive requests reuse the connection.
 *
 * Caveats:
 *  - Nothing here calls back into Lua while libcurl runs: the write, header
 *    and socket callbacks only touch memory the object owns. A Lua error can
 *    therefore never longjmp through libcurl, and everything allocated in C
 *    (buffers, header lists) hangs off the userdata, so __gc frees it even
 *    when a memory error interrupts a request half way.
 *  - Lua code can still run during a request: a finalizer at any Lua
 *    allocation (while the headers table is built, while get_json decodes
 *    straight from the receive buffer), an __index metamethod of opts. Such
 *    code must not touch the object's buffers, so an object in use refuses
 *    to be used again ("re-entered during a request", a misuse error) and a
 *    close() is deferred to the end of the call. Each method runs its work
 *    under lua_pcall, so a Lua error escaping half way (a memory error, a
 *    finalizer's error on 5.1-5.3) still clears the flag before it goes on.
 *  - A connection belongs to the process that opened it. After fork() the
 *    child holds copies of the parent's sockets; using them, or closing the
 *    handle (TLS sends close_notify) would interleave two processes' bytes
 *    on one connection. So every socket the handle opens is recorded, and at
 *    its first request (or close) in another process the object puts an
 *    unconnected socket over each inherited one before it cleans the old
 *    handle up, then starts again with a new handle.
 *  - HTTP statuses are not errors here: a 404 is a body, 404 and headers.
 *    Failures are transport failures only: unreachable, timeout, too_large,
 *    invalid_argument (an url or option this object cannot use, TLS against
 *    an endpoint that does not speak it). A reply that is not HTTP is
 *    unreachable: something else answered on that port.
 *  - Proxies named in the environment are ignored, redirects are not
 *    followed and only http and https are spoken: the endpoints this module
 *    reads are on the local link, and a container's HTTP_PROXY must not
 *    capture them. CR, LF and NUL are refused in the url and in header
 *    names and values (they would split the request); other checks of urls
 *    and headers belong to the Lua layer, for every transport alike.
 *  - Messages name the method, the url (without user info or query) or the
 *    caller's label for it, and libcurl's reason; never a header value.
 */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <curl/curl.h>

#include "ecsm.h"

#define ECSM_DEFAULT_TIMEOUT          3.0                  /* seconds */
#define ECSM_DEFAULT_CONNECT_TIMEOUT  1.0                  /* seconds */
#define ECSM_DEFAULT_MAX_BYTES        (4 * 1024 * 1024)    /* bytes */
/* The response's header section and chunked trailers together. libcurl
 * caps a header section itself at 300 KB, but not trailers. */
#define ECSM_DEFAULT_MAX_HEADER_BYTES (64 * 1024)          /* bytes */
/* Upper bounds of the options: a larger value is invalid_argument. The
 * header bound stays under libcurl's own cap, so too many header bytes are
 * always this object's too_large, never libcurl's receive error. */
#define ECSM_MAX_SECONDS              86400         /* one day */
#define ECSM_MAX_MAX_BYTES            1073741824    /* 1 GiB */
#define ECSM_MAX_MAX_HEADER_BYTES     262144        /* 256 KiB */
/* They are plain literals so that the messages can quote them. */
#define ECSM_AT_MOST_SECONDS " must be a positive number of seconds, at most " \
                             ECSM_STRINGIFY(ECSM_MAX_SECONDS)
#define ECSM_BYTES_UP_TO(max) " must be a whole number of bytes, 1 to " \
                              ECSM_STRINGIFY(max)
/* A receive buffer larger than this is freed after its request, so one big
 * answer does not pin its memory for the object's lifetime. */
#define ECSM_KEEP_BUFFER              (1024 * 1024)
#define ECSM_KEEP_HEADER_BUFFER       (16 * 1024)
#define ECSM_USER_AGENT               "ecs-metadata-lua/" ECSM_VERSION

typedef struct ecsm_buf {
    char *data;
    size_t len;
    size_t cap;
} ecsm_buf;

/* What a request may set, over the object's own defaults. */
typedef struct ecsm_settings {
    long timeout_ms;
    long connect_timeout_ms;
    size_t max_bytes;
    size_t max_header_bytes;
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

/* A socket the handle opened, and which one it is: after a fork, or once
 * the program closed the descriptor and reused its number, the inode tells
 * whether the descriptor still is that socket. */
typedef struct ecsm_socket {
    int fd;
    dev_t dev;
    ino_t ino;
} ecsm_socket;

typedef struct ecsm_http {
    CURL *curl;                        /* NULL once closed */
    pid_t pid;                         /* the process curl's sockets are of */
    unsigned fork_generation;          /* ecsm_fork_generation then */
    int busy;                          /* a method is running */
    int close_pending;                 /* close() was called meanwhile */
    ecsm_socket *sockets;              /* the open ones, in no order */
    size_t nsockets, sockets_cap;
    struct curl_slist *base_headers;   /* the object's own, always sent */
    struct curl_slist *call_headers;   /* a request's merged list, or NULL */
    ecsm_applied applied;
    ecsm_buf body;
    ecsm_buf head;
    ecsm_settings defaults;
    size_t limit;                      /* max_bytes of the request under way */
    size_t header_limit;               /* its max_header_bytes */
    size_t header_total;               /* header and trailer bytes seen */
    int too_large;                     /* the body passed limit */
    int headers_too_large;             /* the headers passed header_limit */
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

/* Header lines and, after a chunked body, trailer lines: all of them count
 * against header_limit, which no new response (after a 1xx) resets. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    ecsm_http *c = ud;
    size_t len = size * n;

    if (len > c->header_limit - c->header_total) {
        c->headers_too_large = 1;
        return 0;
    }
    c->header_total += len;
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

static curl_socket_t on_open_socket(void *ud, curlsocktype purpose,
                                    struct curl_sockaddr *addr)
{
    ecsm_http *c = ud;
    struct stat st;
    int fd;

    (void)purpose;
    if (c->nsockets == c->sockets_cap) {
        size_t cap = c->sockets_cap ? 2 * c->sockets_cap : 4;
        ecsm_socket *grown = realloc(c->sockets, cap * sizeof *grown);
        if (grown == NULL) {
            c->out_of_memory = 1;
            return CURL_SOCKET_BAD;
        }
        c->sockets = grown;
        c->sockets_cap = cap;
    }
    fd = socket(addr->family, addr->socktype, addr->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    /* A program this one runs has no business with the connection. */
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    c->sockets[c->nsockets].fd = fd;
    c->sockets[c->nsockets].dev = st.st_dev;
    c->sockets[c->nsockets].ino = st.st_ino;
    c->nsockets++;
    return fd;
}

static int on_close_socket(void *ud, curl_socket_t fd)
{
    ecsm_http *c = ud;
    size_t i;

    for (i = 0; i < c->nsockets; i++)
        if (c->sockets[i].fd == fd) {
            c->sockets[i] = c->sockets[--c->nsockets];
            break;
        }
    return close(fd);
}

/* ===================================================================== */
/* Processes                                                              */
/* ===================================================================== */

/* True in the process that made the handle's connections. The fork
 * generation catches every fork(), even one whose child got the pid the
 * object's first process had; the pid, a child made some other way. */
static int in_own_process(const ecsm_http *c)
{
    return c->fork_generation == ecsm_fork_generation && c->pid == getpid();
}

static void note_process(ecsm_http *c)
{
    c->pid = getpid();
    c->fork_generation = ecsm_fork_generation;
}

/*
 * In another process than the one that opened them: puts an unconnected
 * socket over each descriptor of the handle, so that whatever libcurl does
 * with them on cleanup (close, a TLS close_notify) reaches nothing the first
 * process still uses. Returns 0, touching nothing more, when a descriptor is
 * no longer the socket that was opened (the program closed it, and may have
 * reused the number): then the handle must not be cleaned up at all.
 */
static int detach_sockets(ecsm_http *c)
{
    size_t i;

    for (i = 0; i < c->nsockets; i++) {
        struct stat st;
        if (fstat(c->sockets[i].fd, &st) != 0
            || st.st_dev != c->sockets[i].dev
            || st.st_ino != c->sockets[i].ino)
            return 0;
    }
    for (i = 0; i < c->nsockets; i++) {
        int blank = socket(AF_UNIX, SOCK_STREAM, 0);
        int ok = blank >= 0 && dup2(blank, c->sockets[i].fd) >= 0;
        if (blank >= 0)
            close(blank);
        if (!ok)
            return 0;
    }
    return 1;
}

/* Cleans up the handle; one inherited from another process only once its
 * sockets are detached, else it is left as it is (a little memory, never a
 * byte on another process's connection). */
static void drop_handle(ecsm_http *c)
{
    if (c->curl == NULL)
        return;
    if (in_own_process(c) || detach_sockets(c))
        curl_easy_cleanup(c->curl);
    c->curl = NULL;
    c->nsockets = 0;
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
 * not a positive number of seconds up to ECSM_MAX_SECONDS. */
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
    if (!(s > 0 && s <= (lua_Number)ECSM_MAX_SECONDS))
        return 0;
    *ms = (long)ceil(s * 1000.0);
    return 1;
}

/* Reads a whole number of bytes, 1..max. Returns 0 when out of range. */
static int read_bytes(lua_State *L, int idx, const char *name, size_t max,
                      size_t *bytes)
{
    lua_Number n;

    lua_getfield(L, idx, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 1;
    }
    if (lua_type(L, -1) != LUA_TNUMBER)
        option_type_error(L, name, "number");
    n = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(n >= 1 && n <= (lua_Number)max && n == floor(n)))
        return 0;
    *bytes = (size_t)n;
    return 1;
}

/*
 * Reads timeout, connect_timeout, max_bytes, max_header_bytes and
 * response_headers from the table at idx (0 = no table) over the values
 * already in *s. Returns NULL, or what is wrong with a value; that becomes
 * an invalid_argument failure.
 */
static const char *read_settings(lua_State *L, int idx, ecsm_settings *s)
{
    if (idx == 0)
        return NULL;
    if (!read_seconds(L, idx, "timeout", &s->timeout_ms))
        return "timeout" ECSM_AT_MOST_SECONDS;
    if (!read_seconds(L, idx, "connect_timeout", &s->connect_timeout_ms))
        return "connect_timeout" ECSM_AT_MOST_SECONDS;
    lua_getfield(L, idx, "response_headers");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TBOOLEAN)
            option_type_error(L, "response_headers", "boolean");
        s->success_headers = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    if (!read_bytes(L, idx, "max_bytes", ECSM_MAX_MAX_BYTES, &s->max_bytes))
        return "max_bytes" ECSM_BYTES_UP_TO(ECSM_MAX_MAX_BYTES);
    if (!read_bytes(L, idx, "max_header_bytes", ECSM_MAX_MAX_HEADER_BYTES,
                    &s->max_header_bytes))
        return "max_header_bytes" ECSM_BYTES_UP_TO(ECSM_MAX_MAX_HEADER_BYTES);
    return NULL;
}

/* CR and LF would end the header line (and could start another one, or the
 * body); libcurl would cut the line at a NUL. */
static int has_line_break_or_nul(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return 1;
    return 0;
}

/* A name is sent as given, but it must stay one name: libcurl reads the
 * line "name: value" up to its first colon. */
static int valid_header_name(const char *s, size_t len)
{
    return len > 0 && !has_line_break_or_nul(s, len)
        && memchr(s, ':', len) == NULL;
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
            bad = "header name %s is empty or has a colon, a line break "
                  "or NUL in it";
        else if (has_line_break_or_nul(value, vlen))
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
/* The object                                                             */
/* ===================================================================== */

static ecsm_http *check_http(lua_State *L)
{
    ecsm_http *c = luaL_checkudata(L, 1, ECSM_HTTP_MT);

    if (c->curl == NULL)
        luaL_error(L, "attempt to use a closed http object");
    return c;
}

/* Frees everything the object holds; safe to run any number of times. */
static void release(ecsm_http *c)
{
    drop_handle(c);
    free(c->sockets);
    c->sockets = NULL;
    c->nsockets = c->sockets_cap = 0;
    curl_slist_free_all(c->call_headers);
    c->call_headers = NULL;
    curl_slist_free_all(c->base_headers);
    c->base_headers = NULL;
    free(c->applied.url);
    memset(&c->applied, 0, sizeof c->applied);
    buf_free(&c->body);
    buf_free(&c->head);
    c->close_pending = 0;
}

/* http:close(), __gc, __close: during a call (a finalizer closing the object
 * it interrupted) the buffers are in use, so the call closes it on its way
 * out instead. */
static int http_close(lua_State *L)
{
    ecsm_http *c = luaL_checkudata(L, 1, ECSM_HTTP_MT);

    if (c->busy)
        c->close_pending = 1;
    else
        release(c);
    return 0;
}

/* http:_buffers() -> the capacities of the body and header buffers, for
 * the specs to see that one big answer does not pin its memory. */
static int http_buffers(lua_State *L)
{
    ecsm_http *c = luaL_checkudata(L, 1, ECSM_HTTP_MT);

    lua_pushinteger(L, (lua_Integer)c->body.cap);
    lua_pushinteger(L, (lua_Integer)c->head.cap);
    return 2;
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
    SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, (void *)c);
    SET(CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    SET(CURLOPT_CLOSESOCKETDATA, (void *)c);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
#undef SET
    return rc;
}

/* Gives the object a new easy handle with the fixed options, and forgets
 * what the previous one had been given. Raises when libcurl cannot. */
static void new_handle(lua_State *L, ecsm_http *c)
{
    free(c->applied.url);
    memset(&c->applied, 0, sizeof c->applied);
    c->curl = curl_easy_init();
    if (c->curl == NULL)
        luaL_error(L, "curl_easy_init failed");
    note_process(c);
    if (set_fixed_options(c) != CURLE_OK) {
        curl_easy_cleanup(c->curl);
        c->curl = NULL;
        luaL_error(L, "libcurl refused a basic option");
    }
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
    c->defaults.max_header_bytes = ECSM_DEFAULT_MAX_HEADER_BYTES;
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

    new_handle(L, c);
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

static int is_tls_failure(CURLcode rc)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
#if LIBCURL_VERSION_NUM >= 0x074900
    case CURLE_SSL_CLIENTCERT:
#endif
        return 1;
    default:
        return 0;
    }
}

/*
 * The code of a failed transfer. TLS failures are invalid_argument: TLS
 * against an endpoint that speaks plain http (all of ECS's do) fails the
 * same way every time, so retrying cannot help. UNSUPPORTED_PROTOCOL can
 * only be the reply here (the scheme was checked before): no status line,
 * HTTP/0.9, a status or version that is not HTTP's. That is some other
 * server on the port, or a broken one: unreachable, like a reset.
 */
static const char *failure_code(CURLcode rc, const ecsm_http *c)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return ECSM_E_TIMEOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return ECSM_E_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        return c->too_large || c->headers_too_large ? ECSM_E_TOO_LARGE
                                                    : ECSM_E_UNREACHABLE;
    case CURLE_URL_MALFORMAT:
        return ECSM_E_INVALID_ARGUMENT;
    default:
        return is_tls_failure(rc) ? ECSM_E_INVALID_ARGUMENT
                                  : ECSM_E_UNREACHABLE;
    }
}

/* Pushes nil, message, code for a transfer that failed with rc. */
static int push_failure(lua_State *L, const ecsm_http *c, CURLcode rc,
                        const char *method, const char *url, int opts,
                        const ecsm_settings *s)
{
    const char *code = failure_code(rc, c);
    const char *why = c->error[0] ? c->error : curl_easy_strerror(rc);
    const char *label;

    push_label(L, opts, url);
    label = lua_tostring(L, -1);
    if (strcmp(code, ECSM_E_TOO_LARGE) == 0 && c->headers_too_large)
        return ecsm_fail(L, code, "%s %s: the response headers are larger "
                         "than max_header_bytes (%d)", method, label,
                         (int)s->max_header_bytes);
    if (strcmp(code, ECSM_E_TOO_LARGE) == 0)
        return ecsm_fail(L, code, "%s %s: the answer is larger than "
                         "max_bytes (%d)", method, label,
                         (int)s->max_bytes);
    if (is_tls_failure(rc))
        return ecsm_fail(L, code, "%s %s: TLS failed, the endpoint may not "
                         "speak TLS (ECS endpoints are plain http): %s",
                         method, label, why);
    if (rc == CURLE_UNSUPPORTED_PROTOCOL)
        return ecsm_fail(L, code, "%s %s: the reply is not HTTP: %s",
                         method, label, why);
    return ecsm_fail(L, code, "%s %s: %s", method, label, why);
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
 * c->head, its status in *status and the request's settings in *used. On
 * failure pushes nil, message, code and returns 3. Arguments: the url at
 * index url_arg, a body (or NULL), and an opts table at index opts (0 =
 * none). Runs only inside a guarded call (see guarded).
 */
static int perform(lua_State *L, ecsm_http *c, const char *method,
                   int url_arg, const char *body, size_t body_len, int opts,
                   long *status, ecsm_settings *used)
{
    size_t url_len;
    const char *url = lua_tolstring(L, url_arg, &url_len);
    ecsm_settings s = c->defaults;
    const char *bad;
    char bad_name[64] = "";
    CURLcode rc;
    CURL *h;

    /* Inherited through fork(): start again on connections of our own. */
    if (!in_own_process(c)) {
        drop_handle(c);
        new_handle(L, c);
    }
    h = c->curl;

    bad = read_settings(L, opts, &s);
    if (opts != 0) {
        lua_getfield(L, opts, "label");
        if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
            option_type_error(L, "label", "string");
        lua_pop(L, 1);
    }
    if (bad == NULL && (url_len != strlen(url) || !has_http_scheme(url)))
        bad = "the url must be an http:// or https:// url";
    if (bad == NULL && strpbrk(url, "\r\n") != NULL)
        bad = "the url has a line break in it";

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
    c->too_large = c->headers_too_large = c->out_of_memory = 0;
    c->header_total = 0;
    c->error[0] = '\0';
    c->limit = s.max_bytes;
    c->header_limit = s.max_header_bytes;

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
    if (rc != CURLE_OK)
        return push_failure(L, c, rc, method, url, opts, &s);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    /* libcurl refuses these itself; a status out of HTTP's three digits
     * must never pass for an answer. */
    if (*status < 100 || *status > 999) {
        push_label(L, opts, url);
        return ecsm_fail(L, ECSM_E_UNREACHABLE, "%s %s: the reply is not "
                         "HTTP: status %d", method, lua_tostring(L, -1),
                         (int)*status);
    }
    *used = s;
    return 0;
}

static char ascii_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch | 0x20) : ch;
}

/* The headers table at t has, for each repeated name, a list of its values
 * in order: joins each list into one string, "a, b, c". */
static void join_repeated(lua_State *L, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -1) == LUA_TTABLE) {
            int list = lua_gettop(L);
            int i, n = (int)ecsm_rawlen(L, list);
            luaL_Buffer b;

            lua_pushvalue(L, list - 1);
            luaL_buffinit(L, &b);
            for (i = 1; i <= n; i++) {
                if (i > 1)
                    luaL_addlstring(&b, ", ", 2);
                lua_rawgeti(L, list, i);
                luaL_addvalue(&b);
            }
            luaL_pushresult(&b);
            /* Assigning to a key that exists does not disturb lua_next. */
            lua_rawset(L, t);
        }
        lua_pop(L, 1);
    }
}

/*
 * Pushes a table of the response headers: lowercase name -> value, with
 * repeated headers joined by ", ". A second value for a name turns its entry
 * into a list that later ones are appended to, and the lists are joined at
 * the end: linear in the size of the headers however often a name repeats.
 */
static void push_headers(lua_State *L, const ecsm_buf *head)
{
    const char *p = head->data, *end = head->data + head->len;
    int lines = 0, repeated = 0, t;
    const char *q;

    for (q = p; q < end; q++)
        lines += *q == '\n';
    /* Every line but the status line and the blank one is a header. */
    lua_createtable(L, 0, lines > 2 ? lines - 2 : 0);
    t = lua_gettop(L);
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
        lua_rawget(L, t);
        switch (lua_type(L, -1)) {
        case LUA_TNIL:                           /* the first: the value */
            lua_pop(L, 1);
            lua_pushlstring(L, v, (size_t)(v_end - v));
            lua_rawset(L, t);
            break;
        case LUA_TSTRING:                        /* the second: a list */
            lua_createtable(L, 4, 0);
            lua_insert(L, -2);
            lua_rawseti(L, -2, 1);
            lua_pushlstring(L, v, (size_t)(v_end - v));
            lua_rawseti(L, -2, 2);
            lua_rawset(L, t);
            repeated = 1;
            break;
        default:                                 /* later ones: appended */
            lua_pushlstring(L, v, (size_t)(v_end - v));
            lua_rawseti(L, -2, (int)ecsm_rawlen(L, -2) + 1);
            lua_pop(L, 2);
            break;
        }
    }
    if (repeated)
        join_repeated(L, t);
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
    if (c->head.cap > ECSM_KEEP_HEADER_BUFFER)
        buf_free(&c->head);
}

/* ===================================================================== */
/* Guarded calls                                                          */
/* ===================================================================== */

/*
 * Runs the method's work (its upvalue, a C function that finds the method's
 * nargs arguments checked) with the object marked busy, under lua_pcall so
 * that the mark is cleared whatever happens; then closes the object if a
 * close() came meanwhile, frees buffers one big answer grew, and answers
 * the work's results or raises its error. The work gets copies of the
 * arguments (cheaper than moving them under it), so the object stays on
 * this function's stack until it is done with it.
 */
static int guarded(lua_State *L, ecsm_http *c, int nargs)
{
    int top = lua_gettop(L);
    int i, status;

    if (c->busy)
        return luaL_error(L, ECSM_HTTP_MT ": re-entered during a request "
                          "(by a finalizer or a metamethod)");
    /* The work is an upvalue and the copies fit in the LUA_MINSTACK slots
     * a C function has: nothing allocates, so no finalizer can run
     * between the check and the mark. */
    if (top < nargs) {
        lua_settop(L, nargs);          /* the missing ones are nil */
        top = nargs;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    for (i = 1; i <= nargs; i++)
        lua_pushvalue(L, i);
    c->busy = 1;
    status = lua_pcall(L, nargs, LUA_MULTRET, 0);
    c->busy = 0;
    if (c->close_pending)
        release(c);
    else
        trim_buffers(c);
    if (status != 0)
        return lua_error(L);
    return lua_gettop(L) - top;
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
    return 3;
}

/* The work of each method, which sees the arguments as the method got
 * them, checked. */
static int get_work(lua_State *L)
{
    ecsm_http *c = lua_touserdata(L, 1);

    return answer(L, c, "GET", 2, NULL, 0, lua_isnoneornil(L, 3) ? 0 : 3);
}

/* http:get(url [, opts]) -> body, status, headers | nil, message, code */
static int http_get(lua_State *L)
{
    ecsm_http *c = check_http(L);

    luaL_checkstring(L, 2);
    opts_index(L, 3);
    return guarded(L, c, 3);
}

static int request_work(lua_State *L)
{
    ecsm_http *c = lua_touserdata(L, 1);
    size_t body_len = 0;
    const char *body = lua_isnoneornil(L, 4) ? NULL
                                             : lua_tolstring(L, 4, &body_len);

    return answer(L, c, lua_tostring(L, 2), 3, body, body_len,
                  lua_isnoneornil(L, 5) ? 0 : 5);
}

/* http:request(method, url, body|nil [, opts]) -> as http:get */
static int http_request(lua_State *L)
{
    ecsm_http *c = check_http(L);
    const char *method = luaL_checkstring(L, 2);

    luaL_checkstring(L, 3);
    luaL_optstring(L, 4, NULL);
    opts_index(L, 5);
    luaL_argcheck(L, valid_method(method), 2,
                  "method must be an upper-case HTTP token");
    return guarded(L, c, 5);
}

static int get_json_work(lua_State *L)
{
    ecsm_http *c = lua_touserdata(L, 1);
    int opts = lua_isnoneornil(L, 3) ? 0 : 3;
    ecsm_json_opts jopts;
    long status = 0;
    ecsm_settings used;
    const char *bad;
    int failed;

    bad = ecsm_json_checkopts(L, opts, &jopts);
    if (bad != NULL) {
        push_label(L, opts, lua_tostring(L, 2));
        return ecsm_fail(L, ECSM_E_INVALID_ARGUMENT, "GET %s: %s",
                         lua_tostring(L, -1), bad);
    }
    failed = perform(L, c, "GET", 2, NULL, 0, opts, &status, &used);
    if (failed)
        return failed;
    if (!ecsm_json_decode(L, c->body.data ? c->body.data : "", c->body.len,
                          &jopts)) {
        int why = lua_gettop(L);
        push_label(L, opts, lua_tostring(L, 2));
        lua_pushnil(L);
        lua_pushfstring(L, "GET %s: %s", lua_tostring(L, why + 1),
                        lua_tostring(L, why));
        lua_pushliteral(L, ECSM_E_BAD_JSON);
        lua_pushinteger(L, (lua_Integer)status);
        push_headers(L, &c->head);
        return 5;
    }
    lua_pushinteger(L, (lua_Integer)status);
    push_response_headers(L, c, status, &used);
    return 3;
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

    luaL_checkstring(L, 2);
    opts_index(L, 3);
    return guarded(L, c, 3);
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
    {"_buffers", http_buffers},
    {NULL, NULL}
};

/* The guarded work of a method, by the method's name (see guarded). */
static const luaL_Reg http_methods_work[] = {
    {"get", get_work},
    {"get_json", get_json_work},
    {"request", request_work},
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

/* Pushes the methods' table: each method that has guarded work gets it as
 * its upvalue. */
static void register_methods(lua_State *L)
{
    const luaL_Reg *m, *w;

    lua_createtable(L, 0, (int)(sizeof http_methods / sizeof *http_methods));
    for (m = http_methods; m->name != NULL; m++) {
        for (w = http_methods_work; w->name != NULL; w++)
            if (strcmp(w->name, m->name) == 0)
                break;
        if (w->name != NULL) {
            lua_pushcfunction(L, w->func);
            lua_pushcclosure(L, m->func, 1);
        } else {
            lua_pushcfunction(L, m->func);
        }
        lua_setfield(L, -2, m->name);
    }
}

/* Pushes a table of the options' upper bounds, for the Lua layer's schema. */
static void push_limits(lua_State *L)
{
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, ECSM_MAX_MAX_DEPTH);
    lua_setfield(L, -2, "max_depth");
    lua_pushnumber(L, (lua_Number)ECSM_MAX_SECONDS);
    lua_setfield(L, -2, "timeout");
    lua_pushnumber(L, (lua_Number)ECSM_MAX_SECONDS);
    lua_setfield(L, -2, "connect_timeout");
    lua_pushinteger(L, ECSM_MAX_MAX_BYTES);
    lua_setfield(L, -2, "max_bytes");
    lua_pushinteger(L, ECSM_MAX_MAX_HEADER_BYTES);
    lua_setfield(L, -2, "max_header_bytes");
}

void ecsm_http_register(lua_State *L)
{
    luaL_newmetatable(L, ECSM_HTTP_MT);
    ecsm_setfuncs(L, http_metamethods);
    register_methods(L);
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
    lua_pushinteger(L, ECSM_DEFAULT_MAX_HEADER_BYTES);
    lua_setfield(L, -2, "DEFAULT_MAX_HEADER_BYTES");
    push_limits(L);
    lua_setfield(L, -2, "LIMITS");
}
