/* The scheduler: data access, views sharing storage, memory reuse on a chain,
 * re-allocation after the graph grows, and CPU fallback from a partial backend. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>

#include "common.h"

static slm_registry_t *reg;
static slm_sched_t *sched;

static void setup(void)
{
    reg = tc_registry(NULL);
    sched = tc_sched(reg, "cpu");
}

static void teardown(void)
{
    slm_sched_free(sched);
    slm_registry_free(reg);
}

START_TEST(set_get_round_trip_and_bounds)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *a = slm_tensor_new_2d(g, SLM_TYPE_F32, 4, 2);
    slm_tensor_set_flags(a, SLM_TENSOR_INPUT);
    float in[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8] = {0};
    /* Before allocation there is nowhere to put data. */
    ck_assert_int_eq(slm_tensor_set_data(a, in, 0, sizeof in), SLM_E_STATE);
    tc_alloc(sched, g);
    tc_set(a, in, sizeof in);
    ck_assert_int_eq(slm_tensor_get_data(a, out, 4 * sizeof(float), 4 * sizeof(float)), SLM_OK);
    ck_assert(out[0] == 5.0f && out[3] == 8.0f);
    ck_assert_int_eq(slm_tensor_set_data(a, in, 4, sizeof in), SLM_E_INVALID);
    ck_assert_int_eq(slm_tensor_get_data(a, out, 0, sizeof in + 4), SLM_E_INVALID);
    slm_graph_free(g);
}
END_TEST

START_TEST(views_share_storage)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *a = slm_tensor_new_2d(g, SLM_TYPE_F32, 3, 4);
    slm_tensor_set_flags(a, SLM_TENSOR_INPUT);
    const int64_t ne[1] = {12};
    slm_tensor_t *flat = slm_reshape(g, a, 1, ne);
    const int64_t vne[1] = {3}, vnb[1] = {4};
    slm_tensor_t *row2 = slm_view(g, a, 1, vne, vnb, 2 * 3 * sizeof(float));
    /* A transposed copy reads a's storage through non-contiguous strides. */
    slm_tensor_t *t = slm_cont(g, slm_transpose(g, a));
    slm_tensor_set_flags(t, SLM_TENSOR_OUTPUT);
    tc_alloc(sched, g);
    float in[12], out[12];
    for (int i = 0; i < 12; i++)
        in[i] = (float)i;
    tc_set(a, in, sizeof in);
    tc_get(flat, out, sizeof out);
    ck_assert(memcmp(in, out, sizeof in) == 0);
    tc_get(row2, out, 3 * sizeof(float));
    ck_assert(out[0] == 6.0f && out[2] == 8.0f);
    /* Writing through a view changes the source: no copy was made. */
    const float nine[3] = {90, 91, 92};
    tc_set(row2, nine, sizeof nine);
    tc_get(a, out, sizeof out);
    ck_assert(out[6] == 90.0f && out[8] == 92.0f && out[5] == 5.0f && out[9] == 9.0f);
    tc_compute(sched, g);
    tc_get(t, out, sizeof out);
    /* t is [4,3]: t[r][c] = a[c][r]. */
    ck_assert(out[0 * 4 + 2] == 90.0f);
    ck_assert(out[1 * 4 + 3] == 10.0f);
    slm_graph_free(g);
}
END_TEST

START_TEST(memory_plan_reuses_intermediates)
{
    enum { N = 1024, STEPS = 12 };
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *x = slm_tensor_new_1d(g, SLM_TYPE_F32, N);
    slm_tensor_set_flags(x, SLM_TENSOR_INPUT);
    slm_tensor_t *y = x;
    for (int i = 0; i < STEPS; i++)
        y = slm_scale(g, y, 1.5f);
    slm_tensor_set_flags(y, SLM_TENSOR_OUTPUT);
    tc_alloc(sched, g);
    /* STEPS - 1 intermediates of N floats; a chain needs only two live at a time. */
    uint64_t sum = (uint64_t)(STEPS - 1) * N * sizeof(float);
    uint64_t used = slm_sched_compute_bytes(sched);
    ck_assert_msg(used > 0 && used <= 2 * N * sizeof(float), "%llu bytes for a chain of %llu",
                  (unsigned long long)used, (unsigned long long)sum);
    float *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out);
    for (int i = 0; i < N; i++)
        in[i] = (float)(i % 7) - 3.0f;
    tc_set(x, in, N * sizeof *in);
    tc_compute(sched, g);
    tc_compute(sched, g);   /* the static graph runs again with the same plan */
    tc_get(y, out, N * sizeof *out);
    double f = pow(1.5, STEPS);
    for (int i = 0; i < N; i++)
        ck_assert_msg(fabs(out[i] - in[i] * f) <= 1e-4 * fabs(in[i] * f) + 1e-6, "element %d", i);
    free(in);
    free(out);
    slm_graph_free(g);
}
END_TEST

/* Intermediates read only through a view (reshape, permute: the forward builder's
 * q/k/v, the backward's reshaped gradients) are consumed like any other: they go to
 * the reused arena, not to persistent storage. */
START_TEST(memory_plan_reuses_intermediates_read_through_views)
{
    enum { N = 1024, STEPS = 12 };
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *x = slm_tensor_new_1d(g, SLM_TYPE_F32, N);
    slm_tensor_set_flags(x, SLM_TENSOR_INPUT);
    slm_tensor_t *y = x;
    for (int i = 0; i < STEPS; i++) {
        const int64_t ne[2] = {i % 2 ? 32 : 64, N / (i % 2 ? 32 : 64)};
        y = slm_scale(g, slm_reshape(g, y, 2, ne), 1.5f);
    }
    slm_tensor_set_flags(y, SLM_TENSOR_OUTPUT);
    tc_alloc(sched, g);
    uint64_t used = slm_sched_compute_bytes(sched);
    ck_assert_msg(used >= N * sizeof(float) && used <= 2 * N * sizeof(float),
                  "%llu bytes of arena for a chain of %d intermediates of %zu bytes read "
                  "through views", (unsigned long long)used, STEPS - 1, N * sizeof(float));
    float *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out);
    for (int i = 0; i < N; i++)
        in[i] = (float)(i % 7) - 3.0f;
    tc_set(x, in, N * sizeof *in);
    tc_compute(sched, g);
    tc_get(y, out, N * sizeof *out);
    double f = pow(1.5, STEPS);
    for (int i = 0; i < N; i++)
        ck_assert_msg(fabs(out[i] - in[i] * f) <= 1e-4 * fabs(in[i] * f) + 1e-6, "element %d", i);
    free(in);
    free(out);
    slm_graph_free(g);
}
END_TEST

START_TEST(grown_graph_needs_new_alloc_and_keeps_data)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *p = slm_tensor_new_1d(g, SLM_TYPE_F32, 4);
    slm_tensor_set_flags(p, SLM_TENSOR_PARAM);
    slm_tensor_t *y = slm_scale(g, p, 3.0f);
    tc_alloc(sched, g);
    const float in[4] = {1, 2, 3, 4};
    tc_set(p, in, sizeof in);
    slm_tensor_t *loss = slm_sum(g, slm_mul(g, y, y));
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_graph_backward(g, loss, &err), SLM_OK);
    ck_assert_int_eq(slm_sched_compute(sched, g, &err), SLM_E_STATE);
    tc_alloc(sched, g);
    tc_compute(sched, g);
    float l, grad[4];
    tc_get(loss, &l, sizeof l);
    tc_get(slm_tensor_grad(p), grad, sizeof grad);
    /* loss = sum (3p)^2 = 9 * 30; d/dp = 18 p. */
    ck_assert_float_eq_tol(l, 270.0f, 1e-3f);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq_tol(grad[i], 18.0f * in[i], 1e-4f);
    slm_graph_free(g);
}
END_TEST

START_TEST(adamw_updates_params_in_place)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *p = slm_tensor_new_1d(g, SLM_TYPE_F32, 3);
    slm_tensor_set_flags(p, SLM_TENSOR_PARAM);
    slm_tensor_t *loss = slm_sum(g, slm_mul(g, p, p));
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_graph_backward(g, loss, &err), SLM_OK);
    slm_optim_params_t hp;
    slm_optim_params_default(&hp);
    hp.lr = 0.1f;
    slm_optim_t *o = slm_optim_new(g, &hp, &err);
    ck_assert_msg(o != NULL, "optimizer: %s", err.message);
    tc_alloc(sched, g);
    const float in[3] = {1.0f, -2.0f, 0.5f};
    tc_set(p, in, sizeof in);
    ck_assert_msg(slm_optim_step(o, sched, &err) == SLM_OK, "step: %s", err.message);
    float out[3];
    tc_get(p, out, sizeof out);
    /* The first bias-corrected Adam step moves each weight by lr against its gradient's sign. */
    for (int i = 0; i < 3; i++)
        ck_assert_float_eq_tol(out[i], in[i] - (in[i] > 0 ? 0.1f : -0.1f), 1e-4f);
    /* Later steps follow the textbook AdamW recurrence (host reference in double). */
    double ref[3], m[3] = {0}, v[3] = {0};
    for (int i = 0; i < 3; i++)
        ref[i] = in[i];
    for (int t = 1; t <= 5; t++) {
        for (int i = 0; i < 3; i++) {
            double gr = 2.0 * ref[i];
            m[i] = 0.9 * m[i] + 0.1 * gr;
            v[i] = 0.999 * v[i] + 0.001 * gr * gr;
            double mh = m[i] / (1 - pow(0.9, t)), vh = v[i] / (1 - pow(0.999, t));
            ref[i] -= 0.1 * mh / (sqrt(vh) + 1e-8);
        }
        if (t > 1)
            ck_assert_msg(slm_optim_step(o, sched, &err) == SLM_OK, "step: %s", err.message);
    }
    tc_get(p, out, sizeof out);
    for (int i = 0; i < 3; i++)
        ck_assert_float_eq_tol(out[i], (float)ref[i], 1e-4f);
    slm_optim_free(o);
    slm_graph_free(g);
}
END_TEST

/* ---- fallback through the add/scale-only test backend ---- */

START_TEST(fallback_runs_mul_mat_on_cpu)
{
    tc_log_capture();
    slm_registry_t *r = tc_registry(tc_testbe_dir());
    slm_sched_t *s = tc_sched(r, "testbe:0");
    ck_assert_str_eq(slm_sched_device(s)->id, "testbe:0");
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *w = slm_tensor_new_2d(g, SLM_TYPE_F32, 3, 2);
    slm_tensor_t *x = slm_tensor_new_2d(g, SLM_TYPE_F32, 3, 2);
    slm_tensor_t *b = slm_tensor_new_2d(g, SLM_TYPE_F32, 2, 1);
    slm_tensor_set_flags(w, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(x, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(b, SLM_TENSOR_INPUT);
    /* scale (testbe) -> mul_mat (cpu) -> add (testbe) -> mul_mat (cpu) -> scale (testbe) */
    slm_tensor_t *h = slm_add(g, slm_mul_mat(g, w, slm_scale(g, x, 2.0f)), b);
    slm_tensor_t *y = slm_scale(g, slm_mul_mat(g, h, h), 0.5f);
    slm_tensor_set_flags(y, SLM_TENSOR_OUTPUT);
    tc_alloc(s, g);
    ck_assert_uint_eq(slm_sched_n_fallback(s), 2);
    ck_assert_msg(tc_log_contains("mul_mat", "cpu:0") == 1,
                  "one info line names mul_mat, its types and both devices");
    ck_assert_int_eq(tc_log_contains("mul_mat", "testbe:0"), 1);
    const float wv[6] = {1, 0, 2, -1, 1, 0}, xv[6] = {1, 2, 3, 0, -1, 1}, bv[2] = {0.5f, -1};
    tc_set(w, wv, sizeof wv);
    tc_set(x, xv, sizeof xv);
    tc_set(b, bv, sizeof bv);
    tc_compute(s, g);
    /* Host reference. */
    float hr[2][2], yr[2][2], out[4];
    for (int n = 0; n < 2; n++)
        for (int m = 0; m < 2; m++) {
            float acc = 0;
            for (int k = 0; k < 3; k++)
                acc += wv[m * 3 + k] * 2.0f * xv[n * 3 + k];
            hr[n][m] = acc + bv[m];
        }
    for (int n = 0; n < 2; n++)
        for (int m = 0; m < 2; m++)
            yr[n][m] = 0.5f * (hr[m][0] * hr[n][0] + hr[m][1] * hr[n][1]);
    tc_get(y, out, sizeof out);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq_tol(out[i], yr[i / 2][i % 2], 1e-5f);
    slm_graph_free(g);
    slm_sched_free(s);
    slm_registry_free(r);
    tc_testbe_remove();
    slm_log_set_handler(NULL, NULL);
}
END_TEST

START_TEST(fallback_training_step)
{
    /* Backward and AdamW nodes also fall back; params updated on cpu:0 are written home. */
    slm_registry_t *r = tc_registry(tc_testbe_dir());
    slm_sched_t *s = tc_sched(r, "testbe:0");
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *p = slm_tensor_new_1d(g, SLM_TYPE_F32, 3);
    slm_tensor_set_flags(p, SLM_TENSOR_PARAM);
    slm_tensor_t *loss = slm_sum(g, slm_mul(g, slm_scale(g, p, 2.0f), p));
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_graph_backward(g, loss, &err), SLM_OK);
    slm_optim_params_t hp;
    slm_optim_params_default(&hp);
    hp.lr = 0.1f;
    slm_optim_t *o = slm_optim_new(g, &hp, &err);
    ck_assert_msg(o != NULL, "optimizer: %s", err.message);
    tc_alloc(s, g);
    ck_assert_uint_gt(slm_sched_n_fallback(s), 0);
    const float in[3] = {1.0f, -2.0f, 0.5f};
    tc_set(p, in, sizeof in);
    ck_assert_msg(slm_optim_step(o, s, &err) == SLM_OK, "step: %s", err.message);
    float out[3], l;
    tc_get(loss, &l, sizeof l);
    ck_assert_float_eq_tol(l, 2.0f * (1 + 4 + 0.25f), 1e-5f);
    tc_get(p, out, sizeof out);
    for (int i = 0; i < 3; i++)
        ck_assert_float_eq_tol(out[i], in[i] - (in[i] > 0 ? 0.1f : -0.1f), 1e-4f);
    slm_optim_free(o);
    slm_graph_free(g);
    slm_sched_free(s);
    slm_registry_free(r);
    tc_testbe_remove();
}
END_TEST

/* ---- interface version 2: resident mirrors, several devices, record/replay ---- */

/* y = w . (2x) on the CPU fallback, z = w + w on testbe: w lives on testbe and has a
 * mirror on the CPU. The 2x intermediate is copied before every compute; w only
 * when its data changed. */
START_TEST(resident_leaf_copied_only_when_set)
{
    tc_log_capture();
    slm_log_set_level(SLM_LOG_DEBUG);
    slm_registry_t *r = tc_registry(tc_testbe_dir());
    slm_sched_t *s = tc_sched(r, "testbe:0");
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *w = slm_tensor_new_2d(g, SLM_TYPE_F32, 2, 1);
    slm_tensor_t *x = slm_tensor_new_2d(g, SLM_TYPE_F32, 2, 1);
    slm_tensor_set_name(w, "weight");
    slm_tensor_set_flags(w, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(x, SLM_TENSOR_INPUT);
    slm_tensor_t *x2 = slm_scale(g, x, 2.0f);
    slm_tensor_set_name(x2, "doubled");
    slm_tensor_t *y = slm_mul_mat(g, w, x2);
    slm_tensor_t *z = slm_add(g, w, w);
    slm_tensor_set_flags(y, SLM_TENSOR_OUTPUT);
    slm_tensor_set_flags(z, SLM_TENSOR_OUTPUT);
    tc_alloc(s, g);
    float wv[2] = {1, 2}, xv[2] = {3, -1}, out;
    tc_set(w, wv, sizeof wv);
    tc_set(x, xv, sizeof xv);
    for (int i = 0; i < 3; i++)
        tc_compute(s, g);
    ck_assert_int_eq(tc_log_contains("copied 'weight'", "testbe:0 to cpu:0"), 1);
    ck_assert_int_eq(tc_log_contains("copied 'doubled'", "testbe:0 to cpu:0"), 3);
    tc_get(y, &out, sizeof out);
    ck_assert_float_eq_tol(out, 2.0f * (1 * 3 + 2 * -1), 1e-6f);
    wv[1] = 5;
    tc_set(w, wv, sizeof wv);
    tc_compute(s, g);
    ck_assert_int_eq(tc_log_contains("copied 'weight'", "testbe:0 to cpu:0"), 2);
    tc_get(y, &out, sizeof out);
    ck_assert_float_eq_tol(out, 2.0f * (1 * 3 + 5 * -1), 1e-6f);
    slm_graph_free(g);

    /* The same with w bound to a buffer (model weights): slm_buffer_set and
     * slm_tensor_set_data both make the mirror copy again, nothing else does. */
    tc_log_capture();
    slm_log_set_level(SLM_LOG_DEBUG);
    slm_error_t err;
    slm_error_init(&err);
    slm_buffer_t *buf = slm_buffer_new(s, sizeof wv, &err);
    ck_assert_msg(buf != NULL, "%s", err.message);
    g = slm_graph_new(0);
    w = slm_tensor_new_2d(g, SLM_TYPE_F32, 2, 1);
    x = slm_tensor_new_2d(g, SLM_TYPE_F32, 2, 1);
    slm_tensor_set_name(w, "bound weight");
    slm_tensor_set_flags(x, SLM_TENSOR_INPUT);
    ck_assert_int_eq(slm_tensor_bind(w, buf, 0, &err), SLM_OK);
    y = slm_mul_mat(g, w, slm_scale(g, x, 2.0f));
    z = slm_add(g, w, w);
    slm_tensor_set_flags(y, SLM_TENSOR_OUTPUT);
    slm_tensor_set_flags(z, SLM_TENSOR_OUTPUT);
    tc_alloc(s, g);
    wv[1] = 2;
    ck_assert_int_eq(slm_buffer_set(buf, 0, wv, sizeof wv), SLM_OK);
    tc_set(x, xv, sizeof xv);
    tc_compute(s, g);
    tc_compute(s, g);
    ck_assert_int_eq(tc_log_contains("copied 'bound weight'", NULL), 1);
    wv[1] = 7;
    tc_set(w, wv, sizeof wv);
    tc_compute(s, g);
    ck_assert_int_eq(tc_log_contains("copied 'bound weight'", NULL), 2);
    tc_get(y, &out, sizeof out);
    ck_assert_float_eq_tol(out, 2.0f * (1 * 3 + 7 * -1), 1e-6f);
    slm_graph_free(g);
    slm_buffer_free(buf);
    slm_sched_free(s);
    slm_registry_free(r);
    tc_testbe_remove();
    slm_log_set_handler(NULL, NULL);
}
END_TEST

typedef struct tb2_stats {
    int inits, cleanups, copies, records, replays, computes;
} tb2_stats_t;

static tb2_stats_t testbe2_stats(slm_registry_t *r)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_device_t *d = slm_device_open(r, "testbe2:0", NULL, &err);
    ck_assert_msg(d != NULL, "%s", err.message);
    void *ctx;
    const slm_backend_iface_t *b = slm_device_backend(d, &ctx);
    ck_assert_ptr_nonnull(b->get_proc_address);
    ck_assert_ptr_null(b->get_proc_address(slm_device_backend_context(d), "testbe2.nothing"));
    void (*read)(tb2_stats_t *);
    *(void **)&read = b->get_proc_address(slm_device_backend_context(d), "testbe2.stats");
    ck_assert_ptr_nonnull(read);
    tb2_stats_t st;
    read(&st);
    slm_device_close(d);
    return st;
}

/* "testbe2:0,testbe2:1": add on :0, scale on :1, mul_mat on the CPU fallback, so
 * three devices; :1 -> :0 goes by the backend's buffer_copy, each segment of testbe2
 * is recorded once and replayed, and the fallback is reported once. */
START_TEST(several_devices_split_copy_and_replay)
{
    tc_log_capture();
    slm_log_set_level(SLM_LOG_DEBUG);
    const char *dir = tc_testbe_dir();
    tc_testbe2_add();
    slm_registry_t *r = tc_registry(dir);
    slm_sched_t *s = tc_sched(r, "testbe2:0,testbe2:1");
    ck_assert_int_eq(slm_sched_n_devices(s), 2);
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *x = slm_tensor_new_2d(g, SLM_TYPE_F32, 2, 1);
    slm_tensor_t *b = slm_tensor_new_2d(g, SLM_TYPE_F32, 2, 1);
    slm_tensor_set_flags(x, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(b, SLM_TENSOR_INPUT);
    slm_tensor_t *x2 = slm_scale(g, x, 2.0f);
    slm_tensor_set_name(x2, "doubled");
    slm_tensor_t *h = slm_add(g, x2, b);
    slm_tensor_t *y = slm_mul_mat(g, h, h);
    slm_tensor_set_flags(y, SLM_TENSOR_OUTPUT);
    tc_alloc(s, g);
    tc_alloc(s, g);
    ck_assert_int_eq(slm_sched_n_devices(s), 3);
    ck_assert_str_eq(slm_sched_device_at(s, 0)->id, "testbe2:0");
    ck_assert_str_eq(slm_sched_device_at(s, 1)->id, "testbe2:1");
    ck_assert_str_eq(slm_sched_device_at(s, 2)->type, "cpu");
    ck_assert_ptr_null(slm_sched_device_at(s, 3));
    ck_assert_uint_eq(slm_sched_n_fallback(s), 2);
    ck_assert_int_eq(tc_log_contains("mul_mat", "cpu:0"), 1);
    ck_assert_int_eq(tc_log_contains("scale", "testbe2:1"), 1);
    const float xv[2] = {1, -2}, bv[2] = {0.5f, 1};
    tc_set(x, xv, sizeof xv);
    tc_set(b, bv, sizeof bv);
    tc_compute(s, g);
    tc_compute(s, g);
    float out, h0 = 2 * 1 + 0.5f, h1 = 2 * -2 + 1;
    tc_get(y, &out, sizeof out);
    ck_assert_float_eq_tol(out, h0 * h0 + h1 * h1, 1e-5f);
    ck_assert_int_eq(tc_log_contains("copied 'doubled'", "testbe2:1 to testbe2:0 (direct)"), 2);
    tb2_stats_t st = testbe2_stats(r);
    ck_assert_int_eq(st.inits, 1);
    ck_assert_int_eq(st.cleanups, 0);
    ck_assert_int_ge(st.copies, 2);
    ck_assert_int_eq(st.records, 2);    /* one segment per testbe2 device */
    ck_assert_int_eq(st.replays, 4);    /* both, on both computes */
    ck_assert_int_eq(st.computes, 0);
    slm_graph_free(g);
    slm_sched_free(s);
    slm_error_t err;
    slm_error_init(&err);
    slm_sched_options_t o = {.struct_size = sizeof o, .device = "testbe2:0,nosuch:0"};
    ck_assert_ptr_null(slm_sched_new(r, &o, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "nosuch"));
    slm_registry_free(r);
    tc_testbe_remove();
    slm_log_set_handler(NULL, NULL);
}
END_TEST

/* The level of the registry's line about testbe2, from a handler that keeps it. */
static int registry_level = -1;

static void keep_level(slm_log_level_t level, const char *category, const char *msg, void *user)
{
    (void)user;
    if (strcmp(category, "registry") == 0 && strstr(msg, "testbe2.json"))
        registry_level = (int)level;
}

/* A backend whose init fails is disabled with the last thing it logged (info or
 * above) as the reason, not a bare error code; the CPU still serves. Absent
 * hardware (SLM_E_NOT_FOUND) is said at info level, any other failure warns. */
START_TEST(failed_init_gives_the_plugins_reason)
{
    static const char *const how[] = {"nodev", "1"};
    const char *dir = tc_testbe_dir();
    tc_testbe2_add();
    setenv("TESTBE2_INIT_FAIL", how[_i], 1);
    slm_log_set_handler(keep_level, NULL);
    slm_log_set_level(SLM_LOG_DEBUG);
    slm_registry_t *r = tc_registry(dir);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_registry_load(r, "testbe2", &err), _i == 0 ? SLM_E_NOT_FOUND : SLM_E_PLUGIN);
    ck_assert_ptr_nonnull(strstr(err.message, "no testbe2 device (TESTBE2_INIT_FAIL is set)"));
    const slm_plugin_info_t *p = slm_registry_find(r, "backend", "testbe2");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->state, SLM_PLUGIN_DISABLED);
    ck_assert_str_eq(p->reason, "no testbe2 device (TESTBE2_INIT_FAIL is set)");
    ck_assert_int_eq(registry_level, _i == 0 ? SLM_LOG_INFO : SLM_LOG_WARN);
    ck_assert_ptr_null(slm_sched_new(r, &(slm_sched_options_t){.struct_size = sizeof(slm_sched_options_t),
                                                                .device = "testbe2:0"}, &err));
    slm_sched_t *s = tc_sched(r, "cpu:0");
    ck_assert_ptr_nonnull(s);
    slm_sched_free(s);
    slm_registry_free(r);
    unsetenv("TESTBE2_INIT_FAIL");
    tc_testbe_remove();
    slm_log_set_handler(NULL, NULL);
}
END_TEST

static Suite *sched_suite(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("cpu");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, set_get_round_trip_and_bounds);
    tcase_add_test(tc, views_share_storage);
    tcase_add_test(tc, memory_plan_reuses_intermediates);
    tcase_add_test(tc, memory_plan_reuses_intermediates_read_through_views);
    tcase_add_test(tc, grown_graph_needs_new_alloc_and_keeps_data);
    tcase_add_test(tc, adamw_updates_params_in_place);
    suite_add_tcase(s, tc);
    tc = tcase_create("fallback");
    tcase_add_test(tc, fallback_runs_mul_mat_on_cpu);
    tcase_add_test(tc, fallback_training_step);
    tcase_add_test(tc, resident_leaf_copied_only_when_set);
    tcase_add_test(tc, several_devices_split_copy_and_replay);
    tcase_add_loop_test(tc, failed_init_gives_the_plugins_reason, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sched_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
