/* Timers: gr_sleep, gr_sleep_until, gr_now.
 *
 * Sleeping is the behaviour under test here, so the tests sleep; they never
 * use a sleep to wait for another task, and they assert orders and lower
 * bounds (a sleep never ends before its deadline), never durations. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "support/support.h"

#define MS ((int64_t)1000000)

START_TEST(now_is_monotonic)
{
    int64_t prev = gr_now();
    ck_assert_int_gt(prev, 0);
    for (int i = 0; i < 100000; i++) {
        int64_t t = gr_now();
        ck_assert_int_ge(t, prev);
        prev = t;
    }
}
END_TEST

/* ---------------------------------------------------------------------
 * Wake-up order
 * --------------------------------------------------------------------- */

#define SLEEPERS 200

struct order_ctx {
    int64_t deadline[SLEEPERS]; /* by rank: deadline[k] < deadline[k + 1] */
    int woke[SLEEPERS];         /* ranks in wake-up order */
    atomic_int n_woke;
    atomic_int parked;
    atomic_int early; /* woke before its deadline */
    atomic_int errors;
};

struct order_arg {
    struct order_ctx *c;
    int rank;
};

static int sleeper(void *arg)
{
    struct order_arg *a = arg;
    struct order_ctx *c = a->c;
    atomic_fetch_add(&c->parked, 1);
    if (gr_sleep_until(c->deadline[a->rank]) != 0)
        atomic_fetch_add(&c->errors, 1);
    if (gr_now() < c->deadline[a->rank])
        atomic_fetch_add(&c->early, 1);
    c->woke[atomic_fetch_add(&c->n_woke, 1)] = a->rank;
    return a->rank;
}

/* Spawns the sleepers in a shuffled order and returns once all are parked
 * (one worker: a sleeper that has counted itself is parked in its sleep by
 * the time main runs again). */
static void spawn_sleepers(struct order_ctx *c, struct order_arg *args, gr_task **h)
{
    int order[SLEEPERS];
    for (int k = 0; k < SLEEPERS; k++)
        order[k] = k;
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    gr_test_shuffle(order, SLEEPERS, &rng);
    for (int i = 0; i < SLEEPERS; i++) {
        args[i] = (struct order_arg){c, order[i]};
        ck_assert_int_eq(gr_spawn(&h[i], sleeper, &args[i], NULL), 0);
    }
    while (atomic_load(&c->parked) < SLEEPERS)
        ck_assert_int_eq(gr_yield(), 0);
}

static void join_sleepers(struct order_arg *args, gr_task **h)
{
    for (int i = 0; i < SLEEPERS; i++)
        ck_assert_int_eq(gr_join(h[i]), args[i].rank);
}

static void check_order(struct order_ctx *c)
{
    ck_assert_int_eq(atomic_load(&c->n_woke), SLEEPERS);
    ck_assert_int_eq(atomic_load(&c->errors), 0);
    ck_assert_int_eq(atomic_load(&c->early), 0);
    for (int i = 0; i < SLEEPERS; i++)
        ck_assert_msg(c->woke[i] == i,
                      "wake-up %d was the sleeper with deadline rank %d (expected rank %d; "
                      "the first wake-ups were ranks %d %d %d %d)",
                      i, c->woke[i], i, c->woke[0], c->woke[1], c->woke[2], c->woke[3]);
}

/* Deadlines 1 ms apart, starting well after every sleeper has parked. */
static int sleep_order_main(void *arg)
{
    struct order_ctx *c = arg;
    static struct order_arg args[SLEEPERS];
    static gr_task *h[SLEEPERS];
    int64_t base = gr_now() + 100 * MS;
    for (int k = 0; k < SLEEPERS; k++)
        c->deadline[k] = base + (int64_t)(k + 1) * MS;
    spawn_sleepers(c, args, h);
    /* precondition of the test, not a timing assertion on the runtime */
    ck_assert_msg(gr_now() < base, "spawning %d sleepers took more than 100 ms", SLEEPERS);
    join_sleepers(args, h);
    return 0;
}

START_TEST(sleep_order)
{
    static struct order_ctx c;
    memset(&c, 0, sizeof(c));
    gr_test_run_ok(sleep_order_main, &c, 1);
    check_order(&c);
}
END_TEST

/* All deadlines pass while the worker is held by main, so the worker finds
 * every timer expired at once: the sleepers must still wake in deadline
 * order. (main busy-waits on the clock on purpose: that is the situation
 * under test, not a way to wait for another task.) */
static int expired_together_main(void *arg)
{
    struct order_ctx *c = arg;
    static struct order_arg args[SLEEPERS];
    static gr_task *h[SLEEPERS];
    int64_t base = gr_now() + 50 * MS;
    for (int k = 0; k < SLEEPERS; k++)
        c->deadline[k] = base + (int64_t)(k + 1) * 1000; /* 1 us apart */
    spawn_sleepers(c, args, h);
    ck_assert_msg(gr_now() < base, "spawning %d sleepers took more than 50 ms", SLEEPERS);
    while (gr_now() <= c->deadline[SLEEPERS - 1])
        ; /* hold the worker */
    join_sleepers(args, h);
    return 0;
}

START_TEST(sleep_order_when_expired_together)
{
    static struct order_ctx c;
    memset(&c, 0, sizeof(c));
    gr_test_run_ok(expired_together_main, &c, 1);
    check_order(&c);
}
END_TEST

/* ---------------------------------------------------------------------
 * Zero, past and invalid durations
 * --------------------------------------------------------------------- */

static int set_flag(void *arg)
{
    atomic_store((atomic_int *)arg, 1);
    return 0;
}

/* A sleep that returns at once is still a scheduling point (as
 * asyncio.sleep(0)): a runnable task on the same worker runs first. */
static void check_scheduling_point(int which)
{
    atomic_int flag = 0;
    gr_task *h;
    ck_assert_int_eq(gr_spawn(&h, set_flag, &flag, NULL), 0);
    int rc = which == 0 ? gr_sleep(0) : gr_sleep_until(gr_now() - 1000 * MS);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(atomic_load(&flag) == 1, "%s did not let a runnable task run",
                  which == 0 ? "gr_sleep(0)" : "gr_sleep_until(past)");
    ck_assert_int_eq(gr_join(h), 0);
}

static int zero_and_past_main(void *arg)
{
    (void)arg;
    ck_assert_int_eq(gr_sleep(0), 0);
    ck_assert_int_eq(gr_sleep_until(gr_now()), 0);
    ck_assert_int_eq(gr_sleep_until(gr_now() - 1), 0);
    ck_assert_int_eq(gr_sleep_until(0), 0);
    ck_assert_int_eq(gr_sleep_until(-1), 0);
    ck_assert_int_eq(gr_sleep_until(INT64_MIN), 0);
    /* a negative duration is an error, not "the past" */
    ck_assert_int_eq(gr_sleep(-1), -EINVAL);
    ck_assert_int_eq(gr_sleep(-1000 * MS), -EINVAL);
    ck_assert_int_eq(gr_sleep(INT64_MIN), -EINVAL);
    check_scheduling_point(0);
    check_scheduling_point(1);
    return 0;
}

START_TEST(sleep_zero_past_negative)
{
    gr_test_run_ok(zero_and_past_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Lower bounds, many sleepers, long sleeps
 * --------------------------------------------------------------------- */

static int lower_bound_task(void *arg)
{
    int64_t ns = (int64_t)(intptr_t)arg;
    int64_t t0 = gr_now();
    ck_assert_int_eq(gr_sleep(ns), 0);
    int64_t slept = gr_now() - t0;
    ck_assert_msg(slept >= ns, "gr_sleep(%lld) returned after %lld ns", (long long)ns,
                  (long long)slept);
    int64_t deadline = gr_now() + ns;
    ck_assert_int_eq(gr_sleep_until(deadline), 0);
    ck_assert_int_ge(gr_now(), deadline);
    return 0;
}

/* 1000 tasks on two workers sleep 0..19 ms each, twice. */
static int many_sleepers_main(void *arg)
{
    (void)arg;
    enum { N = 1000 };
    static gr_task *h[N];
    uint64_t rng = 12345;
    for (int i = 0; i < N; i++) {
        intptr_t ns = (intptr_t)(gr_test_rand(&rng) % (uint64_t)(20 * MS));
        ck_assert_int_eq(gr_spawn(&h[i], lower_bound_task, (void *)ns, NULL), 0);
    }
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(gr_join(h[i]), 0);
    ck_assert_int_eq(lower_bound_task((void *)(intptr_t)(5 * MS)), 0);
    return 0;
}

START_TEST(sleep_never_ends_early)
{
    gr_test_run_ok(many_sleepers_main, NULL, 2);
}
END_TEST

struct forever_ctx {
    atomic_int parked;
    int rc;
};

static int sleep_forever(void *arg)
{
    struct forever_ctx *c = arg;
    atomic_store(&c->parked, 1);
    c->rc = gr_sleep(INT64_MAX); /* now + INT64_MAX saturates */
    return 0;
}

static int forever_main(void *arg)
{
    (void)arg;
    struct forever_ctx c = {0, 1};
    gr_task *h;
    ck_assert_int_eq(gr_spawn(&h, sleep_forever, &c, NULL), 0);
    while (!atomic_load(&c.parked))
        ck_assert_int_eq(gr_yield(), 0);
    ck_assert_int_eq(gr_cancel(h), 0);
    ck_assert_int_eq(gr_join(h), 0);
    ck_assert_int_eq(c.rc, -ECANCELED);
    return 0;
}

START_TEST(sleep_forever_until_cancelled)
{
    gr_test_run_ok(forever_main, NULL, 1);
    gr_test_run_ok(forever_main, NULL, 2);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("timer");
    TCase *tc = tcase_create("sleep");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, now_is_monotonic);
    tcase_add_test(tc, sleep_order);
    tcase_add_test(tc, sleep_order_when_expired_together);
    tcase_add_test(tc, sleep_zero_past_negative);
    tcase_add_test(tc, sleep_never_ends_early);
    tcase_add_test(tc, sleep_forever_until_cancelled);
    suite_add_tcase(s, tc);
    return s;
}
