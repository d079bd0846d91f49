/*
 * Rules for the values the service sends back, checked before any of
 * them is used: pasted into a connection string, a SAS token resource,
 * a URL or an Authorization header, or handed to the user. A hostile or
 * broken service must not be able to inject a "HostName=..;" into a
 * connection string or a CR/LF into a header.
 */
#ifndef PROV_VALUES_H
#define PROV_VALUES_H

#include <stdbool.h>
#include <stddef.h>

/* A DNS host name: 1..255 bytes of dot-separated labels, each 1..63 of
 * letters, digits and '-', not starting or ending with '-'. */
bool prov_valid_host_name(const char *s);

/* An IoT Hub device id: 1..128 of ASCII letters, digits and
 * - : . + % _ # * ? ! ( ) , = @ $ '  (the identity registry's set; ';'
 * is left out: it would split the connection string). */
bool prov_valid_device_id(const char *s);

/* A DPS registration id (docs/protocol.md §2): 1..128 of letters, digits
 * and - . _ :, ending in a letter, digit or '-'. */
bool prov_valid_registration_id(const char *s);

/* A symmetric or group key as the user gives it: non-empty strict Base64
 * (standard alphabet, padded). */
bool prov_valid_key(const char *s);

/* An operationId: 1..256 printable ASCII characters without spaces
 * (it is URL-encoded into the poll path anyway). */
bool prov_valid_operation_id(const char *s);

/* A TPM challenge's keyName, which goes verbatim into the SAS token of
 * an Authorization header: 1..128 of letters, digits and - . _ ~. */
bool prov_valid_key_name(const char *s);

/* Writes s into out (outlen >= 8) as a double-quoted, escaped and
 * truncated string for an error message: printable ASCII passes, '"' and
 * '\' are backslash-escaped, every other byte becomes \xHH, and text
 * beyond what fits ends in "...". Never fails; NULL quotes as (null). */
void prov_quote_value(const char *s, char *out, size_t outlen);

#endif
