/*
 * The assignment cache (PROV_OPTION_ASSIGNMENT_CACHE): Microsoft advises
 * devices not to register on every boot. The last assignment is kept in a
 * small JSON file and answers the next Register_Device while it still
 * fits this endpoint, id scope, registration id and attestation.
 *
 * No secret goes in: the attestation is named by a fingerprint (an HMAC
 * under the device key, or a hash of the certificate or EK), and the
 * registration state holds no key (for a TPM, its authenticationKey is
 * an activation blob only that TPM can open).
 */
#define _POSIX_C_SOURCE 200809L
#include "prov_client_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "dps_crypto.h"
#include "dps_csr.h"
#include "dps_pem_input.h"

#define CACHE_FORMAT 1
/* A registration state is at most the service's 96 KB message. */
#define MAX_CACHE_FILE (256 * 1024)

/* "<kind>:<Base64 of a digest>" naming the attestation; malloc'd. */
static char *fingerprint(PROV_DEVICE_LL_HANDLE h)
{
    const prov_attest *a = &h->attest;
    uint8_t digest[DPS_SHA256_LEN];
    const char *kind = NULL;
    char *b64, *out;
    int ok = 0;

    if (a->kind == PROV_ATTEST_SYMMETRIC_KEY && a->key) {
        static const char label[] = "dps assignment cache";
        kind = "symmetric_key";
        ok = dps_hmac_sha256(a->key, a->key_len, (const uint8_t *)label,
                             sizeof(label) - 1, digest) == 0;
    } else if (a->kind == PROV_ATTEST_X509) {
        struct dps_pem_input in;
        char err[200];
        kind = "x509";
        if (dps_pem_load(h->settings.x509_cert, "certificate", &in, err,
                         sizeof(err)) == 0) {
            ok = dps_sha256((const uint8_t *)in.buf, in.len, digest) == 0;
            dps_pem_free(&in);
        }
    } else if (a->kind == PROV_ATTEST_TPM && a->ek_b64) {
        kind = "tpm";
        ok = dps_sha256((const uint8_t *)a->ek_b64, strlen(a->ek_b64),
                        digest) == 0;
    }
    if (!ok)
        return NULL;
    b64 = dps_base64_encode(digest, sizeof(digest));
    out = b64 ? malloc(strlen(kind) + strlen(b64) + 2) : NULL;
    if (out)
        sprintf(out, "%s:%s", kind, b64);
    free(b64);
    return out;
}

static char *read_cache(const char *path)
{
    size_t len = 0;
    char *text = dps_read_small_file(path, MAX_CACHE_FILE, &len);

    if (text && len == 0) {
        free(text);
        return NULL;
    }
    return text;
}

static bool field_is(json_object *obj, const char *key, const char *want)
{
    json_object *v = NULL;
    return want && json_object_object_get_ex(obj, key, &v) &&
           json_object_is_type(v, json_type_string) &&
           strcmp(json_object_get_string(v), want) == 0;
}

static void trace(PROV_DEVICE_LL_HANDLE h, const char *what)
{
    if (h->settings.logtrace)
        fprintf(stderr, "dps: assignment cache: %s\n", what);
}

/* The cached registration state if the file fits this handle, as the
 * operation status the service would send; malloc'd, NULL on a miss. */
static char *cached_answer(PROV_DEVICE_LL_HANDLE h, const char *fp)
{
    char *text = read_cache(h->settings.cache_path), *answer = NULL;
    json_object *root = text ? json_tokener_parse(text) : NULL;
    json_object *format = NULL, *state = NULL, *wrap = NULL;

    if (!root || !json_object_object_get_ex(root, "format", &format) ||
        json_object_get_int(format) != CACHE_FORMAT ||
        !field_is(root, "endpoint", h->base_url) ||
        !field_is(root, "id_scope", h->scope_id) ||
        !field_is(root, "registration_id", h->attest.registration_id) ||
        !field_is(root, "attestation", fp) ||
        !json_object_object_get_ex(root, "registration_state", &state) ||
        !field_is(state, "status", "assigned"))
        goto done;
    if (h->settings.csr_key_path) {
        /* The certificate must still be for the key file and valid. */
        char err[300];
        char *pem = prov_certs_chain_pem(
            json_object_to_json_string_ext(state, JSON_C_TO_STRING_PLAIN),
            h->settings.csr_key_path, h->attest.registration_id,
            (int64_t)time(NULL), err, sizeof(err));
        if (!pem) {
            trace(h, err);
            goto done;
        }
        free(pem);
    }
    wrap = json_object_new_object();
    if (wrap) {
        json_object_object_add(wrap, "operationId", json_object_new_string(""));
        json_object_object_add(wrap, "status",
                               json_object_new_string("assigned"));
        json_object_object_add(wrap, "registrationState",
                               json_object_get(state));
        answer = strdup(json_object_to_json_string_ext(
            wrap, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    }
done:
    json_object_put(wrap);
    json_object_put(root);
    free(text);
    return answer;
}

bool prov_cache_answer(PROV_DEVICE_LL_HANDLE h, uint64_t now_ms)
{
    char *fp, *answer;
    prov_sm_response resp;

    if (!h->settings.cache_path || h->lookup)
        return false;
    fp = fingerprint(h);
    answer = fp ? cached_answer(h, fp) : NULL;
    free(fp);
    if (!answer) {
        trace(h, "miss");
        return false;
    }
    memset(&resp, 0, sizeof(resp));
    resp.status = 200;
    resp.body = answer;
    resp.body_len = strlen(answer);
    resp.retry_after_s = -1;
    /* The state machine checks it as it would the service's answer. */
    prov_sm_sent(&h->sm, now_ms);
    prov_sm_on_response(&h->sm, now_ms, &resp);
    free(answer);
    if (h->sm.state != PROV_SM_ASSIGNED) {
        trace(h, "unusable entry");
        prov_sm_start(&h->sm, now_ms);
        return false;
    }
    trace(h, "hit");
    h->from_cache = true;
    h->expect_certificate = h->settings.csr_key_path != NULL;
    return true;
}

void prov_cache_store(PROV_DEVICE_LL_HANDLE h)
{
    const char *state_json = h->sm.result.registration_state_json;
    json_object *root, *state;
    char *fp, err[300];
    const char *text;

    if (!h->settings.cache_path || h->from_cache || !state_json)
        return;
    fp = fingerprint(h);
    state = json_tokener_parse(state_json);
    root = json_object_new_object();
    if (!fp || !state || !root) {
        json_object_put(state);
        json_object_put(root);
        free(fp);
        trace(h, "not written (out of memory)");
        return;
    }
    json_object_object_add(root, "format", json_object_new_int(CACHE_FORMAT));
    json_object_object_add(root, "endpoint",
                           json_object_new_string(h->base_url));
    json_object_object_add(root, "id_scope",
                           json_object_new_string(h->scope_id));
    json_object_object_add(root, "registration_id",
                           json_object_new_string(h->attest.registration_id));
    json_object_object_add(root, "attestation", json_object_new_string(fp));
    json_object_object_add(root, "saved",
                           json_object_new_int64((int64_t)time(NULL)));
    json_object_object_add(root, "registration_state", state);
    text = json_object_to_json_string_ext(
        root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!text ||
        dps_write_private_file(h->settings.cache_path, text, strlen(text),
                               "cache", err, sizeof(err)) != 0)
        trace(h, text ? err : "not written (out of memory)");
    json_object_put(root);
    free(fp);
}

PROV_DEVICE_RESULT Prov_Device_LL_Forget_Assignment(PROV_DEVICE_LL_HANDLE h)
{
    char msg[360];

    if (!h)
        return PROV_DEVICE_RESULT_INVALID_ARG;
    if (h->running)
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_STATE,
                         "the cache cannot be removed while registering");
    if (!h->settings.cache_path || unlink(h->settings.cache_path) == 0 ||
        errno == ENOENT)
        return PROV_DEVICE_RESULT_OK;
    snprintf(msg, sizeof(msg), "cannot remove the cache file %.200s: %s",
             h->settings.cache_path, strerror(errno));
    return prov_fail(h, PROV_DEVICE_RESULT_ERROR, msg);
}

bool Prov_Device_LL_Is_Cached_Assignment(PROV_DEVICE_LL_HANDLE h)
{
    return h && h->from_cache;
}
