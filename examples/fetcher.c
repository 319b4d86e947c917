/* fetcher: download URLs concurrently, at most N at a time.
 *
 *   fetcher [-c CONCURRENCY] [-o DIR] URL...
 *
 * Fetches every http://HOST[:PORT]/PATH URL with HTTP/1.1 GET (one
 * connection per URL), at most CONCURRENCY (default 4) at once: each
 * download is a task, and a semaphore holds the others back. With -o the
 * bodies are saved as DIR/<last path component> (index.html for "/").
 * Prints one line per URL and a summary; exits 1 if any download failed
 * (error, or a status other than 2xx). */
#include <errno.h>
#include <greenring.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define FETCH_HEAD 16384

struct fetch_job {
    const char *url;
    const char *out_dir;
    gr_sem *slots;
    _Atomic int *active, *max_active;
    int status;
    long long bytes;
    int err;
};

struct fetch_url {
    char host[256];
    uint16_t port;
    const char *path;
};

/* http://host[:port]/path, host may be [v6]. */
static int fetch_parse_url(const char *url, struct fetch_url *u)
{
    if (strncmp(url, "http://", 7) != 0)
        return -EINVAL;
    const char *h = url + 7, *slash = strchr(h, '/');
    u->path = slash ? slash : "/";
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    const char *colon = NULL;
    for (size_t i = hl; i-- > 0;) {
        if (h[i] == ':') {
            colon = h + i;
            break;
        }
        if (h[i] == ']')
            break;
    }
    size_t name_len = colon ? (size_t)(colon - h) : hl;
    if (name_len == 0 || name_len >= sizeof(u->host))
        return -EINVAL;
    if (h[0] == '[' && name_len > 2 && h[name_len - 1] == ']')
        h++, name_len -= 2;
    memcpy(u->host, h, name_len);
    u->host[name_len] = '\0';
    u->port = colon ? (uint16_t)atoi(colon + 1) : 80;
    return 0;
}

static long long fetch_content_length(const char *head, size_t len)
{
    const char *end = head + len;
    for (const char *p = head; p < end;) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            break;
        if ((size_t)(e - p) > 15 && strncasecmp(p, "content-length:", 15) == 0)
            return strtoll(p + 15, NULL, 10);
        p = e + 1;
    }
    return -1; /* read to EOF */
}

static int fetch_open_output(struct fetch_job *j, const struct fetch_url *u, gr_file *f)
{
    const char *base = strrchr(u->path, '/');
    base = base && base[1] ? base + 1 : "index.html";
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", j->out_dir, base);
    return gr_file_open(f, path, "w");
}

/* Read the body (len bytes, or to EOF if len < 0) into the file, if any. */
static int fetch_body(struct fetch_job *j, gr_stream *s, long long len, gr_file *f)
{
    char buf[16384];
    while (len != 0) {
        size_t want = len < 0 || len > (long long)sizeof(buf) ? sizeof(buf) : (size_t)len;
        ssize_t n = gr_stream_read(s, buf, want);
        if (n == 0)
            return len < 0 ? 0 : -ENODATA; /* EOF before the announced length */
        if (n < 0)
            return (int)n;
        if (f && gr_file_write(f, buf, (size_t)n) < 0)
            return -EIO;
        j->bytes += n;
        if (len > 0)
            len -= n;
    }
    return 0;
}

static int fetch_one(struct fetch_job *j)
{
    struct fetch_url u;
    if (fetch_parse_url(j->url, &u) < 0)
        return -EINVAL;
    gr_stream *s;
    int rc = gr_open_connection(&s, u.host, u.port, NULL);
    if (rc < 0)
        return rc;
    char req[2048], head[FETCH_HEAD];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: greenring-fetcher\r\n"
                     "Connection: close\r\n\r\n",
                     u.path, u.host);
    ssize_t hl = (size_t)n < sizeof(req) ? gr_stream_write(s, req, (size_t)n) : -ENAMETOOLONG;
    if (hl == 0)
        hl = gr_stream_readuntil(s, "\r\n\r\n", 4, head, sizeof(head) - 1);
    if (hl > 12 && memcmp(head, "HTTP/1.", 7) == 0) {
        head[hl] = '\0';
        j->status = atoi(head + 9);
        gr_file f = {0};
        int save = j->out_dir && j->status / 100 == 2;
        rc = save ? fetch_open_output(j, &u, &f) : 0;
        if (rc == 0)
            rc = fetch_body(j, s, fetch_content_length(head, (size_t)hl), save ? &f : NULL);
        if (save && rc != -ENOENT)
            gr_file_close(&f);
    } else {
        rc = hl < 0 ? (int)hl : -EPROTO;
    }
    gr_stream_close(s);
    return rc;
}

static int fetch_task(void *arg)
{
    struct fetch_job *j = arg;
    int rc = gr_sem_acquire(j->slots);
    if (rc < 0)
        return rc;
    int now = atomic_fetch_add(j->active, 1) + 1;
    int max = atomic_load(j->max_active);
    while (now > max && !atomic_compare_exchange_weak(j->max_active, &max, now))
        ;
    j->err = fetch_one(j);
    atomic_fetch_sub(j->active, 1);
    gr_sem_release(j->slots);
    return 0; /* failures are reported per URL, they do not stop the others */
}

struct fetch_args {
    char **urls;
    int n;
    unsigned concurrency;
    const char *out_dir;
};

static int fetch_main(void *arg)
{
    struct fetch_args *a = arg;
    gr_sem slots;
    gr_sem_init(&slots, a->concurrency);
    _Atomic int active = 0, max_active = 0;
    struct fetch_job *jobs = calloc((size_t)a->n, sizeof(*jobs));
    gr_group *g;
    if (!jobs || gr_group_create(&g) < 0)
        return 1;
    for (int i = 0; i < a->n; i++) {
        jobs[i] = (struct fetch_job){.url = a->urls[i], .out_dir = a->out_dir, .slots = &slots,
                                     .active = &active, .max_active = &max_active};
        gr_group_spawn(g, fetch_task, &jobs[i], NULL);
    }
    gr_group_wait(g);
    gr_group_destroy(g);
    int failed = 0;
    long long total = 0;
    for (int i = 0; i < a->n; i++) {
        struct fetch_job *j = &jobs[i];
        if (j->err < 0) {
            printf("%s: error: %s\n", j->url, strerror(-j->err));
            failed++;
        } else {
            printf("%s: %d, %lld bytes\n", j->url, j->status, j->bytes);
            failed += j->status / 100 != 2;
        }
        total += j->bytes;
    }
    printf("fetched %d URLs (%d failed), %lld bytes, at most %d at once\n", a->n, failed, total,
           atomic_load(&max_active));
    free(jobs);
    gr_sem_destroy(&slots);
    return failed ? 1 : 0;
}

static void fetch_usage(void)
{
    fprintf(stderr, "usage: fetcher [-c CONCURRENCY] [-o DIR] URL...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct fetch_args a = {.concurrency = 4};
    int opt;
    while ((opt = getopt(argc, argv, "c:o:")) != -1) {
        switch (opt) {
        case 'c': a.concurrency = (unsigned)atoi(optarg); break;
        case 'o': a.out_dir = optarg; break;
        default: fetch_usage();
        }
    }
    if (optind == argc || a.concurrency == 0)
        fetch_usage();
    a.urls = argv + optind;
    a.n = argc - optind;
    int rc = gr_run(fetch_main, &a, NULL);
    if (rc < 0)
        fprintf(stderr, "fetcher: %s\n", strerror(-rc));
    return rc == 0 ? 0 : 1;
}
