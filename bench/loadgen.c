/* loadgen: a TCP / Unix-socket load generator for echo servers.
 *
 *   loadgen [-H HOST] [-p PORT] [-u PATH] [-c CONNS] [-n INFLIGHT] [-s SIZE]
 *           [-t THREADS] [-d SECONDS] [-w WARMUP] [-P SERVER_PID] [-l LABEL]
 *
 * Opens CONNS connections (spread over THREADS epoll threads), keeps
 * INFLIGHT messages of SIZE bytes in flight on each (1 = ping-pong), and
 * after WARMUP seconds measures for SECONDS: messages per second and the
 * round-trip latency of every message (time from queueing it to receiving
 * its last byte back) in a log-linear histogram (~3% resolution). With -P
 * it also samples the server process's CPU time over the same window (the
 * sum of /proc/PID/task/+/schedstat, user + system, nanoseconds) and
 * reports it per message.
 *
 * Loopback only: the host must be a loopback address (127.0.0.0/8, ::1,
 * localhost) or a Unix socket. Every run is bounded by WARMUP + SECONDS
 * (+ connection set-up, itself bounded by a 10 s timeout).
 *
 * Prints a human-readable summary and one machine-readable line:
 *   RESULT label=L conns=C inflight=N size=S msgs=M secs=T rate=R p50_us=..
 *          p99_us=.. p999_us=.. max_us=.. server_cpu_ns_per_msg=..
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SUB_BITS 5
#define SUB (1u << SUB_BITS)
#define NBUCKETS (64 * SUB)
#define RXBUF (256 * 1024)

enum phase { PH_WARMUP, PH_MEASURE, PH_STOP };

struct hist {
    uint64_t count[NBUCKETS];
    uint64_t n, max;
};

struct conn {
    int fd;
    int64_t *ts; /* send times of the messages in flight (a ring) */
    unsigned head, inflight;
    size_t rx_partial; /* bytes of the oldest message received so far */
    size_t tx_left;    /* bytes queued and not yet written */
    int want_out;
};

struct thread {
    pthread_t th;
    int ep;
    struct conn *conns;
    unsigned nconns;
    struct hist hist;
    uint64_t msgs;
    int failed;
    char *rx, *tx;
};

static struct {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    unsigned conns, inflight, threads;
    size_t size;
    double secs, warmup;
    int server_pid;
    const char *label;
} cfg = {.conns = 1, .inflight = 1, .threads = 1, .size = 64, .secs = 5, .warmup = 1,
         .label = "run"};

static _Atomic int phase = PH_WARMUP;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- histogram ------------------------------------------------------ */

static unsigned bucket_of(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= SUB_BITS */
    unsigned m = (unsigned)(v >> (e - SUB_BITS)) & (SUB - 1);
    return (e - SUB_BITS + 1) * SUB + m;
}

static uint64_t bucket_mid(unsigned idx)
{
    if (idx < SUB)
        return idx;
    unsigned e = idx / SUB + SUB_BITS - 1, m = idx % SUB;
    uint64_t lo = (uint64_t)(SUB + m) << (e - SUB_BITS);
    uint64_t width = (uint64_t)1 << (e - SUB_BITS);
    return lo + width / 2;
}

static void hist_add(struct hist *h, uint64_t v)
{
    h->count[bucket_of(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

static uint64_t hist_pct(const struct hist *h, double p)
{
    uint64_t want = (uint64_t)(p * (double)h->n);
    if (want >= h->n)
        want = h->n ? h->n - 1 : 0;
    uint64_t seen = 0;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        seen += h->count[i];
        if (seen > want)
            return bucket_mid(i);
    }
    return h->max;
}

/* ---- server CPU time ------------------------------------------------ */

/* Total on-CPU time of every thread of pid, in ns (0 if unavailable). */
static uint64_t server_cpu_ns(int pid)
{
    if (pid <= 0)
        return 0;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p2[320];
        snprintf(p2, sizeof(p2), "/proc/%d/task/%s/schedstat", pid, e->d_name);
        FILE *f = fopen(p2, "r");
        unsigned long long run = 0;
        if (f) {
            if (fscanf(f, "%llu", &run) == 1)
                total += run;
            fclose(f);
        }
    }
    closedir(d);
    return total;
}

/* ---- connections ---------------------------------------------------- */

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_UNIX)
        return 1;
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return 0;
}

static int open_conn(void)
{
    int fd = socket(cfg.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, (struct sockaddr *)&cfg.addr, cfg.addrlen) < 0)
        die("connect");
    int one = 1;
    if (cfg.addr.ss_family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void set_out(struct thread *t, struct conn *c, int on)
{
    if (c->want_out == on)
        return;
    c->want_out = on;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(t->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void flush_tx(struct thread *t, struct conn *c)
{
    while (c->tx_left) {
        size_t n = c->tx_left < RXBUF ? c->tx_left : RXBUF;
        ssize_t w = write(c->fd, t->tx, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            break;
        if (w <= 0) {
            t->failed = 1;
            return;
        }
        c->tx_left -= (size_t)w;
    }
    set_out(t, c, c->tx_left > 0);
}

static void queue_msg(struct conn *c, int64_t now)
{
    c->ts[(c->head + c->inflight) % cfg.inflight] = now;
    c->inflight++;
    c->tx_left += cfg.size;
}

static void on_readable(struct thread *t, struct conn *c, int measuring)
{
    for (;;) {
        ssize_t n = read(c->fd, t->rx, RXBUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            t->failed = 1;
            return;
        }
        int64_t now = now_ns();
        size_t got = (size_t)n + c->rx_partial;
        while (got >= cfg.size && c->inflight) {
            got -= cfg.size;
            int64_t lat = now - c->ts[c->head];
            c->head = (c->head + 1) % cfg.inflight;
            c->inflight--;
            if (measuring) {
                hist_add(&t->hist, (uint64_t)lat);
                t->msgs++;
            }
            queue_msg(c, now);
        }
        c->rx_partial = got;
        if ((size_t)n < RXBUF)
            break;
    }
    flush_tx(t, c);
}

static void *thread_main(void *arg)
{
    struct thread *t = arg;
    struct epoll_event evs[256];
    int64_t start = now_ns();
    for (unsigned i = 0; i < t->nconns; i++) {
        struct conn *c = &t->conns[i];
        for (unsigned k = 0; k < cfg.inflight; k++)
            queue_msg(c, start);
        flush_tx(t, c);
    }
    int ph;
    while ((ph = atomic_load_explicit(&phase, memory_order_relaxed)) != PH_STOP && !t->failed) {
        int n = epoll_wait(t->ep, evs, 256, 50);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(t, c, ph == PH_MEASURE);
            else if (evs[i].events & EPOLLOUT)
                flush_tx(t, c);
        }
    }
    return NULL;
}

/* ---- set-up and report ---------------------------------------------- */

static void parse_addr(const char *host, const char *port, const char *upath)
{
    if (upath) {
        struct sockaddr_un *un = (struct sockaddr_un *)&cfg.addr;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof(un->sun_path), "%s", upath);
        cfg.addrlen = sizeof(*un);
        return;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int e = getaddrinfo(host, port, &hints, &res);
    if (e) {
        fprintf(stderr, "loadgen: %s: %s\n", host, gai_strerror(e));
        exit(1);
    }
    memcpy(&cfg.addr, res->ai_addr, res->ai_addrlen);
    cfg.addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    if (!is_loopback(&cfg.addr)) {
        fprintf(stderr, "loadgen: %s is not a loopback address (loopback only)\n", host);
        exit(2);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen [-H HOST] [-p PORT] [-u PATH] [-c CONNS] [-n INFLIGHT] "
                    "[-s SIZE] [-t THREADS] [-d SECONDS] [-w WARMUP] [-P PID] [-l LABEL]\n");
    exit(2);
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void report(struct thread *th, double secs, uint64_t cpu_ns)
{
    struct hist *h = calloc(1, sizeof(*h));
    uint64_t msgs = 0;
    for (unsigned i = 0; i < cfg.threads; i++) {
        for (unsigned b = 0; b < NBUCKETS; b++)
            h->count[b] += th[i].hist.count[b];
        h->n += th[i].hist.n;
        if (th[i].hist.max > h->max)
            h->max = th[i].hist.max;
        msgs += th[i].msgs;
    }
    double rate = (double)msgs / secs;
    double cpu_per = msgs && cpu_ns ? (double)cpu_ns / (double)msgs : 0;
    printf("%s: %u conns x %u in flight x %zu B: %.0f msg/s, latency p50 %.1f us, p99 %.1f us, "
           "p99.9 %.1f us, max %.1f us",
           cfg.label, cfg.conns, cfg.inflight, cfg.size, rate, hist_pct(h, 0.50) / 1e3,
           hist_pct(h, 0.99) / 1e3, hist_pct(h, 0.999) / 1e3, (double)h->max / 1e3);
    if (cpu_ns)
        printf(", server CPU %.0f ns/msg (%.2f cores)", cpu_per, (double)cpu_ns / 1e9 / secs);
    printf("\nRESULT label=%s conns=%u inflight=%u size=%zu msgs=%llu secs=%.3f rate=%.0f "
           "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f server_cpu_ns_per_msg=%.0f\n",
           cfg.label, cfg.conns, cfg.inflight, cfg.size, (unsigned long long)msgs, secs, rate,
           hist_pct(h, 0.50) / 1e3, hist_pct(h, 0.99) / 1e3, hist_pct(h, 0.999) / 1e3,
           (double)h->max / 1e3, cpu_per);
    free(h);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "7000", *upath = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "H:p:u:c:n:s:t:d:w:P:l:")) != -1) {
        switch (opt) {
        case 'H': host = optarg; break;
        case 'p': port = optarg; break;
        case 'u': upath = optarg; break;
        case 'c': cfg.conns = (unsigned)atoi(optarg); break;
        case 'n': cfg.inflight = (unsigned)atoi(optarg); break;
        case 's': cfg.size = (size_t)atol(optarg); break;
        case 't': cfg.threads = (unsigned)atoi(optarg); break;
        case 'd': cfg.secs = atof(optarg); break;
        case 'w': cfg.warmup = atof(optarg); break;
        case 'P': cfg.server_pid = atoi(optarg); break;
        case 'l': cfg.label = optarg; break;
        default: usage();
        }
    }
    if (optind != argc || !cfg.conns || !cfg.inflight || !cfg.size || !cfg.threads ||
        cfg.secs <= 0 || cfg.secs > 600 || cfg.warmup < 0 || cfg.warmup > 60)
        usage();
    if (cfg.threads > cfg.conns)
        cfg.threads = cfg.conns;
    parse_addr(host, port, upath);
    alarm((unsigned)(cfg.secs + cfg.warmup) + 30); /* hard bound on the run */

    struct thread *th = calloc(cfg.threads, sizeof(*th));
    for (unsigned i = 0; i < cfg.threads; i++) {
        struct thread *t = &th[i];
        t->nconns = cfg.conns / cfg.threads + (i < cfg.conns % cfg.threads);
        t->conns = calloc(t->nconns, sizeof(*t->conns));
        t->rx = malloc(RXBUF);
        t->tx = malloc(RXBUF);
        memset(t->tx, 'x', RXBUF);
        if ((t->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
            die("epoll_create1");
        for (unsigned k = 0; k < t->nconns; k++) {
            struct conn *c = &t->conns[k];
            c->fd = open_conn();
            c->ts = calloc(cfg.inflight, sizeof(*c->ts));
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            if (epoll_ctl(t->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
                die("epoll_ctl");
        }
    }
    for (unsigned i = 0; i < cfg.threads; i++)
        pthread_create(&th[i].th, NULL, thread_main, &th[i]);
    sleep_s(cfg.warmup);
    uint64_t cpu0 = server_cpu_ns(cfg.server_pid);
    int64_t t0 = now_ns();
    atomic_store(&phase, PH_MEASURE);
    sleep_s(cfg.secs);
    atomic_store(&phase, PH_STOP);
    int64_t t1 = now_ns();
    uint64_t cpu1 = server_cpu_ns(cfg.server_pid);
    int failed = 0;
    for (unsigned i = 0; i < cfg.threads; i++) {
        pthread_join(th[i].th, NULL);
        failed |= th[i].failed;
    }
    if (failed) {
        fprintf(stderr, "loadgen: a connection failed (closed or reset by the server)\n");
        return 1;
    }
    report(th, (double)(t1 - t0) / 1e9, cpu1 > cpu0 ? cpu1 - cpu0 : 0);
    return 0;
}
