/* Device backends against the CPU backend: greedy decoding and long reductions
 * (device-parity.h). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slmops/plugin-backend.h>

#include "common.h"
#include "device-parity.h"

#define N_STEP_BY_STEP 8

static slm_model_t *load(slm_registry_t *reg, const char *path, const char *device)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_model_params_t p;
    slm_model_params_default(&p);
    p.device = device;
    p.n_threads = 2;
    slm_model_t *m = NULL;
    ck_assert_msg(slm_model_load(reg, path, &p, &m, &err) == SLM_OK, "loading %s on %s: %s", path,
                  device, err.message);
    return m;
}

static slm_context_t *context(slm_model_t *m)
{
    slm_context_params_t p;
    slm_context_params_default(&p);
    p.n_ctx = DP_STEPS;
    p.n_batch = 64;
    p.n_seq = 1;
    p.type_kv = SLM_TYPE_F32;
    slm_error_t err;
    slm_error_init(&err);
    slm_context_t *c = NULL;
    ck_assert_msg(slm_context_new(m, &p, &c, &err) == SLM_OK, "context: %s", err.message);
    return c;
}

static int32_t argmax(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static float max_diff(const float *a, const float *b, int32_t n)
{
    float d = 0.0f;
    for (int32_t v = 0; v < n; v++)
        d = fmaxf(d, fabsf(a[v] - b[v]));
    return d;
}

static void decode_ok(slm_context_t *c, const slm_batch_t *b, const char *where)
{
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_context_decode(c, b, &err) == SLM_OK, "%s decode: %s", where, err.message);
}

/* The logits of `got` at position pos against the CPU's. */
static void same_as_cpu(const float *got, const float *cpu, int32_t n_vocab, int pos,
                        const char *device, bool tight)
{
    ck_assert_msg(argmax(got, n_vocab) == argmax(cpu, n_vocab), "position %d: %s picks %d, cpu %d",
                  pos, device, argmax(got, n_vocab), argmax(cpu, n_vocab));
    if (tight)
        ck_assert_msg(max_diff(got, cpu, n_vocab) <= DP_LOGIT_TOL,
                      "logits at position %d differ by %g on %s", pos,
                      (double)max_diff(got, cpu, n_vocab), device);
}

void dp_generation_matches_cpu(slm_registry_t *reg, const char *model_path, int32_t n_vocab,
                               const char *device)
{
    slm_model_t *mc = load(reg, model_path, "cpu"), *md = load(reg, model_path, device);
    slm_context_t *cc = context(mc), *cd = context(md);
    float *cpu = malloc(sizeof(float) * (size_t)n_vocab * DP_STEPS);
    ck_assert_ptr_nonnull(cpu);
    int32_t toks[DP_STEPS];
    toks[0] = 1;   /* BOS */
    for (int pos = 0; pos < DP_STEPS; pos++) {
        slm_batch_t b = {.struct_size = sizeof b, .n_tokens = 1, .token = &toks[pos]};
        decode_ok(cc, &b, "cpu");
        float *row = cpu + (size_t)pos * (size_t)n_vocab;
        memcpy(row, slm_context_logits(cc, 0), sizeof(float) * (size_t)n_vocab);
        if (pos + 1 < DP_STEPS)
            toks[pos + 1] = argmax(row, n_vocab);
    }
    for (int pos = 0; pos < N_STEP_BY_STEP; pos++) {
        slm_batch_t b = {.struct_size = sizeof b, .n_tokens = 1, .token = &toks[pos]};
        decode_ok(cd, &b, device);
        same_as_cpu(slm_context_logits(cd, 0), cpu + (size_t)pos * (size_t)n_vocab, n_vocab, pos,
                    device, pos <= 2);
    }
    enum { REST = DP_STEPS - N_STEP_BY_STEP };
    int8_t want[REST];
    memset(want, 1, sizeof want);
    slm_batch_t rest = {.struct_size = sizeof rest, .n_tokens = REST, .token = toks + N_STEP_BY_STEP,
                        .logits = want};
    decode_ok(cd, &rest, device);
    for (int i = 0; i < REST; i++) {
        int pos = N_STEP_BY_STEP + i;
        same_as_cpu(slm_context_logits(cd, i), cpu + (size_t)pos * (size_t)n_vocab, n_vocab, pos,
                    device, pos == DP_STEPS - 1);
    }
    free(cpu);
    slm_context_free(cc);
    slm_context_free(cd);
    slm_model_free(mc);
    slm_model_free(md);
}

float dp_reduce_on(slm_registry_t *reg, const char *device, int op, int64_t V, int64_t N,
                   const float *l, const float *t)
{
    slm_sched_t *s = tc_sched(reg, device);
    slm_graph_t *g = slm_graph_new(16);
    slm_tensor_t *a = slm_tensor_new_2d(g, SLM_TYPE_F32, V, N);
    slm_tensor_t *b = slm_tensor_new_2d(g, SLM_TYPE_F32, V, N);
    slm_tensor_set_flags(a, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(b, SLM_TENSOR_INPUT);
    slm_tensor_t *x = op == SLM_OP_SUM ? slm_sum(g, a) : slm_cross_entropy(g, a, b);
    ck_assert_ptr_nonnull(x);
    slm_tensor_set_flags(x, SLM_TENSOR_OUTPUT);
    tc_alloc(s, g);
    tc_set(a, l, (size_t)(V * N) * sizeof *l);
    tc_set(b, t, (size_t)(V * N) * sizeof *t);
    tc_compute(s, g);
    float r;
    tc_get(x, &r, sizeof r);
    slm_graph_free(g);
    slm_sched_free(s);
    return r;
}

void dp_long_reductions_match_cpu(slm_registry_t *reg, const char *device)
{
    enum { V = 512, N = 64, M = 70000 };
    float *l = malloc(sizeof(float) * M), *t = calloc(M, sizeof(float));
    ck_assert(l && t);
    uint64_t rng = 7;
    tc_fill(l, M, &rng, 5.0f);
    for (int n = 0; n < N; n++)
        t[n * V + (n * 31) % V] = 1.0f;
    float c = dp_reduce_on(reg, "cpu", SLM_OP_CROSS_ENTROPY, V, N, l, t);
    float d = dp_reduce_on(reg, device, SLM_OP_CROSS_ENTROPY, V, N, l, t);
    ck_assert_msg(fabsf(c - d) <= 1e-5f * fabsf(c), "cross_entropy [%d,%d]: cpu %g, %s %g", V, N,
                  (double)c, device, (double)d);
    c = dp_reduce_on(reg, "cpu", SLM_OP_SUM, M, 1, l, t);
    d = dp_reduce_on(reg, device, SLM_OP_SUM, M, 1, l, t);
    ck_assert_msg(fabsf(c - d) <= 1e-3f, "sum of %d: cpu %g, %s %g", M, (double)c, device,
                  (double)d);
    free(l);
    free(t);
}

void dp_auto_keeps_the_cpu(slm_registry_t *reg, const char *device)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_device_info_t dev, au;
    ck_assert_msg(slm_device_resolve(reg, device, &dev, &err) == SLM_OK, "%s", err.message);
    ck_assert_msg(slm_device_resolve(reg, "auto", &au, &err) == SLM_OK, "%s", err.message);
    if (dev.score < SLM_DEVICE_SCORE_CPU)
        ck_assert_msg(strcmp(au.id, dev.id) != 0, "auto picked the emulated %s", dev.name);
}

static void probe(const char *plugin, const char *device, const char *build_hint,
                  const char *device_hint)
{
    slm_error_t rerr;
    slm_error_init(&rerr);
    slm_registry_options_t o = {.struct_size = sizeof o};
    slm_registry_t *reg = slm_registry_new(&o, &rerr);
    if (!reg) {
        printf("registry: %s\n", rerr.message);
        exit(EXIT_FAILURE);
    }
    const slm_plugin_info_t *p = slm_registry_find(reg, "backend", plugin);
    if (!p) {
        printf("SKIP: %s is not built (%s)\n", plugin, build_hint);
        exit(77);
    }
    if (p->state == SLM_PLUGIN_UNSUPPORTED) {
        printf("SKIP: %s: %s\n", plugin, p->reason);
        exit(77);
    }
    slm_error_t err;
    slm_error_init(&err);
    slm_device_t *dev = slm_device_open(reg, device, NULL, &err);
    if (!dev) {
        printf("SKIP: no %s (%s): %s\n", device, device_hint, err.message);
        exit(77);
    }
    slm_device_close(dev);
    slm_registry_free(reg);
    exit(EXIT_SUCCESS);
}

void dp_skip_unless_device(const char *plugin, const char *device, const char *build_hint,
                           const char *device_hint)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(EXIT_FAILURE);
    }
    if (pid == 0)
        probe(plugin, device, build_hint, device_hint);
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
        printf("the device probe crashed\n");
        exit(EXIT_FAILURE);
    }
    if (WEXITSTATUS(st) != 0)
        exit(WEXITSTATUS(st));
}
