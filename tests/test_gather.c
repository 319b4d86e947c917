/* gr_gather (input-order results, FAIL_FAST / COLLECT_ALL), gr_wait
 * (ANY / FIRST_ERROR / ALL, deadlines, nothing cancelled) and
 * gr_as_completed (completion order).
 *
 * Completion order is made deterministic with pipes the test writes and
 * with done callbacks that release the next task, never with sleeps.
 */
/* greenring-test: tsan */
/* greenring-test: asan */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/support.h"

#define FOREVER INT64_MAX
#define MS ((int64_t)1000000)

/* ---------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

/* A task that reads one byte from `fd` and returns `value`; if the read
 * fails it counts the interruption and returns the error. */
struct piped {
    int p[2];
    int value;
    _Atomic int *cleanup;
};

static int piped_task(void *arg)
{
    struct piped *t = arg;
    char b;
    int rc = (int)gr_read(t->p[0], &b, 1);
    if (rc != 1) {
        if (t->cleanup)
            atomic_fetch_add(t->cleanup, 1);
        return rc;
    }
    return t->value;
}

static void piped_open(struct piped *t, int n)
{
    for (int i = 0; i < n; i++)
        gr_test_pipe(t[i].p);
}

static void piped_close(struct piped *t, int n)
{
    for (int i = 0; i < n; i++) {
        gr_test_close_pipe(t[i].p);
    }
}

static void release(struct piped *t)
{
    ck_assert_int_eq(write(t->p[1], "r", 1), 1);
}

/* Watches the main task: if it ever parks on `reason` before `stop` is
 * set, writes one byte to `fd` (which lets a task finish that must not
 * finish if the call under test returns without parking). */
struct releaser {
    const char *reason;
    int fd;
    _Atomic int stop;
    int released;
};

static int releaser_task(void *arg)
{
    struct releaser *r = arg;
    while (!atomic_load(&r->stop)) {
        if (gr_test_is_parked("main", r->reason)) {
            ck_assert_int_eq(write(r->fd, "x", 1), 1);
            r->released = 1;
            return 0;
        }
        ck_assert_int_eq(gr_yield(), 0);
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * gather, COLLECT_ALL: results in input order whatever the completion
 * order. Task i is released by the done callback of the task that
 * completes before it (COMPLETION lists the order).
 * --------------------------------------------------------------------- */

#define MIXED 6
static const int COMPLETION[MIXED] = {4, 1, 5, 0, 3, 2};
static const int VALUES[MIXED] = {0, -EIO, 7, -ENOENT, 3, -EPIPE};

/* Done callback of the k-th task to complete: releases the (k+1)-th. */
struct chain_link {
    gr_done_cb cb;
    struct piped *next;
};

static void chain_cb(gr_task *task, void *arg)
{
    (void)task;
    struct chain_link *l = arg;
    /* Not a blocking call: a write(2) into a pipe with room. */
    if (l->next)
        ck_assert_int_eq(write(l->next->p[1], "c", 1), 1);
}

struct order_cb {
    gr_done_cb cb;
    int index;
    _Atomic int *seq;
    int *order;
};

static void order_record(gr_task *task, void *arg)
{
    (void)task;
    struct order_cb *o = arg;
    o->order[atomic_fetch_add(o->seq, 1)] = o->index;
}

static int collect_all_main(void *arg)
{
    (void)arg;
    struct piped t[MIXED];
    gr_task *h[MIXED];
    struct chain_link links[MIXED];
    struct order_cb orders[MIXED];
    _Atomic int seq = 0;
    int order[MIXED];
    memset(t, 0, sizeof(t));
    piped_open(t, MIXED);
    for (int i = 0; i < MIXED; i++) {
        t[i].value = VALUES[i];
        h[i] = gr_test_spawn_named(piped_task, &t[i], "mixed");
        orders[i] = (struct order_cb){.index = i, .seq = &seq, .order = order};
        ck_assert_int_eq(gr_task_add_done_callback(h[i], &orders[i].cb, order_record, &orders[i]), 0);
    }
    for (int k = 0; k < MIXED; k++) {
        int i = COMPLETION[k];
        links[k] = (struct chain_link){.next = k + 1 < MIXED ? &t[COMPLETION[k + 1]] : NULL};
        ck_assert_int_eq(gr_task_add_done_callback(h[i], &links[k].cb, chain_cb, &links[k]), 0);
    }
    release(&t[COMPLETION[0]]);
    int results[MIXED];
    for (int i = 0; i < MIXED; i++)
        results[i] = 12345;
    ck_assert_int_eq(gr_gather(h, MIXED, results, GR_GATHER_COLLECT_ALL), 0);
    for (int i = 0; i < MIXED; i++) {
        ck_assert_int_eq(results[i], VALUES[i]);
        ck_assert_int_eq(gr_task_done(h[i]), -ESRCH); /* released */
    }
    ck_assert_int_eq(atomic_load(&seq), MIXED);
    for (int k = 0; k < MIXED; k++)
        ck_assert_int_eq(order[k], COMPLETION[k]);
    piped_close(t, MIXED);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_gather_collect_all_input_order)
{
    gr_test_run_ok(collect_all_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * gather, FAIL_FAST: the first error is returned, the others are cancelled
 * and joined, every result filled in.
 * --------------------------------------------------------------------- */

static int fail_fast_main(void *arg)
{
    (void)arg;
    _Atomic int cleanup = 0;
    struct piped fail = {.value = -EIO, .cleanup = &cleanup};
    struct piped never = {.value = 1, .cleanup = &cleanup};
    gr_test_pipe(fail.p);
    gr_test_pipe(never.p);
    gr_task *h[4];
    h[0] = gr_test_spawn_named(gr_test_sleep_forever, (void *)&cleanup, "sleeper");
    h[1] = gr_test_spawn_named(piped_task, &fail, "failer");
    h[2] = gr_test_spawn_named(gr_test_return_arg, (void *)(intptr_t)5, "five");
    h[3] = gr_test_spawn_named(piped_task, &never, "never");
    gr_test_wait_parked("sleeper", "sleep");
    gr_test_wait_parked("failer", "io read");
    gr_test_wait_parked("never", "io read");
    release(&fail);
    int results[4] = {1, 1, 1, 1};
    ck_assert_int_eq(gr_gather(h, 4, results, GR_GATHER_FAIL_FAST), -EIO);
    ck_assert_int_eq(results[0], -ECANCELED);
    ck_assert_int_eq(results[1], -EIO);
    ck_assert_int_eq(results[2], 5);
    ck_assert_int_eq(results[3], -ECANCELED);
    ck_assert_int_eq(atomic_load(&cleanup), 2);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(gr_task_done(h[i]), -ESRCH);
    gr_test_close_pipe(fail.p);
    gr_test_close_pipe(never.p);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_gather_fail_fast)
{
    gr_test_run_ok(fail_fast_main, NULL, 2);
}
END_TEST

static int fail_fast_ok_main(void *arg)
{
    (void)arg;
    gr_task *h[40]; /* more than gr_wait keeps on its stack */
    for (int i = 0; i < 40; i++)
        h[i] = gr_test_spawn_named(gr_test_return_arg, (void *)(intptr_t)(i * 3), "v");
    int results[40];
    ck_assert_int_eq(gr_gather(h, 40, results, GR_GATHER_FAIL_FAST), 0);
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(results[i], i * 3);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_gather_fail_fast_all_succeed)
{
    gr_test_run_ok(fail_fast_ok_main, NULL, 2);
}
END_TEST

/* FAIL_FAST returns the first error "in completion order". Task B fails
 * first; its done callback (added after gather's own) cancels task A, which
 * then fails too, before the gatherer gets to run (one worker; a yielding
 * task keeps the gatherer from being the oldest queued task). Whatever the
 * scheduling, B's error came first. */
struct order_case {
    struct piped b;
    gr_task *a, *bh;
    gr_done_cb cb;
    _Atomic int a_ran;
};

static int order_a(void *arg)
{
    struct order_case *c = arg;
    int rc = gr_sleep(FOREVER);
    atomic_store(&c->a_ran, 1);
    return rc == -ECANCELED ? -EIO : rc;
}

static void cancel_a(gr_task *task, void *arg)
{
    (void)task;
    struct order_case *c = arg;
    ck_assert_int_eq(gr_cancel(c->a), 0);
}

static int order_helper(void *arg)
{
    struct order_case *c = arg;
    gr_test_wait_parked("main", "wait");
    ck_assert_int_eq(gr_task_add_done_callback(c->bh, &c->cb, cancel_a, c), 0);
    release(&c->b);
    return 0;
}

static int order_yielder(void *arg)
{
    struct order_case *c = arg;
    while (!atomic_load(&c->a_ran))
        ck_assert_int_eq(gr_yield(), 0);
    return 0;
}

static int fail_fast_order_main(void *arg)
{
    (void)arg;
    struct order_case c;
    memset(&c, 0, sizeof(c));
    c.b.value = -ENOENT;
    gr_test_pipe(c.b.p);
    gr_task *h[2];
    h[0] = c.a = gr_test_spawn_named(order_a, &c, "a");
    h[1] = c.bh = gr_test_spawn_named(piped_task, &c.b, "b");
    gr_task *helper = gr_test_spawn_named(order_helper, &c, "helper");
    gr_task *yielder = gr_test_spawn_named(order_yielder, &c, "yielder");
    int results[2] = {1, 1};
    int rc = gr_gather(h, 2, results, GR_GATHER_FAIL_FAST);
    ck_assert_int_eq(gr_join(helper), 0);
    ck_assert_int_eq(gr_join(yielder), 0);
    ck_assert_int_eq(results[0], -EIO);
    ck_assert_int_eq(results[1], -ENOENT);
    ck_assert_msg(rc == -ENOENT,
                  "gr_gather(FAIL_FAST) returned %d; B failed first with %d (A: %d)", rc, -ENOENT,
                  -EIO);
    gr_test_close_pipe(c.b.p);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_gather_fail_fast_first_in_completion_order)
{
    gr_test_run_ok(fail_fast_order_main, NULL, 1);
}
END_TEST

/* A task that had already failed before gather was called: gather must
 * return at once, cancel the still-running task and return the error. If
 * gather parks instead, the releaser lets the running task finish with 0,
 * which shows up in results[1]. */
static int already_failed_main(void *arg)
{
    (void)arg;
    _Atomic int cleanup = 0;
    struct piped slow = {.value = 0, .cleanup = &cleanup};
    gr_test_pipe(slow.p);
    gr_task *h[2];
    h[0] = gr_test_spawn_named(gr_test_return_arg, (void *)(intptr_t)-EIO, "failed");
    ck_assert_int_eq(gr_wait(&h[0], 1, GR_WAIT_ALL, FOREVER, NULL), 1);
    h[1] = gr_test_spawn_named(piped_task, &slow, "slow");
    gr_test_wait_parked("slow", "io read");
    struct releaser r = {.reason = "wait", .fd = slow.p[1]};
    gr_task *rt = gr_test_spawn_named(releaser_task, &r, "releaser");
    int results[2] = {1, 1};
    int rc = gr_gather(h, 2, results, GR_GATHER_FAIL_FAST);
    atomic_store(&r.stop, 1);
    ck_assert_int_eq(gr_join(rt), 0);
    ck_assert_int_eq(rc, -EIO);
    ck_assert_int_eq(results[0], -EIO);
    ck_assert_msg(results[1] == -ECANCELED && !r.released,
                  "gather parked although a task had already failed "
                  "(results[1] = %d, released = %d)",
                  results[1], r.released);
    ck_assert_int_eq(atomic_load(&cleanup), 1);
    gr_test_close_pipe(slow.p);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_gather_fail_fast_already_failed)
{
    gr_test_run_ok(already_failed_main, NULL, 1);
}
END_TEST

/* A cancelled gatherer cancels and joins all, and returns -ECANCELED. */
struct gatherer {
    gr_task *h[3];
    int results[3];
    int rc;
};

static int gatherer_task(void *arg)
{
    struct gatherer *g = arg;
    g->rc = gr_gather(g->h, 3, g->results, GR_GATHER_COLLECT_ALL);
    return 0;
}

static int gather_cancelled_main(void *arg)
{
    (void)arg;
    _Atomic int cleanup = 0;
    struct gatherer g = {.rc = 12345};
    for (int i = 0; i < 3; i++)
        g.h[i] = gr_test_spawn_named(gr_test_sleep_forever, (void *)&cleanup, "sleeper");
    gr_task *t = gr_test_spawn_named(gatherer_task, &g, "gatherer");
    gr_test_wait_parked("gatherer", "wait");
    ck_assert_int_eq(gr_cancel(t), 0);
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(g.rc, -ECANCELED);
    ck_assert_int_eq(atomic_load(&cleanup), 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(g.results[i], -ECANCELED);
        ck_assert_int_eq(gr_task_done(g.h[i]), -ESRCH);
    }
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_gather_cancelled)
{
    gr_test_run_ok(gather_cancelled_main, NULL, 2);
}
END_TEST

static int gather_edges_main(void *arg)
{
    (void)arg;
    int results[2];
    ck_assert_int_eq(gr_gather(NULL, 0, results, GR_GATHER_FAIL_FAST), 0);
    ck_assert_int_eq(gr_gather(NULL, 0, results, GR_GATHER_COLLECT_ALL), 0);
    gr_task *h[2];
    h[0] = gr_test_spawn_named(gr_test_return_arg, (void *)(intptr_t)4, "four");
    h[1] = NULL;
    ck_assert_int_eq(gr_gather(h, 1, NULL, GR_GATHER_FAIL_FAST), -EINVAL);
    ck_assert_int_eq(gr_gather(h, 1, results, (enum gr_gather_policy)7), -EINVAL);
    /* A bad handle among good ones: nothing is consumed. */
    ck_assert_int_eq(gr_gather(h, 2, results, GR_GATHER_COLLECT_ALL), -EINVAL);
    ck_assert_int_eq(gr_join(h[0]), 4);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_gather_edges)
{
    gr_test_run_ok(gather_edges_main, NULL, 2);
}
END_TEST

#define MANY 1000

static int gather_many_main(void *arg)
{
    (void)arg;
    gr_task **h = calloc(MANY, sizeof(*h));
    int *results = calloc(MANY, sizeof(*results));
    ck_assert(h && results);
    for (int i = 0; i < MANY; i++)
        ck_assert_int_eq(gr_spawn(&h[i], gr_test_return_arg, (void *)(intptr_t)i, NULL), 0);
    ck_assert_int_eq(gr_gather(h, MANY, results, GR_GATHER_COLLECT_ALL), 0);
    for (int i = 0; i < MANY; i++)
        ck_assert_int_eq(results[i], i);
    free(h);
    free(results);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_gather_many)
{
    gr_test_run_ok(gather_many_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * gr_wait
 * --------------------------------------------------------------------- */

#define WN 4

static int wait_any_main(void *arg)
{
    (void)arg;
    struct piped t[WN];
    gr_task *h[WN];
    memset(t, 0, sizeof(t));
    piped_open(t, WN);
    for (int i = 0; i < WN; i++) {
        t[i].value = 10 + i;
        h[i] = gr_test_spawn_named(piped_task, &t[i], "w");
    }
    release(&t[2]);
    unsigned char done[WN];
    memset(done, 7, sizeof(done));
    ck_assert_int_eq(gr_wait(h, WN, GR_WAIT_ANY, FOREVER, &done[0]), 1);
    for (int i = 0; i < WN; i++)
        ck_assert_int_eq(done[i], i == 2);
    /* Nothing was cancelled or joined: the others still run. */
    for (int i = 0; i < WN; i++) {
        ck_assert_int_eq(gr_task_cancelled(h[i]), 0);
        ck_assert_int_eq(gr_task_done(h[i]), i == 2);
    }
    /* Waiting again for ANY with one done returns at once. */
    ck_assert_int_eq(gr_wait(h, WN, GR_WAIT_ANY, FOREVER, NULL), 1);
    for (int i = 0; i < WN; i++)
        if (i != 2)
            release(&t[i]);
    for (int i = 0; i < WN; i++)
        ck_assert_int_eq(gr_join(h[i]), 10 + i);
    piped_close(t, WN);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_wait_any)
{
    gr_test_run_ok(wait_any_main, NULL, 2);
}
END_TEST

static int wait_first_error_main(void *arg)
{
    (void)arg;
    struct piped t[3];
    gr_task *h[3];
    memset(t, 0, sizeof(t));
    piped_open(t, 3);
    t[0].value = 0;
    t[1].value = -EIO;
    t[2].value = 2;
    for (int i = 0; i < 3; i++)
        h[i] = gr_test_spawn_named(piped_task, &t[i], "w");
    /* t0 succeeds first: not enough for FIRST_ERROR. */
    release(&t[0]);
    ck_assert_int_eq(gr_wait(&h[0], 1, GR_WAIT_ALL, FOREVER, NULL), 1);
    release(&t[1]);
    unsigned char done[3] = {9, 9, 9};
    ck_assert_int_eq(gr_wait(h, 3, GR_WAIT_FIRST_ERROR, FOREVER, done), 2);
    ck_assert_int_eq(done[0], 1);
    ck_assert_int_eq(done[1], 1);
    ck_assert_int_eq(done[2], 0);
    ck_assert_int_eq(gr_task_cancelled(h[2]), 0);
    ck_assert_int_eq(gr_task_done(h[2]), 0);
    release(&t[2]);
    ck_assert_int_eq(gr_join(h[0]), 0);
    ck_assert_int_eq(gr_join(h[1]), -EIO);
    ck_assert_int_eq(gr_join(h[2]), 2);
    piped_close(t, 3);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_wait_first_error)
{
    gr_test_run_ok(wait_first_error_main, NULL, 2);
}
END_TEST

/* FIRST_ERROR with no error returns when all are done. */
static int wait_first_error_none_main(void *arg)
{
    (void)arg;
    gr_task *h[5];
    for (int i = 0; i < 5; i++)
        h[i] = gr_test_spawn_named(gr_test_return_arg, (void *)(intptr_t)i, "ok");
    unsigned char done[5];
    ck_assert_int_eq(gr_wait(h, 5, GR_WAIT_FIRST_ERROR, FOREVER, done), 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(done[i], 1);
        ck_assert_int_eq(gr_join(h[i]), i);
    }
    return 0;
}

START_TEST(test_wait_first_error_none)
{
    gr_test_run_ok(wait_first_error_none_main, NULL, 2);
}
END_TEST

/* FIRST_ERROR with a task that failed before the call: returns at once
 * (with the releaser as the witness, as in the gather case). */
static int wait_already_failed_main(void *arg)
{
    (void)arg;
    struct piped slow = {.value = 0};
    gr_test_pipe(slow.p);
    gr_task *h[2];
    h[0] = gr_test_spawn_named(gr_test_return_arg, (void *)(intptr_t)-EIO, "failed");
    ck_assert_int_eq(gr_wait(&h[0], 1, GR_WAIT_ALL, FOREVER, NULL), 1);
    h[1] = gr_test_spawn_named(piped_task, &slow, "slow");
    gr_test_wait_parked("slow", "io read");
    struct releaser r = {.reason = "wait", .fd = slow.p[1]};
    gr_task *rt = gr_test_spawn_named(releaser_task, &r, "releaser");
    unsigned char done[2] = {9, 9};
    int rc = gr_wait(h, 2, GR_WAIT_FIRST_ERROR, FOREVER, done);
    atomic_store(&r.stop, 1);
    ck_assert_int_eq(gr_join(rt), 0);
    ck_assert_msg(rc == 1 && done[0] == 1 && done[1] == 0 && !r.released,
                  "gr_wait(FIRST_ERROR) did not see the task that had already failed "
                  "(rc = %d, done = {%d, %d}, parked = %d)",
                  rc, done[0], done[1], r.released);
    if (!r.released)
        release(&slow);
    ck_assert_int_eq(gr_join(h[0]), -EIO);
    ck_assert_int_eq(gr_join(h[1]), 0);
    gr_test_close_pipe(slow.p);
    return 0;
}

START_TEST(test_wait_first_error_already_failed)
{
    gr_test_run_ok(wait_already_failed_main, NULL, 1);
}
END_TEST

/* ALL with a deadline: returns how many are done, cancels nothing; the
 * rest can be joined later with their results intact. */
static int wait_all_deadline_main(void *arg)
{
    (void)arg;
    struct piped t[3];
    gr_task *h[3];
    memset(t, 0, sizeof(t));
    piped_open(t, 3);
    for (int i = 0; i < 3; i++) {
        t[i].value = 20 + i;
        h[i] = gr_test_spawn_named(piped_task, &t[i], "w");
    }
    release(&t[1]);
    ck_assert_int_eq(gr_wait(&h[1], 1, GR_WAIT_ALL, FOREVER, NULL), 1);
    unsigned char done[3] = {9, 9, 9};
    ck_assert_int_eq(gr_wait(h, 3, GR_WAIT_ALL, gr_now() + 2 * MS, done), 1);
    ck_assert_int_eq(done[0], 0);
    ck_assert_int_eq(done[1], 1);
    ck_assert_int_eq(done[2], 0);
    /* A deadline already past: the same answer. */
    ck_assert_int_eq(gr_wait(h, 3, GR_WAIT_ALL, gr_now() - 1, NULL), 1);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(gr_task_cancelled(h[i]), 0);
    /* The deadline is the call's own: no scope fired, later calls work. */
    ck_assert_int_eq(gr_nop(), 0);
    release(&t[0]);
    release(&t[2]);
    ck_assert_int_eq(gr_wait(h, 3, GR_WAIT_ALL, FOREVER, done), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(gr_join(h[i]), 20 + i);
    piped_close(t, 3);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_wait_all_deadline)
{
    gr_test_run_ok(wait_all_deadline_main, NULL, 2);
}
END_TEST

/* Cancelled while waiting: -ECANCELED; the tasks are left alone. An
 * expired scope around the wait: -ETIMEDOUT. */
struct waiter {
    gr_task **h;
    int rc;
};

static int waiter_task(void *arg)
{
    struct waiter *w = arg;
    w->rc = gr_wait(w->h, 2, GR_WAIT_ALL, FOREVER, NULL);
    return 0;
}

static int wait_interrupted_main(void *arg)
{
    (void)arg;
    struct piped t[2];
    gr_task *h[2];
    memset(t, 0, sizeof(t));
    piped_open(t, 2);
    for (int i = 0; i < 2; i++) {
        t[i].value = 30 + i;
        h[i] = gr_test_spawn_named(piped_task, &t[i], "w");
    }
    struct waiter w = {.h = h, .rc = 12345};
    gr_task *wt = gr_test_spawn_named(waiter_task, &w, "waiter");
    gr_test_wait_parked("waiter", "wait");
    ck_assert_int_eq(gr_cancel(wt), 0);
    ck_assert_int_eq(gr_join(wt), 0);
    ck_assert_int_eq(w.rc, -ECANCELED);
    gr_scope s;
    ck_assert_int_eq(gr_scope_enter_timeout(&s, 2 * MS), 0);
    ck_assert_int_eq(gr_wait(h, 2, GR_WAIT_ALL, FOREVER, NULL), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&s), 1);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(gr_task_cancelled(h[i]), 0);
        release(&t[i]);
        ck_assert_int_eq(gr_join(h[i]), 30 + i);
    }
    piped_close(t, 2);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_wait_interrupted)
{
    gr_test_run_ok(wait_interrupted_main, NULL, 2);
}
END_TEST

static int wait_bad_main(void *arg)
{
    (void)arg;
    gr_task *h[2] = {NULL, NULL};
    ck_assert_int_eq(gr_wait(h, 0, GR_WAIT_ANY, FOREVER, NULL), -EINVAL); /* never satisfiable */
    ck_assert_int_eq(gr_wait(NULL, 1, GR_WAIT_ALL, FOREVER, NULL), -EINVAL);
    ck_assert_int_eq(gr_wait(h, 1, (enum gr_wait_mode)9, FOREVER, NULL), -EINVAL);
    ck_assert_int_eq(gr_wait(h, 1, GR_WAIT_ALL, FOREVER, NULL), -EINVAL);
    ck_assert_int_eq(gr_wait(NULL, 0, GR_WAIT_ALL, FOREVER, NULL), 0);
    h[0] = gr_test_spawn_named(gr_test_return_arg, (void *)(intptr_t)1, "one");
    ck_assert_int_eq(gr_join(h[0]), 1);
    ck_assert_int_eq(gr_wait(h, 1, GR_WAIT_ALL, FOREVER, NULL), -ESRCH);
    return 0;
}

START_TEST(test_wait_bad_args)
{
    gr_test_run_ok(wait_bad_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * as_completed
 * --------------------------------------------------------------------- */

#define AC 5
static const int AC_ORDER[AC] = {3, 1, 4, 0, 2};

static int as_completed_main(void *arg)
{
    (void)arg;
    struct piped t[AC];
    gr_task *h[AC];
    memset(t, 0, sizeof(t));
    piped_open(t, AC);
    for (int i = 0; i < AC; i++) {
        t[i].value = 40 + i;
        h[i] = gr_test_spawn_named(piped_task, &t[i], "ac");
    }
    gr_as_completed it;
    ck_assert_int_eq(gr_as_completed_init(&it, h, AC), 0);
    /* Nothing finished yet: the deadline passes. */
    ck_assert_int_eq(gr_as_completed_next(&it, gr_now() + 2 * MS), -ETIMEDOUT);
    for (int k = 0; k < AC; k++) {
        release(&t[AC_ORDER[k]]);
        int i = gr_as_completed_next(&it, FOREVER);
        ck_assert_int_eq(i, AC_ORDER[k]);
        int r;
        ck_assert_int_eq(gr_task_result(h[i], &r), 0);
        ck_assert_int_eq(r, 40 + i);
    }
    ck_assert_int_eq(gr_as_completed_next(&it, FOREVER), -ENOENT);
    gr_as_completed_destroy(&it);
    for (int i = 0; i < AC; i++)
        ck_assert_int_eq(gr_join(h[i]), 40 + i);
    piped_close(t, AC);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_as_completed_order)
{
    gr_test_run_ok(as_completed_main, NULL, 2);
}
END_TEST

/* Tasks that finished before the iterator was made come first (in input
 * order), then the others as they finish. */
static int as_completed_prefinished_main(void *arg)
{
    (void)arg;
    struct piped t[2];
    memset(t, 0, sizeof(t));
    piped_open(t, 2);
    gr_task *h[4];
    h[0] = gr_test_spawn_named(piped_task, &t[0], "late0");
    h[1] = gr_test_spawn_named(gr_test_return_arg, (void *)(intptr_t)1, "early1");
    h[2] = gr_test_spawn_named(piped_task, &t[1], "late2");
    h[3] = gr_test_spawn_named(gr_test_return_arg, (void *)(intptr_t)3, "early3");
    ck_assert_int_eq(gr_wait(&h[1], 1, GR_WAIT_ALL, FOREVER, NULL), 1);
    ck_assert_int_eq(gr_wait(&h[3], 1, GR_WAIT_ALL, FOREVER, NULL), 1);
    gr_as_completed it;
    ck_assert_int_eq(gr_as_completed_init(&it, h, 4), 0);
    ck_assert_int_eq(gr_as_completed_next(&it, FOREVER), 1);
    ck_assert_int_eq(gr_as_completed_next(&it, FOREVER), 3);
    release(&t[1]);
    ck_assert_int_eq(gr_as_completed_next(&it, FOREVER), 2);
    release(&t[0]);
    ck_assert_int_eq(gr_as_completed_next(&it, FOREVER), 0);
    ck_assert_int_eq(gr_as_completed_next(&it, FOREVER), -ENOENT);
    gr_as_completed_destroy(&it);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(gr_join(h[i]), i == 0 || i == 2 ? 0 : i);
    piped_close(t, 2);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_as_completed_prefinished)
{
    gr_test_run_ok(as_completed_prefinished_main, NULL, 2);
}
END_TEST

struct ac_waiter {
    gr_task **h;
    int rc;
};

static int ac_waiter_task(void *arg)
{
    struct ac_waiter *w = arg;
    gr_as_completed it;
    ck_assert_int_eq(gr_as_completed_init(&it, w->h, 1), 0);
    w->rc = gr_as_completed_next(&it, FOREVER);
    gr_as_completed_destroy(&it);
    return 0;
}

static int as_completed_cancel_main(void *arg)
{
    (void)arg;
    struct piped t = {.value = 5};
    gr_test_pipe(t.p);
    gr_task *h = gr_test_spawn_named(piped_task, &t, "target");
    struct ac_waiter w = {.h = &h, .rc = 12345};
    gr_task *wt = gr_test_spawn_named(ac_waiter_task, &w, "iterator");
    gr_test_wait_parked("iterator", "as_completed");
    ck_assert_int_eq(gr_cancel(wt), 0);
    ck_assert_int_eq(gr_join(wt), 0);
    ck_assert_int_eq(w.rc, -ECANCELED);
    ck_assert_int_eq(gr_task_cancelled(h), 0);
    release(&t);
    ck_assert_int_eq(gr_join(h), 5);
    gr_test_close_pipe(t.p);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_as_completed_cancelled)
{
    gr_test_run_ok(as_completed_cancel_main, NULL, 2);
}
END_TEST

static int as_completed_edges_main(void *arg)
{
    (void)arg;
    gr_as_completed it;
    ck_assert_int_eq(gr_as_completed_init(NULL, NULL, 0), -EINVAL);
    ck_assert_int_eq(gr_as_completed_init(&it, NULL, 1), -EINVAL);
    ck_assert_int_eq(gr_as_completed_next(NULL, FOREVER), -EINVAL);
    ck_assert_int_eq(gr_as_completed_init(&it, NULL, 0), 0);
    ck_assert_int_eq(gr_as_completed_next(&it, FOREVER), -ENOENT);
    gr_as_completed_destroy(&it);
    gr_task *h[2];
    h[0] = gr_test_spawn_named(gr_test_return_arg, (void *)(intptr_t)1, "one");
    h[1] = NULL;
    ck_assert_int_eq(gr_as_completed_init(&it, h, 2), -EINVAL);
    ck_assert_int_eq(gr_join(h[0]), 1);
    return 0;
}

START_TEST(test_as_completed_edges)
{
    gr_test_run_ok(as_completed_edges_main, NULL, 2);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("gather");

    TCase *tc = tcase_create("gather");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_gather_collect_all_input_order);
    tcase_add_test(tc, test_gather_fail_fast);
    tcase_add_test(tc, test_gather_fail_fast_all_succeed);
    tcase_add_test(tc, test_gather_fail_fast_first_in_completion_order);
    tcase_add_test(tc, test_gather_fail_fast_already_failed);
    tcase_add_test(tc, test_gather_cancelled);
    tcase_add_test(tc, test_gather_edges);
    tcase_add_test(tc, test_gather_many);
    suite_add_tcase(s, tc);

    tc = tcase_create("wait");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_wait_any);
    tcase_add_test(tc, test_wait_first_error);
    tcase_add_test(tc, test_wait_first_error_none);
    tcase_add_test(tc, test_wait_first_error_already_failed);
    tcase_add_test(tc, test_wait_all_deadline);
    tcase_add_test(tc, test_wait_interrupted);
    tcase_add_test(tc, test_wait_bad_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("as_completed");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_as_completed_order);
    tcase_add_test(tc, test_as_completed_prefinished);
    tcase_add_test(tc, test_as_completed_cancelled);
    tcase_add_test(tc, test_as_completed_edges);
    suite_add_tcase(s, tc);
    return s;
}
