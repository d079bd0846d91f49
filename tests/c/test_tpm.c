/*
 * dps_tpm_tss.c against a software TPM (swtpm). Run through
 *   tests/tpm/run-tpm-tests ./test_tpm
 * which starts a fresh swtpm and sets DPS_TEST_SWTPM_PORT and
 * DPS_TEST_REPO. Without the port the TPM tests are skipped.
 *
 * Blobs come from the emulator's independent Python implementation
 * (tools/dps-emulator/dps_tpm.py), so a pass means the C client and the
 * test service agree byte for byte on docs/protocol.md §6.
 */
#define _POSIX_C_SOURCE 200809L

#include "dps_crypto.h"
#include "dps_tpm.h"
#include "testing.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set once in main from the environment run-tpm-tests prepares. */
static char tcti[128];
static const char *repo = ".";
static char tmpdir[] = "/tmp/dps-test-tpm.XXXXXX";
static char *ek_b64, *srk_b64; /* this TPM's keys, set by test_keys */

/* A DPS string-to-sign (§6.3 step 3): what the TPM really signs. */
static const char *sign_msg =
    "0ne00111111%2fregistrations%2fmy-tpm-device\n1700000000";

/* ---- helpers --------------------------------------------------------- */

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (!f)
        return -1;
    ok = fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Whole file into a malloc'd buffer (NUL-terminated for text use). */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0, got;

    if (!f)
        return NULL;
    do {
        if (n + 4096 + 1 > cap) {
            uint8_t *nb = realloc(buf, cap = n + 8192);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, 4096, f);
        n += got;
    } while (got > 0);
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Runs a shell command, returns its first output line (malloc'd, no
 * newline) or NULL when it fails. */
static char *run_line(const char *cmd)
{
    char line[4096];
    FILE *p = popen(cmd, "r");
    char *res = NULL;

    if (!p)
        return NULL;
    if (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\r\n")] = 0;
        res = strdup(line);
    }
    while (fgets(line, sizeof line, p))
        ; /* drain so the child does not get SIGPIPE */
    if (pclose(p) != 0) {
        free(res);
        res = NULL;
    }
    return res;
}

/* Lowercase hex, for the CLI's --key argument; out holds 2n+1. */
static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = 0;
}

/* Blob for EK/SRK (Base64 TPM2B_PUBLIC) wrapping key, built by the
 * emulator's CLI. Returns malloc'd raw blob or NULL. */
static uint8_t *make_blob(const char *ek, const char *srk, const uint8_t *key,
                          size_t key_len, size_t *len)
{
    char ekf[256], srkf[256], out[256], key_hex[129], cmd[2048];
    uint8_t *blob;

    snprintf(ekf, sizeof ekf, "%s/ek.b64", tmpdir);
    snprintf(srkf, sizeof srkf, "%s/srk.b64", tmpdir);
    snprintf(out, sizeof out, "%s/blob.bin", tmpdir);
    if (key_len > 64 || write_file(ekf, ek, strlen(ek)) != 0 ||
        write_file(srkf, srk, strlen(srk)) != 0)
        return NULL;
    hex(key, key_len, key_hex);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/tools/dps-emulator/dps_tpm.py' blob "
             "--ek '%s' --srk '%s' --key %s --uri "
             "'https://example.test/identity' --out '%s'",
             repo, ekf, srkf, key_hex, out);
    if (system(cmd) != 0)
        return NULL;
    blob = read_file(out, len);
    unlink(out);
    return blob;
}

/* EK or SRK public of a software key: what "another TPM" would send. */
static char *fake_key(const char *template)
{
    char cmd[1024];

    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/tpm/fake-key' "
             "'%s' %s", repo, repo, template);
    return run_line(cmd);
}

/* The scratch folder holds only the files named here. */
static void remove_tmpdir(void)
{
    static const char *names[] = { "ek.b64", "srk.b64", "ek.tools",
                                   "blob.bin" };
    char path[256];
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

static dps_tpm *open_tpm(void)
{
    char err[256] = "";
    dps_tpm *tpm = NULL;

    if (dps_tpm_open(tcti, &tpm, err, sizeof err) != 0)
        fprintf(stderr, "open: %s\n", err);
    return tpm;
}

/* TPM HMAC of msg equals software HMAC-SHA256 with key. */
static int hmac_matches(dps_tpm *tpm, const uint8_t *key, size_t key_len,
                        const uint8_t *msg, size_t len)
{
    uint8_t got[32], want[32];
    char err[256] = "";

    if (dps_tpm_hmac(tpm, msg, len, got, err, sizeof err) != 0) {
        fprintf(stderr, "hmac: %s\n", err);
        return 0;
    }
    if (dps_hmac_sha256(key, key_len, msg, len, want) != 0)
        return 0;
    return memcmp(got, want, 32) == 0;
}

/* ---- tests ----------------------------------------------------------- */

/* KAT-5 (§5.5): the registration id recipe over the crypto seam. */
static void test_kat5_regid_recipe(void)
{
    static const char *ek =
        "AToAAQALAAMAsgAgg3GXZ0SEs/gakMyNRqXXJP1S124GUgtk8qHaGzMUaaoABgCAAEMA"
        "EAgAAAAAAAEAopqgkUBwtpr1sCgVJcEZxsJtpmtOAt9K7SjGFe4hsp6DJ/dd2E5UFzBC"
        "+Jp8Fzqf5ukRBkqrAgIuAvHRsruIedk1uarJSLhbDpFLHxFd7iDNcYfrvdgVNT2T9zrv"
        "kh2y04WuRQg2D5qf0tZF82jeTjR/YJK7uWhaRwWOwZ3b1XD9l6wFOrwK/Ic0PEsjneFX"
        "QzL0n9uKyuHmHNz+wHppmOiMAabvnXXEin9ou7/iowY/+YhFm3j7atsVvxMI5HEM3Mq+"
        "W4imUuzPxVX7fZH+oWPKP5ofpWBTf+MdttGby1AjGnv8JE69JriOYoZG2/4qbsfv9M7a"
        "7NFrBlaW7Rt36w==";
    uint8_t *raw = NULL, digest[32];
    size_t len = 0;
    char *id;

    CHECK(dps_base64_decode(ek, &raw, &len) == 0);
    CHECK_INT(len, 316);
    CHECK(dps_sha256(raw, len, digest) == 0);
    id = dps_base32_lower(digest, sizeof digest);
    CHECK_STR(id, "6rek5qncnygnkzflohxz4u6zlfly6ktm4klsc7xrbgvesqyllnfa");
    free(id);
    free(raw);
}

/* Nothing listens on port 1: the error must name the TCTI string, since
 * that is what the user configured and has to fix. */
static void test_unreachable_tcti(void)
{
    char err[512] = "";
    dps_tpm *tpm = (dps_tpm *)&err; /* must be reset to NULL */

    CHECK(dps_tpm_open("swtpm:host=127.0.0.1,port=1", &tpm, err,
                       sizeof err) == -1);
    CHECK(tpm == NULL);
    CHECK(strstr(err, "cannot reach the TPM via TCTI "
                      "'swtpm:host=127.0.0.1,port=1': ") == err);
    CHECK(strlen(err) > strlen("cannot reach the TPM via TCTI "
                               "'swtpm:host=127.0.0.1,port=1': "));
    /* Without a device the default must be named too. */
    if (access("/dev/tpmrm0", F_OK) != 0) {
        CHECK(dps_tpm_open(NULL, &tpm, err, sizeof err) == -1);
        CHECK(strstr(err, "'device:/dev/tpmrm0'") != NULL);
    }
    /* Unknown TCTI module: also an error, not a crash. */
    CHECK(dps_tpm_open("no-such-tcti:x", &tpm, err, sizeof err) == -1);
    CHECK(strstr(err, "'no-such-tcti:x'") != NULL);
    /* A tiny or absent error buffer must be safe. */
    CHECK(dps_tpm_open("swtpm:host=127.0.0.1,port=1", &tpm, err, 4) == -1);
    CHECK_INT(strlen(err), 3);
    CHECK(dps_tpm_open("swtpm:host=127.0.0.1,port=1", &tpm, NULL, 0) == -1);
    dps_tpm_close(NULL);
}

/* Runs first on the fresh swtpm: nothing is persisted yet. */
static void test_hmac_without_key(void)
{
    dps_tpm *tpm = open_tpm();
    char err[256] = "";
    uint8_t mac[32];

    CHECK(tpm != NULL);
    if (!tpm)
        return;
    CHECK(dps_tpm_hmac(tpm, (const uint8_t *)"x", 1, mac, err,
                       sizeof err) == -1);
    CHECK(strstr(err, "no identity key at 0x81000100") != NULL);
    dps_tpm_close(tpm);
}

static void check_srk_layout(const char *b64)
{
    static const uint8_t head[] = {
        0x01, 0x1A, 0x00, 0x01, 0x00, 0x0B, 0x00, 0x03, 0x04, 0x72,
        0x00, 0x00, 0x00, 0x06, 0x00, 0x80, 0x00, 0x43, 0x00, 0x10,
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    };
    uint8_t *raw = NULL;
    size_t len = 0;

    CHECK(dps_base64_decode(b64, &raw, &len) == 0);
    CHECK_INT(len, 284);
    CHECK(raw && len >= sizeof head && memcmp(raw, head, sizeof head) == 0);
    free(raw);
}

static void check_ek_layout(const char *b64)
{
    static const uint8_t tail_of_head[] = {
        0x00, 0x06, 0x00, 0x80, 0x00, 0x43, 0x00, 0x10,
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    };
    uint8_t *raw = NULL;
    size_t len = 0;

    CHECK(strncmp(b64, "AToAAQALAAMAsgAg", 16) == 0);
    CHECK(dps_base64_decode(b64, &raw, &len) == 0);
    CHECK_INT(len, 316);
    /* size, type, nameAlg, attrs, 0x0020 + 32-byte policy, then params */
    CHECK(raw && len == 316 &&
          memcmp(raw + 12 + 32, tail_of_head, sizeof tail_of_head) == 0);
    CHECK(raw && len == 316 && raw[12] == 0x83 && raw[12 + 31] == 0xaa);
    free(raw);
}

/* Cross-check with tpm2-tools: the persisted EK reads back identically. */
static void check_with_tpm2_readpublic(const char *b64)
{
    char cmd[1024], path[256];
    uint8_t *ours = NULL, *theirs;
    size_t our_len = 0, their_len = 0;

    if (access("/usr/bin/tpm2_readpublic", X_OK) != 0)
        return;
    snprintf(path, sizeof path, "%s/ek.tools", tmpdir);
    snprintf(cmd, sizeof cmd, "tpm2_readpublic -T '%s' -c 0x81010001 -o "
             "'%s' >/dev/null 2>&1", tcti, path);
    CHECK(system(cmd) == 0);
    theirs = read_file(path, &their_len);
    CHECK(dps_base64_decode(b64, &ours, &our_len) == 0);
    CHECK(theirs && their_len == our_len &&
          memcmp(theirs, ours, our_len) == 0);
    free(theirs);
    free(ours);
}

static void test_keys_created_and_persisted(void)
{
    char err[256] = "", *ek2 = NULL, *srk2 = NULL;
    dps_tpm *tpm = open_tpm();

    CHECK(tpm != NULL);
    if (!tpm)
        return;
    CHECK(dps_tpm_public_keys(tpm, &ek_b64, &srk_b64, err, sizeof err) == 0);
    if (!ek_b64 || !srk_b64) {
        fprintf(stderr, "public_keys: %s\n", err);
        dps_tpm_close(tpm);
        return;
    }
    check_ek_layout(ek_b64);
    check_srk_layout(srk_b64);
    dps_tpm_close(tpm);

    /* A second session finds the persisted objects, same bytes. */
    tpm = open_tpm();
    CHECK(tpm != NULL);
    if (!tpm)
        return;
    CHECK(dps_tpm_public_keys(tpm, &ek2, &srk2, err, sizeof err) == 0);
    CHECK_STR(ek2, ek_b64);
    CHECK_STR(srk2, srk_b64);
    free(ek2);
    free(srk2);
    dps_tpm_close(tpm);
    check_with_tpm2_readpublic(ek_b64);
}

static void test_registration_id(void)
{
    char err[256] = "", *id = NULL, *py, cmd[1024], ekf[256];
    dps_tpm *tpm = open_tpm();
    size_t i;

    CHECK(tpm != NULL);
    if (!tpm || !ek_b64) {
        dps_tpm_close(tpm);
        return;
    }
    CHECK(dps_tpm_registration_id(tpm, &id, err, sizeof err) == 0);
    CHECK(id && strlen(id) == 52);
    for (i = 0; id && id[i]; i++)
        CHECK((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '2' &&
                                                 id[i] <= '7'));
    /* The emulator derives the same id from the same EK. */
    snprintf(ekf, sizeof ekf, "%s/ek.b64", tmpdir);
    CHECK(write_file(ekf, ek_b64, strlen(ek_b64)) == 0);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 "
             "'%s/tools/dps-emulator/dps_tpm.py' regid --ek '%s'", repo, ekf);
    py = run_line(cmd);
    CHECK_STR(id, py);
    free(py);
    free(id);
    dps_tpm_close(tpm);
}

static const uint8_t key1[32] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};
static const uint8_t key2[32] = {
    0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
    0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x10, 0x20,
    0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0,
};

/* Builds a blob for this TPM wrapping key and imports it. */
static int import_ok(dps_tpm *tpm, const uint8_t *key)
{
    char err[512] = "";
    size_t len = 0;
    uint8_t *blob = make_blob(ek_b64, srk_b64, key, 32, &len);
    int r;

    if (!blob) {
        fprintf(stderr, "could not build a blob with dps_tpm.py\n");
        return 0;
    }
    r = dps_tpm_import_key(tpm, blob, len, err, sizeof err);
    if (r != 0)
        fprintf(stderr, "import: %s\n", err);
    free(blob);
    return r == 0;
}

/* The core round trip: emulator blob -> ActivateCredential/Import ->
 * TPM HMAC equal to software HMAC with the key the emulator wrapped. */
static void test_import_and_hmac(void)
{
    const uint8_t *m = (const uint8_t *)sign_msg;
    size_t sizes[] = { 0, 1, 1023, 1024, 1025, 2048, 2049, 5000 };
    uint8_t *big = malloc(5000);
    dps_tpm *tpm = open_tpm();
    size_t i;

    CHECK(tpm != NULL && big != NULL);
    if (!tpm || !big || !ek_b64) {
        dps_tpm_close(tpm);
        free(big);
        return;
    }
    CHECK(import_ok(tpm, key1));
    CHECK(hmac_matches(tpm, key1, 32, m, strlen(sign_msg)));
    /* Both sides of the one-shot / sequence boundary (1024 bytes). */
    for (i = 0; i < 5000; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        CHECK(hmac_matches(tpm, key1, 32, big, sizes[i]));
    free(big);
    dps_tpm_close(tpm);

    /* The key survives closing: it is persistent. */
    tpm = open_tpm();
    CHECK(tpm && hmac_matches(tpm, key1, 32, m, strlen(sign_msg)));
    dps_tpm_close(tpm);
}

/* A second blob (the hub key of §6.3 step 5) replaces the first. */
static void test_second_import_replaces(void)
{
    const uint8_t *m = (const uint8_t *)sign_msg;
    dps_tpm *tpm = open_tpm();

    if (!tpm || !ek_b64) {
        CHECK(0);
        dps_tpm_close(tpm);
        return;
    }
    CHECK(import_ok(tpm, key2));
    CHECK(hmac_matches(tpm, key2, 32, m, strlen(sign_msg)));
    CHECK(!hmac_matches(tpm, key1, 32, m, strlen(sign_msg)));
    /* Repeated imports leave no session or transient object behind. */
    CHECK(import_ok(tpm, key1));
    CHECK(import_ok(tpm, key2));
    CHECK(hmac_matches(tpm, key2, 32, m, strlen(sign_msg)));
    dps_tpm_close(tpm);
}

/* Import a blob expected to fail; err must contain want. */
static void import_fails(dps_tpm *tpm, const uint8_t *blob, size_t len,
                         const char *want)
{
    char err[512] = "";

    CHECK(dps_tpm_import_key(tpm, blob, len, err, sizeof err) == -1);
    if (getenv("DPS_TEST_VERBOSE"))
        fprintf(stderr, "  import error: %s\n", err);
    if (!strstr(err, want)) {
        fprintf(stderr, "  error was: %s\n  expected: ...%s...\n", err,
                want);
        CHECK(0);
    }
}

static void test_blob_for_other_tpm(void)
{
    const uint8_t *m = (const uint8_t *)sign_msg;
    char *fake_ek = fake_key("ek"), *fake_srk = fake_key("srk");
    uint8_t *blob;
    dps_tpm *tpm = open_tpm();
    size_t len = 0;

    CHECK(fake_ek && fake_srk && tpm);
    if (!fake_ek || !fake_srk || !tpm || !ek_b64)
        goto out;
    /* Another TPM's EK: the TPM cannot decrypt the secret. */
    blob = make_blob(fake_ek, srk_b64, key1, 32, &len);
    CHECK(blob != NULL);
    if (blob)
        import_fails(tpm, blob, len, "ActivateCredential (the blob was not "
                     "made for this TPM's EK/SRK) failed: ");
    free(blob);
    /* Right EK, another SRK: the credential is bound to the wrong Name. */
    blob = make_blob(ek_b64, fake_srk, key1, 32, &len);
    CHECK(blob != NULL);
    if (blob)
        import_fails(tpm, blob, len, "ActivateCredential (the blob was not "
                     "made for this TPM's EK/SRK) failed: ");
    free(blob);
    /* A failed import keeps the previous key (key2, from above). */
    CHECK(hmac_matches(tpm, key2, 32, m, strlen(sign_msg)));
out:
    free(fake_ek);
    free(fake_srk);
    dps_tpm_close(tpm);
}

/* Offsets of items 1..6 and the end of item 5 in a well-formed blob. */
static size_t item_offset(const uint8_t *blob, size_t len, int item)
{
    size_t off = 0;
    int i;

    for (i = 1; i < item && off + 2 <= len; i++)
        off += 2 + ((size_t)blob[off] << 8 | blob[off + 1]);
    return off;
}

static void test_malformed_blobs(void)
{
    const uint8_t *m = (const uint8_t *)sign_msg;
    uint8_t *blob, *copy;
    size_t len = 0, end5, n;
    dps_tpm *tpm = open_tpm();
    int item;

    if (!tpm || !ek_b64) {
        CHECK(0);
        dps_tpm_close(tpm);
        return;
    }
    blob = make_blob(ek_b64, srk_b64, key1, 32, &len);
    copy = malloc(len + 16);
    CHECK(blob && copy);
    if (!blob || !copy)
        goto out;
    import_fails(tpm, NULL, 0, "malformed authenticationKey blob");
    import_fails(tpm, blob, 0, "malformed authenticationKey blob");
    /* Every truncation before the end of item 5: each must stop in the
     * parser (the message says so), none may reach the TPM or crash. */
    end5 = item_offset(blob, len, 6);
    CHECK(end5 > 0 && end5 <= len);
    for (n = 0; n < end5; n++)
        import_fails(tpm, blob, n, "malformed authenticationKey blob");
    /* Each size field claiming 0xFFFF, then one byte more than is left
     * (both past the end of the blob), then exactly what is left (inside
     * the blob, but larger than the item's TPM2B buffer). */
    for (item = 1; item <= 5; item++) {
        size_t off = item_offset(blob, len, item);
        size_t rest = len - off - 2;

        memcpy(copy, blob, len);
        copy[off] = 0xFF;
        copy[off + 1] = 0xFF;
        import_fails(tpm, copy, len, "malformed authenticationKey blob");
        copy[off] = (uint8_t)((rest + 1) >> 8);
        copy[off + 1] = (uint8_t)(rest + 1);
        import_fails(tpm, copy, len, "malformed authenticationKey blob");
        copy[off] = (uint8_t)(rest >> 8);
        copy[off + 1] = (uint8_t)rest;
        import_fails(tpm, copy, len, "malformed authenticationKey blob");
    }
    /* Tampered contents reach the TPM, which refuses them. */
    memcpy(copy, blob, len);
    copy[item_offset(blob, len, 1) + 10] ^= 1;
    import_fails(tpm, copy, len, "ActivateCredential");
    memcpy(copy, blob, len);
    copy[item_offset(blob, len, 3) + 40] ^= 1;
    import_fails(tpm, copy, len, "Import");
    /* Item 5: a size inside the public area (authPolicy) no longer agrees
     * with the item's size; then a flipped bit in its unique field. */
    memcpy(copy, blob, len);
    copy[item_offset(blob, len, 5) + 10] ^= 1;
    import_fails(tpm, copy, len, "item 5 of 6");
    memcpy(copy, blob, len);
    copy[end5 - 1] ^= 1;
    import_fails(tpm, copy, len, "Import");
    /* Item 6 is not used: cut, absent or followed by junk is fine. */
    CHECK(dps_tpm_import_key(tpm, blob, end5, NULL, 0) == 0);
    CHECK(dps_tpm_import_key(tpm, blob, end5 + 1, NULL, 0) == 0);
    memcpy(copy, blob, len);
    memset(copy + len, 0xA5, 16);
    CHECK(dps_tpm_import_key(tpm, copy, len + 16, NULL, 0) == 0);
    CHECK(hmac_matches(tpm, key1, 32, m, strlen(sign_msg)));
out:
    free(blob);
    free(copy);
    dps_tpm_close(tpm);
}

/* After all of the above, nothing may be left loaded in the TPM: the
 * policy sessions and transient objects were flushed on every path. */
static void test_nothing_left_loaded(void)
{
    const char *caps[] = { "handles-loaded-session", "handles-transient" };
    char cmd[512], *line;
    size_t i;

    if (access("/usr/bin/tpm2_getcap", X_OK) != 0)
        return;
    for (i = 0; i < 2; i++) {
        /* tpm2_getcap prints nothing (exit 0) for an empty list. */
        snprintf(cmd, sizeof cmd, "tpm2_getcap -T '%s' %s 2>&1; echo END",
                 tcti, caps[i]);
        line = run_line(cmd);
        CHECK_STR(line, "END");
        free(line);
    }
}

/* A second, private swtpm (through the helper scripts) that dies under
 * an open handle: every call then fails with a message, nothing crashes. */
static void test_tpm_goes_away(void)
{
    char cmd[1024], conf[128], err[256] = "", *port, *ek = NULL, *srk = NULL;
    dps_tpm *tpm = NULL;
    uint8_t mac[32];

    snprintf(cmd, sizeof cmd, "'%s/tests/tpm/swtpm-start' '%s/second'", repo,
             tmpdir);
    port = run_line(cmd);
    CHECK(port != NULL);
    if (!port)
        return;
    snprintf(conf, sizeof conf, "swtpm:host=127.0.0.1,port=%s", port);
    CHECK(strcmp(conf, tcti) != 0);
    CHECK(dps_tpm_open(conf, &tpm, err, sizeof err) == 0);
    snprintf(cmd, sizeof cmd, "'%s/tests/tpm/swtpm-stop' '%s/second'; "
             "rm -rf '%s/second'", repo, tmpdir, tmpdir);
    CHECK(system(cmd) == 0);
    if (tpm) {
        CHECK(dps_tpm_public_keys(tpm, &ek, &srk, err, sizeof err) == -1);
        CHECK(ek == NULL && srk == NULL && err[0] != 0);
        CHECK(dps_tpm_hmac(tpm, (const uint8_t *)"x", 1, mac, err,
                           sizeof err) == -1);
        CHECK(dps_tpm_import_key(tpm, (const uint8_t *)"\0\0", 2, err,
                                 sizeof err) == -1);
    }
    dps_tpm_close(tpm);
    free(port);
}

/* Linked with dps_tpm_none.c (TPM=0) instead of dps_tpm_tss.c. */
static void test_build_without_tpm(void)
{
    char err[256] = "", *ek = (char *)err, *srk = (char *)err;
    dps_tpm *tpm = (dps_tpm *)err;
    uint8_t mac[32];

    CHECK(dps_tpm_open("swtpm:port=2321", &tpm, err, sizeof err) == -1);
    CHECK(tpm == NULL);
    CHECK_STR(err, "this dps build has no TPM support (built with TPM=0)");
    CHECK(dps_tpm_public_keys(NULL, &ek, &srk, err, sizeof err) == -1);
    CHECK(ek == NULL && srk == NULL);
    CHECK(dps_tpm_hmac(NULL, mac, 0, mac, err, sizeof err) == -1);
    CHECK(dps_tpm_import_key(NULL, mac, 0, NULL, 0) == -1);
    dps_tpm_close(NULL);
}

int main(void)
{
    const char *port = getenv("DPS_TEST_SWTPM_PORT");

    if (!dps_tpm_available()) {
        RUN(test_build_without_tpm);
        return testing_done();
    }
    if (!port || !*port) {
        fprintf(stderr, "test_tpm: DPS_TEST_SWTPM_PORT not set, skipping "
                "(run it through tests/tpm/run-tpm-tests)\n");
        return testing_done();
    }
    if (getenv("DPS_TEST_REPO"))
        repo = getenv("DPS_TEST_REPO");
    snprintf(tcti, sizeof tcti, "swtpm:host=127.0.0.1,port=%s", port);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_kat5_regid_recipe);
    RUN(test_unreachable_tcti);
    RUN(test_hmac_without_key);
    RUN(test_keys_created_and_persisted);
    RUN(test_registration_id);
    RUN(test_import_and_hmac);
    RUN(test_second_import_replaces);
    RUN(test_blob_for_other_tpm);
    RUN(test_malformed_blobs);
    RUN(test_nothing_left_loaded);
    RUN(test_tpm_goes_away);
    free(ek_b64);
    free(srk_b64);
    remove_tmpdir();
    return testing_done();
}
