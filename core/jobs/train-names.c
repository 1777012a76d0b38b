/* Hugging Face names of the Llama family's canonical tensors, which a trainer
 * plugin gets (slm_trainer_tensor_info_t.hf_name) to name what PEFT saves. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/util.h"
#include "jobs/train.h"

/* Per block: GGUF piece after "blk.N." <-> HF module after "model.layers.N.". */
static const struct { const char *gguf, *hf; } block_map[] = {
    {"attn_norm", "input_layernorm"},
    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},
    {"attn_qkv", "self_attn.qkv_proj"},
    {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

static const struct { const char *gguf, *hf; } top_map[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

static char *dup_printf(const char *fmt, unsigned layer, const char *module, const char *param)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, fmt, layer, module, param);
    return n > 0 && (size_t)n < sizeof buf ? strdup(buf) : NULL;
}

char *slm__train_hf_name(const char *arch, const char *name, int32_t *layer)
{
    *layer = -1;
    for (size_t i = 0; i < SLM__ARRAY_LEN(top_map); i++)
        if (strcmp(name, top_map[i].gguf) == 0)
            return strdup(top_map[i].hf);
    unsigned l;
    int used = 0;
    if (sscanf(name, "blk.%u.%n", &l, &used) != 1 || used == 0 || l > 1000000)
        return NULL;
    const char *rest = name + used, *dot = strrchr(rest, '.');
    if (!dot || (strcmp(dot, ".weight") != 0 && strcmp(dot, ".bias") != 0))
        return NULL;
    size_t n = (size_t)(dot - rest);
    for (size_t i = 0; i < SLM__ARRAY_LEN(block_map); i++) {
        if (strlen(block_map[i].gguf) != n || strncmp(rest, block_map[i].gguf, n) != 0)
            continue;
        /* phi-3 keeps gate and up fused in one matrix. */
        const char *module = strcmp(block_map[i].gguf, "ffn_up") == 0 && arch &&
                                     strcmp(arch, "phi3") == 0 ? "mlp.gate_up_proj"
                                                               : block_map[i].hf;
        *layer = (int32_t)l;
        return dup_printf("model.layers.%u.%s%s", l, module, dot);
    }
    return NULL;
}
