/* The optimizer module (slmops/optim.h): AdamW and SGD against a double-precision
 * reference (weight decay, no-decay flags, bias correction, schedule, clipping), the
 * learning-rate schedules, and saved states: bit-exact resume, refused mismatches. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/compute/common.h"

#define PI 3.14159265358979323846

static slm_error_t err;

static void err_reset(void)
{
    slm_error_init(&err);
}

#define CK_OK(call) ck_assert_msg((call) == SLM_OK, "%s: %s", #call, err.message)

/* ---- a separable quadratic: loss = sum_i sum(c_i * p_i * p_i) ---- */

enum { N_Q = 3, Q_MAX = 16, Q_STEPS = 6 };

typedef struct quadratic {
    slm_registry_t *reg;
    slm_sched_t *s;
    slm_graph_t *g;
    slm_optim_t *o;
    slm_tensor_t *p[N_Q];
    int n[N_Q];
    /* The reference, in double. */
    double rp[N_Q][Q_MAX], rm[N_Q][Q_MAX], rv[N_Q][Q_MAX], c[N_Q][Q_MAX];
} quadratic_t;

/* w is 2-D (decays under slm_optim_no_decay_1d), b and g are 1-D (do not). */
static void quad_build(quadratic_t *q, const slm_optim_params_t *op)
{
    static const char *const names[N_Q] = {"w", "b", "g"};
    static const int64_t shapes[N_Q][2] = {{4, 3}, {3, 1}, {5, 1}};
    memset(q, 0, sizeof *q);
    err_reset();
    q->g = slm_graph_new(0);
    slm_tensor_t *loss = NULL, *cs[N_Q];
    for (int i = 0; i < N_Q; i++) {
        int nd = shapes[i][1] > 1 ? 2 : 1;
        q->p[i] = slm_tensor_new(q->g, SLM_TYPE_F32, nd, shapes[i]);
        slm_tensor_set_name(q->p[i], names[i]);
        slm_tensor_set_flags(q->p[i], SLM_TENSOR_PARAM);
        cs[i] = slm_tensor_new(q->g, SLM_TYPE_F32, nd, shapes[i]);
        slm_tensor_set_flags(cs[i], SLM_TENSOR_INPUT);
        slm_tensor_t *term = slm_sum(q->g, slm_mul(q->g, slm_mul(q->g, q->p[i], q->p[i]), cs[i]));
        loss = loss ? slm_add(q->g, loss, term) : term;
        q->n[i] = (int)(shapes[i][0] * shapes[i][1]);
    }
    CK_OK(slm_graph_backward(q->g, loss, &err));
    q->o = slm_optim_new(q->g, op, &err);
    ck_assert_msg(q->o != NULL, "optimizer: %s", err.message);
    q->reg = tc_registry(NULL);
    q->s = tc_sched(q->reg, NULL);
    tc_alloc(q->s, q->g);
    uint64_t rng = 1234;
    for (int i = 0; i < N_Q; i++) {
        float p[Q_MAX], c[Q_MAX];
        for (int k = 0; k < q->n[i]; k++) {
            p[k] = tc_rand(&rng);
            c[k] = 1.0f + 0.5f * tc_rand(&rng);
            q->rp[i][k] = p[k];
            q->c[i][k] = c[k];
        }
        tc_set(q->p[i], p, (size_t)q->n[i] * sizeof *p);
        tc_set(cs[i], c, (size_t)q->n[i] * sizeof *c);
    }
}

static void quad_free(quadratic_t *q)
{
    slm_optim_free(q->o);
    slm_graph_free(q->g);
    slm_sched_free(q->s);
    slm_registry_free(q->reg);
}

/* The schedule as its definition reads (slmops/optim.h), for step s (0: the first). */
static double lr_ref(const slm_optim_params_t *p, int64_t s)
{
    if (s < p->warmup_steps)
        return p->lr * (double)s / (double)p->warmup_steps;
    if (p->schedule == SLM_LR_CONSTANT)
        return p->lr;
    double x = (double)(s - p->warmup_steps) / (double)(p->total_steps - p->warmup_steps);
    x = x < 1.0 ? x : 1.0;
    double f = p->schedule == SLM_LR_LINEAR ? 1.0 - x : 0.5 * (1.0 + cos(PI * x));
    return p->lr * (p->min_lr_ratio + (1.0 - p->min_lr_ratio) * f);
}

/* One textbook step (AdamW: Loshchilov & Hutter with Adam's bias correction; clipping:
 * torch.nn.utils.clip_grad_norm_); returns the gradients' global norm. */
static double ref_step(quadratic_t *q, const slm_optim_params_t *op, int64_t t)
{
    double lr = lr_ref(op, t), sum = 0.0, gr[N_Q][Q_MAX];
    for (int i = 0; i < N_Q; i++)
        for (int k = 0; k < q->n[i]; k++) {
            gr[i][k] = 2.0 * q->c[i][k] * q->rp[i][k];
            sum += gr[i][k] * gr[i][k];
        }
    double norm = sqrt(sum), scale = 1.0;
    if (op->clip_norm > 0.0f)
        scale = fmin(1.0, op->clip_norm / (norm + 1e-6));
    for (int i = 0; i < N_Q; i++) {
        double wd = i == 0 ? op->weight_decay : 0.0;   /* only the 2-D w decays */
        for (int k = 0; k < q->n[i]; k++) {
            double g = gr[i][k] * scale, p = q->rp[i][k];
            if (op->kind == SLM_OPTIM_SGD) {
                q->rp[i][k] = p * (1.0 - lr * wd) - lr * g;
                continue;
            }
            double b1 = op->beta1, b2 = op->beta2;
            q->rm[i][k] = b1 * q->rm[i][k] + (1.0 - b1) * g;
            q->rv[i][k] = b2 * q->rv[i][k] + (1.0 - b2) * g * g;
            double mh = q->rm[i][k] / (1.0 - pow(b1, (double)(t + 1)));
            double vh = q->rv[i][k] / (1.0 - pow(b2, (double)(t + 1)));
            q->rp[i][k] = p * (1.0 - lr * wd) - lr * mh / (sqrt(vh) + op->eps);
        }
    }
    return norm;
}

static void expect_close(const char *what, int i, int k, double got, double want)
{
    ck_assert_msg(fabs(got - want) <= 2e-6 + 2e-5 * fabs(want),
                  "%s of parameter %d element %d: %.9g, reference %.9g", what, i, k, got, want);
}

static void expect_tensor(quadratic_t *q, const char *what, int i, const char *name,
                          const double *want)
{
    slm_tensor_t *t = name ? slm_graph_find(q->g, name) : q->p[i];
    ck_assert_msg(t != NULL, "no tensor %s", name);
    float got[Q_MAX];
    tc_get(t, got, (size_t)q->n[i] * sizeof *got);
    for (int k = 0; k < q->n[i]; k++)
        expect_close(what, i, k, got[k], want[k]);
}

static void run_against_reference(const slm_optim_params_t *op)
{
    quadratic_t q;
    quad_build(&q, op);
    static const char *const names[N_Q] = {"w", "b", "g"};
    ck_assert(slm_optim_param_decays(q.o, 0));
    ck_assert(!slm_optim_param_decays(q.o, 1) && !slm_optim_param_decays(q.o, 2));
    for (int64_t t = 0; t < Q_STEPS; t++) {
        double norm = ref_step(&q, op, t);
        CK_OK(slm_optim_step(q.o, q.s, &err));
        ck_assert_int_eq(slm_optim_n_steps(q.o), t + 1);
        if (op->clip_norm > 0.0f)
            ck_assert_msg(fabs(slm_optim_grad_norm(q.o) - norm) <= 1e-5 * norm,
                          "step %lld: global norm %.9g, reference %.9g", (long long)t,
                          slm_optim_grad_norm(q.o), norm);
        else
            ck_assert(slm_optim_grad_norm(q.o) == -1.0);
        for (int i = 0; i < N_Q; i++) {
            expect_tensor(&q, "value", i, NULL, q.rp[i]);
            if (op->kind != SLM_OPTIM_ADAMW)
                continue;
            char nm[64];
            snprintf(nm, sizeof nm, "%s.adam_m", names[i]);
            expect_tensor(&q, "first moment", i, nm, q.rm[i]);
            snprintf(nm, sizeof nm, "%s.adam_v", names[i]);
            expect_tensor(&q, "second moment", i, nm, q.rv[i]);
        }
    }
    quad_free(&q);
}

/* _i: 0 without clipping, 1 with a max norm the gradients exceed at first. */
START_TEST(adamw_matches_double_reference)
{
    slm_optim_params_t op;
    slm_optim_params_default(&op);
    op.lr = 0.05f;
    op.weight_decay = 0.2f;
    op.no_decay = slm_optim_no_decay_1d;
    op.schedule = SLM_LR_COSINE;
    op.warmup_steps = 2;           /* the first step runs at lr 0: only the moments move */
    op.total_steps = 5;            /* the last step is past the end: the floor */
    op.min_lr_ratio = 0.1f;
    op.clip_norm = _i ? 1.0f : 0.0f;
    run_against_reference(&op);
}
END_TEST

START_TEST(sgd_matches_double_reference)
{
    slm_optim_params_t op;
    slm_optim_params_default(&op);
    op.kind = SLM_OPTIM_SGD;
    op.lr = 0.1f;
    op.weight_decay = 0.5f;
    op.no_decay = slm_optim_no_decay_1d;
    op.schedule = SLM_LR_LINEAR;
    op.warmup_steps = 1;
    op.total_steps = 4;
    op.clip_norm = _i ? 1.0f : 0.0f;
    run_against_reference(&op);
}
END_TEST

/* Clipping in isolation: one SGD step at lr 1 moves every parameter by exactly the
 * clipped gradient, whose norm is the max norm. */
START_TEST(clipping_scales_to_the_max_norm)
{
    slm_optim_params_t op;
    slm_optim_params_default(&op);
    op.kind = SLM_OPTIM_SGD;
    op.lr = 1.0f;
    op.clip_norm = 0.25f;
    quadratic_t q;
    quad_build(&q, &op);
    double before[N_Q][Q_MAX], sum = 0.0;
    memcpy(before, q.rp, sizeof before);
    for (int i = 0; i < N_Q; i++)
        for (int k = 0; k < q.n[i]; k++)
            sum += 4.0 * q.c[i][k] * q.c[i][k] * q.rp[i][k] * q.rp[i][k];
    ck_assert_msg(sqrt(sum) > 1.0, "the test needs gradients above the max norm");
    CK_OK(slm_optim_step(q.o, q.s, &err));
    ck_assert_msg(fabs(slm_optim_grad_norm(q.o) - sqrt(sum)) <= 1e-5 * sqrt(sum),
                  "norm %.9g, want %.9g", slm_optim_grad_norm(q.o), sqrt(sum));
    double moved = 0.0;
    for (int i = 0; i < N_Q; i++) {
        float now[Q_MAX];
        tc_get(q.p[i], now, (size_t)q.n[i] * sizeof *now);
        for (int k = 0; k < q.n[i]; k++)
            moved += (now[k] - before[i][k]) * (now[k] - before[i][k]);
    }
    ck_assert_msg(fabs(sqrt(moved) - 0.25) < 1e-5, "update norm %.9g, want 0.25", sqrt(moved));
    quad_free(&q);
}
END_TEST

/* ---- schedules ---- */

static slm_optim_params_t sched_params(int schedule, int64_t warmup, int64_t total, float floor)
{
    slm_optim_params_t p;
    slm_optim_params_default(&p);
    p.lr = 1e-3f;
    p.schedule = schedule;
    p.warmup_steps = warmup;
    p.total_steps = total;
    p.min_lr_ratio = floor;
    return p;
}

static void expect_lr(const slm_optim_params_t *p, int64_t step, double want)
{
    double got = slm_optim_lr_at(p, step);
    ck_assert_msg(fabs(got - want) <= 1e-12, "schedule %d at step %lld: %.15g, want %.15g",
                  p->schedule, (long long)step, got, want);
}

START_TEST(schedule_values)
{
    const double lr = (double)1e-3f;
    slm_optim_params_t c = sched_params(SLM_LR_CONSTANT, 4, 0, 0.0f);
    expect_lr(&c, 0, 0.0);
    expect_lr(&c, 2, lr / 2);
    expect_lr(&c, 4, lr);
    expect_lr(&c, 1000, lr);
    slm_optim_params_t l = sched_params(SLM_LR_LINEAR, 10, 110, 0.0f);
    expect_lr(&l, 5, lr / 2);
    expect_lr(&l, 10, lr);
    expect_lr(&l, 35, lr * 0.75);
    expect_lr(&l, 110, 0.0);
    expect_lr(&l, 500, 0.0);
    slm_optim_params_t k = sched_params(SLM_LR_COSINE, 10, 110, 0.0f);
    expect_lr(&k, 0, 0.0);
    expect_lr(&k, 10, lr);
    expect_lr(&k, 35, lr * (1.0 + sqrt(0.5)) / 2);   /* a quarter of the way: cos(pi/4) */
    expect_lr(&k, 60, lr / 2);
    expect_lr(&k, 110, 0.0);
    expect_lr(&k, 200, 0.0);                          /* stays at the floor */
    const double r = (double)0.1f;
    slm_optim_params_t f = sched_params(SLM_LR_COSINE, 0, 100, 0.1f);
    expect_lr(&f, 0, lr);
    expect_lr(&f, 50, lr * (r + (1 - r) / 2));
    expect_lr(&f, 100, lr * r);
    slm_optim_params_t lf = sched_params(SLM_LR_LINEAR, 0, 10, 0.5f);
    expect_lr(&lf, 5, lr * 0.75);
    expect_lr(&lf, 10, lr * 0.5);
}
END_TEST

/* ---- saved states: the MLP of test-autodiff, named ---- */

enum { MLP_D = 6, MLP_C = 4, MLP_N = 16 };

typedef struct mlp {
    slm_graph_t *g;
    slm_optim_t *o;
    slm_tensor_t *x, *t, *w1, *gain, *w2, *loss;
    bool allocated;
} mlp_t;

typedef struct mlp_shape {
    int64_t hidden;
    const char *gain_name;
    bool gain_trains;
} mlp_shape_t;

static const mlp_shape_t MLP_STD = {8, "gain", true};

static slm_optim_params_t mlp_params(void)
{
    slm_optim_params_t op;
    slm_optim_params_default(&op);
    op.lr = 0.05f;
    op.weight_decay = 0.1f;
    op.no_decay = slm_optim_no_decay_1d;
    op.clip_norm = 1.0f;
    op.schedule = SLM_LR_COSINE;
    op.warmup_steps = 2;
    op.total_steps = 10;
    op.min_lr_ratio = 0.1f;
    return op;
}

/* x -> W1 -> rms_norm -> * gain -> silu -> W2 -> cross_entropy; the optimizer made,
 * not yet allocated. */
static mlp_t mlp_build(const mlp_shape_t *sh, const slm_optim_params_t *op)
{
    mlp_t m = {.g = slm_graph_new(0)};
    slm_graph_t *g = m.g;
    err_reset();
    m.x = slm_tensor_new_2d(g, SLM_TYPE_F32, MLP_D, MLP_N);
    m.t = slm_tensor_new_2d(g, SLM_TYPE_F32, MLP_C, MLP_N);
    m.w1 = slm_tensor_new_2d(g, SLM_TYPE_F32, MLP_D, sh->hidden);
    m.gain = slm_tensor_new_1d(g, SLM_TYPE_F32, sh->hidden);
    m.w2 = slm_tensor_new_2d(g, SLM_TYPE_F32, sh->hidden, MLP_C);
    slm_tensor_set_flags(m.x, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(m.t, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(m.w1, SLM_TENSOR_PARAM);
    slm_tensor_set_flags(m.gain, sh->gain_trains ? SLM_TENSOR_PARAM : SLM_TENSOR_INPUT);
    slm_tensor_set_flags(m.w2, SLM_TENSOR_PARAM);
    slm_tensor_set_name(m.w1, "w1");
    slm_tensor_set_name(m.gain, sh->gain_name);
    slm_tensor_set_name(m.w2, "w2");
    slm_tensor_t *h = slm_mul_mat(g, m.w1, m.x);
    h = slm_silu(g, slm_mul(g, slm_rms_norm(g, h, 1e-5f), m.gain));
    m.loss = slm_cross_entropy(g, slm_mul_mat(g, m.w2, h), m.t);
    CK_OK(slm_graph_backward(g, m.loss, &err));
    m.o = slm_optim_new(g, op, &err);
    ck_assert_msg(m.o != NULL, "optimizer: %s", err.message);
    return m;
}

static void fill(slm_tensor_t *t, uint64_t seed, float scale)
{
    size_t n = (size_t)slm_tensor_nelements(t);
    float *v = malloc(n * sizeof *v);
    tc_fill(v, n, &seed, scale);
    tc_set(t, v, n * sizeof *v);
    free(v);
}

/* Inputs and targets from fixed seeds, parameters too unless the caller sets them. */
static void mlp_alloc(mlp_t *m, slm_sched_t *s, bool init_params)
{
    tc_alloc(s, m->g);
    m->allocated = true;
    fill(m->x, 11, 1.0f);
    float onehot[MLP_C * MLP_N] = {0};
    for (int n = 0; n < MLP_N; n++)
        onehot[n * MLP_C + (n * 7 + 3) % MLP_C] = 1.0f;
    tc_set(m->t, onehot, sizeof onehot);
    fill(m->gain, 13, 1.0f);
    if (!init_params)
        return;
    fill(m->w1, 12, 0.5f);
    fill(m->w2, 14, 0.5f);
}

static void mlp_steps(mlp_t *m, slm_sched_t *s, int n, float *losses)
{
    for (int i = 0; i < n; i++) {
        CK_OK(slm_optim_step(m->o, s, &err));
        tc_get(m->loss, &losses[i], sizeof losses[i]);
        ck_assert(isfinite(losses[i]));
    }
}

static void mlp_free(mlp_t *m)
{
    slm_optim_free(m->o);
    slm_graph_free(m->g);
}

/* Every trainable parameter's bytes, concatenated (w1, gain, w2). */
typedef struct snapshot {
    float v[512];
    size_t n;
} snapshot_t;

static snapshot_t mlp_params_get(const mlp_t *m)
{
    snapshot_t sn = {.n = 0};
    const slm_tensor_t *ps[3] = {m->w1, m->gain, m->w2};
    for (int i = 0; i < 3; i++) {
        size_t n = (size_t)slm_tensor_nelements(ps[i]);
        ck_assert_uint_le(sn.n + n, 512);
        tc_get(ps[i], sn.v + sn.n, n * sizeof(float));
        sn.n += n;
    }
    return sn;
}

static void mlp_params_set(mlp_t *m, const snapshot_t *sn)
{
    slm_tensor_t *ps[3] = {m->w1, m->gain, m->w2};
    size_t at = 0;
    for (int i = 0; i < 3; i++) {
        size_t n = (size_t)slm_tensor_nelements(ps[i]);
        tc_set(ps[i], sn->v + at, n * sizeof(float));
        at += n;
    }
}

static char tmpdir[256];

static void tmp_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/slmops-optim-XXXXXX", tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmp_teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

enum { N_FIRST = 3, N_MORE = 5 };

/* N steps, save (file and memory), load into fresh optimizers over fresh graphs, M more
 * steps: the losses, the parameters and the saved state equal, bit for bit, those of
 * N + M uninterrupted steps. */
START_TEST(resume_is_bit_exact)
{
    slm_registry_t *reg = tc_registry(NULL);
    slm_sched_t *s = tc_sched(reg, NULL);
    slm_optim_params_t op = mlp_params();

    mlp_t a = mlp_build(&MLP_STD, &op);
    mlp_alloc(&a, s, true);
    float la[N_FIRST + N_MORE];
    mlp_steps(&a, s, N_FIRST + N_MORE, la);
    snapshot_t pa = mlp_params_get(&a);
    void *sa;
    size_t na;
    CK_OK(slm_optim_save_mem(a.o, &sa, &na, &err));
    ck_assert(slm_optim_grad_norm(a.o) > 0.0);
    mlp_free(&a);

    mlp_t b = mlp_build(&MLP_STD, &op);
    mlp_alloc(&b, s, true);
    float lb[N_FIRST];
    mlp_steps(&b, s, N_FIRST, lb);
    ck_assert_mem_eq(lb, la, sizeof lb);
    char path[512];
    snprintf(path, sizeof path, "%s/optim.safetensors", tmpdir);
    CK_OK(slm_optim_save(b.o, path, &err));
    void *sb;
    size_t nb;
    CK_OK(slm_optim_save_mem(b.o, &sb, &nb, &err));
    snapshot_t pb = mlp_params_get(&b);
    mlp_free(&b);

    /* From the file, loaded after allocation, into an optimizer made with other
     * hyper-parameters: the saved ones replace them. */
    for (int variant = 0; variant < 2; variant++) {
        slm_optim_params_t other = op;
        other.lr = 0.01f;
        other.total_steps = 50;
        mlp_t c = mlp_build(&MLP_STD, variant == 0 ? &other : &op);
        if (variant == 0) {
            mlp_alloc(&c, s, false);
            CK_OK(slm_optim_load(c.o, path, &err));
        } else {
            /* From memory, loaded before allocation: held until the first step. */
            CK_OK(slm_optim_load_mem(c.o, sb, nb, "state", &err));
            mlp_alloc(&c, s, false);
        }
        mlp_params_set(&c, &pb);
        ck_assert_int_eq(slm_optim_n_steps(c.o), N_FIRST);
        slm_optim_params_t got = {.struct_size = sizeof got};
        slm_optim_get_params(c.o, &got);
        ck_assert(got.lr == op.lr && got.total_steps == op.total_steps);
        ck_assert_ptr_null(got.no_decay);
        /* Saving before any step gives back the bytes loaded. */
        void *sc;
        size_t nc;
        CK_OK(slm_optim_save_mem(c.o, &sc, &nc, &err));
        ck_assert_uint_eq(nc, nb);
        ck_assert_msg(memcmp(sc, sb, nb) == 0, "variant %d: state changed by a load", variant);
        free(sc);
        float lc[N_MORE];
        mlp_steps(&c, s, N_MORE, lc);
        for (int i = 0; i < N_MORE; i++)
            ck_assert_msg(memcmp(&lc[i], &la[N_FIRST + i], sizeof lc[i]) == 0,
                          "variant %d, step %d: loss %.9g after resuming, %.9g uninterrupted",
                          variant, N_FIRST + i + 1, (double)lc[i], (double)la[N_FIRST + i]);
        snapshot_t pc = mlp_params_get(&c);
        ck_assert_uint_eq(pc.n, pa.n);
        ck_assert_msg(memcmp(pc.v, pa.v, pa.n * sizeof(float)) == 0,
                      "variant %d: parameters differ from the uninterrupted run", variant);
        CK_OK(slm_optim_save_mem(c.o, &sc, &nc, &err));
        ck_assert_uint_eq(nc, na);
        ck_assert_msg(memcmp(sc, sa, na) == 0, "variant %d: moments differ", variant);
        free(sc);
        mlp_free(&c);
    }
    free(sa);
    free(sb);
    slm_sched_free(s);
    slm_registry_free(reg);
}
END_TEST

/* A state saved after two steps of the standard MLP. */
static void *saved_state(size_t *size)
{
    slm_registry_t *reg = tc_registry(NULL);
    slm_sched_t *s = tc_sched(reg, NULL);
    slm_optim_params_t op = mlp_params();
    mlp_t m = mlp_build(&MLP_STD, &op);
    mlp_alloc(&m, s, true);
    float l[2];
    mlp_steps(&m, s, 2, l);
    void *data;
    CK_OK(slm_optim_save_mem(m.o, &data, size, &err));
    mlp_free(&m);
    slm_sched_free(s);
    slm_registry_free(reg);
    return data;
}

/* Loading `data` into an optimizer over `sh` built with `op` fails with `code` and a
 * message holding `want`; the optimizer is left as it was. */
static void expect_refused(const void *data, size_t size, const mlp_shape_t *sh,
                           const slm_optim_params_t *op, int code, const char *want)
{
    mlp_t m = mlp_build(sh, op);
    err_reset();
    int rc = slm_optim_load_mem(m.o, data, size, "ckpt/optimizer", &err);
    ck_assert_msg(rc == code, "want %d (%s), got %d: %s", code, want, rc, err.message);
    ck_assert_msg(strstr(err.message, want) && strstr(err.message, "ckpt/optimizer"),
                  "message '%s' should name the state and say '%s'", err.message, want);
    ck_assert_int_eq(slm_optim_n_steps(m.o), 0);
    slm_optim_params_t got = {.struct_size = sizeof got};
    slm_optim_get_params(m.o, &got);
    ck_assert(got.lr == op->lr);
    mlp_free(&m);
}

START_TEST(load_refuses_a_mismatch)
{
    size_t n;
    void *data = saved_state(&n);
    slm_optim_params_t op = mlp_params();
    mlp_shape_t wider = MLP_STD, renamed = MLP_STD, frozen = MLP_STD;
    wider.hidden = 9;
    renamed.gain_name = "scale";
    frozen.gain_trains = false;
    expect_refused(data, n, &wider, &op, SLM_E_INVALID, "'w1.adam_m' does not have the shape");
    expect_refused(data, n, &renamed, &op, SLM_E_INVALID, "no state for parameter 'scale'");
    expect_refused(data, n, &frozen, &op, SLM_E_INVALID, "state for parameter 'gain', which");
    slm_optim_params_t sgd = op, noclip = op, decay_all = op;
    sgd.kind = SLM_OPTIM_SGD;
    noclip.clip_norm = 0.0f;
    decay_all.no_decay = NULL;
    expect_refused(data, n, &MLP_STD, &sgd, SLM_E_INVALID, "adamw optimizer; this one is sgd");
    expect_refused(data, n, &MLP_STD, &noclip, SLM_E_INVALID, "gradient clipping");
    expect_refused(data, n, &MLP_STD, &decay_all, SLM_E_INVALID, "'gain' skips weight decay");
    free(data);
}
END_TEST

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

START_TEST(load_refuses_a_damaged_state)
{
    size_t n;
    unsigned char *data = saved_state(&n);
    slm_optim_params_t op = mlp_params();
    /* Cut short: the last moment's bytes are missing. */
    expect_refused(data, n - 4, &MLP_STD, &op, SLM_E_FORMAT, "data offsets outside");
    expect_refused(data, 5, &MLP_STD, &op, SLM_E_FORMAT, "too short");
    /* A header longer than the file. */
    unsigned char *bad = malloc(n);
    memcpy(bad, data, n);
    put_u64(bad, (uint64_t)n);
    expect_refused(bad, n, &MLP_STD, &op, SLM_E_FORMAT, "header");
    /* A flipped byte inside the JSON header. */
    memcpy(bad, data, n);
    bad[8] ^= 0x5a;
    expect_refused(bad, n, &MLP_STD, &op, SLM_E_FORMAT, "not a JSON object");
    /* Valid JSON, but not an optimizer state (a safetensors file of something else). */
    static const char other[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    unsigned char st[8 + sizeof other - 1 + 4] = {0};
    put_u64(st, sizeof other - 1);
    memcpy(st + 8, other, sizeof other - 1);
    expect_refused(st, sizeof st, &MLP_STD, &op, SLM_E_FORMAT, "not an slmops optimizer state");
    free(bad);
    free(data);
}
END_TEST

START_TEST(file_errors_and_atomic_save)
{
    slm_registry_t *reg = tc_registry(NULL);
    slm_sched_t *s = tc_sched(reg, NULL);
    slm_optim_params_t op = mlp_params();
    mlp_t m = mlp_build(&MLP_STD, &op);
    char path[512], missing[512];
    snprintf(path, sizeof path, "%s/state", tmpdir);
    snprintf(missing, sizeof missing, "%s/nowhere/state", tmpdir);
    ck_assert_int_eq(slm_optim_load(m.o, path, &err), SLM_E_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.message, path));
    ck_assert_int_ne(slm_optim_save(m.o, missing, &err), SLM_OK);
    ck_assert_int_ne(access(missing, F_OK), 0);
    mlp_alloc(&m, s, true);
    float l[2];
    mlp_steps(&m, s, 1, l);
    CK_OK(slm_optim_save(m.o, path, &err));
    mlp_steps(&m, s, 1, l);
    CK_OK(slm_optim_save(m.o, path, &err));   /* replaces the first */
    mlp_t r = mlp_build(&MLP_STD, &op);
    CK_OK(slm_optim_load(r.o, path, &err));
    ck_assert_int_eq(slm_optim_n_steps(r.o), 2);
    mlp_free(&r);
    mlp_free(&m);
    slm_sched_free(s);
    slm_registry_free(reg);
}
END_TEST

START_TEST(construction_is_checked)
{
    slm_optim_params_t op = mlp_params();
    mlp_t m = mlp_build(&MLP_STD, &op);
    /* One optimizer per graph. */
    ck_assert_ptr_null(slm_optim_new(m.g, &op, &err));
    ck_assert_int_eq(err.code, SLM_E_STATE);
    /* Stepping before slm_sched_alloc. */
    slm_registry_t *reg = tc_registry(NULL);
    slm_sched_t *s = tc_sched(reg, NULL);
    ck_assert_int_eq(slm_optim_step(m.o, s, &err), SLM_E_STATE);
    ck_assert_ptr_nonnull(strstr(err.message, "slm_sched_alloc"));
    mlp_free(&m);
    slm_sched_free(s);
    slm_registry_free(reg);

    /* Out-of-range hyper-parameters, each named. */
    slm_optim_params_t bad[4];
    for (int i = 0; i < 4; i++)
        bad[i] = op;
    bad[0].total_steps = bad[0].warmup_steps;
    bad[1].eps = 0.0f;
    bad[2].clip_norm = -1.0f;
    bad[3].min_lr_ratio = 2.0f;
    static const char *const why[4] = {"total steps", "eps", "clipping norm", "ratio"};
    for (int i = 0; i < 4; i++) {
        slm_graph_t *g = slm_graph_new(0);
        slm_tensor_t *p = slm_tensor_new_1d(g, SLM_TYPE_F32, 3);
        slm_tensor_set_flags(p, SLM_TENSOR_PARAM);
        CK_OK(slm_graph_backward(g, slm_sum(g, slm_mul(g, p, p)), &err));
        ck_assert_ptr_null(slm_optim_new(g, &bad[i], &err));
        ck_assert_int_eq(err.code, SLM_E_INVALID);
        ck_assert_msg(strstr(err.message, why[i]), "'%s' should say '%s'", err.message, why[i]);
        /* The state of an unnamed parameter cannot be saved. */
        slm_optim_t *o = slm_optim_new(g, NULL, &err);
        ck_assert_ptr_nonnull(o);
        void *d;
        size_t n;
        ck_assert_int_eq(slm_optim_save_mem(o, &d, &n, &err), SLM_E_INVALID);
        ck_assert_ptr_nonnull(strstr(err.message, "no name"));
        slm_optim_free(o);
        slm_graph_free(g);
    }

    /* A graph whose loss reaches no PARAM has nothing to train. */
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *x = slm_tensor_new_1d(g, SLM_TYPE_F32, 3);
    slm_tensor_t *p = slm_tensor_new_1d(g, SLM_TYPE_F32, 3);
    slm_tensor_set_flags(x, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(p, SLM_TENSOR_PARAM);
    CK_OK(slm_graph_backward(g, slm_sum(g, x), &err));
    ck_assert_ptr_null(slm_optim_new(g, NULL, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "nothing to train"));
    slm_graph_free(g);
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("updates");
    tcase_add_loop_test(tc, adamw_matches_double_reference, 0, 2);
    tcase_add_loop_test(tc, sgd_matches_double_reference, 0, 2);
    tcase_add_test(tc, clipping_scales_to_the_max_norm);
    tcase_add_test(tc, schedule_values);
    suite_add_tcase(s, tc);
    tc = tcase_create("state");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, resume_is_bit_exact);
    tcase_add_test(tc, load_refuses_a_mismatch);
    tcase_add_test(tc, load_refuses_a_damaged_state);
    tcase_add_test(tc, file_errors_and_atomic_save);
    tcase_add_test(tc, construction_is_checked);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(optim_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
