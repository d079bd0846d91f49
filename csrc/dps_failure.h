/*
 * Every way a request can fail, classified once: retried (a retry can
 * fix it) or final (it cannot), the result code and the message. The
 * transport (dps_http.c) and the state machine (prov_sm.c) both look
 * failures up here; the README's failure table mirrors this one.
 */
#ifndef DPS_FAILURE_H
#define DPS_FAILURE_H

#include <stdbool.h>

#include "prov_device_ll_client.h"

typedef struct {
    const char *name; /* stable id, for tests and the README */
    bool retried;
    PROV_DEVICE_RESULT result;
    const char *message; /* NULL: the service's own words */
} dps_failure;

/* What is known about a request that got no HTTP answer. */
typedef struct {
    int curl_code;           /* CURLcode */
    const char *curl_detail; /* libcurl's error buffer, may be "" */
    long proxy_status;       /* the proxy's answer to CONNECT, or 0 */
    int os_error;            /* errno seen with the failure, or 0 */
    bool answer_too_large;   /* the body cap stopped the transfer */
} dps_transport_facts;

const dps_failure *dps_failure_for_transport(const dps_transport_facts *f);

/* An HTTP answer that is not a success (status outside 200..299). */
const dps_failure *dps_failure_for_status(long status);

/* A system error that says nothing about the request or its settings
 * (EMFILE, ENFILE: out of descriptors; ENOMEM), met by a check made
 * before any request (opening a CA bundle or key file): its row of the
 * table, or NULL for any other error. */
const dps_failure *dps_failure_for_os_error(int os_error);

/* The TLS alert named in libcurl's error text when it is one a service
 * sends about the client certificate ("unknown ca", ...), else NULL. */
const char *dps_failure_cert_alert(const char *curl_detail);

#endif
