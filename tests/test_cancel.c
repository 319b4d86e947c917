/* Cancellation (gr_cancel): a task blocked in each kind of wait returns
 * -ECANCELED and every later blocking call too (level-triggered); the
 * read/cancel race loses and duplicates no byte; cancelling finished tasks,
 * cancelling twice, from a foreign pthread, before the task ran; bad
 * handles; teardown when main returns with tasks still alive.
 *
 * Tasks are made to be parked before they are cancelled by polling
 * gr_tasks_foreach (gr_test_wait_parked), never by sleeping.
 */
/* greenring-test: tsan */
/* greenring-test: asan */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "support/support.h"

#define FOREVER INT64_MAX

/* ---------------------------------------------------------------------
 * A task blocked in each kind of wait, cancelled. After the first
 * interrupted call it makes every other kind of blocking call, which must
 * all return -ECANCELED at once (level-triggered), and a gr_close, which
 * must still close its fd.
 * --------------------------------------------------------------------- */

enum blocker_kind {
    BLOCK_SLEEP,
    BLOCK_SLEEP_IN_SCOPE, /* inside a (far) timeout scope: -ECANCELED, not -ETIMEDOUT */
    BLOCK_READ,
    BLOCK_WRITE,
    BLOCK_JOIN,
    BLOCK_GROUP_WAIT,
    BLOCK_WAIT,
    BLOCK_AS_COMPLETED,
    BLOCK_KINDS
};

static const char *const blocker_reason[BLOCK_KINDS] = {
    [BLOCK_SLEEP] = "sleep",     [BLOCK_SLEEP_IN_SCOPE] = "sleep", [BLOCK_READ] = "io read",
    [BLOCK_WRITE] = "io write",  [BLOCK_JOIN] = "join",            [BLOCK_GROUP_WAIT] = "group wait",
    [BLOCK_WAIT] = "wait",       [BLOCK_AS_COMPLETED] = "as_completed",
};

enum { LT_SLEEP, LT_SLEEP_UNTIL, LT_NOP, LT_READ, LT_WRITE, LT_JOIN, LT_WAIT, LT_GROUP_WAIT,
       LT_AS_COMPLETED, LT_COUNT };

struct blocker {
    enum blocker_kind kind;
    int empty[2];    /* never written: BLOCK_READ */
    int full[2];     /* buffer full: BLOCK_WRITE */
    int data[2];     /* holds one byte: a cancelled read must leave it there */
    int spare[2];    /* for the write check: must stay empty */
    int close_fd;    /* closed by the cancelled task with gr_close */
    gr_task *partner; /* sleeps forever; joined / waited on */
    gr_group *group;  /* one child sleeping forever */
    _Atomic int group_child_cleanup;
    gr_group *lt_group; /* waited on by the level-triggered checks */
    _Atomic int lt_child_cleanup;
    int first_rc;
    int lt[LT_COUNT];
    int close_rc;
    int cancelled_flag;
};

static void level_triggered_calls(struct blocker *b)
{
    char c;
    b->lt[LT_SLEEP] = gr_sleep(1000);
    b->lt[LT_SLEEP_UNTIL] = gr_sleep_until(gr_now() + 1000);
    b->lt[LT_NOP] = gr_nop();
    b->lt[LT_READ] = (int)gr_read(b->data[0], &c, 1);
    b->lt[LT_WRITE] = (int)gr_write(b->spare[1], "w", 1);
    b->lt[LT_JOIN] = gr_join(b->partner);
    b->lt[LT_WAIT] = gr_wait(&b->partner, 1, GR_WAIT_ALL, FOREVER, NULL);
    gr_as_completed it;
    ck_assert_int_eq(gr_as_completed_init(&it, &b->partner, 1), 0);
    b->lt[LT_AS_COMPLETED] = gr_as_completed_next(&it, FOREVER);
    gr_as_completed_destroy(&it);
    /* A cancelled group waiter cancels the children and waits for them. */
    b->lt[LT_GROUP_WAIT] = gr_group_wait(b->lt_group);
    b->close_rc = gr_close(b->close_fd);
    b->cancelled_flag = gr_task_cancelled(gr_self());
}

static int blocker_task(void *arg)
{
    struct blocker *b = arg;
    char buf[16];
    gr_scope scope;
    gr_as_completed it;
    switch (b->kind) {
    case BLOCK_SLEEP:
        b->first_rc = gr_sleep(FOREVER);
        break;
    case BLOCK_SLEEP_IN_SCOPE:
        ck_assert_int_eq(gr_scope_enter_timeout(&scope, (int64_t)3600 * 1000000000), 0);
        b->first_rc = gr_sleep(FOREVER);
        ck_assert_int_eq(gr_scope_leave(&scope), 0);
        break;
    case BLOCK_READ:
        b->first_rc = (int)gr_read(b->empty[0], buf, sizeof(buf));
        break;
    case BLOCK_WRITE:
        b->first_rc = (int)gr_write(b->full[1], "x", 1);
        break;
    case BLOCK_JOIN:
        b->first_rc = gr_join(b->partner);
        break;
    case BLOCK_GROUP_WAIT:
        b->first_rc = gr_group_wait(b->group);
        break;
    case BLOCK_WAIT:
        b->first_rc = gr_wait(&b->partner, 1, GR_WAIT_ANY, FOREVER, NULL);
        break;
    case BLOCK_AS_COMPLETED:
        ck_assert_int_eq(gr_as_completed_init(&it, &b->partner, 1), 0);
        b->first_rc = gr_as_completed_next(&it, FOREVER);
        gr_as_completed_destroy(&it);
        break;
    default:
        ck_abort_msg("bad kind");
    }
    level_triggered_calls(b);
    return 0;
}

static int cancel_blocked_main(void *arg)
{
    struct blocker *b = arg;
    int fds_before = gr_test_open_fds();
    gr_test_pipe(b->empty);
    gr_test_pipe(b->full);
    gr_test_pipe(b->data);
    gr_test_pipe(b->spare);
    int full_bytes = gr_test_fill_pipe(b->full[1]);
    ck_assert_int_eq(write(b->data[1], "d", 1), 1);
    b->close_fd = dup(b->spare[0]);
    ck_assert_int_ge(b->close_fd, 0);
    b->partner = gr_test_spawn_named(gr_test_sleep_forever, NULL, "partner");
    ck_assert_int_eq(gr_group_create(&b->group), 0);
    gr_spawn_opts child = {.name = "group-child"};
    ck_assert_int_eq(gr_group_spawn(b->group, gr_test_sleep_forever, &b->group_child_cleanup, &child), 0);
    ck_assert_int_eq(gr_group_create(&b->lt_group), 0);
    ck_assert_int_eq(gr_group_spawn(b->lt_group, gr_test_sleep_forever, &b->lt_child_cleanup, &child), 0);

    gr_task *t = gr_test_spawn_named(blocker_task, b, "blocker");
    gr_test_wait_parked("blocker", blocker_reason[b->kind]);
    ck_assert_int_eq(gr_task_cancelled(t), 0);
    ck_assert_int_eq(gr_cancel(t), 0);
    ck_assert_int_eq(gr_join(t), 0);

    ck_assert_msg(b->first_rc == -ECANCELED, "kind %d: first call returned %d", b->kind,
                  b->first_rc);
    for (int i = 0; i < LT_COUNT; i++)
        ck_assert_msg(b->lt[i] == -ECANCELED, "kind %d: later call %d returned %d", b->kind, i,
                      b->lt[i]);
    ck_assert_int_eq(b->cancelled_flag, 1);
    /* gr_close is not a cancellation point: the fd is gone. */
    ck_assert_int_eq(b->close_rc, 0);
    ck_assert_int_eq(fcntl(b->close_fd, F_GETFD), -1);
    /* Cancelled reads and writes did not happen. */
    ck_assert_int_eq(gr_test_pipe_pending(b->data[0]), 1);
    ck_assert_int_eq(gr_test_pipe_pending(b->spare[0]), 0);
    ck_assert_int_eq(gr_test_pipe_pending(b->full[0]), full_bytes);
    ck_assert_int_eq(gr_test_pipe_pending(b->empty[0]), 0);

    /* The group: only the group wait kind cancels its child. */
    if (b->kind == BLOCK_GROUP_WAIT) {
        ck_assert_int_eq(atomic_load(&b->group_child_cleanup), 1);
        ck_assert_int_eq(gr_group_wait(b->group), -ECANCELED);
    } else {
        ck_assert_int_eq(atomic_load(&b->group_child_cleanup), 0);
        ck_assert_int_eq(gr_group_cancel(b->group), 0);
        ck_assert_int_eq(gr_group_wait(b->group), 0);
        ck_assert_int_eq(atomic_load(&b->group_child_cleanup), 1);
    }
    ck_assert_int_eq(gr_group_destroy(b->group), 0);
    ck_assert_int_eq(atomic_load(&b->lt_child_cleanup), 1);
    ck_assert_int_eq(gr_group_destroy(b->lt_group), 0);
    /* The partner was never cancelled by any of this. */
    ck_assert_int_eq(gr_task_cancelled(b->partner), 0);
    ck_assert_int_eq(gr_task_done(b->partner), 0);
    ck_assert_int_eq(gr_cancel(b->partner), 0);
    ck_assert_int_eq(gr_join(b->partner), -ECANCELED);

    int fds[] = {b->empty[0], b->empty[1], b->full[0], b->full[1],
                 b->data[0],  b->data[1],  b->spare[0], b->spare[1]};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        ck_assert_int_eq(close(fds[i]), 0);
    ck_assert_int_eq(gr_test_open_fds(), fds_before);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_cancel_blocked)
{
    struct blocker b = {.kind = (enum blocker_kind)_i};
    gr_test_run_ok(cancel_blocked_main, &b, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Read racing a write: the main task writes one byte into the pipe the
 * reader is blocked on and cancels the reader at once. Either the read got
 * the byte (and the reader's next read is -ECANCELED) or it was cancelled
 * and the byte is still in the pipe. 500 rounds, distinct byte values.
 * --------------------------------------------------------------------- */

#define RACE_ROUNDS 500

struct race {
    int p[2];
    int first_rc, second_rc;
    unsigned char got;
    int delivered, cancelled;
};

static int race_reader(void *arg)
{
    struct race *r = arg;
    unsigned char c = 0;
    r->first_rc = (int)gr_read(r->p[0], &c, 1);
    r->got = c;
    r->second_rc = (int)gr_read(r->p[0], &c, 1);
    return 0;
}

static int race_main(void *arg)
{
    struct race *r = arg;
    int fds_before = gr_test_open_fds();
    gr_test_pipe(r->p);
    for (int i = 0; i < RACE_ROUNDS; i++) {
        unsigned char byte = (unsigned char)(i * 7 + 1);
        r->first_rc = r->second_rc = 12345;
        r->got = 0;
        gr_task *t = gr_test_spawn_named(race_reader, r, "reader");
        gr_test_wait_parked("reader", "io read");
        ck_assert_int_eq(write(r->p[1], &byte, 1), 1);
        ck_assert_int_eq(gr_cancel(t), 0);
        ck_assert_int_eq(gr_join(t), 0);
        if (r->first_rc == 1) {
            ck_assert_int_eq(r->got, byte);
            ck_assert_int_eq(r->second_rc, -ECANCELED);
            ck_assert_int_eq(gr_test_pipe_pending(r->p[0]), 0);
            r->delivered++;
        } else {
            ck_assert_msg(r->first_rc == -ECANCELED, "round %d: read returned %d", i,
                          r->first_rc);
            ck_assert_int_eq(r->second_rc, -ECANCELED);
            ck_assert_int_eq(gr_test_pipe_pending(r->p[0]), 1);
            unsigned char back = 0;
            ck_assert_int_eq(read(r->p[0], &back, 1), 1);
            ck_assert_int_eq(back, byte);
            r->cancelled++;
        }
    }
    ck_assert_int_eq(r->delivered + r->cancelled, RACE_ROUNDS);
    gr_test_close_pipe(r->p);
    ck_assert_int_eq(gr_test_open_fds(), fds_before);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_cancel_read_race)
{
    struct race r = {0};
    gr_test_run_ok(race_main, &r, (unsigned)_i);
}
END_TEST

/* ---------------------------------------------------------------------
 * Finished tasks, twice, self, before the task ran
 * --------------------------------------------------------------------- */

static int return_7(void *arg)
{
    (void)arg;
    return 7;
}

static int cancel_finished_main(void *arg)
{
    (void)arg;
    gr_task *t = gr_test_spawn_named(return_7, NULL, "seven");
    unsigned char done = 0;
    ck_assert_int_eq(gr_wait(&t, 1, GR_WAIT_ALL, FOREVER, &done), 1);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(gr_cancel(t), 0);
    ck_assert_int_eq(gr_cancel(t), 0);
    int result = 0;
    ck_assert_int_eq(gr_task_result(t, &result), 0);
    ck_assert_int_eq(result, 7);
    ck_assert_int_eq(gr_join(t), 7);
    /* The handle is released: a stale handle is refused. */
    ck_assert_int_eq(gr_cancel(t), -ESRCH);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_cancel_finished_task)
{
    gr_test_run_ok(cancel_finished_main, NULL, 2);
}
END_TEST

static int cancel_twice_main(void *arg)
{
    (void)arg;
    _Atomic int cleanup = 0;
    int p[2];
    gr_test_pipe(p);
    gr_task *t = gr_test_spawn_named(gr_test_sleep_forever, (void *)&cleanup, "sleeper");
    gr_test_wait_parked("sleeper", "sleep");
    ck_assert_int_eq(gr_cancel(t), 0);
    ck_assert_int_eq(gr_cancel(t), 0);
    ck_assert_int_eq(gr_join(t), -ECANCELED);
    ck_assert_int_eq(atomic_load(&cleanup), 1);
    gr_test_close_pipe(p);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_cancel_twice)
{
    gr_test_run_ok(cancel_twice_main, NULL, 2);
}
END_TEST

struct self_cancel {
    int cancel_rc, flag_before, flag_after, nop_rc, sleep_rc;
};

static int self_cancel_task(void *arg)
{
    struct self_cancel *s = arg;
    s->flag_before = gr_task_cancelled(gr_self());
    s->cancel_rc = gr_cancel(gr_self());
    s->flag_after = gr_task_cancelled(gr_self());
    s->nop_rc = gr_nop();
    s->sleep_rc = gr_sleep(FOREVER);
    return 0;
}

static int cancel_self_main(void *arg)
{
    (void)arg;
    struct self_cancel s = {0};
    gr_task *t = gr_test_spawn_named(self_cancel_task, &s, "self");
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(s.flag_before, 0);
    ck_assert_int_eq(s.cancel_rc, 0);
    ck_assert_int_eq(s.flag_after, 1);
    ck_assert_int_eq(s.nop_rc, -ECANCELED);
    ck_assert_int_eq(s.sleep_rc, -ECANCELED);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_cancel_self)
{
    gr_test_run_ok(cancel_self_main, NULL, 2);
}
END_TEST

struct early {
    _Atomic int ran;
    int first_rc;
};

static int early_task(void *arg)
{
    struct early *e = arg;
    atomic_store(&e->ran, 1);
    e->first_rc = gr_nop();
    return 5;
}

/* One worker: the spawned task cannot run before main blocks. */
static int cancel_before_run_main(void *arg)
{
    (void)arg;
    struct early e = {0};
    gr_task *t = gr_test_spawn_named(early_task, &e, "early");
    ck_assert_int_eq(gr_cancel(t), 0);
    ck_assert_int_eq(atomic_load(&e.ran), 0);
    ck_assert_int_eq(gr_task_cancelled(t), 1);
    ck_assert_int_eq(gr_join(t), 5);
    ck_assert_int_eq(atomic_load(&e.ran), 1);
    ck_assert_int_eq(e.first_rc, -ECANCELED);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_cancel_before_run)
{
    gr_test_run_ok(cancel_before_run_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Bad handles
 * --------------------------------------------------------------------- */

static _Alignas(64) unsigned char fake_task[512];

static int bad_handles_main(void *arg)
{
    (void)arg;
    ck_assert_int_eq(gr_cancel(NULL), -EINVAL);
    /* Mapped memory that is no task (cache-line aligned, zeroed). */
    ck_assert_int_eq(gr_cancel((gr_task *)(void *)fake_task), -EINVAL);
    /* Not cache-line aligned. */
    ck_assert_int_eq(gr_cancel((gr_task *)(void *)(fake_task + 8)), -EINVAL);
    return 0;
}

START_TEST(test_cancel_bad_handles)
{
    ck_assert_int_eq(gr_cancel(NULL), -EPERM); /* no runtime */
    gr_test_run_ok(bad_handles_main, NULL, 1);
}
END_TEST

/* A handle from an earlier gr_run is "not a task of this runtime". The
 * architecture notes say handles must not outlive gr_run; the issue asks
 * for a clear errno (or an abort that names the mistake), never a crash. */
static gr_task *old_handle;

static int keep_handle_main(void *arg)
{
    (void)arg;
    gr_task *t = gr_test_spawn_named(return_7, NULL, "old");
    old_handle = t;
    ck_assert_int_eq(gr_join(t), 7);
    return 0;
}

struct old_rc {
    int cancel_rc, done_rc;
};

static int use_old_handle_main(void *arg)
{
    struct old_rc *o = arg;
    o->cancel_rc = gr_cancel(old_handle);
    o->done_rc = gr_task_done(old_handle);
    return 0;
}

START_TEST(test_cancel_handle_of_earlier_run)
{
    gr_test_run_ok(keep_handle_main, NULL, 1);
    struct old_rc o = {0};
    gr_test_run_ok(use_old_handle_main, &o, 1);
    ck_assert_msg(o.cancel_rc == -EINVAL || o.cancel_rc == -ESRCH, "gr_cancel: %d", o.cancel_rc);
    ck_assert_msg(o.done_rc == -EINVAL || o.done_rc == -ESRCH, "gr_task_done: %d", o.done_rc);
}
END_TEST

/* ---------------------------------------------------------------------
 * gr_cancel from a plain pthread (not a worker): a sleeping task and a
 * task parked on an io_uring read, with 1 and 2 workers.
 * --------------------------------------------------------------------- */

struct foreign {
    gr_task *target;
    int rc;
};

static void *foreign_cancel(void *arg)
{
    struct foreign *f = arg;
    f->rc = gr_cancel(f->target);
    return NULL;
}

struct reader_arg {
    int fd;
    _Atomic int cleanup;
};

static int read_forever_task(void *arg)
{
    struct reader_arg *r = arg;
    char c;
    int rc = (int)gr_read(r->fd, &c, 1);
    atomic_fetch_add(&r->cleanup, 1);
    return rc;
}

static int foreign_main(void *arg)
{
    (void)arg;
    _Atomic int sleeper_cleanup = 0;
    struct reader_arg r = {0};
    int p[2];
    gr_test_pipe(p);
    r.fd = p[0];
    gr_task *sleeper = gr_test_spawn_named(gr_test_sleep_forever, (void *)&sleeper_cleanup, "sleeper");
    gr_task *reader = gr_test_spawn_named(read_forever_task, &r, "reader");
    gr_test_wait_parked("sleeper", "sleep");
    gr_test_wait_parked("reader", "io read");

    struct foreign f1 = {.target = sleeper}, f2 = {.target = reader};
    pthread_t th1, th2;
    ck_assert_int_eq(pthread_create(&th1, NULL, foreign_cancel, &f1), 0);
    ck_assert_int_eq(pthread_create(&th2, NULL, foreign_cancel, &f2), 0);
    /* The joins complete only if the foreign cancels reach the tasks. */
    ck_assert_int_eq(gr_join(sleeper), -ECANCELED);
    ck_assert_int_eq(gr_join(reader), -ECANCELED);
    ck_assert_int_eq(pthread_join(th1, NULL), 0);
    ck_assert_int_eq(pthread_join(th2, NULL), 0);
    ck_assert_int_eq(f1.rc, 0);
    ck_assert_int_eq(f2.rc, 0);
    ck_assert_int_eq(atomic_load(&sleeper_cleanup), 1);
    ck_assert_int_eq(atomic_load(&r.cleanup), 1);
    ck_assert_int_eq(gr_test_pipe_pending(p[0]), 0);
    gr_test_close_pipe(p);
    gr_test_assert_only_main_stack();
    return 0;
}

START_TEST(test_cancel_from_foreign_thread)
{
    gr_test_run_ok(foreign_main, NULL, (unsigned)_i);
}
END_TEST

/* ---------------------------------------------------------------------
 * Teardown: main returns while tasks are still alive (sleeping forever,
 * blocked in pipe reads, in a group that is never waited, detached, joining
 * another task, and one that spawns a new task from its cancellation
 * path). gr_run cancels and joins all of them and returns main's result.
 * --------------------------------------------------------------------- */

#define TD_READERS 4
#define TD_GROUP 5
#define TD_DETACHED 6

struct teardown {
    int p[TD_READERS][2];
    gr_group *group;
    _Atomic int cleanup;   /* every task that saw -ECANCELED */
    _Atomic int other_rc;  /* any task whose blocking call returned something else */
    _Atomic int late_child_rc;
};

static void td_record(struct teardown *td, int rc)
{
    if (rc == -ECANCELED)
        atomic_fetch_add(&td->cleanup, 1);
    else
        atomic_store(&td->other_rc, rc ? rc : 1);
}

struct td_arg {
    struct teardown *td;
    int fd;
    gr_task *target;
};

static int td_sleeper(void *arg)
{
    struct td_arg *a = arg;
    td_record(a->td, gr_sleep(FOREVER));
    return 0;
}

static int td_reader(void *arg)
{
    struct td_arg *a = arg;
    char c;
    td_record(a->td, (int)gr_read(a->fd, &c, 1));
    return 0;
}

static int td_joiner(void *arg)
{
    struct td_arg *a = arg;
    td_record(a->td, gr_join(a->target));
    return 0;
}

static int td_late_child(void *arg)
{
    struct teardown *td = arg;
    /* Spawned during teardown: starts cancelled. */
    atomic_store(&td->late_child_rc, gr_sleep(FOREVER));
    return 0;
}

static int td_respawner(void *arg)
{
    struct td_arg *a = arg;
    td_record(a->td, gr_sleep(FOREVER));
    gr_spawn_opts o = {.name = "late-child"};
    ck_assert_int_eq(gr_spawn(NULL, td_late_child, a->td, &o), 0);
    return 0;
}

static struct td_arg td_args[TD_READERS + TD_GROUP + TD_DETACHED + 4];

static int teardown_main(void *arg)
{
    struct teardown *td = arg;
    int k = 0;
    for (int i = 0; i < TD_READERS; i++) {
        td_args[k] = (struct td_arg){.td = td, .fd = td->p[i][0]};
        gr_spawn_opts o = {.name = "td-reader"};
        ck_assert_int_eq(gr_spawn(NULL, td_reader, &td_args[k++], &o), 0);
    }
    ck_assert_int_eq(gr_group_create(&td->group), 0);
    for (int i = 0; i < TD_GROUP; i++) {
        td_args[k] = (struct td_arg){.td = td};
        gr_spawn_opts o = {.name = "td-group"};
        ck_assert_int_eq(gr_group_spawn(td->group, td_sleeper, &td_args[k++], &o), 0);
    }
    for (int i = 0; i < TD_DETACHED; i++) {
        td_args[k] = (struct td_arg){.td = td};
        gr_task *t = gr_test_spawn_named(td_sleeper, &td_args[k++], "td-detached");
        ck_assert_int_eq(gr_detach(t), 0);
    }
    /* Joinable, never joined: a sleeper and a task joining it. */
    td_args[k] = (struct td_arg){.td = td};
    gr_task *target = gr_test_spawn_named(td_sleeper, &td_args[k++], "td-target");
    td_args[k] = (struct td_arg){.td = td, .target = target};
    gr_task *joiner = gr_test_spawn_named(td_joiner, &td_args[k++], "td-joiner");
    td_args[k] = (struct td_arg){.td = td};
    gr_task *respawner = gr_test_spawn_named(td_respawner, &td_args[k++], "td-respawner");
    ck_assert_int_eq(gr_detach(respawner), 0);
    (void)joiner;

    gr_test_wait_parked_n("td-reader", "io read", TD_READERS);
    gr_test_wait_parked_n("td-group", "sleep", TD_GROUP);
    gr_test_wait_parked_n("td-detached", "sleep", TD_DETACHED);
    gr_test_wait_parked("td-target", "sleep");
    gr_test_wait_parked("td-joiner", "join");
    gr_test_wait_parked("td-respawner", "sleep");
    return 42;
}

START_TEST(test_teardown_cancels_live_tasks)
{
    struct teardown td = {0};
    atomic_store(&td.late_child_rc, 12345);
    int fds_before = gr_test_open_fds();
    for (int i = 0; i < TD_READERS; i++)
        gr_test_pipe(td.p[i]);
    ck_assert_int_eq(gr_test_run(teardown_main, &td, 2), 42);
    /* Everything that was alive when main returned was cancelled. */
    ck_assert_int_eq(atomic_load(&td.other_rc), 0);
    ck_assert_int_eq(atomic_load(&td.cleanup), TD_READERS + TD_GROUP + TD_DETACHED + 3);
    ck_assert_int_eq(atomic_load(&td.late_child_rc), -ECANCELED);
    /* The group's children are gone, so it can be freed. */
    ck_assert_int_eq(gr_group_destroy(td.group), 0);
    for (int i = 0; i < TD_READERS; i++) {
        ck_assert_int_eq(gr_test_pipe_pending(td.p[i][0]), 0);
        gr_test_close_pipe(td.p[i]);
    }
    ck_assert_int_eq(gr_test_open_fds(), fds_before);
}
END_TEST

/* A second gr_run after a teardown starts clean. */
static int trivial_main(void *arg)
{
    (void)arg;
    gr_runtime_stats st;
    ck_assert_int_eq(gr_stats(&st), 0);
    ck_assert_uint_eq(st.stacks_in_use, 1);
    ck_assert_uint_eq(st.live_tasks, 1);
    return 3;
}

START_TEST(test_teardown_then_run_again)
{
    struct teardown td = {0};
    int fds_before = gr_test_open_fds();
    for (int i = 0; i < TD_READERS; i++)
        gr_test_pipe(td.p[i]);
    ck_assert_int_eq(gr_test_run(teardown_main, &td, 2), 42);
    ck_assert_int_eq(gr_group_destroy(td.group), 0);
    for (int i = 0; i < TD_READERS; i++) {
        gr_test_close_pipe(td.p[i]);
    }
    ck_assert_int_eq(gr_test_run(trivial_main, NULL, 2), 3);
    ck_assert_int_eq(gr_test_open_fds(), fds_before);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("cancel");

    TCase *tc = tcase_create("blocked");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_cancel_blocked, 0, BLOCK_KINDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("race");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_cancel_read_race, 1, 3); /* 1 and 2 workers */
    suite_add_tcase(s, tc);

    tc = tcase_create("harmless");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_cancel_finished_task);
    tcase_add_test(tc, test_cancel_twice);
    tcase_add_test(tc, test_cancel_self);
    tcase_add_test(tc, test_cancel_before_run);
    tcase_add_test(tc, test_cancel_bad_handles);
    tcase_add_test(tc, test_cancel_handle_of_earlier_run);
    suite_add_tcase(s, tc);

    tc = tcase_create("foreign");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_cancel_from_foreign_thread, 1, 3);
    suite_add_tcase(s, tc);

    tc = tcase_create("teardown");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_teardown_cancels_live_tasks);
    tcase_add_test(tc, test_teardown_then_run_again);
    suite_add_tcase(s, tc);
    return s;
}
