/*
 * Encodings every crypto backend shares: the strict Base64 check done
 * before a backend decodes, and lowercase base32 (TPM registration ids).
 * No crypto here, so nothing in it depends on OpenSSL or mbedTLS.
 */
#include "dps_encoding.h"

#include <stdint.h>
#include <stdlib.h>

#include "dps_crypto.h"

static int is_base64_char(char c)
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
        if (!is_base64_char(text[i]))
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
