/* Which type each tensor of a quantized model gets, and converting rows between
 * types on several threads. The rules are written down in docs/quantization.md. */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slmops/quantize.h>
#include <slmops/types.h>

#include "internal/registry.h"
#include "internal/util.h"
#include "jobs/jobs.h"

/* general.file_type of the types the core itself converts; a quantized type's
 * comes from its manifest (provides.types[].gguf_file_type). */
static const struct { int32_t type, ftype; } core_ftypes[] = {
    {SLM_TYPE_F32, 0},
    {SLM_TYPE_F16, 1},
    {SLM_TYPE_BF16, 32},
};

bool slm__jobs_is_quantizable(const char *name, int32_t n_dims)
{
    size_t n = strlen(name);
    if (n_dims < 2 || n < 6 || strcmp(name + n - 6, "weight") != 0)
        return false;
    /* A mixture-of-experts router stays as it is, as llama-quantize keeps it. */
    return !strstr(name, "_norm.weight") && strncmp(name, "rope_freqs", 10) != 0 &&
           !strstr(name, "ffn_gate_inp.weight");
}

static bool divides(int32_t type, int64_t ne0)
{
    const slm_type_traits_t *t = slm_type_get_traits(type);
    return t && t->block > 0 && ne0 % t->block == 0;
}

/* The manifest names a type by name; one no plugin registered counts as absent. */
static int32_t named_type(const char *name)
{
    return name ? slm_type_from_name(name) : -1;
}

int32_t slm__jobs_fit_type(slm_registry_t *reg, int32_t wanted, int64_t ne0, char *why,
                           size_t cap)
{
    if (why && cap)
        why[0] = '\0';
    if (divides(wanted, ne0))
        return wanted;
    const slm_type_traits_t *t = slm_type_get_traits(wanted);
    const slm__quant_type_t *q = slm__registry_quant_type(reg, wanted);
    int32_t fb = named_type(q ? q->fallback : NULL);
    int32_t out = fb >= 0 && divides(fb, ne0) ? fb : SLM_TYPE_F16;
    if (why)
        snprintf(why, cap, "row length %lld is not a multiple of %s's block of %u: kept in %s",
                 (long long)ne0, slm_type_name(wanted), t ? t->block : 0, slm_type_name(out));
    return out;
}

int32_t slm__jobs_output_type(slm_registry_t *reg, int32_t requested)
{
    const slm__quant_type_t *q = slm__registry_quant_type(reg, requested);
    int32_t o = named_type(q ? q->output_type : NULL);
    return o >= 0 ? o : requested;
}

int32_t slm__jobs_file_type(slm_registry_t *reg, int32_t type)
{
    for (size_t i = 0; i < SLM__ARRAY_LEN(core_ftypes); i++)
        if (core_ftypes[i].type == type)
            return core_ftypes[i].ftype;
    const slm__quant_type_t *q = slm__registry_quant_type(reg, type);
    return q ? q->gguf_file_type : -1;
}

int slm__jobs_threads(int n)
{
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    return n > 256 ? 256 : n;
}

/* ---- threaded conversion ---- */

typedef struct conv_job {
    slm_registry_t *reg;
    int32_t src_type, dst_type;
    const uint8_t *src;
    uint8_t *dst;
    size_t src_row, dst_row;
    int64_t row0, row1, ne0;
    int rc;
    bool threaded;
    slm_error_t err;
} conv_job_t;

/* Rows converted per step: bounds the f32 scratch of each thread. */
#define STEP_ELEMS (1 << 20)

static int to_dst(conv_job_t *j, const float *x, uint8_t *dst, int64_t n_rows)
{
    int64_t n = n_rows * j->ne0;
    switch (j->dst_type) {
    case SLM_TYPE_F32:
        memcpy(dst, x, (size_t)n * sizeof *x);
        return SLM_OK;
    case SLM_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = slm_f32_to_f16(x[i]);
        return SLM_OK;
    case SLM_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = slm_f32_to_bf16(x[i]);
        return SLM_OK;
    default:
        return slm_quantize_rows(j->reg, j->dst_type, x, dst, n_rows, j->ne0, NULL, &j->err);
    }
}

static void *conv_run(void *arg)
{
    conv_job_t *j = arg;
    int64_t step = STEP_ELEMS / j->ne0 > 0 ? STEP_ELEMS / j->ne0 : 1;
    float *scratch = NULL;
    if (j->src_type != SLM_TYPE_F32 &&
        !(scratch = malloc((size_t)step * (size_t)j->ne0 * sizeof *scratch))) {
        j->rc = slm__fail(&j->err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
        return NULL;
    }
    for (int64_t r = j->row0; r < j->row1 && j->rc == SLM_OK; r += step) {
        int64_t n = j->row1 - r < step ? j->row1 - r : step;
        const uint8_t *s = j->src + (size_t)r * j->src_row;
        const float *x = (const float *)s;
        if (scratch) {
            j->rc = slm_dequantize_rows(j->reg, j->src_type, s, scratch, n, j->ne0, &j->err);
            x = scratch;
        }
        if (j->rc == SLM_OK)
            j->rc = to_dst(j, x, j->dst + (size_t)r * j->dst_row, n);
    }
    free(scratch);
    return NULL;
}

/* A first conversion of one block on the calling thread loads the plugins the
 * types need, so that the threads never race to load them. */
static int warm_up(slm_registry_t *reg, int32_t src_type, int32_t dst_type, int64_t ne0,
                   slm_error_t *err)
{
    const slm_type_traits_t *s = slm_type_get_traits(src_type), *d = slm_type_get_traits(dst_type);
    if (!s || !d)
        return slm__fail(err, SLM_E_UNSUPPORTED, NULL, -1, "quantize: %s is not a type this "
                         "build knows", slm_type_name(!s ? src_type : dst_type));
    if (!s->is_quantized && !d->is_quantized)
        return SLM_OK;
    int64_t n = d->block > s->block ? d->block : s->block;
    if (n > ne0)
        n = ne0;
    float *x = calloc((size_t)n, sizeof *x);
    void *q = calloc((size_t)n * 4 + 64, 1);
    int rc = x && q ? SLM_OK : slm__fail(err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
    if (rc == SLM_OK && s->is_quantized && n % s->block == 0)
        rc = slm_dequantize_rows(reg, src_type, q, x, 1, n, err);
    if (rc == SLM_OK && d->is_quantized && n % d->block == 0)
        rc = slm_quantize_rows(reg, dst_type, x, q, 1, n, NULL, err);
    free(x);
    free(q);
    return rc;
}

/* Worker threads take no process-directed signals (SIGINT, SIGTERM, ...): those go
 * to the thread that can act on them (the CLI's clean-up handler, chat's Ctrl-C).
 * Faults a thread causes itself still reach it. */
static int create_quiet_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        sigdelset(&all, faults[i]);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int slm__jobs_convert(slm_registry_t *reg, int32_t src_type, const void *src, int32_t dst_type,
                      void *dst, int64_t n_rows, int64_t ne0, int n_threads, slm_error_t *err)
{
    size_t src_row = slm_type_row_size(src_type, ne0), dst_row = slm_type_row_size(dst_type, ne0);
    if (!src_row || !dst_row || n_rows < 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "quantize: rows of %lld cannot be "
                         "converted from %s to %s", (long long)ne0, slm_type_name(src_type),
                         slm_type_name(dst_type));
    int rc = warm_up(reg, src_type, dst_type, ne0, err);
    if (rc)
        return rc;
    int nt = slm__jobs_threads(n_threads);
    if (nt > n_rows)
        nt = n_rows > 0 ? (int)n_rows : 1;
    conv_job_t *jobs = calloc((size_t)nt, sizeof *jobs);
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    if (!jobs || !th) {
        free(jobs);
        free(th);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
    }
    for (int t = 0; t < nt; t++) {
        jobs[t] = (conv_job_t){.reg = reg, .src_type = src_type, .dst_type = dst_type,
                               .src = src, .dst = dst, .src_row = src_row, .dst_row = dst_row,
                               .row0 = n_rows * t / nt, .row1 = n_rows * (t + 1) / nt,
                               .ne0 = ne0};
        slm_error_init(&jobs[t].err);
    }
    for (int t = 1; t < nt; t++)
        jobs[t].threaded = create_quiet_thread(&th[t], conv_run, &jobs[t]) == 0;
    /* Thread 0's share, and any share a thread could not start for, runs here. */
    for (int t = 0; t < nt; t++)
        if (!jobs[t].threaded)
            conv_run(&jobs[t]);
    for (int t = 1; t < nt; t++)
        if (jobs[t].threaded)
            pthread_join(th[t], NULL);
    rc = SLM_OK;
    for (int t = 0; t < nt && rc == SLM_OK; t++)
        if (jobs[t].rc != SLM_OK) {
            rc = jobs[t].rc;
            if (err)
                *err = jobs[t].err;
        }
    free(jobs);
    free(th);
    return rc;
}
