/* echo_liburing: baseline echo server on raw liburing, the floor for the
 * greenring echo server. One thread per core (or -t THREADS), each with its
 * own ring (SINGLE_ISSUER | DEFER_TASKRUN), its own SO_REUSEPORT listener
 * and its own provided-buffer ring:
 *   - multishot accept on the listener;
 *   - multishot recv with buffer selection on every connection;
 *   - each received buffer is sent straight back (no copy) with
 *     MSG_WAITALL, one send in flight per connection (later buffers queue
 *     behind it, keeping the byte order), and goes back to the buffer ring
 *     when its send completes;
 *   - back-pressure: a connection with more than Q_HIGH buffers queued
 *     (its peer does not read) has its recv cancelled until the queue is
 *     down to Q_LOW; connections whose recv stopped for lack of buffers
 *     (ENOBUFS) are re-armed when buffers come back;
 *   - one io_uring_submit_and_wait per loop round for all SQEs.
 *
 *   echo_liburing [-H HOST] [-p PORT] [-t THREADS]
 *
 * Binds loopback only (127.0.0.1 unless -H gives another IPv4 loopback
 * address). Runs until SIGINT/SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define NBUFS 4096u /* per thread, a power of two */
#define BUFSZ 4096u
#define BGID 1
#define MAXFD 65536
#define Q_HIGH 256u /* buffers queued on one connection: stop its recv */
#define Q_LOW 32u   /* ... until it is down to this */
#define NONE 0xffffu

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CANCEL };

struct conn {
    int fd;
    int recv_armed;
    int paused;   /* recv cancelled for back-pressure */
    int starved;  /* recv stopped on ENOBUFS: on the starved list */
    int sending;  /* a send is in flight */
    int closing;  /* EOF or error seen: close once the send is done */
    unsigned q_head, q_tail, q_count; /* queued buffers (linked by next[]) */
    int next_starved;
};

struct thread {
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    char *bufs;
    uint16_t next[NBUFS];     /* queue links, by buffer id */
    uint32_t len[NBUFS];      /* bytes in each queued buffer */
    int starved;              /* list of connections waiting for buffers */
    int lfd;
    struct conn *conns;       /* indexed by fd */
};

static struct sockaddr_in listen_addr;

static void die(const char *what, int err)
{
    fprintf(stderr, "echo_liburing: %s: %s\n", what, strerror(err));
    exit(1);
}

static uint64_t tag(int op, int fd, unsigned bid)
{
    return (uint64_t)op << 56 | (uint64_t)bid << 32 | (uint32_t)fd;
}

static struct io_uring_sqe *sqe_get(struct thread *t)
{
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&t->ring)))
        io_uring_submit(&t->ring);
    return sqe;
}

static void buf_return(struct thread *t, unsigned bid)
{
    io_uring_buf_ring_add(t->br, t->bufs + (size_t)bid * BUFSZ, BUFSZ, (unsigned short)bid,
                          io_uring_buf_ring_mask(NBUFS), 0);
    io_uring_buf_ring_advance(t->br, 1);
}

static void arm_accept(struct thread *t)
{
    struct io_uring_sqe *sqe = sqe_get(t);
    io_uring_prep_multishot_accept(sqe, t->lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tag(OP_ACCEPT, t->lfd, 0));
}

static void arm_recv(struct thread *t, struct conn *c)
{
    struct io_uring_sqe *sqe = sqe_get(t);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, tag(OP_RECV, c->fd, 0));
    c->recv_armed = 1;
}

static void send_buf(struct thread *t, struct conn *c, unsigned bid)
{
    struct io_uring_sqe *sqe = sqe_get(t);
    io_uring_prep_send(sqe, c->fd, t->bufs + (size_t)bid * BUFSZ, t->len[bid],
                       MSG_WAITALL | MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(OP_SEND, c->fd, bid));
    c->sending = 1;
}

static void queue_push(struct thread *t, struct conn *c, unsigned bid)
{
    t->next[bid] = NONE;
    if (c->q_count++)
        t->next[c->q_tail] = (uint16_t)bid;
    else
        c->q_head = bid;
    c->q_tail = bid;
}

static unsigned queue_pop(struct thread *t, struct conn *c)
{
    unsigned bid = c->q_head;
    c->q_head = t->next[bid];
    c->q_count--;
    return bid;
}

static void cancel_recv(struct thread *t, struct conn *c)
{
    struct io_uring_sqe *sqe = sqe_get(t);
    io_uring_prep_cancel64(sqe, tag(OP_RECV, c->fd, 0), 0);
    io_uring_sqe_set_data64(sqe, tag(OP_CANCEL, c->fd, 0));
    c->paused = 1;
}

static void maybe_close(struct thread *t, struct conn *c)
{
    if (!c->closing || c->sending || c->recv_armed || c->starved)
        return;
    while (c->q_count)
        buf_return(t, queue_pop(t, c));
    close(c->fd);
    c->fd = -1;
}

/* Re-arm the receive of connections that ran out of buffers. */
static void feed_starved(struct thread *t)
{
    while (t->starved >= 0) {
        struct conn *c = &t->conns[t->starved];
        t->starved = c->next_starved;
        c->starved = 0;
        if (!c->closing && !c->recv_armed)
            arm_recv(t, c);
        maybe_close(t, c);
    }
}

static void on_accept(struct thread *t, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE))
        arm_accept(t);
    if (res < 0)
        return;
    if (res >= MAXFD) {
        close(res);
        return;
    }
    int one = 1;
    setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct conn *c = &t->conns[res];
    memset(c, 0, sizeof(*c));
    c->fd = res;
    arm_recv(t, c);
}

static void on_recv(struct thread *t, struct conn *c, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE))
        c->recv_armed = 0;
    if (res > 0) {
        unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
        t->len[bid] = (uint32_t)res;
        if (!c->sending)
            send_buf(t, c, bid);
        else
            queue_push(t, c, bid);
        if (c->q_count > Q_HIGH && c->recv_armed && !c->paused)
            cancel_recv(t, c);
    } else if (res == -ENOBUFS) {
        if (!c->starved) {
            c->starved = 1;
            c->next_starved = t->starved;
            t->starved = c->fd;
        }
    } else if (res != -ECANCELED) {
        c->closing = 1; /* EOF or error */
    }
    if (!c->recv_armed && !c->closing && !c->paused && !c->starved)
        arm_recv(t, c);
    maybe_close(t, c);
}

static void on_send(struct thread *t, struct conn *c, unsigned bid, int res)
{
    c->sending = 0;
    buf_return(t, bid);
    if (res < 0)
        c->closing = 1;
    if (!c->closing && c->q_count)
        send_buf(t, c, queue_pop(t, c));
    if (c->paused && !c->recv_armed && c->q_count <= Q_LOW) {
        c->paused = 0;
        if (!c->closing && !c->starved)
            arm_recv(t, c);
    }
    maybe_close(t, c);
    feed_starved(t);
}

static void setup_buffers(struct thread *t)
{
    size_t ring_sz = NBUFS * sizeof(struct io_uring_buf);
    t->br = mmap(NULL, ring_sz, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    t->bufs = malloc((size_t)NBUFS * BUFSZ);
    if (t->br == MAP_FAILED || !t->bufs)
        die("buffers", ENOMEM);
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)t->br, .ring_entries = NBUFS,
                                   .bgid = BGID};
    int rc = io_uring_register_buf_ring(&t->ring, &reg, 0);
    if (rc < 0)
        die("io_uring_register_buf_ring", -rc);
    io_uring_buf_ring_init(t->br);
    for (unsigned i = 0; i < NBUFS; i++)
        io_uring_buf_ring_add(t->br, t->bufs + (size_t)i * BUFSZ, BUFSZ, (unsigned short)i,
                              io_uring_buf_ring_mask(NBUFS), (int)i);
    io_uring_buf_ring_advance(t->br, NBUFS);
}

static int make_listener(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) < 0)
        die("bind", errno);
    if (listen(fd, SOMAXCONN) < 0)
        die("listen", errno);
    return fd;
}

static void *worker(void *arg)
{
    (void)arg;
    static __thread struct thread t;
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                         IORING_SETUP_CQSIZE,
                                .cq_entries = 16384};
    int rc = io_uring_queue_init_params(2048, &t.ring, &p);
    if (rc < 0)
        die("io_uring_queue_init", -rc);
    setup_buffers(&t);
    t.conns = calloc(MAXFD, sizeof(*t.conns));
    t.starved = -1;
    t.lfd = make_listener();
    arm_accept(&t);
    for (;;) {
        io_uring_submit_and_wait(&t.ring, 1);
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&t.ring, head, cqe)
        {
            uint64_t ud = cqe->user_data;
            int op = (int)(ud >> 56), fd = (int)(uint32_t)ud;
            unsigned bid = (unsigned)(ud >> 32) & 0xffff;
            if (op == OP_ACCEPT)
                on_accept(&t, cqe->res, cqe->flags);
            else if (op == OP_RECV)
                on_recv(&t, &t.conns[fd], cqe->res, cqe->flags);
            else if (op == OP_SEND)
                on_send(&t, &t.conns[fd], bid, cqe->res);
            /* OP_CANCEL: its result does not matter (the recv's own
             * final CQE says when it has stopped). */
            n++;
        }
        io_uring_cq_advance(&t.ring, n);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 7000, threads = (int)sysconf(_SC_NPROCESSORS_ONLN), opt;
    while ((opt = getopt(argc, argv, "H:p:t:")) != -1) {
        switch (opt) {
        case 'H': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: echo_liburing [-H HOST] [-p PORT] [-t THREADS]\n");
            return 2;
        }
    }
    listen_addr.sin_family = AF_INET;
    listen_addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &listen_addr.sin_addr) != 1 ||
        (ntohl(listen_addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "echo_liburing: %s is not an IPv4 loopback address\n", host);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    printf("listening on %s:%d (%d threads)\n", host, port, threads);
    fflush(stdout);
    pthread_t th;
    for (int i = 1; i < threads; i++)
        pthread_create(&th, NULL, worker, NULL);
    worker(NULL);
    return 0;
}
