/* Shared by the quantizer plugins: GGUF's block layouts (bit for bit), the slmops
 * NF4 layout, half-float conversion and each type's reference routines. */
#ifndef SLMOPS_QUANTIZERS_QUANT_H
#define SLMOPS_QUANTIZERS_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <slmops/fp16.h>

#define QK_LEGACY 32   /* q4_0 q4_1 q5_0 q5_1 q8_0 */
#define QK_K 256       /* q4_k q5_k q6_k super-blocks */
#define QK_NF4 64
#define K_SCALE_BYTES 12

/* Every field is a byte array or a uint16_t at an even offset, so these structs
 * have no padding and their sizes are the on-disk block sizes (asserted below). */
typedef struct { uint16_t d; uint8_t qs[QK_LEGACY / 2]; } blk_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[QK_LEGACY / 2]; } blk_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK_LEGACY / 2]; } blk_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK_LEGACY / 2]; } blk_q5_1;
typedef struct { uint16_t d; int8_t qs[QK_LEGACY]; } blk_q8_0;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_BYTES];
    uint8_t qs[QK_K / 2];
} blk_q4_k;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_BYTES];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} blk_q5_k;
typedef struct {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
} blk_q6_k;
typedef struct { uint16_t d; uint8_t qs[QK_NF4 / 2]; } blk_nf4;

_Static_assert(sizeof(blk_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(blk_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(blk_q5_0) == 22, "q5_0 block");
_Static_assert(sizeof(blk_q5_1) == 24, "q5_1 block");
_Static_assert(sizeof(blk_q8_0) == 34, "q8_0 block");
_Static_assert(sizeof(blk_q4_k) == 144, "q4_k block");
_Static_assert(sizeof(blk_q5_k) == 176, "q5_k block");
_Static_assert(sizeof(blk_q6_k) == 210, "q6_k block");
_Static_assert(sizeof(blk_nf4) == 34, "nf4 block");

/* IEEE half <-> float, round to nearest even (what ggml and numpy do). */

/* Round to nearest, ties to even, for |x| < 2^22: the exact rounding ggml's
 * reference quantizers use, so the chosen levels match theirs. */
static inline int qz_nearest_int(float x)
{
    float v = x + 12582912.f;   /* 1.5 * 2^23: the integer lands in the mantissa */
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* ggml's scale searches (search.c); see there. */
float qz_make_qx_quants(int n, int nmax, const float *x, int8_t *L, int rmse_type,
                        const float *qw);
float qz_make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                          float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                          bool use_mad);
float qz_make_qkx3_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                          float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                          bool use_mad);
float qz_make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *quant_weights);

/* Dot product of n elements via dequantizing one block at a time (block <= 256),
 * accumulated in double: the reference every SIMD kernel is measured against. */
typedef int (*qz_dequant_fn)(const void *src, float *dst, int64_t n);
float qz_dot_by_blocks(qz_dequant_fn dequant, int block, size_t block_bytes, const void *x,
                       const float *y, int64_t n);

#define QZ_DECLARE(t)                                                           \
    int qz_quantize_##t(const float *src, void *dst, int64_t n, const float *imatrix); \
    int qz_dequantize_##t(const void *src, float *dst, int64_t n);              \
    float qz_dot_##t(const void *x, const float *y, int64_t n);

QZ_DECLARE(q4_0)
QZ_DECLARE(q4_1)
QZ_DECLARE(q5_0)
QZ_DECLARE(q5_1)
QZ_DECLARE(q8_0)
QZ_DECLARE(q4_k)
QZ_DECLARE(q5_k)
QZ_DECLARE(q6_k)
QZ_DECLARE(nf4)

#endif
