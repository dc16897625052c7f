/*
 * burst.c - bounded load clients for the benchmark that wrk cannot do.
 *
 * Burst mode: open N connections, then send one GET on every one of them at
 * once and record, per request, the time to the first response byte and to
 * the last body byte (Content-Length reached or the peer closed).  Used for
 * cold-coalesce (200 clients, same cold object) and cold-range (one client,
 * one Range request).  Prints one JSON object on stdout.
 *
 *   burst -p PORT -u PATH [-c N] [-H "Name: value"]... [-t SECONDS]
 *
 * Raw mode: the physical limit of this machine's loopback, without HTTP:
 * one sender and one receiver thread per stream, for a bounded time.
 *
 *   burst -R SECONDS [-c STREAMS]
 *
 * Body bytes are discarded with recv(MSG_TRUNC) where the kernel supports it
 * (tcp(7)), so that the client costs the shared cores as little as possible.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS   20000
#define MAX_HDRS    8
#define HEAD_MAX    16384
#define SCRATCH     (1u << 20)

struct req {
    int fd;
    int connected;
    int sent;
    int done;
    int status;
    int head_done;
    size_t head_len;
    long long clen;             /* -1: until close */
    long long body;
    double t_send, t_first, t_last;
    char head[HEAD_MAX];
};

static double
now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int
connect_to(int port, int nonblock)
{
    struct sockaddr_in sin;
    int fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
        (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void __attribute__((noreturn))
usage(void)
{
    fprintf(stderr, "usage: burst -p PORT -u PATH [-c N] [-H HEADER]... "
        "[-t SECONDS]\n       burst -R SECONDS [-c STREAMS]\n");
    exit(2);
}

/* Parses the response head once it is complete; returns body bytes in it. */
static size_t
parse_head(struct req *r, size_t end)
{
    char *p, *line;

    r->head[end - 2] = '\0';
    r->head_done = 1;
    r->clen = -1;
    if (sscanf(r->head, "HTTP/%*d.%*d %d", &r->status) != 1)
        r->status = -1;
    for (line = strstr(r->head, "\r\n"); line != NULL;
        line = strstr(line + 2, "\r\n")) {
        p = line + 2;
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            r->clen = strtoll(p + 15, NULL, 10);
    }
    if (r->status == 204 || r->status == 304)
        r->clen = 0;
    return r->head_len - end;
}

static void
finish(struct req *r, double t, int *left)
{
    if (r->done)
        return;
    r->done = 1;
    r->t_last = t;
    close(r->fd);
    r->fd = -1;
    (*left)--;
}

static int
handle_read(struct req *r, char *scratch, int *left)
{
    ssize_t n;
    double t;
    int truncate_ok = 1;

    for (;;) {
        if (!r->head_done) {
            n = recv(r->fd, r->head + r->head_len,
                sizeof(r->head) - 1 - r->head_len, 0);
        } else if (truncate_ok) {
            n = recv(r->fd, NULL, 1u << 30, MSG_TRUNC | MSG_DONTWAIT);
            if (n < 0 && (errno == EINVAL || errno == EFAULT)) {
                truncate_ok = 0;
                continue;
            }
        } else
            n = recv(r->fd, scratch, SCRATCH, MSG_DONTWAIT);
        t = now_s();
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            finish(r, t, left);
            return -1;
        }
        if (n == 0) {
            finish(r, t, left);
            return 0;
        }
        if (r->t_first == 0)
            r->t_first = t;
        if (!r->head_done) {
            char *e;

            r->head_len += (size_t)n;
            r->head[r->head_len] = '\0';
            e = strstr(r->head, "\r\n\r\n");
            if (e != NULL)
                r->body += (long long)parse_head(r,
                    (size_t)(e - r->head) + 4);
            else if (r->head_len >= sizeof(r->head) - 1) {
                r->status = -2;
                finish(r, t, left);
                return -1;
            }
        } else
            r->body += n;
        if (r->head_done && r->clen >= 0 && r->body >= r->clen) {
            finish(r, t, left);
            return 0;
        }
    }
}

static int
run_burst(int port, const char *path, int n, const char **hdrs, int nhdrs,
    double timeout)
{
    struct req *reqs = calloc((size_t)n, sizeof(*reqs));
    char *scratch = malloc(SCRATCH);
    struct epoll_event ev, evs[256];
    char request[4096];
    size_t rlen;
    double t0, deadline, t_fire;
    int ep, i, k, left, pending, connected = 0;

    if (reqs == NULL || scratch == NULL)
        return 1;
    rlen = (size_t)snprintf(request, sizeof(request),
        "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        "User-Agent: s3edge-bench\r\n",
        path, port);
    for (i = 0; i < nhdrs; i++)
        rlen += (size_t)snprintf(request + rlen, sizeof(request) - rlen,
            "%s\r\n", hdrs[i]);
    rlen += (size_t)snprintf(request + rlen, sizeof(request) - rlen,
        "Connection: close\r\n\r\n");
    ep = epoll_create1(EPOLL_CLOEXEC);
    t0 = now_s();
    deadline = t0 + timeout;
    /* Phase 1: every connection established before anything is sent. */
    pending = 0;
    for (i = 0; i < n; i++) {
        reqs[i].fd = connect_to(port, 1);
        if (reqs[i].fd < 0) {
            reqs[i].done = 1;
            reqs[i].status = -3;
            continue;
        }
        ev.events = EPOLLOUT;
        ev.data.u32 = (uint32_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, reqs[i].fd, &ev);
        pending++;
    }
    while (pending > 0 && now_s() < deadline) {
        k = epoll_wait(ep, evs, 256, 100);
        for (i = 0; i < k; i++) {
            struct req *r = &reqs[evs[i].data.u32];
            int err = 0;
            socklen_t el = sizeof(err);

            if (r->connected || r->done)
                continue;
            getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            pending--;
            if (err != 0) {
                close(r->fd);
                r->fd = -1;
                r->done = 1;
                r->status = -3;
                continue;
            }
            r->connected = 1;
            connected++;
            ev.events = EPOLLIN;
            ev.data.u32 = evs[i].data.u32;
            epoll_ctl(ep, EPOLL_CTL_MOD, r->fd, &ev);
        }
    }
    /* Phase 2: fire every request at once. */
    left = 0;
    t_fire = now_s();
    for (i = 0; i < n; i++) {
        struct req *r = &reqs[i];

        if (!r->connected) {
            if (!r->done) {
                r->done = 1;
                r->status = -3;
                close(r->fd);
            }
            continue;
        }
        r->t_send = now_s();
        if (send(r->fd, request, rlen, MSG_NOSIGNAL) != (ssize_t)rlen) {
            r->done = 1;
            r->status = -4;
            close(r->fd);
            r->fd = -1;
            continue;
        }
        r->sent = 1;
        left++;
    }
    /* Phase 3: read until every response is complete or time is up. */
    while (left > 0 && now_s() < deadline) {
        k = epoll_wait(ep, evs, 256, 100);
        for (i = 0; i < k; i++) {
            struct req *r = &reqs[evs[i].data.u32];

            if (!r->done)
                handle_read(r, scratch, &left);
        }
    }
    printf("{\"n\":%d,\"connected\":%d,\"connect_s\":%.6f,\"timeout\":%s,"
        "\"requests\":[", n, connected, t_fire - t0,
        left > 0 ? "true" : "false");
    for (i = 0; i < n; i++) {
        struct req *r = &reqs[i];
        int complete = r->done && r->head_done &&
            (r->clen < 0 || r->body >= r->clen);

        printf("%s{\"status\":%d,\"complete\":%s,\"bytes\":%lld,"
            "\"ttfb_ms\":%.3f,\"ttlb_ms\":%.3f}", i ? "," : "",
            r->status, complete ? "true" : "false", r->body,
            r->t_first > 0 ? (r->t_first - r->t_send) * 1e3 : -1.0,
            r->done && r->sent ? (r->t_last - r->t_send) * 1e3 : -1.0);
    }
    printf("]}\n");
    return 0;
}

struct raw_stream {
    int port;
    int fd;                     /* receiver: the accepted socket */
    double until;
    atomic_llong bytes;
};

static void *
raw_send(void *arg)
{
    struct raw_stream *s = arg;
    static char buf[1u << 20];
    int fd = connect_to(s->port, 0);

    if (fd < 0)
        return NULL;
    while (now_s() < s->until)
        if (send(fd, buf, sizeof(buf), MSG_NOSIGNAL) < 0)
            break;
    close(fd);
    return NULL;
}

static void *
raw_recv(void *arg)
{
    struct raw_stream *s = arg;
    char *buf = malloc(SCRATCH);
    ssize_t n;

    if (buf == NULL)
        return NULL;
    while ((n = recv(s->fd, buf, SCRATCH, 0)) > 0)
        atomic_fetch_add(&s->bytes, n);
    free(buf);
    close(s->fd);
    return NULL;
}

/*
 * Each stream: a sender thread writes 1 MiB buffers, a receiver thread
 * copies them out into user space as an HTTP client would.
 */
static int
run_raw(double seconds, int streams)
{
    struct raw_stream *s = calloc((size_t)streams, sizeof(*s));
    struct raw_stream *rs = calloc((size_t)streams, sizeof(*rs));
    pthread_t *ts = calloc((size_t)streams * 2, sizeof(*ts));
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    double t0, t1;
    long long total = 0;
    int lfd, one = 1, i;

    if (s == NULL || rs == NULL || ts == NULL)
        return 1;
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(lfd, 64) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sin, &sl) != 0)
        return 1;
    t0 = now_s();
    for (i = 0; i < streams; i++) {
        s[i].port = ntohs(sin.sin_port);
        s[i].until = t0 + seconds;
        pthread_create(&ts[2 * i], NULL, raw_send, &s[i]);
        rs[i].fd = accept(lfd, NULL, NULL);
        if (rs[i].fd < 0)
            return 1;
        pthread_create(&ts[2 * i + 1], NULL, raw_recv, &rs[i]);
    }
    for (i = 0; i < 2 * streams; i++)
        pthread_join(ts[i], NULL);
    t1 = now_s();
    for (i = 0; i < streams; i++)
        total += atomic_load(&rs[i].bytes);
    printf("{\"streams\":%d,\"seconds\":%.3f,\"bytes\":%lld,"
        "\"gbytes_per_s\":%.3f}\n", streams, t1 - t0, total,
        (double)total / (t1 - t0) / 1e9);
    close(lfd);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *path = NULL, *hdrs[MAX_HDRS];
    double timeout = 60, raw = 0;
    int port = 0, n = 1, nhdrs = 0, opt;

    while ((opt = getopt(argc, argv, "p:u:c:H:t:R:")) != -1) {
        switch (opt) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'u':
            path = optarg;
            break;
        case 'c':
            n = atoi(optarg);
            break;
        case 'H':
            if (nhdrs == MAX_HDRS)
                usage();
            hdrs[nhdrs++] = optarg;
            break;
        case 't':
            timeout = atof(optarg);
            break;
        case 'R':
            raw = atof(optarg);
            break;
        default:
            usage();
        }
    }
    if (n < 1 || n > MAX_CONNS || timeout <= 0 || timeout > 600)
        usage();
    if (raw > 0)
        return run_raw(raw > 60 ? 60 : raw, n > 16 ? 16 : n);
    if (port <= 0 || path == NULL)
        usage();
    return run_burst(port, path, n, hdrs, nhdrs, timeout);
}
