/*
 * Groups (prov_device_ll_group.h): many handles over one transport pool
 * (dps_http_pool.c: one libcurl multi handle and share handle).
 *
 * A member's DoWork only has to run when it is due: its transfer
 * finished or its timer (start, Retry-After, deadline) passed. Members
 * form a doubly linked list (prov_group_member.c); a cursor keeps the
 * walk over it valid when a callback destroys the next member.
 */
#define _POSIX_C_SOURCE 200809L
#include "prov_group.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prov_client_private.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

PROV_DEVICE_LL_GROUP_HANDLE Prov_Device_LL_Group_Create(void)
{
    struct prov_group *g = calloc(1, sizeof(*g));

    if (!g)
        return NULL;
    g->pool = dps_http_pool_create();
    if (!g->pool) {
        free(g);
        return NULL;
    }
    dps_http_pool_set_max_connections(g->pool,
                                      PROV_GROUP_DEFAULT_MAX_CONNECTIONS);
    g->next_due_ms = INT64_MAX;
    return g;
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
    prov_group_free(g);
}

PROV_DEVICE_RESULT Prov_Device_LL_Group_SetOption(PROV_DEVICE_LL_GROUP_HANDLE g,
                                                  const char *name,
                                                  const void *value)
{
    if (!g || !name || !value)
        return PROV_DEVICE_RESULT_INVALID_ARG;
    if (strcmp(name, PROV_GROUP_OPTION_MAX_CONNECTIONS) != 0)
        return PROV_DEVICE_RESULT_INVALID_ARG;
    if (Prov_Device_LL_Group_Is_Busy(g))
        return PROV_DEVICE_RESULT_INVALID_STATE;
    dps_http_pool_set_max_connections(g->pool, *(const uint32_t *)value);
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
    prov_group_link(g, h);
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
    prov_group_unlink(h->group, h);
    return PROV_DEVICE_RESULT_OK;
}

static void run_alone(PROV_DEVICE_LL_HANDLE h, void *ctx)
{
    (void)ctx;
    Prov_Device_LL_DoWork(h);
}

void prov_group_dowork_with(struct prov_group *g, prov_group_run_fn run,
                            void *ctx)
{
    PROV_DEVICE_LL_HANDLE h;
    int64_t now, next = INT64_MAX;

    if (!g || g->busy_depth)
        return;
    prov_group_enter(g);
    dps_http_pool_drive(g->pool);
    now = now_ms();
    if (dps_http_pool_take_finished(g->pool) || now >= g->next_due_ms) {
        /* Member DoWorks find their answers already handed over, and
         * the timers are read afresh below. */
        dps_http_pool_hold(g->pool, true);
        g->walking = 1;
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
        dps_http_pool_hold(g->pool, false);
        g->walking = 0;
    }
    /* Starts the transfers the members just added. */
    if (!g->destroy_pending)
        dps_http_pool_drive(g->pool);
    prov_group_leave(g);
}

void Prov_Device_LL_Group_DoWork(PROV_DEVICE_LL_GROUP_HANDLE g)
{
    prov_group_dowork_with(g, run_alone, NULL);
}

PROV_DEVICE_RESULT Prov_Device_LL_Group_Get_Pollfds(
    PROV_DEVICE_LL_GROUP_HANDLE g, PROV_DEVICE_POLLFD *fds, size_t max,
    size_t *count)
{
    if (!g || !count || (max && !fds))
        return PROV_DEVICE_RESULT_INVALID_ARG;
    *count = dps_http_pool_pollfds(g->pool, fds, max);
    return PROV_DEVICE_RESULT_OK;
}

long Prov_Device_LL_Group_Get_Timeout_Ms(PROV_DEVICE_LL_GROUP_HANDLE g)
{
    long best = -1, ms = -1;

    if (!g || !g->running)
        return -1;
    if (dps_http_pool_finished(g->pool))
        return 0;
    if (g->next_due_ms != INT64_MAX) {
        int64_t left = g->next_due_ms - now_ms();
        best = left <= 0 ? 0 : left > LONG_MAX ? LONG_MAX : (long)left;
    }
    ms = dps_http_pool_timeout_ms(g->pool);
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
    PROV_DEVICE_POLLFD *fds;
    long t_ms;
    int64_t end_ms;
    size_t i, nfds;
    int r, timer_first;

    if (!g || g->busy_depth || !Prov_Device_LL_Group_Is_Busy(g))
        return 0;
    t_ms = Prov_Device_LL_Group_Get_Timeout_Ms(g);
    timer_first = t_ms >= 0 && (max_ms < 0 || t_ms <= max_ms);
    nfds = dps_http_pool_pollfds(g->pool, NULL, 0);
    if (!timer_first && max_ms < 0 && nfds == 0)
        return 0; /* nothing could ever wake us */
    end_ms = now_ms() + (timer_first ? t_ms : max_ms);
    p = calloc(nfds ? nfds : 1, sizeof(*p));
    fds = calloc(nfds ? nfds : 1, sizeof(*fds));
    if (!p || !fds) {
        free(p);
        free(fds);
        return -1;
    }
    nfds = dps_http_pool_pollfds(g->pool, fds, nfds);
    for (i = 0; i < nfds; i++) {
        p[i].fd = fds[i].fd;
        p[i].events = fds[i].events;
    }
    free(fds);
    for (;;) {
        int64_t left = (!timer_first && max_ms < 0) ? -1 : end_ms - now_ms();
        int ms = left < 0         ? (timer_first || max_ms >= 0 ? 0 : -1)
                 : left > INT_MAX ? INT_MAX
                                  : (int)left;
        r = poll(p, (nfds_t)nfds, ms);
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
            prov_group_free(g);
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
