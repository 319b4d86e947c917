#include "core/io_op.h"

#include <errno.h>

#include "core/attrs.h"
#include "core/task.h"
#include "core/worker.h"

struct io_uring_sqe *gr__io_begin(struct gr__io_op *op, int *err)
{
    struct gr__task *self;
    *err = gr__blocking_check(&self);
    if (*err < 0)
        return NULL;
    gr__wait_prepare(&op->wait, self);
    op->cancel_sent = 0;
    return gr__worker_sqe(gr__worker_self());
}

static void io_done(struct gr__worker *w, struct gr__completion *c, int32_t res, uint32_t flags)
{
    (void)w;
    (void)flags;
    struct gr__io_op *op = GR_CONTAINER_OF(c, struct gr__io_op, done);
    /* An operation io-wq was running when it was cancelled (a blocking Unix
     * connect, a regular-file read) ends with -EINTR, not -ECANCELED. */
    if ((res == -ECANCELED || res == -EINTR) && op->wait.interrupt)
        res = op->wait.interrupt;
    gr__wake(&op->wait, res);
}

/* Runs on the worker that owns the ring the op was submitted on. */
static void io_interrupt(struct gr__wait *wait, int reason)
{
    struct gr__io_op *op = GR_CONTAINER_OF(wait, struct gr__io_op, wait);
    if (op->cancel_sent)
        return;
    op->cancel_sent = 1;
    wait->interrupt = reason;
    struct io_uring_sqe *sqe = gr__worker_sqe(gr__worker_self());
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&op->done, 0);
    io_uring_sqe_set_data64(sqe, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

static void ignore_interrupt(struct gr__wait *wait, int reason)
{
    (void)wait;
    (void)reason;
}

int gr__io_wait(struct gr__io_op *op, struct io_uring_sqe *sqe, const char *reason)
{
    op->done.fn = io_done;
    io_uring_sqe_set_data(sqe, &op->done);
    return gr__park(&op->wait, reason, io_interrupt, GR_NO_DEADLINE);
}

int gr__io_wait_uninterruptible(struct gr__io_op *op, struct io_uring_sqe *sqe,
                                const char *reason)
{
    op->done.fn = io_done;
    io_uring_sqe_set_data(sqe, &op->done);
    return gr__park(&op->wait, reason, ignore_interrupt, GR_NO_DEADLINE);
}
