/* A fresh temporary directory per test (in the forked test process) and
 * plain-libc files in it. */
#include "support/support.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char gr_test_tmpdir[64];

void gr_test_tmpdir_make(const char *template)
{
    ck_assert_uint_lt(strlen(template), sizeof(gr_test_tmpdir));
    strcpy(gr_test_tmpdir, template);
    ck_assert_ptr_nonnull(mkdtemp(gr_test_tmpdir));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void gr_test_tmpdir_remove(void)
{
    nftw(gr_test_tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *gr_test_path(const char *name)
{
    static char bufs[8][256];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 256, "%s/%s", gr_test_tmpdir, name);
    return b;
}

const char *gr_test_path_in(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", gr_test_tmpdir, name);
    return buf;
}

void gr_test_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}
