/* Quantized block types provided by quantizer plugins: converting rows between
 * f32 and a block type through the plugin that defines it (the core knows no
 * quant type by name), and the reference dot product used by tests. */
#ifndef SLMOPS_QUANTIZE_H
#define SLMOPS_QUANTIZE_H

#include <stdint.h>
#include <slmops/error.h>
#include <slmops/registry.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Quantize n_rows rows of row_len floats (row_len a multiple of the type's block)
 * into dst (n_rows * slm_type_row_size(type, row_len) bytes). imatrix may be NULL. */
int slm_quantize_rows(slm_registry_t *reg, int type, const float *src, void *dst,
                      int64_t n_rows, int64_t row_len, const float *imatrix, slm_error_t *err);
/* Expand rows of `type` back to floats. f32/f16/bf16 work without any plugin. */
int slm_dequantize_rows(slm_registry_t *reg, int type, const void *src, float *dst,
                        int64_t n_rows, int64_t row_len, slm_error_t *err);
/* The defining plugin's reference dot product of n elements (blocks x floats). */
int slm_quantized_dot(slm_registry_t *reg, int type, const void *x, const float *y, int64_t n,
                      float *out, slm_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
