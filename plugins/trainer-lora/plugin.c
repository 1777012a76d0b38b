/* The "lora" and "qlora" trainers: low-rank adapters (PEFT's LoRA: A Kaiming-uniform,
 * B zero, scale alpha / r or rsLoRA's alpha / sqrt(r), dropout on A's input) on the
 * target weights of a frozen base, saved as a PEFT folder or a llama.cpp adapter.
 * qlora also keeps the frozen weight matrices quantized in memory (NF4 by default). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/plugin-trainer.h>

#include "../common/plugin-util.h"
#include "../common/trainer-plugin.h"
#include "../common/trainer-targets.h"

#define NAME_MAX_LEN 96

typedef struct target {
    char name[NAME_MAX_LEN];   /* canonical: blk.0.attn_q.weight */
    char stem[NAME_MAX_LEN + 32]; /* PEFT's module path: model.layers.0.self_attn.q_proj */
} target_t;

typedef struct lora {
    target_t *t;
    size_t n;
    int64_t rank;
    double alpha, dropout;
    bool rslora;
} lora_t;

static const slm_trainer_option_t opt_rank = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_INT, .name = "rank",
    .default_json = "8", .min = 1, .max = 4096, .description = "adapter rank r",
};
static const slm_trainer_option_t opt_alpha = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_FLOAT,
    .name = "alpha", .default_json = "8", .min = 1e-6, .max = 1e6,
    .description = "PEFT's lora_alpha: the scale is alpha / r (rsLoRA: alpha / sqrt(r))",
};
static const slm_trainer_option_t opt_dropout = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_FLOAT,
    .name = "dropout", .default_json = "0", .min = 0, .max = 0.99,
    .description = "dropout probability on the adapter's input, while training",
};
static const slm_trainer_option_t opt_targets = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_STRINGS,
    .name = "targets", .default_json = "[\"q\", \"v\"]",
    .description = "weights that get adapters: q k v o qkv gate up down output, name pieces "
                   "or tensor names",
};
static const slm_trainer_option_t opt_rslora = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_BOOL,
    .name = "rslora", .default_json = "false", .description = "scale alpha / sqrt(r) (rsLoRA)",
};
static const slm_trainer_option_t opt_quant = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_STRING,
    .name = "quant", .default_json = NULL,
    .description = "the type the frozen weight matrices are kept in (nf4, q4_0, q8_0, ...); "
                   "default: nf4 for float weights, a quantized base's own types",
};
static const slm_trainer_option_t *const lora_options[] = {
    &opt_rank, &opt_alpha, &opt_dropout, &opt_targets, &opt_rslora, NULL,
};
static const slm_trainer_option_t *const qlora_options[] = {
    &opt_rank, &opt_alpha, &opt_dropout, &opt_targets, &opt_rslora, &opt_quant, NULL,
};

/* A matrix of the blocks or the output: not the embedding table (a lookup). */
static bool adaptable(const slm_trainer_tensor_info_t *t)
{
    return t->n_dims == 2 && t->ne[1] > 1 && strcmp(t->name, "token_embd.weight") != 0;
}

/* PEFT's module path: the Hugging Face name less ".weight". */
static void module_stem(const slm_trainer_tensor_info_t *t, char *out, size_t cap)
{
    const char *hf = t->hf_name ? t->hf_name : t->name;
    size_t n = strlen(hf);
    if (n > 7 && strcmp(hf + n - 7, ".weight") == 0)
        n -= 7;
    snprintf(out, cap, "%.*s", (int)n, hf);
}

/* A = U(-1/sqrt(in), 1/sqrt(in)), torch's kaiming_uniform_(a=sqrt(5)) as PEFT
 * draws it; B = 0, so training starts at the base. */
static int add_one(lora_t *s, const slm_trainer_tensor_info_t *t, const slm_trainer_plan_t *plan,
                   float scale)
{
    if (strlen(t->name) + 8 > 59)
        return SLM_E_INVALID;
    target_t *x = &s->t[s->n];
    snprintf(x->name, sizeof x->name, "%s", t->name);
    module_stem(t, x->stem, sizeof x->stem);
    char a[NAME_MAX_LEN + 8], b[NAME_MAX_LEN + 8];
    snprintf(a, sizeof a, "%s.lora_a", t->name);
    snprintf(b, sizeof b, "%s.lora_b", t->name);
    const int64_t ne_a[2] = {t->ne[0], s->rank}, ne_b[2] = {s->rank, t->ne[1]};
    float *init_a, *init_b, bound = (float)(1.0 / sqrt((double)t->ne[0]));
    int rc;
    if ((rc = plan->new_param(plan->ctx, a, 2, ne_a, 0, &init_a)) ||
        (rc = plan->uniform(plan->ctx, init_a, (size_t)(ne_a[0] * ne_a[1]), -bound, bound)) ||
        (rc = plan->new_param(plan->ctx, b, 2, ne_b, 0, &init_b)))
        return rc;
    slm_trainer_adapter_t ad = {
        .struct_size = sizeof ad, .target = t->name, .a = a, .b = b, .rank = (int32_t)s->rank,
        .scale = scale, .dropout = (float)s->dropout,
    };
    if ((rc = plan->add_adapter(plan->ctx, &ad)))
        return rc;
    s->n++;
    return SLM_OK;
}

static int plan_adapters(const slm_trainer_model_t *model, const slm_trainer_options_t *o,
                         const slm_trainer_plan_t *plan, const char *method, lora_t *s,
                         slm_error_t *err)
{
    const char *const *targets = NULL;
    size_t n_targets = 0;
    o->get_int(o->ctx, "rank", &s->rank);
    o->get_float(o->ctx, "alpha", &s->alpha);
    o->get_float(o->ctx, "dropout", &s->dropout);
    o->get_bool(o->ctx, "rslora", &s->rslora);
    o->get_strings(o->ctx, "targets", &targets, &n_targets);
    int rc = trainer_targets_check(model, targets, n_targets, adaptable, method, err);
    if (rc)
        return rc;
    if (!(s->t = calloc(model->n_tensors ? model->n_tensors : 1, sizeof *s->t)))
        return plugin_fail(err, SLM_E_NOMEM, NULL, -1, "method %s: out of memory", method);
    double r = (double)s->rank;
    float scale = (float)(s->alpha / (s->rslora ? sqrt(r) : r));
    for (size_t i = 0; i < model->n_tensors; i++) {
        const slm_trainer_tensor_info_t *t = model->tensor(model->ctx, i);
        if (!adaptable(t) || !trainer_targets_name(targets, n_targets, t->name))
            continue;
        if ((rc = add_one(s, t, plan, scale)))
            return rc == SLM_E_INVALID && strlen(t->name) + 8 > 59
                       ? plugin_fail(err, rc, NULL, -1, "method %s: the name %s is too long "
                                     "for its adapter's tensors", method, t->name)
                       : rc;
    }
    return SLM_OK;
}

static void lora_release(void *state)
{
    lora_t *s = state;
    if (s)
        free(s->t);
    free(s);
}

static int lora_prepare(const slm_trainer_model_t *model, const slm_trainer_options_t *o,
                        const slm_trainer_plan_t *plan, void **state, slm_error_t *err)
{
    lora_t *s = calloc(1, sizeof *s);
    if (!s)
        return plugin_fail(err, SLM_E_NOMEM, NULL, -1, "method lora: out of memory");
    int rc = plan_adapters(model, o, plan, "lora", s, err);
    if (rc) {
        lora_release(s);
        return rc;
    }
    *state = s;
    return SLM_OK;
}

/* A float type (as stored), which QLoRA quantizes; a quantized one it keeps. */
static bool is_float(int32_t type)
{
    return type == SLM_TYPE_F32 || type == SLM_TYPE_F16 || type == SLM_TYPE_BF16;
}

/* QLoRA: the adapters of lora, and every frozen weight matrix of the blocks (not the
 * embeddings or the output, as bitsandbytes keeps lm_head) stored quantized: as
 * "quant" when given, else float ones as NF4 and quantized ones as they are (a
 * quantized base is not quantized twice). */
static int qlora_prepare(const slm_trainer_model_t *model, const slm_trainer_options_t *o,
                         const slm_trainer_plan_t *plan, void **state, slm_error_t *err)
{
    const char *quant = NULL;
    bool given = o->get_string(o->ctx, "quant", &quant) == 1 && quant;
    lora_t *s = calloc(1, sizeof *s);
    if (!s)
        return plugin_fail(err, SLM_E_NOMEM, NULL, -1, "method qlora: out of memory");
    int rc = plan_adapters(model, o, plan, "qlora", s, err);
    for (size_t i = 0; rc == SLM_OK && i < model->n_tensors; i++) {
        const slm_trainer_tensor_info_t *t = model->tensor(model->ctx, i);
        if (t->n_dims == 2 && t->layer >= 0 && (given || is_float(t->type)))
            rc = plan->freeze_as(plan->ctx, t->name, given ? quant : "nf4");
    }
    if (rc) {
        lora_release(s);
        return rc;
    }
    *state = s;
    return SLM_OK;
}

/* The module's last component ("q_proj"), as PEFT's target_modules lists them. */
static const char *module_leaf(const char *stem)
{
    const char *dot = strrchr(stem, '.');
    return dot ? dot + 1 : stem;
}

static int save_config(const lora_t *s, const slm_trainer_save_t *save)
{
    char modules[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < s->n; i++) {
        const char *leaf = module_leaf(s->t[i].stem);
        char quoted[NAME_MAX_LEN + 40];
        snprintf(quoted, sizeof quoted, "\"%s\"", leaf);
        if (strstr(modules, quoted) || len + strlen(quoted) + 3 >= sizeof modules)
            continue;
        len += (size_t)snprintf(modules + len, sizeof modules - len, "%s%s", len ? ", " : "",
                                quoted);
    }
    /* llama.cpp knows no rsLoRA: its alpha / r must equal alpha / sqrt(r). */
    double gguf_alpha = s->rslora ? s->alpha * sqrt((double)s->rank) : s->alpha;
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"peft\": {\"peft_type\": \"LORA\", \"task_type\": \"CAUSAL_LM\", \"r\": %lld, "
             "\"lora_alpha\": %.17g, \"lora_dropout\": %.17g, \"use_rslora\": %s, "
             "\"bias\": \"none\", \"target_modules\": [%s]}, "
             "\"gguf\": {\"adapter.type\": \"lora\", \"adapter.lora.alpha\": %.17g}}",
             (long long)s->rank, s->alpha, s->dropout, s->rslora ? "true" : "false", modules,
             gguf_alpha);
    return save->adapter_config(save->ctx, cfg);
}

static int lora_finish(void *state, const slm_trainer_save_t *save, slm_error_t *err)
{
    (void)err;
    const lora_t *s = state;
    for (size_t i = 0; i < s->n; i++) {
        const target_t *x = &s->t[i];
        for (int ab = 0; ab < 2; ab++) {
            char param[NAME_MAX_LEN + 8], peft[2 * NAME_MAX_LEN + 64], gguf[NAME_MAX_LEN + 8];
            snprintf(param, sizeof param, "%s.lora_%c", x->name, ab ? 'b' : 'a');
            snprintf(peft, sizeof peft, "base_model.model.%s.lora_%c.weight", x->stem,
                     ab ? 'B' : 'A');
            snprintf(gguf, sizeof gguf, "%s.lora_%c", x->name, ab ? 'b' : 'a');
            int rc = save->tensor(save->ctx, param, ab ? x->name : NULL, peft, gguf);
            if (rc)
                return rc;
        }
    }
    return save_config(s, save);
}

static const slm_trainer_method_t method_lora = {
    .struct_size = sizeof(slm_trainer_method_t),
    .name = "lora",
    .options = lora_options,
    .prepare = lora_prepare,
    .finish = lora_finish,
    .release = lora_release,
};

static const slm_trainer_method_t method_qlora = {
    .struct_size = sizeof(slm_trainer_method_t),
    .name = "qlora",
    .options = qlora_options,
    .prepare = qlora_prepare,
    .finish = lora_finish,
    .release = lora_release,
};

static const char *const methods[] = {"lora", "qlora", NULL};
static const slm_trainer_method_t *const table[] = {&method_lora, &method_qlora, NULL};

TRAINER_PLUGIN_DEFINE("trainer-lora", methods, table)
