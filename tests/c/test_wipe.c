/*
 * Every copy of a secret goes through dps_wipe before it is freed: the
 * test binary is linked with --wrap=dps_wipe, so each wipe is recorded
 * (its bytes, before they are cleared) and the secrets set below must
 * each show up as many times as the code keeps copies of them. A plain
 * memset before free() would not be recorded, and at -O2 it is removed.
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prov_device_ll_client.h"
#include "prov_device_ll_certs.h"
#include "prov_device_ll_group.h"
#include "testing.h"

#define KEY "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="
#define GROUP_KEY                           \
    "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/" \
    "lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
#define PROXY_USER "proxy-user-7f3a"
#define PROXY_PASSWORD "proxy-pass-91c2"

#define MAX_WIPES 512
#define WIPE_COPY 600

static char wiped[MAX_WIPES][WIPE_COPY];
static size_t n_wiped;

void __real_dps_wipe(void *p, size_t len);
void __wrap_dps_wipe(void *p, size_t len);

void __wrap_dps_wipe(void *p, size_t len)
{
    if (p && len && n_wiped < MAX_WIPES) {
        size_t n = len < WIPE_COPY - 1 ? len : WIPE_COPY - 1;
        memcpy(wiped[n_wiped], p, n);
        wiped[n_wiped][n] = '\0';
        n_wiped++;
    }
    __real_dps_wipe(p, len);
}

/* How many recorded wipes held text starting with prefix. */
static int wipes_starting(const char *prefix)
{
    size_t i;
    int n = 0;
    for (i = 0; i < n_wiped; i++)
        if (strncmp(wiped[i], prefix, strlen(prefix)) == 0)
            n++;
    return n;
}

/* How many recorded wipes held text containing part. */
static int wipes_containing(const char *part)
{
    size_t i;
    int n = 0;
    for (i = 0; i < n_wiped; i++)
        if (strstr(wiped[i], part))
            n++;
    return n;
}

/* The signature of the first SAS token wiped ("" if none), into out. */
static void wiped_signature(char *out, size_t len)
{
    size_t i;
    out[0] = '\0';
    for (i = 0; i < n_wiped; i++) {
        const char *sig;
        size_t n = 0;
        if (strncmp(wiped[i], "SharedAccessSignature ", 22) != 0 ||
            !(sig = strstr(wiped[i], "sig=")))
            continue;
        sig += 4;
        while (sig[n] && sig[n] != '&' && n + 1 < len)
            n++;
        memcpy(out, sig, n);
        out[n] = '\0';
        return;
    }
}

static void forget_wipes(void)
{
    n_wiped = 0;
}

typedef struct {
    int calls;
} outcome;

static void on_result(PROV_DEVICE_RESULT r, const char *hub, const char *device,
                      void *ctx)
{
    (void)r;
    (void)hub;
    (void)device;
    ((outcome *)ctx)->calls++;
}

/* Drives DoWork with poll() until the callback ran (bounded: 20 s). */
static void drive(PROV_DEVICE_LL_HANDLE h, outcome *o)
{
    int i;
    for (i = 0; i < 200 && o->calls == 0; i++) {
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

/* One registration that gets as far as signing a token and starting the
 * transfer (to a proxy port where nothing listens), then the handle is
 * destroyed. */
static void register_with(const char *key_option, const char *key,
                          const char *csr_key_path,
                          PROV_DEVICE_LL_GROUP_HANDLE group)
{
    PROV_DEVICE_LL_HANDLE h = Prov_Device_LL_Create(
        "127.0.0.1:1", "0ne00000A0A", Prov_Device_HTTP_Protocol);
    HTTP_PROXY_OPTIONS proxy = {"127.0.0.1", 1, PROXY_USER, PROXY_PASSWORD};
    uint32_t none = 0;
    outcome o = {0};

    CHECK(h != NULL);
    if (!h)
        return;
    CHECK_INT(Prov_Device_LL_SetOption(h, PROV_REGISTRATION_ID, "dev-1"), 0);
    CHECK_INT(Prov_Device_LL_SetOption(h, key_option, key), 0);
    CHECK_INT(Prov_Device_LL_SetOption(h, OPTION_HTTP_PROXY, &proxy), 0);
    CHECK_INT(Prov_Device_LL_SetOption(h, PROV_OPTION_MAX_RETRIES, &none), 0);
    if (csr_key_path)
        CHECK_INT(Prov_Device_LL_SetOption(
                      h, PROV_OPTION_CERTIFICATE_REQUEST_KEY, csr_key_path),
                  0);
    if (group)
        CHECK_INT(Prov_Device_LL_Group_Attach(group, h), 0);
    CHECK_INT(Prov_Device_LL_Register_Device(h, on_result, &o, NULL, NULL), 0);
    if (group) {
        int i;
        for (i = 0; i < 200 && o.calls == 0; i++) { /* bounded: 20 s */
            Prov_Device_LL_Group_DoWork(group);
            if (o.calls == 0)
                Prov_Device_LL_Group_Wait(group, 100);
        }
    } else {
        drive(h, &o);
    }
    CHECK_INT(o.calls, 1);
    Prov_Device_LL_Destroy(h);
}

static void register_and_destroy(const char *key_option, const char *key)
{
    register_with(key_option, key, NULL, NULL);
}

static void test_symmetric_key_copies_wiped(void)
{
    forget_wipes();
    register_and_destroy(PROV_OPTION_SYMMETRIC_KEY, KEY);
    /* The option's copy and the attestation's copy. */
    CHECK(wipes_starting(KEY) >= 2);
    /* The token: the attestation's copy, the header built from it, and
     * the transport's header list. */
    CHECK(wipes_starting("SharedAccessSignature sr=") >= 1);
    CHECK(wipes_starting("Authorization: SharedAccessSignature") >= 2);
    /* Proxy credentials: the option's copy and the transport's. */
    CHECK(wipes_starting(PROXY_USER) >= 2);
    CHECK(wipes_starting(PROXY_PASSWORD) >= 2);
}

/* The token's signature is also copied while an error message is
 * masked (prov_error.c). */
static void test_signature_copy_of_masking_wiped(void)
{
    char sig[128];

    forget_wipes();
    register_and_destroy(PROV_OPTION_SYMMETRIC_KEY, KEY);
    wiped_signature(sig, sizeof sig);
    CHECK(sig[0] != '\0');
    /* The token, the header, the header list and the masking buffer. */
    CHECK(wipes_containing(sig) >= 4);
}

/* A grouped registration: its transfer runs on the group's driver, but
 * the header list and credentials are the handle's and wiped the same. */
static void test_grouped_copies_wiped(void)
{
    PROV_DEVICE_LL_GROUP_HANDLE g = Prov_Device_LL_Group_Create();

    CHECK(g != NULL);
    if (!g)
        return;
    forget_wipes();
    register_with(PROV_OPTION_SYMMETRIC_KEY, KEY, NULL, g);
    Prov_Device_LL_Group_Destroy(g);
    CHECK(wipes_starting(KEY) >= 2);
    CHECK(wipes_starting("Authorization: SharedAccessSignature") >= 2);
    CHECK(wipes_starting(PROXY_USER) >= 2);
    CHECK(wipes_starting(PROXY_PASSWORD) >= 2);
}

/* The operational key a certificate request creates: its PEM text in
 * memory is wiped once it is written to its 0600 file. */
static void test_certificate_request_key_wiped(void)
{
    char dir[] = "/tmp/dps-wipe-XXXXXX";
    char path[64];

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/op.key", dir);
    forget_wipes();
    register_with(PROV_OPTION_SYMMETRIC_KEY, KEY, path, NULL);
    CHECK(access(path, F_OK) == 0);
    CHECK(wipes_containing("PRIVATE KEY-----") >= 1);
    unlink(path);
    rmdir(dir);
}

static void test_group_key_copies_wiped(void)
{
    forget_wipes();
    register_and_destroy(PROV_OPTION_GROUP_KEY, GROUP_KEY);
    CHECK(wipes_starting(GROUP_KEY) >= 1);
    CHECK(wipes_starting("Authorization: SharedAccessSignature") >= 2);
}

static void test_x509_key_password_wiped(void)
{
    PROV_DEVICE_LL_HANDLE h = Prov_Device_LL_Create(
        "127.0.0.1:1", "0ne00000A0A", Prov_Device_HTTP_Protocol);
    uint32_t none = 0;
    outcome o = {0};

    forget_wipes();
    CHECK(h != NULL);
    if (!h)
        return;
    Prov_Device_LL_SetOption(h, OPTION_X509_CERT,
                             "tests/fixtures/x509/device.pem");
    Prov_Device_LL_SetOption(h, OPTION_X509_PRIVATE_KEY,
                             "tests/fixtures/x509/device-enc.key");
    Prov_Device_LL_SetOption(h, PROV_OPTION_X509_KEY_PASSWORD, "secret");
    Prov_Device_LL_SetOption(h, PROV_OPTION_MAX_RETRIES, &none);
    CHECK_INT(Prov_Device_LL_Register_Device(h, on_result, &o, NULL, NULL), 0);
    drive(h, &o);
    CHECK_INT(o.calls, 1);
    Prov_Device_LL_Destroy(h);
    /* The option's copy and the transport's. */
    CHECK(wipes_starting("secret") >= 2);
}

int main(void)
{
    RUN(test_symmetric_key_copies_wiped);
    RUN(test_group_key_copies_wiped);
    RUN(test_signature_copy_of_masking_wiped);
    RUN(test_grouped_copies_wiped);
    RUN(test_certificate_request_key_wiped);
    RUN(test_x509_key_password_wiped);
    return testing_done();
}
