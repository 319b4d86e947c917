/* Per-worker timer heap (binary min-heap on the deadline).
 *
 * Timer nodes live inside wait records on parked tasks' stacks; the heap
 * stores pointers and each node remembers its index so it can be removed in
 * O(log n). A heap belongs to one worker and is only touched by that worker's
 * thread: a task parked on worker W has all its wake-ups delivered by W, so
 * its timer is armed and disarmed there (docs/architecture.md). */
#ifndef GR_CORE_TIMER_H
#define GR_CORE_TIMER_H

#include <stdint.h>

struct gr__timer {
    int64_t deadline;
    uint32_t index; /* position in the heap; GR_TIMER_IDLE when not armed */
    uint32_t seq;   /* insertion order: equal deadlines fire first-in first-out */
};

#define GR_TIMER_IDLE UINT32_MAX

/* The deadline and order live in the heap array itself, so sifting
 * compares entries in one array instead of reading 100k different task
 * stacks; the node is only touched to update its index. */
struct gr__timer_entry {
    int64_t deadline;
    uint32_t seq;
    struct gr__timer *node;
};

struct gr__timer_heap {
    struct gr__timer_entry *nodes;
    uint32_t len, cap;
    uint32_t next_seq;
};

void gr__timer_heap_init(struct gr__timer_heap *h);
void gr__timer_heap_destroy(struct gr__timer_heap *h);
/* Returns 0 or -ENOMEM. */
int gr__timer_arm(struct gr__timer_heap *h, struct gr__timer *t, int64_t deadline);
void gr__timer_disarm(struct gr__timer_heap *h, struct gr__timer *t);
/* The earliest timer, or NULL. */
struct gr__timer *gr__timer_first(const struct gr__timer_heap *h);

static inline int gr__timer_armed(const struct gr__timer *t)
{
    return t->index != GR_TIMER_IDLE;
}

#endif
