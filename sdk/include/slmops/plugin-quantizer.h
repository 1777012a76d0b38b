/* Quantizer plugin interface: one block type's layout and reference arithmetic.
 *
 * Interface versions:
 *   1  traits (type id, name, block, bytes), quantize_row, dequantize_row, vec_dot.
 *
 * Types that exist in GGUF keep GGUF's type id and exact bit layout. */
#ifndef SLMOPS_PLUGIN_QUANTIZER_H
#define SLMOPS_PLUGIN_QUANTIZER_H

#include <slmops/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLM_QUANTIZER_IFACE_VERSION 1u

typedef struct slm_quantizer_iface {
    uint32_t struct_size;
    uint32_t iface_version;
    int32_t type;              /* slm_type_t id this plugin defines */
    uint32_t block;            /* elements per block */
    uint32_t block_bytes;      /* bytes per block */
    const char *type_name;     /* "q4_0" */
    /* Quantize n floats (n a multiple of block) into dst. `imatrix` optional (may be NULL). */
    int (*quantize_row)(const float *src, void *dst, int64_t n, const float *imatrix);
    /* Expand n elements of blocks back to floats. */
    int (*dequantize_row)(const void *src, float *dst, int64_t n);
    /* Reference dot product of n elements: blocks x with floats y. */
    float (*vec_dot_f32)(const void *x, const float *y, int64_t n);
    void *reserved[8];
} slm_quantizer_iface_t;

#ifdef __cplusplus
}
#endif
#endif
