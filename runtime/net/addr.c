/* Socket addresses: numeric parsing and formatting. Never blocks. */
#include "net/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

/* "[v6]" or "v6%scope" or "v4" into out; 1 if numeric, 0 if not. */
static int parse_ip(gr_addr *out, const char *ip, uint16_t port)
{
    char tmp[INET6_ADDRSTRLEN + IF_NAMESIZE + 4];
    size_t len = strlen(ip);
    if (len >= sizeof(tmp))
        return 0;
    if (ip[0] == '[' && len > 2 && ip[len - 1] == ']') {
        memcpy(tmp, ip + 1, len - 2);
        tmp[len - 2] = '\0';
    } else {
        memcpy(tmp, ip, len + 1);
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, tmp, &out->u.in4.sin_addr) == 1) {
        out->u.in4.sin_family = AF_INET;
        out->u.in4.sin_port = htons(port);
        out->len = sizeof(out->u.in4);
        return 1;
    }
    char *scope = strchr(tmp, '%');
    if (scope)
        *scope++ = '\0';
    if (inet_pton(AF_INET6, tmp, &out->u.in6.sin6_addr) != 1)
        return 0;
    if (scope) {
        unsigned idx = if_nametoindex(scope);
        if (!idx)
            return 0;
        out->u.in6.sin6_scope_id = idx;
    }
    out->u.in6.sin6_family = AF_INET6;
    out->u.in6.sin6_port = htons(port);
    out->len = sizeof(out->u.in6);
    return 1;
}

int gr__addr_numeric(gr_addr *out, const char *host, uint16_t port)
{
    if (!out)
        return -EINVAL;
    if (!host || !host[0])
        return 0;
    return parse_ip(out, host, port);
}

int gr_addr_ip(gr_addr *out, const char *ip, uint16_t port)
{
    if (!out || !ip)
        return -EINVAL;
    return parse_ip(out, ip, port) ? 0 : -EINVAL;
}

int gr_addr_unix(gr_addr *out, const char *path)
{
    if (!out || !path || !path[0])
        return -EINVAL;
    size_t len = strlen(path);
    memset(out, 0, sizeof(*out));
    if (len >= sizeof(out->u.un.sun_path))
        return -ENAMETOOLONG;
    out->u.un.sun_family = AF_UNIX;
    memcpy(out->u.un.sun_path, path, len);
    if (path[0] == '@') {
        /* Abstract namespace: a leading NUL and no terminator; the length
         * says where the name ends. */
        out->u.un.sun_path[0] = '\0';
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    } else {
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    }
    return 0;
}

static int format_unix(const gr_addr *a, char *buf, size_t size)
{
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t n = a->len > off ? a->len - off : 0;
    const char *p = a->u.un.sun_path;
    if (n == 0)
        return snprintf(buf, size, "unix:");
    if (p[0] == '\0') /* abstract */
        return snprintf(buf, size, "unix:@%.*s", (int)(n - 1), p + 1);
    return snprintf(buf, size, "unix:%.*s", (int)strnlen(p, n), p);
}

int gr_addr_format(const gr_addr *a, char *buf, size_t size)
{
    if (!a || !buf || size == 0)
        return -EINVAL;
    char ip[INET6_ADDRSTRLEN], scope[IF_NAMESIZE + 1] = "";
    int n;
    switch (a->u.sa.sa_family) {
    case AF_INET:
        inet_ntop(AF_INET, &a->u.in4.sin_addr, ip, sizeof(ip));
        n = snprintf(buf, size, "%s:%u", ip, ntohs(a->u.in4.sin_port));
        break;
    case AF_INET6:
        inet_ntop(AF_INET6, &a->u.in6.sin6_addr, ip, sizeof(ip));
        if (a->u.in6.sin6_scope_id && if_indextoname(a->u.in6.sin6_scope_id, scope + 1))
            scope[0] = '%';
        n = snprintf(buf, size, "[%s%s]:%u", ip, scope, ntohs(a->u.in6.sin6_port));
        break;
    case AF_UNIX:
        n = format_unix(a, buf, size);
        break;
    default:
        buf[0] = '\0';
        return -EINVAL;
    }
    return (size_t)n >= size ? -ENOSPC : n;
}

int gr_addr_port(const gr_addr *a)
{
    if (!a)
        return -EINVAL;
    switch (a->u.sa.sa_family) {
    case AF_INET:
        return ntohs(a->u.in4.sin_port);
    case AF_INET6:
        return ntohs(a->u.in6.sin6_port);
    default:
        return -EAFNOSUPPORT;
    }
}
