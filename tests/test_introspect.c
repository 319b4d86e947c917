/* Task state without blocking (gr_task_done / cancelled / result), done
 * callbacks, introspection (gr_tasks_foreach, gr_dump_tasks, gr_stats) and
 * debug mode (watchdog, never-joined report, cancel grace, SIGQUIT dump).
 *
 * Debug-mode tests run gr_run in a forked child whose stderr is captured;
 * the child checks its own stderr through a pipe so that a spinning task
 * spins until the report has appeared (bounded), not for a guessed time.
 */
/* greenring-test: tsan */
/* greenring-test: asan */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"

#define FOREVER INT64_MAX
#define MS ((int64_t)1000000)

/* ---------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

/* Reads one byte from the fd, returns 8 (or the read's error). */
static int read_one(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char b;
    int rc = (int)gr_read(fd, &b, 1);
    return rc == 1 ? 8 : rc;
}

/* ---------------------------------------------------------------------
 * Task state
 * --------------------------------------------------------------------- */

static int state_main(void *arg)
{
    (void)arg;
    int p[2];
    gr_test_pipe(p);
    gr_task *t = gr_test_spawn_named(read_one, (void *)(intptr_t)p[0], "reader");
    gr_test_wait_parked("reader", "io read");
    int r = 12345;
    ck_assert_int_eq(gr_task_done(t), 0);
    ck_assert_int_eq(gr_task_cancelled(t), 0);
    ck_assert_int_eq(gr_task_result(t, &r), -EAGAIN);
    ck_assert_int_eq(r, 12345);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    ck_assert_int_eq(gr_wait(&t, 1, GR_WAIT_ALL, FOREVER, NULL), 1);
    ck_assert_int_eq(gr_task_done(t), 1);
    ck_assert_int_eq(gr_task_cancelled(t), 0);
    ck_assert_int_eq(gr_task_result(t, &r), 0);
    ck_assert_int_eq(r, 8);
    ck_assert_int_eq(gr_task_result(t, NULL), -EINVAL);
    ck_assert_int_eq(gr_join(t), 8);
    /* Stale and NULL handles. */
    ck_assert_int_eq(gr_task_done(t), -ESRCH);
    ck_assert_int_eq(gr_task_cancelled(t), -ESRCH);
    ck_assert_int_eq(gr_task_result(t, &r), -ESRCH);
    ck_assert_int_eq(gr_task_done(NULL), -EINVAL);
    ck_assert_int_eq(gr_task_cancelled(NULL), -EINVAL);
    ck_assert_int_eq(gr_task_result(NULL, &r), -EINVAL);

    /* Cancelled: the flag is set at once, the result once it is done. */
    t = gr_test_spawn_named(gr_test_sleep_forever, NULL, "sleeper");
    gr_test_wait_parked("sleeper", "sleep");
    ck_assert_int_eq(gr_cancel(t), 0);
    ck_assert_int_eq(gr_task_cancelled(t), 1);
    ck_assert_int_eq(gr_wait(&t, 1, GR_WAIT_ALL, FOREVER, NULL), 1);
    ck_assert_int_eq(gr_task_result(t, &r), 0);
    ck_assert_int_eq(r, -ECANCELED);
    ck_assert_int_eq(gr_join(t), -ECANCELED);

    /* The calling task itself. */
    ck_assert_int_eq(gr_task_done(gr_self()), 0);
    ck_assert_int_eq(gr_task_result(gr_self(), &r), -EAGAIN);
    gr_test_close_pipe(p);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_task_state)
{
    gr_test_run_ok(state_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Done callbacks
 * --------------------------------------------------------------------- */

struct cb_log {
    _Atomic int calls[4];
    _Atomic int seq;
    int order[4];
    gr_task *seen[4];
    int result_in_cb[4];
    int done_in_cb[4];
};

struct cb_rec {
    gr_done_cb cb;
    struct cb_log *log;
    int index;
};

static void log_cb(gr_task *task, void *arg)
{
    struct cb_rec *r = arg;
    struct cb_log *l = r->log;
    atomic_fetch_add(&l->calls[r->index], 1);
    l->order[atomic_fetch_add(&l->seq, 1)] = r->index;
    l->seen[r->index] = task;
    l->done_in_cb[r->index] = gr_task_done(task);
    int res = 12345;
    gr_task_result(task, &res);
    l->result_in_cb[r->index] = res;
}

static int callbacks_main(void *arg)
{
    (void)arg;
    int p[2];
    gr_test_pipe(p);
    struct cb_log log;
    memset(&log, 0, sizeof(log));
    struct cb_rec recs[4];
    gr_task *t = gr_test_spawn_named(read_one, (void *)(intptr_t)p[0], "target");
    for (int i = 0; i < 3; i++) {
        recs[i] = (struct cb_rec){.log = &log, .index = i};
        ck_assert_int_eq(gr_task_add_done_callback(t, &recs[i].cb, log_cb, &recs[i]), 0);
    }
    /* Removed before it ran: returns 0 and never runs. */
    ck_assert_int_eq(gr_task_remove_done_callback(t, &recs[1].cb), 0);
    ck_assert_int_eq(gr_task_remove_done_callback(t, &recs[1].cb), -ENOENT);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    ck_assert_int_eq(gr_wait(&t, 1, GR_WAIT_ALL, FOREVER, NULL), 1);
    /* Ran exactly once each, in registration order, seeing the finished
     * task and its result. */
    ck_assert_int_eq(atomic_load(&log.calls[0]), 1);
    ck_assert_int_eq(atomic_load(&log.calls[1]), 0);
    ck_assert_int_eq(atomic_load(&log.calls[2]), 1);
    ck_assert_int_eq(atomic_load(&log.seq), 2);
    ck_assert_int_eq(log.order[0], 0);
    ck_assert_int_eq(log.order[1], 2);
    for (int i = 0; i < 3; i += 2) {
        ck_assert_ptr_eq(log.seen[i], t);
        ck_assert_int_eq(log.done_in_cb[i], 1);
        ck_assert_int_eq(log.result_in_cb[i], 8);
    }
    /* After it ran: removing it reports -ENOENT. */
    ck_assert_int_eq(gr_task_remove_done_callback(t, &recs[0].cb), -ENOENT);
    /* Added after the task finished: runs at once, returns 1, and gets
     * the finished task (not the caller) with its result. */
    recs[3] = (struct cb_rec){.log = &log, .index = 3};
    ck_assert_int_eq(gr_task_add_done_callback(t, &recs[3].cb, log_cb, &recs[3]), 1);
    ck_assert_int_eq(atomic_load(&log.calls[3]), 1);
    ck_assert_msg(log.seen[3] == t, "late callback got handle %p, not the finished task %p",
                  (void *)log.seen[3], (void *)t);
    ck_assert_int_eq(log.done_in_cb[3], 1);
    ck_assert_int_eq(log.result_in_cb[3], 8);
    ck_assert_int_eq(gr_join(t), 8);
    /* Joined: no more callbacks. */
    ck_assert_int_eq(gr_task_add_done_callback(t, &recs[3].cb, log_cb, &recs[3]), -ESRCH);
    ck_assert_int_eq(atomic_load(&log.calls[1]), 0);
    gr_test_close_pipe(p);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_done_callbacks)
{
    gr_test_run_ok(callbacks_main, NULL, 2);
}
END_TEST

static void never_called(gr_task *task, void *arg)
{
    (void)task;
    (void)arg;
    ck_abort_msg("callback must not run");
}

static int callbacks_bad_main(void *arg)
{
    (void)arg;
    gr_done_cb cb;
    gr_task *t = gr_test_spawn_named(gr_test_return_arg, (void *)(intptr_t)1, "t");
    ck_assert_int_eq(gr_task_add_done_callback(NULL, &cb, never_called, NULL), -EINVAL);
    ck_assert_int_eq(gr_task_add_done_callback(t, NULL, never_called, NULL), -EINVAL);
    ck_assert_int_eq(gr_task_add_done_callback(t, &cb, NULL, NULL), -EINVAL);
    ck_assert_int_eq(gr_task_remove_done_callback(t, &cb), -ENOENT); /* never added */
    ck_assert_int_eq(gr_task_remove_done_callback(NULL, &cb), -EINVAL);
    ck_assert_int_eq(gr_join(t), 1);
    return 0;
}

START_TEST(test_done_callbacks_bad_args)
{
    gr_test_run_ok(callbacks_bad_main, NULL, 1);
}
END_TEST

/* Blocking calls from a done callback are refused with -EPERM (not a
 * hang), both for a callback run by the finishing task and for one run at
 * once by gr_task_add_done_callback. */
enum { BL_SLEEP, BL_NOP, BL_READ, BL_YIELD, BL_JOIN, BL_WAIT, BL_GROUP, BL_AC, BL_COUNT };

struct blocking_cb {
    gr_done_cb cb;
    int fd;
    gr_task *other;
    gr_group *group;
    int rc[BL_COUNT];
    _Atomic int ran;
};

static void blocking_in_cb(gr_task *task, void *arg)
{
    (void)task;
    struct blocking_cb *b = arg;
    char c;
    b->rc[BL_SLEEP] = gr_sleep(MS);
    b->rc[BL_NOP] = gr_nop();
    b->rc[BL_READ] = (int)gr_read(b->fd, &c, 1);
    b->rc[BL_YIELD] = gr_yield();
    b->rc[BL_JOIN] = gr_join(b->other);
    b->rc[BL_WAIT] = gr_wait(&b->other, 1, GR_WAIT_ALL, FOREVER, NULL);
    b->rc[BL_GROUP] = gr_group_wait(b->group);
    gr_as_completed it;
    ck_assert_int_eq(gr_as_completed_init(&it, &b->other, 1), 0);
    b->rc[BL_AC] = gr_as_completed_next(&it, FOREVER);
    gr_as_completed_destroy(&it);
    atomic_fetch_add(&b->ran, 1);
}

static int blocking_cb_main(void *arg)
{
    (void)arg;
    int p[2], q[2];
    gr_test_pipe(p);
    gr_test_pipe(q);
    struct blocking_cb b[2];
    memset(b, 0, sizeof(b));
    gr_task *other = gr_test_spawn_named(gr_test_sleep_forever, NULL, "other");
    gr_group *g;
    ck_assert_int_eq(gr_group_create(&g), 0);
    gr_spawn_opts child = {.name = "group-child"};
    ck_assert_int_eq(gr_group_spawn(g, gr_test_sleep_forever, NULL, &child), 0);
    for (int i = 0; i < 2; i++)
        b[i] = (struct blocking_cb){.fd = q[0], .other = other, .group = g};

    gr_task *t = gr_test_spawn_named(read_one, (void *)(intptr_t)p[0], "target");
    ck_assert_int_eq(gr_task_add_done_callback(t, &b[0].cb, blocking_in_cb, &b[0]), 0);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    ck_assert_int_eq(gr_wait(&t, 1, GR_WAIT_ALL, FOREVER, NULL), 1);
    ck_assert_int_eq(atomic_load(&b[0].ran), 1);
    ck_assert_int_eq(gr_task_add_done_callback(t, &b[1].cb, blocking_in_cb, &b[1]), 1);
    ck_assert_int_eq(atomic_load(&b[1].ran), 1);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < BL_COUNT; i++)
            ck_assert_msg(b[k].rc[i] == -EPERM, "callback %d: call %d returned %d", k, i,
                          b[k].rc[i]);
    /* Outside the callback the caller can block again. */
    ck_assert_int_eq(gr_nop(), 0);
    ck_assert_int_eq(gr_join(t), 8);
    ck_assert_int_eq(gr_cancel(other), 0);
    ck_assert_int_eq(gr_join(other), -ECANCELED);
    ck_assert_int_eq(gr_group_cancel(g), 0);
    ck_assert_int_eq(gr_group_wait(g), 0);
    ck_assert_int_eq(gr_group_destroy(g), 0);
    /* Nothing was read by the refused gr_read. */
    ck_assert_int_eq(write(q[1], "y", 1), 1);
    char c;
    ck_assert_int_eq(gr_read(q[0], &c, 1), 1);
    ck_assert_int_eq(c, 'y');
    gr_test_close_pipe(p);
    gr_test_close_pipe(q);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_done_callback_blocking_eperm)
{
    gr_test_run_ok(blocking_cb_main, NULL, 2);
}
END_TEST

/* Done callbacks run "before joiners resume". The callback holds on for a
 * while (bounded) watching for the joiner; a correct runtime never lets
 * the joiner run during it. The race needs the finishing task and the
 * joiner on different workers: rounds are repeated until ten of them had
 * that placement (at most 400 rounds). */
#define CROSS_ROUNDS 10
#define MAX_ROUNDS 400

struct before {
    gr_done_cb cb;
    _Atomic int64_t hold_ns; /* set after registration, read by the callback */
    _Atomic int joiner_resumed;
    _Atomic int seen_during_cb;
    _Atomic int cb_finished;
};

static void watch_joiner(gr_task *task, void *arg)
{
    (void)task;
    struct before *b = arg;
    int64_t until = gr_now() + atomic_load(&b->hold_ns);
    while (gr_now() < until && !atomic_load(&b->joiner_resumed))
        ;
    if (atomic_load(&b->joiner_resumed))
        atomic_store(&b->seen_during_cb, 1);
    atomic_store(&b->cb_finished, 1);
}

struct worker_query {
    const char *name;
    int worker;
};

static void worker_cb(const gr_task_info *info, void *arg)
{
    struct worker_query *q = arg;
    if (strcmp(info->name, q->name) == 0)
        q->worker = info->worker;
}

/* arg: 0 checks that the callback was over when the join returned; 1
 * checks that the handle is stale right after the join returned ("using a
 * handle after the task was joined returns -ESRCH"), while the finished
 * task may still be on its way out on the other worker. */
static int before_joiners_main(void *arg)
{
    int check_stale = arg != NULL;
    int p[2];
    gr_test_pipe(p);
    int violations = 0, cross = 0, rounds = 0, stale_fail = 0, stale_rc = 0;
    for (; cross < CROSS_ROUNDS && rounds < MAX_ROUNDS; rounds++) {
        struct before b;
        memset(&b, 0, sizeof(b));
        gr_task *t = gr_test_spawn_named(read_one, (void *)(intptr_t)p[0], "finisher");
        ck_assert_int_eq(gr_task_add_done_callback(t, &b.cb, watch_joiner, &b), 0);
        /* Keep this worker busy for a moment (no yield) so that the idle
         * one is likely to steal the finisher; then wait normally. */
        for (int64_t until = gr_now() + 50 * MS;
             gr_now() < until && !gr_test_is_parked("finisher", "io read");)
            ;
        gr_test_wait_parked("finisher", "io read");
        struct worker_query q = {.name = "finisher", .worker = -1};
        ck_assert_int_ge(gr_tasks_foreach(worker_cb, &q), 2);
        int apart = q.worker != gr_worker_index();
        cross += apart;
        atomic_store(&b.hold_ns, apart ? 20 * MS : 0);
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        ck_assert_int_eq(gr_join(t), 8);
        int finished_when_joined = atomic_load(&b.cb_finished);
        int rc = gr_task_done(t);
        if (rc != -ESRCH) {
            stale_fail++;
            stale_rc = rc;
        }
        atomic_store(&b.joiner_resumed, 1);
        /* The record must stay valid until the callback is over. */
        while (!atomic_load(&b.cb_finished))
            ;
        if (atomic_load(&b.seen_during_cb) || !finished_when_joined)
            violations++;
    }
    if (check_stale)
        ck_assert_msg(stale_fail == 0,
                      "%d of %d handles (%d joined across workers) still valid right after "
                      "gr_join returned (gr_task_done = %d, not -ESRCH)",
                      stale_fail, rounds, cross, stale_rc);
    else
        ck_assert_msg(violations == 0,
                      "%d of %d joins (%d across workers) resumed while a done callback was "
                      "running",
                      violations, rounds, cross);
    gr_test_close_pipe(p);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_done_callbacks_before_joiner)
{
    gr_test_run_ok(before_joiners_main, NULL, 2);
}
END_TEST

START_TEST(test_handle_stale_right_after_join)
{
    gr_test_run_ok(before_joiners_main, (void *)1, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * gr_tasks_foreach / gr_dump_tasks / gr_stats
 * --------------------------------------------------------------------- */

#define MAX_INFOS 32

struct snapshot {
    int n;
    gr_task_info info[MAX_INFOS];
};

static void snap_cb(const gr_task_info *info, void *arg)
{
    struct snapshot *s = arg;
    ck_assert_int_lt(s->n, MAX_INFOS);
    s->info[s->n++] = *info;
}

static const gr_task_info *find_info(struct snapshot *s, const char *name)
{
    const gr_task_info *found = NULL;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->info[i].name, name) == 0) {
            ck_assert_msg(found == NULL, "two tasks named %s", name);
            found = &s->info[i];
        }
    ck_assert_msg(found != NULL, "no task named %s", name);
    return found;
}

struct intro {
    int p[2];  /* never written: i-read */
    int sp[2]; /* written at the end: i-shielded */
    gr_task *target, *target2;
    gr_group *g;
};

static int joiner(void *arg)
{
    struct intro *x = arg;
    return gr_join(x->target);
}

static int group_waiter(void *arg)
{
    struct intro *x = arg;
    return gr_group_wait(x->g);
}

static int waiter(void *arg)
{
    struct intro *x = arg;
    return gr_wait(&x->target2, 1, GR_WAIT_ANY, FOREVER, NULL);
}

/* Cancelled while parked in a shield: stays parked, shows as cancelled. */
static int shielded_reader(void *arg)
{
    struct intro *x = arg;
    gr_scope s;
    char c;
    ck_assert_int_eq(gr_scope_enter_shield(&s), 0);
    int rc = (int)gr_read(x->sp[0], &c, 1);
    ck_assert_int_eq(gr_scope_leave(&s), 0);
    return rc;
}

static const struct {
    const char *name, *reason;
} PARKED[] = {
    {"i-sleep", "sleep"},     {"i-read", "io read"},       {"i-target", "sleep"},
    {"i-join", "join"},       {"i-group", "group wait"},   {"i-child", "sleep"},
    {"i-target2", "sleep"},   {"i-wait", "wait"},          {"i-shielded", "io read"},
};
#define NPARKED (int)(sizeof(PARKED) / sizeof(PARKED[0]))

static int introspect_main(void *arg)
{
    struct intro *x = arg;
    gr_test_pipe(x->p);
    gr_test_pipe(x->sp);
    gr_task *h[NPARKED];
    int k = 0;
    h[k++] = gr_test_spawn_named(gr_test_sleep_forever, NULL, "i-sleep");
    h[k++] = gr_test_spawn_named(read_one, (void *)(intptr_t)x->p[0], "i-read");
    h[k++] = x->target = gr_test_spawn_named(gr_test_sleep_forever, NULL, "i-target");
    h[k++] = gr_test_spawn_named(joiner, x, "i-join");
    ck_assert_int_eq(gr_group_create(&x->g), 0);
    gr_spawn_opts child = {.name = "i-child"};
    ck_assert_int_eq(gr_group_spawn(x->g, gr_test_sleep_forever, NULL, &child), 0);
    h[k++] = gr_test_spawn_named(group_waiter, x, "i-group");
    h[k++] = x->target2 = gr_test_spawn_named(gr_test_sleep_forever, NULL, "i-target2");
    h[k++] = gr_test_spawn_named(waiter, x, "i-wait");
    h[k++] = gr_test_spawn_named(shielded_reader, x, "i-shielded");
    for (int i = 0; i < NPARKED; i++)
        gr_test_wait_parked(PARKED[i].name, PARKED[i].reason);
    ck_assert_int_eq(gr_cancel(h[k - 1]), 0); /* the shielded one */

    struct snapshot s = {0};
    int n = gr_tasks_foreach(snap_cb, &s);
    ck_assert_int_eq(n, s.n);
    ck_assert_int_eq(n, NPARKED + 1); /* and main */
    const gr_task_info *m = find_info(&s, "main");
    ck_assert_str_eq(m->state, "running");
    ck_assert_ptr_null(m->wait_reason);
    ck_assert_int_eq(m->worker, gr_worker_index());
    ck_assert_int_eq(m->cancelled, 0);
    for (int i = 0; i < NPARKED; i++) {
        const gr_task_info *inf = find_info(&s, PARKED[i].name);
        ck_assert_str_eq(inf->state, "parked");
        ck_assert_ptr_nonnull(inf->wait_reason);
        ck_assert_str_eq(inf->wait_reason, PARKED[i].reason);
        ck_assert(inf->worker == 0 || inf->worker == 1);
        ck_assert_int_ge(inf->parked_ns, 0);
        ck_assert_int_eq(inf->cancelled, strcmp(PARKED[i].name, "i-shielded") == 0);
        ck_assert_uint_ne(inf->id, m->id);
    }
    for (int i = 0; i < s.n; i++)
        for (int j = i + 1; j < s.n; j++)
            ck_assert_uint_ne(s.info[i].id, s.info[j].id);

    /* The dump: one header line and one line per task with name and
     * reason. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gr_dump_tasks(f), NPARKED + 1);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_ptr_nonnull(strstr(buf, "live tasks"));
    ck_assert_ptr_nonnull(strstr(buf, "\"main\" running"));
    for (int i = 0; i < NPARKED; i++) {
        char line[128];
        snprintf(line, sizeof(line), "\"%s\" parked", PARKED[i].name);
        const char *at = strstr(buf, line);
        ck_assert_msg(at != NULL, "dump lacks %s:\n%s", line, buf);
        const char *eol = strchr(at, '\n');
        ck_assert_ptr_nonnull(eol);
        char reason[64];
        snprintf(reason, sizeof(reason), "[%s,", PARKED[i].reason);
        const char *r = strstr(at, reason);
        ck_assert_msg(r != NULL && r < eol, "dump line for %s lacks %s:\n%s", PARKED[i].name,
                      reason, buf);
        const char *c = strstr(at, "(cancelled)");
        ck_assert_int_eq(c != NULL && c < eol, strcmp(PARKED[i].name, "i-shielded") == 0);
    }
    int lines = 0;
    for (const char *c = buf; *c; c++)
        lines += *c == '\n';
    ck_assert_int_eq(lines, NPARKED + 2);
    free(buf);

    gr_runtime_stats st;
    ck_assert_int_eq(gr_stats(&st), 0);
    ck_assert_uint_eq(st.live_tasks, NPARKED + 1);
    ck_assert_uint_eq(st.stacks_in_use, NPARKED + 1);
    ck_assert_uint_gt(st.stack_bytes_mapped, 0);

    /* Unwind: the shielded reader gets its byte and then returns it. */
    ck_assert_int_eq(write(x->sp[1], "s", 1), 1);
    ck_assert_int_eq(gr_join(h[k - 1]), 1);
    /* Waiters before what they wait on, one at a time, so that each wait
     * ends by its own cancellation. */
    for (int i = k - 2; i >= 0; i--) {
        ck_assert_int_eq(gr_cancel(h[i]), 0);
        ck_assert_int_eq(gr_join(h[i]), -ECANCELED);
    }
    ck_assert_int_eq(gr_group_destroy(x->g), 0);
    gr_test_close_pipe(x->p);
    gr_test_close_pipe(x->sp);
    /* Only main is left. */
    s.n = 0;
    ck_assert_int_eq(gr_tasks_foreach(snap_cb, &s), 1);
    ck_assert_str_eq(s.info[0].name, "main");
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_introspection)
{
    struct intro x;
    memset(&x, 0, sizeof(x));
    gr_test_run_ok(introspect_main, &x, 2);
}
END_TEST

static void ignore_info(const gr_task_info *info, void *arg)
{
    (void)info;
    (void)arg;
}

static int introspect_bad_main(void *arg)
{
    (void)arg;
    ck_assert_int_eq(gr_tasks_foreach(NULL, NULL), -EINVAL);
    ck_assert_int_eq(gr_dump_tasks(NULL), -EINVAL);
    ck_assert_int_eq(gr_stats(NULL), -EINVAL);
    return 0;
}

START_TEST(test_introspection_bad_args)
{
    gr_runtime_stats st;
    /* No runtime. */
    ck_assert_int_eq(gr_tasks_foreach(ignore_info, NULL), -EPERM);
    ck_assert_int_eq(gr_dump_tasks(stderr), -EPERM);
    ck_assert_int_eq(gr_stats(&st), -EPERM);
    gr_test_run_ok(introspect_bad_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Debug mode (in a forked child, stderr captured)
 * --------------------------------------------------------------------- */

/* The child's own view of its stderr: fd 2 points at a pipe the child
 * reads, so a task can wait for a report to appear. At the end the text
 * goes to the real stderr (the parent's pipe). */
static struct capture {
    int saved;
    int rd;
    char buf[16384];
    size_t len;
} cap;

static void cap_begin(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        _exit(120);
    if (fcntl(p[0], F_SETFL, O_NONBLOCK) != 0)
        _exit(121);
    fflush(stderr);
    cap.saved = dup(STDERR_FILENO);
    if (cap.saved < 0 || dup2(p[1], STDERR_FILENO) < 0)
        _exit(122);
    close(p[1]);
    cap.rd = p[0];
    cap.len = 0;
    cap.buf[0] = '\0';
}

static void cap_drain(void)
{
    for (;;) {
        ssize_t n = read(cap.rd, cap.buf + cap.len, sizeof(cap.buf) - 1 - cap.len);
        if (n <= 0)
            break;
        cap.len += (size_t)n;
    }
    cap.buf[cap.len] = '\0';
}

/* Safe from a task: non-blocking reads only. */
static int cap_contains(const char *s)
{
    cap_drain();
    return strstr(cap.buf, s) != NULL;
}

static void cap_end(void)
{
    fflush(stderr);
    dup2(cap.saved, STDERR_FILENO);
    close(cap.saved);
    cap_drain();
    close(cap.rd);
    ssize_t rc = write(STDERR_FILENO, cap.buf, cap.len);
    (void)rc;
}

/* Spins (holding its worker, never blocking: that is what is tested) until
 * `until_text` shows up on stderr, at most 5 s. */
static void spin_until_reported(const char *until_text)
{
    int64_t give_up = gr_now() + 5000 * MS;
    while (gr_now() < give_up && !cap_contains(until_text))
        ;
}

static int spinner(void *arg)
{
    (void)arg;
    spin_until_reported("has held worker");
    return 0;
}

static int watchdog_main(void *arg)
{
    (void)arg;
    gr_task *t = gr_test_spawn_named(spinner, NULL, "spinner");
    return gr_join(t);
}

static int watchdog_child(void *arg)
{
    (void)arg;
    cap_begin();
    gr_config cfg = {.workers = 1, .debug = 1};
    int rc = gr_run(watchdog_main, NULL, &cfg);
    cap_end();
    return rc == 0 ? 0 : 1;
}

static void run_child(int (*fn)(void *), struct gr_test_child *out)
{
    gr_test_run_child(fn, NULL, out);
    ck_assert_msg(WIFEXITED(out->status) && WEXITSTATUS(out->status) == 0,
                  "child status 0x%x, stderr:\n%s", out->status, out->err);
}

START_TEST(test_debug_watchdog)
{
    struct gr_test_child out;
    run_child(watchdog_child, &out);
    const char *at = strstr(out.err, "has held worker");
    ck_assert_msg(at != NULL, "no watchdog report:\n%s", out.err);
    ck_assert_msg(strstr(out.err, "task spinner has held worker") != NULL,
                  "report does not name the task:\n%s", out.err);
}
END_TEST

/* Never joined or detached: reported by name at the end of gr_run; joined
 * and detached tasks are not. */
static int unjoined_main(void *arg)
{
    (void)arg;
    gr_task *orphan = gr_test_spawn_named(gr_test_return_arg, (void *)(intptr_t)0, "orphan");
    gr_task *joined = gr_test_spawn_named(gr_test_return_arg, (void *)(intptr_t)0, "joined-one");
    gr_task *detached = gr_test_spawn_named(gr_test_return_arg, (void *)(intptr_t)0, "detached-one");
    ck_assert_int_eq(gr_detach(detached), 0);
    ck_assert_int_eq(gr_join(joined), 0);
    ck_assert_int_eq(gr_wait(&orphan, 1, GR_WAIT_ALL, FOREVER, NULL), 1);
    return 0;
}

static int unjoined_child_cfg(int debug)
{
    cap_begin();
    gr_config cfg = {.workers = 2, .debug = debug};
    int rc = gr_run(unjoined_main, NULL, &cfg);
    cap_end();
    return rc == 0 ? 0 : 1;
}

static int unjoined_child(void *arg)
{
    (void)arg;
    unsetenv("GREENRING_DEBUG");
    return unjoined_child_cfg(1);
}

static int unjoined_env_child(void *arg)
{
    (void)arg;
    setenv("GREENRING_DEBUG", "1", 1);
    return unjoined_child_cfg(0);
}

static int unjoined_quiet_child(void *arg)
{
    (void)arg;
    unsetenv("GREENRING_DEBUG");
    return unjoined_child_cfg(0);
}

static void check_unjoined_report(const char *err)
{
    ck_assert_msg(strstr(err, "task orphan finished but was never joined or detached") != NULL,
                  "no report for the orphan:\n%s", err);
    ck_assert_msg(strstr(err, "joined-one") == NULL, "joined task reported:\n%s", err);
    ck_assert_msg(strstr(err, "detached-one") == NULL, "detached task reported:\n%s", err);
}

START_TEST(test_debug_never_joined)
{
    struct gr_test_child out;
    run_child(unjoined_child, &out);
    check_unjoined_report(out.err);
}
END_TEST

START_TEST(test_debug_env_variable)
{
    struct gr_test_child out;
    run_child(unjoined_env_child, &out);
    check_unjoined_report(out.err);
}
END_TEST

START_TEST(test_debug_off_is_quiet)
{
    struct gr_test_child out;
    run_child(unjoined_quiet_child, &out);
    ck_assert_msg(out.err_len == 0, "unexpected output:\n%s", out.err);
}
END_TEST

/* A cancelled task that keeps running past cancel_grace_ns (50 ms). */
static int stubborn(void *arg)
{
    (void)arg;
    ck_assert_int_eq(gr_cancel(gr_self()), 0);
    spin_until_reported("still running");
    return 0;
}

static int grace_main(void *arg)
{
    (void)arg;
    gr_task *t = gr_test_spawn_named(stubborn, NULL, "stubborn");
    return gr_join(t);
}

static int grace_child(void *arg)
{
    (void)arg;
    cap_begin();
    gr_config cfg = {.workers = 2, .debug = 1, .cancel_grace_ns = 50 * MS};
    int rc = gr_run(grace_main, NULL, &cfg);
    cap_end();
    return rc == 0 ? 0 : 1;
}

START_TEST(test_debug_cancel_grace)
{
    struct gr_test_child out;
    run_child(grace_child, &out);
    ck_assert_msg(strstr(out.err, "task stubborn is still running") != NULL,
                  "no grace report:\n%s", out.err);
    ck_assert_msg(strstr(out.err, "after it was cancelled") != NULL, "no grace report:\n%s",
                  out.err);
}
END_TEST

/* SIGQUIT with dump_on_sigquit: the dump names the parked task and what it
 * waits on. */
static int sigquit_main(void *arg)
{
    (void)arg;
    gr_task *t = gr_test_spawn_named(gr_test_sleep_forever, NULL, "q-sleeper");
    gr_test_wait_parked("q-sleeper", "sleep");
    ck_assert_int_eq(raise(SIGQUIT), 0);
    /* The dump is printed by a worker at its next scheduling round. */
    for (int i = 0; i < 1000000 && !cap_contains("q-sleeper"); i++) {
        ck_assert_int_eq(gr_yield(), 0);
        ck_assert_int_eq(gr_nop(), 0);
    }
    ck_assert_int_eq(gr_cancel(t), 0);
    ck_assert_int_eq(gr_join(t), -ECANCELED);
    return 0;
}

static int sigquit_child(void *arg)
{
    (void)arg;
    cap_begin();
    gr_config cfg = {.workers = 1, .dump_on_sigquit = 1};
    int rc = gr_run(sigquit_main, NULL, &cfg);
    cap_end();
    /* Once gr_run is over SIGQUIT has its default action again. */
    struct sigaction sa;
    sigaction(SIGQUIT, NULL, &sa);
    return rc == 0 && sa.sa_handler == SIG_DFL ? 0 : 1;
}

START_TEST(test_debug_sigquit_dump)
{
    struct gr_test_child out;
    run_child(sigquit_child, &out);
    ck_assert_msg(strstr(out.err, "live tasks") != NULL, "no dump header:\n%s", out.err);
    ck_assert_msg(strstr(out.err, "\"q-sleeper\" parked") != NULL, "no task line:\n%s", out.err);
    ck_assert_msg(strstr(out.err, "[sleep,") != NULL, "no wait reason:\n%s", out.err);
    ck_assert_msg(strstr(out.err, "\"main\"") != NULL, "main missing:\n%s", out.err);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("introspect");

    TCase *tc = tcase_create("state");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_task_state);
    tcase_add_test(tc, test_done_callbacks);
    tcase_add_test(tc, test_done_callbacks_bad_args);
    tcase_add_test(tc, test_done_callback_blocking_eperm);
    tcase_add_test(tc, test_done_callbacks_before_joiner);
    tcase_add_test(tc, test_handle_stale_right_after_join);
    suite_add_tcase(s, tc);

    tc = tcase_create("introspection");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_introspection);
    tcase_add_test(tc, test_introspection_bad_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("debug");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_debug_watchdog);
    tcase_add_test(tc, test_debug_never_joined);
    tcase_add_test(tc, test_debug_env_variable);
    tcase_add_test(tc, test_debug_off_is_quiet);
    tcase_add_test(tc, test_debug_cancel_grace);
    tcase_add_test(tc, test_debug_sigquit_dump);
    suite_add_tcase(s, tc);
    return s;
}
