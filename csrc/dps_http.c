/*
 * HTTPS transport on libcurl's multi interface (see dps_http.h).
 *
 * One easy handle is reused for every request of a handle, so libcurl's
 * connection cache (owned by the multi handle) keeps the TLS session of
 * the register request alive for the polls that follow.
 */
#define _POSIX_C_SOURCE 200809L
#include "dps_http.h"
#include "dps_crypto.h"
#include "dps_encoding.h"
#include "dps_error.h"
#include "dps_failure.h"
#include "dps_http_pool.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DPS_MAX_SOCKETS 4

struct dps_http {
    CURLM *multi;        /* own driver; NULL in a pool */
    dps_http_pool *pool; /* else a group's (dps_http_pool.c) */
    CURL *easy;
    bool busy;
    dps_http_pool_transfer xfer; /* pooled: finished, not yet taken */
    /* configuration, copied */
    char *trusted_certs;
    char *proxy;
    char *proxy_user;
    char *proxy_password;
    char *client_cert;
    char *client_key;
    char *client_key_password;
    bool insecure;
    long request_timeout_ms;
    size_t max_body;
    dps_http_trace_fn trace;
    void *trace_ctx;
    /* the request in flight */
    struct curl_slist *headers;
    char *request_body;
    char *body;
    size_t body_len, body_cap;
    bool body_too_large;
    char errbuf[CURL_ERROR_SIZE];
    CURLcode setopt_failure; /* first option libcurl refused */
    /* sockets libcurl asked us to watch */
    PROV_DEVICE_POLLFD fds[DPS_MAX_SOCKETS];
    size_t nfds;
};

/* libcurl accepts CURLOPT_SSLKEY_BLOB on every backend but uses it only
 * with the OpenSSL family and wolfSSL (mbedTLS, OpenWrt's default, would
 * fail later in the handshake). Ask which backend this libcurl has. */
static bool backend_takes_key_blob(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    static const char *const ok[] = {"OpenSSL", "LibreSSL", "BoringSSL",
                                     "quictls", "wolfSSL", "AWS-LC"};
    size_t i;
    if (!v || !v->ssl_version)
        return false;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strncmp(v->ssl_version, ok[i], strlen(ok[i])) == 0)
            return true;
    return false;
}

/* Points a curl_blob at PEM text (libcurl copies it). */
static void pem_blob(struct curl_blob *blob, const char *pem)
{
    blob->data = (void *)pem;
    blob->len = strlen(pem);
    blob->flags = CURL_BLOB_COPY;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    dps_http *h = ctx;
    size_t len = size * nmemb;

    /* A hostile or broken server must not make us allocate without
     * bound: stop the transfer once the cap is passed. */
    if (len > h->max_body - h->body_len) {
        h->body_too_large = true;
        return 0;
    }
    if (h->body_len + len + 1 > h->body_cap) {
        size_t cap = h->body_cap ? h->body_cap : 1024;
        while (cap < h->body_len + len + 1)
            cap *= 2;
        char *grown = realloc(h->body, cap);
        if (!grown)
            return 0;
        h->body = grown;
        h->body_cap = cap;
    }
    memcpy(h->body + h->body_len, data, len);
    h->body_len += len;
    h->body[h->body_len] = '\0';
    return len;
}

/* libcurl tells us which sockets to watch; we keep a small table that
 * dps_http_pollfds() hands to the host loop. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *ctx,
                     void *socketp)
{
    dps_http *h = ctx;
    size_t i;
    (void)easy;
    (void)socketp;

    for (i = 0; i < h->nfds && h->fds[i].fd != (int)s; i++)
        ;
    if (what == CURL_POLL_REMOVE) {
        if (i < h->nfds)
            h->fds[i] = h->fds[--h->nfds];
        return 0;
    }
    if (i == h->nfds) {
        if (h->nfds == DPS_MAX_SOCKETS)
            return 0; /* cannot happen with one transfer; be safe */
        h->nfds++;
    }
    h->fds[i].fd = (int)s;
    h->fds[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) |
                               ((what & CURL_POLL_OUT) ? POLLOUT : 0));
    return 0;
}

/* Masks the signature of a SAS token and any proxy credentials, so a
 * trace can be shared without handing out a working token. */
static void mask_secrets(char *line)
{
    char *p = line;
    while ((p = strstr(p, "sig=")) != NULL) {
        p += 4;
        while (*p && *p != '&' && *p != '\r' && *p != '\n')
            *p++ = '*';
    }
    /* Trace lines start with "> ", "< " or "* ". */
    p = line[0] && line[1] == ' ' ? line + 2 : line;
    if (strncasecmp(p, "Proxy-Authorization:", 20) == 0) {
        for (p += 20; *p == ' '; p++)
            ;
        for (; *p && *p != '\r' && *p != '\n'; p++)
            *p = '*';
    }
}

static void trace_block(dps_http *h, const char *prefix, const char *data,
                        size_t len)
{
    char line[1024];
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl ? (size_t)(nl - data) + 1 : len;
        size_t keep = n < sizeof(line) - 8 ? n : sizeof(line) - 8;
        size_t plen = strlen(prefix);
        memcpy(line, prefix, plen);
        memcpy(line + plen, data, keep);
        while (keep && (line[plen + keep - 1] == '\n' ||
                        line[plen + keep - 1] == '\r'))
            keep--;
        line[plen + keep] = '\0';
        mask_secrets(line);
        if (keep)
            h->trace(h->trace_ctx, line);
        data += n;
        len -= n;
    }
}

static int on_debug(CURL *easy, curl_infotype type, char *data, size_t len,
                    void *ctx)
{
    dps_http *h = ctx;
    (void)easy;
    switch (type) {
    case CURLINFO_TEXT:
        trace_block(h, "* ", data, len);
        break;
    case CURLINFO_HEADER_OUT:
        trace_block(h, "> ", data, len);
        break;
    case CURLINFO_HEADER_IN:
        trace_block(h, "< ", data, len);
        break;
    case CURLINFO_DATA_OUT:
        trace_block(h, "> ", data, len);
        break;
    case CURLINFO_DATA_IN:
        trace_block(h, "< ", data, len);
        break;
    default:
        break; /* TLS records: noise */
    }
    return 0;
}

dps_http *dps_http_create(const dps_http_config *cfg, char *err, size_t errlen)
{
    static bool curl_ready;
    dps_http *h;

    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            dps_set_error(err, errlen, "libcurl failed to initialise");
            return NULL;
        }
        curl_ready = true;
    }
    h = calloc(1, sizeof(*h));
    if (!h)
        goto oom;
    h->pool = cfg->pool;
    h->easy = curl_easy_init();
    if (!h->easy)
        goto oom;
    /* DPS messages are a few KB (96 KB at most): libcurl's default
     * 16 KB receive and 64 KB send buffers are most of a registration's
     * own heap, and per in-flight registration in a fleet. */
    curl_easy_setopt(h->easy, CURLOPT_BUFFERSIZE, 4096L); /* a hint */
    curl_easy_setopt(h->easy, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    if (h->pool) {
        /* Without CURLOPT_PRIVATE the pool could never hand the transfer
         * back: a refusal here is not skipped. */
        if (curl_easy_setopt(h->easy, CURLOPT_SHARE,
                             dps_http_pool_share(h->pool)) != CURLE_OK ||
            curl_easy_setopt(h->easy, CURLOPT_PRIVATE, (void *)&h->xfer) !=
                CURLE_OK)
            goto oom;
    } else {
        if (!(h->multi = curl_multi_init()))
            goto oom;
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
        curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 1L);
    }

    h->insecure = cfg->insecure_skip_verify;
    h->request_timeout_ms = cfg->request_timeout_ms;
    h->max_body = cfg->max_body;
    h->trace = cfg->trace;
    h->trace_ctx = cfg->trace_ctx;
    h->trusted_certs = dps_strdup_or_null(cfg->trusted_certs);
    h->client_cert = dps_strdup_or_null(cfg->client_cert);
    h->client_key = dps_strdup_or_null(cfg->client_key);
    h->client_key_password = dps_strdup_or_null(cfg->client_key_password);
    h->proxy_user = dps_strdup_or_null(cfg->proxy_user);
    h->proxy_password = dps_strdup_or_null(cfg->proxy_password);
    if (cfg->proxy_host) {
        size_t n = strlen(cfg->proxy_host) + 32;
        h->proxy = malloc(n);
        if (h->proxy)
            snprintf(h->proxy, n, "http://%s:%d", cfg->proxy_host,
                     cfg->proxy_port);
    }
    if ((cfg->trusted_certs && !h->trusted_certs) ||
        (cfg->client_cert && !h->client_cert) ||
        (cfg->client_key && !h->client_key) ||
        (cfg->client_key_password && !h->client_key_password) ||
        (cfg->proxy_user && !h->proxy_user) ||
        (cfg->proxy_password && !h->proxy_password) ||
        (cfg->proxy_host && !h->proxy))
        goto oom;
    return h;
oom:
    dps_set_error(err, errlen, "out of memory");
    dps_http_destroy(h);
    return NULL;
}

/* The header list holds the Authorization header: a working SAS token. */
static void free_headers(struct curl_slist *list)
{
    struct curl_slist *item;
    for (item = list; item; item = item->next)
        if (item->data)
            dps_wipe(item->data, strlen(item->data));
    curl_slist_free_all(list);
}

/* Takes the transfer back from whichever driver runs it. */
static void remove_transfer(dps_http *h)
{
    if (h->pool)
        dps_http_pool_remove(h->pool, h->easy);
    else
        curl_multi_remove_handle(h->multi, h->easy);
}

static void clear_request(dps_http *h)
{
    free_headers(h->headers);
    h->headers = NULL;
    free(h->request_body);
    h->request_body = NULL;
    free(h->body);
    h->body = NULL;
    h->body_len = h->body_cap = 0;
    h->body_too_large = false;
    h->errbuf[0] = '\0';
}

void dps_http_destroy(dps_http *h)
{
    if (!h)
        return;
    if (h->busy && !h->xfer.done)
        remove_transfer(h);
    if (h->easy)
        curl_easy_cleanup(h->easy);
    if (h->multi)
        curl_multi_cleanup(h->multi);
    clear_request(h);
    free(h->trusted_certs);
    free(h->proxy);
    dps_free_secret(h->proxy_user);
    dps_free_secret(h->proxy_password);
    free(h->client_cert);
    dps_free_secret(h->client_key);
    dps_free_secret(h->client_key_password);
    free(h);
}

/* libcurl copies string options, so setting one can fail for want of
 * memory; an option it refuses is never silently skipped (a dropped
 * CURLOPT_CAINFO would verify against the system bundle, a dropped
 * CURLOPT_CUSTOMREQUEST would send the wrong method). The first
 * refusal of a request is kept and ends dps_http_start. */
static void note_setopt(dps_http *h, CURLcode rc)
{
    if (rc != CURLE_OK && h->setopt_failure == CURLE_OK)
        h->setopt_failure = rc;
}

#define SETOPT(opt, value) note_setopt(h, curl_easy_setopt(e, opt, value))

/* Whether a PEM blob option was taken; running out of memory is noted
 * like any option's, not taken for a backend that cannot do blobs. */
static bool blob_taken(dps_http *h, CURLcode rc)
{
    if (rc == CURLE_OUT_OF_MEMORY)
        note_setopt(h, rc);
    return rc == CURLE_OK || rc == CURLE_OUT_OF_MEMORY;
}

/* Sets the TLS options; returns a message when the TLS backend cannot
 * do what the configuration asks (e.g. a key from memory on mbedTLS). */
static const char *set_tls(dps_http *h)
{
    CURL *e = h->easy;
    struct curl_blob blob;
    const char *pem;

    SETOPT(CURLOPT_SSL_VERIFYPEER, h->insecure ? 0L : 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, h->insecure ? 0L : 2L);
    if (h->trusted_certs) {
        if ((pem = dps_pem_start(h->trusted_certs)) != NULL) {
            pem_blob(&blob, pem);
            if (!blob_taken(h, curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob)))
                return "this libcurl cannot take trusted_certs as PEM "
                       "text; pass a file path";
        } else {
            SETOPT(CURLOPT_CAINFO, h->trusted_certs);
        }
    }
    if (h->client_cert) {
        if ((pem = dps_pem_start(h->client_cert)) != NULL) {
            pem_blob(&blob, pem);
            if (!blob_taken(h,
                            curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob)))
                return "this libcurl's TLS backend cannot take the "
                       "certificate as PEM text; pass a file path";
        } else {
            SETOPT(CURLOPT_SSLCERT, h->client_cert);
        }
        SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (h->client_key) {
        if ((pem = dps_pem_start(h->client_key)) != NULL) {
            pem_blob(&blob, pem);
            if (!backend_takes_key_blob() ||
                !blob_taken(h, curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob)))
                return "this libcurl's TLS backend (e.g. mbedTLS) cannot "
                       "take a private key from memory; pass a file path";
        } else {
            SETOPT(CURLOPT_SSLKEY, h->client_key);
        }
        SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
        if (h->client_key_password)
            SETOPT(CURLOPT_KEYPASSWD, h->client_key_password);
    }
    return NULL;
}

static void set_transfer(dps_http *h, const char *method, const char *url)
{
    CURL *e = h->easy;

    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "https");
    SETOPT(CURLOPT_USERAGENT,
           "dps/" DPS_CLIENT_VERSION " (Azure DPS client; libcurl)");
    SETOPT(CURLOPT_TIMEOUT_MS, h->request_timeout_ms);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, h->request_timeout_ms);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_ERRORBUFFER, h->errbuf);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, h);
    SETOPT(CURLOPT_HTTPHEADER, h->headers);
    /* An empty proxy string turns off libcurl's environment lookup, so
     * only the proxy_data option decides. */
    SETOPT(CURLOPT_PROXY, h->proxy ? h->proxy : "");
    if (h->proxy && h->proxy_user) {
        SETOPT(CURLOPT_PROXYUSERNAME, h->proxy_user);
        SETOPT(CURLOPT_PROXYPASSWORD, h->proxy_password);
    }
    if (h->trace) {
        SETOPT(CURLOPT_VERBOSE, 1L);
        SETOPT(CURLOPT_DEBUGFUNCTION, on_debug);
        SETOPT(CURLOPT_DEBUGDATA, h);
    }
    if (strcmp(method, "GET") == 0) {
        SETOPT(CURLOPT_HTTPGET, 1L);
        SETOPT(CURLOPT_CUSTOMREQUEST, NULL);
    } else {
        const char *body = h->request_body ? h->request_body : "";
        SETOPT(CURLOPT_POSTFIELDS, body);
        SETOPT(CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        SETOPT(CURLOPT_CUSTOMREQUEST, method);
    }
}

int dps_http_start(dps_http *h, const char *method, const char *url,
                   const char *const *headers, const char *body, char *err,
                   size_t errlen)
{
    const char *tls_problem;

    if (h->busy) {
        dps_set_error(err, errlen, "a request is already running");
        return -1;
    }
    clear_request(h);
    for (; headers && *headers; headers++) {
        struct curl_slist *grown = curl_slist_append(h->headers, *headers);
        if (!grown)
            goto oom;
        h->headers = grown;
    }
    /* libcurl would add "Expect: 100-continue" to large PUTs; DPS does
     * not need the extra round trip. */
    {
        struct curl_slist *grown = curl_slist_append(h->headers, "Expect:");
        if (!grown)
            goto oom;
        h->headers = grown;
    }
    if (body && !(h->request_body = strdup(body)))
        goto oom;
    h->setopt_failure = CURLE_OK;
    tls_problem = set_tls(h);
    if (tls_problem) {
        dps_set_error(err, errlen, "%s", tls_problem);
        return -1;
    }
    set_transfer(h, method, url);
    if (h->setopt_failure == CURLE_OUT_OF_MEMORY)
        goto oom;
    if (h->setopt_failure != CURLE_OK) {
        dps_set_error(err, errlen,
                      "libcurl refused an option of the "
                      "request (curl %d: %s)",
                      (int)h->setopt_failure,
                      curl_easy_strerror(h->setopt_failure));
        return -1;
    }
    if ((h->pool ? dps_http_pool_add(h->pool, h->easy)
                 : (curl_multi_add_handle(h->multi, h->easy) == CURLM_OK
                        ? 0
                        : -1)) != 0) {
        dps_set_error(err, errlen,
                      "out of memory (libcurl refused the "
                      "transfer)");
        return -2;
    }
    h->busy = true;
    return 0;
oom:
    dps_set_error(err, errlen, "out of memory");
    return -2;
}

/* Our own words for libcurl's codes (on OpenWrt curl_easy_strerror()
 * may say only "Error"); whether a retry can help comes from the one
 * failure table, dps_failure.c. */
static void describe_failure(dps_http *h, CURLcode rc, int os_error,
                             dps_http_response *r)
{
    dps_transport_facts facts;
    const dps_failure *f;
    const char *alert;
    long proxy_status = 0, connect_errno = 0;
    char what[160];

    curl_easy_getinfo(h->easy, CURLINFO_HTTP_CONNECTCODE, &proxy_status);
    curl_easy_getinfo(h->easy, CURLINFO_OS_ERRNO, &connect_errno);
    memset(&facts, 0, sizeof facts);
    facts.curl_code = (int)rc;
    facts.curl_detail = h->errbuf;
    facts.proxy_status = h->proxy && (proxy_status < 200 || proxy_status > 299)
                             ? proxy_status
                             : 0;
    facts.os_error = connect_errno ? (int)connect_errno : os_error;
    facts.answer_too_large = h->body_too_large;
    f = dps_failure_for_transport(&facts);
    alert = dps_failure_cert_alert(h->errbuf);
    if (strcmp(f->name, "device_cert_refused") == 0 && alert)
        snprintf(what, sizeof what, "%s (TLS alert: %s)", f->message, alert);
    else if (strcmp(f->name, "proxy_refused") == 0)
        snprintf(what, sizeof what, "%s (HTTP %ld)", f->message,
                 facts.proxy_status);
    else
        snprintf(what, sizeof what, "%s", f->message);
    r->curl_code = (int)rc;
    r->retryable = f->retried;
    r->result = f->result;
    if (h->errbuf[0] && strcmp(h->errbuf, what) != 0)
        snprintf(r->message, sizeof(r->message), "%s (curl %d: %.120s)",
                 what, (int)rc, h->errbuf);
    else
        snprintf(r->message, sizeof(r->message), "%s (curl %d)", what,
                 (int)rc);
}

/* Digits only, surrounding blanks allowed; saturates at UINT32_MAX (the
 * state machine clamps anyway). */
static bool parse_seconds(const char *s, int64_t *out)
{
    int64_t v = 0;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++)
        v = v >= UINT32_MAX ? UINT32_MAX : v * 10 + (*s - '0');
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s != '\0')
        return false;
    *out = v > UINT32_MAX ? UINT32_MAX : v;
    return true;
}

int64_t dps_http_retry_after_s(const char *value, const char *date,
                               int64_t now_s)
{
    int64_t seconds;
    time_t when, base;

    if (!value)
        return -1;
    if (parse_seconds(value, &seconds))
        return seconds;
    /* An HTTP-date, in any of the three forms HTTP allows. */
    when = curl_getdate(value, NULL);
    if (when == -1)
        return -1;
    /* Counted from the service's own clock when it sent one, so a wrong
     * device clock does not distort the wait. */
    base = date ? curl_getdate(date, NULL) : -1;
    if (base == -1)
        base = (time_t)now_s;
    if (when <= base)
        return 0;
    return (int64_t)when - (int64_t)base > UINT32_MAX
               ? UINT32_MAX
               : (int64_t)when - (int64_t)base;
}

/* The value of a header of the last answer (not of a proxy's CONNECT
 * answer or a 1xx), or NULL. libcurl keeps the headers: no buffers. */
static const char *header_value(CURL *e, const char *name)
{
    struct curl_header *hdr;

    if (curl_easy_header(e, name, 0, CURLH_HEADER, -1, &hdr) != CURLHE_OK)
        return NULL;
    return hdr->value;
}

static void fill_response(dps_http *h, CURLcode rc, int os_error,
                          dps_http_response *r)
{
    memset(r, 0, sizeof(*r));
    if (rc != CURLE_OK) {
        describe_failure(h, rc, os_error, r);
        return;
    }
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &r->status);
    /* The body buffer passes to the caller as it is. */
    r->body = h->body ? h->body : strdup("");
    r->body_len = h->body_len;
    h->body = NULL;
    h->body_len = h->body_cap = 0;
    r->retry_after_s =
        dps_http_retry_after_s(header_value(h->easy, "Retry-After"),
                               header_value(h->easy, "Date"), time(NULL));
}

/* Tells libcurl which of its sockets are ready, without waiting: a
 * zero-timeout poll() over the sockets it asked us to watch. */
static void drive_sockets(dps_http *h, int *running)
{
    struct pollfd p[DPS_MAX_SOCKETS];
    size_t i, n = h->nfds;

    for (i = 0; i < n; i++) {
        p[i].fd = h->fds[i].fd;
        p[i].events = h->fds[i].events;
        p[i].revents = 0;
    }
    if (n && poll(p, (nfds_t)n, 0) > 0) {
        for (i = 0; i < n; i++) {
            int ev = 0;
            if (p[i].revents & POLLIN)
                ev |= CURL_CSELECT_IN;
            if (p[i].revents & POLLOUT)
                ev |= CURL_CSELECT_OUT;
            if (p[i].revents & (POLLERR | POLLHUP | POLLNVAL))
                ev |= CURL_CSELECT_ERR;
            if (ev)
                curl_multi_socket_action(h->multi, p[i].fd, ev, running);
        }
    }
    /* Also runs libcurl's due timers (connect, DNS, timeouts) and the
     * first step of a new transfer. */
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, running);
}

int dps_http_work(dps_http *h, dps_http_response *resp)
{
    int running = 0, left = 0, os_error;
    CURLMsg *msg;

    if (!h->busy)
        return 0;
    if (h->pool) {
        /* The pool marks finished transfers. */
        dps_http_pool_drive(h->pool);
        if (!h->xfer.done)
            return 0;
        h->busy = h->xfer.done = false;
        fill_response(h, (CURLcode)h->xfer.rc, h->xfer.os_error, resp);
        clear_request(h);
        return 1;
    }
    errno = 0;
    drive_sockets(h, &running);
    /* What the last failing system call said (e.g. EMFILE opening the
     * CA file): libcurl does not always pass it on. */
    os_error = errno;
    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE || msg->easy_handle != h->easy)
            continue;
        CURLcode rc = msg->data.result;
        curl_multi_remove_handle(h->multi, h->easy);
        h->busy = false;
        fill_response(h, rc, os_error, resp);
        clear_request(h);
        return 1;
    }
    return 0;
}

void dps_http_abort(dps_http *h)
{
    if (!h || !h->busy)
        return;
    /* Forbidding reuse makes libcurl close the half-used connection
     * instead of caching it. */
    curl_easy_setopt(h->easy, CURLOPT_FORBID_REUSE, 1L);
    if (!h->xfer.done)
        remove_transfer(h);
    curl_easy_setopt(h->easy, CURLOPT_FORBID_REUSE, 0L);
    h->busy = h->xfer.done = false;
    clear_request(h);
    h->nfds = 0;
}

void dps_http_close_idle(dps_http *h)
{
    /* Recreating the multi handle is the portable way to drop its
     * connection cache; it is cheap next to a registration. */
    CURLM *fresh;
    /* A group's pool is shared and capped: it stays. */
    if (!h || h->busy || h->pool)
        return;
    fresh = curl_multi_init();
    if (!fresh)
        return;
    curl_multi_setopt(fresh, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(fresh, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(fresh, CURLMOPT_MAXCONNECTS, 1L);
    curl_multi_cleanup(h->multi);
    h->multi = fresh;
    h->nfds = 0;
}

bool dps_http_busy(const dps_http *h)
{
    return h && h->busy;
}

size_t dps_http_pollfds(dps_http *h, PROV_DEVICE_POLLFD *fds, size_t max)
{
    size_t i;
    if (!h || !h->busy || h->pool)
        return 0;
    for (i = 0; i < h->nfds && i < max; i++)
        fds[i] = h->fds[i];
    return h->nfds;
}

long dps_http_timeout_ms(dps_http *h)
{
    long ms = -1;
    if (!h || !h->busy)
        return -1;
    if (h->pool)
        return h->xfer.done ? 0 : -1; /* the pool runs libcurl's timers */
    if (curl_multi_timeout(h->multi, &ms) != CURLM_OK)
        return 0;
    return ms;
}

void dps_http_response_free(dps_http_response *r)
{
    if (!r)
        return;
    free(r->body);
    memset(r, 0, sizeof(*r));
}
