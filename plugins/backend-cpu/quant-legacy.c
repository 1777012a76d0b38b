/* Kernels for GGUF's legacy block types (q8_0, q4_0, q4_1, q5_0, q5_1): activations
 * become int8 blocks, products run on integers (VNNI, AVX-512BW, AVX2 or scalar). */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include <slmops/types.h>

#include "convert.h"
#include "quant-types.h"
#include "vmath.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Every weight value is read as an unsigned byte u (the nibble, the 5-bit value, or
 * the int8 shifted by 128 where VNNI needs an unsigned operand) and the block's
 * value is d * (u - off) or d * u + m. So a block's share of a dot product is
 *   dw * dx * sum(u * qx)  +  c * s,   c = -off * dw or m,  s = dx * sum(qx),
 * and the second term is one short float dot product per row and column. */
enum lt { LT_Q4_0, LT_Q4_1, LT_Q5_0, LT_Q5_1, LT_Q8_0 };

#define QK 32
#if defined(__AVX512VNNI__)
#define Q8_OFF 128    /* VNNI multiplies unsigned by signed bytes: shift q8_0 up */
#else
#define Q8_OFF 0      /* maddubs would saturate: q8_0 uses the sign trick instead */
#endif

static inline __attribute__((always_inline)) size_t lt_bytes(int t)
{
    static const size_t bytes[] = {18, 20, 22, 24, 34};
    return bytes[t];
}

/* Offset of qs inside a block. */
static inline __attribute__((always_inline)) size_t lt_qs(int t)
{
    static const size_t at[] = {2, 4, 6, 8, 2};
    return at[t];
}

static inline __attribute__((always_inline)) bool lt_has_min(int t)
{
    return t == LT_Q4_1 || t == LT_Q5_1;
}

static inline __attribute__((always_inline)) bool lt_has_qh(int t)
{
    return t == LT_Q5_0 || t == LT_Q5_1;
}

/* Multiplier of sum(c * s): -off for symmetric types, 1 for types with a min. */
static inline __attribute__((always_inline)) float lt_coef(int t)
{
    switch (t) {
    case LT_Q4_0:
        return -8.0f;
    case LT_Q5_0:
        return -16.0f;
    case LT_Q8_0:
        return -(float)Q8_OFF;
    default:
        return 1.0f;
    }
}

static inline uint16_t rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ---- activations: the layout documented in quant-types.h ---- */

static inline void act_parts(void *y, int64_t k, int8_t **qs, float **d, float **s)
{
    *qs = y;
    *d = (float *)(void *)((char *)y + k);
    *s = *d + k / QK;
}

/* x * id rounds to nearest-even in every build (cvtps2dq, or the 1.5 * 2^23 trick in
 * the baseline build, which has no FMA that could fuse the two steps). */
static void quantize_act(const float *x, void *y, int64_t k)
{
    int8_t *qs;
    float *d, *s;
    act_parts(y, k, &qs, &d, &s);
    for (int64_t b = 0; b < k / QK; b++, x += QK, qs += QK) {
#if defined(__AVX512F__)
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        float dd = amax / 127.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
        __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(id)));
        __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(id)));
        _mm_storeu_si128((__m128i *)(void *)qs, _mm512_cvtsepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(void *)(qs + 16), _mm512_cvtsepi32_epi8(q1));
        int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
#elif defined(__AVX2__)
        const __m256 sign = _mm256_set1_ps(-0.0f);
        __m256 v[4];
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(x + 8 * i);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[i]));
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        float dd = amax / 127.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
        __m256i q[4];
        for (int i = 0; i < 4; i++)
            q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], _mm256_set1_ps(id)));
        __m256i t = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i t4 = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, 0x4e));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, 0xb1));
        int sum = _mm_cvtsi128_si32(t4);
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(void *)qs, p);
#else
        float amax = 0.0f;
        for (int i = 0; i < QK; i++) {
            float a = x[i] < 0 ? -x[i] : x[i];
            amax = a > amax ? a : amax;
        }
        float dd = amax / 127.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
        int sum = 0;
        for (int i = 0; i < QK; i++) {
            float r = x[i] * id + 12582912.0f;
            uint32_t bits;
            memcpy(&bits, &r, 4);
            int q = (int)(bits & 0x007fffff) - 0x00400000;
            qs[i] = (int8_t)q;
            sum += q;
        }
#endif
        d[b] = dd;
        s[b] = dd * (float)sum;
    }
}

/* ---- weights: one block's values as bytes, and its scales ---- */

/* u[32] of the block (signed int8 for q8_0 when Q8_OFF is 0). */
static inline __attribute__((always_inline)) void unpack_scalar(int t, const uint8_t *blk, int u[QK])
{
    const uint8_t *qs = blk + lt_qs(t);
    if (t == LT_Q8_0) {
        for (int i = 0; i < QK; i++)
            u[i] = (int)(int8_t)qs[i] + Q8_OFF;
        return;
    }
    uint32_t qh = lt_has_qh(t) ? rd32(blk + (t == LT_Q5_0 ? 2 : 4)) : 0;
    for (int i = 0; i < QK / 2; i++) {
        u[i] = (qs[i] & 0x0f) | (int)(((qh >> i) & 1u) << 4);
        u[i + 16] = (qs[i] >> 4) | (int)(((qh >> (i + 16)) & 1u) << 4);
    }
}

/* d (and m) of every block of a row segment, as floats. */
static inline __attribute__((always_inline)) void row_scales(int t, const uint8_t *w, int64_t nb,
                                                             float *wd, float *wc)
{
    for (int64_t b = 0; b < nb; b++, w += lt_bytes(t)) {
        wd[b] = slm_half_to_float(rd16(w));
        if (lt_has_min(t))
            wc[b] = slm_half_to_float(rd16(w + 2));
    }
}

#if defined(__AVX2__)

/* One block in element order as 32 bytes (u8, or s8 for q8_0 without VNNI). */
static inline __attribute__((always_inline)) __m256i unpack1(int t, const uint8_t *blk)
{
    const uint8_t *qs = blk + lt_qs(t);
    if (t == LT_Q8_0) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)qs);
        return Q8_OFF ? _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)) : v;
    }
    __m128i q = _mm_loadu_si128((const __m128i *)(const void *)qs);
    __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
    if (!lt_has_qh(t))
        return v;
    uint32_t qh = rd32(blk + (t == LT_Q5_0 ? 2 : 4));
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    return _mm256_mask_add_epi8(v, (__mmask32)qh, v, _mm256_set1_epi8(0x10));
#else
    /* Spread bit i of qh to byte i, then keep 0x10 where it was set. */
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    bytes = _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
    return _mm256_or_si256(v, _mm256_and_si256(bytes, _mm256_set1_epi8(0x10)));
#endif
}

/* Eight partial sums of w * x over one block. */
static inline __attribute__((always_inline)) __m256i dp1(int t, __m256i w, __m256i x)
{
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x);
#else
    if (t == LT_Q8_0) {
        x = _mm256_sign_epi8(x, w);
        w = _mm256_sign_epi8(w, w);
    }
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
#endif
}

#endif

#if defined(__AVX512F__)

/* Two blocks as 64 bytes. Nibble types come out as 16-byte lanes
 * [b0 0-15, b1 0-15, b0 16-31, b1 16-31] (the cheapest unpacking); q8_0 in order. */
static inline __attribute__((always_inline)) __m512i unpack2(int t, const uint8_t *blk)
{
    const uint8_t *q0 = blk + lt_qs(t), *q1 = q0 + lt_bytes(t);
    if (t == LT_Q8_0) {
        __m512i v = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)q0)),
            _mm256_loadu_si256((const __m256i *)(const void *)q1), 1);
        return Q8_OFF ? _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80)) : v;
    }
    __m256i a = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)q0)),
        _mm_loadu_si128((const __m128i *)(const void *)q1), 1);
    __m512i v = _mm512_and_si512(
        _mm512_inserti64x4(_mm512_castsi256_si512(a), _mm256_srli_epi16(a, 4), 1),
        _mm512_set1_epi8(0x0f));
    if (!lt_has_qh(t))
        return v;
    size_t at = t == LT_Q5_0 ? 2 : 4;
    uint64_t h0 = rd32(blk + at), h1 = rd32(blk + lt_bytes(t) + at);
    uint64_t m = (h0 & 0xffff) | (h1 & 0xffff) << 16 | (h0 >> 16) << 32 | (h1 >> 16) << 48;
    return _mm512_mask_add_epi8(v, (__mmask64)m, v, _mm512_set1_epi8(0x10));
}

/* Two activation blocks in the lane order unpack2 gives the weights. */
static inline __attribute__((always_inline)) __m512i act2(int t, const int8_t *qs)
{
    __m512i x = _mm512_loadu_si512(qs);
    return t == LT_Q8_0 ? x : _mm512_shuffle_i64x2(x, x, _MM_SHUFFLE(3, 1, 2, 0));
}

/* Two per-block floats spread over the sixteen int32 lanes of that lane order. */
static inline __attribute__((always_inline)) __m512 spread2(int t, const float *p)
{
    __m512 v = _mm512_castps128_ps512(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(const void *)p)));
    __m512i idx = t == LT_Q8_0
        ? _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)
        : _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
    return _mm512_permutexvar_ps(idx, v);
}

static inline __attribute__((always_inline)) __m512i dp2(int t, __m512i w, __m512i x)
{
#if defined(__AVX512VNNI__)
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, x);
#else
    if (t == LT_Q8_0) {
        __mmask64 neg = _mm512_movepi8_mask(w);
        x = _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x);
        w = _mm512_abs_epi8(w);
    }
    return _mm512_madd_epi16(_mm512_maddubs_epi16(w, x), _mm512_set1_epi16(1));
#endif
}

#endif

/* ---- the tile: NR weight rows x NC activation columns over one K segment ---- */

/* Blocks per segment: the per-row scale arrays live on the stack. */
#define SEG 64

/* Decode reads four weight rows at a time; rows of a small K are a few cache
 * lines each, too short for the hardware prefetcher to follow four of them at
 * once, so the kernels fetch the rows this many rows on themselves (measured: 8
 * and 32 do worse than 16 on 576- and 1536-wide rows). */
#define DEC_PF_ROWS 16

typedef struct tile_io {
    const uint8_t *w[4];       /* weight rows, at the segment's first block */
    const int8_t *xq[4];       /* activation qs, at the segment's first element */
    const float *xd[4], *xs[4];
} tile_io_t;

static inline __attribute__((always_inline)) void
tile_seg(int t, int NR, int NC, const tile_io_t *io, int64_t nb, float out[4][4])
{
    float wd[4][SEG], wc[4][SEG];
    _Pragma("GCC unroll 4")
    for (int i = 0; i < NR; i++)
        row_scales(t, io->w[i], nb, wd[i], lt_has_min(t) ? wc[i] : NULL);
    int64_t b = 0;
#if defined(__AVX512F__)
    __m512 acc[4][4];
    _Pragma("GCC unroll 4")
    for (int i = 0; i < NR; i++)
        _Pragma("GCC unroll 4")
        for (int j = 0; j < NC; j++)
            acc[i][j] = _mm512_setzero_ps();
    for (; b + 2 <= nb; b += 2) {
        __m512i xv[4];
        __m512 xd[4];
        _Pragma("GCC unroll 4")
        for (int j = 0; j < NC; j++) {
            xv[j] = act2(t, io->xq[j] + b * QK);
            xd[j] = spread2(t, io->xd[j] + b);
        }
        _Pragma("GCC unroll 4")
        for (int i = 0; i < NR; i++) {
            __m512i w = unpack2(t, io->w[i] + b * lt_bytes(t));
            __m512 d = spread2(t, wd[i] + b);
            _Pragma("GCC unroll 4")
            for (int j = 0; j < NC; j++)
                acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp2(t, w, xv[j])),
                                            _mm512_mul_ps(d, xd[j]), acc[i][j]);
        }
    }
    _Pragma("GCC unroll 4")
    for (int i = 0; i < NR; i++)
        _Pragma("GCC unroll 4")
        for (int j = 0; j < NC; j++)
            out[i][j] = _mm512_reduce_add_ps(acc[i][j]);
#endif
#if defined(__AVX2__)
    __m256 acc1[4][4];
    _Pragma("GCC unroll 4")
    for (int i = 0; i < NR; i++)
        _Pragma("GCC unroll 4")
        for (int j = 0; j < NC; j++)
            acc1[i][j] = _mm256_setzero_ps();
    for (; b < nb; b++) {
        __m256i xv[4];
        _Pragma("GCC unroll 4")
        for (int j = 0; j < NC; j++)
            xv[j] = _mm256_loadu_si256((const __m256i *)(const void *)(io->xq[j] + b * QK));
        _Pragma("GCC unroll 4")
        for (int i = 0; i < NR; i++) {
            __m256i w = unpack1(t, io->w[i] + b * lt_bytes(t));
            _Pragma("GCC unroll 4")
            for (int j = 0; j < NC; j++)
                acc1[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dp1(t, w, xv[j])),
                                             _mm256_set1_ps(wd[i][b] * io->xd[j][b]), acc1[i][j]);
        }
    }
    _Pragma("GCC unroll 4")
    for (int i = 0; i < NR; i++)
        _Pragma("GCC unroll 4")
        for (int j = 0; j < NC; j++)
            out[i][j] += cpu_hsum256(acc1[i][j]);
#else
    for (; b < nb; b++) {
        _Pragma("GCC unroll 4")
        for (int i = 0; i < NR; i++) {
            int u[QK];
            unpack_scalar(t, io->w[i] + b * lt_bytes(t), u);
            _Pragma("GCC unroll 4")
            for (int j = 0; j < NC; j++) {
                const int8_t *x = io->xq[j] + b * QK;
                int dp = 0;
                for (int e = 0; e < QK; e++)
                    dp += u[e] * x[e];
                out[i][j] += (float)dp * (wd[i][b] * io->xd[j][b]);
            }
        }
    }
#endif
    float coef = lt_coef(t);
    if (coef == 0.0f)
        return;
    _Pragma("GCC unroll 4")
    for (int i = 0; i < NR; i++) {
        const float *c = lt_has_min(t) ? wc[i] : wd[i];
        _Pragma("GCC unroll 4")
        for (int j = 0; j < NC; j++) {
            float sum = 0.0f;
            for (int64_t e = 0; e < nb; e++)
                sum += c[e] * io->xs[j][e];
            out[i][j] += coef * sum;
        }
    }
}

/* c[j * c_col + i] for i < nr, j < nc; rows and columns past nr/nc repeat the
 * last one so the NR x NC kernel is the only shape compiled per type. */
static inline __attribute__((always_inline)) void
tile(int t, int NR, int NC, int64_t k, const void *w, size_t w_row_bytes, const void *a,
     size_t a_col_bytes, float *c, size_t c_col, int nr, int nc)
{
    const int64_t nb = k / QK;
    tile_io_t io;
    const float *xd[4], *xs[4];
    _Pragma("GCC unroll 4")
    for (int j = 0; j < NC; j++) {
        int8_t *qs;
        float *d, *s;
        act_parts((char *)a + (size_t)(j < nc ? j : nc - 1) * a_col_bytes, k, &qs, &d, &s);
        io.xq[j] = qs;
        xd[j] = d;
        xs[j] = s;
    }
    float out[4][4] = {{0}};
    for (int64_t b0 = 0; b0 < nb; b0 += SEG) {
        int64_t n = nb - b0 < SEG ? nb - b0 : SEG;
        _Pragma("GCC unroll 4")
        for (int i = 0; i < NR; i++)
            io.w[i] = (const uint8_t *)w + (size_t)(i < nr ? i : nr - 1) * w_row_bytes +
                      (size_t)b0 * lt_bytes(t);
        _Pragma("GCC unroll 4")
        for (int j = 0; j < NC; j++) {
            io.xd[j] = xd[j] + b0;
            io.xs[j] = xs[j] + b0;
        }
        if (NC == 1 && NR > 1)
            _Pragma("GCC unroll 4")
            for (int i = 0; i < NR; i++)
                for (size_t o = 0; o < (size_t)n * lt_bytes(t); o += 64)
                    __builtin_prefetch(io.w[i] + DEC_PF_ROWS * w_row_bytes + o);
        float part[4][4] = {{0}};
        tile_seg(t, NR, NC, &io, n, part);
        _Pragma("GCC unroll 4")
        for (int i = 0; i < NR; i++)
            _Pragma("GCC unroll 4")
            for (int j = 0; j < NC; j++)
                out[i][j] += part[i][j];
        _Pragma("GCC unroll 4")
        for (int j = 0; j < NC; j++)
            io.xq[j] += n * QK;
    }
    _Pragma("GCC unroll 4")
    for (int j = 0; j < nc; j++)
        _Pragma("GCC unroll 4")
        for (int i = 0; i < nr; i++)
            c[(size_t)j * c_col + (size_t)i] = out[i][j];
}

/* ---- decode (one activation column) with VNNI: every legacy type ----
 * Generation is one matrix-vector product per weight, bound by how few
 * instructions each weight block costs. Here the offset correction stays in the
 * integer domain (the accumulator starts at -off * sum(x), computed once per
 * activation step for all rows), the f16 scales are picked out of the block bytes
 * and converted together, and up to four rows share each activation step. */

#if defined(__AVX512VNNI__)

/* Bytes [0, n) of p, zero elsewhere (masked: nothing past n is read). */
static inline __attribute__((always_inline)) __m512i ld_n(const void *p, int64_t n, bool full)
{
    if (full)
        return _mm512_loadu_si512(p);
    __mmask64 m = n >= 64 ? ~(__mmask64)0 : n <= 0 ? 0 : ((__mmask64)1 << n) - 1;
    return _mm512_maskz_loadu_epi8(m, p);
}

/* Per step: q4_0 takes four blocks, q8_0 two; lanes group by block as below. */
static inline __attribute__((always_inline)) int dec_step(int t)
{
    return t == LT_Q8_0 ? 2 : 4;
}

/* One step of the activation: its int8 values in the lanes the weights use, the
 * offset correction per int32 lane, and the block scales spread to those lanes.
 * q4_0: lo = elements 0-15 of blocks 0-3 (one 16-byte lane each), hi = 16-31;
 * q8_0: lo = blocks 0 and 1 in element order (hi unused). */
typedef struct dec_act {
    __m512i lo, hi, corr;
    __m512 d;
    __m128 s;                  /* the blocks' dx * sum(qx), for the mins of q4_1 and q5_1 */
} dec_act_t;

static inline __attribute__((always_inline)) void
dec_act(int t, const int8_t *xq, const float *xd, const float *xs, int nbk, bool full,
        dec_act_t *a)
{
    __m512i zero = _mm512_setzero_si512();
    __m512 d = _mm512_castps128_ps512(_mm_maskz_loadu_ps((__mmask8)((1u << nbk) - 1), xd));
    a->s = lt_has_min(t) ? _mm_maskz_loadu_ps((__mmask8)((1u << nbk) - 1), xs) : _mm_setzero_ps();
    if (t == LT_Q8_0) {
        a->lo = ld_n(xq, (int64_t)nbk * QK, full);
        a->hi = zero;
        a->corr = _mm512_sub_epi32(
            zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8((char)0x80), a->lo));
        a->d = _mm512_permutexvar_ps(
            _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), d);
        return;
    }
    __m512i x0 = ld_n(xq, (int64_t)nbk * QK, full);
    __m512i x1 = ld_n(xq + 64, (int64_t)nbk * QK - 64, full);
    a->lo = _mm512_shuffle_i64x2(x0, x1, _MM_SHUFFLE(2, 0, 2, 0));
    a->hi = _mm512_shuffle_i64x2(x0, x1, _MM_SHUFFLE(3, 1, 3, 1));
    /* -off * sum(x) per lane; types with a min add m * s instead (dec_row_x). */
    const __m512i off = _mm512_set1_epi8((char)(t == LT_Q5_0 ? 16 : 8));
    a->corr = lt_has_min(t) ? zero : _mm512_sub_epi32(
        zero, _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, off, a->lo), off, a->hi));
    a->d = _mm512_permutexvar_ps(
        _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), d);
}

/* One step of one weight row, unpacked: the values as unsigned bytes in the lanes of
 * the activation's lo and hi (q8_0: lo only), the scales spread to their int32 lanes
 * and (q4_1, q5_1) the four blocks' mins. */
typedef struct dec_w {
    __m512i lo, hi;
    __m512 dw;
    __m128 m;
} dec_w_t;

/* q4_0 and q8_0. A word permute of the step's first 64 bytes spreads the f16 scales
 * to their lanes; the quants come with plain loads, or, in the last (partial) step,
 * with masked loads and a word permute so nothing past the row is read. Plain loads
 * measured faster than the permute on whole steps. */
static inline __attribute__((always_inline)) void
dec_unpack_40(int t, const uint8_t *w, int nbk, bool full, dec_w_t *u)
{
    int64_t n = (int64_t)nbk * (int64_t)lt_bytes(t);
    int64_t skew = t == LT_Q8_0 ? 4 : 8;   /* B ends where a whole step would end */
    __m512i A = ld_n(w, n, full), B = full ? A : ld_n(w + skew, n - skew, full);
    __m512i q, sidx;
    u->m = _mm_setzero_ps();
    if (t == LT_Q8_0) {
        /* block 0: qs at bytes 2-33 (A words 1-16); block 1: 36-67 (B words 16-31). */
        if (full)
            q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(
                                       (const __m256i *)(const void *)(w + 2))),
                                   _mm256_loadu_si256((const __m256i *)(const void *)(w + 36)), 1);
        else
            q = _mm512_permutex2var_epi16(A, _mm512_setr_epi32(
                    0x00020001, 0x00040003, 0x00060005, 0x00080007, 0x000a0009, 0x000c000b,
                    0x000e000d, 0x0010000f, 0x00310030, 0x00330032, 0x00350034, 0x00370036,
                    0x00390038, 0x003b003a, 0x003d003c, 0x003f003e), B);
        sidx = _mm512_setr_epi32(0, 0, 0, 0, 0x00110011, 0x00110011, 0x00110011, 0x00110011,
                                 0, 0, 0, 0, 0, 0, 0, 0);
        u->lo = _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80));
        u->hi = _mm512_setzero_si512();
    } else {
        /* qs at bytes 2, 20, 38, 56: one 16-byte lane each. */
        if (full) {
            q = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(const void *)(w + 2)));
            q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(const void *)(w + 20)), 1);
            q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(const void *)(w + 38)), 2);
            q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(const void *)(w + 56)), 3);
        } else {
            q = _mm512_permutex2var_epi16(A, _mm512_setr_epi32(
                    0x00020001, 0x00040003, 0x00060005, 0x00080007, 0x000b000a, 0x000d000c,
                    0x000f000e, 0x00110010, 0x00140013, 0x00160015, 0x00180017, 0x001a0019,
                    0x00390038, 0x003b003a, 0x003d003c, 0x003f003e), B);
        }
        sidx = _mm512_setr_epi32(0, 0, 0x00090009, 0x00090009, 0x00120012, 0x00120012,
                                 0x001b001b, 0x001b001b, 0, 0, 0, 0, 0, 0, 0, 0);
        const __m512i m4 = _mm512_set1_epi8(0x0f);
        u->lo = _mm512_and_si512(q, m4);
        u->hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
    }
    u->dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(sidx, A)));
}

/* Word indices into (the step's first 64 bytes, the 64 bytes that end it) picking,
 * for q4_1, q5_0 and q5_1: SCALE_IDX, each block's f16 scale once per int32 lane of
 * that block; EXTRA_IDX, words 0-3 the low halves of the blocks' qh, 4-7 the high
 * halves, 8-11 the f16 mins. DEC_SKEW: where the second 64 bytes start. */
static const uint16_t DEC_SCALE_IDX[3][32] __attribute__((aligned(64))) = {
    {0, 0, 0, 0, 10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30},
    {0, 0, 0, 0, 11, 11, 11, 11, 22, 22, 22, 22, 53, 53, 53, 53},
    {0, 0, 0, 0, 12, 12, 12, 12, 24, 24, 24, 24, 52, 52, 52, 52},
};
static const uint16_t DEC_EXTRA_IDX[3][32] __attribute__((aligned(64))) = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 11, 21, 31},
    {1, 12, 23, 54, 2, 13, 24, 55},
    {2, 14, 26, 54, 3, 15, 27, 55, 1, 13, 25, 53},
};
static const int DEC_SKEW[3] = {0, 24, 32};

/* q4_1, q5_0 and q5_1: each block's 16 qs bytes fill one 128-bit lane (low nibbles:
 * elements 0-15, high: 16-31); two word permutes of the step's bytes pick the scales
 * (spread to their lanes), q5's fifth bits (as two 64-bit byte masks) and the mins,
 * so no field is read with scalar loads. */
static inline __attribute__((always_inline)) __m128i dec_qs(const uint8_t *p, bool there)
{
    return there ? _mm_loadu_si128((const __m128i *)(const void *)p) : _mm_setzero_si128();
}

static inline __attribute__((always_inline)) void
dec_unpack_x(int t, const uint8_t *w, int nbk, bool full, dec_w_t *u)
{
    const int v = t == LT_Q4_1 ? 0 : t == LT_Q5_0 ? 1 : 2;
    const size_t B = lt_bytes(t), qs = lt_qs(t);
    /* A last, partial step reads its nbk blocks alone (masked loads; the missing
     * blocks read as zeros, scale 0 included). */
    const int64_t n = (int64_t)nbk * (int64_t)B, skew = DEC_SKEW[v];
    __m512i head = ld_n(w, n, full);
    __m512i tail = skew ? ld_n(w + skew, n - skew, full) : head;
    __m512i q = _mm512_castsi128_si512(dec_qs(w + qs, true));
    q = _mm512_inserti32x4(q, dec_qs(w + B + qs, full || nbk > 1), 1);
    q = _mm512_inserti32x4(q, dec_qs(w + 2 * B + qs, full || nbk > 2), 2);
    q = _mm512_inserti32x4(q, dec_qs(w + 3 * B + qs, full || nbk > 3), 3);
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
    __m512i extra = _mm512_permutex2var_epi16(head, _mm512_load_si512(DEC_EXTRA_IDX[v]), tail);
    if (lt_has_qh(t)) {
        __m128i qh = _mm512_castsi512_si128(extra);
        const __m512i five = _mm512_set1_epi8(0x10);
        lo = _mm512_mask_add_epi8(lo, (__mmask64)_mm_cvtsi128_si64(qh), lo, five);
        hi = _mm512_mask_add_epi8(hi, (__mmask64)_mm_extract_epi64(qh, 1), hi, five);
    }
    u->m = lt_has_min(t) ? _mm_cvtph_ps(_mm512_extracti32x4_epi32(extra, 1)) : _mm_setzero_ps();
    u->lo = lo;
    u->hi = hi;
    u->dw = _mm512_cvtph_ps(_mm512_castsi512_si256(
        _mm512_permutex2var_epi16(head, _mm512_load_si512(DEC_SCALE_IDX[v]), tail)));
}

static inline __attribute__((always_inline)) void
dec_unpack(int t, const uint8_t *w, int nbk, bool full, dec_w_t *u)
{
    if (t == LT_Q4_0 || t == LT_Q8_0)
        dec_unpack_40(t, w, nbk, full, u);
    else
        dec_unpack_x(t, w, nbk, full, u);
}

/* acc += one step of a row times one step of a column; the mins' share,
 * m * dx * sum(qx) per block, goes to macc. */
static inline __attribute__((always_inline)) __m512
dec_dot(int t, const dec_w_t *u, const dec_act_t *a, __m512 acc, __m128 *macc)
{
    __m512i p = _mm512_dpbusd_epi32(a->corr, u->lo, a->lo);
    if (t != LT_Q8_0)
        p = _mm512_dpbusd_epi32(p, u->hi, a->hi);
    if (lt_has_min(t))
        *macc = _mm_fmadd_ps(u->m, a->s, *macc);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(u->dw, a->d), acc);
}

static inline __attribute__((always_inline)) float dec_sum(__m512 acc, __m128 macc)
{
    __m128 m = _mm_add_ps(macc, _mm_movehl_ps(macc, macc));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return _mm512_reduce_add_ps(acc) + _mm_cvtss_f32(m);
}

/* The dot product of one weight row and one activation column (decode: every row of
 * a range one after the other, one sequential stream for the prefetcher). */
static inline __attribute__((always_inline)) float
dec_row_dot(int t, int64_t k, const uint8_t *row, const void *x)
{
    int8_t *xq;
    float *xd, *xs;
    act_parts((void *)(uintptr_t)x, k, &xq, &xd, &xs);
    __m512 acc = _mm512_setzero_ps();
    __m128 macc = _mm_setzero_ps();
    const int64_t nb = k / QK, step = dec_step(t);
    const size_t sb = lt_bytes(t) * (size_t)step;
    dec_w_t u;
    dec_act_t a;
    int64_t b = 0;
    for (; b + step <= nb; b += step, row += sb) {
        dec_act(t, xq + b * QK, xd + b, xs + b, (int)step, true, &a);
        dec_unpack(t, row, (int)step, true, &u);
        acc = dec_dot(t, &u, &a, acc, &macc);
    }
    if (b < nb) {
        int nbk = (int)(nb - b);
        dec_act(t, xq + b * QK, xd + b, xs + b, nbk, false, &a);
        dec_unpack(t, row, nbk, false, &u);
        acc = dec_dot(t, &u, &a, acc, &macc);
    }
    return dec_sum(acc, macc);
}

/* A few columns (a batch of decoding sequences): each column's activation is put in
 * dec_act's form once per DEC_COL_STEPS steps, then every weight row streams once,
 * one after the other, against all the columns: the weights are unpacked once per
 * row instead of once per column. c[j * c_col + i] for i < nr, j < nc; columns past
 * nc repeat the last (NC is the compiled width). */
#define DEC_COL_STEPS 32

static inline __attribute__((always_inline)) void
dec_cols(int t, int NC, int64_t k, const uint8_t *w, size_t wrb, const void *x, size_t acb,
         float *c, size_t c_col, int64_t nr, int nc)
{
    const int64_t nb = k / QK, step = dec_step(t), nsteps = (nb + step - 1) / step;
    const size_t sb = lt_bytes(t) * (size_t)step;
    int8_t *xq[CPU_DOT_COLS];
    float *xd[CPU_DOT_COLS], *xs[CPU_DOT_COLS];
    _Pragma("GCC unroll 8")
    for (int j = 0; j < NC; j++)
        act_parts((char *)(uintptr_t)x + (size_t)(j < nc ? j : nc - 1) * acb, k, &xq[j], &xd[j],
                  &xs[j]);
    dec_act_t act[CPU_DOT_COLS][DEC_COL_STEPS];
    for (int64_t s0 = 0; s0 < nsteps; s0 += DEC_COL_STEPS) {
        int64_t ns = nsteps - s0 < DEC_COL_STEPS ? nsteps - s0 : DEC_COL_STEPS;
        _Pragma("GCC unroll 8")
        for (int j = 0; j < NC; j++)
            for (int64_t s = 0; s < ns; s++) {
                int64_t b = (s0 + s) * step;
                int nbk = (int)(nb - b < step ? nb - b : step);
                dec_act(t, xq[j] + b * QK, xd[j] + b, xs[j] + b, nbk, nbk == step, &act[j][s]);
            }
        for (int64_t i = 0; i < nr; i++) {
            const uint8_t *row = w + (size_t)i * wrb + (size_t)s0 * sb;
            __m512 acc[CPU_DOT_COLS];
            __m128 macc[CPU_DOT_COLS];
            _Pragma("GCC unroll 8")
            for (int j = 0; j < NC; j++) {
                acc[j] = _mm512_setzero_ps();
                macc[j] = _mm_setzero_ps();
            }
            for (int64_t s = 0; s < ns; s++, row += sb) {
                int64_t b = (s0 + s) * step;
                dec_w_t u;
                if (nb - b >= step)
                    dec_unpack(t, row, (int)step, true, &u);
                else
                    dec_unpack(t, row, (int)(nb - b), false, &u);
                _Pragma("GCC unroll 8")
                for (int j = 0; j < NC; j++)
                    acc[j] = dec_dot(t, &u, &act[j][s], acc[j], &macc[j]);
            }
            _Pragma("GCC unroll 8")
            for (int j = 0; j < NC; j++) {
                if (j >= nc)
                    break;
                float v = dec_sum(acc[j], macc[j]);
                float *o = c + (size_t)j * c_col + (size_t)i;
                *o = s0 ? *o + v : v;
            }
        }
    }
}

#define HAVE_DEC 1
#endif

/* ---- expanding rows (get_rows) ---- */

static inline __attribute__((always_inline)) void dequant(int t, const void *w, float *y, int64_t k)
{
    const uint8_t *blk = w;
    for (int64_t b = 0; b < k / QK; b++, blk += lt_bytes(t), y += QK) {
        float d = slm_half_to_float(rd16(blk));
        if (t == LT_Q8_0) {
            const int8_t *qs = (const int8_t *)(blk + 2);
            for (int i = 0; i < QK; i++)
                y[i] = (float)qs[i] * d;
            continue;
        }
        int u[QK];
        const uint8_t *qs = blk + lt_qs(t);
        uint32_t qh = lt_has_qh(t) ? rd32(blk + (t == LT_Q5_0 ? 2 : 4)) : 0;
        for (int i = 0; i < QK / 2; i++) {
            u[i] = (qs[i] & 0x0f) | (int)(((qh >> i) & 1u) << 4);
            u[i + 16] = (qs[i] >> 4) | (int)(((qh >> (i + 16)) & 1u) << 4);
        }
        if (lt_has_min(t)) {
            float m = slm_half_to_float(rd16(blk + 2));
            for (int i = 0; i < QK; i++)
                y[i] = (float)u[i] * d + m;
        } else {
            int off = t == LT_Q4_0 ? 8 : 16;
            for (int i = 0; i < QK; i++)
                y[i] = (float)(u[i] - off) * d;
        }
    }
}

/* One row as int8 values and per-block scales (and mins): the integer GEMM's input. */
static inline __attribute__((always_inline)) void unpack_s8(int t, const void *w, int64_t k,
                                                           int8_t *v, float *d, float *m)
{
    const uint8_t *blk = w;
    const int off = t == LT_Q4_0 ? 8 : t == LT_Q5_0 ? 16 : 0;
    for (int64_t b = 0; b < k / QK; b++, blk += lt_bytes(t), v += QK) {
        d[b] = slm_half_to_float(rd16(blk));
        if (lt_has_min(t))
            m[b] = slm_half_to_float(rd16(blk + 2));
        if (t == LT_Q8_0) {
            memcpy(v, blk + 2, QK);
            continue;
        }
#if defined(__AVX2__)
        __m256i u = unpack1(t, blk);
        _mm256_storeu_si256((__m256i *)(void *)v, _mm256_sub_epi8(u, _mm256_set1_epi8((char)off)));
#else
        int u[QK];
        unpack_scalar(t, blk, u);
        for (int i = 0; i < QK; i++)
            v[i] = (int8_t)(u[i] - off);
#endif
    }
}

/* A 4-bit row as its nibbles and the blocks' own f16 scales (and q4_1's mins): the
 * integer GEMM's 4-bit panels (quant.h). */
static inline __attribute__((always_inline)) void unpack_u4(int t, const void *w, int64_t k,
                                                           uint8_t *q, uint16_t *d, uint16_t *m)
{
    const uint8_t *blk = w;
    for (int64_t b = 0; b < k / QK; b++, blk += lt_bytes(t), q += QK) {
        d[b] = rd16(blk);
        if (t == LT_Q4_1)
            m[b] = rd16(blk + 2);
        const uint8_t *qs = blk + (t == LT_Q4_1 ? 4 : 2);
        for (int i = 0; i < QK / 2; i++) {
            q[i] = qs[i] & 0x0f;
            q[i + QK / 2] = qs[i] >> 4;
        }
    }
}

/* Whether a type has the decode kernel in this build. */
static inline __attribute__((always_inline)) bool dec_ok(int t)
{
#if defined(HAVE_DEC)
    (void)t;
    return true;
#else
    (void)t;
    return false;
#endif
}

static inline __attribute__((always_inline)) void
dec_tile(int t, int64_t k, const void *w, size_t wrb, const void *a, float *c, int nr)
{
#if defined(HAVE_DEC)
    /* One row at a time: measured up to 2x faster than four rows in lock-step, whose
     * interleaved streams the hardware prefetcher follows worse than one sequential one. */
    for (int i = 0; i < nr; i++)
        c[i] = dec_row_dot(t, k, (const uint8_t *)w + (size_t)i * wrb, a);
#else
    (void)t, (void)k, (void)w, (void)wrb, (void)a, (void)c, (void)nr;
#endif
}

/* Any number of rows x 2 <= nc <= CPU_DOT_COLS columns. */
static inline __attribute__((always_inline)) void
dec_cols_tile(int t, int64_t k, const void *w, size_t wrb, const void *a, size_t acb, float *c,
              size_t c_col, int64_t nr, int nc)
{
#if defined(HAVE_DEC)
    if (nc == 2)
        dec_cols(t, 2, k, w, wrb, a, acb, c, c_col, nr, nc);
    else if (nc <= 4)
        dec_cols(t, 4, k, w, wrb, a, acb, c, c_col, nr, nc);
    else
        dec_cols(t, 8, k, w, wrb, a, acb, c, c_col, nr, nc);
#else
    (void)t, (void)k, (void)w, (void)wrb, (void)a, (void)acb, (void)c, (void)c_col, (void)nr,
        (void)nc;
#endif
}

/* ---- one set of entry points per type ---- */

#if defined(HAVE_DEC)
#define LEGACY_COLS(f) f
#else
#define LEGACY_COLS(f) NULL
#endif

#define LEGACY_TYPE(N, T, ID, BYTES)                                                      \
    static void N##_tile(int64_t k, const void *w, size_t wrb, const void *a, size_t acb,   \
                            float *c, size_t c_col, int nr, int nc)                           \
    {                                                                                         \
        if (nr <= 0 || nc <= 0)                                                               \
            return;                                                                           \
        if (nc == 1 && dec_ok(T)) {                                                           \
            dec_tile(T, k, w, wrb, a, c, nr);                                                 \
            return;                                                                           \
        }                                                                                     \
        if (dec_ok(T)) {                                                                      \
            dec_cols_tile(T, k, w, wrb, a, acb, c, c_col, nr, nc);                            \
            return;                                                                           \
        }                                                                                     \
        if (nc == 1 && nr == 1)                                                               \
            tile(T, 1, 1, k, w, wrb, a, acb, c, c_col, nr, nc);                               \
        else if (nc == 1)                                                                     \
            tile(T, 4, 1, k, w, wrb, a, acb, c, c_col, nr, nc);                               \
        else                                                                                  \
            tile(T, 4, 4, k, w, wrb, a, acb, c, c_col, nr, nc);                               \
    }                                                                                         \
    static __attribute__((unused)) void N##_cols(int64_t k, const void *w, size_t wrb,      \
                                                 const void *a, size_t acb,               \
                         float *c, size_t c_col, int64_t nr, int nc)                          \
    {                                                                                         \
        dec_cols_tile(T, k, w, wrb, a, acb, c, c_col, nr, nc);                                \
    }                                                                                         \
    static float N##_vec_dot(int64_t k, const void *w, const void *a)                      \
    {                                                                                         \
        float c = 0.0f;                                                                       \
        if (dec_ok(T))                                                                        \
            dec_tile(T, k, w, 0, a, &c, 1);                                                   \
        else                                                                                  \
            tile(T, 1, 1, k, w, 0, a, 0, &c, 1, 1, 1);                                        \
        return c;                                                                             \
    }                                                                                         \
    static void N##_dequant(const void *w, float *y, int64_t k)                            \
    {                                                                                         \
        dequant(T, w, y, k);                                                                  \
    }                                                                                         \
    static void N##_unpack_s8(const void *w, int64_t k, int8_t *v, float *d, float *m)        \
    {                                                                                         \
        unpack_s8(T, w, k, v, d, m);                                                          \
    }                                                                                         \
    static void N##_unpack_u4(const void *w, int64_t k, uint8_t *q, uint16_t *d, uint16_t *m) \
    {                                                                                         \
        unpack_u4(T, w, k, q, d, m);                                                          \
    }                                                                                         \
    const cpu_qtype_t cpu_qtype_##N = {                                                    \
        .type = ID, .name = #N, .block = QK, .block_bytes = BYTES,                         \
        .act_type = CPU_ACT_Q8X, .act_block = CPU_ACT_Q8X_BLOCK,                              \
        .act_block_bytes = CPU_ACT_Q8X_BYTES, .quantize_act = quantize_act,                   \
        .vec_dot = N##_vec_dot, .dot_tile = N##_tile, .dequantize_row = N##_dequant, \
        .dot_cols = LEGACY_COLS(N##_cols),                                                    \
        .unpack_s8 = N##_unpack_s8, .s8_group = QK, .s8_min = T == LT_Q4_1 || T == LT_Q5_1,   \
        .unpack_u4 = T == LT_Q4_0 || T == LT_Q4_1 ? N##_unpack_u4 : NULL,                     \
        .u4_offset = T == LT_Q4_0 ? 8 : 0,                                                    \
    };

LEGACY_TYPE(q4_0, LT_Q4_0, SLM_TYPE_Q4_0, 18)
LEGACY_TYPE(q4_1, LT_Q4_1, SLM_TYPE_Q4_1, 20)
LEGACY_TYPE(q5_0, LT_Q5_0, SLM_TYPE_Q5_0, 22)
LEGACY_TYPE(q5_1, LT_Q5_1, SLM_TYPE_Q5_1, 24)
LEGACY_TYPE(q8_0, LT_Q8_0, SLM_TYPE_Q8_0, 34)
