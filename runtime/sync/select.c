/* gr_select: wait on several channel operations, perform exactly one.
 *
 * Go's algorithm. Lock every channel involved (in address order, each
 * once), then try the cases in a random order and perform the first one
 * that can proceed: uniform fairness among the ready cases. If none can,
 * link one node per case into its channel's queue (all nodes share one op)
 * while still holding every lock, so no operation can slip between the
 * check and the enqueue; unlock and park. The first counterpart (or close,
 * or the interrupt) to claim the op wins; the select then unlinks its other
 * nodes, one channel lock at a time, before it returns. */
#include <errno.h>
#include <stdlib.h>

#include "core/attrs.h"
#include "sync/chan.h"
#include "sync/spinlock.h"

#define STACK_CASES 8

struct sel {
    gr_select_case *cases;
    size_t n;
    struct gr__chan_node *nodes;
    gr_chan **locks; /* distinct channels, sorted by address */
    size_t nlocks;
    uint32_t *order; /* the cases in random order */
};

static int validate(const gr_select_case *cases, size_t n)
{
    if (!cases || n == 0 || n > INT32_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        const gr_select_case *c = &cases[i];
        if (c->op != GR_SELECT_SEND && c->op != GR_SELECT_RECV)
            return -EINVAL;
        if (c->chan && c->op == GR_SELECT_SEND && !c->elem)
            return -EINVAL;
    }
    return 0;
}

/* Sorted, deduplicated channels: the lock order. Insertion sort: selects
 * are small. */
static void collect_locks(struct sel *s)
{
    s->nlocks = 0;
    for (size_t i = 0; i < s->n; i++) {
        gr_chan *ch = s->cases[i].chan;
        if (!ch)
            continue;
        size_t j = s->nlocks;
        while (j > 0 && (uintptr_t)s->locks[j - 1] > (uintptr_t)ch)
            j--;
        if (j > 0 && s->locks[j - 1] == ch)
            continue;
        for (size_t k = s->nlocks; k > j; k--)
            s->locks[k] = s->locks[k - 1];
        s->locks[j] = ch;
        s->nlocks++;
    }
}

static void shuffle(struct sel *s)
{
    for (size_t i = 0; i < s->n; i++)
        s->order[i] = (uint32_t)i;
    for (size_t i = s->n; i > 1; i--) {
        size_t j = gr__sync_random() % i;
        uint32_t t = s->order[i - 1];
        s->order[i - 1] = s->order[j];
        s->order[j] = t;
    }
}

static void lock_all(struct sel *s)
{
    for (size_t i = 0; i < s->nlocks; i++)
        gr__sync_lock(&s->locks[i]->lock);
}

static void unlock_all(struct sel *s)
{
    for (size_t i = s->nlocks; i > 0; i--)
        gr__sync_unlock(&s->locks[i - 1]->lock);
}

/* All locks held: perform the first ready case in random order. Returns its
 * index (its result in cases[i].result), or -1. */
static int poll_cases(struct sel *s, struct gr__chan_wakes *wakes)
{
    for (size_t k = 0; k < s->n; k++) {
        uint32_t i = s->order[k];
        gr_select_case *c = &s->cases[i];
        if (!c->chan)
            continue;
        int rc = c->op == GR_SELECT_SEND ? gr__chan_try_send_locked(c->chan, c->elem, wakes)
                                         : gr__chan_try_recv_locked(c->chan, c->elem, wakes);
        if (rc != 0) {
            c->result = rc < 0 ? rc : 0;
            return (int)i;
        }
    }
    return -1;
}

static void select_interrupt(struct gr__wait *w, int reason)
{
    struct gr__swait *sw = GR_CONTAINER_OF(w, struct gr__swait, wait);
    /* Touches nothing but the op: the channels may be in use by a winner. */
    if (gr__swait_claim(sw))
        gr__swait_wake(sw, reason ? reason : -ETIMEDOUT); /* 0: the select's deadline */
}

/* After the wake: take the nodes that nobody took out of their queues. */
static void unlink_rest(struct sel *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct gr__chan_node *n = &s->nodes[i];
        if (!s->cases[i].chan)
            continue;
        gr__sync_lock(&n->ch->lock);
        if (n->link.linked)
            gr__waitq_remove(n->q, &n->link);
        gr__sync_unlock(&n->ch->lock);
    }
}

static int wait_cases(struct sel *s, struct gr__task *self, int64_t deadline)
{
    struct gr__chan_op op;
    gr__chan_op_init(&op, self, 1);
    for (size_t i = 0; i < s->n; i++) {
        gr_select_case *c = &s->cases[i];
        if (!c->chan)
            continue;
        gr__chan_node_init(&s->nodes[i], &op, c->chan, c->op == GR_SELECT_SEND, c->elem, (int)i);
        gr__chan_enqueue(&s->nodes[i]);
    }
    unlock_all(s);
    int rc = gr__swait_park(&op.sw, "select", select_interrupt, deadline);
    unlink_rest(s);
    if (rc < 0)
        return rc;
    s->cases[op.fired].result = s->nodes[op.fired].result;
    return op.fired;
}

static int run(struct sel *s, struct gr__task *self, int64_t deadline)
{
    collect_locks(s);
    shuffle(s);
    struct gr__chan_wakes wakes = {NULL};
    lock_all(s);
    int fired = poll_cases(s, &wakes);
    if (fired >= 0) {
        unlock_all(s);
        gr__chan_wake(&wakes);
        return fired;
    }
    if (deadline != GR_NO_DEADLINE && deadline <= gr_now()) {
        unlock_all(s);
        return -ETIMEDOUT;
    }
    return wait_cases(s, self, deadline);
}

int gr_select(gr_select_case *cases, size_t n, int64_t deadline)
{
    int rc = validate(cases, n);
    if (rc < 0)
        return rc;
    struct gr__task *self;
    rc = gr__sync_enter(&self, 1);
    if (rc < 0)
        return rc;
    struct gr__chan_node nodes[STACK_CASES];
    gr_chan *locks[STACK_CASES];
    uint32_t order[STACK_CASES];
    struct sel s = {.cases = cases, .n = n, .nodes = nodes, .locks = locks, .order = order};
    void *heap = NULL;
    if (n > STACK_CASES) {
        heap = malloc(n * (sizeof(*nodes) + sizeof(*locks) + sizeof(*order)));
        if (!heap)
            return -ENOMEM;
        s.nodes = heap;
        s.locks = (gr_chan **)(void *)(s.nodes + n);
        s.order = (uint32_t *)(void *)(s.locks + n);
    }
    rc = run(&s, self, deadline);
    free(heap);
    return rc;
}
