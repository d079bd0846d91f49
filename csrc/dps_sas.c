/*
 * Shared access signature tokens and group-key derivation (docs/protocol.md
 * §5). The service hashes the literal `sr` text it receives, so the one
 * rule that matters here is: sign exactly the bytes that are sent.
 */
#include "dps_sas.h"
#include "dps_crypto.h"
#include "dps_encoding.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dps_sas_sign_with_key(void *ctx, const uint8_t *msg, size_t len,
                          uint8_t mac[32])
{
    const dps_sas_key *key = ctx;

    /* The key stays the caller's: it may live in locked or wiped memory. */

    if (!key || !mac)
        return -1;
    return dps_hmac_sha256(key->key, key->len, msg, len, mac);
}

/* Signs text with the callback and returns url_encode(base64(mac)), the
 * form the `sig` field takes in the token. */
static char *sign_encoded(const char *text, dps_sas_signer sign, void *ctx)
{
    uint8_t mac[DPS_SHA256_LEN];
    char *b64, *sig = NULL;

    /* The signer may be a TPM: any failure there simply means no token. */
    if (sign(ctx, (const uint8_t *)text, strlen(text), mac) != 0)
        return NULL;
    b64 = dps_base64_encode(mac, sizeof mac);
    if (b64)
        sig = dps_url_encode(b64);
    if (b64)
        dps_wipe(b64, strlen(b64));
    free(b64);
    dps_wipe(mac, sizeof mac);
    return sig;
}

/* Joins the already encoded parts; returns malloc'd text or NULL. Field
 * order follows the C SDK (sr, sig, se, skn); the service accepts any.
 * skn goes in as given, like the SDK: it is "registration" or the TPM
 * challenge's keyName, both plain tokens. */
static char *format_token(const char *sr, const char *sig, const char *se,
                          const char *key_name)
{
    static const char fmt[] = "SharedAccessSignature sr=%s&sig=%s&se=%s%s%s";
    const char *skn = key_name ? "&skn=" : "";
    int n;
    char *token;

    if (!key_name)
        key_name = "";
    n = snprintf(NULL, 0, fmt, sr, sig, se, skn, key_name);
    if (n < 0)
        return NULL;
    token = malloc((size_t)n + 1);
    if (token)
        snprintf(token, (size_t)n + 1, fmt, sr, sig, se, skn, key_name);
    return token;
}

char *dps_sas_token(const char *resource, uint64_t expiry,
                    const char *key_name, dps_sas_signer sign, void *ctx)
{
    char se[21]; /* UINT64_MAX has 20 digits */
    char *sr, *to_sign = NULL, *sig = NULL, *token = NULL;
    size_t sr_len, se_len;

    if (!resource || !sign)
        return NULL;
    /* se is sent and signed as plain decimal, never encoded. */
    snprintf(se, sizeof se, "%" PRIu64, expiry);
    sr = dps_url_encode(resource);
    if (!sr)
        return NULL;
    /* String-to-sign: the encoded sr as sent, one LF, the decimal expiry. */
    sr_len = strlen(sr);
    se_len = strlen(se);
    to_sign = malloc(sr_len + 1 + se_len + 1);
    if (!to_sign)
        goto done;
    memcpy(to_sign, sr, sr_len);
    to_sign[sr_len] = '\n';
    memcpy(to_sign + sr_len + 1, se, se_len + 1);
    sig = sign_encoded(to_sign, sign, ctx);
    if (sig)
        token = format_token(sr, sig, se, key_name);
done:
    free(sr);
    free(to_sign);
    /* The signature alone, with sr and se, is a working token. */
    if (sig)
        dps_wipe(sig, strlen(sig));
    free(sig);
    return token;
}

char *dps_derive_device_key(const char *group_key_b64,
                            const char *registration_id)
{
    uint8_t *key = NULL, mac[DPS_SHA256_LEN];
    size_t key_len = 0;
    char *derived = NULL;

    if (!group_key_b64 || !registration_id)
        return NULL;
    if (dps_base64_decode(group_key_b64, &key, &key_len) != 0)
        return NULL;
    /* An empty group key is valid Base64 but never a real enrollment
     * key; refusing it turns a configuration slip into a clear error. */
    if (key_len > 0 &&
        dps_hmac_sha256(key, key_len, (const uint8_t *)registration_id,
                        strlen(registration_id), mac) == 0) {
        derived = dps_base64_encode(mac, sizeof mac);
        /* The MAC is the device key itself: a secret like the group key. */
        dps_wipe(mac, sizeof mac);
    }
    dps_wipe(key, key_len);
    free(key);
    return derived;
}
