/* Intrusive FIFO of waiters (gr_wlist_ in greenring.h): a doubly linked
 * list of nodes that live inside wait records on the waiters' stacks.
 * Every operation happens under the owning object's spinlock; `linked` is
 * how an interrupt hook learns, under that lock, whether its waiter is still
 * waiting or was already taken by a winner. */
#ifndef GR_SYNC_WAITQ_H
#define GR_SYNC_WAITQ_H

#include <stddef.h>

#include "greenring.h"

struct gr_wnode_ {
    struct gr_wnode_ *prev, *next;
    int linked;
};

typedef gr_wlist_ gr__waitq;

static inline void gr__waitq_init(gr__waitq *q)
{
    q->head_ = q->tail_ = NULL;
}

static inline int gr__waitq_empty(const gr__waitq *q)
{
    return q->head_ == NULL;
}

static inline void gr__waitq_push(gr__waitq *q, struct gr_wnode_ *n)
{
    n->next = NULL;
    n->prev = q->tail_;
    if (q->tail_)
        q->tail_->next = n;
    else
        q->head_ = n;
    q->tail_ = n;
    n->linked = 1;
}

static inline void gr__waitq_remove(gr__waitq *q, struct gr_wnode_ *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        q->head_ = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        q->tail_ = n->prev;
    n->prev = n->next = NULL;
    n->linked = 0;
}

/* Unlink and return the first node, or NULL. */
static inline struct gr_wnode_ *gr__waitq_pop(gr__waitq *q)
{
    struct gr_wnode_ *n = q->head_;
    if (n)
        gr__waitq_remove(q, n);
    return n;
}

#endif
