/*
 * The last line of defence for "no secret in any message": whatever
 * wrote a handle's error message (our code, libcurl's error buffer, the
 * service's own text), no run of a configured secret survives in it.
 */
#ifndef PROV_REDACT_H
#define PROV_REDACT_H

#include <stddef.h>

/* Overwrites with '*' every run of at least min(12, strlen(secret))
 * bytes of secret found in msg. Secrets shorter than 6 bytes are left
 * alone: they would mask ordinary words. NULL secret: nothing. */
void prov_redact(char *msg, const char *secret);

#endif
