/* Channels: internals shared by chan.c (send, receive, close) and select.c.
 *
 * A channel is a spinlock, a ring buffer and two FIFOs of waiting nodes:
 * senders (when the buffer is full, or always for a rendezvous channel) and
 * receivers (when it is empty). A waiting call owns one chan_op (its park
 * record) and one node per channel it waits on: a plain send or receive has
 * one, a select one per case, all pointing at the same op.
 *
 * Who wins a waiting call: whoever claims its op (gr__swait_claim, the CAS
 * of sync/waiter.h; Go's selectDone): a counterpart or close, under the
 * channel's lock, or the interrupt hook. A node whose claim fails is left
 * linked and skipped: its call fired on another channel (a select) or is
 * being interrupted. Whoever claimed a node unlinks it; a plain call's
 * interrupt unlinks its own node, and a select unlinks its remaining nodes
 * under each channel's lock before it returns. */
#ifndef GR_SYNC_CHAN_H
#define GR_SYNC_CHAN_H

#include <stdatomic.h>

#include "greenring.h"
#include "sync/ering.h"
#include "sync/waiter.h"

struct gr_chan {
    gr_spin_ lock;
    size_t esize;
    size_t cap; /* 0 rendezvous, GR_CHAN_UNBOUNDED, or the buffer's size */
    int closed;
    struct gr__ering buf;
    gr__waitq recvq, sendq;
};

struct gr__chan_node;

struct gr__chan_op {
    struct gr__swait sw;
    int is_select;
    int fired;                   /* index of the node that completed it */
    struct gr__chan_node *plain; /* plain call: its only node */
};

struct gr__chan_node {
    struct gr_wnode_ link; /* in ch->sendq or ch->recvq */
    struct gr__chan_op *op;
    gr_chan *ch;
    gr__waitq *q;
    void *elem; /* send: source; receive: destination or NULL */
    int index;  /* case index */
    int result; /* set by the winner: 0 or -EPIPE */
    struct gr__chan_node *wake_next;
};

/* Nodes completed under the lock, woken after it. */
struct gr__chan_wakes {
    struct gr__chan_node *head;
};

void gr__chan_op_init(struct gr__chan_op *op, struct gr__task *self, int is_select);
void gr__chan_node_init(struct gr__chan_node *n, struct gr__chan_op *op, gr_chan *ch, int send,
                        void *elem, int index);
/* Lock held: link the node at the tail of its queue. */
void gr__chan_enqueue(struct gr__chan_node *n);

/* Lock held. 1: done (a waiting counterpart, if any, was added to wakes);
 * 0: would wait; -EPIPE (closed), -ENOMEM. */
int gr__chan_try_send_locked(gr_chan *ch, const void *elem, struct gr__chan_wakes *wakes);
int gr__chan_try_recv_locked(gr_chan *ch, void *elem, struct gr__chan_wakes *wakes);
/* After unlocking: wake the nodes collected. */
void gr__chan_wake(struct gr__chan_wakes *wakes);

#endif
