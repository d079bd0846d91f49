/*
 * Endpoint validation (see prov_endpoint.h). libcurl would take much
 * more (paths, user info, any port number, its own URL guessing); a
 * value that could never reach a DPS instance is refused here, before a
 * handle exists, instead of failing later as a retried network error.
 */
#define _POSIX_C_SOURCE 200809L
#include "prov_endpoint.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dps_error.h"

#define MAX_HOST 253
#define MAX_LABEL 63

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* A DNS name (RFC 1123 labels) or, when it is all digits and dots, an
 * IPv4 address. */
static bool valid_host_name(const char *host, size_t len)
{
    char copy[MAX_HOST + 1];
    size_t i, label = 0;
    bool numeric = true;

    if (len == 0 || len > MAX_HOST)
        return false;
    for (i = 0; i < len; i++) {
        char c = host[i];
        if (c == '.') {
            if (label == 0 || host[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!is_alnum(c) && c != '-')
            return false;
        if (c == '-' && label == 0)
            return false;
        if (!(c >= '0' && c <= '9'))
            numeric = false;
        if (++label > MAX_LABEL)
            return false;
    }
    if (label == 0 || host[len - 1] == '-')
        return false;
    if (numeric) {
        struct in_addr a;
        memcpy(copy, host, len);
        copy[len] = '\0';
        return inet_pton(AF_INET, copy, &a) == 1;
    }
    return true;
}

static bool valid_ipv6(const char *addr, size_t len)
{
    char copy[64];
    struct in6_addr a;
    if (len == 0 || len >= sizeof copy)
        return false;
    memcpy(copy, addr, len);
    copy[len] = '\0';
    return inet_pton(AF_INET6, copy, &a) == 1;
}

/* Splits uri into host and port spans; 0 or -1 with why set. */
static int split(const char *uri, const char **host, size_t *host_len,
                 char *why, size_t whylen)
{
    const char *p = uri, *end, *port = NULL;
    size_t len;

    if (strncmp(p, "https://", 8) == 0) {
        p += 8;
    } else if (strstr(p, "://")) {
        dps_set_error(why, whylen, "only https:// endpoints are supported");
        return -1;
    }
    len = strlen(p);
    if (len && p[len - 1] == '/')
        len--;
    end = p + len;
    if (memchr(p, '/', len) || memchr(p, '?', len) || memchr(p, '#', len)) {
        dps_set_error(why, whylen,
                      "must be a host and optional port, "
                      "without a path or query");
        return -1;
    }
    if (memchr(p, '@', len)) {
        dps_set_error(why, whylen, "must not carry credentials");
        return -1;
    }
    if (len && p[0] == '[') {
        const char *close = memchr(p, ']', len);
        if (!close || !valid_ipv6(p + 1, (size_t)(close - p - 1))) {
            dps_set_error(why, whylen, "has a malformed IPv6 address");
            return -1;
        }
        *host = p;
        *host_len = (size_t)(close - p) + 1;
        if (close + 1 < end) {
            if (close[1] != ':') {
                dps_set_error(why, whylen,
                              "has text after the IPv6 "
                              "address that is not a port");
                return -1;
            }
            port = close + 2;
        }
    } else {
        const char *colon = memchr(p, ':', len);
        *host = p;
        *host_len = colon ? (size_t)(colon - p) : len;
        if (!valid_host_name(p, *host_len)) {
            dps_set_error(why, whylen,
                          "has no valid host name (letters, "
                          "digits, '-' and '.', or an IP address)");
            return -1;
        }
        if (colon)
            port = colon + 1;
    }
    if (port) {
        unsigned long v = 0;
        const char *q;
        if (port == end) {
            dps_set_error(why, whylen, "has an empty port");
            return -1;
        }
        for (q = port; q < end; q++) {
            if (*q < '0' || *q > '9' || q - port >= 5) {
                dps_set_error(why, whylen,
                              "has a port that is not a "
                              "number from 1 to 65535");
                return -1;
            }
            v = v * 10 + (unsigned long)(*q - '0');
        }
        if (v < 1 || v > 65535) {
            dps_set_error(why, whylen,
                          "has a port that is not a number "
                          "from 1 to 65535");
            return -1;
        }
        *host_len = (size_t)(end - *host);
    }
    return 0;
}

int prov_check_endpoint(const char *uri, char *why, size_t whylen)
{
    const char *host;
    size_t len;
    if (!uri) {
        dps_set_error(why, whylen, "is missing");
        return -1;
    }
    return split(uri, &host, &len, why, whylen);
}

char *prov_endpoint_url(const char *uri)
{
    const char *host;
    size_t len;
    char *url;

    if (!uri || split(uri, &host, &len, NULL, 0) != 0)
        return NULL;
    url = malloc(len + 9);
    if (!url)
        return NULL;
    memcpy(url, "https://", 8);
    memcpy(url + 8, host, len);
    url[len + 8] = '\0';
    return url;
}
