/*
 * dps.core groups: the Lua binding of prov_device_ll_group.h.
 *
 *   local g = core.group([max_connections])
 *   g:attach(client)        -- a dps.core client, idle
 *   g:step()                -> true | nil, "callback error: ...", "CALLBACK_ERROR"
 *   g:wait([max_s])         -> true (work is due) | false
 *   g:pollfds(), g:timeout(), g:is_busy(), g:close()
 *
 * step() drives the group's sockets once, then runs dowork() of each
 * member that is due through the member's own Lua object, so callbacks
 * run exactly as they do for a client stepped alone (same thread, same
 * error handling, same deferred close). Members are found through a
 * weak-valued table keyed by their C handle: the group never keeps a
 * client alive, and a collected client's __gc detaches it.
 */
#define _POSIX_C_SOURCE 200809L

#include "lua_dps_group.h"

#include <limits.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "prov_group.h"

#define GROUP_MT "dps.core group"
#define CLOSED_GROUP_MSG "attempt to use a closed dps group"

typedef struct {
    PROV_DEVICE_LL_GROUP_HANDLE g; /* NULL once closed */
    int members_ref;               /* weak table: handle -> client */
    int stepping;                  /* step() is on the C stack */
} lgroup;

/* The handle of the dps.core client at idx; raises when idx is not a
 * client or the client is closed. */
static PROV_DEVICE_LL_HANDLE check_client_handle(lua_State *L, int idx)
{
    PROV_DEVICE_LL_HANDLE h =
        *(PROV_DEVICE_LL_HANDLE *)luaL_checkudata(L, idx, DPS_LUA_CLIENT_MT);

    if (h == NULL)
        luaL_error(L, DPS_LUA_CLOSED_CLIENT_MSG);
    return h;
}

static lgroup *check_group(lua_State *L)
{
    return (lgroup *)luaL_checkudata(L, 1, GROUP_MT);
}

static lgroup *check_open_group(lua_State *L)
{
    lgroup *lg = check_group(L);

    if (lg->g == NULL)
        luaL_error(L, CLOSED_GROUP_MSG);
    return lg;
}

/* core.group([max_connections]) -> group */
static int l_group_new(lua_State *L)
{
    lgroup *lg;
    uint32_t cap = PROV_GROUP_DEFAULT_MAX_CONNECTIONS;

    if (!lua_isnoneornil(L, 1)) {
        lua_Number n = luaL_checknumber(L, 1);
        if (!(n >= 0 && n <= 65535) || (lua_Number)(long)n != n)
            return luaL_argerror(L, 1,
                                 "max_connections must be an integer "
                                 "0..65535 (0: no cap)");
        cap = (uint32_t)n;
    }
    lg = (lgroup *)compat_newuserdata(L, sizeof(*lg));
    memset(lg, 0, sizeof(*lg));
    lg->members_ref = LUA_NOREF;
    luaL_setmetatable(L, GROUP_MT);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lg->members_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lg->g = Prov_Device_LL_Group_Create();
    if (lg->g == NULL)
        return luaL_error(L, "cannot create a dps group (out of memory)");
    Prov_Device_LL_Group_SetOption(lg->g, PROV_GROUP_OPTION_MAX_CONNECTIONS,
                                   &cap);
    return 1;
}

/* group:attach(client) -> true | nil, message, code */
static int l_attach(lua_State *L)
{
    lgroup *lg = check_open_group(L);
    PROV_DEVICE_LL_HANDLE h = check_client_handle(L, 2);
    PROV_DEVICE_RESULT r = Prov_Device_LL_Group_Attach(lg->g, h);

    if (r != PROV_DEVICE_RESULT_OK) {
        lua_pushnil(L);
        lua_pushstring(L, Prov_Device_LL_Get_Error(h)->message);
        lua_pushstring(L, Prov_Device_LL_Result_Name(r));
        return 3;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, lg->members_ref);
    lua_pushlightuserdata(L, (void *)h);
    lua_pushvalue(L, 2);
    lua_rawset(L, -3);
    lua_pushboolean(L, 1);
    return 1;
}

/* What run_member needs: the state, where the members table and the
 * first error sit on its stack. */
typedef struct {
    lua_State *L;
    int members;
    int first_error;
} step_ctx;

/* Runs member:dowork() protected; keeps the first error. Nothing here
 * may raise: it runs inside the C group's walk. */
static void run_member(PROV_DEVICE_LL_HANDLE h, void *ctx)
{
    step_ctx *k = (step_ctx *)ctx;
    lua_State *L = k->L;
    int top = lua_gettop(L);

    lua_pushlightuserdata(L, (void *)h);
    lua_rawget(L, k->members);
    if (!lua_isuserdata(L, -1)) {
        /* Collected, its __gc not run yet (weak values go first): no
         * Lua callback can run (none is armed outside its dowork), but
         * its registration must not stall the group until then. */
        Prov_Device_LL_DoWork(h);
    } else {
        /* The method table is a plain table: no metamethod can run. */
        if (lua_getmetatable(L, -1)) {
            lua_getfield(L, -1, "__index");
            if (lua_istable(L, -1)) {
                lua_getfield(L, -1, "dowork");
                lua_pushvalue(L, top + 1);
                if (lua_pcall(L, 1, 0, 0) != LUA_OK &&
                    lua_isnil(L, k->first_error)) {
                    lua_replace(L, k->first_error);
                }
            }
        }
    }
    lua_settop(L, top);
}

/* One step of the group at stack index 1. Returns 0, or 3 with nil,
 * message, "CALLBACK_ERROR" pushed. lg->g is NULL afterwards when a
 * callback closed the group. */
static int step_once(lua_State *L, lgroup *lg)
{
    step_ctx k;
    int base = lua_gettop(L);

    luaL_checkstack(L, 8, "dps group step");
    lua_rawgeti(L, LUA_REGISTRYINDEX, lg->members_ref);
    lua_pushnil(L);
    k.L = L;
    k.members = base + 1;
    k.first_error = base + 2;
    lg->stepping = 1;
    prov_group_dowork_with(lg->g, run_member, &k);
    lg->stepping = 0;
    if (!lua_isnil(L, base + 2)) {
        lua_pushnil(L);
        lua_pushvalue(L, base + 2);
        lua_pushliteral(L, "CALLBACK_ERROR");
        return 3;
    }
    lua_settop(L, base);
    return 0;
}

static lgroup *check_steppable(lua_State *L, const char *what)
{
    lgroup *lg = check_open_group(L);

    if (lg->stepping)
        luaL_error(L, "%s() called from inside a dps callback", what);
    return lg;
}

/* group:step() -> true | nil, "callback error: ...", "CALLBACK_ERROR" */
static int l_step(lua_State *L)
{
    lgroup *lg = check_steppable(L, "step");
    int n;

    lua_settop(L, 1);
    if ((n = step_once(L, lg)) != 0)
        return n;
    lua_pushboolean(L, 1);
    return 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long check_max_ms(lua_State *L, int arg)
{
    lua_Number s;

    if (lua_isnoneornil(L, arg))
        return -1;
    s = luaL_checknumber(L, arg);
    if (!(s >= 0))
        luaL_argerror(L, arg, "max_s must be a non-negative number");
    if (s > 1e6)
        s = 1e6;
    return (long)(s * 1000 + 0.999);
}

/* group:run([max_s]) -> true (no client busy) | false (max_s passed or
 * the group was closed) | nil, message, "CALLBACK_ERROR" */
static int l_run(lua_State *L)
{
    lgroup *lg = check_steppable(L, "run");
    long max_ms = check_max_ms(L, 2);
    int64_t end_ms = max_ms >= 0 ? now_ms() + max_ms : -1;
    int n;

    lua_settop(L, 1);
    for (;;) {
        long left = -1;
        if ((n = step_once(L, lg)) != 0)
            return n;
        if (lg->g == NULL) {
            lua_pushboolean(L, 0);
            return 1;
        }
        if (!Prov_Device_LL_Group_Is_Busy(lg->g)) {
            lua_pushboolean(L, 1);
            return 1;
        }
        if (end_ms >= 0) {
            int64_t l = end_ms - now_ms();
            if (l <= 0) {
                lua_pushboolean(L, 0);
                return 1;
            }
            left = (long)l;
        }
        /* Busy yet nothing to wait for cannot happen; never spin. */
        if (Prov_Device_LL_Group_Wait(lg->g, left) <= 0 && left < 0)
            poll(NULL, 0, 100);
    }
}

/* group:wait([max_s]) -> true | false | nil, message, code */
static int l_wait(lua_State *L)
{
    lgroup *lg = check_steppable(L, "wait");
    int r = Prov_Device_LL_Group_Wait(lg->g, check_max_ms(L, 2));

    if (r < 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "poll failed");
        lua_pushliteral(L, "ERROR");
        return 3;
    }
    lua_pushboolean(L, r);
    return 1;
}

/* group:pollfds() -> { {fd=, read=, write=}, ... } */
static int l_pollfds(lua_State *L)
{
    lgroup *lg = check_open_group(L);
    PROV_DEVICE_POLLFD buf[64], *fds = buf;
    size_t n = 0;

    Prov_Device_LL_Group_Get_Pollfds(lg->g, buf, 64, &n);
    if (n > 64) {
        size_t max = n;
        fds = (PROV_DEVICE_POLLFD *)compat_newuserdata(L, max * sizeof(*fds));
        Prov_Device_LL_Group_Get_Pollfds(lg->g, fds, max, &n);
        if (n > max)
            n = max;
    }
    dps_lua_push_pollfds(L, fds, n);
    return 1;
}

/* group:timeout() -> seconds until step() is due (0 = now) | nil */
static int l_timeout(lua_State *L)
{
    long ms = Prov_Device_LL_Group_Get_Timeout_Ms(check_open_group(L)->g);

    if (ms < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, (lua_Number)ms / 1000);
    return 1;
}

static int l_is_busy(lua_State *L)
{
    lua_pushboolean(L, Prov_Device_LL_Group_Is_Busy(check_open_group(L)->g));
    return 1;
}

/* group:close() -> true; idempotent. Aborts what is in flight; from a
 * callback the C group defers the free until step() returns. */
static int l_close(lua_State *L)
{
    lgroup *lg = check_group(L);
    PROV_DEVICE_LL_GROUP_HANDLE g = lg->g;

    lg->g = NULL;
    Prov_Device_LL_Group_Destroy(g);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_gc(lua_State *L)
{
    lgroup *lg = check_group(L);

    l_close(L);
    luaL_unref(L, LUA_REGISTRYINDEX, lg->members_ref);
    lg->members_ref = LUA_NOREF;
    return 0;
}

static int l_tostring(lua_State *L)
{
    lgroup *lg = check_group(L);

    lua_pushfstring(L, GROUP_MT " (%s) %p", lg->g ? "open" : "closed",
                    (void *)lg);
    return 1;
}

static const luaL_Reg group_methods[] = {
    {"attach", l_attach},   {"step", l_step},       {"run", l_run},
    {"wait", l_wait},       {"pollfds", l_pollfds}, {"timeout", l_timeout},
    {"is_busy", l_is_busy}, {"close", l_close},     {NULL, NULL}};

static const luaL_Reg group_metamethods[] = {{"__gc", l_gc},
                                             {"__close", l_gc},
                                             {"__tostring", l_tostring},
                                             {NULL, NULL}};

void dps_lua_group_open(lua_State *L)
{
    luaL_newmetatable(L, GROUP_MT);
    luaL_setfuncs(L, group_metamethods, 0);
    luaL_newlib(L, group_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_group_new);
}
