/* The 32-element GGUF block types q4_0, q4_1, q5_0, q5_1 and q8_0: reference
 * quantizers with ggml's scale choice and rounding, so bytes match llama.cpp's. */
#include "config.h"

#include <float.h>
#include <math.h>

#include "quant.h"

/* Symmetric types scale by the signed value of largest magnitude (first one wins
 * a tie), so that value lands exactly on the most negative level. */
static float signed_absmax(const float *x, int n)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, int n, float *min, float *max)
{
    *min = FLT_MAX;
    *max = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < *min)
            *min = x[j];
        if (x[j] > *max)
            *max = x[j];
    }
}

/* ggml's importance weights for one 32-block: imatrix entry times
 * sqrt(sigma2 + x^2), sigma2 being the mean square of the whole row. */
static float row_sigma2(const float *x, int64_t n)
{
    float sum_x2 = 0;
    for (int64_t j = 0; j < n; ++j)
        sum_x2 += x[j] * x[j];
    return sum_x2 / n;
}

static void block_weights(const float *xb, const float *qw, float sigma2, float *w)
{
    for (int j = 0; j < QK_LEGACY; ++j)
        w[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
}

static int clamp_max(int v, int hi)
{
    return v < hi ? v : hi;
}

/* With an importance matrix the symmetric types search their scale like q6_k's
 * sub-blocks do, and the affine ones like q4_k's (ggml's quantize_row_*_impl). */
static void q4_0_imatrix(const float *x, blk_q4_0 *y, int64_t n, const float *imatrix)
{
    float w[QK_LEGACY], sigma2 = row_sigma2(x, n);
    int8_t L[QK_LEGACY];
    for (int64_t i = 0; i < n / QK_LEGACY; i++) {
        const float *xb = x + QK_LEGACY * i;
        block_weights(xb, imatrix + QK_LEGACY * i, sigma2, w);
        y[i].d = slm_float_to_half(qz_make_qx_quants(QK_LEGACY, 8, xb, L, 1, w));
        for (int j = 0; j < QK_LEGACY / 2; ++j)
            y[i].qs[j] = (uint8_t)(L[j] | (L[j + QK_LEGACY / 2] << 4));
    }
}

int qz_quantize_q4_0(const float *x, void *dst, int64_t n, const float *imatrix)
{
    blk_q4_0 *y = dst;
    if (imatrix) {
        q4_0_imatrix(x, y, n, imatrix);
        return 0;
    }
    for (int64_t i = 0; i < n / QK_LEGACY; i++, x += QK_LEGACY) {
        const float d = signed_absmax(x, QK_LEGACY) / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_float_to_half(d);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            /* ggml truncates x*id + 8.5 through int8_t: keep the same conversion. */
            uint8_t lo = (uint8_t)clamp_max((int8_t)(x[j] * id + 8.5f), 15);
            uint8_t hi = (uint8_t)clamp_max((int8_t)(x[j + QK_LEGACY / 2] * id + 8.5f), 15);
            y[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
    return 0;
}

int qz_dequantize_q4_0(const void *src, float *y, int64_t n)
{
    const blk_q4_0 *x = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, y += QK_LEGACY) {
        const float d = slm_half_to_float(x[i].d);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            y[j] = (float)((x[i].qs[j] & 0x0f) - 8) * d;
            y[j + QK_LEGACY / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
    return 0;
}

/* Affine 32-blocks (q4_1, q5_1) with weights: levels 0..nmax in L, d and m out. */
static void affine_imatrix_block(const float *xb, const float *w, int nmax, uint8_t *L,
                                 uint16_t *d, uint16_t *m)
{
    uint8_t Laux[QK_LEGACY];
    float min;
    float scale = qz_make_qkx3_quants(QK_LEGACY, nmax, xb, w, L, &min, Laux, -0.9f, 0.05f, 36,
                                      false);
    *d = slm_float_to_half(scale);
    *m = slm_float_to_half(-min);
}

static void q4_1_imatrix(const float *x, blk_q4_1 *y, int64_t n, const float *imatrix)
{
    float w[QK_LEGACY], sigma2 = row_sigma2(x, n);
    uint8_t L[QK_LEGACY];
    for (int64_t i = 0; i < n / QK_LEGACY; i++) {
        const float *xb = x + QK_LEGACY * i;
        block_weights(xb, imatrix + QK_LEGACY * i, sigma2, w);
        affine_imatrix_block(xb, w, 15, L, &y[i].d, &y[i].m);
        for (int j = 0; j < QK_LEGACY / 2; ++j)
            y[i].qs[j] = (uint8_t)(L[j] | (L[j + QK_LEGACY / 2] << 4));
    }
}

int qz_quantize_q4_1(const float *x, void *dst, int64_t n, const float *imatrix)
{
    blk_q4_1 *y = dst;
    if (imatrix) {
        q4_1_imatrix(x, y, n, imatrix);
        return 0;
    }
    for (int64_t i = 0; i < n / QK_LEGACY; i++, x += QK_LEGACY) {
        float min, max;
        min_max(x, QK_LEGACY, &min, &max);
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_float_to_half(d);
        y[i].m = slm_float_to_half(min);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            uint8_t lo = (uint8_t)clamp_max((int8_t)((x[j] - min) * id + 0.5f), 15);
            uint8_t hi =
                (uint8_t)clamp_max((int8_t)((x[j + QK_LEGACY / 2] - min) * id + 0.5f), 15);
            y[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
    return 0;
}

int qz_dequantize_q4_1(const void *src, float *y, int64_t n)
{
    const blk_q4_1 *x = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, y += QK_LEGACY) {
        const float d = slm_half_to_float(x[i].d);
        const float m = slm_half_to_float(x[i].m);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            y[j] = (float)(x[i].qs[j] & 0x0f) * d + m;
            y[j + QK_LEGACY / 2] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
    return 0;
}

/* The fifth bits of q5 blocks: bit j of qh is element j's (j < 32). */
static void put_q5(uint8_t *qs, uint8_t qh[4], int j, uint8_t lo, uint8_t hi)
{
    uint32_t bits;
    memcpy(&bits, qh, sizeof bits);
    qs[j] = (uint8_t)((lo & 0x0f) | ((hi & 0x0f) << 4));
    bits |= (uint32_t)((lo & 0x10) >> 4) << j;
    bits |= (uint32_t)((hi & 0x10) >> 4) << (j + QK_LEGACY / 2);
    memcpy(qh, &bits, sizeof bits);
}

static int get_q5(const uint8_t *qs, const uint8_t qh[4], int e)
{
    uint32_t bits;
    memcpy(&bits, qh, sizeof bits);
    int j = e % (QK_LEGACY / 2);
    int low = e < QK_LEGACY / 2 ? (qs[j] & 0x0f) : (qs[j] >> 4);
    return low | (int)(((bits >> e) & 1u) << 4);
}

static void q5_0_imatrix(const float *x, blk_q5_0 *y, int64_t n, const float *imatrix)
{
    float w[QK_LEGACY], sigma2 = row_sigma2(x, n);
    int8_t L[QK_LEGACY];
    for (int64_t i = 0; i < n / QK_LEGACY; i++) {
        const float *xb = x + QK_LEGACY * i;
        block_weights(xb, imatrix + QK_LEGACY * i, sigma2, w);
        y[i].d = slm_float_to_half(qz_make_qx_quants(QK_LEGACY, 16, xb, L, 1, w));
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int j = 0; j < QK_LEGACY / 2; ++j)
            put_q5(y[i].qs, y[i].qh, j, (uint8_t)L[j], (uint8_t)L[j + QK_LEGACY / 2]);
    }
}

int qz_quantize_q5_0(const float *x, void *dst, int64_t n, const float *imatrix)
{
    blk_q5_0 *y = dst;
    if (imatrix) {
        q5_0_imatrix(x, y, n, imatrix);
        return 0;
    }
    for (int64_t i = 0; i < n / QK_LEGACY; i++, x += QK_LEGACY) {
        const float d = signed_absmax(x, QK_LEGACY) / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_float_to_half(d);
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            uint8_t lo = (uint8_t)clamp_max((int8_t)(x[j] * id + 16.5f), 31);
            uint8_t hi = (uint8_t)clamp_max((int8_t)(x[j + QK_LEGACY / 2] * id + 16.5f), 31);
            put_q5(y[i].qs, y[i].qh, j, lo, hi);
        }
    }
    return 0;
}

int qz_dequantize_q5_0(const void *src, float *y, int64_t n)
{
    const blk_q5_0 *x = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, y += QK_LEGACY) {
        const float d = slm_half_to_float(x[i].d);
        for (int e = 0; e < QK_LEGACY; e++)
            y[e] = (float)(get_q5(x[i].qs, x[i].qh, e) - 16) * d;
    }
    return 0;
}

static void q5_1_imatrix(const float *x, blk_q5_1 *y, int64_t n, const float *imatrix)
{
    float w[QK_LEGACY], sigma2 = row_sigma2(x, n);
    uint8_t L[QK_LEGACY];
    for (int64_t i = 0; i < n / QK_LEGACY; i++) {
        const float *xb = x + QK_LEGACY * i;
        block_weights(xb, imatrix + QK_LEGACY * i, sigma2, w);
        affine_imatrix_block(xb, w, 31, L, &y[i].d, &y[i].m);
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int j = 0; j < QK_LEGACY / 2; ++j)
            put_q5(y[i].qs, y[i].qh, j, L[j], L[j + QK_LEGACY / 2]);
    }
}

int qz_quantize_q5_1(const float *x, void *dst, int64_t n, const float *imatrix)
{
    blk_q5_1 *y = dst;
    if (imatrix) {
        q5_1_imatrix(x, y, n, imatrix);
        return 0;
    }
    for (int64_t i = 0; i < n / QK_LEGACY; i++, x += QK_LEGACY) {
        float min, max;
        min_max(x, QK_LEGACY, &min, &max);
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_float_to_half(d);
        y[i].m = slm_float_to_half(min);
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            /* ggml does not clamp here: (max - min) * id rounds to at most 31. */
            uint8_t lo = (uint8_t)((x[j] - min) * id + 0.5f);
            uint8_t hi = (uint8_t)((x[j + QK_LEGACY / 2] - min) * id + 0.5f);
            put_q5(y[i].qs, y[i].qh, j, lo, hi);
        }
    }
    return 0;
}

int qz_dequantize_q5_1(const void *src, float *y, int64_t n)
{
    const blk_q5_1 *x = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, y += QK_LEGACY) {
        const float d = slm_half_to_float(x[i].d);
        const float m = slm_half_to_float(x[i].m);
        for (int e = 0; e < QK_LEGACY; e++)
            y[e] = (float)get_q5(x[i].qs, x[i].qh, e) * d + m;
    }
    return 0;
}

int qz_quantize_q8_0(const float *x, void *dst, int64_t n, const float *imatrix)
{
    (void)imatrix;   /* as in ggml: 8 bits leave nothing for importance to steer */
    blk_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, x += QK_LEGACY) {
        float amax = 0.0f;
        for (int j = 0; j < QK_LEGACY; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_float_to_half(d);
        for (int j = 0; j < QK_LEGACY; j++)
            y[i].qs[j] = (int8_t)roundf(x[j] * id);   /* halves away from zero, as ggml */
    }
    return 0;
}

int qz_dequantize_q8_0(const void *src, float *y, int64_t n)
{
    const blk_q8_0 *x = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, y += QK_LEGACY) {
        const float d = slm_half_to_float(x[i].d);
        for (int j = 0; j < QK_LEGACY; j++)
            y[j] = (float)x[i].qs[j] * d;
    }
    return 0;
}

#define LEGACY_DOT(t)                                                                    \
    float qz_dot_##t(const void *x, const float *y, int64_t n)                           \
    {                                                                                    \
        return qz_dot_by_blocks(qz_dequantize_##t, QK_LEGACY, sizeof(blk_##t), x, y, n); \
    }
LEGACY_DOT(q4_0)
LEGACY_DOT(q4_1)
LEGACY_DOT(q5_0)
LEGACY_DOT(q5_1)
LEGACY_DOT(q8_0)
