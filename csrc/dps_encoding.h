/*
 * Text helpers every part of dps shares, one copy each: the URL encoding
 * of paths and SAS tokens, the Base64 alphabet and strict Base64 check,
 * the "is this PEM text" test and a NULL-tolerant string copy. No crypto
 * and no I/O here, so any module (and the fuzz target) can link it.
 */
#ifndef DPS_ENCODING_H
#define DPS_ENCODING_H

#include <stdbool.h>
#include <stddef.h>

/* Checks text (len bytes) is strict Base64: standard alphabet, length a
 * multiple of 4, at most two '=' and only at the end, no whitespace.
 * Returns the number of '=' (0..2), or -1. */
int dps_base64_check(const char *text, size_t len);

/* Whether c is one of Base64's 64 symbols (A-Z a-z 0-9 + /; not '='). */
bool dps_is_base64_char(char c);

/* URL-encodes src into dst as the C SDK does (docs/protocol.md §5.2):
 * A-Z a-z 0-9 ! ( ) * - . _ pass, every other byte becomes %xx in
 * lowercase hex. dst needs 3 * strlen(src) bytes; nothing is terminated.
 * Returns the end of what was written. */
char *dps_url_encode_to(char *dst, const char *src);

/* The same into a new NUL-terminated string; NULL for NULL or on OOM. */
char *dps_url_encode(const char *text);

/* Where PEM text starts in s ("-----BEGIN"), or NULL when s is not PEM
 * text (a file path). Searching anywhere also catches a leading "Bag
 * Attributes" block (openssl pkcs12 output) or indentation: such text
 * must never be taken for a path, or an error would quote the key. */
const char *dps_pem_start(const char *s);

/* A malloc'd copy of s, or NULL when s is NULL (or on OOM). */
char *dps_strdup_or_null(const char *s);

#endif
