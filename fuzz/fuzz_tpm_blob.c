/*
 * libFuzzer target: the TPM authenticationKey blob the service sends
 * (docs/protocol.md §6.4: credential blob, encrypted secret, wrapped key,
 * seed, public area). The bytes go to the unmarshaller both raw and as
 * the Base64 text the service would send; neither may crash, leak or
 * read past the input. dps_tpm_tss.c is included for its static parser.
 */
#include "../csrc/dps_tpm_tss.c"

#include "dps_crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct blob b;
    char err[256];
    char *text;
    uint8_t *decoded = NULL;
    size_t decoded_len = 0;

    parse_blob(data, size, &b, err, sizeof err);
    /* The same bytes as text: only strict Base64 reaches the parser. */
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (dps_base64_decode(text, &decoded, &decoded_len) == 0) {
        parse_blob(decoded, decoded_len, &b, err, sizeof err);
        free(decoded);
    }
    /* And a well-formed Base64 form of them, so the decoder's output
     * feeds the parser on every run. */
    {
        char *b64 = dps_base64_encode(data, size);
        if (b64 && dps_base64_decode(b64, &decoded, &decoded_len) == 0) {
            parse_blob(decoded, decoded_len, &b, err, sizeof err);
            free(decoded);
        }
        free(b64);
    }
    free(text);
    return 0;
}
