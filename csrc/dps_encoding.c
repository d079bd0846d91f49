/*
 * Text helpers shared by the modules (see dps_encoding.h), and lowercase
 * base32 for TPM registration ids. No crypto here, so nothing in it
 * depends on OpenSSL or mbedTLS.
 */
#include "dps_encoding.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dps_crypto.h"

bool dps_is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* The backends' decoders are lenient (OpenSSL's EVP_DecodeBlock skips
 * surrounding whitespace and takes odd padding) and do not all report how
 * much of their output is padding, so the text is checked here first. */
int dps_base64_check(const char *text, size_t len)
{
    size_t i, pad = 0;

    if (len % 4 != 0)
        return -1;
    if (len > 0 && text[len - 1] == '=')
        pad = (len > 1 && text[len - 2] == '=') ? 2 : 1;
    for (i = 0; i < len - pad; i++)
        if (!dps_is_base64_char(text[i]))
            return -1;
    return (int)pad;
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

/* The official C SDK's unreserved set (docs/protocol.md §5.2). '~' is
 * encoded even though RFC 3986 lets it pass: matching the SDK byte for
 * byte keeps our tokens identical to the reference client's. */
static bool url_passes(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '!' || c == '(' || c == ')' ||
           c == '*' || c == '-' || c == '.' || c == '_';
}

char *dps_url_encode_to(char *dst, const char *src)
{
    static const char hex[] = "0123456789abcdef";

    /* Bytes >= 0x80 are encoded one by one (UTF-8 stays UTF-8); the SDK
     * would re-encode them as Latin-1, which legal ids never contain. */
    for (; *src; src++) {
        unsigned char c = (unsigned char)*src;
        if (url_passes(c)) {
            *dst++ = (char)c;
        } else {
            *dst++ = '%';
            *dst++ = hex[c >> 4];
            *dst++ = hex[c & 15];
        }
    }
    return dst;
}

char *dps_url_encode(const char *text)
{
    size_t len;
    char *out;

    if (!text)
        return NULL;
    len = strlen(text);
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    *dps_url_encode_to(out, text) = '\0';
    return out;
}

const char *dps_pem_start(const char *s)
{
    return s ? strstr(s, "-----BEGIN") : NULL;
}

char *dps_strdup_or_null(const char *s)
{
    char *copy;
    size_t len;

    if (!s)
        return NULL;
    len = strlen(s) + 1;
    copy = malloc(len);
    if (copy)
        memcpy(copy, s, len);
    return copy;
}
