#include "core/runq.h"

#include <errno.h>
#include <stddef.h>

/* Slots are atomics because a thief may read a slot while the owner
 * rewrites it; the thief's CAS on head then fails and it drops what it read.
 * Relaxed is enough for the slots themselves: publication is carried by the
 * orderings on head and tail. Indices are free-running uint32 counters;
 * (int32_t)(a - b) compares them modulo 2^32. */

int gr__runq_push_back(struct gr__runq *q, struct gr__task *t)
{
    /* acquire: pairs with the thieves' CAS on head, so the slot we reuse
     * has been read by whoever took it. */
    uint32_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    /* relaxed: only this thread writes tail. */
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (tail - head >= GR_RUNQ_SIZE)
        return -ENOSPC;
    atomic_store_explicit(&q->slots[tail % GR_RUNQ_SIZE], t, memory_order_relaxed);
    /* release: a thief that acquires tail sees the slot and the task. */
    atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
    return 0;
}

struct gr__task *gr__runq_pop_back(struct gr__runq *q)
{
    /* relaxed: only this thread writes tail. */
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    /* relaxed: only the owner adds tasks, so a queue that looks empty is
     * empty; this skips the fence on the common idle path. */
    if (atomic_load_explicit(&q->head, memory_order_relaxed) == tail)
        return NULL;
    tail--;
    atomic_store_explicit(&q->tail, tail, memory_order_relaxed);
    /* seq_cst fence: the tail store must be visible before we read head,
     * and a thief's head CAS before its tail read (Chase-Lev). */
    atomic_thread_fence(memory_order_seq_cst);
    uint32_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    if ((int32_t)(tail - head) < 0) {
        atomic_store_explicit(&q->tail, tail + 1, memory_order_relaxed);
        return NULL;
    }
    struct gr__task *t = atomic_load_explicit(&q->slots[tail % GR_RUNQ_SIZE],
                                              memory_order_relaxed);
    if (tail == head) {
        /* The last task: race thieves for it on head. seq_cst: part of the
         * Chase-Lev total order. */
        if (!atomic_compare_exchange_strong_explicit(&q->head, &head, head + 1,
                                                     memory_order_seq_cst,
                                                     memory_order_relaxed))
            t = NULL;
        atomic_store_explicit(&q->tail, tail + 1, memory_order_relaxed);
    }
    return t;
}

struct gr__task *gr__runq_pop_front(struct gr__runq *q)
{
    /* acquire: see slots published by push_front's release CAS. */
    uint32_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    /* seq_cst fence: pairs with the one in pop_back (Chase-Lev steal). */
    atomic_thread_fence(memory_order_seq_cst);
    /* acquire: see slots published by push_back's release store. */
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    if ((int32_t)(tail - head) <= 0)
        return NULL;
    struct gr__task *t = atomic_load_explicit(&q->slots[head % GR_RUNQ_SIZE],
                                              memory_order_relaxed);
    /* seq_cst: decides the race with pop_back on the last task and with
     * other thieves. */
    if (!atomic_compare_exchange_strong_explicit(&q->head, &head, head + 1, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return NULL;
    return t;
}

uint32_t gr__runq_len(struct gr__runq *q)
{
    /* relaxed: an estimate for heuristics. */
    uint32_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    int32_t n = (int32_t)(tail - head);
    return n > 0 ? (uint32_t)n : 0;
}
