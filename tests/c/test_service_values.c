/*
 * Values the service sends back are checked before use (prov_values.c
 * through the state machine): a hostile assignedHub, deviceId, echoed
 * registrationId, operationId or TPM keyName fails the registration
 * with PARSING, is quoted escaped and truncated, and is not kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prov_sm.h"
#include "prov_values.h"
#include "testing.h"

static prov_sm_config test_cfg(bool tpm)
{
    prov_sm_config cfg;
    prov_sm_config_defaults(&cfg);
    cfg.jitter_max_ms = 0;
    cfg.random_seed = 7;
    cfg.tpm = tpm;
    return cfg;
}

/* Sends the due request and feeds body as a `status` answer. */
static void exchange(prov_sm *sm, uint64_t now, long status, const char *body)
{
    prov_sm_response r;
    prov_sm_action a = prov_sm_next(sm, now);
    CHECK_INT(a.kind, PROV_ACT_SEND);
    prov_sm_sent(sm, now);
    memset(&r, 0, sizeof r);
    r.status = status;
    r.body = body;
    r.body_len = strlen(body);
    r.retry_after_s = -1; /* no Retry-After */
    prov_sm_on_response(sm, now + 10, &r);
}

/* JSON string literal of raw (escapes '"', '\' and control bytes). */
static void json_string(const char *raw, char *out, size_t outlen)
{
    size_t o = 0;
    out[o++] = '"';
    for (; *raw && o + 8 < outlen; raw++) {
        unsigned char c = (unsigned char)*raw;
        if (c == '"' || c == '\\')
            o += (size_t)snprintf(out + o, outlen - o, "\\%c", c);
        else if (c < 0x20)
            o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", c);
        else
            out[o++] = (char)c;
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* An 'assigned' answer with the given hub and device id (raw text). */
static char *assigned_body(const char *hub, const char *device,
                           const char *reg_id)
{
    static char hub_j[1200], dev_j[1200], reg_j[1200];
    char *body = malloc(4096);
    json_string(hub, hub_j, sizeof hub_j);
    json_string(device, dev_j, sizeof dev_j);
    json_string(reg_id, reg_j, sizeof reg_j);
    snprintf(body, 4096,
             "{\"operationId\":\"4.abc\",\"status\":\"assigned\","
             "\"registrationState\":"
             "{\"registrationId\":%s,\"assignedHub\":%s,\"deviceId\":%s,"
             "\"status\":\"assigned\"}}",
             reg_j, hub_j, dev_j);
    return body;
}

/* The message must hold no raw control byte. */
static void check_printable(const char *msg)
{
    for (; *msg; msg++)
        CHECK((unsigned char)*msg >= 0x20 && (unsigned char)*msg != 0x7f);
}

/* Registers once with an assigned answer; returns the final result and
 * copies the error message into msg. */
static PROV_DEVICE_RESULT register_once(const char *hub, const char *device,
                                        const char *reg_id, char *msg,
                                        size_t msglen)
{
    prov_sm_config cfg = test_cfg(false);
    prov_sm sm;
    char *body = assigned_body(hub, device, reg_id);
    PROV_DEVICE_RESULT result;

    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, 200, body);
    CHECK_INT(prov_sm_next(&sm, 100).kind, PROV_ACT_DONE);
    result = sm.error.result;
    if (sm.state == PROV_SM_ASSIGNED) {
        CHECK_STR(sm.result.assigned_hub, hub);
        CHECK_STR(sm.result.device_id, device);
    } else {
        /* Nothing of a refused answer is kept. */
        CHECK(sm.result.assigned_hub == NULL);
        CHECK(sm.result.device_id == NULL);
        CHECK(sm.result.registration_state_json == NULL);
        CHECK(sm.result.payload_json == NULL);
    }
    snprintf(msg, msglen, "%s", sm.error.message);
    check_printable(sm.error.message);
    prov_sm_reset(&sm);
    free(body);
    return result;
}

static void expect_refused(const char *hub, const char *device,
                           const char *reg_id, const char *field,
                           const char *quoted)
{
    char msg[300];
    CHECK_INT(register_once(hub, device, reg_id, msg, sizeof msg),
              PROV_DEVICE_RESULT_PARSING);
    CHECK(strstr(msg, field) != NULL);
    if (quoted && !strstr(msg, quoted))
        fprintf(stderr, "  message: %s\n  missing: %s\n", msg, quoted);
    CHECK(!quoted || strstr(msg, quoted) != NULL);
    CHECK(strlen(msg) < 200);
}

static void expect_accepted(const char *hub, const char *device)
{
    char msg[300];
    CHECK_INT(register_once(hub, device, "dev-1", msg, sizeof msg),
              PROV_DEVICE_RESULT_OK);
}

static void test_assigned_hub(void)
{
    char name[300];

    expect_refused("evil.net;SharedAccessKey=AAAA", "dev", "dev", "assignedHub",
                   "\"evil.net;SharedAccessKey=AAAA\"");
    expect_refused("hub.net;DeviceId=other", "dev", "dev", "assignedHub", NULL);
    expect_refused("hub=x.net", "dev", "dev", "assignedHub", NULL);
    expect_refused("hub.net\r\nX-Injected: 1", "dev", "dev", "assignedHub",
                   "\"hub.net\\x0D\\x0AX-Injected: 1\"");
    expect_refused("hub net", "dev", "dev", "assignedHub", NULL);
    expect_refused("h\xc3\xbc"
                   "b.net",
                   "dev", "dev", "assignedHub", "\"h\\xC3\\xBCb.net\"");
    expect_refused("hub..net", "dev", "dev", "assignedHub", NULL);
    expect_refused(".hub.net", "dev", "dev", "assignedHub", NULL);
    expect_refused("hub.net.", "dev", "dev", "assignedHub", NULL);
    expect_refused("-hub.net", "dev", "dev", "assignedHub", NULL);
    expect_refused("hub-.net", "dev", "dev", "assignedHub", NULL);
    expect_refused("hub.net:443", "dev", "dev", "assignedHub", NULL);
    expect_refused("hub.net/x", "dev", "dev", "assignedHub", NULL);
    /* A label of 64, and a name of 256 bytes. */
    memset(name, 'a', 64);
    strcpy(name + 64, ".net");
    expect_refused(name, "dev", "dev", "assignedHub", NULL);
    for (int i = 0; i < 256; i++)
        name[i] = (i % 4 == 3) ? '.' : 'a';
    name[255] = 'a';
    name[256] = '\0';
    expect_refused(name, "dev", "dev", "assignedHub", "...");
    name[255] = '\0'; /* 255 bytes: the limit itself */
    expect_accepted(name, "dev");
    expect_accepted("hub.azure-devices.net", "dev");
    expect_accepted("Contoso-Hub1.Azure-Devices.NET", "dev");
    expect_accepted("localhost", "dev");
    expect_accepted("127.0.0.1", "dev");
}

static void test_device_id(void)
{
    char id[200];

    expect_refused("hub.net", "dev;SharedAccessKey=AAAA", "dev", "deviceId",
                   "\"dev;SharedAccessKey=AAAA\"");
    expect_refused("hub.net", "dev\nx", "dev", "deviceId", "\"dev\\x0Ax\"");
    expect_refused("hub.net", "dev x", "dev", "deviceId", NULL);
    expect_refused("hub.net", "dev/x", "dev", "deviceId", NULL);
    expect_refused("hub.net", "d\"ev", "dev", "deviceId", "\"d\\\"ev\"");
    expect_refused("hub.net", "d\xc3\xa9v", "dev", "deviceId", NULL);
    memset(id, 'd', 129);
    id[129] = '\0';
    expect_refused("hub.net", id, "dev", "deviceId", NULL);
    id[128] = '\0';
    expect_accepted("hub.net", id);
    expect_accepted("hub.net", "a-:.+%_#*?!(),=@$'Z9");
}

static void test_registration_id_echo(void)
{
    char msg[300];

    expect_refused("hub.net", "dev", "dev\r\nX: 1", "registrationId",
                   "\"dev\\x0D\\x0AX: 1\"");
    expect_refused("hub.net", "dev", "dev 1", "registrationId", NULL);
    expect_refused("hub.net", "dev", "dev;x=1", "registrationId", NULL);
    /* An empty echo is no echo. */
    CHECK_INT(register_once("hub.net", "dev", "", msg, sizeof msg),
              PROV_DEVICE_RESULT_OK);
}

static void test_operation_id(void)
{
    prov_sm_config cfg = test_cfg(false);
    prov_sm sm;
    char op[300], body[400];
    static const char *const bad[] = {
        "{\"operationId\":\"op\\r\\nX-Injected: 1\",\"status\":\"assigning\"}",
        "{\"operationId\":\"op id\",\"status\":\"assigning\"}",
        "{\"operationId\":\"op\\u0000\",\"status\":\"assigning\"}",
        "{\"operationId\":\"op\\u00e9\",\"status\":\"assigning\"}",
    };

    prov_sm_init(&sm, &cfg);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        prov_sm_start(&sm, 0);
        exchange(&sm, 0, 202, bad[i]);
        /* A NUL makes the field absent (no id): polling goes on. */
        if (i == 2) {
            CHECK(sm.result.operation_id == NULL);
            continue;
        }
        CHECK_INT(prov_sm_next(&sm, 100).kind, PROV_ACT_DONE);
        CHECK_INT(sm.error.result, PROV_DEVICE_RESULT_PARSING);
        CHECK(strstr(sm.error.message, "operationId") != NULL);
        CHECK(sm.result.operation_id == NULL);
        check_printable(sm.error.message);
    }
    memset(op, 'o', 257);
    op[257] = '\0';
    snprintf(body, sizeof body,
             "{\"operationId\":\"%s\",\"status\":\"assigning\"}", op);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, 202, body);
    CHECK_INT(sm.state, PROV_SM_FAILED);
    /* 256 printable characters, '/' and '%' included: kept, URL-encoded. */
    op[256] = '\0';
    op[0] = '/';
    op[1] = '%';
    snprintf(body, sizeof body,
             "{\"operationId\":\"%s\",\"status\":\"assigning\"}", op);
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, 202, body);
    CHECK_INT(sm.state, PROV_SM_WAITING);
    CHECK_STR(sm.result.operation_id, op);
    sm.request = PROV_REQ_POLL;
    char *path = prov_sm_request_path(&sm, "s", "r", "v");
    CHECK(path && strstr(path, "/operations/%2f%25oooo") != NULL);
    free(path);
    prov_sm_reset(&sm);
}

static void test_tpm_key_name(void)
{
    prov_sm_config cfg = test_cfg(true);
    prov_sm sm;
    static const char *const bad[] = {
        "{\"authenticationKey\":\"QQ==\",\"keyName\":\"registration\\r\\nX-"
        "Evil: 1\"}",
        "{\"authenticationKey\":\"QQ==\",\"keyName\":\"a&skn=b\"}",
        "{\"authenticationKey\":\"QQ==\",\"keyName\":\"a b\"}",
        "{\"authenticationKey\":\"QQ==\",\"keyName\":\"a\\tb\"}",
    };

    prov_sm_init(&sm, &cfg);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (long status = 200; status <= 401; status += 201) {
            prov_sm_start(&sm, 0);
            exchange(&sm, 0, status, bad[i]);
            CHECK_INT(prov_sm_next(&sm, 100).kind, PROV_ACT_DONE);
            CHECK_INT(sm.error.result, PROV_DEVICE_RESULT_PARSING);
            CHECK(strstr(sm.error.message, "keyName") != NULL);
            CHECK(sm.result.key_name == NULL);
            CHECK(sm.result.challenge_b64 == NULL);
            check_printable(sm.error.message);
        }
    }
    prov_sm_start(&sm, 0);
    exchange(&sm, 0, 401,
             "{\"authenticationKey\":\"QQ==\",\"keyName\":\"Key-1.a_b~c\"}");
    CHECK_INT(sm.state, PROV_SM_CHALLENGE);
    CHECK_STR(sm.result.key_name, "Key-1.a_b~c");
    prov_sm_reset(&sm);
}

static void test_quote(void)
{
    char out[64], big[400];

    prov_quote_value("plain", out, sizeof out);
    CHECK_STR(out, "\"plain\"");
    prov_quote_value("a\"b\\c\r\n\x7f\xff", out, sizeof out);
    CHECK_STR(out, "\"a\\\"b\\\\c\\x0D\\x0A\\x7F\\xFF\"");
    prov_quote_value(NULL, out, sizeof out);
    CHECK_STR(out, "(null)");
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    prov_quote_value(big, out, sizeof out);
    CHECK(strlen(out) < sizeof out);
    CHECK(strcmp(out + strlen(out) - 4, "\"...") == 0);
    /* Escapes are never cut in half. */
    memset(big, '\n', 100);
    big[100] = '\0';
    prov_quote_value(big, out, 20);
    CHECK(strlen(out) < 20);
    CHECK(strstr(out, "\\x0A\"...") != NULL);
    prov_quote_value("abc", out, 4); /* too small: empty, no overflow */
    CHECK_STR(out, "");
}

int main(void)
{
    RUN(test_assigned_hub);
    RUN(test_device_id);
    RUN(test_registration_id_echo);
    RUN(test_operation_id);
    RUN(test_tpm_key_name);
    RUN(test_quote);
    return testing_done();
}
