/*
 * Payload JSON in the C core: integers json-c would clamp become the
 * closest double instead, and nesting is limited to 64 levels with its
 * own outcome (PROV_JSON_TOO_DEEP), for the user's payload, the
 * service's answer and the state machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "prov_json.h"
#include "prov_sm.h"
#include "testing.h"

/* n objects nested, innermost {"leaf":1}, in a malloc'd string. */
static char *nested(size_t n)
{
    char *s = malloc(n * 12 + 16);
    size_t o = 0;
    for (size_t i = 1; i < n; i++)
        o += (size_t)sprintf(s + o, "{\"inner\":");
    o += (size_t)sprintf(s + o, "{\"leaf\":1}");
    for (size_t i = 1; i < n; i++)
        s[o++] = '}';
    s[o] = '\0';
    return s;
}

static void test_big_integers_not_clamped(void)
{
    static const char body[] =
        "{\"status\":\"assigned\",\"registrationState\":{\"payload\":"
        "{\"huge\":123456789012345678901234567890,\"neg\":-"
        "99999999999999999999,"
        "\"u64\":18446744073709551615,\"i64\":9223372036854775807,"
        "\"min\":-9223372036854775808,\"in_str\":\"99999999999999999999999\"}}"
        "}";
    prov_reply r;
    CHECK_INT(prov_json_parse_reply(body, sizeof body - 1, &r), 0);
    CHECK(r.payload_json != NULL);
    if (!r.payload_json)
        return;
    /* Written out as sent (the exponent keeps it a number, not a clamp). */
    CHECK(strstr(r.payload_json, "\"huge\":123456789012345678901234567890e0") !=
          NULL);
    CHECK(strstr(r.payload_json, "\"neg\":-99999999999999999999e0") != NULL);
    CHECK(strstr(r.payload_json, "\"u64\":18446744073709551615,") != NULL);
    CHECK(strstr(r.payload_json, "\"i64\":9223372036854775807,") != NULL);
    CHECK(strstr(r.payload_json, "\"min\":-9223372036854775808,") != NULL);
    CHECK(strstr(r.payload_json, "\"in_str\":\"99999999999999999999999\"") !=
          NULL);

    /* Read back: the closest doubles. */
    json_object *v = NULL, *x = NULL;
    CHECK_INT(
        prov_json_parse_value(r.payload_json, strlen(r.payload_json), 64, &v),
        PROV_JSON_OK);
    CHECK(json_object_object_get_ex(v, "huge", &x));
    CHECK(json_object_is_type(x, json_type_double));
    CHECK(json_object_get_double(x) == 1.2345678901234568e+29);
    CHECK(json_object_object_get_ex(v, "neg", &x));
    CHECK(json_object_get_double(x) == -1e20);
    CHECK(json_object_object_get_ex(v, "min", &x));
    CHECK(json_object_get_int64(x) == INT64_MIN);
    json_object_put(v);
    prov_reply_free(&r);

    /* One past the limits, and a top-level number without a NUL after it. */
    static const char edge[] = "-9223372036854775809";
    CHECK_INT(prov_json_parse_value(edge, sizeof edge - 1, 64, &v),
              PROV_JSON_OK);
    CHECK(json_object_is_type(v, json_type_double));
    CHECK(json_object_get_double(v) == -9223372036854775808.0);
    json_object_put(v);
    static const char edge2[] = "[18446744073709551616]";
    CHECK_INT(prov_json_parse_value(edge2, sizeof edge2 - 1, 64, &v),
              PROV_JSON_OK);
    CHECK(
        json_object_is_type(json_object_array_get_idx(v, 0), json_type_double));
    json_object_put(v);

    /* The user's payload too: sent as given, not clamped. */
    char *reg = prov_json_register_body("dev", NULL, NULL,
                                        "{\"n\":123456789012345678901}");
    CHECK(reg && strstr(reg, "\"n\":123456789012345678901e0") != NULL);
    free(reg);
}

static void test_depth_limit(void)
{
    char *ok = nested(PROV_JSON_PAYLOAD_MAX_DEPTH);
    char *deep = nested(PROV_JSON_PAYLOAD_MAX_DEPTH + 1);
    char body[4096];
    prov_reply r;

    CHECK_INT(prov_json_check_payload(ok), PROV_JSON_OK);
    CHECK_INT(prov_json_check_payload(deep), PROV_JSON_TOO_DEEP);
    CHECK_INT(prov_json_check_payload("{\"a\":"), PROV_JSON_INVALID);
    CHECK(prov_json_is_valid(ok) == 1);
    CHECK(prov_json_is_valid(deep) == 0);
    char *reg = prov_json_register_body("dev", NULL, NULL, ok);
    CHECK(reg != NULL);
    free(reg);
    CHECK(prov_json_register_body("dev", NULL, NULL, deep) == NULL);

    /* The service's payload under registrationState. */
    snprintf(body, sizeof body,
             "{\"status\":\"assigned\",\"registrationState\":"
             "{\"assignedHub\":\"h\",\"deviceId\":\"d\",\"payload\":%s}}",
             ok);
    CHECK_INT(prov_json_parse_reply(body, strlen(body), &r), 0);
    CHECK(!r.too_deep);
    CHECK_STR(r.payload_json, ok);
    prov_reply_free(&r);
    snprintf(body, sizeof body,
             "{\"status\":\"assigned\",\"registrationState\":"
             "{\"assignedHub\":\"h\",\"deviceId\":\"d\",\"payload\":%s}}",
             deep);
    CHECK_INT(prov_json_parse_reply(body, strlen(body), &r), -1);
    CHECK(r.too_deep);
    prov_reply_free(&r);
    CHECK_INT(prov_json_parse_reply("{\"a\":", 5, &r), -1);
    CHECK(!r.too_deep);

    /* The state machine: final PARSING, not retried like garbage. */
    prov_sm_config cfg;
    prov_sm sm;
    prov_sm_response resp;
    prov_sm_config_defaults(&cfg);
    prov_sm_init(&sm, &cfg);
    prov_sm_start(&sm, 0);
    CHECK_INT(prov_sm_next(&sm, 0).kind, PROV_ACT_SEND);
    prov_sm_sent(&sm, 0);
    memset(&resp, 0, sizeof resp);
    resp.status = 200;
    resp.body = body;
    resp.body_len = strlen(body);
    prov_sm_on_response(&sm, 10, &resp);
    CHECK_INT(sm.state, PROV_SM_FAILED);
    CHECK_INT(sm.error.result, PROV_DEVICE_RESULT_PARSING);
    CHECK(strstr(sm.error.message, "payload is nested deeper than 64 levels") !=
          NULL);
    CHECK_INT(sm.retries, 0);
    prov_sm_reset(&sm);
    free(ok);
    free(deep);
}

int main(void)
{
    RUN(test_big_integers_not_clamped);
    RUN(test_depth_limit);
    return testing_done();
}
