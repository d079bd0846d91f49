/*
 * The DPS registration state machine (docs/protocol.md §3.6, §4.1), sans I/O.
 *
 * It differs from the official C SDK on purpose wherever §9 lists a
 * defect: Retry-After is clamped (not reset to 1 s; the transport parses
 * it, HTTP-dates included) (#2); only 429 and 5xx are transient and retries are
 * bounded (#3); there is an overall deadline (#4); start() forgets every
 * earlier result and error (#5, #7); other 4xx keep the service's
 * errorCode/message (#8); challenges are counted (#9); "unassigned" keeps
 * polling for non-TPM devices (#12); a poll answer without operationId
 * reuses the cached one (#18).
 *
 * While a registration runs, sm->error holds the last transient failure
 * since the last good answer; it becomes the final error if retries run
 * out, and is quoted by the timeout message.
 */
#include "prov_sm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dps_encoding.h"
#include "dps_failure.h"
#include "prov_json.h"
#include "prov_values.h"

/* xorshift32 must never hold 0; used when the caller passes seed 0. */
#define SM_FALLBACK_SEED 0x9E3779B9u

#if defined(__GNUC__)
#define SM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SM_PRINTF(f, a)
#endif

void prov_sm_config_defaults(prov_sm_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->deadline_ms = 300000;
    cfg->default_poll_ms = 2000;
    cfg->backoff_min_ms = 1000;
    cfg->backoff_max_ms = 100000;
    cfg->jitter_max_ms = 5000;
    cfg->retry_after_min_s = 1;
    cfg->retry_after_max_s = 300;
    cfg->max_retries = 10;
    cfg->max_challenges = 2;
}

/* ---- small helpers ---------------------------------------------------- */

/* Moves *src into *dst (freeing the old *dst): reply strings are handed
 * over rather than copied. */
static void take(char **dst, char **src)
{
    free(*dst);
    *dst = *src;
    *src = NULL;
}

/* Times are caller-chosen uint64 ms; saturate rather than wrap so a huge
 * delay can never land in the past. */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* xorshift32 (Marsaglia): enough to spread a fleet's retries apart,
 * deterministic from cfg.random_seed for tests. */
static uint32_t rng_next(prov_sm *sm)
{
    uint32_t x = sm->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    sm->rng = x;
    return x;
}

static void result_free(prov_sm_result *r)
{
    char **fields[] = {
        &r->operation_id, &r->status,      &r->registration_state_json,
        &r->assigned_hub, &r->device_id,   &r->payload_json,
        &r->challenge_b64, &r->key_name,   &r->hub_key_b64,
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        free(*fields[i]);
        *fields[i] = NULL;
    }
}

/* Service text ends up in logs and Lua strings: control bytes become '?'
 * so a hostile reply cannot forge log lines. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

static SM_PRINTF(2, 3) void set_message(prov_sm_error *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    sanitize(e->message);
}

static void set_tracking(prov_sm_error *e, const char *id)
{
    snprintf(e->tracking_id, sizeof e->tracking_id, "%s", id ? id : "");
    sanitize(e->tracking_id);
}

/* Present and non-empty: the service sends "" for "none" (§3.1). */
static bool has_text(const char *s)
{
    return s && *s;
}

/* ---- lifecycle -------------------------------------------------------- */

void prov_sm_init(prov_sm *sm, const prov_sm_config *cfg)
{
    if (!sm)
        return;
    memset(sm, 0, sizeof *sm);
    if (cfg)
        sm->cfg = *cfg;
    else
        prov_sm_config_defaults(&sm->cfg);
    sm->rng = sm->cfg.random_seed ? sm->cfg.random_seed : SM_FALLBACK_SEED;
    sm->state = PROV_SM_IDLE;
}

void prov_sm_reset(prov_sm *sm)
{
    if (!sm)
        return;
    result_free(&sm->result);
    memset(&sm->error, 0, sizeof sm->error);
    sm->state = PROV_SM_IDLE;
    sm->request = PROV_REQ_REGISTER;
    sm->started_ms = sm->next_send_ms = 0;
    sm->retries = sm->challenges = 0;
    sm->done_reported = sm->saw_assigning = false;
    /* cfg and the rng stream are kept: a new registration gets fresh
     * jitter rather than a replay of the previous one. */
}

void prov_sm_start(prov_sm *sm, uint64_t now_ms)
{
    if (!sm)
        return;
    prov_sm_reset(sm); /* §9 #5/#7: nothing survives from a previous run */
    sm->state = PROV_SM_WAITING;
    sm->request = PROV_REQ_REGISTER;
    sm->started_ms = now_ms;
    sm->next_send_ms = now_ms;
}

/* ASSIGNED and FAILED wait only for the DONE report and a new start(). */
static bool is_final(prov_sm_state s)
{
    return s == PROV_SM_ASSIGNED || s == PROV_SM_FAILED;
}

static void finish(prov_sm *sm, prov_sm_state state, PROV_DEVICE_RESULT result)
{
    sm->state = state;
    sm->error.result = result;
    sm->done_reported = false;
}

/* ---- deadline --------------------------------------------------------- */

static uint64_t deadline_at(const prov_sm *sm)
{
    if (sm->cfg.deadline_ms == 0)
        return UINT64_MAX;
    return add_sat(sm->started_ms, sm->cfg.deadline_ms);
}

/* The last transient failure's details (http_status, errorCode, ...) are
 * kept: they usually explain why the deadline was missed. */
static void fail_timeout(prov_sm *sm)
{
    char last[sizeof sm->error.message];
    uint32_t ms = sm->cfg.deadline_ms;
    memcpy(last, sm->error.message, sizeof last);
    last[sizeof last - 1] = '\0';
    char span[32];
    if (ms % 1000 == 0)
        snprintf(span, sizeof span, "%u s", (unsigned)(ms / 1000));
    else
        snprintf(span, sizeof span, "%u ms", (unsigned)ms);
    set_message(&sm->error, "registration did not finish within %s%s%s", span,
                last[0] ? "; last error: " : "", last);
    finish(sm, PROV_SM_FAILED, PROV_DEVICE_RESULT_TIMEOUT);
}

/* ---- next ------------------------------------------------------------- */

static prov_sm_action action(prov_action_kind kind, prov_request_kind req, uint64_t at)
{
    prov_sm_action a;
    a.kind = kind;
    a.request = req;
    a.at_ms = at;
    return a;
}

prov_sm_action prov_sm_next(prov_sm *sm, uint64_t now_ms)
{
    if (!sm || sm->state == PROV_SM_IDLE)
        return action(PROV_ACT_NONE, PROV_REQ_REGISTER, 0);
    uint64_t deadline = deadline_at(sm);
    if (!is_final(sm->state) && now_ms >= deadline)
        fail_timeout(sm);
    if (is_final(sm->state)) {
        if (sm->done_reported)
            return action(PROV_ACT_NONE, sm->request, 0);
        sm->done_reported = true;
        return action(PROV_ACT_DONE, sm->request, 0);
    }
    switch (sm->state) {
    case PROV_SM_WAITING:
        if (now_ms >= sm->next_send_ms)
            return action(PROV_ACT_SEND, sm->request, 0);
        /* A retry scheduled past the deadline still wakes the caller at
         * the deadline, which then fails the registration. */
        return action(PROV_ACT_WAIT, sm->request,
                      sm->next_send_ms < deadline ? sm->next_send_ms : deadline);
    case PROV_SM_IN_FLIGHT:
        return action(PROV_ACT_WAIT, sm->request, deadline);
    case PROV_SM_CHALLENGE:
        return action(PROV_ACT_CHALLENGE, sm->request, 0);
    default:
        return action(PROV_ACT_NONE, sm->request, 0);
    }
}

void prov_sm_sent(prov_sm *sm, uint64_t now_ms)
{
    (void)now_ms; /* waits count from the answer, not the send (§4.1) */
    if (sm && sm->state == PROV_SM_WAITING)
        sm->state = PROV_SM_IN_FLIGHT;
}

/* ---- retries ---------------------------------------------------------- */

/* d = min(backoff_min * 2^(retries-1), backoff_max), plus jitter in
 * [0, min(jitter_max, d)]: a fleet's retries spread out, while a lone
 * device's first retry still comes within two backoff minimums. */
static uint64_t backoff_ms(prov_sm *sm)
{
    uint64_t delay = sm->cfg.backoff_min_ms;
    /* Doubling stops at the cap, so the loop is short and cannot overflow. */
    for (uint32_t i = 1; i < sm->retries && delay < sm->cfg.backoff_max_ms; i++)
        delay *= 2;
    if (delay > sm->cfg.backoff_max_ms)
        delay = sm->cfg.backoff_max_ms;
    uint64_t jitter = sm->cfg.jitter_max_ms < delay ? sm->cfg.jitter_max_ms
                                                    : delay;
    /* 64-bit modulus: jitter + 1 cannot wrap to 0. */
    if (jitter)
        delay += rng_next(sm) % (jitter + 1);
    return delay;
}

/* Retry-After in ms if the answer has one, clamped, never reset (§9 #2:
 * the C SDK turns a 600 s hint into 1 s). */
static bool retry_after_ms(const prov_sm *sm, const prov_sm_response *resp,
                           uint64_t *ms)
{
    uint64_t s;
    if (!resp || resp->retry_after_s < 0)
        return false;
    s = (uint64_t)resp->retry_after_s;
    if (s < sm->cfg.retry_after_min_s)
        s = sm->cfg.retry_after_min_s;
    if (s > sm->cfg.retry_after_max_s)
        s = sm->cfg.retry_after_max_s;
    *ms = s * 1000;
    return true;
}

/* A transient failure, already described in sm->error (with the result
 * to report if it is the last straw): re-send the same request later, or
 * give up once max_retries retries have failed too. resp is NULL for network
 * errors. */
static void retry_later(prov_sm *sm, uint64_t now_ms, const prov_sm_response *resp)
{
    sm->retries++;
    if (sm->retries > sm->cfg.max_retries) {
        char last[sizeof sm->error.message];
        memcpy(last, sm->error.message, sizeof last);
        last[sizeof last - 1] = '\0';
        set_message(&sm->error, "gave up after %u attempt%s: %s", (unsigned)sm->retries,
                    sm->retries == 1 ? "" : "s", last);
        finish(sm, PROV_SM_FAILED, sm->error.result);
        return;
    }
    /* The service's own hint wins over our backoff (§3.4: honour it),
     * plus jitter of up to the hint itself: a throttled fleet told the
     * same Retry-After must not come back in the same instant. */
    uint64_t delay;
    if (retry_after_ms(sm, resp, &delay)) {
        uint64_t jitter = sm->cfg.jitter_max_ms < delay ? sm->cfg.jitter_max_ms
                                                        : delay;
        if (jitter)
            delay += rng_next(sm) % (jitter + 1);
    } else {
        delay = backoff_ms(sm);
    }
    sm->state = PROV_SM_WAITING;
    sm->next_send_ms = add_sat(now_ms, delay);
}

/* A good answer: the streak of failures is over. */
static void good_answer(prov_sm *sm)
{
    sm->retries = 0;
    memset(&sm->error, 0, sizeof sm->error);
}

/* ---- answers ---------------------------------------------------------- */

/* "HTTP 401: <service message> (errorCode 401002)"; hint stands in for
 * a missing service message. */
static void describe_http(prov_sm_error *e, long status, const prov_reply *rp, const char *hint)
{
    const char *text = rp && has_text(rp->error_message) ? rp->error_message : hint;
    char code[32] = "";
    if (rp && rp->error_code)
        snprintf(code, sizeof code, " (errorCode %ld)", rp->error_code);
    set_message(e, "HTTP %ld%s%s%s", status, text ? ": " : "", text ? text : "", code);
}

static void record_http(prov_sm *sm, PROV_DEVICE_RESULT result, long status,
                        const prov_reply *rp, const char *hint)
{
    memset(&sm->error, 0, sizeof sm->error);
    sm->error.result = result;
    sm->error.http_status = status;
    sm->error.service_error_code = rp ? rp->error_code : 0;
    set_tracking(&sm->error, rp ? rp->tracking_id : NULL);
    describe_http(&sm->error, status, rp, hint);
}

static void fail_http(prov_sm *sm, PROV_DEVICE_RESULT result, long status,
                      const prov_reply *rp, const char *hint)
{
    record_http(sm, result, status, rp, hint);
    finish(sm, PROV_SM_FAILED, result);
}

static void fail_memory(prov_sm *sm)
{
    memset(&sm->error, 0, sizeof sm->error);
    set_message(&sm->error, "out of memory");
    finish(sm, PROV_SM_FAILED, PROV_DEVICE_RESULT_MEMORY);
}

/* A value the service sent breaks its rule: the registration fails
 * with PARSING and a message quoting the value escaped and truncated.
 * Nothing of this answer is kept, so the value reaches no connection
 * string, callback, token or header. */
static void fail_value(prov_sm *sm, long status, const prov_reply *rp,
                       const char *field, const char *value, const char *rule)
{
    char quoted[128];

    prov_quote_value(value, quoted, sizeof quoted);
    record_http(sm, PROV_DEVICE_RESULT_PARSING, status, rp, NULL);
    set_message(&sm->error, "the service sent an unusable %s %s (%s)", field,
                quoted, rule);
    free(sm->result.registration_state_json);
    sm->result.registration_state_json = NULL;
    finish(sm, PROV_SM_FAILED, PROV_DEVICE_RESULT_PARSING);
}

/* Checks the fields of a 2xx answer that are used whatever its status;
 * false (and FAILED) if one breaks its rule. */
static bool answer_values_ok(prov_sm *sm, long status, const prov_reply *rp)
{
    if (has_text(rp->registration_id) &&
        !prov_valid_registration_id(rp->registration_id)) {
        fail_value(sm, status, rp, "registrationId", rp->registration_id,
                   "not a valid registration id");
        return false;
    }
    if (has_text(rp->operation_id) &&
        !prov_valid_operation_id(rp->operation_id)) {
        fail_value(sm, status, rp, "operationId", rp->operation_id,
                   "not 1 to 256 printable characters");
        return false;
    }
    return true;
}

/* 401 + authenticationKey (TPM, §3.5): the caller imports the blob. */
static void on_challenge(prov_sm *sm, long status, prov_reply *rp)
{
    /* keyName goes into the Authorization header as it is. */
    if (has_text(rp->key_name) && !prov_valid_key_name(rp->key_name)) {
        fail_value(sm, status, rp, "TPM keyName", rp->key_name,
                   "not 1 to 128 of letters, digits and - . _ ~");
        return;
    }
    sm->challenges++;
    if (sm->challenges > sm->cfg.max_challenges) {
        /* §9 #9: a device whose imported key keeps being refused would
         * otherwise loop forever. */
        record_http(sm, PROV_DEVICE_RESULT_DEV_AUTH_ERROR, status, rp, NULL);
        set_message(&sm->error, "HTTP %ld: service keeps challenging (%u challenges)", status,
                    (unsigned)sm->challenges);
        finish(sm, PROV_SM_FAILED, PROV_DEVICE_RESULT_DEV_AUTH_ERROR);
        return;
    }
    good_answer(sm);
    take(&sm->result.challenge_b64, &rp->authentication_key);
    if (has_text(rp->key_name))
        take(&sm->result.key_name, &rp->key_name);
    else {
        free(sm->result.key_name);
        sm->result.key_name =
            dps_strdup_or_null("registration"); /* C# default */
    }
    if (!sm->result.key_name) {
        fail_memory(sm);
        return;
    }
    sm->state = PROV_SM_CHALLENGE;
}

/* assigning (or unassigned, which C# keeps polling): poll after
 * Retry-After. The first operationId is kept (§4.5); without any, the
 * register request is sent again. */
static void on_assigning(prov_sm *sm, uint64_t now_ms, const prov_sm_response *resp,
                         prov_reply *rp)
{
    good_answer(sm);
    sm->saw_assigning = true;
    if (!sm->result.operation_id && has_text(rp->operation_id))
        take(&sm->result.operation_id, &rp->operation_id);
    sm->request = sm->result.operation_id ? PROV_REQ_POLL : PROV_REQ_REGISTER;
    uint64_t delay;
    if (!retry_after_ms(sm, resp, &delay))
        delay = sm->cfg.default_poll_ms;
    sm->state = PROV_SM_WAITING;
    sm->next_send_ms = add_sat(now_ms, delay);
}

static void on_assigned(prov_sm *sm, long status, prov_reply *rp)
{
    if (!has_text(rp->assigned_hub) || !has_text(rp->device_id)) {
        fail_http(sm, PROV_DEVICE_RESULT_PARSING, status, rp,
                  "'assigned' without registrationState.assignedHub/deviceId");
        return;
    }
    /* Both go into the connection string, the result callback and hub
     * SAS tokens: a ';' or '=' there would forge fields. */
    if (!prov_valid_host_name(rp->assigned_hub)) {
        fail_value(sm, status, rp, "assignedHub", rp->assigned_hub,
                   "not a DNS host name");
        return;
    }
    if (!prov_valid_device_id(rp->device_id)) {
        fail_value(sm, status, rp, "deviceId", rp->device_id,
                   "not an IoT Hub device id");
        return;
    }
    /* A TPM device can only reach the hub with the key in this blob. */
    if (sm->cfg.tpm && !has_text(rp->hub_key)) {
        fail_http(sm, PROV_DEVICE_RESULT_PARSING, status, rp,
                  "'assigned' without registrationState.tpm.authenticationKey");
        return;
    }
    good_answer(sm);
    take(&sm->result.assigned_hub, &rp->assigned_hub);
    take(&sm->result.device_id, &rp->device_id);
    take(&sm->result.payload_json, &rp->payload_json);
    take(&sm->result.hub_key_b64, &rp->hub_key);
    finish(sm, PROV_SM_ASSIGNED, PROV_DEVICE_RESULT_OK);
}

/* status "failed": the operation ended; registrationState says why. */
static void on_failed(prov_sm *sm, long status, const prov_reply *rp)
{
    PROV_DEVICE_RESULT result = PROV_DEVICE_RESULT_ERROR;
    if (rp->error_code == 400208)
        result = PROV_DEVICE_RESULT_HUB_NOT_SPECIFIED;
    else if (rp->error_code == 400209)
        result = PROV_DEVICE_RESULT_UNAUTHORIZED;
    else if (rp->error_code >= 401000 && rp->error_code <= 401999)
        result = PROV_DEVICE_RESULT_DEV_AUTH_ERROR;
    fail_http(sm, result, status, rp, "registration failed");
}

/* 200-299 with a JSON object body. */
static void on_body(prov_sm *sm, uint64_t now_ms, const prov_sm_response *resp, prov_reply *rp)
{
    long status = resp->status;
    if (!answer_values_ok(sm, status, rp))
        return;
    if (rp->status_text)
        take(&sm->result.status, &rp->status_text);
    if (rp->registration_state_json)
        take(&sm->result.registration_state_json, &rp->registration_state_json);
    /* The C SDK also takes a status-less (or unassigned) 2xx body with
     * authenticationKey as a TPM challenge (§3.6). */
    if (sm->cfg.tpm && has_text(rp->authentication_key) &&
        (rp->status == PROV_STATUS_ABSENT || rp->status == PROV_STATUS_UNASSIGNED)) {
        on_challenge(sm, status, rp);
        return;
    }
    switch (rp->status) {
    case PROV_STATUS_ASSIGNING:
    case PROV_STATUS_UNASSIGNED:
        on_assigning(sm, now_ms, resp, rp);
        break;
    case PROV_STATUS_ASSIGNED:
        on_assigned(sm, status, rp);
        break;
    case PROV_STATUS_FAILED:
        on_failed(sm, status, rp);
        break;
    case PROV_STATUS_DISABLED:
        fail_http(sm, PROV_DEVICE_RESULT_DISABLED, status, rp, "enrollment is disabled");
        break;
    case PROV_STATUS_BLACKLISTED:
        fail_http(sm, PROV_DEVICE_RESULT_ERROR, status, rp, "device is blacklisted");
        break;
    default: {
        char hint[96];
        if (rp->status == PROV_STATUS_ABSENT)
            snprintf(hint, sizeof hint, "answer has no status");
        else
            snprintf(hint, sizeof hint, "unknown registration status \"%.40s\"",
                     sm->result.status ? sm->result.status : "");
        fail_http(sm, PROV_DEVICE_RESULT_PARSING, status, NULL, hint);
        break;
    }
    }
}

/* An answer that is not a usable success: the failure table
 * (dps_failure.c) says whether a retry can help (§3.6, §9 #3: not every
 * status >= 429 is transient). */
static void on_http_failure(prov_sm *sm, uint64_t now_ms,
                            const prov_sm_response *resp, const prov_reply *rp)
{
    const dps_failure *f = dps_failure_for_status(resp->status);
    if (f->retried) {
        record_http(sm, f->result, resp->status, rp, f->message);
        retry_later(sm, now_ms, resp);
    } else {
        fail_http(sm, f->result, resp->status, rp, f->message);
    }
}

void prov_sm_on_response(prov_sm *sm, uint64_t now_ms, const prov_sm_response *resp)
{
    /* Late answers (after a timeout) and stray calls are ignored. */
    if (!sm || !resp || sm->state != PROV_SM_IN_FLIGHT)
        return;
    long status = resp->status;
    /* Every body is parsed: error bodies carry errorCode/trackingId too. */
    prov_reply rp;
    bool parsed = prov_json_parse_reply(resp->body, resp->body ? resp->body_len : 0, &rp) == 0;
    const prov_reply *info = parsed ? &rp : NULL;
    if (status >= 200 && status <= 299) {
        if (parsed) {
            on_body(sm, now_ms, resp, &rp);
        } else if (rp.too_deep) {
            /* The service means it: asking again gets the same answer. */
            fail_http(sm, PROV_DEVICE_RESULT_PARSING, status, NULL,
                      "the service's payload is nested deeper "
                      "than " PROV_JSON_DEPTH_TEXT " levels");
        } else {
            /* A proxy page or a cut stream: worth another try, but if it
             * persists the service's answer was simply unusable. */
            on_http_failure(sm, now_ms, resp, NULL);
        }
    } else if (status == 401 && sm->cfg.tpm && parsed && has_text(rp.authentication_key)) {
        on_challenge(sm, status, &rp);
    } else {
        on_http_failure(sm, now_ms, resp, info);
    }
    prov_reply_free(&rp);
}

void prov_sm_on_network_error(prov_sm *sm, uint64_t now_ms, bool retryable,
                              PROV_DEVICE_RESULT result, int transport_code,
                              const char *message)
{
    if (!sm || sm->state != PROV_SM_IN_FLIGHT)
        return;
    memset(&sm->error, 0, sizeof sm->error);
    sm->error.result = result == PROV_DEVICE_RESULT_OK ? PROV_DEVICE_RESULT_TRANSPORT : result;
    sm->error.transport_code = transport_code;
    set_message(&sm->error, "%s", has_text(message) ? message : "network error");
    if (retryable)
        retry_later(sm, now_ms, NULL);
    else
        finish(sm, PROV_SM_FAILED, sm->error.result);
}

void prov_sm_challenge_done(prov_sm *sm, uint64_t now_ms, PROV_DEVICE_RESULT result,
                            const char *message)
{
    if (!sm || sm->state != PROV_SM_CHALLENGE)
        return;
    /* The key is now in the TPM: the register request goes out again at
     * once, authenticated, with the same body (§4.5). */
    if (result == PROV_DEVICE_RESULT_OK) {
        sm->state = PROV_SM_WAITING;
        sm->request = PROV_REQ_REGISTER;
        sm->next_send_ms = now_ms;
        return;
    }
    memset(&sm->error, 0, sizeof sm->error);
    set_message(&sm->error, "%s", has_text(message) ? message : "TPM challenge failed");
    finish(sm, PROV_SM_FAILED, result);
}

/* ---- request path ----------------------------------------------------- */

static char *append(char *dst, const char *text)
{
    size_t len = strlen(text);
    memcpy(dst, text, len);
    return dst + len;
}

char *prov_sm_request_path(const prov_sm *sm, const char *scope,
                           const char *registration_id, const char *api_version)
{
    if (!sm || !scope || !registration_id || !api_version)
        return NULL;
    const char *op = sm->result.operation_id;
    bool poll = sm->request == PROV_REQ_POLL;
    if (poll && !op)
        return NULL;
    size_t raw = strlen(scope) + strlen(registration_id) + strlen(api_version) +
                 (poll ? strlen(op) : 0);
    /* Each byte encodes to at most 3; guard the multiplication. */
    if (raw > (SIZE_MAX - 64) / 3)
        return NULL;
    char *path = malloc(raw * 3 + 64); /* fixed parts are < 64 bytes */
    if (!path)
        return NULL;
    char *p = append(path, "/");
    p = dps_url_encode_to(p, scope);
    p = append(p, "/registrations/");
    p = dps_url_encode_to(p, registration_id);
    if (poll) {
        p = append(p, "/operations/");
        p = dps_url_encode_to(p, op);
    } else {
        p = append(p, "/register");
    }
    p = append(p, "?api-version=");
    p = dps_url_encode_to(p, api_version);
    *p = '\0';
    return path;
}
