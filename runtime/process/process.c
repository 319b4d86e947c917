/* Subprocesses (asyncio.create_subprocess_exec).
 *
 * The child is started with posix_spawnp (glibc uses CLONE_VFORK: the
 * worker is held only until the child has exec'd or failed, and a failed
 * exec is reported as its errno with no half-made process left). The
 * parent keeps a pidfd; waiting is IORING_OP_WAITID on that pidfd (Linux
 * 6.7+), or a poll of the pidfd followed by a non-blocking waitid on older
 * kernels. Pipes are exposed as greenring streams. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/io_op.h"
#include "core/syscall.h"
#include "core/task.h"
#include "greenring.h"
#include "io/uring_compat.h"

extern char **environ;

struct gr_process {
    pid_t pid;
    int pidfd;
    int reaped;
    gr_exit_status status;
    gr_stream *in, *out, *err;
};

/* 1 once the kernel said it has no IORING_OP_WAITID: poll + waitid. */
static _Atomic int waitid_unsupported;


/* ---------------------------------------------------------------------
 * Spawning
 * --------------------------------------------------------------------- */

struct child_fds {
    int parent[3]; /* our end of a pipe per stream, or -1 */
    int child[3];  /* what the child gets as fd 0/1/2, or -1 to inherit */
    int owned[3];  /* 1 if child[i] is ours to close after the spawn */
};

static void close_fds(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

static int prepare_stdio(const gr_stdio *io, int target, struct child_fds *c)
{
    c->parent[target] = c->child[target] = -1;
    c->owned[target] = 0;
    int p[2];
    switch (io->mode) {
    case GR_STDIO_INHERIT:
        return 0;
    case GR_STDIO_FD:
        if (io->fd < 0)
            return -EBADF;
        c->child[target] = io->fd;
        return 0;
    case GR_STDIO_DEVNULL: {
        long fd = gr__sys(SYS_openat, AT_FDCWD, "/dev/null",
                          (target == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
        if (fd < 0)
            return (int)fd;
        c->child[target] = (int)fd;
        c->owned[target] = 1;
        return 0;
    }
    case GR_STDIO_PIPE: {
        long rc = gr__sys(SYS_pipe2, p, O_CLOEXEC);
        if (rc < 0)
            return (int)rc;
        c->parent[target] = target == 0 ? p[1] : p[0];
        c->child[target] = target == 0 ? p[0] : p[1];
        c->owned[target] = 1;
        return 0;
    }
    }
    return -EINVAL;
}

static void close_child_ends(struct child_fds *c)
{
    for (int i = 0; i < 3; i++)
        if (c->owned[i] && c->child[i] >= 0)
            close(c->child[i]);
}

/* The child starts with no blocked signals (the workers block the managed
 * ones) and SIGPIPE and SIGXFSZ back at their default, as Python's
 * restore_signals does: the runtime ignores SIGPIPE. Handled signals are
 * reset by exec itself; resetting all 62 dispositions here doubled the cost
 * of a spawn (measured). */
static int spawn_attrs(posix_spawnattr_t *attr)
{
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGXFSZ);
    int rc = posix_spawnattr_init(attr);
    if (rc)
        return -rc;
    posix_spawnattr_setsigmask(attr, &none);
    posix_spawnattr_setsigdefault(attr, &defaults);
    posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    return 0;
}

static int file_actions(posix_spawn_file_actions_t *fa, const struct child_fds *c,
                        const char *cwd)
{
    int rc = posix_spawn_file_actions_init(fa);
    for (int i = 0; rc == 0 && i < 3; i++)
        if (c->child[i] >= 0)
            rc = posix_spawn_file_actions_adddup2(fa, c->child[i], i);
    if (rc == 0 && cwd)
        rc = posix_spawn_file_actions_addchdir_np(fa, cwd);
    return -rc;
}

static int wrap_streams(gr_process *p, struct child_fds *c)
{
    gr_stream **slot[3] = {&p->in, &p->out, &p->err};
    for (int i = 0; i < 3; i++) {
        if (c->parent[i] < 0)
            continue;
        int fd = c->parent[i];
        c->parent[i] = -1; /* the stream owns it, also on failure */
        int rc = gr_stream_open(slot[i], fd, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int start_child(gr_process *p, const char *file, char *const argv[],
                       const gr_process_opts *opts, struct child_fds *c)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = spawn_attrs(&attr);
    if (rc < 0)
        return rc;
    rc = file_actions(&fa, c, opts->cwd);
    if (rc == 0)
        rc = -posix_spawnp(&p->pid, file, &fa, &attr, argv, opts->env ? opts->env : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return rc;
}

static void release(gr_process *p)
{
    gr_stream *streams[3] = {p->in, p->out, p->err};
    for (int i = 0; i < 3; i++)
        if (streams[i])
            gr_stream_abort(streams[i]);
    if (p->pidfd >= 0)
        close(p->pidfd);
    free(p);
}

int gr_process_spawn(gr_process **out, const char *file, char *const argv[],
                     const gr_process_opts *opts)
{
    if (!out || !file || !argv || !argv[0])
        return -EINVAL;
    *out = NULL;
    if (!gr__current_task())
        return -EPERM;
    gr_process_opts defaults = {0};
    opts = opts ? opts : &defaults;
    gr_process *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->pidfd = -1;
    struct child_fds c;
    const gr_stdio *io[3] = {&opts->std_in, &opts->std_out, &opts->std_err};
    int rc = 0;
    for (int i = 0; i < 3; i++)
        if (rc == 0)
            rc = prepare_stdio(io[i], i, &c);
        else
            c.parent[i] = c.child[i] = -1, c.owned[i] = 0;
    if (rc == 0)
        rc = start_child(p, file, argv, opts, &c);
    close_child_ends(&c);
    if (rc < 0)
        goto fail;
    long pidfd = gr__sys(SYS_pidfd_open, p->pid, 0);
    if (pidfd < 0) {
        /* Our own unreaped child: only fd exhaustion gets here. Do not
         * leave it running unwatched. */
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        rc = (int)pidfd;
        goto fail;
    }
    p->pidfd = (int)pidfd;
    if ((rc = wrap_streams(p, &c)) < 0) {
        gr_process_destroy(p);
        close_fds(c.parent, 3);
        return rc;
    }
    *out = p;
    return 0;
fail:
    close_fds(c.parent, 3);
    release(p);
    return rc;
}

gr_stream *gr_process_stdin(gr_process *p)
{
    return p ? p->in : NULL;
}

gr_stream *gr_process_stdout(gr_process *p)
{
    return p ? p->out : NULL;
}

gr_stream *gr_process_stderr(gr_process *p)
{
    return p ? p->err : NULL;
}

gr_stream *gr_process_take_stream(gr_process *p, int which)
{
    gr_stream **slot = !p ? NULL : which == 0 ? &p->in : which == 1 ? &p->out : which == 2 ? &p->err : NULL;
    if (!slot)
        return NULL;
    gr_stream *s = *slot;
    *slot = NULL;
    return s;
}

pid_t gr_process_pid(gr_process *p)
{
    return p ? p->pid : -EINVAL;
}

/* ---------------------------------------------------------------------
 * Waiting and signals
 * --------------------------------------------------------------------- */

static void decode(const siginfo_t *si, gr_exit_status *st)
{
    if (si->si_code == CLD_EXITED) {
        st->code = si->si_status;
        st->signal = 0;
    } else {
        st->code = -1;
        st->signal = si->si_status;
    }
}

static int wait_waitid(gr_process *p, siginfo_t *si)
{
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_rw(GR_IORING_OP_WAITID, sqe, p->pidfd, NULL, P_PIDFD, 0);
    sqe->file_index = WEXITED;
    sqe->addr2 = (uint64_t)(uintptr_t)si;
    return gr__io_wait(&io, sqe, "process wait");
}

static int wait_poll(gr_process *p, siginfo_t *si)
{
    for (;;) {
        memset(si, 0, sizeof(*si));
        if (waitid(P_PIDFD, (id_t)p->pidfd, si, WEXITED | WNOHANG) < 0)
            return -ECHILD;
        if (si->si_pid != 0)
            return 0;
        struct gr__io_op io;
        int rc;
        struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
        if (!sqe)
            return rc;
        io_uring_prep_poll_add(sqe, p->pidfd, POLLIN);
        rc = gr__io_wait(&io, sqe, "process wait");
        if (rc < 0)
            return rc;
    }
}

int gr_process_wait(gr_process *p, gr_exit_status *status)
{
    if (!p)
        return -EINVAL;
    if (!p->reaped) {
        siginfo_t si = {0};
        /* relaxed: a capability flag; racing tasks at worst both try. */
        int rc = atomic_load_explicit(&waitid_unsupported, memory_order_relaxed)
                     ? -EINVAL
                     : wait_waitid(p, &si);
        if (rc == -EINVAL) {
            atomic_store_explicit(&waitid_unsupported, 1, memory_order_relaxed);
            rc = wait_poll(p, &si);
        }
        if (rc < 0)
            return rc;
        decode(&si, &p->status);
        p->reaped = 1;
    }
    if (status)
        *status = p->status;
    return 0;
}

int gr_process_signal(gr_process *p, int sig)
{
    if (!p || sig < 0 || sig >= 65)
        return -EINVAL;
    if (p->reaped)
        return -ESRCH;
    /* pidfd_send_signal: never hits a recycled pid. */
    long rc = gr__sys(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0);
    return rc < 0 ? (int)rc : 0;
}

int gr_process_terminate(gr_process *p)
{
    return gr_process_signal(p, SIGTERM);
}

int gr_process_kill(gr_process *p)
{
    return gr_process_signal(p, SIGKILL);
}

int gr_process_destroy(gr_process *p)
{
    if (!p)
        return -EINVAL;
    int rc = 0;
    if (!p->reaped) {
        /* No zombies: a child still running is killed and reaped, shielded
         * so that the caller's cancellation cannot leave it behind. */
        gr_process_kill(p);
        gr_scope shield;
        gr_scope_enter_shield(&shield);
        rc = gr_process_wait(p, NULL);
        gr_scope_leave(&shield);
    }
    release(p);
    return rc;
}

/* ---------------------------------------------------------------------
 * communicate
 * --------------------------------------------------------------------- */

struct collector {
    gr_stream *s;
    gr_output *out;
};

static int collect(void *arg)
{
    struct collector *c = arg;
    size_t cap = 0;
    for (;;) {
        if (c->out->len + 65536 > cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *data = realloc(c->out->data, ncap);
            if (!data)
                return -ENOMEM;
            c->out->data = data;
            cap = ncap;
        }
        ssize_t n = gr_stream_read(c->s, c->out->data + c->out->len, cap - c->out->len);
        if (n <= 0)
            return (int)n;
        c->out->len += (size_t)n;
    }
}

struct feeder {
    gr_process *p;
    const void *input;
    size_t len;
};

static int feed(void *arg)
{
    struct feeder *f = arg;
    gr_stream *in = gr_process_take_stream(f->p, 0);
    int rc = f->len ? gr_stream_write(in, f->input, f->len) : 0;
    int closed = gr_stream_close(in);
    rc = rc ? rc : closed;
    /* A child that exits without reading all its input is not an error
     * (asyncio ignores BrokenPipeError here too). */
    return rc == -EPIPE || rc == -ECONNRESET ? 0 : rc;
}

int gr_process_communicate(gr_process *p, const void *input, size_t len, gr_output *out,
                           gr_output *err, gr_exit_status *status, int kill_on_interrupt)
{
    if (!p || (len && !input) || (len && !p->in))
        return -EINVAL;
    if (out)
        *out = (gr_output){0};
    if (err)
        *err = (gr_output){0};
    gr_group *g;
    int rc = gr_group_create(&g);
    if (rc < 0)
        return rc;
    struct feeder feeder = {p, input, len};
    struct collector outc = {p->out, out}, errc = {p->err, err};
    if (p->in)
        rc = gr_group_spawn(g, feed, &feeder, &(gr_spawn_opts){.name = "stdin-feeder"});
    if (rc == 0 && p->out && out)
        rc = gr_group_spawn(g, collect, &outc, &(gr_spawn_opts){.name = "stdout-reader"});
    if (rc == 0 && p->err && err)
        rc = gr_group_spawn(g, collect, &errc, &(gr_spawn_opts){.name = "stderr-reader"});
    if (rc < 0)
        gr_group_cancel(g);
    int grc = gr_group_wait(g);
    gr_group_destroy(g);
    rc = rc < 0 ? rc : grc;
    if (rc == 0)
        return gr_process_wait(p, status);
    if ((rc == -ECANCELED || rc == -ETIMEDOUT) && kill_on_interrupt) {
        gr_process_kill(p);
        gr_scope shield;
        gr_scope_enter_shield(&shield);
        gr_process_wait(p, status);
        gr_scope_leave(&shield);
    }
    return rc;
}
