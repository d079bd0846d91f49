/*
 * dps.core: the Lua binding of the low-level C API (prov_device_ll_client.h).
 *
 * It mirrors the C API one to one (create, register_device, dowork,
 * set_option, set_payload, get_payload, destroy, version) so the
 * requirements of spec/SRS_TRACE.md trace to specs, and adds what an event loop and the
 * Lua layer (lua/dps.lua) need: pollfds, timeout, wait, is_busy,
 * last_error, registration_state, registration_id, hub_sas_token.
 *
 * A client is a userdata holding the C handle (liolib style): a NULL
 * handle means closed; close(), destroy(), __gc and __close share one
 * idempotent function.
 *
 * Callbacks. The C API calls its callbacks from inside
 * Prov_Device_LL_DoWork, i.e. from inside curl. A Lua error must never
 * longjmp across those C frames (Lua-cURL's rule), so every Lua callback
 * runs under lua_pcall with a traceback handler, and even the pushing of
 * its arguments (which may raise a memory error) happens inside a
 * protected C call. A failing callback's message is stashed; dowork()
 * re-raises it once DoWork has returned and the C state is consistent.
 * Callbacks run on the main Lua thread (luv's rule): dowork() may be
 * called from a coroutine, and a coroutine's stack is no place to run
 * code that outlives it.
 *
 * The Lua functions are held as registry references from a successful
 * register_device until the result callback has been delivered (or the
 * client is closed). Like a luv handle, a client whose callbacks refer to
 * it is therefore kept alive until its registration ends or it is closed;
 * a client dropped with a registration in flight whose callbacks do not
 * refer to it is collected, and __gc aborts the transfer. To make the
 * latter easy, every callback gets the client as its last argument
 * (dps.lua relies on this: its wrappers never capture the client).
 *
 * Re-entrancy (from inside a callback of the same client):
 *  - close()/destroy(): allowed. The handle is marked closed at once and
 *    the C API defers the free until DoWork returns; no further callback
 *    of that client is delivered.
 *  - dowork() and wait(): raise "dowork() called from inside a dps
 *    callback" (resp. wait()): recursing into DoWork is not defined by the
 *    C API, and blocking in a callback is always a bug. The raise lands in
 *    the callback, so the outer dowork() re-raises it as a callback error.
 *  - register_device() from the result callback: passed to the C API
 *    (a handle may register again after any result).
 *  - everything else: passed to the C API, which answers INVALID_STATE
 *    where the call makes no sense while registering.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua_compat.h"
#include "lua_dps_group.h"
#include "lua_json.h"
#include "prov_device_ll_client.h"
#include "dps_crypto.h"
#include "dps_encoding.h"
#include "prov_endpoint.h"
#include "prov_option_list.h"
#include "dps_tpm.h"

#define CLIENT_MT DPS_LUA_CLIENT_MT
#define CLOSED_MSG DPS_LUA_CLOSED_CLIENT_MSG
#define CB_PREFIX "callback error: "

#if LUA_VERSION_NUM == 501
/* Registry field holding the main thread (5.1 has no LUA_RIDX_MAINTHREAD). */
#define MAINTHREAD_KEY "dps.core mainthread"
#endif

/* What __tostring shows; the C API only tells busy or not. */
typedef enum {
    ST_IDLE,
    ST_REGISTERING,
    ST_ASSIGNED,
    ST_FAILED
} client_state;

typedef struct {
    PROV_DEVICE_LL_HANDLE h; /* NULL once closed */
    int result_ref;          /* registry refs of the Lua callbacks */
    int status_ref;
    int error_ref;           /* stashed callback error, until dowork ends */
    int self_ref;            /* the userdata, while dowork runs */
    lua_State *cbL;          /* thread callbacks run on; set during DoWork */
    int in_dowork;           /* DoWork of this client is on the C stack */
    int callback_oom;        /* a callback could not even be called */
    client_state state;
} lclient;
/* lua_dps_group.c reads a client's handle as the userdata's start. */
_Static_assert(offsetof(lclient, h) == 0, "the handle comes first");

/* ---- handle life ------------------------------------------------------ */

static void unref(lua_State *L, int *ref)
{
    luaL_unref(L, LUA_REGISTRYINDEX, *ref);
    *ref = LUA_NOREF;
}

/* The one close path: close(), destroy(), __gc and __close. Safe from a
 * callback of the same client: the C API defers the free. */
static void client_close(lua_State *L, lclient *c)
{
    PROV_DEVICE_LL_HANDLE h = c->h;

    c->h = NULL;
    if (h != NULL)
        Prov_Device_LL_Destroy(h);
    unref(L, &c->result_ref);
    unref(L, &c->status_ref);
}

static lclient *check_client(lua_State *L)
{
    return (lclient *)luaL_checkudata(L, 1, CLIENT_MT);
}

static lclient *check_open(lua_State *L)
{
    lclient *c = check_client(L);

    if (c->h == NULL)
        luaL_error(L, CLOSED_MSG);
    return c;
}

/* nil, message, code: the operational failure convention. The message
 * comes from the handle's error info when it has one. */
static int push_failure(lua_State *L, lclient *c, PROV_DEVICE_RESULT r)
{
    const char *msg = NULL;

    if (c != NULL && c->h != NULL) {
        const PROV_DEVICE_ERROR_INFO *e = Prov_Device_LL_Get_Error(c->h);
        if (e != NULL && e->message != NULL && e->message[0] != '\0')
            msg = e->message;
    }
    lua_pushnil(L);
    lua_pushstring(L, msg != NULL ? msg : Prov_Device_LL_Result_Name(r));
    lua_pushstring(L, Prov_Device_LL_Result_Name(r));
    return 3;
}

static int push_result(lua_State *L, lclient *c, PROV_DEVICE_RESULT r)
{
    if (r != PROV_DEVICE_RESULT_OK)
        return push_failure(L, c, r);
    lua_pushboolean(L, 1);
    return 1;
}

static void push_string_or_nil(lua_State *L, const char *s)
{
    if (s != NULL)
        lua_pushstring(L, s);
    else
        lua_pushnil(L);
}

/* A string argument for C: embedded NULs would silently truncate a key
 * or a certificate, so they are an argument error. */
static const char *check_cstring(lua_State *L, int arg, const char *what)
{
    size_t len;
    const char *s;

    if (lua_type(L, arg) != LUA_TSTRING)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a string", what));
    s = lua_tolstring(L, arg, &len);
    if (strlen(s) != len)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s contains a NUL byte", what));
    return s;
}

/* An integer in [lo, hi], whatever the Lua version's number type. */
static int get_integer(lua_State *L, int idx, double lo, double hi,
                       double *out)
{
    lua_Number n;

    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    n = lua_tonumber(L, idx);
    if (!(n >= lo && n <= hi) || (lua_Number)(long long)n != n)
        return 0;
    *out = (double)n;
    return 1;
}

/* The thread callbacks run on: the main thread, which lives as long as
 * the state. 5.1 cannot name it from a coroutine, so it is remembered
 * whenever the module runs on it (luaopen, create, dowork); until then a
 * dowork() from a coroutine uses that (running, hence alive) coroutine. */
static lua_State *main_thread(lua_State *L)
{
    lua_State *M;

#if LUA_VERSION_NUM == 501
    lua_getfield(L, LUA_REGISTRYINDEX, MAINTHREAD_KEY);
#else
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
#endif
    M = lua_tothread(L, -1);
    lua_pop(L, 1);
    return M != NULL ? M : L;
}

#if LUA_VERSION_NUM == 501
static void learn_main_thread(lua_State *L)
{
    int known;

    lua_getfield(L, LUA_REGISTRYINDEX, MAINTHREAD_KEY);
    known = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (known)
        return;
    if (lua_pushthread(L)) /* true on the main thread */
        lua_setfield(L, LUA_REGISTRYINDEX, MAINTHREAD_KEY);
    else
        lua_pop(L, 1);
}
#else
#define learn_main_thread(L) ((void)0)
#endif

/* ---- module functions ------------------------------------------------- */

/* core.create(uri, scope_id [, "http"]) -> client | nil, message, code */
static int l_create(lua_State *L)
{
    const char *uri = check_cstring(L, 1, "uri");
    const char *scope = check_cstring(L, 2, "scope_id");
    const char *proto = luaL_optstring(L, 3, "http");
    lclient *c;

    if (strcmp(proto, "http") != 0 && strcmp(proto, "https") != 0)
        return luaL_argerror(L, 3, "protocol must be \"http\" (the only "
                             "transport)");
    /* The userdata exists before the handle, so a memory error raised
     * by Lua cannot leak a handle. */
    c = (lclient *)compat_newuserdata(L, sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->result_ref = c->status_ref = c->error_ref = LUA_NOREF;
    c->self_ref = LUA_NOREF;
    c->state = ST_IDLE;
    luaL_setmetatable(L, CLIENT_MT);
    learn_main_thread(L);
    {
        char why[160];
        if (prov_check_endpoint(uri, why, sizeof why) != 0) {
            lua_pushnil(L);
            lua_pushfstring(L, "endpoint %s", why);
            lua_pushstring(
                L, Prov_Device_LL_Result_Name(PROV_DEVICE_RESULT_INVALID_ARG));
            return 3;
        }
    }
    c->h = Prov_Device_LL_Create(uri, scope, Prov_Device_HTTP_Protocol);
    if (c->h == NULL) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot create a dps client for endpoint '%s' "
                        "and scope '%s' (invalid, or out of memory)",
                        uri, scope);
        lua_pushstring(L, Prov_Device_LL_Result_Name(
                              PROV_DEVICE_RESULT_INVALID_ARG));
        return 3;
    }
    return 1;
}

static int l_version(lua_State *L)
{
    lua_pushstring(L, Prov_Device_LL_GetVersionString());
    return 1;
}

/* core.result_name(n): the C enum value to its name ("OK", ...). */
static int l_result_name(lua_State *L)
{
    double n = 0;

    if (!get_integer(L, 1, INT_MIN, INT_MAX, &n))
        return luaL_argerror(L, 1, "integer expected");
    lua_pushstring(L, Prov_Device_LL_Result_Name((PROV_DEVICE_RESULT)(int)n));
    return 1;
}

static int l_tpm_available(lua_State *L)
{
    lua_pushboolean(L, dps_tpm_available());
    return 1;
}

/* ---- callbacks -------------------------------------------------------- */

static const char *status_name(PROV_DEVICE_REG_STATUS s)
{
    switch (s) {
    case PROV_DEVICE_REG_STATUS_CONNECTED:   return "connected";
    case PROV_DEVICE_REG_STATUS_REGISTERING: return "registering";
    case PROV_DEVICE_REG_STATUS_ASSIGNING:   return "assigning";
    case PROV_DEVICE_REG_STATUS_ASSIGNED:    return "assigned";
    case PROV_DEVICE_REG_STATUS_ERROR:       return "error";
    case PROV_DEVICE_REG_HUB_NOT_SPECIFIED:  return "hub_not_specified";
    }
    return "unknown";
}

/* One callback invocation, passed to the protected dispatcher. */
typedef struct {
    lclient *c;
    int is_result;            /* result callback, else status callback */
    PROV_DEVICE_RESULT result;
    const char *hub;
    const char *device_id;
    PROV_DEVICE_REG_STATUS status;
} callback_call;

/* Message handler: the error as text, with a traceback. */
static int traceback_handler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);

    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)",
                                  luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Runs protected (compat_cpcall), on the callback thread: fetches the Lua
 * function, pushes its arguments and calls it under a second pcall with
 * the traceback handler. The first error of a DoWork is kept. */
static int dispatch(lua_State *L)
{
    callback_call *k = (callback_call *)lua_touserdata(L, 1);
    lclient *c = k->c;
    int nargs, handler;

    lua_pushcfunction(L, traceback_handler);
    handler = lua_gettop(L);
    if (k->is_result) {
        /* The registration is over: drop both refs first, so the callback
         * may register again or close the client. */
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->result_ref);
        unref(L, &c->result_ref);
        unref(L, &c->status_ref);
        lua_pushstring(L, Prov_Device_LL_Result_Name(k->result));
        push_string_or_nil(L, k->hub);
        push_string_or_nil(L, k->device_id);
        nargs = 4;
    } else {
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->status_ref);
        lua_pushstring(L, status_name(k->status));
        nargs = 2;
    }
    /* The client itself, last: a callback can reach the handle without
     * capturing it in a closure (which the registry ref would pin). */
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->self_ref);
    if (lua_pcall(L, nargs, 0, handler) != LUA_OK
        && c->error_ref == LUA_NOREF) {
        const char *msg = lua_tostring(L, -1);
        lua_pushfstring(L, CB_PREFIX "%s", msg != NULL ? msg : "?");
        c->error_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 0;
}

static void run_callback(callback_call *k)
{
    lua_State *L = k->c->cbL;
    int top;

    if (L == NULL)
        return;
    top = lua_gettop(L);
    /* Only a memory error makes the dispatcher itself fail. Storing its
     * message could raise again, unprotected, so a flag says it. */
    if (compat_cpcall(L, dispatch, k) != LUA_OK)
        k->c->callback_oom = 1;
    lua_settop(L, top);
}

static void on_register(PROV_DEVICE_RESULT result, const char *hub,
                        const char *device_id, void *ctx)
{
    lclient *c = (lclient *)ctx;
    callback_call k;

    /* Closed from an earlier callback of this DoWork: deliver nothing. */
    if (c->h == NULL || c->result_ref == LUA_NOREF)
        return;
    c->state = result == PROV_DEVICE_RESULT_OK ? ST_ASSIGNED : ST_FAILED;
    memset(&k, 0, sizeof(k));
    k.c = c;
    k.is_result = 1;
    k.result = result;
    k.hub = hub;
    k.device_id = device_id;
    run_callback(&k);
}

static void on_status(PROV_DEVICE_REG_STATUS status, void *ctx)
{
    lclient *c = (lclient *)ctx;
    callback_call k;

    if (c->h == NULL || c->status_ref == LUA_NOREF)
        return;
    memset(&k, 0, sizeof(k));
    k.c = c;
    k.status = status;
    run_callback(&k);
}


/* ---- methods: those of the C API -------------------------------------- */

/* A C function that starts a run: Register_Device and its siblings. */
typedef PROV_DEVICE_RESULT (*start_fn)(
    PROV_DEVICE_LL_HANDLE, PROV_DEVICE_CLIENT_REGISTER_DEVICE_CALLBACK, void *,
    PROV_DEVICE_CLIENT_REGISTER_STATUS_CALLBACK, void *);

static int start_run(lua_State *L, start_fn start)
{
    lclient *c = check_open(L);
    int rref, sref;
    PROV_DEVICE_RESULT r;

    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TFUNCTION);
    lua_settop(L, 3);
    /* New refs first: if luaL_ref raises, nothing has changed. */
    sref = lua_isnil(L, 3) ? (lua_pop(L, 1), LUA_NOREF)
                           : luaL_ref(L, LUA_REGISTRYINDEX);
    rref = luaL_ref(L, LUA_REGISTRYINDEX);
    r = start(c->h, on_register, c, on_status, c);
    if (r != PROV_DEVICE_RESULT_OK) {
        /* Possibly still registering: the old refs stay in use. */
        luaL_unref(L, LUA_REGISTRYINDEX, rref);
        luaL_unref(L, LUA_REGISTRYINDEX, sref);
        return push_failure(L, c, r);
    }
    unref(L, &c->result_ref);
    unref(L, &c->status_ref);
    c->result_ref = rref;
    c->status_ref = sref;
    c->state = ST_REGISTERING;
    lua_pushboolean(L, 1);
    return 1;
}

/* client:register_device(result_cb [, status_cb]) -> true | nil, msg, code
 * result_cb(result_name, iothub_uri, device_id, client), once, from
 * dowork(); status_cb(status_name, client) with "connected",
 * "registering", "assigning", "assigned", "error", "hub_not_specified".
 * The trailing client argument is an addition to the C API's signature. */
static int l_register_device(lua_State *L)
{
    return start_run(L, Prov_Device_LL_Register_Device);
}

/* client:lookup_device(result_cb [, status_cb]): as register_device, for
 * the device registration status lookup. */
static int l_lookup_device(lua_State *L)
{
    return start_run(L, Prov_Device_LL_Lookup_Device);
}

/* client:cached_assignment(result_cb [, status_cb]): as register_device,
 * answered from the assignment cache only; nil, msg, code on a miss. */
static int l_cached_assignment(lua_State *L)
{
    return start_run(L, Prov_Device_LL_Cached_Assignment);
}

/* client:dowork() -> true. Never blocks. Re-raises (after DoWork has
 * returned) the first error raised by a callback, as "callback error:
 * <message and traceback>". */
static int l_dowork(lua_State *L)
{
    lclient *c = check_open(L);

    if (c->in_dowork)
        return luaL_error(L, "dowork() called from inside a dps callback");
    learn_main_thread(L);
    lua_pushvalue(L, 1);
    c->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    c->cbL = main_thread(L);
    c->in_dowork = 1;
    Prov_Device_LL_DoWork(c->h);
    /* c is still valid: the userdata is argument 1. c->h may be NULL now
     * (closed in a callback; the C API freed it on DoWork's return). */
    c->in_dowork = 0;
    c->cbL = NULL;
    unref(L, &c->self_ref);
    if (c->callback_oom && c->error_ref == LUA_NOREF) {
        c->callback_oom = 0;
        return luaL_error(L, CB_PREFIX "not enough memory");
    }
    c->callback_oom = 0;
    if (c->error_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->error_ref);
        unref(L, &c->error_ref);
        return lua_error(L);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* The options and how their values are passed, from the one list. */
static const struct {
    const char *name;
    prov_option_type type;
    const char *key; /* dps.new key mapping to it one to one, or NULL */
    double min, max;
} options[] = {
#define LUA_OPTION(name, type, field, key, min, max) \
    {name, type, key, min, max},
    PROV_OPTION_LIST(LUA_OPTION)
#undef LUA_OPTION
};

/* The C type of the value SetOption takes, as the header spells it. */
static const char *option_c_type(prov_option_type t)
{
    switch (t) {
    case PROV_OPT_BOOL:
        return "bool*";
    case PROV_OPT_U8:
        return "uint8_t*";
    case PROV_OPT_U32:
        return "uint32_t*";
    case PROV_OPT_PROXY:
        return "HTTP_PROXY_OPTIONS*";
    default:
        return "const char*";
    }
}

/* A whole number as an integer where the Lua has them (5.3+). */
static void push_whole(lua_State *L, double v)
{
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, (lua_Number)v);
#endif
}

static const char *range_text(double min, double max, char *buf, size_t len)
{
    snprintf(buf, len, "%.0f..%.0f", min, max);
    return buf;
}

static const char *option_type_name(prov_option_type t)
{
    switch (t) {
    case PROV_OPT_BOOL:
        return "boolean";
    case PROV_OPT_U8:
    case PROV_OPT_U32:
        return "integer";
    case PROV_OPT_PROXY:
        return "proxy";
    default:
        return "string";
    }
}

/* core.options() -> { {name=, type=, c_type=, key=, min=, max=, secret=,
 * nonempty=, rule=}, ... }: every option set_option takes, in the order of
 * the list; type is "string", "boolean", "integer" or "proxy", c_type the
 * C value type of Prov_Device_LL_SetOption; key is the dps.new key that
 * maps to it one to one (absent when the Lua layer composes it); min and
 * max bound integers; secret marks values that are wiped; nonempty marks
 * strings that must not be ""; rule names a format the value must have
 * ("registration_id", "base64_key": core.check_key). */
static int l_options(lua_State *L)
{
    size_t i, n = sizeof(options) / sizeof(options[0]);

    lua_createtable(L, (int)n, 0);
    for (i = 0; i < n; i++) {
        lua_createtable(L, 0, 8);
        lua_pushstring(L, options[i].name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, option_type_name(options[i].type));
        lua_setfield(L, -2, "type");
        lua_pushstring(L, option_c_type(options[i].type));
        lua_setfield(L, -2, "c_type");
        if (options[i].key) {
            lua_pushstring(L, options[i].key);
            lua_setfield(L, -2, "key");
        }
        if (options[i].type == PROV_OPT_U8 || options[i].type == PROV_OPT_U32) {
            push_whole(L, options[i].min);
            lua_setfield(L, -2, "min");
            push_whole(L, options[i].max);
            lua_setfield(L, -2, "max");
        }
        lua_pushboolean(L, options[i].type == PROV_OPT_SECRET ||
                               options[i].type == PROV_OPT_KEY);
        lua_setfield(L, -2, "secret");
        if (options[i].type == PROV_OPT_NONEMPTY ||
            options[i].type == PROV_OPT_REG_ID ||
            options[i].type == PROV_OPT_KEY) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "nonempty");
        }
        if (options[i].type == PROV_OPT_REG_ID) {
            lua_pushliteral(L, "registration_id");
            lua_setfield(L, -2, "rule");
        }
        if (options[i].type == PROV_OPT_KEY) {
            lua_pushliteral(L, "base64_key");
            lua_setfield(L, -2, "rule");
        }
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

static const char *proxy_string(lua_State *L, const char *key, int required)
{
    const char *s;

    lua_getfield(L, 3, key);
    if (lua_isnil(L, -1) && !required) {
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_argerror(L, 3, lua_pushfstring(L, "option '" OPTION_HTTP_PROXY
                      "': '%s' must be a string", key));
    s = lua_tostring(L, -1);
    /* The string stays referenced by the table at index 3. */
    lua_pop(L, 1);
    return s;
}

/* {host=, port=, username=, password=} -> HTTP_PROXY_OPTIONS. */
static void check_proxy(lua_State *L, HTTP_PROXY_OPTIONS *p)
{
    double port = 0;

    if (!lua_istable(L, 3))
        luaL_argerror(L, 3, "option '" OPTION_HTTP_PROXY "' expects a table "
                      "{host=, port=, username=, password=} or nil");
    p->host_address = proxy_string(L, "host", 1);
    lua_getfield(L, 3, "port");
    if (!get_integer(L, -1, 1, 65535, &port))
        luaL_argerror(L, 3, "option '" OPTION_HTTP_PROXY "': 'port' must be "
                      "an integer 1..65535");
    lua_pop(L, 1);
    p->port = (int)port;
    p->username = proxy_string(L, "username", 0);
    p->password = proxy_string(L, "password", 0);
    if ((p->username == NULL) != (p->password == NULL))
        luaL_argerror(L, 3, "option '" OPTION_HTTP_PROXY "': 'username' and "
                      "'password' go together");
}

static int find_option(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(options) / sizeof(options[0]); i++)
        if (strcmp(options[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* client:set_option(name, value) -> true | nil, msg, code. The value is
 * converted by the option's name to the C type in the header; a wrong
 * type, an out-of-range number or an unknown name is an argument error. */
static int l_set_option(lua_State *L)
{
    lclient *c = check_open(L);
    const char *name = luaL_checkstring(L, 2);
    int i = find_option(name);
    HTTP_PROXY_OPTIONS proxy;
    bool b;
    uint8_t u8;
    uint32_t u32;
    double n = 0;
    char range[48];
    const void *value = NULL;

    if (i < 0)
        return luaL_argerror(L, 2, lua_pushfstring(L, "unknown option '%s'",
                                                   name));
    switch (options[i].type) {
    case PROV_OPT_BOOL:
        if (!lua_isboolean(L, 3))
            return luaL_argerror(L, 3, lua_pushfstring(L, "option '%s' "
                                 "expects a boolean", name));
        b = lua_toboolean(L, 3) != 0;
        value = &b;
        break;
    case PROV_OPT_U8:
    case PROV_OPT_U32:
        if (!get_integer(L, 3, options[i].min, options[i].max, &n)) {
            const char *msg =
                lua_pushfstring(L, "option '%s' expects an integer %s", name,
                                range_text(options[i].min, options[i].max,
                                           range, sizeof range));
            return luaL_argerror(L, 3, msg);
        }
        if (options[i].type == PROV_OPT_U8) {
            u8 = (uint8_t)n;
            value = &u8;
        } else {
            u32 = (uint32_t)n;
            value = &u32;
        }
        break;
    case PROV_OPT_PROXY:
        if (!lua_isnoneornil(L, 3)) {
            check_proxy(L, &proxy);
            value = &proxy;
        }
        break;
    default: /* the string types; nil clears */
        if (!lua_isnoneornil(L, 3))
            value =
                check_cstring(L, 3, lua_pushfstring(L, "option '%s'", name));
        break;
    }
    return push_result(L, c, Prov_Device_LL_SetOption(c->h, name, value));
}

/* client:set_payload(json_text | nil) -> true | nil, msg, code */
static int l_set_payload(lua_State *L)
{
    lclient *c = check_open(L);
    const char *json = NULL;

    if (!lua_isnoneornil(L, 2))
        json = check_cstring(L, 2, "payload");
    return push_result(L, c, Prov_Device_LL_Set_Provisioning_Payload(c->h,
                                                                     json));
}

/* client:get_payload() -> JSON text | nil */
static int l_get_payload(lua_State *L)
{
    lclient *c = check_open(L);

    push_string_or_nil(L, Prov_Device_LL_Get_Provisioning_Payload(c->h));
    return 1;
}

/* client:close() / destroy() -> true; idempotent, never raises. */
static int l_close(lua_State *L)
{
    client_close(L, check_client(L));
    lua_pushboolean(L, 1);
    return 1;
}

/* __close (5.4): close() without a result. */
static int l_close_meta(lua_State *L)
{
    client_close(L, check_client(L));
    return 0;
}

/* __gc: close, and drop a stash left by an interrupted dowork (a memory
 * error between DoWork and the re-raise). */
static int l_gc(lua_State *L)
{
    lclient *c = check_client(L);

    client_close(L, c);
    unref(L, &c->error_ref);
    return 0;
}

static int l_tostring(lua_State *L)
{
    static const char *const names[] = {
        "idle", "registering", "assigned", "failed"
    };
    lclient *c = check_client(L);
    const char *st = names[c->state];

    if (c->h == NULL)
        st = "closed";
    else if (c->state == ST_REGISTERING && !Prov_Device_LL_Is_Busy(c->h))
        st = "finished"; /* result pending delivery by dowork() */
    lua_pushfstring(L, CLIENT_MT " (%s) %p", st, (void *)c);
    return 1;
}

/* ---- methods: extensions ---------------------------------------------- */

/* Fills fds with the handle's descriptors; returns the count. Uses buf
 * when up to nbuf fit, else a scratch userdata left on the stack. */
static size_t get_pollfds(lua_State *L, lclient *c, PROV_DEVICE_POLLFD *buf,
                          size_t nbuf, PROV_DEVICE_POLLFD **fds)
{
    size_t n = 0;
    PROV_DEVICE_RESULT r = Prov_Device_LL_Get_Pollfds(c->h, buf, nbuf, &n);

    *fds = buf;
    if (r != PROV_DEVICE_RESULT_OK)
        return 0;
    if (n > nbuf) {
        size_t max = n;
        *fds = (PROV_DEVICE_POLLFD *)compat_newuserdata(L, max * sizeof(**fds));
        if (Prov_Device_LL_Get_Pollfds(c->h, *fds, max, &n) != PROV_DEVICE_RESULT_OK)
            return 0;
        if (n > max)
            n = max;
    }
    return n;
}

/* client:pollfds() -> { {fd=, read=bool, write=bool}, ... } */
static int l_pollfds(lua_State *L)
{
    lclient *c = check_open(L);
    PROV_DEVICE_POLLFD buf[8], *fds;
    size_t n = get_pollfds(L, c, buf, 8, &fds);

    dps_lua_push_pollfds(L, fds, n);
    return 1;
}

/* client:timeout() -> seconds until dowork() is due (0 = now) | nil */
static int l_timeout(lua_State *L)
{
    lclient *c = check_open(L);
    long ms = Prov_Device_LL_Get_Timeout_Ms(c->h);

    if (ms < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, (lua_Number)ms / 1000);
    return 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* poll(2) until a descriptor is ready or end_ms (-1: no end) passes,
 * restarting after signals with the remaining time. Returns poll's
 * result (>0 ready, 0 timed out, <0 error with errno). */
static int poll_until(struct pollfd *p, size_t n, int64_t end_ms)
{
    for (;;) {
        int ms = -1, r;

        if (end_ms >= 0) {
            int64_t left = end_ms - now_ms();
            ms = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
        }
        r = poll(p, (nfds_t)n, ms);
        if (r >= 0 || errno != EINTR)
            return r;
    }
}

/* Milliseconds (rounded up: never a busy loop) from a wait() argument;
 * -1 when absent. */
static int64_t check_max_ms(lua_State *L, int arg)
{
    lua_Number s;

    if (lua_isnoneornil(L, arg))
        return -1;
    s = luaL_checknumber(L, arg);
    if (!(s >= 0))
        luaL_argerror(L, arg, "max_s must be a non-negative number");
    if (s > 1e9) /* ~30 years: as good as forever, and no overflow */
        s = 1e9;
    return (int64_t)(s * 1000 + 0.999);
}

/* client:wait([max_s]) -> true | false | nil, msg, code
 * Sleeps until a descriptor is ready or the client's timer is due (true),
 * or max_s seconds passed (false). Returns false at once when no
 * registration is running or there is nothing to wait for. */
static int l_wait(lua_State *L)
{
    lclient *c = check_open(L);
    int64_t max_ms = check_max_ms(L, 2), end_ms = -1, t_ms;
    PROV_DEVICE_POLLFD buf[8], *fds;
    struct pollfd pbuf[8], *p = pbuf;
    size_t i, n;
    int r, timer_first;

    if (c->in_dowork)
        return luaL_error(L, "wait() called from inside a dps callback");
    if (!Prov_Device_LL_Is_Busy(c->h)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    n = get_pollfds(L, c, buf, 8, &fds);
    if (n > 8)
        p = (struct pollfd *)compat_newuserdata(L, n * sizeof(*p));
    for (i = 0; i < n; i++) {
        p[i].fd = fds[i].fd;
        p[i].events = fds[i].events;
        p[i].revents = 0;
    }
    t_ms = Prov_Device_LL_Get_Timeout_Ms(c->h);
    timer_first = t_ms >= 0 && (max_ms < 0 || t_ms <= max_ms);
    if (timer_first)
        end_ms = now_ms() + t_ms;
    else if (max_ms >= 0)
        end_ms = now_ms() + max_ms;
    else if (n == 0) {
        /* Neither descriptors nor a timer nor a limit: poll would sleep
         * forever. */
        lua_pushboolean(L, 0);
        return 1;
    }
    r = poll_until(p, n, end_ms);
    if (r < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "poll: %s", strerror(errno));
        lua_pushstring(L, Prov_Device_LL_Result_Name(PROV_DEVICE_RESULT_ERROR));
        return 3;
    }
    lua_pushboolean(L, r > 0 || timer_first);
    return 1;
}

static int l_is_busy(lua_State *L)
{
    lua_pushboolean(L, Prov_Device_LL_Is_Busy(check_open(L)->h));
    return 1;
}

/* client:last_error() -> {result=, message=, http_status=, error_code=,
 * tracking_id=, transport_code=}; mirrors the C struct (0 and "" when
 * unknown). */
static int l_last_error(lua_State *L)
{
    const PROV_DEVICE_ERROR_INFO *e = Prov_Device_LL_Get_Error(check_open(L)->h);

    lua_createtable(L, 0, 8);
    if (e == NULL)
        return 1;
    lua_pushstring(L, Prov_Device_LL_Result_Name(e->result));
    lua_setfield(L, -2, "result");
    lua_pushstring(L, e->message != NULL ? e->message : "");
    lua_setfield(L, -2, "message");
    lua_pushinteger(L, (lua_Integer)e->http_status);
    lua_setfield(L, -2, "http_status");
    lua_pushinteger(L, (lua_Integer)e->service_error_code);
    lua_setfield(L, -2, "error_code");
    lua_pushstring(L, e->tracking_id != NULL ? e->tracking_id : "");
    lua_setfield(L, -2, "tracking_id");
    lua_pushinteger(L, e->transport_code);
    lua_setfield(L, -2, "transport_code");
    return 1;
}

static int l_registration_state(lua_State *L)
{
    push_string_or_nil(L, Prov_Device_LL_Get_Registration_State(
                              check_open(L)->h));
    return 1;
}

static int l_registration_id(lua_State *L)
{
    push_string_or_nil(L, Prov_Device_LL_Get_Registration_Id(
                              check_open(L)->h));
    return 1;
}

/* client:hub_connection_string() -> "HostName=..;DeviceId=..;
 * SharedAccessKey=.." after a symmetric-key assignment, else nil. */
static int l_hub_connection_string(lua_State *L)
{
    push_string_or_nil(L, Prov_Device_LL_Get_Hub_Connection_String(
                              check_open(L)->h));
    return 1;
}

/* A SAS token is a credential until it expires: wiped, not just freed. */
static void free_token(char *token)
{
    if (token)
        dps_wipe(token, strlen(token));
    free(token);
}

/* client:hub_sas_token(ttl_s [, resource]) -> token | nil, msg, code */
static int l_hub_sas_token(lua_State *L)
{
    lclient *c = check_open(L);
    const char *resource = NULL;
    char *token = NULL;
    double ttl = 0;
    PROV_DEVICE_RESULT r;

    if (!get_integer(L, 2, 1, UINT32_MAX, &ttl))
        return luaL_argerror(L, 2, "ttl must be an integer 1..4294967295 "
                             "(seconds)");
    if (!lua_isnoneornil(L, 3))
        resource = check_cstring(L, 3, "resource");
    r = Prov_Device_LL_Get_Hub_Sas_Token(c->h, resource, (uint32_t)ttl,
                                         &token);
    if (r != PROV_DEVICE_RESULT_OK || token == NULL) {
        free_token(token);
        return push_failure(L, c, r != PROV_DEVICE_RESULT_OK
                                      ? r : PROV_DEVICE_RESULT_ERROR);
    }
    /* Only a memory error can raise here; the token would leak then,
     * which is the lesser evil next to a second copy in a buffer. */
    lua_pushstring(L, token);
    free_token(token);
    return 1;
}

/* client:issued_certificate() -> PEM chain (leaf first) | nil */
static int l_issued_certificate(lua_State *L)
{
    push_string_or_nil(L,
                       Prov_Device_LL_Get_Issued_Certificate(check_open(L)->h));
    return 1;
}

/* client:is_cached() -> whether the last result came from the cache */
static int l_is_cached(lua_State *L)
{
    lua_pushboolean(L, Prov_Device_LL_Is_Cached_Assignment(check_open(L)->h));
    return 1;
}

/* client:forget_assignment() -> true | nil, msg, code */
static int l_forget_assignment(lua_State *L)
{
    lclient *c = check_open(L);

    return push_result(L, c, Prov_Device_LL_Forget_Assignment(c->h));
}

/* ---- registration ----------------------------------------------------- */

/* Name tables in the binding's own layout. */
/* clang-format off */
static const luaL_Reg methods[] = {
    { "register_device", l_register_device },
    { "dowork", l_dowork },
    { "set_option", l_set_option },
    { "set_payload", l_set_payload },
    { "get_payload", l_get_payload },
    { "destroy", l_close },
    { "close", l_close },
    { "pollfds", l_pollfds },
    { "timeout", l_timeout },
    { "wait", l_wait },
    { "is_busy", l_is_busy },
    { "last_error", l_last_error },
    { "registration_state", l_registration_state },
    { "registration_id", l_registration_id },
    { "hub_sas_token", l_hub_sas_token },
    { "hub_connection_string", l_hub_connection_string },
    { "lookup_device", l_lookup_device },
    { "cached_assignment", l_cached_assignment },
    { "issued_certificate", l_issued_certificate },
    { "is_cached", l_is_cached },
    { "forget_assignment", l_forget_assignment },
    { NULL, NULL }
};

static const luaL_Reg metamethods[] = {
    { "__gc", l_gc },
    { "__close", l_close_meta },
    { "__tostring", l_tostring },
    { NULL, NULL }
};

/* core.check_endpoint(s) -> true | nil, reason: the form create()
 * accepts, for dps.new to refuse a bad endpoint by name. */
static int l_check_endpoint(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char why[160];

    if (strlen(s) != len) {
        lua_pushnil(L);
        lua_pushliteral(L, "contains a NUL byte");
        return 2;
    }
    if (prov_check_endpoint(s, why, sizeof why) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* core.check_key(s) -> true | nil, reason: a symmetric or group key
 * must be non-empty strict Base64. The reason never quotes the key. */
static int l_check_key(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);

    if (len == 0 || strlen(s) != len || dps_base64_check(s, len) < 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "is not valid Base64 (standard alphabet, "
                        "padded, not empty)");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg functions[] = {
    { "create", l_create },
    { "check_endpoint", l_check_endpoint },
    { "check_key", l_check_key },
    { "version", l_version },
    { "result_name", l_result_name },
    { "tpm_available", l_tpm_available },
    { "options", l_options },
    { NULL, NULL }
};
/* clang-format on */

int luaopen_dps_core(lua_State *L);

int luaopen_dps_core(lua_State *L)
{
    learn_main_thread(L);
    luaL_newmetatable(L, CLIENT_MT); /* also sets __name (5.3+) */
    luaL_setfuncs(L, metamethods, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    luaL_newlib(L, functions);
    dps_lua_json_open(L);
    lua_pushliteral(L, DPS_CLIENT_VERSION);
    lua_setfield(L, -2, "VERSION");
    dps_lua_group_open(L);
    lua_setfield(L, -2, "group");
    return 1;
}
