/* greenring-test: asan tsan */
/* The offload pool (gr_offload): results, many callers on several
 * workers, workers never blocked (heartbeat), cancellation and timeout
 * while waiting (the function runs on, release frees its result), jobs
 * withdrawn before they start, the thread limit, internal FINISH mode, and
 * shutdown leaving no thread behind. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "offload/offload.h"
#include "support/support.h"

/* Pool threads alive (named "gr-offload"). */
static int pool_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* exited meanwhile */
        if (fgets(comm, sizeof comm, f) && !strncmp(comm, "gr-offload", 10))
            n++;
        fclose(f);
    }
    closedir(d);
    return n;
}

/* Plain blocking helpers for the pool threads. */
static void write_byte(int fd, char c)
{
    ck_assert_int_eq(write(fd, &c, 1), 1);
}

static char read_byte(int fd)
{
    char c = 0;
    ck_assert_int_eq(read(fd, &c, 1), 1);
    return c;
}

/* A task-side read of one byte (parks, never blocks the worker). */
static char task_read_byte(int fd)
{
    char c = 0;
    ck_assert_int_eq(gr_read(fd, &c, 1), 1);
    return c;
}

/* ---------------------------------------------------------------------
 * Results
 * --------------------------------------------------------------------- */

static void *square(void *arg)
{
    intptr_t x = (intptr_t)arg;
    /* Not a task: blocking calls refuse to run here. */
    ck_assert_int_eq(gr_worker_index(), -EPERM);
    ck_assert_ptr_null(gr_self());
    return (void *)(x * x);
}

static int result_main(void *arg)
{
    (void)arg;
    for (intptr_t i = 0; i < 50; i++) {
        void *r = NULL;
        ck_assert_int_eq(gr_offload(square, (void *)i, NULL, &r), 0);
        ck_assert_int_eq((intptr_t)r, i * i);
    }
    ck_assert_int_eq(gr_offload(square, (void *)3, NULL, NULL), 0); /* result ignored */
    ck_assert_int_eq(gr_offload(NULL, NULL, NULL, NULL), -EINVAL);
    return 0;
}

START_TEST(offload_returns_results)
{
    gr_test_run_ok(result_main, NULL, 1);
}
END_TEST

START_TEST(offload_outside_task)
{
    ck_assert_int_eq(gr_offload(square, NULL, NULL, NULL), -EPERM);
}
END_TEST

#define MANY_TASKS 64
#define MANY_CALLS 20

static void *add_one(void *arg)
{
    return (void *)((intptr_t)arg + 1);
}

static int many_caller(void *arg)
{
    intptr_t base = (intptr_t)arg * 1000;
    for (intptr_t i = 0; i < MANY_CALLS; i++) {
        void *r;
        int rc = gr_offload(add_one, (void *)(base + i), NULL, &r);
        if (rc < 0)
            return rc;
        if ((intptr_t)r != base + i + 1)
            return -EIO;
    }
    return 0;
}

static int many_main(void *arg)
{
    (void)arg;
    gr_task *t[MANY_TASKS];
    for (intptr_t i = 0; i < MANY_TASKS; i++)
        ck_assert_int_eq(gr_spawn(&t[i], many_caller, (void *)i, NULL), 0);
    for (int i = 0; i < MANY_TASKS; i++)
        ck_assert_int_eq(gr_join(t[i]), 0);
    return 0;
}

START_TEST(offload_many_callers_two_workers)
{
    gr_test_run_ok(many_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Heartbeat: the workers keep running tasks while pool threads block.
 * Four offloaded calls block reading a pipe that only the heartbeat task
 * writes, after it counted HEARTBEATS beats of 1 ms once all four were
 * blocked. A blocked worker would never run the heartbeat: the test would
 * hang, and the alarm in the child turns that into a failure.
 * --------------------------------------------------------------------- */

#define BLOCKERS 4
#define HEARTBEATS 20

struct heartbeat {
    int pipe[2];
    _Atomic int blocked; /* calls that reached their read */
    int beats_after;     /* beats counted once all were blocked */
    _Atomic int done;
};

static void *blocking_read(void *arg)
{
    struct heartbeat *h = arg;
    atomic_fetch_add(&h->blocked, 1);
    return (void *)(intptr_t)read_byte(h->pipe[0]);
}

static int blocker(void *arg)
{
    struct heartbeat *h = arg;
    void *r;
    int rc = gr_offload(blocking_read, h, NULL, &r);
    if (rc < 0)
        return rc;
    atomic_fetch_add(&h->done, 1);
    return (intptr_t)r == 'x' ? 0 : -EIO;
}

static int beater(void *arg)
{
    struct heartbeat *h = arg;
    while (atomic_load(&h->blocked) < BLOCKERS)
        ck_assert_int_eq(gr_sleep(1000000), 0);
    for (int i = 0; i < HEARTBEATS; i++) {
        ck_assert_int_eq(gr_sleep(1000000), 0);
        h->beats_after++;
    }
    /* Nobody has been released yet: the pool threads were blocked all
     * along, and the worker(s) kept beating. */
    ck_assert_int_eq(atomic_load(&h->done), 0);
    for (int i = 0; i < BLOCKERS; i++)
        ck_assert_int_eq(gr_write(h->pipe[1], "x", 1), 1);
    return 0;
}

static int heartbeat_main(void *arg)
{
    struct heartbeat *h = arg;
    ck_assert_int_eq(gr_offload_set_max_threads(BLOCKERS), 0);
    gr_task *t[BLOCKERS + 1];
    for (int i = 0; i < BLOCKERS; i++)
        ck_assert_int_eq(gr_spawn(&t[i], blocker, h, NULL), 0);
    ck_assert_int_eq(gr_spawn(&t[BLOCKERS], beater, h, NULL), 0);
    for (int i = 0; i <= BLOCKERS; i++)
        ck_assert_int_eq(gr_join(t[i]), 0);
    ck_assert_int_eq(h->beats_after, HEARTBEATS);
    ck_assert_int_eq(atomic_load(&h->done), BLOCKERS);
    ck_assert_int_eq(gr_offload_set_max_threads(0), 0);
    return 0;
}

static int heartbeat_child(void *arg)
{
    unsigned workers = (unsigned)(uintptr_t)arg;
    alarm(20); /* a blocked worker would hang here */
    struct heartbeat h = {0};
    if (pipe2(h.pipe, O_CLOEXEC) < 0)
        return 2;
    gr_config cfg = {.workers = workers};
    int rc = gr_run(heartbeat_main, &h, &cfg);
    close(h.pipe[0]);
    close(h.pipe[1]);
    return rc == 0 ? 0 : 1;
}

static void run_heartbeat(unsigned workers)
{
    struct gr_test_child c;
    gr_test_run_child(heartbeat_child, (void *)(uintptr_t)workers, &c);
    ck_assert_msg(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
                  "heartbeat child: status %#x, stderr: %s", c.status, c.err);
}

START_TEST(offload_heartbeat_one_worker)
{
    run_heartbeat(1);
}
END_TEST

START_TEST(offload_heartbeat_two_workers)
{
    run_heartbeat(2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Cancellation and timeout while the function runs
 * --------------------------------------------------------------------- */

struct slow_job {
    int started[2]; /* fn -> test: "I am running" */
    int go[2];      /* test -> fn: "return now" */
    int released[2];/* release -> test */
    _Atomic int release_calls;
    void *release_result;
    void *release_arg;
};

static void *slow_fn(void *arg)
{
    struct slow_job *j = arg;
    write_byte(j->started[1], 's');
    read_byte(j->go[0]);
    return (void *)(intptr_t)0x1234;
}

/* The count goes last: a test that sees it may close the pipes. */
static void slow_release(void *arg, void *result)
{
    struct slow_job *j = arg;
    j->release_arg = arg;
    j->release_result = result;
    write_byte(j->released[1], 'r');
    atomic_fetch_add(&j->release_calls, 1);
}

/* After the release's byte arrived: wait for its count (it follows the
 * write at once), which orders everything release did before it. */
static void wait_released(struct slow_job *j, char byte)
{
    ck_assert_int_eq(task_read_byte(j->released[0]), byte);
    while (atomic_load(&j->release_calls) == 0)
        ck_assert_int_eq(gr_yield(), 0);
    ck_assert_int_eq(atomic_load(&j->release_calls), 1);
}

static void slow_open(struct slow_job *j)
{
    memset(j, 0, sizeof *j);
    gr_test_pipe(j->started);
    gr_test_pipe(j->go);
    gr_test_pipe(j->released);
}

static void slow_close(struct slow_job *j)
{
    int *fds[] = {j->started, j->go, j->released};
    for (int i = 0; i < 3; i++) {
        close(fds[i][0]);
        close(fds[i][1]);
    }
}

static int slow_caller(void *arg)
{
    void *r = NULL;
    return gr_offload(slow_fn, arg, slow_release, &r);
}

static int cancel_main(void *arg)
{
    struct slow_job *j = arg;
    gr_task *t;
    ck_assert_int_eq(gr_spawn(&t, slow_caller, j, NULL), 0);
    ck_assert_int_eq(task_read_byte(j->started[0]), 's'); /* fn is running */
    ck_assert_int_eq(gr_cancel(t), 0);
    /* The caller leaves at once, while fn still blocks. */
    ck_assert_int_eq(gr_join(t), -ECANCELED);
    ck_assert_int_eq(atomic_load(&j->release_calls), 0);
    ck_assert_int_eq(gr_write(j->go[1], "g", 1), 1);
    wait_released(j, 'r');
    ck_assert_ptr_eq(j->release_arg, j);
    ck_assert_int_eq((intptr_t)j->release_result, 0x1234);
    return 0;
}

START_TEST(offload_cancel_while_running)
{
    struct slow_job j;
    slow_open(&j);
    gr_test_run_ok(cancel_main, &j, 2);
    slow_close(&j);
}
END_TEST

static int timeout_caller(void *arg)
{
    gr_scope s;
    ck_assert_int_eq(gr_scope_enter_timeout(&s, 5000000), 0);
    void *r = NULL;
    int rc = gr_offload(slow_fn, arg, slow_release, &r);
    ck_assert_int_eq(gr_scope_leave(&s), 1);
    return rc;
}

static int timeout_main(void *arg)
{
    struct slow_job *j = arg;
    gr_task *t;
    ck_assert_int_eq(gr_spawn(&t, timeout_caller, j, NULL), 0);
    ck_assert_int_eq(gr_join(t), -ETIMEDOUT);
    ck_assert_int_eq(task_read_byte(j->started[0]), 's');
    ck_assert_int_eq(gr_write(j->go[1], "g", 1), 1);
    wait_released(j, 'r');
    ck_assert_int_eq((intptr_t)j->release_result, 0x1234);
    return 0;
}

START_TEST(offload_timeout_while_running)
{
    struct slow_job j;
    slow_open(&j);
    gr_test_run_ok(timeout_main, &j, 1);
    slow_close(&j);
}
END_TEST

/* With one pool thread busy, a second job waits in the queue; cancelling
 * its caller withdraws it: it never runs, release gets NULL. */
static _Atomic int never_ran;

static void *must_not_run(void *arg)
{
    (void)arg;
    atomic_store(&never_ran, 0);
    return NULL;
}

static void queued_release(void *arg, void *result)
{
    struct slow_job *j = arg;
    j->release_result = result;
    write_byte(j->released[1], 'q');
    atomic_fetch_add(&j->release_calls, 1);
}

static int queued_caller(void *arg)
{
    return gr_offload(must_not_run, arg, queued_release, NULL);
}

static int withdraw_main(void *arg)
{
    struct slow_job *j = arg;
    atomic_store(&never_ran, 1);
    ck_assert_int_eq(gr_offload_set_max_threads(1), 0);
    gr_task *busy, *queued;
    ck_assert_int_eq(gr_spawn(&busy, slow_caller, j, NULL), 0);
    ck_assert_int_eq(task_read_byte(j->started[0]), 's');
    gr_spawn_opts opts = {.name = "queued"};
    ck_assert_int_eq(gr_spawn(&queued, queued_caller, j, &opts), 0);
    gr_test_wait_parked("queued", "offload");
    ck_assert_int_eq(gr_cancel(queued), 0);
    ck_assert_int_eq(gr_join(queued), -ECANCELED);
    ck_assert_int_eq(gr_write(j->go[1], "g", 1), 1);
    ck_assert_int_eq(gr_join(busy), 0);
    wait_released(j, 'q');
    ck_assert_ptr_null(j->release_result);
    ck_assert_int_eq(atomic_load(&never_ran), 1);
    ck_assert_int_eq(gr_offload_set_max_threads(0), 0);
    return 0;
}

START_TEST(offload_cancel_before_start)
{
    struct slow_job j;
    slow_open(&j);
    gr_test_run_ok(withdraw_main, &j, 1);
    slow_close(&j);
}
END_TEST

/* A caller cancelled before it calls gets -ECANCELED without queueing. */
static int precancelled(void *arg)
{
    (void)arg;
    gr_cancel(gr_self());
    return gr_offload(square, (void *)2, NULL, NULL);
}

static int precancel_main(void *arg)
{
    (void)arg;
    gr_task *t;
    ck_assert_int_eq(gr_spawn(&t, precancelled, NULL, NULL), 0);
    ck_assert_int_eq(gr_join(t), -ECANCELED);
    return 0;
}

START_TEST(offload_cancelled_caller)
{
    gr_test_run_ok(precancel_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Thread limit
 * --------------------------------------------------------------------- */

#define LIMIT 2
#define LIMIT_JOBS 6

struct limit {
    _Atomic int running, max_running, finished;
    int go[2];
};

static void *limited_fn(void *arg)
{
    struct limit *l = arg;
    int now = atomic_fetch_add(&l->running, 1) + 1;
    int seen = atomic_load(&l->max_running);
    while (now > seen && !atomic_compare_exchange_weak(&l->max_running, &seen, now))
        ;
    read_byte(l->go[0]);
    atomic_fetch_sub(&l->running, 1);
    atomic_fetch_add(&l->finished, 1);
    return NULL;
}

static int limited_caller(void *arg)
{
    return gr_offload(limited_fn, arg, NULL, NULL);
}

static int limit_main(void *arg)
{
    struct limit *l = arg;
    ck_assert_int_eq(gr_offload_set_max_threads(LIMIT), 0);
    ck_assert_int_eq(gr_offload_max_threads(), LIMIT);
    gr_task *t[LIMIT_JOBS];
    for (int i = 0; i < LIMIT_JOBS; i++)
        ck_assert_int_eq(gr_spawn(&t[i], limited_caller, l, NULL), 0);
    for (int i = 0; i < LIMIT_JOBS; i++)
        ck_assert_int_eq(gr_write(l->go[1], "g", 1), 1);
    for (int i = 0; i < LIMIT_JOBS; i++)
        ck_assert_int_eq(gr_join(t[i]), 0);
    ck_assert_int_eq(atomic_load(&l->finished), LIMIT_JOBS);
    ck_assert_int_le(atomic_load(&l->max_running), LIMIT);
    ck_assert_int_eq(gr_offload_set_max_threads(0), 0);
    ck_assert_int_eq(gr_offload_set_max_threads(5000), -EINVAL);
    return 0;
}

START_TEST(offload_thread_limit)
{
    struct limit l = {0};
    gr_test_pipe(l.go);
    gr_test_run_ok(limit_main, &l, 2);
    close(l.go[0]);
    close(l.go[1]);
}
END_TEST

/* ---------------------------------------------------------------------
 * Internal FINISH mode: an interrupt waits for the function, which sees
 * gr__offload_interrupted() and may stop early; its result is returned.
 * --------------------------------------------------------------------- */

struct finish {
    int started[2];
};

static long finish_fn(void *arg)
{
    struct finish *f = arg;
    write_byte(f->started[1], 's');
    struct timespec ts = {0, 100000};
    for (int i = 0; i < 200000 && !gr__offload_interrupted(); i++)
        nanosleep(&ts, NULL); /* polling the flag, bounded to 20 s */
    return gr__offload_interrupted() ? 77 : -ETIME;
}

static int finish_caller(void *arg)
{
    long rc = gr__offload_call(finish_fn, arg, GR_OFFLOAD_FINISH, "test finish");
    if (rc != 77)
        return -EIO;
    /* The cancellation is reported by the next blocking call. */
    return gr_sleep(0) == -ECANCELED ? 0 : -EIO;
}

static int finish_main(void *arg)
{
    struct finish *f = arg;
    gr_task *t;
    ck_assert_int_eq(gr_spawn(&t, finish_caller, f, NULL), 0);
    ck_assert_int_eq(task_read_byte(f->started[0]), 's');
    ck_assert_int_eq(gr_cancel(t), 0);
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(gr__offload_interrupted(), 0); /* not a pool thread */
    return 0;
}

START_TEST(offload_finish_mode_waits)
{
    struct finish f;
    gr_test_pipe(f.started);
    gr_test_run_ok(finish_main, &f, 2);
    close(f.started[0]);
    close(f.started[1]);
}
END_TEST

/* ---------------------------------------------------------------------
 * Shutdown: no pool thread is left behind
 * --------------------------------------------------------------------- */

static void *nothing(void *arg)
{
    return arg;
}

static void *count_pool_threads(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)pool_threads();
}

static int spread_main(void *arg)
{
    (void)arg;
    gr_task *t[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(gr_spawn(&t[i], many_caller, (void *)(intptr_t)i, NULL), 0);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(gr_join(t[i]), 0);
    void *n;
    ck_assert_int_eq(gr_offload(count_pool_threads, NULL, NULL, &n), 0);
    ck_assert_int_gt((intptr_t)n, 0);
    return gr_offload(nothing, NULL, NULL, NULL);
}

START_TEST(offload_shutdown_joins_threads)
{
    gr_test_run_ok(spread_main, NULL, 2);
    gr__offload_shutdown(); /* gr_run may have done it already: harmless */
    gr__offload_shutdown(); /* harmless twice */
    /* Exited threads leave the process asynchronously: allow them a moment. */
    for (int i = 0; i < 2000 && pool_threads() > 0; i++)
        usleep(1000);
    ck_assert_int_eq(pool_threads(), 0);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("offload");
    TCase *tc = tcase_create("offload");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, offload_returns_results);
    tcase_add_test(tc, offload_outside_task);
    tcase_add_test(tc, offload_many_callers_two_workers);
    tcase_add_test(tc, offload_heartbeat_one_worker);
    tcase_add_test(tc, offload_heartbeat_two_workers);
    tcase_add_test(tc, offload_cancel_while_running);
    tcase_add_test(tc, offload_timeout_while_running);
    tcase_add_test(tc, offload_cancel_before_start);
    tcase_add_test(tc, offload_cancelled_caller);
    tcase_add_test(tc, offload_thread_limit);
    tcase_add_test(tc, offload_finish_mode_waits);
    tcase_add_test(tc, offload_shutdown_joins_threads);
    suite_add_tcase(s, tc);
    return s;
}
