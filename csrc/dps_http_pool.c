/*
 * The shared HTTP driver of a group (dps_http_pool.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "dps_http_pool.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

struct dps_http_pool {
    CURLM *multi;
    CURLSH *share;
    uint32_t max_connections;
    PROV_DEVICE_POLLFD *fds; /* sockets libcurl asked us to watch */
    size_t nfds, fds_cap;
    int held; /* drive does nothing */
    /* Transfers wait here for a slot (see pump). */
    CURL **queued;
    size_t nqueued, queued_cap;
    size_t in_flight; /* transfers in the multi handle */
    size_t slots;     /* how many may be */
    size_t finished;  /* transfers finished since the last take */
};

static int on_socket(CURL *easy, curl_socket_t s, int what, void *ctx,
                     void *socketp)
{
    dps_http_pool *p = ctx;
    size_t i;
    (void)easy;
    (void)socketp;

    for (i = 0; i < p->nfds && p->fds[i].fd != (int)s; i++)
        ;
    if (what == CURL_POLL_REMOVE) {
        if (i < p->nfds)
            p->fds[i] = p->fds[--p->nfds];
        return 0;
    }
    if (i == p->nfds) {
        if (p->nfds == p->fds_cap) {
            size_t cap = p->fds_cap ? p->fds_cap * 2 : 16;
            PROV_DEVICE_POLLFD *grown = realloc(p->fds, cap * sizeof(*grown));
            if (!grown)
                return -1; /* libcurl fails the transfer: no silent hang */
            p->fds = grown;
            p->fds_cap = cap;
        }
        p->nfds++;
    }
    p->fds[i].fd = (int)s;
    p->fds[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) |
                               ((what & CURL_POLL_OUT) ? POLLOUT : 0));
    return 0;
}

dps_http_pool *dps_http_pool_create(void)
{
    dps_http_pool *p;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->multi = curl_multi_init();
    p->share = curl_share_init();
    if (!p->multi || !p->share) {
        curl_multi_cleanup(p->multi);
        curl_share_cleanup(p->share);
        free(p);
        return NULL;
    }
    /* One thread uses a pool, so the share needs no lock functions. The
     * connection pool is the multi handle's own, shared by every
     * transfer added to it. */
    curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
    p->slots = 1;
    return p;
}

void dps_http_pool_destroy(dps_http_pool *p)
{
    if (!p)
        return;
    /* The share goes last: the easy handles may still point at it. */
    curl_multi_cleanup(p->multi);
    curl_share_cleanup(p->share);
    free(p->fds);
    free(p->queued);
    free(p);
}

void dps_http_pool_set_max_connections(dps_http_pool *p, uint32_t cap)
{
    long limit;

    p->max_connections = cap > INT_MAX ? 0 : cap;
    if (p->max_connections && p->slots > p->max_connections)
        p->slots = p->max_connections;
    limit = (long)p->max_connections;
    curl_multi_setopt(p->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, limit);
    curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS, limit);
    /* Idle connections kept for reuse: never more than may be open. */
    if (limit > 0)
        curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, limit);
}

void dps_http_pool_stop(dps_http_pool *p)
{
    p->slots = 0;
}

CURLSH *dps_http_pool_share(dps_http_pool *p)
{
    return p->share;
}

/* A transfer ended here: its owner takes it from the marked state. */
static void hand_back(dps_http_pool *p, CURL *easy, int rc, int os_error)
{
    dps_http_pool_transfer *t = NULL;

    curl_multi_remove_handle(p->multi, easy);
    if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t) == CURLE_OK &&
        t) {
        t->done = true;
        t->rc = rc;
        t->os_error = os_error;
    }
    p->finished++;
}

/*
 * Slots. HTTP/1.1 runs one transfer per connection, so the transfers in
 * the multi handle bound the connections. The pool starts with one slot
 * and gains one each time a transfer that opened a new connection
 * finishes, up to max_connections: new connections are then made one
 * after the other, each after the previous one received its TLS session
 * ticket, so each can resume the latest session. (TLS 1.3 tickets are
 * single use: connections opened at the same moment would all make full
 * handshakes.) The ramp costs one round trip per connection, while the
 * connections already open carry requests.
 */
static void pump(dps_http_pool *p)
{
    while (p->nqueued && p->in_flight < p->slots) {
        CURL *easy = p->queued[0];
        p->nqueued--;
        memmove(p->queued, p->queued + 1, p->nqueued * sizeof(*p->queued));
        if (curl_multi_add_handle(p->multi, easy) == CURLM_OK)
            p->in_flight++;
        else
            hand_back(p, easy, CURLE_OUT_OF_MEMORY, 0);
    }
}

int dps_http_pool_add(dps_http_pool *p, CURL *easy)
{
    if (p->nqueued == p->queued_cap) {
        size_t cap = p->queued_cap ? p->queued_cap * 2 : 16;
        CURL **grown = realloc(p->queued, cap * sizeof(*grown));
        if (!grown)
            return -1;
        p->queued = grown;
        p->queued_cap = cap;
    }
    p->queued[p->nqueued++] = easy;
    pump(p);
    return 0;
}

void dps_http_pool_remove(dps_http_pool *p, CURL *easy)
{
    size_t i;

    for (i = 0; i < p->nqueued; i++) {
        if (p->queued[i] == easy) {
            p->nqueued--;
            memmove(p->queued + i, p->queued + i + 1,
                    (p->nqueued - i) * sizeof(*p->queued));
            return;
        }
    }
    curl_multi_remove_handle(p->multi, easy);
    p->in_flight--;
    pump(p);
}

/* A transfer finished: it may earn the pool a slot. */
static void finished(dps_http_pool *p, CURL *easy, CURLcode rc, int os_error)
{
    long connects = 0;

    p->in_flight--;
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
    if (rc == CURLE_OK && connects > 0 &&
        (p->max_connections == 0 || p->slots < p->max_connections))
        p->slots++;
    hand_back(p, easy, (int)rc, os_error);
    pump(p);
}

void dps_http_pool_drive(dps_http_pool *p)
{
    struct pollfd stack_fds[32], *fds = stack_fds;
    size_t i, n;
    int running = 0, left = 0, os_error;
    CURLMsg *msg;

    if (p->held)
        return;
    p->held = 1;
    errno = 0;
    n = p->nfds;
    if (n > sizeof(stack_fds) / sizeof(stack_fds[0]) &&
        !(fds = malloc(n * sizeof(*fds)))) {
        fds = stack_fds; /* drive what fits; the rest next time */
        n = sizeof(stack_fds) / sizeof(stack_fds[0]);
    }
    /* A snapshot: socket_action may change p->fds under us. */
    for (i = 0; i < n; i++) {
        fds[i].fd = p->fds[i].fd;
        fds[i].events = p->fds[i].events;
        fds[i].revents = 0;
    }
    if (n && poll(fds, (nfds_t)n, 0) > 0) {
        for (i = 0; i < n; i++) {
            int ev = 0;
            if (fds[i].revents & POLLIN)
                ev |= CURL_CSELECT_IN;
            if (fds[i].revents & POLLOUT)
                ev |= CURL_CSELECT_OUT;
            if (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL))
                ev |= CURL_CSELECT_ERR;
            if (ev)
                curl_multi_socket_action(p->multi, fds[i].fd, ev, &running);
        }
    }
    if (fds != stack_fds)
        free(fds);
    /* Due timers, and the first step of transfers added since. */
    curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    /* What the last failing system call said (e.g. EMFILE opening the CA
     * file): libcurl does not always pass it on (dps_failure.c). */
    os_error = errno;
    while ((msg = curl_multi_info_read(p->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE)
            finished(p, msg->easy_handle, msg->data.result, os_error);
    }
    p->held = 0;
}

void dps_http_pool_hold(dps_http_pool *p, bool hold)
{
    p->held = hold;
}

size_t dps_http_pool_finished(const dps_http_pool *p)
{
    return p->finished;
}

size_t dps_http_pool_take_finished(dps_http_pool *p)
{
    size_t n = p->finished;

    p->finished = 0;
    return n;
}

size_t dps_http_pool_pollfds(const dps_http_pool *p, PROV_DEVICE_POLLFD *fds,
                             size_t max)
{
    size_t i;

    for (i = 0; i < p->nfds && i < max; i++)
        fds[i] = p->fds[i];
    return p->nfds;
}

long dps_http_pool_timeout_ms(dps_http_pool *p)
{
    long ms = -1;

    if (curl_multi_timeout(p->multi, &ms) != CURLM_OK)
        return 0;
    return ms;
}
