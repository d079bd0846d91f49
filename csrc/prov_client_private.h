/*
 * The handle behind PROV_DEVICE_LL_HANDLE, shared by the two files that
 * implement the public API (prov_device_ll_client.c, prov_options.c).
 * The parts it is built from (prov_sm, prov_attest, dps_http) have their
 * own state and never see it. Not installed.
 */
#ifndef PROV_CLIENT_PRIVATE_H
#define PROV_CLIENT_PRIVATE_H

#include "dps_http.h"
#include "prov_attest.h"
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

struct PROV_INSTANCE_INFO_TAG {
    char *base_url;           /* "https://host[:port]" */
    char *scope_id;
    prov_settings settings;
    char *payload_json;       /* sent with the registration */

    prov_sm sm;
    prov_attest attest;
    dps_http *http;
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

#endif
