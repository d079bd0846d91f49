/*
 * Attestation of one registration (see prov_attest.h). Knows nothing of
 * the handle: it reads its settings, keeps its own state and writes its
 * failures into the caller's error buffer.
 */
#define _POSIX_C_SOURCE 200809L
#include "prov_attest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dps_crypto.h"
#include "dps_encoding.h"
#include "dps_error.h"
#include "dps_sas.h"
#include "dps_x509.h"
#include "prov_values.h"

/* Writes message into err and returns result: the one way out. */
static PROV_DEVICE_RESULT fail(char *err, size_t errlen,
                               PROV_DEVICE_RESULT result, const char *message)
{
    dps_set_error(err, errlen, "%s", message);
    return result;
}

void prov_attest_clear(prov_attest *a, bool close_tpm)
{
    dps_tpm *tpm = a->tpm;
    free(a->registration_id);
    if (a->key) {
        dps_wipe(a->key, a->key_len);
        free(a->key);
    }
    dps_free_secret(a->device_key_b64);
    free(a->ek_b64);
    free(a->srk_b64);
    free(a->key_name);
    dps_free_secret(a->sas_token);
    memset(a, 0, sizeof(*a));
    /* The TPM stays open across registrations of one handle: opening it
     * again costs a TCTI connect and two ReadPublic calls. */
    if (close_tpm)
        dps_tpm_close(tpm);
    else
        a->tpm = tpm;
}

static PROV_DEVICE_RESULT prepare_symmetric(prov_attest *a,
                                            const prov_attest_settings *s,
                                            char *err, size_t errlen)
{
    if (!s->registration_id)
        return fail(err, errlen, PROV_DEVICE_RESULT_INVALID_ARG,
                    "registration_id is required with a symmetric key");
    a->registration_id = strdup(s->registration_id);
    if (!a->registration_id)
        return fail(err, errlen, PROV_DEVICE_RESULT_MEMORY, "out of memory");
    /* SetOption refused keys that are not Base64, so from here on a
     * failure is a failed allocation. */
    if (s->group_key && !prov_valid_key(s->group_key))
        return fail(err, errlen, PROV_DEVICE_RESULT_KEY_ERROR,
                    "group_key is not valid Base64");
    if (s->symmetric_key && !prov_valid_key(s->symmetric_key))
        return fail(err, errlen, PROV_DEVICE_RESULT_KEY_ERROR,
                    "symmetric_key is not valid Base64");
    if (s->group_key)
        a->device_key_b64 =
            dps_derive_device_key(s->group_key, a->registration_id);
    else
        a->device_key_b64 = strdup(s->symmetric_key);
    if (!a->device_key_b64 ||
        dps_base64_decode(a->device_key_b64, &a->key, &a->key_len) != 0)
        return fail(err, errlen, PROV_DEVICE_RESULT_MEMORY,
                    "out of memory while decoding the key");
    if (a->key_len == 0)
        return fail(err, errlen, PROV_DEVICE_RESULT_KEY_ERROR,
                    "the key is empty");
    a->key_name = strdup("registration");
    return a->key_name
               ? PROV_DEVICE_RESULT_OK
               : fail(err, errlen, PROV_DEVICE_RESULT_MEMORY, "out of memory");
}

static PROV_DEVICE_RESULT prepare_x509(prov_attest *a,
                                       const prov_attest_settings *s,
                                       int64_t now_s, char *err, size_t errlen)
{
    char *cn = NULL;

    if (!s->x509_key)
        return fail(err, errlen, PROV_DEVICE_RESULT_INVALID_ARG,
                    "x509privatekey is required with x509certificate");
    if (dps_x509_check(s->x509_cert, s->x509_key, s->x509_key_password, now_s,
                       &cn, err, errlen) != 0)
        return PROV_DEVICE_RESULT_KEY_ERROR;
    if (s->registration_id) {
        free(cn);
        a->registration_id = strdup(s->registration_id);
    } else if (!prov_valid_registration_id(cn)) {
        dps_set_error(err, errlen,
                      "the certificate CN '%.64s' is not a valid "
                      "registration id; set registration_id",
                      cn ? cn : "");
        free(cn);
        return PROV_DEVICE_RESULT_INVALID_ARG;
    } else {
        a->registration_id = cn;
    }
    return a->registration_id
               ? PROV_DEVICE_RESULT_OK
               : fail(err, errlen, PROV_DEVICE_RESULT_MEMORY, "out of memory");
}

static PROV_DEVICE_RESULT prepare_tpm(prov_attest *a,
                                      const prov_attest_settings *s, char *err,
                                      size_t errlen)
{
    if (!a->tpm && dps_tpm_open(s->tpm_tcti, &a->tpm, err, errlen) != 0)
        return PROV_DEVICE_RESULT_KEY_ERROR;
    if (dps_tpm_public_keys(a->tpm, &a->ek_b64, &a->srk_b64, err, errlen) != 0)
        return PROV_DEVICE_RESULT_KEY_ERROR;
    if (s->registration_id)
        a->registration_id = strdup(s->registration_id);
    else if (dps_tpm_registration_id(a->tpm, &a->registration_id, err,
                                     errlen) != 0)
        return PROV_DEVICE_RESULT_KEY_ERROR;
    return a->registration_id
               ? PROV_DEVICE_RESULT_OK
               : fail(err, errlen, PROV_DEVICE_RESULT_MEMORY, "out of memory");
}

PROV_DEVICE_RESULT prov_attest_prepare(prov_attest *a,
                                       const prov_attest_settings *s,
                                       int64_t now_s, char *err, size_t errlen)
{
    int chosen = (s->symmetric_key || s->group_key) + (s->x509_cert != NULL) +
                 (s->tpm_tcti != NULL);

    prov_attest_clear(a, false);
    if (chosen == 0)
        return fail(err, errlen, PROV_DEVICE_RESULT_INVALID_ARG,
                    "no attestation: set symmetric_key, group_key, "
                    "x509certificate or tpm_tcti");
    if (chosen > 1 || (s->symmetric_key && s->group_key))
        return fail(err, errlen, PROV_DEVICE_RESULT_INVALID_ARG,
                    "more than one attestation is set; choose one of "
                    "symmetric_key, group_key, x509certificate, "
                    "tpm_tcti");
    if (s->symmetric_key || s->group_key) {
        a->kind = PROV_ATTEST_SYMMETRIC_KEY;
        return prepare_symmetric(a, s, err, errlen);
    }
    if (s->x509_cert) {
        a->kind = PROV_ATTEST_X509;
        return prepare_x509(a, s, now_s, err, errlen);
    }
    a->kind = PROV_ATTEST_TPM;
    return prepare_tpm(a, s, err, errlen);
}

static int sign_in_tpm(void *ctx, const uint8_t *msg, size_t len,
                       uint8_t mac[32])
{
    char err[256];
    return dps_tpm_hmac(ctx, msg, len, mac, err, sizeof(err));
}

PROV_DEVICE_RESULT prov_attest_sas(prov_attest *a, const char *resource,
                                   int64_t expiry, const char *key_name,
                                   char **token, char *err, size_t errlen)
{
    dps_sas_key key = {a->key, a->key_len};

    *token = NULL;
    if (a->kind == PROV_ATTEST_SYMMETRIC_KEY)
        *token = dps_sas_token(resource, (uint64_t)expiry, key_name,
                               dps_sas_sign_with_key, &key);
    else if (a->kind == PROV_ATTEST_TPM && a->tpm_key_ready)
        *token = dps_sas_token(resource, (uint64_t)expiry, key_name,
                               sign_in_tpm, a->tpm);
    else
        return fail(err, errlen, PROV_DEVICE_RESULT_INVALID_STATE,
                    "no key to sign a SAS token with");
    if (*token)
        return PROV_DEVICE_RESULT_OK;
    /* HMAC with a key already decoded fails only for want of memory; a
     * TPM may refuse for its own reasons. */
    return a->kind == PROV_ATTEST_SYMMETRIC_KEY
               ? fail(err, errlen, PROV_DEVICE_RESULT_MEMORY,
                      "out of memory while signing the SAS token")
               : fail(err, errlen, PROV_DEVICE_RESULT_KEY_ERROR,
                      "signing the SAS token failed");
}

PROV_DEVICE_RESULT prov_attest_authorization(prov_attest *a,
                                             const char *scope_id,
                                             uint32_t lifetime_s, int64_t now_s,
                                             const char **out, char *err,
                                             size_t errlen)
{
    int64_t lifetime = lifetime_s;
    char *resource, *token = NULL;
    size_t n;
    PROV_DEVICE_RESULT r;

    *out = NULL;
    if (a->kind == PROV_ATTEST_X509 ||
        (a->kind == PROV_ATTEST_TPM && !a->tpm_key_ready))
        return PROV_DEVICE_RESULT_OK;
    if (!a->registration_id || !scope_id)
        return fail(err, errlen, PROV_DEVICE_RESULT_INVALID_STATE,
                    "no attestation is prepared");
    /* Renew once a fifth of the lifetime is left (at least a minute), so
     * long throttling never sends an expired token (the official client
     * signs once and fails after 40 minutes). */
    if (a->sas_token &&
        a->sas_expiry - now_s > (lifetime / 5 > 60 ? lifetime / 5 : 60)) {
        *out = a->sas_token;
        return PROV_DEVICE_RESULT_OK;
    }
    n = strlen(scope_id) + strlen(a->registration_id) + 16;
    resource = malloc(n);
    if (!resource)
        return fail(err, errlen, PROV_DEVICE_RESULT_MEMORY, "out of memory");
    snprintf(resource, n, "%s/registrations/%s", scope_id, a->registration_id);
    r = prov_attest_sas(a, resource, now_s + lifetime, a->key_name, &token, err,
                        errlen);
    free(resource);
    if (r != PROV_DEVICE_RESULT_OK)
        return r;
    dps_free_secret(a->sas_token);
    a->sas_token = token;
    a->sas_expiry = now_s + lifetime;
    *out = token;
    return PROV_DEVICE_RESULT_OK;
}

static PROV_DEVICE_RESULT import_blob(prov_attest *a, const char *blob_b64,
                                      char *err, size_t errlen)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    int rc;

    if (!a->tpm)
        return fail(err, errlen, PROV_DEVICE_RESULT_INVALID_STATE,
                    "no TPM is open");
    if (!blob_b64 || dps_base64_decode(blob_b64, &blob, &len) != 0)
        return fail(err, errlen, PROV_DEVICE_RESULT_PARSING,
                    "the service's authenticationKey is not Base64");
    rc = dps_tpm_import_key(a->tpm, blob, len, err, errlen);
    /* Encrypted to this TPM, but it wraps a key: no copy left behind. */
    dps_wipe(blob, len);
    free(blob);
    if (rc != 0)
        return PROV_DEVICE_RESULT_KEY_ERROR;
    a->tpm_key_ready = true;
    return PROV_DEVICE_RESULT_OK;
}

PROV_DEVICE_RESULT prov_attest_challenge(prov_attest *a, const char *blob_b64,
                                         const char *key_name, char *err,
                                         size_t errlen)
{
    PROV_DEVICE_RESULT r = import_blob(a, blob_b64, err, errlen);
    if (r != PROV_DEVICE_RESULT_OK)
        return r;
    free(a->key_name);
    a->key_name = dps_strdup_or_null(key_name ? key_name : "registration");
    /* A new identity key invalidates the token signed with the old. */
    dps_free_secret(a->sas_token);
    a->sas_token = NULL;
    return a->key_name
               ? PROV_DEVICE_RESULT_OK
               : fail(err, errlen, PROV_DEVICE_RESULT_MEMORY, "out of memory");
}

PROV_DEVICE_RESULT prov_attest_hub_key(prov_attest *a, const char *blob_b64,
                                       char *err, size_t errlen)
{
    return import_blob(a, blob_b64, err, errlen);
}
