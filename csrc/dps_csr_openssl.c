/*
 * The operational key and its CSR over OpenSSL's libcrypto (dps_csr.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "dps_csr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "dps_crypto.h"
#include "dps_error.h"

/* Key files bigger than this are not keys (an RSA-8192 PEM is ~6.5 KB). */
#define MAX_KEY_FILE (64 * 1024)

/* Never prompt on a terminal for a pass phrase: an encrypted key fails. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Reads the key at path (PEM, else DER). NULL with err set on failure;
 * the OpenSSL error queue is left empty either way. */
static EVP_PKEY *load_key(const char *path, char *err, size_t errlen)
{
    struct stat st;
    EVP_PKEY *pk = NULL;
    BIO *bio;

    if (stat(path, &st) != 0) {
        dps_set_error(err, errlen, "cannot read the key file %s: %s", path,
                      strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > MAX_KEY_FILE) {
        dps_set_error(err, errlen, "the key file %s is not a key file", path);
        return NULL;
    }
    bio = BIO_new_file(path, "rb");
    if (!bio) {
        dps_set_error(err, errlen, "cannot read the key file %s: %s", path,
                      strerror(errno ? errno : EIO));
        ERR_clear_error();
        return NULL;
    }
    pk = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    if (!pk && BIO_reset(bio) == 0)
        pk = d2i_PrivateKey_bio(bio, NULL);
    BIO_free(bio);
    ERR_clear_error();
    if (!pk) {
        dps_set_error(err, errlen,
                      "the key file %s holds no usable private "
                      "key (RSA or EC, unencrypted PEM or DER)",
                      path);
        return NULL;
    }
    if (EVP_PKEY_base_id(pk) != EVP_PKEY_RSA &&
        EVP_PKEY_base_id(pk) != EVP_PKEY_EC) {
        EVP_PKEY_free(pk);
        dps_set_error(err, errlen, "the key in %s is neither RSA nor EC", path);
        return NULL;
    }
    return pk;
}

static EVP_PKEY *new_p256_key(void)
{
    EVP_PKEY *pk = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);

    if (ctx && EVP_PKEY_keygen_init(ctx) > 0 &&
        EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1) > 0)
        EVP_PKEY_keygen(ctx, &pk);
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

static int create_key(const char *path, char *err, size_t errlen)
{
    EVP_PKEY *pk = new_p256_key();
    BIO *mem = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long len = 0;
    int rc = -1;

    if (pk && mem &&
        PEM_write_bio_PrivateKey(mem, pk, NULL, NULL, 0, NULL, NULL) > 0)
        len = BIO_get_mem_data(mem, &pem);
    if (len > 0)
        rc = dps_write_private_file(path, pem, (size_t)len, "key", err, errlen);
    else
        dps_set_error(err, errlen, "cannot generate a key for %s", path);
    if (pem && len > 0)
        dps_wipe(pem, (size_t)len);
    BIO_free(mem);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return rc;
}

int dps_csr_ensure_key(const char *path, int *created, char *err, size_t errlen)
{
    struct stat st;
    EVP_PKEY *pk;

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
    pk = load_key(path, err, errlen);
    EVP_PKEY_free(pk);
    return pk ? 0 : -1;
}

int dps_csr_build(const char *path, const char *cn, char **csr_b64, char *err,
                  size_t errlen)
{
    EVP_PKEY *pk;
    X509_REQ *req = NULL;
    X509_NAME *name;
    unsigned char *der = NULL;
    int der_len = -1;

    *csr_b64 = NULL;
    if (!(pk = load_key(path, err, errlen)))
        return -1;
    req = X509_REQ_new();
    name = req ? X509_REQ_get_subject_name(req) : NULL;
    if (name && X509_REQ_set_version(req, 0) == 1 &&
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0) == 1 &&
        X509_REQ_set_pubkey(req, pk) == 1 &&
        X509_REQ_sign(req, pk, EVP_sha256()) > 0)
        der_len = i2d_X509_REQ(req, &der);
    if (der_len > 0)
        *csr_b64 = dps_base64_encode(der, (size_t)der_len);
    OPENSSL_free(der);
    X509_REQ_free(req);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    if (!*csr_b64) {
        dps_set_error(err, errlen,
                      "cannot build a certificate request with "
                      "the key in %s",
                      path);
        return -1;
    }
    return 0;
}

static int expired(X509 *cert, int64_t now_s)
{
    time_t now = (time_t)now_s;
    return X509_cmp_time(X509_get0_notAfter(cert), &now) <= 0;
}

int dps_csr_check_issued(const char *path, const uint8_t *der, size_t len,
                         const char *cn, int64_t now_s, char *err,
                         size_t errlen)
{
    const unsigned char *p = der;
    X509 *cert = len <= 0x7fffffff ? d2i_X509(NULL, &p, (long)len) : NULL;
    EVP_PKEY *pk = NULL;
    char subject_cn[129] = "";
    int rc = -1;

    if (!cert || p != der + len) {
        dps_set_error(err, errlen, "the issued certificate is not valid DER");
    } else if (!(pk = load_key(path, err, errlen))) {
        /* err says why */
    } else if (EVP_PKEY_eq(X509_get0_pubkey(cert), pk) != 1) {
        dps_set_error(err, errlen,
                      "the issued certificate is not for the "
                      "key in %s",
                      path);
    } else if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
                                         NID_commonName, subject_cn,
                                         sizeof(subject_cn)) < 0 ||
               strcmp(subject_cn, cn) != 0) {
        dps_set_error(err, errlen,
                      "the issued certificate's subject CN is "
                      "not the registration id %s",
                      cn);
    } else if (now_s && expired(cert, now_s)) {
        dps_set_error(err, errlen, "the issued certificate has expired");
    } else {
        rc = 0;
    }
    EVP_PKEY_free(pk);
    X509_free(cert);
    ERR_clear_error();
    return rc;
}
