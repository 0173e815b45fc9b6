/*
 * proxy.c - who is asking: the client address of a request.
 *
 * Without --trusted-proxy it is the TCP peer.  Behind a reverse proxy
 * every peer is the proxy, so when the peer is one of the --trusted-proxy
 * addresses or networks, the client is taken from X-Forwarded-For: its
 * hops are read from the right (each proxy appends the peer it saw), the
 * trusted ones skipped, and the first hop that is not trusted is the
 * client.  Everything to its left came from the client and is not
 * believed.  When every hop is trusted, the left-most one is the client
 * (each was appended by a trusted proxy).  A missing header, or a hop that
 * is not an address before the client is found, leaves the peer.  From a
 * peer that is not trusted, X-Forwarded-For is never read.
 *
 * Addresses are kept as 16 bytes, IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d), so one comparison serves both families, and an IPv4
 * peer of a dual-stack socket is the same client as over IPv4.
 */
#include "server.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const uint8_t V4_MAPPED[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

void ip_from_v4(struct ip_addr *out, const void *v4)
{
    memcpy(out->b, V4_MAPPED, sizeof(V4_MAPPED));
    memcpy(out->b + 12, v4, 4);
}

bool ip_parse(const char *s, size_t n, struct ip_addr *out)
{
    char buf[INET6_ADDRSTRLEN];
    struct in_addr v4;

    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, &v4) == 1) {
        ip_from_v4(out, &v4);
        return true;
    }
    return inet_pton(AF_INET6, buf, out->b) == 1;
}

static bool ip_is_v4(const struct ip_addr *a)
{
    return memcmp(a->b, V4_MAPPED, sizeof(V4_MAPPED)) == 0;
}

void ip_text(const struct ip_addr *a, char out[IP_TEXT_MAX])
{
    if (!(ip_is_v4(a) ? inet_ntop(AF_INET, a->b + 12, out, IP_TEXT_MAX)
                      : inet_ntop(AF_INET6, a->b, out, IP_TEXT_MAX)))
        snprintf(out, IP_TEXT_MAX, "?");
}

bool ip_equal(const struct ip_addr *a, const struct ip_addr *b)
{
    return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

static bool ip_in(const struct ip_net *net, const struct ip_addr *a)
{
    unsigned whole = net->bits / 8, rest = net->bits % 8;

    if (memcmp(net->addr.b, a->b, whole) != 0)
        return false;
    return rest == 0 ||
           ((net->addr.b[whole] ^ a->b[whole]) & (0xff00u >> rest) & 0xff) == 0;
}

/* One entry of the list: an address, a network (ADDR/BITS), or
 * "loopback" (127.0.0.0/8 and ::1). */
static bool parse_entry(const char *s, size_t n, struct ip_net *nets,
                        size_t *count)
{
    static const struct {
        const char *addr;
        unsigned bits;
    } loopback[] = { { "127.0.0.0", 104 }, { "::1", 128 } };
    const char *slash = memchr(s, '/', n);
    struct ip_net net;

    if (n == 8 && strncasecmp(s, "loopback", 8) == 0) {
        if (*count + 2 > TRUSTED_PROXY_MAX)
            return false;
        for (size_t i = 0; i < 2; i++) {
            ip_parse(loopback[i].addr, strlen(loopback[i].addr),
                     &nets[*count].addr);
            nets[(*count)++].bits = loopback[i].bits;
        }
        return true;
    }
    if (*count == TRUSTED_PROXY_MAX ||
        !ip_parse(s, slash ? (size_t)(slash - s) : n, &net.addr))
        return false;
    net.bits = 128;
    if (slash) {
        const char *b = slash + 1, *end = s + n;
        unsigned v = 0, max = ip_is_v4(&net.addr) ? 32 : 128;

        if (b == end || end - b > 3)
            return false;
        for (; b < end; b++) {
            if (*b < '0' || *b > '9')
                return false;
            v = v * 10 + (unsigned)(*b - '0');
        }
        if (v > max)
            return false;
        net.bits = ip_is_v4(&net.addr) ? 96 + v : v;
    }
    /* Host bits are ignored: 10.1.2.3/8 is 10.0.0.0/8. */
    for (unsigned i = net.bits; i < 128; i++)
        net.addr.b[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
    nets[(*count)++] = net;
    return true;
}

/* [*a, *e) without blanks at either end. */
static void trim(const char **a, const char **e)
{
    while (*a < *e && (**a == ' ' || **a == '\t'))
        (*a)++;
    while (*e > *a && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
}

bool trusted_proxy_parse(const char *list, struct ip_net nets[TRUSTED_PROXY_MAX],
                         size_t *count)
{
    for (const char *s = list;;) {
        size_t n = strcspn(s, ",");
        const char *a = s, *e = s + n;

        trim(&a, &e);
        if (!parse_entry(a, (size_t)(e - a), nets, count))
            return false;
        if (!s[n])
            return true;
        s += n + 1;
    }
}

bool trusted_proxy(const struct server *srv, const struct ip_addr *a)
{
    for (size_t i = 0; i < srv->ntrusted; i++)
        if (ip_in(&srv->trusted[i], a))
            return true;
    return false;
}

/* The client by the X-Forwarded-For headers of a request from a trusted
 * proxy, taken as one list (the last header first, each from its right
 * end): 1 found, 0 no header, -1 a hop that is not an address. */
static int forwarded_for(const struct server *srv,
                         const struct mg_request_info *ri, struct ip_addr *out)
{
    int found = 0;

    for (int h = ri->num_headers - 1; h >= 0; h--) {
        const char *v = ri->http_headers[h].value, *end;

        if (strcasecmp(ri->http_headers[h].name, "X-Forwarded-For") != 0)
            continue;
        end = v + strlen(v);
        for (;;) {
            const char *start = end, *a, *e = end;

            while (start > v && start[-1] != ',')
                start--;
            a = start;
            trim(&a, &e);
            if (!ip_parse(a, (size_t)(e - a), out))
                return -1;
            found = 1;
            if (!trusted_proxy(srv, out))
                return 1;       /* the right-most hop not trusted */
            if (start == v)
                break;
            end = start - 1;
        }
    }
    return found;               /* every hop trusted: the left-most */
}

bool client_address(const struct server *srv, const struct mg_request_info *ri,
                    char text[IP_TEXT_MAX], struct ip_addr *ip)
{
    struct ip_addr peer;

    if (!ip_parse(ri->remote_addr, strlen(ri->remote_addr), &peer)) {
        memset(ip, 0, sizeof(*ip));
        snprintf(text, IP_TEXT_MAX, "%s", ri->remote_addr);
        return false;
    }
    if (!trusted_proxy(srv, &peer)) {
        *ip = peer;
        ip_text(ip, text);
        return false;
    }
    if (forwarded_for(srv, ri, ip) <= 0)
        *ip = peer;
    ip_text(ip, text);
    return true;
}
