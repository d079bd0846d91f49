/*
 * dps: Azure IoT Hub Device Provisioning Service client, low-level C API.
 *
 * The API follows the official azure-iot-sdk-c low-level provisioning
 * client (Prov_Device_LL_*), so C code written for it ports with only its
 * attestation setup changed (options instead of the process-global
 * prov_dev_security_init / HSM modules). Attestation is per handle: one
 * process can provision many devices with different keys at once.
 *
 * Threading: a handle is used from one thread at a time. Nothing here
 * blocks: Prov_Device_LL_DoWork() advances DNS, TLS and HTTP without
 * waiting; a host loop sleeps on Prov_Device_LL_Get_Pollfds() and
 * Prov_Device_LL_Get_Timeout_Ms().
 */
#ifndef PROV_DEVICE_LL_CLIENT_H
#define PROV_DEVICE_LL_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DPS_CLIENT_VERSION "0.1.0"

typedef struct PROV_INSTANCE_INFO_TAG *PROV_DEVICE_LL_HANDLE;

/* Results. The first eleven are the original client's, in its order; the
 * last three are those the current service needs (as in the official
 * SDK). SUCCESS and INVALID_STATE keep their places for compatibility. */
typedef enum PROV_DEVICE_RESULT_TAG {
    PROV_DEVICE_RESULT_OK,
    PROV_DEVICE_RESULT_INVALID_ARG,
    PROV_DEVICE_RESULT_SUCCESS,
    PROV_DEVICE_RESULT_MEMORY,
    PROV_DEVICE_RESULT_PARSING,       /* the service's answer was unusable */
    PROV_DEVICE_RESULT_TRANSPORT,     /* DNS, TCP, TLS, proxy, HTTP framing */
    PROV_DEVICE_RESULT_INVALID_STATE, /* e.g. Register while registering */
    PROV_DEVICE_RESULT_DEV_AUTH_ERROR,/* the service refused the device */
    PROV_DEVICE_RESULT_TIMEOUT,       /* the overall deadline passed */
    PROV_DEVICE_RESULT_KEY_ERROR,     /* key, certificate or TPM problem */
    PROV_DEVICE_RESULT_ERROR,         /* anything else; see the error info */
    PROV_DEVICE_RESULT_HUB_NOT_SPECIFIED, /* errorCode 400208 */
    PROV_DEVICE_RESULT_UNAUTHORIZED,      /* errorCode 400209 */
    PROV_DEVICE_RESULT_DISABLED           /* the enrollment is disabled */
} PROV_DEVICE_RESULT;

/* Registration progress passed to the status callback. Unlike the
 * official HTTP client, every one of these is actually reported:
 * CONNECTED when the first answer arrives, REGISTERING when the register
 * request goes out, ASSIGNING while polling, then ASSIGNED or ERROR. */
typedef enum PROV_DEVICE_REG_STATUS_TAG {
    PROV_DEVICE_REG_STATUS_CONNECTED,
    PROV_DEVICE_REG_STATUS_REGISTERING,
    PROV_DEVICE_REG_STATUS_ASSIGNING,
    PROV_DEVICE_REG_STATUS_ASSIGNED,
    PROV_DEVICE_REG_STATUS_ERROR,
    PROV_DEVICE_REG_HUB_NOT_SPECIFIED
} PROV_DEVICE_REG_STATUS;

/* Called once per Register_Device, from DoWork (never from Register).
 * iothub_uri and device_id are NULL unless register_result is OK; they
 * stay valid until the next Register_Device or Destroy, and have been
 * checked (a DNS host name; an IoT Hub device id): a service value that
 * breaks those rules is PARSING instead. The callback may call Destroy
 * on the handle: the free is deferred until DoWork returns. */
typedef void (*PROV_DEVICE_CLIENT_REGISTER_DEVICE_CALLBACK)(
    PROV_DEVICE_RESULT register_result, const char *iothub_uri,
    const char *device_id, void *user_context);
typedef void (*PROV_DEVICE_CLIENT_REGISTER_STATUS_CALLBACK)(
    PROV_DEVICE_REG_STATUS reg_status, void *user_context);

typedef struct PROV_DEVICE_TRANSPORT_PROVIDER_TAG PROV_DEVICE_TRANSPORT_PROVIDER;
typedef const PROV_DEVICE_TRANSPORT_PROVIDER *(*PROV_DEVICE_TRANSPORT_PROVIDER_FUNCTION)(void);

/* The HTTPS transport (libcurl). The only one: DPS TPM attestation is not
 * offered over MQTT, and HTTPS passes proxies and firewalls best. */
const PROV_DEVICE_TRANSPORT_PROVIDER *Prov_Device_HTTP_Protocol(void);

/* Proxy settings for the "proxy_data" option, as in the official SDK.
 * username and password are both set or both NULL. */
typedef struct HTTP_PROXY_OPTIONS_TAG {
    const char *host_address;
    int port;
    const char *username;
    const char *password;
} HTTP_PROXY_OPTIONS;

/*
 * Option names for Prov_Device_LL_SetOption. Every option is copied; the
 * caller's value may be freed after the call. Options may be set only
 * while no registration is running (else INVALID_STATE). An unknown name
 * or a bad value is INVALID_ARG, never silently ignored; the reason is in
 * Prov_Device_LL_Get_Error().
 */
/* const char*: PEM bundle (official SDK) or a file path: the CA
 * certificates that verify the service, used instead of libcurl's default
 * bundle. For the real DPS it must hold DigiCert Global Root G2. */
#define OPTION_TRUSTED_CERT "TrustedCerts"
/* const HTTP_PROXY_OPTIONS*: HTTP CONNECT proxy; NULL clears it. */
#define OPTION_HTTP_PROXY "proxy_data"
/* const bool*: print requests and responses to stderr (or to the log
 * callback). Keys, SAS signatures and private keys are masked. Works for
 * every attestation (the official HTTP client accepts it for X.509 only). */
#define PROV_OPTION_LOG_TRACE "logtrace"
/* const uint8_t*: seconds one request may wait for its answer before it
 * counts as a (retried) network failure. Official semantics, but 0 means
 * our default of 30 s instead of "wait forever". */
#define PROV_OPTION_TIMEOUT "provisioning_timeout"
/* const char*: registration id. Required for symmetric keys; defaults to
 * the certificate CN (X.509) or the EK-derived id (TPM). */
#define PROV_REGISTRATION_ID "registration_id"
/* const char*: device certificate (with chain) and private key, as PEM
 * text (official SDK) or as a file path. Paths work with every libcurl
 * TLS backend; PEM keys need OpenSSL or wolfSSL (else KEY_ERROR). */
#define OPTION_X509_CERT "x509certificate"
#define OPTION_X509_PRIVATE_KEY "x509privatekey"

/* Options the official SDK lacks. */
/* const char*: Base64 device key of an individual enrollment. A key
 * that is not non-empty strict Base64 is refused with INVALID_ARG (the
 * message does not quote it); so is a group key. */
#define PROV_OPTION_SYMMETRIC_KEY "symmetric_key"
/* const char*: Base64 key of an enrollment group; the device key is
 * derived from it and the registration id in the client. */
#define PROV_OPTION_GROUP_KEY "group_key"
/* const char*: password of an encrypted X.509 private key. */
#define PROV_OPTION_X509_KEY_PASSWORD "x509privatekey_password"
/* const char*: TCTI configuration string ("device:/dev/tpmrm0",
 * "swtpm:host=127.0.0.1,port=2321"); selects TPM attestation. */
#define PROV_OPTION_TPM_TCTI "tpm_tcti"
/* const uint32_t*: seconds the whole registration may take, polls and
 * retries included, before it ends with TIMEOUT. Default 300; 0 = none. */
#define PROV_OPTION_DEADLINE "provisioning_deadline"
/* const uint32_t*: lifetime in seconds of the SAS tokens we sign
 * (default 3600). Tokens are renewed before they expire. */
#define PROV_OPTION_SAS_LIFETIME "sas_token_lifetime"
/* const char*: api-version query value (default "2021-06-01"). */
#define PROV_OPTION_API_VERSION "api_version"
/* const uint32_t*: how many failed attempts in a row (429, 5xx, network)
 * are retried before giving up (default 10). */
#define PROV_OPTION_MAX_RETRIES "max_retries"
/* const bool*: skip verification of the service certificate. For lab
 * use only; the name says so. */
#define PROV_OPTION_INSECURE_SKIP_VERIFY "insecure_skip_tls_verify"

/* Details of the last failure (or of the last rejected call). Strings are
 * owned by the handle and valid until the next call on it; empty when
 * unknown, never NULL. */
typedef struct PROV_DEVICE_ERROR_INFO_TAG {
    PROV_DEVICE_RESULT result;
    const char *message;     /* readable, never contains secrets */
    long http_status;        /* 0 when no HTTP answer was involved */
    long service_error_code; /* DPS errorCode, e.g. 401002; 0 if none */
    const char *tracking_id; /* DPS trackingId, for support requests */
    int transport_code;      /* CURLcode when a transfer failed, else 0 */
} PROV_DEVICE_ERROR_INFO;

/* File descriptor a host loop should watch (events: POLLIN/POLLOUT). */
typedef struct PROV_DEVICE_POLLFD_TAG {
    int fd;
    short events;
} PROV_DEVICE_POLLFD;

/* Creates a handle. uri: the global endpoint host
 * ("global.azure-devices-provisioning.net"), "host:port" or
 * "https://host[:port]" (a DNS name, IPv4 or [IPv6] address; port
 * 1..65535; no path, query or credentials). Returns NULL if an argument
 * is NULL or invalid or memory runs out. Does no I/O. */
PROV_DEVICE_LL_HANDLE Prov_Device_LL_Create(const char *uri,
    const char *scope_id, PROV_DEVICE_TRANSPORT_PROVIDER_FUNCTION protocol);

/* Frees the handle, aborting any transfer. NULL is ignored. Safe from
 * inside a callback of the same handle (the free happens when the
 * callback's DoWork returns). */
void Prov_Device_LL_Destroy(PROV_DEVICE_LL_HANDLE handle);

/* Starts a registration; the work happens in DoWork. register_callback is
 * required, status callback optional. A handle can register again after
 * any result (failure included). Returns OK, INVALID_ARG (NULL handle or
 * callback, no attestation configured, bad registration id), INVALID_STATE
 * (already registering), KEY_ERROR (key, certificate or TPM unusable),
 * TRANSPORT (trusted_certs neither PEM text nor a readable file), ERROR
 * (clock not set: the system time is before this build), MEMORY. No
 * error message quotes a key, password or certificate text. */
PROV_DEVICE_RESULT Prov_Device_LL_Register_Device(PROV_DEVICE_LL_HANDLE handle,
    PROV_DEVICE_CLIENT_REGISTER_DEVICE_CALLBACK register_callback,
    void *user_context, PROV_DEVICE_CLIENT_REGISTER_STATUS_CALLBACK reg_status_cb,
    void *status_user_ctext);

/* Advances the registration without blocking. NULL is ignored. */
void Prov_Device_LL_DoWork(PROV_DEVICE_LL_HANDLE handle);

/* Sets an option (see the names above). */
PROV_DEVICE_RESULT Prov_Device_LL_SetOption(PROV_DEVICE_LL_HANDLE handle,
    const char *option_name, const void *value);

const char *Prov_Device_LL_GetVersionString(void);

/* Custom payload (JSON text) sent with the registration. NULL clears it
 * (the official client fails on NULL). Invalid JSON is INVALID_ARG, and
 * so is nesting deeper than 64 levels ("payload nested deeper than 64
 * levels"). Integers are sent as written, beyond 64 bits too. */
PROV_DEVICE_RESULT Prov_Device_LL_Set_Provisioning_Payload(
    PROV_DEVICE_LL_HANDLE handle, const char *json);

/* The payload the service returned (registrationState.payload, JSON
 * text), or NULL. Valid until the next Register_Device or Destroy. An
 * integer beyond 64 bits keeps its digits with "e0" appended, so readers
 * take it as the closest double rather than a clamped integer. */
const char *Prov_Device_LL_Get_Provisioning_Payload(PROV_DEVICE_LL_HANDLE handle);

/* Extensions. */

/* The whole registrationState of the last answer as JSON text (hub,
 * device id, substatus, etag, timestamps, payload...), or NULL. */
const char *Prov_Device_LL_Get_Registration_State(PROV_DEVICE_LL_HANDLE handle);

/* The registration id in use (set, CN-derived or EK-derived), or NULL
 * when not known yet. */
const char *Prov_Device_LL_Get_Registration_Id(PROV_DEVICE_LL_HANDLE handle);

/* Details of the last failure; never NULL for a valid handle. */
const PROV_DEVICE_ERROR_INFO *Prov_Device_LL_Get_Error(PROV_DEVICE_LL_HANDLE handle);

/* Fills fds with up to max descriptors to watch; *count gets how many
 * there are (may exceed max). */
PROV_DEVICE_RESULT Prov_Device_LL_Get_Pollfds(PROV_DEVICE_LL_HANDLE handle,
    PROV_DEVICE_POLLFD *fds, size_t max, size_t *count);

/* Milliseconds until DoWork must run even if no descriptor is ready:
 * 0 = now, -1 = nothing scheduled (idle, or waiting on descriptors
 * only). While waiting out a Retry-After this is the whole wait: no
 * periodic wake-ups. */
long Prov_Device_LL_Get_Timeout_Ms(PROV_DEVICE_LL_HANDLE handle);

/* True while a registration is running. */
bool Prov_Device_LL_Is_Busy(PROV_DEVICE_LL_HANDLE handle);

/* Signs an IoT Hub SAS token for the assigned device with the key the
 * registration ended with (symmetric key, or the TPM-held hub key, which
 * never leaves the TPM). resource is "{hub}/devices/{deviceId}" when
 * NULL. *token is malloc'd; the caller frees it. */
PROV_DEVICE_RESULT Prov_Device_LL_Get_Hub_Sas_Token(PROV_DEVICE_LL_HANDLE handle,
    const char *resource, uint32_t lifetime_s, char **token);

/* For symmetric-key attestation after an assignment: the IoT Hub
 * connection string "HostName=<hub>;DeviceId=<id>;SharedAccessKey=<key>"
 * (the derived device key for a group enrollment), else NULL. It holds
 * the device key: do not log it. */
const char *Prov_Device_LL_Get_Hub_Connection_String(PROV_DEVICE_LL_HANDLE handle);

/* Names a result ("OK", "DEV_AUTH_ERROR", ...); never NULL. */
const char *Prov_Device_LL_Result_Name(PROV_DEVICE_RESULT result);

/* Certificates from DPS (CSR), status lookup, assignment cache. */
#include "prov_device_ll_certs.h"

#ifdef __cplusplus
}
#endif
#endif
