/* http_server: an HTTP/1.1 server with keep-alive and pipelining.
 *
 *   http_server [-H HOST] [-p PORT] [-d DIR] [-w WORKERS]
 *
 * Routes (GET and HEAD):
 *   /  and  /hello     "Hello, World!\n" (text/plain)
 *   /static/PATH       the file DIR/PATH (default DIR: the current
 *                      directory); paths with ".." are refused
 * Anything else is 404; other methods 405. Requests may carry a body
 * (Content-Length; it is read and ignored); chunked request bodies get 501.
 * Pipelined requests are answered in order, and their responses go out
 * together. Listens on HOST:PORT (default 127.0.0.1:8080; port 0 picks a
 * free one) and prints "listening on ADDRESS". SIGINT or SIGTERM: stop
 * accepting, give open connections 2 s, exit. */
#include <errno.h>
#include <greenring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HTTP_MAX_HEAD 8192
#define HTTP_SMALL_FILE ((size_t)64 * 1024)

struct http_args {
    const char *host;
    const char *dir;
    unsigned port;
};

struct http_req {
    const char *method, *target;
    size_t method_len, target_len;
    int minor; /* HTTP/1.<minor> */
    int keep_alive;
    int chunked;
    long long content_length;
};

/* The Date header, formatted at most once a second per connection. */
struct http_date {
    time_t sec;
    char text[40];
};

static const char *http_date_now(struct http_date *d)
{
    time_t now = time(NULL);
    if (now != d->sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(d->text, sizeof(d->text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        d->sec = now;
    }
    return d->text;
}

/* ---- parsing ----------------------------------------------------------- */

static int http_header_is(const char *line, size_t len, const char *name, const char **value,
                          size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
        return 0;
    const char *v = line + n + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *value = v;
    *vlen = (size_t)(end - v);
    return 1;
}

static void http_parse_header(struct http_req *r, const char *line, size_t len)
{
    const char *v;
    size_t vl;
    if (http_header_is(line, len, "connection", &v, &vl)) {
        if (vl == 5 && strncasecmp(v, "close", 5) == 0)
            r->keep_alive = 0;
        else if (vl == 10 && strncasecmp(v, "keep-alive", 10) == 0)
            r->keep_alive = 1;
    } else if (http_header_is(line, len, "content-length", &v, &vl)) {
        r->content_length = vl && vl < 19 ? strtoll(v, NULL, 10) : -1;
    } else if (http_header_is(line, len, "transfer-encoding", &v, &vl)) {
        r->chunked = 1;
    }
}

/* Parse the head (request line + headers, ending in an empty line).
 * 0, or -1 for a malformed request. */
static int http_parse(struct http_req *r, const char *head, size_t len)
{
    const char *end = head + len, *eol = memchr(head, '\r', len);
    const char *sp1 = eol ? memchr(head, ' ', (size_t)(eol - head)) : NULL;
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp2 || eol - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        (sp2[8] != '0' && sp2[8] != '1'))
        return -1;
    *r = (struct http_req){.method = head, .method_len = (size_t)(sp1 - head),
                           .target = sp1 + 1, .target_len = (size_t)(sp2 - sp1 - 1),
                           .minor = sp2[8] - '0'};
    r->keep_alive = r->minor == 1;
    for (const char *line = eol + 2; line < end;) {
        const char *e = memchr(line, '\r', (size_t)(end - line));
        if (!e || e == line)
            break;
        http_parse_header(r, line, (size_t)(e - line));
        line = e + 2;
    }
    return r->content_length < 0 ? -1 : 0;
}

/* ---- responses --------------------------------------------------------- */

/* A response head is assembled by appending (snprintf showed up in the
 * profile at tens of thousands of requests per second). */
struct http_out {
    char *p;
    size_t len, cap;
};

static void http_put(struct http_out *o, const char *s, size_t n)
{
    if (o->len + n <= o->cap)
        memcpy(o->p + o->len, s, n);
    o->len += n; /* past cap: the caller sees the overflow */
}

static void http_puts(struct http_out *o, const char *s)
{
    http_put(o, s, strlen(s));
}

static void http_putnum(struct http_out *o, long long v)
{
    char digits[24];
    int n = 0;
    do
        digits[sizeof(digits) - 1 - n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    http_put(o, digits + sizeof(digits) - n, (size_t)n);
}

/* Status line and headers into buf; returns the length. */
static int http_head(char *buf, size_t size, int status, const char *reason, const char *type,
                     long long length, const struct http_req *r, struct http_date *d,
                     const char *extra)
{
    struct http_out o = {.p = buf, .cap = size};
    http_puts(&o, "HTTP/1.1 ");
    http_putnum(&o, status);
    http_puts(&o, " ");
    http_puts(&o, reason);
    http_puts(&o, "\r\nServer: greenring\r\nDate: ");
    http_puts(&o, http_date_now(d));
    http_puts(&o, "\r\nContent-Type: ");
    http_puts(&o, type);
    http_puts(&o, "\r\nContent-Length: ");
    http_putnum(&o, length);
    http_puts(&o, "\r\n");
    if (!r->keep_alive)
        http_puts(&o, "Connection: close\r\n");
    else if (r->minor == 0)
        http_puts(&o, "Connection: keep-alive\r\n");
    if (extra)
        http_puts(&o, extra);
    http_puts(&o, "\r\n");
    return o.len <= size ? (int)o.len : -1;
}

static int http_simple(gr_stream *s, const struct http_req *r, struct http_date *d, int status,
                       const char *reason, const char *body, const char *extra)
{
    char buf[512];
    size_t blen = strlen(body);
    int n = http_head(buf, sizeof(buf), status, reason, "text/plain", (long long)blen, r, d, extra);
    if (n < 0)
        return -EOVERFLOW;
    int head_only = r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
    if (!head_only && (size_t)n + blen < sizeof(buf)) {
        memcpy(buf + n, body, blen);
        n += (int)blen;
    }
    return gr_stream_write(s, buf, (size_t)n);
}

static const char *http_mime(const char *path)
{
    static const char *const types[][2] = {
        {".html", "text/html"}, {".txt", "text/plain"}, {".md", "text/plain"}, {".css", "text/css"},
        {".js", "text/javascript"}, {".json", "application/json"}, {".png", "image/png"},
        {".jpg", "image/jpeg"}, {".svg", "image/svg+xml"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i][0]) == 0)
            return types[i][1];
    return "application/octet-stream";
}

/* No "..", no empty or absolute components: the file stays under DIR. */
static int http_safe_path(const char *p, size_t len)
{
    if (len == 0 || p[0] == '/')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\0' || p[i] == '?' || p[i] == '%')
            return 0;
        if (p[i] == '.' && i + 1 < len && p[i + 1] == '.' && (i == 0 || p[i - 1] == '/') &&
            (i + 2 == len || p[i + 2] == '/'))
            return 0;
    }
    return 1;
}

static int http_send_file(gr_stream *s, gr_file *f, size_t size)
{
    if (size <= HTTP_SMALL_FILE) {
        char buf[16384]; /* task stacks are small: copy in pieces */
        for (size_t off = 0; off < size;) {
            ssize_t n = gr_file_pread(f, buf, sizeof(buf), (off_t)off);
            if (n <= 0)
                return n < 0 ? (int)n : -EIO; /* the file shrank */
            int rc = gr_stream_write(s, buf, (size_t)n);
            if (rc < 0)
                return rc;
            off += (size_t)n;
        }
        return 0;
    }
    /* Large: the headers first, then splice from the file to the socket. */
    int rc = gr_stream_flush(s);
    for (size_t off = 0; rc == 0 && off < size;) {
        ssize_t n = gr_sendfile(gr_stream_fd(s), gr_file_fd(f), (off_t)off, size - off);
        if (n <= 0)
            return n < 0 ? (int)n : -EIO;
        off += (size_t)n;
    }
    return rc;
}

static int http_static(gr_stream *s, const struct http_req *r, struct http_date *d,
                       const char *dir, const char *rel, size_t rel_len)
{
    char path[1024];
    if (!http_safe_path(rel, rel_len) ||
        (size_t)snprintf(path, sizeof(path), "%s/%.*s", dir, (int)rel_len, rel) >= sizeof(path))
        return http_simple(s, r, d, 404, "Not Found", "not found\n", NULL);
    gr_file f = {0};
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || gr_file_open(&f, path, "r") < 0)
        return http_simple(s, r, d, 404, "Not Found", "not found\n", NULL);
    char head[512];
    int n = http_head(head, sizeof(head), 200, "OK", http_mime(path), (long long)st.st_size, r, d,
                      NULL);
    int rc = n < 0 ? -EOVERFLOW : gr_stream_write(s, head, (size_t)n);
    int head_only = r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
    if (rc == 0 && !head_only)
        rc = http_send_file(s, &f, (size_t)st.st_size);
    gr_file_close(&f);
    return rc;
}

static int http_route(gr_stream *s, const struct http_req *r, struct http_date *d,
                      const char *dir)
{
    int get = r->method_len == 3 && memcmp(r->method, "GET", 3) == 0;
    int head = r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
    if (!get && !head)
        return http_simple(s, r, d, 405, "Method Not Allowed", "method not allowed\n",
                           "Allow: GET, HEAD\r\n");
    const char *t = r->target;
    size_t tl = r->target_len;
    if ((tl == 1 && t[0] == '/') || (tl == 6 && memcmp(t, "/hello", 6) == 0))
        return http_simple(s, r, d, 200, "OK", "Hello, World!\n", NULL);
    if (tl > 8 && memcmp(t, "/static/", 8) == 0)
        return http_static(s, r, d, dir, t + 8, tl - 8);
    return http_simple(s, r, d, 404, "Not Found", "not found\n", NULL);
}

/* Read and drop a request body. */
static int http_skip_body(gr_stream *s, long long len)
{
    char buf[4096];
    while (len > 0) {
        size_t n = len > (long long)sizeof(buf) ? sizeof(buf) : (size_t)len;
        ssize_t r = gr_stream_readexactly(s, buf, n);
        if (r < 0)
            return (int)r;
        len -= (long long)n;
    }
    return 0;
}

/* One connection: requests until the client closes or asks to. */
static int http_conn(gr_stream *s, void *arg)
{
    const char *dir = arg;
    struct http_date date = {0};
    char head[HTTP_MAX_HEAD];
    for (;;) {
        ssize_t n = gr_stream_readuntil(s, "\r\n\r\n", 4, head, sizeof(head));
        if (n == -ENODATA) /* the client closed (between requests, or cut one off) */
            return 0;
        struct http_req r = {.keep_alive = 0, .minor = 1};
        if (n == -EMSGSIZE) {
            http_simple(s, &r, &date, 431, "Request Header Fields Too Large", "too large\n", NULL);
            return 0;
        }
        if (n < 0)
            return (int)n;
        if (http_parse(&r, head, (size_t)n) < 0) {
            r.keep_alive = 0;
            http_simple(s, &r, &date, 400, "Bad Request", "bad request\n", NULL);
            return 0;
        }
        if (r.chunked) {
            r.keep_alive = 0;
            http_simple(s, &r, &date, 501, "Not Implemented", "chunked bodies unsupported\n", NULL);
            return 0;
        }
        int rc = http_skip_body(s, r.content_length);
        if (rc == 0)
            rc = http_route(s, &r, &date, dir);
        if (rc < 0 || !r.keep_alive)
            return rc; /* the server flushes and closes */
        /* Pipelined requests already here: answer them before waiting for
         * the socket, so their responses leave together. */
        if (gr_stream_buffered(s) == 0 && (rc = gr_stream_drain(s)) < 0)
            return rc;
    }
}

static int http_serve(void *arg)
{
    struct http_args *a = arg;
    gr_server *srv;
    gr_server_opts opts = {0};
    int rc = gr_start_server(&srv, a->host, (uint16_t)a->port, http_conn, (void *)a->dir, &opts);
    if (rc < 0) {
        fprintf(stderr, "http_server: cannot listen: %s\n", strerror(-rc));
        return 1;
    }
    gr_addr addr;
    char text[GR_ADDR_STRLEN];
    gr_server_addr(srv, &addr);
    gr_addr_format(&addr, text, sizeof(text));
    printf("listening on %s\n", text);
    fflush(stdout);
    gr_server_wait(srv); /* until SIGINT/SIGTERM cancels main */
    gr_server_close(srv, (int64_t)2 * 1000 * 1000 * 1000);
    return 0;
}

static void http_usage(void)
{
    fprintf(stderr, "usage: http_server [-H HOST] [-p PORT] [-d DIR] [-w WORKERS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct http_args a = {.host = "127.0.0.1", .port = 8080, .dir = "."};
    gr_config cfg = {.graceful_shutdown = 1};
    int opt;
    while ((opt = getopt(argc, argv, "H:p:d:w:")) != -1) {
        switch (opt) {
        case 'H': a.host = optarg; break;
        case 'p': a.port = (unsigned)atoi(optarg); break;
        case 'd': a.dir = optarg; break;
        case 'w': cfg.workers = (unsigned)atoi(optarg); break;
        default: http_usage();
        }
    }
    if (optind != argc || a.port > 65535)
        http_usage();
    int rc = gr_run(http_serve, &a, &cfg);
    if (rc < 0)
        fprintf(stderr, "http_server: %s\n", strerror(-rc));
    return rc == 0 ? 0 : 1;
}
