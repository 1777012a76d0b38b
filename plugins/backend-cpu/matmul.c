/* CPU matrix-product kernels: a streaming dot-product path for matrix-vector shapes
 * and a packed, register-blocked GEMM, compiled once per ISA variant (-m flags). */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/fp16.h>
#include <slmops/types.h>

#include "matmul.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* Self-contained apart from matmul.h and the type ids: tests/cpu builds it once
 * per ISA with renamed entry points to check every variant on one machine. */
enum { MM_F32 = SLM_TYPE_F32, MM_F16 = SLM_TYPE_F16, MM_BF16 = SLM_TYPE_BF16 };

/* Register tile (MR x NR) and cache blocks: the A block (MC x KC) lives in L2, a
 * packed B micro-panel (KC x NR) in L1, the packed B block (KC x NC) in L3. */
#if defined(__AVX512F__)
#define MR 32
#define NR 12
#define KC 512
#define MC 128
#define MM_ISA "avx512"
#elif defined(__AVX2__)
#define MR 16
#define NR 6
#define KC 256
#define MC 256
#define MM_ISA "avx2"
#else
#define MR 8
#define NR 4
#define KC 256
#define MC 256
#define MM_ISA "scalar"
#endif
#define NC 2048

/* Below this many columns the product is memory-bound on A: packing does not pay. */
#define GEMM_MIN_N 6

/* Rows at least this long go through dotn in matrix-vector products. */
#define MV_DOTN_MIN_K 256

#define ALIGN 64

const char *cpu_mul_mat_isa(void)
{
    return MM_ISA;
}

/* ---- scalar element conversion (tails and the baseline build) ---- */

static inline float load_elem(int type, const void *row, int64_t k)
{
    switch (type) {
    case MM_F16:
        return slm_half_to_float(((const uint16_t *)row)[k]);
    case MM_BF16:
        return slm_bf16_to_float(((const uint16_t *)row)[k]);
    default:
        return ((const float *)row)[k];
    }
}

static inline const void *a_row(const cpu_gemm_args_t *g, int64_t m)
{
    return (const char *)g->a + (size_t)m * g->a_row_bytes;
}

static inline const float *b_col(const cpu_gemm_args_t *g, int64_t n)
{
    return (const float *)(const void *)((const char *)g->b + (size_t)n * g->b_col_bytes);
}

static inline float *c_col(const cpu_gemm_args_t *g, int64_t n)
{
    return (float *)(void *)((char *)g->c + (size_t)n * g->c_col_bytes);
}

static inline int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* ---- dot products: four rows of A against one column of B ---- */

#if defined(__AVX512F__)

static inline __m512 load16(int type, const void *row, int64_t k)
{
    switch (type) {
    case MM_F16:
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + k)));
    case MM_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + k))),
            16));
    default:
        return _mm512_loadu_ps((const float *)row + k);
    }
}

static inline __m512 load16_mask(int type, const void *row, int64_t k, __mmask16 mask)
{
    switch (type) {
    case MM_F16:
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)row + k));
    case MM_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)row + k)), 16));
    default:
        return _mm512_maskz_loadu_ps(mask, (const float *)row + k);
    }
}

/* Two accumulators per row hide the FMA latency; B is loaded once for four rows. */
static void dot4(int type, const void *const r[4], const float *b, int64_t K, float out[4])
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    __m512 t0 = s0, t1 = s0, t2 = s0, t3 = s0;
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
        __m512 b0 = _mm512_loadu_ps(b + k), b1 = _mm512_loadu_ps(b + k + 16);
        s0 = _mm512_fmadd_ps(load16(type, r[0], k), b0, s0);
        s1 = _mm512_fmadd_ps(load16(type, r[1], k), b0, s1);
        s2 = _mm512_fmadd_ps(load16(type, r[2], k), b0, s2);
        s3 = _mm512_fmadd_ps(load16(type, r[3], k), b0, s3);
        t0 = _mm512_fmadd_ps(load16(type, r[0], k + 16), b1, t0);
        t1 = _mm512_fmadd_ps(load16(type, r[1], k + 16), b1, t1);
        t2 = _mm512_fmadd_ps(load16(type, r[2], k + 16), b1, t2);
        t3 = _mm512_fmadd_ps(load16(type, r[3], k + 16), b1, t3);
    }
    for (; k < K; k += 16) {
        __mmask16 m = K - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - k)) - 1);
        __m512 b0 = _mm512_maskz_loadu_ps(m, b + k);
        s0 = _mm512_fmadd_ps(load16_mask(type, r[0], k, m), b0, s0);
        s1 = _mm512_fmadd_ps(load16_mask(type, r[1], k, m), b0, s1);
        s2 = _mm512_fmadd_ps(load16_mask(type, r[2], k, m), b0, s2);
        s3 = _mm512_fmadd_ps(load16_mask(type, r[3], k, m), b0, s3);
    }
    out[0] = _mm512_reduce_add_ps(_mm512_add_ps(s0, t0));
    out[1] = _mm512_reduce_add_ps(_mm512_add_ps(s1, t1));
    out[2] = _mm512_reduce_add_ps(_mm512_add_ps(s2, t2));
    out[3] = _mm512_reduce_add_ps(_mm512_add_ps(s3, t3));
}

/* `nr` rows (1 or 2) against one column, 32 elements (a 64-byte line of f16) of
 * each row in turn, into two accumulators per row. Every row is summed the same
 * way whatever nr is: its value never depends on its partners. Rows from far apart
 * are separate address streams, and a core keeps more reads in flight for several
 * than for one (D58). nr is a constant where it is inlined. */
static inline __attribute__((always_inline)) void dotn(int type, int nr, const void *const r[],
                                                       const float *b, int64_t K, float out[])
{
    __m512 s[2][2];
    for (int j = 0; j < nr; j++)
        s[j][0] = s[j][1] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
        __m512 b0 = _mm512_loadu_ps(b + k), b1 = _mm512_loadu_ps(b + k + 16);
        for (int j = 0; j < nr; j++) {
            s[j][0] = _mm512_fmadd_ps(load16(type, r[j], k), b0, s[j][0]);
            s[j][1] = _mm512_fmadd_ps(load16(type, r[j], k + 16), b1, s[j][1]);
        }
    }
    for (; k < K; k += 16) {
        __mmask16 m = K - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - k)) - 1);
        __m512 bk = _mm512_maskz_loadu_ps(m, b + k);
        for (int j = 0; j < nr; j++)
            s[j][0] = _mm512_fmadd_ps(load16_mask(type, r[j], k, m), bk, s[j][0]);
    }
    for (int j = 0; j < nr; j++)
        out[j] = _mm512_reduce_add_ps(_mm512_add_ps(s[j][0], s[j][1]));
}
#define HAVE_DOTN 1

#elif defined(__AVX2__)

static inline __m256 load8(int type, const void *row, int64_t k)
{
    switch (type) {
    case MM_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + k)));
    case MM_BF16:
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + k))), 16));
    default:
        return _mm256_loadu_ps((const float *)row + k);
    }
}

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static void dot4(int type, const void *const r[4], const float *b, int64_t K, float out[4])
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    __m256 t0 = s0, t1 = s0, t2 = s0, t3 = s0;
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        __m256 b0 = _mm256_loadu_ps(b + k), b1 = _mm256_loadu_ps(b + k + 8);
        s0 = _mm256_fmadd_ps(load8(type, r[0], k), b0, s0);
        s1 = _mm256_fmadd_ps(load8(type, r[1], k), b0, s1);
        s2 = _mm256_fmadd_ps(load8(type, r[2], k), b0, s2);
        s3 = _mm256_fmadd_ps(load8(type, r[3], k), b0, s3);
        t0 = _mm256_fmadd_ps(load8(type, r[0], k + 8), b1, t0);
        t1 = _mm256_fmadd_ps(load8(type, r[1], k + 8), b1, t1);
        t2 = _mm256_fmadd_ps(load8(type, r[2], k + 8), b1, t2);
        t3 = _mm256_fmadd_ps(load8(type, r[3], k + 8), b1, t3);
    }
    for (; k + 8 <= K; k += 8) {
        __m256 b0 = _mm256_loadu_ps(b + k);
        s0 = _mm256_fmadd_ps(load8(type, r[0], k), b0, s0);
        s1 = _mm256_fmadd_ps(load8(type, r[1], k), b0, s1);
        s2 = _mm256_fmadd_ps(load8(type, r[2], k), b0, s2);
        s3 = _mm256_fmadd_ps(load8(type, r[3], k), b0, s3);
    }
    out[0] = hsum8(_mm256_add_ps(s0, t0));
    out[1] = hsum8(_mm256_add_ps(s1, t1));
    out[2] = hsum8(_mm256_add_ps(s2, t2));
    out[3] = hsum8(_mm256_add_ps(s3, t3));
    for (; k < K; k++) {
        for (int i = 0; i < 4; i++)
            out[i] += load_elem(type, r[i], k) * b[k];
    }
}

/* As the AVX-512 dotn: 16 elements of each row a step, two accumulators per row. */
static inline __attribute__((always_inline)) void dotn(int type, int nr, const void *const r[],
                                                       const float *b, int64_t K, float out[])
{
    __m256 s[2][2];
    for (int j = 0; j < nr; j++)
        s[j][0] = s[j][1] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        __m256 b0 = _mm256_loadu_ps(b + k), b1 = _mm256_loadu_ps(b + k + 8);
        for (int j = 0; j < nr; j++) {
            s[j][0] = _mm256_fmadd_ps(load8(type, r[j], k), b0, s[j][0]);
            s[j][1] = _mm256_fmadd_ps(load8(type, r[j], k + 8), b1, s[j][1]);
        }
    }
    for (; k + 8 <= K; k += 8) {
        __m256 bk = _mm256_loadu_ps(b + k);
        for (int j = 0; j < nr; j++)
            s[j][0] = _mm256_fmadd_ps(load8(type, r[j], k), bk, s[j][0]);
    }
    for (int j = 0; j < nr; j++) {
        out[j] = hsum8(_mm256_add_ps(s[j][0], s[j][1]));
        for (int64_t kk = k; kk < K; kk++)
            out[j] += load_elem(type, r[j], kk) * b[kk];
    }
}
#define HAVE_DOTN 1

#else

/* Eight independent partial sums per row let the compiler vectorise with SSE2. */
static void dot4(int type, const void *const r[4], const float *b, int64_t K, float out[4])
{
    float acc[4][8] = { { 0 } };
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 8; j++)
                acc[i][j] += load_elem(type, r[i], k + j) * b[k + j];
    }
    for (int i = 0; i < 4; i++) {
        float s = 0.0f;
        for (int j = 0; j < 8; j++)
            s += acc[i][j];
        for (int64_t kk = k; kk < K; kk++)
            s += load_elem(type, r[i], kk) * b[kk];
        out[i] = s;
    }
}

#endif

/* Store one element of C, or add to it. */
static inline void put(const cpu_gemm_args_t *g, float *c, float v)
{
    *c = g->accumulate ? *c + v : v;
}

#ifdef HAVE_DOTN
/* Rows at[j] .. at[j] + n - 1 for j < nr of column col, read side by side. */
static inline __attribute__((always_inline)) void mv_streams(const cpu_gemm_args_t *g, int type,
                                                             int64_t col, int nr,
                                                             const int64_t *at, int64_t n)
{
    const float *x = b_col(g, col);
    float *c = c_col(g, col);
    for (int64_t i = 0; i < n; i++) {
        const void *r[2];
        float out[2];
        for (int j = 0; j < nr; j++)
            r[j] = a_row(g, at[j] + i);
        dotn(type, nr, r, x, g->K, out);
        for (int j = 0; j < nr; j++)
            put(g, c + at[j] + i, out[j]);
    }
}
#endif

#ifdef HAVE_DOTN
/* mv_streams with the type and the stream count (1 or 2) made constants. */
static void mv_dotn(const cpu_gemm_args_t *g, int64_t col, int nr, const int64_t *at, int64_t n)
{
#define MV_DOTN(T)                                                                       \
    if (nr == 1)                                                                         \
        mv_streams(g, T, col, 1, at, n);                                                 \
    else                                                                                 \
        mv_streams(g, T, col, 2, at, n);                                                 \
    return;
    switch (g->a_type) {
    case MM_F16:
        MV_DOTN(MM_F16)
    case MM_BF16:
        MV_DOTN(MM_BF16)
    default:
        MV_DOTN(MM_F32)
    }
#undef MV_DOTN
}
#endif

/* Rows [m0, m1) x columns [n0, n1) by dot products. Short row groups repeat the
 * last row so dot4 stays the only kernel; the duplicates are not stored. */
static void mv_range(const cpu_gemm_args_t *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
#ifdef HAVE_DOTN
    /* Short rows (attention over a few cells) amortise the reduction better in dot4. */
    if (n1 - n0 == 1 && g->K >= MV_DOTN_MIN_K) {
        mv_dotn(g, n0, 1, &m0, m1 - m0);
        return;
    }
#endif

    for (int64_t m = m0; m < m1; m += 4) {
        int64_t rows = min64(4, m1 - m);
        const void *r[4];
        for (int i = 0; i < 4; i++)
            r[i] = a_row(g, m + (i < rows ? i : rows - 1));
        for (int64_t n = n0; n < n1; n++) {
            float out[4];
            dot4(g->a_type, r, b_col(g, n), g->K, out);
            float *c = c_col(g, n) + m;
            for (int64_t i = 0; i < rows; i++)
                put(g, c + i, out[i]);
        }
    }
}

/* Transposed A, few columns: each column of C is a sum of A's rows scaled by B's
 * entries, kept in strips of MV_T_STRIP floats that stay in L1 while A streams. */
#define MV_T_STRIP 64

static void mv_range_t(const cpu_gemm_args_t *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    for (int64_t n = n0; n < n1; n++) {
        const float *b = b_col(g, n);
        float *c = c_col(g, n);
        for (int64_t m = m0; m < m1; m += MV_T_STRIP) {
            int64_t w = min64(MV_T_STRIP, m1 - m);
            float acc[MV_T_STRIP] = { 0 };
            for (int64_t k = 0; k < g->K; k++) {
                const void *row = a_row(g, k);
                float bk = b[k];
                if (g->a_type == MM_F32) {
                    const float *r = (const float *)row + m;
                    for (int64_t i = 0; i < w; i++)
                        acc[i] += bk * r[i];
                } else {
                    for (int64_t i = 0; i < w; i++)
                        acc[i] += bk * load_elem(g->a_type, row, m + i);
                }
            }
            for (int64_t i = 0; i < w; i++)
                put(g, c + m + i, acc[i]);
        }
    }
}

static void mv_any(const cpu_gemm_args_t *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    if (g->a_trans)
        mv_range_t(g, m0, m1, n0, n1);
    else
        mv_range(g, m0, m1, n0, n1);
}

/* Matrix-vector split: rows in groups of four when there are enough of them,
 * otherwise columns; a thread with nothing to do returns at once. */
static void mul_mat_mv(const cpu_gemm_args_t *g, int ith, int nth)
{
    int64_t M = g->M, N = g->N;
    if (M >= 4 * (int64_t)nth || N < nth) {
        int64_t groups = (M + 3) / 4;
        int64_t per = (groups + nth - 1) / nth;
        int64_t m0 = min64(M, (int64_t)ith * per * 4), m1 = min64(M, m0 + per * 4);
        if (m0 < m1)
            mv_any(g, m0, m1, 0, N);
        return;
    }
    int64_t per = (N + nth - 1) / nth;
    int64_t n0 = min64(N, (int64_t)ith * per), n1 = min64(N, n0 + per);
    if (n0 < n1)
        mv_any(g, 0, M, n0, n1);
}

void cpu_mul_vec_rows(const cpu_gemm_args_t *g, const int64_t *lo, const int64_t *hi, int count)
{
    if (!g || g->a_trans || g->b_trans || count < 1 || count > MV_STREAMS)
        return;
    if (g->N != 1) {   /* a few columns: the ranges one after the other */
        for (int j = 0; j < count; j++)
            if (lo[j] < hi[j])
                mv_range(g, lo[j], hi[j], 0, g->N);
        return;
    }
    int64_t at[2] = {lo[0], count > 1 ? lo[1] : 0}, end[2] = {hi[0], count > 1 ? hi[1] : 0};
#ifdef HAVE_DOTN
    /* Where mv_range reads one row at a time: both streams while both last. */
    int64_t n = min64(end[0] - at[0], end[1] - at[1]);
    if (g->K >= MV_DOTN_MIN_K && n > 0) {
        mv_dotn(g, 0, 2, at, n);
        at[0] += n;
        at[1] += n;
    }
#endif
    for (int j = 0; j < 2; j++)
        if (at[j] < end[j])
            mv_range(g, at[j], end[j], 0, 1);
}

/* ---- GEMM: packing ----
 * A rows [m0, m0+mc) x k [k0, k0+kc) go into MR-row micro-panels, k-major inside a
 * panel (MR consecutive floats per k); B columns likewise into NR-column panels.
 * Both operands are contiguous along k, so packing is a transpose: the SIMD builds
 * move 16x16 (8x8) blocks through registers. Padding rows/columns are zero. */

#if defined(__AVX512F__)

static inline __attribute__((always_inline)) void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
    for (int j = 0; j < 4; j++) {
        t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
        t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
        r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xdd);
    }
}

/* Transpose `n` (<= 16) source vectors of kc elements into dst, `lanes` valid
 * floats per k at a pitch of `pitch` floats. Inlined per element type so that the
 * sixteen loads unroll into registers. */
static inline __attribute__((always_inline)) void
pack_t16_type(int type, const void *const src[16], int n, int64_t k0, int64_t kc, float *dst,
              int64_t pitch, __mmask16 lanes)
{
    int64_t k = 0;
    if (n == 16) {
        for (; k + 16 <= kc; k += 16) {
            __m512 v[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                v[i] = load16(type, src[i], k0 + k);
            transpose16(v);
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++)
                _mm512_mask_storeu_ps(dst + (k + j) * pitch, lanes, v[j]);
        }
    }
    for (; k < kc; k += 16) {
        int64_t kk = min64(16, kc - k);
        __mmask16 mask = kk == 16 ? (__mmask16)0xffff : (__mmask16)((1u << kk) - 1);
        __m512 v[16];
        for (int i = 0; i < 16; i++)
            v[i] = i < n ? load16_mask(type, src[i], k0 + k, mask) : _mm512_setzero_ps();
        transpose16(v);
        for (int64_t j = 0; j < kk; j++)
            _mm512_mask_storeu_ps(dst + (k + j) * pitch, lanes, v[j]);
    }
}

static void pack_t16(int type, const void *const src[16], int n, int64_t k0, int64_t kc,
                     float *dst, int64_t pitch, __mmask16 lanes)
{
    switch (type) {
    case MM_F16:
        pack_t16_type(MM_F16, src, n, k0, kc, dst, pitch, lanes);
        break;
    case MM_BF16:
        pack_t16_type(MM_BF16, src, n, k0, kc, dst, pitch, lanes);
        break;
    default:
        pack_t16_type(MM_F32, src, n, k0, kc, dst, pitch, lanes);
        break;
    }
}

static void pack_a(const cpu_gemm_args_t *g, int64_t m0, int64_t mc, int64_t k0, int64_t kc,
                   float *dst)
{
    for (int64_t p = 0; p < mc; p += MR) {
        for (int h = 0; h < MR; h += 16) {
            const void *src[16];
            int n = (int)min64(16, mc - p - h);
            n = n < 0 ? 0 : n;
            for (int i = 0; i < n; i++)
                src[i] = a_row(g, m0 + p + h + i);
            pack_t16(g->a_type, src, n, k0, kc, dst + p * kc + h, MR, (__mmask16)0xffff);
        }
    }
}

static void pack_b(const cpu_gemm_args_t *g, int64_t n0, int64_t nc, int64_t k0, int64_t kc,
                   float *dst)
{
    for (int64_t p = 0; p < nc; p += NR) {
        const void *src[16];
        int n = (int)min64(NR, nc - p);
        for (int j = 0; j < n; j++)
            src[j] = b_col(g, n0 + p + j);
        /* Lanes past NR are never stored: repeat a column so full panels take
         * the unmasked path. */
        for (int j = n; j < 16 && n == NR; j++)
            src[j] = src[0];
        pack_t16(MM_F32, src, n == NR ? 16 : n, k0, kc, dst + p * kc, NR,
                 (__mmask16)((1u << NR) - 1));
    }
}

#elif defined(__AVX2__)

static inline void transpose8(__m256 r[8])
{
    __m256 t[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        r[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        r[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
    for (int j = 0; j < 4; j++) {
        t[j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x20);
        t[4 + j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x31);
    }
    for (int j = 0; j < 8; j++)
        r[j] = t[j];
}

/* Transpose `n` (<= 8) source vectors of kc elements into dst, `lanes` valid
 * floats per k at a pitch of `pitch` floats; the k tail goes element by element. */
static void pack_t8(int type, const void *const src[8], int n, int64_t k0, int64_t kc,
                    float *dst, int64_t pitch, int lanes)
{
    __m256i lane_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes),
                                           _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        __m256 v[8];
        for (int i = 0; i < 8; i++)
            v[i] = i < n ? load8(type, src[i], k0 + k) : _mm256_setzero_ps();
        transpose8(v);
        for (int j = 0; j < 8; j++)
            _mm256_maskstore_ps(dst + (k + j) * pitch, lane_mask, v[j]);
    }
    for (; k < kc; k++)
        for (int i = 0; i < lanes; i++)
            dst[k * pitch + i] = i < n ? load_elem(type, src[i], k0 + k) : 0.0f;
}

static void pack_a(const cpu_gemm_args_t *g, int64_t m0, int64_t mc, int64_t k0, int64_t kc,
                   float *dst)
{
    for (int64_t p = 0; p < mc; p += MR) {
        for (int h = 0; h < MR; h += 8) {
            const void *src[8];
            int n = (int)min64(8, mc - p - h);
            n = n < 0 ? 0 : n;
            for (int i = 0; i < n; i++)
                src[i] = a_row(g, m0 + p + h + i);
            pack_t8(g->a_type, src, n, k0, kc, dst + p * kc + h, MR, 8);
        }
    }
}

static void pack_b(const cpu_gemm_args_t *g, int64_t n0, int64_t nc, int64_t k0, int64_t kc,
                   float *dst)
{
    for (int64_t p = 0; p < nc; p += NR) {
        const void *src[8];
        int n = (int)min64(NR, nc - p);
        for (int j = 0; j < n; j++)
            src[j] = b_col(g, n0 + p + j);
        pack_t8(MM_F32, src, n, k0, kc, dst + p * kc, NR, NR);
    }
}

#else

static void pack_a(const cpu_gemm_args_t *g, int64_t m0, int64_t mc, int64_t k0, int64_t kc,
                   float *dst)
{
    for (int64_t p = 0; p < mc; p += MR) {
        int64_t rows = min64(MR, mc - p);
        float *panel = dst + p * kc;
        for (int64_t i = 0; i < MR; i++) {
            const void *row = i < rows ? a_row(g, m0 + p + i) : NULL;
            for (int64_t k = 0; k < kc; k++)
                panel[k * MR + i] = row ? load_elem(g->a_type, row, k0 + k) : 0.0f;
        }
    }
}

static void pack_b(const cpu_gemm_args_t *g, int64_t n0, int64_t nc, int64_t k0, int64_t kc,
                   float *dst)
{
    for (int64_t p = 0; p < nc; p += NR) {
        int64_t cols = min64(NR, nc - p);
        float *panel = dst + p * kc;
        for (int64_t j = 0; j < NR; j++) {
            const float *col = j < cols ? b_col(g, n0 + p + j) + k0 : NULL;
            for (int64_t k = 0; k < kc; k++)
                panel[k * NR + j] = col ? col[k] : 0.0f;
        }
    }
}

#endif

/* Transposed B: stored row k already holds a panel's NR consecutive n, so packing
 * is a copy of NR floats per k (zeros past the last column). */
static void pack_b_t(const cpu_gemm_args_t *g, int64_t n0, int64_t nc, int64_t k0, int64_t kc,
                     float *dst)
{
    for (int64_t p = 0; p < nc; p += NR) {
        int64_t cols = min64(NR, nc - p);
        float *panel = dst + p * kc;
        for (int64_t k = 0; k < kc; k++) {
            const float *row = b_col(g, k0 + k) + n0 + p;
            float *out = panel + k * NR;
            memcpy(out, row, (size_t)cols * sizeof(float));
            for (int64_t j = cols; j < NR; j++)
                out[j] = 0.0f;
        }
    }
}

/* Transposed B without packing memory: slow, but the right answer. */
static void naive_b_t(const cpu_gemm_args_t *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    for (int64_t n = n0; n < n1; n++)
        for (int64_t m = m0; m < m1; m++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < g->K; k++) {
                float a = g->a_trans ? load_elem(g->a_type, a_row(g, k), m)
                                     : load_elem(g->a_type, a_row(g, m), k);
                acc += a * b_col(g, k)[n];
            }
            float *c = c_col(g, n) + m;
            *c = g->accumulate ? *c + acc : acc;
        }
}

/* Transposed A: stored row k already holds a panel's MR consecutive m, so packing
 * is a copy (a conversion for f16/bf16), one strip per k. */
static inline void load_strip(int type, const void *row, int64_t m, float *out)
{
#if defined(__AVX512F__)
    _mm512_storeu_ps(out, load16(type, row, m));
    _mm512_storeu_ps(out + 16, load16(type, row, m + 16));
#elif defined(__AVX2__)
    _mm256_storeu_ps(out, load8(type, row, m));
    _mm256_storeu_ps(out + 8, load8(type, row, m + 8));
#else
    for (int i = 0; i < MR; i++)
        out[i] = load_elem(type, row, m + i);
#endif
}

static void pack_a_t(const cpu_gemm_args_t *g, int64_t m0, int64_t mc, int64_t k0, int64_t kc,
                     float *dst)
{
    for (int64_t p = 0; p < mc; p += MR) {
        int64_t rows = min64(MR, mc - p);
        float *panel = dst + p * kc;
        for (int64_t k = 0; k < kc; k++) {
            const void *row = a_row(g, k0 + k);
            float *out = panel + k * MR;
            if (rows == MR) {
                load_strip(g->a_type, row, m0 + p, out);
                continue;
            }
            for (int64_t i = 0; i < MR; i++)
                out[i] = i < rows ? load_elem(g->a_type, row, m0 + p + i) : 0.0f;
        }
    }
}

/* ---- GEMM: micro-kernels. C tile (MR x NR) at c, columns ldc bytes apart;
 * add != 0 accumulates onto C, else overwrites it. ---- */

#if defined(__AVX512F__)

#define MK_DECL(j) __m512 c0##j = _mm512_setzero_ps(), c1##j = _mm512_setzero_ps();
#define MK_FMA(j)                                     \
    do {                                              \
        __m512 bj = _mm512_set1_ps(pb[j]);            \
        c0##j = _mm512_fmadd_ps(a0, bj, c0##j);       \
        c1##j = _mm512_fmadd_ps(a1, bj, c1##j);       \
    } while (0)
#define MK_STORE(j)                                                             \
    do {                                                                        \
        float *cj = (float *)(void *)((char *)c + (size_t)(j) * ldc);           \
        if (add) {                                                              \
            c0##j = _mm512_add_ps(c0##j, _mm512_loadu_ps(cj));                  \
            c1##j = _mm512_add_ps(c1##j, _mm512_loadu_ps(cj + 16));             \
        }                                                                       \
        _mm512_storeu_ps(cj, c0##j);                                            \
        _mm512_storeu_ps(cj + 16, c1##j);                                       \
    } while (0)

static void ukernel(int64_t kc, const float *restrict pa, const float *restrict pb,
                    float *restrict c, size_t ldc, int add)
{
    MK_DECL(0) MK_DECL(1) MK_DECL(2) MK_DECL(3) MK_DECL(4) MK_DECL(5)
    MK_DECL(6) MK_DECL(7) MK_DECL(8) MK_DECL(9) MK_DECL(10) MK_DECL(11)
    for (int64_t k = 0; k < kc; k++) {
        __m512 a0 = _mm512_load_ps(pa), a1 = _mm512_load_ps(pa + 16);
        _mm_prefetch((const char *)(pa + 8 * MR), _MM_HINT_T0);
        MK_FMA(0); MK_FMA(1); MK_FMA(2); MK_FMA(3); MK_FMA(4); MK_FMA(5);
        MK_FMA(6); MK_FMA(7); MK_FMA(8); MK_FMA(9); MK_FMA(10); MK_FMA(11);
        pa += MR;
        pb += NR;
    }
    MK_STORE(0); MK_STORE(1); MK_STORE(2); MK_STORE(3); MK_STORE(4); MK_STORE(5);
    MK_STORE(6); MK_STORE(7); MK_STORE(8); MK_STORE(9); MK_STORE(10); MK_STORE(11);
}

#elif defined(__AVX2__)

#define MK_DECL(j) __m256 c0##j = _mm256_setzero_ps(), c1##j = _mm256_setzero_ps();
#define MK_FMA(j)                                     \
    do {                                              \
        __m256 bj = _mm256_broadcast_ss(pb + (j));    \
        c0##j = _mm256_fmadd_ps(a0, bj, c0##j);       \
        c1##j = _mm256_fmadd_ps(a1, bj, c1##j);       \
    } while (0)
#define MK_STORE(j)                                                             \
    do {                                                                        \
        float *cj = (float *)(void *)((char *)c + (size_t)(j) * ldc);           \
        if (add) {                                                              \
            c0##j = _mm256_add_ps(c0##j, _mm256_loadu_ps(cj));                  \
            c1##j = _mm256_add_ps(c1##j, _mm256_loadu_ps(cj + 8));              \
        }                                                                       \
        _mm256_storeu_ps(cj, c0##j);                                            \
        _mm256_storeu_ps(cj + 8, c1##j);                                        \
    } while (0)

static void ukernel(int64_t kc, const float *restrict pa, const float *restrict pb,
                    float *restrict c, size_t ldc, int add)
{
    MK_DECL(0) MK_DECL(1) MK_DECL(2) MK_DECL(3) MK_DECL(4) MK_DECL(5)
    for (int64_t k = 0; k < kc; k++) {
        __m256 a0 = _mm256_load_ps(pa), a1 = _mm256_load_ps(pa + 8);
        MK_FMA(0); MK_FMA(1); MK_FMA(2); MK_FMA(3); MK_FMA(4); MK_FMA(5);
        pa += MR;
        pb += NR;
    }
    MK_STORE(0); MK_STORE(1); MK_STORE(2); MK_STORE(3); MK_STORE(4); MK_STORE(5);
}

#else

/* Fixed trip counts over a small local tile: GCC and Clang keep it in SSE registers. */
static void ukernel(int64_t kc, const float *restrict pa, const float *restrict pb,
                    float *restrict c, size_t ldc, int add)
{
    float acc[NR][MR] = { { 0 } };
    for (int64_t k = 0; k < kc; k++) {
        for (int j = 0; j < NR; j++)
            for (int i = 0; i < MR; i++)
                acc[j][i] += pa[i] * pb[j];
        pa += MR;
        pb += NR;
    }
    for (int j = 0; j < NR; j++) {
        float *cj = (float *)(void *)((char *)c + (size_t)j * ldc);
        for (int i = 0; i < MR; i++)
            cj[i] = add ? cj[i] + acc[j][i] : acc[j][i];
    }
}

#endif

/* An edge tile goes through a full-size scratch tile, then only its valid part is
 * written back, so the micro-kernels never need masks. */
static void edge_tile(int64_t kc, const float *pa, const float *pb, float *c, size_t ldc,
                      int add, int64_t mr, int64_t nr)
{
    _Alignas(ALIGN) float tile[NR * MR];
    ukernel(kc, pa, pb, tile, MR * sizeof(float), 0);
    for (int64_t j = 0; j < nr; j++) {
        float *cj = (float *)(void *)((char *)c + (size_t)j * ldc);
        for (int64_t i = 0; i < mr; i++)
            cj[i] = add ? cj[i] + tile[j * MR + i] : tile[j * MR + i];
    }
}

static int64_t round_up(int64_t x, int64_t to)
{
    return (x + to - 1) / to * to;
}

/* ---- per-thread packing scratch ----
 * Kept between calls: allocating megabytes per product costs page faults that
 * serialise the threads on the address-space lock. Freed when the thread exits;
 * the key is deleted when the plugin is unloaded, so no destructor outlives it. */

typedef struct scratch {
    void *data;
    size_t size;
} scratch_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_key_ok;

static void scratch_free(void *p)
{
    scratch_t *s = p;
    free(s->data);
    free(s);
}

static void scratch_init(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

__attribute__((destructor)) static void scratch_fini(void)
{
    if (scratch_key_ok)
        pthread_key_delete(scratch_key);
    scratch_key_ok = false;
}

static void *scratch_get(size_t bytes)
{
    pthread_once(&scratch_once, scratch_init);
    if (!scratch_key_ok)
        return NULL;
    scratch_t *s = pthread_getspecific(scratch_key);
    if (s && s->size >= bytes)
        return s->data;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    size_t size = (size_t)round_up((int64_t)bytes, 4096);
    void *p = aligned_alloc(ALIGN, size);
    if (!p)
        return NULL;
    free(s->data);
    s->data = p;
    s->size = size;
    return p;
}

/* One thread's block of C: rows [m0, m1) x columns [n0, n1), the classic
 * five-loop Goto order with this thread's own packing buffers. */
static void gemm_block(const cpu_gemm_args_t *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                       float *pa, float *pb)
{
    for (int64_t jc = n0; jc < n1; jc += NC) {
        int64_t nc = min64(NC, n1 - jc);
        for (int64_t pc = 0; pc < g->K; pc += KC) {
            int64_t kc = min64(KC, g->K - pc);
            int add = pc > 0 || g->accumulate;
            if (g->b_trans)
                pack_b_t(g, jc, nc, pc, kc, pb);
            else
                pack_b(g, jc, nc, pc, kc, pb);
            for (int64_t ic = m0; ic < m1; ic += MC) {
                int64_t mc = min64(MC, m1 - ic);
                if (g->a_trans)
                    pack_a_t(g, ic, mc, pc, kc, pa);
                else
                    pack_a(g, ic, mc, pc, kc, pa);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    int64_t nr = min64(NR, nc - jr);
                    const float *bp = pb + jr * kc;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int64_t mr = min64(MR, mc - ir);
                        float *c = c_col(g, jc + jr) + ic + ir;
                        if (mr == MR && nr == NR)
                            ukernel(kc, pa + ir * kc, bp, c, g->c_col_bytes, add);
                        else
                            edge_tile(kc, pa + ir * kc, bp, c, g->c_col_bytes, add, mr, nr);
                    }
                }
            }
        }
    }
}

/* Threads form a tm x tn grid over C. Each thread packs the A rows and B columns
 * it needs, so the grid minimising the packed volume tm*N*K + tn*M*K is chosen
 * among those that give every thread at least one full tile. */
static void gemm_grid(int64_t M, int64_t N, int nth, int *tm, int *tn)
{
    double best = -1.0;
    *tm = 1;
    *tn = nth;
    for (int d = 1; d <= nth; d++) {
        if (nth % d)
            continue;
        int rows = nth / d;
        if ((M + rows - 1) / rows < MR && rows > 1)
            continue;
        if ((N + d - 1) / d < NR && d > 1)
            continue;
        double cost = (double)rows * (double)N + (double)d * (double)M;
        if (best < 0 || cost < best) {
            best = cost;
            *tm = rows;
            *tn = d;
        }
    }
}

static void range_of(int64_t total, int64_t unit, int parts, int idx, int64_t *lo, int64_t *hi)
{
    int64_t units = (total + unit - 1) / unit;
    int64_t per = (units + parts - 1) / parts;
    *lo = min64(total, (int64_t)idx * per * unit);
    *hi = min64(total, *lo + per * unit);
}

static void mul_mat_gemm(const cpu_gemm_args_t *g, int ith, int nth)
{
    int tm, tn;
    gemm_grid(g->M, g->N, nth, &tm, &tn);
    if (ith >= tm * tn)
        return;
    int64_t m0, m1, n0, n1;
    range_of(g->M, MR, tm, ith / tn, &m0, &m1);
    range_of(g->N, NR, tn, ith % tn, &n0, &n1);
    if (m0 >= m1 || n0 >= n1)
        return;

    int64_t kc = min64(KC, g->K);
    size_t a_floats = (size_t)round_up(min64(MC, m1 - m0), MR) * (size_t)kc;
    size_t b_floats = (size_t)round_up(min64(NC, n1 - n0), NR) * (size_t)kc;
    float *buf = scratch_get((a_floats + b_floats) * sizeof(float));
    if (!buf) {
        /* No scratch memory: the unpacked path still produces the right answer. */
        if (g->b_trans)
            naive_b_t(g, m0, m1, n0, n1);
        else
            mv_any(g, m0, m1, n0, n1);
        return;
    }
    gemm_block(g, m0, m1, n0, n1, buf, buf + a_floats);
}

void cpu_mul_mat_2d(const cpu_gemm_args_t *args, int ith, int nth)
{
    if (!args || nth < 1 || ith < 0 || ith >= nth || args->M <= 0 || args->N <= 0)
        return;
    if (args->K <= 0) {
        if (ith == 0 && !args->accumulate)
            for (int64_t n = 0; n < args->N; n++)
                memset(c_col(args, n), 0, (size_t)args->M * sizeof(float));
        return;
    }
    /* Transposed A has no dot-product form: few rows still go through the GEMM
     * (edge tiles), few columns through the axpy strips of mv_range_t. */
    if (!args->b_trans && (args->N < GEMM_MIN_N || (args->M < MR && !args->a_trans)))
        mul_mat_mv(args, ith, nth);
    else
        mul_mat_gemm(args, ith, nth);
}
