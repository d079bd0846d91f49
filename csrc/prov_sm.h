/*
 * The DPS registration protocol as a state machine that performs no I/O.
 *
 * The caller (prov_device_ll_client.c) owns the sockets and the clock: it
 * asks prov_sm_next() what to do at time `now`, sends the request it is
 * told to, and feeds the answer (or the network failure) back in. All
 * times are milliseconds on a monotonic clock chosen by the caller.
 *
 * Protocol (docs/protocol.md §3, §4):
 *   PUT register  -> 202/200 assigning  -> wait Retry-After -> GET poll ...
 *                 -> 200 assigned|failed|disabled           -> done
 *                 -> 401 + authenticationKey (TPM only)     -> CHALLENGE
 *                 -> 429 / 5xx / network error              -> retry same
 *                    request after Retry-After or backoff, bounded
 *                 -> other 4xx                               -> failed
 */
#ifndef PROV_SM_H
#define PROV_SM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prov_device_ll_client.h"

typedef enum {
    PROV_SM_IDLE,        /* not started */
    PROV_SM_WAITING,     /* a request is due at next_send_ms */
    PROV_SM_IN_FLIGHT,   /* a request was sent; waiting for its answer */
    PROV_SM_CHALLENGE,   /* TPM challenge received; caller must process it */
    PROV_SM_ASSIGNED,    /* final: result holds the assignment */
    PROV_SM_FAILED       /* final: error says why */
} prov_sm_state;

typedef enum {
    PROV_REQ_REGISTER,   /* PUT .../register */
    PROV_REQ_POLL        /* GET .../operations/{operationId} */
} prov_request_kind;

typedef enum {
    PROV_ACT_NONE,       /* idle or finished: nothing to do */
    PROV_ACT_WAIT,       /* nothing before at_ms (a send, or the deadline) */
    PROV_ACT_SEND,       /* send `request` now, then call prov_sm_sent() */
    PROV_ACT_CHALLENGE,  /* process result.challenge, then challenge_done() */
    PROV_ACT_DONE        /* just finished: report result or error once */
} prov_action_kind;

typedef struct {
    prov_action_kind kind;
    prov_request_kind request;  /* for SEND */
    uint64_t at_ms;             /* for WAIT: when to call next() again */
} prov_sm_action;

typedef struct {
    uint32_t deadline_ms;     /* whole registration; 0 = none */
    uint32_t default_poll_ms; /* poll interval when 202 has no Retry-After */
    uint32_t backoff_min_ms;  /* first retry delay without Retry-After */
    uint32_t backoff_max_ms;  /* cap of the exponential backoff */
    uint32_t jitter_max_ms;   /* random 0..jitter added to backoff */
    uint32_t retry_after_min_s;  /* Retry-After is clamped to [min, max] */
    uint32_t retry_after_max_s;
    uint32_t max_retries;     /* transient failures in a row before giving up */
    uint32_t max_challenges;  /* TPM challenges accepted per registration */
    bool tpm;                 /* a 401 with authenticationKey is a challenge */
    uint32_t random_seed;     /* jitter; tests pass a fixed seed */
} prov_sm_config;

/* Fills cfg with the documented defaults (deadline 300 s, poll 2 s,
 * backoff 1..100 s, jitter 5 s, Retry-After 1..300 s, 10 retries,
 * 2 challenges). */
void prov_sm_config_defaults(prov_sm_config *cfg);

/* One answer from the service, as the transport received it. */
typedef struct {
    long status;              /* HTTP status code */
    int64_t retry_after_s;    /* Retry-After in seconds (the transport
                                 parses it); -1 when there is none */
    const char *body;         /* not NUL-terminated; may be NULL */
    size_t body_len;
} prov_sm_response;

typedef struct {
    PROV_DEVICE_RESULT result;
    long http_status;
    long service_error_code;  /* DPS errorCode */
    char tracking_id[64];
    char message[256];
    int transport_code;       /* CURLcode for network failures */
} prov_sm_error;

/* What the service told us. Strings are malloc'd and owned by the sm. */
typedef struct {
    char *operation_id;       /* first one received is kept */
    char *status;             /* last status string seen */
    char *registration_state_json;
    char *assigned_hub;
    char *device_id;
    char *payload_json;       /* registrationState.payload */
    char *challenge_b64;      /* TPM: authenticationKey of a 401 */
    char *key_name;           /* TPM: keyName of that challenge */
    char *hub_key_b64;        /* TPM: registrationState.tpm.authenticationKey */
} prov_sm_result;

typedef struct prov_sm {
    prov_sm_config cfg;
    prov_sm_state state;
    prov_request_kind request;   /* the one due or in flight */
    uint64_t started_ms;
    uint64_t next_send_ms;
    uint32_t retries;            /* consecutive transient failures */
    uint32_t challenges;
    uint32_t rng;
    bool done_reported;
    bool saw_assigning;          /* an 'assigning' answer arrived */
    prov_sm_result result;
    prov_sm_error error;
} prov_sm;

void prov_sm_init(prov_sm *sm, const prov_sm_config *cfg);
/* Frees what the sm holds and returns it to IDLE (config kept). */
void prov_sm_reset(prov_sm *sm);

/* Begins a registration: the register request is due now. */
void prov_sm_start(prov_sm *sm, uint64_t now_ms);

/* What to do at time now. Also enforces the deadline: past it, any
 * state but a final one becomes FAILED/TIMEOUT (the caller aborts a
 * transfer in flight). DONE is returned once; NONE afterwards. */
prov_sm_action prov_sm_next(prov_sm *sm, uint64_t now_ms);

/* The request returned by SEND went out (or was queued) at now. */
void prov_sm_sent(prov_sm *sm, uint64_t now_ms);

/* The answer to the request in flight. */
void prov_sm_on_response(prov_sm *sm, uint64_t now_ms,
                         const prov_sm_response *resp);

/* The request in flight failed without an answer (DNS, connect, TLS,
 * reset, timeout, oversized body). retryable=false for failures a retry
 * cannot fix (bad CA file, TLS verification failure, bad client cert):
 * those end the registration with `result`. */
void prov_sm_on_network_error(prov_sm *sm, uint64_t now_ms, bool retryable,
                              PROV_DEVICE_RESULT result, int transport_code,
                              const char *message);

/* The caller processed (or failed to process) result.challenge_b64.
 * On OK the register request is due again, now authenticated. */
void prov_sm_challenge_done(prov_sm *sm, uint64_t now_ms,
                            PROV_DEVICE_RESULT result, const char *message);

/* Builds the path + query of the request due: "/{scope}/registrations/
 * {id}/register?api-version=V" or ".../operations/{opId}?api-version=V",
 * each segment URL-encoded. Returns malloc'd text or NULL on OOM. */
char *prov_sm_request_path(const prov_sm *sm, const char *scope,
                           const char *registration_id,
                           const char *api_version);

#endif
