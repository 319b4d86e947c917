/* The file object (aiofiles.open): positional I/O through the ring, an
 * optional per-file buffer, speculative page-cache reads, fixed files, and
 * a per-file lock that parks.
 *
 * Positions: the file keeps its own position and does positional I/O, so
 * no kernel file offset is shared between tasks. Append mode is the one
 * exception: its stream writes use offset -1 (O_APPEND puts them at the
 * end, atomically with other appenders), and the position is then the
 * kernel's, read back with lseek(SEEK_CUR) when needed.
 *
 * The buffer is either a read cache of [buf_off, buf_off + buf_len) or
 * pending writes for that range, never both. A read cache is keyed by file
 * offset, so seeks within it cost nothing. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "core/attrs.h"
#include "core/io_op.h"
#include "core/runtime.h"
#include "core/spinlock.h"
#include "core/task.h"
#include "core/wait.h"
#include "core/worker.h"
#include "greenring.h"
#include "io/file.h"
#include "io/uring_compat.h"
#include "offload/offload.h"

#define MAX_IO_LEN 0x7ffff000u /* io_uring lengths are 32-bit; Linux caps I/O here */
#define SPEC_BUDGET 64u        /* immediate reads before a task yields */
#define SPEC_MISS_LIMIT 4      /* this many would-block attempts in a row ... */
#define SPEC_SKIP 32           /* ... and this many reads skip the attempt */
#define FIXED_TABLE_SIZE 1024u /* sparse fixed-file table per worker ring */
#define LINE_CHUNK ((size_t)256)
#define LINE_CHUNK_MAX ((size_t)64 * 1024)
#define READ_ALL_MIN ((size_t)64 * 1024)
#define DIO_ALIGN ((size_t)4096)
#define TEMP_ATTEMPTS 100

enum buf_mode { BUF_EMPTY, BUF_READ, BUF_WRITE };
/* Where the position is: in `pos`, in the kernel's file offset (after an
 * append), or at the end of the file (append mode, just opened). */
enum pos_state { POS_KNOWN, POS_KERNEL, POS_END };

#define F_READ 1u
#define F_WRITE 2u
#define F_APPEND 4u
#define F_DIRECT 8u
#define F_BUFFERED 16u

struct gr__file;

/* A task waiting for the file lock; on its stack. */
struct lock_waiter {
    struct gr__wait wait;
    struct lock_waiter *next;
    struct gr__file *file;
    int queued; /* still on the list (under lock_spin) */
};

struct gr__file {
    int fd;
    unsigned bits;
    int64_t pos;
    enum pos_state pos_state;
    char *buf; /* allocated on first use */
    size_t buf_size;
    enum buf_mode buf_mode;
    int64_t buf_off;
    size_t buf_len;
    int fixed_index;       /* slot in fixed_worker's ring, or -1 */
    unsigned fixed_worker;
    /* Speculation state, shared by lock-free preads: relaxed atomics, as a
     * lost update only changes when the next attempt is made. */
    _Atomic int spec_off;
    _Atomic int spec_misses;
    _Atomic int spec_skip;
    gr__spinlock lock_spin;
    int lock_held;
    struct lock_waiter *lock_head, *lock_tail;
    char *path; /* named temporary file: removed by close */
};

static void ignore_interrupt(struct gr__wait *w, int reason)
{
    (void)w;
    (void)reason;
}

static struct gr__file *impl(const gr_file *f)
{
    return f ? f->impl_ : NULL;
}

/* ---------------------------------------------------------------------
 * The file lock: FIFO, hands the lock to the next waiter
 * --------------------------------------------------------------------- */

static void unlink_waiter(struct gr__file *fi, struct lock_waiter *lw)
{
    struct lock_waiter **pp = &fi->lock_head, *prev = NULL;
    while (*pp != lw) {
        prev = *pp;
        pp = &prev->next;
    }
    *pp = lw->next;
    if (fi->lock_tail == lw)
        fi->lock_tail = prev;
    lw->queued = 0;
}

/* Runs on the waiter's worker: withdraws it unless the lock was already
 * handed to it (then the unlocker's wake is on its way). */
static void lock_interrupt(struct gr__wait *w, int reason)
{
    struct lock_waiter *lw = GR_CONTAINER_OF(w, struct lock_waiter, wait);
    struct gr__file *fi = lw->file;
    gr__spin_lock(&fi->lock_spin);
    int won = lw->queued;
    if (won)
        unlink_waiter(fi, lw);
    gr__spin_unlock(&fi->lock_spin);
    if (won)
        gr__wake(w, reason);
}

/* Called with lock_spin held; releases it. */
static int lock_wait(struct gr__file *fi, struct gr__task *self, int interruptible)
{
    struct lock_waiter lw = {.file = fi, .queued = 1};
    gr__wait_prepare(&lw.wait, self);
    if (fi->lock_tail)
        fi->lock_tail->next = &lw;
    else
        fi->lock_head = &lw;
    fi->lock_tail = &lw;
    gr__spin_unlock(&fi->lock_spin);
    return gr__park(&lw.wait, "file lock", interruptible ? lock_interrupt : ignore_interrupt,
                    GR_NO_DEADLINE);
}

/* 0 with the lock held, -EBADF if the file was closed while waiting, or
 * the entry check's error. Not interruptible: only -EPERM. */
static int file_lock(struct gr__file *fi, int interruptible)
{
    struct gr__task *self;
    int rc = gr__blocking_check(&self);
    if (rc == -EPERM || (rc < 0 && interruptible))
        return rc;
    gr__spin_lock(&fi->lock_spin);
    if (!fi->lock_held) {
        fi->lock_held = 1;
        gr__spin_unlock(&fi->lock_spin);
        return 0;
    }
    return lock_wait(fi, self, interruptible);
}

static void file_unlock(struct gr__file *fi)
{
    gr__spin_lock(&fi->lock_spin);
    struct lock_waiter *lw = fi->lock_head;
    if (lw) {
        fi->lock_head = lw->next;
        if (!fi->lock_head)
            fi->lock_tail = NULL;
        lw->queued = 0;
    } else {
        fi->lock_held = 0;
    }
    gr__spin_unlock(&fi->lock_spin);
    if (lw)
        gr__wake(&lw->wait, 0); /* the lock passes to it */
}

/* Close: every waiter gets -EBADF (before the file is freed). */
static void lock_fail_waiters(struct gr__file *fi)
{
    gr__spin_lock(&fi->lock_spin);
    struct lock_waiter *lw = fi->lock_head;
    fi->lock_head = fi->lock_tail = NULL;
    for (struct lock_waiter *p = lw; p; p = p->next)
        p->queued = 0;
    gr__spin_unlock(&fi->lock_spin);
    while (lw) {
        struct lock_waiter *next = lw->next; /* lw is gone once woken */
        gr__wake(&lw->wait, -EBADF);
        lw = next;
    }
}

/* The open file behind f, with the access `need`, locked. */
static int enter(gr_file *f, unsigned need, struct gr__file **out)
{
    struct gr__file *fi = impl(f);
    if (!fi || (fi->bits & need) != need)
        return -EBADF;
    int rc = file_lock(fi, 1);
    if (rc < 0)
        return rc;
    *out = fi;
    return 0;
}

/* ---------------------------------------------------------------------
 * Ring operations on the file
 * --------------------------------------------------------------------- */

static unsigned clamp_len(size_t len)
{
    return len > MAX_IO_LEN ? MAX_IO_LEN : (unsigned)len;
}

/* Use the fixed slot when the SQE goes to the ring that has it. */
static void set_file(const struct gr__file *fi, struct io_uring_sqe *sqe)
{
    if (fi->fixed_index < 0 || gr__worker_self()->index != fi->fixed_worker)
        return;
    sqe->fd = fi->fixed_index;
    sqe->flags |= IOSQE_FIXED_FILE;
}

/* READ/WRITE (len bytes) or READV/WRITEV (len iovecs) at off (-1: the
 * kernel's file offset). */
static ssize_t ring_rw(const struct gr__file *fi, int op, const void *addr, size_t len, int64_t off,
                       const char *reason)
{
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_rw(op, sqe, fi->fd, addr, clamp_len(len), (uint64_t)off);
    set_file(fi, sqe);
    return gr__io_wait(&io, sqe, reason);
}

/* FSYNC, FALLOCATE, FADVISE, FTRUNCATE: prepared by the caller's prep. */
struct ring_args {
    int op;
    unsigned flags;
    int mode;
    uint64_t off, len;
};

static void prep_misc(const struct gr__file *fi, struct io_uring_sqe *sqe,
                      const struct ring_args *a)
{
    switch (a->op) {
    case IORING_OP_FSYNC:
        io_uring_prep_fsync(sqe, fi->fd, a->flags);
        break;
    case IORING_OP_FALLOCATE:
        io_uring_prep_fallocate(sqe, fi->fd, a->mode, (off_t)a->off, (off_t)a->len);
        break;
    case IORING_OP_FADVISE:
        gr__prep_fadvise(sqe, fi->fd, a->off, a->len, a->mode);
        break;
    default: /* GR_IORING_OP_FTRUNCATE */
        gr__prep_ftruncate(sqe, fi->fd, a->len);
        break;
    }
    set_file(fi, sqe);
}

static int ring_misc(const struct gr__file *fi, const struct ring_args *a, const char *reason)
{
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    prep_misc(fi, sqe, a);
    return gr__io_wait(&io, sqe, reason);
}

static int statx_fd(const struct gr__file *fi, unsigned mask, struct statx *st)
{
    return gr__fs_statx(fi->fd, "", AT_EMPTY_PATH, mask, st);
}

/* ---------------------------------------------------------------------
 * Speculative reads: preadv2(RWF_NOWAIT) on the worker, the ring only
 * when the data is not in the page cache
 * --------------------------------------------------------------------- */

struct spec_budget {
    uint64_t switches; /* the worker's switch count when last charged */
    unsigned used;
};

static __thread struct spec_budget spec_tls;

/* Not inlined, as gr__worker_self: a task may resume on another thread. */
static GR_NOINLINE struct spec_budget *spec_budget_self(void)
{
    __asm__ volatile("" ::: "memory");
    return &spec_tls;
}

/* Charges an immediate read to the running task; it yields once it has
 * had SPEC_BUDGET in a row (DESIGN.md "Fairness"). The worker's switch
 * count moving since the last charge means the task was switched out in
 * between, so the budget starts over. */
static void spec_charge(void)
{
    struct gr__worker *w = gr__worker_self();
    /* relaxed: written by this same thread (the worker's own counter). */
    uint64_t sw = atomic_load_explicit(&w->switches, memory_order_relaxed);
    struct spec_budget *b = spec_budget_self();
    if (b->switches != sw) {
        b->switches = sw;
        b->used = 0;
    }
    if (++b->used < SPEC_BUDGET)
        return;
    b->used = 0;
    gr_yield();
}

/* After SPEC_MISS_LIMIT would-block results in a row (cold data), skip the
 * attempt for the next SPEC_SKIP reads: a miss costs a system call. */
static void spec_missed(struct gr__file *fi)
{
    /* relaxed (all spec_* accesses): heuristics, see struct gr__file. */
    if (atomic_fetch_add_explicit(&fi->spec_misses, 1, memory_order_relaxed) + 1 <
        SPEC_MISS_LIMIT)
        return;
    atomic_store_explicit(&fi->spec_misses, 0, memory_order_relaxed);
    atomic_store_explicit(&fi->spec_skip, SPEC_SKIP, memory_order_relaxed);
}

/* The bytes preadv2(RWF_NOWAIT) got, -EAGAIN when it would block (or is
 * not tried), or a real error. */
static ssize_t spec_read(struct gr__file *fi, void *buf, size_t len, int64_t off)
{
    /* relaxed (all spec_* accesses here): heuristics, see struct gr__file;
     * the data itself comes from the system call. */
    if (atomic_load_explicit(&fi->spec_off, memory_order_relaxed))
        return -EAGAIN;
    int skip = atomic_load_explicit(&fi->spec_skip, memory_order_relaxed);
    if (skip > 0) {
        atomic_store_explicit(&fi->spec_skip, skip - 1, memory_order_relaxed);
        return -EAGAIN;
    }
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    long n = gr__sys6(SYS_preadv2, fi->fd, (long)&iov, 1, (long)off, 0, RWF_NOWAIT);
    if (n == -EAGAIN) {
        spec_missed(fi);
    } else if (n == -EOPNOTSUPP || n == -ESPIPE) {
        /* No RWF_NOWAIT on this file system, or a pipe (FIFO): the ring
         * does these (it ignores the offset of a stream). */
        atomic_store_explicit(&fi->spec_off, 1, memory_order_relaxed);
        n = -EAGAIN;
    } else if (atomic_load_explicit(&fi->spec_misses, memory_order_relaxed)) {
        atomic_store_explicit(&fi->spec_misses, 0, memory_order_relaxed);
    }
    return n;
}

/* One read of up to len bytes at off: speculative, then the ring for what
 * is left. A cancellation point even when the data was cached. */
static ssize_t raw_pread(struct gr__file *fi, void *buf, size_t len, int64_t off)
{
    struct gr__task *self;
    int rc = gr__blocking_check(&self);
    if (rc < 0)
        return rc;
    size_t done = 0;
    ssize_t n = spec_read(fi, buf, len, off);
    if (n >= 0 && ((size_t)n == len || n == 0)) {
        spec_charge();
        return n;
    }
    if (n > 0)
        done = (size_t)n; /* part was cached: the ring reads the rest */
    else if (n != -EAGAIN)
        return n;
    n = ring_rw(fi, IORING_OP_READ, (char *)buf + done, len - done, off + (int64_t)done,
                "file read");
    if (n < 0)
        return done ? (ssize_t)done : n;
    return (ssize_t)done + n;
}

/* ---------------------------------------------------------------------
 * Position and buffer
 * --------------------------------------------------------------------- */

static int64_t file_size(const struct gr__file *fi)
{
    struct statx st;
    int rc = statx_fd(fi, STATX_SIZE, &st);
    return rc < 0 ? rc : (int64_t)st.stx_size;
}

static int64_t cur_pos(struct gr__file *fi)
{
    if (fi->pos_state == POS_KERNEL) {
        /* SEEK_CUR with offset 0 only reads f_pos: never blocks. */
        long p = gr__sys(SYS_lseek, fi->fd, 0, SEEK_CUR);
        if (p < 0)
            return p;
        fi->pos = p;
    } else if (fi->pos_state == POS_END) {
        int64_t size = file_size(fi);
        if (size < 0)
            return size;
        fi->pos = size;
    }
    fi->pos_state = POS_KNOWN;
    return fi->pos;
}

static int ensure_buf(struct gr__file *fi)
{
    if (!fi->buf && !(fi->buf = malloc(fi->buf_size)))
        return -ENOMEM;
    return 0;
}

static void drop_read_cache(struct gr__file *fi)
{
    if (fi->buf_mode == BUF_READ)
        fi->buf_mode = BUF_EMPTY;
}

/* A stream write: at off, or at the end in append mode (offset -1, after
 * which the position is the kernel's). */
static ssize_t stream_write(struct gr__file *fi, const void *buf, size_t len, int64_t off)
{
    int append = (fi->bits & F_APPEND) != 0;
    ssize_t n = ring_rw(fi, IORING_OP_WRITE, buf, len, append ? -1 : off, "file write");
    if (n > 0 && append)
        fi->pos_state = POS_KERNEL;
    return n;
}

/* Write out pending buffered data. On an error the unwritten rest stays
 * pending (a later flush retries). */
static int flush_writes(struct gr__file *fi)
{
    while (fi->buf_mode == BUF_WRITE && fi->buf_len) {
        ssize_t n = stream_write(fi, fi->buf, fi->buf_len, fi->buf_off);
        if (n <= 0)
            return n < 0 ? (int)n : -EIO;
        fi->buf_len -= (size_t)n;
        fi->buf_off += n;
        memmove(fi->buf, fi->buf + n, fi->buf_len);
    }
    if (fi->buf_mode == BUF_WRITE)
        fi->buf_mode = BUF_EMPTY;
    return 0;
}

/* Copy what the read cache holds at the position; returns the count. */
static size_t take_cached(struct gr__file *fi, char *out, size_t len)
{
    if (fi->buf_mode != BUF_READ || fi->pos < fi->buf_off ||
        fi->pos >= fi->buf_off + (int64_t)fi->buf_len)
        return 0;
    size_t at = (size_t)(fi->pos - fi->buf_off);
    size_t n = fi->buf_len - at < len ? fi->buf_len - at : len;
    memcpy(out, fi->buf + at, n);
    fi->pos += (int64_t)n;
    return n;
}

static int cached(const struct gr__file *fi)
{
    return fi->buf_mode == BUF_READ && fi->pos >= fi->buf_off &&
           fi->pos < fi->buf_off + (int64_t)fi->buf_len;
}

/* Fill the read cache from the position. */
static ssize_t refill(struct gr__file *fi)
{
    int rc = ensure_buf(fi);
    if (rc < 0)
        return rc;
    fi->buf_mode = BUF_EMPTY;
    ssize_t n = raw_pread(fi, fi->buf, fi->buf_size, fi->pos);
    if (n > 0) {
        fi->buf_mode = BUF_READ;
        fi->buf_off = fi->pos;
        fi->buf_len = (size_t)n;
    }
    return n;
}

/* ---------------------------------------------------------------------
 * read and write at the position
 * --------------------------------------------------------------------- */

static ssize_t read_direct(struct gr__file *fi, void *buf, size_t len)
{
    ssize_t n = raw_pread(fi, buf, len, fi->pos);
    if (n > 0)
        fi->pos += n;
    return n;
}

static ssize_t buffered_read(struct gr__file *fi, char *out, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t c = take_cached(fi, out + done, len - done);
        done += c;
        /* Done, or the cache was a short (end of file) fill, now used up. */
        if (done == len || (c && fi->buf_len < fi->buf_size))
            break;
        size_t want = len - done;
        int direct = want >= fi->buf_size;
        ssize_t n = direct ? read_direct(fi, out + done, want) : refill(fi);
        if (n <= 0)
            return done ? (ssize_t)done : n;
        if (direct) {
            done += (size_t)n;
            if ((size_t)n < want)
                break; /* end of file */
        }
    }
    return (ssize_t)done;
}

ssize_t gr_file_read(gr_file *f, void *buf, size_t len)
{
    if (!buf && len)
        return -EFAULT;
    struct gr__file *fi;
    int rc = enter(f, F_READ, &fi);
    if (rc < 0)
        return rc;
    ssize_t n = flush_writes(fi);
    if (n == 0 && (n = cur_pos(fi)) >= 0)
        n = fi->bits & F_BUFFERED ? buffered_read(fi, buf, len) : read_direct(fi, buf, len);
    file_unlock(fi);
    return n;
}

/* Loop over short writes at the position. */
static ssize_t write_through(struct gr__file *fi, const char *data, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = stream_write(fi, data + done, len - done, fi->pos);
        if (n <= 0)
            return done ? (ssize_t)done : (n ? n : -EIO);
        done += (size_t)n;
        if (!(fi->bits & F_APPEND))
            fi->pos += n;
    }
    return (ssize_t)done;
}

/* Takes all of data (or fails without taking any of it, unless a large
 * write is interrupted part way: then the count written). */
static ssize_t buffered_write(struct gr__file *fi, const char *data, size_t len)
{
    drop_read_cache(fi);
    int rc;
    if (fi->buf_mode == BUF_WRITE && fi->buf_len + len > fi->buf_size &&
        (rc = flush_writes(fi)) < 0)
        return rc;
    if (len >= fi->buf_size)
        return write_through(fi, data, len);
    if ((rc = ensure_buf(fi)) < 0)
        return rc;
    if (fi->buf_mode != BUF_WRITE) {
        fi->buf_mode = BUF_WRITE;
        fi->buf_off = fi->pos;
        fi->buf_len = 0;
    }
    memcpy(fi->buf + fi->buf_len, data, len);
    fi->buf_len += len;
    if (!(fi->bits & F_APPEND))
        fi->pos += (int64_t)len;
    return (ssize_t)len;
}

static ssize_t unbuffered_write(struct gr__file *fi, const void *data, size_t len)
{
    ssize_t n = stream_write(fi, data, len, fi->pos);
    if (n > 0 && !(fi->bits & F_APPEND))
        fi->pos += n;
    return n;
}

static ssize_t write_locked(gr_file *f, const void *data, size_t len, int all)
{
    if (!data && len)
        return -EFAULT;
    struct gr__file *fi;
    int rc = enter(f, F_WRITE, &fi);
    if (rc < 0)
        return rc;
    ssize_t n;
    if (fi->bits & F_BUFFERED)
        n = buffered_write(fi, data, len);
    else
        n = all ? write_through(fi, data, len) : unbuffered_write(fi, data, len);
    file_unlock(fi);
    return n;
}

ssize_t gr_file_write(gr_file *f, const void *buf, size_t len)
{
    return write_locked(f, buf, len, 0);
}

ssize_t gr_file_write_all(gr_file *f, const void *buf, size_t len)
{
    return write_locked(f, buf, len, 1);
}

/* ---------------------------------------------------------------------
 * Positional and vectored I/O
 * --------------------------------------------------------------------- */

/* A buffered file: flush pending writes (and drop the read cache before a
 * write), under the lock, so positional I/O sees a consistent file. */
static int positional_begin(struct gr__file *fi, int writing)
{
    if (!(fi->bits & F_BUFFERED))
        return 0;
    int rc = file_lock(fi, 1);
    if (rc < 0)
        return rc;
    if ((rc = flush_writes(fi)) < 0) {
        file_unlock(fi);
        return rc;
    }
    if (writing)
        drop_read_cache(fi);
    return 0;
}

static void positional_end(struct gr__file *fi)
{
    if (fi->bits & F_BUFFERED)
        file_unlock(fi);
}

static int positional_check(const struct gr__file *fi, unsigned need, off_t offset)
{
    if (!fi || !(fi->bits & need))
        return -EBADF;
    return offset < 0 ? -EINVAL : 0;
}

ssize_t gr_file_pread(gr_file *f, void *buf, size_t len, off_t offset)
{
    struct gr__file *fi = impl(f);
    ssize_t n = positional_check(fi, F_READ, offset);
    if (n == 0 && !buf && len)
        n = -EFAULT;
    if (n < 0 || (n = positional_begin(fi, 0)) < 0)
        return n;
    n = raw_pread(fi, buf, len, offset);
    positional_end(fi);
    return n;
}

ssize_t gr_file_pwrite(gr_file *f, const void *buf, size_t len, off_t offset)
{
    struct gr__file *fi = impl(f);
    ssize_t n = positional_check(fi, F_WRITE, offset);
    if (n == 0 && !buf && len)
        n = -EFAULT;
    if (n < 0 || (n = positional_begin(fi, 1)) < 0)
        return n;
    n = ring_rw(fi, IORING_OP_WRITE, buf, len, offset, "file pwrite");
    positional_end(fi);
    return n;
}

static ssize_t vectored(gr_file *f, int op, unsigned need, const struct iovec *iov, int iovcnt,
                        off_t offset)
{
    struct gr__file *fi = impl(f);
    ssize_t n = positional_check(fi, need, offset);
    if (n == 0 && (!iov || iovcnt <= 0 || iovcnt > IOV_MAX))
        n = -EINVAL;
    if (n < 0 || (n = positional_begin(fi, need == F_WRITE)) < 0)
        return n;
    n = ring_rw(fi, op, iov, (size_t)iovcnt, offset,
                op == IORING_OP_READV ? "file preadv" : "file pwritev");
    positional_end(fi);
    return n;
}

ssize_t gr_file_preadv(gr_file *f, const struct iovec *iov, int iovcnt, off_t offset)
{
    return vectored(f, IORING_OP_READV, F_READ, iov, iovcnt, offset);
}

ssize_t gr_file_pwritev(gr_file *f, const struct iovec *iov, int iovcnt, off_t offset)
{
    return vectored(f, IORING_OP_WRITEV, F_WRITE, iov, iovcnt, offset);
}

/* ---------------------------------------------------------------------
 * read_all
 * --------------------------------------------------------------------- */

/* A buffer of at least cap bytes holding the first len bytes of *buf
 * (aligned for O_DIRECT). */
static int grow(char **buf, size_t *cap, size_t len, size_t want, int aligned)
{
    if (want <= *cap)
        return 0;
    char *p;
    if (aligned) {
        want = (want + DIO_ALIGN - 1) & ~(DIO_ALIGN - 1);
        if (posix_memalign((void **)&p, DIO_ALIGN, want) != 0)
            return -ENOMEM;
        if (*buf)
            memcpy(p, *buf, len);
        free(*buf);
    } else if (!(p = realloc(*buf, want))) {
        return -ENOMEM;
    }
    *buf = p;
    *cap = want;
    return 0;
}

/* Reads from pos to the end of the file into *out. */
static ssize_t read_rest(struct gr__file *fi, int64_t pos, size_t max, char **out)
{
    int aligned = (fi->bits & F_DIRECT) != 0;
    int64_t size = file_size(fi);
    if (size < 0)
        return size;
    size_t hint = size > pos ? (size_t)(size - pos) : 0;
    if (max && hint > max)
        return -EFBIG;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    ssize_t rc = grow(&buf, &cap, 0, (hint < READ_ALL_MIN ? READ_ALL_MIN : hint) + 1, aligned);
    for (; rc == 0;) {
        size_t room = cap - len - 1;
        if (aligned) /* whole blocks only */
            room = (cap - len) & ~(DIO_ALIGN - 1);
        if (room == 0) {
            rc = grow(&buf, &cap, len, cap * 2, aligned);
            continue;
        }
        ssize_t n = raw_pread(fi, buf + len, room, pos + (int64_t)len);
        if (n < 0) {
            rc = n;
            break;
        }
        len += (size_t)n;
        if (max && len > max)
            rc = -EFBIG;
        else if ((size_t)n < room) /* end of file, unless interrupted */
            break;
    }
    if (rc == 0)
        rc = gr__blocking_check(&(struct gr__task *){NULL});
    if (rc == 0 && len == cap)
        rc = grow(&buf, &cap, len, len + 1, aligned);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    return (ssize_t)len;
}

ssize_t gr_file_read_all(gr_file *f, char **data, size_t max)
{
    if (!data)
        return -EINVAL;
    *data = NULL;
    struct gr__file *fi;
    int rc = enter(f, F_READ, &fi);
    if (rc < 0)
        return rc;
    ssize_t n = flush_writes(fi);
    int64_t pos = n == 0 ? cur_pos(fi) : n;
    n = pos < 0 ? pos : read_rest(fi, pos, max, data);
    if (n > 0)
        fi->pos = pos + n;
    file_unlock(fi);
    return n;
}

/* ---------------------------------------------------------------------
 * readline and the line iterator
 * --------------------------------------------------------------------- */

/* Where a line goes: the caller's fixed buffer, or the iterator's growing
 * one. max: the longest line accepted (with its '\n'). */
struct line_sink {
    char *buf;
    size_t len, cap, max;
    int grow;
};

/* Room for n more bytes and a NUL: -EOVERFLOW past max, -ENOMEM. */
static int sink_reserve(struct line_sink *s, size_t n)
{
    if (n > s->max - s->len)
        return -EOVERFLOW;
    size_t need = s->len + n + 1;
    if (need <= s->cap)
        return 0;
    size_t cap = s->cap * 2 > need ? s->cap * 2 : need;
    if (cap > s->max + 1)
        cap = s->max + 1;
    char *b = s->grow ? realloc(s->buf, cap) : NULL;
    if (!b)
        return s->grow ? -ENOMEM : -EOVERFLOW;
    s->buf = b;
    s->cap = cap;
    return 0;
}

static ssize_t line_done(struct line_sink *s)
{
    int rc = sink_reserve(s, 0);
    if (rc < 0)
        return rc;
    s->buf[s->len] = '\0';
    return (ssize_t)s->len;
}

static ssize_t readline_buffered(struct gr__file *fi, struct line_sink *s, int64_t start)
{
    for (;;) {
        if (!cached(fi)) {
            ssize_t n = refill(fi);
            if (n < 0) {
                fi->pos = start;
                return n;
            }
            if (n == 0)
                break;
        }
        const char *p = fi->buf + (fi->pos - fi->buf_off);
        size_t avail = (size_t)(fi->buf_off + (int64_t)fi->buf_len - fi->pos);
        const char *nl = memchr(p, '\n', avail);
        size_t take = nl ? (size_t)(nl - p) + 1 : avail;
        int rc = sink_reserve(s, take);
        if (rc < 0) {
            fi->pos = start; /* nothing consumed */
            return rc;
        }
        memcpy(s->buf + s->len, p, take);
        s->len += take;
        fi->pos += (int64_t)take;
        if (nl)
            break;
    }
    return line_done(s);
}

/* No buffer: read ahead into the line's own space, then set the position
 * right after the '\n'. */
static ssize_t readline_unbuffered(struct gr__file *fi, struct line_sink *s, int64_t start)
{
    size_t chunk = LINE_CHUNK;
    for (;;) {
        size_t want = s->max - s->len < chunk ? s->max - s->len : chunk;
        if (want == 0) { /* full, no '\n': fits only if the file ends here */
            char c;
            ssize_t n = raw_pread(fi, &c, 1, start + (int64_t)s->len);
            if (n != 0)
                return n < 0 ? n : -EOVERFLOW;
            break;
        }
        int rc = sink_reserve(s, want);
        if (rc < 0)
            return rc;
        ssize_t n = raw_pread(fi, s->buf + s->len, want, start + (int64_t)s->len);
        if (n <= 0) {
            if (n < 0)
                return n;
            break;
        }
        char *nl = memchr(s->buf + s->len, '\n', (size_t)n);
        if (nl) {
            s->len = (size_t)(nl - s->buf) + 1;
            break;
        }
        s->len += (size_t)n;
        if (chunk < LINE_CHUNK_MAX)
            chunk *= 2;
    }
    fi->pos = start + (int64_t)s->len;
    return line_done(s);
}

static ssize_t readline_locked(gr_file *f, struct line_sink *s)
{
    struct gr__file *fi;
    int rc = enter(f, F_READ, &fi);
    if (rc < 0)
        return rc;
    s->len = 0;
    ssize_t n = flush_writes(fi);
    int64_t start = n == 0 ? cur_pos(fi) : n;
    if (start < 0)
        n = start;
    else if (fi->bits & F_BUFFERED)
        n = readline_buffered(fi, s, start);
    else
        n = readline_unbuffered(fi, s, start);
    file_unlock(fi);
    return n;
}

ssize_t gr_file_readline(gr_file *f, char *buf, size_t size)
{
    if (!buf || size == 0)
        return -EINVAL;
    struct line_sink s = {.buf = buf, .cap = size, .max = size - 1};
    return readline_locked(f, &s);
}

int gr_file_lines_init(gr_file_lines *it, gr_file *f, size_t max_line)
{
    if (!it || !f || max_line == 0 || max_line == SIZE_MAX)
        return -EINVAL;
    it->file_ = f;
    it->max_ = max_line;
    it->cap_ = max_line + 1 < LINE_CHUNK ? max_line + 1 : LINE_CHUNK;
    it->buf_ = malloc(it->cap_);
    return it->buf_ ? 0 : -ENOMEM;
}

ssize_t gr_file_lines_next(gr_file_lines *it, const char **line)
{
    if (!it || !it->buf_)
        return -EINVAL;
    struct line_sink s = {.buf = it->buf_, .cap = it->cap_, .max = it->max_, .grow = 1};
    ssize_t n = readline_locked(it->file_, &s);
    it->buf_ = s.buf;
    it->cap_ = s.cap;
    if (n >= 0 && line)
        *line = it->buf_;
    return n;
}

void gr_file_lines_destroy(gr_file_lines *it)
{
    if (!it)
        return;
    free(it->buf_);
    it->buf_ = NULL;
}

/* ---------------------------------------------------------------------
 * seek, tell, truncate, flush, sync, fallocate, fadvise, stat
 * --------------------------------------------------------------------- */

static int64_t seek_base(struct gr__file *fi, int whence)
{
    switch (whence) {
    case SEEK_SET:
        return 0;
    case SEEK_CUR:
        return cur_pos(fi);
    case SEEK_END:
        return file_size(fi);
    default:
        return -EINVAL;
    }
}

off_t gr_file_seek(gr_file *f, off_t offset, int whence)
{
    struct gr__file *fi;
    int64_t rc = enter(f, 0, &fi);
    if (rc < 0)
        return rc;
    if ((rc = flush_writes(fi)) == 0 && (rc = seek_base(fi, whence)) >= 0) {
        if (offset > 0 ? rc > INT64_MAX - offset : rc + offset < 0) {
            rc = offset > 0 ? -EOVERFLOW : -EINVAL;
        } else {
            rc += offset;
            fi->pos = rc;
            fi->pos_state = POS_KNOWN;
        }
    }
    file_unlock(fi);
    return rc;
}

off_t gr_file_tell(gr_file *f)
{
    struct gr__file *fi;
    int64_t rc = enter(f, 0, &fi);
    if (rc < 0)
        return rc;
    /* Append mode: pending data goes to the end, which moves the position. */
    if (!(fi->bits & F_APPEND) || (rc = flush_writes(fi)) == 0)
        rc = cur_pos(fi);
    file_unlock(fi);
    return rc;
}

int gr_file_flush(gr_file *f)
{
    struct gr__file *fi;
    int rc = enter(f, 0, &fi);
    if (rc < 0)
        return rc;
    rc = flush_writes(fi);
    file_unlock(fi);
    return rc;
}

struct ftruncate_args {
    int fd;
    int64_t len;
};

static long ftruncate_job(void *arg)
{
    struct ftruncate_args *a = arg;
    return gr__sys(SYS_ftruncate, a->fd, a->len, 0);
}

static int run_op(struct gr__file *fi, const struct ring_args *a, const char *reason)
{
    if (a->op != GR_IORING_OP_FTRUNCATE || gr__uring_has_op(GR_IORING_OP_FTRUNCATE))
        return ring_misc(fi, a, reason);
    /* Kernels before 6.9: ftruncate on the offload pool. */
    struct ftruncate_args t = {.fd = fi->fd, .len = (int64_t)a->len};
    return (int)gr__offload_call(ftruncate_job, &t, GR_OFFLOAD_FINISH, reason);
}

/* flush, then one ring operation (or its offloaded fallback) under the
 * lock. drop: the operation changes file content (read cache invalid). */
static int locked_op(gr_file *f, unsigned need, const struct ring_args *a, int drop,
                     const char *reason)
{
    struct gr__file *fi;
    int rc = enter(f, need, &fi);
    if (rc < 0)
        return rc;
    if ((rc = flush_writes(fi)) == 0) {
        if (drop)
            drop_read_cache(fi);
        rc = run_op(fi, a, reason);
    }
    file_unlock(fi);
    return rc;
}

int gr_file_truncate(gr_file *f, off_t length)
{
    if (length < 0)
        return -EINVAL;
    struct ring_args a = {.op = GR_IORING_OP_FTRUNCATE, .len = (uint64_t)length};
    return locked_op(f, F_WRITE, &a, 1, "file truncate");
}

int gr_file_fsync(gr_file *f)
{
    struct ring_args a = {.op = IORING_OP_FSYNC};
    return locked_op(f, 0, &a, 0, "file fsync");
}

int gr_file_fdatasync(gr_file *f)
{
    struct ring_args a = {.op = IORING_OP_FSYNC, .flags = IORING_FSYNC_DATASYNC};
    return locked_op(f, 0, &a, 0, "file fdatasync");
}

int gr_file_fallocate(gr_file *f, int mode, off_t offset, off_t len)
{
    if (offset < 0 || len <= 0)
        return -EINVAL;
    struct ring_args a = {.op = IORING_OP_FALLOCATE, .mode = mode, .off = (uint64_t)offset,
                          .len = (uint64_t)len};
    return locked_op(f, F_WRITE, &a, 1, "file fallocate");
}

int gr_file_fadvise(gr_file *f, off_t offset, off_t len, int advice)
{
    struct gr__file *fi = impl(f);
    if (!fi)
        return -EBADF;
    if (offset < 0 || len < 0)
        return -EINVAL;
    struct ring_args a = {.op = IORING_OP_FADVISE, .mode = advice, .off = (uint64_t)offset,
                          .len = (uint64_t)len};
    return ring_misc(fi, &a, "file fadvise");
}

int gr_file_stat(gr_file *f, struct statx *st)
{
    if (!st)
        return -EINVAL;
    struct gr__file *fi;
    int rc = enter(f, 0, &fi);
    if (rc < 0)
        return rc;
    if ((rc = flush_writes(fi)) == 0)
        rc = statx_fd(fi, STATX_BASIC_STATS, st);
    file_unlock(fi);
    return rc;
}

int gr_file_dio_align(gr_file *f, size_t *mem_align, size_t *offset_align)
{
    struct gr__file *fi = impl(f);
    if (!fi)
        return -EBADF;
    struct statx st;
    int rc = statx_fd(fi, STATX_DIOALIGN, &st);
    if (rc < 0)
        return rc;
    int have = (st.stx_mask & STATX_DIOALIGN) != 0;
    if (mem_align)
        *mem_align = have ? st.stx_dio_mem_align : 0;
    if (offset_align)
        *offset_align = have ? st.stx_dio_offset_align : 0;
    return 0;
}

/* ---------------------------------------------------------------------
 * Fixed files: a slot in the opening worker's ring
 * --------------------------------------------------------------------- */

/* IORING_OP_FILES_UPDATE of one fd at offset (IORING_FILE_INDEX_ALLOC: the
 * kernel picks a free slot and writes it into fds[0]). *on: the worker
 * whose ring got it. Returns 1 when updated. */
static int files_update(struct gr__worker **on, int *fds, unsigned offset)
{
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    *on = gr__worker_self();
    io_uring_prep_files_update(sqe, fds, 1, (int)offset);
    return gr__io_wait(&io, sqe, "file register");
}

/* Best effort: a file that gets no slot uses its plain fd everywhere. */
static void fixed_register(struct gr__file *fi)
{
    struct gr__worker *w = gr__worker_self();
    if (!w->rt->cfg_have_msg_ring) /* a close from another worker needs it */
        return;
    int fds[1] = {fi->fd};
    int rc = files_update(&w, fds, IORING_FILE_INDEX_ALLOC);
    /* -ENXIO: this ring has no table yet. Registering it is a ring
     * operation of its owner thread, so only if the task is still there. */
    if (rc == -ENXIO && w == gr__worker_self()) {
        int r = io_uring_register_files_sparse(&w->ring, FIXED_TABLE_SIZE);
        fds[0] = fi->fd;
        if (r == 0 || r == -EBUSY)
            rc = files_update(&w, fds, IORING_FILE_INDEX_ALLOC);
    }
    if (rc == 1) {
        fi->fixed_index = fds[0];
        fi->fixed_worker = w->index;
    }
}

/* Runs on the worker whose ring holds the slot (res: the slot), sent by a
 * MSG_RING from the worker where the file was closed. */
static void unregister_remote(struct gr__worker *w, struct gr__completion *c, int32_t res,
                              uint32_t flags)
{
    (void)c;
    (void)flags;
    int none = -1;
    io_uring_register_files_update(&w->ring, (unsigned)res, &none, 1);
}

/* Static: the MSG_RING carries only the slot number, and no task waits for
 * it (nothing on a stack is shared with the other worker). */
static struct gr__completion remote_unregister = {.fn = unregister_remote};

/* Release the slot without waiting: the slot holds its own reference to
 * the open file, so the fd can be closed right away; the file is released
 * once the slot is. A failed release (the target's completion queue is
 * full) leaves the slot until the runtime's rings close. */
static void fixed_unregister(struct gr__file *fi)
{
    if (fi->fixed_index < 0)
        return;
    struct gr__worker *w = gr__worker_self();
    struct io_uring_sqe *sqe = gr__worker_sqe(w);
    if (w->index == fi->fixed_worker) {
        io_uring_prep_close_direct(sqe, (unsigned)fi->fixed_index);
    } else {
        struct gr__worker *home = &w->rt->workers[fi->fixed_worker];
        io_uring_prep_msg_ring(sqe, home->ring.ring_fd, (unsigned)fi->fixed_index,
                               (uint64_t)(uintptr_t)&remote_unregister, 0);
    }
    io_uring_sqe_set_data64(sqe, 0); /* no completion of ours */
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    fi->fixed_index = -1;
}

/* ---------------------------------------------------------------------
 * open and close
 * --------------------------------------------------------------------- */

int gr_file_mode_flags(const char *mode)
{
    if (!mode)
        return -EINVAL;
    int base = 0, plus = 0;
    for (const char *m = mode; *m; m++) {
        if (strchr("rwax", *m) && !base)
            base = *m;
        else if (*m == '+' && !plus)
            plus = 1;
        else if (*m != 'b')
            return -EINVAL;
    }
    int flags;
    switch (base) {
    case 'r':
        flags = 0;
        break;
    case 'w':
        flags = O_CREAT | O_TRUNC;
        break;
    case 'a':
        flags = O_CREAT | O_APPEND;
        break;
    case 'x':
        flags = O_CREAT | O_EXCL;
        break;
    default:
        return -EINVAL;
    }
    return flags | (plus ? O_RDWR : base == 'r' ? O_RDONLY : O_WRONLY);
}

static struct gr__file *file_new(int flags, const gr_file_opts *o)
{
    struct gr__file *fi = calloc(1, sizeof(*fi));
    if (!fi)
        return NULL;
    int acc = flags & O_ACCMODE;
    fi->bits = (acc != O_WRONLY ? F_READ : 0) | (acc != O_RDONLY ? F_WRITE : 0);
    if (flags & O_APPEND) {
        fi->bits |= F_APPEND;
        fi->pos_state = POS_END;
    }
    if (flags & O_DIRECT)
        fi->bits |= F_DIRECT;
    else if (!o->unbuffered)
        fi->bits |= F_BUFFERED;
    fi->buf_size = o->buffer_size ? o->buffer_size : GR_FILE_DEFAULT_BUFFER;
    fi->fixed_index = -1;
    /* O_DIRECT: RWF_NOWAIT does not mean "from memory" there. */
    /* atomic_init: not yet shared (published by the caller's gr_file). */
    atomic_init(&fi->spec_off, o->no_speculate || (flags & O_DIRECT));
    atomic_init(&fi->spec_misses, 0);
    atomic_init(&fi->spec_skip, 0);
    fi->lock_spin = (gr__spinlock)GR_SPINLOCK_INIT;
    return fi;
}

int gr_file_open_flags(gr_file *f, const char *path, int flags, unsigned perm,
                       const gr_file_opts *opts)
{
    if (!f)
        return -EINVAL;
    f->impl_ = NULL;
    if (!path || flags < 0 || (flags & O_ACCMODE) == O_ACCMODE)
        return -EINVAL;
    gr_file_opts o = opts ? *opts : (gr_file_opts){0};
    struct gr__file *fi = file_new(flags, &o);
    if (!fi)
        return -ENOMEM;
    int fd = gr__fs_openat(AT_FDCWD, path, flags | O_CLOEXEC, perm);
    if (fd < 0) {
        free(fi);
        return fd;
    }
    fi->fd = fd;
    if (o.fixed)
        fixed_register(fi);
    f->impl_ = fi;
    return 0;
}

int gr_file_open(gr_file *f, const char *path, const char *mode)
{
    int flags = gr_file_mode_flags(mode);
    if (flags < 0) {
        if (f)
            f->impl_ = NULL;
        return flags;
    }
    return gr_file_open_flags(f, path, flags, 0666, NULL);
}

int gr_file_close(gr_file *f)
{
    struct gr__file *fi = impl(f);
    if (!fi)
        return -EBADF;
    int rc = file_lock(fi, 0); /* -EBADF: closed by another task meanwhile */
    if (rc < 0)
        return rc;
    f->impl_ = NULL;
    gr_scope shield;
    gr_scope_enter_shield(&shield); /* the data gets written even when cancelled */
    rc = flush_writes(fi);
    fixed_unregister(fi);
    int crc = gr_close(fi->fd);
    if (fi->path)
        gr__fs_unlink_cleanup(fi->path);
    gr_scope_leave(&shield);
    lock_fail_waiters(fi);
    free(fi->buf);
    free(fi->path);
    free(fi);
    return rc < 0 ? rc : crc;
}

int gr_file_fd(const gr_file *f)
{
    struct gr__file *fi = impl(f);
    return fi ? fi->fd : -EBADF;
}

const char *gr_file_path(const gr_file *f)
{
    struct gr__file *fi = impl(f);
    return fi ? fi->path : NULL;
}

/* ---------------------------------------------------------------------
 * Temporary files
 * --------------------------------------------------------------------- */

int gr_file_named_tempfile(gr_file *f, const char *dir, const char *prefix)
{
    if (!f)
        return -EINVAL;
    f->impl_ = NULL;
    char *path = malloc(PATH_MAX);
    if (!path)
        return -ENOMEM;
    int rc = -EEXIST;
    for (int i = 0; i < TEMP_ATTEMPTS && rc == -EEXIST; i++) {
        if ((rc = gr__fs_temp_name(path, PATH_MAX, dir, prefix)) < 0)
            break;
        rc = gr_file_open_flags(f, path, O_RDWR | O_CREAT | O_EXCL, 0600, NULL);
    }
    if (rc == 0 && !(f->impl_->path = strdup(path))) {
        gr__fs_unlink_cleanup(path);
        gr_file_close(f);
        rc = -ENOMEM;
    }
    free(path);
    return rc;
}

int gr_file_tempfile(gr_file *f, const char *dir)
{
    if (!f)
        return -EINVAL;
    int rc = gr_file_open_flags(f, gr__fs_tmpdir(dir), O_RDWR | O_TMPFILE, 0600, NULL);
    /* No O_TMPFILE here (EOPNOTSUPP; EISDIR/EINVAL on old kernels): a named
     * file removed at once, as Python's TemporaryFile does. */
    if (rc != -EOPNOTSUPP && rc != -EISDIR && rc != -EINVAL)
        return rc;
    if ((rc = gr_file_named_tempfile(f, dir, NULL)) < 0)
        return rc;
    struct gr__file *fi = f->impl_;
    gr__fs_unlink_cleanup(fi->path);
    free(fi->path);
    fi->path = NULL;
    return 0;
}
