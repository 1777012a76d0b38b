/* The host side of a trainer method's add_loss (plugin-trainer.h, version 2): the
 * graph slots a method builds extra loss terms with, on each graph the job builds. */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/graph.h>
#include <slmops/ops.h>

#include "internal/util.h"
#include "jobs/train.h"

typedef struct lctx {
    slm__train_t *t;
    slm__tgraph_t *G;
    int rc;                    /* the first failure */
} lctx_t;

static slm_trainer_node_t *node(slm_tensor_t *t)
{
    return (slm_trainer_node_t *)t;
}

static slm_tensor_t *tensor(const slm_trainer_node_t *n)
{
    return (slm_tensor_t *)n;
}

static void *lfail(lctx_t *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void *lfail(lctx_t *c, int code, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->rc == SLM_OK)
        c->rc = slm__fail(c->t->err, code, NULL, -1, "train: method %s: add_loss: %s",
                          c->t->o->method, msg);
    return NULL;
}

/* A node the graph built, or the graph's own error. */
static slm_trainer_node_t *made(lctx_t *c, slm_tensor_t *t, const char *what)
{
    if (t)
        return node(t);
    slm_error_t e;
    slm_error_init(&e);
    slm_graph_status(c->G->g, &e);
    return lfail(c, SLM_E_INVALID, "%s: %s", what, e.message[0] ? e.message : "refused");
}

static slm_trainer_node_t *l_input(void *ctx, const char *name)
{
    lctx_t *c = ctx;
    slm__tgraph_t *G = c->G;
    if (!name)
        return NULL;
    if (strcmp(name, SLM_TRAINER_IN_LOGITS) == 0)
        return node(G->seq.fwd.out);
    if (strcmp(name, SLM_TRAINER_IN_TARGETS) == 0)
        return node(G->xent.targets);
    if (strcmp(name, SLM_TRAINER_IN_LOSS_MASK) == 0) {
        const int64_t ne[1] = {G->xent.N};
        return made(c, slm_reshape(G->g, G->xent.keep, 1, ne), "loss_mask");
    }
    if (strcmp(name, SLM_TRAINER_IN_LOSS_NORM) == 0)
        return node(G->xent.norm);
    if (strcmp(name, SLM_TRAINER_IN_TEACHER_LOGITS) == 0) {
        if (!c->t->teacher)
            return NULL;   /* a job without a teacher */
        return made(c, slm__train_teacher_input(c->t, G), "teacher_logits");
    }
    return NULL;   /* hidden: not offered by this job */
}

static slm_trainer_node_t *l_param(void *ctx, const char *name)
{
    lctx_t *c = ctx;
    if (!name || !slm__train_param(c->t, name))
        return NULL;
    return node(slm_graph_find(c->G->g, name));
}

static int l_info(void *ctx, const slm_trainer_node_t *n, slm_trainer_tensor_info_t *info)
{
    (void)ctx;
    if (!n || !info || info->struct_size < offsetof(slm_trainer_tensor_info_t, hf_name))
        return SLM_E_INVALID;
    const slm_tensor_t *t = tensor(n);
    info->name = NULL;
    info->type = slm_tensor_type(t);
    info->n_dims = slm_tensor_n_dims(t);
    for (int i = 0; i < 4; i++)
        info->ne[i] = slm_tensor_ne(t, i);
    if (info->struct_size >= sizeof *info) {
        info->hf_name = NULL;
        info->layer = -1;
    }
    return SLM_OK;
}

/* Forward ops by number, with their operands and parameters as ops.h gives them. */
static slm_trainer_node_t *l_op(void *ctx, int32_t op, const slm_trainer_node_t *const *src,
                                int32_t n_src, const int64_t *ip, int32_t n_ip, const float *fp,
                                int32_t n_fp)
{
    lctx_t *c = ctx;
    slm_graph_t *g = c->G->g;
    slm_tensor_t *a = n_src > 0 && src ? tensor(src[0]) : NULL;
    slm_tensor_t *b = n_src > 1 && src ? tensor(src[1]) : NULL;
    int32_t want_src = 2, want_ip = 0, want_fp = 0;
    slm_tensor_t *t = NULL;
    switch (op) {
    case SLM_OP_ADD: t = a && b ? slm_add(g, a, b) : NULL; break;
    case SLM_OP_MUL: t = a && b ? slm_mul(g, a, b) : NULL; break;
    case SLM_OP_MUL_MAT: t = a && b ? slm_mul_mat(g, a, b) : NULL; break;
    case SLM_OP_OUT_PROD: t = a && b ? slm_out_prod(g, a, b) : NULL; break;
    case SLM_OP_GET_ROWS: t = a && b ? slm_get_rows(g, a, b) : NULL; break;
    case SLM_OP_SWIGLU: t = a && b ? slm_swiglu(g, a, b) : NULL; break;
    case SLM_OP_CROSS_ENTROPY: t = a && b ? slm_cross_entropy(g, a, b) : NULL; break;
    case SLM_OP_REPEAT_BACK: t = a && b ? slm_repeat_back(g, a, b) : NULL; break;
    case SLM_OP_SILU: want_src = 1; t = a ? slm_silu(g, a) : NULL; break;
    case SLM_OP_GELU: want_src = 1; t = a ? slm_gelu(g, a) : NULL; break;
    case SLM_OP_LOG: want_src = 1; t = a ? slm_ln(g, a) : NULL; break;
    case SLM_OP_SUM: want_src = 1; t = a ? slm_sum(g, a) : NULL; break;
    case SLM_OP_SCALE:
        want_src = 1, want_fp = 1;
        t = a && fp && n_fp >= 1 ? slm_scale(g, a, fp[0]) : NULL;
        break;
    case SLM_OP_RMS_NORM:
        want_src = 1, want_fp = 1;
        t = a && fp && n_fp >= 1 ? slm_rms_norm(g, a, fp[0]) : NULL;
        break;
    case SLM_OP_SOFT_MAX:
        want_src = n_src == 2 ? 2 : 1, want_ip = 2, want_fp = 1;
        t = a && fp && ip && n_fp >= 1 && n_ip >= 2 ? slm_soft_max(g, a, b, fp[0], ip[0] != 0,
                                                                   ip[1]) : NULL;
        break;
    case SLM_OP_ROPE:
        want_ip = 2, want_fp = 2;
        t = a && b && ip && fp && n_ip >= 2 && n_fp >= 2
                ? slm_rope(g, a, b, (int)ip[0], (int)ip[1], fp[0], fp[1]) : NULL;
        break;
    default:
        return lfail(c, SLM_E_UNSUPPORTED, "op %s (%d) is no forward op a loss term may use",
                     op >= 0 && op < SLM_OP_COUNT ? slm_op_name((slm_op_t)op) : "?", (int)op);
    }
    if (n_src != want_src || n_ip < want_ip || n_fp < want_fp)
        return lfail(c, SLM_E_INVALID, "op %s takes %d sources, %d ip and %d fp values; it got "
                     "%d, %d and %d", slm_op_name((slm_op_t)op), (int)want_src, (int)want_ip,
                     (int)want_fp, (int)n_src, (int)n_ip, (int)n_fp);
    return made(c, t, slm_op_name((slm_op_t)op));
}

static slm_trainer_node_t *l_reshape(void *ctx, slm_trainer_node_t *n, int32_t n_dims,
                                     const int64_t *ne)
{
    lctx_t *c = ctx;
    return n ? made(c, slm_reshape(c->G->g, tensor(n), n_dims, ne), "reshape")
             : lfail(c, SLM_E_INVALID, "reshape of NULL");
}

static slm_trainer_node_t *l_view(void *ctx, slm_trainer_node_t *n, int32_t n_dims,
                                  const int64_t *ne, const int64_t *nb, uint64_t offset)
{
    lctx_t *c = ctx;
    return n ? made(c, slm_view(c->G->g, tensor(n), n_dims, ne, nb, (size_t)offset), "view")
             : lfail(c, SLM_E_INVALID, "view of NULL");
}

static slm_trainer_node_t *l_permute(void *ctx, slm_trainer_node_t *n, int32_t ax0, int32_t ax1,
                                     int32_t ax2, int32_t ax3)
{
    lctx_t *c = ctx;
    return n ? made(c, slm_permute(c->G->g, tensor(n), ax0, ax1, ax2, ax3), "permute")
             : lfail(c, SLM_E_INVALID, "permute of NULL");
}

/* An input leaf whose values are set after the graph is allocated. */
static slm_trainer_node_t *l_constant(void *ctx, int32_t n_dims, const int64_t *ne,
                                      const float *data)
{
    lctx_t *c = ctx;
    slm__tgraph_t *G = c->G;
    slm_tensor_t *t = ne && data ? slm_tensor_new(G->g, SLM_TYPE_F32, n_dims, ne) : NULL;
    if (!t)
        return made(c, t, "constant");
    size_t n = (size_t)slm_tensor_nelements(t);
    slm__tconst_t *k = realloc(G->consts, (G->n_consts + 1) * sizeof *k);
    float *copy = k ? malloc(n * sizeof *copy) : NULL;
    if (k)
        G->consts = k;
    if (!copy)
        return lfail(c, SLM_E_NOMEM, "out of memory");
    memcpy(copy, data, n * sizeof *copy);
    slm_tensor_set_flags(t, SLM_TENSOR_INPUT);
    G->consts[G->n_consts++] = (slm__tconst_t){.t = t, .data = copy, .n = n};
    return node(t);
}

static int l_add_term(void *ctx, const char *name, slm_trainer_node_t *value, float weight)
{
    lctx_t *c = ctx;
    slm__tgraph_t *G = c->G;
    if (!name || !*name || strlen(name) >= sizeof G->terms[0].name || !value ||
        slm_tensor_nelements(tensor(value)) != 1 || !isfinite(weight)) {
        lfail(c, SLM_E_INVALID, "add_term needs a name of 1 to %zu bytes, a node of one "
              "element and a finite weight", sizeof G->terms[0].name - 1);
        return c->rc;
    }
    if (G->n_terms == SLM__TRAIN_MAX_TERMS) {
        lfail(c, SLM_E_INVALID, "more than %d loss terms", SLM__TRAIN_MAX_TERMS);
        return c->rc;
    }
    slm__tterm_t *x = &G->terms[G->n_terms++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->value = tensor(value);
    x->weight = weight;
    slm_tensor_set_flags(x->value, SLM_TENSOR_OUTPUT);
    return SLM_OK;
}

static int l_lm_weight(void *ctx, float weight)
{
    lctx_t *c = ctx;
    if (!isfinite(weight) || weight < 0) {
        lfail(c, SLM_E_INVALID, "lm_weight %g is not a finite number >= 0", (double)weight);
        return c->rc;
    }
    c->G->lm_weight = weight;
    return SLM_OK;
}

/* The total loss: lm_weight x cross-entropy + sum of weight x term, in the order the
 * method added them. */
static int total_loss(lctx_t *c)
{
    slm__tgraph_t *G = c->G;
    slm_graph_t *g = G->g;
    slm_tensor_t *loss = G->lm_weight == 1.0f ? G->xent.loss
                         : G->lm_weight == 0.0f ? NULL : slm_scale(g, G->xent.loss, G->lm_weight);
    for (size_t i = 0; i < G->n_terms; i++) {
        slm_tensor_t *v = G->terms[i].value;
        const int64_t one[1] = {1};
        slm_tensor_t *term = slm_scale(g, slm_reshape(g, v, 1, one), G->terms[i].weight);
        loss = loss ? slm_add(g, loss, term) : term;
    }
    if (!loss)
        return slm__fail(c->t->err, SLM_E_INVALID, NULL, -1, "train: method %s leaves no loss "
                         "(lm_weight 0 and no term)", c->t->o->method);
    if (loss != G->xent.loss)
        slm_tensor_set_flags(loss, SLM_TENSOR_OUTPUT);
    G->loss = loss;
    return slm_graph_status(g, c->t->err);
}

int slm__train_add_loss(slm__train_t *t, slm__tgraph_t *G)
{
    G->lm_weight = 1.0f;
    G->loss = G->xent.loss;
    if (!t->method->add_loss)
        return SLM_OK;
    lctx_t c = {.t = t, .G = G};
    slm_trainer_graph_t graph = {
        .struct_size = sizeof graph, .ctx = &c, .input = l_input, .param = l_param,
        .info = l_info, .op = l_op, .reshape = l_reshape, .view = l_view, .permute = l_permute,
        .constant = l_constant, .add_term = l_add_term, .lm_weight = l_lm_weight,
    };
    if (t->err)
        t->err->code = SLM_OK;
    int rc = t->method->add_loss(t->mstate, &graph, t->err);
    if (c.rc != SLM_OK)
        return c.rc;
    if (rc != SLM_OK)
        return t->err && t->err->code != SLM_OK && t->err->message[0]
                   ? rc
                   : slm__fail(t->err, rc < 0 ? rc : SLM_E_PLUGIN, NULL, -1, "train: method %s: "
                               "add_loss failed (%s)", t->o->method,
                               slm_strerror(rc < 0 ? rc : SLM_E_PLUGIN));
    return total_loss(&c);
}

int slm__train_set_constants(slm__train_t *t, slm__tgraph_t *G)
{
    for (size_t i = 0; i < G->n_consts; i++)
        if (slm_tensor_set_data(G->consts[i].t, G->consts[i].data, 0,
                                G->consts[i].n * sizeof(float)) != SLM_OK)
            return slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: setting a loss term's "
                             "constant failed");
    return SLM_OK;
}

int slm__train_read_terms(const slm__train_t *t, const slm__tgraph_t *G, double *values)
{
    for (size_t i = 0; i < G->n_terms; i++) {
        float v;
        if (slm_tensor_get_data(G->terms[i].value, &v, 0, sizeof v) != SLM_OK)
            return slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: reading loss term %s "
                             "failed", G->terms[i].name);
        values[i] = v;
    }
    return SLM_OK;
}
