/*
 * Attestation of one registration, without a handle: which of symmetric
 * key, X.509 or TPM the settings chose, the registration id it implies,
 * and the SAS tokens it signs (in RAM with a key, or inside the TPM).
 * Like prov_sm and dps_http, it owns its state, reads its settings and
 * reports failures as a result code plus a message in the caller's
 * buffer (never holding a secret).
 */
#ifndef PROV_ATTEST_H
#define PROV_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dps_tpm.h"
#include "prov_device_ll_client.h"

/* What the options chose; borrowed for the length of one call. */
typedef struct {
    const char *registration_id; /* NULL: the certificate's CN or the TPM's */
    const char *symmetric_key;
    const char *group_key;
    const char *x509_cert;
    const char *x509_key;
    const char *x509_key_password;
    const char *tpm_tcti; /* non-NULL selects the TPM; "" = default */
} prov_attest_settings;

typedef enum {
    PROV_ATTEST_NONE,
    PROV_ATTEST_SYMMETRIC_KEY,
    PROV_ATTEST_X509,
    PROV_ATTEST_TPM
} prov_attest_kind;

/* Attestation state; zero-initialised is empty. */
typedef struct {
    prov_attest_kind kind;
    char *registration_id; /* in use */
    uint8_t *key;          /* symmetric: device key bytes */
    size_t key_len;
    char *device_key_b64; /* symmetric: for the connection string */
    dps_tpm *tpm;         /* TPM: open until cleared with close_tpm */
    char *ek_b64;
    char *srk_b64;
    bool tpm_key_ready; /* identity key imported: can sign */
    char *key_name;     /* skn of our SAS tokens */
    char *sas_token;    /* current token and when it expires */
    int64_t sas_expiry;
} prov_attest;

/* Chooses the attestation the settings name and readies it: decodes or
 * derives the key, checks the certificate and key (valid at now_s), or
 * opens the TPM and reads its public keys. Clears what a previous
 * registration left, but keeps an open TPM. */
PROV_DEVICE_RESULT prov_attest_prepare(prov_attest *a,
                                       const prov_attest_settings *s,
                                       int64_t now_s, char *err, size_t errlen);

/* Frees (and wipes) everything; close_tpm also closes the TPM. */
void prov_attest_clear(prov_attest *a, bool close_tpm);

/* The Authorization header value for the next request to scope_id,
 * renewed when a fifth of lifetime_s is left; *out NULL (and OK) when
 * the attestation sends none (X.509, TPM before the challenge). *out
 * stays owned by a. */
PROV_DEVICE_RESULT prov_attest_authorization(prov_attest *a,
                                             const char *scope_id,
                                             uint32_t lifetime_s, int64_t now_s,
                                             const char **out, char *err,
                                             size_t errlen);

/* Imports the service's challenge blob into the TPM; later tokens are
 * signed with it under key_name (NULL: "registration"). */
PROV_DEVICE_RESULT prov_attest_challenge(prov_attest *a, const char *blob_b64,
                                         const char *key_name, char *err,
                                         size_t errlen);

/* Imports the final answer's hub-key blob into the TPM. */
PROV_DEVICE_RESULT prov_attest_hub_key(prov_attest *a, const char *blob_b64,
                                       char *err, size_t errlen);

/* A SAS token for resource, signed with the device key or in the TPM.
 * *token is malloc'd (the caller wipes and frees it). */
PROV_DEVICE_RESULT prov_attest_sas(prov_attest *a, const char *resource,
                                   int64_t expiry, const char *key_name,
                                   char **token, char *err, size_t errlen);

#endif
