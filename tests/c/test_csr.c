/*
 * The operational key and CSR (dps_csr.h) on whichever backend this binary
 * is linked with. What the backend makes is checked with OpenSSL, a second
 * implementation: a CSR from mbedTLS must verify in OpenSSL too.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dps_crypto.h"
#include "dps_csr.h"
#include "testing.h"

static char dir[64];
static int64_t NOW;

static void path_in_dir(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 70000);
    if (f && buf)
        buf[fread(buf, 1, 69999, f)] = '\0';
    if (f)
        fclose(f);
    return buf;
}

static X509_REQ *decode_csr(const char *b64)
{
    uint8_t *der = NULL;
    size_t len = 0;
    const unsigned char *p;
    X509_REQ *req = NULL;

    if (dps_base64_decode(b64, &der, &len) != 0)
        return NULL;
    p = der;
    req = d2i_X509_REQ(NULL, &p, (long)len);
    if (req && p != der + len) {
        X509_REQ_free(req);
        req = NULL;
    }
    free(der);
    return req;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "rb");
    EVP_PKEY *pk = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return pk;
}

/* The CSR is signed by the key in path and names cn, nothing else. */
static void check_csr(const char *b64, const char *path, const char *cn)
{
    X509_REQ *req = decode_csr(b64);
    EVP_PKEY *key = read_key(path);
    char got[200] = "";

    CHECK(req != NULL);
    CHECK(key != NULL);
    CHECK(strchr(b64, '-') == NULL); /* no PEM armour */
    if (req && key) {
        CHECK(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) == 1);
        CHECK(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key) == 1);
        X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req),
                                  NID_commonName, got, sizeof(got));
        CHECK_STR(got, cn);
        CHECK_INT(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 1);
    }
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

static void test_creates_p256_key_0600(void)
{
    char path[128], err[256] = "";
    struct stat st;
    int created = -1;
    char *csr = NULL;

    path_in_dir(path, sizeof(path), "op.key");
    CHECK_INT(dps_csr_ensure_key(path, &created, err, sizeof(err)), 0);
    CHECK_INT(created, 1);
    CHECK(stat(path, &st) == 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    {
        EVP_PKEY *pk = read_key(path);
        CHECK(pk != NULL);
        if (pk) {
            char curve[64] = "";
            size_t n = 0;
            CHECK_INT(EVP_PKEY_base_id(pk), EVP_PKEY_EC);
            EVP_PKEY_get_utf8_string_param(pk, "group", curve, sizeof(curve),
                                           &n);
            CHECK_STR(curve, "prime256v1");
        }
        EVP_PKEY_free(pk);
    }
    /* No temporary file is left next to it. */
    {
        char tmp[160];
        snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
        CHECK(access(tmp, F_OK) != 0);
    }
    CHECK_INT(dps_csr_build(path, "router-0042", &csr, err, sizeof(err)), 0);
    if (csr)
        check_csr(csr, path, "router-0042");
    free(csr);
}

static void test_reuses_existing_key(void)
{
    char path[128], err[256] = "";
    char *before, *after;
    int created = -1;

    path_in_dir(path, sizeof(path), "op.key"); /* made by the test above */
    before = read_text(path);
    CHECK_INT(dps_csr_ensure_key(path, &created, err, sizeof(err)), 0);
    CHECK_INT(created, 0);
    after = read_text(path);
    CHECK(before && after && strcmp(before, after) == 0);
    free(before);
    free(after);
}

static void write_key(const char *path, EVP_PKEY *pk)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1);
        fclose(f);
    }
}

static void test_rsa_key_is_reused(void)
{
    char path[128], err[256] = "";
    EVP_PKEY *pk = EVP_RSA_gen(2048);
    int created = -1;
    char *csr = NULL;

    path_in_dir(path, sizeof(path), "rsa.key");
    write_key(path, pk);
    CHECK_INT(dps_csr_ensure_key(path, &created, err, sizeof(err)), 0);
    CHECK_INT(created, 0);
    CHECK_INT(dps_csr_build(path, "dev.with:colon_1", &csr, err, sizeof(err)),
              0);
    if (csr)
        check_csr(csr, path, "dev.with:colon_1");
    free(csr);
    EVP_PKEY_free(pk);
}

/* Errors name the path and never quote the key. */
static void test_errors_name_the_path(void)
{
    char path[128], err[256] = "";
    char *csr = (char *)1;
    FILE *f;

    path_in_dir(path, sizeof(path), "garbage.key");
    f = fopen(path, "wb");
    if (f) {
        fputs("-----BEGIN PRIVATE KEY-----\nTUlJQ2Vx\n-----END PRIVATE "
              "KEY-----\n",
              f);
        fclose(f);
    }
    CHECK_INT(dps_csr_ensure_key(path, NULL, err, sizeof(err)), -1);
    CHECK(strstr(err, path) != NULL);
    CHECK(strstr(err, "BEGIN") == NULL && strstr(err, "TUlJ") == NULL);
    CHECK_INT(dps_csr_build(path, "x", &csr, err, sizeof(err)), -1);
    CHECK(csr == NULL);
    /* An unusable file is left alone, never replaced by a new key. */
    {
        char *text = read_text(path);
        CHECK(text && strstr(text, "TUlJQ2Vx") != NULL);
        free(text);
    }
    /* A directory that does not exist. */
    snprintf(path, sizeof(path), "%s/missing/dir/op.key", dir);
    err[0] = '\0';
    CHECK_INT(dps_csr_ensure_key(path, NULL, err, sizeof(err)), -1);
    CHECK(strstr(err, path) != NULL);
    /* A key that is not RSA or EC. */
    {
        EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        path_in_dir(path, sizeof(path), "ed.key");
        write_key(path, ed);
        EVP_PKEY_free(ed);
        CHECK_INT(dps_csr_ensure_key(path, NULL, err, sizeof(err)), -1);
        CHECK(strstr(err, path) != NULL);
    }
}

/* A self-signed certificate for pk with subject CN=cn, as DER. */
static int make_cert(EVP_PKEY *pk, const char *cn, unsigned char **der)
{
    X509 *x = X509_new();
    int n = -1;
    X509_NAME *name = X509_get_subject_name(x);

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, pk);
    if (X509_sign(x, pk, EVP_sha256()) > 0)
        n = i2d_X509(x, der);
    X509_free(x);
    return n;
}

static void test_check_issued(void)
{
    char path[128], other[128], err[256] = "";
    unsigned char *der = NULL;
    EVP_PKEY *pk, *pk2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    int n;

    path_in_dir(path, sizeof(path), "op.key");
    pk = read_key(path);
    n = make_cert(pk, "router-0042", &der);
    CHECK(n > 0);
    CHECK_INT(dps_csr_check_issued(path, der, (size_t)n, "router-0042", NOW,
                                   err, sizeof(err)),
              0);
    CHECK_INT(dps_csr_check_issued(path, der, (size_t)n, "router-0043", NOW,
                                   err, sizeof(err)),
              -1);
    CHECK(strstr(err, "CN") != NULL);
    CHECK_INT(dps_csr_check_issued(path, der, (size_t)n - 1, "router-0042", NOW,
                                   err, sizeof(err)),
              -1);
    OPENSSL_free(der);
    der = NULL;
    path_in_dir(other, sizeof(other), "other.key");
    write_key(other, pk2);
    n = make_cert(pk2, "router-0042", &der);
    CHECK_INT(dps_csr_check_issued(path, der, (size_t)n, "router-0042", NOW,
                                   err, sizeof(err)),
              -1);
    CHECK(strstr(err, "not for the key") != NULL);
    OPENSSL_free(der);
    /* Valid for an hour: expired two hours from now. */
    der = NULL;
    n = make_cert(pk, "router-0042", &der);
    CHECK_INT(dps_csr_check_issued(path, der, (size_t)n, "router-0042",
                                   NOW + 7200, err, sizeof(err)),
              -1);
    CHECK(strstr(err, "expired") != NULL);
    CHECK_INT(dps_csr_check_issued(path, der, (size_t)n, "router-0042", 0, err,
                                   sizeof(err)),
              0);
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
    EVP_PKEY_free(pk2);
}

static void test_private_file_replaces_atomically(void)
{
    char path[128], err[256] = "";
    struct stat st;
    char *text;

    path_in_dir(path, sizeof(path), "cache.json");
    CHECK_INT(dps_write_private_file(path, "one", 3, "cache", err, sizeof(err)),
              0);
    CHECK_INT(
        dps_write_private_file(path, "two!", 4, "cache", err, sizeof(err)), 0);
    text = read_text(path);
    CHECK_STR(text, "two!");
    free(text);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/dps-test-csr-XXXXXX");
    if (!mkdtemp(dir))
        return 2;
    NOW = (int64_t)time(NULL);
    RUN(test_creates_p256_key_0600);
    RUN(test_reuses_existing_key);
    RUN(test_rsa_key_is_reused);
    RUN(test_errors_name_the_path);
    RUN(test_check_issued);
    RUN(test_private_file_replaces_atomically);
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return testing_done();
}
