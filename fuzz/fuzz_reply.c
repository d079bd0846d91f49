/*
 * libFuzzer target: arbitrary bytes as the service's answers.
 *
 *   clang -g -fsanitize=fuzzer,address,undefined -Icsrc fuzz/fuzz_reply.c \
 *       csrc/prov_sm.c csrc/prov_json.c csrc/dps_encoding.c \
 *       $(pkg-config --cflags --libs json-c)
 *
 * Input layout: byte 0 picks the config (TPM or not, tiny limits so that
 * give-up paths are reached); then up to four answers separated by the
 * byte 0xff, each "<status byte><body bytes...>". The same bytes also
 * go through the reply parser and the payload validator, which must
 * never crash, leak or read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prov_json.h"
#include "prov_sm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Statuses worth hitting often; other bytes map to 100..355. */
static long pick_status(uint8_t b)
{
    static const long common[] = {200, 202, 401, 403, 404, 429, 500, 503, 400, 204, 302, 0};
    if (b < 2 * (sizeof common / sizeof common[0]))
        return common[b / 2];
    return 100 + (long)b;
}

/* The bytes as a NUL-terminated string, for the text-taking APIs. */
static char *as_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

static void check_text_apis(const uint8_t *data, size_t size)
{
    prov_reply r;
    if (prov_json_parse_reply((const char *)data, size, &r) == 0)
        prov_reply_free(&r);
    char *text = as_text(data, size);
    if (!text)
        return;
    int valid = prov_json_is_valid(text);
    char *body = prov_json_register_body("dev", "EK", "SRK", text);
    /* A valid payload must always make a body, an invalid one never. */
    if ((body != NULL) != (valid == 1))
        abort();
    free(body);
    free(text);
}

/* Feeds one answer to the sm as if it were in flight. */
static void feed(prov_sm *sm, uint64_t *now, const uint8_t *chunk, size_t len)
{
    prov_sm_action a = prov_sm_next(sm, *now);
    if (a.kind == PROV_ACT_CHALLENGE)
        prov_sm_challenge_done(sm, *now, PROV_DEVICE_RESULT_OK, NULL);
    a = prov_sm_next(sm, *now);
    if (a.kind == PROV_ACT_WAIT && a.at_ms != UINT64_MAX)
        *now = a.at_ms;
    a = prov_sm_next(sm, *now);
    if (a.kind != PROV_ACT_SEND || len == 0)
        return;
    char *path = prov_sm_request_path(sm, "0ne0011", "dev:1", "2021-06-01");
    free(path);
    prov_sm_sent(sm, *now);
    prov_sm_response resp;
    memset(&resp, 0, sizeof resp);
    resp.status = pick_status(chunk[0]);
    resp.body = (const char *)chunk + 1;
    resp.body_len = len - 1;
    resp.retry_after_s = (chunk[0] & 1) ? (int64_t)(chunk[0] >> 1) * 3 : -1;
    *now += 50;
    prov_sm_on_response(sm, *now, &resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    check_text_apis(data + 1, size - 1);

    prov_sm_config cfg;
    prov_sm_config_defaults(&cfg);
    cfg.tpm = data[0] & 1;
    cfg.max_retries = 1 + (data[0] >> 1 & 3);
    cfg.max_challenges = data[0] >> 3 & 3;
    cfg.random_seed = data[0];
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    uint64_t now = 0;
    const uint8_t *p = data + 1, *end = data + size;
    for (int i = 0; i < 4 && p < end; i++) {
        const uint8_t *sep = memchr(p, 0xff, (size_t)(end - p));
        size_t len = sep ? (size_t)(sep - p) : (size_t)(end - p);
        feed(&sm, &now, p, len);
        p += len + (sep != NULL);
    }
    /* Run the sm to its end (deadline at the latest). */
    for (int i = 0; i < 8; i++) {
        prov_sm_action a = prov_sm_next(&sm, now);
        if (a.kind == PROV_ACT_WAIT)
            now = a.at_ms == UINT64_MAX ? now + 1 : a.at_ms;
        else if (a.kind == PROV_ACT_SEND)
            prov_sm_sent(&sm, now);
        else if (a.kind == PROV_ACT_CHALLENGE)
            prov_sm_challenge_done(&sm, now, PROV_DEVICE_RESULT_KEY_ERROR, "x");
    }
    /* Messages are always terminated and free of control bytes. */
    if (!memchr(sm.error.message, '\0', sizeof sm.error.message))
        abort();
    for (const char *m = sm.error.message; *m; m++)
        if ((unsigned char)*m < 0x20)
            abort();
    prov_sm_reset(&sm);
    return 0;
}
