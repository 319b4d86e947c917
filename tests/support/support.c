#include "support/support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

int gr_test_run(gr_task_fn fn, void *arg, unsigned workers)
{
    gr_config cfg = {.workers = workers};
    return gr_run(fn, arg, &cfg);
}

void gr_test_run_ok(gr_task_fn fn, void *arg, unsigned workers)
{
    int fds_before = gr_test_open_fds();
    int rc = gr_test_run(fn, arg, workers);
    ck_assert_msg(rc == 0, "gr_run returned %d (%s), expected 0", rc, strerror(rc < 0 ? -rc : 0));
    ck_assert_int_eq(gr_test_open_fds(), fds_before);
}

int gr_test_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_msg(d != NULL, "opendir(/proc/self/fd): %s", strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

void gr_test_pipe(int fds[2])
{
    ck_assert_msg(pipe2(fds, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
}

/* Reads fd until EOF into buf (at most size - 1 bytes kept, the rest is
 * drained so the writer never blocks). Returns the number kept. */
static size_t read_all(int fd, char *buf, size_t size)
{
    size_t len = 0;
    for (;;) {
        char chunk[1024];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t keep = (size_t)n;
        if (keep > size - 1 - len)
            keep = size - 1 - len;
        memcpy(buf + len, chunk, keep);
        len += keep;
    }
    buf[len] = '\0';
    return len;
}

void gr_test_run_child(int (*fn)(void *arg), void *arg, struct gr_test_child *out)
{
    int p[2];
    gr_test_pipe(p);
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        if (dup2(p[1], STDERR_FILENO) < 0)
            _exit(125);
        close(p[1]);
        _exit(fn(arg));
    }
    close(p[1]);
    out->err_len = read_all(p[0], out->err, sizeof(out->err));
    close(p[0]);
    pid_t r;
    while ((r = waitpid(pid, &out->status, 0)) < 0 && errno == EINTR)
        ;
    ck_assert_msg(r == pid, "waitpid: %s", strerror(errno));
}

void gr_test_stderr_begin(struct gr_test_stderr *cap)
{
    int p[2];
    gr_test_pipe(p);
    fflush(stderr);
    cap->saved_fd = dup(STDERR_FILENO);
    ck_assert_msg(cap->saved_fd >= 0, "dup: %s", strerror(errno));
    ck_assert_msg(dup2(p[1], STDERR_FILENO) == STDERR_FILENO, "dup2: %s", strerror(errno));
    close(p[1]);
    cap->pipe_rd = p[0];
}

size_t gr_test_stderr_end(struct gr_test_stderr *cap, char *buf, size_t size)
{
    fflush(stderr);
    /* Restoring fd 2 drops the last reference to the pipe's write end, so
     * the read below ends at EOF. */
    ck_assert_msg(dup2(cap->saved_fd, STDERR_FILENO) == STDERR_FILENO, "dup2: %s",
                  strerror(errno));
    close(cap->saved_fd);
    size_t len = read_all(cap->pipe_rd, buf, size);
    close(cap->pipe_rd);
    return len;
}

uint64_t gr_test_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void gr_test_shuffle(int *v, size_t n, uint64_t *state)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(gr_test_rand(state) % i);
        int tmp = v[i - 1];
        v[i - 1] = v[j];
        v[j] = tmp;
    }
}

unsigned char *gr_test_random_bytes(size_t n, uint64_t seed)
{
    unsigned char *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    uint64_t st = seed;
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)gr_test_rand(&st);
    return p;
}

void gr_test_close_pipe(int fds[2])
{
    ck_assert_int_eq(close(fds[0]), 0);
    ck_assert_int_eq(close(fds[1]), 0);
}

int gr_test_pipe_pending(int fd)
{
    int n = -1;
    ck_assert_int_eq(ioctl(fd, FIONREAD, &n), 0);
    return n;
}

int gr_test_fill_pipe(int wfd)
{
    int fl = fcntl(wfd, F_GETFL);
    ck_assert_int_ge(fl, 0);
    ck_assert_int_eq(fcntl(wfd, F_SETFL, fl | O_NONBLOCK), 0);
    char buf[4096];
    memset(buf, 'f', sizeof(buf));
    int total = 0;
    for (;;) {
        ssize_t n = write(wfd, buf, sizeof(buf));
        if (n < 0) {
            ck_assert_int_eq(errno, EAGAIN);
            break;
        }
        total += (int)n;
    }
    ck_assert_int_eq(fcntl(wfd, F_SETFL, fl), 0);
    return total;
}
