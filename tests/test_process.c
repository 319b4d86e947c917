/* greenring-test: asan */
/* greenring-test: tsan */
/* Subprocesses: spawn, wait, signals, pipes as streams, communicate,
 * cancellation, and no zombies or fd leaks. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"

static gr_process_opts piped(void)
{
    return (gr_process_opts){.std_in = {GR_STDIO_PIPE, -1},
                             .std_out = {GR_STDIO_PIPE, -1},
                             .std_err = {GR_STDIO_PIPE, -1}};
}

/* No child of ours is left: not running, not a zombie. */
static void assert_no_children(void)
{
    siginfo_t si = {0};
    int rc = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT);
    ck_assert_msg(rc < 0 && errno == ECHILD, "a child process is left behind");
}

/* ------------------------------------------------------------------ */

static int exit_codes_main(void *arg)
{
    (void)arg;
    gr_process *p;
    gr_exit_status st;
    char *t[] = {"true", NULL};
    ck_assert_int_eq(gr_process_spawn(&p, "true", t, NULL), 0);
    ck_assert_int_gt(gr_process_pid(p), 0);
    ck_assert_int_eq(gr_process_wait(p, &st), 0);
    ck_assert_int_eq(st.code, 0);
    ck_assert_int_eq(st.signal, 0);
    /* waiting again reports the same status */
    st = (gr_exit_status){99, 99};
    ck_assert_int_eq(gr_process_wait(p, &st), 0);
    ck_assert_int_eq(st.code, 0);
    ck_assert_int_eq(gr_process_signal(p, SIGTERM), -ESRCH);
    ck_assert_int_eq(gr_process_destroy(p), 0);

    for (int code = 1; code < 256; code += 37) {
        char script[32];
        snprintf(script, sizeof(script), "exit %d", code);
        char *sh[] = {"sh", "-c", script, NULL};
        ck_assert_int_eq(gr_process_spawn(&p, "sh", sh, NULL), 0);
        ck_assert_int_eq(gr_process_wait(p, &st), 0);
        ck_assert_int_eq(st.code, code);
        ck_assert_int_eq(st.signal, 0);
        gr_process_destroy(p);
    }
    char *self_kill[] = {"sh", "-c", "kill -USR1 $$; sleep 5", NULL};
    ck_assert_int_eq(gr_process_spawn(&p, "sh", self_kill, NULL), 0);
    ck_assert_int_eq(gr_process_wait(p, &st), 0);
    ck_assert_int_eq(st.code, -1);
    ck_assert_int_eq(st.signal, SIGUSR1);
    gr_process_destroy(p);
    assert_no_children();
    return 0;
}

START_TEST(exit_codes_and_signals)
{
    gr_test_run_ok(exit_codes_main, NULL, 2);
}
END_TEST

/* ------------------------------------------------------------------ */

static int bad_input_main(void *arg)
{
    (void)arg;
    gr_process *p = (gr_process *)1;
    char *missing[] = {"/nonexistent/greenring-prog", NULL};
    ck_assert_int_eq(gr_process_spawn(&p, missing[0], missing, NULL), -ENOENT);
    ck_assert_ptr_null(p);
    char *nopath[] = {"greenring-no-such-program", NULL};
    ck_assert_int_eq(gr_process_spawn(&p, nopath[0], nopath, NULL), -ENOENT);
    char *empty[] = {NULL};
    ck_assert_int_eq(gr_process_spawn(&p, "true", empty, NULL), -EINVAL);
    ck_assert_int_eq(gr_process_spawn(&p, NULL, empty, NULL), -EINVAL);
    ck_assert_int_eq(gr_process_wait(NULL, NULL), -EINVAL);
    ck_assert_int_eq(gr_process_destroy(NULL), -EINVAL);
    gr_process_opts bad_fd = {.std_out = {GR_STDIO_FD, -1}};
    char *t[] = {"true", NULL};
    ck_assert_int_eq(gr_process_spawn(&p, "true", t, &bad_fd), -EBADF);
    assert_no_children();
    return 0;
}

START_TEST(bad_input)
{
    gr_test_run_ok(bad_input_main, NULL, 1);
    gr_process *p;
    char *t[] = {"true", NULL};
    ck_assert_int_eq(gr_process_spawn(&p, "true", t, NULL), -EPERM);
}
END_TEST

/* ------------------------------------------------------------------ */

#define BIG ((size_t)24 << 20)

static unsigned char *pattern(size_t n)
{
    unsigned char *buf = malloc(n);
    ck_assert_ptr_nonnull(buf);
    uint64_t rng = 42;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = gr_test_rand(&rng);
        memcpy(buf + i, &r, n - i < 8 ? n - i : 8);
    }
    return buf;
}

static int cat_roundtrip_main(void *arg)
{
    (void)arg;
    unsigned char *in = pattern(BIG);
    gr_process *p;
    gr_process_opts o = piped();
    char *cat[] = {"cat", NULL};
    ck_assert_int_eq(gr_process_spawn(&p, "cat", cat, &o), 0);
    ck_assert_ptr_nonnull(gr_process_stdin(p));
    gr_output out, err;
    gr_exit_status st;
    ck_assert_int_eq(gr_process_communicate(p, in, BIG, &out, &err, &st, 0), 0);
    ck_assert_uint_eq(out.len, BIG);
    ck_assert_int_eq(memcmp(out.data, in, BIG), 0);
    ck_assert_uint_eq(err.len, 0);
    ck_assert_int_eq(st.code, 0);
    free(out.data);
    free(err.data);
    gr_process_destroy(p);
    free(in);
    return 0;
}

START_TEST(cat_roundtrip_large)
{
    gr_test_run_ok(cat_roundtrip_main, NULL, 2);
}
END_TEST

static int both_outputs_main(void *arg)
{
    (void)arg;
    /* 8 MiB on stdout and 8 MiB on stderr, written interleaved: a reader
     * that drained one before the other would deadlock the child. */
    char *sh[] = {"sh", "-c",
                  "i=0; while [ $i -lt 128 ]; do head -c 65536 /dev/zero; "
                  "head -c 65536 /dev/zero | tr '\\0' x >&2; i=$((i+1)); done",
                  NULL};
    gr_process *p;
    gr_process_opts o = piped();
    ck_assert_int_eq(gr_process_spawn(&p, "sh", sh, &o), 0);
    gr_output out, err;
    gr_exit_status st;
    ck_assert_int_eq(gr_process_communicate(p, NULL, 0, &out, &err, &st, 0), 0);
    ck_assert_uint_eq(out.len, (size_t)8 << 20);
    ck_assert_uint_eq(err.len, (size_t)8 << 20);
    for (size_t i = 0; i < out.len; i += 4099)
        ck_assert_int_eq(out.data[i], 0);
    for (size_t i = 0; i < err.len; i += 4099)
        ck_assert_int_eq(err.data[i], 'x');
    ck_assert_int_eq(st.code, 0);
    free(out.data);
    free(err.data);
    gr_process_destroy(p);
    return 0;
}

START_TEST(communicate_both_outputs_large)
{
    gr_test_run_ok(both_outputs_main, NULL, 2);
}
END_TEST

static int streams_main(void *arg)
{
    (void)arg;
    gr_process *p;
    gr_process_opts o = piped();
    char *sh[] = {"sh", "-c", "read line; echo \"got $line\"; echo oops >&2", NULL};
    ck_assert_int_eq(gr_process_spawn(&p, "sh", sh, &o), 0);
    ck_assert_int_eq(gr_stream_write(gr_process_stdin(p), "hello\n", 6), 0);
    ck_assert_int_eq(gr_stream_flush(gr_process_stdin(p)), 0);
    char line[64];
    ck_assert_int_eq(gr_stream_readline(gr_process_stdout(p), line, sizeof(line)), 10);
    ck_assert_int_eq(memcmp(line, "got hello\n", 10), 0);
    ck_assert_int_eq(gr_stream_readline(gr_process_stderr(p), line, sizeof(line)), 5);
    ck_assert_int_eq(memcmp(line, "oops\n", 5), 0);
    gr_exit_status st;
    ck_assert_int_eq(gr_process_wait(p, &st), 0);
    ck_assert_int_eq(st.code, 0);
    ck_assert_int_eq(gr_process_destroy(p), 0);
    return 0;
}

START_TEST(pipes_are_streams)
{
    gr_test_run_ok(streams_main, NULL, 2);
}
END_TEST

static int early_close_main(void *arg)
{
    (void)arg;
    /* The child exits without reading: writing to its stdin must give
     * EPIPE (and communicate ignores it), never kill us with SIGPIPE. */
    gr_process *p;
    gr_process_opts o = piped();
    char *t[] = {"true", NULL};
    ck_assert_int_eq(gr_process_spawn(&p, "true", t, &o), 0);
    gr_exit_status st;
    ck_assert_int_eq(gr_process_wait(p, &st), 0);
    gr_stream *in = gr_process_stdin(p);
    static char chunk[1 << 16];
    int rc = 0;
    for (int i = 0; i < 64 && rc == 0; i++) {
        rc = gr_stream_write(in, chunk, sizeof(chunk));
        if (rc == 0)
            rc = gr_stream_flush(in);
    }
    ck_assert_int_eq(rc, -EPIPE);
    gr_process_destroy(p);

    ck_assert_int_eq(gr_process_spawn(&p, "true", t, &o), 0);
    unsigned char *in_data = pattern((size_t)4 << 20);
    gr_output out, err;
    ck_assert_int_eq(gr_process_communicate(p, in_data, (size_t)4 << 20, &out, &err, &st, 0), 0);
    ck_assert_uint_eq(out.len, 0);
    free(out.data);
    free(err.data);
    free(in_data);
    gr_process_destroy(p);
    return 0;
}

START_TEST(child_closes_pipes_early)
{
    gr_test_run_ok(early_close_main, NULL, 2);
}
END_TEST

/* ------------------------------------------------------------------ */

struct waiter_ctx {
    gr_process *p;
    int rc;
};

static int wait_task(void *arg)
{
    struct waiter_ctx *c = arg;
    c->rc = gr_process_wait(c->p, NULL);
    return c->rc;
}

static int cancel_wait_main(void *arg)
{
    (void)arg;
    gr_process *p;
    char *sl[] = {"sleep", "1000", NULL};
    ck_assert_int_eq(gr_process_spawn(&p, "sleep", sl, NULL), 0);
    struct waiter_ctx c = {.p = p};
    gr_task *t;
    ck_assert_int_eq(gr_spawn(&t, wait_task, &c, NULL), 0);
    ck_assert_int_eq(gr_yield(), 0);
    ck_assert_int_eq(gr_cancel(t), 0);
    ck_assert_int_eq(gr_join(t), -ECANCELED);
    /* still running: terminate it and wait */
    ck_assert_int_eq(gr_process_terminate(p), 0);
    gr_exit_status st;
    ck_assert_int_eq(gr_process_wait(p, &st), 0);
    ck_assert_int_eq(st.signal, SIGTERM);
    gr_process_destroy(p);

    /* destroy without waiting kills and reaps */
    ck_assert_int_eq(gr_process_spawn(&p, "sleep", sl, NULL), 0);
    ck_assert_int_eq(gr_process_destroy(p), 0);

    /* a child ignoring SIGTERM is killed after a deadline */
    char *stubborn[] = {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done", NULL};
    gr_process_opts o = piped();
    ck_assert_int_eq(gr_process_spawn(&p, "sh", stubborn, &o), 0);
    char line[16];
    ck_assert_int_eq(gr_stream_readline(gr_process_stdout(p), line, sizeof(line)), 6);
    ck_assert_int_eq(gr_process_terminate(p), 0);
    gr_scope scope;
    gr_scope_enter_timeout(&scope, 50 * 1000000);
    gr_output out, err;
    ck_assert_int_eq(gr_process_communicate(p, NULL, 0, &out, &err, &st, 1), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&scope), 1);
    ck_assert_int_eq(st.signal, SIGKILL);
    free(out.data);
    free(err.data);
    gr_process_destroy(p);
    assert_no_children();
    return 0;
}

START_TEST(cancel_and_kill)
{
    gr_test_run_ok(cancel_wait_main, NULL, 2);
}
END_TEST

/* ------------------------------------------------------------------ */

#define CHILDREN 200

static int short_child(void *arg)
{
    int n = (int)(intptr_t)arg;
    char script[32];
    snprintf(script, sizeof(script), "exit %d", n % 100);
    char *sh[] = {"sh", "-c", script, NULL};
    gr_process *p;
    gr_process_opts o = {.std_out = {GR_STDIO_PIPE, -1}, .std_in = {GR_STDIO_DEVNULL, -1}};
    int rc = gr_process_spawn(&p, "sh", sh, &o);
    if (rc < 0)
        return rc;
    gr_exit_status st;
    rc = gr_process_communicate(p, NULL, 0, NULL, NULL, &st, 1);
    gr_process_destroy(p);
    return rc < 0 ? rc : st.code;
}

static int many_children_main(void *arg)
{
    (void)arg;
    gr_task *tasks[CHILDREN];
    for (int i = 0; i < CHILDREN; i++)
        ck_assert_int_eq(gr_spawn(&tasks[i], short_child, (void *)(intptr_t)i, NULL), 0);
    for (int i = 0; i < CHILDREN; i++)
        ck_assert_int_eq(gr_join(tasks[i]), i % 100);
    assert_no_children();
    return 0;
}

START_TEST(many_short_lived_children)
{
    gr_test_run_ok(many_children_main, NULL, 2);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("process");
    TCase *tc = tcase_create("process");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, exit_codes_and_signals);
    tcase_add_test(tc, bad_input);
    tcase_add_test(tc, cat_roundtrip_large);
    tcase_add_test(tc, communicate_both_outputs_large);
    tcase_add_test(tc, pipes_are_streams);
    tcase_add_test(tc, child_closes_pipes_early);
    tcase_add_test(tc, cancel_and_kill);
    tcase_add_test(tc, many_short_lived_children);
    suite_add_tcase(s, tc);
    return s;
}
