/*
 * fuzz-sanitize.c - libFuzzer harness for mi_filename_sanitize with
 * property checks (SECURITY.md's F4): the output never holds "/", "\",
 * NUL, control characters or invalid UTF-8, is never "", "." or "..",
 * never starts with ".", is at most 255 bytes, and sanitising it again
 * changes nothing.
 */
#include <mediaindex.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2
                 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        size_t j;

        if (!k || i + k > n)
            return 0;
        for (j = 1; j < k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
        i += k;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1), out[256], again[256];
    size_t n, i;

    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    if (mi_filename_sanitize(out, sizeof(out), in) != MI_OK)
        abort();
    free(in);
    n = strlen(out);
    if (n == 0 || n > 255 || out[0] == '.' || strcmp(out, "..") == 0)
        abort();
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
            abort();
    }
    if (!valid_utf8((const unsigned char *)out, n))
        abort();
    if (mi_filename_sanitize(again, sizeof(again), out) != MI_OK ||
        strcmp(again, out) != 0)
        abort();
    return 0;
}
