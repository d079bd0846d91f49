/*
 * Checks a device certificate and key before any request is made, and
 * reads the certificate's subject CN (the default registration id).
 */
#ifndef DPS_X509_H
#define DPS_X509_H

#include <stdint.h>
#include <stddef.h>

/* cert and key are each PEM text (starting "-----BEGIN") or a file path.
 * Checks: both readable and parseable, the key opens with password (may
 * be NULL), the key matches the certificate, the certificate is valid at
 * now_s (UNIX time). On success *cn is the malloc'd subject CN of the
 * leaf (first) certificate. On failure returns -1 with a readable reason
 * in err (no key material in it). */
int dps_x509_check(const char *cert, const char *key, const char *password,
                   int64_t now_s, char **cn, char *err, size_t errlen);

#endif
