/*
 * The public C API without a service: argument checks, options, state
 * rules, and a registration against a closed loopback port. Requirement
 * ids of spec/SRS_TRACE.md are named where a test traces one.
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "prov_device_ll_client.h"
#include "testing.h"

#define KEY "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="

typedef struct {
    int calls;
    PROV_DEVICE_RESULT result;
    PROV_DEVICE_LL_HANDLE destroy_me;
} outcome;

static void on_result(PROV_DEVICE_RESULT r, const char *hub,
                      const char *device, void *ctx)
{
    outcome *o = ctx;
    (void)hub;
    (void)device;
    o->calls++;
    o->result = r;
    /* Destroying the handle from its own callback must be safe. */
    if (o->destroy_me)
        Prov_Device_LL_Destroy(o->destroy_me);
}

static PROV_DEVICE_LL_HANDLE make(const char *uri)
{
    return Prov_Device_LL_Create(uri, "0ne00000A0A",
                                 Prov_Device_HTTP_Protocol);
}

/* SRS_PROV_CLIENT_07_001, 07_003: NULL or unusable arguments. */
static void test_create_rejects_bad_arguments(void)
{
    CHECK(Prov_Device_LL_Create(NULL, "s", Prov_Device_HTTP_Protocol) == NULL);
    CHECK(Prov_Device_LL_Create("h", NULL, Prov_Device_HTTP_Protocol) == NULL);
    CHECK(Prov_Device_LL_Create("h", "", Prov_Device_HTTP_Protocol) == NULL);
    CHECK(Prov_Device_LL_Create("h", "s", NULL) == NULL);
    CHECK(make("http://plain.example") == NULL);
    CHECK(make("host/path") == NULL);
    CHECK(make("user@host") == NULL);
    CHECK(make("") == NULL);
    /* Forms libcurl would take or guess at, but no DPS can be behind. */
    CHECK(make("127.0.0.1:99999") == NULL);
    CHECK(make("127.0.0.1:0") == NULL);
    CHECK(make("host:") == NULL);
    CHECK(make(":::::") == NULL);
    CHECK(make("https://host/path") == NULL);
    CHECK(make("host?x=1") == NULL);
    CHECK(make("host#frag") == NULL);
    CHECK(make("[::1") == NULL);
    CHECK(make("[zz::1]:443") == NULL);
    CHECK(make("-bad-.example") == NULL);
    CHECK(make("a..b") == NULL);
    CHECK(make("999.1.1.1") == NULL);
    CHECK(make("ftp://host") == NULL);
}

/* SRS_PROV_CLIENT_07_002: each endpoint form gives a handle. */
static void test_create_accepts_endpoint_forms(void)
{
    const char *forms[] = {"global.azure-devices-provisioning.net",
                           "127.0.0.1:8443",
                           "https://example.net",
                           "https://example.net:443/",
                           "[::1]:8443",
                           "[::1]",
                           "localhost:65535"};
    size_t i;
    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        PROV_DEVICE_LL_HANDLE h = make(forms[i]);
        CHECK(h != NULL);
        Prov_Device_LL_Destroy(h);
    }
}

/* SRS_PROV_CLIENT_07_005, 07_007, 07_010: NULL handles are harmless. */
static void test_null_handle(void)
{
    Prov_Device_LL_Destroy(NULL);
    Prov_Device_LL_DoWork(NULL);
    CHECK_INT(Prov_Device_LL_Register_Device(NULL, on_result, NULL, NULL,
                                             NULL),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_SetOption(NULL, "logtrace", NULL),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK(Prov_Device_LL_Get_Error(NULL) == NULL);
    CHECK(Prov_Device_LL_Get_Provisioning_Payload(NULL) == NULL);
    CHECK_INT(Prov_Device_LL_Get_Timeout_Ms(NULL), -1);
}

static void test_options(void)
{
    PROV_DEVICE_LL_HANDLE h = make("127.0.0.1:1");
    uint8_t t8 = 5;
    uint32_t t32 = 10, bad_life = 5;
    bool yes = true;
    HTTP_PROXY_OPTIONS proxy = {"proxy.lan", 3128, "u", NULL};

    CHECK_INT(Prov_Device_LL_SetOption(h, "nope", "x"),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_STR(Prov_Device_LL_Get_Error(h)->message, "unknown option 'nope'");
    CHECK_INT(Prov_Device_LL_SetOption(h, PROV_OPTION_TIMEOUT, &t8), 0);
    CHECK_INT(Prov_Device_LL_SetOption(h, PROV_OPTION_DEADLINE, &t32), 0);
    CHECK_INT(Prov_Device_LL_SetOption(h, PROV_OPTION_LOG_TRACE, &yes), 0);
    CHECK_INT(Prov_Device_LL_SetOption(h, PROV_OPTION_LOG_TRACE, NULL),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_SetOption(h, PROV_OPTION_SAS_LIFETIME,
                                       &bad_life),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_SetOption(h, PROV_REGISTRATION_ID, "a/b"),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_SetOption(h, PROV_REGISTRATION_ID, "dev:1_a.b-c"),
              0);
    /* Both proxy credentials or neither, as in the official SDK. */
    CHECK_INT(Prov_Device_LL_SetOption(h, OPTION_HTTP_PROXY, &proxy),
              PROV_DEVICE_RESULT_INVALID_ARG);
    proxy.password = "p";
    CHECK_INT(Prov_Device_LL_SetOption(h, OPTION_HTTP_PROXY, &proxy), 0);
    CHECK_INT(Prov_Device_LL_SetOption(h, OPTION_HTTP_PROXY, NULL), 0);
    Prov_Device_LL_Destroy(h);
}

/* §9 #11: NULL clears the payload; invalid JSON is refused. */
static void test_payload(void)
{
    PROV_DEVICE_LL_HANDLE h = make("127.0.0.1:1");
    CHECK_INT(Prov_Device_LL_Set_Provisioning_Payload(h, "{\"a\":[1,2]}"), 0);
    CHECK_INT(Prov_Device_LL_Set_Provisioning_Payload(h, "{\"a\":"),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_Set_Provisioning_Payload(h, NULL), 0);
    Prov_Device_LL_Destroy(h);
}

static void test_register_needs_one_attestation(void)
{
    PROV_DEVICE_LL_HANDLE h = make("127.0.0.1:1");
    outcome o = {0, PROV_DEVICE_RESULT_OK, NULL};

    CHECK_INT(Prov_Device_LL_Register_Device(h, NULL, NULL, NULL, NULL),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_Register_Device(h, on_result, &o, NULL, NULL),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK(strstr(Prov_Device_LL_Get_Error(h)->message, "no attestation"));
    Prov_Device_LL_SetOption(h, PROV_OPTION_SYMMETRIC_KEY, KEY);
    CHECK_INT(Prov_Device_LL_Register_Device(h, on_result, &o, NULL, NULL),
              PROV_DEVICE_RESULT_INVALID_ARG); /* no registration id */
    Prov_Device_LL_SetOption(h, PROV_REGISTRATION_ID, "dev-1");
    Prov_Device_LL_SetOption(h, PROV_OPTION_GROUP_KEY, KEY);
    CHECK_INT(Prov_Device_LL_Register_Device(h, on_result, &o, NULL, NULL),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK(strstr(Prov_Device_LL_Get_Error(h)->message, "more than one"));
    Prov_Device_LL_SetOption(h, PROV_OPTION_GROUP_KEY, NULL);
    /* A key that is not Base64 can never work: refused when set, and
     * the message does not quote it. */
    CHECK_INT(
        Prov_Device_LL_SetOption(h, PROV_OPTION_SYMMETRIC_KEY, "not*base64"),
        PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK(strstr(Prov_Device_LL_Get_Error(h)->message, "not valid Base64"));
    CHECK(!strstr(Prov_Device_LL_Get_Error(h)->message, "not*base64"));
    CHECK_INT(Prov_Device_LL_SetOption(h, PROV_OPTION_GROUP_KEY, "abc"),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_SetOption(h, PROV_OPTION_GROUP_KEY, ""),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(o.calls, 0);
    Prov_Device_LL_Destroy(h);
}

static void test_x509_checked_before_any_request(void)
{
    PROV_DEVICE_LL_HANDLE h = make("127.0.0.1:1");
    outcome o = {0, PROV_DEVICE_RESULT_OK, NULL};
    Prov_Device_LL_SetOption(h, OPTION_X509_CERT,
                             "tests/fixtures/x509/expired.pem");
    Prov_Device_LL_SetOption(h, OPTION_X509_PRIVATE_KEY,
                             "tests/fixtures/x509/expired.key");
    CHECK_INT(Prov_Device_LL_Register_Device(h, on_result, &o, NULL, NULL),
              PROV_DEVICE_RESULT_KEY_ERROR);
    CHECK(strstr(Prov_Device_LL_Get_Error(h)->message, "expired"));
    Prov_Device_LL_Destroy(h);
}

/* Drives DoWork with poll() until the callback ran (bounded). */
static void drive(PROV_DEVICE_LL_HANDLE h, outcome *o)
{
    int i;
    for (i = 0; i < 2000 && o->calls == 0; i++) {
        PROV_DEVICE_POLLFD fds[4];
        struct pollfd p[4];
        size_t n = 0, k;
        long t;
        Prov_Device_LL_DoWork(h);
        if (o->calls)
            break;
        Prov_Device_LL_Get_Pollfds(h, fds, 4, &n);
        for (k = 0; k < n && k < 4; k++) {
            p[k].fd = fds[k].fd;
            p[k].events = fds[k].events;
        }
        t = Prov_Device_LL_Get_Timeout_Ms(h);
        poll(p, n < 4 ? n : 4, t < 0 || t > 100 ? 100 : (int)t);
    }
}

/* SRS_PROV_CLIENT_07_017: a refused connection ends in the callback with
 * TRANSPORT; the handle can start again (§9 #5) and can be destroyed
 * from inside its own callback. */
static void test_refused_connection(void)
{
    PROV_DEVICE_LL_HANDLE h = make("127.0.0.1:1");
    outcome o = {0, PROV_DEVICE_RESULT_OK, NULL};
    uint32_t none = 0;

    Prov_Device_LL_SetOption(h, PROV_REGISTRATION_ID, "dev-1");
    Prov_Device_LL_SetOption(h, PROV_OPTION_SYMMETRIC_KEY, KEY);
    Prov_Device_LL_SetOption(h, PROV_OPTION_MAX_RETRIES, &none);
    CHECK_INT(Prov_Device_LL_Register_Device(h, on_result, &o, NULL, NULL), 0);
    CHECK(Prov_Device_LL_Is_Busy(h));
    CHECK_INT(Prov_Device_LL_Register_Device(h, on_result, &o, NULL, NULL),
              PROV_DEVICE_RESULT_INVALID_STATE);
    CHECK_INT(Prov_Device_LL_SetOption(h, PROV_OPTION_MAX_RETRIES, &none),
              PROV_DEVICE_RESULT_INVALID_STATE);
    drive(h, &o);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.result, PROV_DEVICE_RESULT_TRANSPORT);
    CHECK(strstr(Prov_Device_LL_Get_Error(h)->message, "connect"));
    CHECK(Prov_Device_LL_Get_Error(h)->transport_code != 0);
    CHECK(!Prov_Device_LL_Is_Busy(h));
    CHECK_INT(Prov_Device_LL_Get_Timeout_Ms(h), -1);
    {
        char *token = NULL;
        CHECK_INT(Prov_Device_LL_Get_Hub_Sas_Token(h, NULL, 60, &token),
                  PROV_DEVICE_RESULT_INVALID_STATE);
        CHECK(token == NULL);
    }
    o.calls = 0;
    o.destroy_me = h;
    CHECK_INT(Prov_Device_LL_Register_Device(h, on_result, &o, NULL, NULL), 0);
    drive(h, &o); /* frees h inside the callback */
    CHECK_INT(o.calls, 1);
}

static void test_result_names(void)
{
    CHECK_STR(Prov_Device_LL_Result_Name(PROV_DEVICE_RESULT_OK), "OK");
    CHECK_STR(Prov_Device_LL_Result_Name(PROV_DEVICE_RESULT_DISABLED),
              "DISABLED");
    CHECK_STR(Prov_Device_LL_Result_Name((PROV_DEVICE_RESULT)99), "UNKNOWN");
    CHECK_STR(Prov_Device_LL_GetVersionString(), DPS_CLIENT_VERSION);
}

int main(void)
{
    RUN(test_create_rejects_bad_arguments);
    RUN(test_create_accepts_endpoint_forms);
    RUN(test_null_handle);
    RUN(test_options);
    RUN(test_payload);
    RUN(test_register_needs_one_attestation);
    RUN(test_x509_checked_before_any_request);
    RUN(test_refused_connection);
    RUN(test_result_names);
    return testing_done();
}
