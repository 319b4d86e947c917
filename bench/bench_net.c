/* greenring network benchmarks (in process; the server comparisons with
 * separate processes are bench/net_compare.sh):
 *
 *   net_stream_pingpong   64 B round trip between two tasks over a Unix
 *                         stream socketpair, through gr_stream (1 worker).
 *                         Counter vs_raw_syscalls: the same four transfers
 *                         as plain non-blocking send/recv calls on one
 *                         thread (no waiting: the floor of moving the bytes).
 *   net_stream_throughput 64 KiB writes through a stream to a reader task
 *                         on the other worker; items/s = bytes/s.
 *   net_readline          100-byte lines parsed with gr_stream_readline
 *                         while a writer task feeds them in 64 KiB batches.
 *   net_connect_accept    TCP connect + 1-byte echo + close against a
 *                         gr_server on loopback (2 workers).
 *
 * Each benchmark runs gr_run inside the benchmark function and its loop in
 * the main task, as bench_core.c does. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "greenring.h"

#define NET_BASELINE_ROUNDS 20000

/* =====================================================================
 * net_stream_pingpong
 * ===================================================================== */

struct pp {
    gr_bench_state *st;
    gr_stream *a, *b;
    double raw_ns, gr_ns;
    int failed;
};

/* The floor: 64 B each way through a socketpair with plain system calls,
 * on one thread (the data is always there, nothing waits). */
static double raw_round_trip_ns(void)
{
    int s[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, s) < 0)
        return -1;
    char buf[64] = {0};
    int64_t t0 = gr_bench_now_ns();
    for (int i = 0; i < NET_BASELINE_ROUNDS; i++) {
        if (send(s[0], buf, 64, 0) != 64 || recv(s[1], buf, 64, 0) != 64 ||
            send(s[1], buf, 64, 0) != 64 || recv(s[0], buf, 64, 0) != 64)
            break;
    }
    int64_t t1 = gr_bench_now_ns();
    close(s[0]);
    close(s[1]);
    return (double)(t1 - t0) / NET_BASELINE_ROUNDS;
}

static int pp_echo(void *arg)
{
    struct pp *p = arg;
    char buf[64];
    for (;;) {
        ssize_t n = gr_stream_readexactly(p->b, buf, sizeof(buf));
        if (n < 0)
            return n == -ENODATA ? 0 : (int)n;
        int rc = gr_stream_write(p->b, buf, sizeof(buf));
        if (rc < 0)
            return rc;
    }
}

static int pp_main(void *arg)
{
    struct pp *p = arg;
    int s[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0 ||
        gr_stream_open(&p->a, s[0], NULL) < 0 || gr_stream_open(&p->b, s[1], NULL) < 0) {
        p->failed = 1;
        return -1;
    }
    gr_task *echo;
    gr_spawn(&echo, pp_echo, p, NULL);
    char buf[64] = {0};
    int64_t t0 = gr_bench_now_ns();
    while (gr_bench_keep_running(p->st)) {
        if (gr_stream_write(p->a, buf, sizeof(buf)) < 0 ||
            gr_stream_readexactly(p->a, buf, sizeof(buf)) != sizeof(buf)) {
            p->failed = 1;
            break;
        }
    }
    int64_t t1 = gr_bench_now_ns();
    p->gr_ns = (double)(t1 - t0) / (double)(gr_bench_iterations(p->st) ? gr_bench_iterations(p->st) : 1);
    gr_stream_close(p->a);
    int rc = gr_join(echo);
    gr_stream_close(p->b);
    return rc;
}

static void bm_stream_pingpong(gr_bench_state *st)
{
    struct pp p = {.st = st, .raw_ns = raw_round_trip_ns()};
    if (gr_bench_run_runtime(st, pp_main, &p, 1) < 0)
        return;
    if (p.failed) {
        gr_bench_error(st, "stream ping-pong failed");
        return;
    }
    gr_bench_counter(st, "raw_syscalls_ns", p.raw_ns);
    if (p.raw_ns > 0)
        gr_bench_counter(st, "vs_raw_syscalls", p.gr_ns / p.raw_ns);
}

/* =====================================================================
 * net_stream_throughput
 * ===================================================================== */

#define TP_CHUNK 65536

struct tp {
    gr_bench_state *st;
    gr_stream *w, *r;
    _Atomic long long received;
};

static int tp_reader(void *arg)
{
    struct tp *t = arg;
    static char buf[TP_CHUNK];
    for (;;) {
        ssize_t n = gr_stream_read(t->r, buf, sizeof(buf));
        if (n <= 0)
            return (int)n;
        atomic_fetch_add_explicit(&t->received, n, memory_order_relaxed); /* a counter */
    }
}

static int tp_main(void *arg)
{
    struct tp *t = arg;
    int s[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0 ||
        gr_stream_open(&t->w, s[0], NULL) < 0 || gr_stream_open(&t->r, s[1], NULL) < 0)
        return -1;
    gr_task *reader;
    gr_spawn(&reader, tp_reader, t, NULL);
    static char chunk[TP_CHUNK];
    while (gr_bench_keep_running(t->st)) {
        if (gr_stream_write(t->w, chunk, sizeof(chunk)) < 0 || gr_stream_drain(t->w) < 0)
            break;
    }
    gr_stream_close(t->w); /* flushes */
    int rc = gr_join(reader);
    gr_stream_close(t->r);
    return rc;
}

static void bm_stream_throughput(gr_bench_state *st)
{
    struct tp t = {.st = st};
    if (gr_bench_run_runtime(st, tp_main, &t, 2) < 0)
        return;
    gr_bench_set_items(st, atomic_load(&t.received));
}

/* =====================================================================
 * net_readline
 * ===================================================================== */

struct rl {
    gr_bench_state *st;
    gr_stream *w, *r;
    _Atomic int stop;
};

static int rl_writer(void *arg)
{
    struct rl *l = arg;
    static char batch[65536];
    for (size_t i = 0; i < sizeof(batch); i++)
        batch[i] = i % 100 == 99 ? '\n' : (char)('a' + i % 26);
    while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
        /* 65536 is not a multiple of 100: lines straddle the batches. */
        if (gr_stream_write(l->w, batch, sizeof(batch)) < 0 || gr_stream_drain(l->w) < 0)
            break;
    }
    return gr_stream_close(l->w);
}

static int rl_main(void *arg)
{
    struct rl *l = arg;
    int s[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0 ||
        gr_stream_open(&l->w, s[0], NULL) < 0 || gr_stream_open(&l->r, s[1], NULL) < 0)
        return -1;
    gr_task *writer;
    gr_spawn(&writer, rl_writer, l, NULL);
    char line[256];
    while (gr_bench_keep_running(l->st))
        if (gr_stream_readline(l->r, line, sizeof(line)) <= 0)
            break;
    atomic_store(&l->stop, 1);
    static char sink[65536];
    while (gr_stream_read(l->r, sink, sizeof(sink)) > 0) /* let the writer finish */
        ;
    gr_join(writer);
    return gr_stream_close(l->r);
}

static void bm_readline(gr_bench_state *st)
{
    struct rl l = {.st = st};
    gr_bench_run_runtime(st, rl_main, &l, 1);
}

/* =====================================================================
 * net_connect_accept
 * ===================================================================== */

static int ca_echo_byte(gr_stream *s, void *arg)
{
    (void)arg;
    char c;
    ssize_t n = gr_stream_read(s, &c, 1);
    return n == 1 ? gr_stream_write(s, &c, 1) : (int)n;
}

struct ca {
    gr_bench_state *st;
    int failed;
};

static int ca_main(void *arg)
{
    struct ca *c = arg;
    gr_server *srv;
    int rc = gr_start_server(&srv, "127.0.0.1", 0, ca_echo_byte, NULL, NULL);
    if (rc < 0) {
        c->failed = rc;
        return rc;
    }
    gr_addr a;
    gr_server_addr(srv, &a);
    while (gr_bench_keep_running(c->st)) {
        int fd = gr_connect_addrs(&a, 1, SOCK_STREAM, NULL);
        char b = 'x';
        if (fd < 0 || gr_send(fd, &b, 1, 0) != 1 || gr_recv(fd, &b, 1, 0) != 1) {
            c->failed = fd < 0 ? fd : -EIO;
            if (fd >= 0)
                gr_close(fd);
            break;
        }
        gr_close(fd);
    }
    return gr_server_close(srv, GR_NO_DEADLINE);
}

static void bm_connect_accept(gr_bench_state *st)
{
    struct ca c = {.st = st};
    if (gr_bench_run_runtime(st, ca_main, &c, 2) == 0 && c.failed)
        gr_bench_error_rc(st, "connect/echo", c.failed);
}

GR_BENCH_CONSTRUCTOR(register_net_benchmarks)
{
    gr_bench_register("net_stream_pingpong", bm_stream_pingpong,
                      &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("net_stream_throughput", bm_stream_throughput,
                      &(gr_bench_opts){.unit = GR_BENCH_US});
    gr_bench_register("net_readline", bm_readline, &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("net_connect_accept", bm_connect_accept,
                      &(gr_bench_opts){.unit = GR_BENCH_US});
}
