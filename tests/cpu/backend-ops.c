/* Checks one CPU backend variant (CPU_TEST_VARIANT) through its vtable: entry and
 * device, buffers, and every op family on odd sizes, strided views and thread counts. */
#include "config.h"

#include <check.h>
#include <sched.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/types.h>

#include "backend-harness.h"

#ifndef CPU_TEST_VARIANT
#error "CPU_TEST_VARIANT names the variant under test"
#endif

static const int64_t odd[] = {1, 3, 17, 33, 65};
#define N_ODD 5
static const int layouts[] = {H_CONTIG, H_GAPS, H_TRANS};
#define N_LAYOUTS 3
static int threads = 3;

static void setup(void) { h_open(threads); }
static void teardown(void) { h_close(); }

static char msg[256];
#define WHAT(...) (snprintf(msg, sizeof msg, __VA_ARGS__), msg)

/* ---- plugin and device ---- */

START_TEST(test_descriptor)
{
    ck_assert_str_eq(h_desc->name, CPU_TEST_VARIANT);
    ck_assert_str_eq(h_desc->version, PACKAGE_VERSION);
    ck_assert_int_eq(h_desc->kind, SLM_PLUGIN_KIND_BACKEND);
    ck_assert_uint_eq(h_desc->abi_version, SLM_PLUGIN_ABI_VERSION);
    ck_assert_uint_ge(h_desc->struct_size, sizeof(slm_plugin_descriptor_t));
    ck_assert_uint_ge(h_iface->struct_size, sizeof(slm_backend_iface_t));
    ck_assert_uint_eq(h_iface->iface_version, SLM_BACKEND_IFACE_VERSION);
    /* A host older than the plugin's interface is refused, a newer one accepted. */
    ck_assert_ptr_null(h_entry(NULL, 0));
    const slm_plugin_descriptor_t *d = h_entry(NULL, SLM_PLUGIN_ABI_VERSION + 5);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(d->abi_version, SLM_PLUGIN_ABI_VERSION);
}
END_TEST

START_TEST(test_device_props)
{
    ck_assert_int_eq(h_iface->device_count(h_backend), 1);
    slm_device_props_t p = {.struct_size = sizeof p};
    ck_assert_int_eq(h_iface->device_props(h_backend, 0, &p), SLM_OK);
    ck_assert_ptr_nonnull(strstr(p.name, CPU_TEST_VARIANT));
    ck_assert_ptr_nonnull(strstr(p.description, CPU_TEST_VARIANT));
    ck_assert_int_eq(p.type, SLM_DEVICE_CPU);
    ck_assert_int_eq(p.score, 10);
    ck_assert_int_eq(p.host_visible, 1);
    ck_assert_uint_gt(p.memory_total, 0);
    ck_assert_uint_le(p.memory_free, p.memory_total);
    ck_assert_int_ne(h_iface->device_props(h_backend, 1, &p), SLM_OK);
}
END_TEST

START_TEST(test_buffers)
{
    void *buf, *base;
    ck_assert_int_eq(h_iface->buffer_alloc(h_dev, 1000, &buf, &base), SLM_OK);
    ck_assert_uint_eq((uintptr_t)base % 64, 0);
    char in[100], out[100];
    for (int i = 0; i < 100; i++)
        in[i] = (char)i;
    ck_assert_int_eq(h_iface->buffer_set(h_dev, buf, 900, in, 100), SLM_OK);
    ck_assert_int_eq(h_iface->buffer_get(h_dev, buf, 900, out, 100), SLM_OK);
    ck_assert_mem_eq(in, out, 100);
    ck_assert_int_eq(h_iface->buffer_clear(h_dev, buf, 950, 50, 0xab), SLM_OK);
    ck_assert_int_eq(h_iface->buffer_get(h_dev, buf, 900, out, 100), SLM_OK);
    ck_assert_int_eq(out[49], 49);
    ck_assert_int_eq((unsigned char)out[50], 0xab);
    /* Ranges past the end are refused, including ones that overflow. */
    ck_assert_int_eq(h_iface->buffer_set(h_dev, buf, 901, in, 100), SLM_E_INVALID);
    ck_assert_int_eq(h_iface->buffer_get(h_dev, buf, UINT64_MAX, out, 2), SLM_E_INVALID);
    ck_assert_int_eq(h_iface->buffer_clear(h_dev, buf, 1, UINT64_MAX, 0), SLM_E_INVALID);
    h_iface->buffer_free(h_dev, buf);
}
END_TEST

START_TEST(test_supports_node)
{
    slm_tensor_desc_t a = h_tensor(SLM_TYPE_F32, 4, 3, 1, 1, H_CONTIG);
    slm_tensor_desc_t b = h_tensor(SLM_TYPE_F32, 4, 3, 1, 1, H_CONTIG);
    slm_tensor_desc_t h16 = h_tensor(SLM_TYPE_F16, 4, 3, 1, 1, H_CONTIG);
    slm_tensor_desc_t w = h_tensor(SLM_TYPE_F32, 5, 3, 1, 1, H_CONTIG);
    slm_tensor_desc_t s[2] = {a, b};
    slm_node_t n = h_node(SLM_OP_ADD, a, 2, s);
    ck_assert(h_iface->supports_node(h_dev, &n));
    n.src[1] = h16;   /* ADD runs on f32 only */
    ck_assert(!h_iface->supports_node(h_dev, &n));
    n.src[1] = w;     /* 5 does not divide 4 */
    ck_assert(!h_iface->supports_node(h_dev, &n));
    slm_node_t mm = h_node(SLM_OP_MUL_MAT, h_tensor(SLM_TYPE_F32, 3, 3, 1, 1, H_CONTIG), 2,
                           (slm_tensor_desc_t[]){h16, b});
    ck_assert(h_iface->supports_node(h_dev, &mm));
    mm.src[1] = w;    /* K differs */
    ck_assert(!h_iface->supports_node(h_dev, &mm));
    slm_node_t r = h_node(SLM_OP_ROPE, a, 2, (slm_tensor_desc_t[]){a, h_tensor(SLM_TYPE_I32, 1, 1, 1, 1, H_CONTIG)});
    r.ip[0] = 3;      /* odd n_dims */
    r.fp[0] = 10000.0f;
    ck_assert(!h_iface->supports_node(h_dev, &r));
    r.ip[0] = 4;
    ck_assert(h_iface->supports_node(h_dev, &r));
    n = h_node(SLM_OP_COUNT + 7, a, 1, &a);
    ck_assert(!h_iface->supports_node(h_dev, &n));
    const slm_node_t *p = &n;
    ck_assert_int_eq(h_iface->graph_compute(h_dev, &p, 1), SLM_E_UNSUPPORTED);
}
END_TEST

/* ---- elementwise ---- */

static double silu_ref(double x) { return x / (1.0 + exp(-x)); }
static double gelu_ref(double x)
{
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

START_TEST(test_add_mul_broadcast)
{
    for (int li = 0; li < N_LAYOUTS; li++)
        for (int si = 0; si < N_ODD; si++) {
            int64_t ne0 = odd[si], ne1 = odd[(si + 2) % N_ODD];
            slm_tensor_desc_t a = h_tensor(SLM_TYPE_F32, ne0, ne1, 2, 3, layouts[li]);
            slm_tensor_desc_t b = h_tensor(SLM_TYPE_F32, ne0, 1, 2, 1, layouts[(li + 1) % N_LAYOUTS]);
            slm_tensor_desc_t d1 = h_tensor(SLM_TYPE_F32, ne0, ne1, 2, 3, layouts[(li + 2) % N_LAYOUTS]);
            slm_tensor_desc_t d2 = h_tensor(SLM_TYPE_F32, ne0, ne1, 2, 3, H_CONTIG);
            h_fill(&a, -2, 2);
            h_fill(&b, -2, 2);
            slm_node_t nodes[2] = {h_node(SLM_OP_ADD, d1, 2, (slm_tensor_desc_t[]){a, b}),
                                   h_node(SLM_OP_MUL, d2, 2, (slm_tensor_desc_t[]){a, b})};
            ck_assert_int_eq(h_run_n(nodes, 2), SLM_OK);
            H_FOR(a, i0, i1, i2, i3) {
                double x = h_get(&a, i0, i1, i2, i3), y = h_get(&b, i0, 0, i2, 0);
                h_expect_close(WHAT("add %d %lld", li, (long long)ne0), h_get(&d1, i0, i1, i2, i3), x + y, 1e-6, 1e-6);
                h_expect_close(WHAT("mul %d %lld", li, (long long)ne0), h_get(&d2, i0, i1, i2, i3), x * y, 1e-6, 1e-6);
            }
        }
    /* Broadcast along ne0 as well, and in place (dst is src0). */
    slm_tensor_desc_t a = h_tensor(SLM_TYPE_F32, 12, 5, 1, 1, H_CONTIG);
    slm_tensor_desc_t b = h_tensor(SLM_TYPE_F32, 3, 1, 1, 1, H_CONTIG);
    h_fill(&a, -1, 1);
    h_fill(&b, -1, 1);
    float before[12][5];
    H_FOR(a, i0, i1, i2, i3) before[i0][i1] = h_get(&a, i0, i1, i2, i3);
    slm_node_t n = h_node(SLM_OP_ADD, a, 2, (slm_tensor_desc_t[]){a, b});
    ck_assert_int_eq(h_run(&n), SLM_OK);
    H_FOR(a, i0, i1, i2, i3)
        h_expect_close("add in place", h_get(&a, i0, i1, 0, 0), (double)before[i0][i1] + h_get(&b, i0 % 3, 0, 0, 0), 1e-6, 1e-6);
}
END_TEST

START_TEST(test_unary)
{
    const int ops[] = {SLM_OP_SCALE, SLM_OP_SILU, SLM_OP_GELU, SLM_OP_SWIGLU, SLM_OP_SILU_BACK, SLM_OP_GELU_BACK};
    for (int oi = 0; oi < 6; oi++)
        for (int li = 0; li < N_LAYOUTS; li++)
            for (int si = 0; si < N_ODD; si++) {
                int op = ops[oi];
                int64_t ne0 = odd[si], ne1 = odd[N_ODD - 1 - si];
                slm_tensor_desc_t x = h_tensor(SLM_TYPE_F32, ne0, ne1, 1, 2, layouts[li]);
                slm_tensor_desc_t y = h_tensor(SLM_TYPE_F32, ne0, ne1, 1, 2, layouts[(li + 1) % N_LAYOUTS]);
                slm_tensor_desc_t d = h_tensor(SLM_TYPE_F32, ne0, ne1, 1, 2, layouts[(li + 2) % N_LAYOUTS]);
                h_fill(&x, -6, 6);
                h_fill(&y, -2, 2);
                int n_src = (op == SLM_OP_SCALE || op == SLM_OP_SILU || op == SLM_OP_GELU) ? 1 : 2;
                slm_node_t n = h_node(op, d, n_src, (slm_tensor_desc_t[]){x, y});
                n.fp[0] = -0.75f;
                ck_assert_int_eq(h_run(&n), SLM_OK);
                H_FOR(x, i0, i1, i2, i3) {
                    double a = h_get(&x, i0, i1, i2, i3), b = h_get(&y, i0, i1, i2, i3), want;
                    double s = 1.0 / (1.0 + exp(-a)), c = sqrt(2.0 / M_PI);
                    double t = tanh(c * (a + 0.044715 * a * a * a));
                    switch (op) {
                    case SLM_OP_SCALE: want = a * -0.75; break;
                    case SLM_OP_SILU: want = silu_ref(a); break;
                    case SLM_OP_GELU: want = gelu_ref(a); break;
                    case SLM_OP_SWIGLU: want = silu_ref(a) * b; break;
                    case SLM_OP_SILU_BACK: want = b * s * (1 + a * (1 - s)); break;
                    default:
                        want = b * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * c * (1 + 3 * 0.044715 * a * a));
                    }
                    h_expect_close(WHAT("%s layout %d size %lld", slm_op_name(op), li, (long long)ne0),
                                   h_get(&d, i0, i1, i2, i3), want, 1e-5, 1e-5);
                }
            }
}
END_TEST

/* ---- normalisation, rope, softmax ---- */

START_TEST(test_rms_norm)
{
    for (int li = 0; li < N_LAYOUTS; li++)
        for (int si = 0; si < N_ODD; si++) {
            int64_t ne0 = odd[si], ne1 = 5;
            slm_tensor_desc_t x = h_tensor(SLM_TYPE_F32, ne0, ne1, 2, 1, layouts[li]);
            slm_tensor_desc_t dy = h_tensor(SLM_TYPE_F32, ne0, ne1, 2, 1, layouts[(li + 1) % N_LAYOUTS]);
            slm_tensor_desc_t y = h_tensor(SLM_TYPE_F32, ne0, ne1, 2, 1, layouts[(li + 2) % N_LAYOUTS]);
            slm_tensor_desc_t dx = h_tensor(SLM_TYPE_F32, ne0, ne1, 2, 1, layouts[li]);
            h_fill(&x, -3, 3);
            h_fill(&dy, -1, 1);
            slm_node_t n[2] = {h_node(SLM_OP_RMS_NORM, y, 1, &x),
                               h_node(SLM_OP_RMS_NORM_BACK, dx, 2, (slm_tensor_desc_t[]){x, dy})};
            n[0].fp[0] = n[1].fp[0] = 1e-5f;
            ck_assert_int_eq(h_run_n(n, 2), SLM_OK);
            for (int64_t i2 = 0; i2 < 2; i2++)
                for (int64_t i1 = 0; i1 < ne1; i1++) {
                    double ss = 0, xdy = 0;
                    for (int64_t i0 = 0; i0 < ne0; i0++) {
                        double v = h_get(&x, i0, i1, i2, 0);
                        ss += v * v;
                        xdy += v * h_get(&dy, i0, i1, i2, 0);
                    }
                    double r = 1.0 / sqrt(ss / ne0 + 1e-5);
                    for (int64_t i0 = 0; i0 < ne0; i0++) {
                        double v = h_get(&x, i0, i1, i2, 0), g = h_get(&dy, i0, i1, i2, 0);
                        h_expect_close("rms_norm", h_get(&y, i0, i1, i2, 0), v * r, 1e-5, 1e-5);
                        h_expect_close("rms_norm_back", h_get(&dx, i0, i1, i2, 0),
                                       r * g - v * r * r * r * xdy / ne0, 1e-4, 1e-4);
                    }
                }
        }
}
END_TEST

static void check_rope(int mode, int layout)
{
    const int64_t D = 10, H = 3, T = 5, nd = 6;
    slm_tensor_desc_t x = h_tensor(SLM_TYPE_F32, D, H, T, 2, layout);
    slm_tensor_desc_t pos = h_tensor(SLM_TYPE_I32, T, 1, 1, 1, H_CONTIG);
    slm_tensor_desc_t y = h_tensor(SLM_TYPE_F32, D, H, T, 2, H_CONTIG);
    slm_tensor_desc_t back = h_tensor(SLM_TYPE_F32, D, H, T, 2, layout);
    h_fill(&x, -1, 1);
    for (int64_t t = 0; t < T; t++)
        h_seti(&pos, t, 0, 0, (int32_t)(3 * t + 1));
    slm_node_t n[2] = {h_node(SLM_OP_ROPE, y, 2, (slm_tensor_desc_t[]){x, pos}),
                       h_node(SLM_OP_ROPE_BACK, back, 2, (slm_tensor_desc_t[]){y, pos})};
    for (int k = 0; k < 2; k++) {
        n[k].ip[0] = nd;
        n[k].ip[1] = mode;
        n[k].fp[0] = 10000.0f;
        n[k].fp[1] = 0.5f;
    }
    ck_assert_int_eq(h_run_n(n, 2), SLM_OK);
    H_FOR(x, i0, i1, i2, i3) {
        double want;
        if (i0 >= nd) {
            want = h_get(&x, i0, i1, i2, i3);
        } else {
            int64_t i = mode == SLM_ROPE_NEOX ? i0 % (nd / 2) : i0 / 2;
            int64_t a = mode == SLM_ROPE_NEOX ? i : 2 * i;
            int64_t b = mode == SLM_ROPE_NEOX ? i + nd / 2 : 2 * i + 1;
            double th = (3 * i2 + 1) * 0.5 * pow(10000.0, -2.0 * i / nd);
            double x0 = h_get(&x, a, i1, i2, i3), x1 = h_get(&x, b, i1, i2, i3);
            want = i0 == a ? x0 * cos(th) - x1 * sin(th) : x0 * sin(th) + x1 * cos(th);
        }
        h_expect_close(WHAT("rope mode %d at %lld", mode, (long long)i0), h_get(&y, i0, i1, i2, i3), want, 1e-5, 1e-5);
        h_expect_close("rope_back undoes rope", h_get(&back, i0, i1, i2, i3), h_get(&x, i0, i1, i2, i3), 1e-5, 1e-5);
    }
}

START_TEST(test_rope)
{
    for (int li = 0; li < N_LAYOUTS; li++) {
        check_rope(SLM_ROPE_NORMAL, layouts[li]);
        check_rope(SLM_ROPE_NEOX, layouts[li]);
    }
}
END_TEST

START_TEST(test_soft_max)
{
    for (int li = 0; li < N_LAYOUTS; li++)
        for (int si = 0; si < N_ODD; si++) {
            int64_t C = odd[si], R = 4, n_past = si % 3;
            slm_tensor_desc_t x = h_tensor(SLM_TYPE_F32, C, R, 2, 1, layouts[li]);
            slm_tensor_desc_t m = h_tensor(SLM_TYPE_F32, C, 2, 1, 1, layouts[(li + 1) % N_LAYOUTS]);
            slm_tensor_desc_t y = h_tensor(SLM_TYPE_F32, C, R, 2, 1, layouts[(li + 2) % N_LAYOUTS]);
            slm_tensor_desc_t dy = h_tensor(SLM_TYPE_F32, C, R, 2, 1, H_CONTIG);
            slm_tensor_desc_t dx = h_tensor(SLM_TYPE_F32, C, R, 2, 1, layouts[li]);
            h_fill(&x, -4, 4);
            h_fill(&m, -1, 0);
            h_fill(&dy, -1, 1);
            slm_node_t n[2] = {h_node(SLM_OP_SOFT_MAX, y, 2, (slm_tensor_desc_t[]){x, m}),
                               h_node(SLM_OP_SOFT_MAX_BACK, dx, 2, (slm_tensor_desc_t[]){y, dy})};
            n[0].fp[0] = n[1].fp[0] = 0.7f;
            n[0].ip[0] = 1;
            n[0].ip[1] = n_past;
            ck_assert_int_eq(h_run_n(n, 2), SLM_OK);
            for (int64_t i2 = 0; i2 < 2; i2++)
                for (int64_t r = 0; r < R; r++) {
                    double v[65], mx = -INFINITY, sum = 0, dot = 0;
                    for (int64_t c = 0; c < C; c++) {
                        v[c] = c > n_past + r ? -INFINITY : h_get(&x, c, r, i2, 0) * 0.7 + h_get(&m, c, r % 2, 0, 0);
                        mx = v[c] > mx ? v[c] : mx;
                    }
                    for (int64_t c = 0; c < C; c++)
                        sum += exp(v[c] - mx);
                    for (int64_t c = 0; c < C; c++) {
                        double p = exp(v[c] - mx) / sum;
                        h_expect_close(WHAT("soft_max C=%lld r=%lld c=%lld", (long long)C, (long long)r, (long long)c),
                                       h_get(&y, c, r, i2, 0), p, 1e-6, 1e-5);
                        dot += (double)h_get(&y, c, r, i2, 0) * h_get(&dy, c, r, i2, 0);
                    }
                    for (int64_t c = 0; c < C; c++) {
                        double p = h_get(&y, c, r, i2, 0);
                        h_expect_close("soft_max_back", h_get(&dx, c, r, i2, 0),
                                       0.7 * p * (h_get(&dy, c, r, i2, 0) - dot), 1e-6, 1e-5);
                    }
                }
        }
    /* A row with every column masked gives zeros, not NaN. */
    slm_tensor_desc_t x = h_tensor(SLM_TYPE_F32, 3, 1, 1, 1, H_CONTIG);
    slm_tensor_desc_t y = h_tensor(SLM_TYPE_F32, 3, 1, 1, 1, H_CONTIG);
    h_fill(&x, -1, 1);
    slm_node_t n = h_node(SLM_OP_SOFT_MAX, y, 1, &x);
    n.fp[0] = 1.0f;
    n.ip[0] = 1;
    n.ip[1] = -1;
    ck_assert_int_eq(h_run(&n), SLM_OK);
    for (int c = 0; c < 3; c++)
        ck_assert_float_eq(h_get(&y, c, 0, 0, 0), 0.0f);
}
END_TEST

/* ---- rows, products ---- */

START_TEST(test_get_rows)
{
    const int types[] = {SLM_TYPE_F32, SLM_TYPE_F16, SLM_TYPE_BF16};
    for (int ti = 0; ti < 3; ti++)
        for (int li = 0; li < N_LAYOUTS; li++) {
            const int64_t E = odd[(ti + li) % N_ODD], R = 7, N = 5, B = 2;
            slm_tensor_desc_t tab = h_tensor(types[ti], E, R, 1, 1, layouts[li]);
            slm_tensor_desc_t ids = h_tensor(SLM_TYPE_I32, N, B, 1, 1, H_CONTIG);
            slm_tensor_desc_t out = h_tensor(SLM_TYPE_F32, E, N, B, 1, layouts[(li + 1) % N_LAYOUTS]);
            slm_tensor_desc_t g = h_tensor(SLM_TYPE_F32, E, N, B, 1, layouts[(li + 2) % N_LAYOUTS]);
            slm_tensor_desc_t gt = h_tensor(SLM_TYPE_F32, E, R, 1, 1, layouts[li]);
            h_fill(&tab, -1, 1);
            h_fill(&g, -1, 1);
            for (int64_t b = 0; b < B; b++)
                for (int64_t i = 0; i < N; i++)
                    h_seti(&ids, i, b, 0, (int32_t)((i * 3 + b) % 4));   /* repeats: rows 0..3 */
            slm_node_t n[2] = {h_node(SLM_OP_GET_ROWS, out, 2, (slm_tensor_desc_t[]){tab, ids}),
                               h_node(SLM_OP_GET_ROWS_BACK, gt, 2, (slm_tensor_desc_t[]){g, ids})};
            ck_assert_int_eq(h_run_n(n, 2), SLM_OK);
            H_FOR(out, i0, i1, i2, i3)
                ck_assert_float_eq(h_get(&out, i0, i1, i2, 0), h_get(&tab, i0, (i1 * 3 + i2) % 4, 0, 0));
            H_FOR(gt, i0, i1, i2, i3) {
                double want = 0;
                for (int64_t b = 0; b < B; b++)
                    for (int64_t i = 0; i < N; i++)
                        if ((i * 3 + b) % 4 == i1)
                            want += h_get(&g, i0, i, b, 0);
                h_expect_close("get_rows_back", h_get(&gt, i0, i1, 0, 0), want, 1e-6, 1e-6);
            }
        }
    /* A row id outside the table fails the node. */
    slm_tensor_desc_t tab = h_tensor(SLM_TYPE_F32, 4, 3, 1, 1, H_CONTIG);
    slm_tensor_desc_t ids = h_tensor(SLM_TYPE_I32, 1, 1, 1, 1, H_CONTIG);
    slm_tensor_desc_t out = h_tensor(SLM_TYPE_F32, 4, 1, 1, 1, H_CONTIG);
    h_seti(&ids, 0, 0, 0, 3);
    slm_node_t n = h_node(SLM_OP_GET_ROWS, out, 2, (slm_tensor_desc_t[]){tab, ids});
    ck_assert_int_eq(h_run(&n), SLM_E_INVALID);
}
END_TEST

static void check_mul_mat(int type, int64_t K, int64_t M, int64_t N, int la, int lb, int ld)
{
    slm_tensor_desc_t a = h_tensor(type, K, M, 2, 1, la);
    slm_tensor_desc_t b = h_tensor(SLM_TYPE_F32, K, N, 4, 1, lb);   /* A broadcast over 4/2 */
    slm_tensor_desc_t d = h_tensor(SLM_TYPE_F32, M, N, 4, 1, ld);
    h_fill(&a, -1, 1);
    h_fill(&b, -1, 1);
    slm_node_t n = h_node(SLM_OP_MUL_MAT, d, 2, (slm_tensor_desc_t[]){a, b});
    ck_assert_int_eq(h_run(&n), SLM_OK);
    H_FOR(d, m, nn, i2, i3) {
        double want = 0;
        for (int64_t k = 0; k < K; k++)
            want += (double)h_get(&a, k, m, i2 / 2, 0) * h_get(&b, k, nn, i2, 0);
        h_expect_close(WHAT("mul_mat %s K=%lld M=%lld N=%lld layouts %d%d%d", slm_type_name(type),
                            (long long)K, (long long)M, (long long)N, la, lb, ld),
                       h_get(&d, m, nn, i2, 0), want, 1e-4, 1e-4);
    }
}

START_TEST(test_mul_mat)
{
    const int types[] = {SLM_TYPE_F32, SLM_TYPE_F16, SLM_TYPE_BF16};
    for (int ti = 0; ti < 3; ti++)
        for (int si = 0; si < N_ODD; si++) {
            int64_t K = odd[si], M = odd[(si + 1) % N_ODD], N = odd[(si + 3) % N_ODD];
            check_mul_mat(types[ti], K, M, N, H_CONTIG, H_CONTIG, H_CONTIG);
            check_mul_mat(types[ti], K, M, N, H_TRANS, H_GAPS, H_TRANS);
            check_mul_mat(types[ti], M, K, N, H_GAPS, H_TRANS, H_GAPS);
        }
}
END_TEST

START_TEST(test_out_prod)
{
    for (int li = 0; li < N_LAYOUTS; li++)
        for (int si = 0; si < N_ODD; si++) {
            int64_t P = odd[si], K = odd[(si + 2) % N_ODD], Q = odd[(si + 4) % N_ODD];
            slm_tensor_desc_t x = h_tensor(SLM_TYPE_F32, P, K, 4, 1, layouts[li]);
            slm_tensor_desc_t y = h_tensor(SLM_TYPE_F32, Q, K, 4, 1, layouts[(li + 1) % N_LAYOUTS]);
            slm_tensor_desc_t d = h_tensor(SLM_TYPE_F32, P, Q, 2, 1, layouts[(li + 2) % N_LAYOUTS]);
            h_fill(&x, -1, 1);
            h_fill(&y, -1, 1);
            slm_node_t n = h_node(SLM_OP_OUT_PROD, d, 2, (slm_tensor_desc_t[]){x, y});
            ck_assert_int_eq(h_run(&n), SLM_OK);
            H_FOR(d, p, q, b, i3) {
                double want = 0;
                for (int64_t c = 2 * b; c < 2 * b + 2; c++)   /* batches 4 summed onto 2 */
                    for (int64_t k = 0; k < K; k++)
                        want += (double)h_get(&x, p, k, c, 0) * h_get(&y, q, k, c, 0);
                h_expect_close("out_prod", h_get(&d, p, q, b, 0), want, 1e-4, 1e-4);
            }
        }
}
END_TEST

/* ---- copies and conversions ---- */

static float bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

START_TEST(test_cpy_rounding)
{
    /* Values around every rounding case of f16 and bf16: ties, subnormals, overflow. */
    const int64_t n = 4096;
    slm_tensor_desc_t s = h_tensor(SLM_TYPE_F32, n, 1, 1, 1, H_CONTIG);
    slm_tensor_desc_t h = h_tensor(SLM_TYPE_F16, n, 1, 1, 1, H_GAPS);
    slm_tensor_desc_t b = h_tensor(SLM_TYPE_BF16, n, 1, 1, 1, H_CONTIG);
    slm_tensor_desc_t back = h_tensor(SLM_TYPE_F32, n, 1, 1, 1, H_GAPS);
    uint64_t r = 12345;
    for (int64_t i = 0; i < n; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t u = (uint32_t)(r >> 32);
        uint32_t exp = 98 + (uint32_t)(i % 48);          /* 2^-29 .. 2^18: subnormal to overflow */
        uint32_t mant = (i % 4 == 0) ? ((u & 0x7fe000u) | 0x1000u) : (u & 0x7fffffu);  /* f16 ties */
        if (i % 8 == 1)
            mant = (u & 0x7f0000u) | 0x8000u;              /* bf16 ties */
        float v = bits_to_float(((u >> 31) << 31) | (exp << 23) | mant);
        h_set(&s, i, 0, 0, 0, v);
    }
    h_set(&s, 0, 0, 0, 0, 65504.0f);
    h_set(&s, 1, 0, 0, 0, 65520.0f);   /* first value that rounds to infinity */
    h_set(&s, 2, 0, 0, 0, bits_to_float(0x33000000u));   /* half the smallest subnormal: tie to 0 */
    slm_node_t nodes[3] = {h_node(SLM_OP_CPY, h, 1, &s), h_node(SLM_OP_CPY, b, 1, &s),
                           h_node(SLM_OP_CPY, back, 1, &h)};
    ck_assert_int_eq(h_run_n(nodes, 3), SLM_OK);
    for (int64_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, (char *)s.data + i * 4, 4);
        uint16_t got_h, got_b;
        memcpy(&got_h, (char *)h.data + i * h.nb[0], 2);
        memcpy(&got_b, (char *)b.data + i * 2, 2);
        ck_assert_msg(got_h == slm_f32_to_f16(v), "f16 of %a: got 0x%04x want 0x%04x", (double)v,
                      got_h, slm_f32_to_f16(v));
        ck_assert_msg(got_b == slm_f32_to_bf16(v), "bf16 of %a: got 0x%04x want 0x%04x", (double)v,
                      got_b, slm_f32_to_bf16(v));
        ck_assert_float_eq(h_get(&back, i, 0, 0, 0), slm_f16_to_f32(got_h));
    }
}
END_TEST

START_TEST(test_cpy_layouts)
{
    const int types[] = {SLM_TYPE_F32, SLM_TYPE_F16, SLM_TYPE_BF16};
    for (int st = 0; st < 3; st++)
        for (int dt = 0; dt < 3; dt++)
            for (int li = 0; li < N_LAYOUTS; li++) {
                slm_tensor_desc_t s = h_tensor(types[st], 17, 3, 2, 1, layouts[li]);
                slm_tensor_desc_t d = h_tensor(types[dt], 17, 3, 2, 1, layouts[(li + 1) % N_LAYOUTS]);
                /* Same element count, other shape: a reshape copy. */
                slm_tensor_desc_t r = h_tensor(types[dt], 6, 17, 1, 1, layouts[(li + 2) % N_LAYOUTS]);
                h_fill(&s, -100, 100);
                slm_node_t n[2] = {h_node(SLM_OP_CPY, d, 1, &s), h_node(SLM_OP_CPY, r, 1, &s)};
                ck_assert_int_eq(h_run_n(n, 2), SLM_OK);
                int64_t flat = 0;
                H_FOR(s, i0, i1, i2, i3) {
                    float v = h_get(&s, i0, i1, i2, i3);
                    float want = types[dt] == SLM_TYPE_F16    ? slm_f16_to_f32(slm_f32_to_f16(v))
                                 : types[dt] == SLM_TYPE_BF16 ? slm_bf16_to_f32(slm_f32_to_bf16(v))
                                                              : v;
                    ck_assert_float_eq(h_get(&d, i0, i1, i2, i3), want);
                    ck_assert_float_eq(h_get(&r, flat % 6, flat / 6, 0, 0), want);
                    flat++;
                }
            }
}
END_TEST

START_TEST(test_acc)
{
    slm_tensor_desc_t a = h_tensor(SLM_TYPE_F32, 9, 7, 2, 1, H_GAPS);
    slm_tensor_desc_t v = h_tensor(SLM_TYPE_F32, 3, 4, 2, 1, H_TRANS);
    slm_tensor_desc_t d = h_tensor(SLM_TYPE_F32, 9, 7, 2, 1, H_CONTIG);
    h_fill(&a, -1, 1);
    h_fill(&v, -1, 1);
    slm_node_t n = h_node(SLM_OP_ACC, d, 2, (slm_tensor_desc_t[]){a, v});
    /* Window: columns 2..4 of rows 1..4 in each of the 2 planes. */
    n.ip[0] = d.nb[1];
    n.ip[1] = d.nb[2];
    n.ip[2] = d.nb[3];
    n.ip[3] = d.nb[1] + 2 * 4;
    ck_assert_int_eq(h_run(&n), SLM_OK);
    H_FOR(d, i0, i1, i2, i3) {
        double want = h_get(&a, i0, i1, i2, 0);
        if (i0 >= 2 && i0 < 5 && i1 >= 1 && i1 < 5)
            want += h_get(&v, i0 - 2, i1 - 1, i2, 0);
        h_expect_close("acc", h_get(&d, i0, i1, i2, 0), want, 1e-6, 1e-6);
    }
    /* A window reaching past dst is refused. */
    n.ip[3] = d.nb[1] * 5;
    ck_assert(!h_iface->supports_node(h_dev, &n));
}
END_TEST

/* ---- losses, reductions, optimizer ---- */

START_TEST(test_cross_entropy)
{
    for (int li = 0; li < N_LAYOUTS; li++)
        for (int si = 0; si < N_ODD; si++) {
            int64_t V = odd[si], N = 6;
            slm_tensor_desc_t l = h_tensor(SLM_TYPE_F32, V, N, 1, 1, layouts[li]);
            slm_tensor_desc_t t = h_tensor(SLM_TYPE_F32, V, N, 1, 1, layouts[(li + 1) % N_LAYOUTS]);
            slm_tensor_desc_t loss = h_tensor(SLM_TYPE_F32, 1, 1, 1, 1, H_CONTIG);
            slm_tensor_desc_t dl = h_tensor(SLM_TYPE_F32, 1, 1, 1, 1, H_CONTIG);
            slm_tensor_desc_t g = h_tensor(SLM_TYPE_F32, V, N, 1, 1, layouts[(li + 2) % N_LAYOUTS]);
            h_fill(&l, -5, 5);
            for (int64_t r = 0; r < N; r++)
                for (int64_t v = 0; v < V; v++)
                    h_set(&t, v, r, 0, 0, v == (r * 7) % V ? 1.0f : 0.0f);
            h_set(&dl, 0, 0, 0, 0, 2.0f);
            slm_node_t n[2] = {h_node(SLM_OP_CROSS_ENTROPY, loss, 2, (slm_tensor_desc_t[]){l, t}),
                               h_node(SLM_OP_CROSS_ENTROPY_BACK, g, 3, (slm_tensor_desc_t[]){l, t, dl})};
            ck_assert_int_eq(h_run_n(n, 2), SLM_OK);
            double total = 0;
            for (int64_t r = 0; r < N; r++) {
                double mx = -INFINITY, s = 0;
                for (int64_t v = 0; v < V; v++)
                    mx = fmax(mx, h_get(&l, v, r, 0, 0));
                for (int64_t v = 0; v < V; v++)
                    s += exp(h_get(&l, v, r, 0, 0) - mx);
                double lse = mx + log(s);
                for (int64_t v = 0; v < V; v++) {
                    double tv = h_get(&t, v, r, 0, 0), p = exp(h_get(&l, v, r, 0, 0) - lse);
                    total -= tv * (h_get(&l, v, r, 0, 0) - lse);
                    h_expect_close("cross_entropy_back", h_get(&g, v, r, 0, 0), (p - tv) * 2.0 / N, 1e-6, 1e-5);
                }
            }
            h_expect_close("cross_entropy", h_get(&loss, 0, 0, 0, 0), total / N, 1e-6, 1e-5);
        }
}
END_TEST

START_TEST(test_sum_repeat_back)
{
    for (int li = 0; li < N_LAYOUTS; li++)
        for (int si = 0; si < N_ODD; si++) {
            int64_t ne0 = odd[si];
            slm_tensor_desc_t s = h_tensor(SLM_TYPE_F32, ne0 * 2, 6, 3, 1, layouts[li]);
            slm_tensor_desc_t tot = h_tensor(SLM_TYPE_F32, 1, 1, 1, 1, H_CONTIG);
            slm_tensor_desc_t rb = h_tensor(SLM_TYPE_F32, ne0, 2, 1, 1, layouts[(li + 1) % N_LAYOUTS]);
            h_fill(&s, -1, 1);
            slm_node_t n[2] = {h_node(SLM_OP_SUM, tot, 1, &s), h_node(SLM_OP_REPEAT_BACK, rb, 1, &s)};
            ck_assert_int_eq(h_run_n(n, 2), SLM_OK);
            double all = 0;
            H_FOR(s, i0, i1, i2, i3) all += h_get(&s, i0, i1, i2, 0);
            h_expect_close("sum", h_get(&tot, 0, 0, 0, 0), all, 1e-5, 1e-5);
            H_FOR(rb, i0, i1, i2, i3) {
                double want = 0;
                H_FOR(s, j0, j1, j2, j3)
                    if (j0 % ne0 == i0 && j1 % 2 == i1)
                        want += h_get(&s, j0, j1, j2, 0);
                h_expect_close("repeat_back", h_get(&rb, i0, i1, 0, 0), want, 1e-5, 1e-5);
            }
        }
}
END_TEST

START_TEST(test_adamw)
{
    const int64_t ne0 = 17, ne1 = 3;
    slm_tensor_desc_t p = h_tensor(SLM_TYPE_F32, ne0, ne1, 1, 1, H_GAPS);
    slm_tensor_desc_t g = h_tensor(SLM_TYPE_F32, ne0, ne1, 1, 1, H_TRANS);
    slm_tensor_desc_t m = h_tensor(SLM_TYPE_F32, ne0, ne1, 1, 1, H_CONTIG);
    slm_tensor_desc_t v = h_tensor(SLM_TYPE_F32, ne0, ne1, 1, 1, H_CONTIG);
    slm_tensor_desc_t hp = h_tensor(SLM_TYPE_F32, 7, 1, 1, 1, H_CONTIG);
    h_fill(&p, -1, 1);
    h_fill(&g, -1, 1);
    h_fill(&m, -0.1f, 0.1f);
    h_fill(&v, 0, 0.01f);
    const float hyper[7] = {0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, 1.0f / (1.0f - 0.81f), 1.0f / (1.0f - 0.998001f)};
    for (int i = 0; i < 7; i++)
        h_set(&hp, i, 0, 0, 0, hyper[i]);
    float p0[17][3], g0[17][3], m0[17][3], v0[17][3];
    H_FOR(p, i0, i1, i2, i3) {
        p0[i0][i1] = h_get(&p, i0, i1, 0, 0);
        g0[i0][i1] = h_get(&g, i0, i1, 0, 0);
        m0[i0][i1] = h_get(&m, i0, i1, 0, 0);
        v0[i0][i1] = h_get(&v, i0, i1, 0, 0);
    }
    slm_node_t n = h_node(SLM_OP_ADAMW_STEP, p, 5, (slm_tensor_desc_t[]){p, g, m, v, hp});
    ck_assert_int_eq(h_run(&n), SLM_OK);
    H_FOR(p, i0, i1, i2, i3) {
        double gg = g0[i0][i1];
        double mm = 0.9 * m0[i0][i1] + 0.1 * gg, vv = 0.999 * v0[i0][i1] + 0.001 * gg * gg;
        double want = p0[i0][i1] - 0.01 * (mm * hyper[5] / (sqrt(vv * hyper[6]) + 1e-8) + 0.1 * p0[i0][i1]);
        h_expect_close("adamw m", h_get(&m, i0, i1, 0, 0), mm, 1e-6, 1e-5);
        h_expect_close("adamw v", h_get(&v, i0, i1, 0, 0), vv, 1e-7, 1e-5);
        h_expect_close("adamw param", h_get(&p, i0, i1, 0, 0), want, 1e-6, 1e-5);
    }
}
END_TEST

/* SGD, and AdamW and SGD with the clipping operand: the gradient is scaled by
 * min(1, max_norm / (sqrt(sumsq) + 1e-6)). */
START_TEST(test_sgd_clip)
{
    const int64_t ne0 = 13, ne1 = 2;
    const float sumsq_v = 16.0f, max_norm = 1.0f;
    const double c = max_norm / (4.0 + 1e-6);
    for (int clip = 0; clip < 2; clip++) {
        slm_tensor_desc_t p = h_tensor(SLM_TYPE_F32, ne0, ne1, 1, 1, H_GAPS);
        slm_tensor_desc_t g = h_tensor(SLM_TYPE_F32, ne0, ne1, 1, 1, H_TRANS);
        slm_tensor_desc_t hp = h_tensor(SLM_TYPE_F32, 3, 1, 1, 1, H_CONTIG);
        slm_tensor_desc_t ss = h_tensor(SLM_TYPE_F32, 1, 1, 1, 1, H_CONTIG);
        h_fill(&p, -1, 1);
        h_fill(&g, -1, 1);
        const float hyper[3] = {0.05f, 0.2f, max_norm};
        for (int i = 0; i < 3; i++)
            h_set(&hp, i, 0, 0, 0, hyper[i]);
        h_set(&ss, 0, 0, 0, 0, sumsq_v);
        float p0[13][2], g0[13][2];
        H_FOR(p, i0, i1, i2, i3) {
            p0[i0][i1] = h_get(&p, i0, i1, 0, 0);
            g0[i0][i1] = h_get(&g, i0, i1, 0, 0);
        }
        slm_node_t n = h_node(SLM_OP_SGD_STEP, p, clip ? 4 : 3,
                              (slm_tensor_desc_t[]){p, g, hp, ss});
        ck_assert_int_eq(h_run(&n), SLM_OK);
        double scale = clip ? c : 1.0;
        H_FOR(p, i0, i1, i2, i3) {
            double want = p0[i0][i1] * (1 - 0.05 * 0.2) - 0.05 * scale * g0[i0][i1];
            h_expect_close("sgd param", h_get(&p, i0, i1, 0, 0), want, 1e-6, 1e-5);
        }
    }
    slm_tensor_desc_t p = h_tensor(SLM_TYPE_F32, ne0, ne1, 1, 1, H_CONTIG);
    slm_tensor_desc_t g = h_tensor(SLM_TYPE_F32, ne0, ne1, 1, 1, H_CONTIG);
    slm_tensor_desc_t m = h_tensor(SLM_TYPE_F32, ne0, ne1, 1, 1, H_CONTIG);
    slm_tensor_desc_t v = h_tensor(SLM_TYPE_F32, ne0, ne1, 1, 1, H_CONTIG);
    slm_tensor_desc_t hp = h_tensor(SLM_TYPE_F32, 8, 1, 1, 1, H_CONTIG);
    slm_tensor_desc_t ss = h_tensor(SLM_TYPE_F32, 1, 1, 1, 1, H_CONTIG);
    h_fill(&p, -1, 1);
    h_fill(&g, -1, 1);
    h_fill(&m, 0, 0);
    h_fill(&v, 0, 0);
    const float hyper[8] = {0.01f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f / 0.1f, 1.0f / 0.001f, max_norm};
    for (int i = 0; i < 8; i++)
        h_set(&hp, i, 0, 0, 0, hyper[i]);
    h_set(&ss, 0, 0, 0, 0, sumsq_v);
    float g0[13][2];
    H_FOR(p, i0, i1, i2, i3)
        g0[i0][i1] = h_get(&g, i0, i1, 0, 0);
    slm_node_t n = h_node(SLM_OP_ADAMW_STEP, p, 6, (slm_tensor_desc_t[]){p, g, m, v, hp, ss});
    ck_assert_int_eq(h_run(&n), SLM_OK);
    H_FOR(p, i0, i1, i2, i3) {
        double gg = c * g0[i0][i1];
        h_expect_close("clipped adamw m", h_get(&m, i0, i1, 0, 0), 0.1 * gg, 1e-7, 1e-5);
        h_expect_close("clipped adamw v", h_get(&v, i0, i1, 0, 0), 0.001 * gg * gg, 1e-9, 1e-5);
    }
}
END_TEST

/* ---- threads ---- */

/* Each thread count gives the same answers, and a chain of dependent nodes in one
 * graph_compute sees each node's result (the barrier between nodes works). */
START_TEST(test_thread_counts)
{
    const int counts[] = {1, 2, 3, 5, 8};
    float ref[33 * 65];
    for (int ci = 0; ci < 5; ci++) {
        h_close();
        h_open(counts[ci]);
        slm_tensor_desc_t a = h_tensor(SLM_TYPE_F16, 17, 33, 1, 1, H_CONTIG);
        slm_tensor_desc_t b = h_tensor(SLM_TYPE_F32, 17, 65, 1, 1, H_CONTIG);
        slm_tensor_desc_t c = h_tensor(SLM_TYPE_F32, 33, 65, 1, 1, H_CONTIG);
        slm_tensor_desc_t s = h_tensor(SLM_TYPE_F32, 33, 65, 1, 1, H_GAPS);
        slm_tensor_desc_t y = h_tensor(SLM_TYPE_F32, 33, 65, 1, 1, H_CONTIG);
        for (int64_t i = 0; i < 17 * 33; i++)
            h_set(&a, i % 17, i / 17, 0, 0, (float)((i * 37) % 11) / 7.0f - 0.7f);
        for (int64_t i = 0; i < 17 * 65; i++)
            h_set(&b, i % 17, i / 17, 0, 0, (float)((i * 13) % 17) / 9.0f - 0.9f);
        slm_node_t n[3] = {h_node(SLM_OP_MUL_MAT, c, 2, (slm_tensor_desc_t[]){a, b}),
                           h_node(SLM_OP_SCALE, s, 1, &c),
                           h_node(SLM_OP_SOFT_MAX, y, 1, &s)};
        n[1].fp[0] = 0.5f;
        n[2].fp[0] = 1.0f;
        ck_assert_int_eq(h_run_n(n, 3), SLM_OK);
        H_FOR(y, i0, i1, i2, i3) {
            float got = h_get(&y, i0, i1, 0, 0);
            if (ci == 0)
                ref[i1 * 33 + i0] = got;
            else
                h_expect_close(WHAT("%d threads vs 1 at %lld,%lld", counts[ci], (long long)i0, (long long)i1),
                               got, ref[i1 * 33 + i0], 1e-7, 1e-6);
        }
        /* Same inputs twice: the pool is reusable and deterministic. */
        ck_assert_int_eq(h_run_n(n, 3), SLM_OK);
        H_FOR(y, i0, i1, i2, i3)
            if (ci == 0)
                ck_assert_float_eq(h_get(&y, i0, i1, 0, 0), ref[i1 * 33 + i0]);
    }
}
END_TEST

/* Matrix-vector products split in per-thread shares, each read as two streams, that
 * the threads finish for each other (cpu_claim_streams): every row written once, the
 * same value whatever the thread count, more threads than shares (9) included, rows
 * with and without a tail. Rows first hold NaN. */
START_TEST(test_matvec_shares)
{
    const int counts[] = {1, 2, 3, 8, 9};
    const int64_t lengths[] = {256, 600};
    enum { M = 1037 };
    static float ref[M];
    for (int ik = 0; ik < 2; ik++) {
        int64_t K = lengths[ik];
        for (int ci = 0; ci < 5; ci++) {
            h_close();
            h_open(counts[ci]);
            slm_tensor_desc_t a = h_tensor(SLM_TYPE_F16, K, M, 1, 1, H_CONTIG);
            slm_tensor_desc_t b = h_tensor(SLM_TYPE_F32, K, 1, 1, 1, H_CONTIG);
            slm_tensor_desc_t c = h_tensor(SLM_TYPE_F32, M, 1, 1, 1, H_CONTIG);
            for (int64_t i = 0; i < K * M; i++)
                h_set(&a, i % K, i / K, 0, 0, (float)((i * 37) % 23) / 16.0f - 0.7f);
            for (int64_t k = 0; k < K; k++)
                h_set(&b, k, 0, 0, 0, (float)((k * 13) % 17) / 9.0f - 0.9f);
            for (int64_t m = 0; m < M; m++)
                h_set(&c, m, 0, 0, 0, NAN);
            slm_node_t n = h_node(SLM_OP_MUL_MAT, c, 2, (slm_tensor_desc_t[]){a, b});
            ck_assert_int_eq(h_run(&n), SLM_OK);
            for (int64_t m = 0; m < M; m++) {
                float got = h_get(&c, m, 0, 0, 0);
                ck_assert_msg(!isnan(got), "K=%lld, %d threads: row %lld not written",
                              (long long)K, counts[ci], (long long)m);
                if (ci == 0)
                    ref[m] = got;
                else
                    ck_assert_msg(got == ref[m], "K=%lld, %d threads: row %lld = %.9g, 1 thread %.9g",
                                  (long long)K, counts[ci], (long long)m, (double)got,
                                  (double)ref[m]);
            }
        }
    }
}
END_TEST

/* A prompt's attention goes by blocks of queries through the GEMM (D59), over the
 * span of cells a block sees: cells no query sees may hold anything, NaN included,
 * and must weigh nothing. A causal mask over 70 queries (two blocks, one partial) and
 * 80 cells whose last six no query sees, their K and V rows NaN (the block path);
 * then cell 5 hidden from every query and NaN too (those blocks go query by query).
 * Checked against a double-precision reference, with 2 threads and with 8 (more
 * threads than items: query by query throughout). */
START_TEST(test_attn_blocks_skip_unseen)
{
    enum { D = 32, N = 70, C = 80 };
    for (int run = 0; run < 4; run++) {
        bool gap = run % 2;
        h_close();
        h_open(run < 2 ? 2 : 8);
        slm_tensor_desc_t q = h_tensor(SLM_TYPE_F32, D, 1, N, 1, H_CONTIG);
        slm_tensor_desc_t k = h_tensor(SLM_TYPE_F32, D, C, 1, 1, H_CONTIG);
        slm_tensor_desc_t v = h_tensor(SLM_TYPE_F32, D, C, 1, 1, H_CONTIG);
        slm_tensor_desc_t m = h_tensor(SLM_TYPE_F32, C, N, 1, 1, H_CONTIG);
        slm_tensor_desc_t y = h_tensor(SLM_TYPE_F32, D, 1, N, 1, H_CONTIG);
        h_fill(&q, -1.0f, 1.0f);
        h_fill(&k, -1.0f, 1.0f);
        h_fill(&v, -1.0f, 1.0f);
        for (int64_t t = 0; t < N; t++)
            for (int64_t c = 0; c < C; c++)
                h_set(&m, c, t, 0, 0, (gap && c == 5) || c > t + 4 ? -INFINITY : 0.0f);
        for (int64_t d = 0; d < D; d++)
            for (int64_t c = 0; c < C; c++)
                if ((gap && c == 5) || c >= N + 4) {
                    h_set(&k, d, c, 0, 0, NAN);
                    h_set(&v, d, c, 0, 0, NAN);
                }
        slm_node_t n = h_node(SLM_OP_ATTN, y, 4, (slm_tensor_desc_t[]){q, k, v, m});
        n.fp[0] = 0.25f;
        ck_assert_int_eq(h_run(&n), SLM_OK);
        for (int64_t t = 0; t < N; t++) {
            double w[C], sum = 0.0, top = -INFINITY;
            for (int64_t c = 0; c < C; c++) {
                w[c] = -INFINITY;
                if ((gap && c == 5) || c > t + 4)
                    continue;
                double s = 0.0;
                for (int64_t d = 0; d < D; d++)
                    s += (double)h_get(&q, d, 0, t, 0) * h_get(&k, d, c, 0, 0);
                w[c] = s * 0.25;
                top = w[c] > top ? w[c] : top;
            }
            for (int64_t c = 0; c < C; c++) {
                w[c] = w[c] == -INFINITY ? 0.0 : exp(w[c] - top);
                sum += w[c];
            }
            for (int64_t d = 0; d < D; d++) {
                double want = 0.0;
                for (int64_t c = 0; c < C; c++)
                    if (w[c] > 0.0)
                        want += w[c] / sum * h_get(&v, d, c, 0, 0);
                float got = h_get(&y, d, 0, t, 0);
                ck_assert_msg(fabs(got - want) <= 1e-5, "run %d, query %lld, d %lld: %.9g, want %.9g",
                              run, (long long)t, (long long)d, (double)got, want);
            }
        }
    }
}
END_TEST

/* Two pool threads on one core, a busy neighbour at its worst: every barrier waits
 * for the OS to switch threads. The pool notices its threads waiting on each other
 * and runs the next graphs on thread 0 alone (D54), with the same results. */
START_TEST(test_contention_runs_alone)
{
    cpu_set_t all, one;
    ck_assert_int_eq(sched_getaffinity(0, sizeof all, &all), 0);
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    ck_assert_msg(sched_setaffinity(0, sizeof one, &one) == 0, "cannot pin to one CPU");
    h_close();
    h_open(2);   /* the workers inherit the one-core mask */
    slm_tensor_desc_t a = h_tensor(SLM_TYPE_F32, 512, 1024, 1, 1, H_CONTIG);
    slm_tensor_desc_t x = h_tensor(SLM_TYPE_F32, 512, 1, 1, 1, H_CONTIG);
    slm_tensor_desc_t y = h_tensor(SLM_TYPE_F32, 1024, 1, 1, 1, H_CONTIG);
    slm_tensor_desc_t z = h_tensor(SLM_TYPE_F32, 1024, 1, 1, 1, H_CONTIG);
    h_fill(&a, -1.0f, 1.0f);
    h_fill(&x, -1.0f, 1.0f);
    double want[1024];
    for (int64_t m = 0; m < 1024; m++) {
        want[m] = 0;
        for (int64_t k = 0; k < 512; k++)
            want[m] += (double)h_get(&a, k, m, 0, 0) * h_get(&x, k, 0, 0, 0);
        want[m] *= 0.5;
    }
    /* A matrix-vector product (claimed rows, a barrier after) then a small node. */
    slm_node_t n[2] = {h_node(SLM_OP_MUL_MAT, y, 2, (slm_tensor_desc_t[]){a, x}),
                       h_node(SLM_OP_SCALE, z, 1, &y)};
    n[1].fp[0] = 0.5f;
    for (int run = 0; run < 12 && !h_logged("run on one thread"); run++) {
        ck_assert_int_eq(h_run_n(n, 2), SLM_OK);
        for (int64_t m = 0; m < 1024; m++)
            h_expect_close(WHAT("run %d, row %lld", run, (long long)m), h_get(&z, m, 0, 0, 0),
                           want[m], 1e-4, 1e-4);
    }
    ck_assert_msg(h_logged("run on one thread"), "12 graphs on one core and the pool never "
                  "ran alone");
    for (int run = 0; run < 3; run++) {   /* alone, and once the pool tries again */
        ck_assert_int_eq(h_run_n(n, 2), SLM_OK);
        for (int64_t m = 0; m < 1024; m++)
            h_expect_close(WHAT("alone, run %d, row %lld", run, (long long)m),
                           h_get(&z, m, 0, 0, 0), want[m], 1e-4, 1e-4);
    }
    h_close();   /* the workers go with their mask; later tests get a fresh pool */
    ck_assert_int_eq(sched_setaffinity(0, sizeof all, &all), 0);
    h_open(threads);
}
END_TEST

static Suite *backend_suite(void)
{
    Suite *s = suite_create(CPU_TEST_VARIANT);
    struct { const char *name; const TTest *fn; } cases[] = {
        {"descriptor", test_descriptor}, {"device_props", test_device_props},
        {"buffers", test_buffers}, {"supports_node", test_supports_node},
        {"add_mul_broadcast", test_add_mul_broadcast}, {"unary", test_unary},
        {"rms_norm", test_rms_norm}, {"rope", test_rope}, {"soft_max", test_soft_max},
        {"get_rows", test_get_rows}, {"mul_mat", test_mul_mat}, {"out_prod", test_out_prod},
        {"cpy_rounding", test_cpy_rounding}, {"cpy_layouts", test_cpy_layouts},
        {"acc", test_acc}, {"cross_entropy", test_cross_entropy},
        {"sum_repeat_back", test_sum_repeat_back}, {"adamw", test_adamw},
        {"sgd_clip", test_sgd_clip},
        {"thread_counts", test_thread_counts},
        {"matvec_shares", test_matvec_shares},
        {"attn_blocks_skip_unseen", test_attn_blocks_skip_unseen},
        {"contention_runs_alone", test_contention_runs_alone},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, cases[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    const char *missing = h_missing_cpu_feature(CPU_TEST_FEATURES);
    if (missing) {
        printf("SKIP: %s needs CPU feature %s, which this CPU lacks\n", CPU_TEST_VARIANT, missing);
        return 77;
    }
    const char *why = h_load(CPU_TEST_VARIANT);
    if (why) {
        fprintf(stderr, "%s\n", why);
        return 1;
    }
    const char *t = getenv("SLMOPS_TEST_THREADS");
    if (t && atoi(t) > 0)
        threads = atoi(t);
    SRunner *sr = srunner_create(backend_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
