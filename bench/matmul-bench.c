/* Times the CPU backend's f32 mul_mat through the public device API next to
 * OpenBLAS sgemm/sgemv on the same shapes; run by bench/matmul, never by make check. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slmops/device.h>
#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>
#include <slmops/registry.h>
#include <slmops/types.h>

#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif

enum { THREADS = 2, WARMUP = 3 };

typedef struct shape {
    int64_t M, N, K;
    int reps;
} shape_t;

static const shape_t shapes[] = {
    { 1024, 1024, 1024, 21 },
    { 4096, 1, 4096, 101 },
};

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

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void fill(float *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / (float)(1u << 24) - 0.5f;
    }
}

/* A contiguous 2-D f32 tensor [ne0, ne1] at the start of a backend buffer. */
static void desc_2d(slm_tensor_desc_t *d, int64_t ne0, int64_t ne1, void *buffer, void *base)
{
    memset(d, 0, sizeof *d);
    d->type = SLM_TYPE_F32;
    d->ne[0] = ne0;
    d->ne[1] = ne1;
    d->ne[2] = d->ne[3] = 1;
    d->nb[0] = sizeof(float);
    d->nb[1] = d->nb[0] * ne0;
    d->nb[2] = d->nb[3] = d->nb[1] * ne1;
    d->buffer = buffer;
    d->data = base;
}

typedef struct dev_bufs {
    void *buf[3];
    void *base[3];
} dev_bufs_t;

/* Median seconds of one mul_mat on the device; C is copied back into c_out. */
static double time_slmops(const slm_backend_iface_t *be, void *ctx, const shape_t *s,
                          const float *a, const float *b, float *c_out)
{
    uint64_t bytes[3] = { (uint64_t)(s->K * s->M) * 4, (uint64_t)(s->K * s->N) * 4,
                          (uint64_t)(s->M * s->N) * 4 };
    dev_bufs_t d;
    memset(&d, 0, sizeof d);
    double result = -1.0;
    for (int i = 0; i < 3; i++)
        if (be->buffer_alloc(ctx, bytes[i], &d.buf[i], &d.base[i]) != 0)
            goto out;
    if (be->buffer_set(ctx, d.buf[0], 0, a, bytes[0]) != 0 ||
        be->buffer_set(ctx, d.buf[1], 0, b, bytes[1]) != 0)
        goto out;

    slm_node_t node;
    memset(&node, 0, sizeof node);
    node.struct_size = sizeof node;
    node.op = SLM_OP_MUL_MAT;
    node.n_src = 2;
    desc_2d(&node.src[0], s->K, s->M, d.buf[0], d.base[0]);
    desc_2d(&node.src[1], s->K, s->N, d.buf[1], d.base[1]);
    desc_2d(&node.dst, s->M, s->N, d.buf[2], d.base[2]);
    const slm_node_t *nodes[1] = { &node };
    if (!be->supports_node(ctx, &node)) {
        fprintf(stderr, "matmul-bench: the device does not run this mul_mat node\n");
        goto out;
    }

    double *t = calloc((size_t)s->reps, sizeof *t);
    if (!t)
        goto out;
    for (int r = 0; r < WARMUP + s->reps; r++) {
        double t0 = now();
        if (be->graph_compute(ctx, nodes, 1) != 0 || (be->synchronize && be->synchronize(ctx) != 0)) {
            fprintf(stderr, "matmul-bench: graph_compute failed\n");
            free(t);
            goto out;
        }
        if (r >= WARMUP)
            t[r - WARMUP] = now() - t0;
    }
    result = median(t, s->reps);
    free(t);
    if (be->buffer_get(ctx, d.buf[2], 0, c_out, bytes[2]) != 0)
        result = -1.0;
out:
    for (int i = 0; i < 3; i++)
        if (d.buf[i])
            be->buffer_free(ctx, d.buf[i]);
    return result;
}

#ifdef HAVE_OPENBLAS
/* Same product: A is K x M column-major (row m contiguous along k), so C = A^T B. */
static double time_openblas(const shape_t *s, const float *a, const float *b, float *c)
{
    double *t = calloc((size_t)s->reps, sizeof *t);
    if (!t)
        return -1.0;
    for (int r = 0; r < WARMUP + s->reps; r++) {
        double t0 = now();
        if (s->N == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)s->M, (int)s->K, 1.0f, a, (int)s->K,
                        b, 1, 0.0f, c, 1);
        else
            cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)s->M, (int)s->N,
                        (int)s->K, 1.0f, a, (int)s->K, b, (int)s->K, 0.0f, c, (int)s->M);
        if (r >= WARMUP)
            t[r - WARMUP] = now() - t0;
    }
    double m = median(t, s->reps);
    free(t);
    return m;
}
#endif

static double max_rel_diff(const float *x, const float *y, size_t n)
{
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)y[i]));
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)x[i] - (double)y[i]));
    return scale > 0.0 ? worst / scale : worst;
}

static int run_shape(const slm_backend_iface_t *be, void *ctx, const shape_t *s)
{
    size_t na = (size_t)(s->K * s->M), nb = (size_t)(s->K * s->N), nc = (size_t)(s->M * s->N);
    float *a = malloc(na * 4), *b = malloc(nb * 4), *c = malloc(nc * 4), *ref = malloc(nc * 4);
    int rc = 1;
    if (!a || !b || !c || !ref)
        goto out;
    fill(a, na, 1);
    fill(b, nb, 2);
    double flop = 2.0 * (double)s->M * (double)s->N * (double)s->K;
    double ts = time_slmops(be, ctx, s, a, b, c);
    if (ts <= 0.0)
        goto out;
    printf("mul_mat f32 M=%lld N=%lld K=%lld: slmops %8.1f GFLOP/s", (long long)s->M,
           (long long)s->N, (long long)s->K, flop / ts * 1e-9);
#ifdef HAVE_OPENBLAS
    double tb = time_openblas(s, a, b, ref);
    if (tb <= 0.0)
        goto out;
    printf("   OpenBLAS %8.1f GFLOP/s   ratio %.2f   (max rel diff %.1e)\n", flop / tb * 1e-9,
           tb / ts, max_rel_diff(c, ref, nc));
#else
    (void)max_rel_diff;
    printf("   OpenBLAS not available (configure found no openblas.pc)\n");
#endif
    rc = 0;
out:
    free(a);
    free(b);
    free(c);
    free(ref);
    return rc;
}

int main(int argc, char **argv)
{
    const char *spec = argc > 1 ? argv[1] : "cpu";
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    if (!reg) {
        fprintf(stderr, "matmul-bench: %s\n", err.message);
        return 1;
    }
    slm_device_options_t opts = { .struct_size = sizeof opts, .n_threads = THREADS };
    slm_device_t *dev = slm_device_open(reg, spec, &opts, &err);
    if (!dev) {
        fprintf(stderr, "matmul-bench: cannot open device %s: %s\n", spec, err.message);
        slm_registry_free(reg);
        return 1;
    }
    const slm_device_info_t *info = slm_device_get_info(dev);
    printf("device %s served by %s, %d threads\n  %s\n  why: %s\n", info->id, info->plugin,
           THREADS, info->description, info->why);
#ifdef HAVE_OPENBLAS
    openblas_set_num_threads(THREADS);
    printf("%s, %d threads, core %s (OPENBLAS_CORETYPE=%s)\n", openblas_get_config(),
           openblas_get_num_threads(), openblas_get_corename(),
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "unset");
#endif
    printf("median of repetitions after %d warm-up runs; ratio = slmops / OpenBLAS speed\n",
           WARMUP);

    void *ctx = NULL;
    const slm_backend_iface_t *be = slm_device_backend(dev, &ctx);
    int rc = be ? 0 : 1;
    for (size_t i = 0; be && i < sizeof shapes / sizeof shapes[0]; i++)
        rc |= run_shape(be, ctx, &shapes[i]);
    slm_device_close(dev);
    slm_registry_free(reg);
    return rc;
}
