/* Compiler attributes and branch hints used across the runtime. */
#ifndef GR_CORE_ATTRS_H
#define GR_CORE_ATTRS_H

#define GR_LIKELY(x) __builtin_expect(!!(x), 1)
#define GR_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define GR_NOINLINE __attribute__((noinline))
#define GR_NORETURN __attribute__((noreturn))
#define GR_CACHELINE 64
#define GR_ALIGNED_CACHELINE __attribute__((aligned(GR_CACHELINE)))

#define GR_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - __builtin_offsetof(type, member)))

#endif
