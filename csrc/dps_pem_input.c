#define _POSIX_C_SOURCE 200809L
#include "dps_pem_input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dps_crypto.h"
#include "dps_encoding.h"
#include "dps_error.h"
#include "dps_failure.h"

/* Certificates and keys are a few KB; a chain of ten is under 32 KB. A
 * cap stops a wrong path (a log, a disk image) from being slurped. */
#define MAX_PEM_FILE (1024 * 1024)

/* A long run of Base64 with no '.' is more likely a bare DER key pasted
 * in place of a path than a file name; such "paths" are not echoed. */
static int looks_like_blob(const char *s)
{
    size_t n = 0;

    for (; *s; s++, n++)
        if (!dps_is_base64_char(*s) && *s != '=')
            return 0;
    return n >= 64;
}

/* Copies a path for an error message: control bytes become '?', long
 * paths are cut, and anything that may be key material is withheld. */
static void printable_path(const char *path, char *out, size_t outlen)
{
    size_t i;

    if (looks_like_blob(path)) {
        snprintf(out, outlen, "(not shown)");
        return;
    }
    for (i = 0; path[i] && i + 1 < outlen; i++)
        out[i] = ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
                     ? '?' : path[i];
    out[i] = '\0';
    if (path[i] && outlen > 4)
        memcpy(out + outlen - 4, "...", 4);
}

/* Whether an argument that could not be read may be quoted as a path.
 * Key material pasted where a path goes (Base64 with or without line
 * breaks, DER bytes, a short secret) must never be; a real path is worth
 * showing. So only printable ASCII without spaces qualifies, and only
 * when the file exists (EACCES, EISDIR...) or its directory does (a
 * typo in the file name). The root directory does not count: "/" plus
 * Base64 would pass. */
static int quotable_path(const char *arg, int err)
{
    const char *p, *slash = NULL;
    char *dir;
    struct stat st;
    int exists;

    if (!*arg || looks_like_blob(arg))
        return 0;
    for (p = arg; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return 0;
        if (*p == '/')
            slash = p;
    }
    if (err != ENOENT && err != ENOTDIR)
        return stat(arg, &st) == 0;
    if (!slash || slash == arg)
        return 0;
    dir = malloc((size_t)(slash - arg) + 1);
    if (!dir)
        return 0;
    memcpy(dir, arg, (size_t)(slash - arg));
    dir[slash - arg] = '\0';
    exists = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
    free(dir);
    return exists;
}

/* The option a certificate or key argument came from, for messages that
 * cannot name the file. */
static const char *option_of(const char *what)
{
    if (strcmp(what, "key") == 0)
        return "x509.key";
    if (strcmp(what, "certificate") == 0)
        return "x509.cert";
    return what;
}

/* The message for an argument that is neither PEM text nor a readable
 * file: the path when it is safe to show, else only the option. */
static void unreadable(const char *arg, const char *what, int e, char *err,
                       size_t errlen)
{
    char shown[256];
    /* Out of descriptors or memory says nothing about the argument: the
     * failure table's words for it. */
    const dps_failure *resource = dps_failure_for_os_error(e);

    if (resource) {
        dps_set_error(err, errlen, "%s; cannot open %s", resource->message,
                      option_of(what));
        return;
    }
    if (!quotable_path(arg, e)) {
        dps_set_error(err, errlen, "%s: not a readable file and not PEM text",
                      option_of(what));
        return;
    }
    printable_path(arg, shown, sizeof shown);
    dps_set_error(err, errlen, "cannot read %s file '%s': %s", what, shown,
                  e == EFBIG ? "file too large" : strerror(e));
}

/* Moves a growing file buffer to a bigger block; the old one is wiped
 * first because it may hold part of a private key (realloc would not). */
static char *grow(char *buf, size_t len, size_t cap)
{
    char *bigger = malloc(cap);

    if (bigger && len)
        memcpy(bigger, buf, len);
    dps_wipe(buf, len);
    free(buf);
    return bigger;
}

/* Reads a whole file into in->buf and NUL-terminates it. Returns 0, or
 * an errno value. The buffer always keeps one byte free for the NUL. */
static int read_file(const char *path, struct dps_pem_input *in)
{
    size_t cap = 4096, got;
    FILE *f;
    int e = 0, eof = 0;

    errno = 0;
    f = fopen(path, "rb");
    if (!f)
        return errno ? errno : EIO;
    in->len = 0;
    in->buf = malloc(cap);
    while (in->buf && !eof && !e) {
        if (in->len == cap - 1) {
            if (cap >= MAX_PEM_FILE) {
                e = EFBIG;
                break;
            }
            cap *= 2;
            in->buf = grow(in->buf, in->len, cap);
            continue;
        }
        errno = 0;
        got = fread(in->buf + in->len, 1, cap - 1 - in->len, f);
        in->len += got;
        /* A directory opens fine on Linux; reading it gives EISDIR. */
        if (got == 0 && ferror(f))
            e = errno ? errno : EIO;
        eof = got == 0;
    }
    fclose(f);
    if (!in->buf)
        return ENOMEM;
    in->buf[in->len] = '\0';
    return e;
}

void dps_pem_free(struct dps_pem_input *in)
{
    if (in->path && in->buf) {
        dps_wipe(in->buf, in->len);
        free(in->buf);
    }
    in->buf = NULL;
}

/* Fills in from a PEM text or a path; on failure says which file. */
int dps_pem_load(const char *arg, const char *what,
                      struct dps_pem_input *in, char *err, size_t errlen)
{
    int e;

    in->path = NULL;
    in->buf = NULL;
    in->len = 0;
    if (dps_pem_start(arg)) {
        /* OpenSSL's PEM reader wants "-----BEGIN" at the start of a
         * line, so indentation (from a config file, say) is dropped. */
        while (*arg == ' ' || *arg == '\t' || *arg == '\r' || *arg == '\n')
            arg++;
        in->buf = (char *)arg; /* borrowed; only ever read */
        in->len = strlen(arg);
        return 0;
    }
    in->path = arg;
    e = read_file(arg, in);
    if (e == 0)
        return 0;
    dps_pem_free(in);
    unreadable(arg, what, e, err, errlen);
    return -1;
}

int dps_pem_check_source(const char *arg, const char *what, char *err,
                         size_t errlen)
{
    FILE *f;
    int e = 0;

    if (dps_pem_start(arg))
        return 0;
    errno = 0;
    f = fopen(arg, "rb");
    if (!f) {
        e = errno ? errno : EIO;
    } else {
        /* A directory opens on Linux; reading it fails with EISDIR. */
        errno = 0;
        if (fgetc(f) == EOF && ferror(f))
            e = errno ? errno : EIO;
        fclose(f);
    }
    if (e == 0)
        return 0;
    unreadable(arg, what, e, err, errlen);
    return -1;
}

/* "certificate is not valid PEM", naming the file if there was one. */
void dps_pem_not_pem(const struct dps_pem_input *in, const char *subject,
                    char *err, size_t errlen)
{
    char shown[256];

    if (!in->path) {
        dps_set_error(err, errlen, "%s is not valid PEM", subject);
        return;
    }
    printable_path(in->path, shown, sizeof shown);
    dps_set_error(err, errlen, "%s is not valid PEM (file '%s')", subject, shown);
}
