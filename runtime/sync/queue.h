/* asyncio-style queues: the object (queue.c has the operations). */
#ifndef GR_SYNC_QUEUE_H
#define GR_SYNC_QUEUE_H

#include "greenring.h"
#include "sync/ering.h"
#include "sync/waiter.h"

enum gr__queue_kind { GR__QUEUE_FIFO, GR__QUEUE_LIFO, GR__QUEUE_PRIO };

struct gr_queue {
    gr_spin_ lock;
    enum gr__queue_kind kind;
    size_t maxsize; /* 0: unbounded */
    gr_queue_cmp cmp;
    struct gr__ering items;
    char *scratch; /* PRIO: one element, for swaps */
    gr__waitq getters, putters, joiners;
    size_t unfinished;
    int shutdown;
};

#endif
