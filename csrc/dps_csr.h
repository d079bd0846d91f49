/*
 * Certificates issued by DPS (api-version 2025-07-01-preview): the
 * operational key the device keeps, and the PKCS#10 request it sends.
 * Part of the crypto seam: dps_csr_openssl.c and dps_csr_mbedtls.c
 * implement it. Errors name the key's path, never its contents.
 * Functions return 0 on success, -1 with a readable reason in err.
 */
#ifndef DPS_CSR_H
#define DPS_CSR_H

#include <stddef.h>
#include <stdint.h>

/* Makes sure path holds a usable private key. An existing RSA or EC key
 * (PEM or DER, unencrypted) is used as it is; a missing file is created:
 * a new EC P-256 key in PEM, mode 0600, written to a temporary file in
 * the same directory and renamed over path. *created says which. */
int dps_csr_ensure_key(const char *path, int *created, char *err,
                       size_t errlen);

/* A certificate signing request for subject CN=cn, signed (SHA-256) with
 * the key at path: *csr_b64 is the malloc'd Base64 of its DER, without
 * PEM armour, as DPS takes it. */
int dps_csr_build(const char *path, const char *cn, char **csr_b64, char *err,
                  size_t errlen);

/* 0 if the DER certificate carries the public half of the key at path,
 * its subject CN is cn and (unless now_s is 0) it has not expired at
 * now_s (UNIX time); -1 (saying which) otherwise. */
int dps_csr_check_issued(const char *path, const uint8_t *der, size_t len,
                         const char *cn, int64_t now_s, char *err,
                         size_t errlen);

/* Writes data to path atomically: a temporary file in the same directory
 * (mode 0600), flushed to disk, then renamed over path, so a power cut
 * leaves either the old file or the whole new one. what names the file
 * in errors ("key", "cache"). Shared by both backends and the cache. */
int dps_write_private_file(const char *path, const void *data, size_t len,
                           const char *what, char *err, size_t errlen);

/* The whole regular file at path, NUL-terminated (*len without the NUL),
 * malloc'd; NULL with errno set otherwise (EINVAL: not a regular file or
 * larger than max; ENOMEM; a read error). What was read is wiped before a
 * failure returns: the file may hold a key. Shared by both backends and
 * the cache. */
char *dps_read_small_file(const char *path, size_t max, size_t *len);

#endif
