/* Channels: send, receive, close (see chan.h for the waiting protocol).
 *
 * Elements move by hand-off under the channel's lock: a send with a
 * receiver waiting copies straight into the receiver's buffer; a receive
 * from a full buffer refills it from the first waiting sender, so senders
 * and elements stay in FIFO order. The woken party finds its operation
 * done when it resumes. */
#include "sync/chan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/attrs.h"
#include "sync/spinlock.h"

#define NODE_OF(l) GR_CONTAINER_OF(l, struct gr__chan_node, link)

/* ---------------------------------------------------------------------
 * Life cycle
 * --------------------------------------------------------------------- */

int gr_chan_create(gr_chan **out, size_t elem_size, size_t capacity)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (elem_size == 0)
        return -EINVAL;
    gr_chan *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return -ENOMEM;
    size_t prealloc = capacity == GR_CHAN_UNBOUNDED ? 0 : capacity;
    int rc = gr__ering_init(&ch->buf, elem_size, prealloc);
    if (rc < 0) {
        free(ch);
        return rc;
    }
    ch->esize = elem_size;
    ch->cap = capacity;
    gr__waitq_init(&ch->recvq);
    gr__waitq_init(&ch->sendq);
    *out = ch;
    return 0;
}

int gr_chan_destroy(gr_chan *ch)
{
    if (!ch)
        return -EINVAL;
    gr__sync_lock(&ch->lock);
    int busy = !gr__waitq_empty(&ch->recvq) || !gr__waitq_empty(&ch->sendq);
    gr__sync_unlock(&ch->lock);
    if (busy)
        return -EBUSY;
    gr__ering_destroy(&ch->buf);
    free(ch);
    return 0;
}

size_t gr_chan_len(gr_chan *ch)
{
    if (!ch)
        return 0;
    gr__sync_lock(&ch->lock);
    size_t n = ch->buf.len;
    gr__sync_unlock(&ch->lock);
    return n;
}

size_t gr_chan_cap(gr_chan *ch)
{
    return ch ? ch->cap : 0;
}

/* ---------------------------------------------------------------------
 * Waiting nodes
 * --------------------------------------------------------------------- */

void gr__chan_op_init(struct gr__chan_op *op, struct gr__task *self, int is_select)
{
    gr__swait_prepare(&op->sw, self);
    op->is_select = is_select;
    op->fired = -1;
    op->plain = NULL;
}

void gr__chan_node_init(struct gr__chan_node *n, struct gr__chan_op *op, gr_chan *ch, int send,
                        void *elem, int index)
{
    n->link.linked = 0;
    n->op = op;
    n->ch = ch;
    n->q = send ? &ch->sendq : &ch->recvq;
    n->elem = elem;
    n->index = index;
    n->result = 0;
    n->wake_next = NULL;
}

void gr__chan_enqueue(struct gr__chan_node *n)
{
    gr__waitq_push(n->q, &n->link);
}

/* Lock held: the first node of q whose call this caller could claim,
 * unlinked. Nodes of calls that fired elsewhere or are being interrupted
 * stay linked for their owners to remove. */
static struct gr__chan_node *pop_live(gr__waitq *q)
{
    for (struct gr_wnode_ *l = q->head_; l; l = l->next) {
        struct gr__chan_node *n = NODE_OF(l);
        if (gr__swait_claim(&n->op->sw)) {
            gr__waitq_remove(q, l);
            return n;
        }
    }
    return NULL;
}

static void add_wake(struct gr__chan_wakes *wakes, struct gr__chan_node *n, int result)
{
    n->result = result;
    n->wake_next = wakes->head;
    wakes->head = n;
}

void gr__chan_wake(struct gr__chan_wakes *wakes)
{
    struct gr__chan_node *n = wakes->head;
    while (n) {
        /* Read everything first: the node may vanish once woken. */
        struct gr__chan_node *next = n->wake_next;
        struct gr__chan_op *op = n->op;
        op->fired = n->index;
        gr__swait_wake(&op->sw, op->is_select ? 0 : n->result);
        n = next;
    }
    wakes->head = NULL;
}

/* ---------------------------------------------------------------------
 * The operations, lock held
 * --------------------------------------------------------------------- */

int gr__chan_try_send_locked(gr_chan *ch, const void *elem, struct gr__chan_wakes *wakes)
{
    if (ch->closed)
        return -EPIPE;
    struct gr__chan_node *r = pop_live(&ch->recvq);
    if (r) {
        if (r->elem)
            memcpy(r->elem, elem, ch->esize);
        add_wake(wakes, r, 0);
        return 1;
    }
    if (ch->buf.len >= ch->cap)
        return 0;
    int rc = gr__ering_push_back(&ch->buf, elem);
    return rc < 0 ? rc : 1;
}

int gr__chan_try_recv_locked(gr_chan *ch, void *elem, struct gr__chan_wakes *wakes)
{
    struct gr__chan_node *s;
    if (ch->buf.len) {
        gr__ering_pop_front(&ch->buf, elem);
        /* Refill from the first waiting sender: there is room now (senders
         * only wait on a full bounded buffer, which never grows). */
        if ((s = pop_live(&ch->sendq))) {
            gr__ering_push_back(&ch->buf, s->elem);
            add_wake(wakes, s, 0);
        }
        return 1;
    }
    if ((s = pop_live(&ch->sendq))) {
        if (elem)
            memcpy(elem, s->elem, ch->esize);
        add_wake(wakes, s, 0);
        return 1;
    }
    return ch->closed ? -EPIPE : 0;
}

/* ---------------------------------------------------------------------
 * Send, receive
 * --------------------------------------------------------------------- */

/* Cancellation or a timeout scope of a plain send/receive. */
static void plain_interrupt(struct gr__wait *w, int reason)
{
    struct gr__swait *sw = GR_CONTAINER_OF(w, struct gr__swait, wait);
    struct gr__chan_op *op = GR_CONTAINER_OF(sw, struct gr__chan_op, sw);
    struct gr__chan_node *n = op->plain;
    if (!gr__swait_claim(sw))
        return; /* a counterpart's wake is on its way; the channel may be gone */
    gr__sync_lock(&n->ch->lock);
    gr__waitq_remove(n->q, &n->link); /* still linked: only claimers unlink */
    gr__sync_unlock(&n->ch->lock);
    gr__swait_wake(sw, reason ? reason : -ETIMEDOUT);
}

typedef int (*try_fn)(gr_chan *ch, void *elem, struct gr__chan_wakes *wakes);

static int try_send_fn(gr_chan *ch, void *elem, struct gr__chan_wakes *wakes)
{
    return gr__chan_try_send_locked(ch, elem, wakes);
}

/* One attempt; returns 0/-errno, or 1 with the lock still held when the
 * call would have to wait. */
static int attempt(gr_chan *ch, try_fn fn, void *elem)
{
    struct gr__chan_wakes wakes = {NULL};
    gr__sync_lock(&ch->lock);
    int rc = fn(ch, elem, &wakes);
    if (rc == 0)
        return 1;
    gr__sync_unlock(&ch->lock);
    gr__chan_wake(&wakes);
    return rc < 0 ? rc : 0;
}

static int transfer(gr_chan *ch, int send, void *elem)
{
    struct gr__task *self;
    int rc = gr__sync_enter(&self, 1);
    if (rc < 0)
        return rc;
    rc = attempt(ch, send ? try_send_fn : gr__chan_try_recv_locked, elem);
    if (rc != 1)
        return rc;
    struct gr__chan_op op;
    struct gr__chan_node n;
    gr__chan_op_init(&op, self, 0);
    gr__chan_node_init(&n, &op, ch, send, elem, 0);
    op.plain = &n;
    gr__chan_enqueue(&n);
    gr__sync_unlock(&ch->lock);
    return gr__swait_park(&op.sw, send ? "chan send" : "chan recv", plain_interrupt,
                          GR_NO_DEADLINE);
}

int gr_chan_send(gr_chan *ch, const void *elem)
{
    if (!ch || !elem)
        return -EINVAL;
    return transfer(ch, 1, (void *)elem);
}

int gr_chan_recv(gr_chan *ch, void *elem)
{
    if (!ch)
        return -EINVAL;
    return transfer(ch, 0, elem);
}

static int try_transfer(gr_chan *ch, try_fn fn, void *elem)
{
    int rc = attempt(ch, fn, elem);
    if (rc != 1)
        return rc;
    gr__sync_unlock(&ch->lock);
    return -EAGAIN;
}

int gr_chan_try_send(gr_chan *ch, const void *elem)
{
    if (!ch || !elem)
        return -EINVAL;
    return try_transfer(ch, try_send_fn, (void *)elem);
}

int gr_chan_try_recv(gr_chan *ch, void *elem)
{
    if (!ch)
        return -EINVAL;
    return try_transfer(ch, gr__chan_try_recv_locked, elem);
}

/* ---------------------------------------------------------------------
 * Close
 * --------------------------------------------------------------------- */

static void fail_all(gr__waitq *q, struct gr__chan_wakes *wakes)
{
    struct gr__chan_node *n;
    while ((n = pop_live(q)))
        add_wake(wakes, n, -EPIPE);
}

int gr_chan_close(gr_chan *ch)
{
    if (!ch)
        return -EINVAL;
    struct gr__chan_wakes wakes = {NULL};
    gr__sync_lock(&ch->lock);
    if (ch->closed) {
        gr__sync_unlock(&ch->lock);
        return -EPIPE;
    }
    ch->closed = 1;
    /* Waiting receivers exist only while the buffer is empty, so none of
     * them could still get an element. */
    fail_all(&ch->recvq, &wakes);
    fail_all(&ch->sendq, &wakes);
    gr__sync_unlock(&ch->lock);
    gr__chan_wake(&wakes);
    return 0;
}
