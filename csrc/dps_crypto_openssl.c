/*
 * The crypto seam over OpenSSL 3 libcrypto (see dps_crypto.h). An mbedTLS
 * build replaces this one file, so it holds nothing but thin wrappers plus
 * the two pieces libcrypto does not do the way we need: strict Base64
 * validation and lowercase unpadded base32.
 */
#include "dps_crypto.h"

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

static int is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* EVP_DecodeBlock alone is lenient (skips surrounding whitespace, takes
 * odd padding) and does not report how much of its output is padding, so
 * the text is checked here first. Returns the padding count, or -1. */
static int base64_check(const char *text, size_t len)
{
    size_t i, pad = 0;

    if (len % 4 != 0)
        return -1;
    if (len > 0 && text[len - 1] == '=')
        pad = (len > 1 && text[len - 2] == '=') ? 2 : 1;
    for (i = 0; i < len - pad; i++)
        if (!is_base64_char(text[i]))
            return -1;
    return (int)pad;
}

int dps_base64_decode(const char *text, uint8_t **out, size_t *out_len)
{
    size_t len;
    uint8_t *buf;
    int pad, n;

    if (!text || !out || !out_len)
        return -1;
    len = strlen(text);
    pad = base64_check(text, len);
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

char *dps_base32_lower(const uint8_t *data, size_t len)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    char *text, *p;
    uint32_t bits = 0; /* the low nbits bits are not yet emitted */
    int nbits = 0;
    size_t i;

    if ((!data && len) || len > (SIZE_MAX - 5) / 8)
        return NULL;
    text = malloc((len * 8 + 4) / 5 + 1);
    if (!text)
        return NULL;
    p = text;
    for (i = 0; i < len; i++) {
        bits = (bits << 8) | data[i];
        nbits += 8;
        while (nbits >= 5) {
            nbits -= 5;
            *p++ = alphabet[(bits >> nbits) & 31];
        }
    }
    /* The last partial group is left-aligned and zero-filled; RFC 4648
     * would then pad with '=', which TPM registration ids leave out. */
    if (nbits > 0)
        *p++ = alphabet[(bits << (5 - nbits)) & 31];
    *p = '\0';
    return text;
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
