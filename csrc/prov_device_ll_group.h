/*
 * dps groups: many registrations driven by one libcurl multi handle.
 *
 * A gateway that provisions the devices behind it, or a test that
 * provisions a simulated fleet, runs hundreds of handles at once. Alone,
 * each handle owns its connection (a TCP+TLS handshake and about three
 * descriptors each). Attached to a group, handles share one driver: one
 * multi handle with one connection pool, one DNS cache and one TLS
 * session cache, so registrations to the same endpoint reuse connections
 * and resume TLS sessions. At most max_connections sockets are open;
 * further requests queue for a free connection.
 *
 * Symmetric keys and TPM sign every request, so their requests may share
 * a connection. An X.509 client authenticates the connection itself:
 * libcurl never hands a connection (or a TLS session) made with one
 * client certificate to a request configured with another.
 *
 * A handle that is not attached behaves exactly as without groups. The
 * host loop of a group looks like the one of a single handle:
 *
 *     PROV_DEVICE_LL_GROUP_HANDLE g = Prov_Device_LL_Group_Create();
 *     Prov_Device_LL_Group_Attach(g, h1);   ... for every handle
 *     Prov_Device_LL_Register_Device(h1, ...);  ...
 *     Prov_Device_LL_Group_Run(g, 0);       or DoWork + poll() on
 *                                           Get_Pollfds / Get_Timeout_Ms
 *     Prov_Device_LL_Group_Destroy(g);
 *
 * Callbacks of the attached handles run from Prov_Device_LL_Group_DoWork
 * (or Run). Inside one, destroying any handle or the group is safe: the
 * free is deferred until the group's DoWork returns.
 */
#ifndef PROV_DEVICE_LL_GROUP_H
#define PROV_DEVICE_LL_GROUP_H

#include "prov_device_ll_client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct prov_group *PROV_DEVICE_LL_GROUP_HANDLE;

/* Default cap on the sockets a group opens (routers: ulimit -n 1024). */
#define PROV_GROUP_DEFAULT_MAX_CONNECTIONS 16

/* const uint32_t*: most connections the group opens at once, to all hosts
 * together; 0 = no cap. Default PROV_GROUP_DEFAULT_MAX_CONNECTIONS. */
#define PROV_GROUP_OPTION_MAX_CONNECTIONS "max_connections"

/* A new empty group, or NULL when memory runs out or libcurl cannot
 * start. Does no I/O. */
PROV_DEVICE_LL_GROUP_HANDLE Prov_Device_LL_Group_Create(void);

/* Aborts the registrations of every attached handle (no callback is
 * called for them), detaches them and frees the group. The handles stay
 * valid and work alone afterwards. NULL is ignored. From inside a
 * callback the whole of it is deferred until DoWork returns. */
void Prov_Device_LL_Group_Destroy(PROV_DEVICE_LL_GROUP_HANDLE group);

/* Sets a group option (PROV_GROUP_OPTION_*): INVALID_ARG for an unknown
 * name or a bad value; INVALID_STATE while a registration of the group
 * runs. */
PROV_DEVICE_RESULT Prov_Device_LL_Group_SetOption(
    PROV_DEVICE_LL_GROUP_HANDLE group, const char *option_name,
    const void *value);

/* Attaches a handle: its next registrations run through the group.
 * INVALID_STATE while the handle registers or belongs to another group.
 * Attaching it to its own group again is OK. Prov_Device_LL_Destroy of
 * an attached handle detaches it. */
PROV_DEVICE_RESULT Prov_Device_LL_Group_Attach(
    PROV_DEVICE_LL_GROUP_HANDLE group, PROV_DEVICE_LL_HANDLE handle);

/* Detaches an idle handle (INVALID_STATE while it registers). */
PROV_DEVICE_RESULT Prov_Device_LL_Group_Detach(PROV_DEVICE_LL_HANDLE handle);

/* Advances every registration of the group without blocking. NULL and a
 * call from inside one of the group's callbacks are ignored. */
void Prov_Device_LL_Group_DoWork(PROV_DEVICE_LL_GROUP_HANDLE group);

/* Descriptors of the whole group (at most about max_connections, not
 * one per handle); *count gets how many there are (may exceed max). */
PROV_DEVICE_RESULT Prov_Device_LL_Group_Get_Pollfds(
    PROV_DEVICE_LL_GROUP_HANDLE group, PROV_DEVICE_POLLFD *fds, size_t max,
    size_t *count);

/* Milliseconds until DoWork is due for some handle of the group: 0 =
 * now, -1 = nothing scheduled (only descriptors, or nothing running). */
long Prov_Device_LL_Group_Get_Timeout_Ms(PROV_DEVICE_LL_GROUP_HANDLE group);

/* True while any handle of the group registers. */
bool Prov_Device_LL_Group_Is_Busy(PROV_DEVICE_LL_GROUP_HANDLE group);

/* Sleeps until some handle has work (a descriptor is ready or a timer is
 * due) or max_ms passed (-1: no limit but the group's own timer).
 * Returns 1 when DoWork is due, 0 when max_ms passed or nothing runs,
 * -1 on a poll(2) error. Never call it from a callback. */
int Prov_Device_LL_Group_Wait(PROV_DEVICE_LL_GROUP_HANDLE group, long max_ms);

/* DoWork and Wait until no handle of the group is busy (true) or max_ms
 * passed (false; -1 = no limit). */
bool Prov_Device_LL_Group_Run(PROV_DEVICE_LL_GROUP_HANDLE group, long max_ms);

#ifdef __cplusplus
}
#endif
#endif
