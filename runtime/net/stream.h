/* Streams (internal part): what the server needs beyond the public API. */
#ifndef GR_NET_STREAM_H
#define GR_NET_STREAM_H

#include "greenring.h"

/* gr_stream_open for a socket the caller knows to be TCP (tcp = 1) or
 * another kind of stream socket (tcp = 0): skips the probing system
 * calls. */
int gr__stream_open_socket(gr_stream **out, int fd, int tcp, const gr_stream_opts *opts);

/* An opaque pointer for the stream's owner (the server of a connection). */
void gr__stream_set_owner(gr_stream *s, void *owner);
void *gr__stream_owner(gr_stream *s);

/* Check options: 0 or -EINVAL. */
int gr__stream_opts_check(const gr_stream_opts *opts);

#endif
