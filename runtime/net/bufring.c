#include "net/bufring.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "core/attrs.h"
#include "core/worker.h"

#define NBUFS 512u /* a power of two */
#define BUFSZ 4096u

struct gr__bufring {
    struct io_uring_buf_ring *ring;
    char *bufs;
    int failed; /* registration failed on this worker: do not retry */
};

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

/* Runs when a worker thread exits, after its io_uring was closed. */
static void bufring_free(void *p)
{
    struct gr__bufring *br = p;
    if (br->ring)
        munmap(br->ring, NBUFS * sizeof(struct io_uring_buf));
    if (br->bufs)
        munmap(br->bufs, (size_t)NBUFS * BUFSZ);
    free(br);
}

static void make_key(void)
{
    pthread_key_create(&key, bufring_free);
}

/* Not inlined: thread-specific data must be read on the thread the task
 * runs on now (tasks migrate; see core/task.h). */
GR_NOINLINE struct gr__bufring *gr__bufring_self(void)
{
    __asm__ volatile("" ::: "memory");
    return pthread_getspecific(key);
}

static int setup(struct gr__worker *w, struct gr__bufring *br)
{
    size_t ring_size = NBUFS * sizeof(struct io_uring_buf);
    void *ring = mmap(NULL, ring_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *bufs = mmap(NULL, (size_t)NBUFS * BUFSZ, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    br->ring = ring == MAP_FAILED ? NULL : ring;
    br->bufs = bufs == MAP_FAILED ? NULL : bufs;
    if (!br->ring || !br->bufs)
        return -ENOMEM;
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)br->ring,
                                   .ring_entries = NBUFS, .bgid = GR__BUFRING_BGID};
    int rc = io_uring_register_buf_ring(&w->ring, &reg, 0);
    if (rc < 0)
        return rc;
    io_uring_buf_ring_init(br->ring);
    for (unsigned i = 0; i < NBUFS; i++)
        io_uring_buf_ring_add(br->ring, br->bufs + (size_t)i * BUFSZ, BUFSZ, (unsigned short)i,
                              io_uring_buf_ring_mask(NBUFS), (int)i);
    io_uring_buf_ring_advance(br->ring, NBUFS);
    return 0;
}

struct gr__bufring *gr__bufring_get(struct gr__worker *w)
{
    pthread_once(&key_once, make_key);
    struct gr__bufring *br = gr__bufring_self();
    if (!br) {
        br = calloc(1, sizeof(*br));
        if (!br)
            return NULL;
        br->failed = setup(w, br) < 0;
        pthread_setspecific(key, br);
    }
    return br->failed ? NULL : br;
}

const char *gr__bufring_data(struct gr__bufring *br, unsigned bid)
{
    return br->bufs + (size_t)(bid & (NBUFS - 1)) * BUFSZ;
}

void gr__bufring_recycle(struct gr__bufring *br, unsigned bid)
{
    bid &= NBUFS - 1;
    io_uring_buf_ring_add(br->ring, br->bufs + (size_t)bid * BUFSZ, BUFSZ, (unsigned short)bid,
                          io_uring_buf_ring_mask(NBUFS), 0);
    /* io_uring_buf_ring_advance publishes with a release store, ordering
     * the entry before the kernel can see it. */
    io_uring_buf_ring_advance(br->ring, 1);
}
