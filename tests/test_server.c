/* greenring-test: tsan asan */
/* Servers: byte-exact echo of random payloads from many concurrent clients
 * across the workers, the connection limit, graceful close (handlers that
 * finish, handlers that are cancelled at the deadline, gr_server_wait),
 * a client that never sends, a peer reset, a failing handler, running out
 * of fds (EMFILE) and recovering, Unix socket servers. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/support.h"

#define MS ((int64_t)1000000)

static uint16_t server_port(gr_server *srv)
{
    gr_addr a;
    ck_assert_int_eq(gr_server_addr(srv, &a), 0);
    return (uint16_t)gr_addr_port(&a);
}

/* Echo handler: whatever arrives goes back, with back-pressure. */
static int echo(gr_stream *s, void *arg)
{
    (void)arg;
    char buf[8192];
    for (;;) {
        ssize_t n = gr_stream_read(s, buf, sizeof(buf));
        if (n <= 0)
            return (int)n;
        int rc = gr_stream_write(s, buf, (size_t)n);
        if (rc == 0)
            rc = gr_stream_drain(s);
        if (rc < 0)
            return rc;
    }
}

static gr_stream *connect_to(gr_server *srv)
{
    gr_stream *c = NULL;
    ck_assert_int_eq(gr_open_connection(&c, "127.0.0.1", server_port(srv), NULL), 0);
    return c;
}

/* ---------------------------------------------------------------------
 * Echo from many clients
 * --------------------------------------------------------------------- */

struct client {
    uint16_t port;
    uint64_t seed;
    _Atomic unsigned *workers_seen;
};

static int echo_client(void *arg)
{
    struct client *c = arg;
    gr_stream *s;
    int rc = gr_open_connection(&s, "127.0.0.1", c->port, NULL);
    if (rc < 0)
        return rc;
    size_t cap = 256 * 1024;
    char *out = malloc(cap), *in = malloc(cap);
    for (int round = 0; round < 8 && rc == 0; round++) {
        size_t len = 1 + gr_test_rand(&c->seed) % cap;
        for (size_t i = 0; i < len; i++)
            out[i] = (char)gr_test_rand(&c->seed);
        /* write never waits: the reply is read while the request is
         * still being sent in the background. */
        rc = gr_stream_write(s, out, len);
        ssize_t n = rc ? rc : gr_stream_readexactly(s, in, len);
        if (n < 0)
            rc = (int)n;
        else if (memcmp(in, out, len) != 0)
            rc = -EILSEQ;
        atomic_fetch_or(c->workers_seen, 1u << gr_worker_index());
    }
    free(out);
    free(in);
    int crc = gr_stream_close(s);
    return rc ? rc : crc;
}

static int echo_many_main(void *arg)
{
    (void)arg;
    gr_server *srv;
    ck_assert_int_eq(gr_start_server(&srv, "127.0.0.1", 0, echo, NULL, NULL), 0);
    enum { CLIENTS = 64 };
    static struct client cl[CLIENTS];
    _Atomic unsigned seen = 0;
    gr_task *t[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cl[i] = (struct client){.port = server_port(srv), .seed = 0x1234 + (uint64_t)i,
                                .workers_seen = &seen};
        ck_assert_int_eq(gr_spawn(&t[i], echo_client, &cl[i], NULL), 0);
    }
    for (int i = 0; i < CLIENTS; i++)
        ck_assert_int_eq(gr_join(t[i]), 0);
    ck_assert_uint_eq(gr_server_accepted(srv), CLIENTS);
    ck_assert_int_eq(gr_server_close(srv, GR_NO_DEADLINE), 0);
    return 0;
}

START_TEST(echo_random_payloads_many_clients)
{
    gr_test_run_ok(echo_many_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Connection limit
 * --------------------------------------------------------------------- */

struct limited {
    _Atomic int active, max_active, served;
    gr_event two_active; /* set once two handlers run at the same time */
};

static int limited_handler(gr_stream *s, void *arg)
{
    struct limited *l = arg;
    int now = atomic_fetch_add(&l->active, 1) + 1;
    int max = atomic_load(&l->max_active);
    while (now > max && !atomic_compare_exchange_weak(&l->max_active, &max, now))
        ;
    /* The first two handlers wait for each other: the limit (2) must let
     * them run together, and a third one would show in max_active. */
    if (now == 2)
        gr_event_set(&l->two_active);
    gr_event_wait(&l->two_active);
    char line[64];
    ssize_t n = gr_stream_readline(s, line, sizeof(line));
    int rc = n > 0 ? gr_stream_write(s, line, (size_t)n) : (int)n;
    atomic_fetch_add(&l->served, 1);
    atomic_fetch_sub(&l->active, 1);
    return rc;
}

static int limit_main(void *arg)
{
    (void)arg;
    struct limited l = {0};
    gr_event_init(&l.two_active);
    gr_server *srv;
    gr_server_opts opts = {.max_connections = 2};
    ck_assert_int_eq(gr_start_server(&srv, "127.0.0.1", 0, limited_handler, &l, &opts), 0);
    enum { N = 6 };
    gr_stream *c[N];
    for (int i = 0; i < N; i++)
        c[i] = connect_to(srv);
    /* Every client asks at once; at most two handlers run at a time, and
     * the others are served as slots free up. */
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(gr_stream_write(c[i], "hi\n", 3), 0);
    for (int i = 0; i < N; i++) {
        char line[64];
        ck_assert_uint_le(gr_server_connections(srv), 2);
        ck_assert_int_eq(gr_stream_readline(c[i], line, sizeof(line)), 3);
        ck_assert_int_eq(gr_stream_close(c[i]), 0);
    }
    ck_assert_int_eq(gr_server_close(srv, GR_NO_DEADLINE), 0);
    ck_assert_int_eq(atomic_load(&l.served), N);
    ck_assert_int_eq(atomic_load(&l.max_active), 2);
    return 0;
}

START_TEST(max_connections)
{
    gr_test_run_ok(limit_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Graceful close
 * --------------------------------------------------------------------- */

struct lines {
    _Atomic int cancelled, finished, started;
    gr_event all_started;
    int expect;
};

/* Echo lines until "quit" or EOF; record how the handler ended. */
static int line_handler(gr_stream *s, void *arg)
{
    struct lines *l = arg;
    if (atomic_fetch_add(&l->started, 1) + 1 == l->expect)
        gr_event_set(&l->all_started);
    char line[128];
    ssize_t n;
    while ((n = gr_stream_readline(s, line, sizeof(line))) > 0) {
        if (n == 5 && memcmp(line, "quit\n", 5) == 0)
            break;
        int rc = gr_stream_write(s, line, (size_t)n);
        if (rc < 0)
            return rc;
    }
    if (n == -ECANCELED)
        atomic_fetch_add(&l->cancelled, 1);
    else
        atomic_fetch_add(&l->finished, 1);
    return (int)(n < 0 ? n : 0);
}

static int waiter_task(void *arg)
{
    return gr_server_wait(arg);
}

static int graceful_finish_main(void *arg)
{
    (void)arg;
    struct lines l = {.expect = 1};
    gr_event_init(&l.all_started);
    gr_server *srv;
    ck_assert_int_eq(gr_start_server(&srv, "127.0.0.1", 0, line_handler, &l, NULL), 0);
    uint16_t port = server_port(srv);
    gr_task *w;
    ck_assert_int_eq(gr_spawn(&w, waiter_task, srv, NULL), 0);
    gr_stream *c = connect_to(srv);
    char buf[64];
    ck_assert_int_eq(gr_stream_write(c, "one\n", 4), 0);
    ck_assert_int_eq(gr_stream_readline(c, buf, sizeof(buf)), 4);
    ck_assert_int_eq(gr_stream_write(c, "quit\n", 5), 0);
    /* The handler finishes on its own within the grace period. */
    ck_assert_int_eq(gr_server_close(srv, 10 * 1000 * MS), 0);
    ck_assert_int_eq(gr_join(w), 0);
    ck_assert_int_eq(atomic_load(&l.finished), 1);
    ck_assert_int_eq(gr_stream_read(c, buf, sizeof(buf)), 0);
    ck_assert_int_eq(gr_stream_close(c), 0);
    /* Nobody listens any more. */
    ck_assert_int_eq(gr_connect_tcp("127.0.0.1", port), -ECONNREFUSED);
    return 0;
}

START_TEST(graceful_close_handlers_finish)
{
    gr_test_run_ok(graceful_finish_main, NULL, 2);
}
END_TEST

/* Clients that connect and never send: their handlers sit in a read until
 * the grace period ends and they are cancelled. */
static int graceful_cancel_main(void *arg)
{
    (void)arg;
    enum { N = 5 };
    struct lines l = {.expect = N};
    gr_event_init(&l.all_started);
    gr_server *srv;
    ck_assert_int_eq(gr_start_server(&srv, "127.0.0.1", 0, line_handler, &l, NULL), 0);
    gr_stream *c[N];
    for (int i = 0; i < N; i++)
        c[i] = connect_to(srv);
    ck_assert_int_eq(gr_event_wait(&l.all_started), 0);
    ck_assert_int_eq(gr_server_close(srv, 20 * MS), -ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&l.cancelled), N);
    for (int i = 0; i < N; i++) {
        char b;
        ck_assert_int_eq(gr_stream_read(c[i], &b, 1), 0); /* the server closed */
        ck_assert_int_eq(gr_stream_close(c[i]), 0);
    }
    return 0;
}

START_TEST(graceful_close_cancels_at_deadline)
{
    gr_test_run_ok(graceful_cancel_main, NULL, 2);
}
END_TEST

/* A cancelled caller (graceful shutdown cancels main) still closes. */
static int closer(void *arg)
{
    gr_server *srv = arg;
    gr_cancel(gr_self());
    return gr_server_close(srv, 0);
}

static int cancelled_closer_main(void *arg)
{
    (void)arg;
    struct lines l = {.expect = 1};
    gr_event_init(&l.all_started);
    gr_server *srv;
    ck_assert_int_eq(gr_start_server(&srv, "127.0.0.1", 0, line_handler, &l, NULL), 0);
    gr_stream *c = connect_to(srv);
    ck_assert_int_eq(gr_event_wait(&l.all_started), 0);
    gr_task *t;
    ck_assert_int_eq(gr_spawn(&t, closer, srv, NULL), 0);
    ck_assert_int_eq(gr_join(t), 0); /* grace 0: cancelled at once, counted as 0 */
    ck_assert_int_eq(atomic_load(&l.cancelled), 1);
    char b;
    ck_assert_int_eq(gr_stream_read(c, &b, 1), 0);
    ck_assert_int_eq(gr_stream_close(c), 0);
    return 0;
}

START_TEST(close_from_a_cancelled_task)
{
    gr_test_run_ok(cancelled_closer_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Misbehaving clients and handlers: each affects its own connection only
 * --------------------------------------------------------------------- */

/* The first read of every connection must come within 30 ms. */
static int impatient(gr_stream *s, void *arg)
{
    (void)arg;
    char line[64];
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 30 * MS);
    ssize_t n = gr_stream_readline(s, line, sizeof(line));
    gr_scope_leave(&sc);
    if (n < 0)
        return (int)n; /* -ETIMEDOUT: a client that never sends */
    if (n == 5 && memcmp(line, "fail\n", 5) == 0)
        return -EIO; /* a failing handler */
    int rc = gr_stream_write(s, line, (size_t)n);
    while (rc == 0 && (n = gr_stream_readline(s, line, sizeof(line))) > 0)
        rc = gr_stream_write(s, line, (size_t)n);
    return rc < 0 ? rc : (int)n;
}

static int misbehaving_main(void *arg)
{
    (void)arg;
    gr_server *srv;
    ck_assert_int_eq(gr_start_server(&srv, "127.0.0.1", 0, impatient, NULL, NULL), 0);
    gr_stream *good = connect_to(srv), *silent = connect_to(srv), *failing = connect_to(srv);
    gr_stream *reset = connect_to(srv);
    char buf[64];
    ck_assert_int_eq(gr_stream_write(good, "hello\n", 6), 0);
    ck_assert_int_eq(gr_stream_readline(good, buf, sizeof(buf)), 6);
    /* The silent client is dropped after 30 ms: it reads EOF. */
    ck_assert_int_eq(gr_stream_read(silent, buf, sizeof(buf)), 0);
    /* The failing handler's connection is aborted. */
    ck_assert_int_eq(gr_stream_write(failing, "fail\n", 5), 0);
    ck_assert_int_le(gr_stream_read(failing, buf, sizeof(buf)), 0);
    /* A reset in the middle of a line. */
    ck_assert_int_eq(gr_stream_write(reset, "half a li", 9), 0);
    ck_assert_int_eq(gr_stream_flush(reset), 0);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(gr_stream_fd(reset), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    ck_assert_int_eq(gr_stream_abort(reset), 0);
    /* The good connection never noticed. */
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(gr_stream_write(good, "again\n", 6), 0);
        ck_assert_int_eq(gr_stream_readline(good, buf, sizeof(buf)), 6);
    }
    ck_assert_int_eq(gr_stream_close(good), 0);
    ck_assert_int_eq(gr_stream_close(silent), 0);
    ck_assert_int_eq(gr_stream_close(failing), 0);
    ck_assert_int_eq(gr_server_close(srv, GR_NO_DEADLINE), 0);
    return 0;
}

START_TEST(silent_reset_and_failing_connections)
{
    gr_test_run_ok(misbehaving_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Running out of fds
 * --------------------------------------------------------------------- */

static int highest_fd(void)
{
    int hi = 0;
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            hi = fd;
    return hi;
}

static void expect_echo(gr_stream *c, const char *line)
{
    char buf[64];
    size_t n = strlen(line);
    ck_assert_int_eq(gr_stream_write(c, line, n), 0);
    ck_assert_int_eq(gr_stream_readline(c, buf, sizeof(buf)), (ssize_t)n);
    ck_assert(memcmp(buf, line, n) == 0);
}

static int emfile_main(void *arg)
{
    (void)arg;
    struct rlimit old, rl;
    getrlimit(RLIMIT_NOFILE, &old);
    rl = old;
    rl.rlim_cur = (rlim_t)highest_fd() + 40;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    /* The multishot accept reads the limit when it is armed: start the
     * server after lowering it. */
    gr_server *srv;
    ck_assert_int_eq(gr_start_server(&srv, "127.0.0.1", 0, echo, NULL, NULL), 0);
    gr_addr a;
    gr_server_addr(srv, &a);
    int cfd[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_ge(cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), 0);
    /* Use up every fd but two. */
    static int filler[4096];
    int nfill = 0;
    for (;;) {
        int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            ck_assert_int_eq(errno, EMFILE);
            break;
        }
        ck_assert_int_lt(nfill, 4096);
        filler[nfill++] = fd;
    }
    ck_assert_int_ge(nfill, 2);
    gr_close(filler[--nfill]);
    gr_close(filler[--nfill]);
    gr_stream *c[4];
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(gr_connect(cfd[i], &a), 0); /* completes in the backlog */
        ck_assert_int_eq(gr_stream_open(&c[i], cfd[i], NULL), 0);
    }
    /* Two are accepted and served; accepting the third fails (EMFILE). */
    expect_echo(c[0], "first\n");
    expect_echo(c[1], "second\n");
    ck_assert_int_eq(gr_stream_write(c[2], "third\n", 6), 0);
    /* One connection closes: its fd frees up and the server accepts the
     * waiting client, while the other connection keeps being served. */
    ck_assert_int_eq(gr_stream_close(c[0]), 0);
    char buf[64];
    ck_assert_int_eq(gr_stream_readline(c[2], buf, sizeof(buf)), 6);
    expect_echo(c[1], "still here\n");
    /* Give the fds back: the fourth is accepted too. */
    while (nfill)
        gr_close(filler[--nfill]);
    expect_echo(c[3], "fourth\n");
    for (int i = 1; i < 4; i++)
        ck_assert_int_eq(gr_stream_close(c[i]), 0);
    ck_assert_uint_eq(gr_server_accepted(srv), 4);
    ck_assert_int_eq(gr_server_close(srv, GR_NO_DEADLINE), 0);
    setrlimit(RLIMIT_NOFILE, &old);
    return 0;
}

START_TEST(emfile_keeps_serving_and_recovers)
{
    gr_test_run_ok(emfile_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Unix socket servers
 * --------------------------------------------------------------------- */

static int unix_server_main(void *arg)
{
    (void)arg;
    char dir[] = "/tmp/greenring-srv-XXXXXX", path[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/echo.sock", dir);
    gr_server *srv;
    ck_assert_int_eq(gr_start_unix_server(&srv, path, echo, NULL, NULL), 0);
    gr_addr a;
    char txt[GR_ADDR_STRLEN], want[160];
    gr_server_addr(srv, &a);
    gr_addr_format(&a, txt, sizeof(txt));
    snprintf(want, sizeof(want), "unix:%s", path);
    ck_assert_str_eq(txt, want);
    for (int i = 0; i < 10; i++) {
        gr_stream *c;
        ck_assert_int_eq(gr_open_unix_connection(&c, path, NULL), 0);
        expect_echo(c, "over a unix socket\n");
        ck_assert_int_eq(gr_stream_close(c), 0);
    }
    ck_assert_int_eq(gr_server_close(srv, GR_NO_DEADLINE), 0);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), -1); /* removed at close */
    rmdir(dir);
    return 0;
}

START_TEST(unix_socket_server)
{
    gr_test_run_ok(unix_server_main, NULL, 2);
}
END_TEST

static int bad_start_main(void *arg)
{
    (void)arg;
    gr_server *srv;
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s);
    ck_assert_int_eq(gr_server_start(&srv, s[0], echo, NULL, NULL), -EINVAL); /* not listening */
    gr_close(s[1]);
    ck_assert_int_eq(gr_server_start(&srv, -1, echo, NULL, NULL), -EBADF);
    int l = gr_listen_tcp("127.0.0.1", 0, NULL);
    ck_assert_int_eq(gr_server_start(&srv, l, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(gr_start_server(&srv, "127.0.0.1", 0, echo, NULL,
                                     &(gr_server_opts){.stream.write_low = 1 << 30}),
                     -EINVAL);
    ck_assert_int_eq(gr_server_close(NULL, 0), -EINVAL);
    return 0;
}

START_TEST(bad_arguments)
{
    gr_test_run_ok(bad_start_main, NULL, 1);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("server");
    TCase *tc = tcase_create("server");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, echo_random_payloads_many_clients);
    tcase_add_test(tc, max_connections);
    tcase_add_test(tc, graceful_close_handlers_finish);
    tcase_add_test(tc, graceful_close_cancels_at_deadline);
    tcase_add_test(tc, close_from_a_cancelled_task);
    tcase_add_test(tc, silent_reset_and_failing_connections);
    tcase_add_test(tc, emfile_keeps_serving_and_recovers);
    tcase_add_test(tc, unix_socket_server);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
