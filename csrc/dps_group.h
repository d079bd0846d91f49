/*
 * Internals of dps groups (prov_device_ll_group.h), shared with the
 * transport (dps_http.c), the handle (prov_device_ll_client.c) and the
 * Lua binding (lua_dps_group.c). Not installed.
 */
#ifndef DPS_GROUP_H
#define DPS_GROUP_H

#include <curl/curl.h>

#include "prov_device_ll_group.h"

/* The shared driver a grouped transport adds its transfers to. */
CURLM *dps_group_multi(struct dps_group *g);
CURLSH *dps_group_share(struct dps_group *g);

/* Adds a transfer to the driver, or queues it while the group's first
 * transfer has not finished yet (so that the rest resume its TLS
 * session). Returns 0, or -1 when libcurl refuses or memory runs out. */
int dps_group_add(struct dps_group *g, CURL *easy);
/* Takes a transfer back, queued or running. */
void dps_group_remove(struct dps_group *g, CURL *easy);

/* Tells libcurl which of the group's sockets are ready and hands
 * finished transfers to their owners (dps_http_transfer_done). Does
 * nothing while the group's DoWork is already driving. */
void dps_group_drive(struct dps_group *g);

/* Brackets a member's DoWork called on its own, so that destroying the
 * group from one of its callbacks is deferred until it returns. */
void dps_group_enter(struct dps_group *g);
void dps_group_leave(struct dps_group *g);

/* Member h started (+1) or ended (-1) a registration, or is about to
 * run DoWork on its own (0): its timers change, so the next group DoWork
 * looks at it afresh. */
void dps_group_member_changed(struct dps_group *g, PROV_DEVICE_LL_HANDLE h,
                              int delta);

/* Unlinks a handle being freed or detached. */
void dps_group_unlink(struct dps_group *g, PROV_DEVICE_LL_HANDLE h);

/* DoWork of the group with each due member's DoWork done by run (the Lua
 * binding runs it through the member's Lua object). */
typedef void (*dps_group_run_fn)(PROV_DEVICE_LL_HANDLE h, void *ctx);
void dps_group_dowork_with(struct dps_group *g, dps_group_run_fn run,
                           void *ctx);

#endif
