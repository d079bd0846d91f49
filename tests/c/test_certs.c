/*
 * Certificate requests, status lookup and the assignment cache without a
 * service: the C API's options and state rules, and the helpers that
 * read what the service sent (which may be hostile).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prov_client_private.h"
#include "testing.h"

#define KEY "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="

static PROV_DEVICE_LL_HANDLE make(void)
{
    return Prov_Device_LL_Create("127.0.0.1:9", "0ne00000A0A",
                                 Prov_Device_HTTP_Protocol);
}

static void on_result(PROV_DEVICE_RESULT r, const char *hub, const char *device,
                      void *ctx)
{
    (void)r;
    (void)hub;
    (void)device;
    (void)ctx;
}

static void test_options_and_getters(void)
{
    PROV_DEVICE_LL_HANDLE h = make();

    CHECK(h != NULL);
    CHECK(Prov_Device_LL_Get_Issued_Certificate(h) == NULL);
    CHECK(Prov_Device_LL_Get_Issued_Certificate(NULL) == NULL);
    CHECK(!Prov_Device_LL_Is_Cached_Assignment(h));
    CHECK(!Prov_Device_LL_Is_Cached_Assignment(NULL));
    CHECK_INT(
        Prov_Device_LL_SetOption(h, PROV_OPTION_CERTIFICATE_REQUEST_KEY, ""),
        PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_SetOption(h, PROV_OPTION_ASSIGNMENT_CACHE, ""),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_SetOption(h, PROV_OPTION_CERTIFICATE_REQUEST_KEY,
                                       "/nonexistent/dir/op.key"),
              PROV_DEVICE_RESULT_OK);
    CHECK_INT(
        Prov_Device_LL_SetOption(h, PROV_OPTION_CERTIFICATE_REQUEST_KEY, NULL),
        PROV_DEVICE_RESULT_OK);
    /* Without a cache there is nothing to forget. */
    CHECK_INT(Prov_Device_LL_Forget_Assignment(h), PROV_DEVICE_RESULT_OK);
    CHECK_INT(Prov_Device_LL_Forget_Assignment(NULL),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_Lookup_Device(NULL, on_result, NULL, NULL, NULL),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_Lookup_Device(h, NULL, NULL, NULL, NULL),
              PROV_DEVICE_RESULT_INVALID_ARG);
    Prov_Device_LL_Destroy(h);
}

/* An unusable key fails Register_Device before any request, naming the
 * path; so does a key that cannot be created. */
static void test_register_fails_on_key(void)
{
    PROV_DEVICE_LL_HANDLE h = make();
    const char *path = "/nonexistent/dir/op.key";
    const PROV_DEVICE_ERROR_INFO *e;

    Prov_Device_LL_SetOption(h, PROV_REGISTRATION_ID, "dev-1");
    Prov_Device_LL_SetOption(h, PROV_OPTION_SYMMETRIC_KEY, KEY);
    Prov_Device_LL_SetOption(h, PROV_OPTION_CERTIFICATE_REQUEST_KEY, path);
    CHECK_INT(Prov_Device_LL_Register_Device(h, on_result, NULL, NULL, NULL),
              PROV_DEVICE_RESULT_KEY_ERROR);
    e = Prov_Device_LL_Get_Error(h);
    CHECK(strstr(e->message, path) != NULL);
    CHECK(!Prov_Device_LL_Is_Busy(h));
    /* The lookup never needs the key. */
    CHECK_INT(Prov_Device_LL_Lookup_Device(h, on_result, NULL, NULL, NULL),
              PROV_DEVICE_RESULT_OK);
    CHECK(Prov_Device_LL_Is_Busy(h));
    CHECK_INT(Prov_Device_LL_Forget_Assignment(h),
              PROV_DEVICE_RESULT_INVALID_STATE);
    Prov_Device_LL_Destroy(h);
}

static void test_lookup_path(void)
{
    char path[] = "/0ne/registrations/dev%3aregister/register?api-version=1";
    char other[] = "/0ne/registrations/x/operations/y?api-version=1";

    prov_lookup_path(path);
    CHECK_STR(path, "/0ne/registrations/dev%3aregister?api-version=1");
    prov_lookup_path(other);
    CHECK_STR(other, "/0ne/registrations/x/operations/y?api-version=1");
}

static void test_lookup_wrap(void)
{
    const char *bare = "{\"registrationId\":\"d\",\"status\":\"assigned\","
                       "\"assignedHub\":\"h\",\"deviceId\":\"d\"}";
    const char *bad[] = {
        "", "[]", "\"x\"", "{", "{\"a\":1} x", "null", "{\"a\":\"\xff\"}"};
    char *w = prov_lookup_wrap(bare, strlen(bare));
    size_t i;

    CHECK(w != NULL);
    CHECK(w && strstr(w, "\"status\":\"assigned\"") != NULL);
    CHECK(w && strstr(w, "\"registrationState\":{") != NULL);
    free(w);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        w = prov_lookup_wrap(bad[i], strlen(bad[i]));
        CHECK(w == NULL);
        free(w);
    }
    CHECK(prov_lookup_wrap(NULL, 0) == NULL);
    /* A NUL inside the body is not its end. */
    CHECK(prov_lookup_wrap("{}\0{", 4) == NULL);
}

/* What the service claims to have issued is checked before use. */
static void test_chain_from_hostile_state(void)
{
    const char *states[] = {
        "{}",
        "{\"issuedCertificateChain\":null}",
        "{\"issuedCertificateChain\":\"MIIB\"}",
        "{\"issuedCertificateChain\":[]}",
        "{\"issuedCertificateChain\":[42]}",
        "{\"issuedCertificateChain\":[\"not base64!\"]}",
        "{\"issuedCertificateChain\":[\"\"]}",
        "{\"issuedCertificateChain\":[\"MIIBAAAA\"]}",
        "{\"issuedCertificateChain\":[\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
        "\"a\",\"a\",\"a\"]}",
        "not json",
    };
    char err[300];
    size_t i;

    for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        char *pem;
        err[0] = '\0';
        pem = prov_certs_chain_pem(states[i], "/nonexistent.key", "dev-1", 0,
                                   err, sizeof(err));
        CHECK(pem == NULL);
        CHECK(err[0] != '\0');
        free(pem);
    }
    CHECK(prov_certs_chain_pem(NULL, "/k", "d", 0, err, sizeof(err)) == NULL);
}

int main(void)
{
    RUN(test_options_and_getters);
    RUN(test_register_fails_on_key);
    RUN(test_lookup_path);
    RUN(test_lookup_wrap);
    RUN(test_chain_from_hostile_state);
    return testing_done();
}
