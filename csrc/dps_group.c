/*
 * dps groups (prov_device_ll_group.h): one libcurl multi handle and one
 * share handle driving the transfers of many handles.
 *
 * The group keeps the table of sockets libcurl asks it to watch, drives
 * them with curl_multi_socket_action and hands each finished transfer to
 * the transport that started it (found through CURLINFO_PRIVATE). A
 * member's DoWork then only has to run when it is due: its transfer
 * finished or its timer (start, Retry-After, deadline) passed. Members
 * form a doubly linked list; a cursor keeps the walk over it valid when
 * a callback destroys the next member.
 */
#define _POSIX_C_SOURCE 200809L
#include "dps_group.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prov_client_private.h"

struct dps_group {
    CURLM *multi;
    CURLSH *share;
    uint32_t max_connections;
    PROV_DEVICE_POLLFD *fds;       /* sockets libcurl asked us to watch */
    size_t nfds, fds_cap;
    PROV_DEVICE_LL_HANDLE members;
    PROV_DEVICE_LL_HANDLE cursor;  /* next member of the walk in progress */
    int busy_depth;                /* DoWork of the group or a member runs */
    int driving;                   /* member DoWorks must not drive again */
    int walking;                   /* the walk reads every timer afterwards */
    bool in_run;                   /* Run frees a group destroyed inside */
    /* Transfers wait here for a slot (see pump). */
    CURL **queued;
    size_t nqueued, queued_cap;
    size_t in_flight;              /* transfers in the multi handle */
    size_t slots;                  /* how many may be */
    /* So that a DoWork with nothing due costs O(1), not O(members): */
    size_t running;                /* members registering */
    int64_t next_due_ms;           /* earliest member timer (monotonic) */
    size_t finished_unseen;        /* transfers finished since the walk */
    bool destroy_pending;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *ctx,
                     void *socketp)
{
    struct dps_group *g = ctx;
    size_t i;
    (void)easy;
    (void)socketp;

    for (i = 0; i < g->nfds && g->fds[i].fd != (int)s; i++)
        ;
    if (what == CURL_POLL_REMOVE) {
        if (i < g->nfds)
            g->fds[i] = g->fds[--g->nfds];
        return 0;
    }
    if (i == g->nfds) {
        if (g->nfds == g->fds_cap) {
            size_t cap = g->fds_cap ? g->fds_cap * 2 : 16;
            PROV_DEVICE_POLLFD *grown = realloc(g->fds, cap * sizeof(*grown));
            if (!grown)
                return -1; /* libcurl fails the transfer: no silent hang */
            g->fds = grown;
            g->fds_cap = cap;
        }
        g->nfds++;
    }
    g->fds[i].fd = (int)s;
    g->fds[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) |
                               ((what & CURL_POLL_OUT) ? POLLOUT : 0));
    return 0;
}

static void apply_limits(struct dps_group *g)
{
    long cap = (long)g->max_connections;
    curl_multi_setopt(g->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, cap);
    curl_multi_setopt(g->multi, CURLMOPT_MAX_HOST_CONNECTIONS, cap);
    /* Idle connections kept for reuse: never more than may be open. */
    if (cap > 0)
        curl_multi_setopt(g->multi, CURLMOPT_MAXCONNECTS, cap);
}

PROV_DEVICE_LL_GROUP_HANDLE Prov_Device_LL_Group_Create(void)
{
    struct dps_group *g;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->multi = curl_multi_init();
    g->share = curl_share_init();
    if (!g->multi || !g->share) {
        curl_multi_cleanup(g->multi);
        curl_share_cleanup(g->share);
        free(g);
        return NULL;
    }
    /* One thread uses a group, so the share needs no lock functions. The
     * connection pool is the multi handle's own, shared by every
     * transfer added to it. */
    curl_share_setopt(g->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(g->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g);
    g->max_connections = PROV_GROUP_DEFAULT_MAX_CONNECTIONS;
    g->slots = 1;
    g->next_due_ms = INT64_MAX;
    apply_limits(g);
    return g;
}

CURLM *dps_group_multi(struct dps_group *g)
{
    return g->multi;
}

CURLSH *dps_group_share(struct dps_group *g)
{
    return g->share;
}

static void link_member(struct dps_group *g, PROV_DEVICE_LL_HANDLE h)
{
    h->group = g;
    h->group_due_stale = true;
    h->group_prev = NULL;
    h->group_next = g->members;
    if (g->members)
        g->members->group_prev = h;
    g->members = h;
}

void dps_group_unlink(struct dps_group *g, PROV_DEVICE_LL_HANDLE h)
{
    if (!g || h->group != g)
        return;
    if (g->cursor == h)
        g->cursor = h->group_next;
    if (h->group_prev)
        h->group_prev->group_next = h->group_next;
    else
        g->members = h->group_next;
    if (h->group_next)
        h->group_next->group_prev = h->group_prev;
    h->group = NULL;
    h->group_prev = h->group_next = NULL;
}

/*
 * Slots. HTTP/1.1 runs one transfer per connection, so the transfers in
 * the multi handle bound the connections. The group starts with one slot
 * and gains one each time a transfer that opened a new connection
 * finishes, up to max_connections: new connections are then made one
 * after the other, each after the previous one received its TLS session
 * ticket, so each can resume the latest session. (TLS 1.3 tickets are
 * single use: connections opened at the same moment would all make full
 * handshakes.) The ramp costs one round trip per connection, while the
 * connections already open carry requests.
 */
static void pump(struct dps_group *g)
{
    while (g->nqueued && g->in_flight < g->slots) {
        CURL *easy = g->queued[0];
        g->nqueued--;
        memmove(g->queued, g->queued + 1, g->nqueued * sizeof(*g->queued));
        if (curl_multi_add_handle(g->multi, easy) == CURLM_OK)
            g->in_flight++;
        else
            dps_http_transfer_done(easy, CURLE_OUT_OF_MEMORY);
    }
}

int dps_group_add(struct dps_group *g, CURL *easy)
{
    if (g->nqueued == g->queued_cap) {
        size_t cap = g->queued_cap ? g->queued_cap * 2 : 16;
        CURL **grown = realloc(g->queued, cap * sizeof(*grown));
        if (!grown)
            return -1;
        g->queued = grown;
        g->queued_cap = cap;
    }
    g->queued[g->nqueued++] = easy;
    pump(g);
    return 0;
}

void dps_group_remove(struct dps_group *g, CURL *easy)
{
    size_t i;

    for (i = 0; i < g->nqueued; i++) {
        if (g->queued[i] == easy) {
            g->nqueued--;
            memmove(g->queued + i, g->queued + i + 1,
                    (g->nqueued - i) * sizeof(*g->queued));
            return;
        }
    }
    curl_multi_remove_handle(g->multi, easy);
    g->in_flight--;
    pump(g);
}

/* A transfer finished: it may earn the group a slot. */
static void finished(struct dps_group *g, CURL *easy, CURLcode rc)
{
    long connects = 0;

    g->in_flight--;
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
    if (rc == CURLE_OK && connects > 0 &&
        (g->max_connections == 0 || g->slots < g->max_connections))
        g->slots++;
    dps_http_transfer_done(easy, (int)rc);
    g->finished_unseen++;
    pump(g);
}

void dps_group_member_changed(struct dps_group *g, PROV_DEVICE_LL_HANDLE h,
                              int delta)
{
    h->group_due_stale = true;
    if (delta > 0)
        g->running++;
    else if (delta < 0 && g->running > 0)
        g->running--;
    if (!g->walking)
        g->next_due_ms = 0;
}

static void free_group(struct dps_group *g)
{
    /* Members first: their transfers leave the multi handle before it
     * goes. The share goes last: the easy handles still point at it. */
    g->slots = 0; /* nothing more starts */
    while (g->members)
        prov_group_abort(g->members);
    curl_multi_cleanup(g->multi);
    curl_share_cleanup(g->share);
    free(g->fds);
    free(g->queued);
    free(g);
}

void Prov_Device_LL_Group_Destroy(PROV_DEVICE_LL_GROUP_HANDLE g)
{
    if (!g)
        return;
    if (g->busy_depth) {
        g->destroy_pending = true;
        g->cursor = NULL; /* stop the walk in progress */
        return;
    }
    free_group(g);
}

void dps_group_enter(struct dps_group *g)
{
    g->busy_depth++;
}

void dps_group_leave(struct dps_group *g)
{
    if (--g->busy_depth == 0 && g->destroy_pending && !g->in_run)
        free_group(g);
}

PROV_DEVICE_RESULT Prov_Device_LL_Group_SetOption(
    PROV_DEVICE_LL_GROUP_HANDLE g, const char *name, const void *value)
{
    if (!g || !name || !value)
        return PROV_DEVICE_RESULT_INVALID_ARG;
    if (strcmp(name, PROV_GROUP_OPTION_MAX_CONNECTIONS) != 0)
        return PROV_DEVICE_RESULT_INVALID_ARG;
    if (Prov_Device_LL_Group_Is_Busy(g))
        return PROV_DEVICE_RESULT_INVALID_STATE;
    g->max_connections = *(const uint32_t *)value;
    if (g->max_connections > INT_MAX)
        g->max_connections = 0;
    if (g->max_connections && g->slots > g->max_connections)
        g->slots = g->max_connections;
    apply_limits(g);
    return PROV_DEVICE_RESULT_OK;
}

PROV_DEVICE_RESULT Prov_Device_LL_Group_Attach(PROV_DEVICE_LL_GROUP_HANDLE g,
                                               PROV_DEVICE_LL_HANDLE h)
{
    if (!g || !h || g->destroy_pending)
        return PROV_DEVICE_RESULT_INVALID_ARG;
    if (h->group == g)
        return PROV_DEVICE_RESULT_OK;
    if (h->group || h->running)
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_STATE,
                         h->running ? "cannot join a group while registering"
                                    : "the handle belongs to another group");
    /* The next registration makes a transport on the group's driver. */
    dps_http_destroy(h->http);
    h->http = NULL;
    link_member(g, h);
    return PROV_DEVICE_RESULT_OK;
}

PROV_DEVICE_RESULT Prov_Device_LL_Group_Detach(PROV_DEVICE_LL_HANDLE h)
{
    if (!h)
        return PROV_DEVICE_RESULT_INVALID_ARG;
    if (h->running)
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_STATE,
                         "cannot leave a group while registering");
    dps_http_destroy(h->http);
    h->http = NULL;
    dps_group_unlink(h->group, h);
    return PROV_DEVICE_RESULT_OK;
}

void dps_group_drive(struct dps_group *g)
{
    struct pollfd stack_fds[32], *p = stack_fds;
    size_t i, n;
    int running = 0, left = 0;
    CURLMsg *msg;

    if (g->driving)
        return;
    g->driving = 1;
    n = g->nfds;
    if (n > sizeof(stack_fds) / sizeof(stack_fds[0]) &&
        !(p = malloc(n * sizeof(*p)))) {
        p = stack_fds; /* drive what fits; the rest next time */
        n = sizeof(stack_fds) / sizeof(stack_fds[0]);
    }
    /* A snapshot: socket_action may change g->fds under us. */
    for (i = 0; i < n; i++) {
        p[i].fd = g->fds[i].fd;
        p[i].events = g->fds[i].events;
        p[i].revents = 0;
    }
    if (n && poll(p, (nfds_t)n, 0) > 0) {
        for (i = 0; i < n; i++) {
            int ev = 0;
            if (p[i].revents & POLLIN)
                ev |= CURL_CSELECT_IN;
            if (p[i].revents & POLLOUT)
                ev |= CURL_CSELECT_OUT;
            if (p[i].revents & (POLLERR | POLLHUP | POLLNVAL))
                ev |= CURL_CSELECT_ERR;
            if (ev)
                curl_multi_socket_action(g->multi, p[i].fd, ev, &running);
        }
    }
    if (p != stack_fds)
        free(p);
    /* Due timers, and the first step of transfers added since. */
    curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    while ((msg = curl_multi_info_read(g->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE)
            finished(g, msg->easy_handle, msg->data.result);
    }
    g->driving = 0;
}

static void run_alone(PROV_DEVICE_LL_HANDLE h, void *ctx)
{
    (void)ctx;
    Prov_Device_LL_DoWork(h);
}

void dps_group_dowork_with(struct dps_group *g, dps_group_run_fn run,
                           void *ctx)
{
    PROV_DEVICE_LL_HANDLE h;
    int64_t now, next = INT64_MAX;

    if (!g || g->busy_depth)
        return;
    g->busy_depth++;
    dps_group_drive(g);
    now = now_ms();
    if (g->finished_unseen || now >= g->next_due_ms) {
        g->finished_unseen = 0;
        /* Member DoWorks find their answers already handed over, and
         * the timers are read afresh below. */
        g->driving = g->walking = 1;
        /* Cached due times: a finished transfer or a passed timer.
         * Reading a member afresh costs a clock read, so only members
         * that changed since are. */
        for (h = g->members; h && !g->destroy_pending; h = g->cursor) {
            bool due;
            g->cursor = h->group_next;
            if (!h->running)
                continue;
            due = h->group_due_stale ? Prov_Device_LL_Get_Timeout_Ms(h) == 0
                                     : (h->group_due_ms <= now ||
                                        dps_http_timeout_ms(h->http) == 0);
            if (due) {
                h->group_due_stale = true;
                run(h, ctx); /* h may be gone afterwards; the cursor not */
            }
        }
        g->cursor = NULL;
        for (h = g->members; h && !g->destroy_pending; h = h->group_next) {
            if (h->group_due_stale) {
                long ms = Prov_Device_LL_Get_Timeout_Ms(h);
                h->group_due_ms = ms < 0 ? INT64_MAX : now + ms;
                h->group_due_stale = false;
            }
            if (h->running && h->group_due_ms < next)
                next = h->group_due_ms;
        }
        g->next_due_ms = next;
        g->driving = g->walking = 0;
    }
    /* Starts the transfers the members just added. */
    if (!g->destroy_pending)
        dps_group_drive(g);
    dps_group_leave(g);
}

void Prov_Device_LL_Group_DoWork(PROV_DEVICE_LL_GROUP_HANDLE g)
{
    dps_group_dowork_with(g, run_alone, NULL);
}

PROV_DEVICE_RESULT Prov_Device_LL_Group_Get_Pollfds(
    PROV_DEVICE_LL_GROUP_HANDLE g, PROV_DEVICE_POLLFD *fds, size_t max,
    size_t *count)
{
    size_t i;

    if (!g || !count || (max && !fds))
        return PROV_DEVICE_RESULT_INVALID_ARG;
    for (i = 0; i < g->nfds && i < max; i++)
        fds[i] = g->fds[i];
    *count = g->nfds;
    return PROV_DEVICE_RESULT_OK;
}

long Prov_Device_LL_Group_Get_Timeout_Ms(PROV_DEVICE_LL_GROUP_HANDLE g)
{
    long best = -1, ms = -1;

    if (!g || !g->running)
        return -1;
    if (g->finished_unseen)
        return 0;
    if (g->next_due_ms != INT64_MAX) {
        int64_t left = g->next_due_ms - now_ms();
        best = left <= 0 ? 0 : left > LONG_MAX ? LONG_MAX : (long)left;
    }
    if (curl_multi_timeout(g->multi, &ms) != CURLM_OK)
        return 0;
    if (ms >= 0 && (best < 0 || ms < best))
        best = ms;
    return best;
}

bool Prov_Device_LL_Group_Is_Busy(PROV_DEVICE_LL_GROUP_HANDLE g)
{
    return g && g->running > 0;
}

int Prov_Device_LL_Group_Wait(PROV_DEVICE_LL_GROUP_HANDLE g, long max_ms)
{
    struct pollfd *p;
    long t_ms;
    int64_t end_ms;
    size_t i;
    int r, timer_first;

    if (!g || g->busy_depth || !Prov_Device_LL_Group_Is_Busy(g))
        return 0;
    t_ms = Prov_Device_LL_Group_Get_Timeout_Ms(g);
    timer_first = t_ms >= 0 && (max_ms < 0 || t_ms <= max_ms);
    if (!timer_first && max_ms < 0 && g->nfds == 0)
        return 0; /* nothing could ever wake us */
    end_ms = now_ms() + (timer_first ? t_ms : max_ms);
    p = calloc(g->nfds ? g->nfds : 1, sizeof(*p));
    if (!p)
        return -1;
    for (i = 0; i < g->nfds; i++) {
        p[i].fd = g->fds[i].fd;
        p[i].events = g->fds[i].events;
    }
    for (;;) {
        int64_t left = (!timer_first && max_ms < 0) ? -1 : end_ms - now_ms();
        int ms = left < 0 ? (timer_first || max_ms >= 0 ? 0 : -1)
                          : left > INT_MAX ? INT_MAX : (int)left;
        r = poll(p, (nfds_t)g->nfds, ms);
        if (r >= 0 || errno != EINTR)
            break;
    }
    free(p);
    if (r < 0)
        return -1;
    return r > 0 || timer_first;
}

bool Prov_Device_LL_Group_Run(PROV_DEVICE_LL_GROUP_HANDLE g, long max_ms)
{
    int64_t end_ms = max_ms >= 0 ? now_ms() + max_ms : -1;

    if (!g || g->busy_depth || g->in_run)
        return false;
    g->in_run = true;
    for (;;) {
        long left = -1;
        Prov_Device_LL_Group_DoWork(g);
        if (g->destroy_pending) { /* destroyed from a callback */
            free_group(g);
            return false;
        }
        if (!Prov_Device_LL_Group_Is_Busy(g)) {
            g->in_run = false;
            return true;
        }
        if (end_ms >= 0) {
            int64_t l = end_ms - now_ms();
            if (l <= 0) {
                g->in_run = false;
                return false;
            }
            left = l > LONG_MAX ? LONG_MAX : (long)l;
        }
        /* Busy with neither a descriptor nor a timer cannot happen; if it
         * does, a short sleep beats a spin. */
        if (Prov_Device_LL_Group_Wait(g, left) == 0 && left < 0)
            poll(NULL, 0, 100);
    }
}
