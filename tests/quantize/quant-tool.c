/* Test helper for the oracle: converts raw little-endian f32 files to a block type
 * and back with slmops' quantizers, so another implementation can be compared. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/quantize.h>
#include <slmops/registry.h>
#include <slmops/types.h>

static void *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "quant-tool: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *size = n;
    return buf;
}

static int write_all(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        fprintf(stderr, "quant-tool: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: quant-tool quantize TYPE ROW_LEN IN.f32 OUT.bin [IMATRIX.f32]\n"
                    "       quant-tool dequantize TYPE ROW_LEN IN.bin OUT.f32\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 6 || argc > 7)
        return usage();
    bool quant = strcmp(argv[1], "quantize") == 0;
    if (!quant && strcmp(argv[1], "dequantize") != 0)
        return usage();
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    int type = slm_type_from_name(argv[2]);
    long long row_len = strtoll(argv[3], NULL, 10);
    size_t row_bytes = type < 0 ? 0 : slm_type_row_size(type, row_len);
    if (!reg || type < 0 || row_len <= 0 || row_bytes == 0) {
        fprintf(stderr, "quant-tool: bad type or row length (%s, %s) %s\n", argv[2], argv[3],
                err.message);
        return 2;
    }
    size_t in_size, imatrix_size = 0;
    void *in = read_all(argv[4], &in_size);
    float *imatrix = argc == 7 ? read_all(argv[6], &imatrix_size) : NULL;
    size_t in_row = quant ? (size_t)row_len * sizeof(float) : row_bytes;
    size_t out_row = quant ? row_bytes : (size_t)row_len * sizeof(float);
    if (!in || in_size % in_row || (argc == 7 && imatrix_size != (size_t)row_len * sizeof(float))) {
        fprintf(stderr, "quant-tool: %s is not whole rows (or the imatrix is not one row)\n",
                argv[4]);
        return 1;
    }
    int64_t rows = (int64_t)(in_size / in_row);
    void *out = malloc(rows ? (size_t)rows * out_row : 1);
    int rc = !out ? SLM_E_NOMEM
             : quant ? slm_quantize_rows(reg, type, in, out, rows, row_len, imatrix, &err)
                     : slm_dequantize_rows(reg, type, in, out, rows, row_len, &err);
    if (rc != SLM_OK) {
        fprintf(stderr, "quant-tool: %s\n", err.message);
        return 1;
    }
    rc = write_all(argv[5], out, (size_t)rows * out_row);
    free(out);
    free(in);
    free(imatrix);
    slm_registry_free(reg);
    return rc ? 1 : 0;
}
