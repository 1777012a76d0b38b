/* Test tool for the adapter scripts, over the public API:
 *   adapter-tool new BASE OUT [rank=R] [alpha=A] [rslora=1] [seed=S] [targets=LIST]
 *                [b_seed=S] [b_scale=X] [format=F]
 *     a new adapter (PEFT's initialisation), B filled with uniform values in
 *     +-b_scale from b_seed when b_seed is given, saved to OUT;
 *   adapter-tool load BASE ADAPTER OUT [format=F]
 *     ADAPTER read and checked against BASE (slm_adapter_load), saved to OUT. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/adapter.h>
#include <slmops/model-file.h>
#include <slmops/registry.h>

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

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[1], "new") != 0 && (strcmp(argv[1], "load") != 0 || argc < 5))) {
        fprintf(stderr, "usage: %s new BASE OUT [key=value...] | load BASE ADAPTER OUT [format=F]\n", argv[0]);
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
