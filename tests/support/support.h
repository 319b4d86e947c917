/* Shared helpers of the greenring Check suites.
 *
 * Every tests/test_*.c defines gr_test_suite(); tests/support/main.c runs it.
 * Suites run in Check's fork mode (the default; CK_FORK=no is for debugging
 * only): a ck_assert that fails inside a task ends the forked test process
 * with _exit, which is what makes asserting on worker threads safe. In
 * no-fork mode a failing assertion inside a task would longjmp off the task's
 * stack. */
#ifndef GR_TESTS_SUPPORT_H
#define GR_TESTS_SUPPORT_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "greenring.h"

/* Defined by each suite file. */
Suite *gr_test_suite(void);

/* gr_run(fn, arg) with `workers` workers (0: online CPUs) and every other
 * config field at its default. Returns what gr_run returned. */
int gr_test_run(gr_task_fn fn, void *arg, unsigned workers);

/* gr_test_run that must succeed cleanly: asserts that gr_run returned 0 and
 * that the process has as many open fds afterwards as before. */
void gr_test_run_ok(gr_task_fn fn, void *arg, unsigned workers);

/* Number of open file descriptors of the process (/proc/self/fd, not
 * counting the one used to read it). */
int gr_test_open_fds(void);

/* pipe2(O_CLOEXEC), asserting success. */
void gr_test_pipe(int fds[2]);

/* Output of a function run in a child process with stderr captured. */
struct gr_test_child {
    int status;     /* as filled by waitpid */
    char err[4096]; /* what the child wrote to stderr, NUL-terminated */
    size_t err_len;
};

/* fork(); in the child, point stderr at a pipe, run fn(arg) and _exit with
 * its return value (fn may also die by a signal). The parent collects the
 * child's stderr until EOF and its exit status. */
void gr_test_run_child(int (*fn)(void *arg), void *arg, struct gr_test_child *out);

/* Capture this process's stderr (fd 2) into a pipe between begin and end.
 * For output smaller than a pipe buffer (64 KiB). end restores fd 2 and
 * returns the captured bytes, NUL-terminated, in buf. */
struct gr_test_stderr {
    int saved_fd;
    int pipe_rd;
};
void gr_test_stderr_begin(struct gr_test_stderr *cap);
size_t gr_test_stderr_end(struct gr_test_stderr *cap, char *buf, size_t size);

/* Deterministic pseudo-random numbers (xorshift64*), for test data. */
uint64_t gr_test_rand(uint64_t *state);

/* Fisher-Yates shuffle of an int array with gr_test_rand. */
void gr_test_shuffle(int *v, size_t n, uint64_t *state);

#endif
