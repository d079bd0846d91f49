/*
 * JSON of the DPS protocol through json-c (docs/protocol.md §2, §3).
 *
 * Everything that arrives here may be hostile: a proxy's HTML page, a cut
 * stream, a service bug, or an attacker's reply. So the tokener runs in
 * strict mode with UTF-8 validation and a depth limit (json-c recurses
 * when it frees and serializes), bodies carry an explicit length (a NUL
 * inside one is an error, not an end), and every field is read through
 * type-checking helpers: a field of the wrong type counts as absent.
 */
#include "prov_json.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/* The protocol itself nests at most 4 deep (reply → registrationState →
 * x509 → certificateInfo); a custom payload may nest PROV_JSON_PAYLOAD_
 * MAX_DEPTH levels below registrationState. The bound keeps json-c's
 * recursive free/serialize code (and ours) shallow. */
#define PROV_JSON_REPLY_DEPTH (PROV_JSON_PAYLOAD_MAX_DEPTH + 2)
_Static_assert(PROV_JSON_PAYLOAD_MAX_DEPTH == 64,
               "PROV_JSON_DEPTH_TEXT says 64");

/* Compact, and '/' left alone: Base64 keys stay byte-identical (§2.3). */
#define PROV_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static char *dup_bytes(const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Length of the RFC 8259 number at s[0..len), 0 if there is none. */
static size_t number_len(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    if (i < len && s[i] == '0')
        i++;
    else if (i < len && is_digit(s[i]))
        while (i < len && is_digit(s[i]))
            i++;
    else
        return 0;
    if (i < len && s[i] == '.') {
        if (++i >= len || !is_digit(s[i]))
            return 0;
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || !is_digit(s[i]))
            return 0;
        while (i < len && is_digit(s[i]))
            i++;
    }
    /* "-01", "1.2.3": a number must not run on. */
    if (i < len && (is_digit(s[i]) || s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
        return 0;
    return i;
}

/* Length of the string token at s[0] == '"', 0 if it is unterminated or
 * holds a raw control character. Escapes are checked by json-c. */
static size_t string_len(const char *s, size_t len)
{
    for (size_t i = 1; i < len; i++) {
        if (s[i] == '"')
            return i + 1;
        if ((unsigned char)s[i] < 0x20)
            return 0;
        if (s[i] == '\\')
            i++;
    }
    return 0;
}

/* Whether the number token s[0..n) is an integer (no fraction, no
 * exponent) outside what json-c stores exactly (int64 below zero, uint64
 * above): json-c would clamp it to INT64_MIN or UINT64_MAX. */
static bool is_big_int(const char *s, size_t n)
{
    static const char max_neg[] = "9223372036854775808";  /* -INT64_MIN */
    static const char max_pos[] = "18446744073709551615"; /* UINT64_MAX */
    const char *limit = max_pos;
    size_t limit_len = sizeof max_pos - 1;

    if (memchr(s, '.', n) || memchr(s, 'e', n) || memchr(s, 'E', n))
        return false;
    if (s[0] == '-') {
        s++;
        n--;
        limit = max_neg;
        limit_len = sizeof max_neg - 1;
    }
    /* No leading zeros in JSON: more digits means larger. */
    if (n != limit_len)
        return n > limit_len;
    return memcmp(s, limit, n) > 0;
}

/* json-c's strict mode still lets through single-quoted keys, raw control
 * characters in strings and non-JSON numbers (NaN, Infinity, 1., -01),
 * and would write them out again as invalid JSON. This lexical pass
 * rejects them; json-c then checks the structure. It also counts the
 * integers too big for json-c (see is_big_int). */
static bool lexically_ok(const char *s, size_t len, size_t *big_ints)
{
    size_t i = 0;
    *big_ints = 0;
    while (i < len) {
        char c = s[i];
        size_t n = 1;
        if (c == '"') {
            n = string_len(s + i, len - i);
        } else if (c == '-' || is_digit(c)) {
            n = number_len(s + i, len - i);
            if (n && is_big_int(s + i, n))
                (*big_ints)++;
        } else if (c == '\'' || c == 'N' || c == 'I') {
            n = 0; /* 'key', NaN, Infinity */
        }
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* json-c 0.17 and 0.18 (OpenWrt's, Debian 13's) hold string bytes in a
 * plain char; where char is signed (x86, MIPS) strict mode takes every
 * byte >= 0x80 for a control character and refuses all non-ASCII text.
 * There such text goes to json-c with its non-ASCII characters written as
 * \u escapes: the same value. (Raw control characters are refused by the
 * lexical pass above whatever json-c does.) */
#if JSON_C_VERSION_NUM >= 0x001100 && CHAR_MIN < 0
#define PROV_JSON_ESCAPE_NON_ASCII 1

/* The code point of the UTF-8 sequence at s[*i] (n bytes in all),
 * advancing *i; -1 for invalid UTF-8 (overlong, surrogate, truncated,
 * beyond U+10FFFF), as json-c's own validation refuses it. */
static long utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    static const long min[4] = {0, 0x80, 0x800, 0x10000};
    unsigned char b = s[*i];
    size_t more, k;
    long c;

    if (b < 0x80)
        more = 0;
    else if (b >= 0xc2 && b <= 0xdf)
        more = 1;
    else if ((b & 0xf0) == 0xe0)
        more = 2;
    else if (b >= 0xf0 && b <= 0xf4)
        more = 3;
    else
        return -1;
    if (n - *i < more + 1)
        return -1;
    c = more ? b & (0x3f >> more) : b;
    for (k = 1; k <= more; k++) {
        if ((s[*i + k] & 0xc0) != 0x80)
            return -1;
        c = (c << 6) | (s[*i + k] & 0x3f);
    }
    *i += more + 1;
    if (c < min[more] || (c >= 0xd800 && c < 0xe000) || c > 0x10ffff)
        return -1;
    return c;
}

/* A malloc'd, NUL-terminated copy of lexically valid JSON text with each
 * non-ASCII character inside a string as \uXXXX (a surrogate pair above
 * U+FFFF); NULL for invalid UTF-8, a non-ASCII byte outside a string, or
 * no memory. Each character at most triples in length. */
static char *escape_non_ascii(const char *text, size_t len, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)text;
    static const char hex[] = "0123456789abcdef";
    bool in_string = false;
    size_t i = 0, o = 0;
    char *out;

    if (len > (SIZE_MAX - 1) / 3 || !(out = malloc(len * 3 + 1)))
        return NULL;
    while (i < len) {
        long c;
        if (s[i] < 0x80) {
            if (in_string && s[i] == '\\' && i + 1 < len) {
                if (s[i + 1] >= 0x80)
                    break; /* no such escape */
                out[o++] = (char)s[i++]; /* an escaped quote ends nothing */
            } else if (s[i] == '"') {
                in_string = !in_string;
            }
            out[o++] = (char)s[i++];
            continue;
        }
        if (!in_string || (c = utf8_next(s, len, &i)) < 0)
            break;
        long units[2] = {c, -1};
        if (c > 0xffff) {
            units[0] = 0xd800 + ((c - 0x10000) >> 10);
            units[1] = 0xdc00 + ((c - 0x10000) & 0x3ff);
        }
        for (int u = 0; u < 2 && units[u] >= 0; u++) {
            out[o++] = '\\';
            out[o++] = 'u';
            for (int shift = 12; shift >= 0; shift -= 4)
                out[o++] = hex[(units[u] >> shift) & 0xf];
        }
    }
    if (i < len) {
        free(out);
        return NULL;
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}
#endif

/* A NUL-terminated copy of s[0..len) with "e0" after each integer too
 * big for json-c: it then parses them as the closest double (and writes
 * them out as given), where it would clamp an integer. */
static char *widen_big_ints(const char *s, size_t len, size_t big_ints)
{
    char *out = malloc(len + 2 * big_ints + 1);
    size_t i = 0, o = 0;
    if (!out)
        return NULL;
    while (i < len) {
        char c = s[i];
        size_t n = 1;
        if (c == '"')
            n = string_len(s + i, len - i);
        else if (c == '-' || is_digit(c))
            n = number_len(s + i, len - i);
        memcpy(out + o, s + i, n);
        o += n;
        if ((c == '-' || is_digit(c)) && is_big_int(s + i, n)) {
            memcpy(out + o, "e0", 2);
            o += 2;
        }
        i += n;
    }
    out[o] = '\0';
    return out;
}

/* Parses exactly one JSON value from text[0..len) into *out (NULL for
 * the literal null), nested at most max_depth levels. `terminated` says
 * a NUL follows text[len]: json-c needs to see it to finish a top-level
 * number or literal, and it is not part of the value. Returns
 * PROV_JSON_OK, PROV_JSON_TOO_DEEP or PROV_JSON_INVALID (also for out of
 * memory). Integers beyond 64 bits become the closest double. */
static int parse_exact(const char *text, size_t len, bool terminated,
                       int max_depth, json_object **out)
{
    size_t big_ints = 0;
    char *widened = NULL;
    *out = NULL;
    if (!text || len >= (size_t)INT_MAX / 2 || memchr(text, '\0', len) ||
        !lexically_ok(text, len, &big_ints))
        return PROV_JSON_INVALID;
    if (big_ints) {
        widened = widen_big_ints(text, len, big_ints);
        if (!widened)
            return PROV_JSON_INVALID;
        text = widened;
        len += 2 * big_ints;
        terminated = true;
    }
#ifdef PROV_JSON_ESCAPE_NON_ASCII
    char *escaped = NULL;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)text[i] >= 0x80) {
            escaped = escape_non_ascii(text, len, &len);
            free(widened);
            widened = escaped; /* one copy to free from here on */
            if (!escaped || len >= (size_t)INT_MAX)
                goto invalid;
            text = escaped;
            terminated = true; /* the copy ends in a NUL */
            break;
        }
    }
#endif
    /* json-c counts the value inside the innermost container as a level
     * too: max_depth containers need one more. */
    json_tokener *tok = json_tokener_new_ex(max_depth + 1);
    if (!tok)
        goto invalid;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *value = json_tokener_parse_ex(tok, text, (int)(len + terminated));
    size_t end = json_tokener_get_parse_end(tok);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    bool ok = jerr == json_tokener_success;
    json_tokener_free(tok);
    /* Trailing garbage: only whitespace may follow the value. Strict
     * json-c already refuses it today; this keeps the guarantee if a
     * future json-c relaxes "strict" (its docs reserve the right). */
    for (size_t i = end; ok && i < len; i++)
        ok = is_ws(text[i]);
    free(widened);
    if (!ok) {
        json_object_put(value);
        return jerr == json_tokener_error_depth ? PROV_JSON_TOO_DEEP
                                                : PROV_JSON_INVALID;
    }
    *out = value;
    return PROV_JSON_OK;
invalid:
    free(widened);
    return PROV_JSON_INVALID;
}

/* obj[key] if obj is an object holding key with a non-null value. */
static json_object *member(json_object *obj, const char *key)
{
    json_object *value = NULL;
    if (!obj || !json_object_is_type(obj, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(obj, key, &value))
        return NULL;
    return value;
}

/* A copy of a string value; NULL if absent, not a string, or holding a
 * NUL (which would silently truncate an id). Sets *oom on failure. */
static char *get_string(json_object *v, bool *oom)
{
    if (!v || !json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (memchr(s, '\0', len))
        return NULL;
    char *copy = dup_bytes(s, len);
    if (!copy)
        *oom = true;
    return copy;
}

/* A serialized copy of any value; NULL if absent. */
static char *get_json(json_object *v, bool *oom)
{
    if (!v)
        return NULL;
    const char *text = json_object_to_json_string_ext(v, PROV_JSON_FLAGS);
    char *copy = text ? dup_bytes(text, strlen(text)) : NULL;
    if (!copy)
        *oom = true;
    return copy;
}

/* An errorCode: an integer in int32 range (DPS codes have six digits).
 * Huge values (json-c saturates them) and doubles count as absent. */
static bool get_code(json_object *v, long *out)
{
    if (!v || !json_object_is_type(v, json_type_int))
        return false;
    int64_t n = json_object_get_int64(v);
    if (n < -INT32_MAX || n > INT32_MAX)
        return false;
    *out = (long)n;
    return true;
}

static bool same_ascii_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char ca = (*a >= 'A' && *a <= 'Z') ? (char)(*a + 32) : *a;
        char cb = (*b >= 'A' && *b <= 'Z') ? (char)(*b + 32) : *b;
        if (ca != cb)
            return false;
    }
    return *a == *b;
}

/* Case is ignored: the service sends lowercase, but C# parses the enum
 * case-insensitively and nothing is gained by being stricter. */
static prov_reg_status classify(const char *text)
{
    static const struct {
        const char *name;
        prov_reg_status status;
    } names[] = {
        {"unassigned", PROV_STATUS_UNASSIGNED}, {"assigning", PROV_STATUS_ASSIGNING},
        {"assigned", PROV_STATUS_ASSIGNED},     {"failed", PROV_STATUS_FAILED},
        {"disabled", PROV_STATUS_DISABLED},     {"blacklisted", PROV_STATUS_BLACKLISTED},
    };
    if (!text)
        return PROV_STATUS_ABSENT;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (same_ascii_nocase(text, names[i].name))
            return names[i].status;
    return PROV_STATUS_UNKNOWN;
}

/* registrationState: the assignment, or the reason it failed. */
static void read_state(json_object *rs, prov_reply *reply, bool *oom)
{
    if (!rs || !json_object_is_type(rs, json_type_object))
        return;
    reply->registration_state_json = get_json(rs, oom);
    reply->assigned_hub = get_string(member(rs, "assignedHub"), oom);
    reply->device_id = get_string(member(rs, "deviceId"), oom);
    reply->registration_id = get_string(member(rs, "registrationId"), oom);
    reply->payload_json = get_json(member(rs, "payload"), oom);
    reply->hub_key = get_string(member(member(rs, "tpm"), "authenticationKey"), oom);
    get_code(member(rs, "errorCode"), &reply->error_code);
    reply->error_message = get_string(member(rs, "errorMessage"), oom);
}

int prov_json_parse_reply(const char *body, size_t len, prov_reply *reply)
{
    if (!reply)
        return -1;
    memset(reply, 0, sizeof *reply);
    json_object *root = NULL;
    int rc = parse_exact(body, len, false, PROV_JSON_REPLY_DEPTH, &root);
    if (rc != PROV_JSON_OK || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        reply->too_deep = rc == PROV_JSON_TOO_DEEP;
        return -1;
    }
    bool oom = false;
    reply->status_text = get_string(member(root, "status"), &oom);
    reply->status = classify(reply->status_text);
    if (member(root, "status") && !reply->status_text)
        reply->status = PROV_STATUS_ABSENT; /* wrong type */
    reply->operation_id = get_string(member(root, "operationId"), &oom);
    read_state(member(root, "registrationState"), reply, &oom);
    /* An error body carries errorCode/message at the top level; a failed
     * operation carries errorCode/errorMessage in registrationState. */
    if (reply->error_code == 0)
        get_code(member(root, "errorCode"), &reply->error_code);
    if (!reply->error_message)
        reply->error_message = get_string(member(root, "message"), &oom);
    reply->tracking_id = get_string(member(root, "trackingId"), &oom);
    reply->authentication_key = get_string(member(root, "authenticationKey"), &oom);
    reply->key_name = get_string(member(root, "keyName"), &oom);
    json_object_put(root);
    if (oom) {
        /* Out of memory is reported like an unusable body: the caller
         * retries it as a transient failure. */
        prov_reply_free(reply);
        return -1;
    }
    return 0;
}

void prov_reply_free(prov_reply *reply)
{
    if (!reply)
        return;
    char **fields[] = {
        &reply->status_text,
        &reply->operation_id,
        &reply->registration_state_json,
        &reply->assigned_hub,
        &reply->device_id,
        &reply->payload_json,
        &reply->error_message,
        &reply->tracking_id,
        &reply->authentication_key,
        &reply->key_name,
        &reply->hub_key,
        &reply->registration_id,
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        free(*fields[i]);
    memset(reply, 0, sizeof *reply);
}

/* Adds key: value to obj, taking ownership of value in every case. */
static bool add(json_object *obj, const char *key, json_object *value)
{
    if (!value)
        return false;
    if (json_object_object_add(obj, key, value) != 0) {
        json_object_put(value);
        return false;
    }
    return true;
}

static json_object *tpm_object(const char *ek_b64, const char *srk_b64)
{
    json_object *tpm = json_object_new_object();
    if (!tpm)
        return NULL;
    bool ok = add(tpm, "endorsementKey", json_object_new_string(ek_b64));
    if (ok && srk_b64)
        ok = add(tpm, "storageRootKey", json_object_new_string(srk_b64));
    if (!ok) {
        json_object_put(tpm);
        return NULL;
    }
    return tpm;
}

char *prov_json_register_body(const char *registration_id, const char *ek_b64,
                              const char *srk_b64, const char *payload_json)
{
    if (!registration_id)
        return NULL;
    /* The payload is parsed first: invalid user JSON must fail the
     * registration (§2.3), never be pasted into the body. */
    json_object *payload = NULL;
    if (payload_json &&
        parse_exact(payload_json, strlen(payload_json), true,
                    PROV_JSON_PAYLOAD_MAX_DEPTH, &payload) != PROV_JSON_OK)
        return NULL;
    json_object *root = json_object_new_object();
    bool ok = root && add(root, "registrationId", json_object_new_string(registration_id));
    if (ok && ek_b64)
        ok = add(root, "tpm", tpm_object(ek_b64, srk_b64));
    /* A payload of JSON null is sent as "payload":null, as given. */
    if (ok && payload_json) {
        ok = json_object_object_add(root, "payload", payload) == 0;
        if (ok)
            payload = NULL; /* owned by root now */
    }
    char *text = NULL;
    if (ok) {
        const char *s = json_object_to_json_string_ext(root, PROV_JSON_FLAGS);
        text = s ? dup_bytes(s, strlen(s)) : NULL;
    }
    json_object_put(payload);
    json_object_put(root);
    return text;
}

int prov_json_check_payload(const char *text)
{
    json_object *value = NULL;
    if (!text)
        return PROV_JSON_INVALID;
    int rc = parse_exact(text, strlen(text), true, PROV_JSON_PAYLOAD_MAX_DEPTH,
                         &value);
    json_object_put(value);
    return rc;
}

int prov_json_is_valid(const char *text)
{
    return prov_json_check_payload(text) == PROV_JSON_OK;
}

int prov_json_parse_value(const char *text, size_t len, int max_depth,
                          json_object **out)
{
    if (!out)
        return PROV_JSON_INVALID;
    return parse_exact(text, len, true, max_depth, out);
}
