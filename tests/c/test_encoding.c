/*
 * The shared text helpers (dps_encoding.c) and the transport's reading of
 * Retry-After (dps_http_retry_after_s): one copy of each, tested once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dps_encoding.h"
#include "dps_http.h"
#include "testing.h"

/* The C SDK's rules (docs/protocol.md §5.2): lowercase hex, '~' encoded. */
static void test_url_encode(void)
{
    char buf[64];
    char *e = dps_url_encode("0ne00/registrations/a:b~c d!()*-._");
    CHECK_STR(e, "0ne00%2fregistrations%2fa%3ab%7ec%20d!()*-._");
    free(e);
    e = dps_url_encode("");
    CHECK_STR(e, "");
    free(e);
    CHECK(dps_url_encode(NULL) == NULL);
    /* The in-place form writes no terminator and returns the end. */
    memset(buf, 'x', sizeof buf);
    char *end = dps_url_encode_to(buf, "a/\xc3\xa9");
    CHECK_INT(end - buf, 1 + 3 + 6);
    *end = '\0';
    CHECK_STR(buf, "a%2f%c3%a9");
}

static void test_base64_alphabet(void)
{
    const char *all = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789+/";
    for (const char *p = all; *p; p++)
        CHECK(dps_is_base64_char(*p));
    CHECK(!dps_is_base64_char('='));
    CHECK(!dps_is_base64_char('-'));
    CHECK(!dps_is_base64_char('_'));
    CHECK(!dps_is_base64_char(' '));
    CHECK(!dps_is_base64_char('\0'));
    CHECK_INT(dps_base64_check("QUJD", 4), 0);
    CHECK_INT(dps_base64_check("QUI=", 4), 1);
    CHECK_INT(dps_base64_check("QQ==", 4), 2);
    CHECK_INT(dps_base64_check("Q===", 4), -1);
    CHECK_INT(dps_base64_check("QU J", 4), -1);
    CHECK_INT(dps_base64_check("QUJ", 3), -1);
}

static void test_pem_start(void)
{
    const char *pem = "-----BEGIN CERTIFICATE-----\nMIIB\n";
    const char *bag =
        "Bag Attributes\n    localKeyID: 01\n-----BEGIN PRIVATE KEY-----\n";
    CHECK(dps_pem_start(pem) == pem);
    CHECK(dps_pem_start(bag) == strstr(bag, "-----BEGIN"));
    CHECK(dps_pem_start(bag) > bag);
    CHECK(dps_pem_start("/etc/dps/device.pem") == NULL);
    CHECK(dps_pem_start("") == NULL);
    CHECK(dps_pem_start(NULL) == NULL);
}

static void test_strdup_or_null(void)
{
    char *s = dps_strdup_or_null("router-0042");
    CHECK_STR(s, "router-0042");
    free(s);
    CHECK(dps_strdup_or_null(NULL) == NULL);
}

/* Seconds as sent, unclamped: clamping is the state machine's policy. */
static void test_retry_after_seconds(void)
{
    CHECK_INT(dps_http_retry_after_s("5", NULL, 0), 5);
    CHECK_INT(dps_http_retry_after_s("\t5  ", NULL, 0), 5);
    CHECK_INT(dps_http_retry_after_s("0", NULL, 0), 0);
    CHECK_INT(dps_http_retry_after_s("301", NULL, 0), 301);
    CHECK_INT(dps_http_retry_after_s("184467440737095516160", NULL, 0),
              UINT32_MAX);
    CHECK_INT(dps_http_retry_after_s(NULL, NULL, 0), -1);
    CHECK_INT(dps_http_retry_after_s("", NULL, 0), -1);
    CHECK_INT(dps_http_retry_after_s("  ", NULL, 0), -1);
    CHECK_INT(dps_http_retry_after_s("5s", NULL, 0), -1);
    CHECK_INT(dps_http_retry_after_s("+5", NULL, 0), -1);
    CHECK_INT(dps_http_retry_after_s("-4", NULL, 0), -1);
    CHECK_INT(dps_http_retry_after_s("3.5", NULL, 0), -1);
    CHECK_INT(dps_http_retry_after_s("5 5", NULL, 0), -1);
    CHECK_INT(dps_http_retry_after_s("soon", NULL, 0), -1);
}

static void test_retry_after_dates(void)
{
    const char *date = "Sun, 06 Nov 1994 08:49:37 GMT";
    /* Against a wall clock of 0: the UNIX time itself. */
    CHECK_INT(dps_http_retry_after_s(date, NULL, 0), 784111777);
    CHECK_INT(dps_http_retry_after_s("Thu, 29 Feb 2024 00:00:00 GMT", NULL, 0),
              1709164800);
    CHECK_INT(dps_http_retry_after_s("Fri, 31 Dec 1999 23:59:59 GMT", NULL, 0),
              946684799);
    /* The two obsolete forms HTTP recipients must also read. */
    CHECK_INT(dps_http_retry_after_s("Sunday, 06-Nov-94 08:49:37 GMT", NULL, 0),
              784111777);
    CHECK_INT(dps_http_retry_after_s("Sun Nov  6 08:49:37 1994", NULL, 0),
              784111777);
    /* Relative to the answer's Date; a date already past is 0. */
    CHECK_INT(dps_http_retry_after_s("Sun, 06 Nov 1994 08:50:37 GMT", date, 0),
              60);
    CHECK_INT(dps_http_retry_after_s("Sun, 06 Nov 1994 08:49:30 GMT", date, 0),
              0);
    CHECK_INT(dps_http_retry_after_s("Mon, 07 Nov 1994 08:49:37 GMT", date, 0),
              86400);
    /* Date wins over the device clock, however wrong that is. */
    CHECK_INT(dps_http_retry_after_s("Sun, 06 Nov 1994 08:49:47 GMT", date,
                                     1700000000),
              10);
    /* Without a usable Date, the device clock. */
    CHECK_INT(dps_http_retry_after_s("Sun, 06 Nov 1994 08:49:47 GMT",
                                     "yesterday", 784111777),
              10);
    CHECK_INT(dps_http_retry_after_s("Sun, 06 Nov 1994 08:49:47 GMT", NULL,
                                     784111777 + 100),
              0);
    /* Not dates at all. */
    CHECK_INT(dps_http_retry_after_s("Sun, 06 Nov 1994 24:00:00 GMT", NULL, 0),
              -1);
    CHECK_INT(dps_http_retry_after_s("Sun, 06 Nov 1994 08:49:37 GMTx", NULL, 0),
              -1);
    CHECK_INT(dps_http_retry_after_s("Sun, 06 Xyz 1994 08:49:37 GMT", NULL, 0),
              -1);
}

int main(void)
{
    RUN(test_url_encode);
    RUN(test_base64_alphabet);
    RUN(test_pem_start);
    RUN(test_strdup_or_null);
    RUN(test_retry_after_seconds);
    RUN(test_retry_after_dates);
    return testing_done();
}
