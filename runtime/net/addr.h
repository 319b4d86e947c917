/* Socket addresses: parsing, formatting, resolution (internal part). */
#ifndef GR_NET_ADDR_H
#define GR_NET_ADDR_H

#include "greenring.h"

/* Most addresses a resolution keeps (enough for dual-stack hosts with a
 * few addresses per family). */
#define GR__RESOLVE_MAX 16

/* 1 if host is a numeric IPv4/IPv6 address (out filled), 0 if it is a
 * name, NULL or "" (resolve it), -EINVAL for a NULL out. */
int gr__addr_numeric(gr_addr *out, const char *host, uint16_t port);

#endif
