/*
 * TPM 2.0 attestation on tpm2-tss (ESAPI + tctildr), docs/protocol.md §6.
 *
 * Everything cryptographic happens inside the TPM; this file only drives
 * the command sequence of §6.5 and marshals with Tss2_MU. The objects:
 *   EK  0x81010001  endorsement hierarchy, created with the §6.1 template
 *   SRK 0x81000001  owner hierarchy, created with the §6.1 template
 *   ID  0x81000100  the DPS identity / IoT Hub HMAC key, imported from blobs
 * All hierarchies and objects use empty auth values, like the Azure SDKs.
 */
#include "dps_tpm.h"
#include "dps_crypto.h"
#include "dps_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#define EK_HANDLE 0x81010001u
#define SRK_HANDLE 0x81000001u
#define ID_KEY_HANDLE 0x81000100u
#define DEFAULT_TCTI "device:/dev/tpmrm0"

/* §6.1 attribute sets, spelled with the TSS names so a reader can check
 * them against the spec; the asserts pin the hex values docs/protocol.md gives. */
#define EK_ATTRS                                                           \
    (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |                      \
     TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |       \
     TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
#define SRK_ATTRS                                                          \
    (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |                      \
     TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |          \
     TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
_Static_assert(EK_ATTRS == 0x000300B2u,
               "EK attributes of docs/protocol.md §6.1");
_Static_assert(SRK_ATTRS == 0x00030472u,
               "SRK attributes of docs/protocol.md §6.1");

/* EK authPolicy = PolicySecret(TPM_RH_ENDORSEMENT): using the EK needs a
 * policy session that proves knowledge of the endorsement auth. */
static const uint8_t ek_auth_policy[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
    0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
    0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

/* No ESYS_TR is cached across calls: another process (tpm2-tools, a
 * second dps) may evict or replace the persistent objects in between, and
 * Esys_TR_FromTPMPublic re-reads the object and its Name each time. */
struct dps_tpm {
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
};

/* A primary key we may have to create: where it lives and how. */
struct primary_spec {
    const char *name;
    TPM2_HANDLE handle;
    ESYS_TR hierarchy;
    TPMA_OBJECT attrs;
    const uint8_t *policy;
    size_t policy_len;
};

static const struct primary_spec ek_spec = {
    "EK", EK_HANDLE, ESYS_TR_RH_ENDORSEMENT, EK_ATTRS,
    ek_auth_policy, sizeof ek_auth_policy,
};
static const struct primary_spec srk_spec = {
    "SRK", SRK_HANDLE, ESYS_TR_RH_OWNER, SRK_ATTRS, NULL, 0,
};

int dps_tpm_available(void)
{
    return 1;
}

/* "<what> failed: <decoded rc>", the common shape of every TPM error.
 * After a lost connection ESAPI stays in an error state and answers every
 * later call with BAD_SEQUENCE, whose text alone would puzzle a user. */
static int tpm_fail(char *err, size_t errlen, const char *what, TSS2_RC rc)
{
    const char *hint = rc == TSS2_ESYS_RC_BAD_SEQUENCE
                           ? " (an earlier TPM failure left this handle "
                             "unusable; close and reopen the TPM)"
                           : "";

    dps_set_error(err, errlen, "%s failed: %s%s", what, Tss2_RC_Decode(rc), hint);
    return -1;
}

/* True for a TPM (not TSS) format-1 TPM_RC_HANDLE, whatever handle or
 * parameter number it carries: ReadPublic's answer for an empty slot.
 * Format-1 codes keep the error in bits 0-5 and the handle/parameter
 * number in bits 6-11, so only the former are compared. */
static int is_rc_handle(TSS2_RC rc)
{
    if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER)
        return 0;
    return (rc & TPM2_RC_FMT1) && (rc & (TPM2_RC_FMT1 | 0x3Fu)) ==
                                      TPM2_RC_HANDLE;
}

/* Esys_FlushContext / Esys_TR_Close for cleanup paths: nothing to report
 * there, and the ESYS_TR is reset so a second call is harmless. */
static void flush_tr(ESYS_CONTEXT *esys, ESYS_TR *tr)
{
    if (*tr != ESYS_TR_NONE)
        Esys_FlushContext(esys, *tr);
    *tr = ESYS_TR_NONE;
}

static void close_tr(ESYS_CONTEXT *esys, ESYS_TR *tr)
{
    if (*tr != ESYS_TR_NONE)
        Esys_TR_Close(esys, tr);
    *tr = ESYS_TR_NONE;
}

/* ---- open / close ---------------------------------------------------- */

/* conf is a tctildr string: "device:/dev/tpmrm0" (the kernel resource
 * manager, usable by several processes), "swtpm:host=..,port=..",
 * "mssim:..", "tabrmd" where installed. */
int dps_tpm_open(const char *tcti, dps_tpm **tpm, char *err, size_t errlen)
{
    const char *conf = (tcti && *tcti) ? tcti : DEFAULT_TCTI;
    dps_tpm *t;
    TSS2_RC rc;

    *tpm = NULL;
    t = calloc(1, sizeof *t); /* zeroed: dps_tpm_close can undo any stage */
    if (!t) {
        dps_set_error(err, errlen, "out of memory");
        return -1;
    }
    rc = Tss2_TctiLdr_Initialize(conf, &t->tcti);
    if (rc == TSS2_RC_SUCCESS)
        rc = Esys_Initialize(&t->esys, t->tcti, NULL);
    /* A TPM behind a resource manager (or one swtpm already started) is
     * initialised: Startup then answers TPM_RC_INITIALIZE, which is fine. */
    if (rc == TSS2_RC_SUCCESS) {
        rc = Esys_Startup(t->esys, TPM2_SU_CLEAR);
        if (rc == TPM2_RC_INITIALIZE)
            rc = TSS2_RC_SUCCESS;
    }
    if (rc != TSS2_RC_SUCCESS) {
        dps_set_error(err, errlen, "cannot reach the TPM via TCTI '%s': %s", conf,
                Tss2_RC_Decode(rc));
        dps_tpm_close(t);
        return -1;
    }
    *tpm = t;
    return 0;
}

void dps_tpm_close(dps_tpm *tpm)
{
    if (!tpm)
        return;
    /* ESAPI borrows the TCTI, so it goes first. */
    if (tpm->esys)
        Esys_Finalize(&tpm->esys);
    if (tpm->tcti)
        Tss2_TctiLdr_Finalize(&tpm->tcti);
    free(tpm);
}

/* ---- EK and SRK ------------------------------------------------------ */

/* The §6.1 template: RSA-2048, exponent 0 (65537), AES-128-CFB, scheme
 * NULL, unique empty. The empty unique is the C SDK's choice, not the TCG
 * default (256 zero bytes); a primary key is derived from the hierarchy
 * seed and the template, so only this template recreates the EK (and
 * registration id) that enrollments made with the Azure SDKs expect. */
static void rsa_template(const struct primary_spec *spec, TPM2B_PUBLIC *pub)
{
    TPMT_PUBLIC *t = &pub->publicArea;
    TPMS_RSA_PARMS *rsa = &t->parameters.rsaDetail;

    memset(pub, 0, sizeof *pub);
    t->type = TPM2_ALG_RSA;
    t->nameAlg = TPM2_ALG_SHA256;
    t->objectAttributes = spec->attrs;
    t->authPolicy.size = (UINT16)spec->policy_len;
    if (spec->policy_len)
        memcpy(t->authPolicy.buffer, spec->policy, spec->policy_len);
    rsa->symmetric.algorithm = TPM2_ALG_AES;
    rsa->symmetric.keyBits.aes = 128;
    rsa->symmetric.mode.aes = TPM2_ALG_CFB;
    rsa->scheme.scheme = TPM2_ALG_NULL;
    rsa->keyBits = 2048;
    rsa->exponent = 0;
    t->unique.rsa.size = 0;
}

/* CreatePrimary + EvictControl to the spec's handle + FlushContext, the
 * utpm TSS_CreatePersistentKey sequence. *tr gets the persistent object. */
static int create_persistent(dps_tpm *tpm, const struct primary_spec *spec,
                             ESYS_TR *tr, char *err, size_t errlen)
{
    TPM2B_SENSITIVE_CREATE sens;
    TPM2B_PUBLIC tmpl;
    TPM2B_DATA outside;
    TPML_PCR_SELECTION pcrs;
    ESYS_TR obj = ESYS_TR_NONE;
    char what[64];
    TSS2_RC rc;

    memset(&sens, 0, sizeof sens);
    memset(&outside, 0, sizeof outside);
    memset(&pcrs, 0, sizeof pcrs);
    rsa_template(spec, &tmpl);
    rc = Esys_CreatePrimary(tpm->esys, spec->hierarchy, ESYS_TR_PASSWORD,
                            ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
                            &outside, &pcrs, &obj, NULL, NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        snprintf(what, sizeof what, "CreatePrimary (%s)", spec->name);
        return tpm_fail(err, errlen, what, rc);
    }
    rc = Esys_EvictControl(tpm->esys, ESYS_TR_RH_OWNER, obj, ESYS_TR_PASSWORD,
                           ESYS_TR_NONE, ESYS_TR_NONE, spec->handle, tr);
    flush_tr(tpm->esys, &obj);
    if (rc != TSS2_RC_SUCCESS) {
        *tr = ESYS_TR_NONE;
        snprintf(what, sizeof what, "EvictControl (persist %s at 0x%08X)",
                 spec->name, (unsigned)spec->handle);
        return tpm_fail(err, errlen, what, rc);
    }
    return 0;
}

/* ESYS_TR for the persistent EK or SRK, creating it when the slot is
 * empty. Any other error (TPM gone, auth failure) is reported as is. */
static int open_primary(dps_tpm *tpm, const struct primary_spec *spec,
                        ESYS_TR *tr, char *err, size_t errlen)
{
    char what[64];
    TSS2_RC rc;

    *tr = ESYS_TR_NONE;
    rc = Esys_TR_FromTPMPublic(tpm->esys, spec->handle, ESYS_TR_NONE,
                               ESYS_TR_NONE, ESYS_TR_NONE, tr);
    if (rc == TSS2_RC_SUCCESS)
        return 0;
    *tr = ESYS_TR_NONE;
    if (is_rc_handle(rc))
        return create_persistent(tpm, spec, tr, err, errlen);
    snprintf(what, sizeof what, "reading the %s at 0x%08X", spec->name,
             (unsigned)spec->handle);
    return tpm_fail(err, errlen, what, rc);
}

/* Marshaled TPM2B_PUBLIC of a loaded object, as DPS wants it. What the
 * TPM holds is reported, not our template: an EK someone else persisted
 * at 0x81010001 is used as it is, as the C SDK does. The marshaled form
 * is never larger than the C struct, which sizes the callers' buffers. */
static int read_public(dps_tpm *tpm, ESYS_TR tr, const char *name,
                       uint8_t *buf, size_t cap, size_t *len, char *err,
                       size_t errlen)
{
    TPM2B_PUBLIC *pub = NULL;
    char what[48];
    size_t off = 0;
    TSS2_RC rc;

    rc = Esys_ReadPublic(tpm->esys, tr, ESYS_TR_NONE, ESYS_TR_NONE,
                         ESYS_TR_NONE, &pub, NULL, NULL);
    if (rc == TSS2_RC_SUCCESS)
        rc = Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, cap, &off);
    Esys_Free(pub);
    if (rc != TSS2_RC_SUCCESS) {
        snprintf(what, sizeof what, "ReadPublic (%s)", name);
        return tpm_fail(err, errlen, what, rc);
    }
    *len = off;
    return 0;
}

/* Ensure the key exists, then marshal its public area. Creating it here,
 * on first use, needs no separate provisioning step on the device. */
static int primary_public(dps_tpm *tpm, const struct primary_spec *spec,
                          uint8_t *buf, size_t cap, size_t *len, char *err,
                          size_t errlen)
{
    ESYS_TR tr;
    int r;

    if (open_primary(tpm, spec, &tr, err, errlen) != 0)
        return -1;
    r = read_public(tpm, tr, spec->name, buf, cap, len, err, errlen);
    close_tr(tpm->esys, &tr);
    return r;
}

static int b64_out(const uint8_t *buf, size_t len, char **out, char *err,
                   size_t errlen)
{
    *out = dps_base64_encode(buf, len);
    if (*out)
        return 0;
    dps_set_error(err, errlen, "out of memory");
    return -1;
}

/* Both outputs are set to NULL first, so a failure leaves nothing for the
 * caller to free. */
int dps_tpm_public_keys(dps_tpm *tpm, char **ek_b64, char **srk_b64,
                        char *err, size_t errlen)
{
    uint8_t ek[sizeof(TPM2B_PUBLIC)], srk[sizeof(TPM2B_PUBLIC)];
    size_t ek_len, srk_len;

    *ek_b64 = NULL;
    *srk_b64 = NULL;
    if (primary_public(tpm, &ek_spec, ek, sizeof ek, &ek_len, err,
                       errlen) != 0 ||
        primary_public(tpm, &srk_spec, srk, sizeof srk, &srk_len, err,
                       errlen) != 0)
        return -1;
    if (b64_out(ek, ek_len, ek_b64, err, errlen) != 0)
        return -1;
    if (b64_out(srk, srk_len, srk_b64, err, errlen) != 0) {
        free(*ek_b64);
        *ek_b64 = NULL;
        return -1;
    }
    return 0;
}

int dps_tpm_registration_id(dps_tpm *tpm, char **reg_id, char *err,
                            size_t errlen)
{
    uint8_t ek[sizeof(TPM2B_PUBLIC)], digest[DPS_SHA256_LEN];
    size_t ek_len;

    *reg_id = NULL;
    if (primary_public(tpm, &ek_spec, ek, sizeof ek, &ek_len, err,
                       errlen) != 0)
        return -1;
    /* §6.2: the hash covers the 2-byte size prefix too. */
    if (dps_sha256(ek, ek_len, digest) != 0) {
        dps_set_error(err, errlen, "SHA-256 of the EK failed");
        return -1;
    }
    *reg_id = dps_base32_lower(digest, sizeof digest);
    if (!*reg_id) {
        dps_set_error(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- the authenticationKey blob (§6.4) ------------------------------- */

struct blob {
    TPM2B_ID_OBJECT cred;          /* 1: MakeCredential credentialBlob */
    TPM2B_ENCRYPTED_SECRET secret; /* 2: MakeCredential secret (to EK) */
    TPM2B_PRIVATE duplicate;       /* 3: wrapped identity key */
    TPM2B_ENCRYPTED_SECRET seed;   /* 4: outer wrapper seed (to SRK) */
    TPM2B_PUBLIC pub;              /* 5: identity key public area */
};

/* TPM2B_PUBLIC is unmarshaled field by field, so its size prefix is not
 * what bounds it: insist that the two agree, or item 5 is corrupt. */
static TSS2_RC unmarshal_public(const uint8_t *buf, size_t len, size_t *off,
                                TPM2B_PUBLIC *pub)
{
    size_t start = *off;
    TSS2_RC rc;

    rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, off, pub);
    if (rc == TSS2_RC_SUCCESS &&
        *off - start != 2 + ((size_t)buf[start] << 8 | buf[start + 1]))
        rc = TSS2_MU_RC_BAD_SIZE;
    return rc;
}

/* Tss2_MU checks each size against both the remaining input and the
 * destination buffer, so hostile sizes end here, never in a memcpy. Item
 * 6 (encrypted URI) is not used: like the C SDK we ignore it, present,
 * truncated or absent, and anything after it. */
static int parse_blob(const uint8_t *buf, size_t len, struct blob *b,
                      char *err, size_t errlen)
{
    size_t off = 0;
    int item = 1;
    TSS2_RC rc;

    memset(b, 0, sizeof *b);
    /* item counts up with each success, naming the one that failed. */
    rc = Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(buf, len, &off, &b->cred);
    if (rc == TSS2_RC_SUCCESS && ++item)
        rc = Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(buf, len, &off,
                                                      &b->secret);
    if (rc == TSS2_RC_SUCCESS && ++item)
        rc = Tss2_MU_TPM2B_PRIVATE_Unmarshal(buf, len, &off, &b->duplicate);
    if (rc == TSS2_RC_SUCCESS && ++item)
        rc = Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(buf, len, &off,
                                                      &b->seed);
    if (rc == TSS2_RC_SUCCESS && ++item)
        rc = unmarshal_public(buf, len, &off, &b->pub);
    if (rc != TSS2_RC_SUCCESS) {
        dps_set_error(err, errlen,
                "malformed authenticationKey blob (%zu bytes): item %d of 6 "
                "is truncated or has an impossible size: %s",
                len, item, Tss2_RC_Decode(rc));
        return -1;
    }
    return 0;
}

/* ---- import (§6.5 steps 1-8) ----------------------------------------- */

/* Everything the import holds in the TPM or in memory, released on every
 * path by import_cleanup. The policy session in particular: the C SDK
 * leaks one per import and a TPM has only a handful of session slots. */
struct import_ctx {
    ESYS_TR ek, srk, session, loaded;
    TPM2B_DIGEST *inner;     /* inner wrap key from ActivateCredential */
    TPM2B_PRIVATE *priv;     /* Import result */
};

static void import_cleanup(dps_tpm *tpm, struct import_ctx *c)
{
    flush_tr(tpm->esys, &c->session);
    flush_tr(tpm->esys, &c->loaded);
    close_tr(tpm->esys, &c->ek);
    close_tr(tpm->esys, &c->srk);
    if (c->inner) {
        dps_wipe(c->inner, sizeof *c->inner);
        Esys_Free(c->inner);
        c->inner = NULL;
    }
    Esys_Free(c->priv);
    c->priv = NULL;
}

/* Steps 1-2: a SHA-256 policy session satisfying the EK's authPolicy.
 * Unsalted and without parameter encryption, as in the Azure SDKs: the
 * inner key then crosses the TPM bus in clear (ActivateCredential output,
 * Import input), but it only opens the inner wrapper; the outer one needs
 * the SRK's private key, so the HMAC key never leaves the TPM. */
static int ek_policy_session(dps_tpm *tpm, struct import_ctx *c, char *err,
                             size_t errlen)
{
    TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_NULL };
    TSS2_RC rc;

    rc = Esys_StartAuthSession(tpm->esys, ESYS_TR_NONE, ESYS_TR_NONE,
                               ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                               NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256,
                               &c->session);
    if (rc != TSS2_RC_SUCCESS) {
        c->session = ESYS_TR_NONE;
        return tpm_fail(err, errlen, "StartAuthSession (policy)", rc);
    }
    rc = Esys_TRSess_SetAttributes(tpm->esys, c->session,
                                   TPMA_SESSION_CONTINUESESSION,
                                   TPMA_SESSION_CONTINUESESSION);
    if (rc == TSS2_RC_SUCCESS)
        rc = Esys_PolicySecret(tpm->esys, ESYS_TR_RH_ENDORSEMENT, c->session,
                               ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                               NULL, NULL, NULL, 0, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS)
        return tpm_fail(err, errlen, "PolicySecret (endorsement hierarchy)",
                        rc);
    return 0;
}

/* Step 3: the EK decrypts the credential, which only opens if it was made
 * for this EK and bound to this SRK's Name. Yields the inner wrap key. */
static int activate(dps_tpm *tpm, struct import_ctx *c, const struct blob *b,
                    char *err, size_t errlen)
{
    TSS2_RC rc;

    rc = Esys_ActivateCredential(tpm->esys, c->srk, c->ek, ESYS_TR_PASSWORD,
                                 c->session, ESYS_TR_NONE, &b->cred,
                                 &b->secret, &c->inner);
    if (rc != TSS2_RC_SUCCESS) {
        c->inner = NULL;
        return tpm_fail(err, errlen,
                        "ActivateCredential (the blob was not made for this "
                        "TPM's EK/SRK)", rc);
    }
    /* The C SDK imports with AES-128 only, Node with 8 x length bits;
     * accept any AES key size so both kinds of service blob work. */
    if (c->inner->size != 16 && c->inner->size != 24 &&
        c->inner->size != 32) {
        dps_set_error(err, errlen, "ActivateCredential returned a %u-byte inner "
                "key; expected an AES key (16 bytes)",
                (unsigned)c->inner->size);
        return -1;
    }
    return 0;
}

/* Steps 4 and 6: unwrap the identity key under the SRK, then load it. */
static int import_and_load(dps_tpm *tpm, struct import_ctx *c,
                           const struct blob *b, char *err, size_t errlen)
{
    TPMT_SYM_DEF_OBJECT sym;
    TPM2B_DATA key;
    TSS2_RC rc;

    memset(&sym, 0, sizeof sym);
    sym.algorithm = TPM2_ALG_AES;
    sym.keyBits.aes = (TPMI_AES_KEY_BITS)(8 * c->inner->size);
    sym.mode.aes = TPM2_ALG_CFB;
    memset(&key, 0, sizeof key);
    key.size = c->inner->size;
    memcpy(key.buffer, c->inner->buffer, c->inner->size);
    rc = Esys_Import(tpm->esys, c->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                     ESYS_TR_NONE, &key, &b->pub, &b->duplicate, &b->seed,
                     &sym, &c->priv);
    dps_wipe(&key, sizeof key);
    if (rc != TSS2_RC_SUCCESS) {
        c->priv = NULL;
        return tpm_fail(err, errlen,
                        "Import (the wrapped key does not match its public "
                        "area or this TPM's SRK)", rc);
    }
    rc = Esys_Load(tpm->esys, c->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                   ESYS_TR_NONE, c->priv, &b->pub, &c->loaded);
    if (rc != TSS2_RC_SUCCESS) {
        c->loaded = ESYS_TR_NONE;
        return tpm_fail(err, errlen, "Load (imported identity key)", rc);
    }
    return 0;
}

/* Steps 7-8: evict the previous identity key (absent is fine), persist
 * the new one. Runs only after the new key loaded, so a bad blob never
 * costs the device the key it had. */
static int persist_identity(dps_tpm *tpm, struct import_ctx *c, char *err,
                            size_t errlen)
{
    ESYS_TR old = ESYS_TR_NONE, out = ESYS_TR_NONE;
    TSS2_RC rc;

    if (Esys_TR_FromTPMPublic(tpm->esys, ID_KEY_HANDLE, ESYS_TR_NONE,
                              ESYS_TR_NONE, ESYS_TR_NONE,
                              &old) == TSS2_RC_SUCCESS) {
        Esys_EvictControl(tpm->esys, ESYS_TR_RH_OWNER, old, ESYS_TR_PASSWORD,
                          ESYS_TR_NONE, ESYS_TR_NONE, ID_KEY_HANDLE, &out);
        /* Some tpm2-tss versions free the TR on eviction, some do not. */
        Esys_TR_Close(tpm->esys, &old);
        close_tr(tpm->esys, &out);
    }
    rc = Esys_EvictControl(tpm->esys, ESYS_TR_RH_OWNER, c->loaded,
                           ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                           ID_KEY_HANDLE, &out);
    if (rc != TSS2_RC_SUCCESS)
        return tpm_fail(err, errlen,
                        "EvictControl (persist identity key at 0x81000100)",
                        rc);
    close_tr(tpm->esys, &out);
    return 0;
}

int dps_tpm_import_key(dps_tpm *tpm, const uint8_t *blob, size_t len,
                       char *err, size_t errlen)
{
    struct import_ctx c = { ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                            ESYS_TR_NONE, NULL, NULL };
    struct blob *b;
    int r = -1;

    /* ~3 KB of TPM2B buffers: keep them off small router stacks. */
    b = malloc(sizeof *b);
    if (!b) {
        dps_set_error(err, errlen, "out of memory");
        return -1;
    }
    if (parse_blob(blob, blob ? len : 0, b, err, errlen) == 0 &&
        open_primary(tpm, &ek_spec, &c.ek, err, errlen) == 0 &&
        open_primary(tpm, &srk_spec, &c.srk, err, errlen) == 0 &&
        ek_policy_session(tpm, &c, err, errlen) == 0 &&
        activate(tpm, &c, b, err, errlen) == 0 &&
        import_and_load(tpm, &c, b, err, errlen) == 0 &&
        persist_identity(tpm, &c, err, errlen) == 0)
        r = 0;
    import_cleanup(tpm, &c);
    free(b);
    return r;
}

/* ---- signing (§6.5 step 9) ------------------------------------------- */

/* One-shot TPM2_HMAC for messages that fit one TPM2B_MAX_BUFFER. The
 * identity key has userWithAuth and an empty authValue (§6.6), so a
 * password session with empty auth (ESAPI's default) authorises it. */
static TSS2_RC hmac_once(dps_tpm *tpm, ESYS_TR key, const uint8_t *msg,
                         size_t len, TPM2B_DIGEST **out)
{
    TPM2B_MAX_BUFFER buf;

    buf.size = (UINT16)len;
    if (len)
        memcpy(buf.buffer, msg, len);
    return Esys_HMAC(tpm->esys, key, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                     ESYS_TR_NONE, &buf, TPM2_ALG_SHA256, out);
}

/* HMAC_Start / SequenceUpdate per chunk / SequenceComplete for longer
 * messages. The last chunk goes with SequenceComplete. */
static TSS2_RC hmac_sequence(dps_tpm *tpm, ESYS_TR key, const uint8_t *msg,
                             size_t len, TPM2B_DIGEST **out)
{
    const size_t chunk = sizeof(((TPM2B_MAX_BUFFER *)0)->buffer);
    TPM2B_AUTH auth = { .size = 0 };
    TPM2B_MAX_BUFFER buf;
    ESYS_TR seq = ESYS_TR_NONE;
    TSS2_RC rc;

    /* The sequence object gets its own (empty) auth for the updates. */
    rc = Esys_HMAC_Start(tpm->esys, key, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                         ESYS_TR_NONE, &auth, TPM2_ALG_SHA256, &seq);
    if (rc != TSS2_RC_SUCCESS)
        return rc;
    while (len > chunk) {
        buf.size = (UINT16)chunk;
        memcpy(buf.buffer, msg, chunk);
        rc = Esys_SequenceUpdate(tpm->esys, seq, ESYS_TR_PASSWORD,
                                 ESYS_TR_NONE, ESYS_TR_NONE, &buf);
        if (rc != TSS2_RC_SUCCESS) {
            flush_tr(tpm->esys, &seq);
            return rc;
        }
        msg += chunk;
        len -= chunk;
    }
    buf.size = (UINT16)len;
    memcpy(buf.buffer, msg, len);
    /* Complete flushes the sequence object, in the TPM and in ESAPI. */
    rc = Esys_SequenceComplete(tpm->esys, seq, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, &buf, ESYS_TR_RH_NULL, out,
                               NULL);
    if (rc != TSS2_RC_SUCCESS)
        flush_tr(tpm->esys, &seq);
    return rc;
}

int dps_tpm_hmac(dps_tpm *tpm, const uint8_t *msg, size_t len,
                 uint8_t mac[32], char *err, size_t errlen)
{
    TPM2B_DIGEST *out = NULL;
    ESYS_TR key = ESYS_TR_NONE;
    TSS2_RC rc;

    rc = Esys_TR_FromTPMPublic(tpm->esys, ID_KEY_HANDLE, ESYS_TR_NONE,
                               ESYS_TR_NONE, ESYS_TR_NONE, &key);
    if (rc != TSS2_RC_SUCCESS) {
        if (is_rc_handle(rc)) {
            dps_set_error(err, errlen, "no identity key at 0x81000100 (import an "
                    "authenticationKey first): %s", Tss2_RC_Decode(rc));
            return -1;
        }
        return tpm_fail(err, errlen, "reading the identity key at "
                        "0x81000100", rc);
    }
    if (len <= sizeof(((TPM2B_MAX_BUFFER *)0)->buffer))
        rc = hmac_once(tpm, key, msg, len, &out);
    else
        rc = hmac_sequence(tpm, key, msg, len, &out);
    close_tr(tpm->esys, &key);
    if (rc == TSS2_RC_SUCCESS && out->size != 32) {
        dps_set_error(err, errlen, "TPM HMAC returned %u bytes, expected 32",
                (unsigned)out->size);
        Esys_Free(out);
        return -1;
    }
    if (rc != TSS2_RC_SUCCESS)
        return tpm_fail(err, errlen, "HMAC with the identity key", rc);
    memcpy(mac, out->buffer, 32);
    Esys_Free(out);
    return 0;
}
