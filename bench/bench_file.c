/* greenring file benchmarks, each against baselines written here and run
 * in the same benchmark call (ratios come from one run; see
 * /work/shared/BENCHMARKING.md on run-to-run spread):
 *
 *   file_randread_4k/N   4 KiB random preads of a page-cached 1 GiB file by
 *                        N tasks. Baselines: a hand-written liburing loop
 *                        keeping N reads in flight (one thread, the runtime's
 *                        ring flags), and a thread pool doing pread with N
 *                        requests in flight from one submitting thread
 *                        (run_in_executor, which is what aiofiles does; the
 *                        pool has asyncio's default min(32, CPUs + 4) threads).
 *                        Counters: iops (2 workers), iops_1w (1 worker),
 *                        iops_1w_uring (1 worker, no speculative preadv2),
 *                        raw_iops, pool_iops, vs_raw = iops_1w / raw_iops
 *                        (target >= 0.9 at N = 32), vs_pool = iops / pool_iops
 *                        (target >= 3 at N = 64), spec_gain = iops_1w /
 *                        iops_1w_uring.
 *   file_odirect_randread/N  the same with O_DIRECT (the disk's limit),
 *                        against the raw liburing loop at depth N.
 *   file_seq_rw          1 GiB read then written in 128 KiB chunks by one
 *                        task, GB/s, against a plain read()/write() loop.
 *   fs_ops/N             statx + open + close + unlink of small files by N
 *                        tasks (2 workers), files/s, against the same four
 *                        calls made synchronously by one thread.
 *
 * The 1 GiB file is created once as /tmp/greenring-bench-1g.dat (kept for
 * later runs) and read through before the page-cached benchmarks. Each
 * measurement runs MEASURE_NS; the whole file runs in ~30 s on 2 vCPUs.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "greenring.h"

#define NS_PER_S INT64_C(1000000000)
#define MEASURE_NS (300 * INT64_C(1000000))
#define BIG_FILE "/tmp/greenring-bench-1g.dat"
#define BIG_SIZE (INT64_C(1) << 30)
#define BLOCK 4096
#define SEQ_CHUNK (128 * 1024)
#define MAX_DEPTH 128

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static off_t random_block(uint64_t *rng)
{
    return (off_t)(rng_next(rng) % (uint64_t)(BIG_SIZE / BLOCK)) * BLOCK;
}

/* ---------------------------------------------------------------------
 * The 1 GiB file: created once, then kept in the page cache
 * --------------------------------------------------------------------- */

static int create_big_file(void)
{
    int fd = open(BIG_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    char *buf = malloc(1 << 20);
    uint64_t rng = 1;
    int rc = 0;
    for (int64_t off = 0; off < BIG_SIZE && rc == 0; off += 1 << 20) {
        for (size_t i = 0; i < (1 << 20) / 8; i++)
            ((uint64_t *)(void *)buf)[i] = rng_next(&rng);
        if (write(fd, buf, 1 << 20) != 1 << 20)
            rc = -EIO;
    }
    free(buf);
    if (rc == 0 && fsync(fd) != 0) /* no writeback later, under the disk benchmarks */
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(BIG_FILE ".tmp", BIG_FILE) != 0)
        rc = -errno;
    return rc;
}

/* Make sure the file exists and is in the page cache (a read-through). */
static int big_file_ready(void)
{
    struct stat st;
    if (stat(BIG_FILE, &st) != 0 || st.st_size != BIG_SIZE) {
        int rc = create_big_file();
        if (rc < 0)
            return rc;
    }
    int fd = open(BIG_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char *buf = malloc(1 << 20);
    while (read(fd, buf, 1 << 20) > 0)
        ;
    free(buf);
    close(fd);
    return 0;
}

/* ---------------------------------------------------------------------
 * Runtime: N tasks doing 4 KiB random preads for MEASURE_NS
 * --------------------------------------------------------------------- */

struct rr {
    int ntasks;
    int flags;      /* open flags (O_DIRECT) */
    int speculate;
    gr_file file;
    int64_t deadline;
    _Atomic long ops;
    _Atomic int64_t last_end;
    _Atomic int failed;
};

static int rr_reader(void *arg)
{
    struct rr *r = arg;
    char *buf;
    if (posix_memalign((void **)&buf, BLOCK, BLOCK) != 0)
        return -ENOMEM;
    uint64_t rng = (uint64_t)(uintptr_t)&rng * 2654435761u | 1;
    long ops = 0;
    while (gr_now() < r->deadline) {
        ssize_t n = gr_file_pread(&r->file, buf, BLOCK, random_block(&rng));
        if (n != BLOCK) {
            atomic_store(&r->failed, n < 0 ? (int)n : -EIO);
            break;
        }
        ops++;
    }
    free(buf);
    atomic_fetch_add(&r->ops, ops);
    int64_t end = gr_now(), seen = atomic_load(&r->last_end);
    while (end > seen && !atomic_compare_exchange_weak(&r->last_end, &seen, end))
        ;
    return 0;
}

static int rr_main(void *arg)
{
    struct rr *r = arg;
    gr_file_opts opts = {.unbuffered = 1, .no_speculate = !r->speculate};
    int rc = gr_file_open_flags(&r->file, BIG_FILE, O_RDONLY | r->flags, 0, &opts);
    if (rc < 0)
        return rc;
    gr_task *t[MAX_DEPTH];
    int64_t t0 = gr_now();
    r->deadline = t0 + MEASURE_NS;
    for (int i = 0; i < r->ntasks; i++)
        if ((rc = gr_spawn(&t[i], rr_reader, r, NULL)) < 0)
            return rc;
    for (int i = 0; i < r->ntasks; i++)
        gr_join(t[i]);
    atomic_store(&r->last_end, atomic_load(&r->last_end) - t0); /* elapsed */
    gr_file_close(&r->file);
    return atomic_load(&r->failed);
}

/* IOPS, or a negative errno. */
static double runtime_iops(int ntasks, unsigned workers, int flags, int speculate)
{
    struct rr r = {.ntasks = ntasks, .flags = flags, .speculate = speculate};
    gr_config cfg = {.workers = workers};
    int rc = gr_run(rr_main, &r, &cfg);
    if (rc < 0)
        return rc;
    return (double)atomic_load(&r.ops) * NS_PER_S / (double)atomic_load(&r.last_end);
}

/* ---------------------------------------------------------------------
 * Baseline: a raw liburing loop keeping `depth` reads in flight
 * --------------------------------------------------------------------- */

static void raw_queue(struct io_uring *ring, int fd, char *buf, unsigned slot, uint64_t *rng)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_read(sqe, fd, buf, BLOCK, (uint64_t)random_block(rng));
    io_uring_sqe_set_data64(sqe, slot);
}

static long raw_loop(struct io_uring *ring, int fd, char *bufs, int depth)
{
    uint64_t rng = 12345;
    for (int i = 0; i < depth; i++)
        raw_queue(ring, fd, bufs + (size_t)i * BLOCK, (unsigned)i, &rng);
    long ops = 0;
    int64_t deadline = gr_bench_now_ns() + MEASURE_NS;
    while (gr_bench_now_ns() < deadline) {
        int rc = io_uring_submit_and_wait(ring, 1);
        if (rc < 0)
            return rc;
        unsigned head, n = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(ring, head, cqe)
        {
            if (cqe->res != BLOCK)
                return cqe->res < 0 ? cqe->res : -EIO;
            unsigned slot = (unsigned)cqe->user_data;
            raw_queue(ring, fd, bufs + (size_t)slot * BLOCK, slot, &rng);
            n++;
        }
        io_uring_cq_advance(ring, n);
        ops += n;
    }
    /* Drain what is in flight before the ring goes away. */
    io_uring_submit_and_wait(ring, (unsigned)depth);
    return ops;
}

static double raw_iops(int depth, int flags)
{
    struct io_uring ring;
    int rc = gr_bench_raw_ring_init(&ring);
    if (rc < 0)
        return rc;
    int fd = open(BIG_FILE, O_RDONLY | O_CLOEXEC | flags);
    char *bufs = NULL;
    if (fd < 0 || posix_memalign((void **)&bufs, BLOCK, (size_t)depth * BLOCK) != 0) {
        io_uring_queue_exit(&ring);
        return fd < 0 ? -errno : -ENOMEM;
    }
    int64_t t0 = gr_bench_now_ns();
    long ops = raw_loop(&ring, fd, bufs, depth);
    int64_t elapsed = gr_bench_now_ns() - t0;
    io_uring_queue_exit(&ring);
    close(fd);
    free(bufs);
    return ops < 0 ? (double)ops : (double)ops * NS_PER_S / (double)elapsed;
}

/* ---------------------------------------------------------------------
 * Baseline: run_in_executor, the mechanism of aiofiles without Python.
 * One submitting thread (the event loop) keeps `depth` requests in flight
 * on a pool of threads doing pread. As in asyncio, a request goes to the
 * executor's queue (lock + condition variable), and each completion is
 * handed back with call_soon_threadsafe, which appends to the loop's
 * queue and writes the loop's wake-up fd (here an eventfd) every time;
 * the loop blocks reading that fd when it has nothing to do.
 * --------------------------------------------------------------------- */

struct pool_bench {
    pthread_mutex_t lock;
    pthread_cond_t work;
    int wake_fd; /* the loop's self-pipe */
    int fd, depth, stop;
    off_t offs[MAX_DEPTH];
    char *bufs;
    int work_q[MAX_DEPTH], done_q[MAX_DEPTH]; /* FIFO rings of slots */
    int work_head, work_len, done_head, done_len;
    long errors;
};

static void q_push(int *q, int *head, int *len, int v)
{
    q[(*head + *len) % MAX_DEPTH] = v;
    (*len)++;
}

static int q_pop(int *q, int *head, int *len)
{
    int v = q[*head];
    *head = (*head + 1) % MAX_DEPTH;
    (*len)--;
    return v;
}

static void *pool_worker(void *arg)
{
    struct pool_bench *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->work_len && !p->stop)
            pthread_cond_wait(&p->work, &p->lock);
        if (p->stop)
            break;
        int slot = q_pop(p->work_q, &p->work_head, &p->work_len);
        pthread_mutex_unlock(&p->lock);
        ssize_t n = pread(p->fd, p->bufs + (size_t)slot * BLOCK, BLOCK, p->offs[slot]);
        pthread_mutex_lock(&p->lock);
        if (n != BLOCK)
            p->errors++;
        q_push(p->done_q, &p->done_head, &p->done_len, slot);
        pthread_mutex_unlock(&p->lock);
        uint64_t one = 1; /* _write_to_self */
        if (write(p->wake_fd, &one, sizeof one) != sizeof one)
            p->errors++;
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* The submitting ("event loop") thread. */
static long pool_loop(struct pool_bench *p)
{
    uint64_t rng = 777;
    long ops = 0;
    int64_t deadline = gr_bench_now_ns() + MEASURE_NS;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->depth; i++) {
        p->offs[i] = random_block(&rng);
        q_push(p->work_q, &p->work_head, &p->work_len, i);
    }
    pthread_cond_broadcast(&p->work);
    while (gr_bench_now_ns() < deadline) {
        pthread_mutex_unlock(&p->lock);
        uint64_t n; /* the loop sleeps until a completion wakes it */
        if (read(p->wake_fd, &n, sizeof n) != sizeof n)
            p->errors++;
        pthread_mutex_lock(&p->lock);
        while (p->done_len) {
            int slot = q_pop(p->done_q, &p->done_head, &p->done_len);
            ops++;
            p->offs[slot] = random_block(&rng);
            q_push(p->work_q, &p->work_head, &p->work_len, slot);
            pthread_cond_signal(&p->work);
        }
    }
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    return ops;
}

static int pool_threads(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long n = (cpus > 0 ? cpus : 1) + 4;
    return n > 32 ? 32 : (int)n;
}

static double pool_iops(int depth)
{
    struct pool_bench p = {.depth = depth};
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.work, NULL);
    p.wake_fd = eventfd(0, EFD_CLOEXEC);
    p.fd = open(BIG_FILE, O_RDONLY | O_CLOEXEC);
    p.bufs = malloc((size_t)depth * BLOCK);
    int nthreads = pool_threads();
    pthread_t th[32];
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, pool_worker, &p);
    int64_t t0 = gr_bench_now_ns();
    long ops = pool_loop(&p);
    int64_t elapsed = gr_bench_now_ns() - t0;
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    close(p.fd);
    close(p.wake_fd);
    free(p.bufs);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.work);
    return p.errors ? -EIO : (double)ops * NS_PER_S / (double)elapsed;
}

/* ---------------------------------------------------------------------
 * file_randread_4k and file_odirect_randread
 * --------------------------------------------------------------------- */

static int checked(gr_bench_state *st, const char *what, double v)
{
    if (v >= 0)
        return 1;
    gr_bench_error_rc(st, what, (long)v);
    return 0;
}

static void bm_randread(gr_bench_state *st)
{
    int n = (int)gr_bench_range(st, 0);
    int rc = big_file_ready();
    if (rc < 0) {
        gr_bench_error_rc(st, "1 GiB file", rc);
        return;
    }
    while (gr_bench_keep_running(st)) {
        double w2 = runtime_iops(n, 2, 0, 1);
        double w1 = runtime_iops(n, 1, 0, 1);
        double w1u = runtime_iops(n, 1, 0, 0);
        double raw = raw_iops(n, 0);
        double pool = pool_iops(n);
        if (!checked(st, "runtime", w2) || !checked(st, "runtime 1 worker", w1) ||
            !checked(st, "runtime no speculation", w1u) || !checked(st, "raw liburing", raw) ||
            !checked(st, "pread pool", pool))
            return;
        gr_bench_set_iteration_time(st, (double)MEASURE_NS / NS_PER_S);
        gr_bench_set_items(st, (int64_t)(w2 * MEASURE_NS / NS_PER_S));
        gr_bench_counter(st, "iops", w2);
        gr_bench_counter(st, "iops_1w", w1);
        gr_bench_counter(st, "iops_1w_uring", w1u);
        gr_bench_counter(st, "raw_iops", raw);
        gr_bench_counter(st, "pool_iops", pool);
        gr_bench_counter(st, "vs_raw", w1 / raw);
        gr_bench_counter(st, "vs_pool", w2 / pool);
        gr_bench_counter(st, "spec_gain", w1 / w1u);
    }
}

static void bm_odirect_randread(gr_bench_state *st)
{
    int n = (int)gr_bench_range(st, 0);
    int rc = big_file_ready();
    if (rc < 0) {
        gr_bench_error_rc(st, "1 GiB file", rc);
        return;
    }
    while (gr_bench_keep_running(st)) {
        double w2 = runtime_iops(n, 2, O_DIRECT, 1);
        double raw = raw_iops(n, O_DIRECT);
        if (!checked(st, "runtime", w2) || !checked(st, "raw liburing", raw))
            return;
        gr_bench_set_iteration_time(st, (double)MEASURE_NS / NS_PER_S);
        gr_bench_set_items(st, (int64_t)(w2 * MEASURE_NS / NS_PER_S));
        gr_bench_counter(st, "iops", w2);
        gr_bench_counter(st, "raw_iops", raw);
        gr_bench_counter(st, "vs_raw", w2 / raw);
    }
}

/* ---------------------------------------------------------------------
 * file_seq_rw: one task, 128 KiB chunks
 * --------------------------------------------------------------------- */

#define SEQ_OUT "/tmp/greenring-bench-seq.out"
#define SEQ_OUT_BASE "/tmp/greenring-bench-seq.base"

struct seq {
    int64_t read_ns, write_ns;
    int rc;
};

static int seq_read(gr_file *f, char *buf)
{
    ssize_t n;
    int64_t total = 0;
    while ((n = gr_file_read(f, buf, SEQ_CHUNK)) > 0)
        total += n;
    return n < 0 ? (int)n : total == BIG_SIZE ? 0 : -EIO;
}

static int seq_write(gr_file *f, const char *buf)
{
    for (int64_t off = 0; off < BIG_SIZE; off += SEQ_CHUNK)
        if (gr_file_write_all(f, buf, SEQ_CHUNK) != SEQ_CHUNK)
            return -EIO;
    return 0;
}

static int seq_main(void *arg)
{
    struct seq *s = arg;
    char *buf = malloc(SEQ_CHUNK);
    memset(buf, 'x', SEQ_CHUNK);
    gr_file_opts opts = {.unbuffered = 1};
    gr_file f;
    int64_t t0 = gr_now();
    if ((s->rc = gr_file_open_flags(&f, BIG_FILE, O_RDONLY, 0, &opts)) == 0) {
        s->rc = seq_read(&f, buf);
        gr_file_close(&f);
    }
    int64_t t1 = gr_now();
    if (s->rc == 0 &&
        (s->rc = gr_file_open_flags(&f, SEQ_OUT, O_WRONLY | O_CREAT | O_TRUNC, 0644, &opts)) == 0) {
        s->rc = seq_write(&f, buf);
        gr_file_close(&f);
    }
    s->read_ns = t1 - t0;
    s->write_ns = gr_now() - t1;
    gr_fs_unlink(SEQ_OUT, 1); /* dirty pages of a removed file are never written */
    free(buf);
    return s->rc;
}

/* The plain loop: read() the file, write() a new one; ns for each. */
static int seq_baseline(int64_t *read_ns, int64_t *write_ns)
{
    char *buf = malloc(SEQ_CHUNK);
    memset(buf, 'y', SEQ_CHUNK);
    int64_t t0 = gr_bench_now_ns(), total = 0;
    int fd = open(BIG_FILE, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    while (fd >= 0 && (n = read(fd, buf, SEQ_CHUNK)) > 0)
        total += n;
    close(fd);
    int64_t t1 = gr_bench_now_ns();
    fd = open(SEQ_OUT_BASE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    for (int64_t off = 0; fd >= 0 && off < BIG_SIZE; off += SEQ_CHUNK)
        if (write(fd, buf, SEQ_CHUNK) != SEQ_CHUNK)
            total = -1;
    close(fd);
    *read_ns = t1 - t0;
    *write_ns = gr_bench_now_ns() - t1;
    unlink(SEQ_OUT_BASE);
    free(buf);
    return total == BIG_SIZE ? 0 : -EIO;
}

static void bm_seq_rw(gr_bench_state *st)
{
    int rc = big_file_ready();
    if (rc < 0) {
        gr_bench_error_rc(st, "1 GiB file", rc);
        return;
    }
    while (gr_bench_keep_running(st)) {
        struct seq s = {0};
        gr_config cfg = {.workers = 2};
        if ((rc = gr_run(seq_main, &s, &cfg)) < 0) {
            gr_bench_error_rc(st, "runtime", rc);
            return;
        }
        int64_t base_r, base_w;
        if ((rc = seq_baseline(&base_r, &base_w)) < 0) {
            gr_bench_error_rc(st, "baseline", rc);
            return;
        }
        double gb = (double)BIG_SIZE / 1e9;
        double rd = gb * NS_PER_S / (double)s.read_ns, wr = gb * NS_PER_S / (double)s.write_ns;
        double brd = gb * NS_PER_S / (double)base_r, bwr = gb * NS_PER_S / (double)base_w;
        gr_bench_set_iteration_time(st, (double)(s.read_ns + s.write_ns) / NS_PER_S);
        gr_bench_counter(st, "read_GBps", rd);
        gr_bench_counter(st, "write_GBps", wr);
        gr_bench_counter(st, "base_read_GBps", brd);
        gr_bench_counter(st, "base_write_GBps", bwr);
        gr_bench_counter(st, "read_vs_base", rd / brd);
        gr_bench_counter(st, "write_vs_base", wr / bwr);
    }
}

/* ---------------------------------------------------------------------
 * fs_ops: statx + open + close + unlink of small files
 * --------------------------------------------------------------------- */

#define FS_FILES 4000
#define FS_DIR "/tmp/greenring-bench-fs"

static void fs_name(char *buf, size_t size, int i)
{
    snprintf(buf, size, FS_DIR "/f%05d", i);
}

static int fs_populate(void)
{
    mkdir(FS_DIR, 0755);
    for (int i = 0; i < FS_FILES; i++) {
        char p[64];
        fs_name(p, sizeof p, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, "small file\n", 11) != 11)
            return -EIO;
        close(fd);
    }
    return 0;
}

struct fs_bench {
    int ntasks;
    _Atomic int next;
    _Atomic int failed;
};

static int fs_one(int i)
{
    char p[64];
    fs_name(p, sizeof p, i);
    struct statx stx;
    gr_file f;
    gr_file_opts opts = {.unbuffered = 1};
    int rc;
    if ((rc = gr_fs_stat(p, &stx)) < 0 ||
        (rc = gr_file_open_flags(&f, p, O_RDONLY, 0, &opts)) < 0)
        return rc;
    if ((rc = gr_file_close(&f)) < 0)
        return rc;
    return gr_fs_unlink(p, 0);
}

static int fs_worker(void *arg)
{
    struct fs_bench *b = arg;
    int i, rc;
    while ((i = atomic_fetch_add(&b->next, 1)) < FS_FILES)
        if ((rc = fs_one(i)) < 0) {
            atomic_store(&b->failed, rc);
            return rc;
        }
    return 0;
}

static int fs_main(void *arg)
{
    struct fs_bench *b = arg;
    gr_task *t[MAX_DEPTH];
    for (int i = 0; i < b->ntasks; i++)
        gr_spawn(&t[i], fs_worker, b, NULL);
    for (int i = 0; i < b->ntasks; i++)
        gr_join(t[i]);
    return atomic_load(&b->failed);
}

static int fs_sync(void)
{
    for (int i = 0; i < FS_FILES; i++) {
        char p[64];
        fs_name(p, sizeof p, i);
        struct stat st;
        if (stat(p, &st) != 0)
            return -errno;
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        close(fd);
        if (unlink(p) != 0)
            return -errno;
    }
    return 0;
}

static void bm_fs_ops(gr_bench_state *st)
{
    int n = (int)gr_bench_range(st, 0);
    while (gr_bench_keep_running(st)) {
        int rc = fs_populate();
        int64_t t0 = gr_bench_now_ns();
        if (rc == 0)
            rc = fs_sync();
        int64_t sync_ns = gr_bench_now_ns() - t0;
        struct fs_bench b = {.ntasks = n};
        gr_config cfg = {.workers = 2};
        if (rc == 0 && (rc = fs_populate()) == 0) {
            t0 = gr_bench_now_ns();
            rc = gr_run(fs_main, &b, &cfg);
        }
        int64_t rt_ns = gr_bench_now_ns() - t0;
        rmdir(FS_DIR);
        if (rc < 0) {
            gr_bench_error_rc(st, "fs_ops", rc);
            return;
        }
        double rt = (double)FS_FILES * NS_PER_S / (double)rt_ns;
        double sync = (double)FS_FILES * NS_PER_S / (double)sync_ns;
        gr_bench_set_iteration_time(st, (double)rt_ns / NS_PER_S);
        gr_bench_set_items(st, FS_FILES);
        gr_bench_counter(st, "files_per_s", rt);
        gr_bench_counter(st, "sync_files_per_s", sync);
        gr_bench_counter(st, "vs_sync", rt / sync);
    }
}

GR_BENCH_CONSTRUCTOR(register_file_benchmarks)
{
    gr_bench_register("file_randread_4k", bm_randread,
                      &(gr_bench_opts){.unit = GR_BENCH_MS, .iterations = 1, .manual_time = 1,
                                       .nargs = 4, .args = {1, 32, 64, 128}});
    gr_bench_register("file_odirect_randread", bm_odirect_randread,
                      &(gr_bench_opts){.unit = GR_BENCH_MS, .iterations = 1, .manual_time = 1,
                                       .nargs = 2, .args = {1, 32}});
    gr_bench_register("file_seq_rw", bm_seq_rw,
                      &(gr_bench_opts){.unit = GR_BENCH_MS, .iterations = 1, .manual_time = 1});
    gr_bench_register("fs_ops", bm_fs_ops,
                      &(gr_bench_opts){.unit = GR_BENCH_MS, .iterations = 1, .manual_time = 1,
                                       .nargs = 2, .args = {1, 64}});
}
