/*
 * Unit tests of the registration state machine (prov_sm.c) with fake
 * times and fixed seeds: nothing sleeps, nothing touches the network.
 * SRS_* ids name the official client's requirements a test traces.
 */
#include <stdlib.h>
#include <string.h>

#include "dps_http.h"
#include "prov_sm.h"
#include "testing.h"

#define OP_A "5.316aac5bdc130deb.b1e02da8-c3a0-4ff2-a121-7ea7a6b7f550"
#define ASSIGNING_A "{\"operationId\":\"" OP_A "\",\"status\":\"assigning\"}"
#define ASSIGNED                                                                       \
    "{\"operationId\":\"" OP_A "\",\"status\":\"assigned\",\"registrationState\":{"  \
    "\"registrationId\":\"dev\",\"assignedHub\":\"hub.azure-devices.net\","          \
    "\"deviceId\":\"dev\",\"status\":\"assigned\",\"payload\":{\"k\":1}}}"
#define ASSIGNED_TPM                                                                   \
    "{\"operationId\":\"" OP_A "\",\"status\":\"assigned\",\"registrationState\":{"  \
    "\"assignedHub\":\"hub.azure-devices.net\",\"deviceId\":\"dev\","                \
    "\"tpm\":{\"authenticationKey\":\"SFVCS0VZ\"}}}"
#define CHALLENGE_BODY "{\"authenticationKey\":\"QkxPQg==\",\"keyName\":\"registration\"}"

/* Defaults with jitter off and a fixed seed: delays are exact. */
static prov_sm_config test_cfg(void)
{
    prov_sm_config cfg;
    prov_sm_config_defaults(&cfg);
    cfg.jitter_max_ms = 0;
    cfg.random_seed = 12345;
    return cfg;
}

/* An answer as the transport hands it over: Retry-After already read
 * (by the transport's own parser), as seconds or -1. */
static prov_sm_response reply(long status, const char *retry_after, const char *body)
{
    prov_sm_response r;
    memset(&r, 0, sizeof r);
    r.status = status;
    r.retry_after_s = dps_http_retry_after_s(retry_after, NULL, 1700000000);
    r.body = body;
    r.body_len = body ? strlen(body) : 0;
    return r;
}

/* Expects SEND of `kind` at now, and sends it. */
static void expect_send(prov_sm *sm, uint64_t now, prov_request_kind kind)
{
    prov_sm_action a = prov_sm_next(sm, now);
    CHECK_INT(a.kind, PROV_ACT_SEND);
    CHECK_INT(a.request, kind);
    prov_sm_sent(sm, now);
    CHECK_INT(sm->state, PROV_SM_IN_FLIGHT);
}

static void answer(prov_sm *sm, uint64_t now, long status, const char *ra, const char *body)
{
    prov_sm_response r = reply(status, ra, body);
    prov_sm_on_response(sm, now, &r);
}

/* Expects a WAIT until exactly `at`. */
static void expect_wait(prov_sm *sm, uint64_t now, uint64_t at)
{
    prov_sm_action a = prov_sm_next(sm, now);
    CHECK_INT(a.kind, PROV_ACT_WAIT);
    CHECK_INT(a.at_ms, at);
}

/* Expects DONE once, then NONE. */
static void expect_done(prov_sm *sm, uint64_t now, PROV_DEVICE_RESULT result)
{
    CHECK_INT(prov_sm_next(sm, now).kind, PROV_ACT_DONE);
    CHECK_INT(prov_sm_next(sm, now).kind, PROV_ACT_NONE);
    CHECK_INT(sm->error.result, result);
}

/* Drives one request/answer: SEND at now, answer at now + 100. */
static void exchange(prov_sm *sm, uint64_t now, prov_request_kind kind, long status,
                     const char *ra, const char *body)
{
    expect_send(sm, now, kind);
    answer(sm, now + 100, status, ra, body);
}

static void test_defaults(void)
{
    prov_sm_config cfg;
    prov_sm_config_defaults(&cfg);
    CHECK_INT(cfg.deadline_ms, 300000);
    CHECK_INT(cfg.default_poll_ms, 2000);
    CHECK_INT(cfg.backoff_min_ms, 1000);
    CHECK_INT(cfg.backoff_max_ms, 100000);
    CHECK_INT(cfg.jitter_max_ms, 5000);
    CHECK_INT(cfg.retry_after_min_s, 1);
    CHECK_INT(cfg.retry_after_max_s, 300);
    CHECK_INT(cfg.max_retries, 10);
    CHECK_INT(cfg.max_challenges, 2);
    CHECK(!cfg.tpm);
    prov_sm sm;
    prov_sm_init(&sm, NULL); /* NULL config means the defaults */
    CHECK_INT(sm.cfg.deadline_ms, 300000);
    CHECK(sm.rng != 0);
    CHECK_INT(sm.state, PROV_SM_IDLE);
    CHECK_INT(prov_sm_next(&sm, 0).kind, PROV_ACT_NONE);
    prov_sm_reset(&sm);
}

/* SRS_PROV_CLIENT_07_032: 200/202 assigning → operation status polling,
 * after exactly the Retry-After, then the assignment. */
static void test_happy_path(void)
{
    prov_sm_config cfg = test_cfg();
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 1000);
    CHECK_INT(sm.state, PROV_SM_WAITING);
    exchange(&sm, 1000, PROV_REQ_REGISTER, 202, "3", ASSIGNING_A);
    CHECK(sm.saw_assigning);
    CHECK_STR(sm.result.operation_id, OP_A);
    CHECK_STR(sm.result.status, "assigning");
    expect_wait(&sm, 1100, 4100);
    expect_wait(&sm, 4099, 4100);
    exchange(&sm, 4100, PROV_REQ_POLL, 200, NULL, ASSIGNED);
    CHECK_INT(sm.state, PROV_SM_ASSIGNED);
    expect_done(&sm, 4200, PROV_DEVICE_RESULT_OK);
    CHECK_STR(sm.result.assigned_hub, "hub.azure-devices.net");
    CHECK_STR(sm.result.device_id, "dev");
    CHECK_STR(sm.result.payload_json, "{\"k\":1}");
    CHECK_STR(sm.result.status, "assigned");
    CHECK(sm.result.registration_state_json &&
          strstr(sm.result.registration_state_json, "\"assignedHub\"") != NULL);
    CHECK(sm.result.hub_key_b64 == NULL);
    CHECK_INT(sm.error.http_status, 0);
    CHECK_STR(sm.error.message, "");
    /* Finished: answers are ignored, nothing more to do. */
    answer(&sm, 5000, 500, NULL, NULL);
    CHECK_INT(sm.state, PROV_SM_ASSIGNED);
    CHECK_INT(prov_sm_next(&sm, 9999999).kind, PROV_ACT_NONE);
    prov_sm_reset(&sm);
    CHECK_INT(sm.state, PROV_SM_IDLE);
    CHECK(sm.result.assigned_hub == NULL);
}

/* A 200 assigned right away, and any 2xx with a usable body counts. */
static void test_immediate_assignment_and_other_2xx(void)
{
    prov_sm_config cfg = test_cfg();
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 201, NULL, ASSIGNING_A);
    expect_wait(&sm, 100, 2100); /* no Retry-After: default_poll_ms */
    exchange(&sm, 2100, PROV_REQ_POLL, 203, NULL, ASSIGNED);
    expect_done(&sm, 2200, PROV_DEVICE_RESULT_OK);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 200, NULL, ASSIGNED);
    expect_done(&sm, 100, PROV_DEVICE_RESULT_OK);
    CHECK(!sm.saw_assigning);
    prov_sm_reset(&sm);
}

/* §9 #2: Retry-After is clamped to [1, 300] s, never reset to 1. */
static void test_retry_after_clamping(void)
{
    static const struct {
        const char *ra;
        uint64_t wait;
    } cases[] = {
        {"0", 1000},     {"1", 1000},        {"600", 300000}, {"300", 300000},
        {" 7 ", 7000},   {"soon", 2000},     {"", 2000},      {"3.5", 2000},
        {"-4", 2000},    {"99999999999999999999999", 300000}, {NULL, 2000},
    };
    prov_sm_config cfg = test_cfg();
    cfg.deadline_ms = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        prov_sm sm;
        prov_sm_init(&sm, &cfg);
        prov_sm_start(&sm, 0);
        exchange(&sm, 0, PROV_REQ_REGISTER, 202, cases[i].ra, ASSIGNING_A);
        expect_wait(&sm, 100, 100 + cases[i].wait);
        prov_sm_reset(&sm);
    }
}

/* An HTTP-date Retry-After, read by the transport against the answer's
 * Date header (or the wall clock without one), is waited out as given. */
static void test_retry_after_http_date(void)
{
    const char *ra = "Sun, 06 Nov 1994 08:49:47 GMT";
    prov_sm_config cfg = test_cfg();
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    expect_send(&sm, 0, PROV_REQ_REGISTER);
    prov_sm_response r = reply(202, NULL, ASSIGNING_A);
    r.retry_after_s =
        dps_http_retry_after_s(ra, "Sun, 06 Nov 1994 08:49:37 GMT", 0);
    prov_sm_on_response(&sm, 100, &r);
    expect_wait(&sm, 100, 10100);
    expect_send(&sm, 10100, PROV_REQ_POLL);
    r.retry_after_s = dps_http_retry_after_s(ra, NULL, 784111777 - 20);
    prov_sm_on_response(&sm, 10200, &r);
    expect_wait(&sm, 10200, 10200 + 30000);
    prov_sm_reset(&sm);
}

/* §9 #15/#19: 429 is retried after its Retry-After, then all goes on. */
static void test_429_then_success(void)
{
    prov_sm_config cfg = test_cfg();
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 429, "7",
             "{\"errorCode\":429001,\"message\":\"Too many requests\",\"trackingId\":\"t1\"}");
    CHECK_INT(sm.state, PROV_SM_WAITING);
    CHECK_INT(sm.retries, 1);
    CHECK_INT(sm.error.http_status, 429);
    CHECK_INT(sm.error.service_error_code, 429001);
    CHECK_STR(sm.error.tracking_id, "t1");
    CHECK_STR(sm.error.message, "HTTP 429: Too many requests (errorCode 429001)");
    expect_wait(&sm, 100, 7100);
    exchange(&sm, 7100, PROV_REQ_REGISTER, 202, "2", ASSIGNING_A);
    CHECK_INT(sm.retries, 0);
    CHECK_INT(sm.error.http_status, 0); /* a good answer clears it */
    /* 429 on a poll: the poll is repeated, not the register. */
    exchange(&sm, 9200, PROV_REQ_POLL, 429, NULL, NULL);
    expect_wait(&sm, 9300, 10300); /* backoff_min_ms */
    exchange(&sm, 10300, PROV_REQ_POLL, 200, NULL, ASSIGNED);
    expect_done(&sm, 10400, PROV_DEVICE_RESULT_OK);
    prov_sm_reset(&sm);
}

/* Exponential backoff without Retry-After, capped at backoff_max_ms. */
static void test_backoff_exponential(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.deadline_ms = 0;
    cfg.max_retries = 20;
    cfg.backoff_max_ms = 20000;
    static const uint64_t want[] = {1000, 2000, 4000, 8000, 16000, 20000, 20000, 20000};
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    uint64_t now = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        exchange(&sm, now, PROV_REQ_REGISTER, i % 2 ? 500 : 503, NULL, "oops");
        now += 100;
        expect_wait(&sm, now, now + want[i]);
        now += want[i];
    }
    prov_sm_reset(&sm);
}

/* Jitter is in [0, min(jitter_max_ms, delay)] and reproducible from
 * the seed. */
static void test_backoff_jitter(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.deadline_ms = 0;
    cfg.jitter_max_ms = 5000;
    cfg.max_retries = 100;
    cfg.backoff_max_ms = 1000;
    uint64_t first[50];
    bool varies = false;
    for (int run = 0; run < 3; run++) {
        if (run == 2)
            cfg.random_seed = 999;
        prov_sm sm;
        prov_sm_init(&sm, &cfg);
        prov_sm_start(&sm, 0);
        bool same = true;
        for (int i = 0; i < 50; i++) {
            exchange(&sm, 0, PROV_REQ_REGISTER, 503, NULL, NULL);
            uint64_t delay = prov_sm_next(&sm, 100).at_ms - 100;
            CHECK(delay >= 1000 && delay <= 2000);
            if (run == 0)
                first[i] = delay;
            else
                same = same && first[i] == delay;
            varies = varies || delay != first[0];
            sm.next_send_ms = 0; /* skip the wait */
        }
        CHECK(run == 2 ? !same : same);
        prov_sm_reset(&sm);
    }
    CHECK(varies);
    /* Seed 0 must not freeze xorshift at 0. */
    cfg.random_seed = 0;
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    CHECK(sm.rng != 0);
}

/* §9 #3: 503 x N, then the registration gives up with the last error. */
static void test_503_gives_up(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.max_retries = 2; /* two retries: three failures in all */
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    const char *body = "{\"errorCode\":503000,\"message\":\"busy\",\"trackingId\":\"tr\"}";
    exchange(&sm, 0, PROV_REQ_REGISTER, 503, "1", body);
    exchange(&sm, 1100, PROV_REQ_REGISTER, 503, "1", body);
    CHECK_INT(sm.state, PROV_SM_WAITING);
    exchange(&sm, 2200, PROV_REQ_REGISTER, 503, "1", body);
    CHECK_INT(sm.state, PROV_SM_FAILED);
    expect_done(&sm, 2300, PROV_DEVICE_RESULT_ERROR);
    CHECK_INT(sm.error.http_status, 503);
    CHECK_INT(sm.error.service_error_code, 503000);
    CHECK_STR(sm.error.tracking_id, "tr");
    CHECK_STR(sm.error.message, "gave up after 3 attempts: HTTP 503: busy (errorCode 503000)");
    prov_sm_reset(&sm);
}

/* A good answer ends a streak: the count and the backoff start over. */
static void test_retries_reset_after_success(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.max_retries = 3;
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 500, NULL, NULL);
    exchange(&sm, 1100, PROV_REQ_REGISTER, 500, NULL, NULL);
    CHECK_INT(sm.retries, 2);
    exchange(&sm, 3200, PROV_REQ_REGISTER, 202, "1", ASSIGNING_A);
    CHECK_INT(sm.retries, 0);
    exchange(&sm, 4300, PROV_REQ_POLL, 500, NULL, NULL);
    expect_wait(&sm, 4400, 5400); /* backoff is back to its minimum */
    exchange(&sm, 5400, PROV_REQ_POLL, 502, NULL, NULL);
    CHECK_INT(sm.state, PROV_SM_WAITING);
    exchange(&sm, 7500, PROV_REQ_POLL, 200, NULL, ASSIGNED);
    expect_done(&sm, 7600, PROV_DEVICE_RESULT_OK);
    prov_sm_reset(&sm);
}

/* §9 #4: the deadline ends a request in flight. */
static void test_deadline_in_flight(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.deadline_ms = 10000;
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 500);
    expect_send(&sm, 500, PROV_REQ_REGISTER);
    expect_wait(&sm, 600, 10500);
    expect_wait(&sm, 10499, 10500);
    expect_done(&sm, 10500, PROV_DEVICE_RESULT_TIMEOUT);
    CHECK_STR(sm.error.message, "registration did not finish within 10 s");
    /* The late answer changes nothing. */
    answer(&sm, 10600, 200, NULL, ASSIGNED);
    CHECK_INT(sm.state, PROV_SM_FAILED);
    CHECK(sm.result.assigned_hub == NULL);
    prov_sm_reset(&sm);
}

/* The deadline ends a wait, even one scheduled beyond it, and quotes the
 * last transient error. */
static void test_deadline_while_waiting(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.deadline_ms = 10000;
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 503, "300", NULL);
    CHECK_INT(sm.state, PROV_SM_WAITING);
    CHECK_INT(sm.next_send_ms, 300100); /* still scheduled ... */
    expect_wait(&sm, 100, 10000);       /* ... but the wake-up is the deadline */
    expect_done(&sm, 10000, PROV_DEVICE_RESULT_TIMEOUT);
    CHECK_STR(sm.error.message, "registration did not finish within 10 s; last error: "
                                "HTTP 503: service error");
    CHECK_INT(sm.error.http_status, 503);
    /* Sub-second deadlines are spelt in ms. */
    cfg.deadline_ms = 1500;
    prov_sm_reset(&sm);
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    expect_done(&sm, 1500, PROV_DEVICE_RESULT_TIMEOUT);
    CHECK_STR(sm.error.message, "registration did not finish within 1500 ms");
    prov_sm_reset(&sm);
}

/* A timeout also ends a pending TPM challenge. */
static void test_deadline_during_challenge(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.tpm = true;
    cfg.deadline_ms = 5000;
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 401, NULL, CHALLENGE_BODY);
    CHECK_INT(prov_sm_next(&sm, 4999).kind, PROV_ACT_CHALLENGE);
    expect_done(&sm, 5000, PROV_DEVICE_RESULT_TIMEOUT);
    prov_sm_challenge_done(&sm, 5001, PROV_DEVICE_RESULT_OK, NULL); /* ignored */
    CHECK_INT(sm.state, PROV_SM_FAILED);
    prov_sm_reset(&sm);
}

/* Without a deadline, a request in flight waits for ever. */
static void test_no_deadline(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.deadline_ms = 0;
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    expect_send(&sm, 0, PROV_REQ_REGISTER);
    expect_wait(&sm, UINT64_MAX - 1, UINT64_MAX);
    answer(&sm, 100, 202, "300", ASSIGNING_A);
    expect_wait(&sm, 200, 300100);
    prov_sm_reset(&sm);
}

/* Random walks: WAIT.at_ms never lies beyond the deadline, and every
 * run ends (bounded retries and deadline). */
static void test_wait_never_beyond_deadline(void)
{
    static const long statuses[] = {200, 202, 202, 429, 500, 503, 401, 404, 200};
    static const char *bodies[] = {ASSIGNING_A, "{\"status\":\"assigning\"}", "<html>",
                                   ASSIGNED, CHALLENGE_BODY, NULL};
    static const char *ras[] = {NULL, "1", "600", "0", "Sun, 06 Nov 1994 08:49:37 GMT"};
    uint32_t x = 2463534242u;
    for (int run = 0; run < 300; run++) {
        prov_sm_config cfg = test_cfg();
        cfg.jitter_max_ms = 5000;
        cfg.tpm = run % 2;
        cfg.deadline_ms = 20000 + (uint32_t)run * 1000;
        prov_sm sm;
        prov_sm_init(&sm, &cfg);
        prov_sm_start(&sm, 1000);
        uint64_t deadline = 1000 + cfg.deadline_ms, now = 1000;
        for (int step = 0; step < 1000 && sm.state != PROV_SM_FAILED &&
                           sm.state != PROV_SM_ASSIGNED; step++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            prov_sm_action a = prov_sm_next(&sm, now);
            if (a.kind == PROV_ACT_WAIT) {
                CHECK(a.at_ms <= deadline);
                CHECK(a.at_ms > now);
                now = a.at_ms;
            } else if (a.kind == PROV_ACT_SEND) {
                prov_sm_sent(&sm, now);
                prov_sm_action w = prov_sm_next(&sm, now);
                CHECK(w.kind == PROV_ACT_WAIT && w.at_ms <= deadline);
                now += x % 3000;
                if (now >= w.at_ms) /* the answer is late: the deadline wins */
                    now = w.at_ms;
                else if (x % 7 == 0)
                    prov_sm_on_network_error(&sm, now, true, PROV_DEVICE_RESULT_TRANSPORT, 7,
                                             "reset");
                else
                    answer(&sm, now, statuses[x % 9], ras[(x >> 8) % 5], bodies[(x >> 16) % 6]);
            } else if (a.kind == PROV_ACT_CHALLENGE) {
                prov_sm_challenge_done(&sm, now, PROV_DEVICE_RESULT_OK, NULL);
            }
        }
        CHECK(sm.state == PROV_SM_FAILED || sm.state == PROV_SM_ASSIGNED);
        CHECK(now <= deadline);
        prov_sm_reset(&sm);
    }
}

/* SRS_PROV_CLIENT_07_033: 401 with authenticationKey → TPM challenge,
 * then the authenticated register, polling and the hub key. */
static void test_tpm_challenge(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.tpm = true;
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 401, NULL, CHALLENGE_BODY);
    CHECK_INT(sm.state, PROV_SM_CHALLENGE);
    CHECK_INT(prov_sm_next(&sm, 100).kind, PROV_ACT_CHALLENGE);
    CHECK_INT(prov_sm_next(&sm, 150).kind, PROV_ACT_CHALLENGE); /* until done */
    CHECK_STR(sm.result.challenge_b64, "QkxPQg==");
    CHECK_STR(sm.result.key_name, "registration");
    CHECK_INT(sm.challenges, 1);
    prov_sm_challenge_done(&sm, 300, PROV_DEVICE_RESULT_OK, NULL);
    exchange(&sm, 300, PROV_REQ_REGISTER, 202, "1", ASSIGNING_A);
    exchange(&sm, 1400, PROV_REQ_POLL, 200, NULL, ASSIGNED_TPM);
    expect_done(&sm, 1500, PROV_DEVICE_RESULT_OK);
    CHECK_STR(sm.result.hub_key_b64, "SFVCS0VZ");
    prov_sm_reset(&sm);
}

/* keyName defaults to "registration"; a status-less or unassigned 2xx
 * with authenticationKey is a challenge too (C SDK behaviour). */
static void test_tpm_challenge_variants(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.tpm = true;
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 401, NULL, "{\"authenticationKey\":\"QQ==\"}");
    CHECK_STR(sm.result.key_name, "registration");
    prov_sm_challenge_done(&sm, 100, PROV_DEVICE_RESULT_OK, NULL);
    exchange(&sm, 100, PROV_REQ_REGISTER, 200, NULL,
             "{\"status\":\"unassigned\",\"authenticationKey\":\"Qg==\",\"keyName\":\"k2\"}");
    CHECK_INT(sm.state, PROV_SM_CHALLENGE);
    CHECK_STR(sm.result.challenge_b64, "Qg==");
    CHECK_STR(sm.result.key_name, "k2");
    prov_sm_reset(&sm);
    /* TPM 'assigned' without the hub key blob is unusable. */
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 200, NULL, ASSIGNED);
    expect_done(&sm, 100, PROV_DEVICE_RESULT_PARSING);
    prov_sm_reset(&sm);
}

/* §9 #9: challenges are bounded. */
static void test_too_many_challenges(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.tpm = true;
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    for (int i = 0; i < 2; i++) {
        exchange(&sm, 0, PROV_REQ_REGISTER, 401, NULL, CHALLENGE_BODY);
        CHECK_INT(prov_sm_next(&sm, 100).kind, PROV_ACT_CHALLENGE);
        prov_sm_challenge_done(&sm, 0, PROV_DEVICE_RESULT_OK, NULL);
    }
    exchange(&sm, 0, PROV_REQ_REGISTER, 401, NULL, CHALLENGE_BODY);
    expect_done(&sm, 100, PROV_DEVICE_RESULT_DEV_AUTH_ERROR);
    CHECK_INT(sm.error.http_status, 401);
    CHECK_STR(sm.error.message, "HTTP 401: service keeps challenging (3 challenges)");
    prov_sm_reset(&sm);
}

/* A failed import ends the registration with the caller's reason. */
static void test_challenge_failure(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.tpm = true;
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 401, NULL, CHALLENGE_BODY);
    prov_sm_challenge_done(&sm, 200, PROV_DEVICE_RESULT_KEY_ERROR, "TPM2_ActivateCredential failed");
    expect_done(&sm, 200, PROV_DEVICE_RESULT_KEY_ERROR);
    CHECK_STR(sm.error.message, "TPM2_ActivateCredential failed");
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 401, NULL, CHALLENGE_BODY);
    prov_sm_challenge_done(&sm, 200, PROV_DEVICE_RESULT_KEY_ERROR, NULL);
    CHECK_STR(sm.error.message, "TPM challenge failed");
    prov_sm_reset(&sm);
}

/* SRS_PROV_CLIENT_07_017: error answers end in the error state with the
 * service's errorCode, trackingId and message (§9 #8). */
static void test_http_errors(void)
{
    static const struct {
        long status;
        PROV_DEVICE_RESULT result;
    } cases[] = {
        {400, PROV_DEVICE_RESULT_ERROR},          {401, PROV_DEVICE_RESULT_DEV_AUTH_ERROR},
        {403, PROV_DEVICE_RESULT_DEV_AUTH_ERROR}, {404, PROV_DEVICE_RESULT_DEV_AUTH_ERROR},
        {405, PROV_DEVICE_RESULT_ERROR},          {409, PROV_DEVICE_RESULT_ERROR},
        {412, PROV_DEVICE_RESULT_ERROR},          {415, PROV_DEVICE_RESULT_ERROR},
        {430, PROV_DEVICE_RESULT_ERROR},          {499, PROV_DEVICE_RESULT_ERROR},
        {100, PROV_DEVICE_RESULT_ERROR},          {302, PROV_DEVICE_RESULT_ERROR},
        {600, PROV_DEVICE_RESULT_ERROR},          {0, PROV_DEVICE_RESULT_ERROR},
        {-1, PROV_DEVICE_RESULT_ERROR},
    };
    prov_sm_config cfg = test_cfg();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        prov_sm sm;
        prov_sm_init(&sm, &cfg);
        prov_sm_start(&sm, 0);
        exchange(&sm, 0, PROV_REQ_REGISTER, cases[i].status, NULL,
                 "{\"errorCode\":404201,\"trackingId\":\"abc\",\"message\":\"Not found\"}");
        expect_done(&sm, 100, cases[i].result);
        CHECK_INT(sm.error.http_status, cases[i].status);
        CHECK_INT(sm.error.service_error_code, 404201);
        CHECK_STR(sm.error.tracking_id, "abc");
        char want[80];
        snprintf(want, sizeof want, "HTTP %ld: Not found (errorCode 404201)", cases[i].status);
        CHECK_STR(sm.error.message, want);
        prov_sm_reset(&sm);
    }
}

/* The X.509 401 of §7 and error answers without a usable body. */
static void test_http_error_messages(void)
{
    prov_sm_config cfg = test_cfg();
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 401, NULL,
             "{\"errorCode\":401002,\"trackingId\":\"8ad0\",\"message\":\"Invalid certificate.\"}");
    expect_done(&sm, 100, PROV_DEVICE_RESULT_DEV_AUTH_ERROR);
    CHECK_STR(sm.error.message, "HTTP 401: Invalid certificate. (errorCode 401002)");
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 404, NULL, "<html>");
    expect_done(&sm, 100, PROV_DEVICE_RESULT_DEV_AUTH_ERROR);
    CHECK_STR(sm.error.message, "HTTP 404: enrollment or registration not found");
    CHECK_INT(sm.error.service_error_code, 0);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 400, NULL, "{\"errorCode\":400004}");
    CHECK_STR(sm.error.message, "HTTP 400 (errorCode 400004)");
    /* A non-TPM device is never challenged: that 401 is an error. */
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 401, NULL, CHALLENGE_BODY);
    expect_done(&sm, 100, PROV_DEVICE_RESULT_DEV_AUTH_ERROR);
    CHECK_STR(sm.error.message, "HTTP 401: device authentication refused");
    /* Control characters from the service never reach a log line. */
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 400, NULL,
             "{\"message\":\"a\\nforged\\u0007\",\"trackingId\":\"x\\ry\"}");
    CHECK_STR(sm.error.message, "HTTP 400: a?forged?");
    CHECK_STR(sm.error.tracking_id, "x?y");
    /* An overlong service message is cut, not overflowed. */
    prov_sm_start(&sm, 0);
    char body[1200];
    memcpy(body, "{\"message\":\"", 12);
    memset(body + 12, 'm', 1000);
    memcpy(body + 1012, "\"}", 3);
    exchange(&sm, 0, PROV_REQ_REGISTER, 400, NULL, body);
    CHECK_INT(strlen(sm.error.message), sizeof sm.error.message - 1);
    prov_sm_reset(&sm);
}

/* status "failed": errorCode decides the result (C SDK mapping, but
 * 'other' is ERROR, not DEV_AUTH_ERROR). */
static void test_failed_codes(void)
{
    static const struct {
        const char *code;
        PROV_DEVICE_RESULT result;
    } cases[] = {
        {"400208", PROV_DEVICE_RESULT_HUB_NOT_SPECIFIED},
        {"400209", PROV_DEVICE_RESULT_UNAUTHORIZED},
        {"401002", PROV_DEVICE_RESULT_DEV_AUTH_ERROR},
        {"401999", PROV_DEVICE_RESULT_DEV_AUTH_ERROR},
        {"400207", PROV_DEVICE_RESULT_ERROR},
        {"402000", PROV_DEVICE_RESULT_ERROR},
        {"\"400208\"", PROV_DEVICE_RESULT_ERROR}, /* wrong type: no code */
    };
    prov_sm_config cfg = test_cfg();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"operationId\":\"4.d0a6\",\"status\":\"failed\",\"registrationState\":{"
                 "\"status\":\"failed\",\"errorCode\":%s,\"errorMessage\":\"why\"}}",
                 cases[i].code);
        prov_sm sm;
        prov_sm_init(&sm, &cfg);
        prov_sm_start(&sm, 0);
        exchange(&sm, 0, PROV_REQ_REGISTER, 200, NULL, body);
        expect_done(&sm, 100, cases[i].result);
        CHECK_STR(sm.result.status, "failed");
        CHECK(sm.result.registration_state_json != NULL);
        if (cases[i].code[0] != '"') {
            char want[64];
            snprintf(want, sizeof want, "HTTP 200: why (errorCode %s)", cases[i].code);
            CHECK_STR(sm.error.message, want);
            CHECK_INT(sm.error.service_error_code, strtol(cases[i].code, NULL, 10));
        } else {
            CHECK_STR(sm.error.message, "HTTP 200: why");
        }
        prov_sm_reset(&sm);
    }
}

/* disabled, blacklisted, unknown or missing status. */
static void test_final_statuses(void)
{
    static const struct {
        const char *body;
        PROV_DEVICE_RESULT result;
        const char *message;
    } cases[] = {
        {"{\"operationId\":\"\",\"status\":\"disabled\",\"registrationState\":{"
         "\"registrationId\":\"r\",\"status\":\"disabled\"}}",
         PROV_DEVICE_RESULT_DISABLED, "HTTP 200: enrollment is disabled"},
        {"{\"status\":\"blacklisted\"}", PROV_DEVICE_RESULT_ERROR,
         "HTTP 200: device is blacklisted"},
        {"{\"status\":\"reticulating\"}", PROV_DEVICE_RESULT_PARSING,
         "HTTP 200: unknown registration status \"reticulating\""},
        {"{\"operationId\":\"x\"}", PROV_DEVICE_RESULT_PARSING, "HTTP 200: answer has no status"},
        {"{\"status\":[\"assigned\"]}", PROV_DEVICE_RESULT_PARSING,
         "HTTP 200: answer has no status"},
        {"{\"status\":\"assigned\",\"registrationState\":{\"deviceId\":\"d\"}}",
         PROV_DEVICE_RESULT_PARSING,
         "HTTP 200: 'assigned' without registrationState.assignedHub/deviceId"},
        {"{\"status\":\"assigned\",\"registrationState\":{\"assignedHub\":\"h\",\"deviceId\":\"\"}}",
         PROV_DEVICE_RESULT_PARSING,
         "HTTP 200: 'assigned' without registrationState.assignedHub/deviceId"},
    };
    prov_sm_config cfg = test_cfg();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        prov_sm sm;
        prov_sm_init(&sm, &cfg);
        prov_sm_start(&sm, 0);
        exchange(&sm, 0, PROV_REQ_REGISTER, 200, NULL, cases[i].body);
        expect_done(&sm, 100, cases[i].result);
        CHECK_STR(sm.error.message, cases[i].message);
        CHECK(sm.result.assigned_hub == NULL);
        prov_sm_reset(&sm);
    }
}

/* §9 #12: 'unassigned' keeps polling for a non-TPM device, like C#. */
static void test_unassigned_polls(void)
{
    prov_sm_config cfg = test_cfg();
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 202, "1",
             "{\"operationId\":\"op1\",\"status\":\"unassigned\"}");
    CHECK(sm.saw_assigning);
    exchange(&sm, 1100, PROV_REQ_POLL, 200, NULL, ASSIGNED);
    expect_done(&sm, 1200, PROV_DEVICE_RESULT_OK);
    prov_sm_reset(&sm);
}

/* §9 #18: the first operationId is kept; a poll answer without one
 * reuses it; with none at all, register again. */
static void test_operation_id_handling(void)
{
    prov_sm_config cfg = test_cfg();
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 202, "1", "{\"operationId\":\"A\",\"status\":\"assigning\"}");
    exchange(&sm, 1100, PROV_REQ_POLL, 202, "1", "{\"status\":\"assigning\"}");
    CHECK_STR(sm.result.operation_id, "A");
    exchange(&sm, 2200, PROV_REQ_POLL, 202, "1", "{\"operationId\":\"B\",\"status\":\"assigning\"}");
    CHECK_STR(sm.result.operation_id, "A");
    char *path = prov_sm_request_path(&sm, "s", "r", "v");
    CHECK_STR(path, "/s/registrations/r/operations/A?api-version=v");
    free(path);
    prov_sm_reset(&sm);

    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 202, "1", "{\"status\":\"assigning\"}");
    expect_wait(&sm, 100, 1100);
    exchange(&sm, 1100, PROV_REQ_REGISTER, 202, NULL,
             "{\"operationId\":\"\",\"status\":\"assigning\"}");
    CHECK(sm.result.operation_id == NULL); /* "" is no id */
    exchange(&sm, 3200, PROV_REQ_REGISTER, 202, "1", "{\"operationId\":\"C\",\"status\":\"assigning\"}");
    exchange(&sm, 4300, PROV_REQ_POLL, 200, NULL, ASSIGNED);
    expect_done(&sm, 4400, PROV_DEVICE_RESULT_OK);
    CHECK_STR(sm.result.operation_id, "C");
    prov_sm_reset(&sm);
}

/* A 2xx whose body is not a JSON object is retried like a 5xx; if it
 * persists, the answer was unusable: PARSING. */
static void test_malformed_body(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.max_retries = 2;
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 200, NULL, "<html>proxy</html>");
    CHECK_INT(sm.state, PROV_SM_WAITING);
    CHECK_INT(sm.error.result, PROV_DEVICE_RESULT_PARSING);
    exchange(&sm, 1100, PROV_REQ_REGISTER, 202, NULL, "{\"status\":\"assig");
    exchange(&sm, 3200, PROV_REQ_REGISTER, 204, NULL, NULL);
    expect_done(&sm, 3300, PROV_DEVICE_RESULT_PARSING);
    CHECK_INT(sm.error.http_status, 204);
    CHECK_STR(sm.error.message, "gave up after 3 attempts: HTTP 204: answer is not a JSON object");
    /* Recovery in between resets the count. */
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 200, NULL, "[]");
    exchange(&sm, 1100, PROV_REQ_REGISTER, 200, NULL, ASSIGNED);
    expect_done(&sm, 1200, PROV_DEVICE_RESULT_OK);
    /* A body pointer with embedded NUL within body_len is malformed. */
    prov_sm_start(&sm, 0);
    expect_send(&sm, 0, PROV_REQ_REGISTER);
    prov_sm_response r = reply(200, NULL, "{\"status\":\"assigned\"}\0junk");
    r.body_len = 26;
    prov_sm_on_response(&sm, 10, &r);
    CHECK_INT(sm.state, PROV_SM_WAITING);
    CHECK_INT(sm.error.result, PROV_DEVICE_RESULT_PARSING);
    prov_sm_reset(&sm);
}

/* Network errors: retryable ones are transient, others are final. */
static void test_network_errors(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.max_retries = 1;
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    expect_send(&sm, 0, PROV_REQ_REGISTER);
    prov_sm_on_network_error(&sm, 50, true, PROV_DEVICE_RESULT_TRANSPORT, 7,
                             "Failed to connect to host");
    CHECK_INT(sm.state, PROV_SM_WAITING);
    expect_wait(&sm, 50, 1050);
    expect_send(&sm, 1050, PROV_REQ_REGISTER);
    prov_sm_on_network_error(&sm, 1100, true, PROV_DEVICE_RESULT_TRANSPORT, 28, NULL);
    expect_done(&sm, 1100, PROV_DEVICE_RESULT_TRANSPORT);
    CHECK_INT(sm.error.transport_code, 28);
    CHECK_STR(sm.error.message, "gave up after 2 attempts: network error");

    prov_sm_start(&sm, 0);
    expect_send(&sm, 0, PROV_REQ_REGISTER);
    prov_sm_on_network_error(&sm, 50, false, PROV_DEVICE_RESULT_KEY_ERROR, 58,
                             "could not load client certificate");
    expect_done(&sm, 50, PROV_DEVICE_RESULT_KEY_ERROR);
    CHECK_STR(sm.error.message, "could not load client certificate");
    CHECK_INT(sm.error.transport_code, 58);
    /* OK is no failure result: reported as TRANSPORT. */
    prov_sm_start(&sm, 0);
    expect_send(&sm, 0, PROV_REQ_REGISTER);
    prov_sm_on_network_error(&sm, 50, false, PROV_DEVICE_RESULT_OK, 35, "tls");
    expect_done(&sm, 50, PROV_DEVICE_RESULT_TRANSPORT);
    prov_sm_reset(&sm);
}

/* Calls in the wrong state are ignored; NULL arguments do not crash. */
static void test_wrong_state_calls(void)
{
    prov_sm_config cfg = test_cfg();
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_response r = reply(200, NULL, ASSIGNED);
    prov_sm_on_response(&sm, 0, &r); /* IDLE */
    prov_sm_on_network_error(&sm, 0, false, PROV_DEVICE_RESULT_TRANSPORT, 1, "x");
    prov_sm_sent(&sm, 0);
    prov_sm_challenge_done(&sm, 0, PROV_DEVICE_RESULT_OK, NULL);
    CHECK_INT(sm.state, PROV_SM_IDLE);
    prov_sm_start(&sm, 0);
    prov_sm_on_response(&sm, 0, &r); /* WAITING: nothing was sent */
    prov_sm_on_network_error(&sm, 0, false, PROV_DEVICE_RESULT_TRANSPORT, 1, "x");
    prov_sm_challenge_done(&sm, 0, PROV_DEVICE_RESULT_KEY_ERROR, NULL);
    CHECK_INT(sm.state, PROV_SM_WAITING);
    expect_send(&sm, 0, PROV_REQ_REGISTER);
    prov_sm_sent(&sm, 0); /* twice */
    prov_sm_challenge_done(&sm, 0, PROV_DEVICE_RESULT_KEY_ERROR, NULL);
    prov_sm_on_response(&sm, 0, NULL);
    CHECK_INT(sm.state, PROV_SM_IN_FLIGHT);
    prov_sm_on_response(&sm, 0, &r);
    CHECK_INT(sm.state, PROV_SM_ASSIGNED);
    prov_sm_on_network_error(&sm, 0, false, PROV_DEVICE_RESULT_TRANSPORT, 1, "x");
    CHECK_INT(sm.state, PROV_SM_ASSIGNED);
    CHECK_INT(sm.error.result, PROV_DEVICE_RESULT_OK);
    prov_sm_reset(&sm);
    /* NULL handles everywhere. */
    prov_sm_init(NULL, &cfg);
    prov_sm_reset(NULL);
    prov_sm_start(NULL, 0);
    CHECK_INT(prov_sm_next(NULL, 0).kind, PROV_ACT_NONE);
    prov_sm_sent(NULL, 0);
    prov_sm_on_response(NULL, 0, &r);
    prov_sm_on_network_error(NULL, 0, true, PROV_DEVICE_RESULT_TRANSPORT, 0, NULL);
    prov_sm_challenge_done(NULL, 0, PROV_DEVICE_RESULT_OK, NULL);
    prov_sm_config_defaults(NULL);
    CHECK(prov_sm_request_path(NULL, "s", "r", "v") == NULL);
}

/* §9 #5/#7: a handle is reusable after failure or timeout; nothing of
 * the previous run (error reason, results, counters) leaks. */
static void test_reuse_after_failure(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.tpm = true;
    cfg.deadline_ms = 10000;
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 401, NULL, CHALLENGE_BODY);
    prov_sm_challenge_done(&sm, 100, PROV_DEVICE_RESULT_OK, NULL);
    exchange(&sm, 100, PROV_REQ_REGISTER, 202, "1", ASSIGNING_A);
    exchange(&sm, 1200, PROV_REQ_POLL, 503, NULL, "{\"trackingId\":\"old\"}");
    expect_done(&sm, 10000, PROV_DEVICE_RESULT_TIMEOUT);
    /* Start again much later: the deadline counts from the new start. */
    prov_sm_start(&sm, 50000);
    CHECK_INT(sm.state, PROV_SM_WAITING);
    CHECK_INT(sm.error.result, PROV_DEVICE_RESULT_OK);
    CHECK_INT(sm.error.http_status, 0);
    CHECK_STR(sm.error.message, "");
    CHECK_STR(sm.error.tracking_id, "");
    CHECK(sm.result.operation_id == NULL && sm.result.challenge_b64 == NULL);
    CHECK(sm.result.key_name == NULL && sm.result.status == NULL);
    CHECK(sm.result.registration_state_json == NULL);
    CHECK_INT(sm.retries, 0);
    CHECK_INT(sm.challenges, 0);
    CHECK(!sm.saw_assigning && !sm.done_reported);
    CHECK_INT(sm.request, PROV_REQ_REGISTER);
    expect_send(&sm, 50000, PROV_REQ_REGISTER);
    answer(&sm, 50100, 404, NULL, NULL);
    expect_done(&sm, 50100, PROV_DEVICE_RESULT_DEV_AUTH_ERROR);
    prov_sm_start(&sm, 60000);
    exchange(&sm, 60000, PROV_REQ_REGISTER, 200, NULL, ASSIGNED_TPM);
    expect_done(&sm, 60100, PROV_DEVICE_RESULT_OK);
    CHECK_STR(sm.error.message, "");
    prov_sm_reset(&sm);
}

/* Paths of §1.2, segments URL-encoded with the C SDK's rules (§5.2). */
static void test_request_paths(void)
{
    prov_sm_config cfg = test_cfg();
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    char *p = prov_sm_request_path(&sm, "0ne00111111", "my-symkey-device", "2021-06-01");
    CHECK_STR(p, "/0ne00111111/registrations/my-symkey-device/register?api-version=2021-06-01");
    free(p);
    p = prov_sm_request_path(&sm, "0ne0011", "dev:1", "2021-06-01");
    CHECK_STR(p, "/0ne0011/registrations/dev%3a1/register?api-version=2021-06-01");
    free(p);
    p = prov_sm_request_path(&sm, "s/x", "a b+c=~!()*-._\xc3\xa9", "v&1");
    CHECK_STR(p, "/s%2fx/registrations/a%20b%2bc%3d%7e!()*-._%c3%a9/register?api-version=v%261");
    free(p);
    p = prov_sm_request_path(&sm, "", "", "");
    CHECK_STR(p, "//registrations//register?api-version=");
    free(p);
    CHECK(prov_sm_request_path(&sm, NULL, "r", "v") == NULL);
    CHECK(prov_sm_request_path(&sm, "s", NULL, "v") == NULL);
    CHECK(prov_sm_request_path(&sm, "s", "r", NULL) == NULL);
    /* A poll needs the operation id. */
    sm.request = PROV_REQ_POLL;
    CHECK(prov_sm_request_path(&sm, "s", "r", "v") == NULL);
    sm.request = PROV_REQ_REGISTER;
    exchange(&sm, 0, PROV_REQ_REGISTER, 202, "1",
             "{\"operationId\":\"5.31/6:a\",\"status\":\"assigning\"}");
    p = prov_sm_request_path(&sm, "0ne0011", "dev:1", "2021-06-01");
    CHECK_STR(p, "/0ne0011/registrations/dev%3a1/operations/5.31%2f6%3aa?api-version=2021-06-01");
    free(p);
    prov_sm_reset(&sm);
}

/* max_retries 0: the first transient failure is final. */
static void test_zero_retries(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.max_retries = 0;
    prov_sm sm;
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, PROV_REQ_REGISTER, 500, NULL, NULL);
    expect_done(&sm, 100, PROV_DEVICE_RESULT_ERROR);
    CHECK_STR(sm.error.message, "gave up after 1 attempt: HTTP 500: service error");
    prov_sm_reset(&sm);
}

/* A throttled fleet told the same Retry-After spreads out: the wait is
 * the hint plus jitter of up to the hint (capped by jitter_max_ms). */
static void test_retry_after_jitter(void)
{
    prov_sm_config cfg = test_cfg();
    cfg.jitter_max_ms = 5000;
    uint64_t seen_min = UINT64_MAX, seen_max = 0;
    for (uint32_t seed = 1; seed <= 40; seed++) {
        cfg.random_seed = seed;
        prov_sm sm;
        prov_sm_init(&sm, &cfg);
        prov_sm_start(&sm, 0);
        exchange(&sm, 0, PROV_REQ_REGISTER, 429, "2", NULL);
        uint64_t at = prov_sm_next(&sm, 100).at_ms;
        CHECK(at >= 2100 && at <= 4100); /* answered at 100 */
        seen_min = at < seen_min ? at : seen_min;
        seen_max = at > seen_max ? at : seen_max;
        prov_sm_reset(&sm);
    }
    CHECK(seen_max - seen_min > 500);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_happy_path);
    RUN(test_immediate_assignment_and_other_2xx);
    RUN(test_retry_after_clamping);
    RUN(test_retry_after_http_date);
    RUN(test_429_then_success);
    RUN(test_backoff_exponential);
    RUN(test_backoff_jitter);
    RUN(test_retry_after_jitter);
    RUN(test_503_gives_up);
    RUN(test_retries_reset_after_success);
    RUN(test_deadline_in_flight);
    RUN(test_deadline_while_waiting);
    RUN(test_deadline_during_challenge);
    RUN(test_no_deadline);
    RUN(test_wait_never_beyond_deadline);
    RUN(test_tpm_challenge);
    RUN(test_tpm_challenge_variants);
    RUN(test_too_many_challenges);
    RUN(test_challenge_failure);
    RUN(test_http_errors);
    RUN(test_http_error_messages);
    RUN(test_failed_codes);
    RUN(test_final_statuses);
    RUN(test_unassigned_polls);
    RUN(test_operation_id_handling);
    RUN(test_malformed_body);
    RUN(test_network_errors);
    RUN(test_wrong_state_calls);
    RUN(test_reuse_after_failure);
    RUN(test_request_paths);
    RUN(test_zero_retries);
    return testing_done();
}
