/* Masking secrets in messages; see prov_redact.h. */
#include "prov_redact.h"

#include <string.h>

#define MIN_SECRET 6
#define WINDOW 12

/* Length of the longest run of secret that starts at msg. */
static size_t longest_run(const char *msg, const char *secret, size_t slen)
{
    size_t best = 0;

    for (size_t j = 0; j < slen; j++) {
        size_t k = 0;
        while (msg[k] && j + k < slen && msg[k] == secret[j + k])
            k++;
        if (k > best)
            best = k;
    }
    return best;
}

void prov_redact(char *msg, const char *secret)
{
    size_t slen, need;

    if (!msg || !secret)
        return;
    slen = strlen(secret);
    if (slen < MIN_SECRET)
        return;
    need = slen < WINDOW ? slen : WINDOW;
    for (size_t i = 0; msg[i]; i++) {
        size_t run = longest_run(msg + i, secret, slen);
        if (run >= need) {
            memset(msg + i, '*', run);
            i += run - 1;
        }
    }
}
