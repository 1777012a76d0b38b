/* Which base tensors a trainer method's target list names, shared by the in-tree
 * trainer plugins: short names (q k v o qkv gate up down output norm embed), a
 * name piece ("attn_q", "ffn_down") or a whole tensor name. */
#ifndef SLMOPS_PLUGIN_TRAINER_TARGETS_H
#define SLMOPS_PLUGIN_TRAINER_TARGETS_H

#include <stdbool.h>
#include <stddef.h>

#include <slmops/plugin-trainer.h>

/* Whether list item `item` names tensor `name`. */
bool trainer_target_names(const char *item, const char *name);
/* Whether any item of the list names `name`. */
bool trainer_targets_name(const char *const *items, size_t n, const char *name);
/* Every item names at least one tensor of the model that `fits` accepts (NULL: any);
 * else err says which item names none, for method `method`, and SLM_E_INVALID. */
int trainer_targets_check(const slm_trainer_model_t *model, const char *const *items, size_t n,
                          bool (*fits)(const slm_trainer_tensor_info_t *t), const char *method,
                          slm_error_t *err);

#endif
