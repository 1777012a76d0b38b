/* The 256-element GGUF super-block types q4_k, q5_k and q6_k: ggml's reference
 * quantizers (and its importance-matrix variants) with its exact scale packing. */
#include "config.h"

#include <math.h>

#include "quant.h"

#define N_SUB (QK_K / 32)       /* 32-element sub-blocks of q4_k/q5_k */
#define N_SUB16 (QK_K / 16)     /* 16-element sub-blocks of q6_k */
#define GROUP_MAX_EPS 1e-15f

/* The 12 scale bytes hold eight 6-bit scales and eight 6-bit mins: sub-blocks
 * 0..3 in the low 6 bits of bytes 0..3 / 4..7, sub-blocks 4..7 split into a low
 * nibble in bytes 8..11 and the top two bits in the spare bits of bytes 0..7. */
static void pack_scale_min(uint8_t *s, int j, uint8_t ls, uint8_t lm)
{
    if (j < 4) {
        s[j] = ls;
        s[j + 4] = lm;
    } else {
        s[j + 4] = (uint8_t)((ls & 0xf) | ((lm & 0xf) << 4));
        s[j - 4] |= (uint8_t)((ls >> 4) << 6);
        s[j] |= (uint8_t)((lm >> 4) << 6);
    }
}

static void unpack_scale_min(const uint8_t *s, int j, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

typedef struct {
    int nmax;           /* 15 (q4_k) or 31 (q5_k) */
    float rmin, rdelta; /* qkx2 search range of the plain reference */
    int nstep;
} affine_params_t;

static const affine_params_t q4k_params = {15, -1.f, 0.1f, 20};
static const affine_params_t q5k_params = {31, -0.5f, 0.1f, 15};

/* Plain reference: per sub-block (scale, min) searched, then both quantized to
 * 6 bits against the super-block's largest. */
static void affine_scales_ref(const float *x, const affine_params_t *p, uint8_t *sc_bytes,
                              uint16_t *d, uint16_t *dmin, uint8_t *L)
{
    uint8_t Laux[32];
    float weights[32], mins[N_SUB], scales[N_SUB];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < N_SUB; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l)
            weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = qz_make_qkx2_quants(32, p->nmax, x + 32 * j, weights, L + 32 * j, &mins[j],
                                        Laux, p->rmin, p->rdelta, p->nstep, false);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < N_SUB; ++j) {
        uint8_t ls = (uint8_t)qz_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)qz_nearest_int(inv_min * mins[j]);
        pack_scale_min(sc_bytes, j, ls < 63 ? ls : 63, lm < 63 ? lm : 63);
    }
    *d = slm_float_to_half(max_scale / 63.f);
    *dmin = slm_float_to_half(max_min / 63.f);
}

/* Importance-weighted variant (ggml's quantize_row_q*_K_impl with weights). */
static void affine_scales_imatrix(const float *x, const float *qw, int nmax, uint8_t *sc_bytes,
                                  uint16_t *d, uint16_t *dmin, uint8_t *L)
{
    uint8_t Laux[32], Ls[N_SUB], Lm[N_SUB];
    float weights[32], sw[N_SUB], mins[N_SUB], scales[N_SUB];
    float sum_x2 = 0;
    for (int l = 0; l < QK_K; ++l)
        sum_x2 += x[l] * x[l];
    float sigma2 = 2 * sum_x2 / QK_K;
    for (int j = 0; j < N_SUB; ++j) {
        for (int l = 0; l < 32; ++l)
            weights[l] = qw[32 * j + l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
        float sumw = 0;
        for (int l = 0; l < 32; ++l)
            sumw += weights[l];
        sw[j] = sumw;
        scales[j] = qz_make_qkx3_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                        -0.9f, 0.05f, 36, false);
    }
    float d_block = qz_make_qp_quants(N_SUB, 63, scales, Ls, sw);
    float m_block = qz_make_qp_quants(N_SUB, 63, mins, Lm, sw);
    for (int j = 0; j < N_SUB; ++j)
        pack_scale_min(sc_bytes, j, Ls[j] < 63 ? Ls[j] : 63, Lm[j] < 63 ? Lm[j] : 63);
    *d = slm_float_to_half(d_block);
    *dmin = slm_float_to_half(m_block);
}

/* Levels against the stored (rounded) scales; sub-blocks whose scale rounded to
 * zero keep the search's levels, as in ggml. */
static void affine_requantize(const float *x, const uint8_t *sc_bytes, uint16_t d16,
                              uint16_t dmin16, int nmax, uint8_t *L)
{
    for (int j = 0; j < N_SUB; ++j) {
        uint8_t sc, m;
        unpack_scale_min(sc_bytes, j, &sc, &m);
        const float d = slm_half_to_float(d16) * sc;
        if (!d)
            continue;
        const float dm = slm_half_to_float(dmin16) * m;
        for (int ii = 0; ii < 32; ++ii) {
            int l = qz_nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        }
    }
}

int qz_quantize_q4_k(const float *x, void *dst, int64_t n, const float *imatrix)
{
    blk_q4_k *y = dst;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        if (imatrix)
            affine_scales_imatrix(x, imatrix + QK_K * i, 15, y[i].scales, &y[i].d, &y[i].dmin, L);
        else
            affine_scales_ref(x, &q4k_params, y[i].scales, &y[i].d, &y[i].dmin, L);
        affine_requantize(x, y[i].scales, y[i].d, y[i].dmin, 15, L);
        /* Each 32 bytes hold two sub-blocks: the first in low, the next in high nibbles. */
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; ++l)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
    return 0;
}

int qz_dequantize_q4_k(const void *src, float *y, int64_t n)
{
    const blk_q4_k *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = slm_half_to_float(x[i].d);
        const float min = slm_half_to_float(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int j = 0; j < N_SUB; j += 2, q += 32) {
            uint8_t sc, m;
            unpack_scale_min(x[i].scales, j, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            unpack_scale_min(x[i].scales, j + 1, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l)
                *y++ = d1 * (q[l] & 0xf) - m1;
            for (int l = 0; l < 32; ++l)
                *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
    return 0;
}

int qz_quantize_q5_k(const float *x, void *dst, int64_t n, const float *imatrix)
{
    blk_q5_k *y = dst;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        if (imatrix)
            affine_scales_imatrix(x, imatrix + QK_K * i, 31, y[i].scales, &y[i].d, &y[i].dmin, L);
        else
            affine_scales_ref(x, &q5k_params, y[i].scales, &y[i].d, &y[i].dmin, L);
        affine_requantize(x, y[i].scales, y[i].d, y[i].dmin, 31, L);
        /* Low nibbles as in q4_k; fifth bits in qh, two bit planes per 64 elements. */
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int b = 0; b < QK_K; b += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
            for (int j = 0; j < 32; ++j) {
                int l1 = L[b + j], l2 = L[b + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
    return 0;
}

int qz_dequantize_q5_k(const void *src, float *y, int64_t n)
{
    const blk_q5_k *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = slm_half_to_float(x[i].d);
        const float min = slm_half_to_float(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < N_SUB; j += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            unpack_scale_min(x[i].scales, j, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            unpack_scale_min(x[i].scales, j + 1, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l)
                *y++ = d1 * ((ql[l] & 0xf) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l)
                *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
    return 0;
}

/* q6_k packing: per 128 elements, ql holds low nibbles of elements l and l+64 (then
 * l+32 and l+96), qh the 2-bit tops of l, l+32, l+64, l+96 in one byte. */
static void q6k_pack(const int8_t *L, blk_q6_k *y)
{
    uint8_t *ql = y->ql, *qh = y->qh;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; ++l) {
            const uint8_t q1 = L[j + l] & 0xf, q2 = L[j + l + 32] & 0xf;
            const uint8_t q3 = L[j + l + 64] & 0xf, q4 = L[j + l + 96] & 0xf;
            ql[l] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                              ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
        }
    }
}

int qz_quantize_q6_k(const float *x, void *dst, int64_t n, const float *imatrix)
{
    blk_q6_k *y = dst;
    int8_t L[QK_K];
    float scales[N_SUB16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < N_SUB16; ++ib) {
            const float *qw = imatrix ? imatrix + QK_K * i + 16 * ib : NULL;
            const float scale = qz_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, qw);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) {
                max_abs_scale = fabsf(scale);
                max_scale = scale;
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = slm_float_to_half(1 / iscale);
        for (int ib = 0; ib < N_SUB16; ++ib) {
            int s = qz_nearest_int(iscale * scales[ib]);
            y[i].scales[ib] = (int8_t)(s < 127 ? s : 127);
        }
        for (int j = 0; j < N_SUB16; ++j) {
            float d = slm_half_to_float(y[i].d) * y[i].scales[j];
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ++ii) {
                int l = qz_nearest_int(x[16 * j + ii] / d);
                l = l < -32 ? -32 : l > 31 ? 31 : l;
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }
        q6k_pack(L, &y[i]);
    }
    return 0;
}

int qz_dequantize_q6_k(const void *src, float *y, int64_t n)
{
    const blk_q6_k *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = slm_half_to_float(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int b = 0; b < QK_K; b += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; ++l) {
                int is = l / 16;
                const int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
    return 0;
}

#define K_DOT(t)                                                                    \
    float qz_dot_##t(const void *x, const float *y, int64_t n)                      \
    {                                                                               \
        return qz_dot_by_blocks(qz_dequantize_##t, QK_K, sizeof(blk_##t), x, y, n); \
    }
K_DOT(q4_k)
K_DOT(q5_k)
K_DOT(q6_k)
