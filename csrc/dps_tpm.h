/*
 * TPM 2.0 attestation through tpm2-tss (ESAPI + tctildr), docs/protocol.md §6.
 * Objects: EK at 0x81010001, SRK at 0x81000001 (created with the
 * documented templates when absent), DPS identity / hub key at 0x81000100.
 * Functions return 0 on success, -1 with a readable message in err.
 */
#ifndef DPS_TPM_H
#define DPS_TPM_H

#include <stddef.h>
#include <stdint.h>

typedef struct dps_tpm dps_tpm;

/* 1 when this build has TPM support (built with tpm2-tss), else 0; a
 * build without it fails dps_tpm_open with a message saying so. */
int dps_tpm_available(void);

/* Opens the TPM through the TCTI config string (NULL or "" means
 * "device:/dev/tpmrm0"). The error names the TCTI when it cannot be
 * reached. */
int dps_tpm_open(const char *tcti, dps_tpm **tpm, char *err, size_t errlen);
void dps_tpm_close(dps_tpm *tpm);

/* Marshaled TPM2B_PUBLIC of EK and SRK (creating and persisting them if
 * absent), as malloc'd Base64 text. */
int dps_tpm_public_keys(dps_tpm *tpm, char **ek_b64, char **srk_b64,
                        char *err, size_t errlen);

/* base32 (lowercase, unpadded) of SHA-256 of the EK TPM2B_PUBLIC: the
 * default registration id (§6.2). malloc'd. */
int dps_tpm_registration_id(dps_tpm *tpm, char **reg_id, char *err,
                            size_t errlen);

/* Opens an authenticationKey blob (§6.4) with ActivateCredential,
 * imports the key under the SRK and persists it at 0x81000100,
 * replacing the previous one. */
int dps_tpm_import_key(dps_tpm *tpm, const uint8_t *blob, size_t len,
                       char *err, size_t errlen);

/* HMAC-SHA256 of msg with the key at 0x81000100, inside the TPM. */
int dps_tpm_hmac(dps_tpm *tpm, const uint8_t *msg, size_t len,
                 uint8_t mac[32], char *err, size_t errlen);

#endif
