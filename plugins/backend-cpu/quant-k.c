/* K-quant kernels of the CPU backend: q4_k, q5_k and q6_k weights against q8_K
 * activations, in ggml's exact block layouts, with scalar, AVX2 and AVX-512 paths. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <slmops/types.h>

#include "convert.h"
#include "quant-types.h"
#include "vmath.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) &&                      \
    defined(__AVX512DQ__) && defined(__FMA__)
#define KQ_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__)
#define KQ_AVX2 1
#endif

#define QK_K 256

/* Unaligned loads from any byte pointer. */
#define LOAD64(p) _mm_loadl_epi64((const __m128i *)(const void *)(p))
#define LOAD128(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define LOAD256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))

/* ggml-common.h's blocks. Fields are bytes or 16-bit at even offsets (q8_K: a
 * float first and a size that is a multiple of 4), so no padding creeps in. */
typedef struct kq_q4_k {
    uint16_t d;           /* f16 scale of the 6-bit sub-block scales */
    uint16_t dmin;        /* f16 scale of the 6-bit sub-block mins */
    uint8_t scales[12];   /* 8 scales and 8 mins of 32-element sub-blocks */
    uint8_t qs[QK_K / 2]; /* per 64 elements: 32 bytes, low nibbles first */
} kq_q4_k_t;

typedef struct kq_q5_k {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[QK_K / 8]; /* fifth bits: bit 2j / 2j+1 of qh[l] for 64-group j */
    uint8_t qs[QK_K / 2];
} kq_q5_k_t;

typedef struct kq_q6_k {
    uint8_t ql[QK_K / 2]; /* low 4 bits */
    uint8_t qh[QK_K / 4]; /* high 2 bits */
    int8_t scales[QK_K / 16];
    uint16_t d;
} kq_q6_k_t;

typedef struct kq_q8_k {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16]; /* sums of qs in groups of 16 */
} kq_q8_k_t;

_Static_assert(sizeof(kq_q4_k_t) == 144, "q4_K block");
_Static_assert(sizeof(kq_q5_k_t) == 176, "q5_K block");
_Static_assert(sizeof(kq_q6_k_t) == 210, "q6_K block");
_Static_assert(sizeof(kq_q8_k_t) == 292, "q8_K block");

/* ---- activations: q8_K, exactly ggml's quantize_row_q8_K_ref ---- */

static inline int kq_nearest_int(float f)
{
    float v = f + 12582912.f; /* 1.5 * 2^23: the rounded integer lands in the mantissa */
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static void kq_quantize_block_q8_k(const float *x, kq_q8_k_t *y)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK_K; j++) {
        float ax = x[j] < 0 ? -x[j] : x[j];
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    if (amax == 0.0f) {
        memset(y, 0, sizeof *y);
        return;
    }
    /* -127/max (not 128): the element of largest magnitude maps to -127 exactly. */
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; j++) {
        int v = kq_nearest_int(iscale * x[j]);
        y->qs[j] = (int8_t)(v < 127 ? v : 127);
    }
    for (int g = 0; g < QK_K / 16; g++) {
        int sum = 0;
        for (int l = 0; l < 16; l++)
            sum += y->qs[g * 16 + l];
        y->bsums[g] = (int16_t)sum;
    }
    y->d = 1 / iscale;
}

static void kq_quantize_act_q8_k(const float *x, void *vy, int64_t k)
{
    kq_q8_k_t *y = vy;
    for (int64_t i = 0; i < k / QK_K; i++)
        kq_quantize_block_q8_k(x + i * QK_K, y + i);
}

/* ---- 6-bit scales and mins of q4_K / q5_K ---- */

/* Scale and min of sub-block j, ggml's get_scale_min_k4. */
static inline void kq_scale_min(int j, const uint8_t *q, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

#if defined(KQ_AVX512) || defined(KQ_AVX2)
/* All 8 scales (bytes 0-7) then all 8 mins (bytes 8-15) of get_scale_min_k4, in
 * one register. The 16-byte load stays inside the block (quants follow). */
static inline __m128i kq_scales_mins(const uint8_t *s)
{
    const __m128i x = LOAD128(s);
    /* a: bytes 0-3, 8-11, 4-7, 8-11; b: bytes 0-3, 0-3, 4-7, 4-7 */
    const __m128i a =
        _mm_shuffle_epi8(x, _mm_set_epi8(11, 10, 9, 8, 7, 6, 5, 4, 11, 10, 9, 8, 3, 2, 1, 0));
    const __m128i b =
        _mm_shuffle_epi8(x, _mm_set_epi8(7, 6, 5, 4, 7, 6, 5, 4, 3, 2, 1, 0, 3, 2, 1, 0));
    /* low 6 bits (0-3, 8-11), low nibble (4-7), high nibble (12-15) ... */
    const __m128i lo = _mm_and_si128(a, _mm_set_epi32(0, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(a, 4), _mm_set_epi32(0x0f0f0f0f, 0, 0, 0));
    /* ... and for sub-blocks 4-7 the top two bits of bytes 0-7 as bits 4-5 */
    const __m128i top =
        _mm_and_si128(_mm_srli_epi16(b, 2), _mm_set_epi32(0x30303030, 0, 0x30303030, 0));
    return _mm_or_si128(_mm_or_si128(lo, hi), top);
}
#endif

/* ---- dequantization (get_rows, fallbacks): bit-exact with ggml ----
 * d * scale * q is exact in f32 for q4_K/q5_K (an 11-bit f16 mantissa times a
 * 6-bit scale times a 5-bit quant), so whether the compiler fuses the min's
 * subtraction into an FMA or not, the result is ggml's. */

static void kq_dequantize_q4_k(const void *vw, float *y, int64_t k)
{
    const kq_q4_k_t *x = vw;
    for (int64_t i = 0; i < k / QK_K; i++) {
        const float d = slm_half_to_float(x[i].d), dmin = slm_half_to_float(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int j = 0; j < QK_K / 64; j++, q += 32) {
            int sc, m;
            kq_scale_min(2 * j, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            kq_scale_min(2 * j + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

static void kq_dequantize_q5_k(const void *vw, float *y, int64_t k)
{
    const kq_q5_k_t *x = vw;
    for (int64_t i = 0; i < k / QK_K; i++) {
        const float d = slm_half_to_float(x[i].d), dmin = slm_half_to_float(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        for (int j = 0; j < QK_K / 64; j++, ql += 32) {
            int sc, m;
            kq_scale_min(2 * j, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            kq_scale_min(2 * j + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            const uint8_t u1 = (uint8_t)(1u << (2 * j)), u2 = (uint8_t)(2u << (2 * j));
            for (int l = 0; l < 32; l++)
                *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

static void kq_dequantize_q6_k(const void *vw, float *y, int64_t k)
{
    const kq_q6_k_t *x = vw;
    for (int64_t i = 0; i < k / QK_K; i++) {
        const float d = slm_half_to_float(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                /* (d * scale) * q, rounded twice, in ggml's order */
                y[l + 0] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

/* ---- int8 rows for the integer GEMM (quant.h's unpack_s8): the values and
 * scales of the dequantizers above, unmultiplied ---- */

static void kq_unpack_s8_q4_k(const void *vw, int64_t k, int8_t *v, float *d, float *m)
{
    const kq_q4_k_t *x = vw;
    for (int64_t i = 0; i < k / QK_K; i++) {
        const float dd = slm_half_to_float(x[i].d), dmin = slm_half_to_float(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int j = 0; j < QK_K / 64; j++, q += 32, v += 64) {
            int sc, mn;
            kq_scale_min(2 * j, x[i].scales, &sc, &mn);
            *d++ = dd * sc;
            *m++ = -(dmin * mn);
            kq_scale_min(2 * j + 1, x[i].scales, &sc, &mn);
            *d++ = dd * sc;
            *m++ = -(dmin * mn);
            for (int l = 0; l < 32; l++) {
                v[l] = (int8_t)(q[l] & 0xF);
                v[l + 32] = (int8_t)(q[l] >> 4);
            }
        }
    }
}

static void kq_unpack_s8_q5_k(const void *vw, int64_t k, int8_t *v, float *d, float *m)
{
    const kq_q5_k_t *x = vw;
    for (int64_t i = 0; i < k / QK_K; i++) {
        const float dd = slm_half_to_float(x[i].d), dmin = slm_half_to_float(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        for (int j = 0; j < QK_K / 64; j++, ql += 32, v += 64) {
            int sc, mn;
            kq_scale_min(2 * j, x[i].scales, &sc, &mn);
            *d++ = dd * sc;
            *m++ = -(dmin * mn);
            kq_scale_min(2 * j + 1, x[i].scales, &sc, &mn);
            *d++ = dd * sc;
            *m++ = -(dmin * mn);
            for (int l = 0; l < 32; l++) {
                v[l] = (int8_t)((ql[l] & 0xF) | (((qh[l] >> (2 * j)) & 1) << 4));
                v[l + 32] = (int8_t)((ql[l] >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4));
            }
        }
    }
}

static void kq_unpack_s8_q6_k(const void *vw, int64_t k, int8_t *v, float *d, float *m)
{
    (void)m;
    const kq_q6_k_t *x = vw;
    for (int64_t i = 0; i < k / QK_K; i++) {
        const float dd = slm_half_to_float(x[i].d);
        for (int g = 0; g < QK_K / 16; g++)
            *d++ = dd * x[i].scales[g];
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        for (int n = 0; n < QK_K; n += 128, v += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; l++) {
                v[l + 0] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                v[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                v[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                v[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
    }
}

/* ---- scalar dot products (the baseline build), ggml's generic maths ---- */

#if !defined(KQ_AVX512) && !defined(KQ_AVX2)
static float kq_vec_dot_q4_k(int64_t k, const void *vw, const void *va)
{
    const kq_q4_k_t *x = vw;
    const kq_q8_k_t *y = va;
    float sumf = 0.0f;
    for (int64_t i = 0; i < k / QK_K; i++) {
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int sumi = 0, summ = 0;
        for (int j = 0; j < QK_K / 64; j++, q4 += 32, q8 += 64) {
            int sc_lo, m_lo, sc_hi, m_hi, dot_lo = 0, dot_hi = 0;
            kq_scale_min(2 * j, x[i].scales, &sc_lo, &m_lo);
            kq_scale_min(2 * j + 1, x[i].scales, &sc_hi, &m_hi);
            for (int l = 0; l < 32; l++) {
                dot_lo += (q4[l] & 0xF) * q8[l];
                dot_hi += (q4[l] >> 4) * q8[l + 32];
            }
            sumi += sc_lo * dot_lo + sc_hi * dot_hi;
            summ += m_lo * (y[i].bsums[4 * j] + y[i].bsums[4 * j + 1]) +
                    m_hi * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
        }
        sumf += y[i].d *
                (slm_half_to_float(x[i].d) * (float)sumi - slm_half_to_float(x[i].dmin) * (float)summ);
    }
    return sumf;
}

static float kq_vec_dot_q5_k(int64_t k, const void *vw, const void *va)
{
    const kq_q5_k_t *x = vw;
    const kq_q8_k_t *y = va;
    float sumf = 0.0f;
    for (int64_t i = 0; i < k / QK_K; i++) {
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        int sumi = 0, summ = 0;
        for (int j = 0; j < QK_K / 64; j++, ql += 32, q8 += 64) {
            int sc_lo, m_lo, sc_hi, m_hi, dot_lo = 0, dot_hi = 0;
            kq_scale_min(2 * j, x[i].scales, &sc_lo, &m_lo);
            kq_scale_min(2 * j + 1, x[i].scales, &sc_hi, &m_hi);
            for (int l = 0; l < 32; l++) {
                int lo = (ql[l] & 0xF) | (((qh[l] >> (2 * j)) & 1) << 4);
                int hi = (ql[l] >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4);
                dot_lo += lo * q8[l];
                dot_hi += hi * q8[l + 32];
            }
            sumi += sc_lo * dot_lo + sc_hi * dot_hi;
            summ += m_lo * (y[i].bsums[4 * j] + y[i].bsums[4 * j + 1]) +
                    m_hi * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
        }
        sumf += y[i].d *
                (slm_half_to_float(x[i].d) * (float)sumi - slm_half_to_float(x[i].dmin) * (float)summ);
    }
    return sumf;
}

static float kq_vec_dot_q6_k(int64_t k, const void *vw, const void *va)
{
    const kq_q6_k_t *x = vw;
    const kq_q8_k_t *y = va;
    float sumf = 0.0f;
    for (int64_t i = 0; i < k / QK_K; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs, *sc = x[i].scales;
        int sumi = 0;
        for (int n = 0; n < QK_K; n += 128, ql += 64, qh += 32, q8 += 128, sc += 8) {
            int dot[8] = {0};
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                dot[is + 0] += (((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32) * q8[l];
                dot[is + 2] += (((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32) * q8[l + 32];
                dot[is + 4] += (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32) * q8[l + 64];
                dot[is + 6] += (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32) * q8[l + 96];
            }
            for (int g = 0; g < 8; g++)
                sumi += sc[g] * dot[g];
        }
        sumf += y[i].d * slm_half_to_float(x[i].d) * (float)sumi;
    }
    return sumf;
}
#endif

/* ---- AVX2: ggml's ggml_vec_dot_q*_K_q8_K x86 kernels ---- */

#ifdef KQ_AVX2
static inline float kq_hsum128(__m128 s)
{
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Broadcast 16-bit scale i of a pair of 128-bit lanes: ggml's get_scale_shuffle_k4. */
static inline __m256i kq_scale_k4(__m256i scales, int i)
{
    const __m256i ctl = _mm256_set1_epi16((short)((2 * i) | ((2 * i + 1) << 8)));
    return _mm256_shuffle_epi8(scales, ctl);
}

/* The mins' share: dmin * sum_j min_j * (sum of q8 over sub-block j). */
static inline __m128 kq_mins_term(__m128i mins16, const int16_t *bsums, float dmin, __m128 acc)
{
    const __m256i bs = LOAD256(bsums);
    const __m128i pair =
        _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    const __m128i prod = _mm_madd_epi16(mins16, pair);
    return _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc);
}

static float kq_vec_dot_q4_k(int64_t k, const void *vw, const void *va)
{
    const kq_q4_k_t *x = vw;
    const kq_q8_k_t *y = va;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int64_t i = 0; i < k / QK_K; i++) {
        const float d = y[i].d * slm_half_to_float(x[i].d);
        const float dmin = -y[i].d * slm_half_to_float(x[i].dmin);
        const __m256i ms = _mm256_cvtepu8_epi16(kq_scales_mins(x[i].scales));
        acc_m = kq_mins_term(_mm256_extracti128_si256(ms, 1), y[i].bsums, dmin, acc_m);
        const __m128i sc128 = _mm256_castsi256_si128(ms);
        const __m256i scales = _mm256_set_m128i(sc128, sc128);
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < QK_K / 64; j++, q4 += 32, q8 += 64) {
            const __m256i bits = LOAD256(q4);
            const __m256i q4l = _mm256_and_si256(bits, m4);
            const __m256i q4h = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            const __m256i q8l = LOAD256(q8);
            const __m256i q8h = LOAD256(q8 + 32);
            __m256i pl =
                _mm256_madd_epi16(kq_scale_k4(scales, 2 * j), _mm256_maddubs_epi16(q4l, q8l));
            __m256i ph =
                _mm256_madd_epi16(kq_scale_k4(scales, 2 * j + 1), _mm256_maddubs_epi16(q4h, q8h));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return cpu_hsum256(acc) + kq_hsum128(acc_m);
}

static float kq_vec_dot_q5_k(int64_t k, const void *vw, const void *va)
{
    const kq_q5_k_t *x = vw;
    const kq_q8_k_t *y = va;
    const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int64_t i = 0; i < k / QK_K; i++) {
        const float d = y[i].d * slm_half_to_float(x[i].d);
        const float dmin = -y[i].d * slm_half_to_float(x[i].dmin);
        const __m256i ms = _mm256_cvtepu8_epi16(kq_scales_mins(x[i].scales));
        acc_m = kq_mins_term(_mm256_extracti128_si256(ms, 1), y[i].bsums, dmin, acc_m);
        const __m128i sc128 = _mm256_castsi256_si128(ms);
        const __m256i scales = _mm256_set_m128i(sc128, sc128);
        const __m256i hbits = LOAD256(x[i].qh);
        const uint8_t *q5 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < QK_K / 64; j++, q5 += 32, q8 += 64) {
            const __m256i bits = LOAD256(q5);
            /* the fifth bit of each half, moved to bit 4 of its byte */
            const __m256i hl =
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j), one), 4);
            const __m256i hh =
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j + 1), one), 4);
            const __m256i q5l = _mm256_or_si256(_mm256_and_si256(bits, m4), hl);
            const __m256i q5h =
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), hh);
            const __m256i q8l = LOAD256(q8);
            const __m256i q8h = LOAD256(q8 + 32);
            __m256i pl =
                _mm256_madd_epi16(kq_scale_k4(scales, 2 * j), _mm256_maddubs_epi16(q5l, q8l));
            __m256i ph =
                _mm256_madd_epi16(kq_scale_k4(scales, 2 * j + 1), _mm256_maddubs_epi16(q5h, q8h));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return cpu_hsum256(acc) + kq_hsum128(acc_m);
}

/* q6_K's -32 offset is taken out once per block with the q8 group sums:
 * sum (q - 32) q8 = sum q q8 - 32 sum q8, weighted by the same 8-bit scales. */
static float kq_vec_dot_q6_k(int64_t k, const void *vw, const void *va)
{
    const kq_q6_k_t *x = vw;
    const kq_q8_k_t *y = va;
    const __m256i m4 = _mm256_set1_epi8(0xF), m30 = _mm256_set1_epi8(0x30);
    const __m128i pick = _mm_set_epi64x(0x0101010101010101LL, 0);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < k / QK_K; i++) {
        const float d = y[i].d * slm_half_to_float(x[i].d);
        const __m128i sc8 = LOAD128(x[i].scales);
        const __m256i bs = LOAD256(y[i].bsums);
        __m256i sumi = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), bs), 5);
        sumi = _mm256_sub_epi32(_mm256_setzero_si256(), sumi);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        for (int n = 0; n < 2; n++, ql += 64, qh += 32, q8 += 128) {
            const __m256i l0 = LOAD256(ql);
            const __m256i l1 = LOAD256(ql + 32);
            const __m256i h = LOAD256(qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_and_si256(h, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
            for (int m = 0; m < 4; m++) {
                /* scales 8n+2m (first 16 elements) and 8n+2m+1 (next 16) */
                const __m128i ctl = _mm_add_epi8(pick, _mm_set1_epi8((char)(8 * n + 2 * m)));
                const __m256i s = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, ctl));
                const __m256i q8v = LOAD256(q8 + 32 * m);
                sumi =
                    _mm256_add_epi32(sumi, _mm256_madd_epi16(s, _mm256_maddubs_epi16(q[m], q8v)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return cpu_hsum256(acc);
}
#endif

/* ---- AVX-512: whole 64-byte rows of quants, several rows x columns per pass ---- */

#ifdef KQ_AVX512
/* The helpers below pass vectors in structs: inlining keeps them in registers. */
#define KQ_INLINE static inline __attribute__((always_inline))

/* One weight super-block ready for the products: 4 vectors of 64 quants
 * (elements 64p .. 64p+63, matching q8 bytes 64p ..), their 16-bit sub-block
 * scales lane by lane, the block scale and the offset term's weights. */
typedef struct kq_unpacked {
    __m512i q[4];
    __m512i s[4];
    float d;
    __m512 off; /* per-group weights of the q8 group sums (scaled by -dmin or -32 d) */
} kq_unpacked_t;

/* sum += w (u8) * a (s8) with 16-bit scales s over pairs: VNNI fuses madd and add. */
KQ_INLINE __m512i kq_dot_scaled(__m512i sum, __m512i w, const int8_t *a, __m512i s)
{
    const __m512i p = _mm512_maddubs_epi16(w, _mm512_loadu_si512((const void *)a));
#ifdef __AVX512VNNI__
    return _mm512_dpwssd_epi32(sum, p, s);
#else
    return _mm512_add_epi32(sum, _mm512_madd_epi16(p, s));
#endif
}

/* Scales of sub-blocks 2p (first 256 bits) and 2p+1 (last 256 bits) from the
 * 8 scales as 16-bit values repeated in every 128-bit lane. */
KQ_INLINE __m512i kq_scale_pair(__m512i sc, int p)
{
    const __m512i ctl =
        _mm512_set_epi32(0x03020302, 0x03020302, 0x03020302, 0x03020302, 0x03020302, 0x03020302,
                         0x03020302, 0x03020302, 0x01000100, 0x01000100, 0x01000100, 0x01000100,
                         0x01000100, 0x01000100, 0x01000100, 0x01000100);
    return _mm512_shuffle_epi8(sc, _mm512_add_epi8(ctl, _mm512_set1_epi8((char)(4 * p))));
}

/* q4_K/q5_K: 64 quants of 32-byte half h -> elements in order (low nibbles are
 * elements 0-31 of a 64-group, high nibbles 32-63). */
KQ_INLINE void kq_nibbles(const uint8_t *qs, __m512i *q)
{
    const __m512i m4 = _mm512_set1_epi8(0xF);
#pragma GCC unroll 4
    for (int h = 0; h < 2; h++) {
        const __m512i x = _mm512_loadu_si512((const void *)(qs + 64 * h));
        const __m512i lo = _mm512_and_si512(x, m4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), m4);
        q[2 * h] = _mm512_shuffle_i64x2(lo, hi, 0x44);
        q[2 * h + 1] = _mm512_shuffle_i64x2(lo, hi, 0xEE);
    }
}

KQ_INLINE void kq_scales_k4(const uint8_t *packed, float dmin, kq_unpacked_t *u)
{
    const __m128i sm = kq_scales_mins(packed);
    const __m512i sc = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(sm));
#pragma GCC unroll 4
    for (int p = 0; p < 4; p++)
        u->s[p] = kq_scale_pair(sc, p);
    const __m256 mins = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8)));
    u->off = _mm512_zextps256_ps512(_mm256_mul_ps(_mm256_set1_ps(-dmin), mins));
}

KQ_INLINE void kq_unpack_q4_k(const void *vw, kq_unpacked_t *u)
{
    const kq_q4_k_t *x = vw;
    u->d = slm_half_to_float(x->d);
    kq_scales_k4(x->scales, slm_half_to_float(x->dmin), u);
    kq_nibbles(x->qs, u->q);
}

KQ_INLINE void kq_unpack_q5_k(const void *vw, kq_unpacked_t *u)
{
    const kq_q5_k_t *x = vw;
    u->d = slm_half_to_float(x->d);
    kq_scales_k4(x->scales, slm_half_to_float(x->dmin), u);
    kq_nibbles(x->qs, u->q);
    /* vector p holds sub-blocks 2p (bit 2p of qh) then 2p+1 (bit 2p+1) */
    const __m512i h = _mm512_broadcast_i64x4(LOAD256(x->qh));
    const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8(1), _mm256_set1_epi8(2), 1);
    const __m512i sixteen = _mm512_set1_epi8(16);
#pragma GCC unroll 4
    for (int p = 0; p < 4; p++) {
        const __mmask64 bit = _mm512_test_epi8_mask(_mm512_srli_epi16(h, 2 * p), sel);
        u->q[p] = _mm512_mask_add_epi8(u->q[p], bit, u->q[p], sixteen);
    }
}

KQ_INLINE void kq_unpack_q6_k(const void *vw, kq_unpacked_t *u)
{
    const kq_q6_k_t *x = vw;
    const float d = slm_half_to_float(x->d);
    u->d = d;
    const __m512i m4 = _mm512_set1_epi8(0xF), m30 = _mm512_set1_epi8(0x30);
    /* two high bits per 32 elements: bits 0-1 of qh (elements 0-31 of a 128-half),
     * 2-3 (32-63), 4-5 (64-95), 6-7 (96-127); shifted to bits 4-5 */
    const __m512i sh_lo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i sh_hi = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
#pragma GCC unroll 4
    for (int n = 0; n < 2; n++) {
        const __m512i l = _mm512_loadu_si512((const void *)(x->ql + 64 * n));
        const __m512i h = _mm512_broadcast_i64x4(LOAD256(x->qh + 32 * n));
        u->q[2 * n] = _mm512_or_si512(_mm512_and_si512(l, m4),
                                      _mm512_and_si512(_mm512_sllv_epi16(h, sh_lo), m30));
        u->q[2 * n + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                          _mm512_and_si512(_mm512_srlv_epi16(h, sh_hi), m30));
    }
    /* 16-element groups: 128-bit lane j of vector p takes scale 4p + j */
    const __m256i sc = _mm256_cvtepi8_epi16(LOAD128(x->scales));
    const __m512i sc512 = _mm512_castsi256_si512(sc);
#pragma GCC unroll 4
    for (int p = 0; p < 4; p++) {
        const __m512i idx = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_set1_epi16((short)(4 * p)),
                                                           _mm_set1_epi16((short)(4 * p + 1)), 1)),
            _mm256_inserti128_si256(_mm256_set1_epi16((short)(4 * p + 2)),
                                    _mm_set1_epi16((short)(4 * p + 3)), 1),
            1);
        u->s[p] = _mm512_permutexvar_epi16(idx, sc512);
    }
    u->off =
        _mm512_mul_ps(_mm512_set1_ps(-32.0f * d), _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(sc)));
}

/* The activation side of the offset term: q4_K/q5_K weigh the sums of the eight
 * 32-element sub-blocks, q6_K the sixteen 16-element groups; scaled by a's d. */
KQ_INLINE __m512 kq_bsums_pairs(const kq_q8_k_t *a)
{
    const __m256i bs = LOAD256(a->bsums);
    const __m128i pair =
        _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(pair));
    return _mm512_zextps256_ps512(_mm256_mul_ps(_mm256_set1_ps(a->d), f));
}

KQ_INLINE __m512 kq_bsums_groups(const kq_q8_k_t *a)
{
    const __m256i bs = LOAD256(a->bsums);
    return _mm512_mul_ps(_mm512_set1_ps(a->d), _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(bs)));
}

enum { KQ_Q4_K, KQ_Q5_K, KQ_Q6_K };

KQ_INLINE const void *kq_block(int t, const void *row, int64_t i)
{
    static const size_t bytes[] = {sizeof(kq_q4_k_t), sizeof(kq_q5_k_t), sizeof(kq_q6_k_t)};
    return (const char *)row + (size_t)i * bytes[t];
}

KQ_INLINE void kq_unpack(int t, const void *block, kq_unpacked_t *u)
{
    if (t == KQ_Q4_K)
        kq_unpack_q4_k(block, u);
    else if (t == KQ_Q5_K)
        kq_unpack_q5_k(block, u);
    else
        kq_unpack_q6_k(block, u);
}

/* nr weight rows x nc activation columns, both at most 4, in 16 accumulators;
 * always inlined with constant arguments so each type and shape is its own
 * unrolled kernel with the accumulators in registers. */
KQ_INLINE void kq_tile(const int t, int64_t k, const void *w, size_t w_row_bytes, const void *a,
                       size_t a_col_bytes, float *c, size_t c_col, const int nr, const int nc)
{
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int j = 0; j < nc; j++)
            acc[r][j] = _mm512_setzero_ps();
    for (int64_t i = 0; i < k / QK_K; i++) {
        const kq_q8_k_t *ab[4];
        __m512 bsum[4];
#pragma GCC unroll 4
        for (int j = 0; j < nc; j++) {
            ab[j] = (const kq_q8_k_t *)(const void *)((const char *)a + j * a_col_bytes) + i;
            bsum[j] = t == KQ_Q6_K ? kq_bsums_groups(ab[j]) : kq_bsums_pairs(ab[j]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            kq_unpacked_t u;
            kq_unpack(t, kq_block(t, (const char *)w + r * w_row_bytes, i), &u);
#pragma GCC unroll 4
            for (int j = 0; j < nc; j++) {
                __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int p = 0; p < 4; p++)
                    sumi = kq_dot_scaled(sumi, u.q[p], ab[j]->qs + 64 * p, u.s[p]);
                const __m512 dd = _mm512_set1_ps(u.d * ab[j]->d);
                acc[r][j] = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(sumi), acc[r][j]);
                acc[r][j] = _mm512_fmadd_ps(u.off, bsum[j], acc[r][j]);
            }
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < nc; j++)
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            c[j * c_col + r] = _mm512_reduce_add_ps(acc[r][j]);
}

#define KQ_SHAPE(R, C)                                                                             \
    case (R - 1) * 4 + (C - 1):                                                                    \
        kq_tile(t, k, w, w_row_bytes, a, a_col_bytes, c, c_col, R, C);                             \
        break

/* Shapes with at least two columns: one column goes a row at a time (kq_dot_tile). */
KQ_INLINE void kq_tile_any(const int t, int64_t k, const void *w, size_t w_row_bytes, const void *a,
                           size_t a_col_bytes, float *c, size_t c_col, int nr, int nc)
{
    switch ((nr - 1) * 4 + (nc - 1)) {
        KQ_SHAPE(1, 1);
        KQ_SHAPE(1, 2);
        KQ_SHAPE(1, 3);
        KQ_SHAPE(1, 4);
        KQ_SHAPE(2, 2);
        KQ_SHAPE(2, 3);
        KQ_SHAPE(2, 4);
        KQ_SHAPE(3, 2);
        KQ_SHAPE(3, 3);
        KQ_SHAPE(3, 4);
        KQ_SHAPE(4, 2);
        KQ_SHAPE(4, 3);
        KQ_SHAPE(4, 4);
    default:
        break;
    }
}

#define KQ_KERNELS(T, ID)                                                                          \
    static float kq_vec_dot_##T(int64_t k, const void *w, const void *a)                           \
    {                                                                                              \
        float c;                                                                                   \
        kq_tile(ID, k, w, 0, a, 0, &c, 1, 1, 1);                                                   \
        return c;                                                                                  \
    }                                                                                              \
    static void kq_dot_tile_##T(int64_t k, const void *w, size_t w_row_bytes, const void *a,       \
                                size_t a_col_bytes, float *c, size_t c_col, int nr, int nc)        \
    {                                                                                              \
        /* Decode: one row at a time, one sequential stream the prefetcher follows. */            \
        if (nc == 1) {                                                                             \
            for (int r = 0; r < nr; r++)                                                           \
                kq_tile(ID, k, (const char *)w + (size_t)r * w_row_bytes, 0, a, 0, c + r, 1, 1,    \
                        1);                                                                        \
            return;                                                                                \
        }                                                                                          \
        kq_tile_any(ID, k, w, w_row_bytes, a, a_col_bytes, c, c_col, nr, nc);                      \
    }

KQ_KERNELS(q4_k, KQ_Q4_K)
KQ_KERNELS(q5_k, KQ_Q5_K)
KQ_KERNELS(q6_k, KQ_Q6_K)
#define KQ_TILE(T) kq_dot_tile_##T
#else
#define KQ_TILE(T) NULL
#endif

/* ---- table entries (quant.c lists them) ---- */

#define KQ_ENTRY(T, ID, BYTES)                                                                     \
    const cpu_qtype_t cpu_qtype_##T = {                                                            \
        .type = ID,                                                                                \
        .name = #T,                                                                                \
        .block = QK_K,                                                                             \
        .block_bytes = BYTES,                                                                      \
        .act_type = SLM_TYPE_Q8_K,                                                                 \
        .act_block = QK_K,                                                                         \
        .act_block_bytes = sizeof(kq_q8_k_t),                                                      \
        .quantize_act = kq_quantize_act_q8_k,                                                      \
        .vec_dot = kq_vec_dot_##T,                                                                 \
        .dot_tile = KQ_TILE(T),                                                                    \
        .dequantize_row = kq_dequantize_##T,                                                       \
        .unpack_s8 = kq_unpack_s8_##T,                                                             \
        .s8_group = ID == SLM_TYPE_Q6_K ? 16 : 32,                                                 \
        .s8_min = ID != SLM_TYPE_Q6_K,                                                             \
    };

KQ_ENTRY(q4_k, SLM_TYPE_Q4_K, sizeof(kq_q4_k_t))
KQ_ENTRY(q5_k, SLM_TYPE_Q5_K, sizeof(kq_q5_k_t))
KQ_ENTRY(q6_k, SLM_TYPE_Q6_K, sizeof(kq_q6_k_t))
