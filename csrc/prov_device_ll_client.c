/*
 * The public low-level API: glues the sans-IO state machine (prov_sm),
 * the HTTPS transport (dps_http) and attestation (prov_attest) together.
 * All clock reads and all callbacks to the user happen here.
 */
#define _POSIX_C_SOURCE 200809L
#include "prov_client_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dps_crypto.h"
#include "dps_pem_input.h"
#include "prov_endpoint.h"
#include "prov_group.h"
#include "prov_json.h"

/* The build date: a clock before it cannot be right (routers without an
 * RTC boot in the past until NTP syncs). The Makefile passes the real
 * value; this fallback is the project's start. */
#ifndef DPS_BUILD_EPOCH
#define DPS_BUILD_EPOCH 1764460800
#endif

#define DEFAULT_API_VERSION "2021-06-01"
#define DEFAULT_REQUEST_TIMEOUT_S 30
#define DEFAULT_DEADLINE_S 300
#define DEFAULT_SAS_LIFETIME_S 3600
#define DEFAULT_MAX_RETRIES 10
/* The service's own message limit is 96 KB (docs/protocol.md §4.3). */
#define MAX_RESPONSE_BODY (128 * 1024)

struct PROV_DEVICE_TRANSPORT_PROVIDER_TAG {
    const char *name;
};

static const PROV_DEVICE_TRANSPORT_PROVIDER http_provider = {"https"};

const PROV_DEVICE_TRANSPORT_PROVIDER *Prov_Device_HTTP_Protocol(void)
{
    return &http_provider;
}

const char *Prov_Device_LL_GetVersionString(void)
{
    return DPS_CLIENT_VERSION;
}

const char *Prov_Device_LL_Result_Name(PROV_DEVICE_RESULT result)
{
    static const char *const names[] = {
        "OK", "INVALID_ARG", "SUCCESS", "MEMORY", "PARSING", "TRANSPORT",
        "INVALID_STATE", "DEV_AUTH_ERROR", "TIMEOUT", "KEY_ERROR", "ERROR",
        "HUB_NOT_SPECIFIED", "UNAUTHORIZED", "DISABLED"};
    if ((unsigned)result < sizeof(names) / sizeof(names[0]))
        return names[result];
    return "UNKNOWN";
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

PROV_DEVICE_LL_HANDLE Prov_Device_LL_Create(const char *uri,
    const char *scope_id, PROV_DEVICE_TRANSPORT_PROVIDER_FUNCTION protocol)
{
    PROV_DEVICE_LL_HANDLE h;
    prov_sm_config cfg;

    /* SRS_PROV_CLIENT_07_001, 07_003: NULL or invalid arguments. */
    if (!uri || !scope_id || !scope_id[0] || !protocol || !protocol())
        return NULL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->base_url = prov_endpoint_url(uri);
    h->scope_id = strdup(scope_id);
    if (!h->base_url || !h->scope_id) {
        free(h->base_url);
        free(h->scope_id);
        free(h);
        return NULL;
    }
    h->settings.deadline_s = DEFAULT_DEADLINE_S;
    h->settings.sas_lifetime_s = DEFAULT_SAS_LIFETIME_S;
    h->settings.max_retries = DEFAULT_MAX_RETRIES;
    prov_sm_config_defaults(&cfg);
    prov_sm_init(&h->sm, &cfg);
    prov_clear_error(h);
    return h;
}

static void free_handle(PROV_DEVICE_LL_HANDLE h)
{
    prov_settings *s = &h->settings;

    dps_http_destroy(h->http);
    if (h->group && h->running)
        prov_group_member_changed(h->group, h, -1);
    prov_group_unlink(h->group, h);
    prov_sm_reset(&h->sm);
    prov_attest_clear(&h->attest, true);
    free(h->register_body);
    free(h->payload_json);
    dps_free_secret(h->connection_string);
    free(s->registration_id);
    free(s->trusted_certs);
    free(s->proxy_host);
    dps_free_secret(s->proxy_user);
    dps_free_secret(s->proxy_password);
    free(s->x509_cert);
    dps_free_secret(s->x509_key);
    dps_free_secret(s->x509_key_password);
    dps_free_secret(s->symmetric_key);
    dps_free_secret(s->group_key);
    free(s->tpm_tcti);
    free(s->api_version);
    free(s->csr_key_path);
    free(s->cache_path);
    prov_certs_clear(h);
    free(h->base_url);
    free(h->scope_id);
    free(h);
}

void Prov_Device_LL_Destroy(PROV_DEVICE_LL_HANDLE h)
{
    /* SRS_PROV_CLIENT_07_005: NULL does nothing. */
    if (!h)
        return;
    if (h->in_callback) {
        h->destroy_pending = true;
        return;
    }
    free_handle(h);
}

static void trace_to_stderr(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "dps: %s\n", line);
}

static PROV_DEVICE_RESULT make_transport(PROV_DEVICE_LL_HANDLE h)
{
    prov_settings *s = &h->settings;
    dps_http_config cfg;
    char err[256];

    /* Settings may have changed since the last registration. */
    dps_http_destroy(h->http);
    memset(&cfg, 0, sizeof(cfg));
    cfg.trusted_certs = s->trusted_certs;
    cfg.insecure_skip_verify = s->insecure_skip_verify;
    cfg.proxy_host = s->proxy_host;
    cfg.proxy_port = s->proxy_port;
    cfg.proxy_user = s->proxy_user;
    cfg.proxy_password = s->proxy_password;
    if (h->attest.kind == PROV_ATTEST_X509) {
        cfg.client_cert = s->x509_cert;
        cfg.client_key = s->x509_key;
        cfg.client_key_password = s->x509_key_password;
    }
    cfg.request_timeout_ms = 1000L * (s->request_timeout_s
                                      ? s->request_timeout_s
                                      : DEFAULT_REQUEST_TIMEOUT_S);
    cfg.max_body = MAX_RESPONSE_BODY;
    cfg.trace = s->logtrace ? trace_to_stderr : NULL;
    cfg.pool = h->group ? h->group->pool : NULL;
    h->http = dps_http_create(&cfg, err, sizeof(err));
    return h->http ? PROV_DEVICE_RESULT_OK
                   : prov_fail(h, PROV_DEVICE_RESULT_MEMORY, err);
}

/* Readies the attestation the options chose; failures land in the
 * handle's error info. */
static PROV_DEVICE_RESULT prepare_attestation(PROV_DEVICE_LL_HANDLE h,
                                              int64_t now_s)
{
    const prov_settings *s = &h->settings;
    prov_attest_settings as;
    char err[256];
    PROV_DEVICE_RESULT r;

    memset(&as, 0, sizeof(as));
    as.registration_id = s->registration_id;
    as.symmetric_key = s->symmetric_key;
    as.group_key = s->group_key;
    as.x509_cert = s->x509_cert;
    as.x509_key = s->x509_key;
    as.x509_key_password = s->x509_key_password;
    as.tpm_tcti = s->tpm_tcti;
    r = prov_attest_prepare(&h->attest, &as, now_s, err, sizeof(err));
    return r == PROV_DEVICE_RESULT_OK ? r : prov_fail(h, r, err);
}

/* A CA bundle libcurl cannot open would be quoted in its error buffer,
 * whatever the text was: refuse it first, showing it only when it is
 * safely a path. */
static PROV_DEVICE_RESULT check_trusted_certs(PROV_DEVICE_LL_HANDLE h)
{
    char err[320];

    if (!h->settings.trusted_certs ||
        dps_pem_check_source(h->settings.trusted_certs, "trusted_certs", err,
                             sizeof(err)) == 0)
        return PROV_DEVICE_RESULT_OK;
    return prov_fail(h, PROV_DEVICE_RESULT_TRANSPORT, err);
}

static void reset_registration(PROV_DEVICE_LL_HANDLE h)
{
    prov_sm_config cfg;

    free(h->register_body);
    h->register_body = NULL;
    dps_free_secret(h->connection_string);
    h->connection_string = NULL;
    h->connected_reported = h->assigning_reported = false;
    prov_sm_reset(&h->sm);
    prov_sm_config_defaults(&cfg);
    cfg.deadline_ms = h->settings.deadline_s * 1000u;
    cfg.max_retries = h->settings.max_retries;
    cfg.tpm = h->attest.kind == PROV_ATTEST_TPM;
    if (dps_random_bytes((uint8_t *)&cfg.random_seed,
                         sizeof(cfg.random_seed)) != 0)
        cfg.random_seed = (uint32_t)monotonic_ms();
    prov_sm_init(&h->sm, &cfg);
}

/* What start_run does: register (cache first), look up, or answer from
 * the cache only. */
typedef enum { RUN_REGISTER, RUN_LOOKUP, RUN_CACHE_ONLY } run_kind;

/* Register_Device, Lookup_Device, Cached_Assignment: one run of the
 * state machine. */
static PROV_DEVICE_RESULT start_run(
    PROV_DEVICE_LL_HANDLE h, run_kind kind,
    PROV_DEVICE_CLIENT_REGISTER_DEVICE_CALLBACK register_callback,
    void *user_context, PROV_DEVICE_CLIENT_REGISTER_STATUS_CALLBACK status_cb,
    void *status_ctx)
{
    int64_t now_s = (int64_t)time(NULL);
    uint64_t now_ms;
    PROV_DEVICE_RESULT r;
    bool lookup = kind == RUN_LOOKUP;

    /* SRS_PROV_CLIENT_07_007: NULL handle or callback. */
    if (!h)
        return PROV_DEVICE_RESULT_INVALID_ARG;
    if (!register_callback)
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG,
                         "a register callback is required");
    if (h->running)
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_STATE,
                         "a registration is already running");
    prov_clear_error(h);
    if (now_s < DPS_BUILD_EPOCH)
        return prov_fail(h, PROV_DEVICE_RESULT_ERROR,
                         "the system clock is not set (it is earlier than "
                         "this build); SAS tokens and TLS certificates "
                         "would be rejected. Wait for NTP to sync.");
    r = prepare_attestation(h, now_s);
    if (r != PROV_DEVICE_RESULT_OK)
        return r;
    if (lookup && h->attest.kind == PROV_ATTEST_TPM)
        return prov_fail(h, PROV_DEVICE_RESULT_ERROR,
                         "the status lookup is not available with TPM "
                         "attestation (DPS authenticates a TPM only through "
                         "a registration's challenge); use the assignment "
                         "cache");
    reset_registration(h);
    prov_certs_clear(h);
    h->lookup = lookup;
    /* A lookup's body is the DeviceRegistration without the payload. */
    h->register_body = prov_json_register_body(
        h->attest.registration_id, h->attest.ek_b64, h->attest.srk_b64,
        lookup ? NULL : h->payload_json);
    if (!h->register_body)
        return prov_fail(h, PROV_DEVICE_RESULT_MEMORY, "out of memory");
    r = check_trusted_certs(h);
    if (r != PROV_DEVICE_RESULT_OK)
        return r;
    r = make_transport(h);
    if (r != PROV_DEVICE_RESULT_OK)
        return r;
    /* A cached assignment answers at once; else, with a certificate
     * request, the CSR goes into the body. */
    now_ms = monotonic_ms();
    prov_sm_start(&h->sm, now_ms);
    if (!prov_cache_answer(h, now_ms)) {
        if (kind == RUN_CACHE_ONLY)
            return prov_fail(h, PROV_DEVICE_RESULT_ERROR,
                             h->settings.cache_path
                                 ? "no valid cached assignment"
                                 : "no assignment cache is configured");
        if ((r = prov_certs_prepare(h)) != PROV_DEVICE_RESULT_OK)
            return r;
    }
    h->register_cb = register_callback;
    h->register_ctx = user_context;
    h->status_cb = status_cb;
    h->status_ctx = status_ctx;
    h->running = true;
    if (h->group)
        prov_group_member_changed(h->group, h, +1);
    /* SRS_PROV_CLIENT_07_008: the register request goes out in DoWork. */
    return PROV_DEVICE_RESULT_OK;
}

PROV_DEVICE_RESULT Prov_Device_LL_Register_Device(
    PROV_DEVICE_LL_HANDLE h,
    PROV_DEVICE_CLIENT_REGISTER_DEVICE_CALLBACK register_callback,
    void *user_context, PROV_DEVICE_CLIENT_REGISTER_STATUS_CALLBACK status_cb,
    void *status_ctx)
{
    return start_run(h, RUN_REGISTER, register_callback, user_context,
                     status_cb, status_ctx);
}

PROV_DEVICE_RESULT Prov_Device_LL_Lookup_Device(
    PROV_DEVICE_LL_HANDLE h,
    PROV_DEVICE_CLIENT_REGISTER_DEVICE_CALLBACK register_callback,
    void *user_context, PROV_DEVICE_CLIENT_REGISTER_STATUS_CALLBACK status_cb,
    void *status_ctx)
{
    return start_run(h, RUN_LOOKUP, register_callback, user_context, status_cb,
                     status_ctx);
}

PROV_DEVICE_RESULT Prov_Device_LL_Cached_Assignment(
    PROV_DEVICE_LL_HANDLE h,
    PROV_DEVICE_CLIENT_REGISTER_DEVICE_CALLBACK register_callback,
    void *user_context, PROV_DEVICE_CLIENT_REGISTER_STATUS_CALLBACK status_cb,
    void *status_ctx)
{
    return start_run(h, RUN_CACHE_ONLY, register_callback, user_context,
                     status_cb, status_ctx);
}

/* Calls the status callback; returns false if the handle was destroyed
 * from inside it (the caller must then return at once). */
static bool report_status(PROV_DEVICE_LL_HANDLE h, PROV_DEVICE_REG_STATUS st)
{
    if (!h->status_cb)
        return true;
    h->in_callback++;
    h->status_cb(st, h->status_ctx);
    h->in_callback--;
    if (h->destroy_pending && !h->in_callback) {
        free_handle(h);
        return false;
    }
    return true;
}

static const char *request_method(PROV_DEVICE_LL_HANDLE h,
                                  prov_request_kind kind)
{
    if (kind != PROV_REQ_REGISTER)
        return "GET";
    return h->lookup ? "POST" : "PUT";
}

/* A request that fails before it leaves (no key, a TLS option the
 * backend refuses, no memory) ends the registration with result. The
 * state machine takes failures only of a request in flight, so it is
 * told of the send first; otherwise it would ask for the same request
 * again at once, and again, until the deadline. */
static void fail_before_send(PROV_DEVICE_LL_HANDLE h, uint64_t now,
                             PROV_DEVICE_RESULT result, const char *message)
{
    prov_sm_sent(&h->sm, now);
    prov_sm_on_network_error(&h->sm, now, false, result, 0, message);
}

static void send_request(PROV_DEVICE_LL_HANDLE h, prov_request_kind kind,
                         uint64_t now)
{
    const char *auth = NULL;
    char *path = NULL, *url = NULL, *auth_header = NULL;
    const char *headers[4];
    char err[256];
    size_t n = 0;
    int started;
    PROV_DEVICE_RESULT r;

    r = prov_attest_authorization(&h->attest, h->scope_id,
                                  h->settings.sas_lifetime_s,
                                  (int64_t)time(NULL), &auth, err, sizeof(err));
    if (r != PROV_DEVICE_RESULT_OK) {
        fail_before_send(h, now, r, err);
        return;
    }
    path = prov_sm_request_path(&h->sm, h->scope_id, h->attest.registration_id,
                                prov_certs_api_version(h, DEFAULT_API_VERSION));
    if (path && h->lookup && kind == PROV_REQ_REGISTER)
        prov_lookup_path(path);
    if (path && (url = malloc(strlen(h->base_url) + strlen(path) + 1))) {
        memcpy(url, h->base_url, strlen(h->base_url));
        memcpy(url + strlen(h->base_url), path, strlen(path) + 1);
    }
    if (auth && (auth_header = malloc(strlen(auth) + 16)))
        snprintf(auth_header, strlen(auth) + 16, "Authorization: %s", auth);
    headers[n++] = "Accept: application/json";
    headers[n++] = "Content-Type: application/json; charset=utf-8";
    if (auth_header)
        headers[n++] = auth_header;
    headers[n] = NULL;
    if (!url || (auth && !auth_header)) {
        fail_before_send(h, now, PROV_DEVICE_RESULT_MEMORY, "out of memory");
    } else if ((started = dps_http_start(
                    h->http, request_method(h, kind), url, headers,
                    kind == PROV_REQ_REGISTER ? h->register_body : NULL, err,
                    sizeof(err))) != 0) {
        fail_before_send(h, now,
                         started == -2 ? PROV_DEVICE_RESULT_MEMORY
                                       : PROV_DEVICE_RESULT_KEY_ERROR,
                         err);
    } else {
        prov_sm_sent(&h->sm, now);
    }
    free(path);
    free(url);
    dps_free_secret(auth_header);
}

static void take_response(PROV_DEVICE_LL_HANDLE h, dps_http_response *resp,
                          uint64_t now)
{
    if (resp->status == 0) {
        prov_sm_on_network_error(&h->sm, now, resp->retryable, resp->result,
                                 resp->curl_code, resp->message);
    } else {
        prov_sm_response r;
        /* A lookup answers with a bare registration result. */
        char *wrapped = h->lookup && resp->status >= 200 && resp->status <= 299
                            ? prov_lookup_wrap(resp->body, resp->body_len)
                            : NULL;
        r.status = resp->status;
        r.retry_after_s = resp->retry_after_s;
        r.body = wrapped ? wrapped : resp->body;
        r.body_len = wrapped ? strlen(wrapped) : resp->body_len;
        prov_sm_on_response(&h->sm, now, &r);
        free(wrapped);
    }
}

static void run_challenge(PROV_DEVICE_LL_HANDLE h, uint64_t now)
{
    char err[256];
    PROV_DEVICE_RESULT r =
        prov_attest_challenge(&h->attest, h->sm.result.challenge_b64,
                              h->sm.result.key_name, err, sizeof(err));
    prov_sm_challenge_done(&h->sm, now, r, err);
}

static void make_connection_string(PROV_DEVICE_LL_HANDLE h)
{
    const prov_sm_result *res = &h->sm.result;
    size_t n;

    if (h->attest.kind != PROV_ATTEST_SYMMETRIC_KEY)
        return;
    n = strlen(res->assigned_hub) + strlen(res->device_id) +
        strlen(h->attest.device_key_b64) + 48;
    h->connection_string = malloc(n);
    if (h->connection_string)
        snprintf(h->connection_string, n,
                 "HostName=%s;DeviceId=%s;SharedAccessKey=%s",
                 res->assigned_hub, res->device_id, h->attest.device_key_b64);
}

/* Copies the state machine's verdict into the public error info. */
static void record_sm_error(PROV_DEVICE_LL_HANDLE h)
{
    const prov_sm_error *e = &h->sm.error;
    prov_fail(h, e->result, e->message);
    h->error.http_status = e->http_status;
    h->error.service_error_code = e->service_error_code;
    h->error.transport_code = e->transport_code;
    snprintf(h->error_tracking_id, sizeof(h->error_tracking_id), "%s",
             e->tracking_id);
}

/* The registration ended: tell the user. Returns false if the handle
 * was destroyed inside a callback. */
static bool finish(PROV_DEVICE_LL_HANDLE h)
{
    PROV_DEVICE_RESULT result = PROV_DEVICE_RESULT_OK;
    const char *hub = NULL, *device = NULL;
    PROV_DEVICE_CLIENT_REGISTER_DEVICE_CALLBACK cb = h->register_cb;

    dps_http_abort(h->http);
    dps_http_close_idle(h->http);
    if (h->sm.state == PROV_SM_ASSIGNED) {
        if (h->sm.result.hub_key_b64 && h->attest.kind == PROV_ATTEST_TPM) {
            char err[256];
            result = prov_attest_hub_key(&h->attest, h->sm.result.hub_key_b64,
                                         err, sizeof(err));
            if (result != PROV_DEVICE_RESULT_OK)
                prov_fail(h, result, err);
        }
        if (result == PROV_DEVICE_RESULT_OK && h->expect_certificate)
            result = prov_certs_take_chain(h);
        if (result == PROV_DEVICE_RESULT_OK) {
            prov_cache_store(h);
            prov_clear_error(h);
            hub = h->sm.result.assigned_hub;
            device = h->sm.result.device_id;
            make_connection_string(h);
        }
    } else {
        record_sm_error(h);
        prov_certs_explain_refusal(h);
        result = h->sm.error.result;
    }
    h->running = false;
    if (h->group)
        prov_group_member_changed(h->group, h, -1);
    if (!report_status(h, result == PROV_DEVICE_RESULT_OK
                              ? PROV_DEVICE_REG_STATUS_ASSIGNED
                              : PROV_DEVICE_REG_STATUS_ERROR))
        return false;
    h->in_callback++;
    /* SRS_PROV_CLIENT_07_016, 07_017: one callback with the outcome. */
    cb(result, hub, device, h->register_ctx);
    h->in_callback--;
    if (h->destroy_pending && !h->in_callback) {
        free_handle(h);
        return false;
    }
    return true;
}

/* Status events derived from what the state machine saw. */
static bool report_progress(PROV_DEVICE_LL_HANDLE h, bool answered)
{
    if (answered && !h->connected_reported) {
        h->connected_reported = true;
        if (!report_status(h, PROV_DEVICE_REG_STATUS_CONNECTED))
            return false;
    }
    if (h->sm.saw_assigning && !h->assigning_reported) {
        h->assigning_reported = true;
        if (!report_status(h, PROV_DEVICE_REG_STATUS_ASSIGNING))
            return false;
    }
    return true;
}

static void do_work(PROV_DEVICE_LL_HANDLE h)
{
    int rounds;

    /* A few rounds: an answer may make the next request due at once. */
    for (rounds = 0; rounds < 8 && h->running; rounds++) {
        uint64_t now = monotonic_ms();
        dps_http_response resp;
        bool answered = false;
        prov_sm_action act;

        /* SRS_PROV_CLIENT_07_011: drive the HTTP transfer. */
        if (dps_http_busy(h->http) && dps_http_work(h->http, &resp)) {
            answered = resp.status != 0;
            take_response(h, &resp, now);
            dps_http_response_free(&resp);
        }
        if (!report_progress(h, answered))
            return;
        act = prov_sm_next(&h->sm, now);
        switch (act.kind) {
        case PROV_ACT_SEND:
            send_request(h, act.request, now);
            if (act.request == PROV_REQ_REGISTER &&
                !report_status(h, PROV_DEVICE_REG_STATUS_REGISTERING))
                return;
            continue; /* the next round starts the transfer */
        case PROV_ACT_CHALLENGE:
            run_challenge(h, now);
            continue;
        case PROV_ACT_DONE:
            finish(h);
            return;
        default:
            return; /* waiting on the network or the clock */
        }
    }
}

void Prov_Device_LL_DoWork(PROV_DEVICE_LL_HANDLE h)
{
    struct prov_group *g;

    /* SRS_PROV_CLIENT_07_010: NULL does nothing. A DoWork from inside a
     * callback of this handle would re-enter the state machine: no-op. */
    if (!h || !h->running || h->in_callback)
        return;
    /* A callback may destroy the group (and the handle): the group
     * waits until this DoWork is over. */
    g = h->group;
    if (g) {
        prov_group_member_changed(g, h, 0); /* its timers will change */
        prov_group_enter(g);
    }
    do_work(h);
    if (g)
        prov_group_leave(g);
}

PROV_DEVICE_RESULT Prov_Device_LL_Set_Provisioning_Payload(
    PROV_DEVICE_LL_HANDLE h, const char *json)
{
    char *copy = NULL;

    if (!h)
        return PROV_DEVICE_RESULT_INVALID_ARG;
    if (h->running)
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_STATE,
                         "the payload cannot change while registering");
    if (json) {
        int rc = prov_json_check_payload(json);
        if (rc == PROV_JSON_TOO_DEEP)
            return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG,
                             "payload nested deeper than " PROV_JSON_DEPTH_TEXT
                             " levels");
        if (rc != PROV_JSON_OK)
            return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG,
                             "the payload is not valid JSON");
    }
    if (json && !(copy = strdup(json)))
        return prov_fail(h, PROV_DEVICE_RESULT_MEMORY, "out of memory");
    free(h->payload_json);
    h->payload_json = copy;
    return PROV_DEVICE_RESULT_OK;
}

const char *Prov_Device_LL_Get_Provisioning_Payload(PROV_DEVICE_LL_HANDLE h)
{
    return h ? h->sm.result.payload_json : NULL;
}

const char *Prov_Device_LL_Get_Registration_State(PROV_DEVICE_LL_HANDLE h)
{
    return h ? h->sm.result.registration_state_json : NULL;
}

const char *Prov_Device_LL_Get_Registration_Id(PROV_DEVICE_LL_HANDLE h)
{
    if (!h)
        return NULL;
    return h->attest.registration_id ? h->attest.registration_id
                                     : h->settings.registration_id;
}

const char *Prov_Device_LL_Get_Issued_Certificate(PROV_DEVICE_LL_HANDLE h)
{
    return h && !h->running ? h->issued_certificate : NULL;
}

const char *Prov_Device_LL_Get_Hub_Connection_String(PROV_DEVICE_LL_HANDLE h)
{
    return h ? h->connection_string : NULL;
}

const PROV_DEVICE_ERROR_INFO *Prov_Device_LL_Get_Error(PROV_DEVICE_LL_HANDLE h)
{
    return h ? &h->error : NULL;
}

bool Prov_Device_LL_Is_Busy(PROV_DEVICE_LL_HANDLE h)
{
    return h && h->running;
}

PROV_DEVICE_RESULT Prov_Device_LL_Get_Pollfds(PROV_DEVICE_LL_HANDLE h,
    PROV_DEVICE_POLLFD *fds, size_t max, size_t *count)
{
    if (!h || !count || (max && !fds))
        return PROV_DEVICE_RESULT_INVALID_ARG;
    *count = h->running ? dps_http_pollfds(h->http, fds, max) : 0;
    return PROV_DEVICE_RESULT_OK;
}

long Prov_Device_LL_Get_Timeout_Ms(PROV_DEVICE_LL_HANDLE h)
{
    const prov_sm *sm;
    uint64_t now, due;
    long curl_ms;

    if (!h || !h->running)
        return -1;
    sm = &h->sm;
    if (sm->state != PROV_SM_WAITING && sm->state != PROV_SM_IN_FLIGHT)
        return 0; /* a challenge or a result is ready to be handled */
    now = monotonic_ms();
    due = UINT64_MAX;
    if (sm->state == PROV_SM_WAITING)
        due = sm->next_send_ms;
    if (sm->cfg.deadline_ms && sm->started_ms + sm->cfg.deadline_ms < due)
        due = sm->started_ms + sm->cfg.deadline_ms;
    curl_ms = dps_http_timeout_ms(h->http);
    if (due == UINT64_MAX)
        return curl_ms;
    due = due > now ? due - now : 0;
    if (due > 0x7fffffff)
        due = 0x7fffffff;
    if (curl_ms >= 0 && (uint64_t)curl_ms < due)
        return curl_ms;
    return (long)due;
}

PROV_DEVICE_RESULT Prov_Device_LL_Get_Hub_Sas_Token(PROV_DEVICE_LL_HANDLE h,
    const char *resource, uint32_t lifetime_s, char **token)
{
    char *made = NULL, err[256];
    PROV_DEVICE_RESULT r;

    if (!h || !token || lifetime_s == 0)
        return PROV_DEVICE_RESULT_INVALID_ARG;
    *token = NULL;
    if (!h->sm.result.assigned_hub || h->running)
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_STATE,
                         "the device is not assigned to a hub yet");
    if (!resource) {
        size_t n = strlen(h->sm.result.assigned_hub) +
                   strlen(h->sm.result.device_id) + 16;
        if (!(made = malloc(n)))
            return prov_fail(h, PROV_DEVICE_RESULT_MEMORY, "out of memory");
        snprintf(made, n, "%s/devices/%s", h->sm.result.assigned_hub,
                 h->sm.result.device_id);
        resource = made;
    }
    r = prov_attest_sas(&h->attest, resource, (int64_t)time(NULL) + lifetime_s,
                        NULL, token, err, sizeof(err));
    free(made);
    return r == PROV_DEVICE_RESULT_OK ? r : prov_fail(h, r, err);
}
