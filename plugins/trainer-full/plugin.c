/* The "full" trainer: full fine-tuning. Every weight of the base (or those its
 * "weights" setting names) trains in f32; norms and biases skip weight decay; the
 * whole model is saved, in the base's architecture. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <slmops/plugin-trainer.h>

#include "../common/plugin-util.h"
#include "../common/trainer-plugin.h"
#include "../common/trainer-targets.h"

static const slm_trainer_option_t opt_weights = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_STRINGS,
    .name = "weights",
    .description = "the weights that train (short names q k v o gate up down output norm "
                   "embed, name pieces or tensor names); default every one",
};
static const slm_trainer_option_t *const full_options[] = {&opt_weights, NULL};

static bool any_tensor(const slm_trainer_tensor_info_t *t)
{
    return t != NULL;
}

static int full_prepare(const slm_trainer_model_t *model, const slm_trainer_options_t *o,
                        const slm_trainer_plan_t *plan, void **state, slm_error_t *err)
{
    const char *const *weights = NULL;
    size_t n = 0;
    bool some = o->get_strings(o->ctx, "weights", &weights, &n) == 1;
    int rc = some ? trainer_targets_check(model, weights, n, any_tensor, "full", err) : SLM_OK;
    for (size_t i = 0; rc == SLM_OK && i < model->n_tensors; i++) {
        const slm_trainer_tensor_info_t *t = model->tensor(model->ctx, i);
        if (some && !trainer_targets_name(weights, n, t->name))
            continue;
        /* Norm gains and biases (vectors) do not decay, as transformers' Trainer has it. */
        rc = plan->train_base(plan->ctx, t->name, t->n_dims == 1 ? SLM_TRAINER_PARAM_NO_DECAY : 0);
    }
    *state = NULL;
    return rc;
}

static const slm_trainer_method_t method_full = {
    .struct_size = sizeof(slm_trainer_method_t),
    .name = "full",
    .options = full_options,
    .prepare = full_prepare,
    .finish = trainer_finish_model,
};

static const char *const methods[] = {"full", NULL};
static const slm_trainer_method_t *const table[] = {&method_full, NULL};

TRAINER_PLUGIN_DEFINE("trainer-full", methods, table)
