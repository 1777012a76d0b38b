/* Target lists of the in-tree trainer plugins: short names, name pieces and whole
 * tensor names, matched against the canonical (GGUF) names of the base. */
#include "config.h"

#include <string.h>

#include "plugin-util.h"
#include "trainer-targets.h"

/* Short names and the piece each stands for, as PEFT users name the modules. */
static const struct { const char *alias, *piece; } aliases[] = {
    {"q", "attn_q"}, {"k", "attn_k"}, {"v", "attn_v"}, {"o", "attn_output"},
    {"qkv", "attn_qkv"}, {"gate", "ffn_gate"}, {"up", "ffn_up"}, {"down", "ffn_down"},
    {"q_proj", "attn_q"}, {"k_proj", "attn_k"}, {"v_proj", "attn_v"}, {"o_proj", "attn_output"},
    {"gate_proj", "ffn_gate"}, {"up_proj", "ffn_up"}, {"down_proj", "ffn_down"},
};

/* "blk.N.PIECE.weight" or ".bias" */
static bool is_block_piece(const char *name, const char *piece)
{
    if (strncmp(name, "blk.", 4) != 0)
        return false;
    const char *p = name + 4;
    if (*p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9')
        p++;
    size_t n = strlen(piece);
    if (*p++ != '.' || strncmp(p, piece, n) != 0)
        return false;
    return strcmp(p + n, ".weight") == 0 || strcmp(p + n, ".bias") == 0;
}

bool trainer_target_names(const char *item, const char *name)
{
    if (!item || !name)
        return false;
    if (strcmp(item, "output") == 0)
        return strcmp(name, "output.weight") == 0;
    if (strcmp(item, "embed") == 0)
        return strcmp(name, "token_embd.weight") == 0;
    if (strcmp(item, "norm") == 0)
        return strstr(name, "norm.weight") != NULL;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(item, aliases[i].alias) == 0)
            return is_block_piece(name, aliases[i].piece);
    if (strchr(item, '.'))
        return strcmp(item, name) == 0;
    return is_block_piece(name, item);
}

bool trainer_targets_name(const char *const *items, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (trainer_target_names(items[i], name))
            return true;
    return false;
}

int trainer_targets_check(const slm_trainer_model_t *model, const char *const *items, size_t n,
                          bool (*fits)(const slm_trainer_tensor_info_t *t), const char *method,
                          slm_error_t *err)
{
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t k = 0; k < model->n_tensors && !found; k++) {
            const slm_trainer_tensor_info_t *t = model->tensor(model->ctx, k);
            found = t && (!fits || fits(t)) && trainer_target_names(items[i], t->name);
        }
        if (!found)
            return plugin_fail(err, SLM_E_INVALID, NULL, -1,
                               "method %s: target '%s' names no tensor it can train (short "
                               "names: q k v o qkv gate up down output norm embed; a name "
                               "piece such as attn_q; or a whole tensor name)", method,
                               items[i]);
    }
    return SLM_OK;
}
