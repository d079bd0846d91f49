/*
 * libFuzzer target: the response headers the client reads, Retry-After
 * and Date. The input is split at the first newline into a Retry-After
 * value and a Date value; both go through the header callback the
 * transport gives libcurl (as raw header lines) and through the
 * Retry-After parser, with the clamp limits the client uses and with
 * extreme ones. dps_http.c is included for its static header callback.
 */
#include "../csrc/dps_http.c"

#include "prov_sm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The header callback, fed one line exactly as libcurl would. */
static void feed_header(dps_http *h, const char *name, const uint8_t *value,
                        size_t len)
{
    size_t n = strlen(name);
    char *line = malloc(n + len + 2);
    if (!line)
        return;
    memcpy(line, name, n);
    memcpy(line + n, value, len);
    memcpy(line + n + len, "\r\n", 2);
    on_header(line, 1, n + len + 2, h);
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t first = nl ? (size_t)(nl - data) : size;
    const uint8_t *rest = nl ? nl + 1 : data + size;
    size_t rest_len = size - first - (nl ? 1 : 0);
    dps_http *h = calloc(1, sizeof *h);
    uint32_t seconds = 0;
    int64_t wall = 0;

    if (!h)
        return 0;
    feed_header(h, "Retry-After:", data, first);
    feed_header(h, "date: ", rest, rest_len);
    /* The raw input as one line too: status lines, odd names. */
    {
        char *raw = malloc(size + 1);
        if (raw) {
            memcpy(raw, data, size);
            raw[size] = '\0';
            on_header(raw, 1, size, h);
            free(raw);
        }
    }
    if (size >= 8)
        memcpy(&wall, data + size - 8, sizeof wall);
    prov_parse_retry_after(h->retry_after, h->date, 1764460800, 1, 300,
                           &seconds);
    prov_parse_retry_after(h->retry_after, h->date[0] ? h->date : NULL, wall,
                           0, UINT32_MAX, &seconds);
    prov_parse_retry_after(h->date, h->retry_after, wall, 0, 0, &seconds);
    free(h);
    return 0;
}
