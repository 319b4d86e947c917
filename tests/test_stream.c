/* greenring-test: tsan asan */
/* Streams: the reader (read, readline, readuntil, readexactly,
 * read_to_eof) with separators split across packets, limits and EOF in
 * the middle; the randomised split-point test; cancellation that loses no
 * bytes; the writer's background sends, drain back-pressure, flush,
 * write_eof (half-close), close and abort; peer reset; zero-copy writes;
 * pipes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/support.h"

#define MS ((int64_t)1000000)

/* A socketpair: s[0] becomes the stream, s[1] is driven raw. */
static void pair(int type, int s[2])
{
    ck_assert_msg(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, s) == 0, "socketpair: %s",
                  strerror(errno));
}

static gr_stream *open_stream(int fd, const gr_stream_opts *opts)
{
    gr_stream *st = NULL;
    ck_assert_int_eq(gr_stream_open(&st, fd, opts), 0);
    return st;
}

/* Send each chunk as its own SOCK_SEQPACKET record: the stream's recvs
 * then see exactly these boundaries (a recv returns one record). */
static void send_records(int fd, const char *data, const size_t *cuts, size_t ncuts, size_t len)
{
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        if (end > at)
            ck_assert_int_eq(gr_send(fd, data + at, end - at, 0), (ssize_t)(end - at));
        at = end;
    }
}

/* ---------------------------------------------------------------------
 * Reader basics
 * --------------------------------------------------------------------- */

static int readline_main(void *arg)
{
    (void)arg;
    int s[2];
    pair(SOCK_STREAM, s);
    gr_stream *st = open_stream(s[0], NULL);
    const char *text = "first line\nsecond\n\nno newline at the end";
    ck_assert_int_eq(gr_send(s[1], text, strlen(text), 0), (ssize_t)strlen(text));
    ck_assert_int_eq(gr_shutdown(s[1], SHUT_WR), 0);
    char buf[128];
    ck_assert_int_eq(gr_stream_readline(st, buf, sizeof(buf)), 11);
    ck_assert(memcmp(buf, "first line\n", 11) == 0);
    ck_assert_int_eq(gr_stream_readline(st, buf, sizeof(buf)), 7);
    ck_assert(memcmp(buf, "second\n", 7) == 0);
    ck_assert_int_eq(gr_stream_readline(st, buf, sizeof(buf)), 1);
    ck_assert_int_eq(gr_stream_at_eof(st), 0);
    /* EOF in the middle of a line: the rest, then 0 (asyncio's readline). */
    ck_assert_int_eq(gr_stream_readline(st, buf, sizeof(buf)), 21);
    ck_assert(memcmp(buf, "no newline at the end", 21) == 0);
    ck_assert_int_eq(gr_stream_at_eof(st), 1);
    ck_assert_int_eq(gr_stream_readline(st, buf, sizeof(buf)), 0);
    ck_assert_int_eq(gr_stream_read(st, buf, sizeof(buf)), 0);
    ck_assert_int_eq(gr_stream_close(st), 0);
    ck_assert_int_eq(gr_close(s[1]), 0);
    return 0;
}

START_TEST(readline_and_eof_mid_line)
{
    gr_test_run_ok(readline_main, NULL, 2);
}
END_TEST

/* readuntil with a 4-byte separator cut at every position inside it. */
static int readuntil_split_main(void *arg)
{
    (void)arg;
    const char *text = "HEAD\r\n\r\nbody";
    size_t len = strlen(text);
    for (size_t cut = 1; cut < len; cut++) {
        int s[2];
        pair(SOCK_SEQPACKET, s);
        gr_stream *st = open_stream(s[0], NULL);
        send_records(s[1], text, &cut, 1, len);
        char buf[64];
        ck_assert_int_eq(gr_stream_readuntil(st, "\r\n\r\n", 4, buf, sizeof(buf)), 8);
        ck_assert(memcmp(buf, "HEAD\r\n\r\n", 8) == 0);
        ck_assert_int_eq(gr_stream_readexactly(st, buf, 4), 4);
        ck_assert(memcmp(buf, "body", 4) == 0);
        ck_assert_int_eq(gr_stream_close(st), 0);
        ck_assert_int_eq(gr_close(s[1]), 0);
    }
    return 0;
}

START_TEST(readuntil_separator_split_across_packets)
{
    gr_test_run_ok(readuntil_split_main, NULL, 2);
}
END_TEST

static int readexactly_eof_main(void *arg)
{
    (void)arg;
    int s[2];
    pair(SOCK_STREAM, s);
    gr_stream *st = open_stream(s[0], NULL);
    ck_assert_int_eq(gr_send(s[1], "0123456789abc", 13, 0), 13);
    ck_assert_int_eq(gr_close(s[1]), 0);
    char buf[32];
    ck_assert_int_eq(gr_stream_readexactly(st, buf, 10), 10);
    ck_assert(memcmp(buf, "0123456789", 10) == 0);
    /* EOF after 3 of 8 bytes: -ENODATA, and the 3 bytes stay buffered. */
    ck_assert_int_eq(gr_stream_readexactly(st, buf, 8), -ENODATA);
    ck_assert_uint_eq(gr_stream_buffered(st), 3);
    ck_assert_int_eq(gr_stream_readuntil(st, "\n", 1, buf, sizeof(buf)), -ENODATA);
    ck_assert_int_eq(gr_stream_read(st, buf, sizeof(buf)), 3);
    ck_assert(memcmp(buf, "abc", 3) == 0);
    ck_assert_int_eq(gr_stream_readexactly(st, buf, 1), -ENODATA);
    ck_assert_int_eq(gr_stream_readexactly(st, buf, 0), 0);
    ck_assert_int_eq(gr_stream_close(st), 0);
    return 0;
}

START_TEST(readexactly_eof_reports_partial)
{
    gr_test_run_ok(readexactly_eof_main, NULL, 2);
}
END_TEST

static int limit_main(void *arg)
{
    (void)arg;
    int s[2];
    pair(SOCK_STREAM, s);
    gr_stream_opts opts = {.limit = 16};
    gr_stream *st = open_stream(s[0], &opts);
    const char *text = "short\nthis line is much longer than sixteen\nok\n";
    ck_assert_int_eq(gr_send(s[1], text, strlen(text), 0), (ssize_t)strlen(text));
    char buf[64];
    ck_assert_int_eq(gr_stream_readline(st, buf, sizeof(buf)), 6);
    /* Over the limit: an error, the long line is dropped, the next line
     * reads normally. */
    ck_assert_int_eq(gr_stream_readline(st, buf, sizeof(buf)), -EMSGSIZE);
    ck_assert_int_eq(gr_stream_readline(st, buf, sizeof(buf)), 3);
    ck_assert(memcmp(buf, "ok\n", 3) == 0);
    /* The same when the end of the long line arrives later. */
    ck_assert_int_eq(gr_send(s[1], "0123456789abcdefghij", 20, 0), 20);
    ck_assert_int_eq(gr_stream_readline(st, buf, sizeof(buf)), -EMSGSIZE);
    ck_assert_int_eq(gr_send(s[1], "klmnop\nok\n", 10, 0), 10);
    ck_assert_int_eq(gr_stream_readline(st, buf, sizeof(buf)), 3);
    ck_assert(memcmp(buf, "ok\n", 3) == 0);
    ck_assert_int_eq(gr_send(s[1], "0123456789ABCDEFGH", 18, 0), 18);
    /* readuntil keeps the data (asyncio's LimitOverrunError). */
    ck_assert_int_eq(gr_stream_readuntil(st, "\n", 1, buf, sizeof(buf)), -EMSGSIZE);
    ck_assert_uint_ge(gr_stream_buffered(st), 16); /* nothing was consumed */
    /* cap below the limit is the effective limit. */
    ck_assert_int_eq(gr_stream_readuntil(st, "9", 1, buf, 4), -EMSGSIZE);
    ck_assert_int_eq(gr_stream_readuntil(st, "9", 1, buf, 10), 10);
    ck_assert_int_eq(gr_stream_readexactly(st, buf, 8), 8);
    ck_assert(memcmp(buf, "ABCDEFGH", 8) == 0);
    /* readexactly may exceed the limit. */
    char big[100];
    memset(big, 'z', sizeof(big));
    ck_assert_int_eq(gr_send(s[1], big, sizeof(big), 0), (ssize_t)sizeof(big));
    ck_assert_int_eq(gr_stream_readexactly(st, buf, 64), 64);
    ck_assert_int_eq(gr_stream_readexactly(st, buf, 36), 36);
    ck_assert_int_eq(gr_stream_close(st), 0);
    ck_assert_int_eq(gr_close(s[1]), 0);
    return 0;
}

START_TEST(line_over_limit)
{
    gr_test_run_ok(limit_main, NULL, 2);
}
END_TEST

static int read_to_eof_main(void *arg)
{
    (void)arg;
    int s[2];
    pair(SOCK_STREAM, s);
    gr_stream *st = open_stream(s[0], NULL);
    static char data[200000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7);
    gr_stream *peer = open_stream(s[1], NULL);
    ck_assert_int_eq(gr_stream_write(peer, data, sizeof(data)), 0);
    ck_assert_int_eq(gr_stream_write_eof(peer), 0);
    static char got[sizeof(data) + 10];
    /* Too small a cap: -EMSGSIZE and nothing is lost. */
    ck_assert_int_eq(gr_stream_read_to_eof(st, got, 1000), -EMSGSIZE);
    ck_assert_int_eq(gr_stream_read_to_eof(st, got, sizeof(got)), (ssize_t)sizeof(data));
    ck_assert(memcmp(got, data, sizeof(data)) == 0);
    ck_assert_int_eq(gr_stream_at_eof(st), 1);
    ck_assert_int_eq(gr_stream_close(st), 0);
    ck_assert_int_eq(gr_stream_close(peer), 0);
    return 0;
}

START_TEST(read_to_eof_with_cap)
{
    gr_test_run_ok(read_to_eof_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * The split-point test: the same byte stream, cut at every position (and
 * at many random sets of positions), must parse the same.
 * --------------------------------------------------------------------- */

static const char split_text[] =
    "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"
    "line one\nline two\n"
    "LEN:0012:twelve bytes"
    "a--b--c--\n"
    "tail without newline";

/* Parse split_text with every reader call; writes a transcript. */
static void parse(gr_stream *st, char *out, size_t cap)
{
    size_t n = 0;
    char buf[128];
    ssize_t r;
#define LOG(call)                                                                                  \
    do {                                                                                           \
        r = (call);                                                                                \
        n += (size_t)snprintf(out + n, cap - n, "%zd:", r);                                        \
        if (r > 0)                                                                                 \
            n += (size_t)snprintf(out + n, cap - n, "%.*s|", (int)r, buf);                         \
    } while (0)
    LOG(gr_stream_readuntil(st, "\r\n\r\n", 4, buf, sizeof(buf)));
    LOG(gr_stream_readline(st, buf, sizeof(buf)));
    LOG(gr_stream_readline(st, buf, sizeof(buf)));
    LOG(gr_stream_readexactly(st, buf, 4));
    LOG(gr_stream_readuntil(st, ":", 1, buf, sizeof(buf)));
    int len = atoi(buf);
    LOG(gr_stream_readexactly(st, buf, (size_t)len));
    LOG(gr_stream_readuntil(st, "--", 2, buf, sizeof(buf)));
    LOG(gr_stream_readuntil(st, "--", 2, buf, sizeof(buf)));
    LOG(gr_stream_readexactly(st, buf, 3));
    LOG(gr_stream_readuntil(st, "\n", 1, buf, sizeof(buf)));
    LOG(gr_stream_readuntil(st, "never", 5, buf, sizeof(buf)));
    LOG(gr_stream_read_to_eof(st, buf, sizeof(buf)));
    LOG(gr_stream_readline(st, buf, sizeof(buf)));
#undef LOG
}

static void parse_with_cuts(const size_t *cuts, size_t ncuts, char *out, size_t cap)
{
    int s[2];
    pair(SOCK_SEQPACKET, s);
    gr_stream *st = open_stream(s[0], NULL);
    send_records(s[1], split_text, cuts, ncuts, sizeof(split_text) - 1);
    ck_assert_int_eq(gr_close(s[1]), 0);
    parse(st, out, cap);
    ck_assert_int_eq(gr_stream_close(st), 0);
}

static int compare_cuts(size_t *a, size_t *b)
{
    return *a < *b ? -1 : *a > *b;
}

static int split_points_main(void *arg)
{
    (void)arg;
    size_t len = sizeof(split_text) - 1;
    static char ref[2048], got[2048];
    parse_with_cuts(NULL, 0, ref, sizeof(ref));
    ck_assert_msg(strstr(ref, "12:twelve bytes|") && strstr(ref, "20:tail without newline|"),
                  "unexpected reference parse: %s", ref);
    for (size_t cut = 1; cut < len; cut++) {
        parse_with_cuts(&cut, 1, got, sizeof(got));
        ck_assert_msg(strcmp(ref, got) == 0, "cut at %zu:\n%s\nvs\n%s", cut, got, ref);
    }
    uint64_t seed = 0x5eed;
    for (int round = 0; round < 200; round++) {
        size_t cuts[16];
        size_t n = 1 + gr_test_rand(&seed) % 16;
        for (size_t i = 0; i < n; i++)
            cuts[i] = 1 + gr_test_rand(&seed) % (len - 1);
        qsort(cuts, n, sizeof(cuts[0]), (int (*)(const void *, const void *))compare_cuts);
        parse_with_cuts(cuts, n, got, sizeof(got));
        ck_assert_msg(strcmp(ref, got) == 0, "round %d:\n%s\nvs\n%s", round, got, ref);
    }
    return 0;
}

START_TEST(randomised_split_points)
{
    gr_test_run_ok(split_points_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Cancellation loses no bytes
 * --------------------------------------------------------------------- */

static int no_loss_main(void *arg)
{
    (void)arg;
    int s[2];
    pair(SOCK_STREAM, s);
    gr_stream *st = open_stream(s[0], NULL);
    char buf[64];
    ck_assert_int_eq(gr_send(s[1], "01234", 5, 0), 5);
    /* Half of what readexactly wants, then its timeout scope expires. */
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 20 * MS);
    ck_assert_int_eq(gr_stream_readexactly(st, buf, 10), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&sc), 1);
    ck_assert_uint_eq(gr_stream_buffered(st), 5);
    ck_assert_int_eq(gr_send(s[1], "56789", 5, 0), 5);
    ck_assert_int_eq(gr_stream_readexactly(st, buf, 10), 10);
    ck_assert(memcmp(buf, "0123456789", 10) == 0);
    /* A line cut by a timeout, then completed. */
    ck_assert_int_eq(gr_send(s[1], "abc", 3, 0), 3);
    gr_scope_enter_timeout(&sc, 20 * MS);
    ck_assert_int_eq(gr_stream_readline(st, buf, sizeof(buf)), -ETIMEDOUT);
    gr_scope_leave(&sc);
    ck_assert_int_eq(gr_send(s[1], "def\n", 4, 0), 4);
    ck_assert_int_eq(gr_stream_readline(st, buf, sizeof(buf)), 7);
    ck_assert(memcmp(buf, "abcdef\n", 7) == 0);
    /* An expired scope: every call fails at once, nothing is consumed. */
    ck_assert_int_eq(gr_send(s[1], "xyz", 3, 0), 3);
    gr_scope_enter_timeout(&sc, 0);
    ck_assert_int_eq(gr_stream_read(st, buf, sizeof(buf)), -ETIMEDOUT);
    gr_scope_leave(&sc);
    ck_assert_int_eq(gr_stream_readexactly(st, buf, 3), 3);
    ck_assert(memcmp(buf, "xyz", 3) == 0);
    ck_assert_int_eq(gr_stream_close(st), 0);
    ck_assert_int_eq(gr_close(s[1]), 0);
    return 0;
}

START_TEST(timeout_loses_no_bytes)
{
    gr_test_run_ok(no_loss_main, NULL, 2);
}
END_TEST

/* A task parked in gr_stream_read(st, buf, cap). */
struct parked_read {
    gr_stream *st;
    gr_event started;
    char *buf;
    size_t cap;
    ssize_t got;
};

static int parked_reader(void *arg)
{
    struct parked_read *c = arg;
    gr_event_set(&c->started);
    c->got = gr_stream_read(c->st, c->buf, c->cap);
    return (int)(c->got < 0 ? c->got : 0);
}

/* Spawn the reader and wait until it has started (with one worker: until
 * it parks inside the read). */
static void start_parked_read(struct parked_read *c, gr_stream *st, char *buf, size_t cap,
                              gr_task **t)
{
    *c = (struct parked_read){.st = st, .buf = buf, .cap = cap};
    gr_event_init(&c->started);
    ck_assert_int_eq(gr_spawn(t, parked_reader, c, NULL), 0);
    ck_assert_int_eq(gr_event_wait(&c->started), 0);
}

/* A reader cancelled from another task (maybe on another worker): the
 * recv is cancelled through the ring it was submitted on. */
static int cancel_reader_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 50; round++) {
        int s[2];
        pair(SOCK_STREAM, s);
        char rbuf[4096];
        struct parked_read c;
        gr_task *t;
        start_parked_read(&c, open_stream(s[0], NULL), rbuf, sizeof(rbuf), &t);
        if (round % 2)
            ck_assert_int_eq(gr_send(s[1], "data", 4, 0), 4);
        ck_assert_int_eq(gr_cancel(t), 0);
        int rc = gr_join(t);
        /* Either the data won (and was returned) or the cancel did; the
         * data is never lost. */
        if (rc == 0)
            ck_assert_int_eq(c.got, 4);
        else
            ck_assert_int_eq(rc, -ECANCELED);
        if (round % 2 && rc != 0) {
            char buf[8];
            ck_assert_int_eq(gr_stream_readexactly(c.st, buf, 4), 4);
        }
        ck_assert_int_eq(gr_stream_close(c.st), 0);
        ck_assert_int_eq(gr_close(s[1]), 0);
    }
    return 0;
}

START_TEST(cancelled_reader_loses_nothing)
{
    gr_test_run_ok(cancel_reader_main, NULL, 2);
}
END_TEST

static int second_reader(void *arg)
{
    char b;
    return (int)gr_stream_read(arg, &b, 1);
}

static int busy_main(void *arg)
{
    (void)arg;
    int s[2];
    pair(SOCK_STREAM, s);
    char rbuf[4096];
    struct parked_read c;
    gr_task *t, *t2;
    /* One worker: the reader runs until it parks inside the read, and only
     * then does this task resume. */
    start_parked_read(&c, open_stream(s[0], NULL), rbuf, sizeof(rbuf), &t);
    ck_assert_int_eq(gr_spawn(&t2, second_reader, c.st, NULL), 0);
    ck_assert_int_eq(gr_join(t2), -EBUSY);
    ck_assert_int_eq(gr_stream_close(c.st), -EBUSY);
    ck_assert_int_eq(gr_send(s[1], "x", 1, 0), 1);
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(c.got, 1);
    ck_assert_int_eq(gr_stream_close(c.st), 0);
    ck_assert_int_eq(gr_close(s[1]), 0);
    return 0;
}

START_TEST(second_reader_gets_ebusy)
{
    gr_test_run_ok(busy_main, NULL, 1);
}
END_TEST

/* A read parked for data gets the packet copied straight into its own
 * buffer: as much as fits, and the rest stays buffered, in order, for
 * the next reads. */
static int parked_read_main(void *arg)
{
    (void)arg;
    int s[2];
    pair(SOCK_STREAM, s);
    char small[3];
    struct parked_read c;
    gr_task *t;
    start_parked_read(&c, open_stream(s[0], NULL), small, sizeof(small), &t);
    ck_assert_int_eq(gr_send(s[1], "abcdefghij", 10, 0), 10);
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(c.got, 3);
    ck_assert(memcmp(c.buf, "abc", 3) == 0);
    ck_assert_uint_eq(gr_stream_buffered(c.st), 7);
    char rest[64];
    ck_assert_int_eq(gr_stream_read(c.st, rest, 4), 4);
    ck_assert(memcmp(rest, "defg", 4) == 0);
    ck_assert_int_eq(gr_shutdown(s[1], SHUT_WR), 0);
    ck_assert_int_eq(gr_stream_read_to_eof(c.st, rest, sizeof(rest)), 3);
    ck_assert(memcmp(rest, "hij", 3) == 0);
    ck_assert_int_eq(gr_stream_close(c.st), 0);
    ck_assert_int_eq(gr_close(s[1]), 0);
    return 0;
}

START_TEST(parked_read_fills_its_own_buffer)
{
    gr_test_run_ok(parked_read_main, NULL, 1);
}
END_TEST

/* 6000 bytes are more than one provided buffer (4 KiB): the kernel posts
 * them as two completions in the same round, and both go into the parked
 * reader's buffer (5000 bytes) before it runs; the last 1000 stay
 * buffered. Order and content are kept across the split. */
static int parked_read_two_packets_main(void *arg)
{
    (void)arg;
    int s[2];
    pair(SOCK_STREAM, s);
    static char data[6000], big[5000], rest[2000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7 + i / 251);
    struct parked_read c;
    gr_task *t;
    start_parked_read(&c, open_stream(s[0], NULL), big, sizeof(big), &t);
    ck_assert_int_eq(gr_send(s[1], data, sizeof(data), 0), (ssize_t)sizeof(data));
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(c.got, 5000);
    ck_assert(memcmp(c.buf, data, 5000) == 0);
    ck_assert_int_eq(gr_stream_read(c.st, rest, sizeof(rest)), 1000);
    ck_assert(memcmp(rest, data + 5000, 1000) == 0);
    ck_assert_int_eq(gr_stream_close(c.st), 0);
    ck_assert_int_eq(gr_close(s[1]), 0);
    return 0;
}

START_TEST(parked_read_takes_a_whole_round)
{
    gr_test_run_ok(parked_read_two_packets_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Writer
 * --------------------------------------------------------------------- */

static void small_buffers(int fd)
{
    int sz = 16384;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
}

struct bp_ctx {
    int fd;
    size_t total;
    uint64_t sum;
};

static int slow_reader(void *arg)
{
    struct bp_ctx *c = arg;
    char buf[1000];
    for (;;) {
        ssize_t n = gr_recv(c->fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return (int)n;
        for (ssize_t i = 0; i < n; i++)
            c->sum += (unsigned char)buf[i];
        c->total += (size_t)n;
    }
}

static int backpressure_main(void *arg)
{
    (void)arg;
    int s[2];
    pair(SOCK_STREAM, s);
    small_buffers(s[0]);
    small_buffers(s[1]);
    gr_stream_opts opts = {.write_high = 32768, .write_low = 8192};
    gr_stream *st = open_stream(s[0], &opts);
    static char chunk[8192];
    uint64_t sum = 0;
    for (size_t i = 0; i < sizeof(chunk); i++) {
        chunk[i] = (char)(i * 13 + 1);
        sum += (unsigned char)chunk[i];
    }
    /* Nobody reads yet: writes pile up past the high-water mark and drain
     * blocks (bounded here by a timeout scope). */
    size_t written = 0;
    while (gr_stream_write_buffered(st) <= opts.write_high) {
        ck_assert_int_eq(gr_stream_write(st, chunk, sizeof(chunk)), 0);
        written += sizeof(chunk);
        ck_assert_uint_le(written, 64u * 1024 * 1024); /* the kernel buffers are bounded */
    }
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 30 * MS);
    ck_assert_int_eq(gr_stream_drain(st), -ETIMEDOUT);
    gr_scope_leave(&sc);
    /* Now a slow reader: the writer's buffer never grows past high + one
     * chunk, and every byte arrives. */
    struct bp_ctx c = {.fd = s[1]};
    gr_task *t;
    ck_assert_int_eq(gr_spawn(&t, slow_reader, &c, NULL), 0);
    for (int i = 0; i < 2000; i++) {
        ck_assert_uint_le(gr_stream_write_buffered(st), opts.write_high + sizeof(chunk));
        ck_assert_int_eq(gr_stream_write(st, chunk, sizeof(chunk)), 0);
        written += sizeof(chunk);
        ck_assert_int_eq(gr_stream_drain(st), 0);
        ck_assert_uint_le(gr_stream_write_buffered(st), opts.write_high);
    }
    ck_assert_int_eq(gr_stream_write_eof(st), 0);
    ck_assert_int_eq(gr_stream_write_buffered(st), 0);
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_uint_eq(c.total, written);
    ck_assert(c.sum == sum * (written / sizeof(chunk)));
    ck_assert_int_eq(gr_stream_close(st), 0);
    ck_assert_int_eq(gr_close(s[1]), 0);
    return 0;
}

START_TEST(drain_backpressure)
{
    gr_test_run_ok(backpressure_main, NULL, 2);
}
END_TEST

static int half_close_main(void *arg)
{
    (void)arg;
    int s[2];
    pair(SOCK_STREAM, s);
    gr_stream *a = open_stream(s[0], NULL), *b = open_stream(s[1], NULL);
    ck_assert_int_eq(gr_stream_write(a, "question", 8), 0);
    ck_assert_int_eq(gr_stream_write_eof(a), 0);
    ck_assert_int_eq(gr_stream_write(a, "more", 4), -EPIPE);
    char buf[64];
    ck_assert_int_eq(gr_stream_read_to_eof(b, buf, sizeof(buf)), 8);
    /* The other direction still works after the half-close. */
    ck_assert_int_eq(gr_stream_write(b, "answer", 6), 0);
    ck_assert_int_eq(gr_stream_close(b), 0);
    ck_assert_int_eq(gr_stream_read_to_eof(a, buf, sizeof(buf)), 6);
    ck_assert(memcmp(buf, "answer", 6) == 0);
    ck_assert_int_eq(gr_stream_close(a), 0);
    return 0;
}

START_TEST(half_close)
{
    gr_test_run_ok(half_close_main, NULL, 2);
}
END_TEST

static int reset_main(void *arg)
{
    (void)arg;
    int l = gr_listen_tcp("127.0.0.1", 0, NULL);
    ck_assert_int_ge(l, 0);
    gr_addr a;
    ck_assert_int_eq(gr_sock_name(l, &a), 0);
    gr_stream *st;
    ck_assert_int_eq(gr_open_connection(&st, "127.0.0.1", (uint16_t)gr_addr_port(&a), NULL), 0);
    int peer = gr_accept(l, NULL);
    ck_assert_int_ge(peer, 0);
    /* SO_LINGER 0: close sends RST. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    ck_assert_int_eq(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    ck_assert_int_eq(gr_close(peer), 0);
    char buf[16];
    ck_assert_int_eq(gr_stream_read(st, buf, sizeof(buf)), -ECONNRESET);
    ck_assert_int_eq(gr_stream_read(st, buf, sizeof(buf)), -ECONNRESET); /* sticky */
    /* Writing to the reset connection: the send fails in the background,
     * and flush reports it. */
    int rc = gr_stream_write(st, "x", 1);
    if (rc == 0)
        rc = gr_stream_flush(st);
    ck_assert_msg(rc == -EPIPE || rc == -ECONNRESET, "write after reset: %d", rc);
    ck_assert_int_eq(gr_stream_write(st, "y", 1), rc);
    ck_assert_int_eq(gr_stream_close(st), rc);
    ck_assert_int_eq(gr_close(l), 0);
    return 0;
}

START_TEST(peer_reset)
{
    gr_test_run_ok(reset_main, NULL, 2);
}
END_TEST

static int close_flushes_main(void *arg)
{
    (void)arg;
    int s[2];
    pair(SOCK_STREAM, s);
    small_buffers(s[0]);
    gr_stream *st = open_stream(s[0], NULL);
    size_t len = 3 * 1024 * 1024;
    char *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)(i ^ (i >> 8));
    struct bp_ctx c = {.fd = s[1]};
    gr_task *t;
    ck_assert_int_eq(gr_spawn(&t, slow_reader, &c, NULL), 0);
    ck_assert_int_eq(gr_stream_write(st, data, len), 0);
    ck_assert_int_eq(gr_stream_close(st), 0); /* waits for the 3 MiB to go out */
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_uint_eq(c.total, len);
    free(data);
    ck_assert_int_eq(gr_close(s[1]), 0);
    return 0;
}

START_TEST(close_flushes)
{
    gr_test_run_ok(close_flushes_main, NULL, 2);
}
END_TEST

/* A peer that never reads: close inside a timeout scope gives up, drops
 * the rest, and still frees everything (gr_test_run_ok counts fds). */
static int close_timeout_main(void *arg)
{
    (void)arg;
    int s[2];
    pair(SOCK_STREAM, s);
    small_buffers(s[0]);
    small_buffers(s[1]);
    gr_stream *st = open_stream(s[0], NULL);
    static char data[1 << 20];
    ck_assert_int_eq(gr_stream_write(st, data, sizeof(data)), 0);
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 30 * MS);
    ck_assert_int_eq(gr_stream_close(st), -ETIMEDOUT);
    gr_scope_leave(&sc);
    ck_assert_int_eq(gr_close(s[1]), 0);
    return 0;
}

START_TEST(close_gives_up_on_a_stuck_peer)
{
    gr_test_run_ok(close_timeout_main, NULL, 2);
}
END_TEST

struct abort_ctx {
    gr_stream *st;
};

/* The background send of a stream is parked on whichever worker wrote
 * last; abort from another task cancels it through that worker. */
static int writer_task(void *arg)
{
    struct abort_ctx *c = arg;
    static char data[1 << 20];
    return gr_stream_write(c->st, data, sizeof(data));
}

static int abort_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 20; round++) {
        int s[2];
        pair(SOCK_STREAM, s);
        small_buffers(s[0]);
        small_buffers(s[1]);
        struct abort_ctx c = {.st = open_stream(s[0], NULL)};
        gr_task *t;
        ck_assert_int_eq(gr_spawn(&t, writer_task, &c, NULL), 0);
        ck_assert_int_eq(gr_join(t), 0);
        ck_assert_int_eq(gr_stream_abort(c.st), 0);
        ck_assert_int_eq(gr_close(s[1]), 0);
    }
    return 0;
}

START_TEST(abort_cancels_background_send)
{
    gr_test_run_ok(abort_main, NULL, 2);
}
END_TEST

struct zc_reader {
    gr_stream *s;
    char *buf;
    size_t cap;
};

static int zc_read_all(void *arg)
{
    struct zc_reader *r = arg;
    return (int)gr_stream_read_to_eof(r->s, r->buf, r->cap);
}

static char zc_byte(size_t i)
{
    return (char)(i * 31 + (i >> 12));
}

static int zerocopy_main(void *arg)
{
    (void)arg;
    int l = gr_listen_tcp("127.0.0.1", 0, NULL);
    ck_assert_int_ge(l, 0);
    gr_addr a;
    gr_sock_name(l, &a);
    gr_stream_opts opts = {.zerocopy_min = 65536};
    gr_stream *st;
    ck_assert_int_eq(gr_open_connection(&st, "127.0.0.1", (uint16_t)gr_addr_port(&a), &opts), 0);
    gr_stream *peer;
    ck_assert_int_eq(gr_stream_open(&peer, gr_accept(l, NULL), NULL), 0);
    size_t len = 4 * 1024 * 1024;
    char *data = malloc(len), *got = malloc(len + 100);
    for (size_t i = 0; i < len; i++)
        data[i] = zc_byte(i);
    struct zc_reader r = {peer, got, len + 100};
    gr_task *t;
    ck_assert_int_eq(gr_spawn(&t, zc_read_all, &r, NULL), 0);
    /* A small buffered write, flushed so that the large one finds the
     * stream idle and goes out zero-copy; then another small one. */
    ck_assert_int_eq(gr_stream_write(st, "head", 4), 0);
    ck_assert_int_eq(gr_stream_flush(st), 0);
    ck_assert_int_eq(gr_stream_write(st, data, len), 0);
    memset(data, 0, 16); /* the kernel is done with it: this must not show */
    ck_assert_int_eq(gr_stream_write(st, "tail", 4), 0);
    ck_assert_int_eq(gr_stream_close(st), 0);
    ck_assert_int_eq(gr_join(t), (int)(len + 8));
    ck_assert(memcmp(got, "head", 4) == 0);
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(got[4 + i], zc_byte(i));
    ck_assert(memcmp(got + 4 + len, "tail", 4) == 0);
    free(data);
    free(got);
    ck_assert_int_eq(gr_stream_close(peer), 0);
    ck_assert_int_eq(gr_close(l), 0);
    return 0;
}

START_TEST(zerocopy_write)
{
    gr_test_run_ok(zerocopy_main, NULL, 2);
}
END_TEST

static int pipe_main(void *arg)
{
    (void)arg;
    int p[2];
    gr_test_pipe(p);
    gr_stream *r = open_stream(p[0], NULL), *w = open_stream(p[1], NULL);
    for (int i = 0; i < 100; i++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "pipe line %d\n", i);
        ck_assert_int_eq(gr_stream_write(w, line, (size_t)n), 0);
    }
    ck_assert_int_eq(gr_stream_write_eof(w), -EOPNOTSUPP);
    ck_assert_int_eq(gr_stream_close(w), 0);
    for (int i = 0; i < 100; i++) {
        char line[32], want[32];
        int n = snprintf(want, sizeof(want), "pipe line %d\n", i);
        ck_assert_int_eq(gr_stream_readline(r, line, sizeof(line)), n);
        ck_assert(memcmp(line, want, (size_t)n) == 0);
    }
    char b;
    ck_assert_int_eq(gr_stream_read(r, &b, 1), 0);
    ck_assert_int_eq(gr_stream_close(r), 0);
    return 0;
}

START_TEST(stream_over_pipe)
{
    gr_test_run_ok(pipe_main, NULL, 2);
}
END_TEST

static int args_main(void *arg)
{
    (void)arg;
    gr_stream *st;
    ck_assert_int_eq(gr_stream_open(&st, -1, NULL), -EBADF);
    int s[2];
    pair(SOCK_STREAM, s);
    gr_stream_opts bad = {.write_high = 100, .write_low = 200};
    ck_assert_int_eq(gr_stream_open(&st, s[0], &bad), -EINVAL); /* closes s[0] */
    st = open_stream(s[1], NULL);
    char buf[8];
    ck_assert_int_eq(gr_stream_read(NULL, buf, 1), -EINVAL);
    ck_assert_int_eq(gr_stream_readuntil(st, "", 0, buf, sizeof(buf)), -EINVAL);
    ck_assert_int_eq(gr_stream_write(st, NULL, 1), -EINVAL);
    ck_assert_int_eq(gr_stream_write(st, buf, 0), 0);
    ck_assert_int_eq(gr_stream_close(NULL), -EINVAL);
    ck_assert_int_eq(gr_stream_close(st), 0);
    return 0;
}

START_TEST(bad_arguments)
{
    gr_test_run_ok(args_main, NULL, 1);
}
END_TEST

/* The fallback paths on stream sockets too: single-shot receives (pipes,
 * SOCK_SEQPACKET, kernels without multishot recv) and sends through the
 * ring only. The variables are read once per process, and each test runs
 * in its own forked process. */
START_TEST(fallback_paths)
{
    setenv("GREENRING_NET_RECV", "single", 1);
    setenv("GREENRING_NET_SEND", "ring", 1);
    gr_test_run_ok(readline_main, NULL, 2);
    gr_test_run_ok(readexactly_eof_main, NULL, 2);
    gr_test_run_ok(limit_main, NULL, 2);
    gr_test_run_ok(no_loss_main, NULL, 2);
    gr_test_run_ok(cancel_reader_main, NULL, 2);
    gr_test_run_ok(read_to_eof_main, NULL, 2);
    gr_test_run_ok(reset_main, NULL, 2);
    gr_test_run_ok(half_close_main, NULL, 2);
    gr_test_run_ok(close_flushes_main, NULL, 2);
    gr_test_run_ok(backpressure_main, NULL, 2);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("reader");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, readline_and_eof_mid_line);
    tcase_add_test(tc, readuntil_separator_split_across_packets);
    tcase_add_test(tc, readexactly_eof_reports_partial);
    tcase_add_test(tc, line_over_limit);
    tcase_add_test(tc, read_to_eof_with_cap);
    tcase_add_test(tc, randomised_split_points);
    tcase_add_test(tc, timeout_loses_no_bytes);
    tcase_add_test(tc, cancelled_reader_loses_nothing);
    tcase_add_test(tc, second_reader_gets_ebusy);
    tcase_add_test(tc, parked_read_fills_its_own_buffer);
    tcase_add_test(tc, parked_read_takes_a_whole_round);
    tcase_add_test(tc, fallback_paths);
    suite_add_tcase(s, tc);
    tc = tcase_create("writer");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, drain_backpressure);
    tcase_add_test(tc, half_close);
    tcase_add_test(tc, peer_reset);
    tcase_add_test(tc, close_flushes);
    tcase_add_test(tc, close_gives_up_on_a_stuck_peer);
    tcase_add_test(tc, abort_cancels_background_send);
    tcase_add_test(tc, zerocopy_write);
    tcase_add_test(tc, stream_over_pipe);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
