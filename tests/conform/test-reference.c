/* The conformance oracle checked by hand: tiny cases whose answers are known in
 * closed form, its backward ops against its own forward by finite differences. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/types.h>

#include "sdk/conform/internal.h"
#include "sdk/conform/reference.h"

static slm_tensor_desc_t t4(int type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3, void *data)
{
    slm_tensor_desc_t d = {.type = type, .ne = {ne0, ne1, ne2, ne3}, .data = data};
    d.nb[0] = (int64_t)slm_conform_type_size(type);
    for (int i = 1; i < 4; i++)
        d.nb[i] = d.nb[i - 1] * d.ne[i - 1];
    return d;
}

static slm_tensor_desc_t f32(int64_t ne0, int64_t ne1, float *data)
{
    return t4(SLM_TYPE_F32, ne0, ne1, 1, 1, data);
}

static slm_node_t node1(int op, slm_tensor_desc_t dst, slm_tensor_desc_t a)
{
    slm_node_t n = {.struct_size = sizeof n, .op = op, .n_src = 1, .dst = dst};
    n.src[0] = a;
    return n;
}

static slm_node_t node2(int op, slm_tensor_desc_t dst, slm_tensor_desc_t a, slm_tensor_desc_t b)
{
    slm_node_t n = node1(op, dst, a);
    n.n_src = 2;
    n.src[1] = b;
    return n;
}

#define ck_close(got, want, eps) \
    ck_assert_msg(fabs((double)(got) - (double)(want)) <= (eps), "%s = %.9g, expected %.9g", \
                  #got, (double)(got), (double)(want))

START_TEST(softmax_of_logs)
{
    float x[3] = {0.0f, (float)log(2.0), (float)log(3.0)}, y[3];
    slm_node_t n = node1(SLM_OP_SOFT_MAX, f32(3, 1, y), f32(3, 1, x));
    n.fp[0] = 1.0f;
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(y[0], 1.0 / 6, 1e-7);
    ck_close(y[1], 2.0 / 6, 1e-7);
    ck_close(y[2], 3.0 / 6, 1e-7);
}
END_TEST

START_TEST(softmax_causal_and_mask)
{
    /* Two rows: causal with n_past 0 keeps one column in row 0, two in row 1;
     * the mask then takes ln 3 off column 1 of row 1. */
    float x[6] = {5, 1, 2, 0, 0, 9}, mask[6] = {0, 0, 0, 0, -(float)log(3.0), 0}, y[6];
    slm_node_t n = node2(SLM_OP_SOFT_MAX, f32(3, 2, y), f32(3, 2, x), f32(3, 2, mask));
    n.fp[0] = 1.0f;
    n.ip[0] = 1;
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(y[0], 1.0, 1e-7);
    ck_close(y[1], 0.0, 0);
    ck_close(y[2], 0.0, 0);
    ck_close(y[3], 0.75, 1e-7);
    ck_close(y[4], 0.25, 1e-7);
    ck_close(y[5], 0.0, 0);
}
END_TEST

START_TEST(rms_norm_3_4)
{
    float x[2] = {3, 4}, y[2];
    slm_node_t n = node1(SLM_OP_RMS_NORM, f32(2, 1, y), f32(2, 1, x));
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(y[0], 3 / sqrt(12.5), 1e-6);
    ck_close(y[1], 4 / sqrt(12.5), 1e-6);
}
END_TEST

/* theta = pos * freq_scale with freq_base 1: a quarter turn for pos 1. */
static void rope4(int mode, bool back, const float *x, float *y)
{
    int32_t pos = 1;
    slm_node_t n = node2(back ? SLM_OP_ROPE_BACK : SLM_OP_ROPE, t4(SLM_TYPE_F32, 4, 1, 1, 1, y),
                         t4(SLM_TYPE_F32, 4, 1, 1, 1, (void *)x), t4(SLM_TYPE_I32, 1, 1, 1, 1, &pos));
    n.ip[0] = 4;
    n.ip[1] = mode;
    n.fp[0] = 1.0f;
    n.fp[1] = (float)(M_PI / 2);
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
}

START_TEST(rope_quarter_turn)
{
    const float x[4] = {1, 2, 3, 4};
    const float normal[4] = {-2, 1, -4, 3}, neox[4] = {-3, -4, 1, 2};
    float y[4], z[4];
    rope4(SLM_ROPE_NORMAL, false, x, y);
    for (int i = 0; i < 4; i++)
        ck_close(y[i], normal[i], 1e-6);
    rope4(SLM_ROPE_NEOX, false, x, y);
    for (int i = 0; i < 4; i++)
        ck_close(y[i], neox[i], 1e-6);
    rope4(SLM_ROPE_NEOX, true, y, z);   /* rotating back restores x */
    for (int i = 0; i < 4; i++)
        ck_close(z[i], x[i], 1e-6);
}
END_TEST

START_TEST(rope_copies_tail)
{
    int32_t pos = 3;
    float x[6] = {1, 2, 3, 4, 5, 6}, y[6];
    slm_node_t n = node2(SLM_OP_ROPE, f32(6, 1, y), f32(6, 1, x), t4(SLM_TYPE_I32, 1, 1, 1, 1, &pos));
    n.ip[0] = 2;
    n.fp[0] = 10000.0f;
    n.fp[1] = 1.0f;
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(y[0], cos(3.0) - 2 * sin(3.0), 1e-6);
    ck_close(y[1], sin(3.0) + 2 * cos(3.0), 1e-6);
    for (int i = 2; i < 6; i++)
        ck_close(y[i], x[i], 0);
}
END_TEST

START_TEST(cross_entropy_uniform)
{
    float l[10] = {0}, t[10] = {0}, loss, dl = 2.0f, g[10];
    t[3] = 1.0f;
    t[5 + 0] = 1.0f;
    slm_node_t n = node2(SLM_OP_CROSS_ENTROPY, f32(1, 1, &loss), f32(5, 2, l), f32(5, 2, t));
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(loss, log(5.0), 1e-6);
    n.op = SLM_OP_CROSS_ENTROPY_BACK;
    n.n_src = 3;
    n.src[2] = f32(1, 1, &dl);
    n.dst = f32(5, 2, g);
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(g[3], (0.2 - 1.0) * 2.0 / 2, 1e-7);   /* (softmax - t) * dloss / N */
    ck_close(g[4], 0.2 * 2.0 / 2, 1e-7);
}
END_TEST

START_TEST(mul_mat_by_hand)
{
    /* A [K=2, M=3], B [K=2, N=2]: dst[m,n] = sum_k A[k,m] B[k,n]. */
    float a[6] = {1, 2, 3, 4, 5, 6}, b[4] = {1, -1, 2, 0.5f}, d[6];
    const float want[6] = {-1, -1, -1, 3, 8, 13};
    slm_node_t n = node2(SLM_OP_MUL_MAT, f32(3, 2, d), f32(2, 3, a), f32(2, 2, b));
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    for (int i = 0; i < 6; i++)
        ck_close(d[i], want[i], 1e-6);
}
END_TEST

START_TEST(mul_mat_f16_and_transposed_view)
{
    uint16_t a[4];
    const float av[4] = {0.5f, -1.0f, 2.0f, 0.25f};   /* exact in f16 */
    for (int i = 0; i < 4; i++)
        a[i] = slm_f32_to_f16(av[i]);
    /* B stored as [N=2, K=2] and read transposed through its strides. */
    float bt[4] = {1, 2, 3, 4}, d[4];
    slm_tensor_desc_t b = f32(2, 2, bt);
    b.nb[0] = 8;
    b.nb[1] = 4;
    slm_node_t n = node2(SLM_OP_MUL_MAT, f32(2, 2, d), t4(SLM_TYPE_F16, 2, 2, 1, 1, a), b);
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    /* B[k,n] = bt[n + 2k]: columns (1,3) and (2,4). */
    ck_close(d[0], 0.5 * 1 - 1.0 * 3, 1e-7);
    ck_close(d[1], 2.0 * 1 + 0.25 * 3, 1e-7);
    ck_close(d[2], 0.5 * 2 - 1.0 * 4, 1e-7);
    ck_close(d[3], 2.0 * 2 + 0.25 * 4, 1e-7);
}
END_TEST

START_TEST(out_prod_sums_batches)
{
    /* X [P=1,K=1,2 batches], Y [Q=1,K=1,2]: dst [1,1,1] = x0*y0 + x1*y1. */
    float x[2] = {2, 3}, y[2] = {5, 7}, d;
    slm_node_t n = node2(SLM_OP_OUT_PROD, f32(1, 1, &d), t4(SLM_TYPE_F32, 1, 1, 2, 1, x),
                         t4(SLM_TYPE_F32, 1, 1, 2, 1, y));
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(d, 31, 0);
}
END_TEST

START_TEST(unary_values)
{
    float x[3] = {0, 1, -0.5f}, y[3];
    slm_node_t n = node1(SLM_OP_SILU, f32(3, 1, y), f32(3, 1, x));
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(y[0], 0, 0);
    ck_close(y[1], 0.7310585786, 1e-7);
    n.op = SLM_OP_GELU;
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(y[1], 0.8411919906, 1e-7);
    ck_close(y[2], -0.1542859902, 1e-7);
    float up[3] = {2, 2, 2};
    n = node2(SLM_OP_SWIGLU, f32(3, 1, y), f32(3, 1, x), f32(3, 1, up));
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(y[1], 2 * 0.7310585786, 1e-6);
    n = node1(SLM_OP_SCALE, f32(3, 1, y), f32(3, 1, x));
    n.fp[0] = -4.0f;
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(y[2], 2.0, 0);
}
END_TEST

START_TEST(add_mul_broadcast)
{
    float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, 20, 30}, y[6];
    slm_node_t n = node2(SLM_OP_ADD, f32(3, 2, y), f32(3, 2, a), f32(3, 1, b));
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(y[4], 25, 0);
    n.op = SLM_OP_MUL;
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(y[5], 180, 0);
    float r[3];
    n = node1(SLM_OP_REPEAT_BACK, f32(3, 1, r), f32(3, 2, a));
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(r[0], 5, 0);
    ck_close(r[2], 9, 0);
}
END_TEST

START_TEST(get_rows_and_back)
{
    float tab[6] = {1, 2, 3, 4, 5, 6}, y[6], g[6];
    int32_t ids[3] = {2, 0, 2};
    slm_node_t n = node2(SLM_OP_GET_ROWS, f32(2, 3, y), f32(2, 3, tab), t4(SLM_TYPE_I32, 3, 1, 1, 1, ids));
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(y[0], 5, 0);
    ck_close(y[3], 2, 0);
    ck_close(y[5], 6, 0);
    n = node2(SLM_OP_GET_ROWS_BACK, f32(2, 3, g), f32(2, 3, tab), t4(SLM_TYPE_I32, 3, 1, 1, 1, ids));
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(g[0], 3, 0);     /* row 0 gets grad row 1 */
    ck_close(g[2], 0, 0);     /* row 1 is never read */
    ck_close(g[4], 1 + 5, 0); /* row 2 gets grad rows 0 and 2 */
}
END_TEST

START_TEST(cpy_converts_and_reorders)
{
    float a[6] = {1, 2, 3, 4, 5, 6.0009765625f};
    uint16_t h[6];
    slm_tensor_desc_t src = f32(3, 2, a);   /* read transposed: [2,3] */
    src.ne[0] = 2;
    src.ne[1] = 3;
    src.nb[0] = 12;
    src.nb[1] = 4;
    slm_node_t n = node1(SLM_OP_CPY, t4(SLM_TYPE_F16, 6, 1, 1, 1, h), src);
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    const float want[6] = {1, 4, 2, 5, 3, 6.0f};   /* 6.0009765625 rounds to 6 in f16 */
    for (int i = 0; i < 6; i++)
        ck_close(slm_f16_to_f32(h[i]), want[i], 0);
}
END_TEST

START_TEST(sum_acc_adamw)
{
    float a[6] = {1, 2, 3, 4, 5, 6}, s, b[2] = {10, 20}, y[6];
    slm_node_t n = node1(SLM_OP_SUM, f32(1, 1, &s), f32(3, 2, a));
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(s, 21, 0);
    /* b added to column 1 of both rows: the view [1,2] with nb1 = 12 at offset 4. */
    n = node2(SLM_OP_ACC, f32(3, 2, y), f32(3, 2, a), f32(1, 2, b));
    n.ip[0] = 12;
    n.ip[1] = n.ip[2] = 24;
    n.ip[3] = 4;
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    const float want[6] = {1, 12, 3, 4, 25, 6};
    for (int i = 0; i < 6; i++)
        ck_close(y[i], want[i], 0);

    /* One AdamW step from zero moments: m = 0.1 g, v = 0.001 g^2, and with bias
     * correction the step is lr * sign(g) (eps aside) plus decay. */
    float p = 2.0f, g = -0.5f, m = 0, v = 0;
    float hy[7] = {0.1f, 0.9f, 0.999f, 1e-8f, 0.5f, 1 / (1 - 0.9f), 1 / (1 - 0.999f)};
    slm_node_t w = {.struct_size = sizeof w, .op = SLM_OP_ADAMW_STEP, .n_src = 5};
    w.src[0] = f32(1, 1, &p);
    w.src[1] = f32(1, 1, &g);
    w.src[2] = f32(1, 1, &m);
    w.src[3] = f32(1, 1, &v);
    w.src[4] = f32(7, 1, hy);
    w.dst = w.src[0];
    ck_assert_int_eq(slm_conform_ref_compute(&w), 0);
    ck_close(m, -0.05, 1e-7);
    ck_close(v, 0.001 * 0.25, 1e-8);
    ck_close(p, 2.0 * (1 - 0.1 * 0.5) + 0.1, 1e-5);
}
END_TEST

/* Central difference of sum(w * forward(x)) in x[k], on the reference itself. */
static double fd_at(slm_node_t *fn, const float *x, int nx, const float *w, int ny, int k)
{
    float xf[64], yf[64], xs[2];
    double l[2];
    for (int s = 0; s < 2; s++) {
        memcpy(xf, x, (size_t)nx * sizeof *xf);
        xf[k] = x[k] + (s ? -1e-3f : 1e-3f);
        xs[s] = xf[k];
        fn->src[0].data = xf;
        fn->dst.data = yf;
        ck_assert_int_eq(slm_conform_ref_compute(fn), 0);
        l[s] = 0;
        for (int i = 0; i < ny; i++)
            l[s] += (double)w[i] * yf[i];
    }
    return (l[0] - l[1]) / ((double)xs[0] - xs[1]);
}

/* Each backward op of the reference matches finite differences of its forward op. */
START_TEST(reference_backward_matches_fd)
{
    static const int pairs[][2] = {
        {SLM_OP_SILU, SLM_OP_SILU_BACK}, {SLM_OP_GELU, SLM_OP_GELU_BACK},
        {SLM_OP_RMS_NORM, SLM_OP_RMS_NORM_BACK}, {SLM_OP_SOFT_MAX, SLM_OP_SOFT_MAX_BACK},
        {SLM_OP_ROPE, SLM_OP_ROPE_BACK}, {SLM_OP_CROSS_ENTROPY, SLM_OP_CROSS_ENTROPY_BACK},
    };
    int fwd = pairs[_i][0], bwd = pairs[_i][1];
    enum { D = 6, R = 2, N = D * R };
    uint64_t rng = 42 + (uint64_t)_i;
    float xf[N], wf[N], yf[N], g[N], tgt[N];
    int32_t pos[1] = {7};
    for (int i = 0; i < N; i++) {
        xf[i] = (float)slm_conform__uniform(&rng, -2, 2);
        wf[i] = (float)slm_conform__uniform(&rng, -1, 1);
        tgt[i] = (i % D == i / D) ? 1.0f : 0.0f;
    }
    slm_node_t fn = node1(fwd, f32(D, R, yf), f32(D, R, xf));
    fn.fp[0] = 1e-5f;
    if (fwd == SLM_OP_SOFT_MAX)
        fn.fp[0] = 0.7f;
    if (fwd == SLM_OP_ROPE) {
        fn.n_src = 2;
        fn.src[1] = t4(SLM_TYPE_I32, 1, 1, 1, 1, pos);
        fn.ip[0] = 4;
        fn.ip[1] = SLM_ROPE_NEOX;
        fn.fp[0] = 100.0f;
        fn.fp[1] = 1.0f;
    }
    int ny = N;
    if (fwd == SLM_OP_CROSS_ENTROPY) {
        fn.n_src = 2;
        fn.src[1] = f32(D, R, tgt);
        fn.dst = f32(1, 1, yf);
        ny = 1;
    }
    ck_assert_int_eq(slm_conform_ref_compute(&fn), 0);
    slm_node_t bn = node2(bwd, f32(D, R, g), f32(D, R, xf), f32(D, R, wf));
    bn.fp[0] = fn.fp[0];
    if (bwd == SLM_OP_SOFT_MAX_BACK)
        bn.src[0] = f32(D, R, yf);   /* softmax's backward takes its output */
    if (bwd == SLM_OP_ROPE_BACK) {
        bn = fn;
        bn.op = bwd;
        bn.src[0] = f32(D, R, wf);
        bn.dst = f32(D, R, g);
    }
    if (bwd == SLM_OP_CROSS_ENTROPY_BACK) {
        bn.n_src = 3;
        bn.src[1] = f32(D, R, tgt);
        bn.src[2] = f32(1, 1, wf);
    }
    ck_assert_int_eq(slm_conform_ref_compute(&bn), 0);
    for (int k = 0; k < N; k++) {
        double fd = fd_at(&fn, xf, N, wf, ny, k);
        ck_assert_msg(fabs(fd - g[k]) <= 2e-3 * fmax(1.0, fabs(fd)),
                      "%s element %d: backward %.7g, finite difference %.7g", slm_op_name(bwd), k,
                      (double)g[k], fd);
    }
}
END_TEST

/* SGD moves by -lr * g plus decoupled decay; a sum of squares of 100 (norm 10) with
 * max_norm 2 scales the gradient by 2 / (10 + 1e-6), in SGD and in AdamW alike. */
START_TEST(sgd_and_clipping)
{
    float p[2] = {1.0f, -2.0f}, g[2] = {3.0f, 4.0f}, hy[3] = {0.1f, 0.5f, 0.0f};
    slm_node_t n = {.struct_size = sizeof n, .op = SLM_OP_SGD_STEP, .n_src = 3};
    n.src[0] = f32(2, 1, p);
    n.src[1] = f32(2, 1, g);
    n.src[2] = f32(2, 1, hy);
    n.dst = n.src[0];
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(p[0], 1.0 * (1 - 0.1 * 0.5) - 0.1 * 3.0, 1e-6);
    ck_close(p[1], -2.0 * (1 - 0.1 * 0.5) - 0.1 * 4.0, 1e-6);

    double c = 2.0 / (10.0 + 1e-6);
    float q[2] = {1.0f, -2.0f}, sumsq = 100.0f, hc[3] = {0.1f, 0.0f, 2.0f};
    n.n_src = 4;
    n.src[0] = f32(2, 1, q);
    n.src[2] = f32(3, 1, hc);
    n.src[3] = f32(1, 1, &sumsq);
    n.dst = n.src[0];
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(q[0], 1.0 - 0.1 * c * 3.0, 1e-6);
    ck_close(q[1], -2.0 - 0.1 * c * 4.0, 1e-6);
    /* max_norm above the norm: no scaling. */
    float r = 1.0f, gr = 3.0f, hn[3] = {0.1f, 0.0f, 50.0f};
    n.src[0] = f32(1, 1, &r);
    n.src[1] = f32(1, 1, &gr);
    n.src[2] = f32(3, 1, hn);
    n.dst = n.src[0];
    ck_assert_int_eq(slm_conform_ref_compute(&n), 0);
    ck_close(r, 1.0 - 0.1 * 3.0, 1e-6);

    /* AdamW from zero moments sees the scaled gradient: m = 0.1 c g, v = 0.001 (c g)^2. */
    float ap = 2.0f, ag = -0.5f, am = 0, av = 0, s2 = 100.0f;
    float ah[8] = {0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 1 / (1 - 0.9f), 1 / (1 - 0.999f), 2.0f};
    slm_node_t w = {.struct_size = sizeof w, .op = SLM_OP_ADAMW_STEP, .n_src = 6};
    w.src[0] = f32(1, 1, &ap);
    w.src[1] = f32(1, 1, &ag);
    w.src[2] = f32(1, 1, &am);
    w.src[3] = f32(1, 1, &av);
    w.src[4] = f32(8, 1, ah);
    w.src[5] = f32(1, 1, &s2);
    w.dst = w.src[0];
    ck_assert_int_eq(slm_conform_ref_compute(&w), 0);
    ck_close(am, (1 - (double)0.9f) * c * -0.5, 1e-8);
    ck_close(av, (1 - (double)0.999f) * (c * 0.5) * (c * 0.5), 1e-11);
    ck_close(ap, 2.0 + 0.1, 1e-5);
}
END_TEST

/* Every generated case is accepted by the reference and gives finite outputs. */
START_TEST(every_case_runs_on_the_reference)
{
    static const int types[] = {SLM_TYPE_F32, SLM_TYPE_F16, SLM_TYPE_BF16};
    conform_case_t *cases = calloc(64, sizeof *cases);
    ck_assert_ptr_nonnull(cases);
    size_t total = 0;
    for (int op = 1; op < SLM_OP_COUNT; op++)
        for (int t = 0; t < 3; t++) {
            size_t n = slm_conform__cases(op, types[t], cases, 64);
            ck_assert_uint_le(n, 64);
            if (types[t] == SLM_TYPE_F32)
                ck_assert_msg(n > 0, "no f32 cases for %s", slm_op_name(op));
            for (size_t i = 0; i < n; i++) {
                conform_host_t h;
                slm_node_t node;
                ck_assert_int_eq(slm_conform__host_new(&cases[i], &h), 0);
                slm_conform__host_node(&cases[i], &h, &node);
                ck_assert_msg(slm_conform_ref_compute(&node) == 0, "%s case %zu rejected",
                              slm_op_name(op), i);
                int64_t ix[4];
                slm_tensor_desc_t d = node.dst;
                CONFORM_FOR4(d.ne, ix)
                    ck_assert_msg(isfinite(slm_conform_ref_load(&d, ix)),
                                  "%s case %zu: non-finite output", slm_op_name(op), i);
                slm_conform__host_free(&h);
                total++;
            }
        }
    ck_assert_uint_gt(total, 150);
    free(cases);
}
END_TEST

static Suite *reference_suite(void)
{
    Suite *s = suite_create("conform-reference");
    TCase *tc = tcase_create("closed-form");
    tcase_add_test(tc, softmax_of_logs);
    tcase_add_test(tc, softmax_causal_and_mask);
    tcase_add_test(tc, rms_norm_3_4);
    tcase_add_test(tc, rope_quarter_turn);
    tcase_add_test(tc, rope_copies_tail);
    tcase_add_test(tc, cross_entropy_uniform);
    tcase_add_test(tc, mul_mat_by_hand);
    tcase_add_test(tc, mul_mat_f16_and_transposed_view);
    tcase_add_test(tc, out_prod_sums_batches);
    tcase_add_test(tc, unary_values);
    tcase_add_test(tc, add_mul_broadcast);
    tcase_add_test(tc, get_rows_and_back);
    tcase_add_test(tc, cpy_converts_and_reorders);
    tcase_add_test(tc, sum_acc_adamw);
    tcase_add_test(tc, sgd_and_clipping);
    suite_add_tcase(s, tc);
    TCase *fd = tcase_create("backward");
    tcase_add_loop_test(fd, reference_backward_matches_fd, 0, 6);
    suite_add_tcase(s, fd);
    TCase *cs = tcase_create("cases");
    tcase_add_test(cs, every_case_runs_on_the_reference);
    suite_add_tcase(s, cs);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(reference_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
