/* Running a function on another worker's thread.
 *
 * An io_uring operation can only be cancelled through the ring it was
 * submitted on, and a multishot operation or a background send belongs to
 * the worker that submitted it, while the task that wants to stop it may
 * have migrated since. gr__remote_run() queues a request for the target
 * worker and kicks it with IORING_OP_MSG_RING: the kick's CQE runs on the
 * target's own scheduler loop (core/worker.c dispatches every CQE to its
 * gr__completion), which then runs the queued requests. On the target
 * worker itself, the function runs at once.
 *
 * The request is caller-owned memory and must stay valid until its
 * function has run; the function is the place to record that (under the
 * owning object's lock) and to wake whoever waits for it. */
#ifndef GR_NET_REMOTE_H
#define GR_NET_REMOTE_H

#include <stdint.h>

#include "core/io_op.h"

struct gr__worker;
struct gr__remote;

typedef void (*gr__remote_fn)(struct gr__worker *w, struct gr__remote *r);

struct gr__remote {
    struct gr__remote *next; /* in the target's request list */
    struct gr__worker *target;
    gr__remote_fn fn;
};

/* Run fn(target, r) on target's thread. Call from a task (or a completion)
 * on a worker. */
void gr__remote_run(struct gr__remote *r, struct gr__worker *target, gr__remote_fn fn);

/* Submit IORING_OP_ASYNC_CANCEL for the operation tagged `victim` on w's
 * ring (w must be the calling thread's worker). The cancel's own CQE is
 * skipped, or ignored if it fails (the victim was gone). */
void gr__remote_cancel_local(struct gr__worker *w, struct gr__completion *victim);

#endif
