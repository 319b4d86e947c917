/* asyncio-style queues: FIFO (Queue), LIFO (LifoQueue) and priority
 * (PriorityQueue, a binary min-heap), with task_done/join and Python 3.13
 * shutdown.
 *
 * Unlike asyncio, where a woken getter or putter retries and may lose to a
 * newcomer, items move by hand-off under the lock: a put with getters
 * waiting (the queue is then empty) gives its item to the first getter; a
 * get from a full queue moves the first waiting putter's item in. So
 * waiters are served strictly FIFO and a woken waiter's operation is done
 * when it resumes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sync/queue.h"
#include "sync/spinlock.h"

/* Bounded queues up to this size get their storage at creation; larger
 * ones grow by doubling up to maxsize (once grown, it stays). */
#define PREALLOC_MAX 4096

/* ---------------------------------------------------------------------
 * Storage (lock held)
 * --------------------------------------------------------------------- */

static int before(gr_queue *q, size_t a, size_t b)
{
    return q->cmp(gr__ering_at(&q->items, a), gr__ering_at(&q->items, b)) < 0;
}

static void swap(gr_queue *q, size_t a, size_t b)
{
    size_t n = q->items.esize;
    void *pa = gr__ering_at(&q->items, a), *pb = gr__ering_at(&q->items, b);
    memcpy(q->scratch, pa, n);
    memcpy(pa, pb, n);
    memcpy(pb, q->scratch, n);
}

static void sift_up(gr_queue *q, size_t i)
{
    while (i > 0 && before(q, i, (i - 1) / 2)) {
        swap(q, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void sift_down(gr_queue *q, size_t i)
{
    size_t len = q->items.len;
    for (;;) {
        size_t least = i, l = 2 * i + 1, r = l + 1;
        if (l < len && before(q, l, least))
            least = l;
        if (r < len && before(q, r, least))
            least = r;
        if (least == i)
            return;
        swap(q, i, least);
        i = least;
    }
}

static int insert(gr_queue *q, const void *elem)
{
    int rc = gr__ering_push_back(&q->items, elem);
    if (rc == 0 && q->kind == GR__QUEUE_PRIO)
        sift_up(q, q->items.len - 1);
    return rc;
}

static void take(gr_queue *q, void *out)
{
    switch (q->kind) {
    case GR__QUEUE_FIFO:
        gr__ering_pop_front(&q->items, out);
        break;
    case GR__QUEUE_LIFO:
        gr__ering_pop_back(&q->items, out);
        break;
    case GR__QUEUE_PRIO:
        if (out)
            memcpy(out, gr__ering_at(&q->items, 0), q->items.esize);
        if (q->items.len > 1)
            swap(q, 0, q->items.len - 1);
        gr__ering_pop_back(&q->items, NULL);
        sift_down(q, 0);
        break;
    }
}

/* ---------------------------------------------------------------------
 * Life cycle
 * --------------------------------------------------------------------- */

static int create(gr_queue **out, size_t elem_size, size_t maxsize, enum gr__queue_kind kind,
                  gr_queue_cmp cmp)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (elem_size == 0 || (kind == GR__QUEUE_PRIO && !cmp))
        return -EINVAL;
    gr_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->kind = kind;
    q->maxsize = maxsize;
    q->cmp = cmp;
    size_t prealloc = maxsize <= PREALLOC_MAX ? maxsize : 0;
    int rc = gr__ering_init(&q->items, elem_size, prealloc);
    if (rc == 0 && kind == GR__QUEUE_PRIO && !(q->scratch = malloc(elem_size)))
        rc = -ENOMEM;
    if (rc < 0) {
        gr__ering_destroy(&q->items);
        free(q);
        return rc;
    }
    gr__waitq_init(&q->getters);
    gr__waitq_init(&q->putters);
    gr__waitq_init(&q->joiners);
    *out = q;
    return 0;
}

int gr_queue_create(gr_queue **out, size_t elem_size, size_t maxsize)
{
    return create(out, elem_size, maxsize, GR__QUEUE_FIFO, NULL);
}

int gr_lifo_queue_create(gr_queue **out, size_t elem_size, size_t maxsize)
{
    return create(out, elem_size, maxsize, GR__QUEUE_LIFO, NULL);
}

int gr_priority_queue_create(gr_queue **out, size_t elem_size, size_t maxsize,
                             gr_queue_cmp cmp)
{
    return create(out, elem_size, maxsize, GR__QUEUE_PRIO, cmp);
}

int gr_queue_destroy(gr_queue *q)
{
    if (!q)
        return -EINVAL;
    gr__sync_lock(&q->lock);
    int busy = !gr__waitq_empty(&q->getters) || !gr__waitq_empty(&q->putters) ||
               !gr__waitq_empty(&q->joiners);
    gr__sync_unlock(&q->lock);
    if (busy)
        return -EBUSY;
    gr__ering_destroy(&q->items);
    free(q->scratch);
    free(q);
    return 0;
}

/* ---------------------------------------------------------------------
 * put / get (lock held): 1 done, 0 would wait, or -errno
 * --------------------------------------------------------------------- */

static int try_put(gr_queue *q, const void *elem, struct gr__wakeset *ws)
{
    if (q->shutdown)
        return -ESHUTDOWN;
    struct gr__waiter *g = gr__waiter_pop(&q->getters);
    if (g) {
        if (g->data)
            memcpy(g->data, elem, q->items.esize);
        gr__wakeset_add(ws, g, 0);
    } else if (q->maxsize && q->items.len >= q->maxsize) {
        return 0;
    } else {
        int rc = insert(q, elem);
        if (rc < 0)
            return rc;
    }
    q->unfinished++;
    return 1;
}

static int try_get(gr_queue *q, void *elem, struct gr__wakeset *ws)
{
    if (!q->items.len)
        return q->shutdown ? -ESHUTDOWN : 0;
    take(q, elem);
    /* Putters only wait on a full queue: there is room for one now, and
     * the storage has it (it held the item just taken). */
    struct gr__waiter *p = gr__waiter_pop(&q->putters);
    if (p) {
        insert(q, p->data);
        q->unfinished++;
        gr__wakeset_add(ws, p, 0);
    }
    return 1;
}

typedef int (*try_fn)(gr_queue *q, void *elem, struct gr__wakeset *ws);

static int try_put_fn(gr_queue *q, void *elem, struct gr__wakeset *ws)
{
    return try_put(q, elem, ws);
}

/* 0/-errno when done or failed; 1 with the lock held when it must wait. */
static int attempt(gr_queue *q, try_fn fn, void *elem)
{
    struct gr__wakeset ws = GR__WAKESET_INIT;
    gr__sync_lock(&q->lock);
    int rc = fn(q, elem, &ws);
    if (rc == 0)
        return 1;
    gr__sync_unlock(&q->lock);
    gr__wakeset_wake(&ws);
    return rc < 0 ? rc : 0;
}

static int blocking(gr_queue *q, try_fn fn, void *elem, gr__waitq *wq, const char *reason)
{
    struct gr__task *self;
    int rc = gr__sync_enter(&self, 1);
    if (rc < 0)
        return rc;
    rc = attempt(q, fn, elem);
    if (rc != 1)
        return rc;
    struct gr__waiter w;
    gr__waiter_init(&w, self, &q->lock, wq);
    w.data = elem;
    /* 0: a counterpart moved the item; -ESHUTDOWN; or the interrupt. */
    return gr__waiter_park(&w, reason);
}

static int nowait(gr_queue *q, try_fn fn, void *elem)
{
    int rc = attempt(q, fn, elem);
    if (rc != 1)
        return rc;
    gr__sync_unlock(&q->lock);
    return -EAGAIN;
}

int gr_queue_put(gr_queue *q, const void *elem)
{
    if (!q || !elem)
        return -EINVAL;
    return blocking(q, try_put_fn, (void *)elem, &q->putters, "queue put");
}

int gr_queue_get(gr_queue *q, void *elem)
{
    if (!q)
        return -EINVAL;
    return blocking(q, try_get, elem, &q->getters, "queue get");
}

int gr_queue_put_nowait(gr_queue *q, const void *elem)
{
    if (!q || !elem)
        return -EINVAL;
    return nowait(q, try_put_fn, (void *)elem);
}

int gr_queue_get_nowait(gr_queue *q, void *elem)
{
    if (!q)
        return -EINVAL;
    return nowait(q, try_get, elem);
}

/* ---------------------------------------------------------------------
 * task_done / join / shutdown
 * --------------------------------------------------------------------- */

int gr_queue_task_done(gr_queue *q)
{
    if (!q)
        return -EINVAL;
    struct gr__wakeset ws = GR__WAKESET_INIT;
    int rc = 0;
    gr__sync_lock(&q->lock);
    if (!q->unfinished)
        rc = -EINVAL;
    else if (--q->unfinished == 0)
        gr__wakeset_add_all(&ws, &q->joiners, 0);
    gr__sync_unlock(&q->lock);
    gr__wakeset_wake(&ws);
    return rc;
}

int gr_queue_join(gr_queue *q)
{
    if (!q)
        return -EINVAL;
    struct gr__task *self;
    int rc = gr__sync_enter(&self, 1);
    if (rc < 0)
        return rc;
    gr__sync_lock(&q->lock);
    if (!q->unfinished) {
        gr__sync_unlock(&q->lock);
        return 0;
    }
    struct gr__waiter w;
    gr__waiter_init(&w, self, &q->lock, &q->joiners);
    return gr__waiter_park(&w, "queue join");
}

int gr_queue_shutdown(gr_queue *q, int immediate)
{
    if (!q)
        return -EINVAL;
    struct gr__wakeset ws = GR__WAKESET_INIT;
    gr__sync_lock(&q->lock);
    q->shutdown = 1;
    if (immediate) {
        while (q->items.len) {
            take(q, NULL);
            if (q->unfinished)
                q->unfinished--;
        }
        if (!q->unfinished)
            gr__wakeset_add_all(&ws, &q->joiners, 0);
    }
    /* Getters wait only on an empty queue, which stays empty now. */
    gr__wakeset_add_all(&ws, &q->getters, -ESHUTDOWN);
    gr__wakeset_add_all(&ws, &q->putters, -ESHUTDOWN);
    gr__sync_unlock(&q->lock);
    gr__wakeset_wake(&ws);
    return 0;
}

/* ---------------------------------------------------------------------
 * Queries (snapshots)
 * --------------------------------------------------------------------- */

size_t gr_queue_qsize(gr_queue *q)
{
    if (!q)
        return 0;
    gr__sync_lock(&q->lock);
    size_t n = q->items.len;
    gr__sync_unlock(&q->lock);
    return n;
}

size_t gr_queue_maxsize(gr_queue *q)
{
    return q ? q->maxsize : 0;
}

int gr_queue_empty(gr_queue *q)
{
    if (!q)
        return -EINVAL;
    return gr_queue_qsize(q) == 0;
}

int gr_queue_full(gr_queue *q)
{
    if (!q)
        return -EINVAL;
    return q->maxsize && gr_queue_qsize(q) >= q->maxsize;
}
