/* Filesystem operations (aiofiles.os, aiofiles.ospath, shutil): path
 * operations through the ring; directory listing, readlink, realpath,
 * copy_file_range and rmtree on the offload pool (io_uring has no opcode
 * for them); sendfile and the copy fallback with IORING_OP_SPLICE. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/io_op.h"
#include "core/task.h"
#include "core/worker.h"
#include "greenring.h"
#include "io/file.h"
#include "io/uring_compat.h"
#include "offload/offload.h"

#define PIPE_SIZE (1u << 20)          /* F_SETPIPE_SZ for splice (the default limit) */
#define COPY_PIECE ((size_t)4 << 20)  /* copy_file_range call size between interrupt checks */
#define DENTS_BUF ((size_t)32 * 1024) /* getdents64 buffer */
#define TEMP_ATTEMPTS 100

/* ---------------------------------------------------------------------
 * io_uring opcode probe
 * --------------------------------------------------------------------- */

static _Atomic uint64_t op_bits[4];
static _Atomic uint64_t op_hidden[4]; /* tests: pretend an opcode is missing */
static _Atomic int ops_probed;

static void probe_ops(void)
{
    struct gr__worker *w = gr__worker_self();
    /* The worker's own ring (a register call); a throwaway ring elsewhere. */
    struct io_uring_probe *p = w ? io_uring_get_probe_ring(&w->ring) : io_uring_get_probe();
    for (int op = 0; p && op < 256; op++)
        if (io_uring_opcode_supported(p, op))
            /* relaxed: published by the release store of ops_probed. */
            atomic_fetch_or_explicit(&op_bits[op / 64], UINT64_C(1) << (op % 64),
                                     memory_order_relaxed);
    if (p)
        io_uring_free_probe(p);
    /* release: the bits above are visible to whoever sees ops_probed. */
    atomic_store_explicit(&ops_probed, 1, memory_order_release);
}

int gr__uring_has_op(int op)
{
    if (op < 0 || op > 255)
        return 0;
    /* acquire: pairs with the release store in probe_ops. */
    if (!atomic_load_explicit(&ops_probed, memory_order_acquire))
        probe_ops();
    uint64_t bit = UINT64_C(1) << (op % 64);
    /* relaxed: ordered by the acquire above; hidden is a test switch. */
    return (atomic_load_explicit(&op_bits[op / 64], memory_order_relaxed) & bit) &&
           !(atomic_load_explicit(&op_hidden[op / 64], memory_order_relaxed) & bit);
}

void gr__uring_pretend_missing(int op, int missing)
{
    if (op < 0 || op > 255)
        return;
    uint64_t bit = UINT64_C(1) << (op % 64);
    /* relaxed: a test switch set before the operations that read it. */
    if (missing)
        atomic_fetch_or_explicit(&op_hidden[op / 64], bit, memory_order_relaxed);
    else
        atomic_fetch_and_explicit(&op_hidden[op / 64], ~bit, memory_order_relaxed);
}

/* ---------------------------------------------------------------------
 * Ring operations on paths
 * --------------------------------------------------------------------- */

int gr__fs_openat(int dirfd, const char *path, int flags, unsigned mode)
{
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_openat(sqe, dirfd, path, flags, mode);
    return gr__io_wait(&io, sqe, "fs open");
}

int gr__fs_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st)
{
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_statx(sqe, dirfd, path, flags, mask, st);
    return gr__io_wait(&io, sqe, "fs statx");
}

static int unlinkat_op(const char *path, int flags)
{
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_unlinkat(sqe, AT_FDCWD, path, flags);
    return gr__io_wait(&io, sqe, "fs unlink");
}

int gr__fs_unlink_cleanup(const char *path)
{
    struct gr__task *self = gr__current_task();
    if (!self)
        return -EPERM;
    struct gr__io_op io;
    gr__wait_prepare(&io.wait, self);
    io.cancel_sent = 0;
    struct io_uring_sqe *sqe = gr__worker_sqe(gr__worker_self());
    io_uring_prep_unlinkat(sqe, AT_FDCWD, path, 0);
    return gr__io_wait_uninterruptible(&io, sqe, "fs unlink");
}

/* Close an fd this module opened: through the ring, not interruptible. */
static void close_fd(int fd)
{
    if (fd >= 0)
        gr_close(fd);
}

/* ---------------------------------------------------------------------
 * stat and friends
 * --------------------------------------------------------------------- */

int gr_fs_stat(const char *path, struct statx *st)
{
    if (!path || !st)
        return -EINVAL;
    return gr__fs_statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, st);
}

int gr_fs_lstat(const char *path, struct statx *st)
{
    if (!path || !st)
        return -EINVAL;
    return gr__fs_statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, st);
}

/* The file type bits (S_IFMT) of path, 0 if it does not exist, or an
 * error. */
static int file_type(const char *path)
{
    if (!path)
        return -EINVAL;
    struct statx st;
    int rc = gr__fs_statx(AT_FDCWD, path, 0, STATX_TYPE, &st);
    if (rc == -ENOENT || rc == -ENOTDIR)
        return 0;
    return rc < 0 ? rc : (int)(st.stx_mode & S_IFMT);
}

int gr_fs_exists(const char *path)
{
    int t = file_type(path);
    return t < 0 ? t : t != 0;
}

int gr_fs_is_file(const char *path)
{
    int t = file_type(path);
    return t < 0 ? t : t == S_IFREG;
}

int gr_fs_is_dir(const char *path)
{
    int t = file_type(path);
    return t < 0 ? t : t == S_IFDIR;
}

/* ---------------------------------------------------------------------
 * Names: rename, unlink, mkdir, rmdir, link, symlink
 * --------------------------------------------------------------------- */

int gr_fs_rename(const char *from, const char *to, unsigned flags)
{
    if (!from || !to)
        return -EINVAL;
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_renameat(sqe, AT_FDCWD, from, AT_FDCWD, to, flags);
    return gr__io_wait(&io, sqe, "fs rename");
}

int gr_fs_unlink(const char *path, int missing_ok)
{
    if (!path)
        return -EINVAL;
    int rc = unlinkat_op(path, 0);
    return rc == -ENOENT && missing_ok ? 0 : rc;
}

int gr_fs_rmdir(const char *path)
{
    if (!path)
        return -EINVAL;
    return unlinkat_op(path, AT_REMOVEDIR);
}

int gr_fs_mkdir(const char *path, unsigned mode)
{
    if (!path)
        return -EINVAL;
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_mkdirat(sqe, AT_FDCWD, path, mode);
    return gr__io_wait(&io, sqe, "fs mkdir");
}

/* mkdir of an existing directory counts as success. */
static int mkdir_exist_ok(const char *path, unsigned mode)
{
    int rc = gr_fs_mkdir(path, mode);
    if (rc != -EEXIST)
        return rc;
    int d = gr_fs_is_dir(path);
    return d < 0 ? d : d ? 0 : -EEXIST;
}

/* Create every missing ancestor of path (a writable copy), top down.
 * Intermediate directories get 0777 & ~umask, as Python's makedirs. */
static int make_parents(char *path)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') /* trailing slashes */
        path[--len] = '\0';
    for (char *p = path + 1; (p = strchr(p, '/')); p++) {
        if (p[-1] == '/')
            continue; /* "a//b" */
        *p = '\0';
        int rc = mkdir_exist_ok(path, 0777);
        *p = '/';
        if (rc < 0)
            return rc;
    }
    return 0;
}

int gr_fs_makedirs(const char *path, unsigned mode, int exist_ok)
{
    if (!path || !*path)
        return -EINVAL;
    int rc = gr_fs_mkdir(path, mode); /* usually only the leaf is missing */
    if (rc == -EEXIST) {
        int d = gr_fs_is_dir(path);
        return d < 0 ? d : exist_ok && d ? 0 : -EEXIST;
    }
    if (rc != -ENOENT)
        return rc;
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    rc = make_parents(copy);
    free(copy);
    if (rc < 0)
        return rc;
    rc = gr_fs_mkdir(path, mode);
    return rc == -EEXIST && exist_ok ? mkdir_exist_ok(path, mode) : rc;
}

int gr_fs_link(const char *target, const char *linkpath)
{
    if (!target || !linkpath)
        return -EINVAL;
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_linkat(sqe, AT_FDCWD, target, AT_FDCWD, linkpath, 0);
    return gr__io_wait(&io, sqe, "fs link");
}

int gr_fs_symlink(const char *target, const char *linkpath)
{
    if (!target || !linkpath)
        return -EINVAL;
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_symlinkat(sqe, target, AT_FDCWD, linkpath);
    return gr__io_wait(&io, sqe, "fs symlink");
}

/* ---------------------------------------------------------------------
 * readlink and realpath (offload pool)
 * --------------------------------------------------------------------- */

struct readlink_args {
    int dirfd;
    const char *path;
    char *buf;
    size_t size;
};

static long readlink_job(void *arg)
{
    struct readlink_args *a = arg;
    return gr__sys6(SYS_readlinkat, a->dirfd, (long)a->path, (long)a->buf, (long)a->size, 0,
                        0);
}

/* readlinkat into buf, NUL-terminated, -ENAMETOOLONG when it does not fit
 * with its NUL (a result of `size` bytes may have been cut). */
static ssize_t readlink_into(int dirfd, const char *path, char *buf, size_t size)
{
    struct readlink_args a = {.dirfd = dirfd, .path = path, .buf = buf, .size = size};
    long n = gr__offload_call(readlink_job, &a, GR_OFFLOAD_FINISH, "fs readlink");
    if (n < 0)
        return n;
    if ((size_t)n >= size)
        return -ENAMETOOLONG;
    buf[n] = '\0';
    return n;
}

ssize_t gr_fs_readlink(const char *path, char *buf, size_t size)
{
    if (!path || !buf || size == 0)
        return -EINVAL;
    return readlink_into(AT_FDCWD, path, buf, size);
}

/* Resolves by opening the path (O_PATH, through the ring) and reading what
 * /proc/self/fd/N points at: the kernel's own canonical name. */
ssize_t gr_fs_realpath(const char *path, char *buf, size_t size)
{
    if (!path || !buf || size == 0)
        return -EINVAL;
    int fd = gr__fs_openat(AT_FDCWD, path, O_PATH | O_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    char proc[40];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t n = readlink_into(AT_FDCWD, proc, buf, size);
    close_fd(fd);
    return n;
}

/* ---------------------------------------------------------------------
 * Directory listing (offload pool: io_uring has no getdents)
 * --------------------------------------------------------------------- */

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

struct scan_args {
    int fd;
    int names_only; /* listdir: char ** result; else gr_dirent */
    void *out;      /* the single allocation handed to the caller */
    long count;
};

static int is_dot(const char *n)
{
    return n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2]));
}

/* Reads the whole directory into a growing buffer of raw records. */
static long read_dents(int fd, char **raw, size_t *raw_len, size_t *n_entries, size_t *name_bytes)
{
    size_t cap = DENTS_BUF, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        if (cap - len < DENTS_BUF) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger)
                goto nomem;
            buf = bigger;
            cap *= 2;
        }
        if (gr__offload_interrupted()) {
            free(buf);
            return -ECANCELED;
        }
        long n = gr__sys(SYS_getdents64, fd, buf + len, cap - len);
        if (n < 0) {
            free(buf);
            return n;
        }
        if (n == 0)
            break;
        for (long off = 0; off < n;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + len + off);
            if (!is_dot(d->d_name)) {
                (*n_entries)++;
                *name_bytes += strlen(d->d_name) + 1;
            }
            off += d->d_reclen;
        }
        len += (size_t)n;
    }
    *raw = buf;
    *raw_len = len;
    return 0;
nomem:
    free(buf);
    return -ENOMEM;
}

/* One allocation: the array (NULL-terminated for names), then the names. */
static void *build_listing(const char *raw, size_t raw_len, size_t n, size_t name_bytes,
                           int names_only)
{
    size_t slot = names_only ? sizeof(char *) : sizeof(gr_dirent);
    char *block = malloc(slot * (n + 1) + name_bytes);
    if (!block)
        return NULL;
    char *names = block + slot * (n + 1);
    size_t i = 0;
    for (size_t off = 0; off < raw_len;) {
        const struct linux_dirent64 *d = (const struct linux_dirent64 *)(raw + off);
        off += d->d_reclen;
        if (is_dot(d->d_name))
            continue;
        size_t l = strlen(d->d_name) + 1;
        memcpy(names, d->d_name, l);
        if (names_only)
            ((char **)(void *)block)[i] = names;
        else
            ((gr_dirent *)(void *)block)[i] = (gr_dirent){names, d->d_ino, d->d_type};
        names += l;
        i++;
    }
    if (names_only)
        ((char **)(void *)block)[n] = NULL;
    else
        ((gr_dirent *)(void *)block)[n] = (gr_dirent){NULL, 0, 0};
    return block;
}

static long scan_job(void *arg)
{
    struct scan_args *a = arg;
    char *raw;
    size_t raw_len, n = 0, name_bytes = 0;
    long rc = read_dents(a->fd, &raw, &raw_len, &n, &name_bytes);
    if (rc < 0)
        return rc;
    a->out = build_listing(raw, raw_len, n, name_bytes, a->names_only);
    free(raw);
    a->count = (long)n;
    return a->out ? 0 : -ENOMEM;
}

static ssize_t scan(const char *path, void **out, int names_only)
{
    if (!path || !out)
        return -EINVAL;
    *out = NULL;
    int fd = gr__fs_openat(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    struct scan_args a = {.fd = fd, .names_only = names_only};
    long rc = gr__offload_call(scan_job, &a, GR_OFFLOAD_FINISH, "fs listdir");
    close_fd(fd);
    if (rc < 0)
        return rc;
    *out = a.out;
    return a.count;
}

ssize_t gr_fs_listdir(const char *path, char ***names)
{
    return scan(path, (void **)names, 1);
}

ssize_t gr_fs_scandir(const char *path, gr_dirent **entries)
{
    return scan(path, (void **)entries, 0);
}

/* ---------------------------------------------------------------------
 * splice through a pipe: sendfile, and the copy fallback
 * --------------------------------------------------------------------- */

static int splice_op(int in, int64_t in_off, int out, int64_t out_off, unsigned len)
{
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_splice(sqe, in, in_off, out, out_off, len, 0);
    return gr__io_wait(&io, sqe, "fs splice");
}

/* Wait until a non-blocking fd can take more (a splice into an O_NONBLOCK
 * socket completes with -EAGAIN instead of waiting). */
static int wait_writable(int fd)
{
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_poll_add(sqe, fd, POLLOUT);
    rc = gr__io_wait(&io, sqe, "fs splice wait");
    return rc < 0 ? rc : 0;
}

struct pipe_pair {
    int rd, wr;
};

static int pipe_open(struct pipe_pair *p)
{
    int fds[2] = {-1, -1}; /* written by the kernel */
    long rc = gr__sys(SYS_pipe2, fds, O_CLOEXEC, 0);
    if (rc < 0)
        return (int)rc;
    p->rd = fds[0];
    p->wr = fds[1];
    /* A larger pipe means fewer round trips; the limit may refuse it. */
    gr__sys(SYS_fcntl, p->wr, F_SETPIPE_SZ, PIPE_SIZE);
    return 0;
}

/* Closing a pipe never blocks: done directly. */
static void pipe_close(struct pipe_pair *p)
{
    gr__sys(SYS_close, p->rd, 0, 0);
    gr__sys(SYS_close, p->wr, 0, 0);
}

/* Move len bytes from the pipe to out (at *out_off unless -1). Returns the
 * bytes that reached out, or the error if none did. */
static ssize_t drain_pipe(struct pipe_pair *p, int out, int64_t *out_off, size_t len)
{
    size_t done = 0;
    while (done < len) {
        int n = splice_op(p->rd, -1, out, out_off ? *out_off : -1, (unsigned)(len - done));
        if (n == -EAGAIN && (n = wait_writable(out)) == 0)
            continue;
        if (n <= 0)
            return done ? (ssize_t)done : (n ? n : -EIO);
        done += (size_t)n;
        if (out_off)
            *out_off += n;
    }
    return (ssize_t)done;
}

/* in (at in_off) -> pipe -> out (at *out_off, or its own position when
 * out_off is NULL), count bytes or up to EOF when count is 0. Returns the
 * bytes that reached out; *err is what stopped it early (0: EOF or done). */
static size_t splice_copy(int in, int64_t in_off, int out, int64_t *out_off, size_t count, int *err)
{
    struct pipe_pair p = {-1, -1};
    if ((*err = pipe_open(&p)) < 0)
        return 0;
    size_t sent = 0;
    while (count == 0 || sent < count) {
        size_t want = count ? count - sent : PIPE_SIZE;
        unsigned chunk = want > PIPE_SIZE ? PIPE_SIZE : (unsigned)want;
        int n = splice_op(in, in_off + (int64_t)sent, p.wr, -1, chunk);
        if (n <= 0) {
            *err = n;
            break;
        }
        ssize_t m = drain_pipe(&p, out, out_off, (size_t)n);
        if (m > 0)
            sent += (size_t)m;
        if (m != n) {
            *err = m < 0 ? (int)m : -EIO;
            break;
        }
    }
    pipe_close(&p);
    return sent;
}

ssize_t gr_sendfile(int out_fd, int in_fd, off_t offset, size_t count)
{
    if (out_fd < 0 || in_fd < 0)
        return -EBADF;
    if (offset < 0)
        return -EINVAL;
    int err;
    size_t sent = splice_copy(in_fd, offset, out_fd, NULL, count, &err);
    return sent ? (ssize_t)sent : err;
}

/* ---------------------------------------------------------------------
 * copyfile: copy_file_range on the pool, splice as the fallback
 * --------------------------------------------------------------------- */

struct copy_args {
    int in, out;
    int64_t size; /* bytes known to be there (statx); copies go on to EOF */
    int64_t done;
};

static long copy_job(void *arg)
{
    struct copy_args *a = arg;
    for (;;) {
        if (gr__offload_interrupted())
            return -ECANCELED;
        int64_t in_off = a->done, out_off = a->done;
        long n = gr__sys6(SYS_copy_file_range, a->in, (long)&in_off, a->out, (long)&out_off,
                              (long)COPY_PIECE, 0);
        if (n < 0)
            return n;
        if (n == 0)
            return 0;
        a->done += n;
    }
}

/* copy_file_range cannot do it (other file system on old kernels, special
 * files, a file system without support): splice instead. */
static int copy_unsupported(long rc, const struct copy_args *a)
{
    if (a->done != 0)
        return 0;
    return rc == -EXDEV || rc == -EINVAL || rc == -EOPNOTSUPP || rc == -ENOSYS ||
           (rc == 0 && a->size > 0); /* procfs-like files report 0 */
}

static off_t copy_fds(int in, int out, int64_t size)
{
    struct copy_args a = {.in = in, .out = out, .size = size};
    long rc = gr__offload_call(copy_job, &a, GR_OFFLOAD_FINISH, "fs copy_file_range");
    if (copy_unsupported(rc, &a)) {
        int64_t out_off = 0;
        int err;
        size_t n = splice_copy(in, 0, out, &out_off, 0, &err);
        return err < 0 ? err : (off_t)n;
    }
    /* An interrupted or failed copy is an error, whatever was copied (dst
     * then holds a prefix, as with shutil). */
    return rc < 0 ? rc : a.done;
}

off_t gr_fs_copyfile(const char *src, const char *dst)
{
    if (!src || !dst)
        return -EINVAL;
    int in = gr__fs_openat(AT_FDCWD, src, O_RDONLY | O_CLOEXEC, 0);
    if (in < 0)
        return in;
    struct statx st;
    off_t rc = gr__fs_statx(in, "", AT_EMPTY_PATH, STATX_MODE | STATX_SIZE, &st);
    if (rc < 0)
        goto out_in;
    if (S_ISDIR(st.stx_mode)) {
        rc = -EISDIR;
        goto out_in;
    }
    int out = gr__fs_openat(AT_FDCWD, dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                            st.stx_mode & 07777);
    if (out < 0) {
        rc = out;
        goto out_in;
    }
    rc = copy_fds(in, out, (int64_t)st.stx_size);
    close_fd(out);
out_in:
    close_fd(in);
    return rc;
}

/* ---------------------------------------------------------------------
 * Temporary names and directories
 * --------------------------------------------------------------------- */

const char *gr__fs_tmpdir(const char *dir)
{
    if (dir && *dir)
        return dir;
    const char *env = getenv("TMPDIR");
    return env && *env ? env : "/tmp";
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

void gr__fs_random_chars(char out[6])
{
    static const char set[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static _Atomic uint64_t counter;
    uint64_t r = 0;
    /* getrandom never blocks for 8 bytes once the pool is initialised;
     * GRND_NONBLOCK makes sure, and a clock mix is the fallback. */
    if (gr__sys(SYS_getrandom, &r, sizeof r, 0x0001 /* GRND_NONBLOCK */) != (long)sizeof r)
        /* relaxed: only uniqueness between callers matters. */
        r = splitmix64((uint64_t)gr_now() ^
                       atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed) << 40);
    for (int i = 0; i < 6; i++, r /= 62)
        out[i] = set[r % 62];
}

/* <dir>/<prefix>XXXXXX into buf: -ENAMETOOLONG if it does not fit. */
static int temp_name(char *buf, size_t size, const char *dir, const char *prefix)
{
    char rnd[7];
    gr__fs_random_chars(rnd);
    rnd[6] = '\0';
    int n = snprintf(buf, size, "%s/%s%s", gr__fs_tmpdir(dir), prefix ? prefix : "tmp", rnd);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int gr__fs_temp_name(char *buf, size_t size, const char *dir, const char *prefix)
{
    return temp_name(buf, size, dir, prefix);
}

int gr_fs_mkdtemp(char *path, size_t size, const char *dir, const char *prefix)
{
    if (!path || size == 0)
        return -EINVAL;
    int rc = -EEXIST;
    for (int i = 0; i < TEMP_ATTEMPTS && rc == -EEXIST; i++) {
        if ((rc = temp_name(path, size, dir, prefix)) < 0)
            return rc;
        rc = gr_fs_mkdir(path, 0700);
    }
    return rc;
}

/* ---------------------------------------------------------------------
 * rmtree (offload pool, not interruptible)
 * --------------------------------------------------------------------- */

static long remove_entry(int dirfd, const char *name, unsigned char type);

/* Unlink every entry of the open directory fd; the first error. */
static long empty_dir(int fd)
{
    char *raw;
    size_t raw_len, n = 0, name_bytes = 0;
    long rc = read_dents(fd, &raw, &raw_len, &n, &name_bytes);
    if (rc < 0)
        return rc;
    long first = 0;
    for (size_t off = 0; off < raw_len;) {
        const struct linux_dirent64 *d = (const struct linux_dirent64 *)(raw + off);
        off += d->d_reclen;
        if (is_dot(d->d_name))
            continue;
        rc = remove_entry(fd, d->d_name, d->d_type);
        if (rc < 0 && rc != -ENOENT && !first)
            first = rc;
    }
    free(raw);
    return first;
}

static long remove_dir(int dirfd, const char *name)
{
    long fd = gr__sys6(SYS_openat, dirfd, (long)name,
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0);
    if (fd < 0)
        return fd == -ELOOP ? -ENOTDIR : fd;
    long rc = empty_dir((int)fd);
    gr__sys(SYS_close, fd, 0, 0);
    long rm = gr__sys(SYS_unlinkat, dirfd, name, AT_REMOVEDIR);
    return rc < 0 ? rc : rm;
}

static long remove_entry(int dirfd, const char *name, unsigned char type)
{
    if (type != DT_DIR) {
        long rc = gr__sys(SYS_unlinkat, dirfd, name, 0);
        if (rc != -EISDIR) /* DT_UNKNOWN file systems: try it as a file first */
            return rc;
    }
    return remove_dir(dirfd, name);
}

static long rmtree_job(void *arg)
{
    return remove_dir(AT_FDCWD, arg);
}

int gr_fs_rmtree(const char *path)
{
    if (!path || !*path)
        return -EINVAL;
    return (int)gr__offload_call(rmtree_job, (void *)path, GR_OFFLOAD_NO_INTERRUPT,
                                 "fs rmtree");
}
