/* Internals shared by the file object (file.c) and the filesystem
 * operations (fs.c): ring operations on paths, errno-free system calls. */
#ifndef GR_IO_FILE_H
#define GR_IO_FILE_H

#include <stddef.h>
#include <stdint.h>
#include "core/syscall.h"

struct statx;


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
