/*
 * The crypto seam: every hash, MAC, Base64 and random byte dps needs, so
 * that a build for mbedTLS replaces one file (dps_crypto_openssl.c).
 * Functions return 0 on success, -1 on failure.
 */
#ifndef DPS_CRYPTO_H
#define DPS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define DPS_SHA256_LEN 32

int dps_sha256(const uint8_t *data, size_t len, uint8_t out[DPS_SHA256_LEN]);
int dps_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg,
                    size_t msg_len, uint8_t out[DPS_SHA256_LEN]);

/* Standard alphabet, padded. Returns malloc'd NUL-terminated text. */
char *dps_base64_encode(const uint8_t *data, size_t len);
/* Strict: standard alphabet, padding required, no whitespace. On success
 * *out is malloc'd (caller frees, and should wipe key material). */
int dps_base64_decode(const char *text, uint8_t **out, size_t *out_len);

/* RFC 4648 base32, lowercase alphabet a-z2-7, no padding. malloc'd. */
char *dps_base32_lower(const uint8_t *data, size_t len);

int dps_random_bytes(uint8_t *out, size_t len);

/* Overwrites memory that held a secret; not optimised away. */
void dps_wipe(void *p, size_t len);

/* Wipes and frees a string that held a secret; NULL is fine. One copy
 * for both backends (dps_secret.c), over dps_wipe. */
void dps_free_secret(char *s);

#endif
