/*
 * The handle behind PROV_DEVICE_LL_HANDLE, shared by the files that
 * implement the public API (prov_device_ll_client.c, prov_options.c,
 * prov_certs.c, prov_cache.c) and its error info (prov_error.c). The
 * parts it is built from (prov_sm, prov_attest, dps_http) have their own
 * state and never see it. Not installed.
 */
#ifndef PROV_CLIENT_PRIVATE_H
#define PROV_CLIENT_PRIVATE_H

#include "dps_http.h"
#include "prov_attest.h"
#include "prov_device_ll_client.h"
#include "prov_sm.h"
#include "prov_values.h"

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
    char *csr_key_path;         /* certificate request: operational key */
    char *cache_path;           /* assignment cache file */
    uint8_t request_timeout_s;  /* 0 = default */
    uint32_t deadline_s;
    uint32_t sas_lifetime_s;
    uint32_t max_retries;
    bool logtrace;
    bool insecure_skip_verify;
} prov_settings;

struct PROV_INSTANCE_INFO_TAG {
    char *base_url;           /* "https://host[:port]" */
    char *scope_id;
    prov_settings settings;
    char *payload_json;       /* sent with the registration */

    prov_sm sm;
    prov_attest attest;
    dps_http *http;
    struct prov_group *group; /* NULL: the handle drives itself */
    struct PROV_INSTANCE_INFO_TAG *group_prev, *group_next;
    int64_t group_due_ms; /* when its DoWork is next due (cached) */
    bool group_due_stale; /* the cache must be read afresh */
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
    /* Certificates from DPS, lookup, cache (prov_certs.c, prov_cache.c). */
    char *csr_b64;            /* the CSR of this registration, or NULL */
    char *issued_certificate; /* PEM chain, leaf first */
    bool expect_certificate;  /* the result must carry an issued chain */
    bool lookup;              /* this run is a status lookup */
    bool from_cache;          /* this result came from the cache */
    PROV_DEVICE_ERROR_INFO error;
    char error_message[320];
    char error_tracking_id[64];
};

/* prov_error.c: records a failure in the handle's error info, every
 * configured secret masked, and returns result. */
PROV_DEVICE_RESULT prov_fail(PROV_DEVICE_LL_HANDLE h, PROV_DEVICE_RESULT result,
                             const char *message);
/* Empties the handle's error info. */
void prov_clear_error(PROV_DEVICE_LL_HANDLE h);

/* prov_certs.c: certificate requests and the status lookup. */
/* Before a run: with a certificate request (and not a lookup), makes
 * sure of the key, builds the CSR and adds it to h->register_body. */
PROV_DEVICE_RESULT prov_certs_prepare(PROV_DEVICE_LL_HANDLE h);
/* The api-version of this run's requests. */
const char *prov_certs_api_version(PROV_DEVICE_LL_HANDLE h,
                                   const char *default_version);
/* After an assignment that must carry a certificate: checks the issued
 * chain (from the registration state) and keeps it as PEM. */
PROV_DEVICE_RESULT prov_certs_take_chain(PROV_DEVICE_LL_HANDLE h);
/* After a failure: a 400 to a certificate request says what was refused. */
void prov_certs_explain_refusal(PROV_DEVICE_LL_HANDLE h);
void prov_certs_clear(PROV_DEVICE_LL_HANDLE h);
/* The PEM chain in a registration state, checked against the key at
 * key_path and cn (and validity at now_s); NULL with err on failure. */
char *prov_certs_chain_pem(const char *state_json, const char *key_path,
                           const char *cn, int64_t now_s, char *err,
                           size_t errlen);
/* The lookup request: path without "/register" (in place), and its bare
 * DeviceRegistrationResult answer wrapped as an operation status. */
void prov_lookup_path(char *register_path);
char *prov_lookup_wrap(const char *body, size_t len);

/* prov_cache.c: the assignment cache. */
/* On a valid cache entry, feeds it to the state machine (just started)
 * as the service's answer and returns true. */
bool prov_cache_answer(PROV_DEVICE_LL_HANDLE h, uint64_t now_ms);
/* Writes the assignment just received; failures are traced only. */
void prov_cache_store(PROV_DEVICE_LL_HANDLE h);

#endif
