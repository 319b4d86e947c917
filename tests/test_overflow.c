/* Stack overflow: a task that runs off its stack hits the guard region and
 * the process aborts with a one-line report naming the task and its stack
 * size. Each case runs gr_run in a child process of its own (fork below,
 * whatever Check's fork mode is) and inspects how the child died. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"

#define NOINLINE __attribute__((noinline))

/* Recurses until the stack runs out. The volatile array per frame keeps the
 * compiler from turning this into a loop. */
static NOINLINE unsigned recurse_forever(unsigned depth)
{
    volatile char frame[256];
    if (depth == 0xffffffffu)
        return 0; /* never: keeps -Winfinite-recursion quiet */
    frame[0] = (char)depth;
    frame[255] = (char)(depth >> 8);
    return recurse_forever(depth + 1) + (unsigned)frame[0] + (unsigned)frame[255];
}

static int overflow_task(void *arg)
{
    (void)arg;
    return (int)recurse_forever(0);
}

struct overflow_case {
    const char *name;  /* task name, NULL for none */
    size_t stack_size; /* 0: the config default */
    size_t cfg_stack;  /* gr_config.stack_size */
    unsigned workers;
    int name_pipe[2];  /* the child reports the task's name here */
};

/* Runs in the child: main spawns the overflowing task and joins it (the
 * join never returns). Before that, main sends the task's name as
 * gr_task_name reports it through name_pipe. */
static int overflow_main(void *arg)
{
    struct overflow_case *oc = arg;
    gr_task *h;
    gr_spawn_opts opts = {.name = oc->name, .stack_size = oc->stack_size};
    if (gr_spawn(&h, overflow_task, NULL, &opts) != 0)
        return 101;
    char name[GR_TASK_NAME_MAX];
    int len = gr_task_name(h, name, sizeof(name));
    if (len <= 0 || write(oc->name_pipe[1], name, (size_t)len) != len)
        return 102;
    close(oc->name_pipe[1]);
    gr_join(h);
    return 103; /* not reached */
}

static int overflow_child(void *arg)
{
    struct overflow_case *oc = arg;
    close(oc->name_pipe[0]);
    gr_config cfg = {.workers = oc->workers, .stack_size = oc->cfg_stack};
    int rc = gr_run(overflow_main, oc, &cfg);
    fprintf(stderr, "gr_run returned %d\n", rc);
    return 100;
}

/* Runs the case; returns the task name the child reported; checks the
 * death and the report. */
static void check_overflow(struct overflow_case *oc, size_t expect_size, char *name,
                           size_t name_size)
{
    gr_test_pipe(oc->name_pipe);
    struct gr_test_child child;
    gr_test_run_child(overflow_child, oc, &child);
    close(oc->name_pipe[1]);
    ssize_t n = read(oc->name_pipe[0], name, name_size - 1);
    close(oc->name_pipe[0]);
    name[n > 0 ? n : 0] = '\0';
    ck_assert_msg(n > 0, "the child did not report the task name; stderr: %s", child.err);

    ck_assert_msg(WIFSIGNALED(child.status),
                  "the child was not killed by a signal (exit status %d); stderr: %s",
                  WIFEXITED(child.status) ? WEXITSTATUS(child.status) : -1, child.err);
    ck_assert_msg(WTERMSIG(child.status) == SIGABRT,
                  "the child died of signal %d (%s), expected SIGABRT; stderr: %s",
                  WTERMSIG(child.status), strsignal(WTERMSIG(child.status)), child.err);
    char want[160];
    snprintf(want, sizeof(want), "greenring: task %s overflowed its %zu-byte stack\n", name,
             expect_size);
    ck_assert_str_eq(child.err, want);
}

START_TEST(overflow_named_task)
{
    struct overflow_case oc = {.name = "deep", .stack_size = 64 * 1024, .workers = 1};
    char name[64];
    check_overflow(&oc, 65536, name, sizeof(name));
    ck_assert_str_eq(name, "deep");
}
END_TEST

START_TEST(overflow_unnamed_task)
{
    struct overflow_case oc = {.name = NULL, .stack_size = 0, .workers = 2};
    char name[64];
    check_overflow(&oc, GR_DEFAULT_STACK_SIZE, name, sizeof(name));
    unsigned long long id;
    char tail;
    ck_assert_msg(sscanf(name, "task-%llu%c", &id, &tail) == 1, "unnamed task called '%s'", name);
}
END_TEST

/* A non-default stack size is the one reported. */
START_TEST(overflow_custom_sizes)
{
    struct overflow_case oc = {.name = "small", .stack_size = 32 * 1024, .workers = 1};
    char name[64];
    check_overflow(&oc, 32768, name, sizeof(name));
    ck_assert_str_eq(name, "small");

    struct overflow_case big = {.name = "from-config", .cfg_stack = 256 * 1024, .workers = 1};
    check_overflow(&big, 262144, name, sizeof(name));
    ck_assert_str_eq(name, "from-config");
}
END_TEST

/* A segmentation fault that is not a stack overflow is not reported as
 * one: the process dies of SIGSEGV and stderr stays empty. */
static int null_deref_task(void *arg)
{
    volatile int *volatile p = arg;
    return *p;
}

static int segv_main(void *arg)
{
    (void)arg;
    gr_task *h;
    if (gr_spawn(&h, null_deref_task, NULL, NULL) != 0)
        return 101;
    gr_join(h);
    return 103;
}

static int segv_child(void *arg)
{
    (void)arg;
    gr_config cfg = {.workers = 1};
    int rc = gr_run(segv_main, NULL, &cfg);
    fprintf(stderr, "gr_run returned %d\n", rc);
    return 100;
}

START_TEST(other_segv_is_not_an_overflow)
{
    struct gr_test_child child;
    gr_test_run_child(segv_child, NULL, &child);
    ck_assert_msg(WIFSIGNALED(child.status) && WTERMSIG(child.status) == SIGSEGV,
                  "status %#x; stderr: %s", child.status, child.err);
    ck_assert_str_eq(child.err, "");
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("overflow");
    TCase *tc = tcase_create("death");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, overflow_named_task);
    tcase_add_test(tc, overflow_unnamed_task);
    tcase_add_test(tc, overflow_custom_sizes);
    tcase_add_test(tc, other_segv_is_not_an_overflow);
    suite_add_tcase(s, tc);
    return s;
}
