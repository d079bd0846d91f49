/*
 * The operational key and its CSR over mbedTLS (dps_csr.h). Written for
 * 2.28 and 3.6 alike: the calls whose signature changed in 3.0 (key
 * parsing takes an RNG) are guarded by MBEDTLS_VERSION_NUMBER.
 */
#define _POSIX_C_SOURCE 200809L
#include "dps_csr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

#include "dps_crypto.h"
#include "dps_error.h"

/* A trimmed mbedTLS (a router image's) may leave out what a CSR needs:
 * then the functions below say so instead of failing to link. */
#if defined(MBEDTLS_X509_CSR_WRITE_C) && defined(MBEDTLS_PK_WRITE_C) && \
    defined(MBEDTLS_ECP_C) && defined(MBEDTLS_X509_CRT_PARSE_C)

/* Key files bigger than this are not keys (an RSA-8192 PEM is ~6.5 KB). */
#define MAX_KEY_FILE (64 * 1024)
/* Room for a DER key, CSR or public key: RSA-8192 fits. */
#define DER_BUF 8192

static int kernel_rng(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    return dps_random_bytes(out, len) == 0 ? 0 : -1;
}

/* The whole file, NUL-terminated, or NULL with err set. */
static unsigned char *read_key_file(const char *path, size_t *len, char *err,
                                    size_t errlen)
{
    char *buf = dps_read_small_file(path, MAX_KEY_FILE, len);

    if (!buf && errno == EINVAL)
        dps_set_error(err, errlen, "the key file %s is not a key file", path);
    else if (!buf)
        dps_set_error(err, errlen, "cannot read the key file %s: %s", path,
                      strerror(errno));
    return (unsigned char *)buf;
}

static int parse_key(mbedtls_pk_context *pk, const unsigned char *buf,
                     size_t len)
{
    /* PEM is parsed with its NUL, DER without. */
    size_t n = len >= 5 && memcmp(buf, "-----", 5) == 0 ? len + 1 : len;
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    return mbedtls_pk_parse_key(pk, buf, n, NULL, 0, kernel_rng, NULL);
#else
    return mbedtls_pk_parse_key(pk, buf, n, NULL, 0);
#endif
}

/* Loads the key at path into pk (initialised by the caller). */
static int load_key(mbedtls_pk_context *pk, const char *path, char *err,
                    size_t errlen)
{
    size_t len = 0;
    unsigned char *buf = read_key_file(path, &len, err, errlen);
    int ok;

    if (!buf)
        return -1;
    ok = parse_key(pk, buf, len) == 0;
    dps_wipe(buf, len);
    free(buf);
    if (!ok) {
        dps_set_error(err, errlen,
                      "the key file %s holds no usable private "
                      "key (RSA or EC, unencrypted PEM or DER)",
                      path);
        return -1;
    }
    if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_RSA) &&
        !mbedtls_pk_can_do(pk, MBEDTLS_PK_ECKEY)) {
        dps_set_error(err, errlen, "the key in %s is neither RSA nor EC", path);
        return -1;
    }
    return 0;
}

static int create_key(const char *path, char *err, size_t errlen)
{
    mbedtls_pk_context pk;
    unsigned char *pem = malloc(DER_BUF);
    int rc = -1;

    mbedtls_pk_init(&pk);
    if (pem &&
        mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) ==
            0 &&
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk),
                            kernel_rng, NULL) == 0 &&
        mbedtls_pk_write_key_pem(&pk, pem, DER_BUF) == 0)
        rc = dps_write_private_file(path, pem, strlen((char *)pem), "key", err,
                                    errlen);
    else
        dps_set_error(err, errlen, "cannot generate a key for %s", path);
    if (pem) {
        dps_wipe(pem, DER_BUF);
        free(pem);
    }
    mbedtls_pk_free(&pk);
    return rc;
}

int dps_csr_ensure_key(const char *path, int *created, char *err, size_t errlen)
{
    struct stat st;
    mbedtls_pk_context pk;
    int rc;

    if (created)
        *created = 0;
    if (!path || !*path) {
        dps_set_error(err, errlen, "no key path given");
        return -1;
    }
    if (lstat(path, &st) != 0 && errno == ENOENT) {
        if (create_key(path, err, errlen) != 0)
            return -1;
        if (created)
            *created = 1;
    }
    mbedtls_pk_init(&pk);
    rc = load_key(&pk, path, err, errlen);
    mbedtls_pk_free(&pk);
    return rc;
}

int dps_csr_build(const char *path, const char *cn, char **csr_b64, char *err,
                  size_t errlen)
{
    mbedtls_pk_context pk;
    mbedtls_x509write_csr csr;
    unsigned char *der = malloc(DER_BUF);
    size_t name_len = strlen(cn) + 4;
    char *subject = malloc(name_len);
    int n = -1;

    *csr_b64 = NULL;
    mbedtls_pk_init(&pk);
    mbedtls_x509write_csr_init(&csr);
    if (!der || !subject) {
        dps_set_error(err, errlen, "out of memory");
        goto done;
    }
    /* Registration ids hold no ',', '=' or '\\', so "CN=<id>" parses as
     * one attribute. */
    snprintf(subject, name_len, "CN=%s", cn);
    if (load_key(&pk, path, err, errlen) != 0)
        goto done;
    mbedtls_x509write_csr_set_md_alg(&csr, MBEDTLS_MD_SHA256);
    mbedtls_x509write_csr_set_key(&csr, &pk);
    if (mbedtls_x509write_csr_set_subject_name(&csr, subject) == 0)
        n = mbedtls_x509write_csr_der(&csr, der, DER_BUF, kernel_rng, NULL);
    /* The DER is written at the end of the buffer. */
    if (n > 0)
        *csr_b64 = dps_base64_encode(der + DER_BUF - n, (size_t)n);
    if (!*csr_b64)
        dps_set_error(err, errlen,
                      "cannot build a certificate request with "
                      "the key in %s",
                      path);
done:
    mbedtls_x509write_csr_free(&csr);
    mbedtls_pk_free(&pk);
    free(subject);
    free(der);
    return *csr_b64 ? 0 : -1;
}

/* SubjectPublicKeyInfo of pk as DER (at the end of buf); length or < 0. */
static int public_der(mbedtls_pk_context *pk, unsigned char *buf)
{
    return mbedtls_pk_write_pubkey_der(pk, buf, DER_BUF);
}

static int subject_cn_is(const mbedtls_x509_crt *crt, const char *cn)
{
    const mbedtls_x509_name *n;

    for (n = &crt->subject; n; n = n->next)
        if (n->oid.p && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0)
            return n->val.len == strlen(cn) &&
                   memcmp(n->val.p, cn, n->val.len) == 0;
    return 0;
}

/* valid_to is in UTC; compared field by field, no time zone involved. */
static int expired(const mbedtls_x509_crt *crt, int64_t now_s)
{
    time_t now = (time_t)now_s;
    struct tm tm;
    const mbedtls_x509_time *t = &crt->valid_to;
    long long a, b;

    if (!gmtime_r(&now, &tm))
        return 1;
    a = ((((t->year * 100LL + t->mon) * 100 + t->day) * 100 + t->hour) * 100 +
         t->min) *
            100 +
        t->sec;
    b = (((((tm.tm_year + 1900) * 100LL + tm.tm_mon + 1) * 100 + tm.tm_mday) *
              100 +
          tm.tm_hour) *
             100 +
         tm.tm_min) *
            100 +
        tm.tm_sec;
    return a <= b;
}

int dps_csr_check_issued(const char *path, const uint8_t *der, size_t len,
                         const char *cn, int64_t now_s, char *err,
                         size_t errlen)
{
    mbedtls_x509_crt crt;
    mbedtls_pk_context pk;
    unsigned char *a = malloc(DER_BUF), *b = malloc(DER_BUF);
    int rc = -1, na, nb;

    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&pk);
    if (!a || !b) {
        dps_set_error(err, errlen, "out of memory");
    } else if (mbedtls_x509_crt_parse_der(&crt, der, len) != 0) {
        dps_set_error(err, errlen, "the issued certificate is not valid DER");
    } else if (load_key(&pk, path, err, errlen) != 0) {
        /* err says why */
    } else if ((na = public_der(&crt.pk, a)) <= 0 ||
               (nb = public_der(&pk, b)) <= 0 || na != nb ||
               memcmp(a + DER_BUF - na, b + DER_BUF - nb, (size_t)na) != 0) {
        dps_set_error(err, errlen,
                      "the issued certificate is not for the "
                      "key in %s",
                      path);
    } else if (!subject_cn_is(&crt, cn)) {
        dps_set_error(err, errlen,
                      "the issued certificate's subject CN is "
                      "not the registration id %s",
                      cn);
    } else if (now_s && expired(&crt, now_s)) {
        dps_set_error(err, errlen, "the issued certificate has expired");
    } else {
        rc = 0;
    }
    mbedtls_pk_free(&pk);
    mbedtls_x509_crt_free(&crt);
    free(a);
    free(b);
    return rc;
}

#else /* no CSR writing in this mbedTLS */

#define NO_CSR                                              \
    "this mbedTLS build cannot write certificate requests " \
    "(MBEDTLS_X509_CSR_WRITE_C, MBEDTLS_PK_WRITE_C, MBEDTLS_ECP_C)"

int dps_csr_ensure_key(const char *path, int *created, char *err, size_t errlen)
{
    (void)path;
    if (created)
        *created = 0;
    dps_set_error(err, errlen, NO_CSR);
    return -1;
}

int dps_csr_build(const char *path, const char *cn, char **csr_b64, char *err,
                  size_t errlen)
{
    (void)path;
    (void)cn;
    *csr_b64 = NULL;
    dps_set_error(err, errlen, NO_CSR);
    return -1;
}

int dps_csr_check_issued(const char *path, const uint8_t *der, size_t len,
                         const char *cn, int64_t now_s, char *err,
                         size_t errlen)
{
    (void)path;
    (void)der;
    (void)len;
    (void)cn;
    (void)now_s;
    dps_set_error(err, errlen, NO_CSR);
    return -1;
}

#endif
