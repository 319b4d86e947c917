/* greenring-test: tsan */
/* Signals: waiting tasks, pending signals, graceful shutdown. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"

static int wait_usr1(void *arg)
{
    (void)arg;
    return gr_signal_wait(GR_SIGNAL(SIGUSR1));
}

static int wait_usr2_or_hup(void *arg)
{
    (void)arg;
    return gr_signal_wait(GR_SIGNAL(SIGUSR2) | GR_SIGNAL(SIGHUP));
}

static gr_config signal_config(void)
{
    return (gr_config){.workers = 2,
                       .signals = GR_SIGNAL(SIGUSR1) | GR_SIGNAL(SIGUSR2) | GR_SIGNAL(SIGHUP)};
}

/* Park until every listed task is parked (no sleeps: yield and look). */
static void until_parked(gr_task **tasks, int n)
{
    for (;;) {
        int parked = 0;
        for (int i = 0; i < n; i++)
            parked += gr_task_done(tasks[i]) == 0;
        gr_runtime_stats st;
        gr_stats(&st);
        if (parked == n && st.live_tasks >= (uint64_t)n + 2)
            return;
        gr_yield();
    }
}

static int deliver_main(void *arg)
{
    (void)arg;
    gr_task *a, *b;
    ck_assert_int_eq(gr_spawn(&a, wait_usr1, NULL, NULL), 0);
    ck_assert_int_eq(gr_spawn(&b, wait_usr2_or_hup, NULL, NULL), 0);
    gr_task *both[2] = {a, b};
    until_parked(both, 2);
    /* each task gets its own signal, whatever the sending order */
    ck_assert_int_eq(kill(getpid(), SIGHUP), 0);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_int_eq(gr_join(a), SIGUSR1);
    ck_assert_int_eq(gr_join(b), SIGHUP);
    /* a signal nobody waits for is kept for the next waiter */
    ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
    ck_assert_int_eq(gr_signal_wait(GR_SIGNAL(SIGUSR2)), SIGUSR2);
    /* bad masks */
    ck_assert_int_eq(gr_signal_wait(0), -EINVAL);
    ck_assert_int_eq(gr_signal_wait(GR_SIGNAL(SIGTERM)), -EINVAL);
    return 0;
}

START_TEST(signals_reach_their_waiters)
{
    gr_config cfg = signal_config();
    int before = gr_test_open_fds();
    ck_assert_int_eq(gr_run(deliver_main, NULL, &cfg), 0);
    ck_assert_int_eq(gr_test_open_fds(), before);
    /* the mask is back: SIGUSR1 is not blocked in this thread any more */
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    ck_assert_int_eq(sigismember(&now, SIGUSR1), 0);
}
END_TEST

static int cancel_main(void *arg)
{
    (void)arg;
    gr_task *a;
    ck_assert_int_eq(gr_spawn(&a, wait_usr1, NULL, NULL), 0);
    gr_task *one[1] = {a};
    until_parked(one, 1);
    ck_assert_int_eq(gr_cancel(a), 0);
    ck_assert_int_eq(gr_join(a), -ECANCELED);
    gr_scope scope;
    gr_scope_enter_timeout(&scope, 1000000);
    ck_assert_int_eq(gr_signal_wait(GR_SIGNAL(SIGUSR1)), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&scope), 1);
    /* the cancelled waiter left nothing behind: a signal now is pending
     * for the next waiter */
    kill(getpid(), SIGUSR1);
    ck_assert_int_eq(gr_signal_wait(GR_SIGNAL(SIGUSR1)), SIGUSR1);
    return 0;
}

START_TEST(cancelled_and_timed_out_waits)
{
    gr_config cfg = signal_config();
    ck_assert_int_eq(gr_run(cancel_main, NULL, &cfg), 0);
}
END_TEST

static int no_signals_main(void *arg)
{
    (void)arg;
    return gr_signal_wait(GR_SIGNAL(SIGUSR1));
}

START_TEST(unconfigured_signal_is_einval)
{
    ck_assert_int_eq(gr_test_run(no_signals_main, NULL, 1), -EINVAL);
}
END_TEST

/* ------------------------------------------------------------------
 * Graceful shutdown
 * ------------------------------------------------------------------ */

static int cleanup_ran;

static int server_like_main(void *arg)
{
    (void)arg;
    kill(getpid(), SIGTERM);
    /* "serving" until cancelled */
    int rc = gr_sleep(INT64_MAX);
    ck_assert_int_eq(rc, -ECANCELED);
    /* cleanup can still block inside a shield */
    gr_scope shield;
    gr_scope_enter_shield(&shield);
    ck_assert_int_eq(gr_sleep(1000), 0);
    gr_scope_leave(&shield);
    cleanup_ran = 1;
    return 0;
}

START_TEST(first_signal_cancels_main)
{
    gr_config cfg = {.workers = 2, .graceful_shutdown = 1};
    ck_assert_int_eq(gr_run(server_like_main, NULL, &cfg), 0);
    ck_assert_int_eq(cleanup_ran, 1);
}
END_TEST

static int stubborn_main(void *arg)
{
    (void)arg;
    kill(getpid(), SIGINT);
    gr_scope shield;
    gr_scope_enter_shield(&shield);
    /* ignores the first signal... */
    gr_sleep(1000000);
    kill(getpid(), SIGINT);
    gr_sleep(INT64_MAX);
    gr_scope_leave(&shield);
    return 0;
}

static int run_stubborn(void *arg)
{
    (void)arg;
    gr_config cfg = {.workers = 2, .graceful_shutdown = 1};
    return gr_run(stubborn_main, NULL, &cfg);
}

START_TEST(second_signal_forces_exit)
{
    struct gr_test_child child;
    gr_test_run_child(run_stubborn, NULL, &child);
    ck_assert(WIFEXITED(child.status));
    ck_assert_int_eq(WEXITSTATUS(child.status), 128 + SIGINT);
    ck_assert_ptr_nonnull(strstr(child.err, "second"));
}
END_TEST

static int slow_main(void *arg)
{
    (void)arg;
    kill(getpid(), SIGTERM);
    gr_scope shield;
    gr_scope_enter_shield(&shield);
    gr_sleep(INT64_MAX);
    gr_scope_leave(&shield);
    return 0;
}

static int run_slow(void *arg)
{
    (void)arg;
    gr_config cfg = {.workers = 1, .graceful_shutdown = 1, .shutdown_grace_ns = 20000000};
    return gr_run(slow_main, NULL, &cfg);
}

START_TEST(grace_period_expires)
{
    struct gr_test_child child;
    gr_test_run_child(run_slow, NULL, &child);
    ck_assert(WIFEXITED(child.status));
    ck_assert_int_eq(WEXITSTATUS(child.status), 1);
    ck_assert_ptr_nonnull(strstr(child.err, "did not finish in time"));
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("signal");
    TCase *tc = tcase_create("signal");
    tcase_add_test(tc, signals_reach_their_waiters);
    tcase_add_test(tc, cancelled_and_timed_out_waits);
    tcase_add_test(tc, unconfigured_signal_is_einval);
    tcase_add_test(tc, first_signal_cancels_main);
    tcase_add_test(tc, second_signal_forces_exit);
    tcase_add_test(tc, grace_period_expires);
    suite_add_tcase(s, tc);
    return s;
}
