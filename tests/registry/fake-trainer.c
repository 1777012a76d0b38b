/* A fake trainer plugin for the registry tests, built once per -D variant: a good
 * version-2 one (methods fake-full and fake-lora, LoRA as PEFT initialises it),
 * one of each older or newer interface version, and one per way it can be broken. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/ops.h>
#include <slmops/plugin-trainer.h>

#ifndef FAKE_NAME
#define FAKE_NAME "fake-trainer"
#endif
/* The interface version it speaks; FAKE_NEGOTIATE: answer the highest <= the host's. */
#ifndef FAKE_IFACE
#define FAKE_IFACE SLM_TRAINER_IFACE_VERSION
#endif
#ifndef FAKE_NEGOTIATE
#define FAKE_NEGOTIATE 0
#endif
/* Broken variants. */
#ifndef FAKE_EXTRA_METHOD
#define FAKE_EXTRA_METHOD 0     /* lists a method its manifest does not */
#endif
#ifndef FAKE_NO_FINISH
#define FAKE_NO_FINISH 0        /* fake-lora leaves finish NULL */
#endif
#ifndef FAKE_BAD_DEFAULT
#define FAKE_BAD_DEFAULT 0      /* rank's default is outside its range */
#endif
#ifndef FAKE_DUP_METHOD
#define FAKE_DUP_METHOD 0       /* lists fake-full twice */
#endif
/* A good variant: fake-lora adds a loss term through add_loss (the train job's test). */
#ifndef FAKE_ADD_LOSS
#define FAKE_ADD_LOSS 0
#endif

/* ---- fake-full: every weight trains; norms (1-D) skip weight decay ---- */

static int full_prepare(const slm_trainer_model_t *model, const slm_trainer_options_t *options,
                        const slm_trainer_plan_t *plan, void **state, slm_error_t *err)
{
    (void)options;
    (void)err;
    for (size_t i = 0; i < model->n_tensors; i++) {
        const slm_trainer_tensor_info_t *t = model->tensor(model->ctx, i);
        int rc = plan->train_base(plan->ctx, t->name,
                                  t->n_dims == 1 ? SLM_TRAINER_PARAM_NO_DECAY : 0);
        if (rc)
            return rc;
    }
    *state = NULL;
    return 0;
}

static int full_finish(void *state, const slm_trainer_save_t *save, slm_error_t *err)
{
    (void)state;
    (void)err;
    return save->model(save->ctx);
}

/* ---- fake-lora: adapters on the 2-D weights whose name has a target ---- */

typedef struct lora_state {
    int n;
    char target[8][64];
    char hf[8][96];
    int64_t rank;
    double alpha;
} lora_state_t;

static const slm_trainer_option_t opt_rank = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_INT, .name = "rank",
    .default_json = FAKE_BAD_DEFAULT ? "0" : "8", .min = 1, .max = 256,
    .description = "adapter rank r",
};
static const slm_trainer_option_t opt_alpha = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_FLOAT, .name = "alpha",
    .default_json = "16", .min = 0, .max = 1e6, .description = "scale numerator: alpha / r",
};
static const slm_trainer_option_t opt_dropout = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_FLOAT,
    .name = "dropout", .default_json = "0", .min = 0, .max = 1,
    .description = "dropout probability on the adapter's input",
};
static const slm_trainer_option_t opt_targets = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_STRINGS,
    .name = "targets", .default_json = "[\"attn_q\", \"attn_v\"]",
    .description = "weights that get adapters, by the part of their name",
};
static const slm_trainer_option_t opt_rslora = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_BOOL, .name = "rslora",
    .default_json = "false", .min = 0, .max = 0, .description = "scale alpha / sqrt(r)",
};
static const slm_trainer_option_t opt_init = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_STRING, .name = "init",
    .description = "initialisation (only \"peft\")",
};
static const slm_trainer_option_t *const lora_options[] = {
    &opt_rank, &opt_alpha, &opt_dropout, &opt_targets, &opt_rslora, &opt_init, NULL,
};

static bool wanted(const char *name, const char *const *targets, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strstr(name, targets[i]))
            return true;
    return false;
}

/* A = U(-1/sqrt(in), 1/sqrt(in)) as PEFT's kaiming_uniform_(a=sqrt(5)); B = 0. */
static int add_lora(lora_state_t *s, const slm_trainer_tensor_info_t *t,
                    const slm_trainer_plan_t *plan, float scale, float dropout)
{
    char a[96], b[96];
    snprintf(a, sizeof a, "%s.lora_a", t->name);
    snprintf(b, sizeof b, "%s.lora_b", t->name);
    int64_t ne_a[2] = {t->ne[0], s->rank}, ne_b[2] = {s->rank, t->ne[1]};
    float *init_a, *init_b;
    int rc;
    float bound = 1.0f / sqrtf((float)t->ne[0]);
    if ((rc = plan->new_param(plan->ctx, a, 2, ne_a, 0, &init_a)) ||
        (rc = plan->uniform(plan->ctx, init_a, (size_t)(ne_a[0] * ne_a[1]), -bound, bound)) ||
        (rc = plan->new_param(plan->ctx, b, 2, ne_b, 0, &init_b)))
        return rc;
    slm_trainer_adapter_t ad = {
        .struct_size = sizeof ad, .target = t->name, .a = a, .b = b, .rank = (int32_t)s->rank,
        .scale = scale, .dropout = dropout,
    };
    if ((rc = plan->add_adapter(plan->ctx, &ad)))
        return rc;
    snprintf(s->target[s->n], sizeof s->target[0], "%s", t->name);
    snprintf(s->hf[s->n], sizeof s->hf[0], "%s", t->hf_name ? t->hf_name : t->name);
    s->n++;
    return 0;
}

static int lora_prepare(const slm_trainer_model_t *model, const slm_trainer_options_t *o,
                        const slm_trainer_plan_t *plan, void **state, slm_error_t *err)
{
    (void)err;
    lora_state_t *s = calloc(1, sizeof *s);
    if (!s)
        return SLM_E_NOMEM;
    const char *const *targets;
    size_t n_targets;
    double dropout;
    bool rs;
    o->get_int(o->ctx, "rank", &s->rank);
    o->get_float(o->ctx, "alpha", &s->alpha);
    o->get_float(o->ctx, "dropout", &dropout);
    o->get_bool(o->ctx, "rslora", &rs);
    o->get_strings(o->ctx, "targets", &targets, &n_targets);
    float scale = (float)(s->alpha / (rs ? sqrt((double)s->rank) : (double)s->rank));
    int rc = 0;
    for (size_t i = 0; !rc && i < model->n_tensors && s->n < 8; i++) {
        const slm_trainer_tensor_info_t *t = model->tensor(model->ctx, i);
        if (t->n_dims == 2 && wanted(t->name, targets, n_targets))
            rc = add_lora(s, t, plan, scale, (float)dropout);
    }
    if (rc) {
        free(s);
        return rc;
    }
    *state = s;
    return 0;
}

/* PEFT's names: base_model.model.<module>.lora_A.weight, <module> the HF name less ".weight". */
static int lora_finish(void *state, const slm_trainer_save_t *save, slm_error_t *err)
{
    (void)err;
    const lora_state_t *s = state;
    for (int i = 0; i < s->n; i++) {
        char param[96], peft[160], gguf[96];
        size_t stem = strlen(s->hf[i]) - (strstr(s->hf[i], ".weight") ? strlen(".weight") : 0);
        for (int ab = 0; ab < 2; ab++) {
            snprintf(param, sizeof param, "%s.lora_%c", s->target[i], ab ? 'b' : 'a');
            snprintf(peft, sizeof peft, "base_model.model.%.*s.lora_%c.weight", (int)stem,
                     s->hf[i], ab ? 'B' : 'A');
            snprintf(gguf, sizeof gguf, "%s.lora_%c", s->target[i], ab ? 'b' : 'a');
            int rc = save->tensor(save->ctx, param, ab ? s->target[i] : NULL, peft, gguf);
            if (rc)
                return rc;
        }
    }
    char cfg[256];
    snprintf(cfg, sizeof cfg,
             "{\"peft\": {\"peft_type\": \"LORA\", \"r\": %lld, \"lora_alpha\": %g}, "
             "\"gguf\": {\"adapter.type\": \"lora\", \"adapter.lora.alpha\": %g}}",
             (long long)s->rank, s->alpha, s->alpha);
    return save->adapter_config(save->ctx, cfg);
}

static const slm_trainer_method_t method_full = {
    .struct_size = sizeof(slm_trainer_method_t),
    .name = "fake-full",
    .prepare = full_prepare,
    .finish = full_finish,
};

#if FAKE_ADD_LOSS
/* The term "l2": the sum of the squares of every B, weight 1, built from forward ops
 * (MUL, SUM, ADD) on the host's parameter nodes. */
static int lora_add_loss(void *state, const slm_trainer_graph_t *g, slm_error_t *err)
{
    (void)err;
    const lora_state_t *s = state;
    slm_trainer_node_t *total = NULL;
    for (int i = 0; i < s->n; i++) {
        char b[96];
        snprintf(b, sizeof b, "%s.lora_b", s->target[i]);
        slm_trainer_node_t *p = g->param(g->ctx, b);
        if (!p)
            return SLM_E_NOT_FOUND;
        const slm_trainer_node_t *pp[2] = {p, p};
        slm_trainer_node_t *sq = g->op(g->ctx, SLM_OP_MUL, pp, 2, NULL, 0, NULL, 0);
        const slm_trainer_node_t *one[1] = {sq};
        slm_trainer_node_t *sum = sq ? g->op(g->ctx, SLM_OP_SUM, one, 1, NULL, 0, NULL, 0) : NULL;
        const slm_trainer_node_t *two[2] = {total, sum};
        total = !sum ? NULL : total ? g->op(g->ctx, SLM_OP_ADD, two, 2, NULL, 0, NULL, 0) : sum;
        if (!total)
            return SLM_E_INVALID;
    }
    return total ? g->add_term(g->ctx, "l2", total, 1.0f) : SLM_E_INVALID;
}
#else
#define lora_add_loss NULL
#endif

static const slm_trainer_method_t method_lora = {
    .struct_size = sizeof(slm_trainer_method_t),
    .name = "fake-lora",
    .options = lora_options,
    .prepare = lora_prepare,
    .add_loss = lora_add_loss,
    .finish = FAKE_NO_FINISH ? NULL : lora_finish,
    .release = free,
};

#if FAKE_EXTRA_METHOD
static const char *const methods[] = {"fake-full", "fake-lora", "fake-dora", NULL};
static const slm_trainer_method_t method_dora = {
    .struct_size = sizeof(slm_trainer_method_t), .name = "fake-dora",
    .prepare = full_prepare, .finish = full_finish,
};
static const slm_trainer_method_t *const table[] = {&method_full, &method_lora, &method_dora,
                                                    NULL};
#elif FAKE_DUP_METHOD
static const char *const methods[] = {"fake-full", "fake-lora", "fake-full", NULL};
static const slm_trainer_method_t *const table[] = {&method_full, &method_lora, &method_full,
                                                    NULL};
#else
static const char *const methods[] = {"fake-full", "fake-lora", NULL};
static const slm_trainer_method_t *const table[] = {&method_full, &method_lora, NULL};
#endif

/* Version 1's slots: never called by a version-2 host. */
static bool v1_trains(const char *method, const slm_trainer_tensor_info_t *t)
{
    return strcmp(method, "fake-full") == 0 && t != NULL;
}

static int v1_rank(const char *method, const slm_trainer_tensor_info_t *t, int requested)
{
    return strcmp(method, "fake-lora") == 0 && t ? requested : 0;
}

/* A plugin built with a newer SDK: its interface is larger than this host's. */
typedef struct newer_iface {
    slm_trainer_iface_t base;
    void *later_slots[8];
} newer_iface_t;

static newer_iface_t iface;

static slm_plugin_descriptor_t descriptor = {
    .struct_size = sizeof(slm_plugin_descriptor_t),
    .abi_version = SLM_PLUGIN_ABI_VERSION,
    .kind = SLM_PLUGIN_KIND_TRAINER,
    .name = FAKE_NAME,
    .version = "1.0.0",
    .iface = &iface,
};

static const slm_plugin_descriptor_t *entry(const slm_host_t *h, uint32_t host_abi)
{
    (void)host_abi;
    uint32_t version = FAKE_IFACE;
    if (FAKE_NEGOTIATE && h && h->struct_size > offsetof(slm_host_t, iface_version) &&
        h->iface_version) {
        uint32_t offer = h->iface_version(SLM_PLUGIN_KIND_TRAINER);
        if (offer < 1)
            return NULL;
        version = offer < version ? offer : version;
    }
    iface.base = (slm_trainer_iface_t){
        .struct_size = FAKE_IFACE > SLM_TRAINER_IFACE_VERSION ? sizeof iface : sizeof iface.base,
        .iface_version = version,
        .methods = methods,
    };
    if (version == 1) {
        iface.base.trains_base_tensor = v1_trains;
        iface.base.adapter_rank = v1_rank;
    } else {
        iface.base.method_table = table;
    }
    return &descriptor;
}

SLM_PLUGIN_DEFINE_ENTRY(entry)
