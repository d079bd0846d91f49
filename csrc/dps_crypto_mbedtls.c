/*
 * The crypto seam over mbedTLS 2.28 or 3.6 (see dps_crypto.h), for builds such as
 * OpenWrt's whose base image carries mbedTLS and no libcrypto. Selected
 * instead of dps_crypto_openssl.c by `make CRYPTO=mbedtls`. Like that file
 * it holds thin wrappers plus what the library does not do the way we
 * need: strict Base64 validation and lowercase unpadded base32. Random
 * bytes come straight from the kernel, which spares us seeding a DRBG.
 */
/* O_CLOEXEC is POSIX.1-2008; -std=c11 hides it otherwise. */
#define _POSIX_C_SOURCE 200809L

#include "dps_crypto.h"
#include "dps_encoding.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

/* Empty input may come as NULL; passing NULL with length 0 on to the
 * library is formally undefined (memcpy), so point at a real byte. */
static const uint8_t empty_input[1];

int dps_sha256(const uint8_t *data, size_t len, uint8_t out[DPS_SHA256_LEN])
{
    if (!out || (!data && len))
        return -1;
    /* The last argument 0 selects SHA-256 rather than SHA-224. 3.0 gave
     * the name of the 2.x _ret function to it (the old void one is gone). */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    return mbedtls_sha256(data ? data : empty_input, len, out, 0) == 0
               ? 0 : -1;
#else
    return mbedtls_sha256_ret(data ? data : empty_input, len, out, 0) == 0
               ? 0 : -1;
#endif
}

int dps_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg,
                    size_t msg_len, uint8_t out[DPS_SHA256_LEN])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);

    if (!out || (!key && key_len) || (!msg && msg_len) || !md)
        return -1;
    return mbedtls_md_hmac(md, key ? key : empty_input, key_len,
                           msg ? msg : empty_input, msg_len, out) == 0
               ? 0 : -1;
}

char *dps_base64_encode(const uint8_t *data, size_t len)
{
    size_t cap, olen = 0;
    char *text;

    if ((!data && len) || len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    cap = (len + 2) / 3 * 4 + 1;
    text = malloc(cap);
    if (!text)
        return NULL;
    /* mbedTLS writes the NUL itself, except for empty input, where it
     * returns at once without touching the buffer. */
    text[0] = '\0';
    if (len && mbedtls_base64_encode((unsigned char *)text, cap, &olen,
                                     data, len) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

int dps_base64_decode(const char *text, uint8_t **out, size_t *out_len)
{
    size_t len, cap, olen = 0;
    uint8_t *buf;
    int pad;

    if (!text || !out || !out_len)
        return -1;
    len = strlen(text);
    pad = dps_base64_check(text, len);
    if (pad < 0)
        return -1;
    /* One spare byte so that empty input still yields a malloc'd buffer. */
    cap = len / 4 * 3 + 1;
    buf = malloc(cap);
    if (!buf)
        return -1;
    /* Unlike EVP_DecodeBlock, olen already leaves the padding out. */
    if (len && (mbedtls_base64_decode(buf, cap, &olen,
                                      (const unsigned char *)text, len) != 0 ||
                olen != len / 4 * 3 - (size_t)pad)) {
        dps_wipe(buf, cap);
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = olen;
    return 0;
}

/* For kernels before 3.17 (no getrandom), which old routers still run. */
static int urandom_bytes(uint8_t *out, size_t len)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    while (len > 0) {
        n = read(fd, out, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        out += n;
        len -= (size_t)n;
    }
    close(fd);
    return len == 0 ? 0 : -1;
}

int dps_random_bytes(uint8_t *out, size_t len)
{
    ssize_t n;

    if (!out)
        return -1;
    /* getrandom blocks only until the pool is first seeded, then never;
     * reads over 256 bytes may come back short, hence the loop. */
    while (len > 0) {
        n = getrandom(out, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ENOSYS)
            return urandom_bytes(out, len);
        if (n <= 0)
            return -1;
        out += n;
        len -= (size_t)n;
    }
    return 0;
}

void dps_wipe(void *p, size_t len)
{
    /* A plain memset before free() may be removed by the optimiser. */
    if (p && len)
        mbedtls_platform_zeroize(p, len);
}
