/*
 * Prov_Device_LL_SetOption: every option of prov_option_list.h, by its
 * type. Each value is copied into the handle's settings; nothing is
 * applied until the next Register_Device, so the order of SetOption
 * calls never matters.
 */
#define _POSIX_C_SOURCE 200809L
#include "prov_client_private.h"
#include "dps_crypto.h"
#include "prov_option_list.h"
#include "prov_values.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PROV_DEVICE_RESULT replace_string(PROV_DEVICE_LL_HANDLE h, void *at,
                                         const char *value, bool secret)
{
    char **slot = at;
    char *copy = NULL;
    if (value && !(copy = strdup(value)))
        return prov_fail(h, PROV_DEVICE_RESULT_MEMORY, "out of memory");
    if (secret)
        dps_free_secret(*slot);
    else
        free(*slot);
    *slot = copy;
    return PROV_DEVICE_RESULT_OK;
}

static PROV_DEVICE_RESULT set_proxy(PROV_DEVICE_LL_HANDLE h,
                                    const HTTP_PROXY_OPTIONS *p)
{
    prov_settings *s = &h->settings;
    PROV_DEVICE_RESULT r;

    if (p && (!p->host_address || !p->host_address[0]))
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG,
                         "proxy_data: host_address is required");
    if (p && (p->port <= 0 || p->port > 65535))
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG,
                         "proxy_data: port must be 1..65535");
    if (p && ((p->username == NULL) != (p->password == NULL)))
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG,
                         "proxy_data: set both username and password, or "
                         "neither");
    if ((r = replace_string(h, &s->proxy_host, p ? p->host_address : NULL,
                            false)) != PROV_DEVICE_RESULT_OK ||
        (r = replace_string(h, &s->proxy_user, p ? p->username : NULL,
                            true)) != PROV_DEVICE_RESULT_OK ||
        (r = replace_string(h, &s->proxy_password, p ? p->password : NULL,
                            true)) != PROV_DEVICE_RESULT_OK)
        return r;
    s->proxy_port = p ? p->port : 0;
    return PROV_DEVICE_RESULT_OK;
}

/* One entry of the option list (prov_option_list.h). */
typedef struct {
    const char *name;
    prov_option_type type;
    size_t offset; /* of the member of prov_settings */
    uint32_t min, max;
} option_spec;

static const option_spec option_specs[] = {
#define OPTION_SPEC(name, type, field, key, min, max) \
    {name, type, offsetof(prov_settings, field), min, max},
    PROV_OPTION_LIST(OPTION_SPEC)
#undef OPTION_SPEC
};

static const option_spec *find_option(const char *name)
{
    size_t i;
    for (i = 0; i < sizeof(option_specs) / sizeof(option_specs[0]); i++)
        if (strcmp(name, option_specs[i].name) == 0)
            return &option_specs[i];
    return NULL;
}

static PROV_DEVICE_RESULT out_of_range(PROV_DEVICE_LL_HANDLE h,
                                       const option_spec *o)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "%s must be %lu..%lu", o->name,
             (unsigned long)o->min, (unsigned long)o->max);
    return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG, msg);
}

static PROV_DEVICE_RESULT set_option(PROV_DEVICE_LL_HANDLE h,
                                     const option_spec *o, const void *value)
{
    void *slot = (char *)&h->settings + o->offset;
    uint32_t n;

    switch (o->type) {
    case PROV_OPT_PROXY:
        return set_proxy(h, value);
    case PROV_OPT_REG_ID:
        if (value && !prov_valid_registration_id(value))
            return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG,
                             "registration_id: 1 to 128 characters of "
                             "a-z A-Z 0-9 - . _ :, ending in a letter, "
                             "digit or '-'");
        return replace_string(h, slot, value, false);
    case PROV_OPT_NONEMPTY:
        if (value && !*(const char *)value) {
            char msg[160];
            snprintf(msg, sizeof(msg), "%s must not be empty", o->name);
            return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG, msg);
        }
        return replace_string(h, slot, value, false);
    case PROV_OPT_TEXT:
        return replace_string(h, slot, value, false);
    case PROV_OPT_SECRET:
        return replace_string(h, slot, value, true);
    case PROV_OPT_KEY:
        /* Refused now, not at Register_Device: a key that is not Base64
         * can never sign a token. The message never quotes the key. */
        if (value && !prov_valid_key(value)) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "%s is not valid Base64 (standard alphabet, padded, "
                     "not empty)",
                     o->name);
            return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG, msg);
        }
        return replace_string(h, slot, value, true);
    default:
        break;
    }
    /* Numbers and booleans: a value is required. */
    if (!value)
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG,
                         "this option needs a value");
    switch (o->type) {
    case PROV_OPT_BOOL:
        *(bool *)slot = *(const bool *)value;
        return PROV_DEVICE_RESULT_OK;
    case PROV_OPT_U8:
        n = *(const uint8_t *)value;
        if (n < o->min || n > o->max)
            return out_of_range(h, o);
        *(uint8_t *)slot = (uint8_t)n;
        return PROV_DEVICE_RESULT_OK;
    default: /* PROV_OPT_U32 */
        n = *(const uint32_t *)value;
        if (n < o->min || n > o->max)
            return out_of_range(h, o);
        *(uint32_t *)slot = n;
        return PROV_DEVICE_RESULT_OK;
    }
}

PROV_DEVICE_RESULT Prov_Device_LL_SetOption(PROV_DEVICE_LL_HANDLE h,
                                            const char *name,
                                            const void *value)
{
    const option_spec *o;

    if (!h || !name)
        return PROV_DEVICE_RESULT_INVALID_ARG;
    if (h->running)
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_STATE,
                         "options cannot change while registering");
    o = find_option(name);
    if (!o) {
        char msg[160];
        snprintf(msg, sizeof(msg), "unknown option '%.100s'", name);
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG, msg);
    }
    return set_option(h, o, value);
}
