/* echo_epoll: baseline echo server, edge-triggered epoll, one thread per
 * core (or -t THREADS), each with its own SO_REUSEPORT listener and epoll
 * set. Hand-written C, no runtime: what a careful C programmer writes.
 *
 *   echo_epoll [-H HOST] [-p PORT] [-t THREADS]
 *
 * Binds loopback only (127.0.0.1 unless -H gives another loopback
 * address). Runs until SIGINT/SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 16384

struct conn {
    int fd;
    size_t out_off, out_len; /* echo data the socket did not take yet */
    char buf[BUF];
};

static struct sockaddr_in listen_addr;

static void die(const char *what)
{
    fprintf(stderr, "echo_epoll: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int make_listener(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) < 0)
        die("bind");
    if (listen(fd, SOMAXCONN) < 0)
        die("listen");
    return fd;
}

static void conn_close(struct conn *c)
{
    close(c->fd);
    free(c);
}

/* Write what is pending. 0: all written, 1: the socket is full, -1: error. */
static int flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->buf + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 1;
        if (n < 0)
            return -1;
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return 0;
}

/* Edge-triggered: read until EAGAIN, echoing each chunk; stop reading
 * while the socket will not take the echo (EPOLLOUT resumes). */
static int on_event(struct conn *c)
{
    int rc = flush_out(c);
    if (rc)
        return rc < 0 ? -1 : 0;
    for (;;) {
        ssize_t n = recv(c->fd, c->buf, BUF, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0)
            return -1;
        c->out_len = (size_t)n;
        rc = flush_out(c);
        if (rc)
            return rc < 0 ? -1 : 0;
    }
}

static void accept_all(int ep, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            conn_close(c);
    }
}

static void *worker(void *arg)
{
    (void)arg;
    int lfd = make_listener();
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c)
                accept_all(ep, lfd);
            else if (on_event(c) < 0)
                conn_close(c);
        }
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
            fprintf(stderr, "usage: echo_epoll [-H HOST] [-p PORT] [-t THREADS]\n");
            return 2;
        }
    }
    listen_addr.sin_family = AF_INET;
    listen_addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &listen_addr.sin_addr) != 1 ||
        (ntohl(listen_addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "echo_epoll: %s is not an IPv4 loopback address\n", host);
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
