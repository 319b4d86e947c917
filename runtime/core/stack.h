/* Task stacks: pooled, lazily committed, guarded.
 *
 * Stacks are carved out of large MAP_NORESERVE chunks, so a stack costs
 * address space but only the pages a task touches. Below each stack sits a
 * guard region installed with MADV_GUARD_INSTALL (Linux 6.13+), which puts
 * no extra VMA in the process. On older kernels the guard region is left
 * mapped as padding and a canary at the bottom of the stack is checked each
 * time a task switches out (detection after the fact; see
 * docs/architecture.md). Freed stacks go to a per-worker cache first and to
 * a global per-size pool after that; memory is returned to the system when
 * the runtime shuts down. */
#ifndef GR_CORE_STACK_H
#define GR_CORE_STACK_H

#include <stddef.h>
#include <stdint.h>

#define GR_STACK_GUARD_SIZE ((size_t)64 * 1024)
#define GR_STACK_CACHE_MAX 128u

/* A stack is identified by its top (highest address, exclusive); the task
 * control block sits right below it. */
struct gr__stack {
    char *top;
    size_t size; /* usable bytes below top */
};

/* Per-worker cache of default-size stacks. Owned by one thread. */
struct gr__stack_cache {
    char *tops[GR_STACK_CACHE_MAX];
    uint32_t len;
};

struct gr__stack_counters {
    uint64_t in_use;    /* stacks handed out and not freed */
    uint64_t pooled;    /* free stacks in the global pool (not worker caches) */
    uint64_t mapped;    /* bytes of address space reserved for stacks */
};

/* Called by gr_run before any task exists / after every task is gone. */
int gr__stack_pool_init(size_t default_size);
void gr__stack_pool_destroy(void);
size_t gr__stack_default_size(void);
/* Page-rounds a requested size (0 = default); -EINVAL below the minimum. */
long gr__stack_round_size(size_t requested, size_t *out);

/* cache may be NULL (foreign thread). Returns 0 or -ENOMEM. */
int gr__stack_alloc(struct gr__stack_cache *cache, size_t size, struct gr__stack *out);
void gr__stack_free(struct gr__stack_cache *cache, const struct gr__stack *s);
/* Return a worker's cached stacks to the global pool (worker exit). */
void gr__stack_cache_flush(struct gr__stack_cache *cache);

/* Canary mode only: 0 if the stack's bottom canary is intact. */
int gr__stack_canary_ok(const struct gr__stack *s);

/* If addr lies in a stack slot of the pool, set *top to that slot's stack
 * top and return 1. Lock-free (reads the chunk registry). */
int gr__stack_slot_top(const void *addr, char **top);

/* Async-signal-safe: if addr lies in the guard region below some stack,
 * fill *out with that stack and return 1. */
int gr__stack_guard_hit(const void *addr, struct gr__stack *out);

void gr__stack_counters(struct gr__stack_counters *out);

#endif
