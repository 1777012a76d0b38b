/* Test tool for the adapter scripts, over the public API:
 *   adapter-tool new BASE OUT [rank=R] [alpha=A] [rslora=1] [seed=S] [targets=LIST]
 *                [b_seed=S] [b_scale=X] [format=F]
 *     a new adapter (PEFT's initialisation), B filled with uniform values in
 *     +-b_scale from b_seed when b_seed is given, saved to OUT;
 *   adapter-tool load BASE ADAPTER OUT [format=F]
 *     ADAPTER read and checked against BASE (slm_adapter_load), saved to OUT;
 *   adapter-tool logits MODEL OUT IDS [ADAPTER[:SCALE]...]
 *     the logits of every position of the comma-separated token IDS, decoded in one
 *     batch (f32 KV cache) with the adapters applied at run time, written
 *     to OUT as int32 n_tokens, int32 n_vocab, the n_tokens ids, then n_tokens rows
 *     of n_vocab f32 (host byte order). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/adapter.h>
#include <slmops/model.h>
#include <slmops/model-file.h>
#include <slmops/registry.h>
#include <slmops/types.h>

static const char *opt(int argc, char **argv, int from, const char *key)
{
    size_t n = strlen(key);
    for (int i = from; i < argc; i++)
        if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=')
            return argv[i] + n + 1;
    return NULL;
}

static uint64_t next(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill_b(slm_adapter_t *ad, uint64_t seed, double scale)
{
    for (size_t i = 0; i < slm_adapter_n_targets(ad); i++) {
        slm_adapter_target_t t = {.struct_size = sizeof t};
        slm_adapter_target(ad, i, &t);
        for (int64_t k = 0; k < t.n_out * t.rank; k++)
            t.b[k] = (float)(scale * ((double)(next(&seed) >> 11) / 4503599627370496.0 - 1.0));
    }
}

static int parse_ids(const char *s, int32_t *ids, int cap)
{
    int n = 0;
    for (char *end; *s && n < cap; s = *end ? end + 1 : end) {
        ids[n++] = (int32_t)strtol(s, &end, 10);
        if (end == s)
            return -1;
    }
    return n;
}

/* "FILE[:SCALE]" as the CLI reads it, for this tool's simpler needs. */
static int attach(slm_model_t *m, const char *arg, slm_error_t *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", arg);
    char *colon = strrchr(path, ':'), *end = NULL;
    float scale = colon ? strtof(colon + 1, &end) : 1.0f;
    if (colon && end && *end == '\0' && end != colon + 1)
        *colon = '\0';
    else
        scale = 1.0f;
    return slm_model_load_adapter(m, path, scale, err);
}

static int logits(int argc, char **argv)
{
    int32_t ids[512];
    int n = parse_ids(argv[4], ids, 512);
    if (n <= 0) {
        fprintf(stderr, "adapter-tool: bad token ids '%s'\n", argv[4]);
        return 2;
    }
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    slm_model_t *m = NULL;
    slm_context_t *ctx = NULL;
    int rc = reg ? slm_model_load(reg, argv[2], NULL, &m, &err) : err.code;
    for (int i = 5; rc >= 0 && i < argc; i++)
        rc = attach(m, argv[i], &err);
    slm_context_params_t cp;
    slm_context_params_default(&cp);
    cp.type_kv = SLM_TYPE_F32;   /* as exact as the oracles: no f16 rounding of K and V */
    if (rc >= 0)
        rc = slm_context_new(m, &cp, &ctx, &err);
    int8_t want[512];
    memset(want, 1, sizeof want);
    slm_batch_t b = {.struct_size = sizeof b, .n_tokens = n, .token = ids, .logits = want};
    if (rc >= 0)
        rc = slm_context_decode(ctx, &b, &err);
    FILE *f = rc >= 0 ? fopen(argv[3], "wb") : NULL;
    int32_t head[2] = {n, slm_model_n_vocab(m)};
    bool ok = f && fwrite(head, sizeof head, 1, f) == 1 && fwrite(ids, 4, (size_t)n, f) == (size_t)n;
    for (int i = 0; ok && i < n; i++)
        ok = fwrite(slm_context_logits(ctx, i), 4, (size_t)head[1], f) == (size_t)head[1];
    if (f && fclose(f) != 0)
        ok = false;
    if (rc < 0)
        fprintf(stderr, "adapter-tool: %s\n", err.message);
    else if (!ok)
        fprintf(stderr, "adapter-tool: cannot write %s\n", argv[3]);
    slm_context_free(ctx);
    slm_model_free(m);
    slm_registry_free(reg);
    return rc >= 0 && ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "logits") == 0)
        return logits(argc, argv);
    if (argc < 4 || (strcmp(argv[1], "new") != 0 && (strcmp(argv[1], "load") != 0 || argc < 5))) {
        fprintf(stderr, "usage: %s new BASE OUT [key=value...] | load BASE ADAPTER OUT [format=F] | "
                "logits MODEL OUT IDS [ADAPTER[:SCALE]...]\n", argv[0]);
        return 2;
    }
    bool is_new = strcmp(argv[1], "new") == 0;
    int kv = is_new ? 4 : 5;
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    slm_model_file_t *base = NULL;
    slm_adapter_t *ad = NULL;
    int rc = reg ? slm_model_file_open(reg, argv[2], NULL, &base, &err) : err.code;
    if (rc == SLM_OK && is_new) {
        slm_adapter_params_t p;
        slm_adapter_params_default(&p);
        const char *v;
        if ((v = opt(argc, argv, kv, "rank")))
            p.rank = atoi(v);
        if ((v = opt(argc, argv, kv, "alpha")))
            p.alpha = strtof(v, NULL);
        if ((v = opt(argc, argv, kv, "rslora")))
            p.rslora = atoi(v) != 0;
        if ((v = opt(argc, argv, kv, "seed")))
            p.seed = strtoull(v, NULL, 0);
        p.targets = opt(argc, argv, kv, "targets");
        rc = slm_adapter_new(base, &p, &ad, &err);
        if (rc == SLM_OK && (v = opt(argc, argv, kv, "b_seed"))) {
            const char *s = opt(argc, argv, kv, "b_scale");
            fill_b(ad, strtoull(v, NULL, 0), s ? strtod(s, NULL) : 0.1);
        }
    } else if (rc == SLM_OK) {
        rc = slm_adapter_load(reg, argv[3], base, &ad, &err);
    }
    if (rc == SLM_OK)
        rc = slm_adapter_save(ad, reg, argv[kv - 1], opt(argc, argv, kv, "format"), NULL, &err);
    if (rc != SLM_OK)
        fprintf(stderr, "adapter-tool: %s\n", err.message);
    slm_adapter_free(ad);
    slm_model_file_free(base);
    slm_registry_free(reg);
    return rc == SLM_OK ? 0 : 1;
}
