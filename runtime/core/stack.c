#include "core/stack.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/fiber_annotations.h"
#include "greenring.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define MAX_CHUNKS 4096u
#define MAX_CLASSES 24u
#define FIRST_CHUNK_SLOTS 16u
#define MAX_CHUNK_SLOTS 1024u
#define CANARY_WORDS 8u
#define CANARY 0x67726e7267726e72ull /* "grnrgrnr" */

/* A chunk: `slots` stacks of one size class side by side, each preceded by
 * its guard region: [guard|stack][guard|stack]... */
struct chunk {
    char *base;
    size_t slot_size; /* guard + stack */
    uint32_t slots;
#ifdef GR_VALGRIND
    unsigned *vg_ids;
#endif
};

/* Free stacks of one size, linked through the first word below their top. */
struct size_class {
    size_t size;
    char *free_top;
    uint64_t free_len;
    uint32_t next_chunk_slots;
};

static struct {
    pthread_mutex_t lock; /* classes and chunk creation */
    struct size_class classes[MAX_CLASSES];
    uint32_t nclasses;
    /* Chunk registry, read lock-free by the SIGSEGV handler: entries below
     * nchunks are immutable once published. */
    struct chunk chunks[MAX_CHUNKS];
    _Atomic uint32_t nchunks;
    size_t default_size;
    size_t page;
    int use_canary;
    _Atomic uint64_t in_use;
    uint64_t mapped;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

long gr__stack_round_size(size_t requested, size_t *out)
{
    if (requested == 0) {
        *out = pool.default_size;
        return 0;
    }
    if (requested < GR_MIN_STACK_SIZE || requested > ((size_t)1 << 32))
        return -EINVAL;
    *out = round_up(requested, pool.page);
    return 0;
}

int gr__stack_pool_init(size_t default_size)
{
    pool.page = (size_t)sysconf(_SC_PAGESIZE);
    if (default_size == 0)
        default_size = GR_DEFAULT_STACK_SIZE;
    if (default_size < GR_MIN_STACK_SIZE)
        return -EINVAL;
    pool.default_size = round_up(default_size, pool.page);
    pool.nclasses = 0;
    pool.use_canary = -1; /* decided when the first guard is installed */
    pool.mapped = 0;
    atomic_store_explicit(&pool.in_use, 0, memory_order_relaxed);
    return 0;
}

static void unmap_chunk(struct chunk *c)
{
#ifdef GR_VALGRIND
    for (uint32_t i = 0; i < c->slots; i++)
        VALGRIND_STACK_DEREGISTER(c->vg_ids[i]);
    free(c->vg_ids);
#endif
    munmap(c->base, c->slot_size * c->slots);
}

void gr__stack_pool_destroy(void)
{
    uint32_t n = atomic_load_explicit(&pool.nchunks, memory_order_relaxed);
    /* relaxed: no task runs any more, the handler cannot look at chunks. */
    atomic_store_explicit(&pool.nchunks, 0, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++)
        unmap_chunk(&pool.chunks[i]);
    pool.nclasses = 0;
    pool.mapped = 0;
}

size_t gr__stack_default_size(void)
{
    return pool.default_size;
}

static void install_guard(char *guard)
{
    if (pool.use_canary == 1)
        return;
    int rc = madvise(guard, GR_STACK_GUARD_SIZE, MADV_GUARD_INSTALL);
    if (pool.use_canary == -1)
        pool.use_canary = rc != 0;
}

static char **free_link(char *top)
{
    return (char **)(void *)(top - sizeof(char *));
}

/* Locked. Maps a new chunk for the class and puts its stacks on the free
 * list. */
static int add_chunk(struct size_class *cls)
{
    uint32_t idx = atomic_load_explicit(&pool.nchunks, memory_order_relaxed);
    if (idx == MAX_CHUNKS)
        return -ENOMEM;
    uint32_t slots = cls->next_chunk_slots;
    size_t slot_size = GR_STACK_GUARD_SIZE + cls->size;
    char *base = mmap(NULL, slot_size * slots, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return -ENOMEM;
    struct chunk *c = &pool.chunks[idx];
    *c = (struct chunk){.base = base, .slot_size = slot_size, .slots = slots};
#ifdef GR_VALGRIND
    c->vg_ids = calloc(slots, sizeof(*c->vg_ids));
#endif
    for (uint32_t i = slots; i-- > 0;) {
        char *slot = base + (size_t)i * slot_size;
        install_guard(slot);
        char *top = slot + slot_size;
#ifdef GR_VALGRIND
        if (c->vg_ids)
            c->vg_ids[i] = VALGRIND_STACK_REGISTER(slot + GR_STACK_GUARD_SIZE, top);
#endif
        *free_link(top) = cls->free_top;
        cls->free_top = top;
    }
    cls->free_len += slots;
    if (slots < MAX_CHUNK_SLOTS)
        cls->next_chunk_slots = slots * 2;
    pool.mapped += slot_size * slots;
    /* release: the SIGSEGV handler acquires nchunks and then reads the
     * entry, which must be complete. */
    atomic_store_explicit(&pool.nchunks, idx + 1, memory_order_release);
    return 0;
}

/* Locked. Non-default sizes are rounded up to a power of two so that a
 * program cannot create an unbounded number of classes. */
static struct size_class *find_class(size_t size)
{
    if (size != pool.default_size) {
        size_t p = GR_MIN_STACK_SIZE;
        while (p < size)
            p *= 2;
        size = p;
    }
    for (uint32_t i = 0; i < pool.nclasses; i++)
        if (pool.classes[i].size == size)
            return &pool.classes[i];
    if (pool.nclasses == MAX_CLASSES)
        return NULL;
    struct size_class *cls = &pool.classes[pool.nclasses++];
    *cls = (struct size_class){.size = size, .next_chunk_slots = FIRST_CHUNK_SLOTS};
    return cls;
}

static void write_canary(const struct gr__stack *s)
{
    if (pool.use_canary != 1)
        return;
    uint64_t *bottom = (uint64_t *)(void *)(s->top - s->size);
    for (uint32_t i = 0; i < CANARY_WORDS; i++)
        bottom[i] = CANARY;
}

int gr__stack_canary_ok(const struct gr__stack *s)
{
    if (pool.use_canary != 1)
        return 1;
    const uint64_t *bottom = (const uint64_t *)(const void *)(s->top - s->size);
    for (uint32_t i = 0; i < CANARY_WORDS; i++)
        if (bottom[i] != CANARY)
            return 0;
    return 1;
}

static int alloc_from_pool(size_t size, struct gr__stack *out)
{
    int rc = 0;
    pthread_mutex_lock(&pool.lock);
    struct size_class *cls = find_class(size);
    if (!cls) {
        rc = -ENOMEM;
        goto out;
    }
    if (!cls->free_top && (rc = add_chunk(cls)) < 0)
        goto out;
    out->top = cls->free_top;
    out->size = cls->size;
    cls->free_top = *free_link(out->top);
    cls->free_len--;
out:
    pthread_mutex_unlock(&pool.lock);
    return rc;
}

int gr__stack_alloc(struct gr__stack_cache *cache, size_t size, struct gr__stack *out)
{
    if (cache && size == pool.default_size && cache->len > 0) {
        out->top = cache->tops[--cache->len];
        out->size = size;
    } else {
        int rc = alloc_from_pool(size, out);
        if (rc < 0)
            return rc;
    }
#ifdef GR_FIBER_ASAN
    /* A previous task may have left poisoned frames behind (it never
     * returned through them). */
    __asan_unpoison_memory_region(out->top - out->size, out->size);
#endif
    write_canary(out);
    /* relaxed: a statistic. */
    atomic_fetch_add_explicit(&pool.in_use, 1, memory_order_relaxed);
    return 0;
}

static void free_to_pool_locked(const struct gr__stack *s)
{
    struct size_class *cls = find_class(s->size);
    /* the class exists: the stack came from it */
    *free_link(s->top) = cls->free_top;
    cls->free_top = s->top;
    cls->free_len++;
}

void gr__stack_free(struct gr__stack_cache *cache, const struct gr__stack *s)
{
    /* relaxed: a statistic. */
    atomic_fetch_sub_explicit(&pool.in_use, 1, memory_order_relaxed);
    if (cache && s->size == pool.default_size && cache->len < GR_STACK_CACHE_MAX) {
        cache->tops[cache->len++] = s->top;
        return;
    }
    pthread_mutex_lock(&pool.lock);
    free_to_pool_locked(s);
    pthread_mutex_unlock(&pool.lock);
}

void gr__stack_cache_flush(struct gr__stack_cache *cache)
{
    pthread_mutex_lock(&pool.lock);
    while (cache->len > 0) {
        struct gr__stack s = {.top = cache->tops[--cache->len], .size = pool.default_size};
        free_to_pool_locked(&s);
    }
    pthread_mutex_unlock(&pool.lock);
}

int gr__stack_slot_top(const void *addr, char **top)
{
    const char *a = addr;
    /* acquire: pairs with the release in add_chunk. */
    uint32_t n = atomic_load_explicit(&pool.nchunks, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
        const struct chunk *c = &pool.chunks[i];
        if (a >= c->base && a < c->base + c->slot_size * c->slots) {
            size_t slot = (size_t)(a - c->base) / c->slot_size;
            *top = c->base + (slot + 1) * c->slot_size;
            return 1;
        }
    }
    return 0;
}

int gr__stack_guard_hit(const void *addr, struct gr__stack *out)
{
    const char *a = addr;
    /* acquire: pairs with the release in add_chunk. */
    uint32_t n = atomic_load_explicit(&pool.nchunks, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
        const struct chunk *c = &pool.chunks[i];
        if (a < c->base || a >= c->base + c->slot_size * c->slots)
            continue;
        size_t off = (size_t)(a - c->base) % c->slot_size;
        if (off >= GR_STACK_GUARD_SIZE)
            return 0;
        char *slot = c->base + (size_t)(a - c->base) / c->slot_size * c->slot_size;
        out->top = slot + c->slot_size;
        out->size = c->slot_size - GR_STACK_GUARD_SIZE;
        return 1;
    }
    return 0;
}

void gr__stack_counters(struct gr__stack_counters *out)
{
    pthread_mutex_lock(&pool.lock);
    uint64_t pooled = 0;
    for (uint32_t i = 0; i < pool.nclasses; i++)
        pooled += pool.classes[i].free_len;
    out->pooled = pooled;
    out->mapped = pool.mapped;
    pthread_mutex_unlock(&pool.lock);
    /* relaxed: a statistic. */
    out->in_use = atomic_load_explicit(&pool.in_use, memory_order_relaxed);
}
