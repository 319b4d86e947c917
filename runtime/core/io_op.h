/* io_uring operations submitted by tasks.
 *
 * user_data of every SQE the runtime submits is either 0 (result ignored)
 * or a pointer to a gr__completion, whose function runs on the worker that
 * reaps the CQE. A task's operation embeds a completion and a wait record
 * in one gr__io_op on the task's stack; the task stays parked until the
 * operation's own CQE arrives, also when it is cancelled, so the kernel
 * never writes into a stack that has moved on. */
#ifndef GR_CORE_IO_OP_H
#define GR_CORE_IO_OP_H

#include <liburing.h>
#include <stdint.h>

#include "core/wait.h"

struct gr__worker;
struct gr__completion;

typedef void (*gr__completion_fn)(struct gr__worker *w, struct gr__completion *c, int32_t res,
                                  uint32_t cqe_flags);

struct gr__completion {
    gr__completion_fn fn;
};

struct gr__io_op {
    struct gr__wait wait;
    struct gr__completion done;
    int cancel_sent;
};

/* Entry of an operation: the blocking check, then an SQE on the calling
 * task's ring. Returns NULL and sets *err when the call must not block. */
struct io_uring_sqe *gr__io_begin(struct gr__io_op *op, int *err);
/* Tags the SQE with the op, parks until the CQE, returns its result (or the
 * interrupt's reason when the kernel cancelled the operation). */
int gr__io_wait(struct gr__io_op *op, struct io_uring_sqe *sqe, const char *reason);
/* Like gr__io_wait, but interrupts are ignored: for operations that must
 * happen once started (close). */
int gr__io_wait_uninterruptible(struct gr__io_op *op, struct io_uring_sqe *sqe,
                                const char *reason);

#endif
