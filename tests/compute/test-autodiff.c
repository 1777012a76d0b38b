/* Autodiff through the whole graph + scheduler + CPU backend path: each op's
 * gradient against central finite differences, a 2-layer MLP, and AdamW training
 * through the optimizer module (slmops/optim.h). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define MAX_LEAVES 8

/* Leaves to fill after allocation, and the parameters to check. */
typedef struct fixture {
    slm_graph_t *g;
    slm_tensor_t *leaf[MAX_LEAVES];
    void *data[MAX_LEAVES];
    int n_leaves;
    slm_tensor_t *param[MAX_LEAVES];
    int n_params;
    uint64_t rng;
} fixture_t;

static void fx_add(fixture_t *f, slm_tensor_t *t, void *data)
{
    ck_assert_ptr_nonnull(t);
    ck_assert_int_lt(f->n_leaves, MAX_LEAVES);
    f->leaf[f->n_leaves] = t;
    f->data[f->n_leaves++] = data;
}

/* A leaf of random values; PARAM leaves are checked against finite differences. */
static slm_tensor_t *fx_rand(fixture_t *f, int n_dims, const int64_t *ne, bool param)
{
    slm_tensor_t *t = slm_tensor_new(f->g, SLM_TYPE_F32, n_dims, ne);
    ck_assert_ptr_nonnull(t);
    slm_tensor_set_flags(t, param ? SLM_TENSOR_PARAM : SLM_TENSOR_INPUT);
    size_t n = (size_t)slm_tensor_nelements(t);
    float *x = malloc(n * sizeof *x);
    tc_fill(x, n, &f->rng, 1.0f);
    fx_add(f, t, x);
    if (param)
        f->param[f->n_params++] = t;
    return t;
}

static slm_tensor_t *fx_ids(fixture_t *f, int64_t n, const int32_t *ids)
{
    slm_tensor_t *t = slm_tensor_new_1d(f->g, SLM_TYPE_I32, n);
    slm_tensor_set_flags(t, SLM_TENSOR_INPUT);
    int32_t *copy = malloc((size_t)n * sizeof *copy);
    memcpy(copy, ids, (size_t)n * sizeof *copy);
    fx_add(f, t, copy);
    return t;
}

static void fx_set_all(fixture_t *f)
{
    for (int i = 0; i < f->n_leaves; i++)
        tc_set(f->leaf[i], f->data[i], slm_tensor_nbytes(f->leaf[i]));
}

static void fx_free(fixture_t *f)
{
    for (int i = 0; i < f->n_leaves; i++)
        free(f->data[i]);
    slm_graph_free(f->g);
}

static double weighted(const float *out, const float *w, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)out[i] * (double)w[i];
    return s;
}

/* The loss as seen from the host: sum(out * w) in double, so that finite
 * differences are not drowned by f32 rounding in a device-side reduction. */
typedef struct objective {
    slm_sched_t *s;
    slm_graph_t *g;
    slm_tensor_t *out;
    float *w;                   /* NULL: out is the scalar loss itself */
    float *buf;
    size_t n;
} objective_t;

static double objective_eval(objective_t *o)
{
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_sched_compute(o->s, o->g, &err) == SLM_OK, "compute: %s", err.message);
    tc_get(o->out, o->buf, o->n * sizeof(float));
    return o->w ? weighted(o->buf, o->w, o->n) : (double)o->buf[0];
}

/* Norm-wise relative error of p's analytic gradient against central differences
 * with step h. */
static double grad_error(objective_t *o, slm_tensor_t *p, double h)
{
    size_t n = (size_t)slm_tensor_nelements(p);
    float *x = malloc(n * sizeof *x), *ga = malloc(n * sizeof *ga);
    tc_get(p, x, n * sizeof *x);
    objective_eval(o);
    tc_get(slm_tensor_grad(p), ga, n * sizeof *ga);
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + (float)h;
        tc_set(p, x, n * sizeof *x);
        double up = objective_eval(o);
        x[i] = keep - (float)h;
        tc_set(p, x, n * sizeof *x);
        double down = objective_eval(o);
        x[i] = keep;
        double fd = (up - down) / (2.0 * h);
        num += (fd - ga[i]) * (fd - ga[i]);
        den += fd * fd;
    }
    tc_set(p, x, n * sizeof *x);
    free(x);
    free(ga);
    return sqrt(num) / fmax(sqrt(den), 1e-6);
}

/* Two step sizes: f32 rounding grows as h shrinks, truncation as h grows, so the
 * better of the two is the fair measure. */
static double best_grad_error(objective_t *o, slm_tensor_t *p)
{
    double e1 = grad_error(o, p, 1e-2);
    double e2 = grad_error(o, p, 2e-3);
    return e1 < e2 ? e1 : e2;
}

static void check_gradients(fixture_t *f, slm_tensor_t *out, double tol)
{
    ck_assert_ptr_nonnull(out);
    slm_graph_t *g = f->g;
    slm_tensor_set_flags(out, SLM_TENSOR_OUTPUT);
    size_t n = (size_t)slm_tensor_nelements(out);
    objective_t o = {.g = g, .out = out, .n = n, .buf = malloc(n * sizeof(float))};
    slm_tensor_t *loss = out;
    if (n != 1 || slm_tensor_op(out) != SLM_OP_CROSS_ENTROPY) {
        /* loss = sum(out * w) with fixed random weights w. */
        slm_tensor_t *w = slm_tensor_new(g, SLM_TYPE_F32, 4,
                                         (int64_t[4]){slm_tensor_ne(out, 0), slm_tensor_ne(out, 1),
                                                      slm_tensor_ne(out, 2), slm_tensor_ne(out, 3)});
        slm_tensor_set_flags(w, SLM_TENSOR_INPUT);
        o.w = malloc(n * sizeof(float));
        tc_fill(o.w, n, &f->rng, 1.0f);
        fx_add(f, w, o.w);
        loss = slm_sum(g, slm_mul(g, out, w));
    }
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_graph_backward(g, loss, &err) == SLM_OK, "backward: %s", err.message);
    slm_registry_t *reg = tc_registry(NULL);
    o.s = tc_sched(reg, NULL);
    ck_assert_msg(slm_sched_alloc(o.s, g, &err) == SLM_OK, "alloc: %s", err.message);
    fx_set_all(f);
    ck_assert_int_gt(f->n_params, 0);
    for (int i = 0; i < f->n_params; i++) {
        double e = best_grad_error(&o, f->param[i]);
        ck_assert_msg(e < tol, "gradient of parameter %d: relative error %g >= %g", i, e, tol);
    }
    /* The data array of w is owned by the fixture now. */
    free(o.buf);
    fx_free(f);
    slm_sched_free(o.s);
    slm_registry_free(reg);
}

static fixture_t fx_new(uint64_t seed)
{
    fixture_t f = {.g = slm_graph_new(0), .rng = seed};
    ck_assert_ptr_nonnull(f.g);
    return f;
}

#define OP_TOL 1e-3

START_TEST(grad_get_rows)
{
    fixture_t f = fx_new(1);
    slm_tensor_t *table = fx_rand(&f, 2, (int64_t[]){5, 7}, true);
    slm_tensor_t *ids = fx_ids(&f, 4, (const int32_t[]){1, 3, 3, 6});
    check_gradients(&f, slm_get_rows(f.g, table, ids), OP_TOL);
}
END_TEST

START_TEST(grad_mul_mat)
{
    fixture_t f = fx_new(2);
    slm_tensor_t *a = fx_rand(&f, 2, (int64_t[]){7, 5}, true);
    slm_tensor_t *b = fx_rand(&f, 2, (int64_t[]){7, 3}, true);
    check_gradients(&f, slm_mul_mat(f.g, a, b), OP_TOL);
}
END_TEST

START_TEST(grad_mul_mat_batched)
{
    fixture_t f = fx_new(3);
    slm_tensor_t *a = fx_rand(&f, 3, (int64_t[]){6, 5, 1}, true);
    slm_tensor_t *b = fx_rand(&f, 3, (int64_t[]){6, 3, 2}, true);
    check_gradients(&f, slm_mul_mat(f.g, a, b), OP_TOL);
}
END_TEST

START_TEST(grad_add_broadcast)
{
    fixture_t f = fx_new(4);
    slm_tensor_t *a = fx_rand(&f, 2, (int64_t[]){6, 4}, true);
    slm_tensor_t *b = fx_rand(&f, 2, (int64_t[]){6, 1}, true);
    check_gradients(&f, slm_add(f.g, a, b), OP_TOL);
}
END_TEST

START_TEST(grad_mul_broadcast)
{
    fixture_t f = fx_new(5);
    slm_tensor_t *a = fx_rand(&f, 2, (int64_t[]){6, 4}, true);
    slm_tensor_t *b = fx_rand(&f, 2, (int64_t[]){1, 4}, true);
    check_gradients(&f, slm_mul(f.g, a, b), OP_TOL);
}
END_TEST

START_TEST(grad_scale)
{
    fixture_t f = fx_new(6);
    slm_tensor_t *a = fx_rand(&f, 2, (int64_t[]){7, 3}, true);
    check_gradients(&f, slm_scale(f.g, a, 0.7f), OP_TOL);
}
END_TEST

START_TEST(grad_rms_norm)
{
    fixture_t f = fx_new(7);
    slm_tensor_t *a = fx_rand(&f, 2, (int64_t[]){8, 3}, true);
    check_gradients(&f, slm_rms_norm(f.g, a, 1e-5f), OP_TOL);
}
END_TEST

static void rope_case(int mode)
{
    fixture_t f = fx_new(8 + (uint64_t)mode);
    slm_tensor_t *a = fx_rand(&f, 4, (int64_t[]){8, 2, 3, 1}, true);
    slm_tensor_t *pos = fx_ids(&f, 3, (const int32_t[]){0, 2, 5});
    /* n_dims 6 < 8: the last two dims of each head pass through unrotated. */
    check_gradients(&f, slm_rope(f.g, a, pos, 6, mode, 10000.0f, 1.0f), OP_TOL);
}

START_TEST(grad_rope_normal)
{
    rope_case(SLM_ROPE_NORMAL);
}
END_TEST

START_TEST(grad_rope_neox)
{
    rope_case(SLM_ROPE_NEOX);
}
END_TEST

START_TEST(grad_soft_max_causal)
{
    fixture_t f = fx_new(11);
    slm_tensor_t *a = fx_rand(&f, 2, (int64_t[]){5, 4}, true);
    slm_tensor_t *mask = fx_rand(&f, 2, (int64_t[]){5, 4}, false);
    check_gradients(&f, slm_soft_max(f.g, a, mask, 0.6f, true, 1), OP_TOL);
}
END_TEST

START_TEST(grad_silu)
{
    fixture_t f = fx_new(12);
    slm_tensor_t *a = fx_rand(&f, 2, (int64_t[]){9, 2}, true);
    check_gradients(&f, slm_silu(f.g, a), OP_TOL);
}
END_TEST

START_TEST(grad_gelu)
{
    fixture_t f = fx_new(13);
    slm_tensor_t *a = fx_rand(&f, 2, (int64_t[]){9, 2}, true);
    check_gradients(&f, slm_gelu(f.g, a), OP_TOL);
}
END_TEST

START_TEST(grad_swiglu)
{
    fixture_t f = fx_new(14);
    slm_tensor_t *a = fx_rand(&f, 2, (int64_t[]){7, 3}, true);
    slm_tensor_t *b = fx_rand(&f, 2, (int64_t[]){7, 3}, true);
    check_gradients(&f, slm_swiglu(f.g, a, b), OP_TOL);
}
END_TEST

START_TEST(grad_cpy_reshape)
{
    fixture_t f = fx_new(15);
    slm_tensor_t *a = fx_rand(&f, 2, (int64_t[]){6, 3}, true);
    slm_tensor_t *dst = slm_tensor_new_2d(f.g, SLM_TYPE_F32, 3, 6);
    slm_tensor_t *c = slm_cpy(f.g, slm_scale(f.g, a, 1.5f), dst);
    const int64_t ne[2] = {9, 2};
    check_gradients(&f, slm_reshape(f.g, c, 2, ne), OP_TOL);
}
END_TEST

START_TEST(grad_cast)
{
    fixture_t f = fx_new(16);
    slm_tensor_t *a = fx_rand(&f, 2, (int64_t[]){6, 3}, true);
    check_gradients(&f, slm_cast(f.g, slm_transpose(f.g, a), SLM_TYPE_F32), OP_TOL);
}
END_TEST

START_TEST(grad_permute_cont)
{
    fixture_t f = fx_new(17);
    slm_tensor_t *a = fx_rand(&f, 4, (int64_t[]){3, 4, 2, 1}, true);
    check_gradients(&f, slm_cont(f.g, slm_permute(f.g, a, 2, 0, 1, 3)), OP_TOL);
}
END_TEST

START_TEST(grad_transpose_cont)
{
    fixture_t f = fx_new(18);
    slm_tensor_t *a = fx_rand(&f, 2, (int64_t[]){5, 3}, true);
    check_gradients(&f, slm_cont(f.g, slm_transpose(f.g, a)), OP_TOL);
}
END_TEST

START_TEST(grad_view)
{
    fixture_t f = fx_new(19);
    slm_tensor_t *a = fx_rand(&f, 2, (int64_t[]){6, 4}, true);
    /* Columns 2..4 of rows 1..2: a strided window at an offset. */
    const int64_t ne[2] = {3, 2}, nb[2] = {4, 24};
    slm_tensor_t *v = slm_view(f.g, a, 2, ne, nb, 24 + 8);
    /* a also feeds a second consumer, so the scatter accumulates onto its gradient. */
    slm_tensor_t *s = slm_scale(f.g, slm_cont(f.g, v), 2.0f);
    slm_tensor_t *both = slm_add(f.g, s, slm_cont(f.g, slm_view(f.g, a, 2, ne, nb, 0)));
    check_gradients(&f, both, OP_TOL);
}
END_TEST

START_TEST(grad_cross_entropy)
{
    fixture_t f = fx_new(20);
    slm_tensor_t *logits = fx_rand(&f, 2, (int64_t[]){5, 4}, true);
    slm_tensor_t *t = slm_tensor_new_2d(f.g, SLM_TYPE_F32, 5, 4);
    slm_tensor_set_flags(t, SLM_TENSOR_INPUT);
    float *p = malloc(20 * sizeof *p);
    for (int r = 0; r < 4; r++) {   /* each row a distribution */
        float sum = 0.0f;
        for (int c = 0; c < 5; c++)
            sum += (p[r * 5 + c] = 1.1f + tc_rand(&f.rng));
        for (int c = 0; c < 5; c++)
            p[r * 5 + c] /= sum;
    }
    fx_add(&f, t, p);
    check_gradients(&f, slm_cross_entropy(f.g, logits, t), OP_TOL);
}
END_TEST

/* ---- acceptance: 2-layer MLP ---- */

enum { MLP_D = 6, MLP_H = 8, MLP_C = 4, MLP_N = 16 };

typedef struct mlp {
    fixture_t f;
    slm_tensor_t *w1, *gain, *w2, *loss;
} mlp_t;

/* x -> mul_mat W1 -> rms_norm -> * gain -> silu -> mul_mat W2 -> cross_entropy(one-hot). */
static mlp_t mlp_build(uint64_t seed, float w_scale)
{
    mlp_t m = {.f = fx_new(seed)};
    fixture_t *f = &m.f;
    slm_tensor_t *x = fx_rand(f, 2, (int64_t[]){MLP_D, MLP_N}, false);
    m.w1 = fx_rand(f, 2, (int64_t[]){MLP_D, MLP_H}, true);
    m.gain = fx_rand(f, 1, (int64_t[]){MLP_H}, true);
    m.w2 = fx_rand(f, 2, (int64_t[]){MLP_H, MLP_C}, true);
    float *xs = f->data[0], *w1 = f->data[1], *w2 = f->data[3];
    for (int i = 0; i < MLP_D * MLP_H; i++)
        w1[i] *= w_scale;
    for (int i = 0; i < MLP_H * MLP_C; i++)
        w2[i] *= w_scale;
    /* Targets: the class a fixed random linear map of x prefers, so the task is learnable. */
    float teacher[MLP_D * MLP_C];
    tc_fill(teacher, MLP_D * MLP_C, &f->rng, 1.0f);
    float *onehot = calloc(MLP_C * MLP_N, sizeof *onehot);
    for (int n = 0; n < MLP_N; n++) {
        int best = 0;
        float best_v = -1e30f;
        for (int c = 0; c < MLP_C; c++) {
            float v = 0.0f;
            for (int d = 0; d < MLP_D; d++)
                v += teacher[c * MLP_D + d] * xs[n * MLP_D + d];
            if (v > best_v) {
                best_v = v;
                best = c;
            }
        }
        onehot[n * MLP_C + best] = 1.0f;
    }
    slm_tensor_t *t = slm_tensor_new_2d(f->g, SLM_TYPE_F32, MLP_C, MLP_N);
    slm_tensor_set_flags(t, SLM_TENSOR_INPUT);
    fx_add(f, t, onehot);
    slm_tensor_t *h = slm_mul_mat(f->g, m.w1, x);
    h = slm_silu(f->g, slm_mul(f->g, slm_rms_norm(f->g, h, 1e-5f), m.gain));
    m.loss = slm_cross_entropy(f->g, slm_mul_mat(f->g, m.w2, h), t);
    ck_assert_ptr_nonnull(m.loss);
    return m;
}

START_TEST(mlp_gradients_match_finite_differences)
{
    mlp_t m = mlp_build(42, 1.0f);
    fixture_t *f = &m.f;
    check_gradients(f, m.loss, 1e-3);
}
END_TEST

START_TEST(mlp_adamw_100_steps)
{
    /* Stated threshold: cross-entropy on 16 samples x 4 classes falls below 0.05. */
    const float threshold = 0.05f;
    mlp_t m = mlp_build(7, 0.5f);
    fixture_t *f = &m.f;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_graph_backward(f->g, m.loss, &err), SLM_OK);
    slm_optim_params_t p;
    slm_optim_params_default(&p);
    p.lr = 0.05f;
    slm_optim_t *o = slm_optim_new(f->g, &p, &err);
    ck_assert_msg(o != NULL, "optimizer: %s", err.message);
    slm_registry_t *reg = tc_registry(NULL);
    slm_sched_t *s = tc_sched(reg, NULL);
    ck_assert_msg(slm_sched_alloc(s, f->g, &err) == SLM_OK, "alloc: %s", err.message);
    fx_set_all(f);
    float first = 0.0f, loss = 0.0f;
    for (int step = 0; step < 100; step++) {
        ck_assert_msg(slm_optim_step(o, s, &err) == SLM_OK, "step %d: %s", step, err.message);
        tc_get(m.loss, &loss, sizeof loss);
        if (step == 0)
            first = loss;
        ck_assert(isfinite(loss));
    }
    ck_assert_msg(first > 0.5f, "initial loss %g is already small", (double)first);
    ck_assert_msg(loss < threshold, "loss after 100 AdamW steps %g (from %g) >= %g",
                  (double)loss, (double)first, (double)threshold);
    ck_assert_int_eq(slm_optim_n_steps(o), 100);
    slm_optim_free(o);
    fx_free(f);
    slm_sched_free(s);
    slm_registry_free(reg);
}
END_TEST

/* ---- frozen weights of any type (LoRA on a quantized base) ---- */

static const char *const frozen_types[] = {"f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0",
                                           "q4_k", "q5_k", "q6_k", "nf4"};

/* W [K, M] of `type` from random rows, and those rows as the backend sees them. */
static void *frozen_weight(slm_registry_t *reg, int type, int64_t K, int64_t M, float *deq)
{
    uint64_t rng = 99;
    size_t n = (size_t)(K * M), bytes = slm_type_row_size(type, K) * (size_t)M;
    float *rows = malloc(n * sizeof *rows);
    void *q = malloc(bytes);
    tc_fill(rows, n, &rng, 1.0f);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_quantize_rows(reg, type, rows, q, M, K, NULL, &err) == SLM_OK, "%s",
                  err.message);
    ck_assert_msg(slm_dequantize_rows(reg, type, q, deq, M, K, &err) == SLM_OK, "%s", err.message);
    free(rows);
    return q;
}

/* d/dx of sum(w * (W x)) is W^T w exactly: the autodiff gradient through a frozen W
 * of every type against that sum over the dequantized rows, with 1 and 2 threads,
 * and no f32 tensor as large as W anywhere in the graph (W is never expanded whole).
 * M > 256 rows takes the backward kernel through more than one step of rows. */
START_TEST(grad_through_frozen_weight)
{
    enum { K = 256, M = 300, T = 15, B = 3 };
    slm_registry_t *reg = tc_registry(NULL);   /* registers the quantized types */
    int type = slm_type_from_name(frozen_types[_i]);
    ck_assert_int_ge(type, 0);
    float *deq = malloc((size_t)K * M * sizeof *deq);
    void *wq = frozen_weight(reg, type, K, M, deq);
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *W = slm_tensor_new_2d(g, (slm_type_t)type, K, M);
    slm_tensor_set_flags(W, SLM_TENSOR_INPUT);
    slm_tensor_t *x = slm_tensor_new(g, SLM_TYPE_F32, 3, (int64_t[]){K, T, B});
    slm_tensor_set_flags(x, SLM_TENSOR_PARAM);
    slm_tensor_t *w = slm_tensor_new(g, SLM_TYPE_F32, 3, (int64_t[]){M, T, B});
    slm_tensor_set_flags(w, SLM_TENSOR_INPUT);
    slm_tensor_t *loss = slm_sum(g, slm_mul(g, slm_mul_mat(g, W, x), w));
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_graph_backward(g, loss, &err) == SLM_OK, "%s: %s", frozen_types[_i],
                  err.message);
    for (size_t i = 0; i < slm_graph_n_tensors(g); i++) {
        const slm_tensor_t *t = slm_graph_tensor(g, i);
        ck_assert_msg(slm_tensor_type(t) != SLM_TYPE_F32 || slm_tensor_nelements(t) < K * M,
                      "%s: tensor %zu (%s) is as large as W in f32", frozen_types[_i], i,
                      slm_tensor_name(t));
    }
    uint64_t rng = 5;
    size_t nx = (size_t)K * T * B, nw = (size_t)M * T * B;
    float *xv = malloc(nx * sizeof *xv), *wv = malloc(nw * sizeof *wv);
    float *grad[2] = {malloc(nx * sizeof(float)), malloc(nx * sizeof(float))};
    tc_fill(xv, nx, &rng, 1.0f);
    tc_fill(wv, nw, &rng, 1.0f);
    for (int th = 0; th < 2; th++) {
        slm_sched_options_t o = {.struct_size = sizeof o, .device = "cpu", .n_threads = th + 1};
        slm_sched_t *s = slm_sched_new(reg, &o, &err);
        ck_assert_msg(s != NULL, "%s", err.message);
        tc_alloc(s, g);
        ck_assert_msg(slm_sched_compute_bytes(s) < (uint64_t)K * M * sizeof(float),
                      "%s: %llu bytes of intermediates, W in f32 is %zu", frozen_types[_i],
                      (unsigned long long)slm_sched_compute_bytes(s), (size_t)K * M * 4);
        tc_set(W, wq, slm_tensor_nbytes(W));
        tc_set(x, xv, nx * sizeof *xv);
        tc_set(w, wv, nw * sizeof *wv);
        tc_compute(s, g);
        tc_get(slm_tensor_grad(x), grad[th], nx * sizeof(float));
        slm_sched_free(s);
    }
    double num = 0, den = 0, amax = 0, split = 0;
    for (int64_t c = 0; c < T * B; c++)
        for (int64_t k = 0; k < K; k++) {
            double want = 0;
            for (int64_t m = 0; m < M; m++)
                want += (double)deq[m * K + k] * wv[c * M + m];
            double got = grad[0][c * K + k];
            num += (got - want) * (got - want);
            den += want * want;
            amax = fmax(amax, fabs(got));
            split = fmax(split, fabs(got - grad[1][c * K + k]));
        }
    ck_assert_msg(sqrt(num / den) < 1e-5, "%s: gradient off by %g (norm-wise)", frozen_types[_i],
                  sqrt(num / den));
    ck_assert_msg(split <= 1e-6 * amax, "%s: 1 and 2 threads differ by %g (max %g)",
                  frozen_types[_i], split, amax);
    free(grad[0]);
    free(grad[1]);
    free(xv);
    free(wv);
    free(wq);
    free(deq);
    slm_graph_free(g);
    slm_registry_free(reg);
}
END_TEST

/* A quantized weight can be frozen but not trained: backward says which and why. */
START_TEST(quantized_param_is_refused)
{
    slm_registry_t *reg = tc_registry(NULL);
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *W = slm_tensor_new_2d(g, (slm_type_t)slm_type_from_name("q4_0"), 64, 8);
    slm_tensor_set_name(W, "blk.0.attn_q.weight");
    slm_tensor_set_flags(W, SLM_TENSOR_PARAM);
    slm_tensor_t *x = slm_tensor_new_2d(g, SLM_TYPE_F32, 64, 3);
    slm_tensor_set_flags(x, SLM_TENSOR_INPUT);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_graph_backward(g, slm_sum(g, slm_mul_mat(g, W, x)), &err),
                     SLM_E_UNSUPPORTED);
    ck_assert_msg(strstr(err.message, "blk.0.attn_q.weight") && strstr(err.message, "q4_0") &&
                  strstr(err.message, "quantized"), "message: %s", err.message);
    slm_graph_free(g);
    slm_registry_free(reg);
}
END_TEST

static Suite *autodiff_suite(void)
{
    Suite *s = suite_create("autodiff");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, grad_get_rows);
    tcase_add_test(tc, grad_mul_mat);
    tcase_add_test(tc, grad_mul_mat_batched);
    tcase_add_test(tc, grad_add_broadcast);
    tcase_add_test(tc, grad_mul_broadcast);
    tcase_add_test(tc, grad_scale);
    tcase_add_test(tc, grad_rms_norm);
    tcase_add_test(tc, grad_rope_normal);
    tcase_add_test(tc, grad_rope_neox);
    tcase_add_test(tc, grad_soft_max_causal);
    tcase_add_test(tc, grad_silu);
    tcase_add_test(tc, grad_gelu);
    tcase_add_test(tc, grad_swiglu);
    tcase_add_test(tc, grad_cpy_reshape);
    tcase_add_test(tc, grad_cast);
    tcase_add_test(tc, grad_permute_cont);
    tcase_add_test(tc, grad_transpose_cont);
    tcase_add_test(tc, grad_view);
    tcase_add_test(tc, grad_cross_entropy);
    tcase_add_loop_test(tc, grad_through_frozen_weight, 0,
                        (int)(sizeof frozen_types / sizeof frozen_types[0]));
    tcase_add_test(tc, quantized_param_is_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("mlp");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, mlp_gradients_match_finite_differences);
    tcase_add_test(tc, mlp_adamw_100_steps);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(autodiff_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
