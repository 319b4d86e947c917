/* Sockets (internal part). */
#ifndef GR_NET_SOCKET_H
#define GR_NET_SOCKET_H

#include "greenring.h"

/* socket(2) with SOCK_CLOEXEC: the fd or -errno. */
int gr__sock_new(int family, int type);
/* close(2) for fds that were never handed to io_uring (error paths). */
void gr__sock_close_now(int fd);
/* 1 if fd is a socket of type SOCK_STREAM in AF_INET/AF_INET6, 0 if not. */
int gr__sock_is_tcp(int fd);
/* 1 if fd is a socket, 0 if not, -EBADF. */
int gr__sock_is_socket(int fd);
/* The socket type (SOCK_STREAM...), 0 for an fd that is not a socket,
 * -EBADF. */
int gr__sock_type(int fd);

struct gr__io_op;
struct io_uring_sqe;
/* gr__io_wait for socket operations. An operation the kernel ran on an
 * io-wq thread (a blocking Unix connect...) ends with -EINTR, not
 * -ECANCELED, when it is cancelled: that also reports the interrupt's
 * reason (-ECANCELED or -ETIMEDOUT). */
int gr__net_wait(struct gr__io_op *io, struct io_uring_sqe *sqe, const char *reason);

#endif
