/*
 * Lua 5.1 / 5.2 / 5.3 / 5.4 compatibility for the dps binding.
 *
 * The binding is written against the 5.3/5.4 API; this header supplies
 * what 5.1 lacks (and the few things 5.4 renamed), so one source builds
 * against every version. Only what lua_dps.c uses is here: this is not a
 * general compat library. Everything is static inline: no link-time
 * clashes with other modules that carry their own compat code, and no
 * unused-function warnings for the parts a file does not use.
 */
#ifndef DPS_LUA_COMPAT_H
#define DPS_LUA_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 501 || LUA_VERSION_NUM > 504
#error "dps: unsupported Lua version (5.1 to 5.4 are supported)"
#endif

#ifndef LUA_OK
#define LUA_OK 0
#endif

/* Userdata without user values: 5.4 gives every full userdata one by
 * default, which costs memory on a router and is not needed here. */
#if LUA_VERSION_NUM >= 504
#define compat_newuserdata(L, size) lua_newuserdatauv((L), (size), 0)
#else
#define compat_newuserdata(L, size) lua_newuserdata((L), (size))
#endif

#if LUA_VERSION_NUM == 501

#define lua_rawlen(L, i) lua_objlen((L), (i))

#define lua_absindex(L, i)                                              \
    (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)

/* The replacements are static functions under compat_ names, with the
 * standard names as macros: LuaJIT (LUA_VERSION_NUM 501) already declares
 * some of them, and a static definition would clash with its prototype. */
#undef luaL_newlibtable
#undef luaL_newlib
#define luaL_newlibtable(L, l)                                          \
    lua_createtable((L), 0, (int)(sizeof(l) / sizeof((l)[0]) - 1))
#define luaL_newlib(L, l) (luaL_newlibtable((L), (l)), luaL_setfuncs((L), (l), 0))

#define luaL_setfuncs compat_setfuncs
#define luaL_setmetatable compat_setmetatable
#define luaL_testudata compat_testudata
#define luaL_traceback compat_traceback

/* As in 5.2: registers l into the table below the nup upvalues. */
static inline void luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup, "too many upvalues");
    for (; l->name != NULL; l++) {
        int i;
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}

static inline void luaL_setmetatable(lua_State *L, const char *tname)
{
    luaL_getmetatable(L, tname);
    lua_setmetatable(L, -2);
}

static inline void *luaL_testudata(lua_State *L, int i, const char *tname)
{
    void *p = lua_touserdata(L, i);
    if (p == NULL || !lua_getmetatable(L, i))
        return NULL;
    luaL_getmetatable(L, tname);
    if (!lua_rawequal(L, -1, -2))
        p = NULL;
    lua_pop(L, 2);
    return p;
}

/* 5.1 has no C traceback; debug.traceback does the same work. Pushes
 * msg alone when the debug library is not loaded (a stripped build). L1
 * must be L: that is the only use here (a message handler). */
static inline void luaL_traceback(lua_State *L, lua_State *L1, const char *msg,
                           int level)
{
    (void)L1;
    lua_getglobal(L, "debug");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "traceback");
        lua_remove(L, -2);
        if (lua_isfunction(L, -1)) {
            lua_pushstring(L, msg);
            /* +1: debug.traceback itself is one more level down. */
            lua_pushinteger(L, level + 1);
            if (lua_pcall(L, 2, 1, 0) == 0 && lua_isstring(L, -1))
                return;
        }
    }
    lua_pop(L, 1);
    lua_pushstring(L, msg);
}

/* Runs f(ud) protected; never raises. 5.1 has exactly this. */
#define compat_cpcall(L, f, ud) lua_cpcall((L), (f), (ud))

#else /* 5.2 and later */

/* lua_cpcall is gone; pushing a light C function and a light userdata
 * allocates nothing, so this cannot raise either. */
static inline int compat_cpcall(lua_State *L, lua_CFunction f, void *ud)
{
    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, ud);
    return lua_pcall(L, 1, 0, 0);
}

#endif

#endif
