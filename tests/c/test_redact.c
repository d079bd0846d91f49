/* prov_redact: runs of a secret never survive in a message. */
#include <string.h>

#include "prov_redact.h"
#include "testing.h"

static void test_masks_whole_and_partial_runs(void)
{
    char msg[200];

    strcpy(msg, "proxy said: bad password hunter2secret (407)");
    prov_redact(msg, "hunter2secret");
    CHECK_STR(msg, "proxy said: bad password ************* (407)");

    /* A 12-byte run of a long key is enough to mask. */
    strcpy(msg, "x MIIEvQIBADANBgkq y");
    prov_redact(msg, "AAAAMIIEvQIBADANBgkqhkiG9w0BAQEFAASC");
    CHECK_STR(msg, "x **************** y");

    /* Every occurrence. */
    strcpy(msg, "k=s3cr3tKEY and again s3cr3tKEY");
    prov_redact(msg, "s3cr3tKEY");
    CHECK_STR(msg, "k=********* and again *********");
}

static void test_leaves_others_alone(void)
{
    char msg[200];

    strcpy(msg, "cannot connect to the service (curl 7)");
    prov_redact(msg, "abc"); /* too short to mask safely */
    prov_redact(msg, NULL);
    prov_redact(msg, "the servant is down"); /* runs shorter than 12 */
    CHECK_STR(msg, "cannot connect to the service (curl 7)");
    prov_redact(NULL, "secret");
    strcpy(msg, "");
    prov_redact(msg, "secret");
    CHECK_STR(msg, "");
}

int main(void)
{
    RUN(test_masks_whole_and_partial_runs);
    RUN(test_leaves_others_alone);
    return testing_done();
}
