/* greenring-test: asan tsan */
/* Filesystem operations: stat/lstat/exists/is_file/is_dir, rename (and
 * its flags), unlink, mkdir/makedirs/rmdir, link/symlink/readlink/realpath,
 * listdir/scandir, copyfile (copy_file_range and the splice fallback),
 * sendfile to a socket (blocking and non-blocking), mkdtemp and rmtree,
 * each with its error cases, and EACCES as an unprivileged user. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/support.h"

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/gr-test-fs.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tmpdir(void)
{
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tp(const char *name)
{
    static char bufs[8][256];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 256, "%s/%s", tmpdir, name);
    return b;
}

static void spit(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static unsigned char *random_bytes(size_t n, uint64_t seed)
{
    unsigned char *p = malloc(n ? n : 1);
    uint64_t st = seed;
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)gr_test_rand(&st);
    return p;
}

static void expect_content(const char *path, const unsigned char *data, size_t len)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    unsigned char *got = malloc(len + 1);
    size_t off = 0;
    ssize_t n;
    while ((n = read(fd, got + off, len + 1 - off)) > 0)
        off += (size_t)n;
    close(fd);
    ck_assert_uint_eq(off, len);
    ck_assert(memcmp(got, data, len) == 0);
    free(got);
}

/* ---------------------------------------------------------------------
 * stat and predicates
 * --------------------------------------------------------------------- */

static int stat_main(void *arg)
{
    (void)arg;
    spit(tp("f"), "12345", 5);
    ck_assert_int_eq(chmod(tp("f"), 0640), 0);
    ck_assert_int_eq(mkdir(tp("d"), 0755), 0);
    ck_assert_int_eq(symlink("f", tp("lf")), 0);
    ck_assert_int_eq(symlink("d", tp("ld")), 0);
    ck_assert_int_eq(symlink("nowhere", tp("dangling")), 0);
    struct statx st;
    ck_assert_int_eq(gr_fs_stat(tp("f"), &st), 0);
    ck_assert_uint_eq(st.stx_size, 5);
    ck_assert_uint_eq(st.stx_mode & 07777, 0640);
    ck_assert(S_ISREG(st.stx_mode));
    ck_assert_int_eq(gr_fs_stat(tp("lf"), &st), 0);
    ck_assert(S_ISREG(st.stx_mode));
    ck_assert_int_eq(gr_fs_lstat(tp("lf"), &st), 0);
    ck_assert(S_ISLNK(st.stx_mode));
    ck_assert_int_eq(gr_fs_stat(tp("missing"), &st), -ENOENT);
    ck_assert_int_eq(gr_fs_stat(tp("f/x"), &st), -ENOTDIR);
    ck_assert_int_eq(gr_fs_stat(tp("dangling"), &st), -ENOENT);
    ck_assert_int_eq(gr_fs_lstat(tp("dangling"), &st), 0);
    ck_assert_int_eq(gr_fs_stat(NULL, &st), -EINVAL);
    ck_assert_int_eq(gr_fs_stat(tp("f"), NULL), -EINVAL);

    ck_assert_int_eq(gr_fs_exists(tp("f")), 1);
    ck_assert_int_eq(gr_fs_exists(tp("d")), 1);
    ck_assert_int_eq(gr_fs_exists(tp("missing")), 0);
    ck_assert_int_eq(gr_fs_exists(tp("f/x")), 0);
    ck_assert_int_eq(gr_fs_exists(tp("dangling")), 0);
    ck_assert_int_eq(gr_fs_is_file(tp("f")), 1);
    ck_assert_int_eq(gr_fs_is_file(tp("lf")), 1);
    ck_assert_int_eq(gr_fs_is_file(tp("d")), 0);
    ck_assert_int_eq(gr_fs_is_file(tp("missing")), 0);
    ck_assert_int_eq(gr_fs_is_dir(tp("d")), 1);
    ck_assert_int_eq(gr_fs_is_dir(tp("ld")), 1);
    ck_assert_int_eq(gr_fs_is_dir(tp("f")), 0);
    ck_assert_int_eq(gr_fs_is_dir(NULL), -EINVAL);
    return 0;
}

START_TEST(stat_and_predicates)
{
    gr_test_run_ok(stat_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Names
 * --------------------------------------------------------------------- */

static int rename_main(void *arg)
{
    (void)arg;
    spit(tp("a"), "A", 1);
    spit(tp("b"), "B", 1);
    ck_assert_int_eq(gr_fs_rename(tp("a"), tp("c"), 0), 0);
    ck_assert_int_eq(gr_fs_exists(tp("a")), 0);
    expect_content(tp("c"), (const unsigned char *)"A", 1);
    ck_assert_int_eq(gr_fs_rename(tp("c"), tp("b"), RENAME_NOREPLACE), -EEXIST);
    ck_assert_int_eq(gr_fs_rename(tp("c"), tp("b"), RENAME_EXCHANGE), 0);
    expect_content(tp("b"), (const unsigned char *)"A", 1);
    expect_content(tp("c"), (const unsigned char *)"B", 1);
    ck_assert_int_eq(gr_fs_rename(tp("c"), tp("b"), 0), 0); /* replaces */
    expect_content(tp("b"), (const unsigned char *)"B", 1);
    ck_assert_int_eq(gr_fs_rename(tp("missing"), tp("x"), 0), -ENOENT);
    ck_assert_int_eq(mkdir(tp("d1"), 0755), 0);
    ck_assert_int_eq(mkdir(tp("d2"), 0755), 0);
    spit(tp("d2/inside"), "", 0);
    ck_assert_int_eq(gr_fs_rename(tp("d1"), tp("d2"), 0), -ENOTEMPTY);
    ck_assert_int_eq(gr_fs_rename(tp("b"), tp("d1"), 0), -EISDIR);
    ck_assert_int_eq(gr_fs_rename(tp("d1"), tp("b"), 0), -ENOTDIR);
    ck_assert_int_eq(gr_fs_rename(NULL, tp("b"), 0), -EINVAL);
    return 0;
}

START_TEST(rename_cases)
{
    gr_test_run_ok(rename_main, NULL, 1);
}
END_TEST

static int unlink_main(void *arg)
{
    (void)arg;
    spit(tp("u"), "", 0);
    ck_assert_int_eq(gr_fs_unlink(tp("u"), 0), 0);
    ck_assert_int_eq(gr_fs_exists(tp("u")), 0);
    ck_assert_int_eq(gr_fs_unlink(tp("u"), 0), -ENOENT);
    ck_assert_int_eq(gr_fs_unlink(tp("u"), 1), 0);
    ck_assert_int_eq(gr_fs_unlink(tp("nodir/u"), 1), 0); /* missing all the same */
    ck_assert_int_eq(mkdir(tp("d"), 0755), 0);
    ck_assert_int_eq(gr_fs_unlink(tp("d"), 0), -EISDIR);
    ck_assert_int_eq(gr_fs_unlink(NULL, 1), -EINVAL);
    return 0;
}

START_TEST(unlink_cases)
{
    gr_test_run_ok(unlink_main, NULL, 1);
}
END_TEST

static int dirs_main(void *arg)
{
    (void)arg;
    struct statx st;
    ck_assert_int_eq(gr_fs_mkdir(tp("m"), 0750), 0);
    ck_assert_int_eq(gr_fs_stat(tp("m"), &st), 0);
    ck_assert(S_ISDIR(st.stx_mode));
    ck_assert_int_eq(gr_fs_mkdir(tp("m"), 0750), -EEXIST);
    ck_assert_int_eq(gr_fs_mkdir(tp("no/parent"), 0750), -ENOENT);
    ck_assert_int_eq(gr_fs_makedirs(tp("a/b/c/d"), 0700, 0), 0);
    ck_assert_int_eq(gr_fs_is_dir(tp("a/b/c/d")), 1);
    ck_assert_int_eq(gr_fs_stat(tp("a/b/c/d"), &st), 0);
    ck_assert_uint_eq(st.stx_mode & 0777, 0700);
    ck_assert_int_eq(gr_fs_makedirs(tp("a/b/c/d"), 0700, 0), -EEXIST);
    ck_assert_int_eq(gr_fs_makedirs(tp("a/b/c/d"), 0700, 1), 0);
    ck_assert_int_eq(gr_fs_makedirs(tp("a/b//x/y/"), 0700, 0), 0);
    ck_assert_int_eq(gr_fs_is_dir(tp("a/b/x/y")), 1);
    spit(tp("file"), "", 0);
    ck_assert_int_eq(gr_fs_makedirs(tp("file/sub/dir"), 0700, 1), -ENOTDIR);
    ck_assert_int_eq(gr_fs_makedirs(tp("file"), 0700, 1), -EEXIST);
    ck_assert_int_eq(gr_fs_makedirs("", 0700, 1), -EINVAL);
    ck_assert_int_eq(gr_fs_rmdir(tp("a/b/c")), -ENOTEMPTY);
    ck_assert_int_eq(gr_fs_rmdir(tp("a/b/c/d")), 0);
    ck_assert_int_eq(gr_fs_rmdir(tp("a/b/c/d")), -ENOENT);
    ck_assert_int_eq(gr_fs_rmdir(tp("file")), -ENOTDIR);
    return 0;
}

START_TEST(mkdir_makedirs_rmdir)
{
    gr_test_run_ok(dirs_main, NULL, 1);
}
END_TEST

static int links_main(void *arg)
{
    (void)arg;
    spit(tp("target"), "T", 1);
    ck_assert_int_eq(gr_fs_link(tp("target"), tp("hard")), 0);
    struct statx st;
    ck_assert_int_eq(gr_fs_stat(tp("target"), &st), 0);
    ck_assert_uint_eq(st.stx_nlink, 2);
    ck_assert_int_eq(gr_fs_link(tp("target"), tp("hard")), -EEXIST);
    ck_assert_int_eq(gr_fs_link(tp("missing"), tp("h2")), -ENOENT);
    ck_assert_int_eq(gr_fs_symlink("target", tp("soft")), 0);
    ck_assert_int_eq(gr_fs_symlink("target", tp("soft")), -EEXIST);
    char buf[64];
    ck_assert_int_eq(gr_fs_readlink(tp("soft"), buf, sizeof buf), 6);
    ck_assert_str_eq(buf, "target");
    ck_assert_int_eq(gr_fs_readlink(tp("soft"), buf, 6), -ENAMETOOLONG); /* no room for NUL */
    ck_assert_int_eq(gr_fs_readlink(tp("soft"), buf, 7), 6);
    ck_assert_int_eq(gr_fs_readlink(tp("target"), buf, sizeof buf), -EINVAL);
    ck_assert_int_eq(gr_fs_readlink(tp("missing"), buf, sizeof buf), -ENOENT);
    ck_assert_int_eq(gr_fs_readlink(tp("soft"), buf, 0), -EINVAL);

    /* realpath: symlinks, "." and ".." resolved. */
    char real_tmp[PATH_MAX], expect[PATH_MAX + 16], got[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(tmpdir, real_tmp));
    snprintf(expect, sizeof expect, "%s/target", real_tmp);
    ck_assert_int_eq(mkdir(tp("sub"), 0755), 0);
    ssize_t n = gr_fs_realpath(tp("sub/../sub/./../soft"), got, sizeof got);
    ck_assert_int_eq(n, (ssize_t)strlen(expect));
    ck_assert_str_eq(got, expect);
    ck_assert_int_eq(gr_fs_realpath(tp("missing"), got, sizeof got), -ENOENT);
    ck_assert_int_eq(gr_fs_realpath(tp("soft"), got, 4), -ENAMETOOLONG);
    return 0;
}

START_TEST(links_readlink_realpath)
{
    gr_test_run_ok(links_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Listing
 * --------------------------------------------------------------------- */

#define NENTRIES 1500

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_main(void *arg)
{
    (void)arg;
    ck_assert_int_eq(mkdir(tp("L"), 0755), 0);
    for (int i = 0; i < NENTRIES; i++) {
        char name[64];
        snprintf(name, sizeof name, "L/entry-with-a-longish-name-%04d", i);
        spit(tp(name), "", 0);
    }
    ck_assert_int_eq(mkdir(tp("L/zdir"), 0755), 0);
    ck_assert_int_eq(symlink("zdir", tp("L/zlink")), 0);
    char **names;
    ssize_t n = gr_fs_listdir(tp("L"), &names);
    ck_assert_int_eq(n, NENTRIES + 2);
    ck_assert_ptr_null(names[n]);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < NENTRIES; i++) {
        char name[64];
        snprintf(name, sizeof name, "entry-with-a-longish-name-%04d", i);
        ck_assert_str_eq(names[i], name);
    }
    ck_assert_str_eq(names[NENTRIES], "zdir");
    ck_assert_str_eq(names[NENTRIES + 1], "zlink");
    free(names);

    gr_dirent *ents;
    n = gr_fs_scandir(tp("L"), &ents);
    ck_assert_int_eq(n, NENTRIES + 2);
    int regs = 0, dirs = 0, links = 0;
    for (ssize_t i = 0; i < n; i++) {
        ck_assert_uint_ne(ents[i].ino, 0);
        if (ents[i].type == DT_REG)
            regs++;
        else if (ents[i].type == DT_DIR && !strcmp(ents[i].name, "zdir"))
            dirs++;
        else if (ents[i].type == DT_LNK && !strcmp(ents[i].name, "zlink"))
            links++;
    }
    ck_assert_int_eq(regs, NENTRIES);
    ck_assert_int_eq(dirs, 1);
    ck_assert_int_eq(links, 1);
    ck_assert_ptr_null(ents[n].name);
    free(ents);

    ck_assert_int_eq(gr_fs_listdir(tp("L/zdir"), &names), 0);
    ck_assert_ptr_null(names[0]);
    free(names);
    ck_assert_int_eq(gr_fs_listdir(tp("missing"), &names), -ENOENT);
    ck_assert_ptr_null(names);
    ck_assert_int_eq(gr_fs_listdir(tp("L/entry-with-a-longish-name-0001"), &names), -ENOTDIR);
    ck_assert_int_eq(gr_fs_scandir(NULL, &ents), -EINVAL);
    return 0;
}

START_TEST(listdir_scandir)
{
    gr_test_run_ok(list_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * copyfile
 * --------------------------------------------------------------------- */

static int copy_main(void *arg)
{
    const char *src_dir = arg ? arg : tmpdir;
    static const size_t sizes[] = {0, 1, 4096, 3 * 1024 * 1024 + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *data = random_bytes(sizes[i], i + 1);
        char src[256];
        snprintf(src, sizeof src, "%s/gr-copy-src-%d", src_dir, (int)getpid());
        spit(src, data, sizes[i]);
        ck_assert_int_eq(chmod(src, 0640), 0);
        ck_assert_int_eq(gr_fs_copyfile(src, tp("dst")), (off_t)sizes[i]);
        expect_content(tp("dst"), data, sizes[i]);
        struct statx st;
        ck_assert_int_eq(gr_fs_stat(tp("dst"), &st), 0);
        ck_assert_uint_eq(st.stx_mode & 0777, 0640); /* created with src's bits */
        unlink(src);
        free(data);
    }
    /* Copying onto a longer file truncates it. */
    spit(tp("long"), "0123456789", 10);
    spit(tp("short"), "ab", 2);
    ck_assert_int_eq(gr_fs_copyfile(tp("short"), tp("long")), 2);
    expect_content(tp("long"), (const unsigned char *)"ab", 2);
    ck_assert_int_eq(gr_fs_copyfile(tp("missing"), tp("x")), -ENOENT);
    ck_assert_int_eq(gr_fs_copyfile(tmpdir, tp("x")), -EISDIR);
    ck_assert_int_eq(mkdir(tp("dir"), 0755), 0);
    ck_assert_int_eq(gr_fs_copyfile(tp("short"), tp("dir")), -EISDIR);
    ck_assert_int_eq(gr_fs_copyfile(tp("short"), tp("nodir/x")), -ENOENT);
    return 0;
}

START_TEST(copyfile_same_fs)
{
    gr_test_run_ok(copy_main, NULL, 1);
}
END_TEST

/* tmpfs -> ext4: copy_file_range says EXDEV, the splice fallback copies. */
START_TEST(copyfile_across_fs)
{
    struct stat st;
    if (stat("/dev/shm", &st) != 0 || !S_ISDIR(st.st_mode))
        return;
    gr_test_run_ok(copy_main, "/dev/shm", 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * sendfile to a socket
 * --------------------------------------------------------------------- */

struct sendfile_case {
    int sv[2];
    unsigned char *data;
    size_t len;
    off_t offset;
    size_t count, expect;
};

static int sink_task(void *arg)
{
    struct sendfile_case *c = arg;
    unsigned char *got = malloc(c->expect + 1);
    size_t off = 0;
    while (off < c->expect) {
        ssize_t n = gr_read(c->sv[1], got + off, c->expect - off);
        ck_assert_int_gt(n, 0);
        off += (size_t)n;
    }
    ck_assert(memcmp(got, c->data + c->offset, c->expect) == 0);
    free(got);
    return 0;
}

static void sendfile_case(struct sendfile_case *c, const char *path)
{
    int in = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(in, 0);
    gr_task *sink;
    ck_assert_int_eq(gr_spawn(&sink, sink_task, c, NULL), 0);
    ck_assert_int_eq(gr_sendfile(c->sv[0], in, c->offset, c->count), (ssize_t)c->expect);
    ck_assert_int_eq(gr_join(sink), 0);
    close(in);
}

static int sendfile_main(void *arg)
{
    int nonblock = (int)(intptr_t)arg;
    struct sendfile_case c = {.len = 3 * 1024 * 1024 + 17};
    c.data = random_bytes(c.len, 5);
    spit(tp("sf.bin"), c.data, c.len);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c.sv), 0);
    if (nonblock) /* splice into it returns EAGAIN: the poll path */
        ck_assert_int_eq(fcntl(c.sv[0], F_SETFL, O_NONBLOCK), 0);
    c.offset = 100;
    c.count = 1000000;
    c.expect = c.count;
    sendfile_case(&c, tp("sf.bin"));
    c.offset = 5;
    c.count = 0; /* to the end */
    c.expect = c.len - 5;
    sendfile_case(&c, tp("sf.bin"));
    c.offset = (off_t)c.len - 10;
    c.count = 1000; /* past the end: what is there */
    c.expect = 10;
    sendfile_case(&c, tp("sf.bin"));
    ck_assert_int_eq(gr_sendfile(-1, 0, 0, 1), -EBADF);
    ck_assert_int_eq(gr_sendfile(c.sv[0], 0, -1, 1), -EINVAL);
    close(c.sv[0]);
    close(c.sv[1]);
    free(c.data);
    return 0;
}

START_TEST(sendfile_blocking_socket)
{
    gr_test_run_ok(sendfile_main, (void *)0, 2);
}
END_TEST

START_TEST(sendfile_nonblocking_socket)
{
    gr_test_run_ok(sendfile_main, (void *)1, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * mkdtemp and rmtree
 * --------------------------------------------------------------------- */

static void build_tree(const char *root)
{
    char p[512];
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/d%d", root, i);
        ck_assert_int_eq(gr_fs_makedirs(p, 0755, 0), 0);
        for (int j = 0; j < 20; j++) {
            snprintf(p, sizeof p, "%s/d%d/sub%d", root, i, j % 3);
            ck_assert_int_eq(gr_fs_makedirs(p, 0755, 1), 0);
            snprintf(p, sizeof p, "%s/d%d/sub%d/f%d", root, i, j % 3, j);
            spit(p, "x", 1);
        }
    }
    snprintf(p, sizeof p, "%s/d0/ro", root);
    ck_assert_int_eq(gr_fs_mkdir(p, 0500), 0); /* read-only, empty */
}

static int tree_main(void *arg)
{
    (void)arg;
    char d[256];
    ck_assert_int_eq(gr_fs_mkdtemp(d, sizeof d, tmpdir, "tree-"), 0);
    ck_assert(strncmp(d, tp("tree-"), strlen(tp("tree-"))) == 0);
    ck_assert_uint_eq(strlen(d), strlen(tp("tree-")) + 6);
    struct statx st;
    ck_assert_int_eq(gr_fs_stat(d, &st), 0);
    ck_assert_uint_eq(st.stx_mode & 0777, 0700);
    char d2[256];
    ck_assert_int_eq(gr_fs_mkdtemp(d2, sizeof d2, tmpdir, NULL), 0);
    ck_assert_str_ne(d, d2);
    char d3[256];
    ck_assert_int_eq(gr_fs_mkdtemp(d3, 10, tmpdir, NULL), -ENAMETOOLONG);
    ck_assert_int_eq(gr_fs_mkdtemp(d3, sizeof d3, tp("missing"), NULL), -ENOENT);

    build_tree(d);
    /* A symlink to something outside: removed, not followed. */
    spit(tp("outside"), "keep", 4);
    char l[300];
    snprintf(l, sizeof l, "%s/d1/link-out", d);
    ck_assert_int_eq(gr_fs_symlink(tp("outside"), l), 0);
    snprintf(l, sizeof l, "%s/d1/link-dir", d);
    ck_assert_int_eq(gr_fs_symlink(tmpdir, l), 0);
    ck_assert_int_eq(gr_fs_rmtree(d), 0);
    ck_assert_int_eq(gr_fs_exists(d), 0);
    ck_assert_int_eq(gr_fs_exists(tp("outside")), 1);
    ck_assert_int_eq(gr_fs_rmtree(d), -ENOENT);
    ck_assert_int_eq(gr_fs_rmtree(tp("outside")), -ENOTDIR);
    ck_assert_int_eq(gr_fs_symlink(d2, tp("dirlink")), 0);
    ck_assert_int_eq(gr_fs_rmtree(tp("dirlink")), -ENOTDIR); /* not through a link */
    ck_assert_int_eq(gr_fs_is_dir(d2), 1);
    ck_assert_int_eq(gr_fs_rmtree(""), -EINVAL);
    return 0;
}

START_TEST(mkdtemp_and_rmtree)
{
    gr_test_run_ok(tree_main, NULL, 2);
}
END_TEST

/* rmtree is cleanup: a cancelled task still removes everything. */
static int cancelled_cleanup(void *arg)
{
    const char *d = arg;
    gr_cancel(gr_self());
    ck_assert_int_eq(gr_fs_mkdir("/tmp/never", 0700), -ECANCELED);
    return gr_fs_rmtree(d);
}

static int rmtree_cancel_main(void *arg)
{
    (void)arg;
    static char d[256];
    ck_assert_int_eq(gr_fs_mkdtemp(d, sizeof d, tmpdir, NULL), 0);
    build_tree(d);
    gr_task *t;
    ck_assert_int_eq(gr_spawn(&t, cancelled_cleanup, d, NULL), 0);
    ck_assert_int_eq(gr_join(t), 0);
    ck_assert_int_eq(gr_fs_exists(d), 0);
    return 0;
}

START_TEST(rmtree_when_cancelled)
{
    gr_test_run_ok(rmtree_cancel_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * EACCES (unprivileged) and calls outside a task
 * --------------------------------------------------------------------- */

static int eacces_main(void *arg)
{
    (void)arg;
    struct statx st;
    ck_assert_int_eq(gr_fs_mkdir(tp("ro/new"), 0700), -EACCES);
    ck_assert_int_eq(gr_fs_stat(tp("closed/f"), &st), -EACCES);
    ck_assert_int_eq(gr_fs_exists(tp("closed/f")), -EACCES); /* unknown, not "no" */
    ck_assert_int_eq(gr_fs_unlink(tp("ro/f"), 0), -EACCES);
    ck_assert_int_eq(gr_fs_rename(tp("ro/f"), tp("g"), 0), -EACCES);
    char **names;
    ck_assert_int_eq(gr_fs_listdir(tp("closed"), &names), -EACCES);
    ck_assert_int_eq(gr_fs_copyfile(tp("secret"), tp("copy")), -EACCES);
    return 0;
}

START_TEST(eacces)
{
    ck_assert_int_eq(mkdir(tp("ro"), 0755), 0);
    spit(tp("ro/f"), "", 0);
    ck_assert_int_eq(chmod(tp("ro"), 0555), 0);
    ck_assert_int_eq(mkdir(tp("closed"), 0755), 0);
    spit(tp("closed/f"), "", 0);
    ck_assert_int_eq(chmod(tp("closed"), 0), 0);
    spit(tp("secret"), "s", 1);
    ck_assert_int_eq(chmod(tp("secret"), 0), 0);
    ck_assert_int_eq(chmod(tmpdir, 0777), 0);
    if (geteuid() == 0)
        ck_assert_int_eq(setresuid(65534, 65534, 0), 0); /* saved 0: cleanup */
    gr_test_run_ok(eacces_main, NULL, 1);
    if (getuid() == 65534)
        ck_assert_int_eq(setresuid(0, 0, 0), 0);
    chmod(tp("ro"), 0755);
    chmod(tp("closed"), 0755);
}
END_TEST

START_TEST(outside_task)
{
    struct statx st;
    ck_assert_int_eq(gr_fs_stat("/", &st), -EPERM);
    ck_assert_int_eq(gr_fs_mkdir("/tmp/x", 0700), -EPERM);
    char **names;
    ck_assert_int_eq(gr_fs_listdir("/", &names), -EPERM);
    ck_assert_int_eq(gr_fs_rmtree("/tmp/nothing-here"), -EPERM);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("fs");
    TCase *tc = tcase_create("fs");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, stat_and_predicates);
    tcase_add_test(tc, rename_cases);
    tcase_add_test(tc, unlink_cases);
    tcase_add_test(tc, mkdir_makedirs_rmdir);
    tcase_add_test(tc, links_readlink_realpath);
    tcase_add_test(tc, listdir_scandir);
    tcase_add_test(tc, copyfile_same_fs);
    tcase_add_test(tc, copyfile_across_fs);
    tcase_add_test(tc, sendfile_blocking_socket);
    tcase_add_test(tc, sendfile_nonblocking_socket);
    tcase_add_test(tc, mkdtemp_and_rmtree);
    tcase_add_test(tc, rmtree_when_cancelled);
    tcase_add_test(tc, eacces);
    tcase_add_test(tc, outside_task);
    suite_add_tcase(s, tc);
    return s;
}
