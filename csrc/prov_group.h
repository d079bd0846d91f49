/*
 * Internals of groups (prov_device_ll_group.h), shared by the group API
 * (prov_group.c), what a handle tells its group (prov_group_member.c,
 * called by prov_device_ll_client.c) and the Lua binding
 * (lua_dps_group.c). Not installed.
 *
 * Calls go one way: the handle calls prov_group_member.c only; the group
 * API calls the handle's public API and both below it.
 */
#ifndef PROV_GROUP_H
#define PROV_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dps_http_pool.h"
#include "prov_device_ll_group.h"

struct prov_group {
    dps_http_pool *pool; /* the members' shared transport driver */
    PROV_DEVICE_LL_HANDLE members;
    PROV_DEVICE_LL_HANDLE cursor; /* next member of the walk in progress */
    int busy_depth;               /* DoWork of the group or a member runs */
    int walking;                  /* the walk reads every timer afterwards */
    bool in_run;                  /* Run frees a group destroyed inside */
    /* So that a DoWork with nothing due costs O(1), not O(members): */
    size_t running;      /* members registering */
    int64_t next_due_ms; /* earliest member timer (monotonic) */
    bool destroy_pending;
};

/* prov_group_member.c */

/* Links h into g's members. */
void prov_group_link(struct prov_group *g, PROV_DEVICE_LL_HANDLE h);
/* Unlinks a handle being freed or detached (g NULL: nothing). */
void prov_group_unlink(struct prov_group *g, PROV_DEVICE_LL_HANDLE h);

/* Member h started (+1) or ended (-1) a registration, or is about to
 * run DoWork on its own (0): its timers change, so the next group DoWork
 * looks at it afresh. */
void prov_group_member_changed(struct prov_group *g, PROV_DEVICE_LL_HANDLE h,
                               int delta);

/* Brackets a DoWork of the group or of a member called on its own, so
 * that destroying the group from one of its callbacks is deferred until
 * it returns. */
void prov_group_enter(struct prov_group *g);
void prov_group_leave(struct prov_group *g);

/* Ends a registration of a handle whose group is being destroyed: no
 * callback; the handle is detached and stays usable alone. */
void prov_group_abort(PROV_DEVICE_LL_HANDLE h);

/* Aborts every member and frees the group. */
void prov_group_free(struct prov_group *g);

/* prov_group.c */

/* DoWork of the group with each due member's DoWork done by run (the Lua
 * binding runs it through the member's Lua object). */
typedef void (*prov_group_run_fn)(PROV_DEVICE_LL_HANDLE h, void *ctx);
void prov_group_dowork_with(struct prov_group *g, prov_group_run_fn run,
                            void *ctx);

#endif
