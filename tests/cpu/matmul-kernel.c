/* Checks every ISA build of the CPU matrix-product kernel against a double-precision
 * naive product: odd shapes, padded strides, f32/f16/bf16 weights, several splits,
 * A stored transposed and accumulation into C; and that matrix-vector rows read as
 * two streams get the very values the product gives them. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/registry.h>
#include <slmops/types.h>

#include "plugins/backend-cpu/matmul.h"

/* The same matmul.c is compiled once per ISA with its entry points renamed
 * (see tests/cpu/local.mk), so all of them link into this one program. */
typedef void (*mm_fn)(const cpu_gemm_args_t *, int, int);
typedef void (*mv_fn)(const cpu_gemm_args_t *, const int64_t *, const int64_t *, int);
typedef const char *(*isa_fn)(void);

#define MMK_DECLARE(isa)                                                                 \
    void mmk_##isa##_mul_mat_2d(const cpu_gemm_args_t *args, int ith, int nth);          \
    void mmk_##isa##_mul_vec_rows(const cpu_gemm_args_t *args, const int64_t *lo,       \
                                  const int64_t *hi, int count);                         \
    const char *mmk_##isa##_isa(void);
MMK_DECLARE(scalar)
#ifdef MMK_HAVE_AVX2
MMK_DECLARE(avx2)
#endif
#ifdef MMK_HAVE_AVX512
MMK_DECLARE(avx512)
#endif

typedef struct variant {
    const char *name;
    mm_fn mul_mat;
    mv_fn mul_vec_rows;
    isa_fn isa;
    const char *features[8];   /* what the CPU must have to run this build */
} variant_t;

static const variant_t variants[] = {
    { "scalar", mmk_scalar_mul_mat_2d, mmk_scalar_mul_vec_rows, mmk_scalar_isa, { NULL } },
#ifdef MMK_HAVE_AVX2
    { "avx2", mmk_avx2_mul_mat_2d, mmk_avx2_mul_vec_rows, mmk_avx2_isa,
      { "avx2", "fma", "f16c", NULL } },
#endif
#ifdef MMK_HAVE_AVX512
    { "avx512", mmk_avx512_mul_mat_2d, mmk_avx512_mul_vec_rows, mmk_avx512_isa,
      { "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx2", "fma", "f16c", NULL } },
#endif
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

static const int a_types[] = { SLM_TYPE_F32, SLM_TYPE_F16, SLM_TYPE_BF16 };
static const int64_t sizes[] = { 1, 3, 17, 64, 100, 257 };
#define N_SIZES (sizeof sizes / sizeof sizes[0])

/* Padding (in elements) after each row/column, so no kernel may assume the
 * operands are packed end to end; the canary in C's padding must survive. */
enum { A_PAD = 5, B_PAD = 3, C_PAD = 7 };
static const float canary = -12345.0f;

/* The current variant, set from the loop index by each test. */
static const variant_t *cur;

static uint32_t rng_state;

static float rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
}

typedef struct problem {
    int type;
    int64_t K, M, N;
    size_t a_row_bytes;
    void *a;
    float *a_val;     /* A as the kernel must read it (after rounding to the type) */
    float *b;
    float *c;
    double *ref;
    double *mag;      /* sum_k |a*b|: the scale of the rounding error */
} problem_t;

static size_t elem_size(int type)
{
    return type == SLM_TYPE_F32 ? sizeof(float) : sizeof(uint16_t);
}

static void store_elem(problem_t *p, int64_t m, int64_t k, float v)
{
    char *row = (char *)p->a + (size_t)m * p->a_row_bytes;
    float *val = &p->a_val[m * p->K + k];
    if (p->type == SLM_TYPE_F16) {
        uint16_t h = slm_f32_to_f16(v);
        memcpy(row + k * 2, &h, 2);
        *val = slm_f16_to_f32(h);
    } else if (p->type == SLM_TYPE_BF16) {
        uint16_t h = slm_f32_to_bf16(v);
        memcpy(row + k * 2, &h, 2);
        *val = slm_bf16_to_f32(h);
    } else {
        memcpy(row + k * 4, &v, 4);
        *val = v;
    }
}

static void problem_init(problem_t *p, int type, int64_t K, int64_t M, int64_t N, uint32_t seed)
{
    memset(p, 0, sizeof *p);
    p->type = type;
    p->K = K;
    p->M = M;
    p->N = N;
    p->a_row_bytes = (size_t)(K + A_PAD) * elem_size(type);
    p->a = calloc((size_t)M, p->a_row_bytes);
    p->a_val = calloc((size_t)(M * K), sizeof(float));
    p->b = calloc((size_t)(N * (K + B_PAD)), sizeof(float));
    p->c = malloc((size_t)(N * (M + C_PAD)) * sizeof(float));
    p->ref = calloc((size_t)(N * M), sizeof(double));
    p->mag = calloc((size_t)(N * M), sizeof(double));
    ck_assert(p->a && p->a_val && p->b && p->c && p->ref && p->mag);

    rng_state = seed;
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++)
            store_elem(p, m, k, rnd());
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            p->b[n * (K + B_PAD) + k] = rnd();
    for (int64_t n = 0; n < N; n++) {
        for (int64_t m = 0; m < M; m++) {
            double s = 0.0, g = 0.0;
            for (int64_t k = 0; k < K; k++) {
                double t = (double)p->a_val[m * K + k] * (double)p->b[n * (K + B_PAD) + k];
                s += t;
                g += fabs(t);
            }
            p->ref[n * M + m] = s;
            p->mag[n * M + m] = g;
        }
    }
}

static void problem_free(problem_t *p)
{
    free(p->a);
    free(p->a_val);
    free(p->b);
    free(p->c);
    free(p->ref);
    free(p->mag);
}

/* Runs the kernel as nth threads would (each share in turn) and compares every
 * element with the reference; returns false after reporting the first mismatch. */
static bool run_and_compare(const problem_t *p, int nth)
{
    size_t c_elems = (size_t)(p->N * (p->M + C_PAD));
    for (size_t i = 0; i < c_elems; i++)
        p->c[i] = canary;
    cpu_gemm_args_t args = {
        .a_type = p->type, .a = p->a, .a_row_bytes = p->a_row_bytes,
        .b = p->b, .b_col_bytes = (size_t)(p->K + B_PAD) * sizeof(float),
        .c = p->c, .c_col_bytes = (size_t)(p->M + C_PAD) * sizeof(float),
        .K = p->K, .M = p->M, .N = p->N,
    };
    for (int ith = 0; ith < nth; ith++)
        cur->mul_mat(&args, ith, nth);

    for (int64_t n = 0; n < p->N; n++) {
        const float *col = p->c + n * (p->M + C_PAD);
        for (int64_t m = 0; m < p->M + C_PAD; m++) {
            double got = col[m];
            if (m >= p->M) {
                if (got != canary) {
                    ck_abort_msg("%s %s K=%lld M=%lld N=%lld nth=%d: wrote past row M at (%lld,%lld)",
                                 cur->name, slm_type_name(p->type), (long long)p->K,
                                 (long long)p->M, (long long)p->N, nth, (long long)m,
                                 (long long)n);
                    return false;
                }
                continue;
            }
            double want = p->ref[n * p->M + m];
            double tol = 4e-5 * p->mag[n * p->M + m] + 1e-6;
            if (!(fabs(got - want) <= tol)) {
                ck_abort_msg("%s %s K=%lld M=%lld N=%lld nth=%d: C(%lld,%lld) = %.9g, want %.9g",
                             cur->name, slm_type_name(p->type), (long long)p->K, (long long)p->M,
                             (long long)p->N, nth, (long long)m, (long long)n, got, want);
                return false;
            }
        }
    }
    return true;
}

/* Loop index = variant * 3 + type. */
static void select_case(int i, int *type)
{
    cur = &variants[i / 3];
    *type = a_types[i % 3];
}

START_TEST(test_odd_shapes)
{
    int type;
    select_case(_i, &type);
    /* An ISA build must carry SIMD kernels (the baseline may too, under -march flags). */
    if (strcmp(cur->name, "scalar") != 0)
        ck_assert_str_ne(cur->isa(), "scalar");
    uint32_t seed = 1;
    for (size_t ik = 0; ik < N_SIZES; ik++)
        for (size_t im = 0; im < N_SIZES; im++)
            for (size_t in = 0; in < N_SIZES; in++) {
                problem_t p;
                problem_init(&p, type, sizes[ik], sizes[im], sizes[in], seed++);
                for (int nth = 1; nth <= 3; nth++)
                    if (!run_and_compare(&p, nth))
                        break;
                problem_free(&p);
            }
}
END_TEST

/* Large enough to cross every cache block (KC, MC, NC) with edge tiles left over. */
START_TEST(test_blocked_shape)
{
    int type;
    select_case(_i, &type);
    problem_t p;
    problem_init(&p, type, 1043, 301, 2069, 77);
    run_and_compare(&p, 1);
    run_and_compare(&p, 3);
    problem_free(&p);
}
END_TEST

/* A product over an empty k range is zero, not whatever C held before. */
START_TEST(test_empty_k)
{
    cur = &variants[_i];
    float c[3 * 5];
    for (size_t i = 0; i < 15; i++)
        c[i] = canary;
    float b = 0.0f;
    float a = 0.0f;
    cpu_gemm_args_t args = {
        .a_type = SLM_TYPE_F32, .a = &a, .a_row_bytes = 0, .b = &b, .b_col_bytes = 0,
        .c = c, .c_col_bytes = 5 * sizeof(float), .K = 0, .M = 4, .N = 3,
    };
    cur->mul_mat(&args, 0, 2);
    cur->mul_mat(&args, 1, 2);
    for (int n = 0; n < 3; n++) {
        for (int m = 0; m < 4; m++)
            ck_assert_float_eq(c[n * 5 + m], 0.0f);
        ck_assert_float_eq(c[n * 5 + 4], canary);
    }
}
END_TEST

/* A as stored (trans 0) or stored transposed (a_trans: K rows of M, padded), the
 * product run twice with accumulate on the second: C must be twice the reference.
 * Transposed, every split of the threads gives the same bits: no element's sum
 * depends on the split. */
static void run_twice(const problem_t *p, int trans)
{
    size_t es = elem_size(p->type), row = (size_t)(p->M + A_PAD) * es;
    size_t c_elems = (size_t)(p->N * (p->M + C_PAD));
    char *at = calloc((size_t)(p->K > 0 ? p->K : 1), row);
    float *first = malloc(c_elems * sizeof *first);
    ck_assert(at && first);
    for (int64_t k = 0; k < p->K; k++)
        for (int64_t m = 0; m < p->M; m++)
            memcpy(at + (size_t)k * row + (size_t)m * es,
                   (const char *)p->a + (size_t)m * p->a_row_bytes + (size_t)k * es, es);
    for (int nth = 1; nth <= 3; nth++) {
        for (size_t i = 0; i < c_elems; i++)
            p->c[i] = canary;
        cpu_gemm_args_t args = {
            .a_type = p->type, .a = trans ? (const void *)at : p->a,
            .a_row_bytes = trans ? row : p->a_row_bytes, .a_trans = trans,
            .b = p->b, .b_col_bytes = (size_t)(p->K + B_PAD) * sizeof(float),
            .c = p->c, .c_col_bytes = (size_t)(p->M + C_PAD) * sizeof(float),
            .K = p->K, .M = p->M, .N = p->N,
        };
        for (int pass = 0; pass < 2; pass++) {
            args.accumulate = pass;
            for (int ith = 0; ith < nth; ith++)
                cur->mul_mat(&args, ith, nth);
        }
        for (int64_t n = 0; n < p->N; n++)
            for (int64_t m = 0; m < p->M + C_PAD; m++) {
                size_t at_c = (size_t)(n * (p->M + C_PAD) + m);
                double got = p->c[at_c];
                if (m >= p->M) {
                    ck_assert_msg(got == canary, "%s %s trans %d: wrote past row M", cur->name,
                                  slm_type_name(p->type), trans);
                    continue;
                }
                double want = 2.0 * p->ref[n * p->M + m];
                double tol = 8e-5 * p->mag[n * p->M + m] + 1e-6;
                ck_assert_msg(fabs(got - want) <= tol,
                              "%s %s trans %d K=%lld M=%lld N=%lld nth=%d: C(%lld,%lld) = %.9g, "
                              "want %.9g", cur->name, slm_type_name(p->type), trans, (long long)p->K,
                              (long long)p->M, (long long)p->N, nth, (long long)m, (long long)n,
                              got, want);
                if (nth == 1)
                    first[at_c] = p->c[at_c];
                else if (trans)
                    ck_assert_msg(memcmp(&first[at_c], &p->c[at_c], sizeof(float)) == 0,
                                  "%s %s transposed K=%lld M=%lld N=%lld: %d threads change "
                                  "C(%lld,%lld)", cur->name, slm_type_name(p->type),
                                  (long long)p->K, (long long)p->M, (long long)p->N, nth,
                                  (long long)m, (long long)n);
            }
    }
    free(first);
    free(at);
}

START_TEST(test_transposed_accumulate)
{
    int type;
    select_case(_i, &type);
    static const int64_t shapes[][3] = {
        {1, 1, 1}, {3, 17, 5}, {17, 3, 64}, {64, 100, 1}, {100, 64, 17}, {257, 33, 7},
        {300, 130, 70}, {1043, 65, 40},
    };
    uint32_t seed = 500;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        problem_t p;
        problem_init(&p, type, shapes[i][0], shapes[i][1], shapes[i][2], seed++);
        run_twice(&p, 1);
        run_twice(&p, 0);
        problem_free(&p);
    }
}
END_TEST

/* Decode's vector products read two row ranges side by side (D58): each row must get
 * the value the whole product gives it, bit for bit, whatever range and partner it
 * has, and no row outside the ranges may be written. Row lengths with and without
 * tails, ranges of unequal lengths, an empty one, one alone, and accumulation. */
START_TEST(test_vector_streams)
{
    int type;
    select_case(_i, &type);
    static const int64_t lengths[] = { 100, 256, 300, 576, 1000 };
    static const int64_t ranges[][4] = {
        { 0, 150, 150, 301 }, { 10, 20, 200, 301 }, { 290, 301, 0, 120 },
        { 5, 5, 7, 260 }, { 0, 301, 0, 0 },
    };
    enum { M = 301 };
    for (size_t ik = 0; ik < sizeof lengths / sizeof lengths[0]; ik++) {
        problem_t p;
        problem_init(&p, type, lengths[ik], M, 1, 900 + (uint32_t)ik);
        cpu_gemm_args_t args = {
            .a_type = p.type, .a = p.a, .a_row_bytes = p.a_row_bytes,
            .b = p.b, .b_col_bytes = (size_t)(p.K + B_PAD) * sizeof(float),
            .K = p.K, .M = M, .N = 1,
        };
        for (int acc = 0; acc < 2; acc++) {
            float whole[M], got[M];
            for (int64_t m = 0; m < M; m++)
                whole[m] = acc ? (float)m * 0.25f : canary;
            args.c = whole;
            args.c_col_bytes = M * sizeof(float);
            args.accumulate = acc;
            cur->mul_mat(&args, 0, 1);
            for (size_t ir = 0; ir < sizeof ranges / sizeof ranges[0]; ir++) {
                const int64_t *r = ranges[ir];
                for (int64_t m = 0; m < M; m++)
                    got[m] = acc ? (float)m * 0.25f : canary;
                args.c = got;
                int count = r[2] == r[3] ? 1 : 2;
                cur->mul_vec_rows(&args, (const int64_t[]){ r[0], r[2] },
                                  (const int64_t[]){ r[1], r[3] }, count);
                for (int64_t m = 0; m < M; m++) {
                    bool in = (m >= r[0] && m < r[1]) || (count == 2 && m >= r[2] && m < r[3]);
                    float want = in ? whole[m] : (acc ? (float)m * 0.25f : canary);
                    ck_assert_msg(memcmp(&got[m], &want, sizeof want) == 0,
                                  "%s %s K=%lld ranges [%lld,%lld) [%lld,%lld) acc=%d: row %lld "
                                  "= %.9g, want %.9g",
                                  cur->name, slm_type_name(type), (long long)p.K,
                                  (long long)r[0], (long long)r[1], (long long)r[2],
                                  (long long)r[3], acc, (long long)m, (double)got[m],
                                  (double)want);
                }
            }
        }
        problem_free(&p);
    }
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

static Suite *matmul_suite(void)
{
    Suite *s = suite_create("cpu-matmul-kernel");
    for (size_t v = 0; v < N_VARIANTS; v++) {
        const char *missing = NULL;
        if (!cpu_can_run(&variants[v], &missing)) {
            printf("SKIP: %s kernel: this CPU lacks %s\n", variants[v].name, missing);
            continue;
        }
        TCase *tc = tcase_create(variants[v].name);
        tcase_set_timeout(tc, 300);
        int first = (int)v * 3;
        tcase_add_loop_test(tc, test_odd_shapes, first, first + 3);
        tcase_add_loop_test(tc, test_blocked_shape, first, first + 3);
        tcase_add_loop_test(tc, test_empty_k, (int)v, (int)v + 1);
        tcase_add_loop_test(tc, test_transposed_accumulate, first, first + 3);
        tcase_add_loop_test(tc, test_vector_streams, first, first + 3);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(matmul_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
