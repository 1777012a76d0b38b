/* New adapters for training: which base weights a target list names, and PEFT's
 * initialisation (A Kaiming-uniform, B zero) drawn from a seed, the same everywhere. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/adapter.h"
#include "internal/util.h"

#define DEFAULT_TARGETS "q,v"

/* Short names of a block's projections and of the output matrix. */
static const struct { const char *name, *piece; } aliases[] = {
    {"q", "attn_q"}, {"k", "attn_k"}, {"v", "attn_v"}, {"o", "attn_output"},
    {"qkv", "attn_qkv"}, {"gate", "ffn_gate"}, {"up", "ffn_up"}, {"down", "ffn_down"},
    {"output", "output.weight"},
};

void slm_adapter_params_default(slm_adapter_params_t *p)
{
    if (p)
        *p = (slm_adapter_params_t){.struct_size = sizeof *p, .rank = 8, .alpha = 8.0f};
}

/* "blk.N.PIECE.weight" */
static bool is_block_piece(const char *name, const char *piece, size_t plen)
{
    if (strncmp(name, "blk.", 4) != 0)
        return false;
    const char *p = name + 4;
    if (*p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9')
        p++;
    return *p++ == '.' && strncmp(p, piece, plen) == 0 && strcmp(p + plen, ".weight") == 0;
}

/* Whether list item `item` (len bytes: an alias, a piece or a whole name) names `name`. */
static bool names(const char *item, size_t len, const char *name)
{
    for (size_t i = 0; i < SLM__ARRAY_LEN(aliases); i++)
        if (strlen(aliases[i].name) == len && strncmp(item, aliases[i].name, len) == 0) {
            item = aliases[i].piece;
            len = strlen(item);
            break;
        }
    if (memchr(item, '.', len))
        return strlen(name) == len && strncmp(name, item, len) == 0;
    return is_block_piece(name, item, len);
}

/* One list item: leading and trailing blanks dropped. */
static const char *next_item(const char *s, size_t *len, const char **rest)
{
    while (*s == ' ')
        s++;
    const char *end = strchr(s, ',');
    *rest = end ? end + 1 : NULL;
    size_t n = end ? (size_t)(end - s) : strlen(s);
    while (n && s[n - 1] == ' ')
        n--;
    *len = n;
    return s;
}

static bool wanted(const char *targets, const char *name)
{
    const char *rest = targets, *item;
    size_t len;
    while (rest) {
        item = next_item(rest, &len, &rest);
        if (len && names(item, len, name))
            return true;
    }
    return false;
}

/* Every item names at least one weight, and no item is empty. */
static int check_items(const slm_model_file_t *base, const char *targets, slm_error_t *err)
{
    const char *rest = targets, *item;
    size_t len, n = slm_model_file_n_tensors(base);
    while (rest) {
        item = next_item(rest, &len, &rest);
        if (!len)
            return slm__fail(err, SLM_E_INVALID, NULL, -1,
                             "adapter: the target list '%s' has an empty item", targets);
        bool found = false;
        for (size_t i = 0; i < n && !found; i++) {
            slm_model_tensor_t t = {.struct_size = sizeof t};
            slm_model_file_tensor(base, i, &t);
            found = t.n_dims == 2 && strcmp(t.name, "token_embd.weight") != 0 &&
                    names(item, len, t.name);
        }
        if (!found)
            return slm__fail(err, SLM_E_NOT_FOUND, slm__adapter_base_label(base), -1,
                             "adapter: target '%.*s' names no weight matrix of %s (targets: q k v o qkv "
                             "gate up down output, a name piece such as attn_q, or a tensor name)",
                             (int)len, item, slm__adapter_base_label(base));
    }
    return SLM_OK;
}

/* splitmix64 (public domain, Sebastiano Vigna): one stream per target, seeded by
 * the seed and the target's name. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* FNV-1a of the target's name: its stream does not depend on what else is adapted. */
static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001B3ull;
    return h;
}

/* kaiming_uniform_(a=sqrt(5)) on A [rank, n_in]: gain sqrt(2 / (1 + 5)), bound
 * gain * sqrt(3 / fan_in) = 1 / sqrt(n_in). */
static void init_a(slm__adapter_target_t *t, uint64_t seed)
{
    uint64_t state = seed ^ name_hash(t->name);
    double bound = 1.0 / sqrt((double)t->n_in);
    uint64_t n = (uint64_t)t->rank * (uint64_t)t->n_in;
    for (uint64_t i = 0; i < n; i++) {
        double u = (double)(splitmix64(&state) >> 11) * (1.0 / 9007199254740992.0);
        t->a[i] = (float)(-bound + 2.0 * bound * u);
    }
}

int slm_adapter_new(const slm_model_file_t *base, const slm_adapter_params_t *p,
                    slm_adapter_t **out, slm_error_t *err)
{
    if (out)
        *out = NULL;
    if (!base || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapter: no base model or result");
    slm_adapter_params_t q;
    slm_adapter_params_default(&q);
    if (p)
        memcpy(&q, p, p->struct_size < sizeof q ? p->struct_size : sizeof q);
    const char *targets = q.targets ? q.targets : DEFAULT_TARGETS;
    if (q.rank < 1 || q.rank > 65536)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapter: rank %d is not in [1, 65536]",
                         (int)q.rank);
    if (!(q.dropout >= 0.0f && q.dropout < 1.0f))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapter: dropout %g is not in [0, 1)",
                         (double)q.dropout);
    if (!isfinite(q.alpha) || q.alpha == 0.0f)
        return slm__fail(err, SLM_E_INVALID, NULL, -1,
                         "adapter: alpha %g is not a finite non-zero number", (double)q.alpha);
    int rc = check_items(base, targets, err);
    slm_adapter_t *ad = NULL;
    if (rc == SLM_OK)
        rc = slm__adapter_create(base, &ad, err);
    size_t n = slm_model_file_n_tensors(base);
    for (size_t i = 0; rc == SLM_OK && i < n; i++) {
        slm_model_tensor_t t = {.struct_size = sizeof t};
        slm_model_file_tensor(base, i, &t);
        if (t.n_dims != 2 || strcmp(t.name, "token_embd.weight") == 0 || !wanted(targets, t.name))
            continue;
        slm__adapter_target_t *at;
        rc = slm__adapter_add(ad, t.name, q.rank, t.ne[0], t.ne[1], &at, err);
        if (rc == SLM_OK)
            init_a(at, q.seed);
    }
    if (rc != SLM_OK) {
        slm_adapter_free(ad);
        return rc;
    }
    /* llama.cpp knows no rsLoRA: alpha / sqrt(r) is kept as alpha' / r. */
    ad->alpha = q.rslora ? (float)((double)q.alpha * sqrt((double)q.rank)) : q.alpha;
    ad->rslora = q.rslora;
    ad->dropout = q.dropout;
    *out = ad;
    return SLM_OK;
}
