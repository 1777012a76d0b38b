/* The "distill" trainer: method kd, logit distillation of a student from the
 * teacher the train job runs. Every weight trains (as method full); add_loss adds
 * alpha * T^2 * D(teacher_T, student_T) and weighs the job's cross-entropy by 1 - alpha.
 *
 * D is built from the graph's forward ops only (docs/decisions.md, "KD loss"): with
 * s, t the logits over T, p = softmax(t), q = softmax(s), e the one-hot targets and
 * CE(x, y) = -sum y log_softmax(x) per position,
 *   forward-kl  KL(p || q) = CE(s, p) - CE(t, p)
 *   reverse-kl  KL(q || p) = sum (q - e)(s - t) - CE(s, e) + CE(t, e)
 *   jsd         JSD(p, q) = 1/2 sum p log p + 1/2 sum q log q - sum m log m,
 *               m = (p + q) / 2, sum p log p = -CE(t, p),
 *               sum q log q = sum (q - e) s - CE(s, e), log m by the LOG op
 * (the log-partitions cancel through CE against the same one-hot e); each averaged
 * over the positions where the loss counts. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/ops.h>
#include <slmops/plugin-trainer.h>

#include "../common/plugin-util.h"
#include "../common/trainer-plugin.h"

enum { KD_FORWARD, KD_REVERSE, KD_JSD };

typedef struct kd {
    int loss;
    double temperature, alpha;
} kd_t;

static const slm_trainer_option_t opt_loss = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_STRING,
    .name = "loss", .default_json = "\"forward-kl\"",
    .description = "the divergence: forward-kl KL(teacher||student), reverse-kl "
                   "KL(student||teacher) or jsd (Jensen-Shannon)",
};
static const slm_trainer_option_t opt_temperature = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_FLOAT,
    .name = "temperature", .default_json = "2.0", .min = 0.05, .max = 100.0,
    .description = "T: both distributions are softmax(logits / T); the term is scaled by T^2",
};
static const slm_trainer_option_t opt_alpha = {
    .struct_size = sizeof(slm_trainer_option_t), .type = SLM_TRAINER_OPT_FLOAT,
    .name = "alpha", .default_json = "0.5", .min = 0.0, .max = 1.0,
    .description = "weight of the distillation term; the cross-entropy gets 1 - alpha",
};
static const slm_trainer_option_t *const kd_options[] = {&opt_loss, &opt_temperature,
                                                         &opt_alpha, NULL};

static int kd_prepare(const slm_trainer_model_t *model, const slm_trainer_options_t *o,
                      const slm_trainer_plan_t *plan, void **state, slm_error_t *err)
{
    const char *loss = "forward-kl";
    double temp = 2.0, alpha = 0.5;
    o->get_string(o->ctx, "loss", &loss);
    o->get_float(o->ctx, "temperature", &temp);
    o->get_float(o->ctx, "alpha", &alpha);
    int which = strcmp(loss, "forward-kl") == 0   ? KD_FORWARD
                : strcmp(loss, "reverse-kl") == 0 ? KD_REVERSE
                : strcmp(loss, "jsd") == 0        ? KD_JSD
                                                  : -1;
    if (which < 0)
        return plugin_fail(err, SLM_E_INVALID, NULL, -1, "method kd: loss must be forward-kl, "
                           "reverse-kl or jsd");
    kd_t *k = malloc(sizeof *k);
    if (!k)
        return plugin_fail(err, SLM_E_NOMEM, NULL, -1, "method kd: out of memory");
    *k = (kd_t){.loss = which, .temperature = temp, .alpha = alpha};
    int rc = SLM_OK;
    for (size_t i = 0; rc == SLM_OK && i < model->n_tensors; i++) {
        const slm_trainer_tensor_info_t *t = model->tensor(model->ctx, i);
        rc = plan->train_base(plan->ctx, t->name, t->n_dims == 1 ? SLM_TRAINER_PARAM_NO_DECAY : 0);
    }
    if (rc != SLM_OK) {
        free(k);
        return rc;
    }
    *state = k;
    return SLM_OK;
}

/* Graph helpers: NULL in, NULL out (the host has recorded the first failure). */
typedef struct gb {
    const slm_trainer_graph_t *g;
} gb_t;

static slm_trainer_node_t *op2(gb_t *b, int32_t op, slm_trainer_node_t *x, slm_trainer_node_t *y)
{
    const slm_trainer_node_t *src[2] = {x, y};
    return x && y ? b->g->op(b->g->ctx, op, src, 2, NULL, 0, NULL, 0) : NULL;
}

static slm_trainer_node_t *scale(gb_t *b, slm_trainer_node_t *x, float s)
{
    const slm_trainer_node_t *src[1] = {x};
    return x ? b->g->op(b->g->ctx, SLM_OP_SCALE, src, 1, NULL, 0, &s, 1) : NULL;
}

static slm_trainer_node_t *ln(gb_t *b, slm_trainer_node_t *x)
{
    const slm_trainer_node_t *src[1] = {x};
    return x ? b->g->op(b->g->ctx, SLM_OP_LOG, src, 1, NULL, 0, NULL, 0) : NULL;
}

static slm_trainer_node_t *sum(gb_t *b, slm_trainer_node_t *x)
{
    const slm_trainer_node_t *src[1] = {x};
    return x ? b->g->op(b->g->ctx, SLM_OP_SUM, src, 1, NULL, 0, NULL, 0) : NULL;
}

/* softmax(x * s) along the vocabulary. */
static slm_trainer_node_t *softmax(gb_t *b, slm_trainer_node_t *x, float s)
{
    const slm_trainer_node_t *src[1] = {x};
    const int64_t ip[2] = {0, 0};
    return x ? b->g->op(b->g->ctx, SLM_OP_SOFT_MAX, src, 1, ip, 2, &s, 1) : NULL;
}

static slm_trainer_node_t *sub(gb_t *b, slm_trainer_node_t *x, slm_trainer_node_t *y)
{
    return op2(b, SLM_OP_ADD, x, scale(b, y, -1.0f));
}

static int kd_add_loss(void *state, const slm_trainer_graph_t *g, slm_error_t *err)
{
    const kd_t *k = state;
    gb_t b = {g};
    slm_trainer_node_t *logits = g->input(g->ctx, SLM_TRAINER_IN_LOGITS);
    slm_trainer_node_t *teacher = g->input(g->ctx, SLM_TRAINER_IN_TEACHER_LOGITS);
    slm_trainer_node_t *targets = g->input(g->ctx, SLM_TRAINER_IN_TARGETS);
    slm_trainer_node_t *mask = g->input(g->ctx, SLM_TRAINER_IN_LOSS_MASK);
    slm_trainer_node_t *norm = g->input(g->ctx, SLM_TRAINER_IN_LOSS_NORM);
    if (!teacher)
        return plugin_fail(err, SLM_E_INVALID, NULL, -1, "method kd needs a teacher (the train job's "
                    "'teacher' option; slmops distill gives it)");
    if (!logits || !targets || !mask || !norm)
        return plugin_fail(err, SLM_E_UNSUPPORTED, NULL, -1, "method kd: the job offers no logits, targets, "
                    "loss_mask or loss_norm");
    slm_trainer_tensor_info_t info = {.struct_size = sizeof info};
    if (g->info(g->ctx, logits, &info) != SLM_OK)
        return plugin_fail(err, SLM_E_INVALID, NULL, -1, "method kd: the logits have no shape");
    const int64_t N = info.ne[1], keep_ne[2] = {1, N};
    slm_trainer_node_t *keep = g->reshape(g->ctx, mask, 2, keep_ne);
    float inv_t = (float)(1.0 / k->temperature);
    /* Positions where the loss does not count are zeroed, as the host's loss does. */
    slm_trainer_node_t *s = op2(&b, SLM_OP_MUL, logits, keep);
    slm_trainer_node_t *t = op2(&b, SLM_OP_MUL, teacher, keep);
    slm_trainer_node_t *sT = scale(&b, s, inv_t), *tT = scale(&b, t, inv_t);
    slm_trainer_node_t *d = NULL;
    if (k->loss == KD_FORWARD) {
        slm_trainer_node_t *p = op2(&b, SLM_OP_MUL, softmax(&b, t, inv_t), keep);
        d = sub(&b, op2(&b, SLM_OP_CROSS_ENTROPY, sT, p), op2(&b, SLM_OP_CROSS_ENTROPY, tT, p));
    } else if (k->loss == KD_JSD) {
        float inv_n = (float)(1.0 / (double)N);
        slm_trainer_node_t *p = op2(&b, SLM_OP_MUL, softmax(&b, t, inv_t), keep);
        slm_trainer_node_t *q = op2(&b, SLM_OP_MUL, softmax(&b, s, inv_t), keep);
        slm_trainer_node_t *m = scale(&b, op2(&b, SLM_OP_ADD, p, q), 0.5f);
        slm_trainer_node_t *mlogm = scale(&b, sum(&b, op2(&b, SLM_OP_MUL, m, ln(&b, m))), inv_n);
        slm_trainer_node_t *qlogq = sub(&b, scale(&b, sum(&b, op2(&b, SLM_OP_MUL,
                                                                  sub(&b, q, targets), sT)),
                                                  inv_n),
                                        op2(&b, SLM_OP_CROSS_ENTROPY, sT, targets));
        slm_trainer_node_t *plogp = scale(&b, op2(&b, SLM_OP_CROSS_ENTROPY, tT, p), -1.0f);
        d = sub(&b, scale(&b, op2(&b, SLM_OP_ADD, plogp, qlogq), 0.5f), mlogm);
    } else {
        slm_trainer_node_t *q = op2(&b, SLM_OP_MUL, softmax(&b, s, inv_t), keep);
        slm_trainer_node_t *cross = sum(&b, op2(&b, SLM_OP_MUL, sub(&b, q, targets),
                                                sub(&b, sT, tT)));
        d = op2(&b, SLM_OP_ADD, scale(&b, cross, (float)(1.0 / (double)N)),
                sub(&b, op2(&b, SLM_OP_CROSS_ENTROPY, tT, targets),
                    op2(&b, SLM_OP_CROSS_ENTROPY, sT, targets)));
    }
    d = op2(&b, SLM_OP_MUL, d, norm);
    if (!d)
        return SLM_E_INVALID;   /* the host recorded which op failed */
    float w = (float)(k->alpha * k->temperature * k->temperature);
    static const char *const term[] = {"kd_fkl", "kd_rkl", "kd_jsd"};
    int rc = g->add_term(g->ctx, term[k->loss], d, w);
    return rc != SLM_OK ? rc : g->lm_weight(g->ctx, (float)(1.0 - k->alpha));
}

static void kd_release(void *state)
{
    free(state);
}

static const slm_trainer_method_t method_kd = {
    .struct_size = sizeof(slm_trainer_method_t),
    .name = "kd",
    .options = kd_options,
    .prepare = kd_prepare,
    .add_loss = kd_add_loss,
    .finish = trainer_finish_model,
    .release = kd_release,
};

static const char *const methods[] = {"kd", NULL};
static const slm_trainer_method_t *const table[] = {&method_kd, NULL};

TRAINER_PLUGIN_DEFINE("trainer-distill", methods, table)
