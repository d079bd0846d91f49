/*
 * libFuzzer target: the response headers the client reads, Retry-After
 * and Date, as the transport reads them now. The input is split at the
 * first newline into a Retry-After value and a Date value; the rest of
 * the input after a second newline becomes extra raw header lines. They
 * arrive in a real HTTP answer that libcurl parses (over a socketpair:
 * no network), and the transport's own fill_response() takes them with
 * curl_easy_header() and turns Retry-After into seconds with
 * curl_getdate(). dps_http_retry_after_s is also called directly with
 * clocks far apart. dps_http.c is included for its static functions.
 */
#include "../csrc/dps_http.c"

#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Hands libcurl the client end of a socketpair the answer is already
 * written to, whatever address it asked for. */
static curl_socket_t open_prepared(void *ctx, curlsocktype purpose,
                                   struct curl_sockaddr *addr)
{
    (void)purpose;
    (void)addr;
    return *(int *)ctx;
}

static int already_connected(void *ctx, curl_socket_t fd, curlsocktype purpose)
{
    (void)ctx;
    (void)fd;
    (void)purpose;
    return CURL_SOCKOPT_ALREADY_CONNECTED;
}

static size_t put(char *out, size_t at, size_t cap, const void *src, size_t len)
{
    if (at + len > cap)
        len = cap - at;
    memcpy(out + at, src, len);
    return at + len;
}

/* One answer: status line, the fuzzed headers, an empty body. */
static size_t build_answer(char *out, size_t cap, const uint8_t *ra,
                           size_t ra_len, const uint8_t *date, size_t date_len,
                           const uint8_t *extra, size_t extra_len)
{
    static const char status[] = "HTTP/1.1 429 Too Many Requests\r\n";
    static const char tail[] = "Content-Length: 0\r\n\r\n";
    size_t n = 0;

    n = put(out, n, cap, status, sizeof status - 1);
    n = put(out, n, cap, "Retry-After: ", 13);
    n = put(out, n, cap, ra, ra_len);
    n = put(out, n, cap, "\r\nDate: ", 8);
    n = put(out, n, cap, date, date_len);
    n = put(out, n, cap, "\r\n", 2);
    n = put(out, n, cap, extra, extra_len);
    if (extra_len)
        n = put(out, n, cap, "\r\n", 2);
    n = put(out, n, cap, tail, sizeof tail - 1);
    return n;
}

static void through_libcurl(const char *answer, size_t len)
{
    int sv[2];
    dps_http h;
    dps_http_response r;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return;
    if (write(sv[1], answer, len) != (ssize_t)len) {
        close(sv[0]);
        close(sv[1]);
        return;
    }
    shutdown(sv[1], SHUT_WR);
    memset(&h, 0, sizeof h);
    h.max_body = 1024;
    h.easy = curl_easy_init();
    if (h.easy) {
        curl_easy_setopt(h.easy, CURLOPT_URL, "http://127.0.0.1:9/");
        curl_easy_setopt(h.easy, CURLOPT_OPENSOCKETFUNCTION, open_prepared);
        curl_easy_setopt(h.easy, CURLOPT_OPENSOCKETDATA, &sv[0]);
        curl_easy_setopt(h.easy, CURLOPT_SOCKOPTFUNCTION, already_connected);
        curl_easy_setopt(h.easy, CURLOPT_CLOSESOCKETFUNCTION, NULL);
        curl_easy_setopt(h.easy, CURLOPT_PROXY, "");
        curl_easy_setopt(h.easy, CURLOPT_ERRORBUFFER, h.errbuf);
        curl_easy_setopt(h.easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h.easy, CURLOPT_WRITEDATA, &h);
        curl_easy_setopt(h.easy, CURLOPT_TIMEOUT_MS, 2000L);
        curl_easy_setopt(h.easy, CURLOPT_NOSIGNAL, 1L);
        /* What the transport does with the finished transfer, success or
         * not: the header reads, or the failure table. */
        fill_response(&h, curl_easy_perform(h.easy), 0, &r);
        dps_http_response_free(&r);
        curl_easy_cleanup(h.easy); /* closes sv[0] */
    } else {
        close(sv[0]);
    }
    close(sv[1]);
    free(h.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t first = nl ? (size_t)(nl - data) : size;
    const uint8_t *rest = nl ? nl + 1 : data + size;
    size_t rest_len = size - first - (nl ? 1 : 0);
    const uint8_t *nl2 = memchr(rest, '\n', rest_len);
    size_t second = nl2 ? (size_t)(nl2 - rest) : rest_len;
    const uint8_t *extra = nl2 ? nl2 + 1 : rest + rest_len;
    size_t extra_len = rest_len - second - (nl2 ? 1 : 0);
    char answer[8192];
    char *ra, *date;
    int64_t wall = 0;

    if (size > 4096)
        return 0;
    through_libcurl(answer, build_answer(answer, sizeof answer, data, first,
                                         rest, second, extra, extra_len));
    /* The parser alone, with the raw values and extreme clocks. */
    ra = malloc(first + 1);
    date = malloc(second + 1);
    if (ra && date) {
        memcpy(ra, data, first);
        ra[first] = '\0';
        memcpy(date, rest, second);
        date[second] = '\0';
        /* Any clock a device could have: 64-bit seconds, 0 to year
         * 36812 (the transport passes time(NULL)). */
        if (size >= 8)
            memcpy(&wall, data + size - 8, sizeof wall);
        wall &= ((int64_t)1 << 40) - 1;
        (void)dps_http_retry_after_s(ra, date, wall);
        (void)dps_http_retry_after_s(ra, NULL, 0);
        (void)dps_http_retry_after_s(date, ra, ((int64_t)1 << 40) - 1);
    }
    free(ra);
    free(date);
    return 0;
}
