/*
 * The handle behind PROV_DEVICE_LL_HANDLE, shared by the files that
 * implement the public API (prov_device_ll_client.c, prov_options.c,
 * prov_attest.c). Not installed.
 */
#ifndef PROV_CLIENT_PRIVATE_H
#define PROV_CLIENT_PRIVATE_H

#include "dps_http.h"
#include "dps_tpm.h"
#include "prov_device_ll_client.h"
#include "prov_sm.h"

/* What SetOption stored; copied strings, secrets wiped on free. */
typedef struct {
    char *registration_id;
    char *trusted_certs;
    char *proxy_host;
    int proxy_port;
    char *proxy_user;
    char *proxy_password;
    char *x509_cert;
    char *x509_key;
    char *x509_key_password;
    char *symmetric_key;
    char *group_key;
    char *tpm_tcti;
    char *api_version;
    uint8_t request_timeout_s;  /* 0 = default */
    uint32_t deadline_s;
    uint32_t sas_lifetime_s;
    uint32_t max_retries;
    bool logtrace;
    bool insecure_skip_verify;
} prov_settings;

typedef enum {
    PROV_ATTEST_NONE,
    PROV_ATTEST_SYMMETRIC_KEY,
    PROV_ATTEST_X509,
    PROV_ATTEST_TPM
} prov_attest_kind;

/* Attestation state of one registration. */
typedef struct {
    prov_attest_kind kind;
    char *registration_id;    /* in use */
    uint8_t *key;             /* symmetric: device key bytes */
    size_t key_len;
    char *device_key_b64;     /* symmetric: for the connection string */
    dps_tpm *tpm;             /* TPM: open while the handle lives */
    char *ek_b64;
    char *srk_b64;
    bool tpm_key_ready;       /* identity key imported: can sign */
    char *key_name;           /* skn of our SAS tokens */
    char *sas_token;          /* current token and when it expires */
    int64_t sas_expiry;
} prov_attest;

struct PROV_INSTANCE_INFO_TAG {
    char *base_url;           /* "https://host[:port]" */
    char *scope_id;
    prov_settings settings;
    char *payload_json;       /* sent with the registration */

    prov_sm sm;
    prov_attest attest;
    dps_http *http;
    struct dps_group *group;  /* NULL: the handle drives itself */
    struct PROV_INSTANCE_INFO_TAG *group_prev, *group_next;
    int64_t group_due_ms;     /* when its DoWork is next due (cached) */
    bool group_due_stale;     /* the cache must be read afresh */
    char *register_body;
    bool running;             /* Register_Device .. callback */
    bool connected_reported;
    bool assigning_reported;

    PROV_DEVICE_CLIENT_REGISTER_DEVICE_CALLBACK register_cb;
    void *register_ctx;
    PROV_DEVICE_CLIENT_REGISTER_STATUS_CALLBACK status_cb;
    void *status_ctx;
    int in_callback;          /* Destroy inside a callback is deferred */
    bool destroy_pending;

    char *connection_string;
    PROV_DEVICE_ERROR_INFO error;
    char error_message[320];
    char error_tracking_id[64];
};

/* Records a failure in the handle's error info and returns result. */
PROV_DEVICE_RESULT prov_fail(PROV_DEVICE_LL_HANDLE h, PROV_DEVICE_RESULT result,
                             const char *message);
void prov_free_secret(char *s);
bool prov_valid_registration_id(const char *id);

/* Ends a registration of a handle whose group is being destroyed: no
 * callback; the handle is detached and stays usable alone. */
void prov_group_abort(PROV_DEVICE_LL_HANDLE h);

/* prov_attest.c */
PROV_DEVICE_RESULT prov_attest_prepare(PROV_DEVICE_LL_HANDLE h,
                                       int64_t now_s);
void prov_attest_clear(prov_attest *a, bool close_tpm);
/* The Authorization header value for the next request, renewed before
 * expiry; NULL (and OK) when the attestation sends none (X.509, TPM
 * before the challenge). */
PROV_DEVICE_RESULT prov_attest_authorization(PROV_DEVICE_LL_HANDLE h,
                                             int64_t now_s, const char **out);
PROV_DEVICE_RESULT prov_attest_challenge(PROV_DEVICE_LL_HANDLE h,
                                         const char *blob_b64,
                                         const char *key_name);
PROV_DEVICE_RESULT prov_attest_hub_key(PROV_DEVICE_LL_HANDLE h,
                                       const char *blob_b64);
PROV_DEVICE_RESULT prov_attest_sas(PROV_DEVICE_LL_HANDLE h,
                                   const char *resource, int64_t expiry,
                                   const char *key_name, char **token);

#endif
