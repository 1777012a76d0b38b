/* NF4 kernels of the CPU backend: 64-element blocks of 4-bit indices into QLoRA's
 * NormalFloat table with an f16 absmax scale, dotted with f32 activations as is. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <slmops/types.h>

#include "convert.h"
#include "quant-types.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Activations stay f32: NF4's levels are not integers, so an int8 activation
 * path would need int8 levels and lose accuracy for a type chosen for it; a
 * table lookup per 16 (AVX-512) or 8 (AVX2) weights is a single permute. */

#define QK_NF4 64

/* Unaligned loads from any byte pointer. */
#define LOAD64(p) _mm_loadl_epi64((const __m128i *)(const void *)(p))
#define LOAD128(p) _mm_loadu_si128((const __m128i *)(const void *)(p))

typedef struct nf4_block {
    uint16_t d;             /* f16 absmax of the block */
    uint8_t qs[QK_NF4 / 2]; /* byte l: element l (low nibble), element l+32 (high) */
} nf4_block_t;

_Static_assert(sizeof(nf4_block_t) == 34, "nf4 block");

/* QLoRA's NormalFloat levels (bitsandbytes' NF4 table), ascending. */
static const float nf4_levels[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

static void nf4_quantize_act(const float *x, void *y, int64_t k)
{
    memcpy(y, x, (size_t)k * sizeof(float));
}

#if defined(__AVX512F__)
static void nf4_dequantize_row(const void *vw, float *y, int64_t k)
{
    const nf4_block_t *x = vw;
    const __m512 levels = _mm512_loadu_ps(nf4_levels);
    for (int64_t i = 0; i < k / QK_NF4; i++, y += QK_NF4) {
        const __m512 d = _mm512_set1_ps(slm_half_to_float(x[i].d));
        for (int h = 0; h < 2; h++) {
            /* vpermps reads only the low 4 bits of each index: no mask needed */
            const __m512i b = _mm512_cvtepu8_epi32(LOAD128(x[i].qs + 16 * h));
            _mm512_storeu_ps(y + 16 * h, _mm512_mul_ps(_mm512_permutexvar_ps(b, levels), d));
            _mm512_storeu_ps(
                y + 32 + 16 * h,
                _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), levels), d));
        }
    }
}

static float nf4_vec_dot(int64_t k, const void *vw, const void *va)
{
    const nf4_block_t *x = vw;
    const float *a = va;
    const __m512 levels = _mm512_loadu_ps(nf4_levels);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < k / QK_NF4; i++, a += QK_NF4) {
        const __m128i *qs = (const __m128i *)(const void *)x[i].qs;
        const __m512i b0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(qs));
        const __m512i b1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(qs + 1));
        __m512 s = _mm512_mul_ps(_mm512_permutexvar_ps(b0, levels), _mm512_loadu_ps(a));
        s = _mm512_fmadd_ps(_mm512_permutexvar_ps(b1, levels), _mm512_loadu_ps(a + 16), s);
        s = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(b0, 4), levels),
                            _mm512_loadu_ps(a + 32), s);
        s = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(b1, 4), levels),
                            _mm512_loadu_ps(a + 48), s);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(slm_half_to_float(x[i].d)), s, acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* nr rows x nc columns (<= 4 each): each block's weights are looked up once and
 * used for every column; constant sizes after inlining keep acc in registers. */
static inline __attribute__((always_inline)) void
nf4_tile_n(int64_t k, const void *w, size_t w_row_bytes, const void *a, size_t a_col_bytes,
           float *c, size_t c_col, const int nr, const int nc)
{
    const __m512 levels = _mm512_loadu_ps(nf4_levels);
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int j = 0; j < nc; j++)
            acc[r][j] = _mm512_setzero_ps();
    for (int64_t i = 0; i < k / QK_NF4; i++) {
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const nf4_block_t *x =
                (const nf4_block_t *)(const void *)((const char *)w + r * w_row_bytes) + i;
            const __m512 d = _mm512_set1_ps(slm_half_to_float(x->d));
            const __m128i *qs = (const __m128i *)(const void *)x->qs;
            const __m512i b0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(qs));
            const __m512i b1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(qs + 1));
            const __m512 v[4] = {
                _mm512_mul_ps(_mm512_permutexvar_ps(b0, levels), d),
                _mm512_mul_ps(_mm512_permutexvar_ps(b1, levels), d),
                _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(b0, 4), levels), d),
                _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(b1, 4), levels), d),
            };
#pragma GCC unroll 4
            for (int j = 0; j < nc; j++) {
                const float *y =
                    (const float *)(const void *)((const char *)a + j * a_col_bytes) + i * QK_NF4;
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++)
                    acc[r][j] = _mm512_fmadd_ps(v[q], _mm512_loadu_ps(y + 16 * q), acc[r][j]);
            }
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < nc; j++)
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            c[j * c_col + r] = _mm512_reduce_add_ps(acc[r][j]);
}

#define NF4_TILE_CASE(R, C)                                                                        \
    case (R - 1) * 4 + (C - 1):                                                                    \
        nf4_tile_n(k, w, w_row_bytes, a, a_col_bytes, c, c_col, R, C);                             \
        break

static void nf4_dot_tile(int64_t k, const void *w, size_t w_row_bytes, const void *a,
                         size_t a_col_bytes, float *c, size_t c_col, int nr, int nc)
{
    /* One column (decode): no reuse to win, and scaling per block is cheaper. */
    if (nc == 1) {
        for (int r = 0; r < nr; r++)
            c[r] = nf4_vec_dot(k, (const char *)w + r * w_row_bytes, a);
        return;
    }
    switch ((nr - 1) * 4 + (nc - 1)) {
        NF4_TILE_CASE(1, 1);
        NF4_TILE_CASE(1, 2);
        NF4_TILE_CASE(1, 3);
        NF4_TILE_CASE(1, 4);
        NF4_TILE_CASE(2, 1);
        NF4_TILE_CASE(2, 2);
        NF4_TILE_CASE(2, 3);
        NF4_TILE_CASE(2, 4);
        NF4_TILE_CASE(3, 1);
        NF4_TILE_CASE(3, 2);
        NF4_TILE_CASE(3, 3);
        NF4_TILE_CASE(3, 4);
        NF4_TILE_CASE(4, 1);
        NF4_TILE_CASE(4, 2);
        NF4_TILE_CASE(4, 3);
        NF4_TILE_CASE(4, 4);
    default:
        break;
    }
}
#define NF4_TILE nf4_dot_tile
#elif defined(__AVX2__) && defined(__FMA__)
/* Levels of 8 indices: two 8-entry permutes, bit 3 picks between them. */
static inline __m256 nf4_lookup8(__m256i idx, __m256 lo, __m256 hi)
{
    const __m256 sel = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx),
                            sel);
}

static void nf4_dequantize_row(const void *vw, float *y, int64_t k)
{
    const nf4_block_t *x = vw;
    const __m256 lo = _mm256_loadu_ps(nf4_levels), hi = _mm256_loadu_ps(nf4_levels + 8);
    const __m256i m4 = _mm256_set1_epi32(0xF);
    for (int64_t i = 0; i < k / QK_NF4; i++, y += QK_NF4) {
        const __m256 d = _mm256_set1_ps(slm_half_to_float(x[i].d));
        for (int q = 0; q < 4; q++) {
            const __m256i b = _mm256_cvtepu8_epi32(LOAD64(x[i].qs + 8 * q));
            _mm256_storeu_ps(y + 8 * q,
                             _mm256_mul_ps(nf4_lookup8(_mm256_and_si256(b, m4), lo, hi), d));
            _mm256_storeu_ps(y + 32 + 8 * q,
                             _mm256_mul_ps(nf4_lookup8(_mm256_srli_epi32(b, 4), lo, hi), d));
        }
    }
}

static float nf4_vec_dot(int64_t k, const void *vw, const void *va)
{
    const nf4_block_t *x = vw;
    const float *a = va;
    const __m256 lo = _mm256_loadu_ps(nf4_levels), hi = _mm256_loadu_ps(nf4_levels + 8);
    const __m256i m4 = _mm256_set1_epi32(0xF);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < k / QK_NF4; i++, a += QK_NF4) {
        __m256 s = _mm256_setzero_ps();
        for (int q = 0; q < 4; q++) {
            const __m256i b = _mm256_cvtepu8_epi32(LOAD64(x[i].qs + 8 * q));
            s = _mm256_fmadd_ps(nf4_lookup8(_mm256_and_si256(b, m4), lo, hi),
                                _mm256_loadu_ps(a + 8 * q), s);
            s = _mm256_fmadd_ps(nf4_lookup8(_mm256_srli_epi32(b, 4), lo, hi),
                                _mm256_loadu_ps(a + 32 + 8 * q), s);
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(slm_half_to_float(x[i].d)), s, acc);
    }
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}
#define NF4_TILE NULL
#else
#define NF4_TILE NULL
static void nf4_dequantize_row(const void *vw, float *y, int64_t k)
{
    const nf4_block_t *x = vw;
    for (int64_t i = 0; i < k / QK_NF4; i++, y += QK_NF4) {
        const float d = slm_half_to_float(x[i].d);
        for (int l = 0; l < QK_NF4 / 2; l++) {
            y[l] = nf4_levels[x[i].qs[l] & 0xF] * d;
            y[l + QK_NF4 / 2] = nf4_levels[x[i].qs[l] >> 4] * d;
        }
    }
}

static float nf4_vec_dot(int64_t k, const void *vw, const void *va)
{
    const nf4_block_t *x = vw;
    const float *a = va;
    float sum = 0.0f;
    for (int64_t i = 0; i < k / QK_NF4; i++, a += QK_NF4) {
        float s = 0.0f;
        for (int l = 0; l < QK_NF4 / 2; l++)
            s += nf4_levels[x[i].qs[l] & 0xF] * a[l] + nf4_levels[x[i].qs[l] >> 4] * a[l + 32];
        sum += slm_half_to_float(x[i].d) * s;
    }
    return sum;
}
#endif

const cpu_qtype_t cpu_qtype_nf4 = {
    .type = CPU_TYPE_NF4,
    .name = "nf4",
    .block = QK_NF4,
    .block_bytes = sizeof(nf4_block_t),
    .act_type = SLM_TYPE_F32,
    .act_block = QK_NF4,
    .act_block_bytes = QK_NF4 * sizeof(float),
    .quantize_act = nf4_quantize_act,
    .vec_dot = nf4_vec_dot,
    .dot_tile = NF4_TILE,
    .dequantize_row = nf4_dequantize_row,
};
