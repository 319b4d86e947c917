/* The start-up probe: when io_uring is unavailable gr_run fails with -ENOSYS
 * or -EPERM, runs nothing, leaks nothing, and says on stderr why and what to
 * do. Two ways to get there: GREENRING_PRETEND_NO_IO_URING, and a seccomp
 * filter that refuses io_uring_setup (what Docker's default profile does),
 * installed in a child process of its own. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"

static int mark_ran(void *arg)
{
    *(int *)arg = 1;
    return 0;
}

static void assert_explains(const char *err)
{
    ck_assert_msg(strstr(err, "io_uring is unavailable") != NULL,
                  "stderr does not say that io_uring is unavailable: \"%s\"", err);
    ck_assert_msg(strstr(err, "io_uring_disabled") != NULL,
                  "stderr has no hint about kernel.io_uring_disabled: \"%s\"", err);
}

START_TEST(pretend_no_io_uring)
{
    int ran = 0;
    int fds = gr_test_open_fds();
    ck_assert_int_eq(setenv("GREENRING_PRETEND_NO_IO_URING", "1", 1), 0);
    struct gr_test_stderr cap;
    gr_test_stderr_begin(&cap);
    gr_config cfg = {.workers = 2};
    int rc = gr_run(mark_ran, &ran, &cfg);
    char err[4096];
    gr_test_stderr_end(&cap, err, sizeof(err));
    ck_assert_int_eq(rc, -ENOSYS);
    ck_assert_int_eq(ran, 0);
    assert_explains(err);
    ck_assert_int_eq(gr_test_open_fds(), fds);

    /* and gr_run works again once io_uring is back */
    ck_assert_int_eq(unsetenv("GREENRING_PRETEND_NO_IO_URING"), 0);
    gr_test_stderr_begin(&cap);
    rc = gr_run(mark_ran, &ran, &cfg);
    gr_test_stderr_end(&cap, err, sizeof(err));
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(ran, 1);
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(gr_test_open_fds(), fds);
}
END_TEST

/* Twice in a row: the failed start leaves nothing behind that the second
 * one trips on (-EBUSY, say). */
START_TEST(pretend_no_io_uring_twice)
{
    int ran = 0;
    ck_assert_int_eq(setenv("GREENRING_PRETEND_NO_IO_URING", "1", 1), 0);
    struct gr_test_stderr cap;
    char err[4096];
    for (int i = 0; i < 2; i++) {
        gr_test_stderr_begin(&cap);
        int rc = gr_run(mark_ran, &ran, NULL);
        gr_test_stderr_end(&cap, err, sizeof(err));
        ck_assert_int_eq(rc, -ENOSYS);
        assert_explains(err);
    }
    ck_assert_int_eq(ran, 0);
    ck_assert_int_eq(unsetenv("GREENRING_PRETEND_NO_IO_URING"), 0);
}
END_TEST

/* ---------------------------------------------------------------------
 * seccomp: io_uring_setup fails with a chosen errno
 * --------------------------------------------------------------------- */

#if defined(__x86_64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_AARCH64
#endif

#ifdef AUDIT_ARCH_NATIVE
static int deny_io_uring_setup(int err)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_NATIVE, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
        return -errno;
    return 0;
}

/* Child: exit status 0 when gr_run failed with -err and ran nothing; the
 * message goes to the captured stderr. */
static int seccomp_child(void *arg)
{
    int err = (int)(intptr_t)arg;
    if (deny_io_uring_setup(err) != 0)
        return 10;
    int ran = 0;
    gr_config cfg = {.workers = 2};
    int rc = gr_run(mark_ran, &ran, &cfg);
    if (ran)
        return 11;
    if (rc != -err) {
        fprintf(stderr, "\ngr_run returned %d, expected %d\n", rc, -err);
        return 12;
    }
    return 0;
}

static void check_seccomp(int err)
{
    struct gr_test_child child;
    gr_test_run_child(seccomp_child, (void *)(intptr_t)err, &child);
    ck_assert_msg(WIFEXITED(child.status) && WEXITSTATUS(child.status) == 0,
                  "child status %#x (10: seccomp refused, 11: main ran, 12: wrong result); "
                  "stderr: %s",
                  child.status, child.err);
    assert_explains(child.err);
    ck_assert_msg(strstr(child.err, strerror(err)) != NULL,
                  "stderr does not name the error (%s): \"%s\"", strerror(err), child.err);
}

START_TEST(seccomp_eperm)
{
    check_seccomp(EPERM);
}
END_TEST

START_TEST(seccomp_enosys)
{
    check_seccomp(ENOSYS);
}
END_TEST
#endif

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("probe");
    TCase *tc = tcase_create("unavailable");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, pretend_no_io_uring);
    tcase_add_test(tc, pretend_no_io_uring_twice);
#ifdef AUDIT_ARCH_NATIVE
    tcase_add_test(tc, seccomp_eperm);
    tcase_add_test(tc, seccomp_enosys);
#endif
    suite_add_tcase(s, tc);
    return s;
}
