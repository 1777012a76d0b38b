/* The integer GEMM behind prompt-sized quantized products (qgemm.h): 32 weight rows
 * interleaved four bytes at a time so one vpdpbusd adds 4 products for 16 rows. */
#include "config.h"

#include <string.h>

#include "qgemm.h"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>
#define QG_VNNI 1
#endif

/* Every weight element is d[g] * v + m[b] (v int8, g its group of q->s8_group
 * elements, b its 32-element block). Activations are u = round(x / dx) + 128 per
 * 32-block, so one group's integer sum over a row and a column is
 *   sum(v * u) - 128 * sum(v) = sum(v * qx),
 * and the second term, fixed per row and group, starts the accumulator. The mins
 * add m[b] * dx * sum(qx), which the column keeps per block (s).
 *
 * Column layout: u8 u[K], float dx[K/32], float s[K/32].
 * Panel layout: v as [K/4][32 rows][4 bytes], then per group float d[32] and int32
 * corr[32] (-128 * sum(v)), then (types with mins) per block float m[32].
 *
 * 4-bit types (unpack_u4) keep their nibbles q instead, e = d[b] * (q - off) (+ m[b]),
 * so the unsigned operand of vpdpbusd is the weight and the column holds qx itself,
 * signed (s8 x[K], same dx and s): a block adds d * (dx * sum(q * qx) - off * s) (+ m *
 * s). Panel: per 8 elements k..k+7, 64 bytes for rows 0-15 then 64 for rows 16-31,
 * row r's dword holding q[k+j] in the low nibble of byte j and q[k+4+j] in the high
 * one; then per block f16 d[32] (and f16 m[32]): the bytes of the blocks themselves. */

#define QB 32

/* Repacked panels (repack.h) stream from memory once per product: a
 * prefetch this far ahead into L2 keeps enough lines in flight. Measured on the
 * 2-core EPYC, a 4-bit weight of 106M elements from DRAM: 1.4x (2 columns) to 1.3x
 * (8) faster than without, where the hardware prefetcher alone left a core at
 * 10 GB/s. */
#define QG_PREFETCH 32768

static size_t round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

static bool u4(const cpu_qtype_t *q)
{
    return q->unpack_u4 != NULL;
}

bool cpu_qgemm_ok(const cpu_qtype_t *q)
{
#if defined(QG_VNNI)
    return q && q->unpack_s8 && (q->s8_group == 16 || q->s8_group == 32);
#else
    (void)q;
    return false;
#endif
}

size_t cpu_qgemm_act_bytes(int64_t K)
{
    return round64((size_t)K + (size_t)(K / QB) * 2 * sizeof(float));
}

size_t cpu_qgemm_panel_bytes(const cpu_qtype_t *q, int64_t K)
{
    size_t groups = (size_t)(K / q->s8_group), blocks = (size_t)(K / QB);
    if (u4(q))
        return round64((size_t)K * CPU_QGEMM_MR / 2 + blocks * CPU_QGEMM_MR * (q->s8_min ? 4 : 2));
    return round64((size_t)K * CPU_QGEMM_MR + groups * CPU_QGEMM_MR * 8 +
                   (q->s8_min ? blocks * CPU_QGEMM_MR * 4 : 0));
}

size_t cpu_qgemm_tmp_bytes(int64_t K)
{
    return round64((size_t)K) + round64((size_t)(K / 16) * sizeof(float)) +
           round64((size_t)(K / QB) * sizeof(float));
}

#if defined(QG_VNNI)

void cpu_qgemm_quantize(const cpu_qtype_t *q, const float *x, void *col, int64_t K)
{
    uint8_t *u = col;
    float *dx = (float *)(void *)(u + K), *s = dx + K / QB;
    const __m128i bias = _mm_set1_epi8(u4(q) ? 0 : (char)0x80);
    for (int64_t b = 0; b < K / QB; b++, x += QB, u += QB) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(id)));
        __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(id)));
        _mm_storeu_si128((__m128i *)(void *)u, _mm_xor_si128(_mm512_cvtsepi32_epi8(q0), bias));
        _mm_storeu_si128((__m128i *)(void *)(u + 16),
                         _mm_xor_si128(_mm512_cvtsepi32_epi8(q1), bias));
        dx[b] = d;
        s[b] = d * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    }
}

static void pack_u4(const cpu_qtype_t *q, const char *w, size_t w_row, int rows, int64_t K,
                    void *panel, void *tmp)
{
    const int MR = CPU_QGEMM_MR;
    const int64_t blocks = K / QB;
    uint8_t *v = tmp;
    uint16_t *d = (uint16_t *)(void *)((char *)tmp + round64((size_t)K));
    uint16_t *m = d + blocks;
    uint8_t *pv = panel;
    uint16_t *pd = (uint16_t *)(void *)(pv + (size_t)K * MR / 2), *pm = pd + (size_t)blocks * MR;
    for (int r = 0; r < MR; r++) {
        if (r < rows) {
            q->unpack_u4(w + (size_t)r * w_row, K, v, d, q->s8_min ? m : NULL);
        } else {
            memset(v, 0, (size_t)K);
            memset(d, 0, (size_t)blocks * sizeof *d);
            memset(m, 0, (size_t)blocks * sizeof *m);
        }
        uint8_t *dst = pv + (r / 16) * 64 + (r % 16) * 4;
        for (int64_t k = 0; k < K; k += 8, dst += 8 * MR / 2)
            for (int j = 0; j < 4; j++)
                dst[j] = (uint8_t)(v[k + j] | v[k + 4 + j] << 4);
        for (int64_t b = 0; b < blocks; b++) {
            pd[b * MR + r] = d[b];
            if (q->s8_min)
                pm[b * MR + r] = m[b];
        }
    }
}

void cpu_qgemm_pack(const cpu_qtype_t *q, const char *w, size_t w_row, int rows, int64_t K,
                    void *panel, void *tmp)
{
    if (u4(q)) {
        pack_u4(q, w, w_row, rows, K, panel, tmp);
        return;
    }
    const int G = q->s8_group, MR = CPU_QGEMM_MR;
    const int64_t groups = K / G, blocks = K / QB;
    int8_t *v = tmp;
    float *d = (float *)(void *)((char *)tmp + round64((size_t)K));
    float *m = (float *)(void *)((char *)d + round64((size_t)(K / 16) * sizeof(float)));
    uint8_t *pv = panel;
    float *pd = (float *)(void *)(pv + (size_t)K * MR);
    int32_t *pc = (int32_t *)(void *)(pd + (size_t)groups * MR);
    float *pm = (float *)(void *)(pc + (size_t)groups * MR);
    for (int r = 0; r < MR; r++) {
        if (r < rows) {
            q->unpack_s8(w + (size_t)r * w_row, K, v, d, q->s8_min ? m : NULL);
        } else {
            memset(v, 0, (size_t)K);
            memset(d, 0, (size_t)groups * sizeof(float));
            memset(m, 0, (size_t)blocks * sizeof(float));
        }
        uint8_t *dst = pv + (size_t)r * 4;
        for (int64_t k = 0; k < K; k += 4, dst += 4 * MR)
            memcpy(dst, v + k, 4);
        for (int64_t g = 0; g < groups; g++) {
            __m512i s = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(v + g * G)));
            if (G == 32)
                s = _mm512_add_epi32(s, _mm512_cvtepi8_epi32(
                                            _mm_loadu_si128((const __m128i *)(const void *)(v + g * G + 16))));
            pd[g * MR + r] = d[g];
            pc[g * MR + r] = -128 * _mm512_reduce_add_epi32(s);
        }
        if (q->s8_min)
            for (int64_t b = 0; b < blocks; b++)
                pm[b * MR + r] = m[b];
    }
}

/* Column j's values, scales and sums (the column layout above). */
static inline __attribute__((always_inline)) void
qg_columns(int NC, const char *act, size_t act_col, int64_t K, const uint8_t *x[4],
           const float *xd[4], const float *xs[4])
{
    _Pragma("GCC unroll 8")
    for (int j = 0; j < NC; j++) {
        x[j] = (const uint8_t *)act + (size_t)j * act_col;
        xd[j] = (const float *)(const void *)(x[j] + K);
        xs[j] = xd[j] + K / QB;
    }
}

/* The mins' term of block b: m (rows 0-15, 16-31) times each column's sum s. */
static inline __attribute__((always_inline)) void
qg_mins(int NC, __m512 m0, __m512 m1, const float *xs[4], int64_t b, __m512 f0[4], __m512 f1[4])
{
    _Pragma("GCC unroll 8")
    for (int j = 0; j < NC; j++) {
        __m512 s = _mm512_set1_ps(xs[j][b]);
        f0[j] = _mm512_fmadd_ps(m0, s, f0[j]);
        f1[j] = _mm512_fmadd_ps(m1, s, f1[j]);
    }
}

/* 16 f16 values as f32. */
static inline __attribute__((always_inline)) __m512 qg_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}

/* C's rows [0, rows) of NC columns from two 16-row accumulators each. */
static inline __attribute__((always_inline)) void
qg_store(int NC, int rows, const __m512 f0[4], const __m512 f1[4], float *c, size_t c_col)
{
    __mmask16 k0 = rows >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rows) - 1);
    __mmask16 k1 = rows >= 32 ? (__mmask16)0xffff
                 : rows <= 16 ? 0 : (__mmask16)((1u << (rows - 16)) - 1);
    _Pragma("GCC unroll 8")
    for (int j = 0; j < NC; j++) {
        _mm512_mask_storeu_ps(c + (size_t)j * c_col, k0, f0[j]);
        _mm512_mask_storeu_ps(c + (size_t)j * c_col + 16, k1, f1[j]);
    }
}

/* NC columns (NC <= 4) against the 32 rows of a panel, over all of K. */
static inline __attribute__((always_inline)) void
qg_tile(int NC, int G, bool MIN, size_t ahead, const void *panel, int rows, int64_t K,
        const char *act, size_t act_col, float *c, size_t c_col)
{
    const int MR = CPU_QGEMM_MR;
    const int64_t groups = K / G, blocks = K / QB;
    const uint8_t *pv = panel;
    const float *pd = (const float *)(const void *)(pv + (size_t)K * MR);
    const int32_t *pc = (const int32_t *)(const void *)(pd + (size_t)groups * MR);
    const float *pm = (const float *)(const void *)(pc + (size_t)groups * MR);
    const uint8_t *x[4];
    const float *xd[4], *xs[4];
    qg_columns(NC, act, act_col, K, x, xd, xs);
    __m512 f0[4], f1[4];
    _Pragma("GCC unroll 8")
    for (int j = 0; j < NC; j++)
        f0[j] = f1[j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (int64_t b = 0; b < blocks; b++) {
        _Pragma("GCC unroll 8")
        for (int g = 0; g < QB / G; g++) {
            __m512i c0 = _mm512_loadu_si512(pc), c1 = _mm512_loadu_si512(pc + 16);
            __m512i a0[4], a1[4];
            _Pragma("GCC unroll 8")
            for (int j = 0; j < NC; j++) {
                a0[j] = c0;
                a1[j] = c1;
            }
            _Pragma("GCC unroll 8")
            for (int e = 0; e < G; e += 4, k += 4, pv += 4 * MR) {
                _mm_prefetch((const char *)pv + ahead, _MM_HINT_T1);
                _mm_prefetch((const char *)pv + ahead + 64, _MM_HINT_T1);
                __m512i w0 = _mm512_loadu_si512(pv), w1 = _mm512_loadu_si512(pv + 64);
                _Pragma("GCC unroll 8")
                for (int j = 0; j < NC; j++) {
                    int32_t xv;
                    memcpy(&xv, x[j] + k, 4);
                    __m512i xb = _mm512_set1_epi32(xv);
                    a0[j] = _mm512_dpbusd_epi32(a0[j], xb, w0);
                    a1[j] = _mm512_dpbusd_epi32(a1[j], xb, w1);
                }
            }
            __m512 d0 = _mm512_loadu_ps(pd), d1 = _mm512_loadu_ps(pd + 16);
            _Pragma("GCC unroll 8")
            for (int j = 0; j < NC; j++) {
                __m512 s = _mm512_set1_ps(xd[j][b]);
                f0[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a0[j]), _mm512_mul_ps(d0, s), f0[j]);
                f1[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a1[j]), _mm512_mul_ps(d1, s), f1[j]);
            }
            pd += MR;
            pc += MR;
        }
        if (MIN) {
            qg_mins(NC, _mm512_loadu_ps(pm), _mm512_loadu_ps(pm + 16), xs, b, f0, f1);
            pm += MR;
        }
    }
    qg_store(NC, rows, f0, f1, c, c_col);
}

/* The same over a 4-bit panel: nibbles split into two 16-row vectors of four
 * elements each, the weights the unsigned operand. */
static inline __attribute__((always_inline)) void
qg4_tile(int NC, bool MIN, float off, size_t ahead, const void *panel, int rows, int64_t K,
         const char *act, size_t act_col, float *c, size_t c_col)
{
    const int MR = CPU_QGEMM_MR;
    const int64_t blocks = K / QB;
    const uint8_t *pv = panel;
    const uint16_t *pd = (const uint16_t *)(const void *)(pv + (size_t)K * MR / 2);
    const uint16_t *pm = pd + (size_t)blocks * MR;
    const uint8_t *x[4];
    const float *xd[4], *xs[4];
    qg_columns(NC, act, act_col, K, x, xd, xs);
    const __m512i low = _mm512_set1_epi8(0x0f);
    __m512 f0[4], f1[4];
    _Pragma("GCC unroll 8")
    for (int j = 0; j < NC; j++)
        f0[j] = f1[j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (int64_t b = 0; b < blocks; b++) {
        __m512i a0[4], a1[4];
        _Pragma("GCC unroll 8")
        for (int j = 0; j < NC; j++)
            a0[j] = a1[j] = _mm512_setzero_si512();
        _Pragma("GCC unroll 4")
        for (int e = 0; e < QB; e += 8, k += 8, pv += 8 * MR / 2) {
            _mm_prefetch((const char *)pv + ahead, _MM_HINT_T1);
            _mm_prefetch((const char *)pv + ahead + 64, _MM_HINT_T1);
            __m512i z0 = _mm512_loadu_si512(pv), z1 = _mm512_loadu_si512(pv + 64);
            __m512i l0 = _mm512_and_si512(z0, low), l1 = _mm512_and_si512(z1, low);
            __m512i h0 = _mm512_and_si512(_mm512_srli_epi16(z0, 4), low);
            __m512i h1 = _mm512_and_si512(_mm512_srli_epi16(z1, 4), low);
            _Pragma("GCC unroll 8")
            for (int j = 0; j < NC; j++) {
                int32_t xl, xh;
                memcpy(&xl, x[j] + k, 4);
                memcpy(&xh, x[j] + k + 4, 4);
                __m512i bl = _mm512_set1_epi32(xl), bh = _mm512_set1_epi32(xh);
                a0[j] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(a0[j], l0, bl), h0, bh);
                a1[j] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(a1[j], l1, bl), h1, bh);
            }
        }
        __m512 d0 = qg_f16(pd), d1 = qg_f16(pd + 16);
        _Pragma("GCC unroll 8")
        for (int j = 0; j < NC; j++) {
            /* d * (dx * sum(q * qx) - off * s): dx * sum(qx) = s. */
            __m512 s = _mm512_set1_ps(xd[j][b]), os = _mm512_set1_ps(off * xs[j][b]);
            f0[j] = _mm512_fmadd_ps(d0, _mm512_fmsub_ps(_mm512_cvtepi32_ps(a0[j]), s, os), f0[j]);
            f1[j] = _mm512_fmadd_ps(d1, _mm512_fmsub_ps(_mm512_cvtepi32_ps(a1[j]), s, os), f1[j]);
        }
        if (MIN) {
            qg_mins(NC, qg_f16(pm), qg_f16(pm + 16), xs, b, f0, f1);
            pm += MR;
        }
        pd += MR;
    }
    qg_store(NC, rows, f0, f1, c, c_col);
}

/* The panel kind's tile for NC columns (U4: 4-bit, qg4_tile; else int8, qg_tile). */
static inline __attribute__((always_inline)) void
qg_cols(int NC, bool U4, int G, bool MIN, float off, size_t ahead, const void *panel, int rows,
        int64_t K, const char *act, size_t act_col, float *c, size_t c_col)
{
    if (U4)
        qg4_tile(NC, MIN, off, ahead, panel, rows, K, act, act_col, c, c_col);
    else
        qg_tile(NC, G, MIN, ahead, panel, rows, K, act, act_col, c, c_col);
}

/* All N columns, four at a time. */
static inline __attribute__((always_inline)) void
qg_all(bool U4, int G, bool MIN, float off, size_t ahead, const void *panel, int rows, int64_t K,
       const char *act, size_t act_col, int64_t N, float *c, size_t c_col)
{
    int64_t j = 0;
    for (; j + 4 <= N; j += 4)
        qg_cols(4, U4, G, MIN, off, ahead, panel, rows, K, act + (size_t)j * act_col, act_col,
                c + (size_t)j * c_col, c_col);
    const char *a = act + (size_t)j * act_col;
    float *cj = c + (size_t)j * c_col;
    switch (N - j) {
    case 3:
        qg_cols(3, U4, G, MIN, off, ahead, panel, rows, K, a, act_col, cj, c_col);
        break;
    case 2:
        qg_cols(2, U4, G, MIN, off, ahead, panel, rows, K, a, act_col, cj, c_col);
        break;
    case 1:
        qg_cols(1, U4, G, MIN, off, ahead, panel, rows, K, a, act_col, cj, c_col);
        break;
    default:
        break;
    }
}

void cpu_qgemm_run(const cpu_qtype_t *q, const void *panel, int rows, int64_t K,
                   const char *act, size_t act_col, int64_t N, float *c, size_t c_col,
                   bool streamed)
{
    /* A scratch panel, packed just now, is in cache; prefetching past it only
     * evicts (ahead 0: the line being loaded anyway). */
    const size_t ahead = streamed ? QG_PREFETCH : 0;
    const float off = (float)q->u4_offset;
    if (u4(q) && q->s8_min)
        qg_all(true, 32, true, off, ahead, panel, rows, K, act, act_col, N, c, c_col);
    else if (u4(q))
        qg_all(true, 32, false, off, ahead, panel, rows, K, act, act_col, N, c, c_col);
    else if (q->s8_group == 16)
        qg_all(false, 16, false, 0.0f, ahead, panel, rows, K, act, act_col, N, c, c_col);
    else if (q->s8_min)
        qg_all(false, 32, true, 0.0f, ahead, panel, rows, K, act, act_col, N, c, c_col);
    else
        qg_all(false, 32, false, 0.0f, ahead, panel, rows, K, act, act_col, N, c, c_col);
}

#else

void cpu_qgemm_quantize(const cpu_qtype_t *q, const float *x, void *col, int64_t K)
{
    (void)q, (void)x, (void)col, (void)K;
}

void cpu_qgemm_pack(const cpu_qtype_t *q, const char *w, size_t w_row, int rows, int64_t K,
                    void *panel, void *tmp)
{
    (void)q, (void)w, (void)w_row, (void)rows, (void)K, (void)panel, (void)tmp;
}

void cpu_qgemm_run(const cpu_qtype_t *q, const void *panel, int rows, int64_t K,
                   const char *act, size_t act_col, int64_t N, float *c, size_t c_col,
                   bool streamed)
{
    (void)q, (void)panel, (void)rows, (void)K, (void)act, (void)act_col, (void)N, (void)c,
        (void)c_col, (void)streamed;
}

#endif
