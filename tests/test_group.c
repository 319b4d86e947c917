/* Task groups (asyncio.TaskGroup, Trio nurseries): all succeed; the first
 * failure cancels the siblings (whose cleanup runs exactly once) and is
 * what the wait returns, with every error listed; nesting; cancelling the
 * waiter; group deadlines; spawning through a passed handle; the misuse
 * errors (-EDEADLK, -EPIPE, -EBUSY, -EINVAL); a thousand groups of a hundred
 * tasks on 2 workers.
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

/* ---------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

static void group_spawn_named(gr_group *g, gr_task_fn fn, void *arg, const char *name)
{
    gr_spawn_opts o = {.name = name};
    ck_assert_int_eq(gr_group_spawn(g, fn, arg, &o), 0);
}

/* Shared by the children of one test. */
struct counters {
    _Atomic int runs;
    _Atomic int cleanup;   /* children that saw their blocking call interrupted */
    _Atomic int cancelled; /* ... with -ECANCELED */
    _Atomic int timedout;  /* ... with -ETIMEDOUT */
    _Atomic int64_t sum;
    int p[2];              /* a pipe nobody writes to */
    int go[2];             /* a pipe the test writes to */
};

static void count_interrupt(struct counters *c, int rc)
{
    atomic_fetch_add(&c->cleanup, 1);
    if (rc == -ECANCELED)
        atomic_fetch_add(&c->cancelled, 1);
    else if (rc == -ETIMEDOUT)
        atomic_fetch_add(&c->timedout, 1);
}

static int sleeper_child(void *arg)
{
    struct counters *c = arg;
    atomic_fetch_add(&c->runs, 1);
    int rc = gr_sleep(FOREVER);
    count_interrupt(c, rc);
    return rc;
}

static int reader_child(void *arg)
{
    struct counters *c = arg;
    atomic_fetch_add(&c->runs, 1);
    char b;
    int rc = (int)gr_read(c->p[0], &b, 1);
    count_interrupt(c, rc);
    return rc;
}

/* Reads one byte from `go`, then fails with -EIO. */
static int failing_child(void *arg)
{
    struct counters *c = arg;
    char b;
    ck_assert_int_eq(gr_read(c->go[0], &b, 1), 1);
    return -EIO;
}

static void open_pipes(struct counters *c)
{
    gr_test_pipe(c->p);
    gr_test_pipe(c->go);
}

static void close_pipes(struct counters *c)
{
    gr_test_close_pipe(c->p);
    gr_test_close_pipe(c->go);
}

/* ---------------------------------------------------------------------
 * All succeed
 * --------------------------------------------------------------------- */

#define SUCCEED_N 64

static int adder_child(void *arg)
{
    struct counters *c = arg;
    ck_assert_int_eq(gr_nop(), 0);
    int k = atomic_fetch_add(&c->runs, 1);
    atomic_fetch_add(&c->sum, k + 1);
    return 0;
}

static int all_succeed_main(void *arg)
{
    (void)arg;
    struct counters c = {0};
    gr_group *g;
    ck_assert_int_eq(gr_group_create(&g), 0);
    for (int i = 0; i < SUCCEED_N; i++)
        group_spawn_named(g, adder_child, &c, "adder");
    ck_assert_int_eq(gr_group_wait(g), 0);
    /* The group cannot end before its children. */
    ck_assert_int_eq(atomic_load(&c.runs), SUCCEED_N);
    ck_assert_int_eq(atomic_load(&c.sum), SUCCEED_N * (SUCCEED_N + 1) / 2);
    int errs[4];
    ck_assert_int_eq(gr_group_errors(g, errs, 4), 0);
    ck_assert_int_eq(gr_group_destroy(g), 0);

    /* An empty group waits for nothing. */
    ck_assert_int_eq(gr_group_create(&g), 0);
    ck_assert_int_eq(gr_group_wait(g), 0);
    ck_assert_int_eq(gr_group_destroy(g), 0);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_group_all_succeed)
{
    gr_test_run_ok(all_succeed_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * One child fails: the siblings are cancelled, their cleanup runs once
 * each, the wait returns the error and gr_group_errors lists it.
 * --------------------------------------------------------------------- */

#define SIBLINGS 10

static int one_fails_main(void *arg)
{
    (void)arg;
    struct counters c = {0};
    open_pipes(&c);
    gr_group *g;
    ck_assert_int_eq(gr_group_create(&g), 0);
    for (int i = 0; i < SIBLINGS; i++)
        group_spawn_named(g, i % 2 ? sleeper_child : reader_child, &c, "sibling");
    group_spawn_named(g, failing_child, &c, "failer");
    gr_test_wait_parked_n("sibling", NULL, SIBLINGS);
    gr_test_wait_parked_n("failer", "io read", 1);
    ck_assert_int_eq(write(c.go[1], "!", 1), 1);
    ck_assert_int_eq(gr_group_wait(g), -EIO);
    ck_assert_int_eq(atomic_load(&c.runs), SIBLINGS);
    ck_assert_int_eq(atomic_load(&c.cleanup), SIBLINGS);
    ck_assert_int_eq(atomic_load(&c.cancelled), SIBLINGS);
    int errs[4] = {0};
    ck_assert_int_eq(gr_group_errors(g, errs, 4), 1);
    ck_assert_int_eq(errs[0], -EIO);
    ck_assert_int_eq(gr_group_errors(g, NULL, 0), 1);
    ck_assert_int_eq(gr_group_destroy(g), 0);
    close_pipes(&c);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_group_failure_cancels_siblings)
{
    gr_test_run_ok(one_fails_main, NULL, 2);
}
END_TEST

/* A sibling whose cleanup itself fails: both errors are kept, in the order
 * they happened; the wait returns the first. */
static int bad_cleanup_child(void *arg)
{
    struct counters *c = arg;
    int rc = gr_sleep(FOREVER);
    count_interrupt(c, rc);
    return rc == -ECANCELED ? -EBADMSG : rc;
}

static int two_errors_main(void *arg)
{
    (void)arg;
    struct counters c = {0};
    open_pipes(&c);
    gr_group *g;
    ck_assert_int_eq(gr_group_create(&g), 0);
    group_spawn_named(g, bad_cleanup_child, &c, "bad-cleanup");
    group_spawn_named(g, sleeper_child, &c, "sibling");
    group_spawn_named(g, failing_child, &c, "failer");
    gr_test_wait_parked_n("bad-cleanup", "sleep", 1);
    gr_test_wait_parked_n("sibling", "sleep", 1);
    gr_test_wait_parked_n("failer", "io read", 1);
    ck_assert_int_eq(write(c.go[1], "!", 1), 1);
    ck_assert_int_eq(gr_group_wait(g), -EIO);
    ck_assert_int_eq(atomic_load(&c.cancelled), 2);
    int errs[4] = {0};
    ck_assert_int_eq(gr_group_errors(g, errs, 4), 2);
    ck_assert_int_eq(errs[0], -EIO);
    ck_assert_int_eq(errs[1], -EBADMSG);
    /* Asking for fewer copies fewer, but still counts all. */
    int one[1] = {0};
    ck_assert_int_eq(gr_group_errors(g, one, 1), 2);
    ck_assert_int_eq(one[0], -EIO);
    ck_assert_int_eq(gr_group_destroy(g), 0);
    close_pipes(&c);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_group_errors_in_order)
{
    gr_test_run_ok(two_errors_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Nested groups: three owners, each waiting on its own group of leaves; a
 * leaf of owner 1 fails. Owner 1's wait returns the error, owner 1 fails,
 * the outer group cancels owners 0 and 2, whose waits cancel their leaves.
 * --------------------------------------------------------------------- */

#define OWNERS 3
#define LEAVES 5

struct nest {
    struct counters leaves;
    struct counters bad; /* the failing leaf's pipes */
    int owner_rc[OWNERS];
    int owner_errors[OWNERS];
};

struct owner_arg {
    struct nest *n;
    int index;
};

static int owner_child(void *arg)
{
    struct owner_arg *o = arg;
    gr_group *inner;
    ck_assert_int_eq(gr_group_create(&inner), 0);
    for (int i = 0; i < LEAVES; i++)
        group_spawn_named(inner, sleeper_child, &o->n->leaves, "leaf");
    if (o->index == 1)
        group_spawn_named(inner, failing_child, &o->n->bad, "bad-leaf");
    int rc = gr_group_wait(inner);
    o->n->owner_rc[o->index] = rc;
    o->n->owner_errors[o->index] = gr_group_errors(inner, NULL, 0);
    ck_assert_int_eq(gr_group_destroy(inner), 0);
    return rc;
}

static int nested_main(void *arg)
{
    struct nest *n = arg;
    open_pipes(&n->bad);
    struct owner_arg oa[OWNERS];
    gr_group *outer;
    ck_assert_int_eq(gr_group_create(&outer), 0);
    for (int i = 0; i < OWNERS; i++) {
        oa[i] = (struct owner_arg){.n = n, .index = i};
        group_spawn_named(outer, owner_child, &oa[i], "owner");
    }
    gr_test_wait_parked_n("leaf", "sleep", OWNERS * LEAVES);
    gr_test_wait_parked_n("owner", "group wait", OWNERS);
    gr_test_wait_parked_n("bad-leaf", "io read", 1);
    ck_assert_int_eq(write(n->bad.go[1], "!", 1), 1);
    ck_assert_int_eq(gr_group_wait(outer), -EIO);
    ck_assert_int_eq(n->owner_rc[0], -ECANCELED);
    ck_assert_int_eq(n->owner_rc[1], -EIO);
    ck_assert_int_eq(n->owner_rc[2], -ECANCELED);
    ck_assert_int_eq(n->owner_errors[0], 0);
    ck_assert_int_eq(n->owner_errors[1], 1);
    ck_assert_int_eq(n->owner_errors[2], 0);
    ck_assert_int_eq(atomic_load(&n->leaves.runs), OWNERS * LEAVES);
    ck_assert_int_eq(atomic_load(&n->leaves.cleanup), OWNERS * LEAVES);
    ck_assert_int_eq(atomic_load(&n->leaves.cancelled), OWNERS * LEAVES);
    int errs[2] = {0};
    ck_assert_int_eq(gr_group_errors(outer, errs, 2), 1);
    ck_assert_int_eq(errs[0], -EIO);
    ck_assert_int_eq(gr_group_destroy(outer), 0);
    close_pipes(&n->bad);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_group_nested)
{
    struct nest n;
    memset(&n, 0, sizeof(n));
    gr_test_run_ok(nested_main, &n, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Cancelling the task that waits on a group cancels the children.
 * --------------------------------------------------------------------- */

#define CW_CHILDREN 6

struct waiter_arg {
    gr_group *g;
    int rc;
};

static int group_waiter(void *arg)
{
    struct waiter_arg *w = arg;
    w->rc = gr_group_wait(w->g);
    return 0;
}

static int cancel_waiter_main(void *arg)
{
    (void)arg;
    struct counters c = {0};
    open_pipes(&c);
    struct waiter_arg w = {0};
    ck_assert_int_eq(gr_group_create(&w.g), 0);
    for (int i = 0; i < CW_CHILDREN; i++)
        group_spawn_named(w.g, i % 2 ? sleeper_child : reader_child, &c, "child");
    gr_task *t = gr_test_spawn_named(group_waiter, &w, "waiter");
    gr_test_wait_parked_n("child", NULL, CW_CHILDREN);
    gr_test_wait_parked_n("waiter", "group wait", 1);
    ck_assert_int_eq(gr_cancel(t), 0);
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(w.rc, -ECANCELED);
    /* The wait returned only after every child had finished. */
    ck_assert_int_eq(atomic_load(&c.cleanup), CW_CHILDREN);
    ck_assert_int_eq(atomic_load(&c.cancelled), CW_CHILDREN);
    ck_assert_int_eq(gr_group_errors(w.g, NULL, 0), 0);
    /* Waited: no more spawns. */
    ck_assert_int_eq(gr_group_spawn(w.g, sleeper_child, &c, NULL), -EPIPE);
    ck_assert_int_eq(gr_group_destroy(w.g), 0);
    close_pipes(&c);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_group_cancel_waiter)
{
    gr_test_run_ok(cancel_waiter_main, NULL, 2);
}
END_TEST

/* gr_group_cancel from a task that is not the waiter: the children are
 * cancelled; -ECANCELED results are not errors, so the wait returns 0. */
static int canceller_task(void *arg)
{
    return gr_group_cancel(arg);
}

static int group_cancel_main(void *arg)
{
    (void)arg;
    struct counters c = {0};
    open_pipes(&c);
    gr_group *g;
    ck_assert_int_eq(gr_group_create(&g), 0);
    for (int i = 0; i < CW_CHILDREN; i++)
        group_spawn_named(g, i % 2 ? sleeper_child : reader_child, &c, "child");
    gr_test_wait_parked_n("child", NULL, CW_CHILDREN);
    gr_task *t = gr_test_spawn_named(canceller_task, g, "canceller");
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(gr_group_wait(g), 0);
    ck_assert_int_eq(atomic_load(&c.cancelled), CW_CHILDREN);
    ck_assert_int_eq(gr_group_errors(g, NULL, 0), 0);
    ck_assert_int_eq(gr_group_destroy(g), 0);
    close_pipes(&c);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_group_cancel_from_other_task)
{
    gr_test_run_ok(group_cancel_main, NULL, 2);
}
END_TEST

/* A child spawned into a group that is already cancelling (a child failed)
 * starts cancelled. */
struct late {
    int nop_rc;
};

static int late_child(void *arg)
{
    struct late *l = arg;
    l->nop_rc = gr_nop();
    return 0;
}

static int fail_now(void *arg)
{
    (void)arg;
    return -EIO;
}

static int cancelling_spawn_main(void *arg)
{
    (void)arg;
    gr_group *g;
    ck_assert_int_eq(gr_group_create(&g), 0);
    group_spawn_named(g, fail_now, NULL, "fail-now");
    /* Wait (yielding) until the failure has been recorded. */
    while (gr_group_errors(g, NULL, 0) == 0)
        ck_assert_int_eq(gr_yield(), 0);
    struct late l = {.nop_rc = 12345};
    group_spawn_named(g, late_child, &l, "late");
    ck_assert_int_eq(gr_group_wait(g), -EIO);
    ck_assert_int_eq(l.nop_rc, -ECANCELED);
    ck_assert_int_eq(gr_group_destroy(g), 0);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_group_spawn_into_cancelling_group)
{
    gr_test_run_ok(cancelling_spawn_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Deadlines
 * --------------------------------------------------------------------- */

/* Children that swallow the interrupt and return 0 (one worker, so the
 * wait's own deadline fires in the same timer round as the children's). */
static int swallow_child(void *arg)
{
    struct counters *c = arg;
    atomic_fetch_add(&c->runs, 1);
    count_interrupt(c, gr_sleep(FOREVER));
    return 0;
}

static int deadline_swallow_main(void *arg)
{
    (void)arg;
    struct counters c = {0};
    gr_group *g;
    ck_assert_int_eq(gr_group_create(&g), 0);
    ck_assert_int_eq(gr_group_set_deadline(g, gr_now() + 3 * MS), 0);
    for (int i = 0; i < 5; i++)
        group_spawn_named(g, swallow_child, &c, "child");
    ck_assert_int_eq(gr_group_wait(g), -ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&c.runs), 5);
    ck_assert_int_eq(atomic_load(&c.cleanup), 5);
    ck_assert_int_eq(atomic_load(&c.cancelled) + atomic_load(&c.timedout), 5);
    ck_assert_int_eq(gr_group_errors(g, NULL, 0), 0);
    ck_assert_int_eq(gr_group_destroy(g), 0);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_group_deadline_one_worker)
{
    gr_test_run_ok(deadline_swallow_main, NULL, 1);
}
END_TEST

/* Children that pass their interrupt on (the usual case), 2 workers. */
static int deadline_main(void *arg)
{
    (void)arg;
    struct counters c = {0};
    open_pipes(&c);
    gr_group *g;
    ck_assert_int_eq(gr_group_create(&g), 0);
    ck_assert_int_eq(gr_group_set_deadline(g, gr_now() + 3 * MS), 0);
    for (int i = 0; i < 8; i++)
        group_spawn_named(g, i % 2 ? sleeper_child : reader_child, &c, "child");
    ck_assert_int_eq(gr_group_wait(g), -ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&c.cleanup), 8);
    ck_assert_int_eq(atomic_load(&c.cancelled) + atomic_load(&c.timedout), 8);
    ck_assert_int_eq(gr_group_destroy(g), 0);
    close_pipes(&c);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_group_deadline)
{
    gr_test_run_ok(deadline_main, NULL, 2);
}
END_TEST

/* A child of a group whose deadline has passed: its blocking calls return
 * -ETIMEDOUT at once, and the wait reports the deadline even though the
 * child swallowed the -ETIMEDOUT and finished before the wait parked (one
 * worker makes that order certain; with more it is a race, and the result
 * must not depend on it). */
struct expired_child {
    int nop_rc;
};

static int expired_child_task(void *arg)
{
    struct expired_child *e = arg;
    e->nop_rc = gr_nop();
    return 0;
}

static int expired_deadline_main(void *arg)
{
    (void)arg;
    struct expired_child e = {.nop_rc = 12345};
    gr_group *g;
    ck_assert_int_eq(gr_group_create(&g), 0);
    ck_assert_int_eq(gr_group_set_deadline(g, gr_now() - 1), 0);
    group_spawn_named(g, expired_child_task, &e, "child");
    ck_assert_int_eq(gr_group_wait(g), -ETIMEDOUT);
    ck_assert_int_eq(e.nop_rc, -ETIMEDOUT);
    ck_assert_int_eq(gr_group_destroy(g), 0);
    return 0;
}

START_TEST(test_group_deadline_passed)
{
    gr_test_run_ok(expired_deadline_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Spawning into a group through a passed handle: an acceptor child spawns
 * one handler per "connection" (byte on a pipe) into its own group, and a
 * task outside the group spawns into it too.
 * --------------------------------------------------------------------- */

#define CONNECTIONS 100
#define OUTSIDE 10

struct server {
    gr_group *g;
    int conn[2];
    _Atomic int handlers;
    _Atomic int64_t sum;
};

struct handler_arg {
    struct server *s;
    int value;
};

static struct handler_arg handler_args[CONNECTIONS + OUTSIDE];

static int handler(void *arg)
{
    struct handler_arg *h = arg;
    ck_assert_int_eq(gr_nop(), 0);
    atomic_fetch_add(&h->s->handlers, 1);
    atomic_fetch_add(&h->s->sum, h->value);
    return 0;
}

static int acceptor(void *arg)
{
    struct server *s = arg;
    for (int n = 0;;) {
        unsigned char b;
        ck_assert_int_eq(gr_read(s->conn[0], &b, 1), 1);
        if (b == 0)
            return 0;
        handler_args[n] = (struct handler_arg){.s = s, .value = b};
        ck_assert_int_eq(gr_group_spawn(s->g, handler, &handler_args[n], NULL), 0);
        n++;
    }
}

static int outsider(void *arg)
{
    struct server *s = arg;
    for (int i = 0; i < OUTSIDE; i++) {
        handler_args[CONNECTIONS + i] = (struct handler_arg){.s = s, .value = 1000};
        ck_assert_int_eq(gr_group_spawn(s->g, handler, &handler_args[CONNECTIONS + i], NULL), 0);
    }
    return 0;
}

static int passed_handle_main(void *arg)
{
    struct server *s = arg;
    gr_test_pipe(s->conn);
    ck_assert_int_eq(gr_group_create(&s->g), 0);
    group_spawn_named(s->g, acceptor, s, "acceptor");
    gr_task *o = gr_test_spawn_named(outsider, s, "outsider");
    ck_assert_int_eq(gr_join(o), 0);
    for (int i = 1; i <= CONNECTIONS; i++) {
        unsigned char b = (unsigned char)i;
        ck_assert_int_eq(write(s->conn[1], &b, 1), 1);
    }
    ck_assert_int_eq(write(s->conn[1], "", 1), 1); /* a 0 byte: stop accepting */
    ck_assert_int_eq(gr_group_wait(s->g), 0);
    ck_assert_int_eq(atomic_load(&s->handlers), CONNECTIONS + OUTSIDE);
    ck_assert_int_eq(atomic_load(&s->sum), CONNECTIONS * (CONNECTIONS + 1) / 2 + OUTSIDE * 1000);
    ck_assert_int_eq(gr_group_destroy(s->g), 0);
    gr_test_close_pipe(s->conn);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_group_spawn_through_passed_handle)
{
    struct server s;
    memset(&s, 0, sizeof(s));
    gr_test_run_ok(passed_handle_main, &s, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Misuse
 * --------------------------------------------------------------------- */

struct self_wait {
    gr_group *g;
    int rc;
};

static int self_waiting_child(void *arg)
{
    struct self_wait *s = arg;
    s->rc = gr_group_wait(s->g);
    return 0;
}

static int deadlock_main(void *arg)
{
    (void)arg;
    struct self_wait s = {.rc = 12345};
    ck_assert_int_eq(gr_group_create(&s.g), 0);
    group_spawn_named(s.g, self_waiting_child, &s, "self-waiter");
    ck_assert_int_eq(gr_group_wait(s.g), 0);
    ck_assert_int_eq(s.rc, -EDEADLK);
    ck_assert_int_eq(gr_group_destroy(s.g), 0);
    return 0;
}

START_TEST(test_group_wait_from_child_edeadlk)
{
    gr_test_run_ok(deadlock_main, NULL, 2);
}
END_TEST

static int nothing(void *arg)
{
    (void)arg;
    return 0;
}

static int epipe_main(void *arg)
{
    (void)arg;
    gr_group *g;
    ck_assert_int_eq(gr_group_create(&g), 0);
    group_spawn_named(g, nothing, NULL, "one");
    ck_assert_int_eq(gr_group_wait(g), 0);
    ck_assert_int_eq(gr_group_spawn(g, nothing, NULL, NULL), -EPIPE);
    ck_assert_int_eq(gr_group_destroy(g), 0);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_group_spawn_after_wait_epipe)
{
    gr_test_run_ok(epipe_main, NULL, 2);
}
END_TEST

static int ebusy_main(void *arg)
{
    (void)arg;
    struct counters c = {0};
    gr_group *g;
    ck_assert_int_eq(gr_group_create(&g), 0);
    group_spawn_named(g, sleeper_child, &c, "child");
    group_spawn_named(g, sleeper_child, &c, "child");
    ck_assert_int_eq(gr_group_destroy(g), -EBUSY);
    gr_test_wait_parked_n("child", "sleep", 2);
    ck_assert_int_eq(gr_group_destroy(g), -EBUSY);
    ck_assert_int_eq(gr_group_cancel(g), 0);
    ck_assert_int_eq(gr_group_wait(g), 0);
    ck_assert_int_eq(atomic_load(&c.cancelled), 2);
    ck_assert_int_eq(gr_group_destroy(g), 0);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_group_destroy_busy)
{
    gr_test_run_ok(ebusy_main, NULL, 2);
}
END_TEST

/* Two waiters: the second is refused. */
static int two_waiters_main(void *arg)
{
    (void)arg;
    struct counters c = {0};
    struct waiter_arg w = {0};
    ck_assert_int_eq(gr_group_create(&w.g), 0);
    group_spawn_named(w.g, sleeper_child, &c, "child");
    gr_task *t = gr_test_spawn_named(group_waiter, &w, "waiter");
    gr_test_wait_parked_n("waiter", "group wait", 1);
    ck_assert_int_eq(gr_group_wait(w.g), -EINVAL);
    ck_assert_int_eq(gr_group_cancel(w.g), 0);
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(w.rc, 0);
    ck_assert_int_eq(gr_group_destroy(w.g), 0);
    return 0;
}

START_TEST(test_group_second_waiter_einval)
{
    gr_test_run_ok(two_waiters_main, NULL, 2);
}
END_TEST

static int bad_args_main(void *arg)
{
    (void)arg;
    gr_group *g;
    ck_assert_int_eq(gr_group_create(NULL), -EINVAL);
    ck_assert_int_eq(gr_group_spawn(NULL, nothing, NULL, NULL), -EINVAL);
    ck_assert_int_eq(gr_group_wait(NULL), -EINVAL);
    ck_assert_int_eq(gr_group_cancel(NULL), -EINVAL);
    ck_assert_int_eq(gr_group_set_deadline(NULL, 0), -EINVAL);
    ck_assert_int_eq(gr_group_errors(NULL, NULL, 0), -EINVAL);
    ck_assert_int_eq(gr_group_destroy(NULL), -EINVAL);
    ck_assert_int_eq(gr_group_create(&g), 0);
    ck_assert_int_eq(gr_group_spawn(g, NULL, NULL, NULL), -EINVAL);
    gr_spawn_opts tiny = {.stack_size = 1024};
    ck_assert_int_eq(gr_group_spawn(g, nothing, NULL, &tiny), -EINVAL);
    ck_assert_int_eq(gr_group_errors(g, NULL, 1), -EINVAL);
    ck_assert_int_eq(gr_group_wait(g), 0);
    ck_assert_int_eq(gr_group_destroy(g), 0);
    return 0;
}

START_TEST(test_group_bad_args)
{
    gr_group *g;
    /* Without a runtime: creating works (plain memory), spawning and
     * waiting do not. */
    ck_assert_int_eq(gr_group_create(&g), 0);
    ck_assert_int_eq(gr_group_spawn(g, nothing, NULL, NULL), -EPERM);
    ck_assert_int_eq(gr_group_wait(g), -EPERM);
    ck_assert_int_eq(gr_group_destroy(g), 0);
    gr_test_run_ok(bad_args_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * A thousand groups of a hundred tasks, on 2 workers: ten drivers (children
 * of an outer group) each run a hundred groups one after another, so ten
 * groups are alive at a time (at most ~1000 live tasks: gcc's TSan allows
 * 8128 live fibers; all 1000 groups at once peak at ~40k live tasks).
 * --------------------------------------------------------------------- */

#define DRIVERS 10
#define GROUPS_PER_DRIVER 100
#define PER_GROUP 100

struct many {
    _Atomic int64_t sum;
    _Atomic int count;
    _Atomic int groups;
    _Atomic int on_worker[2];
};

struct many_driver {
    struct many *m;
    int index;
};

struct many_leaf {
    struct many *m;
    int value;
};

static int many_leaf(void *arg)
{
    struct many_leaf *l = arg;
    int w = gr_worker_index();
    ck_assert(w == 0 || w == 1);
    atomic_fetch_add(&l->m->on_worker[w], 1);
    atomic_fetch_add(&l->m->sum, l->value);
    atomic_fetch_add(&l->m->count, 1);
    return 0;
}

static int many_driver(void *arg)
{
    struct many_driver *d = arg;
    struct many_leaf leaves[PER_GROUP];
    for (int k = 0; k < GROUPS_PER_DRIVER; k++) {
        int group_index = d->index * GROUPS_PER_DRIVER + k;
        gr_group *g;
        ck_assert_int_eq(gr_group_create(&g), 0);
        for (int i = 0; i < PER_GROUP; i++) {
            leaves[i] = (struct many_leaf){.m = d->m, .value = group_index * PER_GROUP + i};
            ck_assert_int_eq(gr_group_spawn(g, many_leaf, &leaves[i], NULL), 0);
        }
        ck_assert_int_eq(gr_group_wait(g), 0);
        ck_assert_int_eq(gr_group_destroy(g), 0);
        atomic_fetch_add(&d->m->groups, 1);
    }
    return 0;
}

static int many_main(void *arg)
{
    struct many *m = arg;
    struct many_driver drivers[DRIVERS];
    gr_group *outer;
    ck_assert_int_eq(gr_group_create(&outer), 0);
    for (int i = 0; i < DRIVERS; i++) {
        drivers[i] = (struct many_driver){.m = m, .index = i};
        ck_assert_int_eq(gr_group_spawn(outer, many_driver, &drivers[i], NULL), 0);
    }
    ck_assert_int_eq(gr_group_wait(outer), 0);
    ck_assert_int_eq(gr_group_destroy(outer), 0);
    const int64_t n = (int64_t)DRIVERS * GROUPS_PER_DRIVER * PER_GROUP;
    ck_assert_int_eq(atomic_load(&m->groups), DRIVERS * GROUPS_PER_DRIVER);
    ck_assert_int_eq(atomic_load(&m->count), n);
    ck_assert_int_eq(atomic_load(&m->sum), n * (n - 1) / 2);
    ck_assert_int_eq(atomic_load(&m->on_worker[0]) + atomic_load(&m->on_worker[1]), n);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_group_thousand_groups)
{
    struct many m;
    memset(&m, 0, sizeof(m));
    gr_test_run_ok(many_main, &m, 2);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("group");

    TCase *tc = tcase_create("basic");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_group_all_succeed);
    tcase_add_test(tc, test_group_failure_cancels_siblings);
    tcase_add_test(tc, test_group_errors_in_order);
    tcase_add_test(tc, test_group_nested);
    tcase_add_test(tc, test_group_cancel_waiter);
    tcase_add_test(tc, test_group_cancel_from_other_task);
    tcase_add_test(tc, test_group_spawn_into_cancelling_group);
    tcase_add_test(tc, test_group_spawn_through_passed_handle);
    suite_add_tcase(s, tc);

    tc = tcase_create("deadline");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_group_deadline_one_worker);
    tcase_add_test(tc, test_group_deadline);
    tcase_add_test(tc, test_group_deadline_passed);
    suite_add_tcase(s, tc);

    tc = tcase_create("misuse");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_group_wait_from_child_edeadlk);
    tcase_add_test(tc, test_group_spawn_after_wait_epipe);
    tcase_add_test(tc, test_group_destroy_busy);
    tcase_add_test(tc, test_group_second_waiter_einval);
    tcase_add_test(tc, test_group_bad_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("scale");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_group_thousand_groups);
    suite_add_tcase(s, tc);
    return s;
}
