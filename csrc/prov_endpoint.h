/*
 * The endpoint a handle talks to, checked once at creation: "host",
 * "host:port" or "https://host[:port]" (one trailing "/" allowed). No
 * path, query, credentials or other scheme; a port of 1..65535; a host
 * that is a DNS name, an IPv4 address or a bracketed IPv6 address.
 */
#ifndef PROV_ENDPOINT_H
#define PROV_ENDPOINT_H

#include <stddef.h>

/* 0 if uri is a usable endpoint; else -1 and why (a short reason that
 * quotes no more than the offending part) in why[0..whylen). */
int prov_check_endpoint(const char *uri, char *why, size_t whylen);

/* "https://host[:port]" for a valid uri, malloc'd; NULL if invalid or
 * out of memory. */
char *prov_endpoint_url(const char *uri);

#endif
