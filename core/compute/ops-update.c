/* Builders of the in-place parameter updates (AdamW, SGD) that an optimizer appends
 * after the backward pass, and which operands each op writes in place. */
#include "config.h"

#include <string.h>

#include "internal/graph.h"
#include "internal/util.h"

unsigned slm__op_written_srcs(int op)
{
    return op == SLM_OP_ADAMW_STEP ? (1u << 2) | (1u << 3) : 0u;   /* m and v */
}

static bool f32_like(slm_graph_t *g, const char *op, const char *what, const slm_tensor_t *t,
                     const slm_tensor_t *like)
{
    if (t->graph != g) {
        slm__graph_fail(g, SLM_E_INVALID, "%s: %s belongs to another graph", op, what);
        return false;
    }
    if (t->type != SLM_TYPE_F32 || !slm_tensor_is_contiguous(t)) {
        slm__graph_fail(g, SLM_E_INVALID, "%s: %s '%s' must be contiguous f32", op, what, t->name);
        return false;
    }
    if (like && memcmp(t->ne, like->ne, sizeof t->ne) != 0) {
        slm__graph_fail(g, SLM_E_INVALID, "%s: %s '%s' does not have the shape of '%s'", op, what,
                        t->name, like->name);
        return false;
    }
    return true;
}

/* The operands every update shares: the parameter (which must own its storage, since
 * the result aliases it), its gradient, the hyper-parameter vector of at least
 * n_hyper values and the optional sum of squares for clipping. */
static bool update_operands(slm_graph_t *g, const char *op, slm_tensor_t *param,
                            slm_tensor_t *grad, slm_tensor_t *hyper, int64_t n_hyper,
                            slm_tensor_t *sumsq)
{
    if (!g || g->status != SLM_OK)
        return false;
    if (!param || !grad || !hyper) {
        slm__graph_fail(g, SLM_E_INVALID, "%s: parameter, gradient and hyper-parameters are "
                        "required", op);
        return false;
    }
    if (!f32_like(g, op, "parameter", param, NULL) || !f32_like(g, op, "gradient", grad, param) ||
        !f32_like(g, op, "hyper-parameters", hyper, NULL) ||
        (sumsq && !f32_like(g, op, "sum of squares", sumsq, NULL)))
        return false;
    if (param->view_src || param->op != SLM_OP_NONE) {
        slm__graph_fail(g, SLM_E_UNSUPPORTED, "%s: parameter '%s' must be a leaf tensor with "
                        "storage of its own", op, param->name);
        return false;
    }
    if (slm_tensor_nelements(hyper) < n_hyper || (sumsq && slm_tensor_nelements(sumsq) != 1)) {
        slm__graph_fail(g, SLM_E_INVALID, "%s: needs %lld hyper-parameters and a one-element "
                        "sum of squares", op, (long long)n_hyper);
        return false;
    }
    return true;
}

/* The node's result is the parameter's storage after the update. */
static slm_tensor_t *update_node(slm_graph_t *g, slm_op_t op, slm_tensor_t *param,
                                 slm_tensor_t *const *src, int n_src)
{
    slm_tensor_t *t = slm__tensor_view(g, param, param->ne, param->nb, 0);
    if (!t)
        return NULL;
    t->op = op;
    t->view_kind = SLM__VIEW_INPLACE;
    memcpy(t->src, src, (size_t)n_src * sizeof *src);
    t->n_src = t->n_src_node = n_src;
    return t;
}

slm_tensor_t *slm_adamw_step(slm_graph_t *g, slm_tensor_t *param, slm_tensor_t *grad,
                             slm_tensor_t *m, slm_tensor_t *v, slm_tensor_t *hyper,
                             slm_tensor_t *sumsq)
{
    if (!update_operands(g, "adamw_step", param, grad, hyper, sumsq ? 8 : 7, sumsq))
        return NULL;
    if (!m || !v) {
        slm__graph_fail(g, SLM_E_INVALID, "adamw_step: moments are required");
        return NULL;
    }
    if (!f32_like(g, "adamw_step", "moment", m, param) ||
        !f32_like(g, "adamw_step", "moment", v, param))
        return NULL;
    if (m->view_src || v->view_src || m == v || m == param || v == param) {
        slm__graph_fail(g, SLM_E_INVALID, "adamw_step: the moments of '%s' must be two tensors "
                        "of their own", param->name);
        return NULL;
    }
    slm_tensor_t *src[] = {param, grad, m, v, hyper, sumsq};
    return update_node(g, SLM_OP_ADAMW_STEP, param, src, sumsq ? 6 : 5);
}

slm_tensor_t *slm_sgd_step(slm_graph_t *g, slm_tensor_t *param, slm_tensor_t *grad,
                           slm_tensor_t *hyper, slm_tensor_t *sumsq)
{
    if (!update_operands(g, "sgd_step", param, grad, hyper, sumsq ? 3 : 2, sumsq))
        return NULL;
    slm_tensor_t *src[] = {param, grad, hyper, sumsq};
    return update_node(g, SLM_OP_SGD_STEP, param, src, sumsq ? 4 : 3);
}
