/* Timeout scopes (asyncio.timeout / Trio move_on_after), shield scopes
 * (asyncio.shield: the three scenarios of the asyncio documentation) and
 * gr_wait_for (asyncio.wait_for).
 *
 * Deadlines are short (1-5 ms) and only ever checked through -ETIMEDOUT and
 * gr_scope_leave's answer, never through elapsed time. Deadlines that must
 * not fire are an hour away.
 */
/* greenring-test: tsan */
/* greenring-test: asan */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "support/support.h"

#define FOREVER INT64_MAX
#define MS ((int64_t)1000000)
#define HOUR ((int64_t)3600 * 1000 * MS)

/* ---------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

/* Runs fn as main with 2 workers, asserting gr_run's result and the fds. */
static void run2(gr_task_fn fn, void *arg)
{
    gr_test_run_ok(fn, arg, 2);
}

/* ---------------------------------------------------------------------
 * Timeout scopes
 * --------------------------------------------------------------------- */

static int fires_main(void *arg)
{
    (void)arg;
    int p[2];
    gr_test_pipe(p);
    gr_scope s;
    ck_assert_int_eq(gr_scope_enter_timeout(&s, 2 * MS), 0);
    ck_assert_int_eq(gr_sleep(FOREVER), -ETIMEDOUT);
    /* Level-triggered: every later blocking call in the scope. */
    char c;
    ck_assert_int_eq(gr_read(p[0], &c, 1), -ETIMEDOUT);
    ck_assert_int_eq(gr_nop(), -ETIMEDOUT);
    ck_assert_int_eq(gr_sleep(0), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&s), 1);
    /* Outside the scope everything works again. */
    ck_assert_int_eq(gr_nop(), 0);
    ck_assert_int_eq(write(p[1], "z", 1), 1);
    ck_assert_int_eq(gr_read(p[0], &c, 1), 1);
    ck_assert_int_eq(c, 'z');
    gr_test_close_pipe(p);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_scope_fires)
{
    run2(fires_main, NULL);
}
END_TEST

/* An I/O wait interrupted by the deadline: the read is cancelled through
 * the ring, no byte is consumed. */
struct scoped_reader {
    int fd;
    int rc, left;
};

static int scoped_read_task(void *arg)
{
    struct scoped_reader *r = arg;
    gr_scope s;
    char c;
    ck_assert_int_eq(gr_scope_enter_timeout(&s, 3 * MS), 0);
    r->rc = (int)gr_read(r->fd, &c, 1);
    r->left = gr_scope_leave(&s);
    return 0;
}

static int read_timeout_main(void *arg)
{
    (void)arg;
    int p[2];
    gr_test_pipe(p);
    struct scoped_reader r = {.fd = p[0]};
    gr_task *t = gr_test_spawn_named(scoped_read_task, &r, "reader");
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(r.rc, -ETIMEDOUT);
    ck_assert_int_eq(r.left, 1);
    gr_test_close_pipe(p);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_scope_interrupts_io)
{
    run2(read_timeout_main, NULL);
}
END_TEST

static int not_fired_main(void *arg)
{
    (void)arg;
    gr_scope s;
    ck_assert_int_eq(gr_scope_enter_timeout(&s, HOUR), 0);
    ck_assert_int_eq(gr_nop(), 0);
    ck_assert_int_eq(gr_sleep(0), 0);
    ck_assert_int_eq(gr_scope_leave(&s), 0);
    ck_assert_int_eq(gr_scope_enter_deadline(&s, GR_NO_DEADLINE), 0);
    ck_assert_int_eq(gr_nop(), 0);
    ck_assert_int_eq(gr_scope_leave(&s), 0);
    return 0;
}

START_TEST(test_scope_not_fired)
{
    run2(not_fired_main, NULL);
}
END_TEST

/* Nesting, inner shorter: the inner fires; the outer did not. */
static int inner_shorter_main(void *arg)
{
    (void)arg;
    gr_scope outer, inner;
    ck_assert_int_eq(gr_scope_enter_timeout(&outer, HOUR), 0);
    ck_assert_int_eq(gr_scope_enter_timeout(&inner, 2 * MS), 0);
    ck_assert_int_eq(gr_sleep(FOREVER), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&inner), 1);
    ck_assert_int_eq(gr_nop(), 0);
    ck_assert_int_eq(gr_scope_leave(&outer), 0);
    return 0;
}

/* Nesting, inner longer: the outer's deadline is the earliest; it fires,
 * the inner reports nothing, and the outer stays expired after the inner is
 * left. */
static int inner_longer_main(void *arg)
{
    (void)arg;
    gr_scope outer, inner;
    ck_assert_int_eq(gr_scope_enter_timeout(&outer, 2 * MS), 0);
    ck_assert_int_eq(gr_scope_enter_timeout(&inner, HOUR), 0);
    ck_assert_int_eq(gr_sleep(FOREVER), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&inner), 0);
    ck_assert_int_eq(gr_nop(), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&outer), 1);
    ck_assert_int_eq(gr_nop(), 0);
    return 0;
}

/* Three levels, the middle one earliest. */
static int middle_earliest_main(void *arg)
{
    (void)arg;
    gr_scope a, b, c;
    ck_assert_int_eq(gr_scope_enter_timeout(&a, HOUR), 0);
    ck_assert_int_eq(gr_scope_enter_timeout(&b, 2 * MS), 0);
    ck_assert_int_eq(gr_scope_enter_deadline(&c, GR_NO_DEADLINE), 0);
    ck_assert_int_eq(gr_sleep(FOREVER), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&c), 0);
    ck_assert_int_eq(gr_scope_leave(&b), 1);
    ck_assert_int_eq(gr_scope_leave(&a), 0);
    return 0;
}

START_TEST(test_scope_nesting)
{
    run2(inner_shorter_main, NULL);
    run2(inner_longer_main, NULL);
    run2(middle_earliest_main, NULL);
}
END_TEST

/* A scope entered with a deadline already in the past: the first blocking
 * call returns -ETIMEDOUT without parking. */
static int past_deadline_main(void *arg)
{
    (void)arg;
    gr_scope s;
    ck_assert_int_eq(gr_scope_enter_deadline(&s, gr_now() - MS), 0);
    ck_assert_int_eq(gr_nop(), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&s), 1);
    return 0;
}

START_TEST(test_scope_past_deadline)
{
    run2(past_deadline_main, NULL);
}
END_TEST

/* Reschedule (asyncio Timeout.reschedule): from no deadline to a near one,
 * from a near one to none, and into the past. */
static int reschedule_main(void *arg)
{
    (void)arg;
    gr_scope s;
    ck_assert_int_eq(gr_scope_enter_deadline(&s, GR_NO_DEADLINE), 0);
    ck_assert_int_eq(gr_nop(), 0);
    ck_assert_int_eq(gr_scope_reschedule(&s, gr_now() + 2 * MS), 0);
    ck_assert_int_eq(gr_sleep(FOREVER), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&s), 1);

    /* Pushed out before it fires: a sleep longer than the original
     * deadline completes (the sleep is what is tested here). */
    ck_assert_int_eq(gr_scope_enter_timeout(&s, 1 * MS), 0);
    ck_assert_int_eq(gr_scope_reschedule(&s, GR_NO_DEADLINE), 0);
    ck_assert_int_eq(gr_sleep(3 * MS), 0);
    ck_assert_int_eq(gr_scope_leave(&s), 0);

    ck_assert_int_eq(gr_scope_enter_timeout(&s, HOUR), 0);
    ck_assert_int_eq(gr_nop(), 0);
    ck_assert_int_eq(gr_scope_reschedule(&s, gr_now() - 1), 0);
    ck_assert_int_eq(gr_nop(), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&s), 1);
    return 0;
}

START_TEST(test_scope_reschedule)
{
    run2(reschedule_main, NULL);
}
END_TEST

/* Scopes must be left innermost first. */
static int out_of_order_main(void *arg)
{
    (void)arg;
    gr_scope a, b, never;
    memset(&never, 0, sizeof(never));
    ck_assert_int_eq(gr_scope_enter_timeout(&a, HOUR), 0);
    ck_assert_int_eq(gr_scope_enter_timeout(&b, HOUR), 0);
    ck_assert_int_eq(gr_scope_leave(&a), -EINVAL);
    ck_assert_int_eq(gr_scope_leave(&never), -EINVAL);
    ck_assert_int_eq(gr_scope_leave(NULL), -EINVAL);
    ck_assert_int_eq(gr_scope_reschedule(&never, 0), -EINVAL);
    /* The failed leaves changed nothing: b is still innermost. */
    ck_assert_int_eq(gr_scope_leave(&b), 0);
    ck_assert_int_eq(gr_scope_leave(&b), -EINVAL); /* twice */
    ck_assert_int_eq(gr_scope_leave(&a), 0);
    ck_assert_int_eq(gr_scope_enter_timeout(NULL, MS), -EINVAL);
    ck_assert_int_eq(gr_scope_enter_shield(NULL), -EINVAL);
    return 0;
}

START_TEST(test_scope_leave_out_of_order)
{
    gr_scope s;
    /* Outside a task. */
    ck_assert_int_eq(gr_scope_enter_timeout(&s, MS), -EPERM);
    ck_assert_int_eq(gr_scope_enter_shield(&s), -EPERM);
    run2(out_of_order_main, NULL);
}
END_TEST

/* A scope belongs to the task that entered it: another task cannot leave or
 * reschedule it, and tasks spawned inside an expired scope are not in it. */
struct foreign_scope {
    gr_scope *scope;
    int leave_rc, reschedule_rc, nop_rc;
    int gate[2]; /* keeps the task running until main has tried its join */
};

static int foreign_scope_task(void *arg)
{
    struct foreign_scope *f = arg;
    f->leave_rc = gr_scope_leave(f->scope);
    f->reschedule_rc = gr_scope_reschedule(f->scope, 0);
    f->nop_rc = gr_nop();
    char b;
    return gr_read(f->gate[0], &b, 1) == 1 ? 0 : -EIO;
}

static int scope_per_task_main(void *arg)
{
    (void)arg;
    gr_scope s;
    ck_assert_int_eq(gr_scope_enter_deadline(&s, gr_now() - 1), 0);
    struct foreign_scope f = {.scope = &s};
    gr_test_pipe(f.gate);
    gr_task *t = gr_test_spawn_named(foreign_scope_task, &f, "other");
    /* Our scope has expired, so our own join (of a task that cannot have
     * finished: it waits for the gate) is interrupted... */
    ck_assert_int_eq(gr_join(t), -ETIMEDOUT);
    /* ...and inside a shield it completes (the scope record is not touched
     * by us while the other task looks at it). */
    ck_assert_int_eq(write(f.gate[1], "g", 1), 1);
    gr_scope shield;
    ck_assert_int_eq(gr_scope_enter_shield(&shield), 0);
    ck_assert_int_eq(gr_join(t), 0);
    gr_test_close_pipe(f.gate);
    ck_assert_int_eq(gr_scope_leave(&shield), 0);
    ck_assert_int_eq(gr_scope_leave(&s), 1);
    ck_assert_int_eq(f.leave_rc, -EINVAL);
    ck_assert_int_eq(f.reschedule_rc, -EINVAL);
    ck_assert_int_eq(f.nop_rc, 0);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_scope_per_task)
{
    run2(scope_per_task_main, NULL);
}
END_TEST

/* Cancellation beats a timeout scope that has not expired. */
static int cancel_in_scope_task(void *arg)
{
    int *rc = arg;
    gr_scope s;
    ck_assert_int_eq(gr_scope_enter_timeout(&s, HOUR), 0);
    *rc = gr_sleep(FOREVER);
    ck_assert_int_eq(gr_scope_leave(&s), 0);
    return 0;
}

static int cancel_in_scope_main(void *arg)
{
    (void)arg;
    int rc = 0;
    gr_task *t = gr_test_spawn_named(cancel_in_scope_task, &rc, "scoped");
    gr_test_wait_parked("scoped", "sleep");
    ck_assert_int_eq(gr_cancel(t), 0);
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(rc, -ECANCELED);
    return 0;
}

START_TEST(test_scope_cancel_inside)
{
    run2(cancel_in_scope_main, NULL);
}
END_TEST

/* ---------------------------------------------------------------------
 * Shield scopes
 * --------------------------------------------------------------------- */

struct shield_case {
    int p[2];          /* the inner task reads one byte from it */
    gr_task *inner;
    int inner_result;
    int join_rc, nop_in_shield, leave_rc, after_rc;
    _Atomic int inner_cleanup;
    int inner_cancelled; /* as the inner task saw itself when it ended */
};

/* The shielded work: reads one byte and returns 99; on cancellation
 * returns the error. */
static int inner_work(void *arg)
{
    struct shield_case *c = arg;
    char b;
    int rc = (int)gr_read(c->p[0], &b, 1);
    c->inner_cancelled = gr_task_cancelled(gr_self());
    atomic_fetch_add(&c->inner_cleanup, 1);
    return rc == 1 ? 99 : rc;
}

/* The waiter: joins the inner task inside a shield. */
static int shielded_waiter(void *arg)
{
    struct shield_case *c = arg;
    gr_scope shield;
    ck_assert_int_eq(gr_scope_enter_shield(&shield), 0);
    c->join_rc = gr_join(c->inner);
    c->nop_in_shield = gr_nop();
    c->leave_rc = gr_scope_leave(&shield);
    c->after_rc = gr_nop();
    return 0;
}

/* Opens the case's pipe, spawns the inner task and `waiter` (which joins
 * it) and returns once both are parked: the waiter in the join, the inner
 * task in its read. Returns the waiter. */
static gr_task *shield_start(struct shield_case *c, gr_task_fn waiter)
{
    gr_test_pipe(c->p);
    c->inner = gr_test_spawn_named(inner_work, c, "inner");
    gr_task *w = gr_test_spawn_named(waiter, c, "waiter");
    gr_test_wait_parked("waiter", "join");
    gr_test_wait_parked("inner", "io read");
    return w;
}

/* The inner task's cleanup ran once; closes the pipe; only main is left. */
static void shield_finish(struct shield_case *c)
{
    ck_assert_int_eq(atomic_load(&c->inner_cleanup), 1);
    gr_test_close_pipe(c->p);
    gr_test_assert_only_main_stack();
}

/* Scenario 1: cancelling the waiter does not cancel the shielded work. The
 * waiter's calls inside the shield keep working; its first blocking call
 * after the shield returns -ECANCELED. */
static int shield1_main(void *arg)
{
    struct shield_case *c = arg;
    gr_task *w = shield_start(c, shielded_waiter);
    ck_assert_int_eq(gr_cancel(w), 0);
    /* The cancel is held off: the waiter stays parked. Now let the inner
     * work finish (the waiter owns its handle and joins it). */
    ck_assert_int_eq(write(c->p[1], "i", 1), 1);
    ck_assert_int_eq(gr_join(w), 0);
    ck_assert_int_eq(c->inner_cancelled, 0);
    ck_assert_int_eq(c->join_rc, 99);
    ck_assert_int_eq(c->nop_in_shield, 0);
    ck_assert_int_eq(c->leave_rc, 0);
    ck_assert_int_eq(c->after_rc, -ECANCELED);
    shield_finish(c);
    return 0;
}

START_TEST(test_shield_waiter_cancelled)
{
    struct shield_case c = {0};
    run2(shield1_main, &c);
}
END_TEST

/* Scenario 2: cancelling the inner task propagates: the waiter's join
 * returns the inner task's -ECANCELED; the waiter itself is not cancelled. */
static int shield2_main(void *arg)
{
    struct shield_case *c = arg;
    gr_task *w = shield_start(c, shielded_waiter);
    ck_assert_int_eq(gr_cancel(c->inner), 0);
    ck_assert_int_eq(gr_join(w), 0);
    ck_assert_int_eq(c->join_rc, -ECANCELED);
    ck_assert_int_eq(c->inner_cancelled, 1);
    ck_assert_int_eq(c->nop_in_shield, 0);
    ck_assert_int_eq(c->leave_rc, 0);
    ck_assert_int_eq(c->after_rc, 0);
    shield_finish(c);
    return 0;
}

START_TEST(test_shield_inner_cancelled)
{
    struct shield_case c = {0};
    run2(shield2_main, &c);
}
END_TEST

/* Scenario 3: the waiter (not shielded) sees the cancellation while the
 * inner task goes on and finishes with its result, which someone else
 * collects later. */
static int plain_waiter(void *arg)
{
    struct shield_case *c = arg;
    c->join_rc = gr_join(c->inner);
    c->after_rc = gr_nop();
    return 0;
}

static int shield3_main(void *arg)
{
    struct shield_case *c = arg;
    gr_task *w = shield_start(c, plain_waiter);
    ck_assert_int_eq(gr_cancel(w), 0);
    ck_assert_int_eq(gr_join(w), 0);
    ck_assert_int_eq(c->join_rc, -ECANCELED);
    ck_assert_int_eq(c->after_rc, -ECANCELED);
    /* The inner task runs on, uncancelled, and its handle is still valid. */
    ck_assert_int_eq(gr_task_cancelled(c->inner), 0);
    ck_assert_int_eq(gr_task_done(c->inner), 0);
    ck_assert_int_eq(write(c->p[1], "i", 1), 1);
    ck_assert_int_eq(gr_join(c->inner), 99);
    ck_assert_int_eq(c->inner_cancelled, 0);
    shield_finish(c);
    return 0;
}

START_TEST(test_shield_waiter_sees_cancel_inner_finishes)
{
    struct shield_case c = {0};
    run2(shield3_main, &c);
}
END_TEST

/* A shield holds off the task's own cancellation and the deadlines of the
 * scopes around it; timeout scopes inside the shield still apply. */
static int shield_rules_main(void *arg)
{
    (void)arg;
    gr_scope outer, shield, inner, shield2;
    /* Around: an expired timeout. */
    ck_assert_int_eq(gr_scope_enter_timeout(&outer, 1 * MS), 0);
    ck_assert_int_eq(gr_sleep(FOREVER), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_enter_shield(&shield), 0);
    ck_assert_int_eq(gr_nop(), 0);
    ck_assert_int_eq(gr_sleep(1 * MS), 0);
    ck_assert_int_eq(gr_scope_enter_timeout(&inner, 2 * MS), 0);
    ck_assert_int_eq(gr_sleep(FOREVER), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&inner), 1);
    ck_assert_int_eq(gr_scope_leave(&shield), 0);
    ck_assert_int_eq(gr_nop(), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&outer), 1);

    /* The task's own cancellation. */
    ck_assert_int_eq(gr_cancel(gr_self()), 0);
    ck_assert_int_eq(gr_nop(), -ECANCELED);
    ck_assert_int_eq(gr_scope_enter_shield(&shield), 0);
    ck_assert_int_eq(gr_nop(), 0);
    ck_assert_int_eq(gr_sleep(1 * MS), 0);
    ck_assert_int_eq(gr_scope_enter_shield(&shield2), 0); /* nested shields */
    ck_assert_int_eq(gr_nop(), 0);
    ck_assert_int_eq(gr_scope_leave(&shield2), 0);
    ck_assert_int_eq(gr_nop(), 0);
    ck_assert_int_eq(gr_scope_leave(&shield), 0);
    ck_assert_int_eq(gr_nop(), -ECANCELED);
    return 0;
}

START_TEST(test_shield_rules)
{
    run2(shield_rules_main, NULL);
}
END_TEST

/* ---------------------------------------------------------------------
 * gr_wait_for
 * --------------------------------------------------------------------- */

struct wf {
    int p[2];
    _Atomic int cleanup;
    int blocked_rc;
};

static int return_42_after_nop(void *arg)
{
    (void)arg;
    ck_assert_int_eq(gr_nop(), 0);
    return 42;
}

static int wf_blocked(void *arg)
{
    struct wf *w = arg;
    w->blocked_rc = gr_sleep(FOREVER);
    atomic_fetch_add(&w->cleanup, 1);
    return w->blocked_rc;
}

static int wf_in_time_main(void *arg)
{
    (void)arg;
    gr_task *t = gr_test_spawn_named(return_42_after_nop, NULL, "quick");
    ck_assert_int_eq(gr_wait_for(t, HOUR), 42);
    ck_assert_int_eq(gr_task_done(t), -ESRCH); /* released */
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_wait_for_in_time)
{
    run2(wf_in_time_main, NULL);
}
END_TEST

static int wf_timeout_main(void *arg)
{
    struct wf *w = arg;
    gr_task *t = gr_test_spawn_named(wf_blocked, w, "slow");
    ck_assert_int_eq(gr_wait_for(t, 2 * MS), -ETIMEDOUT);
    /* The task was cancelled and joined before gr_wait_for returned. */
    ck_assert_int_eq(atomic_load(&w->cleanup), 1);
    ck_assert_int_eq(w->blocked_rc, -ECANCELED);
    ck_assert_int_eq(gr_task_done(t), -ESRCH);
    ck_assert_int_eq(gr_nop(), 0); /* our own scope is gone */
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_wait_for_timeout)
{
    struct wf w = {0};
    run2(wf_timeout_main, &w);
}
END_TEST

static int return_etimedout(void *arg)
{
    (void)arg;
    return -ETIMEDOUT;
}

/* The task's own -ETIMEDOUT result is passed through as its result. */
static int wf_task_result_main(void *arg)
{
    (void)arg;
    gr_task *t = gr_test_spawn_named(return_etimedout, NULL, "own-timeout");
    ck_assert_int_eq(gr_wait_for(t, HOUR), -ETIMEDOUT);
    ck_assert_int_eq(gr_task_done(t), -ESRCH);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_wait_for_task_returns_etimedout)
{
    run2(wf_task_result_main, NULL);
}
END_TEST

/* An enclosing scope expires before wait_for's own timeout: the wait still
 * ends with the task cancelled and joined, and the handle released ("The
 * handle is released in both cases"). */
static int wf_outer_scope_main(void *arg)
{
    struct wf *w = arg;
    gr_task *t = gr_test_spawn_named(wf_blocked, w, "slow");
    gr_scope outer;
    ck_assert_int_eq(gr_scope_enter_timeout(&outer, 2 * MS), 0);
    int rc = gr_wait_for(t, HOUR);
    int left = gr_scope_leave(&outer);
    ck_assert_int_eq(rc, -ETIMEDOUT);
    ck_assert_int_eq(left, 1);
    int done = gr_task_done(t);
    int cleanup = atomic_load(&w->cleanup);
    if (done >= 0) {
        /* Clean up so the failure below is the only report. */
        gr_cancel(t);
        gr_join(t);
    }
    ck_assert_msg(done == -ESRCH,
                  "gr_wait_for interrupted by an enclosing scope left the task running "
                  "(gr_task_done = %d, cleanup = %d)",
                  done, cleanup);
    ck_assert_int_eq(atomic_load(&w->cleanup), 1);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_wait_for_enclosing_scope_expires)
{
    struct wf w = {0};
    run2(wf_outer_scope_main, &w);
}
END_TEST

/* The caller of gr_wait_for is cancelled: -ECANCELED, and the task was
 * cancelled and joined too. */
struct wf_caller {
    struct wf *w;
    gr_task *target;
    int rc, done_after;
};

static int wf_caller_task(void *arg)
{
    struct wf_caller *c = arg;
    c->rc = gr_wait_for(c->target, HOUR);
    c->done_after = gr_task_done(c->target);
    return 0;
}

static int wf_caller_cancelled_main(void *arg)
{
    struct wf *w = arg;
    struct wf_caller c = {.w = w};
    c.target = gr_test_spawn_named(wf_blocked, w, "slow");
    gr_task *caller = gr_test_spawn_named(wf_caller_task, &c, "caller");
    gr_test_wait_parked("slow", "sleep");
    gr_test_wait_parked("caller", NULL);
    ck_assert_int_eq(gr_cancel(caller), 0);
    ck_assert_int_eq(gr_join(caller), 0);
    ck_assert_int_eq(c.rc, -ECANCELED);
    ck_assert_int_eq(c.done_after, -ESRCH);
    ck_assert_int_eq(atomic_load(&w->cleanup), 1);
    ck_assert_int_eq(w->blocked_rc, -ECANCELED);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_wait_for_caller_cancelled)
{
    struct wf w = {0};
    run2(wf_caller_cancelled_main, &w);
}
END_TEST

/* A task that has already finished has "finished by then", whatever the
 * timeout: its result comes back even with a zero timeout (as
 * asyncio.wait_for(done_future, 0) returns the result). */
static int wf_zero_main(void *arg)
{
    (void)arg;
    gr_task *t = gr_test_spawn_named(return_42_after_nop, NULL, "done");
    unsigned char done = 0;
    ck_assert_int_eq(gr_wait(&t, 1, GR_WAIT_ALL, FOREVER, &done), 1);
    ck_assert_int_eq(gr_task_done(t), 1);
    int rc = gr_wait_for(t, 0);
    ck_assert_msg(rc == 42, "gr_wait_for(finished task, 0) returned %d, not its result 42", rc);
    ck_assert_int_eq(gr_task_done(t), -ESRCH);
    return 0;
}

START_TEST(test_wait_for_finished_zero_timeout)
{
    run2(wf_zero_main, NULL);
}
END_TEST

/* The caller is cancelled (or its scope has expired) and the task has
 * already finished: whatever gr_wait_for returns, the handle is released
 * ("the handle is released in both cases"; on -ECANCELED "the handle is
 * gone as well"). */
struct wf_late {
    gr_task *target;
    int expired_scope; /* 0: the caller is cancelled; 1: in an expired scope */
    int rc, done_after;
};

static int wf_late_caller(void *arg)
{
    struct wf_late *c = arg;
    gr_scope s;
    if (c->expired_scope)
        ck_assert_int_eq(gr_scope_enter_deadline(&s, gr_now() - 1), 0);
    else
        ck_assert_int_eq(gr_cancel(gr_self()), 0);
    c->rc = gr_wait_for(c->target, HOUR);
    c->done_after = gr_task_done(c->target);
    if (c->expired_scope)
        gr_scope_leave(&s);
    return 0;
}

static int wf_interrupted_caller_done_task_main(void *arg)
{
    (void)arg;
    for (int k = 0; k < 2; k++) {
        struct wf_late c = {.expired_scope = k, .rc = 12345};
        c.target = gr_test_spawn_named(return_42_after_nop, NULL, "done");
        ck_assert_int_eq(gr_wait(&c.target, 1, GR_WAIT_ALL, FOREVER, NULL), 1);
        gr_task *caller = gr_test_spawn_named(wf_late_caller, &c, "caller");
        ck_assert_int_eq(gr_join(caller), 0);
        if (c.done_after >= 0)
            gr_join(c.target); /* clean up so the failure below is the only report */
        ck_assert_msg(c.done_after == -ESRCH,
                      "%s caller: gr_wait_for returned %d and left the handle unreleased",
                      k ? "expired-scope" : "cancelled", c.rc);
        ck_assert_msg(c.rc == 42 || c.rc == (k ? -ETIMEDOUT : -ECANCELED), "rc %d", c.rc);
    }
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_wait_for_interrupted_caller_finished_task)
{
    run2(wf_interrupted_caller_done_task_main, NULL);
}
END_TEST

static int wf_bad_main(void *arg)
{
    (void)arg;
    ck_assert_int_eq(gr_wait_for(NULL, MS), -EINVAL);
    ck_assert_int_eq(gr_wait_for(gr_self(), MS), -EDEADLK);
    gr_task *t = gr_test_spawn_named(return_42_after_nop, NULL, "t");
    ck_assert_int_eq(gr_join(t), 42);
    ck_assert_int_eq(gr_wait_for(t, MS), -ESRCH); /* stale */
    return 0;
}

START_TEST(test_wait_for_bad_handles)
{
    run2(wf_bad_main, NULL);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("scope");

    TCase *tc = tcase_create("timeout");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_scope_fires);
    tcase_add_test(tc, test_scope_interrupts_io);
    tcase_add_test(tc, test_scope_not_fired);
    tcase_add_test(tc, test_scope_nesting);
    tcase_add_test(tc, test_scope_past_deadline);
    tcase_add_test(tc, test_scope_reschedule);
    tcase_add_test(tc, test_scope_leave_out_of_order);
    tcase_add_test(tc, test_scope_per_task);
    tcase_add_test(tc, test_scope_cancel_inside);
    suite_add_tcase(s, tc);

    tc = tcase_create("shield");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_shield_waiter_cancelled);
    tcase_add_test(tc, test_shield_inner_cancelled);
    tcase_add_test(tc, test_shield_waiter_sees_cancel_inner_finishes);
    tcase_add_test(tc, test_shield_rules);
    suite_add_tcase(s, tc);

    tc = tcase_create("wait_for");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_wait_for_in_time);
    tcase_add_test(tc, test_wait_for_timeout);
    tcase_add_test(tc, test_wait_for_task_returns_etimedout);
    tcase_add_test(tc, test_wait_for_enclosing_scope_expires);
    tcase_add_test(tc, test_wait_for_caller_cancelled);
    tcase_add_test(tc, test_wait_for_finished_zero_timeout);
    tcase_add_test(tc, test_wait_for_interrupted_caller_finished_task);
    tcase_add_test(tc, test_wait_for_bad_handles);
    suite_add_tcase(s, tc);
    return s;
}
