/*
 * Checks a device certificate and its key before any request (see
 * dps_x509.h) over mbedTLS 2.28 or 3.6 (MBEDTLS_VERSION_NUMBER picks the
 * API), for builds without libcrypto; selected
 * instead of dps_x509_openssl.c by `make CRYPTO=mbedtls`. The messages are the
 * same as that file's, word for word, so users and tests see no
 * difference between the two builds.
 *
 * Files are read here (so their bytes can be wiped, and so errors can
 * name the path); PEM text is used as given. mbedTLS wants PEM as a
 * NUL-terminated buffer whose length counts the NUL, hence the "+ 1"s.
 */
#include "dps_x509.h"
#include "dps_crypto.h"
#include "dps_error.h"
#include "dps_pem_input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/version.h>
#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/x509_crt.h>

/* 3.x decrypts AES-encrypted PKCS#8 keys itself; 2.28 needs the PBES2
 * code below. */
#define DPS_MBEDTLS_3 (MBEDTLS_VERSION_NUMBER >= 0x03000000)

#if !DPS_MBEDTLS_3
#include <mbedtls/cipher.h>
#include <mbedtls/md.h>
#endif
#if defined(MBEDTLS_USE_PSA_CRYPTO)
#include <psa/crypto.h>
#endif

/* The decoded bytes of a PEM block: a private field since 3.0. */
static const unsigned char *pem_der(mbedtls_pem_context *pem, size_t *len)
{
#if DPS_MBEDTLS_3
    return mbedtls_pem_get_buffer(pem, len);
#else
    *len = pem->buflen;
    return pem->buf;
#endif
}

#if DPS_MBEDTLS_3
/* 3.x wants random bytes for key parsing and pair checks (RSA blinding). */
static int kernel_random(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    return dps_random_bytes(out, len) == 0 ? 0 : MBEDTLS_ERR_PK_ALLOC_FAILED;
}
#endif

static int parse_key(mbedtls_pk_context *pk, const unsigned char *key,
                     size_t key_len, const char *password)
{
    const unsigned char *pw = (const unsigned char *)password;
    size_t pw_len = password ? strlen(password) : 0;

#if DPS_MBEDTLS_3
    return mbedtls_pk_parse_key(pk, key, key_len, pw, pw_len, kernel_random, NULL);
#else
    return mbedtls_pk_parse_key(pk, key, key_len, pw, pw_len);
#endif
}

static int keys_pair(const mbedtls_pk_context *pub, const mbedtls_pk_context *prv)
{
#if DPS_MBEDTLS_3
    return mbedtls_pk_check_pair(pub, prv, kernel_random, NULL);
#else
    return mbedtls_pk_check_pair(pub, prv);
#endif
}

/* The first certificate in the input: the leaf when it holds a chain.
 * Only the first CERTIFICATE block is decoded, as OpenSSL's PEM reader
 * does: mbedtls_x509_crt_parse would skip a broken leaf and quietly
 * take the next certificate in its place. Blocks of other types before
 * it (a key) are passed over. Returns 0 with crt filled, or -1. */
static int read_cert(const struct dps_pem_input *in, mbedtls_x509_crt *crt,
                     char *err, size_t errlen)
{
    mbedtls_pem_context pem;
    const unsigned char *der;
    size_t used = 0, der_len;
    int rc = -1;

    mbedtls_pem_init(&pem);
    if (mbedtls_pem_read_buffer(&pem, "-----BEGIN CERTIFICATE-----",
                                "-----END CERTIFICATE-----",
                                (const unsigned char *)in->buf, NULL, 0,
                                &used) == 0 &&
        (der = pem_der(&pem, &der_len)) != NULL &&
        mbedtls_x509_crt_parse_der(crt, der, der_len) == 0)
        rc = 0;
    mbedtls_pem_free(&pem);
    if (rc != 0)
        dps_pem_not_pem(in, "certificate", err, errlen);
    return rc;
}

#if !DPS_MBEDTLS_3
/* What an "ENCRYPTED PRIVATE KEY" (PKCS#8) block says about its PBES2
 * encryption, pointing into the decoded block. */
struct pbes2 {
    mbedtls_asn1_buf salt;
    int iterations;
    mbedtls_md_type_t prf;
    mbedtls_cipher_type_t cipher;
    size_t key_len;
    const unsigned char *iv;    /* 16 bytes */
    const unsigned char *data;  /* the encrypted PrivateKeyInfo */
    size_t data_len;
};

/* The AES-CBC ciphers PBES2 names by OID (aes128/192/256-CBC). */
static int aes_cbc_of(const mbedtls_asn1_buf *oid, struct pbes2 *k)
{
    if (MBEDTLS_OID_CMP(MBEDTLS_OID_AES "\x02", oid) == 0) {
        k->cipher = MBEDTLS_CIPHER_AES_128_CBC;
        k->key_len = 16;
    } else if (MBEDTLS_OID_CMP(MBEDTLS_OID_AES "\x16", oid) == 0) {
        k->cipher = MBEDTLS_CIPHER_AES_192_CBC;
        k->key_len = 24;
    } else if (MBEDTLS_OID_CMP(MBEDTLS_OID_AES "\x2a", oid) == 0) {
        k->cipher = MBEDTLS_CIPHER_AES_256_CBC;
        k->key_len = 32;
    } else {
        return -1;
    }
    return 0;
}

/* PBKDF2-params ::= SEQUENCE { salt OCTET STRING, iterationCount INTEGER,
 *   keyLength INTEGER OPTIONAL, prf AlgorithmIdentifier DEFAULT SHA-1 } */
static int parse_pbkdf2(unsigned char *p, const unsigned char *end,
                        struct pbes2 *k)
{
    mbedtls_asn1_buf prf, prf_params;
    int key_len;

    k->salt.tag = MBEDTLS_ASN1_OCTET_STRING;
    if (mbedtls_asn1_get_tag(&p, end, &k->salt.len,
                             MBEDTLS_ASN1_OCTET_STRING) != 0)
        return -1;
    k->salt.p = p;
    p += k->salt.len;
    if (mbedtls_asn1_get_int(&p, end, &k->iterations) != 0 ||
        k->iterations <= 0)
        return -1;
    if (p < end && *p == MBEDTLS_ASN1_INTEGER &&
        (mbedtls_asn1_get_int(&p, end, &key_len) != 0 ||
         (size_t)key_len != k->key_len))
        return -1;
    k->prf = MBEDTLS_MD_SHA1;
    if (p < end && (mbedtls_asn1_get_alg(&p, end, &prf, &prf_params) != 0 ||
                    mbedtls_oid_get_md_hmac(&prf, &k->prf) != 0))
        return -1;
    return p == end ? 0 : -1;
}

/* EncryptedPrivateKeyInfo with PBES2 = { PBKDF2, AES-CBC with an IV }:
 * the one shape OpenSSL 3 writes by default (openssl pkey -aes256). */
static int parse_pbes2(unsigned char *p, size_t len, struct pbes2 *k)
{
    const unsigned char *end = p + len, *scheme_end;
    mbedtls_asn1_buf alg, params, kdf, kdf_params, enc, enc_params;
    unsigned char *q;
    size_t n;

    if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED |
                                          MBEDTLS_ASN1_SEQUENCE) != 0 ||
        mbedtls_asn1_get_alg(&p, end, &alg, &params) != 0 ||
        MBEDTLS_OID_CMP(MBEDTLS_OID_PKCS5_PBES2, &alg) != 0 ||
        params.tag != (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) ||
        mbedtls_asn1_get_tag(&p, end, &k->data_len,
                             MBEDTLS_ASN1_OCTET_STRING) != 0)
        return -1;
    k->data = p;
    q = params.p;
    scheme_end = params.p + params.len;
    if (mbedtls_asn1_get_alg(&q, scheme_end, &kdf, &kdf_params) != 0 ||
        mbedtls_asn1_get_alg(&q, scheme_end, &enc, &enc_params) != 0 ||
        MBEDTLS_OID_CMP(MBEDTLS_OID_PKCS5_PBKDF2, &kdf) != 0 ||
        kdf_params.tag != (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) ||
        aes_cbc_of(&enc, k) != 0 ||
        enc_params.tag != MBEDTLS_ASN1_OCTET_STRING || enc_params.len != 16)
        return -1;
    k->iv = enc_params.p;
    return parse_pbkdf2(kdf_params.p, kdf_params.p + kdf_params.len, k);
}

/* Decrypts with the parameters in k and parses the PrivateKeyInfo inside.
 * Returns 0, or -1 when the password (or the data) is wrong. */
static int decrypt_pbes2(const struct pbes2 *k, const char *password,
                         mbedtls_pk_context *pk)
{
    unsigned char key[32], *plain;
    size_t plain_len = 0;
    mbedtls_md_context_t md;
    mbedtls_cipher_context_t aes;
    int rc = -1;

    /* CBC output is never longer than its input (padding only shrinks). */
    plain = malloc(k->data_len + 16);
    if (!plain)
        return -1;
    mbedtls_md_init(&md);
    mbedtls_cipher_init(&aes);
    if (mbedtls_md_setup(&md, mbedtls_md_info_from_type(k->prf), 1) == 0 &&
        mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)password,
                                  strlen(password), k->salt.p, k->salt.len,
                                  (unsigned int)k->iterations,
                                  (uint32_t)k->key_len, key) == 0 &&
        mbedtls_cipher_setup(&aes, mbedtls_cipher_info_from_type(k->cipher)) == 0 &&
        mbedtls_cipher_setkey(&aes, key, (int)k->key_len * 8,
                              MBEDTLS_DECRYPT) == 0 &&
        /* A wrong password shows as bad padding here, mostly; when the
         * padding happens to pass, the key parse below fails instead. */
        mbedtls_cipher_crypt(&aes, k->iv, 16, k->data, k->data_len, plain,
                             &plain_len) == 0 &&
        parse_key(pk, plain, plain_len, NULL) == 0)
        rc = 0;
    mbedtls_cipher_free(&aes);
    mbedtls_md_free(&md);
    dps_wipe(key, sizeof key);
    dps_wipe(plain, k->data_len + 16);
    free(plain);
    return rc;
}

/* mbedTLS 2.28 decrypts PKCS#8 keys only under DES/3DES (AES came in 3.x)
 * while OpenSSL 3 encrypts with AES by default, so that case is done
 * here from mbedTLS parts. Returns 0, -1 for a wrong password, or 1 when
 * the key is not encrypted in a way known here either. */
static int read_pbes2_aes_key(const struct dps_pem_input *in, const char *password,
                              mbedtls_pk_context *pk)
{
    mbedtls_pem_context pem;
    struct pbes2 k;
    size_t used = 0;
    int rc = 1;

    mbedtls_pem_init(&pem);
    if (mbedtls_pem_read_buffer(&pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----",
                                "-----END ENCRYPTED PRIVATE KEY-----",
                                (const unsigned char *)in->buf, NULL, 0,
                                &used) == 0 &&
        parse_pbes2(pem.buf, pem.buflen, &k) == 0)
        rc = decrypt_pbes2(&k, password, pk);
    mbedtls_pem_free(&pem); /* zeroizes */
    if (rc != 0) {
        mbedtls_pk_free(pk);
        mbedtls_pk_init(pk);
    }
    return rc;
}
#endif /* !DPS_MBEDTLS_3 */

/* Opens the key. A first pass without the password tells whether the
 * key is encrypted at all: then, as in the OpenSSL build, any failure
 * with the password is put down to the password, since a failed
 * decryption and a corrupt encrypted key look the same. (mbedTLS also
 * reports an empty password on a PKCS#8 key as "required", not
 * "mismatch", which this way still reads "wrong key password".) */
static int read_key(const struct dps_pem_input *in, const char *password,
                    mbedtls_pk_context *pk, char *err, size_t errlen)
{
    const unsigned char *text = (const unsigned char *)in->buf;
    int ret = parse_key(pk, text, in->len + 1, NULL);

    if (ret == 0)
        return 0; /* not encrypted: a password given is ignored */
    mbedtls_pk_free(pk);
    mbedtls_pk_init(pk);
    if (ret != MBEDTLS_ERR_PK_PASSWORD_REQUIRED &&
        ret != MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
        dps_pem_not_pem(in, "private key", err, errlen);
        return -1;
    }
    if (!password) {
        dps_set_error(err, errlen, "private key is encrypted: set a key password");
        return -1;
    }
    ret = parse_key(pk, text, in->len + 1, password);
    if (ret == 0)
        return 0;
    mbedtls_pk_free(pk);
    mbedtls_pk_init(pk);
    /* How mbedTLS turns down a scheme it lacks; on 2.28 that includes
     * AES-encrypted PKCS#8 keys (see above). */
    if (ret == MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE ||
        ret == MBEDTLS_ERR_PKCS5_FEATURE_UNAVAILABLE) {
#if DPS_MBEDTLS_3
        ret = 1;
#else
        ret = read_pbes2_aes_key(in, password, pk);
        if (ret == 0)
            return 0;
#endif
    }
    /* A scheme neither mbedTLS nor the code above knows: say so rather
     * than blame a password that may well be right. */
    if (ret == 1)
        dps_set_error(err, errlen, "private key is encrypted with a scheme "
                      "this build cannot decrypt: re-encrypt it (openssl "
                      "pkey -aes256) or store it unencrypted");
    else
        dps_set_error(err, errlen, "wrong key password");
    return -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil); mbedTLS has no calendar-to-UNIX-time conversion and
 * timegm is neither standard C nor in every libc. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse, for printing the clock without gmtime_r (POSIX only). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* UNIX time of a certificate date; -1 if a field is out of range (the
 * parser checks them, but a bad date must not become a wrong verdict). */
static int x509_time_to_unix(const mbedtls_x509_time *t, int64_t *out)
{
    if (t->year < 0 || t->year > 9999 || t->mon < 1 || t->mon > 12 ||
        t->day < 1 || t->day > 31 || t->hour < 0 || t->hour > 23 ||
        t->min < 0 || t->min > 59 || t->sec < 0 || t->sec > 60)
        return -1;
    *out = days_from_civil(t->year, t->mon, t->day) * 86400 +
           t->hour * 3600 + t->min * 60 + t->sec;
    return 0;
}

static void format_x509_time(const mbedtls_x509_time *t, char *out,
                             size_t outlen)
{
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02dZ", t->year,
             t->mon, t->day, t->hour, t->min, t->sec);
}

static void format_unix_time(int64_t s, char *out, size_t outlen)
{
    int64_t days = s / 86400, rem = s % 86400, y;
    int m, d;

    /* Floor division, so that times before 1970 land on the right day. */
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    snprintf(out, outlen, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y,
             m, d, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
}

/* Both bounds are inclusive (RFC 5280 §4.1.2.5). A not-yet-valid
 * certificate usually means a router that booted without a clock, so
 * that message also says what the clock reads. */
static int check_dates(const mbedtls_x509_crt *crt, int64_t now_s,
                       char *err, size_t errlen)
{
    char when[64], now[64];
    int64_t nb, na;

    if (x509_time_to_unix(&crt->valid_from, &nb) != 0 ||
        x509_time_to_unix(&crt->valid_to, &na) != 0) {
        dps_set_error(err, errlen, "certificate has an unreadable validity date");
        return -1;
    }
    if (nb > now_s) {
        format_x509_time(&crt->valid_from, when, sizeof when);
        format_unix_time(now_s, now, sizeof now);
        dps_set_error(err, errlen, "certificate not valid before %s (the clock "
                "says %s)", when, now);
        return -1;
    }
    if (na < now_s) {
        format_x509_time(&crt->valid_to, when, sizeof when);
        dps_set_error(err, errlen, "certificate expired on %s", when);
        return -1;
    }
    return 0;
}

/* Appends code point c as UTF-8 (at most 4 bytes). Returns the bytes
 * written, or 0 for what is not a character (NUL, surrogates, > U+10FFFF):
 * NUL because DPS takes the CN as the registration id. */
static size_t put_utf8(uint32_t c, char *out)
{
    if (c == 0 || (c >= 0xd800 && c < 0xe000) || c > 0x10ffff)
        return 0;
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xc0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xe0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    out[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

/* Reads one UTF-8 character at s[*i] (n bytes in all) into *c, refusing
 * overlong forms and truncated sequences. Returns 0, or -1. */
static int get_utf8(const unsigned char *s, size_t n, size_t *i, uint32_t *c)
{
    static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
    unsigned char b = s[*i];
    size_t k, more;

    if (b < 0x80)
        more = 0;
    else if ((b & 0xe0) == 0xc0)
        more = 1;
    else if ((b & 0xf0) == 0xe0)
        more = 2;
    else if ((b & 0xf8) == 0xf0)
        more = 3;
    else
        return -1;
    if (n - *i < more + 1)
        return -1;
    *c = more ? b & (0x3f >> more) : b;
    for (k = 1; k <= more; k++) {
        if ((s[*i + k] & 0xc0) != 0x80)
            return -1;
        *c = (*c << 6) | (s[*i + k] & 0x3f);
    }
    *i += more + 1;
    return *c < min[more] ? -1 : 0;
}

/* The CN value as malloc'd UTF-8, converting as OpenSSL's
 * ASN1_STRING_to_UTF8 does: one byte per character for Printable, IA5
 * and T61 (read as Latin-1), UCS-2 for BMP, UCS-4 for Universal, UTF-8
 * checked as is. NULL (with *bad set) for text that cannot be. */
static char *string_to_utf8(const mbedtls_asn1_buf *v, int *bad)
{
    size_t width, i = 0, k, o = 0, n;
    uint32_t c;
    char *out;

    *bad = 1;
    switch (v->tag) {
    case MBEDTLS_ASN1_UTF8_STRING: width = 0; break;
    case MBEDTLS_ASN1_PRINTABLE_STRING:
    case MBEDTLS_ASN1_IA5_STRING:
    case MBEDTLS_ASN1_T61_STRING: width = 1; break;
    case MBEDTLS_ASN1_BMP_STRING: width = 2; break;
    case MBEDTLS_ASN1_UNIVERSAL_STRING: width = 4; break;
    default: return NULL;
    }
    if (width > 1 && v->len % width != 0)
        return NULL;
    /* Each input byte grows to at most 2 (Latin-1) or 3 (UCS-2) bytes. */
    n = v->len * (width ? 3 : 1) + 1;
    out = malloc(n);
    if (!out) {
        *bad = 0;
        return NULL;
    }
    while (i < v->len) {
        if (width == 0) {
            if (get_utf8(v->p, v->len, &i, &c) != 0)
                break;
        } else {
            for (c = 0, k = 0; k < width; k++)
                c = (c << 8) | v->p[i + k];
            i += width;
        }
        k = put_utf8(c, out + o);
        if (k == 0)
            break;
        o += k;
    }
    if (i < v->len) {
        free(out);
        return NULL;
    }
    out[o] = '\0';
    *bad = 0;
    return out;
}

/* The first CN of the subject as malloc'd UTF-8. DPS takes it as the
 * registration id, so an empty or NUL-bearing CN is refused. */
static char *read_cn(const mbedtls_x509_crt *crt, char *err, size_t errlen)
{
    const mbedtls_x509_name *n;
    char *cn;
    int bad;

    for (n = &crt->subject; n; n = n->next)
        if (n->oid.p && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0)
            break;
    if (!n || n->val.len == 0) {
        dps_set_error(err, errlen, "certificate has no subject CN");
        return NULL;
    }
    cn = string_to_utf8(&n->val, &bad);
    if (!cn)
        dps_set_error(err, errlen, bad ? "certificate subject CN is not valid text"
                                       : "out of memory");
    return cn;
}

/* Opens the key and checks it against the certificate. */
static int check_key(const mbedtls_x509_crt *crt, const char *key,
                     const char *password, char *err, size_t errlen)
{
    struct dps_pem_input in;
    mbedtls_pk_context pk;
    int rc = -1;

    if (dps_pem_load(key, "key", &in, err, errlen) != 0)
        return -1;
    mbedtls_pk_init(&pk);
    if (read_key(&in, password, &pk, err, errlen) == 0) {
        /* Public halves and the private scalar against the public
         * point; a type mismatch (RSA key, EC cert) fails here too. */
        if (keys_pair(&crt->pk, &pk) == 0)
            rc = 0;
        else
            dps_set_error(err, errlen, "private key does not match the certificate");
    }
    dps_pem_free(&in);
    mbedtls_pk_free(&pk); /* zeroizes the key */
    return rc;
}

int dps_x509_check(const char *cert, const char *key, const char *password,
                   int64_t now_s, char **cn, char *err, size_t errlen)
{
    struct dps_pem_input in;
    mbedtls_x509_crt crt;
    char *name = NULL;
    int have_cert = 0;

    /* Outputs are defined on every return, so callers need no reset. */
    if (cn)
        *cn = NULL;
    dps_set_error(err, errlen, "%s", "");
    if (!cert || !key) {
        dps_set_error(err, errlen, "no %s given", cert ? "private key"
                                                 : "certificate");
        return -1;
    }
#if defined(MBEDTLS_USE_PSA_CRYPTO)
    /* A library built with USE_PSA_CRYPTO parses keys and certificates
     * through PSA, which must be started first (again is a no-op). */
    if (psa_crypto_init() != PSA_SUCCESS) {
        dps_set_error(err, errlen, "mbedTLS could not start its crypto (PSA)");
        return -1;
    }
#endif
    mbedtls_x509_crt_init(&crt);
    /* Order: what the user can least guess comes first (files, then
     * password, then pairing), the clock last since it is the one cause
     * outside the files. Each step stops the chain with its message. */
    if (dps_pem_load(cert, "certificate", &in, err, errlen) == 0) {
        have_cert = read_cert(&in, &crt, err, errlen) == 0;
        dps_pem_free(&in);
    }
    if (have_cert && check_key(&crt, key, password, err, errlen) == 0 &&
        check_dates(&crt, now_s, err, errlen) == 0)
        name = read_cn(&crt, err, errlen);
    mbedtls_x509_crt_free(&crt);
    if (!name)
        return -1;
    if (cn)
        *cn = name;
    else
        free(name);
    return 0;
}
