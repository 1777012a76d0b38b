/* Peak memory of training steps through the internal forward API (forward builder,
 * loss, autodiff, optimizer): full fine-tuning or LoRA, on a base of any type (QLoRA).
 *
 *   bench/train-memory MODEL full|lora [CTX [BATCH [THREADS [RANK [qkvo|all]]]]]
 *
 * full: every weight becomes an f32 master copy and a parameter (the tied head's
 * second use stays frozen). lora: the base stays as the file has it (mmapped; an
 * NF4 file is QLoRA) and rank-RANK f32 adapters on q,k,v,o (qkvo) or on every
 * projection (all, the default) are trained. Two AdamW steps on random tokens; the
 * peak RSS (getrusage) after each phase and the sizes it should add up to are
 * printed. Run by hand, one configuration per process; never part of make check. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <slmops/log.h>
#include <slmops/model.h>
#include <slmops/optim.h>
#include <slmops/quantize.h>
#include <slmops/registry.h>
#include <slmops/sched.h>
#include <slmops/types.h>

#include "runtime/forward.h"

#define MIB (1024.0 * 1024.0)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double peak_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static double rss_mib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / MIB;
}

static void phase(const char *what)
{
    printf("  %-28s rss %8.1f MiB   peak %8.1f MiB\n", what, rss_mib(), peak_mib());
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* SLMOPS_LOG=debug,sched shows the scheduler's plan (persistent and arena sizes). */
static void log_line(slm_log_level_t level, const char *category, const char *msg, void *user)
{
    (void)user;
    fprintf(stderr, "[%s] %s: %s\n", slm_log_level_name(level), category, msg);
}

static int die(const char *what, const slm_error_t *err)
{
    fprintf(stderr, "train-memory: %s: %s\n", what, err->message);
    return 1;
}

/* full: replace every weight by an f32 copy in a writable buffer (master weights). */
static int to_f32_masters(slm_registry_t *reg, slm_model_t *m, uint64_t *bytes, slm_error_t *err)
{
    for (size_t i = 0; i < m->n_weights; i++) {
        slm__weight_t *w = &m->weights[i];
        size_t n = (size_t)(w->ne[0] * w->ne[1]), raw = slm_type_row_size(w->type, w->ne[0]) *
                                                          (size_t)w->ne[1];
        void *src = malloc(raw);
        float *f = malloc(n * sizeof *f);
        int rc = src && f ? slm_buffer_get(w->buf, 0, src, raw) : SLM_E_NOMEM;
        if (rc == 0)
            rc = slm_dequantize_rows(reg, w->type, src, f, w->ne[1], w->ne[0], err);
        slm_buffer_t *b = rc == 0 ? slm_buffer_new(m->sched, n * sizeof *f, err) : NULL;
        if (b && slm_buffer_set(b, 0, f, n * sizeof *f) != 0)
            rc = SLM_E_DEVICE;
        free(src);
        free(f);
        if (rc != 0 || !b)
            return rc ? rc : SLM_E_NOMEM;
        slm_buffer_free(w->buf);
        w->buf = b;
        w->type = SLM_TYPE_F32;
        *bytes += n * sizeof *f;
    }
    return 0;
}

typedef struct factor {
    char name[112];
    slm__weight_t w;
} factor_t;

static int factor_new(slm_model_t *m, factor_t *f, const char *base, const char *ab, int64_t ne0,
                      int64_t ne1, float bound, uint32_t seed, slm_error_t *err)
{
    snprintf(f->name, sizeof f->name, "%s.lora_%s", base, ab);
    size_t n = (size_t)(ne0 * ne1);
    float *h = malloc(n * sizeof *h);
    if (!h)
        return SLM_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        h[i] = bound * ((float)(lcg(&seed) % 65536u) / 32768.0f - 1.0f);
    f->w = (slm__weight_t){.name = f->name, .type = SLM_TYPE_F32, .ne = {ne0, ne1, 1, 1}};
    f->w.buf = slm_buffer_new(m->sched, n * sizeof *h, err);
    int rc = f->w.buf ? slm_buffer_set(f->w.buf, 0, h, n * sizeof *h) : SLM_E_NOMEM;
    free(h);
    return rc;
}

static bool targeted(const char *name, bool all)
{
    static const char *const qkvo[] = {"attn_q.weight", "attn_k.weight", "attn_v.weight",
                                       "attn_output.weight", "attn_qkv.weight"};
    static const char *const ffn[] = {"ffn_gate.weight", "ffn_up.weight", "ffn_down.weight",
                                      "ffn_gate_up.weight"};
    const char *dot = strchr(name, '.');
    if (strncmp(name, "blk.", 4) != 0 || !dot || !(dot = strchr(dot + 1, '.')))
        return false;
    for (size_t i = 0; i < sizeof qkvo / sizeof qkvo[0]; i++)
        if (!strcmp(dot + 1, qkvo[i]))
            return true;
    for (size_t i = 0; all && i < sizeof ffn / sizeof ffn[0]; i++)
        if (!strcmp(dot + 1, ffn[i]))
            return true;
    return false;
}

/* PEFT's initialisation: A uniform in +-1/sqrt(in) (Kaiming with a = sqrt(5)), B zero. */
static int attach_loras(slm_model_t *m, slm__adapters_t *ad, int r, bool all, factor_t **out,
                        size_t *n_out, uint64_t *params, slm_error_t *err)
{
    factor_t *fs = calloc(2 * m->n_weights, sizeof *fs);
    if (!fs)
        return SLM_E_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < m->n_weights; i++) {
        const slm__weight_t *w = &m->weights[i];
        if (!targeted(w->name, all))
            continue;
        factor_t *a = &fs[n++], *b = &fs[n++];
        int rc = factor_new(m, a, w->name, "a", w->ne[0], r, 1.0f / sqrtf((float)w->ne[0]),
                            (uint32_t)i * 7 + 1, err);
        if (rc == 0)
            rc = factor_new(m, b, w->name, "b", r, w->ne[1], 0.0f, 1, err);
        slm__lora_t lo = {.a = a->w, .b = b->w, .scale = 2.0f, .trainable = true};
        if (rc == 0)
            rc = slm__adapters_attach(ad, w, &lo, err);
        if (rc != 0) {
            *out = fs;
            *n_out = n;
            return rc;
        }
        *params += (uint64_t)(w->ne[0] + w->ne[1]) * (uint64_t)r;
    }
    *out = fs;
    *n_out = n;
    return 0;
}

/* full: the first leaf bound to each model weight becomes a parameter. */
static uint64_t mark_params(slm_graph_t *g, const slm_model_t *m)
{
    uint64_t params = 0;
    bool *seen = calloc(m->n_weights, sizeof *seen);
    for (size_t i = 0; seen && i < slm_graph_n_tensors(g); i++) {
        slm_tensor_t *t = slm_graph_tensor(g, i);
        if (slm_tensor_op(t) != SLM_OP_NONE || slm_tensor_src(t, 0))
            continue;
        for (size_t k = 0; k < m->n_weights; k++)
            if (!seen[k] && !strcmp(slm_tensor_name(t), m->weights[k].name)) {
                seen[k] = true;
                slm_tensor_set_flags(t, SLM_TENSOR_PARAM);
                params += (uint64_t)slm_tensor_nelements(t);
                break;
            }
    }
    free(seen);
    return params;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[2], "full") && strcmp(argv[2], "lora"))) {
        fprintf(stderr, "usage: train-memory MODEL full|lora [CTX [BATCH [THREADS [RANK "
                        "[qkvo|all]]]]]\n");
        return 2;
    }
    bool full = !strcmp(argv[2], "full");
    int64_t T = argc > 3 ? atoll(argv[3]) : 256, B = argc > 4 ? atoll(argv[4]) : 1;
    int threads = argc > 5 ? atoi(argv[5]) : 2, rank = argc > 6 ? atoi(argv[6]) : 16;
    bool all = argc > 7 ? strcmp(argv[7], "qkvo") != 0 : true;
    slm_error_t err = {.struct_size = sizeof err};
    slm_log_set_handler(log_line, NULL);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    if (!reg)
        return die("registry", &err);
    slm_model_params_t mp;
    slm_model_params_default(&mp);
    mp.device = "cpu";
    mp.n_threads = threads;
    slm_model_t *m = NULL;
    if (slm_model_load(reg, argv[1], &mp, &m, &err) != SLM_OK)
        return die(argv[1], &err);
    uint64_t weight_bytes = 0, params = 0;
    for (size_t i = 0; i < m->n_weights; i++)
        weight_bytes += slm_buffer_size(m->weights[i].buf);
    printf("%s: %s, ctx %lld x batch %lld, %d threads%s\n", argv[1], full ? "full" : "lora",
           (long long)T, (long long)B, threads, full ? "" : (all ? ", all projections" : ", q k v o"));
    phase("loaded");
    slm__adapters_t *ad = NULL;
    factor_t *fs = NULL;
    size_t n_fs = 0;
    if (full) {
        weight_bytes = 0;
        if (to_f32_masters(reg, m, &weight_bytes, &err) != 0)
            return die("f32 master weights", &err);
        phase("f32 master weights");
    } else {
        ad = slm__adapters_new(m, &err);
        if (!ad || attach_loras(m, ad, rank, all, &fs, &n_fs, &params, &err) != 0)
            return die("adapters", &err);
    }
    slm_graph_t *g = slm_graph_new(slm__forward_graph_size(m, ad) * 8);
    slm__seq_graph_t sg;
    slm__xent_t xe;
    if (slm__forward_sequences(m, g, T, B, ad, 0, &sg, &err) != SLM_OK ||
        slm__xent_build(g, sg.fwd.out, &xe, &err) != SLM_OK)
        return die("forward graph", &err);
    if (full)
        params = mark_params(g, m);
    if (slm_graph_backward(g, xe.loss, &err) != SLM_OK)
        return die("backward", &err);
    slm_optim_params_t op;
    slm_optim_params_default(&op);
    op.lr = 1e-4f;
    slm_optim_t *o = slm_optim_new(g, &op, &err);
    if (!o || slm_sched_alloc(slm_model_sched(m), g, &err) != SLM_OK)
        return die("optimizer / allocation", &err);
    phase("graph allocated");
    int64_t N = T * B;
    int32_t *tok = malloc((size_t)N * sizeof *tok), *tgt = malloc((size_t)N * sizeof *tgt);
    uint32_t seed = 3;
    for (int64_t i = 0; i < N; i++)
        tok[i] = (int32_t)(lcg(&seed) % (uint32_t)slm_model_n_vocab(m));
    for (int64_t i = 0; i < N; i++)
        tgt[i] = i + 1 < N ? tok[i + 1] : -1;
    double t_step = 0;
    for (int step = 0; step < 2; step++) {
        if (slm__forward_sequences_feed(&sg, tok, NULL, &err) != SLM_OK ||
            slm__xent_feed(&xe, tgt, &err) < 0)
            return die("inputs", &err);
        double t0 = now();
        if (slm_optim_step(o, slm_model_sched(m), &err) != SLM_OK)
            return die("step", &err);
        t_step = now() - t0;
        float loss = 0;
        slm_tensor_get_data(xe.loss, &loss, 0, sizeof loss);
        char what[64];
        snprintf(what, sizeof what, "step %d (loss %.4f, %.2f s)", step + 1, (double)loss, t_step);
        phase(what);
    }
    double arena = (double)slm_sched_compute_bytes(slm_model_sched(m)) / MIB;
    printf("  sizes: weights %.1f MiB, trainable %.2f M params (%.1f MiB), gradients %.1f MiB, "
           "AdamW moments %.1f MiB, intermediates (arena) %.1f MiB\n",
           (double)weight_bytes / MIB, (double)params * 1e-6, (double)params * 4 / MIB,
           (double)params * 4 / MIB, (double)params * 8 / MIB, arena);
    printf("  peak RSS %.1f MiB; %.0f tokens/s in the second step\n", peak_mib(),
           (double)N / t_step);
    free(tok);
    free(tgt);
    slm_optim_free(o);
    slm_graph_free(g);
    for (size_t i = 0; i < n_fs; i++)
        slm_buffer_free(fs[i].w.buf);
    free(fs);
    slm__adapters_free(ad);
    slm_model_free(m);
    slm_registry_free(reg);
    return 0;
}
