/* Internals shared by the file object (file.c) and the filesystem
 * operations (fs.c): ring operations on paths, errno-free system calls. */
#ifndef GR_IO_FILE_H
#define GR_IO_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

struct statx;

/* System calls made directly on a worker (speculative preadv2, lseek,
 * pipe2, getrandom) or on a pool thread (getdents64, readlinkat,
 * copy_file_range). The library never touches errno (tasks migrate between
 * threads, and glibc's errno address may be cached across a switch), so
 * these return the kernel's -errno as is instead of going through libc. */
static inline long gr__syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
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
                     : "memory", "cc");
    return x0;
#else
#error "greenring: x86_64 and aarch64 only"
#endif
}

#define GR__SYS3(nr, a, b, c) gr__syscall6((nr), (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* Ring operations on paths (relative to dirfd), parking the task: the
 * result or a negative errno. Cancellation points. */
int gr__fs_openat(int dirfd, const char *path, int flags, unsigned mode);
int gr__fs_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st);
/* unlinkat; not interruptible (cleanup of temporary files). */
int gr__fs_unlink_cleanup(const char *path);

/* dir, else $TMPDIR, else "/tmp". */
const char *gr__fs_tmpdir(const char *dir);
/* Fill 6 characters of a temporary name ([A-Za-z0-9]). */
void gr__fs_random_chars(char out[6]);
/* <tmpdir>/<prefix or "tmp">XXXXXX into buf, or -ENAMETOOLONG. */
int gr__fs_temp_name(char *buf, size_t size, const char *dir, const char *prefix);

/* Whether the kernel's io_uring has this opcode (probed once). */
int gr__uring_has_op(int op);
/* Tests: make gr__uring_has_op report op as missing (or present again),
 * to exercise the offload fallbacks. */
void gr__uring_pretend_missing(int op, int missing);

#endif
