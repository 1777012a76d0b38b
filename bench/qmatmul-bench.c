/* Times the CPU backend's weight products at a training shape: mul_mat (forward) and
 * mul_mat_t (the activation gradient) for each weight type; run by hand, never by make check.
 *
 *   bench/qmatmul-bench [DEVICE [THREADS [K M N [TYPES...]]]]
 *   defaults: cpu, 2 threads, W [K=576, M=1536] (ffn_up of smollm2-135m), N=2048 tokens,
 *   types f32 f16 q8_0 q4_0 nf4 (k-quants need K a multiple of 256: e.g. 1536 576 2048 q4_k) */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slmops/device.h>
#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>
#include <slmops/quantize.h>
#include <slmops/registry.h>
#include <slmops/types.h>

enum { WARMUP = 2, REPS = 7 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fill(float *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / (float)(1u << 24) - 0.5f;
    }
}

/* A contiguous 2-D tensor [ne0, ne1] of `type` at the start of a backend buffer. */
static void desc_2d(slm_tensor_desc_t *d, int type, int64_t ne0, int64_t ne1, void *buffer,
                    void *base)
{
    const slm_type_traits_t *tr = slm_type_get_traits(type);
    memset(d, 0, sizeof *d);
    d->type = type;
    d->ne[0] = ne0;
    d->ne[1] = ne1;
    d->ne[2] = d->ne[3] = 1;
    d->nb[0] = (int64_t)tr->size;
    d->nb[1] = (int64_t)slm_type_row_size(type, ne0);
    d->nb[2] = d->nb[3] = d->nb[1] * ne1;
    d->buffer = buffer;
    d->data = base;
}

typedef struct bufs {
    void *buf[3], *base[3];
} bufs_t;

/* Median seconds of one node with operands in b (0: weight, 1: activations, 2: dst). */
static double time_node(const slm_backend_iface_t *be, void *ctx, const slm_node_t *node)
{
    const slm_node_t *nodes[1] = {node};
    if (!be->supports_node(ctx, node))
        return -1.0;
    double t[REPS];
    for (int r = 0; r < WARMUP + REPS; r++) {
        double t0 = now();
        if (be->graph_compute(ctx, nodes, 1) != 0)
            return -1.0;
        if (r >= WARMUP)
            t[r - WARMUP] = now() - t0;
    }
    qsort(t, REPS, sizeof t[0], cmp_double);
    return t[REPS / 2];
}

static int run_type(slm_registry_t *reg, const slm_backend_iface_t *be, void *ctx, int type,
                    int64_t K, int64_t M, int64_t N)
{
    size_t row = slm_type_row_size(type, K), wbytes = row * (size_t)M;
    size_t xn = (size_t)(K > M ? K : M) * (size_t)N;
    float *w = malloc((size_t)(K * M) * sizeof *w), *x = malloc(xn * sizeof *x);
    void *wq = malloc(wbytes);
    bufs_t d;
    memset(&d, 0, sizeof d);
    int rc = 1;
    slm_error_t err;
    slm_error_init(&err);
    if (!w || !x || !wq || row == 0)
        goto out;
    fill(w, (size_t)(K * M), 7);
    fill(x, xn, 9);
    if (slm_quantize_rows(reg, type, w, wq, M, K, NULL, &err) != 0) {
        fprintf(stderr, "qmatmul-bench: %s: %s\n", slm_type_name(type), err.message);
        goto out;
    }
    uint64_t bytes[3] = {wbytes, xn * 4, xn * 4};
    for (int i = 0; i < 3; i++)
        if (be->buffer_alloc(ctx, bytes[i], &d.buf[i], &d.base[i]) != 0)
            goto out;
    if (be->buffer_set(ctx, d.buf[0], 0, wq, wbytes) != 0 ||
        be->buffer_set(ctx, d.buf[1], 0, x, bytes[1]) != 0)
        goto out;
    slm_node_t fwd = {.struct_size = sizeof fwd, .op = SLM_OP_MUL_MAT, .n_src = 2};
    desc_2d(&fwd.src[0], type, K, M, d.buf[0], d.base[0]);
    desc_2d(&fwd.src[1], SLM_TYPE_F32, K, N, d.buf[1], d.base[1]);
    desc_2d(&fwd.dst, SLM_TYPE_F32, M, N, d.buf[2], d.base[2]);
    slm_node_t bwd = {.struct_size = sizeof bwd, .op = SLM_OP_MUL_MAT_T, .n_src = 2};
    desc_2d(&bwd.src[0], type, K, M, d.buf[0], d.base[0]);
    desc_2d(&bwd.src[1], SLM_TYPE_F32, M, N, d.buf[1], d.base[1]);
    desc_2d(&bwd.dst, SLM_TYPE_F32, K, N, d.buf[2], d.base[2]);
    double flop = 2.0 * (double)K * (double)M * (double)N;
    double tf = time_node(be, ctx, &fwd), tb = time_node(be, ctx, &bwd);
    printf("%-5s W[%lld,%lld] x %lld tokens:  mul_mat %7.1f GFLOP/s   mul_mat_t %7.1f GFLOP/s"
           "   (%.2f ms / %.2f ms)\n", slm_type_name(type), (long long)K, (long long)M,
           (long long)N, tf > 0 ? flop / tf * 1e-9 : 0.0, tb > 0 ? flop / tb * 1e-9 : 0.0,
           tf * 1e3, tb * 1e3);
    rc = tf > 0 && tb > 0 ? 0 : 1;
out:
    for (int i = 0; i < 3; i++)
        if (d.buf[i])
            be->buffer_free(ctx, d.buf[i]);
    free(w);
    free(x);
    free(wq);
    return rc;
}

int main(int argc, char **argv)
{
    const char *spec = argc > 1 ? argv[1] : "cpu";
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    int64_t K = argc > 5 ? atoll(argv[3]) : 576, M = argc > 5 ? atoll(argv[4]) : 1536;
    int64_t N = argc > 5 ? atoll(argv[5]) : 2048;
    static const char *const dflt[] = {"f32", "f16", "q8_0", "q4_0", "nf4"};
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    if (!reg) {
        fprintf(stderr, "qmatmul-bench: %s\n", err.message);
        return 1;
    }
    slm_device_options_t opts = {.struct_size = sizeof opts, .n_threads = threads};
    slm_device_t *dev = slm_device_open(reg, spec, &opts, &err);
    if (!dev) {
        fprintf(stderr, "qmatmul-bench: cannot open device %s: %s\n", spec, err.message);
        slm_registry_free(reg);
        return 1;
    }
    const slm_device_info_t *info = slm_device_get_info(dev);
    printf("device %s served by %s, %d threads; median of %d runs\n", info->id, info->plugin,
           threads, REPS);
    void *ctx = NULL;
    const slm_backend_iface_t *be = slm_device_backend(dev, &ctx);
    int rc = be ? 0 : 1;
    int n_types = argc > 6 ? argc - 6 : (int)(sizeof dflt / sizeof dflt[0]);
    for (int i = 0; be && i < n_types; i++) {
        const char *name = argc > 6 ? argv[6 + i] : dflt[i];
        int type = slm_type_from_name(name);
        if (type < 0) {
            fprintf(stderr, "qmatmul-bench: unknown type %s\n", name);
            rc = 1;
            continue;
        }
        rc |= run_type(reg, be, ctx, type, K, M, N);
    }
    slm_device_close(dev);
    slm_registry_free(reg);
    return rc;
}
