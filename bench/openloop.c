/* An open-loop reference client for bench/tail.py: the open model with nothing else in it.
 *
 * perftui's open model is compared with wrk, a closed-loop client. The two do not meet a held
 * machine alike: while a client is held, a closed loop sends nothing, and an open model's
 * arrivals fall due and go out late, their latency counted from when they were due. Whatever an
 * open-model client adds to the tail on this machine beyond wrk is therefore partly the machine's.
 * This client measures that share: a constant rate, every arrival's latency taken from its
 * intended send and its service time from its actual send (as perftui and wrk2 do), sends timed
 * by an absolute timerfd, one epoll loop, no allocation after start, microsecond histograms.
 *
 *   cc -O2 -o openloop bench/openloop.c
 *   openloop HOST PORT RATE SECONDS CONNECTIONS [EARLY_US]
 *
 * Arrival k is due at start + k / RATE and goes to connection k mod CONNECTIONS, which sends it
 * when it is due or, if still waiting for its previous response, as soon as that has arrived
 * (the arrival's latency still counted from when it was due). With EARLY_US the loop wakes that
 * much before a due time and sends every arrival due within it (a timed wake-up comes late by a
 * few tens of microseconds, up to a millisecond or more on a busy host); an arrival sent early
 * is timed from its send, never from a due time still ahead — perftui's open model does the
 * same with EARLY = 1 ms. Prints one JSON line:
 * {"p50", "p90", "p99", "p999", "max" (ms), "requests", "late", "hist": [[us, count], ...],
 *  "service": [[us, count], ...], "send_lag": [[us, count], ...]} — hist is latency from the
 * intended send, send_lag the time from it to the actual send. Loopback only. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_US 10000000 /* histograms span 0..10 s in microseconds; longer is counted at 10 s */
#define QUEUE 256       /* arrivals one connection may owe before the run calls itself overloaded */
#define MAX_CONNS 256

struct conn {
    int fd;
    int64_t due[QUEUE]; /* intended send times (ns) of the arrivals this connection owes, in order */
    int head, count;
    int64_t sent_due, sent_at; /* the request on the wire: when it was due, when it went */
    int busy;
    char buf[4096];
    size_t have;
};

static uint32_t *latency_hist, *service_hist, *lag_hist;
static char request[256];
static size_t request_len;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void record(uint32_t *hist, int64_t ns) {
    int64_t us = (ns + 500) / 1000;
    hist[us < 0 ? 0 : (us >= MAX_US ? MAX_US - 1 : us)]++;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void send_next(struct conn *c) {
    if (c->busy || c->count == 0) return;
    c->sent_due = c->due[c->head];
    c->head = (c->head + 1) % QUEUE;
    c->count--;
    c->sent_at = now_ns();
    if (c->sent_due > c->sent_at) c->sent_due = c->sent_at; /* sent early: timed from the send */
    ssize_t n = send(c->fd, request, request_len, MSG_NOSIGNAL);
    if (n != (ssize_t)request_len) die("send");
    c->busy = 1;
}

/* A whole response in c->buf? The server's responses carry a Content-Length. */
static int response_done(struct conn *c) {
    char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t header = (size_t)(end - c->buf) + 4, body = 0;
    char *cl = memmem(c->buf, header, "Content-Length:", 15);
    if (cl) body = strtoul(cl + 15, NULL, 10);
    if (c->have < header + body) return 0;
    memmove(c->buf, c->buf + header + body, c->have - header - body);
    c->have -= header + body;
    return 1;
}

static void json_hist(const char *name, const uint32_t *hist) {
    printf("\"%s\": [", name);
    int first = 1;
    for (int us = 0; us < MAX_US; us++)
        if (hist[us]) {
            printf("%s[%d,%u]", first ? "" : ",", us, hist[us]);
            first = 0;
        }
    printf("]");
}

static double percentile(const uint32_t *hist, uint64_t total, double q) {
    uint64_t need = (uint64_t)(q / 100.0 * (double)total + 0.5), seen = 0;
    if (need < 1) need = 1;
    for (int us = 0; us < MAX_US; us++) {
        seen += hist[us];
        if (seen >= need) return us / 1000.0;
    }
    return MAX_US / 1000.0;
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT RATE SECONDS CONNECTIONS [EARLY_US]\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]), nconn = atoi(argv[5]);
    double rate = atof(argv[3]), seconds = atof(argv[4]);
    const int64_t early = argc == 7 ? (int64_t)atol(argv[6]) * 1000 : 0;
    if (rate <= 0 || seconds <= 0 || nconn < 1 || nconn > MAX_CONNS || early < 0) {
        fprintf(stderr, "openloop: RATE and SECONDS must be > 0, CONNECTIONS 1..%d\n", MAX_CONNS);
        return 2;
    }
    request_len = (size_t)snprintf(request, sizeof request, "GET / HTTP/1.1\r\nHost: %s:%d\r\n\r\n", host, port);
    latency_hist = calloc(MAX_US, sizeof *latency_hist);
    service_hist = calloc(MAX_US, sizeof *service_hist);
    lag_hist = calloc(MAX_US, sizeof *lag_hist);
    struct conn *conns = calloc((size_t)nconn, sizeof *conns);
    if (!latency_hist || !service_hist || !lag_hist || !conns) die("calloc");

    int ep = epoll_create1(0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "openloop: HOST must be an IPv4 address\n");
        return 2;
    }
    for (int i = 0; i < nconn; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect");
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
    }
    int timer = timerfd_create(CLOCK_MONOTONIC, 0);
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (timer < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, timer, &tev) != 0) die("timerfd");

    const int64_t start = now_ns() + 1000000, interval = (int64_t)(1e9 / rate);
    const int64_t total = (int64_t)(rate * seconds), drain_until = start + (int64_t)(seconds * 1e9) + 2000000000LL;
    int64_t next = 0; /* the next arrival not yet handed to its connection */
    uint64_t done = 0, late = 0;
    int overloaded = 0;
    struct epoll_event events[MAX_CONNS + 1];
    for (;;) {
        int64_t t = now_ns();
        while (next < total && start + next * interval <= t + early) {
            struct conn *c = &conns[next % nconn];
            if (c->count == QUEUE) {
                overloaded = 1;
                break;
            }
            c->due[(c->head + c->count) % QUEUE] = start + next * interval;
            c->count++;
            next++;
            send_next(c);
        }
        if (overloaded || (next >= total && done >= (uint64_t)total) || t > drain_until) break;
        if (next < total) {
            int64_t at = start + next * interval - early;
            struct itimerspec its = {.it_value = {.tv_sec = at / 1000000000, .tv_nsec = at % 1000000000}};
            timerfd_settime(timer, TFD_TIMER_ABSTIME, &its, NULL);
        }
        int n = epoll_wait(ep, events, nconn + 1, next < total ? -1 : 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            uint32_t id = events[i].data.u32;
            if (id == UINT32_MAX) {
                uint64_t expirations;
                if (read(timer, &expirations, sizeof expirations) < 0 && errno != EAGAIN) die("read timer");
                continue;
            }
            struct conn *c = &conns[id];
            ssize_t got = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
            if (got <= 0) die("recv");
            c->have += (size_t)got;
            while (c->busy && response_done(c)) {
                int64_t at = now_ns();
                record(latency_hist, at - c->sent_due);
                record(service_hist, at - c->sent_at);
                record(lag_hist, c->sent_at - c->sent_due);
                if (c->sent_at - c->sent_due > 1000000) late++; /* sent more than 1 ms after due */
                c->busy = 0;
                done++;
                send_next(c);
            }
        }
    }
    double p50 = percentile(latency_hist, done, 50), p90 = percentile(latency_hist, done, 90);
    double p99 = percentile(latency_hist, done, 99), p999 = percentile(latency_hist, done, 99.9);
    double max = 0;
    for (int us = MAX_US - 1; us >= 0; us--)
        if (latency_hist[us]) {
            max = us / 1000.0;
            break;
        }
    printf("{\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f, \"requests\": %llu, "
           "\"asked\": %lld, \"late\": %llu, \"overloaded\": %s, ",
           p50, p90, p99, p999, max, (unsigned long long)done, (long long)total, (unsigned long long)late,
           overloaded ? "true" : "false");
    json_hist("hist", latency_hist);
    printf(", ");
    json_hist("service", service_hist);
    printf(", ");
    json_hist("send_lag", lag_hist);
    printf("}\n");
    return 0;
}
