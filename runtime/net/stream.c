/* Streams: asyncio's StreamReader and StreamWriter over a connected fd.
 *
 * Read side, stream sockets: one multishot recv with provided buffers
 * (net/bufring.h) is armed on the ring of the worker where the reading
 * task runs when it first needs data, and stays armed: every CQE is one
 * packet's worth of data, copied by the completion (on that worker) into
 * the stream's buffer, or straight into the buffer of a gr_stream_read
 * parked for it when nothing is buffered (one copy instead of two), and
 * the provided buffer goes straight back to the kernel.
 * The completion wakes a waiting reader through gr__wake, wherever the
 * reader is parked now. So a read costs no SQE and no poll arming (docs/
 * net.md has the numbers), a reader that is cancelled or times out loses
 * nothing (the data keeps landing in the buffer), and an idle connection
 * holds no kernel buffer. When more than `rmax` bytes pile up unread
 * (nobody reads), the completion cancels the multishot (back-pressure);
 * the next read that needs data arms it again. `rlock` guards the buffer
 * and this state: reader calls hold it except while parked.
 *
 * Read side, other fds (pipes, SOCK_SEQPACKET, or GREENRING_NET_RECV=single):
 * one recv/read per fill through the calling worker's ring, into the
 * stream's buffer or straight into the caller's (large reads); an
 * interrupted recv is cancelled and whatever it returned is kept.
 *
 * Write side. On a stream socket with nothing queued, gr_stream_write
 * first tries send(MSG_DONTWAIT) from the caller's memory (one system call,
 * usually all it takes). Otherwise, and for what that did not send, it
 * copies into a buffer and, if no send is in flight, submits one on the
 * calling worker's ring without waiting for it.
 * Two buffers take turns: `fly` belongs to the send in flight and is never
 * touched while it is; writes meanwhile append to `pend`. The send's
 * completion (running on the worker whose ring it was submitted on, which
 * may not be the writer's any more) swaps the buffers and submits the next
 * send right there, so queued data keeps flowing without the writer. Sends
 * use MSG_WAITALL, so the kernel finishes short sends itself. This state is
 * shared between writers and completions on any worker: `lock` guards it,
 * and waiters (drain, flush, close) are woken after the lock is dropped.
 *
 * Close. A multishot recv or a send may be in flight on another worker's
 * ring; it is cancelled through that worker (net/remote.h), and close
 * waits until the operations' last CQEs and the cancel requests have all
 * been handled before freeing anything. */
#include "net/stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/attrs.h"
#include "core/io_op.h"
#include "core/spinlock.h"
#include "core/task.h"
#include "core/worker.h"
#include "net/bufring.h"
#include "net/remote.h"
#include "net/socket.h"
#include "core/syscall.h"

#define MAX_IO_LEN 0x7ffff000u
/* First read buffer; it doubles up to the limit when a reader needs it. */
#define RBUF_MIN ((size_t)4096)
/* Reads at least this large go straight into the caller's buffer when
 * nothing is buffered (no copy). */
#define DIRECT_MIN ((size_t)512)

enum wait_kind {
    WAIT_DRAIN, /* queued <= low (or an error) */
    WAIT_FLUSH, /* nothing queued (or an error) */
    WAIT_IDLE,  /* no send and no cancel request in flight (close) */
};

struct wwaiter {
    struct gr__wait wait;
    struct wwaiter *next;
    gr_stream *s;
    enum wait_kind kind;
};

struct gr_stream {
    int fd;
    unsigned char is_sock;
    unsigned char direct; /* try send(MSG_DONTWAIT) before the ring */
    size_t limit, high, low, zc_min;
    void *owner;

    /* Read side. `reading`: a task is inside a read call. The rest is
     * under `rlock` (shared with the multishot recv's completion). */
    _Atomic int reading;
    gr__spinlock rlock;
    char *rbuf;
    size_t rcap, rpos, rlen;
    size_t rmax; /* pause the multishot recv beyond this many buffered bytes */
    int eof;
    int rerr; /* sticky receive error */
    unsigned char ms;         /* multishot receives (stream sockets) */
    unsigned char poll_first; /* single-shot: the last recv drained the socket */
    unsigned char skip_line;  /* drop data through the next '\n' (readline overrun) */
    unsigned char ms_armed;   /* a multishot recv is in flight on ms_worker's ring */
    unsigned char ms_pausing; /* its completion asked for it to be cancelled */
    unsigned char rcancel_pending; /* rcancel_req has not run yet */
    struct gr__worker *ms_worker;
    struct gr__wait *rwaiter; /* the reader, parked for data */
    struct rwait *rfill; /* woken, not yet running: its buffer still fills */
    struct gr__wait *rcloser; /* close, waiting for the multishot to end */
    struct gr__completion recv_done;
    struct gr__remote rcancel_req;

    /* Write side: under `lock`. */
    gr__spinlock lock;
    char *pend, *fly;
    size_t pend_len, pend_cap;
    size_t fly_off, fly_len, fly_cap;
    int busy;           /* a send of fly is in flight on fly_worker's ring */
    int werr;           /* the error that ended sending (sticky) */
    int wshut;          /* write_eof or close: no more writes */
    int dropping;       /* closing: send nothing more */
    int cancel_pending; /* cancel_req has not run on fly_worker yet */
    unsigned waiting;   /* tasks inside drain/flush/write_eof */
    struct gr__worker *fly_worker;
    struct wwaiter *waiters;
    struct gr__completion send_done;
    struct gr__remote cancel_req;
};

static unsigned clamp_len(size_t len)
{
    return len > MAX_IO_LEN ? MAX_IO_LEN : (unsigned)len;
}

/* Errors that describe the connection (kept and returned again), as
 * opposed to interrupts of one call. */
static int sticky_error(int rc)
{
    return rc < 0 && rc != -ECANCELED && rc != -ETIMEDOUT && rc != -EINTR && rc != -EAGAIN;
}

/* =====================================================================
 * Opening
 * ===================================================================== */

int gr__stream_opts_check(const gr_stream_opts *o)
{
    if (!o)
        return 0;
    size_t high = o->write_high ? o->write_high : GR_STREAM_WRITE_HIGH;
    return o->write_low > high ? -EINVAL : 0;
}

static void apply_opts(gr_stream *s, const gr_stream_opts *o)
{
    static const gr_stream_opts defaults;
    if (!o)
        o = &defaults;
    s->limit = o->limit ? o->limit : GR_STREAM_LIMIT;
    s->high = o->write_high ? o->write_high : GR_STREAM_WRITE_HIGH;
    s->low = o->write_low ? o->write_low : s->high / 4;
    s->zc_min = o->zerocopy_min;
}

static void send_complete(struct gr__worker *w, struct gr__completion *c, int32_t res,
                          uint32_t flags);
static void recv_complete(struct gr__worker *w, struct gr__completion *c, int32_t res,
                          uint32_t flags);

/* GREENRING_NET_RECV=single turns multishot receives off, and
 * GREENRING_NET_SEND=ring turns direct sends off (to compare the paths;
 * docs/net.md). Read once per process. */
static int multishot_default = 1, direct_default = 1;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void read_env(void)
{
    const char *v = getenv("GREENRING_NET_RECV");
    multishot_default = !(v && strcmp(v, "single") == 0);
    v = getenv("GREENRING_NET_SEND");
    direct_default = !(v && strcmp(v, "ring") == 0);
}

static int want_multishot(void)
{
    pthread_once(&env_once, read_env);
    return multishot_default;
}

static int want_direct(void)
{
    pthread_once(&env_once, read_env);
    return direct_default;
}

/* is_sock: 1 socket, 2 stream socket (multishot receives), 0 other fd. */
static int stream_new(gr_stream **out, int fd, int is_sock, const gr_stream_opts *opts)
{
    gr_stream *s = calloc(1, sizeof(*s));
    if (!s) {
        gr__sock_close_now(fd);
        return -ENOMEM;
    }
    s->fd = fd;
    s->is_sock = is_sock != 0;
    s->ms = is_sock == 2 && want_multishot();
    s->direct = is_sock == 2 && want_direct();
    apply_opts(s, opts);
    s->rmax = s->limit;
    s->send_done.fn = send_complete;
    s->recv_done.fn = recv_complete;
    *out = s;
    return 0;
}

int gr__stream_open_socket(gr_stream **out, int fd, int tcp, const gr_stream_opts *opts)
{
    if (tcp && !(opts && opts->no_nodelay))
        gr_sock_nodelay(fd, 1); /* asyncio does this for every TCP transport */
    return stream_new(out, fd, 2, opts);
}

int gr_stream_open(gr_stream **out, int fd, const gr_stream_opts *opts)
{
    if (fd < 0)
        return -EBADF;
    int rc = gr__stream_opts_check(opts);
    if (!out || rc < 0) {
        gr__sock_close_now(fd);
        return -EINVAL;
    }
    int type = gr__sock_type(fd);
    if (type == -EBADF)
        return type; /* there is no fd to take over */
    if (type == SOCK_STREAM)
        return gr__stream_open_socket(out, fd, gr__sock_is_tcp(fd), opts);
    return stream_new(out, fd, type > 0, opts);
}

int gr_open_connection(gr_stream **out, const char *host, uint16_t port,
                       const gr_stream_opts *opts)
{
    if (!out || gr__stream_opts_check(opts) < 0)
        return -EINVAL;
    int fd = gr_connect_tcp(host, port);
    return fd < 0 ? fd : gr__stream_open_socket(out, fd, 1, opts);
}

int gr_open_unix_connection(gr_stream **out, const char *path, const gr_stream_opts *opts)
{
    if (!out || gr__stream_opts_check(opts) < 0)
        return -EINVAL;
    int fd = gr_connect_unix(path);
    return fd < 0 ? fd : gr__stream_open_socket(out, fd, 0, opts);
}

void gr__stream_set_owner(gr_stream *s, void *owner)
{
    s->owner = owner;
}

void *gr__stream_owner(gr_stream *s)
{
    return s->owner;
}

int gr_stream_fd(gr_stream *s)
{
    return s ? s->fd : -EINVAL;
}

/* =====================================================================
 * Read side
 * ===================================================================== */

static void consume(gr_stream *s, size_t n);
static size_t find_sep(gr_stream *s, const void *sep, size_t seplen, size_t from);

/* The rest of a line readline gave up on: drop it as it arrives. */
static void skip_rest_of_line(gr_stream *s)
{
    size_t end = find_sep(s, "\n", 1, 0);
    consume(s, end ? end : s->rlen);
    s->skip_line = !end;
}

static int reader_enter(gr_stream *s)
{
    struct gr__task *self;
    int rc = gr__blocking_check(&self);
    if (rc < 0)
        return rc;
    int idle = 0;
    /* acquire: the previous reader's writes (it released below) are
     * visible to this one, which may run on another thread. */
    if (!atomic_compare_exchange_strong_explicit(&s->reading, &idle, 1, memory_order_acquire,
                                                 memory_order_relaxed))
        return -EBUSY;
    gr__spin_lock(&s->rlock);
    if (s->skip_line)
        skip_rest_of_line(s);
    return 0;
}

static void reader_leave(gr_stream *s)
{
    s->rmax = s->limit;
    gr__spin_unlock(&s->rlock);
    /* release: pairs with the acquire in reader_enter. */
    atomic_store_explicit(&s->reading, 0, memory_order_release);
}

/* ---- single-shot receives ------------------------------------------- */

/* One recv (read for non-sockets) into buf through the calling worker's
 * ring. Called with rlock dropped: in this mode nothing else touches the
 * buffer. Updates the EOF / error state. */
static ssize_t recv_some(gr_stream *s, void *buf, size_t len)
{
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    unsigned n = clamp_len(len);
    if (s->is_sock) {
        io_uring_prep_recv(sqe, s->fd, buf, n, 0);
        if (s->poll_first)
            sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    } else {
        io_uring_prep_read(sqe, s->fd, buf, n, (uint64_t)-1);
    }
    rc = gr__net_wait(&io, sqe, "stream read");
    s->poll_first = rc >= 0 && (unsigned)rc < n;
    if (rc == 0)
        s->eof = 1;
    else if (sticky_error(rc))
        s->rerr = rc;
    return rc;
}

static ssize_t recv_unlocked(gr_stream *s, void *buf, size_t len)
{
    gr__spin_unlock(&s->rlock);
    ssize_t n = recv_some(s, buf, len);
    gr__spin_lock(&s->rlock);
    return n;
}

/* Make room at the buffer's tail, letting it hold up to max bytes. */
static int make_room(gr_stream *s, size_t max)
{
    size_t tail = s->rcap - s->rpos - s->rlen;
    if (s->rpos && (tail < RBUF_MIN / 2 || s->rlen == 0)) {
        memmove(s->rbuf, s->rbuf + s->rpos, s->rlen);
        s->rpos = 0;
        tail = s->rcap - s->rlen;
    }
    if (tail > 0 && (s->rcap >= max || tail >= RBUF_MIN / 2))
        return 0;
    if (s->rcap >= max)
        return tail > 0 ? 0 : -EMSGSIZE;
    size_t cap = s->rcap ? s->rcap * 2 : RBUF_MIN;
    if (cap > max)
        cap = max;
    char *p = realloc(s->rbuf, cap);
    if (!p)
        return -ENOMEM;
    s->rbuf = p;
    s->rcap = cap;
    return 0;
}

static ssize_t fill_single(gr_stream *s, size_t max)
{
    for (;;) {
        if (s->eof)
            return 0;
        if (s->rerr)
            return s->rerr;
        int rc = make_room(s, max);
        if (rc < 0)
            return rc;
        size_t room = s->rcap - s->rpos - s->rlen;
        if (room > max - s->rlen)
            room = max - s->rlen;
        size_t before = s->rlen;
        ssize_t n = recv_unlocked(s, s->rbuf + s->rpos + s->rlen, room);
        if (n <= 0)
            return n;
        s->rlen += (size_t)n;
        if (s->skip_line)
            skip_rest_of_line(s);
        if (s->rlen > before)
            return (ssize_t)(s->rlen - before);
    }
}

/* ---- multishot receives ----------------------------------------------- */

/* Locked. Append what a CQE brought, growing the buffer as needed (past
 * rmax too: a few packets may arrive after the pause was asked for). */
static int rbuf_append(gr_stream *s, const char *data, size_t n)
{
    if (s->rpos + s->rlen + n > s->rcap && s->rpos) {
        memmove(s->rbuf, s->rbuf + s->rpos, s->rlen);
        s->rpos = 0;
    }
    if (s->rlen + n > s->rcap) {
        size_t cap = s->rcap ? s->rcap : RBUF_MIN;
        while (cap < s->rlen + n)
            cap *= 2;
        char *p = realloc(s->rbuf, cap);
        if (!p)
            return -ENOMEM;
        s->rbuf = p;
        s->rcap = cap;
    }
    memcpy(s->rbuf + s->rpos + s->rlen, data, n);
    s->rlen += n;
    return 0;
}

/* A reader parked for data. gr_stream_read parks with its own buffer as
 * `dst`: completions then copy straight into it (one copy instead of two)
 * while nothing is buffered before, and say how much in `got`. That goes
 * on after the first one has woken the reader (`rfill`), until it runs:
 * the packets that arrived in one round all go out in one read. */
struct rwait {
    struct gr__wait wait;
    gr_stream *s;
    char *dst;
    size_t cap, got;
};

/* Locked. Deliver what a CQE brought: to the parked reader's own buffer
 * as far as it can (nothing buffered comes before it), the rest into the
 * stream's buffer. */
static int deliver(gr_stream *s, struct rwait *rw, const char *data, size_t n)
{
    size_t direct = 0;
    if (rw && rw->dst && s->rlen == 0) {
        size_t room = rw->cap - rw->got;
        direct = n < room ? n : room;
        memcpy(rw->dst + rw->got, data, direct);
        rw->got += direct;
        if (rw->got == rw->cap)
            rw->dst = NULL;
    }
    return n > direct ? rbuf_append(s, data + direct, n - direct) : 0;
}

/* Runs on ms_worker for every CQE of the multishot recv. */
static void recv_complete(struct gr__worker *w, struct gr__completion *c, int32_t res,
                          uint32_t flags)
{
    gr_stream *s = GR_CONTAINER_OF(c, gr_stream, recv_done);
    int more = !!(flags & IORING_CQE_F_MORE);
    struct gr__bufring *br = (flags & IORING_CQE_F_BUFFER) ? gr__bufring_self() : NULL;
    unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
    gr__spin_lock(&s->rlock);
    struct gr__wait *reader = s->rwaiter, *closer = NULL;
    s->rwaiter = NULL;
    struct rwait *rw = reader ? GR_CONTAINER_OF(reader, struct rwait, wait) : s->rfill;
    if (res > 0 && (!br || deliver(s, rw, gr__bufring_data(br, bid), (size_t)res) < 0))
        s->rerr = s->rerr ? s->rerr : br ? -ENOMEM : -EIO;
    else if (res == 0)
        s->eof = 1;
    else if (res < 0 && res != -ENOBUFS && res != -ECANCELED && !s->rerr)
        s->rerr = res; /* ENOBUFS, ECANCELED: the next read arms it again */
    if (reader && rw->dst)
        s->rfill = rw;
    int pause = more && s->rlen >= s->rmax && !s->ms_pausing;
    s->ms_pausing |= pause;
    if (!more)
        s->ms_armed = s->ms_pausing = 0;
    if (!s->ms_armed && !s->rcancel_pending) {
        closer = s->rcloser;
        s->rcloser = NULL;
    }
    gr__spin_unlock(&s->rlock);
    if (br)
        gr__bufring_recycle(br, bid);
    /* Still armed: s stays allocated until the final CQE. */
    if (pause)
        gr__remote_cancel_local(w, &s->recv_done);
    if (reader)
        gr__wake(reader, 0);
    if (closer)
        gr__wake(closer, 0);
}

/* Locked. Arm the multishot recv on the calling worker's ring, or switch
 * the stream to single-shot receives if the kernel cannot. (Getting the
 * SQE may reap completions; none of this stream's can be pending, since
 * its last multishot has ended, so holding rlock is safe.) */
static void arm_multishot(gr_stream *s)
{
    struct gr__worker *w = gr__worker_self();
    if (!gr__bufring_get(w)) {
        s->ms = 0;
        return;
    }
    struct io_uring_sqe *sqe = gr__worker_sqe(w);
    io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = GR__BUFRING_BGID;
    io_uring_sqe_set_data(sqe, &s->recv_done);
    s->ms_armed = 1;
    s->ms_worker = w;
}

static void rwait_interrupt(struct gr__wait *wait, int reason)
{
    gr_stream *s = GR_CONTAINER_OF(wait, struct rwait, wait)->s;
    gr__spin_lock(&s->rlock);
    int mine = s->rwaiter == wait;
    if (mine)
        s->rwaiter = NULL;
    gr__spin_unlock(&s->rlock);
    /* Not mine: a completion took it and is about to wake it. */
    if (mine)
        gr__wake(wait, reason);
}

/* Locked; parks with the lock dropped until the next CQE (or an
 * interrupt, whose reason is returned). */
static int wait_data(gr_stream *s, struct rwait *rw)
{
    gr__wait_prepare(&rw->wait, gr__current_task());
    s->rwaiter = &rw->wait;
    gr__spin_unlock(&s->rlock);
    int rc = gr__park(&rw->wait, "stream read", rwait_interrupt, GR_NO_DEADLINE);
    gr__spin_lock(&s->rlock);
    s->rfill = NULL; /* rw's buffer is its own again */
    return rc;
}

/* dst (may be NULL): the reader's own buffer of cap bytes, filled directly
 * when the stream's buffer is empty; *direct says how much went there
 * (the return value then counts those bytes, not buffered ones). direct
 * is only written when dst is given. */
static ssize_t fill_multishot(gr_stream *s, size_t max, void *dst, size_t cap, size_t *direct)
{
    size_t before = s->rlen;
    s->rmax = max > s->limit ? max : s->limit;
    for (;;) {
        if (s->skip_line)
            skip_rest_of_line(s);
        if (s->rlen > before)
            return (ssize_t)(s->rlen - before);
        if (s->eof)
            return 0;
        if (s->rerr)
            return s->rerr;
        if (!s->ms_armed) {
            arm_multishot(s);
            if (!s->ms)
                return fill_single(s, max);
        }
        struct rwait rw = {.s = s, .dst = s->skip_line ? NULL : dst, .cap = cap};
        int rc = wait_data(s, &rw);
        /* Delivered data wins over an interrupt: the completion took the
         * wait (and woke it with 0) before anything else could. */
        if (rw.got) {
            *direct = rw.got;
            return (ssize_t)rw.got;
        }
        if (rc < 0)
            return rc;
    }
}

/* Receive more into the buffer, which may hold up to max bytes (max >
 * rlen). > 0: bytes added; 0: EOF; < 0: error. With dst, as
 * fill_multishot (single-shot receives never fill dst). */
static ssize_t fill_into(gr_stream *s, size_t max, void *dst, size_t cap, size_t *direct)
{
    return s->ms ? fill_multishot(s, max, dst, cap, direct) : fill_single(s, max);
}

static ssize_t fill(gr_stream *s, size_t max)
{
    return fill_into(s, max, NULL, 0, NULL);
}

/* ---- the readers -------------------------------------------------------- */

static void consume(gr_stream *s, size_t n)
{
    s->rpos += n;
    s->rlen -= n;
    if (s->rlen == 0)
        s->rpos = 0;
}

static size_t take(gr_stream *s, void *buf, size_t n)
{
    if (n > s->rlen)
        n = s->rlen;
    if (n == 0)
        return 0; /* rbuf may still be NULL */
    memcpy(buf, s->rbuf + s->rpos, n);
    consume(s, n);
    return n;
}

static ssize_t read_locked(gr_stream *s, void *buf, size_t n)
{
    if (n == 0)
        return 0;
    if (s->rlen)
        return (ssize_t)take(s, buf, n);
    if (s->eof)
        return 0;
    if (s->rerr)
        return s->rerr;
    if (!s->ms && n >= DIRECT_MIN && !s->skip_line)
        return recv_unlocked(s, buf, n);
    size_t direct = 0;
    ssize_t r = fill_into(s, s->limit, buf, n, &direct);
    if (direct)
        return (ssize_t)direct;
    return r > 0 ? (ssize_t)take(s, buf, n) : r;
}

ssize_t gr_stream_read(gr_stream *s, void *buf, size_t n)
{
    if (!s || (!buf && n))
        return -EINVAL;
    int rc = reader_enter(s);
    if (rc < 0)
        return rc;
    ssize_t r = read_locked(s, buf, n);
    reader_leave(s);
    return r;
}

static ssize_t readexactly_locked(gr_stream *s, void *buf, size_t n)
{
    size_t max = n > s->limit ? n : s->limit;
    while (s->rlen < n) {
        ssize_t r = fill(s, max);
        if (r == 0)
            return -ENODATA;
        if (r < 0)
            return r;
    }
    return (ssize_t)take(s, buf, n);
}

ssize_t gr_stream_readexactly(gr_stream *s, void *buf, size_t n)
{
    if (!s || (!buf && n))
        return -EINVAL;
    int rc = reader_enter(s);
    if (rc < 0)
        return rc;
    ssize_t r = readexactly_locked(s, buf, n);
    reader_leave(s);
    return r;
}

/* Offset just past the first separator in the buffer, searching from
 * `from`; 0 if there is none. */
static size_t find_sep(gr_stream *s, const void *sep, size_t seplen, size_t from)
{
    if (s->rlen < seplen || from > s->rlen - seplen)
        return 0;
    const char *base = s->rbuf + s->rpos;
    const char *hit = memmem(base + from, s->rlen - from, sep, seplen);
    return hit ? (size_t)(hit - base) + seplen : 0;
}

/* Waits until the buffer holds a separator within `eff` bytes. Returns the
 * length up to and including it, -EMSGSIZE, -ENODATA (EOF first) or an
 * error. */
static ssize_t wait_sep(gr_stream *s, const void *sep, size_t seplen, size_t eff)
{
    size_t from = 0;
    for (;;) {
        size_t end = find_sep(s, sep, seplen, from);
        if (end)
            return end <= eff ? (ssize_t)end : -EMSGSIZE;
        if (s->rlen >= eff)
            return -EMSGSIZE;
        /* The next search starts where a separator split across the old
         * end and the new data could begin. */
        from = s->rlen >= seplen ? s->rlen - seplen + 1 : 0;
        ssize_t r = fill(s, s->limit > eff ? s->limit : eff);
        if (r == 0)
            return -ENODATA;
        if (r < 0)
            return r;
    }
}

static size_t eff_limit(gr_stream *s, size_t cap)
{
    return cap < s->limit ? cap : s->limit;
}

ssize_t gr_stream_readuntil(gr_stream *s, const void *sep, size_t seplen, void *buf, size_t cap)
{
    if (!s || !sep || seplen == 0 || !buf)
        return -EINVAL;
    int rc = reader_enter(s);
    if (rc < 0)
        return rc;
    ssize_t r = wait_sep(s, sep, seplen, eff_limit(s, cap));
    if (r > 0)
        take(s, buf, (size_t)r);
    reader_leave(s);
    return r;
}

/* readline after a limit overrun: drop the line through its '\n', which
 * may arrive later (asyncio drops what is buffered; the rest of the line
 * would then come out as the next line). */
static void drop_long_line(gr_stream *s)
{
    skip_rest_of_line(s);
}

ssize_t gr_stream_readline(gr_stream *s, void *buf, size_t cap)
{
    if (!s || !buf)
        return -EINVAL;
    int rc = reader_enter(s);
    if (rc < 0)
        return rc;
    ssize_t r = wait_sep(s, "\n", 1, eff_limit(s, cap));
    if (r > 0)
        take(s, buf, (size_t)r);
    else if (r == -ENODATA) /* EOF: the unterminated rest (fits: < eff) */
        r = (ssize_t)take(s, buf, s->rlen);
    else if (r == -EMSGSIZE)
        drop_long_line(s);
    reader_leave(s);
    return r;
}

ssize_t gr_stream_read_to_eof(gr_stream *s, void *buf, size_t cap)
{
    if (!s || (!buf && cap))
        return -EINVAL;
    int rc = reader_enter(s);
    if (rc < 0)
        return rc;
    ssize_t r = 0;
    while (!s->eof && s->rlen <= cap && (r = fill(s, cap + 1)) > 0)
        ;
    if (r >= 0)
        r = s->rlen > cap ? -EMSGSIZE : (ssize_t)take(s, buf, s->rlen);
    reader_leave(s);
    return r;
}

int gr_stream_at_eof(gr_stream *s)
{
    if (!s)
        return 0;
    gr__spin_lock(&s->rlock);
    int at_eof = s->eof && s->rlen == 0;
    gr__spin_unlock(&s->rlock);
    return at_eof;
}

size_t gr_stream_buffered(gr_stream *s)
{
    if (!s)
        return 0;
    gr__spin_lock(&s->rlock);
    size_t n = s->rlen;
    gr__spin_unlock(&s->rlock);
    return n;
}

/* =====================================================================
 * Write side
 * ===================================================================== */

/* Locked. Bytes queued and not yet acknowledged by the kernel. */
static size_t queued(gr_stream *s)
{
    return s->pend_len + (s->busy ? s->fly_len - s->fly_off : 0);
}

static int ready(gr_stream *s, enum wait_kind kind)
{
    if (kind == WAIT_IDLE)
        return !s->busy && !s->cancel_pending;
    if (s->werr)
        return 1;
    return kind == WAIT_DRAIN ? queued(s) <= s->low : !s->busy;
}

/* Locked. Unlinks the waiters whose condition holds; the caller wakes
 * them after unlocking (wake_list). */
static struct wwaiter *collect_ready(gr_stream *s)
{
    struct wwaiter *out = NULL, **pp = &s->waiters;
    while (*pp) {
        struct wwaiter *w = *pp;
        if (ready(s, w->kind)) {
            *pp = w->next;
            w->next = out;
            out = w;
        } else {
            pp = &w->next;
        }
    }
    return out;
}

static void wake_list(struct wwaiter *w)
{
    while (w) {
        struct wwaiter *next = w->next; /* w is gone once woken */
        gr__wake(&w->wait, 0);
        w = next;
    }
}

/* Reserve room for n more bytes after len in *buf. */
static int reserve(char **buf, size_t *cap, size_t len, size_t n)
{
    if (n > SIZE_MAX - len)
        return -ENOMEM;
    if (len + n <= *cap)
        return 0;
    size_t want = *cap ? *cap : 4096;
    while (want < len + n)
        want = want > SIZE_MAX / 2 ? len + n : want * 2;
    char *p = realloc(*buf, want);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = want;
    return 0;
}

/* Submit the send of fly[fly_off, fly_len) on w's ring. The fly fields are
 * stable: only this send's completion changes them. */
static void submit_send(gr_stream *s, struct gr__worker *w)
{
    struct io_uring_sqe *sqe = gr__worker_sqe(w);
    char *p = s->fly + s->fly_off;
    unsigned n = clamp_len(s->fly_len - s->fly_off);
    if (s->is_sock)
        io_uring_prep_send(sqe, s->fd, p, n, MSG_NOSIGNAL | MSG_WAITALL);
    else
        io_uring_prep_write(sqe, s->fd, p, n, (uint64_t)-1);
    io_uring_sqe_set_data(sqe, &s->send_done);
}

/* Locked, send finished: what comes next. Returns 1 if another send must
 * be submitted (busy stays set). */
static int next_send(gr_stream *s, struct gr__worker *w)
{
    if (s->werr || s->dropping) {
        s->pend_len = 0;
        s->busy = 0;
        return 0;
    }
    if (s->fly_off < s->fly_len) /* short write (pipes): send the rest */
        return 1;
    if (s->pend_len == 0) {
        s->busy = 0;
        return 0;
    }
    char *buf = s->fly;
    size_t cap = s->fly_cap;
    s->fly = s->pend;
    s->fly_cap = s->pend_cap;
    s->fly_len = s->pend_len;
    s->fly_off = 0;
    s->pend = buf;
    s->pend_cap = cap;
    s->pend_len = 0;
    s->fly_worker = w;
    return 1;
}

/* Runs on the worker whose ring the send was submitted on. */
static void send_complete(struct gr__worker *w, struct gr__completion *c, int32_t res,
                          uint32_t flags)
{
    (void)flags;
    gr_stream *s = GR_CONTAINER_OF(c, gr_stream, send_done);
    gr__spin_lock(&s->lock);
    if (res > 0)
        s->fly_off += (size_t)res;
    else if (!s->werr && !s->dropping)
        s->werr = res < 0 ? res : -EIO; /* 0 bytes for a non-empty send */
    int again = next_send(s, w);
    struct wwaiter *wake = collect_ready(s);
    gr__spin_unlock(&s->lock);
    /* busy is set again when resending, so nobody frees s meanwhile; if
     * it is not, s must not be touched any more. */
    if (again)
        submit_send(s, w);
    wake_list(wake);
}

static void waiter_interrupt(struct gr__wait *wait, int reason)
{
    struct wwaiter *ww = GR_CONTAINER_OF(wait, struct wwaiter, wait);
    gr_stream *s = ww->s;
    int found = 0;
    gr__spin_lock(&s->lock);
    for (struct wwaiter **pp = &s->waiters; *pp; pp = &(*pp)->next) {
        if (*pp == ww) {
            *pp = ww->next;
            found = 1;
            break;
        }
    }
    gr__spin_unlock(&s->lock);
    /* Not found: a completion unlinked it and is about to wake it. */
    if (found)
        gr__wake(wait, reason);
}

static void ignore_interrupt(struct gr__wait *wait, int reason)
{
    (void)wait;
    (void)reason;
}

/* Park until `kind` holds. Interruptible waits return the interrupt. */
static int wait_until(gr_stream *s, struct gr__task *self, enum wait_kind kind, int interruptible)
{
    struct wwaiter ww = {.s = s, .kind = kind};
    gr__wait_prepare(&ww.wait, self);
    gr__spin_lock(&s->lock);
    int now = ready(s, kind);
    if (!now) {
        ww.next = s->waiters;
        s->waiters = &ww;
    }
    gr__spin_unlock(&s->lock);
    if (now)
        return 0;
    return gr__park(&ww.wait, kind == WAIT_DRAIN ? "stream drain" : "stream flush",
                    interruptible ? waiter_interrupt : ignore_interrupt, GR_NO_DEADLINE);
}

/* Locked check + wait shared by drain and flush: 0 or the send error. */
static int wait_writes(gr_stream *s, enum wait_kind kind)
{
    struct gr__task *self;
    int rc = gr__blocking_check(&self);
    if (rc < 0)
        return rc;
    gr__spin_lock(&s->lock);
    int must = !s->werr && (kind == WAIT_DRAIN ? queued(s) > s->high : s->busy);
    s->waiting += (unsigned)must;
    rc = s->werr;
    gr__spin_unlock(&s->lock);
    if (!must)
        return rc;
    rc = wait_until(s, self, kind, 1);
    gr__spin_lock(&s->lock);
    s->waiting--;
    if (rc == 0)
        rc = s->werr;
    gr__spin_unlock(&s->lock);
    return rc;
}

int gr_stream_drain(gr_stream *s)
{
    return s ? wait_writes(s, WAIT_DRAIN) : -EINVAL;
}

int gr_stream_flush(gr_stream *s)
{
    return s ? wait_writes(s, WAIT_FLUSH) : -EINVAL;
}

size_t gr_stream_write_buffered(gr_stream *s)
{
    if (!s)
        return 0;
    gr__spin_lock(&s->lock);
    size_t n = queued(s);
    gr__spin_unlock(&s->lock);
    return n;
}

/* Locked: queue n bytes; *start set when the caller must submit a send. */
static int enqueue(gr_stream *s, const void *buf, size_t n, struct gr__worker *w, int *start)
{
    int rc = s->werr ? s->werr : s->wshut ? -EPIPE : 0;
    if (rc < 0 || n == 0)
        return rc;
    if (s->busy) {
        rc = reserve(&s->pend, &s->pend_cap, s->pend_len, n);
        if (rc == 0) {
            memcpy(s->pend + s->pend_len, buf, n);
            s->pend_len += n;
        }
        return rc;
    }
    /* Nothing in flight, so nothing pending either (a finished send
     * always takes over what was pending). */
    rc = reserve(&s->fly, &s->fly_cap, 0, n);
    if (rc == 0) {
        memcpy(s->fly, buf, n);
        s->fly_off = 0;
        s->fly_len = n;
        s->busy = 1;
        s->fly_worker = w;
        *start = 1;
    }
    return rc;
}

static int write_buffered(gr_stream *s, const void *buf, size_t n)
{
    struct gr__worker *w = gr__worker_self();
    if (!w || !w->current)
        return -EPERM;
    int start = 0;
    gr__spin_lock(&s->lock);
    int rc = enqueue(s, buf, n, w, &start);
    gr__spin_unlock(&s->lock);
    if (start)
        submit_send(s, w);
    return rc;
}

/* ---- zero-copy writes ----------------------------------------------- */

/* A SEND_ZC posts its result, then (flag F_MORE on the result) a
 * notification once the kernel no longer needs the buffer. The task stays
 * parked until both have arrived. */
struct zc_op {
    struct gr__wait wait;
    struct gr__completion done;
    int res;
    int notif_due;
    int cancel_sent;
};

static void zc_complete(struct gr__worker *w, struct gr__completion *c, int32_t res,
                        uint32_t flags)
{
    (void)w;
    struct zc_op *op = GR_CONTAINER_OF(c, struct zc_op, done);
    if (flags & IORING_CQE_F_NOTIF) {
        gr__wake(&op->wait, 0);
        return;
    }
    op->res = res;
    op->notif_due = !!(flags & IORING_CQE_F_MORE);
    if (!op->notif_due)
        gr__wake(&op->wait, 0);
}

static void zc_interrupt(struct gr__wait *wait, int reason)
{
    (void)reason;
    struct zc_op *op = GR_CONTAINER_OF(wait, struct zc_op, wait);
    if (op->cancel_sent)
        return;
    op->cancel_sent = 1;
    gr__remote_cancel_local(gr__worker_self(), &op->done);
}

/* Send buf straight from the caller's memory. Returns bytes sent or an
 * error; an interruption cancels the send (what went out is counted). */
static ssize_t send_zc(gr_stream *s, const void *buf, size_t n)
{
    struct gr__task *self;
    int rc = gr__blocking_check(&self);
    if (rc < 0)
        return rc;
    struct zc_op op = {.done.fn = zc_complete};
    /* The SQE before the record is published (gr__worker_sqe may reap). */
    struct io_uring_sqe *sqe = gr__worker_sqe(gr__worker_self());
    gr__wait_prepare(&op.wait, self);
    io_uring_prep_send_zc(sqe, s->fd, buf, clamp_len(n), MSG_NOSIGNAL | MSG_WAITALL, 0);
    io_uring_sqe_set_data(sqe, &op.done);
    gr__park(&op.wait, "stream write zc", zc_interrupt, GR_NO_DEADLINE);
    return op.res;
}

/* ---- transfers by the writing task itself ------------------------------
 * A direct send(2) and a zero-copy send move the caller's bytes without
 * going through the buffers. They may only run when nothing is queued
 * (ordering), so the task first claims the send path: `busy` with an empty
 * fly buffer; other writers meanwhile append to `pend`, as behind any send
 * in flight. Releasing it queues what the transfer did not take and starts
 * whatever the other writers queued. */

/* Locked. 1: claimed; 0: a send is in flight (use the buffers); < 0: the
 * stream's send error or -EPIPE. */
static int claim_send(gr_stream *s, struct gr__worker *w)
{
    int rc = s->werr ? s->werr : s->wshut ? -EPIPE : 0;
    if (rc < 0 || s->busy)
        return rc;
    s->busy = 1;
    s->fly_off = s->fly_len = 0;
    s->fly_worker = w;
    return 1;
}

/* `done` of the n bytes at buf went out; `result` is the transfer's
 * result (an error is kept if it describes the connection). */
static int release_send(gr_stream *s, const char *buf, size_t done, size_t n, ssize_t result)
{
    struct gr__worker *w = gr__worker_self();
    int start = 0;
    gr__spin_lock(&s->lock);
    if (sticky_error((int)result) && !s->werr)
        s->werr = (int)result;
    s->busy = 0;
    int rc = s->werr;
    if (rc < 0)
        s->pend_len = 0; /* nothing more can be sent */
    else if (done < n)
        rc = enqueue(s, buf + done, n - done, w, &start);
    else if ((start = next_send(s, w)))
        s->busy = 1;
    struct wwaiter *wake = collect_ready(s);
    gr__spin_unlock(&s->lock);
    if (start)
        submit_send(s, w);
    wake_list(wake);
    return rc;
}

typedef ssize_t (*direct_fn)(gr_stream *s, const void *buf, size_t n);

/* Claim, transfer with fn, release; the buffered path when a send is in
 * flight already. */
static int write_claimed(gr_stream *s, const void *buf, size_t n, direct_fn fn)
{
    struct gr__worker *w = gr__worker_self();
    if (!w || !w->current)
        return -EPERM;
    gr__spin_lock(&s->lock);
    int claimed = claim_send(s, w);
    gr__spin_unlock(&s->lock);
    if (claimed <= 0)
        return claimed < 0 ? claimed : write_buffered(s, buf, n);
    ssize_t sent = fn(s, buf, n);
    return release_send(s, buf, sent > 0 ? (size_t)sent : 0, n, sent);
}

/* A speculative send(MSG_DONTWAIT): on loopback and on an uncongested
 * connection the socket takes everything, and the write costs one system
 * call instead of a copy, an SQE and a CQE (docs/net.md has the numbers);
 * whatever it does not take (EAGAIN: the socket buffer is full) goes to
 * the ring as usual. Never waits. */
static ssize_t send_direct(gr_stream *s, const void *buf, size_t n)
{
    ssize_t sent = gr__sys(SYS_sendto, s->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL, 0, 0);
    return sent == -EAGAIN || sent == -EINTR ? 0 : sent;
}

int gr_stream_write(gr_stream *s, const void *buf, size_t n)
{
    if (!s || (!buf && n))
        return -EINVAL;
    if (n == 0)
        return write_buffered(s, buf, 0); /* reports the stream's state */
    if (s->zc_min && n >= s->zc_min && s->is_sock)
        return write_claimed(s, buf, n, send_zc);
    if (s->direct)
        return write_claimed(s, buf, n, send_direct);
    return write_buffered(s, buf, n);
}

int gr_stream_write_eof(gr_stream *s)
{
    if (!s)
        return -EINVAL;
    if (!s->is_sock)
        return -EOPNOTSUPP; /* a pipe cannot be half-closed */
    int rc = gr_stream_flush(s);
    if (rc < 0)
        return rc;
    gr__spin_lock(&s->lock);
    int first = !s->wshut;
    s->wshut = 1;
    gr__spin_unlock(&s->lock);
    return first ? gr_shutdown(s->fd, SHUT_WR) : 0;
}

/* =====================================================================
 * Closing
 * ===================================================================== */

/* On fly_worker: cancel the send if it is still in flight there. */
static void cancel_on_owner(struct gr__worker *w, struct gr__remote *r)
{
    gr_stream *s = GR_CONTAINER_OF(r, gr_stream, cancel_req);
    /* The SQE first: gr__worker_sqe may reap completions (of this stream
     * too), which take the lock. */
    struct io_uring_sqe *sqe = gr__worker_sqe(w);
    gr__spin_lock(&s->lock);
    int live = s->busy && s->fly_worker == w;
    s->cancel_pending = 0;
    struct wwaiter *wake = collect_ready(s);
    gr__spin_unlock(&s->lock);
    /* While the send is live, s stays allocated (close waits for it);
     * otherwise only its address is used, to fill in a no-op. */
    if (live)
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&s->send_done, 0);
    else
        io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    wake_list(wake);
}

/* Stop sending: drop what is queued, cancel the send in flight and wait
 * until its completion and the cancel request have run. Not
 * interruptible: it is what makes freeing safe, and it is quick. */
static void stop_sending(gr_stream *s, struct gr__task *self)
{
    gr__spin_lock(&s->lock);
    s->dropping = 1;
    s->wshut = 1;
    s->pend_len = 0;
    int cancel = s->busy;
    s->cancel_pending = cancel;
    struct gr__worker *owner = s->fly_worker;
    gr__spin_unlock(&s->lock);
    if (cancel)
        gr__remote_run(&s->cancel_req, owner, cancel_on_owner);
    wait_until(s, self, WAIT_IDLE, 0);
}

/* On ms_worker: cancel the multishot recv if it is still armed there. */
static void rcancel_on_owner(struct gr__worker *w, struct gr__remote *r)
{
    gr_stream *s = GR_CONTAINER_OF(r, gr_stream, rcancel_req);
    struct io_uring_sqe *sqe = gr__worker_sqe(w); /* before the lock: may reap */
    gr__spin_lock(&s->rlock);
    int live = s->ms_armed && s->ms_worker == w;
    s->rcancel_pending = 0;
    struct gr__wait *closer = NULL;
    if (!s->ms_armed) {
        closer = s->rcloser;
        s->rcloser = NULL;
    }
    gr__spin_unlock(&s->rlock);
    /* While armed, s stays allocated (close waits for the last CQE). */
    if (live)
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&s->recv_done, 0);
    else
        io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    if (closer)
        gr__wake(closer, 0);
}

/* End the multishot recv and wait for its last CQE. Not interruptible.
 * The waiter registers only after the request went out: on this worker
 * the request runs at once, and must not wake a record not yet parked. */
static void stop_receiving(gr_stream *s, struct gr__task *self)
{
    gr__spin_lock(&s->rlock);
    int cancel = s->ms_armed && !s->rcancel_pending;
    s->rcancel_pending |= cancel;
    struct gr__worker *owner = s->ms_worker;
    gr__spin_unlock(&s->rlock);
    if (cancel)
        gr__remote_run(&s->rcancel_req, owner, rcancel_on_owner);
    struct gr__wait w;
    gr__wait_prepare(&w, self);
    gr__spin_lock(&s->rlock);
    int must_wait = s->ms_armed || s->rcancel_pending;
    if (must_wait)
        s->rcloser = &w;
    gr__spin_unlock(&s->rlock);
    if (must_wait)
        gr__park(&w, "stream close", ignore_interrupt, GR_NO_DEADLINE);
}

static int finish(gr_stream *s, struct gr__task *self, int rc)
{
    stop_receiving(s, self);
    stop_sending(s, self);
    int crc = gr_close(s->fd);
    free(s->rbuf);
    free(s->pend);
    free(s->fly);
    free(s);
    return rc < 0 ? rc : crc;
}

/* A task still inside a read, drain or flush of s: closing would free the
 * stream under it. */
static int in_use(gr_stream *s)
{
    /* relaxed: a misuse check; the contract is that the caller has
     * finished (joined) the other users. */
    if (atomic_load_explicit(&s->reading, memory_order_relaxed))
        return 1;
    gr__spin_lock(&s->lock);
    int busy = s->waiting > 0;
    gr__spin_unlock(&s->lock);
    return busy;
}

int gr_stream_close(gr_stream *s)
{
    if (!s)
        return -EINVAL;
    struct gr__task *self = gr__current_task();
    if (!self)
        return -EPERM;
    if (in_use(s))
        return -EBUSY;
    int rc = gr_stream_flush(s);
    return finish(s, self, rc);
}

int gr_stream_abort(gr_stream *s)
{
    if (!s)
        return -EINVAL;
    struct gr__task *self = gr__current_task();
    if (!self)
        return -EPERM;
    if (in_use(s))
        return -EBUSY;
    return finish(s, self, 0);
}
