/*
 * The handle's error info: a failure is recorded with every configured
 * secret masked, whoever wrote the message. Its own file so that the
 * parts that report through the handle (options, certificates, cache)
 * and the client itself all call it, and never each other in a loop.
 */
#define _POSIX_C_SOURCE 200809L
#include "prov_client_private.h"

#include <stdio.h>
#include <string.h>

#include "dps_crypto.h"
#include "dps_encoding.h"
#include "prov_redact.h"

void prov_clear_error(PROV_DEVICE_LL_HANDLE h)
{
    h->error_message[0] = h->error_tracking_id[0] = '\0';
    h->error.result = PROV_DEVICE_RESULT_OK;
    h->error.message = h->error_message;
    h->error.tracking_id = h->error_tracking_id;
    h->error.http_status = 0;
    h->error.service_error_code = 0;
    h->error.transport_code = 0;
}

/* The secret part of a SAS token: its signature (the rest is ordinary
 * text such as "registrations"). Copied into buf, "" if none. */
static const char *sas_signature(const char *token, char *buf, size_t len)
{
    const char *sig = token ? strstr(token, "sig=") : NULL;
    size_t n = 0;

    if (sig) {
        sig += 4;
        while (sig[n] && sig[n] != '&' && n + 1 < len)
            n++;
        memcpy(buf, sig, n);
    }
    buf[n] = '\0';
    return buf;
}

/* Every secret the handle holds, for masking in messages. A key given
 * as a path is no secret (and worth showing); as PEM text its Base64
 * body is (the armour line is not). */
static void redact_secrets(PROV_DEVICE_LL_HANDLE h, char *msg)
{
    const prov_settings *s = &h->settings;
    const char *pem = s->x509_key ? dps_pem_start(s->x509_key) : NULL;
    char sig[128];
    const char *secrets[] = {
        s->symmetric_key,
        s->group_key,
        s->x509_key_password,
        s->proxy_password,
        h->attest.device_key_b64,
        sas_signature(h->attest.sas_token, sig, sizeof(sig)),
        pem ? strchr(pem, '\n') : NULL,
    };
    size_t i;

    for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        prov_redact(msg, secrets[i]);
    dps_wipe(sig, sizeof(sig));
}

PROV_DEVICE_RESULT prov_fail(PROV_DEVICE_LL_HANDLE h, PROV_DEVICE_RESULT result,
                             const char *message)
{
    prov_clear_error(h);
    h->error.result = result;
    snprintf(h->error_message, sizeof(h->error_message), "%s", message);
    redact_secrets(h, h->error_message);
    return result;
}
