/*
 * JSON of the DPS protocol, through json-c: request bodies are built as
 * objects (never by pasting user text), replies are parsed into a plain
 * struct. Payloads pass through as JSON text.
 */
#ifndef PROV_JSON_H
#define PROV_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* How deep a custom payload may nest (objects and arrays): far beyond any
 * real payload, and still a bound on recursion. Deeper is refused with
 * "payload nested deeper than 64 levels". */
#define PROV_JSON_PAYLOAD_MAX_DEPTH 64
#define PROV_JSON_DEPTH_TEXT "64" /* the same, for messages */

/* Parse outcomes. */
#define PROV_JSON_OK 0
#define PROV_JSON_INVALID (-1)
#define PROV_JSON_TOO_DEEP (-2)

struct json_object;

typedef enum {
    PROV_STATUS_ABSENT,      /* no "status" field */
    PROV_STATUS_UNKNOWN,     /* a value we do not know */
    PROV_STATUS_UNASSIGNED,
    PROV_STATUS_ASSIGNING,
    PROV_STATUS_ASSIGNED,
    PROV_STATUS_FAILED,
    PROV_STATUS_DISABLED,
    PROV_STATUS_BLACKLISTED
} prov_reg_status;

/* A parsed reply: RegistrationOperationStatus, an error body
 * (ProvisioningServiceErrorDetails) or a TPM challenge. Every string is
 * malloc'd or NULL. */
typedef struct {
    prov_reg_status status;
    char *status_text;
    char *operation_id;
    char *registration_state_json;  /* registrationState, serialized */
    char *assigned_hub;
    char *device_id;
    char *registration_id;          /* registrationState.registrationId */
    char *payload_json;             /* registrationState.payload */
    long error_code;                /* top-level or registrationState */
    char *error_message;            /* errorMessage or message */
    char *tracking_id;
    char *authentication_key;       /* top-level (TPM challenge) */
    char *key_name;                 /* top-level keyName */
    char *hub_key;                  /* registrationState.tpm.authenticationKey */
    bool too_deep;                  /* set with -1: nested beyond the limit */
} prov_reply;

/* Parses body. Returns 0, or -1 if it is not a JSON object (reply is
 * then zeroed). Tolerates any field order and unknown fields; a field of
 * the wrong type counts as absent. */
int prov_json_parse_reply(const char *body, size_t len, prov_reply *reply);
void prov_reply_free(prov_reply *reply);

/* {"registrationId":..,"tpm":{"endorsementKey":..,"storageRootKey":..},
 *  "payload":<payload_json>} with tpm and payload only when given.
 * Returns malloc'd compact JSON, or NULL if payload_json is not valid
 * JSON or memory runs out. */
char *prov_json_register_body(const char *registration_id, const char *ek_b64,
                              const char *srk_b64, const char *payload_json);

/* 1 if text is one valid JSON value (object, array, string, number,
 * bool or null) with nothing after it, nested at most
 * PROV_JSON_PAYLOAD_MAX_DEPTH levels, else 0. */
int prov_json_is_valid(const char *text);

/* The same check, saying why: PROV_JSON_OK, PROV_JSON_TOO_DEEP or
 * PROV_JSON_INVALID. */
int prov_json_check_payload(const char *text);

/* Parses text[0..len) (text[len] must be the terminating NUL, as in a
 * Lua string; NULs before it are refused) under the same rules into
 * a json-c value the caller puts; NULL for the literal null. Integers
 * beyond int64 (negative) or uint64 (positive) become the closest double,
 * never a clamped INT64_MIN/UINT64_MAX. Returns a PROV_JSON_* outcome. */
int prov_json_parse_value(const char *text, size_t len, int max_depth,
                          struct json_object **out);

#endif
