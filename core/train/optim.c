/* The optimizer object: the update nodes it appends to a training graph, the moments
 * it owns, and the inputs (scheduled rate, bias corrections) it sets before each run. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/graph.h"
#include "internal/util.h"
#include "train/optim-internal.h"

/* The hyper vectors, as slmops/ops.h lays them out for ADAMW_STEP and SGD_STEP. */
enum { A_LR, A_BETA1, A_BETA2, A_EPS, A_WD, A_BC1, A_BC2, A_MAX_NORM, A_COUNT };
enum { S_LR, S_WD, S_MAX_NORM, S_COUNT };

static void adamw_hyper(const slm_optim_params_t *p, double lr, bool decay, int64_t step,
                        float *h)
{
    double t = (double)(step + 1);
    h[A_LR] = (float)lr;
    h[A_BETA1] = p->beta1;
    h[A_BETA2] = p->beta2;
    h[A_EPS] = p->eps;
    h[A_WD] = decay ? p->weight_decay : 0.0f;
    h[A_BC1] = (float)(1.0 / (1.0 - pow(p->beta1, t)));
    h[A_BC2] = (float)(1.0 / (1.0 - pow(p->beta2, t)));
    h[A_MAX_NORM] = p->clip_norm;
}

static slm_tensor_t *adamw_build(slm_graph_t *g, slm_tensor_t *param, slm_tensor_t *grad,
                                 slm_tensor_t *const *mom, slm_tensor_t *hyper,
                                 slm_tensor_t *sumsq)
{
    return slm_adamw_step(g, param, grad, mom[0], mom[1], hyper, sumsq);
}

static void sgd_hyper(const slm_optim_params_t *p, double lr, bool decay, int64_t step, float *h)
{
    (void)step;
    h[S_LR] = (float)lr;
    h[S_WD] = decay ? p->weight_decay : 0.0f;
    h[S_MAX_NORM] = p->clip_norm;
}

static slm_tensor_t *sgd_build(slm_graph_t *g, slm_tensor_t *param, slm_tensor_t *grad,
                               slm_tensor_t *const *mom, slm_tensor_t *hyper,
                               slm_tensor_t *sumsq)
{
    (void)mom;
    return slm_sgd_step(g, param, grad, hyper, sumsq);
}

static const slm__optim_kind_t kinds[] = {
    [SLM_OPTIM_ADAMW] = {"adamw", 2, {".adam_m", ".adam_v"}, A_COUNT, adamw_hyper, adamw_build},
    [SLM_OPTIM_SGD] = {"sgd", 0, {NULL, NULL}, S_COUNT, sgd_hyper, sgd_build},
};

#define N_KINDS ((int)SLM__ARRAY_LEN(kinds))
#define MAX_HYPER 8

const slm__optim_kind_t *slm__optim_kind_by_name(const char *name)
{
    for (int i = 0; name && i < N_KINDS; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return &kinds[i];
    return NULL;
}

void slm_optim_params_default(slm_optim_params_t *p)
{
    if (!p)
        return;
    *p = (slm_optim_params_t){.struct_size = sizeof *p, .kind = SLM_OPTIM_ADAMW, .lr = 1e-3f,
                              .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                              .schedule = SLM_LR_CONSTANT};
}

bool slm_optim_no_decay_1d(const slm_tensor_t *param, void *user)
{
    (void)user;
    return slm_tensor_n_dims(param) <= 1;
}

static bool finite_at_least(float x, float lo)
{
    return isfinite(x) && x >= lo;
}

const char *slm__optim_params_check(const slm_optim_params_t *p)
{
    if (p->kind < 0 || p->kind >= N_KINDS)
        return "unknown optimizer kind";
    if (!finite_at_least(p->lr, 0.0f))
        return "the learning rate must be a finite number >= 0";
    if (!(p->beta1 >= 0.0f && p->beta1 < 1.0f) || !(p->beta2 >= 0.0f && p->beta2 < 1.0f))
        return "beta1 and beta2 must be in [0, 1)";
    if (!finite_at_least(p->eps, 0.0f) || p->eps == 0.0f)
        return "eps must be a finite number > 0";
    if (!finite_at_least(p->weight_decay, 0.0f))
        return "the weight decay must be a finite number >= 0";
    if (!finite_at_least(p->clip_norm, 0.0f))
        return "the clipping norm must be a finite number >= 0 (0: off)";
    if (!slm__lr_schedule_name(p->schedule))
        return "unknown learning-rate schedule";
    if (p->warmup_steps < 0)
        return "warmup steps must be >= 0";
    if (p->schedule != SLM_LR_CONSTANT && p->total_steps <= p->warmup_steps)
        return "a decaying schedule needs total steps > warmup steps";
    if (!(p->min_lr_ratio >= 0.0f && p->min_lr_ratio <= 1.0f))
        return "the minimum learning-rate ratio must be in [0, 1]";
    return NULL;
}

static bool has_updates(const slm_graph_t *g)
{
    for (size_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i]->op == SLM_OP_ADAMW_STEP || g->tensors[i]->op == SLM_OP_SGD_STEP)
            return true;
    return false;
}

static slm_tensor_t *input_leaf(slm_graph_t *g, const slm_tensor_t *like, int64_t n,
                                const char *name, const char *suffix)
{
    slm_tensor_t *t = like ? slm_tensor_new(g, SLM_TYPE_F32, SLM_MAX_DIMS, like->ne)
                           : slm_tensor_new_1d(g, SLM_TYPE_F32, n);
    if (!t)
        return NULL;
    char nm[sizeof t->name];
    snprintf(nm, sizeof nm, "%.*s%s", (int)(sizeof nm - 8), name, suffix);
    slm_tensor_set_name(t, nm);
    slm_tensor_set_flags(t, SLM_TENSOR_INPUT);
    return t;
}

/* The gradient an update reads: the accumulator, or the backward pass's own. */
static slm_tensor_t *update_grad(const slm__optim_slot_t *s)
{
    return s->acc ? s->acc : slm_tensor_grad(s->param);
}

/* Sum of squares of every gradient, in creation order, so the reduction is the same
 * at every step and in every run. */
static slm_tensor_t *build_sumsq(slm_optim_t *o)
{
    slm_graph_t *g = o->graph;
    slm_tensor_t *total = NULL;
    for (size_t i = 0; i < o->n_slots; i++) {
        slm_tensor_t *gr = update_grad(&o->slots[i]);
        slm_tensor_t *sq = slm_sum(g, slm_mul(g, gr, gr));
        total = total ? slm_add(g, total, sq) : sq;
    }
    if (total) {
        slm_tensor_set_name(total, "optim.grad_sumsq");
        slm_tensor_set_flags(total, SLM_TENSOR_OUTPUT);
    }
    return total;
}

/* acc = keep * acc + weight * grad per parameter, in place: keep is 0 for the
 * first micro-batch of a step, so the accumulators need no clearing between steps. */
static void build_accumulate(slm_optim_t *o)
{
    slm_graph_t *g = o->graph;
    slm_tensor_t *keep = input_leaf(g, NULL, 1, "optim.accum_keep", "");
    slm_tensor_t *weight = input_leaf(g, NULL, 1, "optim.accum_weight", "");
    o->accum_keep = keep;
    o->accum_weight = weight;
    for (size_t i = 0; i < o->n_slots && g->status == SLM_OK; i++) {
        slm__optim_slot_t *s = &o->slots[i];
        s->acc = input_leaf(g, s->param, 0, s->param->name, ".grad_acc");
        slm_tensor_t *sum = slm_add(g, slm_mul(g, s->acc, keep),
                                    slm_mul(g, slm_tensor_grad(s->param), weight));
        slm_cpy(g, sum, s->acc);
    }
    o->update_from = g->n_tensors;
}

static int build(slm_optim_t *o, slm_error_t *err)
{
    slm_graph_t *g = o->graph;
    const slm__optim_kind_t *k = o->kind;
    if (o->accumulate)
        build_accumulate(o);
    for (size_t i = 0; i < o->n_slots; i++) {
        int h = o->slots[i].decays ? 0 : 1;
        if (!o->hyper[h])
            o->hyper[h] = input_leaf(g, NULL, k->n_hyper, h ? "optim.hyper_no_decay"
                                                            : "optim.hyper", "");
    }
    if (o->params.clip_norm > 0.0f)
        o->sumsq = build_sumsq(o);
    for (size_t i = 0; i < o->n_slots && g->status == SLM_OK; i++) {
        slm__optim_slot_t *s = &o->slots[i];
        for (int m = 0; m < k->n_moments; m++)
            s->moment[m] = input_leaf(g, s->param, 0, s->param->name, k->moment_suffix[m]);
        k->build(g, s->param, update_grad(s), s->moment, o->hyper[s->decays ? 0 : 1], o->sumsq);
    }
    return slm_graph_status(g, err);
}

/* The trainable tensors: PARAM leaves the loss reaches, in creation order. */
static int collect(slm_optim_t *o, bool (*no_decay)(const slm_tensor_t *, void *), void *user,
                   slm_error_t *err)
{
    slm_graph_t *g = o->graph;
    size_t n = 0;
    for (size_t i = 0; i < g->n_tensors; i++)
        if ((g->tensors[i]->flags & SLM_TENSOR_PARAM) && g->tensors[i]->grad)
            n++;
    if (n == 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "optimizer: no PARAM tensor of the "
                         "graph has a gradient: nothing to train");
    o->slots = calloc(n, sizeof *o->slots);
    if (!o->slots)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "optimizer: out of memory");
    for (size_t i = 0; i < g->n_tensors; i++) {
        slm_tensor_t *t = g->tensors[i];
        if (!(t->flags & SLM_TENSOR_PARAM) || !t->grad)
            continue;
        o->slots[o->n_slots].param = t;
        o->slots[o->n_slots++].decays = !(no_decay && no_decay(t, user));
    }
    return SLM_OK;
}

slm_optim_t *slm_optim_new(slm_graph_t *g, const slm_optim_params_t *p, slm_error_t *err)
{
    if (!g) {
        slm__fail(err, SLM_E_INVALID, NULL, -1, "optimizer: graph is NULL");
        return NULL;
    }
    if (g->status != SLM_OK) {
        slm_graph_status(g, err);
        return NULL;
    }
    if (!g->loss || has_updates(g)) {
        slm__fail(err, SLM_E_STATE, NULL, -1, g->loss ? "optimizer: the graph already has "
                  "parameter updates" : "optimizer: call slm_graph_backward first");
        return NULL;
    }
    slm_optim_params_t prm;
    slm_optim_params_default(&prm);
    if (p) {
        memcpy(&prm, p, p->struct_size < sizeof prm ? p->struct_size : sizeof prm);
        prm.struct_size = sizeof prm;
    }
    const char *why = slm__optim_params_check(&prm);
    if (why) {
        slm__fail(err, SLM_E_INVALID, NULL, -1, "optimizer: %s", why);
        return NULL;
    }
    slm_optim_t *o = calloc(1, sizeof *o);
    if (!o) {
        slm__fail(err, SLM_E_NOMEM, NULL, -1, "optimizer: out of memory");
        return NULL;
    }
    o->graph = g;
    o->kind = &kinds[prm.kind];
    o->grad_norm = -1.0;
    o->state_pending = true;
    o->params = prm;
    o->accumulate = prm.accumulate;
    /* The rule is asked once, here; the optimizer keeps only its answers. */
    o->params.no_decay = NULL;
    o->params.no_decay_user = NULL;
    if (collect(o, prm.no_decay, prm.no_decay_user, err) != SLM_OK || build(o, err) != SLM_OK) {
        slm_optim_free(o);
        return NULL;
    }
    return o;
}

void slm__optim_drop_pending(slm_optim_t *o)
{
    for (size_t i = 0; i < o->n_slots; i++)
        for (int m = 0; m < SLM__OPTIM_MAX_MOMENTS; m++) {
            free(o->slots[i].pending[m]);
            o->slots[i].pending[m] = NULL;
        }
}

void slm_optim_free(slm_optim_t *o)
{
    if (!o)
        return;
    if (o->slots)
        slm__optim_drop_pending(o);
    free(o->slots);
    free(o);
}

static int not_allocated(int rc, slm_error_t *err)
{
    if (rc == SLM_E_STATE)
        return slm__fail(err, SLM_E_STATE, NULL, -1, "optimizer: allocate the graph "
                         "(slm_sched_alloc) before the first step");
    return slm__fail(err, SLM_E_DEVICE, NULL, -1, "optimizer: writing its state into the "
                     "graph failed (%s)", slm_strerror(rc));
}

/* Loaded moments, or zeros, into the graph's moment tensors, in pieces. */
static int upload_state(slm_optim_t *o, slm_error_t *err)
{
    static const float zeros[4096];
    for (size_t i = 0; i < o->n_slots; i++) {
        slm__optim_slot_t *s = &o->slots[i];
        for (int m = 0; m < o->kind->n_moments; m++) {
            size_t n = slm_tensor_nbytes(s->moment[m]);
            const char *src = (const char *)s->pending[m];
            for (size_t off = 0; off < n;) {
                size_t len = src ? n - off : (n - off < sizeof zeros ? n - off : sizeof zeros);
                int rc = slm_tensor_set_data(s->moment[m], src ? src + off : (const void *)zeros,
                                             off, len);
                if (rc != SLM_OK)
                    return not_allocated(rc, err);
                off += len;
            }
        }
        /* Accumulators start at zero: keep * acc must not meet uninitialised bytes. */
        for (size_t n = s->acc ? slm_tensor_nbytes(s->acc) : 0, off = 0; off < n;) {
            size_t len = n - off < sizeof zeros ? n - off : sizeof zeros;
            int rc = slm_tensor_set_data(s->acc, zeros, off, len);
            if (rc != SLM_OK)
                return not_allocated(rc, err);
            off += len;
        }
    }
    slm__optim_drop_pending(o);
    o->state_pending = false;
    return SLM_OK;
}

static int set_inputs(slm_optim_t *o, slm_error_t *err)
{
    double lr = slm_optim_lr_at(&o->params, o->step);
    float h[MAX_HYPER];
    for (int k = 0; k < 2; k++) {
        if (!o->hyper[k])
            continue;
        o->kind->fill_hyper(&o->params, lr, k == 0, o->step, h);
        int rc = slm_tensor_set_data(o->hyper[k], h, 0, (size_t)o->kind->n_hyper * sizeof *h);
        if (rc != SLM_OK)
            return not_allocated(rc, err);
    }
    return SLM_OK;
}

static void count_step(slm_optim_t *o)
{
    o->step++;
    o->n_accum = 0;
    float ss;
    if (o->sumsq && slm_tensor_get_data(o->sumsq, &ss, 0, sizeof ss) == SLM_OK)
        o->grad_norm = sqrt((double)ss);
}

int slm_optim_accumulate(slm_optim_t *o, slm_sched_t *s, float weight, slm_error_t *err)
{
    if (!o || !s)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "optimizer: NULL argument");
    if (!o->accumulate)
        return slm__fail(err, SLM_E_STATE, NULL, -1, "optimizer: built without accumulation");
    if (!isfinite(weight))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "optimizer: the micro-batch weight is "
                         "not finite");
    int rc = o->state_pending ? upload_state(o, err) : SLM_OK;
    const float in[2] = {o->n_accum ? 1.0f : 0.0f, weight};
    if (rc == SLM_OK &&
        (slm_tensor_set_data(o->accum_keep, &in[0], 0, sizeof in[0]) != SLM_OK ||
         slm_tensor_set_data(o->accum_weight, &in[1], 0, sizeof in[1]) != SLM_OK))
        rc = not_allocated(SLM_E_STATE, err);
    if (rc == SLM_OK)
        rc = slm__sched_compute_range(s, o->graph, 0, o->update_from, err);
    if (rc == SLM_OK)
        o->n_accum++;
    return rc;
}

int slm_optim_apply(slm_optim_t *o, slm_sched_t *s, slm_error_t *err)
{
    if (!o || !s)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "optimizer: NULL argument");
    if (!o->accumulate || o->n_accum == 0)
        return slm__fail(err, SLM_E_STATE, NULL, -1, o->accumulate ? "optimizer: nothing "
                         "accumulated since the last update" : "optimizer: built without "
                         "accumulation");
    int rc = set_inputs(o, err);
    if (rc == SLM_OK)
        rc = slm__sched_compute_range(s, o->graph, o->update_from, SIZE_MAX, err);
    if (rc == SLM_OK)
        count_step(o);
    return rc;
}

int64_t slm_optim_n_accumulated(const slm_optim_t *o)
{
    return o ? o->n_accum : 0;
}

int slm_optim_step(slm_optim_t *o, slm_sched_t *s, slm_error_t *err)
{
    if (!o || !s)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "optimizer step: NULL argument");
    if (o->accumulate) {
        int rc = slm_optim_accumulate(o, s, 1.0f, err);
        return rc == SLM_OK ? slm_optim_apply(o, s, err) : rc;
    }
    int rc = o->state_pending ? upload_state(o, err) : SLM_OK;
    if (rc == SLM_OK)
        rc = set_inputs(o, err);
    if (rc == SLM_OK)
        rc = slm_sched_compute(s, o->graph, err);
    if (rc != SLM_OK)
        return rc;
    count_step(o);
    return SLM_OK;
}

int64_t slm_optim_n_steps(const slm_optim_t *o)
{
    return o ? o->step : 0;
}

double slm_optim_grad_norm(const slm_optim_t *o)
{
    return o ? o->grad_norm : -1.0;
}

void slm_optim_get_params(const slm_optim_t *o, slm_optim_params_t *p)
{
    if (!o || !p)
        return;
    slm_optim_params_t q = o->params;
    q.accumulate = o->accumulate;
    size_t n = p->struct_size < sizeof q ? p->struct_size : sizeof q;
    memcpy(p, &q, n);
    p->struct_size = (uint32_t)n;
}

size_t slm_optim_n_params(const slm_optim_t *o)
{
    return o ? o->n_slots : 0;
}

slm_tensor_t *slm_optim_param(const slm_optim_t *o, size_t i)
{
    return o && i < o->n_slots ? o->slots[i].param : NULL;
}

bool slm_optim_param_decays(const slm_optim_t *o, size_t i)
{
    return o && i < o->n_slots && o->slots[i].decays;
}

slm_tensor_t *slm__optim_grad_of(const slm_optim_t *o, const slm_tensor_t *param)
{
    for (size_t i = 0; o && i < o->n_slots; i++)
        if (o->slots[i].param == param)
            return update_grad(&o->slots[i]);
    return NULL;
}
