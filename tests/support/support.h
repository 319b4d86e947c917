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

/* Filled with gr_test_rand from `seed`: n bytes (at least 1 allocated), malloc'ed. */
unsigned char *gr_test_random_bytes(size_t n, uint64_t seed);

/* ---- Pipes (support.c) ---- */

/* close() both ends of a pipe, asserting success. */
void gr_test_close_pipe(int fds[2]);

/* Bytes waiting in a pipe (FIONREAD), asserting success. */
int gr_test_pipe_pending(int fd);

/* Fills a pipe's buffer completely through the (temporarily non-blocking) write end; returns the bytes written. */
int gr_test_fill_pipe(int wfd);

/* ---- Tasks (tasks.c) ---- */

/* gr_spawn of fn(arg) with default options, asserting success. */
gr_task *gr_test_spawn(gr_task_fn fn, void *arg);

/* gr_spawn of fn(arg) as a task called `name`, asserting success. */
gr_task *gr_test_spawn_named(gr_task_fn fn, void *arg, const char *name);

/* Task fn: gr_sleep(INT64_MAX); then adds 1 to the _Atomic int arg (if not NULL) and returns the sleep's result. */
int gr_test_sleep_forever(void *cleanup);

/* Task fn: returns (int)(intptr_t)arg. */
int gr_test_return_arg(void *arg);

/* Asserts only main's stack and task remain (gr_stats), yielding a bounded number of times for stacks still being released. */
void gr_test_assert_only_main_stack(void);

/* ---- Parked tasks, through gr_tasks_foreach (parking.c) ---- */

/* Number of tasks called `name` parked on `reason` (NULL: on anything); asserts gr_tasks_foreach saw a task. */
int gr_test_count_parked(const char *name, const char *reason);

/* Whether a task called `name` is parked on `reason` (NULL: on anything). */
int gr_test_is_parked(const char *name, const char *reason);

/* Yields until a task called `name` is parked on `reason` (NULL: on anything). */
void gr_test_wait_parked(const char *name, const char *reason);

/* Yields until `count` tasks called `name` are parked on `reason` (NULL: on anything). */
void gr_test_wait_parked_n(const char *name, const char *reason, int count);

/* ---- A temporary directory per test (tempdir.c) ---- */

/* The current test directory's path (set by gr_test_tmpdir_make). */
extern char gr_test_tmpdir[64];

/* mkdtemp from `template` (ending in XXXXXX, under 64 bytes) into gr_test_tmpdir, asserting success. */
void gr_test_tmpdir_make(const char *template);

/* Removes gr_test_tmpdir and everything below it (nftw, errors ignored). */
void gr_test_tmpdir_remove(void);

/* gr_test_tmpdir "/" name in one of 8 rotating static buffers (for one thread at a time). */
const char *gr_test_path(const char *name);

/* gr_test_tmpdir "/" name written into buf (for concurrent tasks); returns buf. */
const char *gr_test_path_in(char *buf, size_t size, const char *name);

/* Creates or truncates `path` (mode 0644) with plain libc and writes len bytes of data, asserting success. */
void gr_test_write_file(const char *path, const void *data, size_t len);

#endif
