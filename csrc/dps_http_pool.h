/*
 * A pool of HTTP transfers over one libcurl multi handle and one share
 * handle (DNS and TLS sessions): the driver that the transports of a
 * group share (prov_group.c). It keeps the table of sockets libcurl asks
 * it to watch, runs at most as many transfers as it has slots and hands
 * each finished transfer back by marking the dps_http_pool_transfer its
 * easy handle carries as CURLOPT_PRIVATE. Knows nothing of handles.
 */
#ifndef DPS_HTTP_POOL_H
#define DPS_HTTP_POOL_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prov_device_ll_client.h"

typedef struct dps_http_pool dps_http_pool;

/* What a transfer's owner finds once the pool finished it; the easy
 * handle's CURLOPT_PRIVATE must point at it. */
typedef struct {
    bool done;
    int rc;       /* its CURLcode */
    int os_error; /* errno after the drive that ended it (e.g. EMFILE) */
} dps_http_pool_transfer;

/* NULL when memory runs out or libcurl cannot start. */
dps_http_pool *dps_http_pool_create(void);
/* Every transfer must have been removed first. NULL is ignored. */
void dps_http_pool_destroy(dps_http_pool *p);

/* Most connections open at once (0: no cap); applies at once. */
void dps_http_pool_set_max_connections(dps_http_pool *p, uint32_t cap);
/* Starts nothing more (before the owners remove their transfers). */
void dps_http_pool_stop(dps_http_pool *p);

CURLSH *dps_http_pool_share(dps_http_pool *p);

/* Adds a transfer, or queues it until a slot is free (so that new
 * connections come one at a time and resume the latest TLS session).
 * 0, or -1 when memory runs out. */
int dps_http_pool_add(dps_http_pool *p, CURL *easy);
/* Takes back a transfer that is queued or running. */
void dps_http_pool_remove(dps_http_pool *p, CURL *easy);

/* Tells libcurl which sockets are ready and marks finished transfers.
 * Does nothing while held. */
void dps_http_pool_drive(dps_http_pool *p);
/* While held, dps_http_pool_drive does nothing (a group walking its
 * members has driven already). */
void dps_http_pool_hold(dps_http_pool *p, bool hold);

/* Transfers finished since the last take; take also resets the count. */
size_t dps_http_pool_finished(const dps_http_pool *p);
size_t dps_http_pool_take_finished(dps_http_pool *p);

/* The sockets to watch: copies up to max and returns how many there are. */
size_t dps_http_pool_pollfds(const dps_http_pool *p, PROV_DEVICE_POLLFD *fds,
                             size_t max);
/* libcurl's next timer in ms, -1 for none. */
long dps_http_pool_timeout_ms(dps_http_pool *p);

#endif
