/*
 * Lua values <-> JSON text through json-c; see lua_json.h.
 *
 * Tables: one with only string keys is an object; one whose keys are
 * exactly 1..n is an array; an empty table is an object ({}). Anything
 * else (a sparse array, mixed array and object keys, other key types)
 * is refused with a message naming the payload key, as are values JSON
 * has no form for (functions, NaN, infinity), strings that are not UTF-8
 * and nesting deeper than PROV_JSON_PAYLOAD_MAX_DEPTH (which also stops
 * a table that contains itself).
 *
 * Encoding calls nothing that can raise (the stack is grown with
 * lua_checkstack), so the tree is always complete or freed by us. Both
 * directions still run under a protected call: decoding pushes (which
 * may raise a memory error) while the json-c tree is held by a context
 * the caller frees in every case; the protected function hands its one
 * result back through a registry slot.
 */
#include "lua_json.h"

#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <lauxlib.h>

#include "lua_compat.h"
#include "prov_json.h"

#define RESULT_KEY "dps.core json result"
#define PATH_MAX_SHOWN 200

typedef struct {
    json_object *root; /* the tree being built or read; freed by caller */
    const char *text;  /* decode: the input */
    size_t len;
    char path[PATH_MAX_SHOWN + 8]; /* "payload.a[2]" of the value at hand */
    size_t path_len;
    char error[PATH_MAX_SHOWN + 200];
} json_ctx;

/* ---- paths, for messages ---------------------------------------------- */

/* Appends text to the path, cutting it (with "...") when too long and
 * turning control bytes into '?'. Returns the old length, to restore. */
static size_t path_push(json_ctx *c, const char *prefix, const char *text,
                        size_t n)
{
    size_t old = c->path_len, i;
    const char *parts[2] = {prefix, text};
    const size_t lens[2] = {strlen(prefix), n};

    for (int p = 0; p < 2; p++)
        for (i = 0; i < lens[p]; i++) {
            unsigned char ch = (unsigned char)parts[p][i];
            if (c->path_len >= PATH_MAX_SHOWN) {
                memcpy(c->path + PATH_MAX_SHOWN, "...", 4);
                c->path_len = PATH_MAX_SHOWN + 3;
                return old;
            }
            c->path[c->path_len++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
        }
    c->path[c->path_len] = '\0';
    return old;
}

static void path_pop(json_ctx *c, size_t old)
{
    c->path_len = old;
    c->path[old] = '\0';
}

static bool fail(json_ctx *c, const char *what)
{
    snprintf(c->error, sizeof c->error, "'%s' %s", c->path, what);
    return false;
}

/* ---- encode ----------------------------------------------------------- */

/* RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        size_t extra;
        uint32_t cp, min;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xE0) == 0xC0) {
            extra = 1, cp = b & 0x1F, min = 0x80;
        } else if ((b & 0xF0) == 0xE0) {
            extra = 2, cp = b & 0x0F, min = 0x800;
        } else if ((b & 0xF8) == 0xF0) {
            extra = 3, cp = b & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += extra + 1;
    }
    return true;
}

/* The shortest %g form that reads back as d, with '.' whatever the
 * locale says. */
static void format_double(double d, char *buf, size_t len)
{
    const char *point = ".";
    struct lconv *lc = localeconv();

    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (lc && lc->decimal_point && lc->decimal_point[0])
        point = lc->decimal_point;
    if (point[0] != '.' && point[1] == '\0')
        for (char *p = buf; *p; p++)
            if (*p == point[0])
                *p = '.';
}

static json_object *encode_number(lua_State *L, int idx, json_ctx *c)
{
    double d;
    char buf[40];

#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx))
        return json_object_new_int64((int64_t)lua_tointeger(L, idx));
#endif
    d = (double)lua_tonumber(L, idx);
    if (!isfinite(d)) {
        fail(c, "is NaN or infinite, which JSON cannot hold");
        return NULL;
    }
    /* An integral double is that integer exactly: print it as one, so
     * 356938035643809 never becomes 3.5693803564381e+14. */
    if (d == floor(d) && fabs(d) < 9223372036854775808.0 &&
        !(d == 0 && signbit(d)))
        return json_object_new_int64((int64_t)d);
    format_double(d, buf, sizeof buf);
    return json_object_new_double_s(d, buf);
}

/* A key usable as an array index: a positive integer (exact). */
static bool array_index(lua_State *L, int idx, lua_Number *out)
{
    lua_Number n;
    if (lua_type(L, idx) != LUA_TNUMBER)
        return false;
    n = lua_tonumber(L, idx);
    if (!(n >= 1 && n <= 9007199254740992.0 && n == floor(n)))
        return false;
    *out = n;
    return true;
}

static bool encode_value(lua_State *L, int idx, int depth, json_ctx *c,
                         json_object **out);

/* Sorts a table out: how many entries, the largest array index, and
 * whether any key is a string or something else. */
typedef struct {
    size_t count;
    lua_Number max_index;
    bool strings, others;
    int other_type;
} table_shape;

static table_shape shape_of(lua_State *L, int idx)
{
    table_shape t = {0, 0, false, false, LUA_TNIL};
    lua_Number n;

    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        t.count++;
        if (lua_type(L, -2) == LUA_TSTRING) {
            t.strings = true;
        } else if (array_index(L, -2, &n)) {
            if (n > t.max_index)
                t.max_index = n;
        } else if (!t.others) {
            t.others = true;
            t.other_type = lua_type(L, -2);
        }
        lua_pop(L, 1);
    }
    return t;
}

static bool encode_array(lua_State *L, int idx, int depth, size_t n,
                         json_ctx *c, json_object *arr)
{
    for (size_t i = 1; i <= n; i++) {
        char index[32];
        json_object *v = NULL;
        size_t old;
        bool ok;

        snprintf(index, sizeof index, "[%zu]", i);
        old = path_push(c, "", index, strlen(index));
        lua_rawgeti(L, idx, (int)i);
        ok = encode_value(L, lua_gettop(L), depth, c, &v);
        lua_pop(L, 1);
        path_pop(c, old);
        if (!ok) {
            json_object_put(v);
            return false;
        }
        if (json_object_array_add(arr, v) != 0) {
            json_object_put(v);
            return fail(c, "could not be encoded (out of memory)");
        }
    }
    return true;
}

static bool encode_object(lua_State *L, int idx, int depth, json_ctx *c,
                          json_object *obj)
{
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        size_t klen, old;
        const char *key =
            lua_tolstring(L, -2, &klen); /* a string: shape_of said so */
        json_object *v = NULL;
        bool ok;

        old = path_push(c, ".", key, klen);
        if (strlen(key) != klen ||
            !valid_utf8((const unsigned char *)key, klen)) {
            lua_pop(L, 2);
            return fail(c,
                        "has a key that is not UTF-8 text without NUL bytes");
        }
        ok = encode_value(L, lua_gettop(L), depth, c, &v);
        path_pop(c, old);
        if (!ok) {
            json_object_put(v);
            lua_pop(L, 2);
            return false;
        }
        if (json_object_object_add(obj, key, v) != 0) {
            json_object_put(v);
            lua_pop(L, 2);
            return fail(c, "could not be encoded (out of memory)");
        }
        lua_pop(L, 1);
    }
    return true;
}

static bool encode_table(lua_State *L, int idx, int depth, json_ctx *c,
                         json_object **out)
{
    table_shape t;
    char why[160];

    if (depth > PROV_JSON_PAYLOAD_MAX_DEPTH) {
        snprintf(c->error, sizeof c->error,
                 "payload nested deeper than " PROV_JSON_DEPTH_TEXT
                 " levels (at '%s')",
                 c->path);
        return false;
    }
    if (!lua_checkstack(L, 4))
        return fail(c, "could not be encoded (out of memory)");
    t = shape_of(L, idx);
    if (t.others) {
        snprintf(why, sizeof why,
                 "has a %s key; JSON keys are strings, arrays "
                 "are indexed 1..n",
                 lua_typename(L, t.other_type));
        return fail(c, why);
    }
    if (t.strings && t.max_index > 0)
        return fail(
            c, "mixes array indexes and string keys; use one or the other");
    if (!t.strings && t.max_index > (lua_Number)t.count) {
        snprintf(why, sizeof why,
                 "is a sparse array (%zu elements, largest index "
                 "%.0f); arrays must be indexed 1..n without holes (use null "
                 "for gaps)",
                 t.count, (double)t.max_index);
        return fail(c, why);
    }
    if (t.count > 0 && !t.strings) {
        *out = json_object_new_array();
        return *out ? encode_array(L, idx, depth, t.count, c, *out)
                    : fail(c, "could not be encoded (out of memory)");
    }
    *out = json_object_new_object();
    return *out ? encode_object(L, idx, depth, c, *out)
                : fail(c, "could not be encoded (out of memory)");
}

/* Encodes the value at idx into *out. On failure *out may hold a partial
 * tree, which the caller puts. */
static bool encode_value(lua_State *L, int idx, int depth, json_ctx *c,
                         json_object **out)
{
    const char *s;
    size_t len;
    char why[80];

    *out = NULL;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return true; /* JSON null; only reachable at the top */
    case LUA_TBOOLEAN:
        *out = json_object_new_boolean(lua_toboolean(L, idx));
        break;
    case LUA_TNUMBER:
        *out = encode_number(L, idx, c);
        if (!*out)
            return c->error[0]
                       ? false
                       : fail(c, "could not be encoded (out of memory)");
        return true;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        if (!valid_utf8((const unsigned char *)s, len))
            return fail(c, "is a string that is not UTF-8");
        if (len > INT32_MAX)
            return fail(c, "is a string too long for JSON");
        *out = json_object_new_string_len(s, (int)len);
        break;
    case LUA_TTABLE:
        return encode_table(L, idx, depth + 1, c, out);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return true; /* the null sentinel */
        /* fall through */
    default:
        snprintf(why, sizeof why, "is a %s, which JSON cannot hold",
                 lua_typename(L, lua_type(L, idx)));
        return fail(c, why);
    }
    return *out ? true : fail(c, "could not be encoded (out of memory)");
}

/* Protected: encodes argument 2 (ctx is argument 1); the text goes to
 * the registry slot. */
static int encode_protected(lua_State *L)
{
    json_ctx *c = (json_ctx *)lua_touserdata(L, 1);
    json_object *value = NULL;
    const char *text;
    bool ok;

    lua_settop(L, 2);
    ok = encode_value(L, 2, 0, c, &value);
    c->root = value; /* freed by the caller, complete or not */
    if (!ok)
        return 0;
    text = json_object_to_json_string_ext(
        value, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!text) {
        fail(c, "could not be encoded (out of memory)");
        return 0;
    }
    /* The only call that may raise: the tree is in c->root by now. */
    lua_pushstring(L, text);
    lua_setfield(L, LUA_REGISTRYINDEX, RESULT_KEY);
    return 0;
}

/* Calls f(ctx, arg) protected, frees ctx->root, and returns the result
 * left in the registry slot (1 value), or nil, message (2). Re-raises
 * errors that are not ours (out of memory). */
static int run_protected(lua_State *L, lua_CFunction f, json_ctx *c, int arg)
{
    int status;

    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, c);
    lua_pushvalue(L, arg);
    status = lua_pcall(L, 2, 0, 0);
    json_object_put(c->root);
    c->root = NULL;
    if (status != LUA_OK)
        return lua_error(L);
    if (c->error[0]) {
        lua_pushnil(L);
        lua_pushstring(L, c->error);
        return 2;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, RESULT_KEY);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, RESULT_KEY);
    return 1;
}

/* core.json_encode(value [, name]) -> text | nil, message. name is how
 * the value is called in messages (default "payload"). */
static int l_json_encode(lua_State *L)
{
    json_ctx c;
    size_t nlen;
    const char *name = luaL_optlstring(L, 2, "payload", &nlen);

    luaL_checkany(L, 1);
    memset(&c, 0, sizeof c);
    path_push(&c, "", name, nlen);
    return run_protected(L, encode_protected, &c, 1);
}

/* ---- decode ----------------------------------------------------------- */

static void push_value(lua_State *L, json_object *v)
{
    int64_t i;

    luaL_checkstack(L, 3, "JSON nested too deep");
    switch (json_object_get_type(v)) {
    case json_type_null:
        lua_pushlightuserdata(L, NULL);
        break;
    case json_type_boolean:
        lua_pushboolean(L, json_object_get_boolean(v));
        break;
    case json_type_int:
        i = json_object_get_int64(v);
        /* json-c keeps 2^63..2^64-1 as uint64; get_int64 saturates. */
        if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX) {
            lua_pushnumber(L, (lua_Number)json_object_get_uint64(v));
            break;
        }
#if LUA_VERSION_NUM >= 503
        lua_pushinteger(L, (lua_Integer)i);
#else
        lua_pushnumber(L, (lua_Number)i);
#endif
        break;
    case json_type_double:
        lua_pushnumber(L, (lua_Number)json_object_get_double(v));
        break;
    case json_type_string:
        lua_pushlstring(L, json_object_get_string(v),
                        (size_t)json_object_get_string_len(v));
        break;
    case json_type_array: {
        size_t n = json_object_array_length(v);
        lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0);
        for (size_t k = 0; k < n; k++) {
            push_value(L, json_object_array_get_idx(v, k));
            lua_rawseti(L, -2, (int)k + 1);
        }
        break;
    }
    case json_type_object:
        lua_createtable(L, 0, json_object_object_length(v));
        json_object_object_foreach(v, key, member)
        {
            lua_pushstring(L, key);
            push_value(L, member);
            lua_rawset(L, -3);
        }
        break;
    }
}

static int decode_protected(lua_State *L)
{
    json_ctx *c = (json_ctx *)lua_touserdata(L, 1);
    int rc = prov_json_parse_value(c->text, c->len,
                                   PROV_JSON_PAYLOAD_MAX_DEPTH + 2, &c->root);

    if (rc == PROV_JSON_TOO_DEEP) {
        snprintf(c->error, sizeof c->error,
                 "JSON nested deeper than " PROV_JSON_DEPTH_TEXT " levels");
        return 0;
    }
    if (rc != PROV_JSON_OK) {
        snprintf(c->error, sizeof c->error, "not valid JSON");
        return 0;
    }
    push_value(L, c->root);
    lua_setfield(L, LUA_REGISTRYINDEX, RESULT_KEY);
    return 0;
}

/* core.json_decode(text) -> value | nil, message */
static int l_json_decode(lua_State *L)
{
    json_ctx c;

    memset(&c, 0, sizeof c);
    c.text = luaL_checklstring(L, 1, &c.len);
    return run_protected(L, decode_protected, &c, 1);
}

void dps_lua_json_open(lua_State *L)
{
    lua_pushcfunction(L, l_json_encode);
    lua_setfield(L, -2, "json_encode");
    lua_pushcfunction(L, l_json_decode);
    lua_setfield(L, -2, "json_decode");
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
}
