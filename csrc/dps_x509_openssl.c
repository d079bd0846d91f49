/*
 * Checks a device certificate and its key before any request (see
 * dps_x509.h), so that a wrong file, password or clock is reported in
 * plain words instead of as a TLS handshake failure or a 401 later on.
 *
 * Everything goes through memory BIOs: files are read here (so their
 * bytes can be wiped, and so errors can name the path), PEM text is used
 * as given. The OpenSSL error queue is cleared on the way in and out so
 * that nothing from here surfaces in a later, unrelated call (libcurl
 * reads that same queue).
 */
#include "dps_x509.h"
#include "dps_crypto.h"
#include "dps_error.h"
#include "dps_pem_input.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* What the key's password callback saw, to tell the failures apart. */
struct password {
    const char *text; /* may be NULL */
    int asked;        /* the key turned out to be encrypted */
};


static BIO *input_bio(const struct dps_pem_input *in)
{
    /* Files are capped above; only absurd PEM text exceeds an int. */
    if (in->len > INT_MAX)
        return NULL;
    return BIO_new_mem_buf(in->buf, (int)in->len);
}

/* The first certificate in the input: the leaf when it holds a chain. */
static X509 *read_cert(const struct dps_pem_input *in, char *err, size_t errlen)
{
    BIO *bio = input_bio(in);
    X509 *x = NULL;

    /* The reader skips blocks of other types, so a file holding the key
     * and then the certificate also works. No password is involved. */
    if (bio)
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!x)
        dps_pem_not_pem(in, "certificate", err, errlen);
    return x;
}

/* Always installed, even without a password: the default callback would
 * prompt on the terminal, and it tells us the key was encrypted. */
static int password_cb(char *buf, int size, int rwflag, void *u)
{
    struct password *pw = u;
    size_t len;

    (void)rwflag;
    pw->asked = 1;
    if (!pw->text)
        return -1;
    len = strlen(pw->text);
    if (size < 0 || len > (size_t)size)
        return -1;
    memcpy(buf, pw->text, len);
    return (int)len;
}

static EVP_PKEY *read_key(const struct dps_pem_input *in, const char *password,
                          char *err, size_t errlen)
{
    struct password pw = {password, 0};
    BIO *bio = input_bio(in);
    EVP_PKEY *pkey = NULL;

    if (bio)
        pkey = PEM_read_bio_PrivateKey(bio, NULL, password_cb, &pw);
    BIO_free(bio);
    if (pkey)
        return pkey;
    /* A failed decryption and a corrupt encrypted key look the same to
     * OpenSSL; the password is by far the likelier culprit. */
    if (pw.asked && !password)
        dps_set_error(err, errlen, "private key is encrypted: set a key password");
    else if (pw.asked)
        dps_set_error(err, errlen, "wrong key password");
    else
        dps_pem_not_pem(in, "private key", err, errlen);
    return NULL;
}

/* ISO 8601 UTC text of an ASN.1 time, or "?" if it cannot be read. */
static void format_asn1_time(const ASN1_TIME *t, char *out, size_t outlen)
{
    struct tm tm;

    if (!ASN1_TIME_to_tm(t, &tm) ||
        strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outlen, "?");
}

/* The clock as an ASN.1 time, built in 64 bits: time_t is 32 bits on
 * 32-bit ARM and MIPS, where a cast would turn 2040 into 1903. */
static ASN1_TIME *asn1_from_unix(int64_t s)
{
    int64_t days = s / 86400, secs = s % 86400;
    ASN1_TIME *t;

    if (days > INT_MAX || days < INT_MIN)
        return NULL;
    t = ASN1_TIME_adj(NULL, 0, (int)days, (long)secs);
    if (!t)
        ERR_clear_error(); /* a year past 9999: reported by the caller */
    return t;
}

/* Both bounds are inclusive (RFC 5280 §4.1.2.5). A not-yet-valid
 * certificate usually means a router that booted without a clock, so
 * that message also says what the clock reads. */
static int check_dates(X509 *x, int64_t now_s, char *err, size_t errlen)
{
    const ASN1_TIME *nb = X509_get0_notBefore(x);
    const ASN1_TIME *na = X509_get0_notAfter(x);
    ASN1_TIME *now_asn1 = asn1_from_unix(now_s);
    char when[32], now[32];
    int before, after, rc = -1;

    if (!now_asn1) {
        dps_set_error(err, errlen, "the clock reads an impossible date");
        return -1;
    }
    before = ASN1_TIME_compare(nb, now_asn1);
    after = ASN1_TIME_compare(na, now_asn1);
    if (before == -2 || after == -2) {
        dps_set_error(err, errlen,
                      "certificate has an unreadable validity date");
    } else if (before > 0) {
        format_asn1_time(nb, when, sizeof when);
        format_asn1_time(now_asn1, now, sizeof now);
        dps_set_error(err, errlen, "certificate not valid before %s (the clock "
                "says %s)", when, now);
    } else if (after < 0) {
        format_asn1_time(na, when, sizeof when);
        dps_set_error(err, errlen, "certificate expired on %s", when);
    } else {
        rc = 0;
    }
    ASN1_TIME_free(now_asn1);
    return rc;
}

/* The first CN of the subject as malloc'd UTF-8. DPS takes it as the
 * registration id, so an empty or NUL-bearing CN is refused. */
static char *read_cn(X509 *x, char *err, size_t errlen)
{
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *utf8 = NULL;
    char *cn = NULL;
    int n;

    if (i < 0) {
        dps_set_error(err, errlen, "certificate has no subject CN");
        return NULL;
    }
    n = ASN1_STRING_to_UTF8(&utf8,
                            X509_NAME_ENTRY_get_data(
                                X509_NAME_get_entry(name, i)));
    if (n <= 0 || memchr(utf8, '\0', (size_t)n)) {
        dps_set_error(err, errlen, n == 0 ? "certificate has no subject CN"
                             : "certificate subject CN is not valid text");
    } else if ((cn = malloc((size_t)n + 1)) != NULL) {
        memcpy(cn, utf8, (size_t)n);
        cn[n] = '\0';
    } else {
        dps_set_error(err, errlen, "out of memory");
    }
    OPENSSL_free(utf8);
    return cn;
}

/* Opens the key and checks it against the certificate. */
static int check_key(X509 *x, const char *key, const char *password,
                     char *err, size_t errlen)
{
    struct dps_pem_input in;
    EVP_PKEY *pkey;
    int rc = -1;

    if (dps_pem_load(key, "key", &in, err, errlen) != 0)
        return -1;
    pkey = read_key(&in, password, err, errlen);
    dps_pem_free(&in);
    if (!pkey)
        return -1;
    /* Compares public halves only; works for RSA and EC alike. */
    if (X509_check_private_key(x, pkey) == 1)
        rc = 0;
    else
        dps_set_error(err, errlen, "private key does not match the certificate");
    EVP_PKEY_free(pkey);
    return rc;
}

int dps_x509_check(const char *cert, const char *key, const char *password,
                   int64_t now_s, char **cn, char *err, size_t errlen)
{
    struct dps_pem_input in;
    X509 *x = NULL;
    char *name = NULL;

    /* Outputs are defined on every return, so callers need no reset. */
    if (cn)
        *cn = NULL;
    dps_set_error(err, errlen, "%s", "");
    if (!cert || !key) {
        dps_set_error(err, errlen, "no %s given", cert ? "private key"
                                                 : "certificate");
        return -1;
    }
    ERR_clear_error();
    /* Order: what the user can least guess comes first (files, then
     * password, then pairing), the clock last since it is the one cause
     * outside the files. Each step stops the chain with its message. */
    if (dps_pem_load(cert, "certificate", &in, err, errlen) == 0) {
        x = read_cert(&in, err, errlen);
        dps_pem_free(&in);
    }
    if (x && check_key(x, key, password, err, errlen) == 0 &&
        check_dates(x, now_s, err, errlen) == 0)
        name = read_cn(x, err, errlen);
    X509_free(x);
    ERR_clear_error();
    if (!name)
        return -1;
    if (cn)
        *cn = name;
    else
        free(name);
    return 0;
}
