/*
 * The one list of options of Prov_Device_LL_SetOption. Everything else
 * comes from it: the C setters (prov_options.c), the Lua binding's value
 * conversion and core.options() (lua_dps.c), and through that the
 * validation of dps.new in lua/dps.lua; spec/07-options_spec.lua checks
 * the README's option tables against it.
 *
 * X(name, type, settings field, dps.new key, min, max):
 *   name    the option name constant of prov_device_ll_client.h
 *   type    how the value is passed and stored (prov_option_type)
 *   field   the prov_settings member it lands in (prov_options.c only)
 *   key     the dps.new config key it maps to one to one, or NULL when
 *           the Lua layer builds it from a composite key (x509, tpm,
 *           proxy, timeout, certificate_request)
 *   min/max the accepted range of integer options
 *
 * dps.new keys with no option behind them (id_scope, global_endpoint,
 * payload, and group, which attaches the handle with
 * Prov_Device_LL_Group_Attach) are lua/dps.lua's own.
 */
#ifndef PROV_OPTION_LIST_H
#define PROV_OPTION_LIST_H

#include <stdint.h>

#include "prov_device_ll_client.h"

typedef enum {
    PROV_OPT_TEXT,     /* const char*, copied; NULL clears */
    PROV_OPT_NONEMPTY, /* const char*, copied; "" refused */
    PROV_OPT_SECRET,   /* const char*, copied and wiped when replaced */
    PROV_OPT_KEY,      /* a SECRET that must be non-empty strict Base64 */
    PROV_OPT_REG_ID,   /* const char*, a valid registration id */
    PROV_OPT_BOOL,     /* const bool* */
    PROV_OPT_U8,       /* const uint8_t*, in min..max */
    PROV_OPT_U32,      /* const uint32_t*, in min..max */
    PROV_OPT_PROXY     /* const HTTP_PROXY_OPTIONS*; NULL clears */
} prov_option_type;

/* clang-format off */
#define PROV_OPTION_LIST(X)                                                   \
    X(PROV_REGISTRATION_ID, PROV_OPT_REG_ID, registration_id,                 \
      "registration_id", 0, 0)                                                \
    X(PROV_OPTION_SYMMETRIC_KEY, PROV_OPT_KEY, symmetric_key,                 \
      "symmetric_key", 0, 0)                                                  \
    X(PROV_OPTION_GROUP_KEY, PROV_OPT_KEY, group_key, "group_key", 0, 0)      \
    X(OPTION_X509_CERT, PROV_OPT_TEXT, x509_cert, NULL, 0, 0)                 \
    X(OPTION_X509_PRIVATE_KEY, PROV_OPT_SECRET, x509_key, NULL, 0, 0)         \
    X(PROV_OPTION_X509_KEY_PASSWORD, PROV_OPT_SECRET, x509_key_password,      \
      NULL, 0, 0)                                                             \
    X(PROV_OPTION_TPM_TCTI, PROV_OPT_TEXT, tpm_tcti, NULL, 0, 0)              \
    X(OPTION_TRUSTED_CERT, PROV_OPT_TEXT, trusted_certs, "trusted_certs",     \
      0, 0)                                                                   \
    X(OPTION_HTTP_PROXY, PROV_OPT_PROXY, proxy_host, NULL, 0, 0)              \
    X(PROV_OPTION_INSECURE_SKIP_VERIFY, PROV_OPT_BOOL, insecure_skip_verify,  \
      "insecure_skip_tls_verify", 0, 1)                                       \
    X(PROV_OPTION_API_VERSION, PROV_OPT_NONEMPTY, api_version,                \
      "api_version", 0, 0)                                                    \
    X(PROV_OPTION_CERTIFICATE_REQUEST_KEY, PROV_OPT_NONEMPTY, csr_key_path,  \
      NULL, 0, 0)                                                             \
    X(PROV_OPTION_ASSIGNMENT_CACHE, PROV_OPT_NONEMPTY, cache_path, "cache",   \
      0, 0)                                                                   \
    X(PROV_OPTION_LOG_TRACE, PROV_OPT_BOOL, logtrace, "logtrace", 0, 1)       \
    X(PROV_OPTION_DEADLINE, PROV_OPT_U32, deadline_s, NULL, 0, UINT32_MAX)    \
    X(PROV_OPTION_TIMEOUT, PROV_OPT_U8, request_timeout_s,                    \
      "request_timeout", 0, UINT8_MAX)                                        \
    X(PROV_OPTION_SAS_LIFETIME, PROV_OPT_U32, sas_lifetime_s, "sas_ttl",      \
      60, 31536000)                                                           \
    X(PROV_OPTION_MAX_RETRIES, PROV_OPT_U32, max_retries, "max_retries",      \
      0, 1000)
/* clang-format on */

#endif
