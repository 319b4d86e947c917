/* greenring-test: asan tsan */
/* The file object: byte-exact round trips (buffered and unbuffered, every
 * size class around the buffer), readline and the line iterator, append
 * from many tasks on two workers, concurrent readers and writers, seek,
 * truncate (ring and offload fallback), sync/allocate/advise, positional
 * and vectored I/O, O_DIRECT, fixed files, temporary files, speculation
 * fairness, cancellation, and every error (EBADF after close included). */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/file.h"
#include "io/uring_compat.h"
#include "support/support.h"

/* ---------------------------------------------------------------------
 * Fixture: a fresh directory per test (in the forked test process)
 * --------------------------------------------------------------------- */

/* The fixture's setup (Check wants a void(void) function). */
static void make_tmpdir(void)
{
    gr_test_tmpdir_make("/tmp/gr-test-file.XXXXXX");
}

/* The file's content read with plain libc (outside the runtime). */
static size_t slurp(const char *path, unsigned char **out)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    unsigned char *p = malloc((size_t)st.st_size + 1);
    size_t len = 0;
    ssize_t n;
    while ((n = read(fd, p + len, (size_t)st.st_size - len)) > 0)
        len += (size_t)n;
    close(fd);
    *out = p;
    return len;
}

/* ---------------------------------------------------------------------
 * Round trips
 * --------------------------------------------------------------------- */

#define BUF GR_FILE_DEFAULT_BUFFER
static const size_t sizes[] = {0, 1, 100, 4095, 4096, BUF - 1, BUF, BUF + 1, 10 * BUF + 123,
                               3 * 1024 * 1024 + 7};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

struct roundtrip {
    int unbuffered;
};

/* Write `data` in chunks of random sizes (1 .. 2.5 buffers). */
static void write_chunks(gr_file *f, const unsigned char *data, size_t len, uint64_t *rng)
{
    size_t off = 0;
    while (off < len) {
        size_t c = 1 + gr_test_rand(rng) % (BUF * 5 / 2);
        if (c > len - off)
            c = len - off;
        ck_assert_int_eq(gr_file_write_all(f, data + off, c), (ssize_t)c);
        off += c;
    }
}

/* Read back in random chunk sizes and compare. */
static void read_chunks(gr_file *f, const unsigned char *data, size_t len, uint64_t *rng)
{
    unsigned char *got = malloc(len + BUF * 3);
    size_t off = 0;
    for (;;) {
        size_t c = 1 + gr_test_rand(rng) % (BUF * 5 / 2);
        ssize_t n = gr_file_read(f, got + off, c);
        ck_assert_int_ge(n, 0);
        if (n == 0)
            break;
        ck_assert_int_le(n, (ssize_t)c);
        off += (size_t)n;
        ck_assert_uint_le(off, len);
    }
    ck_assert_uint_eq(off, len);
    ck_assert(memcmp(got, data, len) == 0);
    free(got);
}

static int roundtrip_main(void *arg)
{
    struct roundtrip *rt = arg;
    gr_file_opts opts = {.unbuffered = rt->unbuffered};
    uint64_t rng = 42;
    for (size_t i = 0; i < NSIZES; i++) {
        size_t len = sizes[i];
        unsigned char *data = gr_test_random_bytes(len, i + 1);
        const char *path = gr_test_path("rt.bin");
        gr_file f;
        ck_assert_int_eq(gr_file_open_flags(&f, path, O_WRONLY | O_CREAT | O_TRUNC, 0644, &opts),
                         0);
        write_chunks(&f, data, len, &rng);
        ck_assert_int_eq(gr_file_tell(&f), (off_t)len);
        ck_assert_int_eq(gr_file_close(&f), 0);

        /* Chunked reads. */
        ck_assert_int_eq(gr_file_open_flags(&f, path, O_RDONLY, 0, &opts), 0);
        read_chunks(&f, data, len, &rng);
        /* read_all from a position in the middle. */
        off_t mid = (off_t)(len / 3);
        ck_assert_int_eq(gr_file_seek(&f, mid, SEEK_SET), mid);
        char *all;
        ck_assert_int_eq(gr_file_read_all(&f, &all, 0), (ssize_t)(len - (size_t)mid));
        ck_assert(memcmp(all, data + mid, len - (size_t)mid) == 0);
        ck_assert_int_eq(all[len - (size_t)mid], '\0');
        free(all);
        ck_assert_int_eq(gr_file_tell(&f), (off_t)len);
        /* pread of random ranges. */
        unsigned char *tmp = malloc(BUF * 2);
        for (int k = 0; k < 20 && len; k++) {
            size_t at = gr_test_rand(&rng) % len, want = 1 + gr_test_rand(&rng) % (BUF * 2);
            ssize_t n = gr_file_pread(&f, tmp, want, (off_t)at);
            size_t expect = want < len - at ? want : len - at;
            ck_assert_int_eq(n, (ssize_t)expect);
            ck_assert(memcmp(tmp, data + at, expect) == 0);
        }
        free(tmp);
        ck_assert_int_eq(gr_file_close(&f), 0);
        unsigned char *disk;
        ck_assert_uint_eq(slurp(path, &disk), len);
        ck_assert(memcmp(disk, data, len) == 0);
        free(disk);
        free(data);
    }
    return 0;
}

START_TEST(roundtrip_buffered)
{
    struct roundtrip rt = {0};
    gr_test_run_ok(roundtrip_main, &rt, 1);
}
END_TEST

START_TEST(roundtrip_unbuffered)
{
    struct roundtrip rt = {.unbuffered = 1};
    gr_test_run_ok(roundtrip_main, &rt, 2);
}
END_TEST

/* Mixed reads and writes through one "r+" file: the buffer switches
 * between read cache and pending writes, and stays consistent. */
static int mixed_main(void *arg)
{
    (void)arg;
    size_t len = 5 * BUF + 17;
    unsigned char *model = gr_test_random_bytes(len, 7);
    gr_test_write_file(gr_test_path("mixed.bin"), model, len);
    gr_file f;
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("mixed.bin"), "r+b"), 0);
    uint64_t rng = 99;
    unsigned char *tmp = malloc(3 * BUF); /* more than a task stack */
    for (int i = 0; i < 300; i++) {
        size_t at = gr_test_rand(&rng) % len;
        size_t n = 1 + gr_test_rand(&rng) % (2 * BUF);
        if (n > len - at)
            n = len - at;
        ck_assert_int_eq(gr_file_seek(&f, (off_t)at, SEEK_SET), (off_t)at);
        if (gr_test_rand(&rng) & 1) {
            ck_assert_int_eq(gr_file_read(&f, tmp, n), (ssize_t)n);
            ck_assert(memcmp(tmp, model + at, n) == 0);
        } else {
            for (size_t k = 0; k < n; k++)
                tmp[k] = (unsigned char)gr_test_rand(&rng);
            ck_assert_int_eq(gr_file_write(&f, tmp, n), (ssize_t)n);
            memcpy(model + at, tmp, n);
        }
        ck_assert_int_eq(gr_file_tell(&f), (off_t)(at + n));
    }
    ck_assert_int_eq(gr_file_close(&f), 0);
    unsigned char *disk;
    ck_assert_uint_eq(slurp(gr_test_path("mixed.bin"), &disk), len);
    ck_assert(memcmp(disk, model, len) == 0);
    free(disk);
    free(model);
    free(tmp);
    return 0;
}

START_TEST(mixed_read_write)
{
    gr_test_run_ok(mixed_main, NULL, 1);
}
END_TEST

static int vectored_main(void *arg)
{
    (void)arg;
    gr_file f;
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("v.bin"), "w+"), 0);
    char a[] = "hello ", b[] = "vectored ", c[] = "world";
    struct iovec w[3] = {{a, 6}, {b, 9}, {c, 5}};
    ck_assert_int_eq(gr_file_pwritev(&f, w, 3, 10), 20);
    char x[8], y[12];
    struct iovec r[2] = {{x, 8}, {y, 12}};
    ck_assert_int_eq(gr_file_preadv(&f, r, 2, 10), 20);
    ck_assert(memcmp(x, "hello ve", 8) == 0);
    ck_assert(memcmp(y, "ctored world", 12) == 0);
    ck_assert_int_eq(gr_file_preadv(&f, r, 0, 0), -EINVAL);
    ck_assert_int_eq(gr_file_pread(&f, x, 4, 0), 4); /* the hole before */
    ck_assert(memcmp(x, "\0\0\0\0", 4) == 0);
    ck_assert_int_eq(gr_file_pread(&f, x, 4, -1), -EINVAL);
    ck_assert_int_eq(gr_file_tell(&f), 0); /* positional I/O leaves it */
    ck_assert_int_eq(gr_file_close(&f), 0);
    return 0;
}

START_TEST(vectored_and_positional)
{
    gr_test_run_ok(vectored_main, NULL, 1);
}
END_TEST

/* Buffered writes are visible to pread (flushed first); pwrite drops the
 * read cache. */
static int coherence_main(void *arg)
{
    (void)arg;
    gr_file f;
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("c.bin"), "w+"), 0);
    ck_assert_int_eq(gr_file_write(&f, "abcdef", 6), 6);
    char b[8] = {0};
    ck_assert_int_eq(gr_file_pread(&f, b, 6, 0), 6);
    ck_assert_str_eq(b, "abcdef");
    ck_assert_int_eq(gr_file_seek(&f, 0, SEEK_SET), 0);
    ck_assert_int_eq(gr_file_read(&f, b, 2), 2); /* fills the read cache */
    ck_assert_int_eq(gr_file_pwrite(&f, "XY", 2, 2), 2);
    ck_assert_int_eq(gr_file_read(&f, b, 4), 4);
    ck_assert(memcmp(b, "XYef", 4) == 0);
    ck_assert_int_eq(gr_file_close(&f), 0);
    return 0;
}

START_TEST(buffer_coherence)
{
    gr_test_run_ok(coherence_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * readline and lines
 * --------------------------------------------------------------------- */

static void expect_lines(gr_file *f, const char *const *lines, size_t n)
{
    char buf[256];
    for (size_t i = 0; i < n; i++) {
        ssize_t len = gr_file_readline(f, buf, sizeof buf);
        ck_assert_int_eq(len, (ssize_t)strlen(lines[i]));
        ck_assert_str_eq(buf, lines[i]);
    }
    ck_assert_int_eq(gr_file_readline(f, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(gr_file_readline(f, buf, sizeof buf), 0);
}

static int readline_main(void *arg)
{
    gr_file_opts opts = {.unbuffered = (int)(intptr_t)arg};
    static const char text[] = "a\n\nbb\nccc";
    static const char *const lines[] = {"a\n", "\n", "bb\n", "ccc"};
    gr_test_write_file(gr_test_path("l.txt"), text, strlen(text));
    gr_file f;
    ck_assert_int_eq(gr_file_open_flags(&f, gr_test_path("l.txt"), O_RDONLY, 0, &opts), 0);
    expect_lines(&f, lines, 4);
    ck_assert_int_eq(gr_file_close(&f), 0);

    /* Empty file, and a file of only newlines. */
    gr_test_write_file(gr_test_path("e.txt"), "", 0);
    ck_assert_int_eq(gr_file_open_flags(&f, gr_test_path("e.txt"), O_RDONLY, 0, &opts), 0);
    expect_lines(&f, NULL, 0);
    ck_assert_int_eq(gr_file_close(&f), 0);
    gr_test_write_file(gr_test_path("n.txt"), "\n\n\n", 3);
    static const char *const nl[] = {"\n", "\n", "\n"};
    ck_assert_int_eq(gr_file_open_flags(&f, gr_test_path("n.txt"), O_RDONLY, 0, &opts), 0);
    expect_lines(&f, nl, 3);
    ck_assert_int_eq(gr_file_close(&f), 0);

    /* Limits: a line must fit with its '\n' in size - 1 bytes. */
    gr_test_write_file(gr_test_path("lim.txt"), "0123456789\nabcdefghij", 21);
    ck_assert_int_eq(gr_file_open_flags(&f, gr_test_path("lim.txt"), O_RDONLY, 0, &opts), 0);
    char small[11], big[12];
    ck_assert_int_eq(gr_file_readline(&f, small, sizeof small), -EOVERFLOW);
    ck_assert_int_eq(gr_file_tell(&f), 0); /* nothing consumed */
    ck_assert_int_eq(gr_file_readline(&f, big, sizeof big), 11);
    ck_assert_str_eq(big, "0123456789\n");
    /* The last line has exactly 10 bytes and no '\n': it fits in 11. */
    ck_assert_int_eq(gr_file_readline(&f, small, sizeof small), 10);
    ck_assert_str_eq(small, "abcdefghij");
    ck_assert_int_eq(gr_file_readline(&f, small, 1), 0);
    ck_assert_int_eq(gr_file_readline(&f, small, 0), -EINVAL);
    ck_assert_int_eq(gr_file_close(&f), 0);
    return 0;
}

START_TEST(readline_edges_buffered)
{
    gr_test_run_ok(readline_main, (void *)0, 1);
}
END_TEST

START_TEST(readline_edges_unbuffered)
{
    gr_test_run_ok(readline_main, (void *)1, 1);
}
END_TEST

/* Random lines through a tiny buffer: every line crosses buffer
 * boundaries; compared with the text split by hand. */
static int split_main(void *arg)
{
    gr_file_opts opts = {.buffer_size = (size_t)(intptr_t)arg};
    uint64_t rng = 5;
    size_t cap = 200000, len = 0;
    char *text = malloc(cap);
    while (len < cap - 200) {
        size_t l = gr_test_rand(&rng) % 90;
        for (size_t i = 0; i < l; i++)
            text[len++] = (char)('a' + gr_test_rand(&rng) % 26);
        text[len++] = '\n';
    }
    text[len++] = 'z'; /* no trailing newline */
    gr_test_write_file(gr_test_path("split.txt"), text, len);
    gr_file f;
    ck_assert_int_eq(gr_file_open_flags(&f, gr_test_path("split.txt"), O_RDONLY, 0, &opts), 0);
    gr_file_lines it;
    ck_assert_int_eq(gr_file_lines_init(&it, &f, 100), 0);
    size_t off = 0, count = 0;
    const char *line;
    ssize_t n;
    while ((n = gr_file_lines_next(&it, &line)) > 0) {
        ck_assert(memcmp(line, text + off, (size_t)n) == 0);
        ck_assert_int_eq(line[n], '\0');
        off += (size_t)n;
        count++;
    }
    ck_assert_int_eq(n, 0);
    ck_assert_uint_eq(off, len);
    ck_assert_uint_gt(count, 1000);
    gr_file_lines_destroy(&it);
    ck_assert_int_eq(gr_file_close(&f), 0);
    free(text);
    return 0;
}

START_TEST(lines_across_buffer_boundaries)
{
    gr_test_run_ok(split_main, (void *)(intptr_t)16, 1);
}
END_TEST

START_TEST(lines_across_buffer_boundaries_100)
{
    gr_test_run_ok(split_main, (void *)(intptr_t)100, 1);
}
END_TEST

START_TEST(lines_default_buffer)
{
    gr_test_run_ok(split_main, (void *)(intptr_t)0, 1);
}
END_TEST

/* The iterator: a line over the limit is -EOVERFLOW and stays unread. */
static int iter_limit_main(void *arg)
{
    (void)arg;
    char text[400];
    memset(text, 'x', sizeof text);
    memcpy(text, "short\n", 6);
    text[6 + 300] = '\n'; /* a 301-byte line */
    memcpy(text + 307, "tail\n", 5);
    gr_test_write_file(gr_test_path("it.txt"), text, 312);
    gr_file f;
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("it.txt"), "r"), 0);
    gr_file_lines it;
    ck_assert_int_eq(gr_file_lines_init(&it, &f, 300), 0);
    const char *line;
    ck_assert_int_eq(gr_file_lines_next(&it, &line), 6);
    ck_assert_str_eq(line, "short\n");
    ck_assert_int_eq(gr_file_lines_next(&it, &line), -EOVERFLOW);
    ck_assert_int_eq(gr_file_tell(&f), 6);
    gr_file_lines_destroy(&it);
    ck_assert_int_eq(gr_file_lines_init(&it, &f, 301), 0);
    ck_assert_int_eq(gr_file_lines_next(&it, &line), 301);
    ck_assert_int_eq(gr_file_lines_next(&it, &line), 5);
    ck_assert_str_eq(line, "tail\n");
    ck_assert_int_eq(gr_file_lines_next(&it, &line), 0);
    gr_file_lines_destroy(&it);
    ck_assert_int_eq(gr_file_lines_init(&it, &f, 0), -EINVAL);
    ck_assert_int_eq(gr_file_close(&f), 0);
    return 0;
}

START_TEST(lines_limit)
{
    gr_test_run_ok(iter_limit_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Append from many tasks on two workers
 * --------------------------------------------------------------------- */

#define APPENDERS 16
#define RECORDS 300

struct append {
    gr_file shared;
    int mode; /* 0: one handle each (buffered), 1: each unbuffered, 2: one shared handle */
    int id;
};

static int appender(void *arg)
{
    struct append *a = arg;
    struct append *base = a - a->id;
    gr_file own, *f = &base->shared;
    gr_file_opts opts = {.unbuffered = a->mode == 1, .buffer_size = 4096};
    if (a->mode != 2) {
        f = &own;
        char path[256];
        ck_assert_int_eq(gr_file_open_flags(f, gr_test_path_in(path, sizeof path, "log.txt"),
                                            O_WRONLY | O_CREAT | O_APPEND, 0644, &opts),
                         0);
    }
    for (int r = 0; r < RECORDS; r++) {
        char rec[64];
        int n = snprintf(rec, sizeof rec, "task %02d record %04d %s\n", a->id, r,
                         r % 3 ? "x" : "padding-to-vary-the-length");
        ck_assert_int_eq(gr_file_write_all(f, rec, (size_t)n), n);
        if (r % 7 == 0)
            gr_yield();
    }
    if (a->mode != 2)
        ck_assert_int_eq(gr_file_close(f), 0);
    return 0;
}

static int append_main(void *arg)
{
    struct append *a = arg;
    if (a[0].mode == 2)
        ck_assert_int_eq(gr_file_open(&a[0].shared, gr_test_path("log.txt"), "a"), 0);
    gr_task *t[APPENDERS];
    for (int i = 0; i < APPENDERS; i++)
        ck_assert_int_eq(gr_spawn(&t[i], appender, &a[i], NULL), 0);
    for (int i = 0; i < APPENDERS; i++)
        ck_assert_int_eq(gr_join(t[i]), 0);
    if (a[0].mode == 2)
        ck_assert_int_eq(gr_file_close(&a[0].shared), 0);
    /* Every record exactly once, each line intact. */
    static int seen[APPENDERS][RECORDS];
    memset(seen, 0, sizeof seen);
    gr_file f;
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("log.txt"), "r"), 0);
    gr_file_lines it;
    ck_assert_int_eq(gr_file_lines_init(&it, &f, 64), 0);
    const char *line;
    ssize_t n;
    int lines = 0;
    while ((n = gr_file_lines_next(&it, &line)) > 0) {
        int id, r;
        char tail[40];
        ck_assert_int_eq(sscanf(line, "task %d record %d %39s", &id, &r, tail), 3);
        ck_assert(id >= 0 && id < APPENDERS && r >= 0 && r < RECORDS);
        ck_assert_str_eq(tail, r % 3 ? "x" : "padding-to-vary-the-length");
        ck_assert_int_eq(line[n - 1], '\n');
        seen[id][r]++;
        lines++;
    }
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(lines, APPENDERS * RECORDS);
    for (int i = 0; i < APPENDERS; i++)
        for (int r = 0; r < RECORDS; r++)
            ck_assert_int_eq(seen[i][r], 1);
    gr_file_lines_destroy(&it);
    ck_assert_int_eq(gr_file_close(&f), 0);
    return 0;
}

static void run_append(int mode)
{
    static struct append a[APPENDERS];
    for (int i = 0; i < APPENDERS; i++)
        a[i] = (struct append){.mode = mode, .id = i};
    gr_test_run_ok(append_main, a, 2);
}

START_TEST(append_many_tasks_own_handles)
{
    run_append(0);
}
END_TEST

START_TEST(append_many_tasks_unbuffered)
{
    run_append(1);
}
END_TEST

START_TEST(append_many_tasks_shared_handle)
{
    run_append(2);
}
END_TEST

/* Append mode positions: tell is the end of the file; a+ reads after a
 * seek; writes go to the end whatever the position. */
static int append_pos_main(void *arg)
{
    (void)arg;
    gr_test_write_file(gr_test_path("ap.txt"), "0123456789", 10);
    gr_file f;
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("ap.txt"), "a+"), 0);
    ck_assert_int_eq(gr_file_tell(&f), 10);
    ck_assert_int_eq(gr_file_write(&f, "ab", 2), 2);
    ck_assert_int_eq(gr_file_tell(&f), 12);
    ck_assert_int_eq(gr_file_seek(&f, 2, SEEK_SET), 2);
    char b[4] = {0};
    ck_assert_int_eq(gr_file_read(&f, b, 3), 3);
    ck_assert_str_eq(b, "234");
    ck_assert_int_eq(gr_file_write(&f, "cd", 2), 2); /* still at the end */
    ck_assert_int_eq(gr_file_tell(&f), 14);
    ck_assert_int_eq(gr_file_close(&f), 0);
    unsigned char *disk;
    ck_assert_uint_eq(slurp(gr_test_path("ap.txt"), &disk), 14);
    ck_assert(memcmp(disk, "0123456789abcd", 14) == 0);
    free(disk);
    return 0;
}

START_TEST(append_positions)
{
    gr_test_run_ok(append_pos_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Concurrent readers and writers on many files
 * --------------------------------------------------------------------- */

#define NFILES 24
#define FILE_LEN (200 * 1024 + 11)

static int writer_reader(void *arg)
{
    int id = (int)(intptr_t)arg;
    char name[32];
    snprintf(name, sizeof name, "f%02d.bin", id);
    unsigned char *data = gr_test_random_bytes(FILE_LEN, 1000 + (uint64_t)id);
    gr_file f;
    gr_file_opts opts = {.unbuffered = id & 1, .fixed = id % 3 == 0};
    char path[256];
    ck_assert_int_eq(gr_file_open_flags(&f, gr_test_path_in(path, sizeof path, name),
                                        O_RDWR | O_CREAT | O_TRUNC, 0644, &opts),
                     0);
    uint64_t rng = (uint64_t)id;
    write_chunks(&f, data, FILE_LEN, &rng);
    ck_assert_int_eq(gr_file_seek(&f, 0, SEEK_SET), 0);
    read_chunks(&f, data, FILE_LEN, &rng);
    ck_assert_int_eq(gr_file_close(&f), 0);
    free(data);
    return 0;
}

static int shared_reader(void *arg)
{
    const unsigned char *data = arg;
    gr_file f;
    gr_file_opts opts = {.unbuffered = 1};
    char path[256];
    ck_assert_int_eq(gr_file_open_flags(&f, gr_test_path_in(path, sizeof path, "shared.bin"), O_RDONLY, 0,
                                        &opts),
                     0);
    uint64_t rng = (uint64_t)(uintptr_t)&f;
    unsigned char buf[8192];
    for (int i = 0; i < 200; i++) {
        size_t at = gr_test_rand(&rng) % (FILE_LEN - sizeof buf);
        ck_assert_int_eq(gr_file_pread(&f, buf, sizeof buf, (off_t)at), (ssize_t)sizeof buf);
        ck_assert(memcmp(buf, data + at, sizeof buf) == 0);
    }
    ck_assert_int_eq(gr_file_close(&f), 0);
    return 0;
}

static int many_files_main(void *arg)
{
    (void)arg;
    unsigned char *shared = gr_test_random_bytes(FILE_LEN, 77);
    gr_test_write_file(gr_test_path("shared.bin"), shared, FILE_LEN);
    gr_task *t[2 * NFILES];
    for (int i = 0; i < NFILES; i++) {
        ck_assert_int_eq(gr_spawn(&t[2 * i], writer_reader, (void *)(intptr_t)i, NULL), 0);
        ck_assert_int_eq(gr_spawn(&t[2 * i + 1], shared_reader, shared, NULL), 0);
    }
    for (int i = 0; i < 2 * NFILES; i++)
        ck_assert_int_eq(gr_join(t[i]), 0);
    free(shared);
    return 0;
}

START_TEST(concurrent_readers_writers)
{
    gr_test_run_ok(many_files_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * seek, truncate, sync, allocate, advise, stat
 * --------------------------------------------------------------------- */

static int seek_main(void *arg)
{
    (void)arg;
    gr_file f;
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("s.bin"), "w+"), 0);
    ck_assert_int_eq(gr_file_write(&f, "0123456789", 10), 10);
    ck_assert_int_eq(gr_file_seek(&f, 0, SEEK_CUR), 10);
    ck_assert_int_eq(gr_file_seek(&f, -3, SEEK_END), 7);
    char b[8] = {0};
    ck_assert_int_eq(gr_file_read(&f, b, 8), 3);
    ck_assert_str_eq(b, "789");
    ck_assert_int_eq(gr_file_read(&f, b, 8), 0); /* end of file */
    ck_assert_int_eq(gr_file_seek(&f, -4, SEEK_CUR), 6);
    ck_assert_int_eq(gr_file_seek(&f, -7, SEEK_CUR), -EINVAL);
    ck_assert_int_eq(gr_file_tell(&f), 6); /* unchanged by the failure */
    ck_assert_int_eq(gr_file_seek(&f, 0, 42), -EINVAL);
    /* A write past the end leaves a hole of zeros. */
    ck_assert_int_eq(gr_file_seek(&f, 20, SEEK_SET), 20);
    ck_assert_int_eq(gr_file_write(&f, "Z", 1), 1);
    ck_assert_int_eq(gr_file_seek(&f, 8, SEEK_SET), 8);
    char h[13];
    ck_assert_int_eq(gr_file_read(&f, h, 13), 13);
    ck_assert(memcmp(h, "89\0\0\0\0\0\0\0\0\0\0Z", 13) == 0);
    ck_assert_int_eq(gr_file_close(&f), 0);
    return 0;
}

START_TEST(seek_and_tell)
{
    gr_test_run_ok(seek_main, NULL, 1);
}
END_TEST

static int64_t size_of(gr_file *f)
{
    struct statx st;
    ck_assert_int_eq(gr_file_stat(f, &st), 0);
    return (int64_t)st.stx_size;
}

static int truncate_main(void *arg)
{
    int offloaded = (int)(intptr_t)arg;
    gr__uring_pretend_missing(GR_IORING_OP_FTRUNCATE, offloaded);
    gr_file f;
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("t.bin"), "w+"), 0);
    ck_assert_int_eq(gr_file_write(&f, "0123456789", 10), 10);
    ck_assert_int_eq(gr_file_truncate(&f, 4), 0); /* flushes first */
    ck_assert_int_eq(size_of(&f), 4);
    ck_assert_int_eq(gr_file_tell(&f), 10); /* the position does not move */
    ck_assert_int_eq(gr_file_truncate(&f, 100), 0);
    ck_assert_int_eq(size_of(&f), 100);
    char b[6];
    ck_assert_int_eq(gr_file_pread(&f, b, 6, 2), 6);
    ck_assert(memcmp(b, "23\0\0\0\0", 6) == 0);
    ck_assert_int_eq(gr_file_truncate(&f, -1), -EINVAL);
    ck_assert_int_eq(gr_file_close(&f), 0);
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("t.bin"), "r"), 0);
    ck_assert_int_eq(gr_file_truncate(&f, 0), -EBADF); /* read-only */
    ck_assert_int_eq(gr_file_close(&f), 0);
    gr__uring_pretend_missing(GR_IORING_OP_FTRUNCATE, 0);
    return 0;
}

START_TEST(truncate_ring)
{
    gr_test_run_ok(truncate_main, (void *)0, 1);
}
END_TEST

START_TEST(truncate_offload_fallback)
{
    gr_test_run_ok(truncate_main, (void *)1, 1);
}
END_TEST

static int sync_main(void *arg)
{
    (void)arg;
    gr_file f;
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("y.bin"), "w+"), 0);
    ck_assert_int_eq(gr_file_write(&f, "data", 4), 4);
    ck_assert_int_eq(gr_file_flush(&f), 0);
    ck_assert_int_eq(gr_file_fsync(&f), 0);
    ck_assert_int_eq(gr_file_write(&f, "more", 4), 4);
    ck_assert_int_eq(gr_file_fdatasync(&f), 0); /* flushes first */
    unsigned char *disk;
    ck_assert_uint_eq(slurp(gr_test_path("y.bin"), &disk), 8);
    free(disk);
    ck_assert_int_eq(gr_file_fallocate(&f, 0, 0, 1 << 20), 0);
    ck_assert_int_eq(size_of(&f), 1 << 20);
    ck_assert_int_eq(gr_file_fallocate(&f, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20), 0);
    ck_assert_int_eq(size_of(&f), 1 << 20);
    ck_assert_int_eq(gr_file_fallocate(&f, 0, -1, 1), -EINVAL);
    ck_assert_int_eq(gr_file_fadvise(&f, 0, 0, POSIX_FADV_SEQUENTIAL), 0);
    ck_assert_int_eq(gr_file_fadvise(&f, 0, INT64_C(8) << 30, POSIX_FADV_DONTNEED), 0);
    struct statx st;
    ck_assert_int_eq(gr_file_stat(&f, &st), 0);
    ck_assert(S_ISREG(st.stx_mode));
    ck_assert_int_eq(gr_file_stat(&f, NULL), -EINVAL);
    ck_assert_int_eq(gr_file_close(&f), 0);
    return 0;
}

START_TEST(sync_allocate_advise_stat)
{
    gr_test_run_ok(sync_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * O_DIRECT
 * --------------------------------------------------------------------- */

static int direct_main(void *arg)
{
    (void)arg;
    gr_file f;
    int rc = gr_file_open_flags(&f, gr_test_path("d.bin"), O_RDWR | O_CREAT | O_DIRECT, 0644, NULL);
    if (rc == -EINVAL)
        return 0; /* no O_DIRECT on this file system */
    ck_assert_int_eq(rc, 0);
    size_t mem_align = 0, off_align = 0;
    ck_assert_int_eq(gr_file_dio_align(&f, &mem_align, &off_align), 0);
    if (!mem_align)
        mem_align = off_align = 4096;
    size_t len = 1 << 20;
    void *w, *r;
    ck_assert_int_eq(posix_memalign(&w, 4096, len), 0);
    ck_assert_int_eq(posix_memalign(&r, 4096, len + 4096), 0);
    uint64_t rng = 3;
    for (size_t i = 0; i < len; i++)
        ((unsigned char *)w)[i] = (unsigned char)gr_test_rand(&rng);
    ck_assert_int_eq(gr_file_write_all(&f, w, len), (ssize_t)len);
    ck_assert_int_eq(gr_file_pread(&f, r, len, 0), (ssize_t)len);
    ck_assert(memcmp(r, w, len) == 0);
    if (off_align > 1) /* misaligned offset */
        ck_assert_int_eq(gr_file_pread(&f, r, 4096, 1), -EINVAL);
    ck_assert_int_eq(gr_file_seek(&f, 4096, SEEK_SET), 4096);
    char *all;
    ck_assert_int_eq(gr_file_read_all(&f, &all, 0), (ssize_t)(len - 4096));
    ck_assert(memcmp(all, (char *)w + 4096, len - 4096) == 0);
    free(all);
    ck_assert_int_eq(gr_file_close(&f), 0);
    free(w);
    free(r);
    return 0;
}

START_TEST(odirect_roundtrip)
{
    gr_test_run_ok(direct_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Fixed files: used from tasks that move between two workers, closed
 * from whichever worker the task is on.
 * --------------------------------------------------------------------- */

static int fixed_task(void *arg)
{
    int id = (int)(intptr_t)arg;
    char name[32];
    snprintf(name, sizeof name, "fx%02d.bin", id);
    gr_file f;
    gr_file_opts opts = {.fixed = 1, .unbuffered = 1};
    char path[256];
    ck_assert_int_eq(gr_file_open_flags(&f, gr_test_path_in(path, sizeof path, name),
                                        O_RDWR | O_CREAT | O_TRUNC, 0644, &opts),
                     0);
    int opened_on = gr_worker_index();
    unsigned char block[4096];
    for (int i = 0; i < 64; i++) {
        memset(block, id + i, sizeof block);
        ck_assert_int_eq(gr_file_pwrite(&f, block, sizeof block, (off_t)i * 4096), 4096);
        gr_yield(); /* may move to the other worker */
    }
    for (int i = 0; i < 64; i++) {
        ck_assert_int_eq(gr_file_pread(&f, block, sizeof block, (off_t)i * 4096), 4096);
        ck_assert_int_eq(block[0], (unsigned char)(id + i));
        ck_assert_int_eq(block[4095], (unsigned char)(id + i));
    }
    /* Try to close from the other worker (stealing moves yielding tasks). */
    for (int i = 0; i < 1000 && gr_worker_index() == opened_on; i++)
        gr_yield();
    ck_assert_int_eq(gr_file_close(&f), 0);
    return 0;
}

static int fixed_main(void *arg)
{
    (void)arg;
    gr_task *t[16];
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(gr_spawn(&t[i], fixed_task, (void *)(intptr_t)i, NULL), 0);
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(gr_join(t[i]), 0);
    return 0;
}

START_TEST(fixed_files_two_workers)
{
    gr_test_run_ok(fixed_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Temporary files
 * --------------------------------------------------------------------- */

static int dir_entries(const char *dir)
{
    char **names;
    ssize_t n = gr_fs_listdir(dir, &names);
    ck_assert_int_ge(n, 0);
    free(names);
    return (int)n;
}

static int temp_main(void *arg)
{
    (void)arg;
    gr_file f;
    ck_assert_int_eq(gr_file_tempfile(&f, gr_test_tmpdir), 0);
    ck_assert_ptr_null(gr_file_path(&f));
    ck_assert_int_eq(dir_entries(gr_test_tmpdir), 0); /* no name at all */
    ck_assert_int_eq(gr_file_write(&f, "temp", 4), 4);
    ck_assert_int_eq(gr_file_seek(&f, 0, SEEK_SET), 0);
    char b[4];
    ck_assert_int_eq(gr_file_read(&f, b, 4), 4);
    ck_assert(memcmp(b, "temp", 4) == 0);
    ck_assert_int_eq(gr_file_close(&f), 0);

    ck_assert_int_eq(gr_file_named_tempfile(&f, gr_test_tmpdir, "pre-"), 0);
    const char *path = gr_file_path(&f);
    ck_assert_ptr_nonnull(path);
    ck_assert(strncmp(path, gr_test_tmpdir, strlen(gr_test_tmpdir)) == 0);
    ck_assert(strncmp(path + strlen(gr_test_tmpdir), "/pre-", 5) == 0);
    char saved[256];
    snprintf(saved, sizeof saved, "%s", path);
    ck_assert_int_eq(gr_fs_exists(saved), 1);
    struct statx st;
    ck_assert_int_eq(gr_fs_stat(saved, &st), 0);
    ck_assert_int_eq(st.stx_mode & 0777, 0600);
    ck_assert_int_eq(gr_file_write(&f, "named", 5), 5);
    ck_assert_int_eq(gr_file_close(&f), 0);
    ck_assert_int_eq(gr_fs_exists(saved), 0);
    ck_assert_int_eq(dir_entries(gr_test_tmpdir), 0);
    return 0;
}

START_TEST(temporary_files_disappear)
{
    gr_test_run_ok(temp_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Speculative reads keep fairness: a task reading cached data in a loop
 * never parks, yet another task on the same worker keeps running.
 * --------------------------------------------------------------------- */

struct fair {
    _Atomic int stop;
    _Atomic long other_runs;
    long seen_during;
};

static int other_task(void *arg)
{
    struct fair *fa = arg;
    while (!atomic_load(&fa->stop)) {
        atomic_fetch_add(&fa->other_runs, 1);
        gr_yield();
    }
    return 0;
}

static int reader_task(void *arg)
{
    struct fair *fa = arg;
    gr_file f;
    gr_file_opts opts = {.unbuffered = 1};
    ck_assert_int_eq(gr_file_open_flags(&f, gr_test_path("hot.bin"), O_RDONLY, 0, &opts), 0);
    char buf[512];
    long before = atomic_load(&fa->other_runs);
    for (int i = 0; i < 5000; i++)
        ck_assert_int_eq(gr_file_pread(&f, buf, sizeof buf, (i * 512) % 65536), 512);
    fa->seen_during = atomic_load(&fa->other_runs) - before;
    ck_assert_int_eq(gr_file_close(&f), 0);
    return 0;
}

static int fair_main(void *arg)
{
    struct fair *fa = arg;
    unsigned char *hot = gr_test_random_bytes(65536, 1);
    gr_test_write_file(gr_test_path("hot.bin"), hot, 65536);
    free(hot);
    gr_task *o, *r;
    ck_assert_int_eq(gr_spawn(&o, other_task, fa, NULL), 0);
    ck_assert_int_eq(gr_spawn(&r, reader_task, fa, NULL), 0);
    ck_assert_int_eq(gr_join(r), 0);
    atomic_store(&fa->stop, 1);
    ck_assert_int_eq(gr_join(o), 0);
    /* 5000 immediate reads, a yield every 64: the other task ran ~78 times
     * (it would be 0 if the reader never gave up the worker). */
    ck_assert_int_ge(fa->seen_during, 5000 / 64 / 2);
    return 0;
}

START_TEST(speculation_yields)
{
    struct fair fa = {0};
    gr_test_run_ok(fair_main, &fa, 1);
}
END_TEST

/* Reads with and without speculation (and of data that is not cached,
 * after POSIX_FADV_DONTNEED) return the same bytes. */
static int spec_modes_main(void *arg)
{
    (void)arg;
    size_t len = 1 << 20;
    unsigned char *data = gr_test_random_bytes(len, 11);
    gr_test_write_file(gr_test_path("sp.bin"), data, len);
    for (int mode = 0; mode < 2; mode++) {
        gr_file f;
        gr_file_opts opts = {.unbuffered = 1, .no_speculate = mode};
        ck_assert_int_eq(gr_file_open_flags(&f, gr_test_path("sp.bin"), O_RDONLY, 0, &opts), 0);
        ck_assert_int_eq(gr_file_fdatasync(&f), 0);
        ck_assert_int_eq(gr_file_fadvise(&f, 0, 0, POSIX_FADV_DONTNEED), 0);
        char *all;
        ck_assert_int_eq(gr_file_read_all(&f, &all, 0), (ssize_t)len);
        ck_assert(memcmp(all, data, len) == 0);
        free(all);
        ck_assert_int_eq(gr_file_close(&f), 0);
    }
    free(data);
    return 0;
}

START_TEST(speculation_modes_same_bytes)
{
    gr_test_run_ok(spec_modes_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Interruption: a read blocked on a FIFO is cancelled or times out; the
 * position stays; an expired scope refuses even cached reads.
 * --------------------------------------------------------------------- */

static int fifo_reader(void *arg)
{
    gr_file *f = arg;
    char b[4];
    return (int)gr_file_read(f, b, sizeof b);
}

static int cancel_main(void *arg)
{
    (void)arg;
    ck_assert_int_eq(mkfifo(gr_test_path("fifo"), 0600), 0);
    gr_file f;
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("fifo"), "r+"), 0); /* r+: no wait for a writer */
    gr_task *t;
    gr_spawn_opts opts = {.name = "fifo reader"};
    ck_assert_int_eq(gr_spawn(&t, fifo_reader, &f, &opts), 0);
    gr_test_wait_parked("fifo reader", "file read");
    ck_assert_int_eq(gr_cancel(t), 0);
    ck_assert_int_eq(gr_join(t), -ECANCELED);
    ck_assert_int_eq(gr_file_tell(&f), 0);

    gr_scope s;
    ck_assert_int_eq(gr_scope_enter_timeout(&s, 2000000), 0);
    char b[4];
    ck_assert_int_eq(gr_file_read(&f, b, 4), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&s), 1);
    ck_assert_int_eq(gr_file_tell(&f), 0);

    /* Data that arrives is read normally, and the position moves by it. */
    ck_assert_int_eq(gr_file_write(&f, "ping", 4), 4);
    ck_assert_int_eq(gr_file_flush(&f), 0);
    ck_assert_int_eq(gr_file_read(&f, b, 4), 4);
    ck_assert(memcmp(b, "ping", 4) == 0);
    ck_assert_int_eq(gr_file_close(&f), 0);

    /* An expired scope: even a cached read is refused. */
    gr_test_write_file(gr_test_path("c.txt"), "cached", 6);
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("c.txt"), "r"), 0);
    ck_assert_int_eq(gr_scope_enter_deadline(&s, gr_now() - 1), 0);
    ck_assert_int_eq(gr_file_read(&f, b, 4), -ETIMEDOUT);
    ck_assert_int_eq(gr_file_pread(&f, b, 4, 0), -ETIMEDOUT);
    ck_assert_int_eq(gr_file_write(&f, b, 4), -EBADF); /* read-only: checked first */
    ck_assert_int_eq(gr_scope_leave(&s), 1);
    ck_assert_int_eq(gr_file_tell(&f), 0);
    ck_assert_int_eq(gr_file_read(&f, b, 4), 4);
    ck_assert_int_eq(gr_file_close(&f), 0);
    return 0;
}

/* One worker: gr_test_wait_parked inspects the reader while it is parked, never
 * while it runs on another thread. */
START_TEST(interrupted_reads_keep_position)
{
    gr_test_run_ok(cancel_main, NULL, 1);
}
END_TEST

/* A cancelled task's close still writes its buffered data (shielded). */
static int close_cancelled(void *arg)
{
    (void)arg;
    gr_file f;
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("cc.txt"), "w"), 0);
    ck_assert_int_eq(gr_file_write(&f, "kept", 4), 4);
    gr_cancel(gr_self());
    ck_assert_int_eq(gr_file_write(&f, "lost", 4), -ECANCELED);
    ck_assert_int_eq(gr_file_close(&f), 0);
    return 0;
}

static int close_cancel_main(void *arg)
{
    (void)arg;
    gr_task *t;
    ck_assert_int_eq(gr_spawn(&t, close_cancelled, NULL, NULL), 0);
    ck_assert_int_eq(gr_join(t), 0);
    unsigned char *disk;
    ck_assert_uint_eq(slurp(gr_test_path("cc.txt"), &disk), 4);
    ck_assert(memcmp(disk, "kept", 4) == 0);
    free(disk);
    return 0;
}

START_TEST(close_when_cancelled_flushes)
{
    gr_test_run_ok(close_cancel_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Errors
 * --------------------------------------------------------------------- */

static int errors_main(void *arg)
{
    (void)arg;
    gr_file f;
    char b[8];
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("missing"), "r"), -ENOENT);
    ck_assert_int_eq(gr_file_read(&f, b, 1), -EBADF); /* failed open leaves it closed */
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("nodir/x"), "w"), -ENOENT);
    gr_test_write_file(gr_test_path("exists"), "e", 1);
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("exists"), "x"), -EEXIST);
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("exists/sub"), "r"), -ENOTDIR);
    ck_assert_int_eq(gr_file_open(&f, gr_test_tmpdir, "w"), -EISDIR);
    ck_assert_int_eq(gr_file_open(&f, gr_test_tmpdir, "r"), 0); /* as open(2) */
    ck_assert_int_eq(gr_file_read(&f, b, 1), -EISDIR);
    ck_assert_int_eq(gr_file_close(&f), 0);
    /* Modes. */
    static const char *const bad[] = {"", "q", "rw", "r++", "rt", "wa", "+", "b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(gr_file_open(&f, gr_test_path("m"), bad[i]), -EINVAL);
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("m"), NULL), -EINVAL);
    ck_assert_int_eq(gr_file_open(&f, NULL, "r"), -EINVAL);
    ck_assert_int_eq(gr_file_open(NULL, gr_test_path("m"), "r"), -EINVAL);
    ck_assert_int_eq(gr_file_mode_flags("rb+"), O_RDWR);
    ck_assert_int_eq(gr_file_mode_flags("x+"), O_RDWR | O_CREAT | O_EXCL);
    ck_assert_int_eq(gr_file_mode_flags("ab"), O_WRONLY | O_CREAT | O_APPEND);
    /* Direction. */
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("exists"), "r"), 0);
    ck_assert_int_eq(gr_file_write(&f, "x", 1), -EBADF);
    ck_assert_int_eq(gr_file_pwrite(&f, "x", 1, 0), -EBADF);
    ck_assert_int_eq(gr_file_close(&f), 0);
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("wo"), "w"), 0);
    ck_assert_int_eq(gr_file_read(&f, b, 1), -EBADF);
    ck_assert_int_eq(gr_file_readline(&f, b, sizeof b), -EBADF);
    ck_assert_int_eq(gr_file_close(&f), 0);
    /* Use after close, double close. */
    ck_assert_int_eq(gr_file_read(&f, b, 1), -EBADF);
    ck_assert_int_eq(gr_file_write(&f, b, 1), -EBADF);
    ck_assert_int_eq(gr_file_pread(&f, b, 1, 0), -EBADF);
    ck_assert_int_eq(gr_file_seek(&f, 0, SEEK_SET), -EBADF);
    ck_assert_int_eq(gr_file_tell(&f), -EBADF);
    ck_assert_int_eq(gr_file_flush(&f), -EBADF);
    ck_assert_int_eq(gr_file_fsync(&f), -EBADF);
    ck_assert_int_eq(gr_file_fd(&f), -EBADF);
    ck_assert_int_eq(gr_file_close(&f), -EBADF);
    gr_file zero = {0};
    ck_assert_int_eq(gr_file_close(&zero), -EBADF);
    ck_assert_int_eq(gr_file_close(NULL), -EBADF);
    /* ENOSPC. */
    ck_assert_int_eq(gr_file_open(&f, "/dev/full", "w"), 0);
    ck_assert_int_eq(gr_file_write(&f, "x", 1), 1); /* buffered */
    ck_assert_int_eq(gr_file_flush(&f), -ENOSPC);
    ck_assert_int_eq(gr_file_close(&f), -ENOSPC); /* the flush fails again; closed anyway */
    ck_assert_int_eq(gr_file_close(&f), -EBADF);
    gr_file_opts unbuf = {.unbuffered = 1};
    ck_assert_int_eq(gr_file_open_flags(&f, "/dev/full", O_WRONLY, 0, &unbuf), 0);
    ck_assert_int_eq(gr_file_write_all(&f, "x", 1), -ENOSPC);
    ck_assert_int_eq(gr_file_close(&f), 0);
    return 0;
}

START_TEST(errors)
{
    gr_test_run_ok(errors_main, NULL, 1);
}
END_TEST

START_TEST(outside_task)
{
    gr_file f = {0};
    ck_assert_int_eq(gr_file_open(&f, "/tmp", "r"), -EPERM);
}
END_TEST

/* EACCES: a root test process gives up its privileges first (Check runs
 * each test in its own child process). */
static int eacces_main(void *arg)
{
    (void)arg;
    gr_file f;
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("secret"), "r"), -EACCES);
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("secret"), "w"), -EACCES);
    ck_assert_int_eq(gr_file_open(&f, gr_test_path("locked/new"), "w"), -EACCES);
    return 0;
}

START_TEST(eacces)
{
    gr_test_write_file(gr_test_path("secret"), "s", 1);
    ck_assert_int_eq(chmod(gr_test_path("secret"), 0), 0);
    ck_assert_int_eq(mkdir(gr_test_path("locked"), 0500), 0);
    ck_assert_int_eq(chmod(gr_test_tmpdir, 0777), 0);
    if (geteuid() == 0)
        ck_assert_int_eq(setresuid(65534, 65534, 0), 0); /* 0 kept: cleanup */
    gr_test_run_ok(eacces_main, NULL, 1);
    if (getuid() != geteuid() || getuid() == 65534)
        ck_assert_int_eq(setresuid(0, 0, 0), 0);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("file");
    TCase *tc = tcase_create("file");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, make_tmpdir, gr_test_tmpdir_remove);
    tcase_add_test(tc, roundtrip_buffered);
    tcase_add_test(tc, roundtrip_unbuffered);
    tcase_add_test(tc, mixed_read_write);
    tcase_add_test(tc, vectored_and_positional);
    tcase_add_test(tc, buffer_coherence);
    tcase_add_test(tc, readline_edges_buffered);
    tcase_add_test(tc, readline_edges_unbuffered);
    tcase_add_test(tc, lines_across_buffer_boundaries);
    tcase_add_test(tc, lines_across_buffer_boundaries_100);
    tcase_add_test(tc, lines_default_buffer);
    tcase_add_test(tc, lines_limit);
    tcase_add_test(tc, append_many_tasks_own_handles);
    tcase_add_test(tc, append_many_tasks_unbuffered);
    tcase_add_test(tc, append_many_tasks_shared_handle);
    tcase_add_test(tc, append_positions);
    tcase_add_test(tc, concurrent_readers_writers);
    tcase_add_test(tc, seek_and_tell);
    tcase_add_test(tc, truncate_ring);
    tcase_add_test(tc, truncate_offload_fallback);
    tcase_add_test(tc, sync_allocate_advise_stat);
    tcase_add_test(tc, odirect_roundtrip);
    tcase_add_test(tc, fixed_files_two_workers);
    tcase_add_test(tc, temporary_files_disappear);
    tcase_add_test(tc, speculation_yields);
    tcase_add_test(tc, speculation_modes_same_bytes);
    tcase_add_test(tc, interrupted_reads_keep_position);
    tcase_add_test(tc, close_when_cancelled_flushes);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, outside_task);
    tcase_add_test(tc, eacces);
    suite_add_tcase(s, tc);
    return s;
}
