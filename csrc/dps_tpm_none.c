/*
 * The TPM seam for builds without tpm2-tss (TPM=0): the same API as
 * dps_tpm_tss.c, so the rest of dps links unchanged, but every attempt to
 * open a TPM fails with a message that tells the user why.
 */
#include "dps_tpm.h"

#include <stdio.h>

/* Lets the Lua binding report "tpm" as unsupported before any call. */
int dps_tpm_available(void)
{
    return 0;
}

int dps_tpm_open(const char *tcti, dps_tpm **tpm, char *err, size_t errlen)
{
    (void)tcti;
    if (tpm)
        *tpm = NULL;
    if (err && errlen)
        snprintf(err, errlen,
                 "this dps build has no TPM support (built with TPM=0)");
    return -1;
}

void dps_tpm_close(dps_tpm *tpm)
{
    (void)tpm;
}

/* Unreachable in practice (no handle can exist), but defined so callers
 * need no #ifdefs; each fails the same way as dps_tpm_open. */
static int no_tpm(char *err, size_t errlen)
{
    return dps_tpm_open(NULL, NULL, err, errlen);
}

int dps_tpm_public_keys(dps_tpm *tpm, char **ek_b64, char **srk_b64,
                        char *err, size_t errlen)
{
    (void)tpm;
    if (ek_b64)
        *ek_b64 = NULL;
    if (srk_b64)
        *srk_b64 = NULL;
    return no_tpm(err, errlen);
}

int dps_tpm_registration_id(dps_tpm *tpm, char **reg_id, char *err,
                            size_t errlen)
{
    (void)tpm;
    if (reg_id)
        *reg_id = NULL;
    return no_tpm(err, errlen);
}

int dps_tpm_import_key(dps_tpm *tpm, const uint8_t *blob, size_t len,
                       char *err, size_t errlen)
{
    (void)tpm;
    (void)blob;
    (void)len;
    return no_tpm(err, errlen);
}

int dps_tpm_hmac(dps_tpm *tpm, const uint8_t *msg, size_t len,
                 uint8_t mac[32], char *err, size_t errlen)
{
    (void)tpm;
    (void)msg;
    (void)len;
    (void)mac;
    return no_tpm(err, errlen);
}
