/*
 * The group binding (lua_dps_group.c) and what it knows of the client
 * binding (lua_dps.c): the client's metatable name and that its userdata
 * begins with its handle. Not installed.
 */
#ifndef LUA_DPS_GROUP_H
#define LUA_DPS_GROUP_H

#include <poll.h>

#include "lua_compat.h"
#include "prov_device_ll_client.h"

/* The dps.core client userdata: its first member is its
 * PROV_DEVICE_LL_HANDLE, NULL once closed (lua_dps.c checks this). */
#define DPS_LUA_CLIENT_MT "dps.core client"
#define DPS_LUA_CLOSED_CLIENT_MSG "attempt to use a closed dps client"

/* Pushes { {fd=, read=, write=}, ... }: what pollfds() returns for a
 * client and for a group alike. */
static inline void dps_lua_push_pollfds(lua_State *L,
                                        const PROV_DEVICE_POLLFD *fds, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, fds[i].fd);
        lua_setfield(L, -2, "fd");
        lua_pushboolean(L, (fds[i].events & POLLIN) != 0);
        lua_setfield(L, -2, "read");
        lua_pushboolean(L, (fds[i].events & POLLOUT) != 0);
        lua_setfield(L, -2, "write");
        lua_rawseti(L, -2, (int)i + 1);
    }
}

/* lua_dps_group.c: registers the group metatable; pushes core.group. */
void dps_lua_group_open(lua_State *L);

#endif
