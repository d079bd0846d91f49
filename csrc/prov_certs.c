/*
 * Certificates issued by DPS (api-version 2025-07-01-preview) and the
 * device registration status lookup, for the public API in
 * prov_device_ll_client.c: the CSR added to the register body, the
 * issued chain read back and checked, and the lookup's request and
 * answer shaped like a registration's, so the state machine runs both.
 */
#define _POSIX_C_SOURCE 200809L
#include "prov_client_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "dps_crypto.h"
#include "dps_csr.h"

/* The service's own message limit is 96 KB: a chain longer than this
 * many certificates is not one. */
#define MAX_CHAIN 8

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static char *serialize(json_object *obj)
{
    const char *text = json_object_to_json_string_ext(obj, JSON_FLAGS);
    return text ? strdup(text) : NULL;
}

/* body (our own JSON object) with "csr" added; malloc'd. */
static char *add_csr(const char *body, const char *csr_b64)
{
    json_object *root = json_tokener_parse(body);
    json_object *csr;
    char *text = NULL;

    if (!root || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return NULL;
    }
    csr = json_object_new_string(csr_b64);
    if (csr && json_object_object_add(root, "csr", csr) == 0)
        text = serialize(root);
    else
        json_object_put(csr);
    json_object_put(root);
    return text;
}

void prov_certs_clear(PROV_DEVICE_LL_HANDLE h)
{
    free(h->csr_b64);
    free(h->issued_certificate);
    h->csr_b64 = h->issued_certificate = NULL;
    h->expect_certificate = h->from_cache = false;
}

PROV_DEVICE_RESULT prov_certs_prepare(PROV_DEVICE_LL_HANDLE h)
{
    const char *key = h->settings.csr_key_path;
    char err[300];
    char *body;

    if (!key || h->lookup)
        return PROV_DEVICE_RESULT_OK; /* lookup never sends a CSR */
    if (dps_csr_ensure_key(key, NULL, err, sizeof(err)) != 0 ||
        dps_csr_build(key, h->attest.registration_id, &h->csr_b64, err,
                      sizeof(err)) != 0)
        return prov_fail(h, PROV_DEVICE_RESULT_KEY_ERROR, err);
    body = add_csr(h->register_body, h->csr_b64);
    if (!body)
        return prov_fail(h, PROV_DEVICE_RESULT_MEMORY, "out of memory");
    free(h->register_body);
    h->register_body = body;
    h->expect_certificate = true;
    return PROV_DEVICE_RESULT_OK;
}

const char *prov_certs_api_version(PROV_DEVICE_LL_HANDLE h,
                                   const char *default_version)
{
    if (h->settings.api_version)
        return h->settings.api_version;
    return h->csr_b64 ? PROV_CSR_API_VERSION : default_version;
}

/* DER as PEM, 64 columns, appended to out (pos advanced). */
static void append_pem(char *out, size_t *pos, const char *b64)
{
    size_t len = strlen(b64), i;

    *pos += (size_t)sprintf(out + *pos, "-----BEGIN CERTIFICATE-----\n");
    for (i = 0; i < len; i += 64) {
        size_t n = len - i < 64 ? len - i : 64;
        memcpy(out + *pos, b64 + i, n);
        *pos += n;
        out[(*pos)++] = '\n';
    }
    *pos += (size_t)sprintf(out + *pos, "-----END CERTIFICATE-----\n");
}

/* Each element a strict Base64 DER certificate; the leaf checked against
 * the key. Returns the PEM chain or NULL with err. */
static char *chain_pem(json_object *chain, const char *key_path, const char *cn,
                       int64_t now_s, char *err, size_t errlen)
{
    size_t n = json_object_array_length(chain), i, cap = 1, pos = 0;
    char *pem;

    if (n == 0 || n > MAX_CHAIN) {
        snprintf(err, errlen,
                 "the service's issuedCertificateChain holds %zu "
                 "certificates",
                 n);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(chain, i);
        const char *b64 = json_object_get_string(item);
        uint8_t *der = NULL;
        size_t der_len = 0;
        int bad;

        if (!json_object_is_type(item, json_type_string) ||
            dps_base64_decode(b64, &der, &der_len) != 0 || der_len == 0) {
            free(der);
            snprintf(err, errlen, "issuedCertificateChain[%zu] is not Base64",
                     i);
            return NULL;
        }
        bad = i == 0 && dps_csr_check_issued(key_path, der, der_len, cn, now_s,
                                             err, errlen) != 0;
        free(der);
        if (bad)
            return NULL;
        cap += strlen(b64) + strlen(b64) / 64 + 64;
    }
    pem = malloc(cap);
    if (!pem) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (i = 0; i < n; i++)
        append_pem(pem, &pos,
                   json_object_get_string(json_object_array_get_idx(chain, i)));
    pem[pos] = '\0';
    return pem;
}

char *prov_certs_chain_pem(const char *state_json, const char *key_path,
                           const char *cn, int64_t now_s, char *err,
                           size_t errlen)
{
    json_object *state = state_json ? json_tokener_parse(state_json) : NULL;
    json_object *chain = NULL;
    char *pem = NULL;

    if (!json_object_object_get_ex(state, "issuedCertificateChain", &chain) ||
        !json_object_is_type(chain, json_type_array))
        snprintf(err, errlen,
                 "the service issued no certificate "
                 "(registrationState has no issuedCertificateChain)");
    else
        pem = chain_pem(chain, key_path, cn, now_s, err, errlen);
    json_object_put(state);
    return pem;
}

PROV_DEVICE_RESULT prov_certs_take_chain(PROV_DEVICE_LL_HANDLE h)
{
    char err[300];

    free(h->issued_certificate);
    h->issued_certificate = prov_certs_chain_pem(
        h->sm.result.registration_state_json, h->settings.csr_key_path,
        h->attest.registration_id, (int64_t)time(NULL), err, sizeof(err));
    if (h->issued_certificate)
        return PROV_DEVICE_RESULT_OK;
    return prov_fail(h, PROV_DEVICE_RESULT_PARSING, err);
}

void prov_certs_explain_refusal(PROV_DEVICE_LL_HANDLE h)
{
    char msg[sizeof(h->error_message)];

    if (!h->csr_b64 || h->error.http_status != 400)
        return;
    /* A service without the preview answers 400 (unknown api-version or
     * field); one with it, 400 for a CSR it does not accept. */
    snprintf(msg, sizeof(msg),
             "the service refused the certificate request "
             "or its api-version %.40s: %.200s",
             prov_certs_api_version(h, PROV_CSR_API_VERSION), h->error_message);
    memcpy(h->error_message, msg, sizeof(msg));
}

void prov_lookup_path(char *path)
{
    /* ".../registrations/{id}/register?api-version=..": the id is URL
     * encoded, so the first "/register?" is ours. */
    char *at = strstr(path, "/register?");

    if (at)
        memmove(at, at + 9, strlen(at + 9) + 1);
}

char *prov_lookup_wrap(const char *body, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *result = NULL, *root = NULL, *status = NULL;
    char *text = NULL;

    size_t end;

    /* A NUL inside the body would end json-c's parse early. */
    if (!tok || !body || len > 0x7fffffff || memchr(body, '\0', len))
        goto done;
    json_tokener_set_flags(tok,
                           JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    result = json_tokener_parse_ex(tok, body, (int)len);
    if (!result || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(result, json_type_object))
        goto done;
    /* Nothing but blanks after the object. */
    for (end = json_tokener_get_parse_end(tok); end < len; end++)
        if (!strchr(" \t\r\n", body[end]))
            goto done;
    root = json_object_new_object();
    if (!root)
        goto done;
    /* The same status, and the result as registrationState. */
    if (json_object_object_get_ex(result, "status", &status))
        json_object_object_add(root, "status", json_object_get(status));
    json_object_object_add(root, "registrationState", json_object_get(result));
    text = serialize(root);
done:
    json_object_put(root);
    json_object_put(result);
    if (tok)
        json_tokener_free(tok);
    return text;
}
