#include "core/timer.h"

#include <errno.h>
#include <stdlib.h>

void gr__timer_heap_init(struct gr__timer_heap *h)
{
    *h = (struct gr__timer_heap){0};
}

void gr__timer_heap_destroy(struct gr__timer_heap *h)
{
    free(h->nodes);
    *h = (struct gr__timer_heap){0};
}

static int earlier(const struct gr__timer_entry *a, const struct gr__timer_entry *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    /* wrap-safe comparison of insertion order */
    return (int32_t)(a->seq - b->seq) < 0;
}

static void place(struct gr__timer_heap *h, uint32_t i, struct gr__timer_entry e)
{
    h->nodes[i] = e;
    e.node->index = i;
}

static void sift_up(struct gr__timer_heap *h, uint32_t i)
{
    struct gr__timer_entry e = h->nodes[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!earlier(&e, &h->nodes[parent]))
            break;
        place(h, i, h->nodes[parent]);
        i = parent;
    }
    place(h, i, e);
}

static void sift_down(struct gr__timer_heap *h, uint32_t i)
{
    struct gr__timer_entry e = h->nodes[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && earlier(&h->nodes[child + 1], &h->nodes[child]))
            child++;
        if (!earlier(&h->nodes[child], &e))
            break;
        place(h, i, h->nodes[child]);
        i = child;
    }
    place(h, i, e);
}

static int grow(struct gr__timer_heap *h)
{
    uint32_t cap = h->cap ? h->cap * 2 : 64;
    struct gr__timer_entry *nodes = realloc(h->nodes, cap * sizeof(*nodes));
    if (!nodes)
        return -ENOMEM;
    h->nodes = nodes;
    h->cap = cap;
    return 0;
}

int gr__timer_arm(struct gr__timer_heap *h, struct gr__timer *t, int64_t deadline)
{
    if (h->len == h->cap && grow(h) < 0)
        return -ENOMEM;
    t->deadline = deadline;
    t->seq = h->next_seq++;
    struct gr__timer_entry e = {.deadline = deadline, .seq = t->seq, .node = t};
    place(h, h->len++, e);
    sift_up(h, t->index);
    return 0;
}

void gr__timer_disarm(struct gr__timer_heap *h, struct gr__timer *t)
{
    uint32_t i = t->index;
    t->index = GR_TIMER_IDLE;
    struct gr__timer_entry last = h->nodes[--h->len];
    if (i == h->len)
        return;
    place(h, i, last);
    if (i > 0 && earlier(&last, &h->nodes[(i - 1) / 2]))
        sift_up(h, i);
    else
        sift_down(h, i);
}

struct gr__timer *gr__timer_first(const struct gr__timer_heap *h)
{
    return h->len ? h->nodes[0].node : NULL;
}
