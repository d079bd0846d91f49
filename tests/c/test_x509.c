/*
 * dps_x509_check against the fixtures in tests/fixtures/x509 (made by
 * make.sh there): every error path, success from paths and from PEM
 * text, and that no error message ever carries PEM or key material.
 * Run from the repository root.
 */
#include "dps_pem_input.h"
#include "dps_x509.h"
#include "testing.h"

#ifdef DPS_TEST_WITHOUT_OPENSSL
/* Builds with no libcrypto at all (the router and musl stacks): there is
 * no OpenSSL error queue to leave clean. */
#define ERR_peek_error() 0UL
#else
#include <openssl/err.h>
#endif
#include <sys/resource.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FX "tests/fixtures/x509/"

/* 2025-01-01T00:00:00Z, the notAfter of expired.pem. */
#define EXPIRED_NOT_AFTER 1735689600
/* 2020-01-01T00:00:00Z, the notBefore of expired.pem. */
#define EXPIRED_NOT_BEFORE 1577836800

static char err[256];

/* Reads a fixture into a malloc'd string (NULL if missing). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (!f)
        return NULL;
    buf = calloc(1, 16384);
    n = buf ? fread(buf, 1, 16383, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* The second line of a PEM key: a piece of key material that must never
 * appear in an error message. */
static int err_has_key_material(const char *key_path)
{
    char *pem = slurp(key_path), *line, *end;
    int found = 0;

    if (!pem)
        return 1;
    line = strchr(pem, '\n');
    if (line) {
        line++;
        end = strchr(line, '\n');
        if (end)
            *end = '\0';
        found = strlen(line) > 16 && strstr(err, line) != NULL;
    }
    free(pem);
    return found;
}

/* Runs a check that must fail with exactly want (or with want as a
 * prefix when prefix is set); also checks the hygiene every failure
 * owes: cn untouched-NULL, no PEM in err, nothing left in the queue. */
static void expect_fail(const char *cert, const char *key, const char *pw,
                        int64_t now, const char *want, int prefix)
{
    char *cn = (char *)"sentinel";
    int rc = dps_x509_check(cert, key, pw, now, &cn, err, sizeof err);

    CHECK_INT(rc, -1);
    CHECK(cn == NULL);
    if (prefix)
        CHECK(strncmp(err, want, strlen(want)) == 0);
    else
        CHECK_STR(err, want);
    if (prefix && strncmp(err, want, strlen(want)) != 0)
        fprintf(stderr, "  got: %s\n  want prefix: %s\n", err, want);
    CHECK(strstr(err, "BEGIN") == NULL);
    CHECK(!err_has_key_material(FX "device.key"));
    CHECK(ERR_peek_error() == 0);
}

static void expect_cn(const char *cert, const char *key, const char *pw,
                      int64_t now, const char *want)
{
    char *cn = NULL;
    int rc = dps_x509_check(cert, key, pw, now, &cn, err, sizeof err);

    CHECK_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "  err: %s\n", err);
    CHECK_STR(cn, want);
    CHECK_STR(err, "");
    CHECK(ERR_peek_error() == 0);
    free(cn);
}

static void test_success_paths(void)
{
    expect_cn(FX "device.pem", FX "device.key", NULL, time(NULL),
              "x509-device-01");
    /* A password for a key that needs none is ignored. */
    expect_cn(FX "device.pem", FX "device.key", "secret", time(NULL),
              "x509-device-01");
}

static void test_success_pem_text(void)
{
    char *cert = slurp(FX "device.pem"), *key = slurp(FX "device.key");
    char padded[8192];

    expect_cn(cert, key, NULL, time(NULL), "x509-device-01");
    expect_cn(cert, FX "device.key", NULL, time(NULL), "x509-device-01");
    expect_cn(FX "device.pem", key, NULL, time(NULL), "x509-device-01");
    /* Leading whitespace before "-----BEGIN" is still text. */
    snprintf(padded, sizeof padded, " \n\t%s", cert ? cert : "");
    expect_cn(padded, key, NULL, time(NULL), "x509-device-01");
    /* One blob holding key then certificate serves as both. */
    snprintf(padded, sizeof padded, "%s%s", key ? key : "",
             cert ? cert : "");
    expect_cn(padded, padded, NULL, time(NULL), "x509-device-01");
    free(cert);
    free(key);
}

static void test_encrypted_keys(void)
{
    static const char *const keys[] = {FX "device-enc.key",
                                       FX "device-enc-trad.key"};
    size_t i;

    for (i = 0; i < 2; i++) {
        expect_cn(FX "device.pem", keys[i], "secret", time(NULL),
                  "x509-device-01");
        expect_fail(FX "device.pem", keys[i], NULL, time(NULL),
                    "private key is encrypted: set a key password", 0);
        expect_fail(FX "device.pem", keys[i], "Secret", time(NULL),
                    "wrong key password", 0);
        expect_fail(FX "device.pem", keys[i], "", time(NULL),
                    "wrong key password", 0);
    }
}

static void test_mismatch(void)
{
    expect_fail(FX "device.pem", FX "other.key", NULL, time(NULL),
                "private key does not match the certificate", 0);
    expect_fail(FX "device.pem", FX "leaf.key", NULL, time(NULL),
                "private key does not match the certificate", 0);
}

static void test_dates(void)
{
    expect_fail(FX "expired.pem", FX "expired.key", NULL, time(NULL),
                "certificate expired on 2025-01-01T00:00:00Z", 0);
    /* notAfter is inclusive; one second later it is over. */
    expect_cn(FX "expired.pem", FX "expired.key", NULL, EXPIRED_NOT_AFTER,
              "x509-expired");
    expect_fail(FX "expired.pem", FX "expired.key", NULL,
                EXPIRED_NOT_AFTER + 1,
                "certificate expired on 2025-01-01T00:00:00Z", 0);
    expect_cn(FX "expired.pem", FX "expired.key", NULL, EXPIRED_NOT_BEFORE,
              "x509-expired");
    expect_fail(FX "expired.pem", FX "expired.key", NULL,
                EXPIRED_NOT_BEFORE - 1,
                "certificate not valid before 2020-01-01T00:00:00Z (the "
                "clock says 2019-12-31T23:59:59Z)", 0);
    expect_fail(FX "future.pem", FX "future.key", NULL, time(NULL),
                "certificate not valid before 2099-01-01T00:00:00Z", 1);
    /* A router that booted at the epoch, with a good certificate. */
    expect_fail(FX "device.pem", FX "device.key", NULL, 0,
                "certificate not valid before ", 1);
    CHECK(strstr(err, "(the clock says 1970-01-01T00:00:00Z)") != NULL);
    /* The same good certificate far in the future (year 2100). */
    expect_fail(FX "device.pem", FX "device.key", NULL, 4102444800LL,
                "certificate expired on 20", 1);
}

/* Clocks past 2038-01-19, where a 32-bit time_t (Debian armhf, 32-bit
 * OpenWrt before musl 1.2) wraps to before 1970: dates compare in 64 bits. */
static void test_dates_after_2038(void)
{
    const int64_t y2040 = 2208988800LL; /* 2040-01-01T00:00:00Z */

    expect_cn(FX "device.pem", FX "device.key", NULL, y2040, "x509-device-01");
    expect_fail(FX "future.pem", FX "future.key", NULL, y2040,
                "certificate not valid before 2099-01-01T00:00:00Z (the "
                "clock says 2040-01-01T00:00:00Z)",
                0);
    expect_fail(FX "expired.pem", FX "expired.key", NULL, y2040,
                "certificate expired on 2025-01-01T00:00:00Z", 0);
    expect_cn(FX "future.pem", FX "future.key", NULL,
              4070908800LL /* 2099-01-01 */, "x509-future");
    /* A clock no certificate can be valid at is refused, not wrapped. */
    expect_fail(FX "device.pem", FX "device.key", NULL, INT64_MAX / 2, "", 1);
}

static void test_no_cn(void)
{
    expect_fail(FX "nocn.pem", FX "nocn.key", NULL, time(NULL),
                "certificate has no subject CN", 0);
}

static void test_chain(void)
{
    expect_cn(FX "chain.pem", FX "leaf.key", NULL, time(NULL),
              "x509-chain-device");
    /* The key is checked against the first (leaf) certificate. */
    expect_fail(FX "chain.pem", FX "device.key", NULL, time(NULL),
                "private key does not match the certificate", 0);
}

static void test_unreadable_files(void)
{
    expect_fail(FX "nope.pem", FX "device.key", NULL, time(NULL),
                "cannot read certificate file '" FX "nope.pem': No such "
                "file or directory", 0);
    expect_fail(FX "device.pem", FX "nope.key", NULL, time(NULL),
                "cannot read key file '" FX "nope.key': No such file or "
                "directory", 0);
    expect_fail("tests/fixtures/x509", FX "device.key", NULL, time(NULL),
                "cannot read certificate file 'tests/fixtures/x509': Is a "
                "directory", 0);
    expect_fail("", FX "device.key", NULL, time(NULL),
                "x509.cert: not a readable file and not PEM text", 0);
    /* A file name without a directory that exists is not shown: it may
     * be key text. */
    expect_fail(FX "device.pem", "nope.key", NULL, time(NULL),
                "x509.key: not a readable file and not PEM text", 0);
    expect_fail(FX "device.pem", "/nope-dir/nope.key", NULL, time(NULL),
                "x509.key: not a readable file and not PEM text", 0);
}

/* Key material given where a path goes is never quoted, in any form. */
static void test_key_text_never_quoted(void)
{
    static const char *const keys[] = {
        /* Base64 of DER, short and long, with and without line breaks */
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDx3wsecretAAAAAAAAAA"
        "AAAAAAAAA",
        "MIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAoIBAQDx3wsec\nretBBBB",
        "MIIEvQIBADANBgkqhkiG9w0B\r\nAQEFAASCBKcwggSjAgEAAoIBAQDx3wsec\r\n",
        /* starting with '/', as Base64 may */
        "/9j/4AAQSkZJRgABAQsecret+key==",
        "/secretkeymaterial+AAAA==",
        /* DER bytes */
        "\x30\x82\x04\xbd\x02\x01\x00\x30\x0d\x06\x09\x2a\x86\x48",
        /* a password-like string */
        "hunter2 correct horse",
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char *cn = NULL;
        char probe[16];
        int rc = dps_x509_check(FX "device.pem", keys[i], NULL, time(NULL), &cn,
                                err, sizeof err);
        CHECK_INT(rc, -1);
        CHECK_STR(err, "x509.key: not a readable file and not PEM text");
        rc = dps_x509_check(keys[i], FX "device.key", NULL, time(NULL), &cn,
                            err, sizeof err);
        CHECK_INT(rc, -1);
        CHECK_STR(err, "x509.cert: not a readable file and not PEM text");
        snprintf(probe, sizeof probe, "%.8s", keys[i]);
        CHECK(strstr(err, probe) == NULL);
    }
}

static void test_check_source(void)
{
    CHECK_INT(
        dps_pem_check_source(FX "root.pem", "trusted_certs", err, sizeof err),
        0);
    CHECK_INT(dps_pem_check_source("-----BEGIN CERTIFICATE-----\nx\n",
                                   "trusted_certs", err, sizeof err),
              0);
    CHECK_INT(dps_pem_check_source("MIIBsecretAAAA==", "trusted_certs", err,
                                   sizeof err),
              -1);
    CHECK_STR(err, "trusted_certs: not a readable file and not PEM text");
    CHECK_INT(
        dps_pem_check_source(FX "nope.pem", "trusted_certs", err, sizeof err),
        -1);
    CHECK_STR(err, "cannot read trusted_certs file '" FX
                   "nope.pem': No such file or directory");
    CHECK_INT(dps_pem_check_source("tests/fixtures/x509", "trusted_certs", err,
                                   sizeof err),
              -1);
    CHECK_STR(
        err,
        "cannot read trusted_certs file 'tests/fixtures/x509': Is a directory");

    /* Out of descriptors: said as such, not blamed on the argument. */
    struct rlimit old, low;
    if (getrlimit(RLIMIT_NOFILE, &old) == 0) {
        low = old;
        low.rlim_cur = 3;
        if (setrlimit(RLIMIT_NOFILE, &low) == 0) {
            int rc = dps_pem_check_source(FX "root.pem", "trusted_certs", err,
                                          sizeof err);
            setrlimit(RLIMIT_NOFILE, &old);
            CHECK_INT(rc, -1);
            /* The failure table's words (dps_failure.c), not the libc's. */
            CHECK_STR(err, "the process has run out of file descriptors "
                           "(EMFILE); cannot open trusted_certs");
        }
    }
}

static void test_not_pem(void)
{
    expect_fail(FX "not-pem.txt", FX "device.key", NULL, time(NULL),
                "certificate is not valid PEM (file '" FX "not-pem.txt')",
                0);
    expect_fail("-----BEGIN CERTIFICATE-----\nnot base64\n"
                "-----END CERTIFICATE-----\n", FX "device.key", NULL,
                time(NULL), "certificate is not valid PEM", 0);
    /* Key and certificate swapped. */
    expect_fail(FX "device.key", FX "device.pem", NULL, time(NULL),
                "certificate is not valid PEM (file '" FX "device.key')",
                0);
    expect_fail(FX "device.pem", FX "not-pem.txt", NULL, time(NULL),
                "private key is not valid PEM (file '" FX "not-pem.txt')",
                0);
}

/* PEM key text is never mistaken for a path (which would be echoed). */
static void test_no_key_material_in_errors(void)
{
    char *key = slurp(FX "device.key"), *body, *p, *q;
    char text[1024];

    /* Key text with junk in front, as openssl pkcs12 prints it. */
    snprintf(text, sizeof text, "Bag Attributes\n    localKeyID: 01\n%s",
             key ? key : "");
    expect_fail(FX "other.key", text, NULL, time(NULL),
                "certificate is not valid PEM (file '" FX "other.key')", 0);
    expect_cn(FX "device.pem", text, NULL, time(NULL), "x509-device-01");
    /* The bare Base64 body of the key, given where a path goes. */
    body = key ? strchr(key, '\n') : NULL;
    if (body) {
        for (p = q = body + 1; *p && *p != '-'; p++)
            if (*p != '\n')
                *q++ = *p;
        *q = '\0';
        expect_fail(FX "device.pem", body + 1, NULL, time(NULL),
                    "x509.key: not a readable file and not PEM text", 0);
    }
    free(key);
}

static void test_null_args(void)
{
    char *cn = NULL;

    expect_fail(NULL, FX "device.key", NULL, time(NULL),
                "no certificate given", 0);
    expect_fail(FX "device.pem", NULL, NULL, time(NULL),
                "no private key given", 0);
    /* No err buffer and no cn wanted: still checks, still no crash. */
    CHECK_INT(dps_x509_check(FX "device.pem", FX "device.key", NULL,
                             time(NULL), NULL, NULL, 0), 0);
    CHECK_INT(dps_x509_check(FX "nocn.pem", FX "nocn.key", NULL,
                             time(NULL), &cn, NULL, 0), -1);
    CHECK(cn == NULL);
    /* A tiny buffer gets a truncated, terminated message. */
    CHECK_INT(dps_x509_check(FX "nocn.pem", FX "nocn.key", NULL,
                             time(NULL), &cn, err, 8), -1);
    CHECK_STR(err, "certifi");
    CHECK(ERR_peek_error() == 0);
}

int main(void)
{
    RUN(test_success_paths);
    RUN(test_success_pem_text);
    RUN(test_encrypted_keys);
    RUN(test_mismatch);
    RUN(test_dates);
    RUN(test_dates_after_2038);
    RUN(test_no_cn);
    RUN(test_chain);
    RUN(test_unreadable_files);
    RUN(test_not_pem);
    RUN(test_no_key_material_in_errors);
    RUN(test_key_text_never_quoted);
    RUN(test_check_source);
    RUN(test_null_args);
    return testing_done();
}
