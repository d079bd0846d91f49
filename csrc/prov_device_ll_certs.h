/*
 * Certificates issued by DPS, the device registration status lookup and
 * the assignment cache: additions to prov_device_ll_client.h (which
 * includes this file).
 */
#ifndef PROV_DEVICE_LL_CERTS_H
#define PROV_DEVICE_LL_CERTS_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* const char*: path of the operational private key; NULL turns it off.
 * When set, Register_Device sends a certificate signing request (subject
 * CN = registration id, signed with this key) and uses api-version
 * 2025-07-01-preview (unless PROV_OPTION_API_VERSION says otherwise); the
 * issued chain is then Prov_Device_LL_Get_Issued_Certificate. A missing
 * file is created first (EC P-256, PEM, mode 0600, temporary file and
 * rename); an existing RSA or EC key is reused. */
#define PROV_OPTION_CERTIFICATE_REQUEST_KEY "certificate_request_key"
/* const char*: path of the assignment cache file; NULL turns it off.
 * Register_Device first answers from it (through the usual callbacks,
 * from DoWork) when it holds an assignment for this endpoint, id scope,
 * registration id and attestation (and, with a certificate request, a
 * certificate for the key that has not expired); every assignment from
 * the service is written to it (atomically, mode 0600, no secret). */
#define PROV_OPTION_ASSIGNMENT_CACHE "assignment_cache"

/* The api-version sent with a certificate request. */
#define PROV_CSR_API_VERSION "2025-07-01-preview"

/* After an assignment with a certificate request: the issued chain as
 * PEM certificates, leaf first, concatenated; else NULL. The leaf has
 * been checked to carry the operational key and CN = registration id. */
const char *Prov_Device_LL_Get_Issued_Certificate(PROV_DEVICE_LL_HANDLE handle);

/* The Device Registration Status Lookup (POST /{idScope}/registrations/
 * {registrationId}): like Register_Device, with the same callbacks and
 * getters, but it asks for the device's current assignment instead of
 * registering it. Never sends a CSR, never reads the cache (an assigned
 * answer is written to it). A device the service does not know ends
 * with DEV_AUTH_ERROR and http_status 404 in the error info. */
PROV_DEVICE_RESULT Prov_Device_LL_Lookup_Device(
    PROV_DEVICE_LL_HANDLE handle,
    PROV_DEVICE_CLIENT_REGISTER_DEVICE_CALLBACK register_callback,
    void *user_context, PROV_DEVICE_CLIENT_REGISTER_STATUS_CALLBACK status_cb,
    void *status_ctx);

/* Answers from the assignment cache only, never asking the service (a
 * boot script, before the network or NTP is up): on a valid entry it
 * returns OK and the callbacks report it from DoWork as Register_Device
 * would; else it returns ERROR ("no valid cached assignment") at once. */
PROV_DEVICE_RESULT Prov_Device_LL_Cached_Assignment(
    PROV_DEVICE_LL_HANDLE handle,
    PROV_DEVICE_CLIENT_REGISTER_DEVICE_CALLBACK register_callback,
    void *user_context, PROV_DEVICE_CLIENT_REGISTER_STATUS_CALLBACK status_cb,
    void *status_ctx);

/* Removes the assignment cache file (absent is fine), so the next
 * Register_Device asks the service. INVALID_STATE while registering. */
PROV_DEVICE_RESULT Prov_Device_LL_Forget_Assignment(
    PROV_DEVICE_LL_HANDLE handle);

/* Whether the last result came from the assignment cache. */
bool Prov_Device_LL_Is_Cached_Assignment(PROV_DEVICE_LL_HANDLE handle);

#ifdef __cplusplus
}
#endif
#endif
