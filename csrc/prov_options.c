/*
 * Prov_Device_LL_SetOption: names, value types and validation. Every
 * value is copied into the handle's settings; nothing is applied until
 * the next Register_Device, so the order of SetOption calls never
 * matters.
 */
#define _POSIX_C_SOURCE 200809L
#include "prov_client_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PROV_DEVICE_RESULT replace_string(PROV_DEVICE_LL_HANDLE h, char **slot,
                                         const char *value, bool secret)
{
    char *copy = NULL;
    if (value && !(copy = strdup(value)))
        return prov_fail(h, PROV_DEVICE_RESULT_MEMORY, "out of memory");
    if (secret)
        prov_free_secret(*slot);
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

static PROV_DEVICE_RESULT set_string_option(PROV_DEVICE_LL_HANDLE h,
                                            const char *name,
                                            const char *value)
{
    prov_settings *s = &h->settings;

    if (strcmp(name, PROV_REGISTRATION_ID) == 0) {
        if (value && !prov_valid_registration_id(value))
            return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG,
                             "registration_id: 1 to 128 characters of "
                             "a-z A-Z 0-9 - . _ :, ending in a letter, "
                             "digit or '-'");
        return replace_string(h, &s->registration_id, value, false);
    }
    if (strcmp(name, OPTION_TRUSTED_CERT) == 0)
        return replace_string(h, &s->trusted_certs, value, false);
    if (strcmp(name, OPTION_X509_CERT) == 0)
        return replace_string(h, &s->x509_cert, value, false);
    if (strcmp(name, OPTION_X509_PRIVATE_KEY) == 0)
        return replace_string(h, &s->x509_key, value, true);
    if (strcmp(name, PROV_OPTION_X509_KEY_PASSWORD) == 0)
        return replace_string(h, &s->x509_key_password, value, true);
    if (strcmp(name, PROV_OPTION_SYMMETRIC_KEY) == 0)
        return replace_string(h, &s->symmetric_key, value, true);
    if (strcmp(name, PROV_OPTION_GROUP_KEY) == 0)
        return replace_string(h, &s->group_key, value, true);
    if (strcmp(name, PROV_OPTION_TPM_TCTI) == 0)
        return replace_string(h, &s->tpm_tcti, value, false);
    if (strcmp(name, PROV_OPTION_CERTIFICATE_REQUEST_KEY) == 0 ||
        strcmp(name, PROV_OPTION_ASSIGNMENT_CACHE) == 0) {
        if (value && !value[0])
            return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG,
                             "a file path must not be empty");
        return replace_string(h, strcmp(name, PROV_OPTION_ASSIGNMENT_CACHE) == 0
                                     ? &s->cache_path : &s->csr_key_path,
                              value, false);
    }
    if (strcmp(name, PROV_OPTION_API_VERSION) == 0) {
        if (value && !value[0])
            return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG,
                             "api_version must not be empty");
        return replace_string(h, &s->api_version, value, false);
    }
    return PROV_DEVICE_RESULT_ERROR; /* not a string option */
}

static PROV_DEVICE_RESULT set_number_option(PROV_DEVICE_LL_HANDLE h,
                                            const char *name,
                                            const void *value)
{
    prov_settings *s = &h->settings;

    if (strcmp(name, PROV_OPTION_TIMEOUT) == 0) {
        s->request_timeout_s = *(const uint8_t *)value;
        return PROV_DEVICE_RESULT_OK;
    }
    if (strcmp(name, PROV_OPTION_DEADLINE) == 0) {
        s->deadline_s = *(const uint32_t *)value;
        return PROV_DEVICE_RESULT_OK;
    }
    if (strcmp(name, PROV_OPTION_SAS_LIFETIME) == 0) {
        uint32_t v = *(const uint32_t *)value;
        if (v < 60 || v > 31536000)
            return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG,
                             "sas_token_lifetime must be 60..31536000 s");
        s->sas_lifetime_s = v;
        return PROV_DEVICE_RESULT_OK;
    }
    if (strcmp(name, PROV_OPTION_MAX_RETRIES) == 0) {
        uint32_t v = *(const uint32_t *)value;
        if (v > 1000)
            return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG,
                             "max_retries must be 0..1000");
        s->max_retries = v;
        return PROV_DEVICE_RESULT_OK;
    }
    if (strcmp(name, PROV_OPTION_LOG_TRACE) == 0) {
        s->logtrace = *(const bool *)value;
        return PROV_DEVICE_RESULT_OK;
    }
    if (strcmp(name, PROV_OPTION_INSECURE_SKIP_VERIFY) == 0) {
        s->insecure_skip_verify = *(const bool *)value;
        return PROV_DEVICE_RESULT_OK;
    }
    return PROV_DEVICE_RESULT_ERROR; /* not a number option */
}

static bool is_number_option(const char *name)
{
    static const char *const names[] = {
        PROV_OPTION_TIMEOUT, PROV_OPTION_DEADLINE, PROV_OPTION_SAS_LIFETIME,
        PROV_OPTION_MAX_RETRIES, PROV_OPTION_LOG_TRACE,
        PROV_OPTION_INSECURE_SKIP_VERIFY};
    size_t i;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

PROV_DEVICE_RESULT Prov_Device_LL_SetOption(PROV_DEVICE_LL_HANDLE h,
                                            const char *name,
                                            const void *value)
{
    PROV_DEVICE_RESULT r;

    if (!h || !name)
        return PROV_DEVICE_RESULT_INVALID_ARG;
    if (h->running)
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_STATE,
                         "options cannot change while registering");
    if (strcmp(name, OPTION_HTTP_PROXY) == 0)
        return set_proxy(h, value);
    if (is_number_option(name)) {
        if (!value)
            return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG,
                             "this option needs a value");
        return set_number_option(h, name, value);
    }
    r = set_string_option(h, name, value);
    if (r != PROV_DEVICE_RESULT_ERROR)
        return r;
    {
        char msg[160];
        snprintf(msg, sizeof(msg), "unknown option '%.100s'", name);
        return prov_fail(h, PROV_DEVICE_RESULT_INVALID_ARG, msg);
    }
}
