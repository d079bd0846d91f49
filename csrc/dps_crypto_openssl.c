/*
 * The crypto seam over OpenSSL 3 libcrypto (see dps_crypto.h). An mbedTLS
 * build replaces this one file, so it holds nothing but thin wrappers plus
 * the two pieces libcrypto does not do the way we need: strict Base64
 * validation and lowercase unpadded base32.
 */
#include "dps_crypto.h"
#include "dps_encoding.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* libcrypto rejects NULL buffers even with length 0; point empty input
 * at a real (unused) byte instead. */
static const uint8_t empty_input[1];

int dps_sha256(const uint8_t *data, size_t len, uint8_t out[DPS_SHA256_LEN])
{
    unsigned int out_len = 0;

    if (!out || (!data && len))
        return -1;
    if (!EVP_Digest(data ? data : empty_input, len, out, &out_len,
                    EVP_sha256(), NULL))
        return -1;
    return out_len == DPS_SHA256_LEN ? 0 : -1;
}

int dps_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg,
                    size_t msg_len, uint8_t out[DPS_SHA256_LEN])
{
    unsigned int out_len = 0;

    if (!out || (!key && key_len) || (!msg && msg_len) || key_len > INT_MAX)
        return -1;
    /* HMAC() takes the key length as int; keys here are 16-64 bytes. */
    if (!HMAC(EVP_sha256(), key ? key : empty_input, (int)key_len,
              msg ? msg : empty_input, msg_len, out, &out_len))
        return -1;
    return out_len == DPS_SHA256_LEN ? 0 : -1;
}

char *dps_base64_encode(const uint8_t *data, size_t len)
{
    char *text;

    /* EVP_EncodeBlock counts in int: refuse what would overflow it. */
    if ((!data && len) || len > (size_t)INT_MAX / 4 * 3 - 3)
        return NULL;
    text = malloc((len + 2) / 3 * 4 + 1);
    if (!text)
        return NULL;
    /* Writes the padded text and its NUL; no line breaks (unlike BIOs). */
    EVP_EncodeBlock((unsigned char *)text, data ? data : empty_input,
                    (int)len);
    return text;
}

int dps_base64_decode(const char *text, uint8_t **out, size_t *out_len)
{
    size_t len;
    uint8_t *buf;
    int pad, n;

    if (!text || !out || !out_len)
        return -1;
    len = strlen(text);
    pad = dps_base64_check(text, len);
    if (pad < 0 || len > INT_MAX)
        return -1;
    /* One spare byte so that empty input still yields a malloc'd buffer. */
    buf = malloc(len / 4 * 3 + 1);
    if (!buf)
        return -1;
    n = len ? EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len)
            : 0;
    if (n < 0 || (size_t)n != len / 4 * 3) {
        dps_wipe(buf, len / 4 * 3 + 1);
        free(buf);
        return -1;
    }
    /* EVP_DecodeBlock counts the zero bytes that stand for '=' too. */
    *out = buf;
    *out_len = (size_t)n - (size_t)pad;
    return 0;
}

int dps_random_bytes(uint8_t *out, size_t len)
{
    if (!out || len > INT_MAX)
        return -1;
    if (len == 0)
        return 0;
    /* RAND_bytes draws from the seeded CSPRNG; 1 means success. */
    return RAND_bytes(out, (int)len) == 1 ? 0 : -1;
}

void dps_wipe(void *p, size_t len)
{
    /* A plain memset before free() may be removed by the optimiser. */
    if (p && len)
        OPENSSL_cleanse(p, len);
}
