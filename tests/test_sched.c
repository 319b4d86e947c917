/* greenring-test: tsan */
/* The scheduler: yield fairness, work stealing, spawning from foreign
 * threads, many tasks on several workers. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/support.h"

/* ---------------------------------------------------------------------
 * Yield fairness
 * --------------------------------------------------------------------- */

struct spin_ctx {
    atomic_int started;
    atomic_int flag;
    atomic_long spins;
};

/* Keeps yielding until somebody else sets the flag: it only ends if the
 * scheduler lets the other task run. */
static int spin_until_flag(void *arg)
{
    struct spin_ctx *c = arg;
    atomic_fetch_add(&c->started, 1);
    while (!atomic_load(&c->flag)) {
        ck_assert_int_eq(gr_yield(), 0);
        atomic_fetch_add(&c->spins, 1);
    }
    return 0;
}

static int set_flag(void *arg)
{
    struct spin_ctx *c = arg;
    atomic_store(&c->flag, 1);
    return 0;
}

/* n spinners are already yielding in a loop when the flag setter is
 * spawned. */
static int spinners_main(void *arg)
{
    int n = (int)(intptr_t)arg;
    struct spin_ctx c;
    memset(&c, 0, sizeof(c));
    gr_task *spinners[16];
    ck_assert_int_le(n, 16);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(gr_spawn(&spinners[i], spin_until_flag, &c, NULL), 0);
    while (atomic_load(&c.started) < n)
        ck_assert_int_eq(gr_yield(), 0);
    gr_task *setter;
    ck_assert_int_eq(gr_spawn(&setter, set_flag, &c, NULL), 0);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(gr_join(spinners[i]), 0);
    ck_assert_int_eq(gr_join(setter), 0);
    ck_assert_int_eq(atomic_load(&c.flag), 1);
    return 0;
}

START_TEST(yield_cannot_starve_one_worker)
{
    gr_test_run_ok(spinners_main, (void *)(intptr_t)1, 1);
}
END_TEST

START_TEST(yield_cannot_starve_many_spinners)
{
    gr_test_run_ok(spinners_main, (void *)(intptr_t)8, 1);
    gr_test_run_ok(spinners_main, (void *)(intptr_t)8, 2);
}
END_TEST

/* main itself spins on gr_yield while the setter it spawned must run. */
static int main_spins(void *arg)
{
    (void)arg;
    struct spin_ctx c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(gr_spawn(NULL, set_flag, &c, NULL), 0);
    ck_assert_int_eq(spin_until_flag(&c), 0);
    return 0;
}

START_TEST(yield_main_spins)
{
    gr_test_run_ok(main_spins, NULL, 1);
}
END_TEST

/* N tasks on one worker, each yielding K times and logging its id at every
 * step. gr_yield's contract: "Let other runnable tasks on this worker run,
 * then continue." */
#define RR_TASKS 5
#define RR_YIELDS 300
#define RR_LOG (RR_TASKS * (RR_YIELDS + 1))

struct rr_ctx {
    int log[RR_LOG];
    int len; /* one worker: only one task touches it at a time */
};

struct rr_arg {
    struct rr_ctx *c;
    int id;
};

static int rr_task(void *arg)
{
    struct rr_arg *a = arg;
    a->c->log[a->c->len++] = a->id;
    for (int k = 0; k < RR_YIELDS; k++) {
        ck_assert_int_eq(gr_yield(), 0);
        a->c->log[a->c->len++] = a->id;
    }
    return 0;
}

static int rr_main(void *arg)
{
    struct rr_ctx *c = arg;
    struct rr_arg args[RR_TASKS];
    gr_task *h[RR_TASKS];
    for (int i = 0; i < RR_TASKS; i++) {
        args[i] = (struct rr_arg){c, i};
        ck_assert_int_eq(gr_spawn(&h[i], rr_task, &args[i], NULL), 0);
    }
    for (int i = 0; i < RR_TASKS; i++)
        ck_assert_int_eq(gr_join(h[i]), 0);
    return 0;
}

static void rr_run(struct rr_ctx *c)
{
    memset(c, 0, sizeof(*c));
    gr_test_run_ok(rr_main, c, 1);
    ck_assert_int_eq(c->len, RR_LOG);
}

/* The weak form: every task made progress before any finished. */
START_TEST(yield_all_progress_before_any_finishes)
{
    static struct rr_ctx c;
    rr_run(&c);
    int first_done = RR_LOG;
    int steps[RR_TASKS] = {0};
    for (int i = 0; i < RR_LOG; i++)
        if (++steps[c.log[i]] == RR_YIELDS + 1 && i < first_done)
            first_done = i;
    int seen[RR_TASKS] = {0};
    for (int i = 0; i <= first_done; i++)
        seen[c.log[i]] = 1;
    for (int t = 0; t < RR_TASKS; t++)
        ck_assert_msg(seen[t], "task %d never ran before a task finished (log entry %d)", t,
                      first_done);
}
END_TEST

/* The contract itself: between two consecutive steps of a task, every other
 * task that has not finished yet took a step. */
START_TEST(yield_lets_every_other_task_run)
{
    static struct rr_ctx c;
    rr_run(&c);
    int last[RR_TASKS], steps[RR_TASKS] = {0};
    for (int t = 0; t < RR_TASKS; t++)
        last[t] = -1;
    for (int i = 0; i < RR_LOG; i++) {
        int t = c.log[i];
        if (last[t] >= 0) {
            for (int o = 0; o < RR_TASKS; o++) {
                if (o == t || steps[o] == RR_YIELDS + 1)
                    continue; /* itself, or finished */
                ck_assert_msg(last[o] > last[t],
                              "log entry %d: task %d continued after its yield at entry %d "
                              "although task %d (last step at entry %d) was runnable",
                              i, t, last[t], o, last[o]);
            }
        }
        last[t] = i;
        steps[t]++;
    }
}
END_TEST

/* ---------------------------------------------------------------------
 * Work stealing
 * --------------------------------------------------------------------- */

#define STEAL_TASKS 2000

/* Which workers ran what. main spawns every task; a task that runs on
 * another worker than the one main spawned it from was taken by that
 * worker (stolen, or picked up from the global queue after a spill). */
struct steal_ctx {
    atomic_int ran_on[2];
    atomic_int moved;
    atomic_int bad_index;
    int main_worker;
};

struct steal_arg {
    struct steal_ctx *c;
    int i;
    int spawned_on;
};

static int busy_task(void *arg)
{
    struct steal_arg *a = arg;
    volatile unsigned x = (unsigned)a->i;
    for (int k = 0; k < 20000; k++)
        x = x * 1103515245u + 12345u;
    int w = gr_worker_index();
    if (w != 0 && w != 1) {
        atomic_fetch_add(&a->c->bad_index, 1);
        return a->i;
    }
    atomic_fetch_add(&a->c->ran_on[w], 1);
    if (w != a->spawned_on)
        atomic_fetch_add(&a->c->moved, 1);
    return a->i;
}

static int steal_main(void *arg)
{
    struct steal_ctx *c = arg;
    struct steal_arg *args = calloc(STEAL_TASKS, sizeof(*args));
    gr_task **h = calloc(STEAL_TASKS, sizeof(*h));
    ck_assert(args && h);
    /* main never blocks while spawning, so it stays on its worker */
    c->main_worker = gr_worker_index();
    for (int i = 0; i < STEAL_TASKS; i++) {
        args[i] = (struct steal_arg){c, i, gr_worker_index()};
        ck_assert_int_eq(args[i].spawned_on, c->main_worker);
        ck_assert_int_eq(gr_spawn(&h[i], busy_task, &args[i], NULL), 0);
    }
    for (int i = 0; i < STEAL_TASKS; i++)
        ck_assert_int_eq(gr_join(h[i]), i);
    free(args);
    free(h);
    return 0;
}

START_TEST(work_is_stolen)
{
    struct steal_ctx c;
    memset(&c, 0, sizeof(c));
    gr_test_run_ok(steal_main, &c, 2);
    int w0 = atomic_load(&c.ran_on[0]), w1 = atomic_load(&c.ran_on[1]);
    ck_assert_int_eq(atomic_load(&c.bad_index), 0);
    ck_assert_int_eq(w0 + w1, STEAL_TASKS);
    /* the other worker took part: it ran tasks that main's worker queued */
    int other = c.main_worker == 0 ? w1 : w0;
    ck_assert_msg(other > 0 && atomic_load(&c.moved) == other,
                  "main ran on worker %d; tasks on worker 0: %d, on worker 1: %d, moved: %d",
                  c.main_worker, w0, w1, atomic_load(&c.moved));
}
END_TEST

/* ---------------------------------------------------------------------
 * Spawning from a foreign thread
 * --------------------------------------------------------------------- */

#define FOREIGN_DETACHED 1000
#define FOREIGN_JOINABLE 100

struct foreign_ctx {
    atomic_int ran;
    atomic_int spawn_errors;
    int done_pipe[2];   /* the last detached task writes one byte */
    int handles_pipe[2]; /* the thread writes one byte when handles[] is full */
    gr_task *handles[FOREIGN_JOINABLE];
};

static int count_and_signal(void *arg)
{
    struct foreign_ctx *c = arg;
    if (atomic_fetch_add(&c->ran, 1) + 1 == FOREIGN_DETACHED) {
        char b = 'd';
        ck_assert_int_eq(gr_write(c->done_pipe[1], &b, 1), 1);
    }
    return 0;
}

static int times_three(void *arg)
{
    ck_assert_ptr_nonnull(gr_self());
    return (int)(intptr_t)arg * 3;
}

static void *foreign_spawner(void *arg)
{
    struct foreign_ctx *c = arg;
    ck_assert_ptr_null(gr_self());
    for (int i = 0; i < FOREIGN_DETACHED; i++)
        if (gr_spawn(NULL, count_and_signal, c, NULL) != 0)
            atomic_fetch_add(&c->spawn_errors, 1);
    for (int i = 0; i < FOREIGN_JOINABLE; i++)
        if (gr_spawn(&c->handles[i], times_three, (void *)(intptr_t)i, NULL) != 0)
            atomic_fetch_add(&c->spawn_errors, 1);
    char b = 'h';
    ck_assert_int_eq(write(c->handles_pipe[1], &b, 1), 1);
    return NULL;
}

static int foreign_main(void *arg)
{
    struct foreign_ctx *c = arg;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, foreign_spawner, c), 0);
    char b;
    /* all joinable handles are published */
    ck_assert_int_eq(gr_read(c->handles_pipe[0], &b, 1), 1);
    for (int i = 0; i < FOREIGN_JOINABLE; i++)
        ck_assert_int_eq(gr_join(c->handles[i]), i * 3);
    /* all detached tasks ran */
    ck_assert_int_eq(gr_read(c->done_pipe[0], &b, 1), 1);
    ck_assert_int_eq(atomic_load(&c->ran), FOREIGN_DETACHED);
    /* the thread has nothing left to do but return */
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    return 0;
}

static void foreign_spawn(unsigned workers)
{
    struct foreign_ctx c;
    memset(&c, 0, sizeof(c));
    gr_test_pipe(c.done_pipe);
    gr_test_pipe(c.handles_pipe);
    gr_test_run_ok(foreign_main, &c, workers);
    ck_assert_int_eq(atomic_load(&c.spawn_errors), 0);
    ck_assert_int_eq(atomic_load(&c.ran), FOREIGN_DETACHED);
    close(c.done_pipe[0]);
    close(c.done_pipe[1]);
    close(c.handles_pipe[0]);
    close(c.handles_pipe[1]);
}

START_TEST(spawn_from_foreign_thread_one_worker)
{
    foreign_spawn(1);
}
END_TEST

START_TEST(spawn_from_foreign_thread_two_workers)
{
    foreign_spawn(2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Many tasks on several workers
 * --------------------------------------------------------------------- */

#define COUNTER_TASKS 64
#define COUNTER_ROUNDS 1000

struct counter_arg {
    long count; /* owned by one task, which may move between workers */
    atomic_long *total;
};

static int count_with_yields(void *arg)
{
    struct counter_arg *a = arg;
    for (int i = 0; i < COUNTER_ROUNDS; i++) {
        a->count++;
        atomic_fetch_add(a->total, 1);
        if (i % 3 == 0)
            ck_assert_int_eq(gr_sleep(0), 0);
        else
            ck_assert_int_eq(gr_yield(), 0);
    }
    return (int)a->count;
}

static int counters_main(void *arg)
{
    atomic_long *total = arg;
    static struct counter_arg args[COUNTER_TASKS];
    gr_task *h[COUNTER_TASKS];
    for (int i = 0; i < COUNTER_TASKS; i++) {
        args[i] = (struct counter_arg){0, total};
        ck_assert_int_eq(gr_spawn(&h[i], count_with_yields, &args[i], NULL), 0);
    }
    for (int i = 0; i < COUNTER_TASKS; i++) {
        ck_assert_int_eq(gr_join(h[i]), COUNTER_ROUNDS);
        ck_assert_int_eq(args[i].count, COUNTER_ROUNDS);
    }
    return 0;
}

START_TEST(per_task_counters_across_workers)
{
    atomic_long total = 0;
    gr_test_run_ok(counters_main, &total, 2);
    ck_assert_int_eq(atomic_load(&total), (long)COUNTER_TASKS * COUNTER_ROUNDS);
    atomic_store(&total, 0);
    gr_test_run_ok(counters_main, &total, 4);
    ck_assert_int_eq(atomic_load(&total), (long)COUNTER_TASKS * COUNTER_ROUNDS);
}
END_TEST

#define SPAWNERS 10
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
/* gcc's TSan runtime counts every live task as a thread and dies beyond
 * 8128 of them; Zig's (clang's) TSan has no such limit. */
#define CHILDREN 500
#else
#define CHILDREN 1000
#endif

static int child_value(void *arg)
{
    intptr_t v = (intptr_t)arg;
    if (v % 7 == 0)
        ck_assert_int_eq(gr_yield(), 0);
    return (int)(v * 2 + 1);
}

static int spawner(void *arg)
{
    intptr_t s = (intptr_t)arg;
    gr_task **h = calloc(CHILDREN, sizeof(*h));
    ck_assert_ptr_nonnull(h);
    for (intptr_t i = 0; i < CHILDREN; i++)
        ck_assert_int_eq(gr_spawn(&h[i], child_value, (void *)(s * CHILDREN + i), NULL), 0);
    long sum = 0;
    for (intptr_t i = 0; i < CHILDREN; i++) {
        int r = gr_join(h[i]);
        ck_assert_int_eq(r, (int)((s * CHILDREN + i) * 2 + 1));
        sum += r;
    }
    free(h);
    return (int)(sum % 1000003);
}

static int storm_main(void *arg)
{
    (void)arg;
    gr_task *h[SPAWNERS];
    for (intptr_t s = 0; s < SPAWNERS; s++)
        ck_assert_int_eq(gr_spawn(&h[s], spawner, (void *)s, NULL), 0);
    for (intptr_t s = 0; s < SPAWNERS; s++) {
        long sum = 0;
        for (long i = 0; i < CHILDREN; i++)
            sum += (s * CHILDREN + i) * 2 + 1;
        ck_assert_int_eq(gr_join(h[s]), (int)(sum % 1000003));
    }
    return 0;
}

START_TEST(ten_thousand_from_several_spawners)
{
    gr_test_run_ok(storm_main, NULL, 2);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("yield");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, yield_cannot_starve_one_worker);
    tcase_add_test(tc, yield_cannot_starve_many_spinners);
    tcase_add_test(tc, yield_main_spins);
    tcase_add_test(tc, yield_all_progress_before_any_finishes);
    tcase_add_test(tc, yield_lets_every_other_task_run);
    suite_add_tcase(s, tc);

    tc = tcase_create("workers");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, work_is_stolen);
    tcase_add_test(tc, spawn_from_foreign_thread_one_worker);
    tcase_add_test(tc, spawn_from_foreign_thread_two_workers);
    tcase_add_test(tc, per_task_counters_across_workers);
    tcase_add_test(tc, ten_thousand_from_several_spawners);
    suite_add_tcase(s, tc);
    return s;
}
