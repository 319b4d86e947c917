/* Local run queue: a fixed-size lock-free deque owned by one worker
 * (Chase-Lev, bounded). The owner pushes at the back; it pops at the back
 * (LIFO: the worker's queue of spawned tasks, so fork-join programs run
 * depth-first and keep few stacks alive, the Cilk space bound) or at the
 * front (FIFO: its queue of woken tasks). Other workers steal from the
 * front, one CAS per task. */
#ifndef GR_CORE_RUNQ_H
#define GR_CORE_RUNQ_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/attrs.h"

struct gr__task;

#define GR_RUNQ_SIZE 256u /* power of two */

struct gr__runq {
    _Atomic uint32_t head GR_ALIGNED_CACHELINE; /* front: thieves, and the owner (FIFO) */
    _Atomic uint32_t tail GR_ALIGNED_CACHELINE; /* back: owner only */
    _Atomic(struct gr__task *) slots[GR_RUNQ_SIZE];
};

/* Owner only. 0, or -ENOSPC when full. */
int gr__runq_push_back(struct gr__runq *q, struct gr__task *t);
/* Owner only. NULL when empty. */
struct gr__task *gr__runq_pop_back(struct gr__runq *q);
/* Any thread (the owner for fairness, thieves for stealing). NULL when
 * empty or when another thread won the race for that task. */
struct gr__task *gr__runq_pop_front(struct gr__runq *q);
/* Any thread; a snapshot that may be stale at once. */
uint32_t gr__runq_len(struct gr__runq *q);

#endif
