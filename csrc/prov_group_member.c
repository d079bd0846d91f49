/*
 * What a handle tells its group (prov_group.h): membership, running
 * count and due times, and the deferred destruction of a group destroyed
 * from a callback. Called by the handle (prov_device_ll_client.c) and by
 * the group API (prov_group.c); calls only below both.
 */
#include "prov_client_private.h"
#include "prov_group.h"

#include <stdlib.h>

void prov_group_link(struct prov_group *g, PROV_DEVICE_LL_HANDLE h)
{
    h->group = g;
    h->group_due_stale = true;
    h->group_prev = NULL;
    h->group_next = g->members;
    if (g->members)
        g->members->group_prev = h;
    g->members = h;
}

void prov_group_unlink(struct prov_group *g, PROV_DEVICE_LL_HANDLE h)
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

void prov_group_member_changed(struct prov_group *g, PROV_DEVICE_LL_HANDLE h,
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

void prov_group_enter(struct prov_group *g)
{
    g->busy_depth++;
}

void prov_group_leave(struct prov_group *g)
{
    if (--g->busy_depth == 0 && g->destroy_pending && !g->in_run)
        prov_group_free(g);
}

void prov_group_abort(PROV_DEVICE_LL_HANDLE h)
{
    dps_http_destroy(h->http);
    h->http = NULL;
    if (h->running && h->group)
        prov_group_member_changed(h->group, h, -1);
    prov_group_unlink(h->group, h);
    if (h->running) {
        h->running = false;
        prov_fail(h, PROV_DEVICE_RESULT_ERROR,
                  "the registration was aborted: its dps group was closed");
    }
}

void prov_group_free(struct prov_group *g)
{
    /* Members first: their transfers leave the pool before it goes. */
    dps_http_pool_stop(g->pool); /* nothing more starts */
    while (g->members)
        prov_group_abort(g->members);
    dps_http_pool_destroy(g->pool);
    free(g);
}
