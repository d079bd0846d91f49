/*
 * Certificate and key arguments as the user gives them: PEM text, or a
 * path to read (capped, wiped after use). Shared by the X.509 checks of
 * both crypto backends, so both name files and refuse input the same way.
 */
#ifndef DPS_PEM_INPUT_H
#define DPS_PEM_INPUT_H

#include <stddef.h>

/* What the user gave: text to parse, and how to name it in errors. */
struct dps_pem_input {
    const char *path;   /* NULL when the argument was PEM text */
    char *buf;          /* file contents (owned) or the text (borrowed);
                           NUL-terminated either way */
    size_t len;         /* not counting the NUL */
};

/* Fills in from PEM text or a path; on failure says which file, in
 * err, with the path shown only when it is safely a path (never PEM
 * text, Base64, DER or other bytes: then "x509.key: not a readable file
 * and not PEM text"). what: "certificate" or "key", for the message.
 * Returns 0 or -1. */
int dps_pem_load(const char *arg, const char *what, struct dps_pem_input *in,
                 char *err, size_t errlen);

/* Checks, without keeping anything, that arg is PEM text or a file that
 * can be read; otherwise says so in err like dps_pem_load, naming the
 * option `what` when the argument cannot be shown safely ("trusted_certs:
 * not a readable file and not PEM text"). Returns 0 or -1. */
int dps_pem_check_source(const char *arg, const char *what, char *err,
                         size_t errlen);

/* Frees (and wipes) what dps_pem_load read from a file. */
void dps_pem_free(struct dps_pem_input *in);

/* "<subject> is not valid PEM", naming the file if there was one. */
void dps_pem_not_pem(const struct dps_pem_input *in, const char *subject,
                     char *err, size_t errlen);

#endif
