/*
 * Allocation-failure torture: runs examples/provision.c (compiled with
 * main renamed to example_main) with every allocation of the process
 * counted, and the FAIL_AT-th one failed:
 *   - the project's own: malloc, calloc, realloc, strdup, strndup
 *     through the linker's --wrap (our objects only);
 *   - libcurl's through curl_global_init_mem;
 *   - OpenSSL's through CRYPTO_set_mem_functions;
 *   - json-c's through --wrap of the json-c calls that allocate, failing
 *     the way json-c itself fails on out-of-memory (NULL, -1, or the
 *     tokener's memory error).
 * FAIL_AT unset or 0 fails nothing; ALLOC_COUNT_FILE receives the count
 * at exit, so the runner knows how many runs cover every allocation.
 *
 * A first registration runs unarmed (uncounted) unless TORTURE_COLD is
 * set: it leaves OpenSSL's and libcurl's one-time process state (global
 * init, the random generators, provider and TLS group caches) set up, so
 * the counted run is a registration as a long-running process makes it.
 * Failures inside that one-time state are OpenSSL's to handle; see the
 * README ("Allocation-failure torture") for what a cold run shows.
 */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int example_main(int argc, char **argv);

static atomic_long allocations;
static atomic_int armed;
static long fail_at;
/* Whose allocation was failed: the runner holds our code (and json-c's
 * documented failure modes) to a stricter rule than the libraries. */
static const char *volatile failed_in;

/* Counts one allocation; true if it is the one to fail. */
static int should_fail_in(const char *who)
{
    long n;
    if (!atomic_load(&armed))
        return 0;
    n = atomic_fetch_add(&allocations, 1) + 1;
    if (fail_at > 0 && n == fail_at) {
        /* Said at once (write(2): no allocation), so that a crash that
         * follows still shows whose allocation it was. */
        static const char head[] = "alloc-torture: failing an allocation in ";
        failed_in = who;
        if (write(STDERR_FILENO, head, sizeof head - 1) < 0 ||
            write(STDERR_FILENO, who, strlen(who)) < 0 ||
            write(STDERR_FILENO, "\n", 1) < 0)
            return 1;
        return 1;
    }
    return 0;
}

#define should_fail() should_fail_in("dps")
#define json_should_fail() should_fail_in("json-c")

/* ---- the project's own (--wrap) ---------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t count, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t count, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t count, size_t n)
{
    return should_fail() ? NULL : __real_calloc(count, n);
}
void *__wrap_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __real_realloc(p, n);
}
char *__wrap_strdup(const char *s) { return should_fail() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n)
{
    return should_fail() ? NULL : __real_strndup(s, n);
}

/* ---- libcurl ------------------------------------------------------------ */

static void *curl_malloc_cb(size_t n)
{
    return should_fail_in("libcurl") ? NULL : __real_malloc(n);
}
static void curl_free_cb(void *p) { free(p); }
static void *curl_realloc_cb(void *p, size_t n)
{
    return should_fail_in("libcurl") ? NULL : __real_realloc(p, n);
}
static char *curl_strdup_cb(const char *s)
{
    return should_fail_in("libcurl") ? NULL : __real_strdup(s);
}
static void *curl_calloc_cb(size_t c, size_t n)
{
    return should_fail_in("libcurl") ? NULL : __real_calloc(c, n);
}

/* ---- OpenSSL ------------------------------------------------------------ */

static void *ossl_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return should_fail_in("OpenSSL") ? NULL : __real_malloc(n);
}
static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return should_fail_in("OpenSSL") ? NULL : __real_realloc(p, n);
}
static void ossl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

/* ---- json-c (--wrap of the calls that allocate) ------------------------- */

struct json_object *__real_json_object_new_object(void);
struct json_object *__real_json_object_new_string(const char *s);
int __real_json_object_object_add(struct json_object *o, const char *k,
                                  struct json_object *v);
const char *__real_json_object_to_json_string_ext(struct json_object *o,
                                                  int flags);
struct json_tokener *__real_json_tokener_new_ex(int depth);
struct json_object *__real_json_tokener_parse_ex(struct json_tokener *t,
                                                 const char *s, int len);
struct json_object *__wrap_json_object_new_object(void);
struct json_object *__wrap_json_object_new_string(const char *s);
int __wrap_json_object_object_add(struct json_object *o, const char *k,
                                  struct json_object *v);
const char *__wrap_json_object_to_json_string_ext(struct json_object *o,
                                                  int flags);
struct json_tokener *__wrap_json_tokener_new_ex(int depth);
struct json_object *__wrap_json_tokener_parse_ex(struct json_tokener *t,
                                                 const char *s, int len);

struct json_object *__wrap_json_object_new_object(void)
{
    return json_should_fail() ? NULL : __real_json_object_new_object();
}
struct json_object *__wrap_json_object_new_string(const char *s)
{
    return json_should_fail() ? NULL : __real_json_object_new_string(s);
}
int __wrap_json_object_object_add(struct json_object *o, const char *k,
                                  struct json_object *v)
{
    /* json-c returns -1 and leaves v with the caller. */
    return json_should_fail() ? -1 : __real_json_object_object_add(o, k, v);
}
const char *__wrap_json_object_to_json_string_ext(struct json_object *o,
                                                  int flags)
{
    return json_should_fail() ? NULL
                         : __real_json_object_to_json_string_ext(o, flags);
}
struct json_tokener *__wrap_json_tokener_new_ex(int depth)
{
    return json_should_fail() ? NULL : __real_json_tokener_new_ex(depth);
}
struct json_object *__wrap_json_tokener_parse_ex(struct json_tokener *t,
                                                 const char *s, int len)
{
    if (json_should_fail()) {
        /* json-c 0.17 reports its own allocation failures as
         * json_tokener_error_memory; 0.16 (Debian 12) has no such code
         * and fails them with a size error. */
        t->err = json_tokener_error_size;
        return NULL;
    }
    return __real_json_tokener_parse_ex(t, s, len);
}

/* ---- driver ------------------------------------------------------------- */

static void report_count(void)
{
    const char *path = getenv("ALLOC_COUNT_FILE");
    FILE *f;
    if (failed_in)
        fprintf(stderr, "alloc-torture: allocation %ld failed in %s\n",
                fail_at, failed_in);
    if (!path || !(f = fopen(path, "w")))
        return;
    fprintf(f, "%ld\n", (long)atomic_load(&allocations));
    fclose(f);
}

int main(int argc, char **argv)
{
    const char *at = getenv("FAIL_AT");
    int rc;

    fail_at = at ? strtol(at, NULL, 10) : 0;
    atomic_store(&armed, getenv("TORTURE_COLD") != NULL);
    /* Before anything allocates through these libraries. */
    if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free)) {
        fprintf(stderr, "alloc-torture: CRYPTO_set_mem_functions failed\n");
        return 3;
    }
    if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, curl_malloc_cb,
                             curl_free_cb, curl_realloc_cb, curl_strdup_cb,
                             curl_calloc_cb) != CURLE_OK) {
        /* The failed allocation was curl's own start: a result too. */
        fprintf(stderr, "failed: MEMORY: libcurl could not initialise\n");
        report_count();
        return 1;
    }
    if (!atomic_load(&armed)) {
        /* The warm-up's output is not the counted run's. */
        int saved = dup(STDOUT_FILENO);
        int null_fd = open("/dev/null", O_WRONLY);
        fflush(stdout);
        if (saved < 0 || null_fd < 0 || dup2(null_fd, STDOUT_FILENO) < 0)
            return 3;
        rc = example_main(argc, argv);
        fflush(stdout);
        dup2(saved, STDOUT_FILENO);
        close(saved);
        close(null_fd);
        if (rc != 0) {
            fprintf(stderr, "alloc-torture: the warm-up registration "
                    "failed (%d)\n", rc);
            return 3;
        }
        atomic_store(&armed, 1);
    }
    rc = example_main(argc, argv);
    curl_global_cleanup();
    report_count();
    return rc;
}
