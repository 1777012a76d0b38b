/* Forward op builders: each checks shapes and types, records the first error in
 * the graph, and appends one node; no data is touched until a scheduler runs it. */
#include "config.h"

#include <string.h>

#include "internal/graph.h"
#include "internal/util.h"

/* Every builder starts here: NULL inputs after an earlier error are tolerated. */
static bool usable(slm_graph_t *g, const char *op, int n, slm_tensor_t *const *ts)
{
    if (!g || g->status != SLM_OK)
        return false;
    for (int i = 0; i < n; i++) {
        if (!ts[i]) {
            slm__graph_fail(g, SLM_E_INVALID, "%s: operand %d is NULL", op, i);
            return false;
        }
        if (ts[i]->graph != g) {
            slm__graph_fail(g, SLM_E_INVALID, "%s: operand %d belongs to another graph", op, i);
            return false;
        }
    }
    return true;
}

#define USABLE(g, op, ...) \
    usable((g), (op), (int)SLM__ARRAY_LEN(((slm_tensor_t *[]){__VA_ARGS__})), \
           (slm_tensor_t *[]){__VA_ARGS__})

static bool need_type(slm_graph_t *g, const char *op, const slm_tensor_t *t, slm_type_t type)
{
    if (t->type == type)
        return true;
    slm__graph_fail(g, SLM_E_INVALID, "%s: operand '%s' is %s, needs %s", op, t->name,
                    slm_type_name(t->type), slm_type_name(type));
    return false;
}

static bool is_float_type(slm_type_t t)
{
    return t == SLM_TYPE_F32 || t == SLM_TYPE_F16 || t == SLM_TYPE_BF16;
}

static bool same_shape(const slm_tensor_t *a, const slm_tensor_t *b)
{
    return memcmp(a->ne, b->ne, sizeof a->ne) == 0;
}

static bool need_same_shape(slm_graph_t *g, const char *op, const slm_tensor_t *a,
                            const slm_tensor_t *b)
{
    if (same_shape(a, b))
        return true;
    slm__graph_fail(g, SLM_E_INVALID, "%s: shapes [%lld,%lld,%lld,%lld] and [%lld,%lld,%lld,%lld] "
                    "differ", op, (long long)a->ne[0], (long long)a->ne[1], (long long)a->ne[2],
                    (long long)a->ne[3], (long long)b->ne[0], (long long)b->ne[1],
                    (long long)b->ne[2], (long long)b->ne[3]);
    return false;
}

/* A compute node producing a fresh contiguous tensor. */
static slm_tensor_t *node(slm_graph_t *g, slm_op_t op, slm_type_t type,
                          const int64_t ne[SLM_MAX_DIMS], int n_src, slm_tensor_t *const *src)
{
    slm_tensor_t *t = slm__tensor_alloc(g, type, ne);
    if (!t)
        return NULL;
    t->op = op;
    t->n_src = n_src;
    t->n_src_node = n_src;
    for (int i = 0; i < n_src; i++)
        t->src[i] = src[i];
    return t;
}

#define NODE(g, op, type, ne, ...) \
    node((g), (op), (type), (ne), (int)SLM__ARRAY_LEN(((slm_tensor_t *[]){__VA_ARGS__})), \
         (slm_tensor_t *[]){__VA_ARGS__})

static slm_tensor_t *unary_f32(slm_graph_t *g, slm_op_t op, slm_tensor_t *a)
{
    const char *name = slm_op_name(op);
    if (!USABLE(g, name, a) || !need_type(g, name, a, SLM_TYPE_F32))
        return NULL;
    return NODE(g, op, SLM_TYPE_F32, a->ne, a);
}

slm_tensor_t *slm_get_rows(slm_graph_t *g, slm_tensor_t *table, slm_tensor_t *ids)
{
    if (!USABLE(g, "get_rows", table, ids) || !need_type(g, "get_rows", ids, SLM_TYPE_I32))
        return NULL;
    const slm_type_traits_t *tt = slm_type_get_traits(table->type);
    /* Block-quantized tables too: the backend expands the picked rows. */
    if (!is_float_type(table->type) && !(tt && tt->is_quantized))
        return slm__graph_fail(g, SLM_E_INVALID, "get_rows: table '%s' is %s, needs f32, f16, "
                               "bf16 or a quantized type", table->name, slm_type_name(table->type));
    if (table->ne[2] != 1 || table->ne[3] != 1 || ids->ne[2] != 1 || ids->ne[3] != 1)
        return slm__graph_fail(g, SLM_E_INVALID, "get_rows: table must be 2-D and ids at most 2-D");
    const int64_t ne[SLM_MAX_DIMS] = {table->ne[0], ids->ne[0], ids->ne[1], 1};
    return NODE(g, SLM_OP_GET_ROWS, SLM_TYPE_F32, ne, table, ids);
}

slm_tensor_t *slm_mul_mat(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *b)
{
    if (!USABLE(g, "mul_mat", a, b) || !need_type(g, "mul_mat", b, SLM_TYPE_F32))
        return NULL;
    if (a->ne[0] != b->ne[0])
        return slm__graph_fail(g, SLM_E_INVALID, "mul_mat: inner dimensions %lld ('%s') and "
                               "%lld ('%s') differ", (long long)a->ne[0], a->name,
                               (long long)b->ne[0], b->name);
    if (b->ne[2] % a->ne[2] || b->ne[3] % a->ne[3])
        return slm__graph_fail(g, SLM_E_INVALID, "mul_mat: batch of '%s' does not divide "
                               "that of '%s'", a->name, b->name);
    const int64_t ne[SLM_MAX_DIMS] = {a->ne[1], b->ne[1], b->ne[2], b->ne[3]};
    return NODE(g, SLM_OP_MUL_MAT, SLM_TYPE_F32, ne, a, b);
}

slm_tensor_t *slm_mul_mat_t(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *b)
{
    if (!USABLE(g, "mul_mat_t", a, b) || !need_type(g, "mul_mat_t", b, SLM_TYPE_F32))
        return NULL;
    if (a->ne[1] != b->ne[0])
        return slm__graph_fail(g, SLM_E_INVALID, "mul_mat_t: %lld rows of '%s' and %lld "
                               "elements per column of '%s' differ", (long long)a->ne[1],
                               a->name, (long long)b->ne[0], b->name);
    if (b->ne[2] % a->ne[2] || b->ne[3] % a->ne[3])
        return slm__graph_fail(g, SLM_E_INVALID, "mul_mat_t: batch of '%s' does not divide "
                               "that of '%s'", a->name, b->name);
    const int64_t ne[SLM_MAX_DIMS] = {a->ne[0], b->ne[1], b->ne[2], b->ne[3]};
    return NODE(g, SLM_OP_MUL_MAT_T, SLM_TYPE_F32, ne, a, b);
}

slm_tensor_t *slm__out_prod_ex(slm_graph_t *g, slm_tensor_t *x, slm_tensor_t *y, int64_t b2,
                               int64_t b3)
{
    if (!USABLE(g, "out_prod", x, y) || !need_type(g, "out_prod", x, SLM_TYPE_F32) ||
        !need_type(g, "out_prod", y, SLM_TYPE_F32))
        return NULL;
    if (x->ne[1] != y->ne[1] || x->ne[2] != y->ne[2] || x->ne[3] != y->ne[3])
        return slm__graph_fail(g, SLM_E_INVALID, "out_prod: operands must share dims 1..3");
    if (b2 <= 0 || b3 <= 0 || x->ne[2] % b2 || x->ne[3] % b3)
        return slm__graph_fail(g, SLM_E_INVALID, "out_prod: batch %lldx%lld does not divide "
                               "%lldx%lld", (long long)b2, (long long)b3, (long long)x->ne[2],
                               (long long)x->ne[3]);
    const int64_t ne[SLM_MAX_DIMS] = {x->ne[0], y->ne[0], b2, b3};
    return NODE(g, SLM_OP_OUT_PROD, SLM_TYPE_F32, ne, x, y);
}

slm_tensor_t *slm_out_prod(slm_graph_t *g, slm_tensor_t *x, slm_tensor_t *y)
{
    if (!USABLE(g, "out_prod", x, y))
        return NULL;
    return slm__out_prod_ex(g, x, y, x->ne[2], x->ne[3]);
}

static slm_tensor_t *broadcast_op(slm_graph_t *g, slm_op_t op, slm_tensor_t *a, slm_tensor_t *b)
{
    const char *name = slm_op_name(op);
    if (!USABLE(g, name, a, b) || !need_type(g, name, a, SLM_TYPE_F32) ||
        !need_type(g, name, b, SLM_TYPE_F32))
        return NULL;
    for (int i = 0; i < SLM_MAX_DIMS; i++)
        if (a->ne[i] % b->ne[i])
            return slm__graph_fail(g, SLM_E_INVALID, "%s: '%s' (dim %d = %lld) cannot be "
                                   "broadcast onto '%s' (%lld)", name, b->name, i,
                                   (long long)b->ne[i], a->name, (long long)a->ne[i]);
    return NODE(g, op, SLM_TYPE_F32, a->ne, a, b);
}

slm_tensor_t *slm_add(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *b)
{
    return broadcast_op(g, SLM_OP_ADD, a, b);
}

slm_tensor_t *slm_mul(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *b)
{
    return broadcast_op(g, SLM_OP_MUL, a, b);
}

slm_tensor_t *slm_scale(slm_graph_t *g, slm_tensor_t *a, float s)
{
    slm_tensor_t *t = unary_f32(g, SLM_OP_SCALE, a);
    if (t)
        t->fp[0] = s;
    return t;
}

slm_tensor_t *slm_rms_norm(slm_graph_t *g, slm_tensor_t *a, float eps)
{
    if (eps < 0.0f)
        return slm__graph_fail(g, SLM_E_INVALID, "rms_norm: eps %g is negative", (double)eps);
    slm_tensor_t *t = unary_f32(g, SLM_OP_RMS_NORM, a);
    if (t)
        t->fp[0] = eps;
    return t;
}

slm_tensor_t *slm_rope(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *pos, int n_dims, int mode,
                       float freq_base, float freq_scale)
{
    if (!USABLE(g, "rope", a, pos) || !need_type(g, "rope", a, SLM_TYPE_F32) ||
        !need_type(g, "rope", pos, SLM_TYPE_I32))
        return NULL;
    if (n_dims <= 0 || n_dims % 2 || n_dims > a->ne[0])
        return slm__graph_fail(g, SLM_E_INVALID, "rope: n_dims %d must be even and at most %lld",
                               n_dims, (long long)a->ne[0]);
    if (mode != SLM_ROPE_NORMAL && mode != SLM_ROPE_NEOX)
        return slm__graph_fail(g, SLM_E_INVALID, "rope: unknown mode %d", mode);
    if (slm_tensor_nelements(pos) != a->ne[2])
        return slm__graph_fail(g, SLM_E_INVALID, "rope: %lld positions for %lld tokens",
                               (long long)slm_tensor_nelements(pos), (long long)a->ne[2]);
    if (!(freq_base > 0.0f) || !(freq_scale > 0.0f))
        return slm__graph_fail(g, SLM_E_INVALID, "rope: frequency base and scale must be > 0");
    slm_tensor_t *t = NODE(g, SLM_OP_ROPE, SLM_TYPE_F32, a->ne, a, pos);
    if (!t)
        return NULL;
    t->ip[0] = n_dims;
    t->ip[1] = mode;
    t->fp[0] = freq_base;
    t->fp[1] = freq_scale;
    return t;
}

slm_tensor_t *slm_soft_max(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *mask, float scale,
                           bool causal, int64_t n_past)
{
    if (!USABLE(g, "soft_max", a) || !need_type(g, "soft_max", a, SLM_TYPE_F32))
        return NULL;
    if (n_past < 0)
        return slm__graph_fail(g, SLM_E_INVALID, "soft_max: n_past %lld < 0", (long long)n_past);
    slm_tensor_t *t;
    if (mask) {
        if (!USABLE(g, "soft_max", mask) || !need_type(g, "soft_max", mask, SLM_TYPE_F32))
            return NULL;
        /* One mask per batch (a packed row's documents) or one for all of them. */
        if (mask->ne[0] != a->ne[0] || mask->ne[1] < a->ne[1] || a->ne[2] % mask->ne[2] ||
            a->ne[3] % mask->ne[3])
            return slm__graph_fail(g, SLM_E_INVALID, "soft_max: mask must be [%lld, >= %lld, "
                                   "m2, m3] with m2 dividing %lld and m3 dividing %lld",
                                   (long long)a->ne[0], (long long)a->ne[1],
                                   (long long)a->ne[2], (long long)a->ne[3]);
        t = NODE(g, SLM_OP_SOFT_MAX, SLM_TYPE_F32, a->ne, a, mask);
    } else {
        t = NODE(g, SLM_OP_SOFT_MAX, SLM_TYPE_F32, a->ne, a);
    }
    if (!t)
        return NULL;
    t->fp[0] = scale;
    t->ip[0] = causal ? 1 : 0;
    t->ip[1] = n_past;
    return t;
}

slm_tensor_t *slm_attn(slm_graph_t *g, slm_tensor_t *q, slm_tensor_t *k, slm_tensor_t *v,
                       slm_tensor_t *mask, float scale)
{
    if (!USABLE(g, "attn", q, k, v, mask) || !need_type(g, "attn", q, SLM_TYPE_F32) ||
        !need_type(g, "attn", mask, SLM_TYPE_F32))
        return NULL;
    if (!is_float_type(k->type) || v->type != k->type)
        return slm__graph_fail(g, SLM_E_INVALID, "attn: K and V must share one float type "
                               "(K is %s, V %s)", slm_type_name(k->type),
                               slm_type_name(v->type));
    int64_t D = q->ne[0], H = q->ne[1], N = q->ne[2], C = k->ne[1], Hk = k->ne[2];
    if (q->ne[3] != 1 || k->ne[3] != 1 || k->ne[0] != D || Hk <= 0 || H % Hk ||
        v->ne[0] != D || v->ne[1] != C || v->ne[2] != Hk || v->ne[3] != 1 ||
        mask->ne[0] != C || mask->ne[1] < N || mask->ne[2] != 1 || mask->ne[3] != 1)
        return slm__graph_fail(g, SLM_E_INVALID, "attn: q [D,H,N] = [%lld,%lld,%lld] needs K "
                               "and V [D,C,Hk] with Hk dividing H and a mask [C, >= N]; got "
                               "K [%lld,%lld,%lld], V [%lld,%lld,%lld], mask [%lld,%lld]",
                               (long long)D, (long long)H, (long long)N, (long long)k->ne[0],
                               (long long)C, (long long)Hk, (long long)v->ne[0],
                               (long long)v->ne[1], (long long)v->ne[2],
                               (long long)mask->ne[0], (long long)mask->ne[1]);
    slm_tensor_t *t = NODE(g, SLM_OP_ATTN, SLM_TYPE_F32, q->ne, q, k, v, mask);
    if (t)
        t->fp[0] = scale;
    return t;
}

slm_tensor_t *slm_silu(slm_graph_t *g, slm_tensor_t *a)
{
    return unary_f32(g, SLM_OP_SILU, a);
}

slm_tensor_t *slm_gelu(slm_graph_t *g, slm_tensor_t *a)
{
    return unary_f32(g, SLM_OP_GELU, a);
}

slm_tensor_t *slm_ln(slm_graph_t *g, slm_tensor_t *a)
{
    return unary_f32(g, SLM_OP_LOG, a);
}

slm_tensor_t *slm_swiglu(slm_graph_t *g, slm_tensor_t *gate, slm_tensor_t *up)
{
    if (!USABLE(g, "swiglu", gate, up) || !need_type(g, "swiglu", gate, SLM_TYPE_F32) ||
        !need_type(g, "swiglu", up, SLM_TYPE_F32) || !need_same_shape(g, "swiglu", gate, up))
        return NULL;
    return NODE(g, SLM_OP_SWIGLU, SLM_TYPE_F32, gate->ne, gate, up);
}

slm_tensor_t *slm_cpy(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *dst)
{
    if (!USABLE(g, "cpy", a, dst))
        return NULL;
    if (!is_float_type(a->type) || !is_float_type(dst->type))
        return slm__graph_fail(g, SLM_E_INVALID, "cpy: %s to %s is not supported (f32, f16, "
                               "bf16 only)", slm_type_name(a->type), slm_type_name(dst->type));
    if (slm_tensor_nelements(a) != slm_tensor_nelements(dst))
        return slm__graph_fail(g, SLM_E_INVALID, "cpy: %lld elements into %lld",
                               (long long)slm_tensor_nelements(a),
                               (long long)slm_tensor_nelements(dst));
    /* The result is dst's storage seen after the copy; dst stays an operand so the
     * copy is ordered after everything that produces dst. */
    slm_tensor_t *t = slm__tensor_view(g, dst, dst->ne, dst->nb, 0);
    if (!t)
        return NULL;
    t->view_kind = SLM__VIEW_INPLACE;
    t->op = SLM_OP_CPY;
    t->src[0] = a;
    t->src[1] = dst;
    t->n_src = 2;
    t->n_src_node = 1;
    return t;
}

slm_tensor_t *slm_cast(slm_graph_t *g, slm_tensor_t *a, slm_type_t type)
{
    if (!USABLE(g, "cast", a))
        return NULL;
    if (!is_float_type(a->type) || !is_float_type(type))
        return slm__graph_fail(g, SLM_E_INVALID, "cast: %s to %s is not supported (f32, f16, "
                               "bf16 only)", slm_type_name(a->type), slm_type_name(type));
    slm_tensor_t *t = NODE(g, SLM_OP_CPY, type, a->ne, a);
    if (t)
        t->n_src_node = 1;
    return t;
}

slm_tensor_t *slm_cont(slm_graph_t *g, slm_tensor_t *a)
{
    if (!USABLE(g, "cont", a))
        return NULL;
    return slm_cast(g, a, a->type);
}

slm_tensor_t *slm_cross_entropy(slm_graph_t *g, slm_tensor_t *logits, slm_tensor_t *targets)
{
    if (!USABLE(g, "cross_entropy", logits, targets) ||
        !need_type(g, "cross_entropy", logits, SLM_TYPE_F32) ||
        !need_type(g, "cross_entropy", targets, SLM_TYPE_F32) ||
        !need_same_shape(g, "cross_entropy", logits, targets))
        return NULL;
    if (logits->ne[2] != 1 || logits->ne[3] != 1)
        return slm__graph_fail(g, SLM_E_INVALID, "cross_entropy: logits must be 2-D [V,N]");
    const int64_t ne[SLM_MAX_DIMS] = {1, 1, 1, 1};
    return NODE(g, SLM_OP_CROSS_ENTROPY, SLM_TYPE_F32, ne, logits, targets);
}

slm_tensor_t *slm_sum(slm_graph_t *g, slm_tensor_t *a)
{
    if (!USABLE(g, "sum", a) || !need_type(g, "sum", a, SLM_TYPE_F32))
        return NULL;
    const int64_t ne[SLM_MAX_DIMS] = {1, 1, 1, 1};
    return NODE(g, SLM_OP_SUM, SLM_TYPE_F32, ne, a);
}

slm_tensor_t *slm_repeat_back(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *shape_like)
{
    if (!USABLE(g, "repeat_back", a, shape_like) || !need_type(g, "repeat_back", a, SLM_TYPE_F32))
        return NULL;
    for (int i = 0; i < SLM_MAX_DIMS; i++)
        if (a->ne[i] % shape_like->ne[i])
            return slm__graph_fail(g, SLM_E_INVALID, "repeat_back: dim %d of '%s' (%lld) does "
                                   "not divide %lld", i, shape_like->name,
                                   (long long)shape_like->ne[i], (long long)a->ne[i]);
    /* shape_like only lends its shape: it is not an operand of the node. */
    return NODE(g, SLM_OP_REPEAT_BACK, SLM_TYPE_F32, shape_like->ne, a);
}

slm_tensor_t *slm__acc(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *b, int64_t nb1, int64_t nb2,
                       int64_t nb3, int64_t offset)
{
    if (!USABLE(g, "acc", a, b) || !need_type(g, "acc", a, SLM_TYPE_F32) ||
        !need_type(g, "acc", b, SLM_TYPE_F32))
        return NULL;
    slm_tensor_t probe = {.type = SLM_TYPE_F32, .ne = {b->ne[0], b->ne[1], b->ne[2], b->ne[3]},
                          .nb = {4, nb1, nb2, nb3}};
    size_t end = slm__tensor_span(&probe);
    if (offset < 0 || nb1 < 0 || nb2 < 0 || nb3 < 0 ||
        (size_t)offset + end > slm_tensor_nbytes(a))
        return slm__graph_fail(g, SLM_E_INVALID, "acc: view does not fit in '%s'", a->name);
    slm_tensor_t *t = NODE(g, SLM_OP_ACC, SLM_TYPE_F32, a->ne, a, b);
    if (!t)
        return NULL;
    t->ip[0] = nb1;
    t->ip[1] = nb2;
    t->ip[2] = nb3;
    t->ip[3] = offset;
    return t;
}
