/* Test helper for the mix oracle: writes a small f32 Llama-shaped GGUF whose layer
 * count, heads, experts, tied embedding and row lengths are chosen on the command
 * line, so llama-quantize's per-tensor rules can be exercised cheaply. Matrices have
 * only `rows` rows: quantizers decide types from names and row lengths alone. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/model-file.h>
#include <slmops/registry.h>
#include <slmops/types.h>

typedef struct spec {
    long layers, heads, kv, experts, tied, qkv, embd, ff, rows;
} spec_t;

static uint32_t seed = 12345;

static float next_value(void)
{
    seed = seed * 1664525u + 1013904223u;
    return (float)(seed >> 8) / 8388608.0f - 1.0f;
}

static int tensor(slm_model_file_t *mf, const char *name, int n_dims, int64_t ne0, int64_t ne1,
                  int64_t ne2)
{
    int64_t ne[3] = {ne0, ne1, ne2};
    size_t n = (size_t)ne0 * (size_t)(n_dims > 1 ? ne1 : 1) * (size_t)(n_dims > 2 ? ne2 : 1);
    float *x = malloc(n * sizeof *x);
    if (!x)
        return -1;
    for (size_t i = 0; i < n; i++)
        x[i] = n_dims == 1 ? 1.0f : next_value();
    int rc = slm_model_file_add_tensor(mf, name, SLM_TYPE_F32, n_dims, ne, x, n * sizeof *x,
                                       SLM_MF_COPY, NULL);
    free(x);
    return rc;
}

static int u32(slm_model_file_t *mf, const char *key, long v)
{
    uint32_t x = (uint32_t)v;
    return slm_model_file_set_value(mf, key, SLM_MF_U32, &x, 0, NULL);
}

static int metadata(slm_model_file_t *mf, const spec_t *s)
{
    float eps = 1e-5f;
    int rc = 0;
    rc |= slm_model_file_set_string(mf, "general.architecture", "llama", NULL) < 0;
    rc |= slm_model_file_set_string(mf, "general.name", "mix-model", NULL) < 0;
    rc |= u32(mf, "general.file_type", 0) < 0;
    rc |= u32(mf, "llama.context_length", 256) < 0;
    rc |= u32(mf, "llama.embedding_length", s->embd) < 0;
    rc |= u32(mf, "llama.block_count", s->layers) < 0;
    rc |= u32(mf, "llama.feed_forward_length", s->ff) < 0;
    rc |= u32(mf, "llama.attention.head_count", s->heads) < 0;
    rc |= u32(mf, "llama.attention.head_count_kv", s->kv) < 0;
    rc |= u32(mf, "llama.rope.dimension_count", s->embd / s->heads) < 0;
    rc |= slm_model_file_set_value(mf, "llama.attention.layer_norm_rms_epsilon", SLM_MF_F32,
                                   &eps, 0, NULL) < 0;
    if (s->experts) {
        rc |= u32(mf, "llama.expert_count", s->experts) < 0;
        rc |= u32(mf, "llama.expert_used_count", 2) < 0;
    }
    return rc ? -1 : 0;
}

static int layer(slm_model_file_t *mf, const spec_t *s, long il)
{
    static const char *const attn[] = {"attn_q", "attn_k", "attn_v", "attn_output"};
    static const char *const ffn[] = {"ffn_gate", "ffn_up"};
    char name[96];
    int rc = 0;
#define NAME(fmt, part) (snprintf(name, sizeof name, "blk.%ld." fmt ".weight", il, part), name)
    rc |= tensor(mf, NAME("%s", "attn_norm"), 1, s->embd, 1, 1);
    rc |= tensor(mf, NAME("%s", "ffn_norm"), 1, s->embd, 1, 1);
    if (s->qkv)
        rc |= tensor(mf, NAME("%s", "attn_qkv"), 2, s->embd, s->rows, 1);
    for (size_t i = s->qkv ? 3 : 0; i < 4; i++)
        rc |= tensor(mf, NAME("%s", attn[i]), 2, s->embd, s->rows, 1);
    if (s->experts) {
        rc |= tensor(mf, NAME("%s", "ffn_gate_inp"), 2, s->embd, s->experts, 1);
        for (size_t i = 0; i < 2; i++)
            rc |= tensor(mf, NAME("%s_exps", ffn[i]), 3, s->embd, s->rows, s->experts);
        rc |= tensor(mf, NAME("%s", "ffn_down_exps"), 3, s->ff, s->rows, s->experts);
    } else {
        for (size_t i = 0; i < 2; i++)
            rc |= tensor(mf, NAME("%s", ffn[i]), 2, s->embd, s->rows, 1);
        rc |= tensor(mf, NAME("%s", "ffn_down"), 2, s->ff, s->rows, 1);
    }
#undef NAME
    return rc ? -1 : 0;
}

static int parse(int argc, char **argv, spec_t *s)
{
    static const char *const keys[] = {"layers", "heads", "kv", "experts", "tied", "qkv",
                                       "embd", "ff", "rows"};
    *s = (spec_t){.layers = 8, .heads = 8, .kv = 8, .embd = 256, .ff = 512, .rows = 4};
    for (int i = 2; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        size_t k = 0;
        while (eq && k < sizeof keys / sizeof keys[0] &&
               (strlen(keys[k]) != (size_t)(eq - argv[i]) ||
                strncmp(argv[i], keys[k], (size_t)(eq - argv[i])) != 0))
            k++;
        if (!eq || k == sizeof keys / sizeof keys[0]) {
            fprintf(stderr, "mix-model: '%s' is not KEY=N (layers heads kv experts tied qkv "
                    "embd ff rows)\n", argv[i]);
            return -1;
        }
        ((long *)s)[k] = strtol(eq + 1, NULL, 10);
    }
    return s->layers > 0 && s->heads > 0 && s->kv > 0 && s->embd > 0 && s->ff > 0 && s->rows > 0
               ? 0 : -1;
}

int main(int argc, char **argv)
{
    spec_t s;
    if (argc < 2 || parse(argc, argv, &s) != 0) {
        fprintf(stderr, "usage: mix-model OUT.gguf [layers=N heads=N kv=N experts=N tied=0|1 "
                "qkv=0|1 embd=N ff=N rows=N]\n");
        return 2;
    }
    slm_registry_t *reg = slm_registry_new(NULL, NULL);
    slm_model_file_t *mf = slm_model_file_new();
    int rc = reg && mf ? metadata(mf, &s) : -1;
    if (rc == 0)
        rc = tensor(mf, "token_embd.weight", 2, s.embd, s.rows, 1);
    if (rc == 0)
        rc = tensor(mf, "output_norm.weight", 1, s.embd, 1, 1);
    if (rc == 0 && !s.tied)
        rc = tensor(mf, "output.weight", 2, s.embd, s.rows, 1);
    for (long il = 0; il < s.layers && rc == 0; il++)
        rc = layer(mf, &s, il);
    slm_error_t err;
    slm_error_init(&err);
    if (rc == 0 && slm_model_file_save(mf, reg, argv[1], "format-gguf", &err) != SLM_OK) {
        fprintf(stderr, "mix-model: %s\n", err.message);
        rc = -1;
    }
    slm_model_file_free(mf);
    slm_registry_free(reg);
    return rc == 0 ? 0 : 1;
}
