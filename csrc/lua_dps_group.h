/*
 * The group binding (lua_dps_group.c) and what it knows of the client
 * binding (lua_dps.c): the client's metatable name and that its userdata
 * begins with its handle. Not installed.
 */
#ifndef LUA_DPS_GROUP_H
#define LUA_DPS_GROUP_H

#include "lua_compat.h"
#include "prov_device_ll_client.h"

/* The dps.core client userdata: its first member is its
 * PROV_DEVICE_LL_HANDLE, NULL once closed (lua_dps.c checks this). */
#define DPS_LUA_CLIENT_MT "dps.core client"
#define DPS_LUA_CLOSED_CLIENT_MSG "attempt to use a closed dps client"

/* lua_dps_group.c: registers the group metatable; pushes core.group. */
void dps_lua_group_open(lua_State *L);

#endif
