/*
 * prov_attest without a handle, as prov_sm is tested: settings in, state
 * and an error buffer out. The TPM path itself runs against swtpm in
 * test_tpm.c; here only what needs no TPM.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prov_attest.h"
#include "prov_values.h"
#include "testing.h"

#define FX "tests/fixtures/x509/"
/* docs/protocol.md §5.5, KAT-1. */
#define KAT1_GROUP_KEY                                                     \
    "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi" \
    "9yegxkqIChbqOS9Egw=="
#define KAT1_REG_ID "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
#define KAT1_DEVICE_KEY "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
#define KEY_B64 "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="

static prov_attest_settings empty_settings(void)
{
    prov_attest_settings s;
    memset(&s, 0, sizeof s);
    return s;
}

static void test_registration_ids(void)
{
    char id[130];
    CHECK(prov_valid_registration_id("router-0042"));
    CHECK(prov_valid_registration_id("a"));
    CHECK(prov_valid_registration_id("Dev.1_2:3-"));
    CHECK(!prov_valid_registration_id(""));
    CHECK(!prov_valid_registration_id(NULL));
    CHECK(!prov_valid_registration_id("dev/1"));
    CHECK(!prov_valid_registration_id("dev 1"));
    CHECK(!prov_valid_registration_id("dev."));
    CHECK(!prov_valid_registration_id("dev:"));
    memset(id, 'a', 128);
    id[128] = '\0';
    CHECK(prov_valid_registration_id(id));
    id[128] = 'a';
    id[129] = '\0';
    CHECK(!prov_valid_registration_id(id));
}

/* Exactly one attestation; the message says which settings to use. */
static void test_choice(void)
{
    prov_attest a;
    prov_attest_settings s = empty_settings();
    char err[256];

    memset(&a, 0, sizeof a);
    CHECK_INT(prov_attest_prepare(&a, &s, 0, err, sizeof err),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK(strstr(err, "no attestation") != NULL);
    s.symmetric_key = KEY_B64;
    s.x509_cert = FX "device.pem";
    CHECK_INT(prov_attest_prepare(&a, &s, 0, err, sizeof err),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK(strstr(err, "more than one attestation") != NULL);
    s = empty_settings();
    s.symmetric_key = KEY_B64;
    s.group_key = KEY_B64;
    CHECK_INT(prov_attest_prepare(&a, &s, 0, err, sizeof err),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(a.kind, PROV_ATTEST_NONE);
    prov_attest_clear(&a, true);
}

static void test_symmetric_key(void)
{
    prov_attest a;
    prov_attest_settings s = empty_settings();
    char err[256];

    memset(&a, 0, sizeof a);
    s.symmetric_key = KEY_B64;
    CHECK_INT(prov_attest_prepare(&a, &s, 0, err, sizeof err),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK(strstr(err, "registration_id is required") != NULL);
    s.registration_id = "router-0042";
    s.symmetric_key = "not base64!";
    CHECK_INT(prov_attest_prepare(&a, &s, 0, err, sizeof err),
              PROV_DEVICE_RESULT_KEY_ERROR);
    /* The message names the setting, never the key. */
    CHECK(strstr(err, "symmetric_key is not valid Base64") != NULL);
    CHECK(strstr(err, "not base64!") == NULL);
    s.symmetric_key = KEY_B64;
    CHECK_INT(prov_attest_prepare(&a, &s, 0, err, sizeof err),
              PROV_DEVICE_RESULT_OK);
    CHECK_INT(a.kind, PROV_ATTEST_SYMMETRIC_KEY);
    CHECK_STR(a.registration_id, "router-0042");
    CHECK_STR(a.key_name, "registration");
    CHECK_INT(a.key_len, 32);
    CHECK_STR(a.device_key_b64, KEY_B64);
    prov_attest_clear(&a, true);
    CHECK(a.registration_id == NULL && a.key == NULL);
    prov_attest_clear(&a, true); /* twice is harmless */
}

/* A group key is turned into the device key in the client. */
static void test_group_key(void)
{
    prov_attest a;
    prov_attest_settings s = empty_settings();
    char err[256];

    memset(&a, 0, sizeof a);
    s.registration_id = KAT1_REG_ID;
    s.group_key = KAT1_GROUP_KEY;
    CHECK_INT(prov_attest_prepare(&a, &s, 0, err, sizeof err),
              PROV_DEVICE_RESULT_OK);
    CHECK_STR(a.device_key_b64, KAT1_DEVICE_KEY);
    s.group_key = "abc";
    CHECK_INT(prov_attest_prepare(&a, &s, 0, err, sizeof err),
              PROV_DEVICE_RESULT_KEY_ERROR);
    CHECK(strstr(err, "group_key") != NULL);
    prov_attest_clear(&a, true);
}

/* Tokens are reused while fresh and signed again when a fifth of their
 * life (at least a minute) is left. */
static void test_authorization(void)
{
    const int64_t now = 1700000000;
    prov_attest a;
    prov_attest_settings s = empty_settings();
    const char *tok = NULL, *again = NULL;
    char err[256], *first;

    memset(&a, 0, sizeof a);
    CHECK_INT(prov_attest_authorization(&a, "0ne00111111", 3600, now, &tok, err,
                                        sizeof err),
              PROV_DEVICE_RESULT_INVALID_STATE);
    s.registration_id = "my-symkey-device";
    s.symmetric_key = KEY_B64;
    CHECK_INT(prov_attest_prepare(&a, &s, now, err, sizeof err),
              PROV_DEVICE_RESULT_OK);
    CHECK_INT(prov_attest_authorization(&a, "0ne00111111", 3600, now, &tok, err,
                                        sizeof err),
              PROV_DEVICE_RESULT_OK);
    CHECK(tok && strncmp(tok,
                         "SharedAccessSignature sr=0ne00111111%2f"
                         "registrations%2fmy-symkey-device&sig=",
                         76) == 0);
    CHECK(tok && strstr(tok, "&se=1700003600&skn=registration") != NULL);
    first = tok ? strdup(tok) : NULL;
    CHECK_INT(prov_attest_authorization(&a, "0ne00111111", 3600,
                                        now + 3600 - 721, &again, err,
                                        sizeof err),
              PROV_DEVICE_RESULT_OK);
    CHECK_STR(again, first);
    CHECK_INT(prov_attest_authorization(&a, "0ne00111111", 3600,
                                        now + 3600 - 720, &again, err,
                                        sizeof err),
              PROV_DEVICE_RESULT_OK);
    CHECK(again && first && strcmp(again, first) != 0);
    CHECK(again && strstr(again, "&se=1700006480&") != NULL);
    free(first);
    prov_attest_clear(&a, true);
}

static void test_x509(void)
{
    prov_attest a;
    prov_attest_settings s = empty_settings();
    const char *tok = "unset";
    char *token = NULL;
    char err[256];

    memset(&a, 0, sizeof a);
    s.x509_cert = FX "device.pem";
    CHECK_INT(prov_attest_prepare(&a, &s, time(NULL), err, sizeof err),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK(strstr(err, "x509privatekey is required") != NULL);
    s.x509_key = FX "other.key";
    CHECK_INT(prov_attest_prepare(&a, &s, time(NULL), err, sizeof err),
              PROV_DEVICE_RESULT_KEY_ERROR);
    s.x509_key = FX "device.key";
    CHECK_INT(prov_attest_prepare(&a, &s, time(NULL), err, sizeof err),
              PROV_DEVICE_RESULT_OK);
    CHECK_INT(a.kind, PROV_ATTEST_X509);
    CHECK_STR(a.registration_id, "x509-device-01"); /* the CN */
    /* No Authorization header and no key to sign with. */
    CHECK_INT(prov_attest_authorization(&a, "0ne00111111", 3600, 0, &tok, err,
                                        sizeof err),
              PROV_DEVICE_RESULT_OK);
    CHECK(tok == NULL);
    CHECK_INT(
        prov_attest_sas(&a, "hub/devices/x", 1, NULL, &token, err, sizeof err),
        PROV_DEVICE_RESULT_INVALID_STATE);
    CHECK(token == NULL);
    s.registration_id = "given-id";
    CHECK_INT(prov_attest_prepare(&a, &s, time(NULL), err, sizeof err),
              PROV_DEVICE_RESULT_OK);
    CHECK_STR(a.registration_id, "given-id");
    prov_attest_clear(&a, true);
}

/* Challenges need an open TPM; a TPM that cannot be reached is a
 * KEY_ERROR before any request. */
static void test_tpm_without_tpm(void)
{
    prov_attest a;
    prov_attest_settings s = empty_settings();
    char err[256];

    memset(&a, 0, sizeof a);
    CHECK_INT(
        prov_attest_challenge(&a, "AAAA", "registration", err, sizeof err),
        PROV_DEVICE_RESULT_INVALID_STATE);
    CHECK(strstr(err, "no TPM is open") != NULL);
    CHECK_INT(prov_attest_hub_key(&a, "AAAA", err, sizeof err),
              PROV_DEVICE_RESULT_INVALID_STATE);
    s.tpm_tcti = "swtpm:host=127.0.0.1,port=1";
    CHECK_INT(prov_attest_prepare(&a, &s, 0, err, sizeof err),
              PROV_DEVICE_RESULT_KEY_ERROR);
    CHECK(err[0] != '\0');
    prov_attest_clear(&a, true);
}

/* A NULL or empty error buffer is allowed. */
static void test_no_error_buffer(void)
{
    prov_attest a;
    prov_attest_settings s = empty_settings();

    memset(&a, 0, sizeof a);
    CHECK_INT(prov_attest_prepare(&a, &s, 0, NULL, 0),
              PROV_DEVICE_RESULT_INVALID_ARG);
    prov_attest_clear(&a, true);
}

int main(void)
{
    /* tpm2-tss would log the refused connection of test_tpm_without_tpm. */
    setenv("TSS2_LOG", "all+none", 1);
    RUN(test_registration_ids);
    RUN(test_choice);
    RUN(test_symmetric_key);
    RUN(test_group_key);
    RUN(test_authorization);
    RUN(test_x509);
    RUN(test_tpm_without_tpm);
    RUN(test_no_error_buffer);
    return testing_done();
}
