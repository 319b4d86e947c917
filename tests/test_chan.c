/* Channels and select: buffering, rendezvous, close, interrupts, fairness,
 * foreign threads, and many producers/consumers on tiny capacities. */
/* greenring-test: tsan */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "support/support.h"
#include "support/waiters.h"
#include "sync/chan.h"

#define WORKERS 2

/* ---------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

/* Yield until n receivers / senders wait on ch. */
static void wait_receivers(gr_chan *ch, int n)
{
    gr_test_wait_waiters(&ch->lock, &ch->recvq, n);
}

static void wait_senders(gr_chan *ch, int n)
{
    gr_test_wait_waiters(&ch->lock, &ch->sendq, n);
}

static gr_chan *make(size_t esize, size_t cap)
{
    gr_chan *ch = NULL;
    ck_assert_int_eq(gr_chan_create(&ch, esize, cap), 0);
    ck_assert_ptr_nonnull(ch);
    return ch;
}

/* ---------------------------------------------------------------------
 * Buffering
 * --------------------------------------------------------------------- */

START_TEST(chan_buffered_fifo)
{
    /* try-calls work without a runtime */
    gr_chan *ch = make(sizeof(int), 4);
    ck_assert_uint_eq(gr_chan_cap(ch), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(gr_chan_try_send(ch, &i), 0);
    int x = 99;
    ck_assert_int_eq(gr_chan_try_send(ch, &x), -EAGAIN);
    ck_assert_uint_eq(gr_chan_len(ch), 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(gr_chan_try_recv(ch, &x), 0);
        ck_assert_int_eq(x, i);
    }
    ck_assert_int_eq(gr_chan_try_recv(ch, &x), -EAGAIN);
    /* wrap around the ring */
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(gr_chan_try_send(ch, &i), 0);
        for (int i = 0; i < 3; i++) {
            ck_assert_int_eq(gr_chan_try_recv(ch, &x), 0);
            ck_assert_int_eq(x, i);
        }
    }
    ck_assert_int_eq(gr_chan_send(ch, &x), -EPERM); /* blocking: needs a runtime */
    ck_assert_int_eq(gr_chan_destroy(ch), 0);
}
END_TEST

START_TEST(chan_unbounded_grows)
{
    gr_chan *ch = make(sizeof(int), GR_CHAN_UNBOUNDED);
    for (int i = 0; i < 10000; i++)
        ck_assert_int_eq(gr_chan_try_send(ch, &i), 0);
    ck_assert_uint_eq(gr_chan_len(ch), 10000);
    for (int i = 0; i < 10000; i++) {
        int x;
        ck_assert_int_eq(gr_chan_try_recv(ch, &x), 0);
        ck_assert_int_eq(x, i);
    }
    ck_assert_int_eq(gr_chan_try_recv(ch, NULL), -EAGAIN);
    gr_chan_destroy(ch);
}
END_TEST

START_TEST(chan_errors)
{
    gr_chan *ch;
    int x = 0;
    ck_assert_int_eq(gr_chan_create(&ch, 0, 1), -EINVAL);
    ck_assert_int_eq(gr_chan_create(NULL, 4, 1), -EINVAL);
    ck_assert_int_eq(gr_chan_create(&ch, SIZE_MAX / 2, 4), -EINVAL);
    ck_assert_int_eq(gr_chan_send(NULL, &x), -EINVAL);
    ck_assert_int_eq(gr_chan_recv(NULL, &x), -EINVAL);
    ck_assert_int_eq(gr_chan_try_send(NULL, &x), -EINVAL);
    ck_assert_int_eq(gr_chan_close(NULL), -EINVAL);
    ck_assert_int_eq(gr_chan_destroy(NULL), -EINVAL);
    ch = make(sizeof(int), 0);
    ck_assert_int_eq(gr_chan_try_send(ch, NULL), -EINVAL);
    ck_assert_int_eq(gr_chan_try_send(ch, &x), -EAGAIN); /* rendezvous, nobody there */
    ck_assert_int_eq(gr_chan_try_recv(ch, &x), -EAGAIN);
    ck_assert_int_eq(gr_select(NULL, 1, 0), -EINVAL);
    gr_select_case bad = {.chan = ch, .op = 7};
    ck_assert_int_eq(gr_select(&bad, 1, 0), -EINVAL);
    gr_select_case nosrc = {.chan = ch, .op = GR_SELECT_SEND};
    ck_assert_int_eq(gr_select(&nosrc, 1, 0), -EINVAL);
    ck_assert_int_eq(gr_select(&nosrc, 0, 0), -EINVAL);
    gr_chan_destroy(ch);
}
END_TEST

/* ---------------------------------------------------------------------
 * Rendezvous across workers
 * --------------------------------------------------------------------- */

#define PINGS 5000

static int rv_sender(void *arg)
{
    gr_chan *ch = arg;
    for (int i = 0; i < PINGS; i++)
        ck_assert_int_eq(gr_chan_send(ch, &i), 0);
    return 0;
}

static int rv_main(void *arg)
{
    (void)arg;
    gr_chan *ch = make(sizeof(int), 0);
    gr_task *s = gr_test_spawn(rv_sender, ch);
    for (int i = 0; i < PINGS; i++) {
        int x = -1;
        ck_assert_int_eq(gr_chan_recv(ch, &x), 0);
        ck_assert_int_eq(x, i);
        ck_assert_uint_eq(gr_chan_len(ch), 0);
    }
    ck_assert_int_eq(gr_join(s), 0);
    ck_assert_int_eq(gr_chan_destroy(ch), 0);
    return 0;
}

START_TEST(chan_rendezvous_in_order)
{
    gr_test_run_ok(rv_main, NULL, WORKERS);
}
END_TEST

/* ---------------------------------------------------------------------
 * Close
 * --------------------------------------------------------------------- */

static int recv_one(void *arg)
{
    int x;
    return gr_chan_recv(arg, &x);
}

struct send_arg {
    gr_chan *ch;
    int value;
};

static int send_one(void *arg)
{
    struct send_arg *a = arg;
    return gr_chan_send(a->ch, &a->value);
}

static int close_main(void *arg)
{
    (void)arg;
    gr_chan *ch = make(sizeof(int), 3);
    for (int i = 1; i <= 3; i++)
        ck_assert_int_eq(gr_chan_send(ch, &i), 0);
    struct send_arg extra = {ch, 4};
    gr_task *sender = gr_test_spawn(send_one, &extra); /* the buffer is full: waits */
    wait_senders(ch, 1);
    ck_assert_int_eq(gr_chan_destroy(ch), -EBUSY);
    ck_assert_int_eq(gr_chan_close(ch), 0);
    ck_assert_int_eq(gr_join(sender), -EPIPE); /* its element was not sent */
    ck_assert_int_eq(gr_chan_close(ch), -EPIPE);
    int x = 0;
    ck_assert_int_eq(gr_chan_send(ch, &x), -EPIPE);
    ck_assert_int_eq(gr_chan_try_send(ch, &x), -EPIPE);
    for (int i = 1; i <= 3; i++) { /* buffered elements drain */
        ck_assert_int_eq(gr_chan_recv(ch, &x), 0);
        ck_assert_int_eq(x, i);
    }
    ck_assert_int_eq(gr_chan_recv(ch, &x), -EPIPE);
    ck_assert_int_eq(gr_chan_try_recv(ch, &x), -EPIPE);
    ck_assert_int_eq(gr_chan_destroy(ch), 0);

    /* Waiting receivers are woken with -EPIPE. */
    ch = make(sizeof(int), 0);
    gr_task *r[3];
    for (int i = 0; i < 3; i++)
        r[i] = gr_test_spawn(recv_one, ch);
    wait_receivers(ch, 3);
    ck_assert_int_eq(gr_chan_close(ch), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(gr_join(r[i]), -EPIPE);
    ck_assert_int_eq(gr_chan_destroy(ch), 0);
    return 0;
}

START_TEST(chan_close_semantics)
{
    gr_test_run_ok(close_main, NULL, WORKERS);
}
END_TEST

/* ---------------------------------------------------------------------
 * Cancellation and timeouts
 * --------------------------------------------------------------------- */

struct recv_arg {
    gr_chan *ch;
    int got;
};

static int recv_into(void *arg)
{
    struct recv_arg *a = arg;
    return gr_chan_recv(a->ch, &a->got);
}

static int cancel_main(void *arg)
{
    (void)arg;
    gr_chan *ch = make(sizeof(int), 0);
    struct recv_arg a = {ch, -1}, b = {ch, -1}, c = {ch, -1};
    gr_task *ta = gr_test_spawn(recv_into, &a);
    wait_receivers(ch, 1);
    gr_task *tb = gr_test_spawn(recv_into, &b);
    wait_receivers(ch, 2);
    gr_task *tc = gr_test_spawn(recv_into, &c);
    wait_receivers(ch, 3);
    gr_cancel(tb); /* the middle one */
    ck_assert_int_eq(gr_join(tb), -ECANCELED);
    gr_cancel(ta); /* the head */
    ck_assert_int_eq(gr_join(ta), -ECANCELED);
    int v = 42;
    ck_assert_int_eq(gr_chan_send(ch, &v), 0); /* goes to c, the only one left */
    ck_assert_int_eq(gr_join(tc), 0);
    ck_assert_int_eq(c.got, 42);
    ck_assert_int_eq(a.got, -1);
    ck_assert_int_eq(b.got, -1);

    /* A receive that times out takes nothing. */
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 1000000);
    ck_assert_int_eq(gr_chan_recv(ch, &v), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&sc), 1);
    ck_assert_int_eq(gr_chan_destroy(ch), 0);

    /* A send that times out sends nothing. */
    ch = make(sizeof(int), 1);
    v = 1;
    ck_assert_int_eq(gr_chan_send(ch, &v), 0);
    gr_scope_enter_timeout(&sc, 1000000);
    v = 2;
    ck_assert_int_eq(gr_chan_send(ch, &v), -ETIMEDOUT);
    gr_scope_leave(&sc);
    ck_assert_int_eq(gr_chan_recv(ch, &v), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(gr_chan_try_recv(ch, &v), -EAGAIN);
    /* A cancelled sender: the next sender's element goes through. */
    v = 3;
    ck_assert_int_eq(gr_chan_send(ch, &v), 0);
    struct send_arg s1 = {ch, 10}, s2 = {ch, 20};
    gr_task *t1 = gr_test_spawn(send_one, &s1);
    wait_senders(ch, 1);
    gr_task *t2 = gr_test_spawn(send_one, &s2);
    wait_senders(ch, 2);
    gr_cancel(t1);
    ck_assert_int_eq(gr_join(t1), -ECANCELED);
    ck_assert_int_eq(gr_chan_recv(ch, &v), 0);
    ck_assert_int_eq(v, 3);
    ck_assert_int_eq(gr_join(t2), 0); /* moved into the buffer */
    ck_assert_int_eq(gr_chan_recv(ch, &v), 0);
    ck_assert_int_eq(v, 20);
    ck_assert_int_eq(gr_chan_try_recv(ch, &v), -EAGAIN);
    ck_assert_int_eq(gr_chan_destroy(ch), 0);
    return 0;
}

START_TEST(chan_cancel_takes_nothing)
{
    gr_test_run_ok(cancel_main, NULL, WORKERS);
}
END_TEST

/* ---------------------------------------------------------------------
 * Select
 * --------------------------------------------------------------------- */

#define FAIR_ROUNDS 2000

static int fair_main(void *arg)
{
    int *counts = arg;
    gr_chan *a = make(sizeof(int), 1), *b = make(sizeof(int), 1);
    int one = 1, two = 2, got = 0;
    gr_select_case cases[2] = {
        {.chan = a, .op = GR_SELECT_RECV, .elem = &got},
        {.chan = b, .op = GR_SELECT_RECV, .elem = &got},
    };
    for (int i = 0; i < FAIR_ROUNDS; i++) {
        gr_chan_try_send(a, &one); /* both are always ready */
        gr_chan_try_send(b, &two);
        int k = gr_select(cases, 2, GR_NO_DEADLINE);
        ck_assert(k == 0 || k == 1);
        ck_assert_int_eq(got, k + 1);
        ck_assert_int_eq(cases[k].result, 0);
        counts[k]++;
    }
    gr_chan_destroy(a);
    gr_chan_destroy(b);
    return 0;
}

START_TEST(select_is_fair)
{
    int counts[2] = {0, 0};
    gr_test_run_ok(fair_main, counts, WORKERS);
    ck_assert_int_eq(counts[0] + counts[1], FAIR_ROUNDS);
    /* A uniform choice puts each near 1000 (sd ~22): 700 is 13 sd away. */
    ck_assert_int_gt(counts[0], 700);
    ck_assert_int_gt(counts[1], 700);
}
END_TEST

struct sel_arg {
    gr_chan *a, *b, *c;
    int ra, rb, sc;
    int fired, result;
};

static int selector(void *arg)
{
    struct sel_arg *s = arg;
    gr_select_case cases[3] = {
        {.chan = s->a, .op = GR_SELECT_RECV, .elem = &s->ra},
        {.chan = s->b, .op = GR_SELECT_RECV, .elem = &s->rb},
        {.chan = s->c, .op = GR_SELECT_SEND, .elem = &s->sc},
    };
    s->fired = gr_select(cases, 3, GR_NO_DEADLINE);
    s->result = s->fired >= 0 ? cases[s->fired].result : 0;
    return s->fired < 0 ? s->fired : 0;
}

static int select_wait_main(void *arg)
{
    (void)arg;
    struct sel_arg s = {.a = make(sizeof(int), 0), .b = make(sizeof(int), 0),
                        .c = make(sizeof(int), 0), .ra = -1, .rb = -1, .sc = 77};
    /* Fires on b. */
    gr_task *t = gr_test_spawn(selector, &s);
    wait_receivers(s.b, 1);
    int v = 5;
    ck_assert_int_eq(gr_chan_send(s.b, &v), 0);
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(s.fired, 1);
    ck_assert_int_eq(s.result, 0);
    ck_assert_int_eq(s.rb, 5);
    ck_assert_int_eq(s.ra, -1);
    /* Its other cases left the channels: nobody waits on them. */
    ck_assert_int_eq(gr_test_waiters(&s.a->lock, &s.a->recvq), 0);
    ck_assert_int_eq(gr_test_waiters(&s.c->lock, &s.c->sendq), 0);
    ck_assert_int_eq(gr_chan_try_send(s.a, &v), -EAGAIN);
    /* Fires on the send to c. */
    t = gr_test_spawn(selector, &s);
    wait_senders(s.c, 1);
    ck_assert_int_eq(gr_chan_recv(s.c, &v), 0);
    ck_assert_int_eq(v, 77);
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(s.fired, 2);
    /* Woken by a close: the receive case fires with -EPIPE. */
    t = gr_test_spawn(selector, &s);
    wait_receivers(s.a, 1);
    gr_chan_close(s.a);
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(s.fired, 0);
    ck_assert_int_eq(s.result, -EPIPE);
    /* Cancelled: returns -ECANCELED, leaves no node behind. */
    struct sel_arg s2 = {.a = make(sizeof(int), 0), .b = s.b, .c = s.c, .sc = 1};
    t = gr_test_spawn(selector, &s2);
    wait_receivers(s2.a, 1);
    wait_senders(s2.c, 1);
    gr_cancel(t);
    ck_assert_int_eq(gr_join(t), -ECANCELED);
    ck_assert_int_eq(s2.fired, -ECANCELED);
    ck_assert_int_eq(gr_chan_destroy(s2.a), 0);
    ck_assert_int_eq(gr_chan_destroy(s.a), 0);
    ck_assert_int_eq(gr_chan_destroy(s.b), 0);
    ck_assert_int_eq(gr_chan_destroy(s.c), 0);
    return 0;
}

START_TEST(select_waits_then_fires_one)
{
    gr_test_run_ok(select_wait_main, NULL, WORKERS);
}
END_TEST

static int select_deadline_main(void *arg)
{
    (void)arg;
    gr_chan *a = make(sizeof(int), 1), *closed = make(sizeof(int), 1);
    int v = 0;
    gr_select_case one = {.chan = a, .op = GR_SELECT_RECV, .elem = &v};
    ck_assert_int_eq(gr_select(&one, 1, 0), -ETIMEDOUT); /* poll */
    ck_assert_int_eq(gr_select(&one, 1, gr_now() + 1000000), -ETIMEDOUT);
    ck_assert_int_eq(gr_chan_destroy(a), 0); /* no node left behind */
    a = make(sizeof(int), 1);
    one.chan = a;
    /* A scope's deadline applies too. */
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 1000000);
    ck_assert_int_eq(gr_select(&one, 1, GR_NO_DEADLINE), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&sc), 1);
    /* Disabled cases never fire. */
    gr_select_case off[2] = {{.chan = NULL, .op = GR_SELECT_RECV},
                             {.chan = NULL, .op = GR_SELECT_SEND}};
    ck_assert_int_eq(gr_select(off, 2, 0), -ETIMEDOUT);
    /* Closed channels are ready: receive (drained) and send give -EPIPE. */
    gr_chan_close(closed);
    gr_select_case c[2] = {{.chan = a, .op = GR_SELECT_RECV, .elem = &v},
                           {.chan = closed, .op = GR_SELECT_RECV, .elem = &v}};
    ck_assert_int_eq(gr_select(c, 2, GR_NO_DEADLINE), 1);
    ck_assert_int_eq(c[1].result, -EPIPE);
    c[1].op = GR_SELECT_SEND;
    ck_assert_int_eq(gr_select(c, 2, 0), 1);
    ck_assert_int_eq(c[1].result, -EPIPE);
    gr_chan_destroy(a);
    gr_chan_destroy(closed);
    return 0;
}

START_TEST(select_deadline_poll_closed)
{
    gr_test_run_ok(select_deadline_main, NULL, WORKERS);
}
END_TEST

#define MANY 12

struct many_arg {
    gr_chan *ch[MANY];
    int got[MANY];
    int fired;
};

static int many_selector(void *arg)
{
    struct many_arg *m = arg;
    gr_select_case cases[MANY];
    for (int i = 0; i < MANY; i++)
        cases[i] = (gr_select_case){.chan = m->ch[i], .op = GR_SELECT_RECV, .elem = &m->got[i]};
    m->fired = gr_select(cases, MANY, GR_NO_DEADLINE);
    return 0;
}

static int same_chan_selector(void *arg)
{
    gr_chan *ch = arg;
    int out = 7, in = -1;
    gr_select_case cases[2] = {{.chan = ch, .op = GR_SELECT_SEND, .elem = &out},
                               {.chan = ch, .op = GR_SELECT_RECV, .elem = &in}};
    return gr_select(cases, 2, GR_NO_DEADLINE);
}

static int many_main(void *arg)
{
    (void)arg;
    struct many_arg m = {.fired = -1};
    for (int i = 0; i < MANY; i++)
        m.ch[i] = i % 4 == 3 ? m.ch[i - 1] : make(sizeof(int), 0); /* some twice */
    gr_task *t = gr_test_spawn(many_selector, &m);
    wait_receivers(m.ch[9], 1);
    int v = 99;
    ck_assert_int_eq(gr_chan_send(m.ch[9], &v), 0);
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(m.fired, 9);
    ck_assert_int_eq(m.got[9], 99);
    for (int i = 0; i < MANY; i++)
        ck_assert_int_eq(gr_test_waiters(&m.ch[i]->lock, &m.ch[i]->recvq), 0);
    for (int i = 0; i < MANY; i++)
        if (i % 4 != 3)
            ck_assert_int_eq(gr_chan_destroy(m.ch[i]), 0);
    /* A select never matches itself: its send is taken by a receiver. */
    gr_chan *ch = make(sizeof(int), 0);
    t = gr_test_spawn(same_chan_selector, ch);
    wait_senders(ch, 1);
    ck_assert_int_eq(gr_chan_recv(ch, &v), 0);
    ck_assert_int_eq(v, 7);
    ck_assert_int_eq(gr_join(t), 0);
    gr_chan_destroy(ch);
    return 0;
}

START_TEST(select_many_cases_and_same_channel)
{
    gr_test_run_ok(many_main, NULL, WORKERS);
}
END_TEST

/* ---------------------------------------------------------------------
 * Foreign threads
 * --------------------------------------------------------------------- */

#define FOREIGN_N 10000

struct foreign {
    gr_chan *in, *out;
    long sum_out;
    int select_timeout;
    int select_fired;
};

static void *feeder(void *arg)
{
    struct foreign *f = arg;
    for (int i = 0; i < FOREIGN_N; i++)
        if (gr_chan_send(f->in, &i) != 0)
            abort();
    gr_chan_close(f->in);
    /* The other direction: receive what a task sends. */
    int x;
    while (gr_chan_recv(f->out, &x) == 0)
        f->sum_out += x;
    /* A foreign select times out, then fires. */
    gr_chan *quiet = NULL;
    gr_chan_create(&quiet, sizeof(int), 1);
    gr_select_case c = {.chan = quiet, .op = GR_SELECT_RECV, .elem = &x};
    f->select_timeout = gr_select(&c, 1, gr_now() + 1000000);
    x = 5;
    gr_chan_try_send(quiet, &x);
    f->select_fired = gr_select(&c, 1, GR_NO_DEADLINE);
    gr_chan_destroy(quiet);
    return NULL;
}

static int foreign_main(void *arg)
{
    struct foreign *f = arg;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, feeder, f), 0);
    long sum = 0;
    int x, expect = 0;
    while (gr_chan_recv(f->in, &x) == 0) {
        ck_assert_int_eq(x, expect++);
        sum += x;
    }
    ck_assert_int_eq(expect, FOREIGN_N);
    ck_assert_int_eq(sum, (long)FOREIGN_N * (FOREIGN_N - 1) / 2);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(gr_chan_send(f->out, &i), 0);
    gr_chan_close(f->out);
    /* The thread finishes on its own now (a short block of this worker). */
    pthread_join(th, NULL);
    return 0;
}

START_TEST(foreign_thread_feeds_channel)
{
    struct foreign f = {.sum_out = 0};
    f.in = make(sizeof(int), 16);
    f.out = make(sizeof(int), 0);
    gr_test_run_ok(foreign_main, &f, WORKERS);
    ck_assert_int_eq(f.sum_out, 1000L * 999 / 2);
    ck_assert_int_eq(f.select_timeout, -ETIMEDOUT);
    ck_assert_int_eq(f.select_fired, 0);
    gr_chan_destroy(f.in);
    gr_chan_destroy(f.out);
}
END_TEST

/* ---------------------------------------------------------------------
 * Many producers and consumers, tiny capacities
 * --------------------------------------------------------------------- */

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER 3000
#define TOTAL (PRODUCERS * PER_PRODUCER)

struct mpmc {
    gr_chan *ch, *side; /* consumers select over both */
    int id[PRODUCERS];
    _Atomic unsigned char seen[TOTAL];
    _Atomic int received;
};

struct producer_arg {
    struct mpmc *m;
    int id;
};

static int mpmc_producer(void *arg)
{
    struct producer_arg *p = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        int v = p->id * PER_PRODUCER + i;
        /* Every other element through the side channel. */
        ck_assert_int_eq(gr_chan_send(i % 2 ? p->m->side : p->m->ch, &v), 0);
    }
    return 0;
}

static int mpmc_consumer(void *arg)
{
    struct mpmc *m = arg;
    int v, open = 2;
    gr_select_case cases[2] = {{.chan = m->ch, .op = GR_SELECT_RECV, .elem = &v},
                               {.chan = m->side, .op = GR_SELECT_RECV, .elem = &v}};
    while (open) {
        int k = gr_select(cases, 2, GR_NO_DEADLINE);
        ck_assert_int_ge(k, 0);
        if (cases[k].result == -EPIPE) {
            cases[k].chan = NULL; /* drained and closed: disable */
            open--;
            continue;
        }
        ck_assert(v >= 0 && v < TOTAL);
        atomic_fetch_add(&m->seen[v], 1);
        atomic_fetch_add(&m->received, 1);
    }
    return 0;
}

static int mpmc_main(void *arg)
{
    struct mpmc *m = arg;
    gr_task *p[PRODUCERS], *c[CONSUMERS];
    struct producer_arg pa[PRODUCERS];
    for (int i = 0; i < CONSUMERS; i++)
        c[i] = gr_test_spawn(mpmc_consumer, m);
    for (int i = 0; i < PRODUCERS; i++) {
        pa[i] = (struct producer_arg){m, i};
        p[i] = gr_test_spawn(mpmc_producer, &pa[i]);
    }
    for (int i = 0; i < PRODUCERS; i++)
        ck_assert_int_eq(gr_join(p[i]), 0);
    gr_chan_close(m->ch);
    gr_chan_close(m->side);
    for (int i = 0; i < CONSUMERS; i++)
        ck_assert_int_eq(gr_join(c[i]), 0);
    return 0;
}

static void run_mpmc(size_t cap)
{
    static struct mpmc m;
    memset(&m, 0, sizeof(m));
    m.ch = make(sizeof(int), cap);
    m.side = make(sizeof(int), cap);
    gr_test_run_ok(mpmc_main, &m, WORKERS);
    ck_assert_int_eq(atomic_load(&m.received), TOTAL);
    for (int i = 0; i < TOTAL; i++)
        ck_assert_int_eq(atomic_load(&m.seen[i]), 1);
    ck_assert_int_eq(gr_chan_destroy(m.ch), 0);
    ck_assert_int_eq(gr_chan_destroy(m.side), 0);
}

START_TEST(mpmc_rendezvous_exactly_once)
{
    run_mpmc(0);
}
END_TEST

START_TEST(mpmc_capacity_one_exactly_once)
{
    run_mpmc(1);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("chan");
    TCase *tc = tcase_create("chan");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, chan_buffered_fifo);
    tcase_add_test(tc, chan_unbounded_grows);
    tcase_add_test(tc, chan_errors);
    tcase_add_test(tc, chan_rendezvous_in_order);
    tcase_add_test(tc, chan_close_semantics);
    tcase_add_test(tc, chan_cancel_takes_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("select");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, select_is_fair);
    tcase_add_test(tc, select_waits_then_fires_one);
    tcase_add_test(tc, select_deadline_poll_closed);
    tcase_add_test(tc, select_many_cases_and_same_channel);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, foreign_thread_feeds_channel);
    tcase_add_test(tc, mpmc_rendezvous_exactly_once);
    tcase_add_test(tc, mpmc_capacity_one_exactly_once);
    suite_add_tcase(s, tc);
    return s;
}
