/*
 * Unit tests of prov_json.c: reply parsing (docs/protocol.md §3), the register
 * body (§2) and payload validation, including hostile input.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json_c_version.h>

#include "prov_json.h"
#include "testing.h"

/* Parses a NUL-terminated literal (its length excludes the NUL). */
static int parse(const char *body, prov_reply *r)
{
    return prov_json_parse_reply(body, strlen(body), r);
}

/* §3.1 first sample: 202 assigning. */
static void test_parse_assigning(void)
{
    prov_reply r;
    CHECK_INT(parse("{\"operationId\":\"5.316aac5bdc130deb.b1e02da8-c3a0-4ff2-a121-"
                    "7ea7a6b7f550\",\"status\":\"assigning\"}", &r), 0);
    CHECK_INT(r.status, PROV_STATUS_ASSIGNING);
    CHECK_STR(r.status_text, "assigning");
    CHECK_STR(r.operation_id, "5.316aac5bdc130deb.b1e02da8-c3a0-4ff2-a121-7ea7a6b7f550");
    CHECK(r.registration_state_json == NULL);
    CHECK(r.assigned_hub == NULL);
    CHECK_INT(r.error_code, 0);
    prov_reply_free(&r);
    CHECK(r.operation_id == NULL); /* free zeroes */
}

/* §3.1 assigned sample; payload and the TPM hub key come through. */
static void test_parse_assigned(void)
{
    prov_reply r;
    const char *body =
        "{\"operationId\":\"5.1\",\"status\":\"assigned\",\"registrationState\":{"
        "\"registrationId\":\"dev/1\",\"assignedHub\":\"MyExampleHub.azure-devices.net\","
        "\"deviceId\":\"my-symkey-device\",\"status\":\"assigned\",\"substatus\":"
        "\"initialAssignment\",\"payload\":{\"a\":[1,2.5,\"x\"]},"
        "\"tpm\":{\"authenticationKey\":\"AB/CD+==\"}}}";
    CHECK_INT(parse(body, &r), 0);
    CHECK_INT(r.status, PROV_STATUS_ASSIGNED);
    CHECK_STR(r.assigned_hub, "MyExampleHub.azure-devices.net");
    CHECK_STR(r.device_id, "my-symkey-device");
    CHECK_STR(r.payload_json, "{\"a\":[1,2.5,\"x\"]}");
    CHECK_STR(r.hub_key, "AB/CD+==");
    /* Serialized compactly, '/' not escaped. */
    CHECK(r.registration_state_json &&
          strstr(r.registration_state_json, "\"registrationId\":\"dev/1\"") != NULL);
    prov_reply_free(&r);
}

/* §3.1 failed sample: errorCode/errorMessage inside registrationState. */
static void test_parse_failed(void)
{
    prov_reply r;
    CHECK_INT(parse("{\"operationId\":\"4.d0a6\",\"status\":\"failed\",\"registrationState\":"
                    "{\"registrationId\":\"x\",\"status\":\"failed\",\"errorCode\":400207,"
                    "\"errorMessage\":\"Custom allocation failed with status code: 400\"}}",
                    &r), 0);
    CHECK_INT(r.status, PROV_STATUS_FAILED);
    CHECK_INT(r.error_code, 400207);
    CHECK_STR(r.error_message, "Custom allocation failed with status code: 400");
    prov_reply_free(&r);
}

/* §3.4 error body. */
static void test_parse_error_body(void)
{
    prov_reply r;
    CHECK_INT(parse("{\"errorCode\":401002,\"trackingId\":\"8ad0463c-6427\","
                    "\"message\":\"Invalid certificate.\",\"timestampUtc\":"
                    "\"2020-04-10T05:24:22.4718526Z\",\"info\":{\"k\":\"v\"}}", &r), 0);
    CHECK_INT(r.status, PROV_STATUS_ABSENT);
    CHECK_INT(r.error_code, 401002);
    CHECK_STR(r.tracking_id, "8ad0463c-6427");
    CHECK_STR(r.error_message, "Invalid certificate.");
    prov_reply_free(&r);
}

/* §3.5 TPM challenge. */
static void test_parse_challenge(void)
{
    prov_reply r;
    CHECK_INT(parse("{\"message\":\"m\",\"authenticationKey\":\"AAEC\",\"keyName\":"
                    "\"registration\"}", &r), 0);
    CHECK_STR(r.authentication_key, "AAEC");
    CHECK_STR(r.key_name, "registration");
    CHECK_STR(r.error_message, "m");
    prov_reply_free(&r);
}

static void test_parse_status_values(void)
{
    static const struct {
        const char *text;
        prov_reg_status status;
    } cases[] = {
        {"unassigned", PROV_STATUS_UNASSIGNED}, {"assigning", PROV_STATUS_ASSIGNING},
        {"assigned", PROV_STATUS_ASSIGNED},     {"failed", PROV_STATUS_FAILED},
        {"disabled", PROV_STATUS_DISABLED},     {"blacklisted", PROV_STATUS_BLACKLISTED},
        {"Assigned", PROV_STATUS_ASSIGNED},     {"assignedx", PROV_STATUS_UNKNOWN},
        {"", PROV_STATUS_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[64];
        prov_reply r;
        snprintf(body, sizeof body, "{\"status\":\"%s\"}", cases[i].text);
        CHECK_INT(parse(body, &r), 0);
        CHECK_INT(r.status, cases[i].status);
        prov_reply_free(&r);
    }
}

/* A field of the wrong type counts as absent; unknown fields and any
 * order are fine. */
static void test_parse_wrong_types(void)
{
    prov_reply r;
    CHECK_INT(parse("{\"x\":[{}],\"status\":7,\"operationId\":{},\"errorCode\":\"400208\","
                    "\"trackingId\":null,\"message\":[\"m\"],\"authenticationKey\":true,"
                    "\"registrationState\":\"assigned\"}", &r), 0);
    CHECK_INT(r.status, PROV_STATUS_ABSENT);
    CHECK(r.status_text == NULL && r.operation_id == NULL && r.tracking_id == NULL);
    CHECK(r.error_message == NULL && r.authentication_key == NULL);
    CHECK(r.registration_state_json == NULL);
    CHECK_INT(r.error_code, 0);
    prov_reply_free(&r);

    CHECK_INT(parse("{\"registrationState\":{\"assignedHub\":1,\"deviceId\":null,\"tpm\":"
                    "\"k\",\"errorCode\":400208.0,\"payload\":null}}", &r), 0);
    CHECK(r.assigned_hub == NULL && r.device_id == NULL && r.hub_key == NULL);
    CHECK(r.payload_json == NULL);
    CHECK_INT(r.error_code, 0);
    prov_reply_free(&r);
}

/* Huge numbers: saturated ints and out-of-range codes count as absent. */
static void test_parse_huge_numbers(void)
{
    prov_reply r;
    /* Integers beyond 64 bits reach json-c as doubles (on every json-c
     * version: 0.17 and later would refuse them in strict mode), so the
     * reply stays usable and the out-of-range code counts as absent. */
    CHECK_INT(parse("{\"errorCode\":99999999999999999999999999,\"status\":\"failed\"}", &r), 0);
    CHECK_INT(r.error_code, 0);
    prov_reply_free(&r);
    CHECK_INT(parse("{\"errorCode\":-9223372036854775809}", &r), 0);
    CHECK_INT(r.error_code, 0);
    prov_reply_free(&r);
    CHECK_INT(parse("{\"errorCode\":1e400,\"registrationState\":{\"payload\":[1e400]}}", &r), 0);
    CHECK_INT(r.error_code, 0);
    CHECK_STR(r.payload_json, "[1e400]"); /* source text kept, still valid JSON */
    prov_reply_free(&r);
}

/* Not a JSON object: -1 and a zeroed reply. */
static void test_parse_not_object(void)
{
    static const char *bad[] = {
        "", "   ", "[]", "\"s\"", "123", "null", "true", "{", "{\"status\":\"assig",
        "<html><body>502 Bad Gateway</body></html>", "{} x", "{}{}", "{\"a\":1,}",
        "{'a':1}", "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":1.}", "/*c*/{}",
        "{\"a\":\"\xff\"}", "\xef\xbb\xbf{}", "{\"a\":-01}", "{\"a\":\"\t\"}",
        "{\"a\":1.2.3}", "{\"a\":[1e]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        prov_reply r;
        memset(&r, 0x5a, sizeof r);
        if (parse(bad[i], &r) != -1)
            fprintf(stderr, "should fail: %s\n", bad[i]);
        CHECK_INT(parse(bad[i], &r), -1);
        CHECK(r.status == PROV_STATUS_ABSENT && r.status_text == NULL && r.error_code == 0);
    }
    prov_reply r;
    CHECK_INT(prov_json_parse_reply(NULL, 10, &r), -1);
    CHECK_INT(prov_json_parse_reply("{}", 2, NULL), -1);
    /* Whitespace around the object is fine. */
    CHECK_INT(parse(" \r\n{\"status\":\"assigned\"}\n ", &r), 0);
    CHECK_INT(r.status, PROV_STATUS_ASSIGNED);
    prov_reply_free(&r);
}

/* The body has an explicit length: a NUL is data, hence an error. */
static void test_parse_embedded_nul(void)
{
    prov_reply r;
    static const char mid[] = "{\"status\":\"assi\0gning\"}";
    CHECK_INT(prov_json_parse_reply(mid, sizeof mid - 1, &r), -1);
    static const char tail[] = "{\"status\":\"assigned\"}\0";
    CHECK_INT(prov_json_parse_reply(tail, sizeof tail - 1, &r), -1);
    /* Only the first len bytes are read, whatever follows. */
    static const char longer[] = "{\"status\":\"failed\"}GARBAGE";
    CHECK_INT(prov_json_parse_reply(longer, 19, &r), 0);
    CHECK_INT(r.status, PROV_STATUS_FAILED);
    prov_reply_free(&r);
    /* An escaped NUL inside an id would truncate it: treated as absent. */
    CHECK_INT(parse("{\"operationId\":\"a\\u0000b\",\"trackingId\":\"t\"}", &r), 0);
    CHECK(r.operation_id == NULL);
    CHECK_STR(r.tracking_id, "t");
    prov_reply_free(&r);
}

/* Nesting beyond the depth limit (32) is refused, not recursed into. */
static void test_parse_deep_nesting(void)
{
    size_t depth = 100000;
    char *body = malloc(2 * depth + 32);
    size_t n = 0;
    n += (size_t)snprintf(body, 32, "{\"payload\":");
    for (size_t i = 0; i < depth; i++)
        body[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        body[n++] = ']';
    body[n++] = '}';
    prov_reply r;
    CHECK_INT(prov_json_parse_reply(body, n, &r), -1);
    free(body);
    /* 20 levels are fine. */
    char ok[128];
    snprintf(ok, sizeof ok, "{\"registrationState\":{\"payload\":%s}}",
             "[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]");
    CHECK_INT(parse(ok, &r), 0);
    CHECK_STR(r.payload_json, "[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]");
    prov_reply_free(&r);
}

/* A 1 MB string goes through intact. */
static void test_parse_big_string(void)
{
    size_t big = 1u << 20;
    char *body = malloc(big + 64);
    size_t n = (size_t)snprintf(body, 64, "{\"status\":\"assigning\",\"operationId\":\"");
    memset(body + n, 'a', big);
    n += big;
    memcpy(body + n, "\"}", 2);
    n += 2;
    prov_reply r;
    CHECK_INT(prov_json_parse_reply(body, n, &r), 0);
    CHECK(r.operation_id && strlen(r.operation_id) == big);
    prov_reply_free(&r);
    free(body);
}

/* SRS_PROV_CLIENT_07_013: the register body, key order registrationId,
 * tpm, payload, compact. */
static void test_register_body(void)
{
    char *b = prov_json_register_body("my-symkey-device", NULL, NULL, NULL);
    CHECK_STR(b, "{\"registrationId\":\"my-symkey-device\"}");
    free(b);
    b = prov_json_register_body("my-symkey-device", NULL, NULL,
                                " { \"modelId\" : \"dtmi:com:example:Thermostat;1\" } ");
    CHECK_STR(b, "{\"registrationId\":\"my-symkey-device\",\"payload\":"
                 "{\"modelId\":\"dtmi:com:example:Thermostat;1\"}}");
    free(b);
    b = prov_json_register_body("6rek", "AToA/+==", "ARoA/x==", "[1,\"/\"]");
    CHECK_STR(b, "{\"registrationId\":\"6rek\",\"tpm\":{\"endorsementKey\":\"AToA/+==\","
                 "\"storageRootKey\":\"ARoA/x==\"},\"payload\":[1,\"/\"]}");
    free(b);
    b = prov_json_register_body("6rek", "EK", NULL, NULL);
    CHECK_STR(b, "{\"registrationId\":\"6rek\",\"tpm\":{\"endorsementKey\":\"EK\"}}");
    free(b);
    /* Any JSON value is a payload, null and scalars included. */
    b = prov_json_register_body("d", NULL, NULL, "null");
    CHECK_STR(b, "{\"registrationId\":\"d\",\"payload\":null}");
    free(b);
    b = prov_json_register_body("d", NULL, NULL, "42");
    CHECK_STR(b, "{\"registrationId\":\"d\",\"payload\":42}");
    free(b);
    /* Quotes and control characters in ids are escaped, not pasted. */
    b = prov_json_register_body("a\"b\n", NULL, NULL, NULL);
    CHECK_STR(b, "{\"registrationId\":\"a\\\"b\\n\"}");
    free(b);
    CHECK(prov_json_register_body(NULL, NULL, NULL, NULL) == NULL);
}

/* Invalid payload JSON fails the body (§2.3) instead of being pasted. */
static void test_register_body_bad_payload(void)
{
    static const char *bad[] = {
        "", "{", "{\"a\":1} x", "{\"a\":1}}", "{a:1}", "NaN", "[Infinity]", "01",
        "\"unterminated", "{\"a\":1},{\"b\":2}", "tru", "[1.]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(prov_json_register_body("d", NULL, NULL, bad[i]) == NULL);
}

static void test_is_valid(void)
{
    static const char *good[] = {
        "{}", "[]", "\"s\"", "0", "-0.5e+3", "true", "false", "null", " 1 ",
        "{\"a\":{\"b\":[null,1,\"x\"]}}", "\n[1]\t", "\"\\u00e9\"", "\"\xc3\xa9\"",
        /* Non-ASCII text (json-c 0.17/0.18 with a signed char refuse it
         * unless prov_json escapes it first): 4-byte, keys, escapes. */
        "\"\xf0\x9f\x98\x80\"", "{\"k\xc3\xa9\":\"\\\"\xe2\x82\xac\\\\\"}",
    };
    static const char *bad[] = {
        "", " ", "{", "}", "[1,]", "1 2", "{} {}", "nul", "True", "'a'", "+1", ".5",
        "1.", "0x10", "NaN", "-Infinity", "[1e]", "\"\xc3\"", "// c\n1", "{\"a\" 1}",
        "{'a':1}", "\"tab\there\"", "-01", "[-]", "1e+", "[\"\\x\"]",
        "\"\\\xc3\xa9\"", "\xc3\xa9", "\"\xe2\x82\"",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!prov_json_is_valid(good[i]))
            fprintf(stderr, "should be valid: %s\n", good[i]);
        CHECK(prov_json_is_valid(good[i]) == 1);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (prov_json_is_valid(bad[i]))
            fprintf(stderr, "should be invalid: %s\n", bad[i]);
        CHECK(prov_json_is_valid(bad[i]) == 0);
    }
    CHECK(prov_json_is_valid(NULL) == 0);
}

static void test_is_valid_deep(void)
{
    size_t depth = 5000;
    char *text = malloc(2 * depth + 1);
    for (size_t i = 0; i < depth; i++) {
        text[i] = '[';
        text[depth + i] = ']';
    }
    text[2 * depth] = '\0';
    CHECK(prov_json_is_valid(text) == 0);
    CHECK(prov_json_register_body("d", NULL, NULL, text) == NULL);
    free(text);
}

int main(void)
{
    RUN(test_parse_assigning);
    RUN(test_parse_assigned);
    RUN(test_parse_failed);
    RUN(test_parse_error_body);
    RUN(test_parse_challenge);
    RUN(test_parse_status_values);
    RUN(test_parse_wrong_types);
    RUN(test_parse_huge_numbers);
    RUN(test_parse_not_object);
    RUN(test_parse_embedded_nul);
    RUN(test_parse_deep_nesting);
    RUN(test_parse_big_string);
    RUN(test_register_body);
    RUN(test_register_body_bad_payload);
    RUN(test_is_valid);
    RUN(test_is_valid_deep);
    return testing_done();
}
