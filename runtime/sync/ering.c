#include "sync/ering.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_GROWTH 8

int gr__ering_init(struct gr__ering *r, size_t esize, size_t cap)
{
    *r = (struct gr__ering){.esize = esize};
    if (cap == 0)
        return 0;
    if (cap > SIZE_MAX / esize)
        return -EINVAL;
    r->buf = malloc(cap * esize);
    if (!r->buf)
        return -ENOMEM;
    r->cap = cap;
    return 0;
}

void gr__ering_destroy(struct gr__ering *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = r->len = r->head = 0;
}

static size_t slot(const struct gr__ering *r, size_t i)
{
    size_t at = r->head + i; /* head < cap and i < cap: no overflow */
    return at >= r->cap ? at - r->cap : at;
}

void *gr__ering_at(const struct gr__ering *r, size_t i)
{
    return r->buf + slot(r, i) * r->esize;
}

/* Double the capacity; the elements become contiguous from index 0. */
static int grow(struct gr__ering *r)
{
    size_t cap = r->cap ? r->cap * 2 : FIRST_GROWTH;
    if (cap < r->cap || cap > SIZE_MAX / r->esize)
        return -ENOMEM;
    char *buf = malloc(cap * r->esize);
    if (!buf)
        return -ENOMEM;
    size_t first = r->cap - r->head < r->len ? r->cap - r->head : r->len;
    if (r->len) {
        memcpy(buf, r->buf + r->head * r->esize, first * r->esize);
        memcpy(buf + first * r->esize, r->buf, (r->len - first) * r->esize);
    }
    free(r->buf);
    r->buf = buf;
    r->cap = cap;
    r->head = 0;
    return 0;
}

int gr__ering_push_back(struct gr__ering *r, const void *elem)
{
    if (r->len == r->cap) {
        int rc = grow(r);
        if (rc < 0)
            return rc;
    }
    memcpy(r->buf + slot(r, r->len) * r->esize, elem, r->esize);
    r->len++;
    return 0;
}

void gr__ering_pop_front(struct gr__ering *r, void *out)
{
    if (out)
        memcpy(out, r->buf + r->head * r->esize, r->esize);
    r->head = r->head + 1 == r->cap ? 0 : r->head + 1;
    r->len--;
}

void gr__ering_pop_back(struct gr__ering *r, void *out)
{
    if (out)
        memcpy(out, gr__ering_at(r, r->len - 1), r->esize);
    r->len--;
}
