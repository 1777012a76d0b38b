/* Tensor names between Hugging Face and GGUF (llama.cpp's tensor map for the
 * Llama family), and the q/k row permutation llama.cpp's converter applies. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "st.h"

/* Per-layer pieces: HF suffix after "model.layers.N." <-> GGUF suffix after "blk.N.". */
static const struct { const char *hf, *gguf; } layer_map[] = {
    {"input_layernorm", "attn_norm"},
    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"},
    {"self_attn.qkv_proj", "attn_qkv"},
    {"post_attention_layernorm", "ffn_norm"},
    {"mlp.gate_proj", "ffn_gate"},
    {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
    {"mlp.gate_up_proj", "ffn_up"},   /* phi-3: gate and up fused, as llama.cpp stores it */
};

static const struct { const char *hf, *gguf; } top_map[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

/* "weight" or "bias" after the piece, or NULL. */
static const char *param_after(const char *s, const char *piece)
{
    size_t n = strlen(piece);
    if (strncmp(s, piece, n) != 0 || s[n] != '.')
        return NULL;
    return strcmp(s + n + 1, "weight") == 0 || strcmp(s + n + 1, "bias") == 0 ? s + n + 1 : NULL;
}

/* "PREFIX<N>.rest": N and rest, or false. */
static bool layer_of(const char *name, const char *prefix, unsigned *layer, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0)
        return false;
    const char *p = name + n;
    unsigned v = 0;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > 100000)
            return false;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (*p != '.')
        return false;
    *layer = v;
    *rest = p + 1;
    return true;
}

void st_name_to_gguf(const char *hf, char *out, size_t cap)
{
    for (size_t i = 0; i < sizeof top_map / sizeof top_map[0]; i++)
        if (strcmp(hf, top_map[i].hf) == 0) {
            snprintf(out, cap, "%s", top_map[i].gguf);
            return;
        }
    unsigned layer;
    const char *rest, *param;
    if (layer_of(hf, "model.layers.", &layer, &rest))
        for (size_t i = 0; i < sizeof layer_map / sizeof layer_map[0]; i++)
            if ((param = param_after(rest, layer_map[i].hf))) {
                snprintf(out, cap, "blk.%u.%s.%s", layer, layer_map[i].gguf, param);
                return;
            }
    snprintf(out, cap, "%s", hf);
}

void st_name_to_hf(const char *gguf, const char *arch, char *out, size_t cap)
{
    for (size_t i = 0; i < sizeof top_map / sizeof top_map[0]; i++)
        if (strcmp(gguf, top_map[i].gguf) == 0) {
            snprintf(out, cap, "%s", top_map[i].hf);
            return;
        }
    bool phi3 = arch && strcmp(arch, "phi3") == 0;
    unsigned layer;
    const char *rest, *param;
    if (layer_of(gguf, "blk.", &layer, &rest))
        for (size_t i = 0; i < sizeof layer_map / sizeof layer_map[0]; i++) {
            if (strcmp(layer_map[i].gguf, "ffn_up") == 0 &&
                (strcmp(layer_map[i].hf, "mlp.gate_up_proj") == 0) != phi3)
                continue;
            if ((param = param_after(rest, layer_map[i].gguf))) {
                snprintf(out, cap, "model.layers.%u.%s.%s", layer, layer_map[i].hf, param);
                return;
            }
        }
    snprintf(out, cap, "%s", gguf);
}

bool st_arch_permutes(const char *arch)
{
    return arch && strcmp(arch, "llama") == 0;
}

/* HF groups each head's rotary pairs as [first halves | second halves]; GGUF
 * interleaves them. Row (h, i, j) of HF -> row (h, j, i) of GGUF, i in {0, 1}. */
bool st_permute_rows(const uint8_t *src, uint8_t *dst, uint64_t rows, uint64_t row_bytes,
                     uint32_t n_head, bool to_gguf)
{
    if (!n_head || rows % (2ull * n_head))
        return false;
    uint64_t half = rows / n_head / 2;
    for (uint64_t h = 0; h < n_head; h++)
        for (uint64_t i = 0; i < 2; i++)
            for (uint64_t j = 0; j < half; j++) {
                uint64_t hf = h * 2 * half + i * half + j, gg = h * 2 * half + j * 2 + i;
                uint64_t from = to_gguf ? hf : gg, to = to_gguf ? gg : hf;
                memcpy(dst + to * row_bytes, src + from * row_bytes, row_bytes);
            }
    return true;
}

/* ---- PEFT LoRA tensors ---- */

#define PEFT_PREFIX "base_model.model."

static const struct { const char *peft, *gguf; } lora_suffix[] = {
    {".lora_A.weight", ".lora_a"},
    {".lora_B.weight", ".lora_b"},
};

bool st_peft_name_to_gguf(const char *peft, char *out, size_t cap)
{
    size_t plen = sizeof PEFT_PREFIX - 1, n = strlen(peft);
    if (strncmp(peft, PEFT_PREFIX, plen) != 0)
        return false;
    for (size_t i = 0; i < sizeof lora_suffix / sizeof lora_suffix[0]; i++) {
        size_t slen = strlen(lora_suffix[i].peft);
        if (n <= plen + slen || strcmp(peft + n - slen, lora_suffix[i].peft) != 0)
            continue;
        /* The module's own weight, as the base model names it. */
        char hf[256], gguf[256];
        int len = snprintf(hf, sizeof hf, "%.*s.weight", (int)(n - plen - slen), peft + plen);
        if (len < 0 || (size_t)len >= sizeof hf)
            return false;
        st_name_to_gguf(hf, gguf, sizeof gguf);
        if (strcmp(gguf, hf) == 0)
            return false;   /* not a module the base model's name map knows */
        len = snprintf(out, cap, "%s%s", gguf, lora_suffix[i].gguf);
        return len > 0 && (size_t)len < cap;
    }
    return false;
}

bool st_peft_name_from_gguf(const char *gguf, const char *arch, char *out, size_t cap)
{
    size_t n = strlen(gguf);
    for (size_t i = 0; i < sizeof lora_suffix / sizeof lora_suffix[0]; i++) {
        size_t slen = strlen(lora_suffix[i].gguf);
        if (n <= slen || strcmp(gguf + n - slen, lora_suffix[i].gguf) != 0)
            continue;
        char base[256], hf[256];
        if (n - slen >= sizeof base)
            return false;
        memcpy(base, gguf, n - slen);
        base[n - slen] = 0;
        st_name_to_hf(base, arch, hf, sizeof hf);
        size_t h = strlen(hf);
        if (strcmp(hf, base) == 0 || h <= 7 || strcmp(hf + h - 7, ".weight") != 0)
            return false;
        int len = snprintf(out, cap, PEFT_PREFIX "%.*s%s", (int)(h - 7), hf, lora_suffix[i].peft);
        return len > 0 && (size_t)len < cap;
    }
    return false;
}

bool st_peft_module_of(const char *gguf, const char *arch, char *out, size_t cap)
{
    char peft[320];
    if (!st_peft_name_from_gguf(gguf, arch, peft, sizeof peft))
        return false;
    /* "...self_attn.q_proj.lora_A.weight": the component before ".lora_X.weight". */
    size_t n = strlen(peft) - strlen(".lora_A.weight");
    size_t start = n;
    while (start > 0 && peft[start - 1] != '.')
        start--;
    int len = snprintf(out, cap, "%.*s", (int)(n - start), peft + start);
    return len > 0 && (size_t)len < cap;
}
