/* Rules for service-sent values; see prov_values.h. */
#include "prov_values.h"

#include "dps_encoding.h"

#include <stdio.h>
#include <string.h>

#define MAX_HOST_NAME 255
#define MAX_LABEL 63
#define MAX_DEVICE_ID 128
#define MAX_REGISTRATION_ID 128
#define MAX_OPERATION_ID 256
#define MAX_KEY_NAME 128
/* Source bytes quoted at most: enough to recognise a value, short
 * enough that a 96 KB hostile value cannot fill a log. */
#define MAX_QUOTED 48

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* 1..max characters, each alphanumeric or in `extra`. */
static bool all_of(const char *s, size_t max, const char *extra)
{
    size_t n;

    if (!s)
        return false;
    n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (; *s; s++)
        if (!is_alnum(*s) && !strchr(extra, *s))
            return false;
    return true;
}

bool prov_valid_host_name(const char *s)
{
    size_t label = 0;
    const char *p;

    if (!all_of(s, MAX_HOST_NAME, "-."))
        return false;
    for (p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            /* No empty label, none too long, no '-' at either end. */
            if (label == 0 || label > MAX_LABEL || p[-1] == '-' ||
                p[-(long)label] == '-')
                return false;
            if (*p == '\0')
                return true;
            label = 0;
        } else {
            label++;
        }
    }
}

bool prov_valid_device_id(const char *s)
{
    return all_of(s, MAX_DEVICE_ID, "-:.+%_#*?!(),=@$'");
}

bool prov_valid_registration_id(const char *s)
{
    if (!all_of(s, MAX_REGISTRATION_ID, "-._:"))
        return false;
    char last = s[strlen(s) - 1];
    return is_alnum(last) || last == '-';
}

bool prov_valid_operation_id(const char *s)
{
    size_t n;

    if (!s)
        return false;
    n = strlen(s);
    if (n == 0 || n > MAX_OPERATION_ID)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

bool prov_valid_key_name(const char *s)
{
    return all_of(s, MAX_KEY_NAME, "-._~");
}

void prov_quote_value(const char *s, char *out, size_t outlen)
{
    size_t o = 0, i;
    /* Room for the closing quote, "..." and the NUL. */
    size_t limit;

    if (!out || outlen < 8) {
        if (out && outlen)
            out[0] = '\0';
        return;
    }
    if (!s) {
        snprintf(out, outlen, "(null)");
        return;
    }
    limit = outlen - 5;
    out[o++] = '"';
    for (i = 0; i < MAX_QUOTED && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        char piece[5];
        size_t len;

        if (c == '"' || c == '\\')
            len = (size_t)snprintf(piece, sizeof piece, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            len = (size_t)snprintf(piece, sizeof piece, "%c", c);
        else
            len = (size_t)snprintf(piece, sizeof piece, "\\x%02X", c);
        if (o + len > limit)
            break;
        memcpy(out + o, piece, len);
        o += len;
    }
    out[o++] = '"';
    if (s[i]) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

bool prov_valid_key(const char *s)
{
    size_t len = strlen(s);
    return len > 0 && dps_base64_check(s, len) >= 0;
}
