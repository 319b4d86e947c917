/* asyncio-style queues: FIFO, LIFO, priority; task_done/join; shutdown;
 * interrupts; foreign threads. */
/* greenring-test: tsan */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "support/support.h"
#include "support/waiters.h"
#include "sync/queue.h"

#define WORKERS 2

/* ---------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

static int int_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* ---------------------------------------------------------------------
 * Orders and non-blocking calls
 * --------------------------------------------------------------------- */

START_TEST(queue_orders)
{
    static const int in[] = {5, 1, 4, 2, 3, 9, 0, 7, 8, 6};
    gr_queue *fifo, *lifo, *prio;
    ck_assert_int_eq(gr_queue_create(&fifo, sizeof(int), 0), 0);
    ck_assert_int_eq(gr_lifo_queue_create(&lifo, sizeof(int), 0), 0);
    ck_assert_int_eq(gr_priority_queue_create(&prio, sizeof(int), 0, int_cmp), 0);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(gr_queue_put_nowait(fifo, &in[i]), 0);
        ck_assert_int_eq(gr_queue_put_nowait(lifo, &in[i]), 0);
        ck_assert_int_eq(gr_queue_put_nowait(prio, &in[i]), 0);
    }
    for (int i = 0; i < 10; i++) {
        int x;
        ck_assert_int_eq(gr_queue_get_nowait(fifo, &x), 0);
        ck_assert_int_eq(x, in[i]);
        ck_assert_int_eq(gr_queue_get_nowait(lifo, &x), 0);
        ck_assert_int_eq(x, in[9 - i]);
        ck_assert_int_eq(gr_queue_get_nowait(prio, &x), 0);
        ck_assert_int_eq(x, i);
    }
    /* A larger random heap comes out sorted. */
    uint64_t seed = 12345;
    for (int i = 0; i < 1000; i++) {
        int v = (int)(gr_test_rand(&seed) % 500);
        ck_assert_int_eq(gr_queue_put_nowait(prio, &v), 0);
    }
    int prev = -1;
    for (int i = 0; i < 1000; i++) {
        int x;
        ck_assert_int_eq(gr_queue_get_nowait(prio, &x), 0);
        ck_assert_int_ge(x, prev);
        prev = x;
    }
    ck_assert_int_eq(gr_queue_destroy(fifo), 0);
    ck_assert_int_eq(gr_queue_destroy(lifo), 0);
    ck_assert_int_eq(gr_queue_destroy(prio), 0);
}
END_TEST

START_TEST(queue_nowait_and_sizes)
{
    gr_queue *q;
    int x = 1;
    ck_assert_int_eq(gr_queue_create(&q, sizeof(int), 2), 0);
    ck_assert_uint_eq(gr_queue_maxsize(q), 2);
    ck_assert_int_eq(gr_queue_empty(q), 1);
    ck_assert_int_eq(gr_queue_full(q), 0);
    ck_assert_int_eq(gr_queue_get_nowait(q, &x), -EAGAIN);
    ck_assert_int_eq(gr_queue_put_nowait(q, &x), 0);
    ck_assert_int_eq(gr_queue_put_nowait(q, &x), 0);
    ck_assert_int_eq(gr_queue_put_nowait(q, &x), -EAGAIN);
    ck_assert_uint_eq(gr_queue_qsize(q), 2);
    ck_assert_int_eq(gr_queue_full(q), 1);
    ck_assert_int_eq(gr_queue_empty(q), 0);
    ck_assert_int_eq(gr_queue_get_nowait(q, NULL), 0);
    ck_assert_int_eq(gr_queue_task_done(q), 0);
    ck_assert_int_eq(gr_queue_task_done(q), 0);
    ck_assert_int_eq(gr_queue_task_done(q), -EINVAL); /* more than were put */
    ck_assert_int_eq(gr_queue_put(q, &x), -EPERM);    /* blocking: needs a runtime */
    ck_assert_int_eq(gr_queue_destroy(q), 0);
    gr_queue *bad;
    ck_assert_int_eq(gr_queue_create(&bad, 0, 2), -EINVAL);
    ck_assert_int_eq(gr_priority_queue_create(&bad, 4, 2, NULL), -EINVAL);
    ck_assert_int_eq(gr_queue_put_nowait(NULL, &x), -EINVAL);
    ck_assert_int_eq(gr_queue_task_done(NULL), -EINVAL);
}
END_TEST

/* ---------------------------------------------------------------------
 * Producers, consumers, task_done, join
 * --------------------------------------------------------------------- */

#define QP 3
#define QC 3
#define PER 300

struct pc {
    gr_queue *q;
    _Atomic int seen[QP * PER];
    _Atomic int consumed;
    int id[QP];
};

struct prod_arg {
    struct pc *pc;
    int id;
};

static int q_producer(void *arg)
{
    struct prod_arg *p = arg;
    for (int i = 0; i < PER; i++) {
        int v = p->id * PER + i;
        ck_assert_int_eq(gr_queue_put(p->pc->q, &v), 0);
    }
    return 0;
}

static int q_consumer(void *arg)
{
    struct pc *pc = arg;
    for (;;) {
        int v;
        int rc = gr_queue_get(pc->q, &v);
        if (rc < 0)
            return rc; /* cancelled at the end */
        atomic_fetch_add(&pc->seen[v], 1);
        atomic_fetch_add(&pc->consumed, 1);
        if (v % 5 == 0)
            gr_yield();
        ck_assert_int_eq(gr_queue_task_done(pc->q), 0);
    }
}

static int pc_main(void *arg)
{
    struct pc *pc = arg;
    gr_task *p[QP], *c[QC];
    struct prod_arg pa[QP];
    for (int i = 0; i < QC; i++)
        c[i] = gr_test_spawn(q_consumer, pc);
    for (int i = 0; i < QP; i++) {
        pa[i] = (struct prod_arg){pc, i};
        p[i] = gr_test_spawn(q_producer, &pa[i]);
    }
    for (int i = 0; i < QP; i++)
        ck_assert_int_eq(gr_join(p[i]), 0);
    ck_assert_int_eq(gr_queue_join(pc->q), 0);
    /* join returned: every item put was consumed and marked done. */
    ck_assert_int_eq(atomic_load(&pc->consumed), QP * PER);
    for (int i = 0; i < QC; i++) {
        gr_cancel(c[i]);
        ck_assert_int_eq(gr_join(c[i]), -ECANCELED);
    }
    return 0;
}

static void run_pc(gr_queue *q)
{
    static struct pc pc;
    memset(&pc, 0, sizeof(pc));
    pc.q = q;
    gr_test_run_ok(pc_main, &pc, WORKERS);
    for (int i = 0; i < QP * PER; i++)
        ck_assert_int_eq(atomic_load(&pc.seen[i]), 1);
    ck_assert_int_eq(gr_queue_destroy(q), 0);
}

START_TEST(queue_producer_consumer_join_fifo)
{
    gr_queue *q;
    ck_assert_int_eq(gr_queue_create(&q, sizeof(int), 4), 0);
    run_pc(q);
}
END_TEST

START_TEST(queue_producer_consumer_join_lifo_prio)
{
    gr_queue *q;
    ck_assert_int_eq(gr_lifo_queue_create(&q, sizeof(int), 2), 0);
    run_pc(q);
    ck_assert_int_eq(gr_priority_queue_create(&q, sizeof(int), 1, int_cmp), 0);
    run_pc(q);
}
END_TEST

/* ---------------------------------------------------------------------
 * Blocking order, interrupts
 * --------------------------------------------------------------------- */

struct put_arg {
    gr_queue *q;
    int v;
};

static int put_one(void *arg)
{
    struct put_arg *a = arg;
    return gr_queue_put(a->q, &a->v);
}

struct get_arg {
    gr_queue *q;
    int got;
};

static int get_one(void *arg)
{
    struct get_arg *a = arg;
    return gr_queue_get(a->q, &a->got);
}

static int join_one(void *arg)
{
    return gr_queue_join(arg);
}

static int interrupt_main(void *arg)
{
    (void)arg;
    gr_queue *q;
    ck_assert_int_eq(gr_priority_queue_create(&q, sizeof(int), 2, int_cmp), 0);
    int v = 50;
    gr_queue_put(q, &v);
    v = 40;
    gr_queue_put(q, &v);
    /* Putters wait on the full queue; their items go in as room appears,
     * and come out in priority order. */
    struct put_arg p1 = {q, 30}, p2 = {q, 10}, p3 = {q, 20};
    gr_task *t1 = gr_test_spawn(put_one, &p1);
    gr_test_wait_waiters(&q->lock, &q->putters, 1);
    gr_task *t2 = gr_test_spawn(put_one, &p2);
    gr_test_wait_waiters(&q->lock, &q->putters, 2);
    gr_task *t3 = gr_test_spawn(put_one, &p3);
    gr_test_wait_waiters(&q->lock, &q->putters, 3);
    gr_cancel(t2); /* its 10 never enters */
    ck_assert_int_eq(gr_join(t2), -ECANCELED);
    int x;
    ck_assert_int_eq(gr_queue_get(q, &x), 0);
    ck_assert_int_eq(x, 40); /* 30 moves in */
    ck_assert_int_eq(gr_join(t1), 0);
    ck_assert_int_eq(gr_queue_get(q, &x), 0);
    ck_assert_int_eq(x, 30); /* 20 moves in */
    ck_assert_int_eq(gr_join(t3), 0);
    ck_assert_int_eq(gr_queue_get(q, &x), 0);
    ck_assert_int_eq(x, 20);
    ck_assert_int_eq(gr_queue_get(q, &x), 0);
    ck_assert_int_eq(x, 50);
    ck_assert_int_eq(gr_queue_get_nowait(q, &x), -EAGAIN);

    /* Getters: an interrupted one takes nothing. */
    struct get_arg g1 = {q, -1}, g2 = {q, -1};
    gr_task *tg1 = gr_test_spawn(get_one, &g1);
    gr_test_wait_waiters(&q->lock, &q->getters, 1);
    gr_task *tg2 = gr_test_spawn(get_one, &g2);
    gr_test_wait_waiters(&q->lock, &q->getters, 2);
    gr_cancel(tg1);
    ck_assert_int_eq(gr_join(tg1), -ECANCELED);
    v = 7;
    ck_assert_int_eq(gr_queue_put(q, &v), 0);
    ck_assert_int_eq(gr_join(tg2), 0);
    ck_assert_int_eq(g2.got, 7);
    ck_assert_int_eq(g1.got, -1);
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 1000000);
    ck_assert_int_eq(gr_queue_get(q, &x), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&sc), 1);

    /* join waits for task_done; an interrupted join leaves no trace. */
    gr_task *j = gr_test_spawn(join_one, q);
    gr_test_wait_waiters(&q->lock, &q->joiners, 1);
    gr_task *jc = gr_test_spawn(join_one, q);
    gr_test_wait_waiters(&q->lock, &q->joiners, 2);
    gr_cancel(jc);
    ck_assert_int_eq(gr_join(jc), -ECANCELED);
    for (int i = 0; i < 4; i++) /* 50, 40, 30, 20 */
        ck_assert_int_eq(gr_queue_task_done(q), 0);
    ck_assert_int_eq(gr_test_waiters(&q->lock, &q->joiners), 1); /* 7 is not done yet */
    ck_assert_int_eq(gr_queue_task_done(q), 0);
    ck_assert_int_eq(gr_join(j), 0);
    ck_assert_int_eq(gr_queue_join(q), 0);
    ck_assert_int_eq(gr_queue_destroy(q), 0);
    return 0;
}

START_TEST(queue_interrupts_and_handoff)
{
    gr_test_run_ok(interrupt_main, NULL, WORKERS);
}
END_TEST

/* ---------------------------------------------------------------------
 * Shutdown
 * --------------------------------------------------------------------- */

static int shutdown_main(void *arg)
{
    (void)arg;
    gr_queue *q;
    int x = 0;
    /* Graceful: items stay retrievable; waiting putters fail. */
    ck_assert_int_eq(gr_queue_create(&q, sizeof(int), 2), 0);
    for (int i = 1; i <= 2; i++)
        gr_queue_put(q, &i);
    struct put_arg p = {q, 3};
    gr_task *tp = gr_test_spawn(put_one, &p);
    gr_test_wait_waiters(&q->lock, &q->putters, 1);
    ck_assert_int_eq(gr_queue_shutdown(q, 0), 0);
    ck_assert_int_eq(gr_join(tp), -ESHUTDOWN);
    ck_assert_int_eq(gr_queue_put(q, &x), -ESHUTDOWN);
    ck_assert_int_eq(gr_queue_put_nowait(q, &x), -ESHUTDOWN);
    ck_assert_int_eq(gr_queue_get(q, &x), 0);
    ck_assert_int_eq(x, 1);
    ck_assert_int_eq(gr_queue_get_nowait(q, &x), 0);
    ck_assert_int_eq(x, 2);
    ck_assert_int_eq(gr_queue_get(q, &x), -ESHUTDOWN);
    ck_assert_int_eq(gr_queue_get_nowait(q, &x), -ESHUTDOWN);
    /* task_done still counts; join works. */
    ck_assert_int_eq(gr_queue_task_done(q), 0);
    ck_assert_int_eq(gr_queue_task_done(q), 0);
    ck_assert_int_eq(gr_queue_join(q), 0);
    ck_assert_int_eq(gr_queue_destroy(q), 0);

    /* Waiting getters are woken with -ESHUTDOWN. */
    ck_assert_int_eq(gr_queue_create(&q, sizeof(int), 0), 0);
    struct get_arg g = {q, -1};
    gr_task *tg = gr_test_spawn(get_one, &g);
    gr_test_wait_waiters(&q->lock, &q->getters, 1);
    gr_queue_shutdown(q, 0);
    ck_assert_int_eq(gr_join(tg), -ESHUTDOWN);
    ck_assert_int_eq(gr_queue_destroy(q), 0);

    /* Immediate: drained, counted as done, joiners released. */
    ck_assert_int_eq(gr_queue_create(&q, sizeof(int), 0), 0);
    for (int i = 0; i < 5; i++)
        gr_queue_put(q, &i);
    ck_assert_int_eq(gr_queue_get(q, &x), 0); /* taken, not done yet */
    gr_task *j = gr_test_spawn(join_one, q);
    gr_test_wait_waiters(&q->lock, &q->joiners, 1);
    ck_assert_int_eq(gr_queue_shutdown(q, 1), 0);
    ck_assert_uint_eq(gr_queue_qsize(q), 0);
    ck_assert_int_eq(gr_test_waiters(&q->lock, &q->joiners), 1); /* the taken one is not done */
    ck_assert_int_eq(gr_queue_get(q, &x), -ESHUTDOWN);
    ck_assert_int_eq(gr_queue_task_done(q), 0);
    ck_assert_int_eq(gr_join(j), 0);
    ck_assert_int_eq(gr_queue_task_done(q), -EINVAL);
    ck_assert_int_eq(gr_queue_shutdown(q, 1), 0); /* twice: harmless */
    ck_assert_int_eq(gr_queue_destroy(q), 0);
    return 0;
}

START_TEST(queue_shutdown_semantics)
{
    gr_test_run_ok(shutdown_main, NULL, WORKERS);
}
END_TEST

/* ---------------------------------------------------------------------
 * Foreign threads
 * --------------------------------------------------------------------- */

#define FOREIGN_ITEMS 5000

static void *foreign_putter(void *arg)
{
    gr_queue *q = arg;
    for (int i = 0; i < FOREIGN_ITEMS; i++)
        if (gr_queue_put(q, &i) != 0)
            abort();
    /* Wait (blocking this thread) until the tasks marked everything done. */
    if (gr_queue_join(q) != 0)
        abort();
    gr_queue_shutdown(q, 0);
    return NULL;
}

static int foreign_main(void *arg)
{
    gr_queue *q = arg;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, foreign_putter, q), 0);
    long sum = 0;
    int x, n = 0;
    while (gr_queue_get(q, &x) == 0) {
        ck_assert_int_eq(x, n++);
        sum += x;
        gr_queue_task_done(q);
    }
    ck_assert_int_eq(n, FOREIGN_ITEMS);
    ck_assert_int_eq(sum, (long)FOREIGN_ITEMS * (FOREIGN_ITEMS - 1) / 2);
    pthread_join(th, NULL); /* it is past its last blocking call */
    return 0;
}

START_TEST(queue_foreign_thread)
{
    gr_queue *q;
    ck_assert_int_eq(gr_queue_create(&q, sizeof(int), 8), 0);
    gr_test_run_ok(foreign_main, q, WORKERS);
    ck_assert_int_eq(gr_queue_destroy(q), 0);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("queue");
    TCase *tc = tcase_create("queue");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, queue_orders);
    tcase_add_test(tc, queue_nowait_and_sizes);
    tcase_add_test(tc, queue_producer_consumer_join_fifo);
    tcase_add_test(tc, queue_producer_consumer_join_lifo_prio);
    tcase_add_test(tc, queue_interrupts_and_handoff);
    tcase_add_test(tc, queue_shutdown_semantics);
    tcase_add_test(tc, queue_foreign_thread);
    suite_add_tcase(s, tc);
    return s;
}
