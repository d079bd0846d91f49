/*
 * JSON between Lua values and text for dps.core, through json-c, so that
 * numbers survive the round trip: Lua 5.3+ integers go out as exact
 * 64-bit integers, integral doubles (all of Lua 5.1's integers up to
 * 2^53) as integers, other doubles in the shortest form that reads back
 * the same; service integers come back as Lua integers where they fit and
 * as the closest float where they do not (never a clamped INT64_MAX).
 *
 *   core.json_encode(value) -> text | nil, message   (message names the
 *       payload key: "'payload.a[2]' is a sparse array ...")
 *   core.json_decode(text)  -> value (JSON null is core.null) | nil, message
 *   core.null               -> the null sentinel (a NULL light userdata,
 *                              the same value as lua-cjson's cjson.null)
 */
#ifndef DPS_LUA_JSON_H
#define DPS_LUA_JSON_H

#include <lua.h>

/* Adds json_encode, json_decode and null to the table on top of L. */
void dps_lua_json_open(lua_State *L);

#endif
