/*
 * Minimal unit-test support shared by the C tests: CHECK records a
 * failure and goes on; each test binary ends with the plain closing line
 * "N passed, N failed" and exits non-zero on any failure.
 *
 *   static void test_x(void) { CHECK(1 + 1 == 2); CHECK_STR(a, "b"); }
 *   int main(void) { RUN(test_x); return testing_done(); }
 */
#ifndef DPS_TESTING_H
#define DPS_TESTING_H

#include <stdio.h>
#include <string.h>

static int testing_passed, testing_failed, testing_current_failed;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                      \
            testing_current_failed = 1;                                    \
        }                                                                  \
    } while (0)

#define CHECK_STR(actual, expected)                                        \
    do {                                                                   \
        const char *a_ = (actual), *e_ = (expected);                       \
        if (!a_ || !e_ || strcmp(a_, e_) != 0) {                           \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s\n  got:  %s\n"    \
                    "  want: %s\n", __FILE__, __LINE__, #actual,           \
                    a_ ? a_ : "(null)", e_ ? e_ : "(null)");               \
            testing_current_failed = 1;                                    \
        }                                                                  \
    } while (0)

#define CHECK_INT(actual, expected)                                        \
    do {                                                                   \
        long long a_ = (long long)(actual), e_ = (long long)(expected);    \
        if (a_ != e_) {                                                    \
            fprintf(stderr, "%s:%d: CHECK_INT failed: %s: got %lld, "      \
                    "want %lld\n", __FILE__, __LINE__, #actual, a_, e_);   \
            testing_current_failed = 1;                                    \
        }                                                                  \
    } while (0)

#define RUN(test)                                                          \
    do {                                                                   \
        testing_current_failed = 0;                                        \
        test();                                                            \
        if (testing_current_failed) {                                      \
            testing_failed++;                                              \
            fprintf(stderr, "FAIL %s\n", #test);                           \
        } else {                                                           \
            testing_passed++;                                              \
        }                                                                  \
    } while (0)

static inline int testing_done(void)
{
    printf("%d passed, %d failed\n", testing_passed, testing_failed);
    return testing_failed ? 1 : 0;
}

#endif
