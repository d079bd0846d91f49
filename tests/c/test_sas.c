/*
 * SAS tokens, URL encoding and the crypto seam against the known-answer
 * vectors of docs/protocol.md §5.5 (KAT-1..KAT-5 and the "computed by us"
 * table), plus the strictness and NULL-handling edges.
 */
#include "dps_crypto.h"
#include "dps_encoding.h"
#include "dps_sas.h"
#include "testing.h"

#include <stdlib.h>

#define KAT1_GROUP_KEY                                                     \
    "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi" \
    "9yegxkqIChbqOS9Egw=="
#define KAT1_REG_ID "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
#define KAT1_DEVICE_KEY "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
#define KAT3_KEY                                                           \
    "18RQk/hOPJR9EbsJlk2j8WA6vWaj/yi+oaYg7zmxfQNdOyMSu+SJ8O7TSlZhDJCYmn4r" \
    "zEiVKIzNiVAWjLxrGA=="

/* Base64 of the HMAC of msg under the Base64 key, via the SAS signer. */
static char *mac_b64(const char *key_b64, const char *msg)
{
    uint8_t *raw = NULL, mac[32];
    size_t raw_len = 0;
    char *out = NULL;
    dps_sas_key key;

    if (dps_base64_decode(key_b64, &raw, &raw_len) != 0)
        return NULL;
    key.key = raw;
    key.len = raw_len;
    if (dps_sas_sign_with_key(&key, (const uint8_t *)msg, strlen(msg),
                              mac) == 0)
        out = dps_base64_encode(mac, sizeof mac);
    free(raw);
    return out;
}

/* Full token signed with a Base64 key, as the client does it. */
static char *token_b64(const char *key_b64, const char *resource,
                       uint64_t se, const char *skn)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    char *tok;
    dps_sas_key key;

    if (dps_base64_decode(key_b64, &raw, &raw_len) != 0)
        return NULL;
    key.key = raw;
    key.len = raw_len;
    tok = dps_sas_token(resource, se, skn, dps_sas_sign_with_key, &key);
    free(raw);
    return tok;
}

/* A signer that records what it was asked to sign and returns a fixed
 * MAC, to check the string-to-sign and the token layout without a key. */
struct capture {
    char msg[256];
    uint8_t mac[32];
    int fail;
};

static int capture_sign(void *ctx, const uint8_t *msg, size_t len,
                        uint8_t mac[32])
{
    struct capture *c = ctx;

    if (c->fail || len >= sizeof c->msg)
        return -1;
    memcpy(c->msg, msg, len);
    c->msg[len] = '\0';
    memcpy(mac, c->mac, 32);
    return 0;
}

static void test_kat1_derived_key(void)
{
    char *k = dps_derive_device_key(KAT1_GROUP_KEY, KAT1_REG_ID);
    CHECK_STR(k, KAT1_DEVICE_KEY);
    free(k);
}

static void test_kat2_hmac_base64(void)
{
    char *s = mac_b64("NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=",
                      "sign this message");
    CHECK_STR(s, "8NJRMT83CcplGrAGaUVIUM/md5914KpWVNngSVoF9/M=");
    free(s);
}

/* The doc's token encodes sr with uppercase %2F; the signature only
 * reproduces over that literal text. */
static void test_kat3_iot_hub_sig(void)
{
    char *s = mac_b64(KAT3_KEY, "MyExampleHub.azure-devices.net%2Fdevices"
                                "%2Fmy-symkey-device\n1663119026");
    char *e;

    CHECK_STR(s, "f+wW8XOKeJOtiPc9Iwjc4OpExvPM7NlhM9qxN2a1aAM=");
    e = dps_url_encode(s);
    CHECK_STR(e, "f%2bwW8XOKeJOtiPc9Iwjc4OpExvPM7NlhM9qxN2a1aAM%3d");
    free(e);
    free(s);
}

/* Our own token for the same hub resource: lowercase %2f, so a different
 * signature (computed with python3 hmac/base64). No skn for IoT Hub. */
static void test_kat3_own_format(void)
{
    char *t = token_b64(KAT3_KEY,
                        "MyExampleHub.azure-devices.net/devices/"
                        "my-symkey-device", 1663119026, NULL);
    CHECK_STR(t, "SharedAccessSignature sr=MyExampleHub.azure-devices.net"
                 "%2fdevices%2fmy-symkey-device&sig=QhitAUgPGvpAPDGO6zv0VO4"
                 "UpL7%2f01AzkOtjTQl5kzo%3d&se=1663119026");
    free(t);
}

static void test_kat4_string_to_sign(void)
{
    struct capture c = {{0}, {0}, 0};
    uint8_t *mac = NULL;
    size_t mac_len = 0;
    char *t;

    /* The doc's sig is unpadded Base64 of 32 bytes; restore the '='. */
    CHECK_INT(dps_base64_decode("cS1eHM/lDjsRsrZV9508wOFrgmZk4g8FNg8NwHVSiSQ"
                                "=", &mac, &mac_len), 0);
    CHECK_INT(mac_len, 32);
    if (mac && mac_len == 32)
        memcpy(c.mac, mac, 32);
    free(mac);
    t = dps_sas_token("0neFEEDC0DE/registrations/myRegistrationId",
                      1578941692, "iothubowner", capture_sign, &c);
    CHECK_STR(c.msg, "0neFEEDC0DE%2fregistrations%2fmyRegistrationId\n"
                     "1578941692");
    /* Same layout as the doc's, in C SDK style: lowercase hex, padded. */
    CHECK_STR(t, "SharedAccessSignature sr=0neFEEDC0DE%2fregistrations%2f"
                 "myRegistrationId&sig=cS1eHM%2flDjsRsrZV9508wOFrgmZk4g8FNg8"
                 "NwHVSiSQ%3d&se=1578941692&skn=iothubowner");
    free(t);
}

static void test_kat5_tpm_registration_id(void)
{
    static const char ek[] =
        "AToAAQALAAMAsgAgg3GXZ0SEs/gakMyNRqXXJP1S124GUgtk8qHaGzMUaaoABgCAAEMA"
        "EAgAAAAAAAEAopqgkUBwtpr1sCgVJcEZxsJtpmtOAt9K7SjGFe4hsp6DJ/dd2E5UFzBC"
        "+Jp8Fzqf5ukRBkqrAgIuAvHRsruIedk1uarJSLhbDpFLHxFd7iDNcYfrvdgVNT2T9zrv"
        "kh2y04WuRQg2D5qf0tZF82jeTjR/YJK7uWhaRwWOwZ3b1XD9l6wFOrwK/Ic0PEsjneFX"
        "QzL0n9uKyuHmHNz+wHppmOiMAabvnXXEin9ou7/iowY/+YhFm3j7atsVvxMI5HEM3Mq+"
        "W4imUuzPxVX7fZH+oWPKP5ofpWBTf+MdttGby1AjGnv8JE69JriOYoZG2/4qbsfv9M7a"
        "7NFrBlaW7Rt36w==";
    uint8_t *blob = NULL, digest[32];
    size_t len = 0;
    char *id = NULL;

    CHECK_INT(dps_base64_decode(ek, &blob, &len), 0);
    CHECK_INT(len, 316); /* §6.1: marshaled EK TPM2B_PUBLIC */
    if (blob && dps_sha256(blob, len, digest) == 0)
        id = dps_base32_lower(digest, sizeof digest);
    CHECK_STR(id, "6rek5qncnygnkzflohxz4u6zlfly6ktm4klsc7xrbgvesqyllnfa");
    CHECK_INT(id ? strlen(id) : 0, 52);
    free(id);
    free(blob);
}

/* docs/protocol.md §5.5 "vectors computed by us": exact token equality. */
static void test_computed_vectors(void)
{
    char *t = token_b64(KAT3_KEY, "0ne00111111/registrations/"
                        "my-symkey-device", 1663952627, "registration");
    char *s, *k;

    CHECK_STR(t, "SharedAccessSignature sr=0ne00111111%2fregistrations%2f"
                 "my-symkey-device&sig=6GqlY2Tr8xDlSYE04oQcdEH7vznSt2LcTUob"
                 "z9BmpAY%3d&se=1663952627&skn=registration");
    free(t);
    s = mac_b64(KAT3_KEY, "0ne00111111%2Fregistrations%2Fmy-symkey-device"
                          "\n1663952627");
    CHECK_STR(s, "8VPprb8BiTkuVE0hBqHm/SVrzVpdD8VZcXugntdbhuU=");
    free(s);
    k = dps_derive_device_key(KAT1_GROUP_KEY, KAT1_REG_ID);
    t = k ? token_b64(k, "0ne00111111/registrations/" KAT1_REG_ID,
                      1700000000, "registration") : NULL;
    CHECK_STR(t, "SharedAccessSignature sr=0ne00111111%2fregistrations%2f"
                 "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=LwAx%2bRfQDq37RAH"
                 "vptYP8R3382xvZ%2fBntAGlh8Wmu18%3d&se=1700000000"
                 "&skn=registration");
    free(t);
    free(k);
}

/* Expiry edges: 0 and UINT64_MAX are printed in full decimal. */
static void test_expiry_edges(void)
{
    char *t = token_b64(KAT3_KEY, "0ne00111111/registrations/"
                        "my-symkey-device", 0, "registration");
    CHECK_STR(t, "SharedAccessSignature sr=0ne00111111%2fregistrations%2f"
                 "my-symkey-device&sig=fvF7l9Px3tcJNCJ7dFrOUBSaNXtkKdcRvP7H"
                 "PakdJ8U%3d&se=0&skn=registration");
    free(t);
    t = token_b64(KAT3_KEY, "0ne00111111/registrations/my-symkey-device",
                  UINT64_MAX, "registration");
    CHECK_STR(t, "SharedAccessSignature sr=0ne00111111%2fregistrations%2f"
                 "my-symkey-device&sig=yCHBuxZHQspWkTzG5sAvhxinJksq5251INsH"
                 "gx8G0c0%3d&se=18446744073709551615&skn=registration");
    free(t);
}

static void check_url(const char *in, const char *want)
{
    char *e = dps_url_encode(in);
    CHECK_STR(e, want);
    free(e);
}

static void test_url_encode(void)
{
    check_url(":", "%3a");
    check_url("/", "%2f");
    check_url("+", "%2b");
    check_url("=", "%3d");
    check_url("~", "%7e");
    check_url(" ", "%20");
    check_url("", "");
    check_url("AZaz09!()*-._", "AZaz09!()*-._");
    check_url("a&b?c#d%e\n", "a%26b%3fc%23d%25e%0a");
    /* UTF-8 "é" (c3 a9) and DEL: each byte on its own, lowercase hex. */
    check_url("\xc3\xa9\x7f\xff", "%c3%a9%7f%ff");
    CHECK(dps_url_encode(NULL) == NULL);
}

static void check_b64_roundtrip(const char *raw, const char *want)
{
    char *e = dps_base64_encode((const uint8_t *)raw, strlen(raw));
    uint8_t *d = NULL;
    size_t n = 99;

    CHECK_STR(e, want);
    CHECK_INT(dps_base64_decode(want, &d, &n), 0);
    CHECK_INT(n, strlen(raw));
    CHECK(d && memcmp(d, raw, n) == 0);
    free(d);
    free(e);
}

/* RFC 4648 §10 test vectors. */
static void test_base64_rfc4648(void)
{
    check_b64_roundtrip("", "");
    check_b64_roundtrip("f", "Zg==");
    check_b64_roundtrip("fo", "Zm8=");
    check_b64_roundtrip("foo", "Zm9v");
    check_b64_roundtrip("foob", "Zm9vYg==");
    check_b64_roundtrip("fooba", "Zm9vYmE=");
    check_b64_roundtrip("foobar", "Zm9vYmFy");
}

static void test_base64_binary(void)
{
    static const uint8_t raw[] = {0x00, 0xfb, 0xff, 0x00};
    char *e = dps_base64_encode(raw, sizeof raw);
    uint8_t *d = NULL;
    size_t n = 0;

    CHECK_STR(e, "APv/AA==");
    CHECK_INT(dps_base64_decode("APv/AA==", &d, &n), 0);
    CHECK_INT(n, 4);
    CHECK(d && memcmp(d, raw, 4) == 0);
    free(d);
    free(e);
    /* NULL with length 0 is an empty input, NULL with data is not. */
    e = dps_base64_encode(NULL, 0);
    CHECK_STR(e, "");
    free(e);
    CHECK(dps_base64_encode(NULL, 3) == NULL);
}

static void check_b64_bad(const char *text)
{
    uint8_t *d = (uint8_t *)"untouched";
    size_t n = 77;

    if (dps_base64_decode(text, &d, &n) != -1) {
        fprintf(stderr, "accepted bad Base64 \"%s\"\n", text);
        testing_current_failed = 1;
        free(d);
        return;
    }
    /* Outputs stay as they were on failure. */
    CHECK(strcmp((const char *)d, "untouched") == 0);
    CHECK_INT(n, 77);
}

static void test_base64_strict(void)
{
    check_b64_bad("Zm9v!A==");   /* bad character */
    check_b64_bad("Zm9v-_==");   /* URL-safe alphabet */
    check_b64_bad("Zg");         /* padding missing */
    check_b64_bad("Zg=");        /* wrong length */
    check_b64_bad("Zm9vY");      /* wrong length */
    check_b64_bad("Zg===");      /* too much padding */
    check_b64_bad("Z===");       /* three pad characters */
    check_b64_bad("====");       /* padding only */
    check_b64_bad("Zg==Zm8=");   /* padding in the middle */
    check_b64_bad("Z=g=");       /* '=' between data */
    check_b64_bad("Zm9v\nYmFy"); /* embedded newline */
    check_b64_bad("Zm9v YmFy");  /* embedded space */
    check_b64_bad(" Zm9vYmFy");  /* leading space (EVP would skip it) */
    check_b64_bad("Zm9vYmFy ");  /* trailing space */
    check_b64_bad("Zm9vYmFy\n"); /* trailing newline */
}

static void test_base64_null_args(void)
{
    uint8_t *d = NULL;
    size_t n = 0;

    CHECK_INT(dps_base64_decode(NULL, &d, &n), -1);
    CHECK_INT(dps_base64_decode("Zg==", NULL, &n), -1);
    CHECK_INT(dps_base64_decode("Zg==", &d, NULL), -1);
    CHECK(d == NULL);
    /* Empty text decodes to a zero-length (but freeable) buffer. */
    CHECK_INT(dps_base64_decode("", &d, &n), 0);
    CHECK_INT(n, 0);
    free(d);
}

/* RFC 4648 §10 base32, lowercased and without the '=' padding. */
static void test_base32(void)
{
    static const char *const in[] = {"", "f", "fo", "foo", "foob",
                                     "fooba", "foobar"};
    static const char *const want[] = {"", "my", "mzxq", "mzxw6", "mzxw6yq",
                                       "mzxw6ytb", "mzxw6ytboi"};
    static const uint8_t ff[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    size_t i;
    char *s;

    for (i = 0; i < sizeof in / sizeof in[0]; i++) {
        s = dps_base32_lower((const uint8_t *)in[i], strlen(in[i]));
        CHECK_STR(s, want[i]);
        free(s);
    }
    s = dps_base32_lower(ff, sizeof ff);
    CHECK_STR(s, "7777777774"); /* last 3 bits 111 + 00 */
    free(s);
    CHECK(dps_base32_lower(NULL, 1) == NULL);
}

static void test_sha256_hmac(void)
{
    uint8_t d[32];
    char *s;

    CHECK_INT(dps_sha256((const uint8_t *)"abc", 3, d), 0);
    s = dps_base64_encode(d, 32); /* FIPS 180-2 "abc" vector */
    CHECK_STR(s, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
    free(s);
    CHECK_INT(dps_sha256(NULL, 0, d), 0);
    s = dps_base64_encode(d, 32); /* SHA-256 of nothing */
    CHECK_STR(s, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    free(s);
    CHECK_INT(dps_sha256(NULL, 1, d), -1);
    /* RFC 4231 test case 2: key "Jefe". */
    CHECK_INT(dps_hmac_sha256((const uint8_t *)"Jefe", 4,
                              (const uint8_t *)"what do ya want for nothing?",
                              28, d), 0);
    s = dps_base64_encode(d, 32);
    CHECK_STR(s, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
    free(s);
    CHECK_INT(dps_hmac_sha256(NULL, 0, NULL, 0, d), 0);
    s = dps_base64_encode(d, 32); /* empty key, empty message */
    CHECK_STR(s, "thNnmggU2ex3L5XXeMNfxf8Wl8STcVZTxscSFEKSxa0=");
    free(s);
    CHECK_INT(dps_hmac_sha256(NULL, 4, NULL, 0, d), -1);
}

static void test_random_and_wipe(void)
{
    uint8_t a[32], b[32], z[32] = {0};

    CHECK_INT(dps_random_bytes(a, sizeof a), 0);
    CHECK_INT(dps_random_bytes(b, sizeof b), 0);
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK_INT(dps_random_bytes(a, 0), 0);
    CHECK_INT(dps_random_bytes(NULL, 4), -1);
    dps_wipe(a, sizeof a);
    CHECK(memcmp(a, z, sizeof a) == 0);
    dps_wipe(NULL, 4); /* must not crash */
}

static void test_token_null_and_failures(void)
{
    struct capture c = {{0}, {0}, 0};
    dps_sas_key key = {(const uint8_t *)"k", 1};
    uint8_t mac[32];
    char *t;

    CHECK(dps_sas_token(NULL, 1, "registration", capture_sign, &c) == NULL);
    CHECK(dps_sas_token("r", 1, "registration", NULL, &c) == NULL);
    c.fail = 1; /* a failing signer (e.g. TPM error) yields no token */
    CHECK(dps_sas_token("r", 1, "registration", capture_sign, &c) == NULL);
    CHECK_INT(dps_sas_sign_with_key(NULL, (const uint8_t *)"m", 1, mac), -1);
    CHECK_INT(dps_sas_sign_with_key(&key, (const uint8_t *)"m", 1, NULL), -1);
    /* An empty resource is still signed ("\n1"), just not useful. */
    c.fail = 0;
    t = dps_sas_token("", 1, NULL, capture_sign, &c);
    CHECK_STR(c.msg, "\n1");
    CHECK(t && strncmp(t, "SharedAccessSignature sr=&sig=", 30) == 0);
    free(t);
}

static void test_skn_omitted(void)
{
    struct capture c = {{0}, {0}, 0};
    char *t = dps_sas_token("hub.example/devices/d1", 42, NULL,
                            capture_sign, &c);

    /* 32 zero bytes encode as 43 'A' and one '=' (%3d). */
    CHECK_STR(t, "SharedAccessSignature sr=hub.example%2fdevices%2fd1&sig="
                 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%3d&se=42");
    CHECK(t && strstr(t, "skn") == NULL);
    free(t);
    t = dps_sas_token("r", 42, "", capture_sign, &c);
    CHECK(t && strstr(t, "&se=42&skn=") != NULL);
    free(t);
}

static void test_derive_bad_input(void)
{
    char *k;

    CHECK(dps_derive_device_key(NULL, "id") == NULL);
    CHECK(dps_derive_device_key(KAT1_GROUP_KEY, NULL) == NULL);
    CHECK(dps_derive_device_key("not base64!", "id") == NULL);
    CHECK(dps_derive_device_key(KAT1_GROUP_KEY "\n", KAT1_REG_ID) == NULL);
    CHECK(dps_derive_device_key("", "id") == NULL);
    /* An empty registration id is signed as given. */
    k = dps_derive_device_key(KAT1_GROUP_KEY, "");
    CHECK(k && strlen(k) == 44);
    free(k);
}

int main(void)
{
    RUN(test_kat1_derived_key);
    RUN(test_kat2_hmac_base64);
    RUN(test_kat3_iot_hub_sig);
    RUN(test_kat3_own_format);
    RUN(test_kat4_string_to_sign);
    RUN(test_kat5_tpm_registration_id);
    RUN(test_computed_vectors);
    RUN(test_expiry_edges);
    RUN(test_url_encode);
    RUN(test_base64_rfc4648);
    RUN(test_base64_binary);
    RUN(test_base64_strict);
    RUN(test_base64_null_args);
    RUN(test_base32);
    RUN(test_sha256_hmac);
    RUN(test_random_and_wipe);
    RUN(test_token_null_and_failures);
    RUN(test_skn_omitted);
    RUN(test_derive_bad_input);
    return testing_done();
}
