/* Reverse-mode autodiff over a built graph: one gradient rule per op, applied from
 * the loss back; the rules are written down in docs/compute.md. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "internal/graph.h"
#include "internal/util.h"

static const int64_t ONE_ELEMENT[SLM_MAX_DIMS] = {1, 1, 1, 1};

/* Which operands of an op a gradient flows to (bit i: src[i]). */
static unsigned differentiable_srcs(const slm_tensor_t *t)
{
    switch (t->op) {
    case SLM_OP_NONE:
        return t->view_src ? 1u : 0u;
    case SLM_OP_GET_ROWS: case SLM_OP_SCALE: case SLM_OP_RMS_NORM: case SLM_OP_ROPE:
    case SLM_OP_SOFT_MAX: case SLM_OP_SILU: case SLM_OP_GELU: case SLM_OP_CPY: case SLM_OP_LOG:
    case SLM_OP_CROSS_ENTROPY: case SLM_OP_SUM: case SLM_OP_REPEAT_BACK:
        return 1u;
    case SLM_OP_MUL_MAT: case SLM_OP_MUL_MAT_T: case SLM_OP_OUT_PROD: case SLM_OP_ADD:
    case SLM_OP_MUL: case SLM_OP_SWIGLU: case SLM_OP_ACC:
        return 3u;
    default:
        return 0u;   /* backward ops and parameter updates: no second-order gradients */
    }
}

static void mark_needs_grad(slm_graph_t *g, size_t last)
{
    for (size_t i = 0; i <= last; i++) {
        slm_tensor_t *t = g->tensors[i];
        t->needs_grad = (t->flags & SLM_TENSOR_PARAM) != 0;
        unsigned d = differentiable_srcs(t);
        for (int s = 0; s < t->n_src; s++)
            if ((d & (1u << s)) && t->src[s]->needs_grad)
                t->needs_grad = true;
    }
}

/* Add one contribution (contiguous f32 of src's shape) to src's gradient. */
static void accumulate(slm_graph_t *g, slm_tensor_t *src, slm_tensor_t *contrib)
{
    if (!contrib || !src->needs_grad)
        return;
    if (memcmp(contrib->ne, src->ne, sizeof src->ne) != 0) {
        slm__graph_fail(g, SLM_E_INVALID, "backward: gradient shape of '%s' does not match",
                        src->name);
        return;
    }
    src->grad = src->grad ? slm_add(g, src->grad, contrib) : contrib;
}

static slm_tensor_t *back_node(slm_graph_t *g, slm_op_t op, const int64_t *ne, int n,
                               slm_tensor_t *s0, slm_tensor_t *s1, slm_tensor_t *s2)
{
    if (!s0 || !s1 || (n > 2 && !s2))
        return NULL;
    slm_tensor_t *t = slm__tensor_alloc(g, SLM_TYPE_F32, ne);
    if (!t)
        return NULL;
    t->op = op;
    t->n_src = t->n_src_node = n;
    t->src[0] = s0;
    t->src[1] = s1;
    t->src[2] = s2;
    return t;
}

/* Reduce a broadcast operand's gradient back to its shape. */
static slm_tensor_t *unbroadcast(slm_graph_t *g, slm_tensor_t *d, slm_tensor_t *like)
{
    if (!d || memcmp(d->ne, like->ne, sizeof d->ne) == 0)
        return d;
    return slm_repeat_back(g, d, like);
}

/* A block-quantized weight can be read by the backward products but never updated:
 * its gradient would have nowhere to go. Frozen (not PARAM) ones need none. */
static bool trainable_type(slm_graph_t *g, const slm_tensor_t *a)
{
    if (!a->needs_grad || slm_type_get_traits(a->type)->block == 1)
        return true;
    slm__graph_fail(g, SLM_E_UNSUPPORTED, "backward: '%s' is %s, a quantized weight, and "
                    "trainable; train float weights, or freeze it and train adapters on it",
                    a->name, slm_type_name(a->type));
    return false;
}

/* y = A^T B (mul_mat): dA = B dy^T summed onto A's batch; dB = A dy, which
 * MUL_MAT_T reads from A's rows as stored, so a frozen quantized or f16 A is never
 * expanded or transposed into a W-sized f32 copy. */
static void back_mul_mat(slm_graph_t *g, slm_tensor_t *t, slm_tensor_t *dy)
{
    slm_tensor_t *a = t->src[0], *b = t->src[1];
    if (!trainable_type(g, a))
        return;
    if (a->needs_grad)
        accumulate(g, a, slm__out_prod_ex(g, b, dy, a->ne[2], a->ne[3]));
    if (b->needs_grad)
        accumulate(g, b, slm_mul_mat_t(g, a, dy));
}

/* y = A B (mul_mat_t): dA = dy B^T summed onto A's batch; dB = A^T dy. */
static void back_mul_mat_t(slm_graph_t *g, slm_tensor_t *t, slm_tensor_t *dy)
{
    slm_tensor_t *a = t->src[0], *b = t->src[1];
    if (!trainable_type(g, a))
        return;
    if (a->needs_grad)
        accumulate(g, a, slm__out_prod_ex(g, dy, b, a->ne[2], a->ne[3]));
    if (b->needs_grad)
        accumulate(g, b, slm_mul_mat(g, a, dy));
}

static void back_out_prod(slm_graph_t *g, slm_tensor_t *t, slm_tensor_t *dy)
{
    slm_tensor_t *x = t->src[0], *y = t->src[1];
    if (t->ne[2] != x->ne[2] || t->ne[3] != x->ne[3]) {
        slm__graph_fail(g, SLM_E_UNSUPPORTED, "backward: out_prod with batch reduction");
        return;
    }
    if (x->needs_grad)
        accumulate(g, x, slm_mul_mat(g, slm_cont(g, slm_transpose(g, dy)), y));
    if (y->needs_grad)
        accumulate(g, y, slm_mul_mat(g, dy, x));
}

static void back_view(slm_graph_t *g, slm_tensor_t *t, slm_tensor_t *dy)
{
    slm_tensor_t *a = t->src[0];
    switch (t->view_kind) {
    case SLM__VIEW_RESHAPE:
        accumulate(g, a, slm_reshape(g, dy, SLM_MAX_DIMS, a->ne));
        return;
    case SLM__VIEW_PERMUTE: {
        int inv[SLM_MAX_DIMS];
        for (int i = 0; i < SLM_MAX_DIMS; i++)
            inv[t->ip[i]] = i;
        accumulate(g, a, slm_cont(g, slm_permute(g, dy, inv[0], inv[1], inv[2], inv[3])));
        return;
    }
    default:
        break;
    }
    /* A general view: scatter dy into a zero (or the running) gradient of a, with
     * the view's strides rescaled from a's element size to f32. */
    if (!slm_tensor_is_contiguous(a)) {
        slm__graph_fail(g, SLM_E_UNSUPPORTED, "backward: view of non-contiguous '%s'", a->name);
        return;
    }
    int64_t es = (int64_t)slm_type_get_traits(a->type)->size;
    int64_t off = (int64_t)(t->view_offs - a->view_offs);
    if (off % es || t->nb[1] % es || t->nb[2] % es || t->nb[3] % es) {
        slm__graph_fail(g, SLM_E_UNSUPPORTED, "backward: misaligned view of '%s'", a->name);
        return;
    }
    slm_tensor_t *base = a->grad ? a->grad : slm__tensor_const(g, SLM__ROLE_ZEROS, a->ne);
    slm_tensor_t *acc = slm__acc(g, base, dy, t->nb[1] / es * 4, t->nb[2] / es * 4,
                                 t->nb[3] / es * 4, off / es * 4);
    if (acc)
        a->grad = acc;
}

static void back_node_rules(slm_graph_t *g, slm_tensor_t *t)
{
    slm_tensor_t *dy = t->grad;
    slm_tensor_t *a = t->src[0], *b = t->n_src > 1 ? t->src[1] : NULL;
    slm_tensor_t *d;
    switch (t->op) {
    case SLM_OP_NONE:
        back_view(g, t, dy);
        break;
    case SLM_OP_GET_ROWS:
        accumulate(g, a, back_node(g, SLM_OP_GET_ROWS_BACK, a->ne, 2, dy, b, NULL));
        break;
    case SLM_OP_MUL_MAT:
        back_mul_mat(g, t, dy);
        break;
    case SLM_OP_MUL_MAT_T:
        back_mul_mat_t(g, t, dy);
        break;
    case SLM_OP_OUT_PROD:
        back_out_prod(g, t, dy);
        break;
    case SLM_OP_ADD:
        accumulate(g, a, dy);
        if (b->needs_grad)
            accumulate(g, b, unbroadcast(g, dy, b));
        break;
    case SLM_OP_MUL:
        if (a->needs_grad)
            accumulate(g, a, slm_mul(g, dy, b));
        if (b->needs_grad)
            accumulate(g, b, unbroadcast(g, slm_mul(g, dy, a), b));
        break;
    case SLM_OP_SCALE:
        accumulate(g, a, slm_scale(g, dy, t->fp[0]));
        break;
    case SLM_OP_RMS_NORM:
        d = back_node(g, SLM_OP_RMS_NORM_BACK, a->ne, 2, a, dy, NULL);
        if (d)
            d->fp[0] = t->fp[0];
        accumulate(g, a, d);
        break;
    case SLM_OP_ROPE:
        d = back_node(g, SLM_OP_ROPE_BACK, a->ne, 2, dy, b, NULL);
        if (d) {
            memcpy(d->ip, t->ip, sizeof d->ip);
            memcpy(d->fp, t->fp, sizeof d->fp);
        }
        accumulate(g, a, d);
        break;
    case SLM_OP_SOFT_MAX:
        d = back_node(g, SLM_OP_SOFT_MAX_BACK, a->ne, 2, t, dy, NULL);
        if (d)
            d->fp[0] = t->fp[0];
        accumulate(g, a, d);
        break;
    case SLM_OP_SILU:
        accumulate(g, a, back_node(g, SLM_OP_SILU_BACK, a->ne, 2, a, dy, NULL));
        break;
    case SLM_OP_GELU:
        accumulate(g, a, back_node(g, SLM_OP_GELU_BACK, a->ne, 2, a, dy, NULL));
        break;
    case SLM_OP_LOG:
        accumulate(g, a, back_node(g, SLM_OP_LOG_BACK, a->ne, 2, a, dy, NULL));
        break;
    case SLM_OP_SWIGLU:
        if (a->needs_grad)
            accumulate(g, a, back_node(g, SLM_OP_SILU_BACK, a->ne, 2, a, slm_mul(g, dy, b), NULL));
        if (b->needs_grad)
            accumulate(g, b, slm_mul(g, dy, slm_silu(g, a)));
        break;
    case SLM_OP_CPY:
        /* Gradients are f32 whatever the copy converted to; only the shape goes back. */
        accumulate(g, a, memcmp(dy->ne, a->ne, sizeof a->ne) == 0
                             ? dy : slm_reshape(g, dy, SLM_MAX_DIMS, a->ne));
        break;
    case SLM_OP_CROSS_ENTROPY:
        accumulate(g, a, back_node(g, SLM_OP_CROSS_ENTROPY_BACK, a->ne, 3, a, b, dy));
        break;
    case SLM_OP_SUM:
    case SLM_OP_REPEAT_BACK:
        accumulate(g, a, slm_mul(g, slm__tensor_const(g, SLM__ROLE_ONES, a->ne), dy));
        break;
    case SLM_OP_ACC:
        if (a->needs_grad)
            accumulate(g, a, dy);
        if (b->needs_grad) {
            const int64_t nb[SLM_MAX_DIMS] = {4, t->ip[0], t->ip[1], t->ip[2]};
            accumulate(g, b, slm_cont(g, slm_view(g, dy, SLM_MAX_DIMS, b->ne, nb,
                                                  (size_t)t->ip[3])));
        }
        break;
    default:
        slm__graph_fail(g, SLM_E_UNSUPPORTED, "backward: op %s has no gradient rule",
                        slm_op_name(t->op));
        break;
    }
}

int slm_graph_backward(slm_graph_t *g, slm_tensor_t *loss, slm_error_t *err)
{
    if (!g || !loss)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "backward: graph or loss is NULL");
    if (g->status != SLM_OK)
        return slm_graph_status(g, err);
    if (g->loss)
        return slm__fail(err, SLM_E_STATE, NULL, -1, "backward: already appended");
    if (loss->graph != g || loss->type != SLM_TYPE_F32 || slm_tensor_nelements(loss) != 1)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "backward: loss must be one f32 element "
                         "of this graph");
    size_t last = loss->index;
    mark_needs_grad(g, last);
    g->seed = slm__tensor_const(g, SLM__ROLE_ONES, ONE_ELEMENT);
    if (!g->seed)
        return slm_graph_status(g, err);
    slm_tensor_set_name(g->seed, "loss.grad_seed");
    g->loss = loss;
    loss->flags |= SLM_TENSOR_OUTPUT;
    loss->grad = g->seed;
    /* Creation order is topological: every consumer of tensor i comes after it,
     * so its gradient is complete when the loop reaches it. */
    for (size_t i = last + 1; i-- > 0 && g->status == SLM_OK;) {
        slm_tensor_t *t = g->tensors[i];
        bool leaf = t->op == SLM_OP_NONE && !t->view_src;
        if (t->grad && t->needs_grad && !leaf)
            back_node_rules(g, t);
    }
    for (size_t i = 0; i <= last && g->status == SLM_OK; i++) {
        slm_tensor_t *t = g->tensors[i];
        if ((t->flags & SLM_TENSOR_PARAM) && t->grad && t->grad->name[0] == '\0' && t->name[0]) {
            char nm[sizeof t->name];
            snprintf(nm, sizeof nm, "%.58s.grad", t->name);
            slm_tensor_set_name(t->grad, nm);
        }
    }
    return slm_graph_status(g, err);
}
