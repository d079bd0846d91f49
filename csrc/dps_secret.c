/*
 * Freeing secrets: the string form of dps_wipe, shared by every module
 * that holds keys, passwords or tokens, whichever crypto backend wipes.
 */
#include "dps_crypto.h"

#include <stdlib.h>
#include <string.h>

void dps_free_secret(char *s)
{
    if (s) {
        dps_wipe(s, strlen(s));
        free(s);
    }
}
