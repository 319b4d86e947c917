/* greenring-test: asan */
/* Raw fd I/O through io_uring: gr_read, gr_write, gr_pread, gr_pwrite,
 * gr_close, gr_nop. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/support.h"

/* ---------------------------------------------------------------------
 * 1 MiB through a pipe
 * --------------------------------------------------------------------- */

#define PIPE_BYTES ((size_t)1 << 20)

struct pipe_ctx {
    int fds[2];
    unsigned char *src;
    unsigned char *dst;
    size_t received;
    int writer_rc, reader_rc;
};

static size_t random_chunk(uint64_t *rng)
{
    /* mostly small, sometimes larger than the pipe buffer */
    uint64_t r = gr_test_rand(rng);
    return (r & 3) == 0 ? 1 + (size_t)(r >> 8) % (128 * 1024) : 1 + (size_t)(r >> 8) % 4096;
}

static int pipe_writer(void *arg)
{
    struct pipe_ctx *c = arg;
    uint64_t rng = 0xfeedface12345678ull;
    size_t off = 0;
    while (off < PIPE_BYTES) {
        size_t want = random_chunk(&rng);
        if (want > PIPE_BYTES - off)
            want = PIPE_BYTES - off;
        ssize_t n = gr_write(c->fds[1], c->src + off, want);
        ck_assert_msg(n > 0 && (size_t)n <= want, "gr_write(%zu) = %zd", want, n);
        off += (size_t)n;
    }
    /* the reader sees EOF once this is closed */
    ck_assert_int_eq(gr_close(c->fds[1]), 0);
    c->fds[1] = -1;
    return 0;
}

static int pipe_reader(void *arg)
{
    struct pipe_ctx *c = arg;
    uint64_t rng = 0x0123456789abcdefull;
    for (;;) {
        size_t want = random_chunk(&rng);
        if (want > PIPE_BYTES + 1 - c->received)
            want = PIPE_BYTES + 1 - c->received; /* room to notice extra bytes */
        ssize_t n = gr_read(c->fds[0], c->dst + c->received, want);
        ck_assert_msg(n >= 0 && (size_t)n <= want, "gr_read(%zu) = %zd", want, n);
        if (n == 0)
            break;
        c->received += (size_t)n;
    }
    /* EOF stays EOF */
    unsigned char b;
    ck_assert_int_eq(gr_read(c->fds[0], &b, 1), 0);
    return 0;
}

static int pipe_main(void *arg)
{
    struct pipe_ctx *c = arg;
    gr_task *w, *r;
    ck_assert_int_eq(gr_spawn(&r, pipe_reader, c, NULL), 0);
    ck_assert_int_eq(gr_spawn(&w, pipe_writer, c, NULL), 0);
    ck_assert_int_eq(gr_join(w), 0);
    ck_assert_int_eq(gr_join(r), 0);
    return 0;
}

static void pipe_transfer(unsigned workers)
{
    struct pipe_ctx c;
    memset(&c, 0, sizeof(c));
    c.src = malloc(PIPE_BYTES);
    c.dst = malloc(PIPE_BYTES + 1);
    ck_assert(c.src && c.dst);
    uint64_t rng = 42;
    for (size_t i = 0; i < PIPE_BYTES; i += 8) {
        uint64_t v = gr_test_rand(&rng);
        memcpy(c.src + i, &v, 8);
    }
    int fds = gr_test_open_fds();
    gr_test_pipe(c.fds);
    ck_assert_int_eq(gr_test_run(pipe_main, &c, workers), 0);
    ck_assert_int_eq(c.fds[1], -1); /* closed by gr_close */
    close(c.fds[0]);
    ck_assert_int_eq(gr_test_open_fds(), fds);
    ck_assert_uint_eq(c.received, PIPE_BYTES);
    for (size_t i = 0; i < PIPE_BYTES; i++)
        if (c.src[i] != c.dst[i])
            ck_abort_msg("byte %zu differs: sent 0x%02x, received 0x%02x", i, c.src[i], c.dst[i]);
    free(c.src);
    free(c.dst);
}

START_TEST(pipe_one_mib_one_worker)
{
    pipe_transfer(1);
}
END_TEST

START_TEST(pipe_one_mib_two_workers)
{
    pipe_transfer(2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Files: pread / pwrite at offsets
 * --------------------------------------------------------------------- */

static int temp_file(void)
{
    char path[] = "/tmp/greenring-test-fd-XXXXXX";
    int fd = mkostemp(path, O_CLOEXEC);
    ck_assert_msg(fd >= 0, "mkostemp: %s", strerror(errno));
    ck_assert_int_eq(unlink(path), 0);
    return fd;
}

static int file_main(void *arg)
{
    int fd = *(int *)arg;
    char buf[64];

    ck_assert_int_eq(gr_pwrite(fd, "hello", 5, 100), 5);
    ck_assert_int_eq(gr_pwrite(fd, "world", 5, 8192), 5);
    ck_assert_int_eq(gr_pwrite(fd, "HE", 2, 100), 2); /* overwrite in place */

    memset(buf, 'x', sizeof(buf));
    ck_assert_int_eq(gr_pread(fd, buf, 5, 100), 5);
    ck_assert_int_eq(memcmp(buf, "HEllo", 5), 0);
    ck_assert_int_eq(gr_pread(fd, buf, 5, 8192), 5);
    ck_assert_int_eq(memcmp(buf, "world", 5), 0);
    /* the hole reads as zeros */
    ck_assert_int_eq(gr_pread(fd, buf, 10, 200), 10);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(buf[i], 0);
    /* a read across the end is short; at and past the end it is 0 */
    ck_assert_int_eq(gr_pread(fd, buf, 10, 8195), 2);
    ck_assert_int_eq(memcmp(buf, "ld", 2), 0);
    ck_assert_int_eq(gr_pread(fd, buf, 10, 8197), 0);
    ck_assert_int_eq(gr_pread(fd, buf, 10, 1 << 20), 0);
    /* negative offsets are refused */
    ck_assert_int_eq(gr_pread(fd, buf, 1, -1), -EINVAL);
    ck_assert_int_eq(gr_pwrite(fd, buf, 1, -5), -EINVAL);

    /* pread/pwrite leave the file position alone; gr_read/gr_write use and
     * move it */
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 0);
    ck_assert_int_eq(gr_write(fd, "abc", 3), 3);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 3);
    ck_assert_int_eq(lseek(fd, 100, SEEK_SET), 100);
    ck_assert_int_eq(gr_read(fd, buf, 5), 5);
    ck_assert_int_eq(memcmp(buf, "HEllo", 5), 0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 105);
    ck_assert_int_eq(lseek(fd, 0, SEEK_END), 8197);
    ck_assert_int_eq(gr_read(fd, buf, sizeof(buf)), 0); /* at EOF */
    ck_assert_int_eq(gr_pread(fd, buf, 3, 0), 3);
    ck_assert_int_eq(memcmp(buf, "abc", 3), 0);

    /* zero-length calls */
    ck_assert_int_eq(gr_pread(fd, buf, 0, 0), 0);
    ck_assert_int_eq(gr_pwrite(fd, buf, 0, 0), 0);
    return 0;
}

START_TEST(file_pread_pwrite)
{
    int fd = temp_file();
    gr_test_run_ok(file_main, &fd, 2);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_int_eq(st.st_size, 8197);
    char buf[5];
    ck_assert_int_eq(pread(fd, buf, 5, 8192), 5);
    ck_assert_int_eq(memcmp(buf, "world", 5), 0);
    close(fd);
}
END_TEST

/* Many tasks write disjoint blocks of one file at once, then check them. */
#define BLOCKS 64
#define BLOCK 4096

static int block_writer(void *arg)
{
    int fd = (int)((intptr_t)arg >> 16);
    int i = (int)((intptr_t)arg & 0xffff);
    unsigned char buf[BLOCK];
    memset(buf, i + 1, sizeof(buf));
    ck_assert_int_eq(gr_pwrite(fd, buf, BLOCK, (off_t)i * BLOCK), BLOCK);
    ck_assert_int_eq(gr_yield(), 0);
    unsigned char back[BLOCK];
    ck_assert_int_eq(gr_pread(fd, back, BLOCK, (off_t)i * BLOCK), BLOCK);
    ck_assert_int_eq(memcmp(buf, back, BLOCK), 0);
    return i;
}

static int blocks_main(void *arg)
{
    int fd = *(int *)arg;
    gr_task *h[BLOCKS];
    for (intptr_t i = 0; i < BLOCKS; i++)
        ck_assert_int_eq(gr_spawn(&h[i], block_writer, (void *)(((intptr_t)fd << 16) | i), NULL), 0);
    for (int i = 0; i < BLOCKS; i++)
        ck_assert_int_eq(gr_join(h[i]), i);
    return 0;
}

START_TEST(file_concurrent_blocks)
{
    int fd = temp_file();
    gr_test_run_ok(blocks_main, &fd, 2);
    unsigned char buf[BLOCK];
    for (int i = 0; i < BLOCKS; i++) {
        ck_assert_int_eq(pread(fd, buf, BLOCK, (off_t)i * BLOCK), BLOCK);
        for (int k = 0; k < BLOCK; k++)
            ck_assert_int_eq(buf[k], i + 1);
    }
    close(fd);
}
END_TEST

/* ---------------------------------------------------------------------
 * EOF, bad fds, close, nop
 * --------------------------------------------------------------------- */

/* An fd number that is certainly not open: a high dup that was closed. */
static int closed_fd(void)
{
    int p[2];
    gr_test_pipe(p);
    int fd = fcntl(p[0], F_DUPFD_CLOEXEC, 900);
    ck_assert_int_ge(fd, 900);
    ck_assert_int_eq(close(fd), 0);
    close(p[0]);
    close(p[1]);
    return fd;
}

static int is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

static int errors_main(void *arg)
{
    int bad = *(int *)arg;
    char buf[8];
    int p[2];

    /* EOF on a pipe whose write end is closed */
    gr_test_pipe(p);
    ck_assert_int_eq(gr_write(p[1], "xy", 2), 2);
    ck_assert_int_eq(close(p[1]), 0);
    ck_assert_int_eq(gr_read(p[0], buf, sizeof(buf)), 2);
    ck_assert_int_eq(gr_read(p[0], buf, sizeof(buf)), 0);
    ck_assert_int_eq(gr_read(p[0], buf, sizeof(buf)), 0);
    ck_assert_int_eq(gr_close(p[0]), 0);
    ck_assert(!is_open(p[0]));

    /* closed and negative fds */
    ck_assert_int_eq(gr_read(bad, buf, 1), -EBADF);
    ck_assert_int_eq(gr_write(bad, buf, 1), -EBADF);
    ck_assert_int_eq(gr_pread(bad, buf, 1, 0), -EBADF);
    ck_assert_int_eq(gr_pwrite(bad, buf, 1, 0), -EBADF);
    ck_assert_int_eq(gr_close(bad), -EBADF);
    ck_assert_int_eq(gr_read(-1, buf, 1), -EBADF);
    ck_assert_int_eq(gr_write(-1, buf, 1), -EBADF);
    ck_assert_int_eq(gr_pread(-7, buf, 1, 0), -EBADF);
    ck_assert_int_eq(gr_pwrite(-7, buf, 1, 0), -EBADF);
    ck_assert_int_eq(gr_close(-1), -EBADF);

    /* wrong direction */
    gr_test_pipe(p);
    ck_assert_int_eq(gr_read(p[1], buf, 1), -EBADF);
    ck_assert_int_eq(gr_write(p[0], buf, 1), -EBADF);
    ck_assert_int_eq(gr_close(p[0]), 0);
    ck_assert_int_eq(gr_close(p[1]), 0);
    ck_assert(!is_open(p[0]) && !is_open(p[1]));
    /* closing twice */
    ck_assert_int_eq(gr_close(p[0]), -EBADF);

    /* a directory cannot be read */
    int dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(dir, 0);
    ck_assert_int_eq(gr_read(dir, buf, sizeof(buf)), -EISDIR);
    ck_assert_int_eq(gr_close(dir), 0);

    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(gr_nop(), 0);
    return 0;
}

START_TEST(eof_bad_fds_close_nop)
{
    int bad = closed_fd();
    gr_test_run_ok(errors_main, &bad, 1);
}
END_TEST

/* Many tasks doing nops at once on several workers. */
static int nop_task(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++)
        ck_assert_int_eq(gr_nop(), 0);
    return 0;
}

static int nops_main(void *arg)
{
    (void)arg;
    gr_task *h[100];
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(gr_spawn(&h[i], nop_task, NULL, NULL), 0);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(gr_join(h[i]), 0);
    return 0;
}

START_TEST(nops_many_tasks)
{
    gr_test_run_ok(nops_main, NULL, 2);
}
END_TEST

/* gr_close releases fds for real: open and close many pipes. */
static int close_many_main(void *arg)
{
    (void)arg;
    int before = gr_test_open_fds();
    for (int i = 0; i < 1000; i++) {
        int p[2];
        gr_test_pipe(p);
        ck_assert_int_eq(gr_close(p[1]), 0);
        ck_assert_int_eq(gr_close(p[0]), 0);
    }
    ck_assert_int_eq(gr_test_open_fds(), before);
    return 0;
}

START_TEST(close_releases_fds)
{
    gr_test_run_ok(close_many_main, NULL, 2);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("fd");
    TCase *tc = tcase_create("pipe");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pipe_one_mib_one_worker);
    tcase_add_test(tc, pipe_one_mib_two_workers);
    suite_add_tcase(s, tc);

    tc = tcase_create("file");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, file_pread_pwrite);
    tcase_add_test(tc, file_concurrent_blocks);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, eof_bad_fds_close_nop);
    tcase_add_test(tc, nops_many_tasks);
    tcase_add_test(tc, close_releases_fds);
    suite_add_tcase(s, tc);
    return s;
}
