/* System calls that return -errno instead of setting errno.
 *
 * The library never reads errno (tasks migrate between threads and glibc's
 * __errno_location is a const function, so a cached errno address could be
 * another thread's). Calls made directly on a worker or a pool thread
 * (socket, bind, setsockopt, a speculative preadv2, lseek, pipe2,
 * getdents64, copy_file_range...) whose error codes matter go through these
 * raw stubs, as musl's __syscall does. */
#ifndef GR_CORE_SYSCALL_H
#define GR_CORE_SYSCALL_H

#include <sys/syscall.h>

static inline long gr__sys6(long nr, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
#else
#error "greenring: raw system calls are implemented for x86_64 and aarch64 only"
#endif
}

#define GR__SYS(nr, a, b, c, d, e, f, ...) \
    gr__sys6((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
/* gr__sys(SYS_x, args...): up to six arguments; the result is -errno on
 * failure. */
#define gr__sys(nr, ...) GR__SYS(nr, __VA_ARGS__, 0, 0, 0, 0, 0, 0)

#endif
