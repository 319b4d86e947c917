/* Raw fd I/O: one io_uring operation per call. */
#include <errno.h>
#include <unistd.h>

#include "core/io_op.h"
#include "core/task.h"
#include "core/worker.h"
#include "greenring.h"
#ifdef GR_VALGRIND
#include <valgrind/memcheck.h>
#endif

/* Reads and writes above this are split by the caller's loop, never here:
 * io_uring takes 32-bit lengths. */
#define MAX_IO_LEN 0x7ffff000u

static unsigned clamp_len(size_t len)
{
    return len > MAX_IO_LEN ? MAX_IO_LEN : (unsigned)len;
}

static ssize_t rw(int op, int fd, void *buf, size_t len, off_t offset, const char *reason)
{
    if (fd < 0)
        return -EBADF;
    if (!buf && len)
        return -EFAULT;
    if (offset < -1)
        return -EINVAL;
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_rw(op, sqe, fd, buf, clamp_len(len), (uint64_t)offset);
    ssize_t n = gr__io_wait(&io, sqe, reason);
#ifdef GR_VALGRIND
    /* The kernel wrote the buffer behind Memcheck's back. */
    if (op == IORING_OP_READ && n > 0)
        VALGRIND_MAKE_MEM_DEFINED(buf, (size_t)n);
#endif
    return n;
}

ssize_t gr_read(int fd, void *buf, size_t len)
{
    return rw(IORING_OP_READ, fd, buf, len, -1, "io read");
}

ssize_t gr_write(int fd, const void *buf, size_t len)
{
    return rw(IORING_OP_WRITE, fd, (void *)buf, len, -1, "io write");
}

ssize_t gr_pread(int fd, void *buf, size_t len, off_t offset)
{
    if (offset < 0)
        return -EINVAL;
    return rw(IORING_OP_READ, fd, buf, len, offset, "io pread");
}

ssize_t gr_pwrite(int fd, const void *buf, size_t len, off_t offset)
{
    if (offset < 0)
        return -EINVAL;
    return rw(IORING_OP_WRITE, fd, (void *)buf, len, offset, "io pwrite");
}

int gr_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    struct gr__task *self = gr__current_task();
    if (!self)
        return -EPERM;
#ifdef GR_FIBER_TSAN
    /* ThreadSanitizer tracks fds through the close(2) it intercepts; a close
     * done by the kernel for io_uring is invisible to it, and the next fd
     * with the same number then looks like a data race. */
    return close(fd) == 0 ? 0 : -EBADF;
#endif
    /* Not a cancellation point: a close that is skipped leaks the fd. */
    struct gr__io_op io;
    gr__wait_prepare(&io.wait, self);
    io.cancel_sent = 0;
    struct io_uring_sqe *sqe = gr__worker_sqe(gr__worker_self());
    io_uring_prep_close(sqe, fd);
    return gr__io_wait_uninterruptible(&io, sqe, "io close");
}

int gr_nop(void)
{
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_nop(sqe);
    return gr__io_wait(&io, sqe, "io nop");
}
