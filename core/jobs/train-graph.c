/* The train job's two graphs, each built once for its shape: the training step
 * (forward, loss, backward, gradient accumulation, updates) and the validation
 * forward pass; and what feeds them a batch. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/sched.h>

#include "internal/util.h"
#include "jobs/train.h"

static void on_dropout(void *user, slm_tensor_t *mask, const slm__lora_t *lora)
{
    slm__tgraph_t *G = user;
    if (G->n_drop == G->cap_drop) {
        size_t cap = G->cap_drop ? 2 * G->cap_drop : 16;
        slm_tensor_t **d = realloc(G->drop, cap * sizeof *d);
        float *p = d ? realloc(G->drop_p, cap * sizeof *p) : NULL;
        if (d)
            G->drop = d;
        if (!p)
            return;   /* the mask stays unfed: slm__train_graphs sees the count short */
        G->drop_p = p;
        G->cap_drop = cap;
    }
    G->drop[G->n_drop] = mask;
    G->drop_p[G->n_drop++] = lora->dropout;
}

static bool no_decay(const slm_tensor_t *param, void *user)
{
    const slm__tparam_t *p = slm__train_param(user, slm_tensor_name(param));
    return p && (p->flags & SLM_TRAINER_PARAM_NO_DECAY);
}

static void optim_params(const slm__train_t *t, slm_optim_params_t *p)
{
    const slm__train_opts_t *o = t->o;
    slm_optim_params_default(p);
    p->lr = o->lr;
    p->beta1 = o->beta1;
    p->beta2 = o->beta2;
    p->eps = o->eps;
    p->weight_decay = o->weight_decay;
    p->clip_norm = o->clip;
    p->schedule = o->schedule;
    p->warmup_steps = o->warmup;
    p->total_steps = t->total_steps;
    p->min_lr_ratio = o->min_lr_ratio;
    p->no_decay = no_decay;
    p->no_decay_user = (void *)t;
    p->accumulate = true;
}

static int alloc(slm__train_t *t, slm__tgraph_t *G)
{
    int rc = slm_sched_alloc(slm_model_sched(t->model), G->g, t->err);
    return rc == SLM_OK ? slm__train_set_constants(t, G) : rc;
}

static int build(slm__train_t *t, slm__tgraph_t *G, bool train)
{
    const slm__train_opts_t *o = t->o;
    size_t fwd = slm__forward_graph_size(t->model, t->attach);
    size_t cap = train ? 5 * fwd + 16 * t->n_params + 512 : fwd + 64;
    if (!(G->g = slm_graph_new(cap)))
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    unsigned n_dropout = 0;
    for (size_t i = 0; i < t->n_ads; i++)
        n_dropout += t->ads[i].dropout > 0.0f;
    int rc = slm__forward_sequences_train(t->model, G->g, o->ctx, o->batch, t->attach, 0,
                                          train ? on_dropout : NULL, G, &G->seq, t->err);
    if (rc == SLM_OK && train && G->n_drop != n_dropout)
        rc = slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    if (rc == SLM_OK)
        rc = slm__xent_build(G->g, G->seq.fwd.out, &G->xent, t->err);
    if (rc == SLM_OK)
        rc = slm__train_add_loss(t, G);
    if (rc != SLM_OK)
        return rc;
    if (!train)
        return alloc(t, G);
    if ((rc = slm_graph_backward(G->g, G->loss, t->err)) != SLM_OK)
        return rc;
    slm_optim_params_t op;
    optim_params(t, &op);
    if (!(G->optim = slm_optim_new(G->g, &op, t->err)))
        return t->err && t->err->code ? t->err->code : SLM_E_INVALID;
    if (slm_optim_n_params(G->optim) != t->n_params)
        return slm__fail(t->err, SLM_E_INVALID, NULL, -1, "train: method %s: %zu of its %zu "
                         "trainable tensors reach the loss (a parameter no adapter uses?)",
                         o->method, slm_optim_n_params(G->optim), t->n_params);
    return alloc(t, G);
}

int slm__train_graphs(slm__train_t *t)
{
    int rc = build(t, &t->tg, true);
    if (rc == SLM_OK && t->val_ds)
        rc = build(t, &t->vg, false);
    return rc;
}

static void graph_free(slm__tgraph_t *G)
{
    slm_optim_free(G->optim);
    slm_graph_free(G->g);
    free(G->drop);
    free(G->drop_p);
    for (size_t i = 0; i < G->n_consts; i++)
        free(G->consts[i].data);
    free(G->consts);
    memset(G, 0, sizeof *G);
}

void slm__train_graphs_free(slm__train_t *t)
{
    graph_free(&t->tg);
    graph_free(&t->vg);
}

/* Each mask element is 0 with probability p, else 1 / (1 - p), from the job's
 * dropout stream (a checkpoint keeps its state: a resumed run draws the same). */
static int fill_dropout(slm__train_t *t, slm__tgraph_t *G)
{
    float *buf = NULL;
    size_t cap = 0;
    int rc = SLM_OK;
    for (size_t i = 0; i < G->n_drop && rc == SLM_OK; i++) {
        size_t n = (size_t)slm_tensor_nelements(G->drop[i]);
        if (n > cap) {
            float *b = realloc(buf, n * sizeof *b);
            if (!b) {
                rc = slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
                break;
            }
            buf = b;
            cap = n;
        }
        double p = G->drop_p[i];
        float keep = (float)(1.0 / (1.0 - p));
        for (size_t k = 0; k < n; k++)
            buf[k] = slm__train_rng_unit(&t->drop_rng) < p ? 0.0f : keep;
        if (slm_tensor_set_data(G->drop[i], buf, 0, n * sizeof *buf) != SLM_OK)
            rc = slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: setting a dropout mask "
                           "failed");
    }
    free(buf);
    return rc;
}

static int feed(slm__train_t *t, slm__tgraph_t *G, const slm_dataset_batch_t *b)
{
    int rc = slm__forward_sequences_feed(&G->seq, b->tokens, b->doc, t->err);
    if (rc != SLM_OK)
        return rc;
    int64_t scored = slm__xent_feed(&G->xent, b->targets, t->err);
    if (scored < 0)
        return (int)scored;
    if ((rc = slm__train_teacher_feed(t, G, b)) != SLM_OK)
        return rc;
    return fill_dropout(t, G);
}

static int read_loss(slm__train_t *t, const slm__tgraph_t *G, double *loss)
{
    float v;
    if (slm_tensor_get_data(G->loss, &v, 0, sizeof v) != SLM_OK)
        return slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: reading the loss failed");
    *loss = v;
    return SLM_OK;
}

int slm__train_micro(slm__train_t *t, const slm_dataset_batch_t *b, float weight, double *loss,
                     double *terms)
{
    int rc = feed(t, &t->tg, b);
    if (rc == SLM_OK)
        rc = slm_optim_accumulate(t->tg.optim, slm_model_sched(t->model), weight, t->err);
    if (rc == SLM_OK && terms)
        rc = slm__train_read_terms(t, &t->tg, terms);
    return rc == SLM_OK ? read_loss(t, &t->tg, loss) : rc;
}

int slm__train_validate(slm__train_t *t, double *loss, uint64_t *scored)
{
    slm_dataset_cursor_t cur = {.seed = t->o->seed};
    double sum = 0.0;
    uint64_t total = 0;
    int rc = SLM_OK;
    for (int32_t n = 0; rc == SLM_OK && (t->o->val_batches <= 0 || n < t->o->val_batches);
         n++) {
        slm_dataset_batch_t b;
        if ((rc = slm_dataset_next_batch(t->val_ds, &cur, t->o->batch, true, &b, t->err)))
            break;
        bool last = b.epoch_ended;
        double l = 0.0;
        if (b.n_examples > 0 &&
            (rc = feed(t, &t->vg, &b)) == SLM_OK &&
            (rc = slm_sched_compute(slm_model_sched(t->model), t->vg.g, t->err)) == SLM_OK &&
            (rc = read_loss(t, &t->vg, &l)) == SLM_OK) {
            sum += l * (double)b.n_scored;
            total += b.n_scored;
        }
        slm_dataset_batch_free(&b);
        if (last)
            break;
    }
    if (rc == SLM_OK && total == 0)
        rc = slm__fail(t->err, SLM_E_INVALID, NULL, -1, "train: the validation data has no "
                       "token to score");
    *loss = total ? sum / (double)total : NAN;
    *scored = total;
    return rc;
}
