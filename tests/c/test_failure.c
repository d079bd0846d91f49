/*
 * The failure table (csrc/dps_failure.c), row by row: which failures
 * are retried and which are final, with what result and message. Rows
 * that a spec cannot reach through the public API (libcurl's own URL,
 * protocol and option errors once dps.new has checked the endpoint) are
 * covered only here.
 */
#include <curl/curl.h>
#include <errno.h>

#include "dps_failure.h"
#include "testing.h"

static const dps_failure *by_curl(CURLcode rc, const char *detail)
{
    dps_transport_facts f = {(int)rc, detail, 0, 0, false};
    return dps_failure_for_transport(&f);
}

static void test_libcurl_configuration_errors_are_final(void)
{
    const CURLcode codes[] = {
        CURLE_URL_MALFORMAT,         CURLE_UNSUPPORTED_PROTOCOL,
        CURLE_BAD_FUNCTION_ARGUMENT, CURLE_UNKNOWN_OPTION,
        CURLE_NOT_BUILT_IN,          CURLE_FAILED_INIT};
    size_t i;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const dps_failure *f = by_curl(codes[i], "");
        CHECK(!f->retried);
        CHECK(f->message != NULL);
    }
    CHECK_STR(by_curl(CURLE_URL_MALFORMAT, "")->name, "bad_url");
    CHECK_STR(by_curl(CURLE_UNSUPPORTED_PROTOCOL, "")->message,
              "only https:// endpoints are supported");
}

static void test_network_trouble_is_retried(void)
{
    const CURLcode codes[] = {CURLE_COULDNT_RESOLVE_HOST,
                              CURLE_COULDNT_CONNECT,
                              CURLE_OPERATION_TIMEDOUT,
                              CURLE_SSL_CONNECT_ERROR,
                              CURLE_GOT_NOTHING,
                              CURLE_RECV_ERROR,
                              CURLE_SEND_ERROR,
                              CURLE_PARTIAL_FILE,
                              CURLE_HTTP2};
    size_t i;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK(by_curl(codes[i], "")->retried);
        CHECK_INT(by_curl(codes[i], "")->result, PROV_DEVICE_RESULT_TRANSPORT);
    }
}

static void test_certificate_and_key_problems_are_final(void)
{
    CHECK(!by_curl(CURLE_PEER_FAILED_VERIFICATION, "")->retried);
    CHECK(!by_curl(CURLE_SSL_CACERT_BADFILE, "")->retried);
    CHECK_INT(by_curl(CURLE_SSL_CERTPROBLEM, "")->result,
              PROV_DEVICE_RESULT_KEY_ERROR);
}

static void test_tls_alerts_about_our_certificate(void)
{
    const char *texts[] = {
        "OpenSSL/3.0.19: error:0A000418:SSL routines::tlsv1 alert unknown ca",
        "OpenSSL SSL_read: error:0A000412:SSL routines::sslv3 alert bad "
        "certificate, errno 0",
        "OpenSSL SSL_read: error:0A00045C:SSL routines::tlsv13 alert "
        "certificate required, errno 0",
        "error:0A000419:SSL routines::tlsv1 alert access denied"};
    size_t i;
    for (i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        const dps_failure *f = by_curl(
            i % 2 ? CURLE_RECV_ERROR : CURLE_SSL_CONNECT_ERROR, texts[i]);
        CHECK_STR(f->name, "device_cert_refused");
        CHECK(!f->retried);
        CHECK_INT(f->result, PROV_DEVICE_RESULT_DEV_AUTH_ERROR);
    }
    CHECK_STR(dps_failure_cert_alert(texts[0]), "unknown ca");
    /* Other alerts (a protocol version, a decode error) stay retried. */
    CHECK(by_curl(CURLE_SSL_CONNECT_ERROR, "tlsv1 alert protocol version")
              ->retried);
    CHECK(dps_failure_cert_alert(NULL) == NULL);
}

static void test_proxy_answers(void)
{
    dps_transport_facts f = {CURLE_RECV_ERROR,
                             "CONNECT tunnel failed, "
                             "response 407",
                             407, 0, false};
    CHECK_STR(dps_failure_for_transport(&f)->message,
              "the proxy refused the credentials (HTTP 407)");
    CHECK(!dps_failure_for_transport(&f)->retried);
    f.proxy_status = 502;
    CHECK(dps_failure_for_transport(&f)->retried);
    CHECK_STR(dps_failure_for_transport(&f)->name, "proxy_refused");
}

static void test_resources(void)
{
    dps_transport_facts f = {CURLE_SSL_CACERT_BADFILE,
                             "error setting "
                             "certificate file: /etc/ca.pem",
                             0, EMFILE, false};
    CHECK_STR(dps_failure_for_transport(&f)->name, "no_file_descriptors");
    CHECK(!dps_failure_for_transport(&f)->retried);
    f.os_error = ENFILE;
    CHECK_STR(dps_failure_for_transport(&f)->name, "no_file_descriptors");
    f.os_error = ENOENT;
    CHECK_STR(dps_failure_for_transport(&f)->name, "ca_bundle_unreadable");
    CHECK_INT(by_curl(CURLE_OUT_OF_MEMORY, "")->result,
              PROV_DEVICE_RESULT_MEMORY);
    CHECK(!by_curl(CURLE_OUT_OF_MEMORY, "")->retried);
    CHECK_INT(by_curl(CURLE_WRITE_ERROR, "")->result,
              PROV_DEVICE_RESULT_MEMORY);
    f.curl_code = CURLE_WRITE_ERROR;
    f.os_error = 0;
    f.answer_too_large = true;
    CHECK(dps_failure_for_transport(&f)->retried);
    /* The same rows for a check made before any request. */
    CHECK_STR(dps_failure_for_os_error(EMFILE)->name, "no_file_descriptors");
    CHECK_STR(dps_failure_for_os_error(ENFILE)->name, "no_file_descriptors");
    CHECK_STR(dps_failure_for_os_error(ENOMEM)->name, "out_of_memory");
    CHECK(!dps_failure_for_os_error(ENOMEM)->retried);
    CHECK(dps_failure_for_os_error(ENOENT) == NULL);
}

static void test_http_statuses(void)
{
    CHECK(dps_failure_for_status(429)->retried);
    CHECK(dps_failure_for_status(500)->retried);
    CHECK(dps_failure_for_status(599)->retried);
    CHECK(dps_failure_for_status(204)->retried); /* unusable 2xx body */
    CHECK_INT(dps_failure_for_status(204)->result, PROV_DEVICE_RESULT_PARSING);
    CHECK(!dps_failure_for_status(401)->retried);
    CHECK_INT(dps_failure_for_status(403)->result,
              PROV_DEVICE_RESULT_DEV_AUTH_ERROR);
    CHECK_INT(dps_failure_for_status(404)->result,
              PROV_DEVICE_RESULT_DEV_AUTH_ERROR);
    CHECK(!dps_failure_for_status(400)->retried);
    CHECK(!dps_failure_for_status(409)->retried);
    CHECK(!dps_failure_for_status(302)->retried);
    CHECK(!dps_failure_for_status(-1)->retried);
    CHECK(!dps_failure_for_status(100000)->retried);
}

int main(void)
{
    RUN(test_libcurl_configuration_errors_are_final);
    RUN(test_network_trouble_is_retried);
    RUN(test_certificate_and_key_problems_are_final);
    RUN(test_tls_alerts_about_our_certificate);
    RUN(test_proxy_answers);
    RUN(test_resources);
    RUN(test_http_statuses);
    return testing_done();
}
