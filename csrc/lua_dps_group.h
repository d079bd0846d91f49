/*
 * The group binding (lua_dps_group.c) and what it needs from the client
 * binding (lua_dps.c). Not installed.
 */
#ifndef LUA_DPS_GROUP_H
#define LUA_DPS_GROUP_H

#include "lua_compat.h"
#include "prov_device_ll_client.h"

/* lua_dps.c: the handle of the dps.core client at idx; raises when idx
 * is not a client or the client is closed. */
PROV_DEVICE_LL_HANDLE dps_lua_check_handle(lua_State *L, int idx);

/* lua_dps_group.c: registers the group metatable; pushes core.group. */
void dps_lua_group_open(lua_State *L);

#endif
