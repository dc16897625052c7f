#include "config.h"

#include "route.h"

#include <string.h>
#include <strings.h>

/* host without the port: "[v6]:443" -> "[v6]", "a.b:80" -> "a.b" */
static size_t host_only(const char *h, size_t n)
{
    if (n > 0 && h[0] == '[') {
        const char *e = memchr(h, ']', n);
        return e ? (size_t)(e - h) + 1 : n;
    }
    const char *c = memchr(h, ':', n);
    return c ? (size_t)(c - h) : n;
}

const struct conf_distribution *route_find(const struct conf *c, const char *host,
                                           size_t host_len)
{
    const struct conf_distribution *best = NULL, *any = NULL;
    size_t best_len = 0;
    size_t n = host ? host_only(host, host_len) : 0;

    /* a trailing dot names the same host (RFC 3986 3.2.2) */
    if (n > 0 && host[n - 1] == '.')
        n--;
    for (size_t i = 0; i < c->ndists; i++) {
        const struct conf_distribution *d = &c->dists[i];
        for (size_t j = 0; j < d->nhosts; j++) {
            const char *p = d->hosts[j];
            size_t pl = strlen(p);
            if (pl == 1 && p[0] == '*') {
                if (any == NULL)
                    any = d;
            } else if (pl > 2 && p[0] == '*' && p[1] == '.') {
                /* "*.example.com" matches "a.example.com", not "example.com" */
                size_t sl = pl - 1; /* ".example.com" */
                if (n > sl && strncasecmp(host + n - sl, p + 1, sl) == 0 && sl > best_len) {
                    best = d;
                    best_len = sl;
                }
            } else if (pl == n && n > 0 && strncasecmp(host, p, n) == 0) {
                return d;
            }
        }
    }
    return best ? best : any;
}
