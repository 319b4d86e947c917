/* greenring-test: asan valgrind */
/* Tasks: spawn, join, detach, names, handles, stacks, argument checking,
 * gr_run's life cycle and teardown. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/support.h"

#define NOINLINE __attribute__((noinline))

/* ---------------------------------------------------------------------
 * Spawn and join
 * --------------------------------------------------------------------- */

static int return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

static int spawn_join_main(void *arg)
{
    (void)arg;
    static const int values[] = {0, 1, 42, INT_MAX, -ENOENT, -EINVAL, -1, INT_MIN};
    gr_task *h[sizeof(values) / sizeof(values[0])];
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        ck_assert_int_eq(gr_spawn(&h[i], return_arg, (void *)(intptr_t)values[i], NULL), 0);
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        ck_assert_int_eq(gr_join(h[i]), values[i]);
    return 0;
}

START_TEST(spawn_join_results)
{
    gr_test_run_ok(spawn_join_main, NULL, 2);
}
END_TEST

static int hundred_main(void *arg)
{
    (void)arg;
    gr_task *h[100];
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(gr_spawn(&h[i], return_arg, (void *)(intptr_t)(i * 7 - 300), NULL), 0);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(gr_join(h[i]), i * 7 - 300);
    return 0;
}

START_TEST(join_100_in_order)
{
    gr_test_run_ok(hundred_main, NULL, 2);
}
END_TEST

/* main's own return value is gr_run's, negative ones included. */
static int return_minus_enoent(void *arg)
{
    (void)arg;
    return -ENOENT;
}

START_TEST(run_returns_main_result)
{
    ck_assert_int_eq(gr_test_run(return_arg, (void *)(intptr_t)1234, 1), 1234);
    ck_assert_int_eq(gr_test_run(return_minus_enoent, NULL, 2), -ENOENT);
}
END_TEST

/* ---------------------------------------------------------------------
 * Names
 * --------------------------------------------------------------------- */

static int parse_task_id(const char *name, unsigned long long *id)
{
    char tail;
    return sscanf(name, "task-%llu%c", id, &tail) == 1;
}

static int noop(void *arg)
{
    (void)arg;
    return 0;
}

static int default_names_main(void *arg)
{
    (void)arg;
    gr_task *a, *b;
    char na[GR_TASK_NAME_MAX], nb[GR_TASK_NAME_MAX];
    ck_assert_int_eq(gr_spawn(&a, noop, NULL, NULL), 0);
    ck_assert_int_eq(gr_spawn(&b, noop, NULL, &(gr_spawn_opts){.name = NULL}), 0);
    int la = gr_task_name(a, na, sizeof(na));
    int lb = gr_task_name(b, nb, sizeof(nb));
    ck_assert_int_eq(la, (int)strlen(na));
    ck_assert_int_eq(lb, (int)strlen(nb));
    unsigned long long ida, idb;
    ck_assert_msg(parse_task_id(na, &ida), "default name '%s' is not task-<id>", na);
    ck_assert_msg(parse_task_id(nb, &idb), "default name '%s' is not task-<id>", nb);
    ck_assert_msg(ida != idb, "two tasks share the id %llu", ida);
    ck_assert_int_eq(gr_join(a), 0);
    ck_assert_int_eq(gr_join(b), 0);
    return 0;
}

START_TEST(name_default)
{
    gr_test_run_ok(default_names_main, NULL, 1);
}
END_TEST

/* The child renames itself and reports its own name back. */
struct rename_ctx {
    char seen[GR_TASK_NAME_MAX];
    int seen_len;
};

static int rename_self(void *arg)
{
    struct rename_ctx *c = arg;
    ck_assert_int_eq(gr_task_set_name(NULL, "renamed"), 0);
    c->seen_len = gr_task_name(gr_self(), c->seen, sizeof(c->seen));
    return 0;
}

static int report_own_name(void *arg)
{
    struct rename_ctx *c = arg;
    c->seen_len = gr_task_name(gr_self(), c->seen, sizeof(c->seen));
    return 0;
}

static int set_get_names_main(void *arg)
{
    (void)arg;
    char buf[GR_TASK_NAME_MAX];
    gr_task *h;

    /* name given at spawn */
    ck_assert_int_eq(gr_spawn(&h, noop, NULL, &(gr_spawn_opts){.name = "fetcher"}), 0);
    ck_assert_int_eq(gr_task_name(h, buf, sizeof(buf)), 7);
    ck_assert_str_eq(buf, "fetcher");
    /* a short buffer gets a cut, terminated copy; the result is the full
     * length */
    ck_assert_int_eq(gr_task_name(h, buf, 4), 7);
    ck_assert_str_eq(buf, "fet");
    ck_assert_int_eq(gr_task_name(h, buf, 1), 7);
    ck_assert_str_eq(buf, "");
    /* renamed by its parent through the handle */
    ck_assert_int_eq(gr_task_set_name(h, "other"), 0);
    ck_assert_int_eq(gr_task_name(h, buf, sizeof(buf)), 5);
    ck_assert_str_eq(buf, "other");
    ck_assert_int_eq(gr_join(h), 0);

    /* renamed by itself; the parent sees the new name too */
    struct rename_ctx c = {{0}, 0};
    ck_assert_int_eq(gr_spawn(&h, rename_self, &c, &(gr_spawn_opts){.name = "before"}), 0);
    while (c.seen_len == 0)
        ck_assert_int_eq(gr_yield(), 0);
    ck_assert_int_eq(c.seen_len, 7);
    ck_assert_str_eq(c.seen, "renamed");
    ck_assert_int_eq(gr_task_name(h, buf, sizeof(buf)), 7);
    ck_assert_str_eq(buf, "renamed");
    ck_assert_int_eq(gr_join(h), 0);

    /* the parent renames the child before it runs; the child sees it */
    struct rename_ctx d = {{0}, 0};
    ck_assert_int_eq(gr_spawn(&h, report_own_name, &d, NULL), 0);
    ck_assert_int_eq(gr_task_set_name(h, "given-later"), 0);
    ck_assert_int_eq(gr_join(h), 0);
    ck_assert_int_eq(d.seen_len, 11);
    ck_assert_str_eq(d.seen, "given-later");

    /* main renames itself */
    ck_assert_int_eq(gr_task_set_name(NULL, "the-main"), 0);
    ck_assert_int_eq(gr_task_name(gr_self(), buf, sizeof(buf)), 8);
    ck_assert_str_eq(buf, "the-main");
    return 0;
}

START_TEST(name_set_get)
{
    gr_test_run_ok(set_get_names_main, NULL, 1);
}
END_TEST

#define LONG_NAME "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF" /* 42 chars */

static int truncation_main(void *arg)
{
    (void)arg;
    char buf[64];
    char want[GR_TASK_NAME_MAX];
    memcpy(want, LONG_NAME, GR_TASK_NAME_MAX - 1);
    want[GR_TASK_NAME_MAX - 1] = '\0';
    gr_task *h;

    ck_assert_int_eq(gr_spawn(&h, noop, NULL, &(gr_spawn_opts){.name = LONG_NAME}), 0);
    ck_assert_int_eq(gr_task_name(h, buf, sizeof(buf)), GR_TASK_NAME_MAX - 1);
    ck_assert_str_eq(buf, want);

    ck_assert_int_eq(gr_task_set_name(h, "short"), 0);
    ck_assert_int_eq(gr_task_set_name(h, LONG_NAME), 0);
    ck_assert_int_eq(gr_task_name(h, buf, sizeof(buf)), GR_TASK_NAME_MAX - 1);
    ck_assert_str_eq(buf, want);

    /* exactly GR_TASK_NAME_MAX - 1 characters fit */
    ck_assert_int_eq(gr_task_set_name(h, want), 0);
    ck_assert_int_eq(gr_task_name(h, buf, sizeof(buf)), GR_TASK_NAME_MAX - 1);
    ck_assert_str_eq(buf, want);
    ck_assert_int_eq(gr_join(h), 0);
    return 0;
}

START_TEST(name_truncation)
{
    gr_test_run_ok(truncation_main, NULL, 1);
}
END_TEST

static int name_errors_main(void *arg)
{
    (void)arg;
    char buf[GR_TASK_NAME_MAX];
    gr_task *h;
    ck_assert_int_eq(gr_spawn(&h, noop, NULL, &(gr_spawn_opts){.name = "x"}), 0);
    ck_assert_int_eq(gr_task_name(h, NULL, sizeof(buf)), -EINVAL);
    ck_assert_int_eq(gr_task_name(h, buf, 0), -EINVAL);
    ck_assert_int_eq(gr_task_name(NULL, buf, sizeof(buf)), -EINVAL);
    ck_assert_int_eq(gr_join(h), 0);
    /* joined: the handle is stale (one worker: the task is gone when the
     * join returns) */
    ck_assert_int_eq(gr_task_name(h, buf, sizeof(buf)), -ESRCH);
    ck_assert_int_eq(gr_task_set_name(h, "y"), -ESRCH);
    return 0;
}

START_TEST(name_errors)
{
    gr_test_run_ok(name_errors_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * gr_self, gr_worker_index, gr_worker_count
 * --------------------------------------------------------------------- */

struct self_ctx {
    gr_task *handle; /* written by gr_spawn before the task is queued */
    gr_task *seen[3];
};

static int record_self(void *arg)
{
    struct self_ctx *c = arg;
    c->seen[0] = gr_self();
    ck_assert_int_eq(gr_yield(), 0);
    c->seen[1] = gr_self();
    ck_assert_int_eq(gr_sleep(0), 0);
    c->seen[2] = gr_self();
    return 0;
}

static int self_main(void *arg)
{
    (void)arg;
    gr_task *me = gr_self();
    ck_assert_ptr_nonnull(me);
    struct self_ctx c[8];
    for (int i = 0; i < 8; i++) {
        memset(&c[i], 0, sizeof(c[i]));
        ck_assert_int_eq(gr_spawn(&c[i].handle, record_self, &c[i], NULL), 0);
    }
    gr_task *handles[8];
    for (int i = 0; i < 8; i++)
        handles[i] = c[i].handle;
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(gr_join(handles[i]), 0);
        for (int k = 0; k < 3; k++)
            ck_assert_ptr_eq(c[i].seen[k], handles[i]);
        ck_assert_ptr_ne(handles[i], me);
    }
    ck_assert_ptr_eq(gr_self(), me);
    return 0;
}

START_TEST(self_handle)
{
    ck_assert_ptr_null(gr_self());
    gr_test_run_ok(self_main, NULL, 2);
    ck_assert_ptr_null(gr_self());
}
END_TEST

static int check_worker_index(void *arg)
{
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < 20; i++) {
        int idx = gr_worker_index();
        ck_assert_msg(idx >= 0 && idx < n, "gr_worker_index() = %d with %d workers", idx, n);
        ck_assert_int_eq(gr_worker_count(), n);
        ck_assert_int_eq(gr_yield(), 0);
    }
    return 0;
}

static int worker_index_main(void *arg)
{
    gr_task *h[50];
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(gr_spawn(&h[i], check_worker_index, arg, NULL), 0);
    ck_assert_int_eq(check_worker_index(arg), 0);
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(gr_join(h[i]), 0);
    return 0;
}

START_TEST(worker_index_in_range)
{
    ck_assert_int_eq(gr_worker_index(), -EPERM);
    ck_assert_int_eq(gr_worker_count(), -EPERM);
    gr_test_run_ok(worker_index_main, (void *)(intptr_t)3, 3);
    gr_test_run_ok(worker_index_main, (void *)(intptr_t)1, 1);
    ck_assert_int_eq(gr_worker_index(), -EPERM);
    ck_assert_int_eq(gr_worker_count(), -EPERM);
}
END_TEST

/* ---------------------------------------------------------------------
 * Bad input
 * --------------------------------------------------------------------- */

static int spawn_errors_main(void *arg)
{
    (void)arg;
    gr_task *h = (gr_task *)(uintptr_t)0x1; /* must be overwritten */
    ck_assert_int_eq(gr_spawn(&h, NULL, NULL, NULL), -EINVAL);
    ck_assert_ptr_null(h);
    h = (gr_task *)(uintptr_t)0x1;
    gr_spawn_opts small = {.stack_size = GR_MIN_STACK_SIZE - 1};
    ck_assert_int_eq(gr_spawn(&h, noop, NULL, &small), -EINVAL);
    ck_assert_ptr_null(h);
    small.stack_size = 1;
    ck_assert_int_eq(gr_spawn(&h, noop, NULL, &small), -EINVAL);
    ck_assert_int_eq(gr_spawn(NULL, noop, NULL, &small), -EINVAL);
    /* the smallest accepted size works */
    gr_spawn_opts min = {.stack_size = GR_MIN_STACK_SIZE};
    ck_assert_int_eq(gr_spawn(&h, return_arg, (void *)(intptr_t)5, &min), 0);
    ck_assert_int_eq(gr_join(h), 5);
    return 0;
}

START_TEST(spawn_bad_input)
{
    gr_test_run_ok(spawn_errors_main, NULL, 1);
}
END_TEST

START_TEST(spawn_outside_run)
{
    gr_task *h = (gr_task *)(uintptr_t)0x1;
    ck_assert_int_eq(gr_spawn(&h, noop, NULL, NULL), -EPERM);
    ck_assert_ptr_null(h);
    ck_assert_int_eq(gr_spawn(NULL, noop, NULL, NULL), -EPERM);
}
END_TEST

static int join_twice_main(void *arg)
{
    (void)arg;
    gr_task *h;
    ck_assert_int_eq(gr_spawn(&h, return_arg, (void *)(intptr_t)9, NULL), 0);
    ck_assert_int_eq(gr_join(h), 9);
    ck_assert_int_eq(gr_join(h), -ESRCH);
    ck_assert_int_eq(gr_detach(h), -ESRCH);
    ck_assert_int_eq(gr_cancel(h), -ESRCH);
    /* the slot is reused by a new task: the old handle stays stale */
    gr_task *h2;
    ck_assert_int_eq(gr_spawn(&h2, return_arg, (void *)(intptr_t)10, NULL), 0);
    ck_assert_int_eq(gr_join(h), -ESRCH);
    ck_assert_int_eq(gr_join(h2), 10);
    return 0;
}

START_TEST(join_twice_is_stale)
{
    gr_test_run_ok(join_twice_main, NULL, 1);
}
END_TEST

/* "using a handle after the task was joined ... returns -ESRCH": also when
 * the task ran on another worker and finished just before the join. Batches
 * of tasks that yield a few times spread over both workers. */
static int yield_then_return(void *arg)
{
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(gr_yield(), 0);
    return (int)(intptr_t)arg;
}

static int join_twice_many_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 2000; round++) {
        gr_task *h[64];
        for (int i = 0; i < 64; i++)
            ck_assert_int_eq(gr_spawn(&h[i], yield_then_return, (void *)(intptr_t)i, NULL), 0);
        for (int i = 0; i < 64; i++) {
            ck_assert_int_eq(gr_join(h[i]), i);
            int again = gr_join(h[i]);
            ck_assert_msg(again == -ESRCH,
                          "round %d task %d: second gr_join returned %d, expected -ESRCH (%d)",
                          round, i, again, -ESRCH);
        }
    }
    return 0;
}

START_TEST(join_twice_is_stale_two_workers)
{
    gr_test_run_ok(join_twice_many_main, NULL, 2);
}
END_TEST

/* Handles of an earlier gr_run are stale in the next one: they must not
 * alias the new run's tasks (whose stacks may sit at the same addresses). */
#define OLD_HANDLES 8

static gr_task *old_handles[OLD_HANDLES];

static int first_run_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < OLD_HANDLES; i++) {
        ck_assert_int_eq(gr_spawn(&old_handles[i], return_arg, (void *)(intptr_t)i, NULL), 0);
        ck_assert_int_eq(gr_join(old_handles[i]), i);
    }
    return 0;
}

static int second_run_main(void *arg)
{
    (void)arg;
    gr_task *h[OLD_HANDLES];
    for (int i = 0; i < OLD_HANDLES; i++)
        ck_assert_int_eq(gr_spawn(&h[i], return_arg, (void *)(intptr_t)(100 + i), NULL), 0);
    for (int i = 0; i < OLD_HANDLES; i++) {
        char name[GR_TASK_NAME_MAX];
        int rc = gr_task_name(old_handles[i], name, sizeof(name));
        ck_assert_msg(rc == -ESRCH || rc == -EINVAL,
                      "gr_task_name(handle %d of the previous run) = %d (\"%s\"): the handle "
                      "aliases a task of this run",
                      i, rc, rc > 0 ? name : "");
    }
    for (int i = 0; i < OLD_HANDLES; i++)
        ck_assert_int_eq(gr_join(h[i]), 100 + i);
    return 0;
}

START_TEST(handles_stale_across_runs)
{
    gr_test_run_ok(first_run_main, NULL, 1);
    gr_test_run_ok(second_run_main, NULL, 1);
}
END_TEST

/* A task that waits for one byte on a pipe, then acknowledges on another. */
struct gate {
    int in[2];
    int ack[2];
};

static int wait_at_gate(void *arg)
{
    struct gate *g = arg;
    char b;
    ssize_t n = gr_read(g->in[0], &b, 1);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(gr_write(g->ack[1], &b, 1), 1);
    return 0;
}

static void gate_open(struct gate *g)
{
    gr_test_pipe(g->in);
    gr_test_pipe(g->ack);
}

static void gate_close(struct gate *g)
{
    close(g->in[0]);
    close(g->in[1]);
    close(g->ack[0]);
    close(g->ack[1]);
}

/* Let the gated task go and wait until it has passed. */
static void gate_release(struct gate *g)
{
    char b = 'g';
    ck_assert_int_eq(gr_write(g->in[1], &b, 1), 1);
    ck_assert_int_eq(gr_read(g->ack[0], &b, 1), 1);
}

static int detach_errors_main(void *arg)
{
    struct gate *g = arg;
    gr_task *h;
    ck_assert_int_eq(gr_spawn(&h, wait_at_gate, g, NULL), 0);
    gr_task *copy = h;
    /* the task is parked at the gate (or not started): still alive */
    ck_assert_int_eq(gr_detach(h), 0);
    /* a detached handle is released: stale from then on */
    ck_assert_int_eq(gr_join(copy), -ESRCH);
    ck_assert_int_eq(gr_detach(copy), -ESRCH);
    gate_release(g);

    ck_assert_int_eq(gr_join(NULL), -EINVAL);
    ck_assert_int_eq(gr_detach(NULL), -EINVAL);
    ck_assert_int_eq(gr_cancel(NULL), -EINVAL);
    return 0;
}

START_TEST(detach_errors)
{
    struct gate g;
    gate_open(&g);
    gr_test_run_ok(detach_errors_main, &g, 2);
    gate_close(&g);
}
END_TEST

/* A second joiner while the first one waits: -EINVAL. */
struct double_join {
    struct gate g;
    gr_task *target;
    int second_result;
};

static int second_joiner(void *arg)
{
    struct double_join *d = arg;
    d->second_result = gr_join(d->target);
    char b = 'g';
    ck_assert_int_eq(gr_write(d->g.in[1], &b, 1), 1); /* let the target end */
    return 0;
}

static int double_join_main(void *arg)
{
    struct double_join *d = arg;
    ck_assert_int_eq(gr_spawn(&d->target, wait_at_gate, &d->g, NULL), 0);
    gr_task *j;
    d->second_result = 1;
    ck_assert_int_eq(gr_spawn(&j, second_joiner, d, NULL), 0);
    /* One worker: the second joiner runs only once main has parked in this
     * join; the target cannot end before the second joiner opens the gate. */
    ck_assert_int_eq(gr_join(d->target), 0);
    ck_assert_int_eq(gr_join(j), 0);
    char b;
    ck_assert_int_eq(gr_read(d->g.ack[0], &b, 1), 1);
    return 0;
}

START_TEST(join_while_joined)
{
    struct double_join d;
    gate_open(&d.g);
    gr_test_run_ok(double_join_main, &d, 1);
    ck_assert_int_eq(d.second_result, -EINVAL);
    gate_close(&d.g);
}
END_TEST

static int join_self_task(void *arg)
{
    (void)arg;
    return gr_join(gr_self());
}

static int join_self_main(void *arg)
{
    (void)arg;
    ck_assert_int_eq(gr_join(gr_self()), -EDEADLK);
    gr_task *h;
    ck_assert_int_eq(gr_spawn(&h, join_self_task, NULL, NULL), 0);
    ck_assert_int_eq(gr_join(h), -EDEADLK);
    return 0;
}

START_TEST(join_self)
{
    gr_test_run_ok(join_self_main, NULL, 2);
}
END_TEST

/* Blocking calls outside a task. */
static void check_blocking_eperm(int fd)
{
    char b;
    ck_assert_int_eq(gr_sleep(1000), -EPERM);
    ck_assert_int_eq(gr_sleep(0), -EPERM);
    ck_assert_int_eq(gr_sleep_until(gr_now() + 1000), -EPERM);
    ck_assert_int_eq(gr_yield(), -EPERM);
    ck_assert_int_eq(gr_read(fd, &b, 1), -EPERM);
    ck_assert_int_eq(gr_write(fd, &b, 1), -EPERM);
    ck_assert_int_eq(gr_pread(fd, &b, 1, 0), -EPERM);
    ck_assert_int_eq(gr_pwrite(fd, &b, 1, 0), -EPERM);
    ck_assert_int_eq(gr_nop(), -EPERM);
    ck_assert_ptr_null(gr_self());
    ck_assert_int_eq(gr_worker_index(), -EPERM);
}

START_TEST(blocking_outside_runtime)
{
    int p[2];
    gr_test_pipe(p);
    check_blocking_eperm(p[0]);
    ck_assert_int_eq(gr_join(NULL), -EPERM);
    ck_assert_int_eq(gr_detach(NULL), -EPERM);
    close(p[0]);
    close(p[1]);
}
END_TEST

struct foreign_ctx {
    struct gate g;
    gr_task *target;
    int join_rc, detach_rc, count_rc, run_rc;
};

static void *foreign_thread(void *arg)
{
    struct foreign_ctx *c = arg;
    check_blocking_eperm(c->g.in[0]);
    c->join_rc = gr_join(c->target);
    c->count_rc = gr_worker_count();
    c->run_rc = gr_run(noop, NULL, NULL);
    return NULL;
}

static int foreign_main(void *arg)
{
    struct foreign_ctx *c = arg;
    ck_assert_int_eq(gr_spawn(&c->target, wait_at_gate, &c->g, NULL), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, foreign_thread, c), 0);
    /* the thread does not wait for anything of the runtime: joining it
     * blocks this worker only briefly */
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    gate_release(&c->g);
    ck_assert_int_eq(gr_join(c->target), 0);
    return 0;
}

START_TEST(blocking_from_foreign_thread)
{
    struct foreign_ctx c;
    memset(&c, 0, sizeof(c));
    gate_open(&c.g);
    gr_test_run_ok(foreign_main, &c, 2);
    ck_assert_int_eq(c.join_rc, -EPERM);
    ck_assert_int_eq(c.count_rc, 2);
    ck_assert_int_eq(c.run_rc, -EBUSY);
    gate_close(&c.g);
}
END_TEST

START_TEST(run_bad_input)
{
    int fds = gr_test_open_fds();
    ck_assert_int_eq(gr_run(NULL, NULL, NULL), -EINVAL);
    gr_config small = {.workers = 1, .stack_size = GR_MIN_STACK_SIZE - 1};
    ck_assert_int_eq(gr_run(noop, NULL, &small), -EINVAL);
    ck_assert_int_eq(gr_test_open_fds(), fds);
    /* and it still starts afterwards */
    gr_test_run_ok(noop, NULL, 1);
}
END_TEST

static int nested_run_main(void *arg)
{
    (void)arg;
    ck_assert_int_eq(gr_run(noop, NULL, NULL), -EBUSY);
    ck_assert_int_eq(gr_run(NULL, NULL, NULL), -EINVAL);
    return 0;
}

START_TEST(run_inside_run)
{
    gr_test_run_ok(nested_run_main, NULL, 1);
}
END_TEST

static int count_workers(void *arg)
{
    (void)arg;
    return gr_worker_count();
}

START_TEST(run_in_sequence)
{
    static const unsigned counts[] = {1, 2, 3, 4, 1, 2};
    int fds = gr_test_open_fds();
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
        ck_assert_int_eq(gr_test_run(count_workers, NULL, counts[i]), (int)counts[i]);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    ck_assert_int_eq(gr_test_run(count_workers, NULL, 0), (int)online);
    ck_assert_int_eq(gr_run(count_workers, NULL, NULL), (int)online);
    ck_assert_int_eq(gr_test_open_fds(), fds);
    /* tasks and joins keep working after several runs */
    gr_test_run_ok(hundred_main, NULL, 3);
}
END_TEST

/* ---------------------------------------------------------------------
 * Stacks
 * --------------------------------------------------------------------- */

#define FRAME_BYTES 1024

/* Each frame keeps FRAME_BYTES live across the recursive call, so the
 * recursion can be neither flattened nor turned into a tail call. */
static NOINLINE uint64_t recurse(unsigned depth)
{
    volatile unsigned char frame[FRAME_BYTES];
    for (unsigned i = 0; i < FRAME_BYTES; i++)
        frame[i] = (unsigned char)(depth * 31u + i);
    uint64_t sum = depth ? recurse(depth - 1) : 0;
    for (unsigned i = 0; i < FRAME_BYTES; i++)
        sum += frame[i];
    return sum;
}

static uint64_t recurse_expected(unsigned depth)
{
    uint64_t sum = 0;
    for (unsigned d = 0; d <= depth; d++)
        for (unsigned i = 0; i < FRAME_BYTES; i++)
            sum += (unsigned char)(d * 31u + i);
    return sum;
}

struct deep {
    unsigned depth;
    uint64_t sum;
};

static int deep_task(void *arg)
{
    struct deep *d = arg;
    ck_assert_int_eq(gr_yield(), 0); /* the deep frames also survive switches */
    d->sum = recurse(d->depth);
    ck_assert_int_eq(gr_yield(), 0);
    return 0;
}

/* ~800 KiB of frames on a 1 MiB stack. */
#define DEEP_1M_DEPTH 760u

static int deep_spawn_main(void *arg)
{
    (void)arg;
    struct deep d = {.depth = DEEP_1M_DEPTH};
    gr_task *h;
    gr_spawn_opts opts = {.name = "deep", .stack_size = (size_t)1 << 20};
    ck_assert_int_eq(gr_spawn(&h, deep_task, &d, &opts), 0);
    ck_assert_int_eq(gr_join(h), 0);
    ck_assert_uint_eq(d.sum, recurse_expected(DEEP_1M_DEPTH));
    return 0;
}

START_TEST(deep_recursion_1m_stack)
{
    gr_test_run_ok(deep_spawn_main, NULL, 2);
}
END_TEST

/* The configured default stack size applies to main and to spawned tasks. */
static int deep_default_main(void *arg)
{
    (void)arg;
    struct deep mine = {.depth = DEEP_1M_DEPTH};
    ck_assert_int_eq(deep_task(&mine), 0);
    ck_assert_uint_eq(mine.sum, recurse_expected(DEEP_1M_DEPTH));
    struct deep child = {.depth = DEEP_1M_DEPTH};
    gr_task *h;
    ck_assert_int_eq(gr_spawn(&h, deep_task, &child, NULL), 0);
    ck_assert_int_eq(gr_join(h), 0);
    ck_assert_uint_eq(child.sum, mine.sum);
    return 0;
}

START_TEST(deep_recursion_config_stack)
{
    int fds = gr_test_open_fds();
    gr_config cfg = {.workers = 2, .stack_size = (size_t)1 << 20};
    ck_assert_int_eq(gr_run(deep_default_main, NULL, &cfg), 0);
    ck_assert_int_eq(gr_test_open_fds(), fds);
}
END_TEST

static int custom_stack_main(void *arg)
{
    (void)arg;
    /* 256 KiB, ~200 KiB used; an odd size (rounded up), ~80 KiB used; the
     * minimum with a couple of frames */
    struct {
        size_t size;
        unsigned depth;
    } cases[] = {{(size_t)256 << 10, 190}, {100000, 75}, {GR_MIN_STACK_SIZE, 2}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct deep d = {.depth = cases[i].depth};
        gr_task *h;
        gr_spawn_opts opts = {.stack_size = cases[i].size};
        ck_assert_int_eq(gr_spawn(&h, deep_task, &d, &opts), 0);
        ck_assert_int_eq(gr_join(h), 0);
        ck_assert_uint_eq(d.sum, recurse_expected(cases[i].depth));
    }
    return 0;
}

START_TEST(custom_stack_size)
{
    gr_test_run_ok(custom_stack_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * 100,000 tasks parked at once
 * --------------------------------------------------------------------- */

#ifdef GR_VALGRIND
#include <valgrind/valgrind.h>
/* Under Valgrind 100,000 tasks take many minutes: fewer, same test. */
#define MANY_TASKS ((int)(RUNNING_ON_VALGRIND ? 10000 : 100000))
#else
#define MANY_TASKS 100000
#endif

struct many_ctx {
    int pipe[2];
    atomic_int parked;
    atomic_ullong byte_sum;
    atomic_int short_reads;
};

struct many_arg {
    struct many_ctx *c;
    int index;
};

static int parked_reader(void *arg)
{
    struct many_arg *a = arg;
    unsigned char b;
    atomic_fetch_add(&a->c->parked, 1);
    if (gr_read(a->c->pipe[0], &b, 1) != 1)
        atomic_fetch_add(&a->c->short_reads, 1);
    else
        atomic_fetch_add(&a->c->byte_sum, b);
    return a->index;
}

static unsigned char many_byte(int i)
{
    return (unsigned char)(i % 251 + 1);
}

static int many_main(void *arg)
{
    struct many_ctx *c = arg;
    const int n = MANY_TASKS;
    struct many_arg *args = calloc(n, sizeof(*args));
    gr_task **h = calloc(n, sizeof(*h));
    unsigned char *bytes = malloc(n);
    ck_assert(args && h && bytes);
    for (int i = 0; i < n; i++) {
        args[i] = (struct many_arg){.c = c, .index = i};
        ck_assert_int_eq(gr_spawn(&h[i], parked_reader, &args[i], NULL), 0);
    }
    /* Every task is parked in its read once it has counted itself. */
    while (atomic_load(&c->parked) < n)
        ck_assert_int_eq(gr_yield(), 0);
    uint64_t want = 0;
    for (int i = 0; i < n; i++) {
        bytes[i] = many_byte(i);
        want += bytes[i];
    }
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = gr_write(c->pipe[1], bytes + off, (size_t)n - off);
        ck_assert_msg(w > 0, "gr_write: %zd", w);
        off += (size_t)w;
    }
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(gr_join(h[i]), i);
    ck_assert_int_eq(atomic_load(&c->short_reads), 0);
    ck_assert_uint_eq(atomic_load(&c->byte_sum), want);
    free(args);
    free(h);
    free(bytes);
    return 0;
}

START_TEST(hundred_thousand_parked)
{
    struct many_ctx c;
    memset(&c, 0, sizeof(c));
    gr_test_pipe(c.pipe);
    gr_test_run_ok(many_main, &c, 2);
    /* every byte was consumed by exactly one reader */
    char b;
    ck_assert_int_eq(fcntl(c.pipe[0], F_SETFL, O_NONBLOCK), 0);
    ck_assert_int_eq(read(c.pipe[0], &b, 1), -1);
    ck_assert_int_eq(errno, EAGAIN);
    close(c.pipe[0]);
    close(c.pipe[1]);
}
END_TEST

/* ---------------------------------------------------------------------
 * Teardown: main returns while other tasks are parked
 * --------------------------------------------------------------------- */

#define TD_SLEEPERS 10
#define TD_READERS 10

struct teardown_ctx {
    int pipe[2];
    atomic_int parked;
    int sleep_rc[TD_SLEEPERS];
    int read_rc[TD_READERS];
    atomic_int late_spawn_rc;
    atomic_int late_sleep_rc;
};

struct td_arg {
    struct teardown_ctx *c;
    int i;
};

static int late_task(void *arg)
{
    struct teardown_ctx *c = arg;
    atomic_store(&c->late_sleep_rc, gr_sleep(INT64_MAX));
    return 0;
}

static int sleep_forever(void *arg)
{
    struct td_arg *a = arg;
    atomic_fetch_add(&a->c->parked, 1);
    a->c->sleep_rc[a->i] = gr_sleep(INT64_MAX);
    if (a->i == 0) /* spawn during teardown: the new task starts cancelled */
        atomic_store(&a->c->late_spawn_rc, gr_spawn(NULL, late_task, a->c, NULL));
    return 0;
}

static int read_forever(void *arg)
{
    struct td_arg *a = arg;
    char b;
    atomic_fetch_add(&a->c->parked, 1);
    a->c->read_rc[a->i] = (int)gr_read(a->c->pipe[0], &b, 1);
    return 0;
}

static int teardown_main(void *arg)
{
    struct teardown_ctx *c = arg;
    static struct td_arg sleepers[TD_SLEEPERS], readers[TD_READERS];
    for (int i = 0; i < TD_SLEEPERS; i++) {
        sleepers[i] = (struct td_arg){c, i};
        ck_assert_int_eq(gr_spawn(NULL, sleep_forever, &sleepers[i], NULL), 0);
    }
    for (int i = 0; i < TD_READERS; i++) {
        gr_task *h; /* joinable, never joined nor detached */
        readers[i] = (struct td_arg){c, i};
        ck_assert_int_eq(gr_spawn(&h, read_forever, &readers[i], NULL), 0);
    }
    while (atomic_load(&c->parked) < TD_SLEEPERS + TD_READERS)
        ck_assert_int_eq(gr_yield(), 0);
    return 7;
}

static void check_teardown(unsigned workers)
{
    struct teardown_ctx c;
    memset(&c, 0, sizeof(c));
    atomic_store(&c.late_spawn_rc, 1);
    atomic_store(&c.late_sleep_rc, 1);
    gr_test_pipe(c.pipe);
    int fds = gr_test_open_fds();
    ck_assert_int_eq(gr_test_run(teardown_main, &c, workers), 7);
    ck_assert_int_eq(gr_test_open_fds(), fds);
    for (int i = 0; i < TD_SLEEPERS; i++)
        ck_assert_int_eq(c.sleep_rc[i], -ECANCELED);
    for (int i = 0; i < TD_READERS; i++)
        ck_assert_int_eq(c.read_rc[i], -ECANCELED);
    ck_assert_int_eq(atomic_load(&c.late_spawn_rc), 0);
    ck_assert_int_eq(atomic_load(&c.late_sleep_rc), -ECANCELED);
    close(c.pipe[0]);
    close(c.pipe[1]);
}

START_TEST(teardown_one_worker)
{
    check_teardown(1);
}
END_TEST

START_TEST(teardown_three_workers)
{
    check_teardown(3);
}
END_TEST

/* ---------------------------------------------------------------------
 * Suite
 * --------------------------------------------------------------------- */

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("task");
    TCase *tc = tcase_create("spawn_join");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, spawn_join_results);
    tcase_add_test(tc, join_100_in_order);
    tcase_add_test(tc, run_returns_main_result);
    suite_add_tcase(s, tc);

    tc = tcase_create("names");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, name_default);
    tcase_add_test(tc, name_set_get);
    tcase_add_test(tc, name_truncation);
    tcase_add_test(tc, name_errors);
    tcase_add_test(tc, self_handle);
    tcase_add_test(tc, worker_index_in_range);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad_input");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, spawn_bad_input);
    tcase_add_test(tc, spawn_outside_run);
    tcase_add_test(tc, join_twice_is_stale);
    tcase_add_test(tc, join_twice_is_stale_two_workers);
    tcase_add_test(tc, handles_stale_across_runs);
    tcase_add_test(tc, detach_errors);
    tcase_add_test(tc, join_while_joined);
    tcase_add_test(tc, join_self);
    tcase_add_test(tc, blocking_outside_runtime);
    tcase_add_test(tc, blocking_from_foreign_thread);
    tcase_add_test(tc, run_bad_input);
    tcase_add_test(tc, run_inside_run);
    tcase_add_test(tc, run_in_sequence);
    suite_add_tcase(s, tc);

    tc = tcase_create("stacks");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, deep_recursion_1m_stack);
    tcase_add_test(tc, deep_recursion_config_stack);
    tcase_add_test(tc, custom_stack_size);
    tcase_add_test(tc, hundred_thousand_parked);
    suite_add_tcase(s, tc);

    tc = tcase_create("teardown");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, teardown_one_worker);
    tcase_add_test(tc, teardown_three_workers);
    suite_add_tcase(s, tc);
    return s;
}
