/* Quantized-weight kernels of one CPU backend variant, loaded from its .so: MUL_MAT
 * against an independent integer reference, GET_ROWS against dequantization. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/ops.h>
#include <slmops/types.h>

#include "backend-harness.h"

#ifndef CPU_TEST_VARIANT
#error "CPU_TEST_VARIANT names the variant under test"
#endif

/* ---- GGUF's legacy blocks, written out independently of the backend ---- */

typedef struct qinfo {
    int type;
    const char *name;
    size_t bytes;      /* per 32-element block */
} qinfo_t;

static const qinfo_t qtypes[] = {
    {SLM_TYPE_Q4_0, "q4_0", 18}, {SLM_TYPE_Q4_1, "q4_1", 20}, {SLM_TYPE_Q5_0, "q5_0", 22},
    {SLM_TYPE_Q5_1, "q5_1", 24}, {SLM_TYPE_Q8_0, "q8_0", 34},
};
#define N_QTYPES (int)(sizeof qtypes / sizeof qtypes[0])

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint32_t rnd32(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 32);
}

static float rndf(float lo, float hi)
{
    return lo + (hi - lo) * (float)(rnd32() >> 8) / 16777216.0f;
}

static void put16(uint8_t *p, float v)
{
    uint16_t h = slm_f32_to_f16(v);
    memcpy(p, &h, 2);
}

static float get16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return slm_f16_to_f32(h);
}

/* Random blocks: every bit pattern of qs/qh is legal; scales of either sign. */
static void random_blocks(const qinfo_t *q, uint8_t *dst, int64_t nblocks)
{
    for (int64_t b = 0; b < nblocks; b++, dst += q->bytes) {
        for (size_t i = 0; i < q->bytes; i++)
            dst[i] = (uint8_t)rnd32();
        put16(dst, rndf(-0.05f, 0.05f));
        if (q->type == SLM_TYPE_Q4_1 || q->type == SLM_TYPE_Q5_1)
            put16(dst + 2, rndf(-0.5f, 0.5f));
    }
}

/* Element values of one block, as GGUF defines them (double: exact). */
static void block_values(const qinfo_t *q, const uint8_t *blk, double v[32])
{
    double d = get16(blk);
    if (q->type == SLM_TYPE_Q8_0) {
        for (int i = 0; i < 32; i++)
            v[i] = d * (int8_t)blk[2 + i];
        return;
    }
    bool min = q->type == SLM_TYPE_Q4_1 || q->type == SLM_TYPE_Q5_1;
    bool five = q->type == SLM_TYPE_Q5_0 || q->type == SLM_TYPE_Q5_1;
    size_t qs = q->type == SLM_TYPE_Q4_0 ? 2 : q->type == SLM_TYPE_Q4_1 ? 4 : q->type == SLM_TYPE_Q5_0 ? 6 : 8;
    uint32_t qh = 0;
    if (five)
        memcpy(&qh, blk + (min ? 4 : 2), 4);
    double m = min ? get16(blk + 2) : 0.0;
    int off = min ? 0 : five ? 16 : 8;
    for (int i = 0; i < 16; i++) {
        int lo = (blk[qs + i] & 15) | (int)(((qh >> i) & 1) << 4);
        int hi = (blk[qs + i] >> 4) | (int)(((qh >> (i + 16)) & 1) << 4);
        v[i] = d * (lo - off) + m;
        v[i + 16] = d * (hi - off) + m;
    }
}

/* Activations as the kernels see them: int8 blocks of 32, d = amax / 127,
 * rounded to nearest even. */
static void quantize_act(const float *x, double *xq, int64_t k)
{
    for (int64_t b = 0; b < k; b += 32) {
        float amax = 0.0f;
        for (int i = 0; i < 32; i++)
            amax = fmaxf(amax, fabsf(x[b + i]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int i = 0; i < 32; i++) {
            float scaled = x[b + i] * id;
            xq[b + i] = (double)d * nearbyintf(scaled);
        }
    }
}

/* ---- tensors in the backend's buffers ---- */

/* A quantized matrix of ne0 x ne1 x ne2, packed, filled with random blocks. */
static slm_tensor_desc_t q_tensor(const qinfo_t *q, int64_t ne0, int64_t ne1, int64_t ne2)
{
    slm_tensor_desc_t t = {.type = q->type, .ne = {ne0, ne1, ne2, 1}};
    t.nb[0] = (int64_t)q->bytes;
    t.nb[1] = ne0 / 32 * (int64_t)q->bytes;
    t.nb[2] = t.nb[1] * ne1;
    t.nb[3] = t.nb[2] * ne2;
    void *base = NULL;
    /* Exactly the tensor's bytes: a read past the end shows up under ASan/valgrind
     * and in the extent check of graph_compute. */
    ck_assert_int_eq(h_iface->buffer_alloc(h_dev, (uint64_t)t.nb[3], &t.buffer, &base), SLM_OK);
    t.data = base;
    random_blocks(q, base, ne0 / 32 * ne1 * ne2);
    return t;
}

static const uint8_t *q_row(const slm_tensor_desc_t *t, int64_t i1, int64_t i2)
{
    return (const uint8_t *)t->data + i1 * t->nb[1] + i2 * t->nb[2];
}

static void q_free(slm_tensor_desc_t *t)
{
    h_iface->buffer_free(h_dev, t->buffer);
}

/* ---- MUL_MAT ---- */

/* C = A·B of the device open now (A's blocks random), checked against the reference. */
static void expect_product(const qinfo_t *q, const slm_tensor_desc_t *A, int64_t N, int64_t b2,
                           int b_layout, int d_layout);

static void check_mul_mat(const qinfo_t *q, int64_t K, int64_t M, int64_t N, int64_t a2,
                          int64_t b2, int b_layout, int d_layout, int threads)
{
    h_open(threads);
    slm_tensor_desc_t A = q_tensor(q, K, M, a2);
    expect_product(q, &A, N, b2, b_layout, d_layout);
    q_free(&A);
    h_close();
}

static void expect_product(const qinfo_t *q, const slm_tensor_desc_t *Ap, int64_t N, int64_t b2,
                           int b_layout, int d_layout)
{
    slm_tensor_desc_t A = *Ap;
    int64_t K = A.ne[0], M = A.ne[1], a2 = A.ne[2];
    slm_tensor_desc_t B = h_tensor(SLM_TYPE_F32, K, N, b2, 1, b_layout);
    slm_tensor_desc_t D = h_tensor(SLM_TYPE_F32, M, N, b2, 1, d_layout);
    h_fill(&B, -1.0f, 1.0f);
    slm_tensor_desc_t src[2] = {A, B};
    slm_node_t node = h_node(SLM_OP_MUL_MAT, D, 2, src);
    ck_assert_int_eq(h_run(&node), SLM_OK);

    float *x = malloc((size_t)K * sizeof *x);
    double *xq = malloc((size_t)K * sizeof *xq), w[32];
    for (int64_t i2 = 0; i2 < b2; i2++) {
        int64_t ai2 = i2 / (b2 / a2);
        for (int64_t n = 0; n < N; n++) {
            for (int64_t k = 0; k < K; k++)
                x[k] = h_get(&B, k, n, i2, 0);
            quantize_act(x, xq, K);
            /* Prompt-sized products (>= 16 packed columns) expand the weights and
             * keep the activations in f32; smaller ones quantize the activations, and
             * so does the VNNI variant's integer GEMM (qgemm.c) for every size. */
            if (N >= 16 && b_layout == H_CONTIG && d_layout == H_CONTIG &&
                strcmp(CPU_TEST_VARIANT, "cpu-avx512-vnni") != 0)
                for (int64_t k = 0; k < K; k++)
                    xq[k] = x[k];
            for (int64_t m = 0; m < M; m++) {
                double want = 0.0, mag = 0.0;
                const uint8_t *row = q_row(&A, m, ai2);
                for (int64_t b = 0; b < K / 32; b++) {
                    block_values(q, row + b * (int64_t)q->bytes, w);
                    for (int i = 0; i < 32; i++) {
                        want += w[i] * xq[b * 32 + i];
                        mag += fabs(w[i] * xq[b * 32 + i]);
                    }
                }
                float got = h_get(&D, m, n, i2, 0);
                double err = fabs((double)got - want);
                ck_assert_msg(err <= 1e-4 * mag + 1e-30,
                              "%s K=%lld M=%lld N=%lld: C[%lld,%lld,%lld] = %.9g, want %.9g "
                              "(err %.3g, scale %.3g)", q->name, (long long)K, (long long)M,
                              (long long)N, (long long)m, (long long)n, (long long)i2,
                              (double)got, want, err, mag);
            }
        }
    }
    free(x);
    free(xq);
}

/* Decode shapes (N = 1), one and three blocks, a K past the kernels' 64-block
 * segments, rows that are not a multiple of the 4-row tile. */
START_TEST(mul_mat_vector)
{
    const qinfo_t *q = &qtypes[_i];
    check_mul_mat(q, 32, 5, 1, 1, 1, H_CONTIG, H_CONTIG, 1);
    check_mul_mat(q, 96, 13, 1, 1, 1, H_CONTIG, H_CONTIG, 2);
    check_mul_mat(q, 2080, 9, 1, 1, 1, H_CONTIG, H_CONTIG, 3);
    check_mul_mat(q, 576, 67, 1, 1, 1, H_CONTIG, H_CONTIG, 2);
}
END_TEST

/* Decode's threads finish each other's shares (D57), so who reads a row depends on
 * timing: every row must be written and get the same value, bit for bit, whatever
 * the thread count (9: more threads than shares). K with a partial last step. */
START_TEST(mul_mat_vector_threads)
{
    const qinfo_t *q = &qtypes[_i];
    const int counts[] = {1, 2, 3, 8, 9};
    enum { K = 576, M = 1037 };
    static float ref[M];
    for (int ci = 0; ci < 5; ci++) {
        h_open(counts[ci]);
        rng = 0x243f6a8885a308d3ull;   /* the same blocks every time */
        slm_tensor_desc_t A = q_tensor(q, K, M, 1);
        slm_tensor_desc_t B = h_tensor(SLM_TYPE_F32, K, 1, 1, 1, H_CONTIG);
        slm_tensor_desc_t D = h_tensor(SLM_TYPE_F32, M, 1, 1, 1, H_CONTIG);
        for (int64_t k = 0; k < K; k++)
            h_set(&B, k, 0, 0, 0, (float)((k * 13) % 17) / 9.0f - 0.9f);
        for (int64_t m = 0; m < M; m++)
            h_set(&D, m, 0, 0, 0, NAN);
        slm_node_t node = h_node(SLM_OP_MUL_MAT, D, 2, (slm_tensor_desc_t[]){A, B});
        ck_assert_int_eq(h_run(&node), SLM_OK);
        for (int64_t m = 0; m < M; m++) {
            float got = h_get(&D, m, 0, 0, 0);
            ck_assert_msg(!isnan(got), "%s, %d threads: row %lld not written", q->name,
                          counts[ci], (long long)m);
            if (ci == 0)
                ref[m] = got;
            else
                ck_assert_msg(got == ref[m], "%s, %d threads: row %lld = %.9g, 1 thread %.9g",
                              q->name, counts[ci], (long long)m, (double)got, (double)ref[m]);
        }
        q_free(&A);
        h_close();
    }
}
END_TEST

/* Prompt shapes: 4 x 4 tiles with ragged edges on both sides. */
START_TEST(mul_mat_matrix)
{
    const qinfo_t *q = &qtypes[_i];
    check_mul_mat(q, 64, 7, 5, 1, 1, H_CONTIG, H_CONTIG, 1);
    check_mul_mat(q, 160, 18, 19, 1, 1, H_CONTIG, H_CONTIG, 2);
    check_mul_mat(q, 288, 33, 70, 1, 1, H_CONTIG, H_CONTIG, 3);
    check_mul_mat(q, 2112, 6, 3, 1, 1, H_CONTIG, H_CONTIG, 2);
}
END_TEST

/* One weight matrix per group of B slices, strided B and C, few rows. */
START_TEST(mul_mat_broadcast)
{
    const qinfo_t *q = &qtypes[_i];
    check_mul_mat(q, 64, 5, 3, 2, 4, H_CONTIG, H_CONTIG, 3);
    check_mul_mat(q, 96, 6, 2, 1, 3, H_GAPS, H_GAPS, 2);
    check_mul_mat(q, 32, 2, 9, 1, 1, H_CONTIG, H_GAPS, 3);
}
END_TEST

/* A device that repacks weights (SLM_DEVICE_CONFIG_REPACK) gives the same products,
 * packed on the first one with several columns and used by the next; one vector
 * product between them reads the weight as it is. The VNNI variant must say that
 * it repacked (the others have no integer GEMM and keep the weights as they are). */
START_TEST(mul_mat_repacked)
{
    const qinfo_t *q = &qtypes[_i];
    static const struct {
        int64_t K, M, N;
        int threads;
    } shapes[] = {{64, 37, 2, 1}, {576, 70, 5, 2}, {576, 33, 1, 2}, {96, 64, 8, 3},
                  {160, 45, 16, 2}, {64, 31, 33, 2}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        h_open_flags(shapes[i].threads, SLM_DEVICE_CONFIG_REPACK);
        slm_tensor_desc_t A = q_tensor(q, shapes[i].K, shapes[i].M, 1);
        expect_product(q, &A, shapes[i].N, 1, H_CONTIG, H_CONTIG);
        expect_product(q, &A, 1, 1, H_CONTIG, H_CONTIG);
        expect_product(q, &A, shapes[i].N, 1, H_CONTIG, shapes[i].N > 4 ? H_GAPS : H_CONTIG);
        q_free(&A);
        h_close();
    }
    if (strcmp(CPU_TEST_VARIANT, "cpu-avx512-vnni") == 0)
        ck_assert_msg(h_logged("repacked a 37 x 64"), "no weight was repacked");
}
END_TEST

/* The copies follow the weights: new blocks written with buffer_set or
 * buffer_clear, and a weight freed and another allocated (likely at the same
 * address, under the same handle), all give products of the new values. */
START_TEST(repacked_weights_follow_writes)
{
    const qinfo_t *q = &qtypes[_i];
    h_open_flags(2, SLM_DEVICE_CONFIG_REPACK);
    slm_tensor_desc_t A = q_tensor(q, 128, 40, 1);
    expect_product(q, &A, 4, 1, H_CONTIG, H_CONTIG);
    size_t bytes = (size_t)A.nb[3];
    uint8_t *fresh = malloc(bytes);
    random_blocks(q, fresh, 128 / 32 * 40);
    ck_assert_int_eq(h_iface->buffer_set(h_dev, A.buffer, 0, fresh, bytes), SLM_OK);
    expect_product(q, &A, 4, 1, H_CONTIG, H_CONTIG);
    /* All-zero blocks: zero scales, a product of zeros. */
    ck_assert_int_eq(h_iface->buffer_clear(h_dev, A.buffer, 0, bytes, 0), SLM_OK);
    expect_product(q, &A, 4, 1, H_CONTIG, H_CONTIG);
    for (int round = 0; round < 3; round++) {
        q_free(&A);
        A = q_tensor(q, 128, 40, 1);
        expect_product(q, &A, 3, 1, H_CONTIG, H_CONTIG);
    }
    free(fresh);
    q_free(&A);
    h_close();
}
END_TEST

/* A row length that is not a whole number of blocks is refused, not misread. */
START_TEST(mul_mat_refuses_partial_blocks)
{
    const qinfo_t *q = &qtypes[_i];
    h_open(1);
    slm_tensor_desc_t A = q_tensor(q, 64, 4, 1);
    A.ne[0] = 48;
    slm_tensor_desc_t B = h_tensor(SLM_TYPE_F32, 48, 1, 1, 1, H_CONTIG);
    slm_tensor_desc_t D = h_tensor(SLM_TYPE_F32, 4, 1, 1, 1, H_CONTIG);
    slm_tensor_desc_t src[2] = {A, B};
    slm_node_t node = h_node(SLM_OP_MUL_MAT, D, 2, src);
    ck_assert(!h_iface->supports_node(h_dev, &node));
    q_free(&A);
    h_close();
}
END_TEST

/* ---- GET_ROWS ---- */

START_TEST(get_rows_quantized)
{
    const qinfo_t *q = &qtypes[_i];
    for (int threads = 1; threads <= 3; threads++) {
        h_open(threads);
        slm_tensor_desc_t T = q_tensor(q, 96, 11, 1);
        slm_tensor_desc_t ids = h_tensor(SLM_TYPE_I32, 6, 1, 1, 1, H_CONTIG);
        slm_tensor_desc_t D = h_tensor(SLM_TYPE_F32, 96, 6, 1, 1, threads == 2 ? H_GAPS : H_CONTIG);
        const int32_t pick[6] = {10, 0, 3, 3, 7, 1};
        for (int i = 0; i < 6; i++)
            h_seti(&ids, i, 0, 0, pick[i]);
        slm_tensor_desc_t src[2] = {T, ids};
        slm_node_t node = h_node(SLM_OP_GET_ROWS, D, 2, src);
        ck_assert_int_eq(h_run(&node), SLM_OK);
        bool min = q->type == SLM_TYPE_Q4_1 || q->type == SLM_TYPE_Q5_1;
        for (int r = 0; r < 6; r++)
            for (int b = 0; b < 3; b++) {
                double v[32];
                block_values(q, q_row(&T, pick[r], 0) + b * (int64_t)q->bytes, v);
                for (int i = 0; i < 32; i++) {
                    /* d * (q - off) is one rounding, exact to compare; d * q + m may
                     * be fused or not, one float ulp apart. */
                    float got = h_get(&D, b * 32 + i, r, 0, 0);
                    float want = (float)v[i];
                    double tol = min ? 2.0 * fabs((double)want) * 1.2e-7 + 1e-9 : 0.0;
                    ck_assert_msg(fabs((double)got - (double)want) <= tol,
                                  "%s row %d elem %d: got %.9g want %.9g", q->name, pick[r],
                                  b * 32 + i, (double)got, (double)want);
                }
            }
        q_free(&T);
        h_close();
    }
}
END_TEST

static void setup(void)
{
}

static void teardown(void)
{
    h_close();
}

static Suite *quant_suite(void)
{
    Suite *s = suite_create(CPU_TEST_VARIANT " quantized");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"mul_mat_vector", mul_mat_vector},
        {"mul_mat_vector_threads", mul_mat_vector_threads},
        {"mul_mat_matrix", mul_mat_matrix},
        {"mul_mat_broadcast", mul_mat_broadcast},
        {"mul_mat_refuses_partial_blocks", mul_mat_refuses_partial_blocks},
        {"mul_mat_repacked", mul_mat_repacked},
        {"repacked_weights_follow_writes", repacked_weights_follow_writes},
        {"get_rows_quantized", get_rows_quantized},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_loop_test(tc, cases[i].fn, 0, N_QTYPES);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    const char *missing = h_missing_cpu_feature(CPU_TEST_FEATURES);
    if (missing) {
        printf("SKIP: this CPU lacks %s, which %s needs\n", missing, CPU_TEST_VARIANT);
        return 77;
    }
    const char *why = h_load(CPU_TEST_VARIANT);
    if (why) {
        fprintf(stderr, "%s\n", why);
        return 1;
    }
    SRunner *sr = srunner_create(quant_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
