/* pipeline: a producer / workers / collector pipeline over bounded queues.
 *
 *   pipeline [-n ITEMS] [-w WORKERS] [-q QUEUE]
 *
 * A producer puts the numbers 1..ITEMS (default 100000) into a bounded
 * queue of QUEUE slots (default 64), so it can never run ahead of the
 * workers by more than that (back-pressure). WORKERS tasks (default 8) take
 * numbers, compute the length of each number's Collatz sequence and put
 * the results into a second queue; a collector adds them up. Shutting a
 * queue down (asyncio's Queue.shutdown) tells the next stage that no more
 * is coming. The workers run on every core. Prints the totals, which do not
 * depend on scheduling:
 *   items 100000, sum 5000050000, collatz steps 10753840 */
#include <errno.h>
#include <greenring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pipe_result {
    uint64_t item;
    uint64_t steps;
};

struct pipe_totals {
    uint64_t count, sum, steps;
};

struct pipe_ctx {
    gr_queue *work;    /* uint64_t */
    gr_queue *results; /* struct pipe_result */
    uint64_t items;
    struct pipe_totals totals; /* the collector's */
};

static uint64_t pipe_collatz(uint64_t x)
{
    uint64_t steps = 0;
    while (x != 1) {
        x = x % 2 ? 3 * x + 1 : x / 2;
        steps++;
    }
    return steps;
}

static int pipe_producer(void *arg)
{
    struct pipe_ctx *p = arg;
    int rc = 0;
    for (uint64_t i = 1; i <= p->items && rc == 0; i++)
        rc = gr_queue_put(p->work, &i); /* waits while the queue is full */
    gr_queue_shutdown(p->work, 0);       /* the workers drain what is left */
    return rc;
}

static int pipe_worker(void *arg)
{
    struct pipe_ctx *p = arg;
    uint64_t item;
    int rc;
    while ((rc = gr_queue_get(p->work, &item)) == 0) {
        struct pipe_result r = {.item = item, .steps = pipe_collatz(item)};
        if ((rc = gr_queue_put(p->results, &r)) < 0)
            return rc;
    }
    return rc == -ESHUTDOWN ? 0 : rc;
}

static int pipe_collector(void *arg)
{
    struct pipe_ctx *p = arg;
    struct pipe_totals *t = &p->totals;
    struct pipe_result r;
    int rc;
    while ((rc = gr_queue_get(p->results, &r)) == 0) {
        t->count++;
        t->sum += r.item;
        t->steps += r.steps;
    }
    return rc == -ESHUTDOWN ? 0 : rc;
}

struct pipe_args {
    uint64_t items;
    unsigned workers, queue;
};

static int pipe_main(void *arg)
{
    struct pipe_args *a = arg;
    struct pipe_ctx p = {.items = a->items};
    if (gr_queue_create(&p.work, sizeof(uint64_t), a->queue) < 0 ||
        gr_queue_create(&p.results, sizeof(struct pipe_result), a->queue) < 0)
        return 1;
    gr_group *workers;
    gr_task *producer, *collector;
    if (gr_group_create(&workers) < 0 || gr_spawn(&producer, pipe_producer, &p, NULL) < 0 ||
        gr_spawn(&collector, pipe_collector, &p, NULL) < 0)
        return 1;
    for (unsigned i = 0; i < a->workers; i++)
        gr_group_spawn(workers, pipe_worker, &p, NULL);
    int rc = gr_join(producer);
    int wrc = gr_group_wait(workers);
    gr_queue_shutdown(p.results, 0); /* every result is in: let the collector finish */
    int crc = gr_join(collector);
    gr_group_destroy(workers);
    gr_queue_destroy(p.work);
    gr_queue_destroy(p.results);
    if (rc < 0 || wrc < 0 || crc < 0) {
        fprintf(stderr, "pipeline: failed (%d %d %d)\n", rc, wrc, crc);
        return 1;
    }
    printf("items %llu, sum %llu, collatz steps %llu\n", (unsigned long long)p.totals.count,
           (unsigned long long)p.totals.sum, (unsigned long long)p.totals.steps);
    return p.totals.count == a->items ? 0 : 1;
}

static void pipe_usage(void)
{
    fprintf(stderr, "usage: pipeline [-n ITEMS] [-w WORKERS] [-q QUEUE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct pipe_args a = {.items = 100000, .workers = 8, .queue = 64};
    int opt;
    while ((opt = getopt(argc, argv, "n:w:q:")) != -1) {
        switch (opt) {
        case 'n': a.items = strtoull(optarg, NULL, 10); break;
        case 'w': a.workers = (unsigned)atoi(optarg); break;
        case 'q': a.queue = (unsigned)atoi(optarg); break;
        default: pipe_usage();
        }
    }
    if (optind != argc || !a.items || !a.workers || !a.queue)
        pipe_usage();
    int rc = gr_run(pipe_main, &a, NULL);
    if (rc < 0)
        fprintf(stderr, "pipeline: %s\n", strerror(-rc));
    return rc == 0 ? 0 : 1;
}
