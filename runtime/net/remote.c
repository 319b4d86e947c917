#include "net/remote.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/attrs.h"
#include "core/runtime.h"
#include "core/worker.h"

/* The runtime allows at most this many workers (core/runtime.c). */

/* Requests queued for each worker (a Treiber stack, drained at once). */
static _Atomic(struct gr__remote *) pending[GR_MAX_WORKERS];

static void kick_done(struct gr__worker *w, struct gr__completion *c, int32_t res,
                      uint32_t flags);
static void kick_failed(struct gr__worker *w, struct gr__completion *c, int32_t res,
                        uint32_t flags);

/* The kick's CQE carries a pointer to `kick`, which is never written at
 * run time: the target's dispatch may read it without any ordering, and
 * the requests travel through `pending` with release/acquire. A failed
 * kick posts a CQE on the sender pointing at the target's entry of
 * `failed` (also constant), so the retry never touches a request that may
 * have run and been freed meanwhile. */
static struct gr__completion kick = {.fn = kick_done};
static struct gr__completion failed[GR_MAX_WORKERS] = {[0 ... GR_MAX_WORKERS - 1] = {.fn = kick_failed}};

static void kick_done(struct gr__worker *w, struct gr__completion *c, int32_t res,
                      uint32_t flags)
{
    (void)c;
    (void)res;
    (void)flags;
    /* acquire: pairs with the release CAS in gr__remote_run, making each
     * request's fields visible here. */
    struct gr__remote *r = atomic_exchange_explicit(&pending[w->index], NULL,
                                                    memory_order_acquire);
    struct gr__remote *fifo = NULL;
    while (r) {
        struct gr__remote *next = r->next;
        r->next = fifo;
        fifo = r;
        r = next;
    }
    while (fifo) {
        struct gr__remote *next = fifo->next; /* fifo may be gone after fn */
        fifo->fn(w, fifo);
        fifo = next;
    }
}

static void send_kick(struct gr__worker *from, struct gr__worker *to)
{
    struct io_uring_sqe *sqe = gr__worker_sqe(from);
    io_uring_prep_msg_ring(sqe, to->ring.ring_fd, 0, (uint64_t)(uintptr_t)&kick, 0);
    io_uring_sqe_set_data(sqe, &failed[to->index]);
    /* Only a failed delivery posts a CQE on the sender. */
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

/* The target ring refused the kick (it could not queue the CQE): kick it
 * again from this worker. */
static void kick_failed(struct gr__worker *w, struct gr__completion *c, int32_t res,
                        uint32_t flags)
{
    (void)res;
    (void)flags;
    send_kick(w, &w->rt->workers[c - failed]);
}

void gr__remote_run(struct gr__remote *r, struct gr__worker *target, gr__remote_fn fn)
{
    struct gr__worker *self = gr__worker_self();
    r->target = target;
    r->fn = fn;
    if (target == self) {
        fn(self, r);
        return;
    }
    if (target->index >= GR_MAX_WORKERS) {
        fprintf(stderr, "greenring: worker index %u out of range\n", target->index);
        abort();
    }
    /* relaxed load: the CAS validates it. */
    struct gr__remote *head = atomic_load_explicit(&pending[target->index], memory_order_relaxed);
    do {
        r->next = head;
        /* release: publishes r (and the caller's writes) to kick_done. */
    } while (!atomic_compare_exchange_weak_explicit(&pending[target->index], &head, r,
                                                    memory_order_release, memory_order_relaxed));
    send_kick(self, target);
}

void gr__remote_cancel_local(struct gr__worker *w, struct gr__completion *victim)
{
    struct io_uring_sqe *sqe = gr__worker_sqe(w);
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)victim, 0);
    io_uring_sqe_set_data64(sqe, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}
