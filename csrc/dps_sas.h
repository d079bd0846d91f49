/*
 * Shared access signature tokens (docs/protocol.md §5) and group-key
 * derivation. The signing itself goes through a callback so the same
 * code serves a key in RAM (HMAC via dps_crypto) and a key inside a TPM.
 */
#ifndef DPS_SAS_H
#define DPS_SAS_H

#include <stddef.h>
#include <stdint.h>

/* Computes HMAC-SHA256 of msg into mac; returns 0 or -1. */
typedef int (*dps_sas_signer)(void *ctx, const uint8_t *msg, size_t len,
                              uint8_t mac[32]);

/* "SharedAccessSignature sr={enc(resource)}&sig={enc(b64(mac))}&se={expiry}
 * [&skn={key_name}]" where mac = sign(enc(resource) "\n" expiry).
 * resource is unencoded, e.g. "0ne00000A0A/registrations/dev-1";
 * key_name NULL omits skn (IoT Hub device tokens). Returns malloc'd
 * text or NULL. */
char *dps_sas_token(const char *resource, uint64_t expiry,
                    const char *key_name, dps_sas_signer sign, void *ctx);

/* Signer over a raw key: ctx points to a dps_sas_key. */
typedef struct {
    const uint8_t *key;
    size_t len;
} dps_sas_key;
int dps_sas_sign_with_key(void *ctx, const uint8_t *msg, size_t len,
                          uint8_t mac[32]);

/* Device key of a group enrollment: Base64(HMAC-SHA256(Base64Decode(
 * group_key_b64), registration_id)). Returns malloc'd Base64 or NULL if
 * the group key is not valid Base64. */
char *dps_derive_device_key(const char *group_key_b64,
                            const char *registration_id);

#endif
