/* io_uring opcodes newer than the liburing we build against (Debian's 2.3
 * knows the kernel 6.1 set). The opcode numbers are kernel ABI; the SQE
 * layouts follow the kernel's *_prep functions. Callers check
 * gr__uring_has_op() (a probe) first and fall back to the offload pool. */
#ifndef GR_IO_URING_COMPAT_H
#define GR_IO_URING_COMPAT_H

#include <liburing.h>
#include <stdint.h>

/* Numbers from include/uapi/linux/io_uring.h (enum io_uring_op). */
#define GR_IORING_OP_WAITID 50    /* Linux 6.7 */
#define GR_IORING_OP_FTRUNCATE 55 /* Linux 6.9 */

/* ftruncate(fd, len): the length goes in sqe->off; addr, len, rw_flags,
 * buf_index, splice_fd_in and addr3 must be 0 (io_ftruncate_prep), which
 * io_uring_prep_rw guarantees. */
static inline void gr__prep_ftruncate(struct io_uring_sqe *sqe, int fd, uint64_t len)
{
    io_uring_prep_rw(GR_IORING_OP_FTRUNCATE, sqe, fd, 0, 0, len);
}

/* posix_fadvise with a 64-bit length: kernels since 6.7 read it from
 * sqe->addr (liburing 2.6's io_uring_prep_fadvise64); older ones read the
 * 32-bit sqe->len, which is then 0: "to the end of the file", a superset
 * of the range asked for, which is harmless for advice. */
static inline void gr__prep_fadvise(struct io_uring_sqe *sqe, int fd, uint64_t offset,
                                    uint64_t len, int advice)
{
    int small = len <= UINT32_MAX;
    io_uring_prep_rw(IORING_OP_FADVISE, sqe, fd, NULL, small ? (unsigned)len : 0, offset);
    if (!small)
        sqe->addr = len;
    sqe->fadvise_advice = (uint32_t)advice;
}

#endif
