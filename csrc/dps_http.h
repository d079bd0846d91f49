/*
 * HTTPS transport on libcurl's multi interface. One request at a time,
 * one connection kept alive across them. Nothing here blocks: the owner
 * calls dps_http_work() when a descriptor from dps_http_pollfds() is
 * ready or dps_http_timeout_ms() has passed.
 */
#ifndef DPS_HTTP_H
#define DPS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prov_device_ll_client.h"

typedef struct dps_http dps_http;

/* Receives one trace line (logtrace); secrets already masked. */
typedef void (*dps_http_trace_fn)(void *ctx, const char *line);

typedef struct {
    const char *trusted_certs;   /* PEM text or file path; NULL = system */
    bool insecure_skip_verify;
    const char *proxy_host;      /* NULL = no proxy (curl's env rules off) */
    int proxy_port;
    const char *proxy_user;
    const char *proxy_password;
    const char *client_cert;     /* PEM text or file path; NULL = none */
    const char *client_key;
    const char *client_key_password;
    long request_timeout_ms;     /* per request, connect included */
    size_t max_body;             /* larger answers fail the request */
    dps_http_trace_fn trace;     /* NULL = no trace */
    void *trace_ctx;
    struct dps_http_pool *pool; /* NULL = own multi handle; else a
                                    group's driver, connections, caches */
} dps_http_config;

typedef struct {
    long status;                 /* 0 when the request failed */
    char *body;                  /* NUL-terminated copy; may be "" */
    size_t body_len;
    /* Retry-After in seconds, dates resolved; -1: none */
    int64_t retry_after_s;
    /* on failure (status == 0): */
    int curl_code;
    bool retryable;              /* network trouble, not configuration */
    PROV_DEVICE_RESULT result;   /* TRANSPORT or KEY_ERROR */
    char message[384];           /* readable, curl's words replaced */
} dps_http_response;

/* Copies what it needs from cfg. NULL on OOM or if curl cannot start. */
dps_http *dps_http_create(const dps_http_config *cfg, char *err, size_t errlen);
void dps_http_destroy(dps_http *http);

/* Starts a request. headers: NULL-terminated "Name: value" strings.
 * Returns 0; -1 with err set when the settings cannot work (a request
 * already running, a TLS backend that cannot take what was given); -2
 * with err set when memory ran out. */
int dps_http_start(dps_http *http, const char *method, const char *url,
                   const char *const *headers, const char *body,
                   char *err, size_t errlen);

/* Advances the transfer. Returns 1 when it finished (the response is
 * then in *resp and owned by the caller: dps_http_response_free), else
 * 0. Never blocks. */
int dps_http_work(dps_http *http, dps_http_response *resp);

/* Aborts a running transfer and drops its connection. */
void dps_http_abort(dps_http *http);

/* Closes the kept-alive connection (after a registration ends). */
void dps_http_close_idle(dps_http *http);

bool dps_http_busy(const dps_http *http);

size_t dps_http_pollfds(dps_http *http, PROV_DEVICE_POLLFD *fds, size_t max);
/* ms until dps_http_work must run; -1 = only when a descriptor is ready
 * or nothing is running. */
long dps_http_timeout_ms(dps_http *http);

void dps_http_response_free(dps_http_response *resp);

/* Seconds a Retry-After value asks for: integer seconds, or an HTTP-date
 * (curl_getdate) counted from the answer's Date header, or from now_s
 * without a usable one. 0 for a date already past, at most UINT32_MAX,
 * -1 when value is NULL or unusable. */
int64_t dps_http_retry_after_s(const char *value, const char *date,
                               int64_t now_s);

#endif
