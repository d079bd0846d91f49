/*
 * Shared by the crypto backends (dps_crypto_*.c); not part of the seam.
 */
#ifndef DPS_ENCODING_H
#define DPS_ENCODING_H

#include <stddef.h>

/* Checks text (len bytes) is strict Base64: standard alphabet, length a
 * multiple of 4, at most two '=' and only at the end, no whitespace.
 * Returns the number of '=' (0..2), or -1. */
int dps_base64_check(const char *text, size_t len);

#endif
