/* greenring-test: asan tsan */
/* Filesystem operations: stat/lstat/exists/is_file/is_dir, rename (and
 * its flags), unlink, mkdir/makedirs/rmdir, link/symlink/readlink/realpath,
 * listdir/scandir, copyfile (copy_file_range and the splice fallback),
 * sendfile to a socket (blocking and non-blocking), mkdtemp and rmtree,
 * each with its error cases, and EACCES as an unprivileged user. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/support.h"

/* The fixture's setup (Check wants a void(void) function). */
static void make_tmpdir(void)
{
    gr_test_tmpdir_make("/tmp/gr-test-fs.XXXXXX");
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
    gr_test_write_file(gr_test_path("f"), "12345", 5);
    ck_assert_int_eq(chmod(gr_test_path("f"), 0640), 0);
    ck_assert_int_eq(mkdir(gr_test_path("d"), 0755), 0);
    ck_assert_int_eq(symlink("f", gr_test_path("lf")), 0);
    ck_assert_int_eq(symlink("d", gr_test_path("ld")), 0);
    ck_assert_int_eq(symlink("nowhere", gr_test_path("dangling")), 0);
    struct statx st;
    ck_assert_int_eq(gr_fs_stat(gr_test_path("f"), &st), 0);
    ck_assert_uint_eq(st.stx_size, 5);
    ck_assert_uint_eq(st.stx_mode & 07777, 0640);
    ck_assert(S_ISREG(st.stx_mode));
    ck_assert_int_eq(gr_fs_stat(gr_test_path("lf"), &st), 0);
    ck_assert(S_ISREG(st.stx_mode));
    ck_assert_int_eq(gr_fs_lstat(gr_test_path("lf"), &st), 0);
    ck_assert(S_ISLNK(st.stx_mode));
    ck_assert_int_eq(gr_fs_stat(gr_test_path("missing"), &st), -ENOENT);
    ck_assert_int_eq(gr_fs_stat(gr_test_path("f/x"), &st), -ENOTDIR);
    ck_assert_int_eq(gr_fs_stat(gr_test_path("dangling"), &st), -ENOENT);
    ck_assert_int_eq(gr_fs_lstat(gr_test_path("dangling"), &st), 0);
    ck_assert_int_eq(gr_fs_stat(NULL, &st), -EINVAL);
    ck_assert_int_eq(gr_fs_stat(gr_test_path("f"), NULL), -EINVAL);

    ck_assert_int_eq(gr_fs_exists(gr_test_path("f")), 1);
    ck_assert_int_eq(gr_fs_exists(gr_test_path("d")), 1);
    ck_assert_int_eq(gr_fs_exists(gr_test_path("missing")), 0);
    ck_assert_int_eq(gr_fs_exists(gr_test_path("f/x")), 0);
    ck_assert_int_eq(gr_fs_exists(gr_test_path("dangling")), 0);
    ck_assert_int_eq(gr_fs_is_file(gr_test_path("f")), 1);
    ck_assert_int_eq(gr_fs_is_file(gr_test_path("lf")), 1);
    ck_assert_int_eq(gr_fs_is_file(gr_test_path("d")), 0);
    ck_assert_int_eq(gr_fs_is_file(gr_test_path("missing")), 0);
    ck_assert_int_eq(gr_fs_is_dir(gr_test_path("d")), 1);
    ck_assert_int_eq(gr_fs_is_dir(gr_test_path("ld")), 1);
    ck_assert_int_eq(gr_fs_is_dir(gr_test_path("f")), 0);
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
    gr_test_write_file(gr_test_path("a"), "A", 1);
    gr_test_write_file(gr_test_path("b"), "B", 1);
    ck_assert_int_eq(gr_fs_rename(gr_test_path("a"), gr_test_path("c"), 0), 0);
    ck_assert_int_eq(gr_fs_exists(gr_test_path("a")), 0);
    expect_content(gr_test_path("c"), (const unsigned char *)"A", 1);
    ck_assert_int_eq(gr_fs_rename(gr_test_path("c"), gr_test_path("b"), RENAME_NOREPLACE), -EEXIST);
    ck_assert_int_eq(gr_fs_rename(gr_test_path("c"), gr_test_path("b"), RENAME_EXCHANGE), 0);
    expect_content(gr_test_path("b"), (const unsigned char *)"A", 1);
    expect_content(gr_test_path("c"), (const unsigned char *)"B", 1);
    ck_assert_int_eq(gr_fs_rename(gr_test_path("c"), gr_test_path("b"), 0), 0); /* replaces */
    expect_content(gr_test_path("b"), (const unsigned char *)"B", 1);
    ck_assert_int_eq(gr_fs_rename(gr_test_path("missing"), gr_test_path("x"), 0), -ENOENT);
    ck_assert_int_eq(mkdir(gr_test_path("d1"), 0755), 0);
    ck_assert_int_eq(mkdir(gr_test_path("d2"), 0755), 0);
    gr_test_write_file(gr_test_path("d2/inside"), "", 0);
    ck_assert_int_eq(gr_fs_rename(gr_test_path("d1"), gr_test_path("d2"), 0), -ENOTEMPTY);
    ck_assert_int_eq(gr_fs_rename(gr_test_path("b"), gr_test_path("d1"), 0), -EISDIR);
    ck_assert_int_eq(gr_fs_rename(gr_test_path("d1"), gr_test_path("b"), 0), -ENOTDIR);
    ck_assert_int_eq(gr_fs_rename(NULL, gr_test_path("b"), 0), -EINVAL);
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
    gr_test_write_file(gr_test_path("u"), "", 0);
    ck_assert_int_eq(gr_fs_unlink(gr_test_path("u"), 0), 0);
    ck_assert_int_eq(gr_fs_exists(gr_test_path("u")), 0);
    ck_assert_int_eq(gr_fs_unlink(gr_test_path("u"), 0), -ENOENT);
    ck_assert_int_eq(gr_fs_unlink(gr_test_path("u"), 1), 0);
    ck_assert_int_eq(gr_fs_unlink(gr_test_path("nodir/u"), 1), 0); /* missing all the same */
    ck_assert_int_eq(mkdir(gr_test_path("d"), 0755), 0);
    ck_assert_int_eq(gr_fs_unlink(gr_test_path("d"), 0), -EISDIR);
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
    ck_assert_int_eq(gr_fs_mkdir(gr_test_path("m"), 0750), 0);
    ck_assert_int_eq(gr_fs_stat(gr_test_path("m"), &st), 0);
    ck_assert(S_ISDIR(st.stx_mode));
    ck_assert_int_eq(gr_fs_mkdir(gr_test_path("m"), 0750), -EEXIST);
    ck_assert_int_eq(gr_fs_mkdir(gr_test_path("no/parent"), 0750), -ENOENT);
    ck_assert_int_eq(gr_fs_makedirs(gr_test_path("a/b/c/d"), 0700, 0), 0);
    ck_assert_int_eq(gr_fs_is_dir(gr_test_path("a/b/c/d")), 1);
    ck_assert_int_eq(gr_fs_stat(gr_test_path("a/b/c/d"), &st), 0);
    ck_assert_uint_eq(st.stx_mode & 0777, 0700);
    ck_assert_int_eq(gr_fs_makedirs(gr_test_path("a/b/c/d"), 0700, 0), -EEXIST);
    ck_assert_int_eq(gr_fs_makedirs(gr_test_path("a/b/c/d"), 0700, 1), 0);
    ck_assert_int_eq(gr_fs_makedirs(gr_test_path("a/b//x/y/"), 0700, 0), 0);
    ck_assert_int_eq(gr_fs_is_dir(gr_test_path("a/b/x/y")), 1);
    gr_test_write_file(gr_test_path("file"), "", 0);
    ck_assert_int_eq(gr_fs_makedirs(gr_test_path("file/sub/dir"), 0700, 1), -ENOTDIR);
    ck_assert_int_eq(gr_fs_makedirs(gr_test_path("file"), 0700, 1), -EEXIST);
    ck_assert_int_eq(gr_fs_makedirs("", 0700, 1), -EINVAL);
    ck_assert_int_eq(gr_fs_rmdir(gr_test_path("a/b/c")), -ENOTEMPTY);
    ck_assert_int_eq(gr_fs_rmdir(gr_test_path("a/b/c/d")), 0);
    ck_assert_int_eq(gr_fs_rmdir(gr_test_path("a/b/c/d")), -ENOENT);
    ck_assert_int_eq(gr_fs_rmdir(gr_test_path("file")), -ENOTDIR);
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
    gr_test_write_file(gr_test_path("target"), "T", 1);
    ck_assert_int_eq(gr_fs_link(gr_test_path("target"), gr_test_path("hard")), 0);
    struct statx st;
    ck_assert_int_eq(gr_fs_stat(gr_test_path("target"), &st), 0);
    ck_assert_uint_eq(st.stx_nlink, 2);
    ck_assert_int_eq(gr_fs_link(gr_test_path("target"), gr_test_path("hard")), -EEXIST);
    ck_assert_int_eq(gr_fs_link(gr_test_path("missing"), gr_test_path("h2")), -ENOENT);
    ck_assert_int_eq(gr_fs_symlink("target", gr_test_path("soft")), 0);
    ck_assert_int_eq(gr_fs_symlink("target", gr_test_path("soft")), -EEXIST);
    char buf[64];
    ck_assert_int_eq(gr_fs_readlink(gr_test_path("soft"), buf, sizeof buf), 6);
    ck_assert_str_eq(buf, "target");
    ck_assert_int_eq(gr_fs_readlink(gr_test_path("soft"), buf, 6), -ENAMETOOLONG); /* no room for NUL */
    ck_assert_int_eq(gr_fs_readlink(gr_test_path("soft"), buf, 7), 6);
    ck_assert_int_eq(gr_fs_readlink(gr_test_path("target"), buf, sizeof buf), -EINVAL);
    ck_assert_int_eq(gr_fs_readlink(gr_test_path("missing"), buf, sizeof buf), -ENOENT);
    ck_assert_int_eq(gr_fs_readlink(gr_test_path("soft"), buf, 0), -EINVAL);

    /* realpath: symlinks, "." and ".." resolved. */
    char real_tmp[PATH_MAX], expect[PATH_MAX + 16], got[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(gr_test_tmpdir, real_tmp));
    snprintf(expect, sizeof expect, "%s/target", real_tmp);
    ck_assert_int_eq(mkdir(gr_test_path("sub"), 0755), 0);
    ssize_t n = gr_fs_realpath(gr_test_path("sub/../sub/./../soft"), got, sizeof got);
    ck_assert_int_eq(n, (ssize_t)strlen(expect));
    ck_assert_str_eq(got, expect);
    ck_assert_int_eq(gr_fs_realpath(gr_test_path("missing"), got, sizeof got), -ENOENT);
    ck_assert_int_eq(gr_fs_realpath(gr_test_path("soft"), got, 4), -ENAMETOOLONG);
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
    ck_assert_int_eq(mkdir(gr_test_path("L"), 0755), 0);
    for (int i = 0; i < NENTRIES; i++) {
        char name[64];
        snprintf(name, sizeof name, "L/entry-with-a-longish-name-%04d", i);
        gr_test_write_file(gr_test_path(name), "", 0);
    }
    ck_assert_int_eq(mkdir(gr_test_path("L/zdir"), 0755), 0);
    ck_assert_int_eq(symlink("zdir", gr_test_path("L/zlink")), 0);
    char **names;
    ssize_t n = gr_fs_listdir(gr_test_path("L"), &names);
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
    n = gr_fs_scandir(gr_test_path("L"), &ents);
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

    ck_assert_int_eq(gr_fs_listdir(gr_test_path("L/zdir"), &names), 0);
    ck_assert_ptr_null(names[0]);
    free(names);
    ck_assert_int_eq(gr_fs_listdir(gr_test_path("missing"), &names), -ENOENT);
    ck_assert_ptr_null(names);
    ck_assert_int_eq(gr_fs_listdir(gr_test_path("L/entry-with-a-longish-name-0001"), &names), -ENOTDIR);
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
    const char *src_dir = arg ? arg : gr_test_tmpdir;
    static const size_t sizes[] = {0, 1, 4096, 3 * 1024 * 1024 + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *data = gr_test_random_bytes(sizes[i], i + 1);
        char src[256];
        snprintf(src, sizeof src, "%s/gr-copy-src-%d", src_dir, (int)getpid());
        gr_test_write_file(src, data, sizes[i]);
        ck_assert_int_eq(chmod(src, 0640), 0);
        ck_assert_int_eq(gr_fs_copyfile(src, gr_test_path("dst")), (off_t)sizes[i]);
        expect_content(gr_test_path("dst"), data, sizes[i]);
        struct statx st;
        ck_assert_int_eq(gr_fs_stat(gr_test_path("dst"), &st), 0);
        ck_assert_uint_eq(st.stx_mode & 0777, 0640); /* created with src's bits */
        unlink(src);
        free(data);
    }
    /* Copying onto a longer file truncates it. */
    gr_test_write_file(gr_test_path("long"), "0123456789", 10);
    gr_test_write_file(gr_test_path("short"), "ab", 2);
    ck_assert_int_eq(gr_fs_copyfile(gr_test_path("short"), gr_test_path("long")), 2);
    expect_content(gr_test_path("long"), (const unsigned char *)"ab", 2);
    ck_assert_int_eq(gr_fs_copyfile(gr_test_path("missing"), gr_test_path("x")), -ENOENT);
    ck_assert_int_eq(gr_fs_copyfile(gr_test_tmpdir, gr_test_path("x")), -EISDIR);
    ck_assert_int_eq(mkdir(gr_test_path("dir"), 0755), 0);
    ck_assert_int_eq(gr_fs_copyfile(gr_test_path("short"), gr_test_path("dir")), -EISDIR);
    ck_assert_int_eq(gr_fs_copyfile(gr_test_path("short"), gr_test_path("nodir/x")), -ENOENT);
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
    c.data = gr_test_random_bytes(c.len, 5);
    gr_test_write_file(gr_test_path("sf.bin"), c.data, c.len);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c.sv), 0);
    if (nonblock) /* splice into it returns EAGAIN: the poll path */
        ck_assert_int_eq(fcntl(c.sv[0], F_SETFL, O_NONBLOCK), 0);
    c.offset = 100;
    c.count = 1000000;
    c.expect = c.count;
    sendfile_case(&c, gr_test_path("sf.bin"));
    c.offset = 5;
    c.count = 0; /* to the end */
    c.expect = c.len - 5;
    sendfile_case(&c, gr_test_path("sf.bin"));
    c.offset = (off_t)c.len - 10;
    c.count = 1000; /* past the end: what is there */
    c.expect = 10;
    sendfile_case(&c, gr_test_path("sf.bin"));
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
            gr_test_write_file(p, "x", 1);
        }
    }
    snprintf(p, sizeof p, "%s/d0/ro", root);
    ck_assert_int_eq(gr_fs_mkdir(p, 0500), 0); /* read-only, empty */
}

static int tree_main(void *arg)
{
    (void)arg;
    char d[256];
    ck_assert_int_eq(gr_fs_mkdtemp(d, sizeof d, gr_test_tmpdir, "tree-"), 0);
    ck_assert(strncmp(d, gr_test_path("tree-"), strlen(gr_test_path("tree-"))) == 0);
    ck_assert_uint_eq(strlen(d), strlen(gr_test_path("tree-")) + 6);
    struct statx st;
    ck_assert_int_eq(gr_fs_stat(d, &st), 0);
    ck_assert_uint_eq(st.stx_mode & 0777, 0700);
    char d2[256];
    ck_assert_int_eq(gr_fs_mkdtemp(d2, sizeof d2, gr_test_tmpdir, NULL), 0);
    ck_assert_str_ne(d, d2);
    char d3[256];
    ck_assert_int_eq(gr_fs_mkdtemp(d3, 10, gr_test_tmpdir, NULL), -ENAMETOOLONG);
    ck_assert_int_eq(gr_fs_mkdtemp(d3, sizeof d3, gr_test_path("missing"), NULL), -ENOENT);

    build_tree(d);
    /* A symlink to something outside: removed, not followed. */
    gr_test_write_file(gr_test_path("outside"), "keep", 4);
    char l[300];
    snprintf(l, sizeof l, "%s/d1/link-out", d);
    ck_assert_int_eq(gr_fs_symlink(gr_test_path("outside"), l), 0);
    snprintf(l, sizeof l, "%s/d1/link-dir", d);
    ck_assert_int_eq(gr_fs_symlink(gr_test_tmpdir, l), 0);
    ck_assert_int_eq(gr_fs_rmtree(d), 0);
    ck_assert_int_eq(gr_fs_exists(d), 0);
    ck_assert_int_eq(gr_fs_exists(gr_test_path("outside")), 1);
    ck_assert_int_eq(gr_fs_rmtree(d), -ENOENT);
    ck_assert_int_eq(gr_fs_rmtree(gr_test_path("outside")), -ENOTDIR);
    ck_assert_int_eq(gr_fs_symlink(d2, gr_test_path("dirlink")), 0);
    ck_assert_int_eq(gr_fs_rmtree(gr_test_path("dirlink")), -ENOTDIR); /* not through a link */
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
    ck_assert_int_eq(gr_fs_mkdtemp(d, sizeof d, gr_test_tmpdir, NULL), 0);
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
    ck_assert_int_eq(gr_fs_mkdir(gr_test_path("ro/new"), 0700), -EACCES);
    ck_assert_int_eq(gr_fs_stat(gr_test_path("closed/f"), &st), -EACCES);
    ck_assert_int_eq(gr_fs_exists(gr_test_path("closed/f")), -EACCES); /* unknown, not "no" */
    ck_assert_int_eq(gr_fs_unlink(gr_test_path("ro/f"), 0), -EACCES);
    ck_assert_int_eq(gr_fs_rename(gr_test_path("ro/f"), gr_test_path("g"), 0), -EACCES);
    char **names;
    ck_assert_int_eq(gr_fs_listdir(gr_test_path("closed"), &names), -EACCES);
    ck_assert_int_eq(gr_fs_copyfile(gr_test_path("secret"), gr_test_path("copy")), -EACCES);
    return 0;
}

START_TEST(eacces)
{
    ck_assert_int_eq(mkdir(gr_test_path("ro"), 0755), 0);
    gr_test_write_file(gr_test_path("ro/f"), "", 0);
    ck_assert_int_eq(chmod(gr_test_path("ro"), 0555), 0);
    ck_assert_int_eq(mkdir(gr_test_path("closed"), 0755), 0);
    gr_test_write_file(gr_test_path("closed/f"), "", 0);
    ck_assert_int_eq(chmod(gr_test_path("closed"), 0), 0);
    gr_test_write_file(gr_test_path("secret"), "s", 1);
    ck_assert_int_eq(chmod(gr_test_path("secret"), 0), 0);
    ck_assert_int_eq(chmod(gr_test_tmpdir, 0777), 0);
    if (geteuid() == 0)
        ck_assert_int_eq(setresuid(65534, 65534, 0), 0); /* saved 0: cleanup */
    gr_test_run_ok(eacces_main, NULL, 1);
    if (getuid() == 65534)
        ck_assert_int_eq(setresuid(0, 0, 0), 0);
    chmod(gr_test_path("ro"), 0755);
    chmod(gr_test_path("closed"), 0755);
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
    tcase_add_checked_fixture(tc, make_tmpdir, gr_test_tmpdir_remove);
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
