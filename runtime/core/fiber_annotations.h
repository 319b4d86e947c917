/* Sanitizer and Valgrind annotations for stack switching.
 *
 * ASan must be told about every switch (__sanitizer_start/finish_switch_fiber)
 * or it reports false stack-buffer errors; TSan needs one fiber object per
 * task (__tsan_switch_to_fiber) to keep per-stack shadow state apart;
 * Valgrind needs each stack registered. All of it compiles to nothing in a
 * plain build. GR_ASAN / GR_TSAN / GR_VALGRIND come from the build options. */
#ifndef GR_CORE_FIBER_ANNOTATIONS_H
#define GR_CORE_FIBER_ANNOTATIONS_H

#include <stddef.h>

#if defined(GR_ASAN) || defined(__SANITIZE_ADDRESS__)
#define GR_FIBER_ASAN 1
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
void __asan_unpoison_memory_region(const volatile void *addr, size_t size);
#endif

#if defined(GR_TSAN) || defined(__SANITIZE_THREAD__)
#define GR_FIBER_TSAN 1
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_set_fiber_name(void *fiber, const char *name);
#endif

#ifdef GR_VALGRIND
#include <valgrind/valgrind.h>
#endif

#endif
