/* Checks every ISA build of the CPU backend's q4_k, q5_k, q6_k and nf4 kernels
 * against scalar references written here from ggml's documented block layouts. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/registry.h>
#include <slmops/types.h>

#include "plugins/backend-cpu/quant.h"

/* quant-k.c and quant-nf4.c are compiled once per ISA with their table entries
 * renamed (tests/cpu/local.mk), so every build links into this one program. */
#define KQ_DECLARE(v)                                                                              \
    extern const cpu_qtype_t kq_##v##_q4_k, kq_##v##_q5_k, kq_##v##_q6_k, kq_##v##_nf4;
KQ_DECLARE(scalar)
#ifdef KQ_HAVE_AVX2
KQ_DECLARE(avx2)
#endif
#ifdef KQ_HAVE_AVX512
KQ_DECLARE(avx512)
#endif
#ifdef KQ_HAVE_AVX512VNNI
KQ_DECLARE(avx512vnni)
#endif

#define QK_K 256
#define N_TYPES 4

typedef struct variant {
    const char *name;
    const cpu_qtype_t *types[N_TYPES];
    const char *features[9];
} variant_t;

#define AVX512_FEATURES "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx2", "fma", "f16c"
#define KQ_TYPES(v)                                                                                \
    {                                                                                              \
        &kq_##v##_q4_k, &kq_##v##_q5_k, &kq_##v##_q6_k, &kq_##v##_nf4                              \
    }
static const variant_t variants[] = {
    {"scalar", KQ_TYPES(scalar), {NULL}},
#ifdef KQ_HAVE_AVX2
    {"avx2", KQ_TYPES(avx2), {"avx2", "fma", "f16c", NULL}},
#endif
#ifdef KQ_HAVE_AVX512
    {"avx512", KQ_TYPES(avx512), {AVX512_FEATURES, NULL}},
#endif
#ifdef KQ_HAVE_AVX512VNNI
    {"avx512vnni", KQ_TYPES(avx512vnni), {AVX512_FEATURES, "avx512_vnni", NULL}},
#endif
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

static const variant_t *cur_v;
static const cpu_qtype_t *cur;

/* Loop index = variant * N_TYPES + type. */
static void select_case(int i)
{
    cur_v = &variants[i / N_TYPES];
    cur = cur_v->types[i % N_TYPES];
}

static uint32_t rng_state;

static uint32_t rnd_u32(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static float rnd(void)
{
    return (float)rnd_u32() / (float)(1u << 24) * 2.0f - 1.0f;
}

static float rnd_normal(void)
{
    float u1 = ((float)rnd_u32() + 1.0f) / (float)(1u << 24),
          u2 = (float)rnd_u32() / (float)(1u << 24);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

/* ---- scalar references, straight from ggml's layouts (ggml-common.h) ---- */

static float h2f(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return slm_f16_to_f32(h);
}

static void scale_min_k4(int j, const uint8_t *q, int *d, int *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* block_q4_K: d, dmin (f16), scales[12], qs[128]. */
static void ref_dequant_q4_k(const uint8_t *b, float *y)
{
    const float d = h2f(b), min = h2f(b + 2);
    const uint8_t *scales = b + 4, *q = b + 16;
    for (int j = 0; j < QK_K; j += 64, q += 32) {
        int sc, m;
        scale_min_k4(j / 32, scales, &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        scale_min_k4(j / 32 + 1, scales, &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * (q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * (q[l] >> 4) - m2;
    }
}

/* block_q5_K: d, dmin, scales[12], qh[32], qs[128]. */
static void ref_dequant_q5_k(const uint8_t *b, float *y)
{
    const float d = h2f(b), min = h2f(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < QK_K; j += 64, ql += 32, u1 <<= 2, u2 <<= 2) {
        int sc, m;
        scale_min_k4(j / 32, scales, &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        scale_min_k4(j / 32 + 1, scales, &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
}

/* block_q6_K: ql[128], qh[64], scales[16] (int8), d. */
static void ref_dequant_q6_k(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = h2f(b + 208);
    for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            const int8_t q1 = (int8_t)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int8_t q3 = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l + 0] = d * sc[is + 0] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
    }
}

static const float nf4_table[16] = {
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

/* nf4 (docs/quantization.md): d (f16), qs[32]: low nibble of byte l is element l,
 * high nibble element l + 32. */
static void ref_dequant_nf4(const uint8_t *b, float *y)
{
    const float d = h2f(b);
    for (int l = 0; l < 32; l++) {
        y[l] = nf4_table[b[2 + l] & 0xF] * d;
        y[l + 32] = nf4_table[b[2 + l] >> 4] * d;
    }
}

typedef void (*ref_dequant_fn)(const uint8_t *b, float *y);

typedef struct type_ref {
    int type;
    int block;
    size_t bytes;
    ref_dequant_fn dequant;
    size_t d_offset[2]; /* where the block's f16 scales are (SIZE_MAX: none) */
} type_ref_t;

static const type_ref_t refs[N_TYPES] = {
    {SLM_TYPE_Q4_K, QK_K, 144, ref_dequant_q4_k, {0, 2}},
    {SLM_TYPE_Q5_K, QK_K, 176, ref_dequant_q5_k, {0, 2}},
    {SLM_TYPE_Q6_K, QK_K, 210, ref_dequant_q6_k, {208, SIZE_MAX}},
    {CPU_TYPE_NF4, 64, 34, ref_dequant_nf4, {0, SIZE_MAX}},
};

static const type_ref_t *ref_of(const cpu_qtype_t *q)
{
    for (int t = 0; t < N_TYPES; t++)
        if (refs[t].type == q->type)
            return &refs[t];
    return NULL;
}

/* ggml's quantize_row_q8_K_ref: d, qs[256], bsums[16]. */
static void ref_quant_q8_k(const float *x, uint8_t *b)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK_K; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    memset(b, 0, 292);
    if (amax == 0.0f)
        return;
    const float iscale = -127.f / max;
    int8_t *qs = (int8_t *)(b + 4);
    for (int j = 0; j < QK_K; j++) {
        int v = (int)nearbyintf(iscale * x[j]);
        qs[j] = (int8_t)(v < 127 ? v : 127);
    }
    for (int g = 0; g < 16; g++) {
        int16_t s = 0;
        for (int l = 0; l < 16; l++)
            s = (int16_t)(s + qs[16 * g + l]);
        memcpy(b + 260 + 2 * g, &s, 2);
    }
    const float d = 1 / iscale;
    memcpy(b, &d, 4);
}

/* Activations as the kernel sees them: q8_K dequantized, or the f32 input. */
static void ref_act_values(const cpu_qtype_t *q, const void *act, int64_t k, float *out)
{
    if (q->act_type == SLM_TYPE_F32) {
        memcpy(out, act, (size_t)k * sizeof(float));
        return;
    }
    ck_assert_int_eq(q->act_type, SLM_TYPE_Q8_K);
    for (int64_t i = 0; i < k / QK_K; i++) {
        const uint8_t *b = (const uint8_t *)act + i * 292;
        float d;
        memcpy(&d, b, 4);
        for (int j = 0; j < QK_K; j++)
            out[i * QK_K + j] = d * (float)(int8_t)b[4 + j];
    }
}

/* Random blocks: every bit pattern of the quants and 6-bit scales is a valid
 * block, so random bytes cover them all; the f16 scales are kept finite. */
static void random_blocks(const type_ref_t *t, uint8_t *dst, int64_t nblocks)
{
    for (int64_t i = 0; i < nblocks; i++) {
        uint8_t *b = dst + i * t->bytes;
        for (size_t j = 0; j < t->bytes; j++)
            b[j] = (uint8_t)rnd_u32();
        for (int s = 0; s < 2; s++) {
            if (t->d_offset[s] == SIZE_MAX)
                continue;
            uint16_t h = slm_f32_to_f16((0.001f + fabsf(rnd())) * 0.05f);
            memcpy(b + t->d_offset[s], &h, 2);
        }
    }
}

/* One weight matrix (rows x k) and activation columns (k x cols), converted. */
typedef struct problem {
    int64_t k, rows, cols;
    size_t w_row_bytes, a_col_bytes;
    uint8_t *w;
    float *x;    /* activations, f32 */
    uint8_t *a;  /* converted activations */
    double *ref; /* ref[j * rows + i] = dequant(w_i) . dequant(a_j) */
    double *mag; /* sum |w a|: the scale of rounding */
} problem_t;

static void problem_init(problem_t *p, int64_t k, int64_t rows, int64_t cols, uint32_t seed)
{
    const type_ref_t *t = ref_of(cur);
    ck_assert_ptr_nonnull(t);
    rng_state = seed;
    p->k = k;
    p->rows = rows;
    p->cols = cols;
    /* padded rows and columns: kernels must honour the strides */
    p->w_row_bytes = (size_t)(k / t->block) * t->bytes + 6;
    p->a_col_bytes = (size_t)(k / cur->act_block) * cur->act_block_bytes + 64;
    p->w = malloc(p->w_row_bytes * (size_t)rows);
    p->x = malloc((size_t)(k * cols) * sizeof(float));
    p->a = calloc((size_t)cols, p->a_col_bytes);
    p->ref = calloc((size_t)(rows * cols), sizeof(double));
    p->mag = calloc((size_t)(rows * cols), sizeof(double));
    float *wv = malloc((size_t)k * sizeof(float)), *av = malloc((size_t)(k * cols) * sizeof(float));
    ck_assert(p->w && p->x && p->a && p->ref && p->mag && wv && av);
    for (int64_t i = 0; i < rows; i++)
        random_blocks(t, p->w + (size_t)i * p->w_row_bytes, k / t->block);
    for (int64_t j = 0; j < k * cols; j++)
        p->x[j] = rnd_normal();
    for (int64_t j = 0; j < cols; j++) {
        uint8_t *col = p->a + (size_t)j * p->a_col_bytes;
        cur->quantize_act(p->x + j * k, col, k);
        ref_act_values(cur, col, k, av + j * k);
    }
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t b = 0; b < k / t->block; b++)
            t->dequant(p->w + (size_t)i * p->w_row_bytes + (size_t)b * t->bytes, wv + b * t->block);
        for (int64_t j = 0; j < cols; j++) {
            double s = 0, g = 0;
            for (int64_t e = 0; e < k; e++) {
                double prod = (double)wv[e] * (double)av[j * k + e];
                s += prod;
                g += fabs(prod);
            }
            p->ref[j * rows + i] = s;
            p->mag[j * rows + i] = g;
        }
    }
    free(wv);
    free(av);
}

static void problem_free(problem_t *p)
{
    free(p->w);
    free(p->x);
    free(p->a);
    free(p->ref);
    free(p->mag);
}

static void check_dot(const problem_t *p, int64_t i, int64_t j, float got, const char *what)
{
    double want = p->ref[j * p->rows + i];
    double tol = 1e-4 * p->mag[j * p->rows + i] + 1e-6;
    if (!(fabs(got - want) <= tol))
        ck_abort_msg("%s %s %s k=%lld row %lld col %lld: %.9g, want %.9g (tol %.3g)", cur_v->name,
                     cur->name, what, (long long)p->k, (long long)i, (long long)j, got, want, tol);
}

/* The table entry describes the block layout the references assume. */
START_TEST(test_layout)
{
    select_case(_i);
    const type_ref_t *t = ref_of(cur);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(cur->block, t->block);
    ck_assert_uint_eq(cur->block_bytes, t->bytes);
    ck_assert_int_eq(t->block % cur->act_block, 0);
    if (cur->act_type == SLM_TYPE_Q8_K) {
        ck_assert_int_eq(cur->act_block, QK_K);
        ck_assert_uint_eq(cur->act_block_bytes, 292);
    } else {
        ck_assert_int_eq(cur->act_type, SLM_TYPE_F32);
        ck_assert_uint_eq(cur->act_block_bytes, (size_t)cur->act_block * sizeof(float));
    }
    ck_assert_ptr_nonnull(cur->quantize_act);
    ck_assert_ptr_nonnull(cur->vec_dot);
    ck_assert_ptr_nonnull(cur->dequantize_row);
}
END_TEST

/* Activations convert to exactly ggml's q8_K bytes (d, quants, group sums). */
START_TEST(test_quantize_act)
{
    select_case(_i);
    if (cur->act_type != SLM_TYPE_Q8_K)
        return;
    rng_state = 99;
    enum { NB = 5 };
    float x[NB * QK_K];
    for (int j = 0; j < NB * QK_K; j++)
        x[j] = rnd_normal() * (j < QK_K ? 1e-3f : 3.0f);
    /* block 2 all zero, block 3 with a tie between +max and -max */
    memset(x + 2 * QK_K, 0, QK_K * sizeof(float));
    x[3 * QK_K + 7] = 9.0f;
    x[3 * QK_K + 100] = -9.0f;
    uint8_t got[NB * 292], want[NB * 292];
    memset(got, 0xAB, sizeof got);
    cur->quantize_act(x, got, NB * QK_K);
    for (int b = 0; b < NB; b++)
        ref_quant_q8_k(x + b * QK_K, want + b * 292);
    for (int b = 0; b < NB; b++)
        if (memcmp(got + b * 292, want + b * 292, 292) != 0)
            ck_abort_msg("%s %s: q8_K block %d differs from ggml's", cur_v->name, cur->name, b);
}
END_TEST

/* dequantize_row matches the layout reference bit for bit, over odd block counts. */
START_TEST(test_dequantize)
{
    select_case(_i);
    const type_ref_t *t = ref_of(cur);
    rng_state = 7 + (uint32_t)_i;
    enum { NB = 7 };
    uint8_t *w = malloc(NB * t->bytes);
    float *got = malloc(NB * (size_t)t->block * sizeof(float));
    float *want = malloc(NB * (size_t)t->block * sizeof(float));
    ck_assert(w && got && want);
    for (int rep = 0; rep < 20; rep++) {
        random_blocks(t, w, NB);
        for (int n = 1; n <= NB; n += 3) {
            memset(got, 0, NB * (size_t)t->block * sizeof(float));
            cur->dequantize_row(w, got, n * t->block);
            for (int b = 0; b < n; b++)
                t->dequant(w + b * t->bytes, want + b * t->block);
            for (int e = 0; e < n * t->block; e++) {
                uint32_t gb, wb;
                memcpy(&gb, &got[e], 4);
                memcpy(&wb, &want[e], 4);
                if (gb != wb)
                    ck_abort_msg("%s %s: element %d of %d blocks is %.9g, want %.9g", cur_v->name,
                                 cur->name, e, n, got[e], want[e]);
            }
        }
    }
    free(w);
    free(got);
    free(want);
}
END_TEST

/* vec_dot over odd row counts and several lengths agrees with the scalar
 * dequantize(w) . dequantize(quantize_act(a)) within 1e-4 of sum |w a|. */
START_TEST(test_vec_dot)
{
    select_case(_i);
    static const int64_t blocks[] = {1, 2, 3, 6};
    for (size_t s = 0; s < sizeof blocks / sizeof blocks[0]; s++) {
        problem_t p;
        problem_init(&p, blocks[s] * QK_K, 7, 3, 11u + (uint32_t)s);
        for (int64_t j = 0; j < p.cols; j++)
            for (int64_t i = 0; i < p.rows; i++)
                check_dot(&p, i, j,
                          cur->vec_dot(p.k, p.w + (size_t)i * p.w_row_bytes,
                                       p.a + (size_t)j * p.a_col_bytes),
                          "vec_dot");
        problem_free(&p);
    }
}
END_TEST

/* dot_tile (where the build has one) fills exactly its nr x nc outputs. */
START_TEST(test_dot_tile)
{
    select_case(_i);
    if (!cur->dot_tile)
        return;
    problem_t p;
    problem_init(&p, 3 * QK_K, 5, 5, 29u);
    enum { C_COL = 9 };
    const float canary = -4242.0f;
    float c[5 * C_COL];
    for (int nr = 1; nr <= 4; nr++)
        for (int nc = 1; nc <= 4; nc++)
            for (int off = 0; off + nr <= p.rows && off + nc <= p.cols; off += 1 + (nr + nc) % 2) {
                for (int e = 0; e < 5 * C_COL; e++)
                    c[e] = canary;
                cur->dot_tile(p.k, p.w + (size_t)off * p.w_row_bytes, p.w_row_bytes,
                              p.a + (size_t)off * p.a_col_bytes, p.a_col_bytes, c, C_COL, nr, nc);
                for (int j = 0; j < 5; j++)
                    for (int i = 0; i < C_COL; i++) {
                        float got = c[j * C_COL + i];
                        if (j < nc && i < nr)
                            check_dot(&p, off + i, off + j, got, "dot_tile");
                        else if (got != canary)
                            ck_abort_msg("%s %s dot_tile %dx%d wrote (%d,%d)", cur_v->name,
                                         cur->name, nr, nc, i, j);
                    }
            }
    problem_free(&p);
}
END_TEST

static bool cpu_can_run(const variant_t *v, const char **missing)
{
    for (int i = 0; v->features[i]; i++) {
        if (!slm_cpu_has_feature(v->features[i])) {
            *missing = v->features[i];
            return false;
        }
    }
    return true;
}

static Suite *kquants_suite(void)
{
    Suite *s = suite_create("cpu-kquants");
    for (size_t v = 0; v < N_VARIANTS; v++) {
        const char *missing = NULL;
        if (!cpu_can_run(&variants[v], &missing)) {
            printf("SKIP: %s kernels: this CPU lacks %s\n", variants[v].name, missing);
            continue;
        }
        TCase *tc = tcase_create(variants[v].name);
        tcase_set_timeout(tc, 300);
        int first = (int)v * N_TYPES, last = first + N_TYPES;
        tcase_add_loop_test(tc, test_layout, first, last);
        tcase_add_loop_test(tc, test_quantize_act, first, last);
        tcase_add_loop_test(tc, test_dequantize, first, last);
        tcase_add_loop_test(tc, test_vec_dot, first, last);
        tcase_add_loop_test(tc, test_dot_tile, first, last);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(kquants_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
