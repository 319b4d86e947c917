/* Barrier (asyncio.Barrier). The last party to arrive releases the others
 * by hand-off (each gets its arrival index) and the next round starts at
 * once, so no draining phase is needed. A party that is interrupted while
 * waiting breaks the barrier, like threading.Barrier's timeout: the others
 * cannot complete the round without it. */
#include <errno.h>

#include "core/attrs.h"
#include "sync/spinlock.h"
#include "sync/waiter.h"

int gr_barrier_init(gr_barrier *b, unsigned parties)
{
    if (!b || parties == 0 || parties > INT32_MAX)
        return -EINVAL;
    *b = (gr_barrier){.parties_ = parties};
    return 0;
}

int gr_barrier_destroy(gr_barrier *b)
{
    if (!b)
        return -EINVAL;
    gr__sync_lock(&b->lock_);
    int busy = !gr__waitq_empty(&b->waiters_);
    gr__sync_unlock(&b->lock_);
    return busy ? -EBUSY : 0;
}

/* A waiting party: its waiter record and the round it waits in. */
struct party {
    struct gr__waiter w;
    uint32_t round;
};

/* Lock held: every waiter leaves with -EPIPE and a new round starts. */
static void break_round(gr_barrier *b, struct gr__wakeset *ws, uint32_t broken)
{
    b->broken_ = broken;
    b->arrived_ = 0;
    b->round_++;
    gr__wakeset_add_all(ws, &b->waiters_, -EPIPE);
}

/* An interrupted party breaks its round, unless that round already ended
 * (reset or abort got there first and left it waiting to withdraw). */
static void party_withdrawn(struct gr__waiter *w, struct gr__wakeset *ws)
{
    struct party *p = GR_CONTAINER_OF(w, struct party, w);
    gr_barrier *b = w->data;
    if (p->round == b->round_)
        break_round(b, ws, 1);
}

int gr_barrier_wait(gr_barrier *b)
{
    if (!b)
        return -EINVAL;
    struct gr__task *self;
    int rc = gr__sync_enter(&self, 0);
    if (rc < 0)
        return rc;
    gr__sync_lock(&b->lock_);
    if (b->broken_) {
        gr__sync_unlock(&b->lock_);
        return -EPIPE;
    }
    uint32_t index = b->arrived_++;
    if (b->arrived_ < b->parties_) {
        struct party p = {.round = b->round_};
        gr__waiter_init(&p.w, self, &b->lock_, &b->waiters_);
        p.w.withdrawn = party_withdrawn;
        p.w.data = b;
        p.w.aux = index;
        return gr__waiter_park(&p.w, "barrier");
    }
    struct gr__wakeset ws = GR__WAKESET_INIT;
    struct gr__waiter *w;
    while ((w = gr__waiter_pop(&b->waiters_)))
        gr__wakeset_add(&ws, w, (int)w->aux); /* its arrival index */
    b->arrived_ = 0;
    b->round_++;
    gr__sync_unlock(&b->lock_);
    gr__wakeset_wake(&ws);
    return (int)index;
}

static int reset(gr_barrier *b, uint32_t broken)
{
    if (!b)
        return -EINVAL;
    struct gr__wakeset ws = GR__WAKESET_INIT;
    gr__sync_lock(&b->lock_);
    break_round(b, &ws, broken);
    gr__sync_unlock(&b->lock_);
    gr__wakeset_wake(&ws);
    return 0;
}

int gr_barrier_abort(gr_barrier *b)
{
    return reset(b, 1);
}

int gr_barrier_reset(gr_barrier *b)
{
    return reset(b, 0);
}

int gr_barrier_n_waiting(gr_barrier *b)
{
    if (!b)
        return -EINVAL;
    gr__sync_lock(&b->lock_);
    int n = (int)b->arrived_;
    gr__sync_unlock(&b->lock_);
    return n;
}

int gr_barrier_broken(gr_barrier *b)
{
    if (!b)
        return -EINVAL;
    gr__sync_lock(&b->lock_);
    int broken = (int)b->broken_;
    gr__sync_unlock(&b->lock_);
    return broken;
}
