/* Name resolution off the workers (getaddrinfo blocks). */
#ifndef GR_NET_RESOLVE_H
#define GR_NET_RESOLVE_H

#include "greenring.h"

/* gr_resolve with AI_PASSIVE when `passive` (wildcard for NULL hosts). */
int gr__resolve(const char *host, uint16_t port, int socktype, int passive, gr_addr *out,
                size_t n);

#endif
