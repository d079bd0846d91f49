/*
 * The failure table (see dps_failure.h). Rows are tried in order; the
 * first that matches classifies the failure. Keep the README's table
 * ("Failures: retried or final") in step with this one.
 */
#include "dps_failure.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <curl/curl.h>

typedef enum {
    MATCH_PROXY_STATUS,   /* CONNECT answered with a status in lo..hi */
    MATCH_CERT_ALERT,     /* the service sent a TLS alert about our cert */
    MATCH_NO_DESCRIPTORS, /* the process ran out of file descriptors */
    MATCH_TOO_LARGE,      /* the answer passed the size cap */
    MATCH_CURL_CODE,      /* CURLcode in lo..hi */
    MATCH_ANY_TRANSPORT,  /* every other failure without an answer */
    MATCH_HTTP_STATUS     /* an HTTP answer with a status in lo..hi */
} match_kind;

typedef struct {
    match_kind match;
    long lo, hi;
    dps_failure failure;
} row;

#define RETRIED true
#define FINAL false
#define R(x) PROV_DEVICE_RESULT_##x

/* One row per failure, as in the README table. */
/* clang-format off */
static const row table[] = {
    /* Failures without an HTTP answer from the service. */
    {MATCH_PROXY_STATUS, 407, 407, {"proxy_auth", FINAL, R(TRANSPORT),
        "the proxy refused the credentials (HTTP 407)"}},
    {MATCH_PROXY_STATUS, 300, 599, {"proxy_refused", RETRIED, R(TRANSPORT),
        "the proxy did not open a tunnel to the service"}},
    {MATCH_CERT_ALERT, 0, 0, {"device_cert_refused", FINAL,
        R(DEV_AUTH_ERROR), "the service refused the device certificate"}},
    {MATCH_NO_DESCRIPTORS, 0, 0, {"no_file_descriptors", FINAL,
        R(TRANSPORT), "the process has run out of file descriptors "
        "(EMFILE)"}},
    {MATCH_CURL_CODE, CURLE_OUT_OF_MEMORY, CURLE_OUT_OF_MEMORY,
        {"out_of_memory", FINAL, R(MEMORY), "out of memory"}},
    {MATCH_TOO_LARGE, 0, 0, {"answer_too_large", RETRIED, R(TRANSPORT),
        "the answer was larger than allowed"}},
    {MATCH_CURL_CODE, CURLE_WRITE_ERROR, CURLE_WRITE_ERROR,
        {"out_of_memory_receiving", FINAL, R(MEMORY),
         "out of memory while receiving the answer"}},
    {MATCH_CURL_CODE, CURLE_UNSUPPORTED_PROTOCOL, CURLE_UNSUPPORTED_PROTOCOL,
        {"unsupported_protocol", FINAL, R(INVALID_ARG),
         "only https:// endpoints are supported"}},
    {MATCH_CURL_CODE, CURLE_URL_MALFORMAT, CURLE_URL_MALFORMAT,
        {"bad_url", FINAL, R(INVALID_ARG),
         "the endpoint does not make a valid URL"}},
    {MATCH_CURL_CODE, CURLE_FAILED_INIT, CURLE_NOT_BUILT_IN,
        {"curl_setup", FINAL, R(ERROR),
         "libcurl cannot do what the configuration asks"}},
    {MATCH_CURL_CODE, CURLE_BAD_FUNCTION_ARGUMENT, CURLE_BAD_FUNCTION_ARGUMENT,
        {"curl_option", FINAL, R(ERROR),
         "libcurl refused an option of the request"}},
    {MATCH_CURL_CODE, CURLE_UNKNOWN_OPTION, CURLE_UNKNOWN_OPTION,
        {"curl_option", FINAL, R(ERROR),
         "libcurl refused an option of the request"}},
    {MATCH_CURL_CODE, CURLE_PEER_FAILED_VERIFICATION,
        CURLE_PEER_FAILED_VERIFICATION,
        {"service_cert_unverified", FINAL, R(TRANSPORT),
         "the service's TLS certificate could not be verified "
         "(unknown CA, wrong host name or expired certificate; "
         "check trusted_certs and the clock)"}},
    {MATCH_CURL_CODE, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CACERT_BADFILE,
        {"ca_bundle_unreadable", FINAL, R(TRANSPORT),
         "cannot read the trusted_certs CA bundle"}},
    {MATCH_CURL_CODE, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CERTPROBLEM,
        {"client_cert_unusable", FINAL, R(KEY_ERROR),
         "the client certificate or key could not be used"}},
    {MATCH_CURL_CODE, CURLE_SSL_CIPHER, CURLE_SSL_CIPHER,
        {"client_cert_unusable", FINAL, R(KEY_ERROR),
         "the client certificate or key could not be used"}},
    {MATCH_CURL_CODE, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_HOST,
        {"dns", RETRIED, R(TRANSPORT),
         "cannot resolve the service host name"}},
    {MATCH_CURL_CODE, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_RESOLVE_PROXY,
        {"proxy_dns", RETRIED, R(TRANSPORT),
         "cannot resolve the proxy host name"}},
    {MATCH_CURL_CODE, CURLE_COULDNT_CONNECT, CURLE_COULDNT_CONNECT,
        {"connect", RETRIED, R(TRANSPORT), "cannot connect to the service"}},
    {MATCH_CURL_CODE, CURLE_OPERATION_TIMEDOUT, CURLE_OPERATION_TIMEDOUT,
        {"request_timeout", RETRIED, R(TRANSPORT),
         "the service did not answer in time"}},
    {MATCH_CURL_CODE, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CONNECT_ERROR,
        {"tls_handshake", RETRIED, R(TRANSPORT), "the TLS handshake failed"}},
    {MATCH_CURL_CODE, CURLE_GOT_NOTHING, CURLE_GOT_NOTHING,
        {"no_answer", RETRIED, R(TRANSPORT),
         "the service closed the connection without answering"}},
    {MATCH_CURL_CODE, CURLE_PARTIAL_FILE, CURLE_PARTIAL_FILE,
        {"cut_answer", RETRIED, R(TRANSPORT),
         "the connection broke while receiving the answer"}},
    {MATCH_CURL_CODE, CURLE_RECV_ERROR, CURLE_RECV_ERROR,
        {"cut_answer", RETRIED, R(TRANSPORT),
         "the connection broke while receiving the answer"}},
    {MATCH_CURL_CODE, CURLE_SEND_ERROR, CURLE_SEND_ERROR,
        {"cut_request", RETRIED, R(TRANSPORT),
         "the connection broke while sending the request"}},
    {MATCH_ANY_TRANSPORT, 0, 0, {"other_transport", RETRIED, R(TRANSPORT),
        "the HTTPS request failed"}},

    /* HTTP answers. A 2xx is looked up only when its body was unusable. */
    {MATCH_HTTP_STATUS, 200, 299, {"answer_not_json", RETRIED, R(PARSING),
        "answer is not a JSON object"}},
    {MATCH_HTTP_STATUS, 429, 429, {"throttled", RETRIED, R(ERROR),
        "throttled"}},
    {MATCH_HTTP_STATUS, 500, 599, {"service_error", RETRIED, R(ERROR),
        "service error"}},
    {MATCH_HTTP_STATUS, 401, 401, {"auth_refused", FINAL, R(DEV_AUTH_ERROR),
        "device authentication refused"}},
    {MATCH_HTTP_STATUS, 403, 403, {"auth_refused", FINAL, R(DEV_AUTH_ERROR),
        "device authentication refused"}},
    {MATCH_HTTP_STATUS, 404, 404, {"not_found", FINAL, R(DEV_AUTH_ERROR),
        "enrollment or registration not found"}},
    {MATCH_HTTP_STATUS, 0, 999, {"http_error", FINAL, R(ERROR), NULL}},
};
/* clang-format on */

/* OpenSSL's names for the alerts a server sends when it rejects the
 * client certificate, as libcurl quotes them ("tlsv1 alert unknown
 * ca"). Other backends word alerts differently and are not matched:
 * their failure stays a retried handshake failure. */
static const char *const cert_alerts[] = {
    "alert unknown ca",           "alert bad certificate",
    "alert certificate required", "alert access denied",
    "alert certificate unknown",  "alert certificate revoked",
    "alert certificate expired",  "alert unsupported certificate",
};

const char *dps_failure_cert_alert(const char *curl_detail)
{
    size_t i;
    if (!curl_detail)
        return NULL;
    for (i = 0; i < sizeof cert_alerts / sizeof cert_alerts[0]; i++)
        if (strstr(curl_detail, cert_alerts[i]))
            return cert_alerts[i] + 6; /* past "alert " */
    return NULL;
}

static bool out_of_descriptors(const dps_transport_facts *f)
{
    return f->os_error == EMFILE || f->os_error == ENFILE ||
           (f->curl_detail && strstr(f->curl_detail, "Too many open files"));
}

static bool matches(const row *r, const dps_transport_facts *f)
{
    switch (r->match) {
    case MATCH_PROXY_STATUS:
        return f->proxy_status >= r->lo && f->proxy_status <= r->hi;
    case MATCH_CERT_ALERT:
        return dps_failure_cert_alert(f->curl_detail) != NULL;
    case MATCH_NO_DESCRIPTORS:
        return out_of_descriptors(f);
    case MATCH_TOO_LARGE:
        return f->answer_too_large;
    case MATCH_CURL_CODE:
        return f->curl_code >= r->lo && f->curl_code <= r->hi;
    case MATCH_ANY_TRANSPORT:
        return true;
    default:
        return false;
    }
}

const dps_failure *dps_failure_for_transport(const dps_transport_facts *f)
{
    size_t i;
    for (i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].match != MATCH_HTTP_STATUS && matches(&table[i], f))
            return &table[i].failure;
    return NULL; /* not reached: the MATCH_ANY_TRANSPORT row matches all */
}

const dps_failure *dps_failure_for_os_error(int os_error)
{
    dps_transport_facts f;

    memset(&f, 0, sizeof f);
    f.os_error = os_error;
    if (os_error == ENOMEM)
        f.curl_code = CURLE_OUT_OF_MEMORY;
    else if (os_error != EMFILE && os_error != ENFILE)
        return NULL;
    return dps_failure_for_transport(&f);
}

const dps_failure *dps_failure_for_status(long status)
{
    size_t i;
    for (i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].match == MATCH_HTTP_STATUS && status >= table[i].lo &&
            status <= table[i].hi)
            return &table[i].failure;
    return &table[sizeof table / sizeof table[0] - 1].failure;
}
