/*
 * The floor under one registration: the same libraries (Debian's libcurl
 * with OpenSSL, json-c, libcrypto) loaded and initialised, and one HTTPS
 * GET over a fresh TLS connection with the same CA file, by libcurl alone.
 * bench/run measures it like the examples: what the examples use above
 * it is dps's own.
 *
 *   floor URL CA_FILE
 */
#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <stdio.h>

static size_t sink(char *data, size_t size, size_t nmemb, void *ctx)
{
    (void)data;
    (void)ctx;
    return size * nmemb;
}

int main(int argc, char **argv)
{
    CURL *easy;
    CURLcode rc;
    json_object *o;

    if (argc < 3)
        return 2;
    /* Touch json-c and libcrypto as the client does, so all are loaded. */
    o = json_tokener_parse("{\"status\":\"assigned\"}");
    json_object_put(o);
    OPENSSL_init_crypto(0, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    easy = curl_easy_init();
    if (!easy)
        return 1;
    curl_easy_setopt(easy, CURLOPT_URL, argv[1]);
    curl_easy_setopt(easy, CURLOPT_CAINFO, argv[2]);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, sink);
    rc = curl_easy_perform(easy);
    curl_easy_cleanup(easy);
    curl_global_cleanup();
    if (rc != CURLE_OK) {
        fprintf(stderr, "floor: %s\n", curl_easy_strerror(rc));
        return 1;
    }
    return 0;
}
