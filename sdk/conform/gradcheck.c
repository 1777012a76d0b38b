/* Backward ops against central finite differences of the same backend's forward
 * op: L(x) = sum(w * forward(x)) for a fixed random w, dL/dx from the backward op. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/types.h>

#include "internal.h"
#include "reference.h"

#define F32 SLM_TYPE_F32
#define I32 SLM_TYPE_I32
#define GC_STEP 1e-3
#define GC_TOL 1e-2

/* Where each operand of the backward node comes from. */
enum { B_NONE = 0, B_FWD, B_FWD_T, B_Y, B_W };

/* One operand of a gradient case (ne[0] == 0: none): its type and shape, how it is
 * filled when not uniform in [-1, 1], and for a backward operand where its values
 * come from (B_FWD*: forward operand `from_idx`). */
typedef struct gc_operand {
    int type;
    int64_t ne[3];
    int fill;
    double lo, hi;
    int64_t range;
    int from, from_idx;
} gc_operand_t;

/* dL/d(operand `wrt` of the forward op) from the backward op, whose output has that
 * operand's shape. `variant` tells apart the random data of cases of one op. A
 * `typed` row runs once per weight type the caller lists: the forward's src0 and
 * every backward operand bound to it take that type, and dimension 0 (0 in the
 * table) becomes a whole number of its blocks. */
typedef struct gc_table_row {
    const char *label;
    int fwd_op, bwd_op, wrt, variant;
    bool typed;
    gc_operand_t fwd[SLM_MAX_SRC], bwd[SLM_MAX_SRC];
    int64_t fwd_dst[3], bwd_dst[3];
    int64_t fwd_ip[2], bwd_ip[2];
    float fwd_fp[2], bwd_fp[2];
} gc_table_row_t;

#define SHAPE(t, a, b, c) .type = t, .ne = {a, b, c}
#define FROM(kind, idx) .from = kind, .from_idx = idx
/* f(x) with backward op(x, dy); rms_norm reads its epsilon from fp[0], the rest ignore it. */
#define UNARY(label, fop, bop)                                                            \
    {label, fop, bop, 0, 0, .fwd = {{SHAPE(F32, 5, 3, 1), .lo = -3.0, .hi = 3.0}},        \
     .fwd_dst = {5, 3, 1}, .fwd_fp = {1e-5f},                                             \
     .bwd = {{SHAPE(F32, 5, 3, 1), FROM(B_FWD, 0)}, {SHAPE(F32, 5, 3, 1), FROM(B_W, 0)}}, \
     .bwd_dst = {5, 3, 1}, .bwd_fp = {1e-5f}}
/* ip: causal (the variant), n_past 2; fp: scale. The additive mask is optional. */
#define SOFT_MAX_MASK {SHAPE(F32, 7, 3, 1), .fill = FILL_MASK}
#define SOFT_MAX(label, variant, mask, scale)                                              \
    {label, SLM_OP_SOFT_MAX, SLM_OP_SOFT_MAX_BACK, 0, variant,                             \
     .fwd = {{SHAPE(F32, 7, 3, 1)}, mask}, .fwd_dst = {7, 3, 1}, .fwd_ip = {variant, 2},    \
     .fwd_fp = {scale},                                                                    \
     .bwd = {{SHAPE(F32, 7, 3, 1), FROM(B_Y, 0)}, {SHAPE(F32, 7, 3, 1), FROM(B_W, 0)}},    \
     .bwd_dst = {7, 3, 1}, .bwd_fp = {scale}}
/* ip: dims rotated, mode; fp: freq_base, freq_scale; positions below 20. */
#define ROPE(label, variant, mode)                                                         \
    {label, SLM_OP_ROPE, SLM_OP_ROPE_BACK, 0, variant,                                     \
     .fwd = {{SHAPE(F32, 6, 2, 3)}, {SHAPE(I32, 3, 1, 1), .fill = FILL_IDS, .range = 20}}, \
     .fwd_dst = {6, 2, 3}, .fwd_ip = {4, mode}, .fwd_fp = {10000.0f, 1.0f},               \
     .bwd = {{SHAPE(F32, 6, 2, 3), FROM(B_W, 0)}, {SHAPE(I32, 3, 1, 1), FROM(B_FWD, 1)}}, \
     .bwd_dst = {6, 2, 3}, .bwd_ip = {4, mode}, .bwd_fp = {10000.0f, 1.0f}}

static const gc_table_row_t gc_table[] = {
    UNARY("silu", SLM_OP_SILU, SLM_OP_SILU_BACK),
    UNARY("gelu", SLM_OP_GELU, SLM_OP_GELU_BACK),
    /* x in [0.2, 3]: the finite differences stay clear of the clamp at 0 */
    {"log", SLM_OP_LOG, SLM_OP_LOG_BACK, 0, 0,
     .fwd = {{SHAPE(F32, 5, 3, 1), .lo = 0.2, .hi = 3.0}}, .fwd_dst = {5, 3, 1},
     .bwd = {{SHAPE(F32, 5, 3, 1), FROM(B_FWD, 0)}, {SHAPE(F32, 5, 3, 1), FROM(B_W, 0)}},
     .bwd_dst = {5, 3, 1}},
    UNARY("rms_norm", SLM_OP_RMS_NORM, SLM_OP_RMS_NORM_BACK),
    SOFT_MAX("plain", 0, {0}, 1.0f),
    SOFT_MAX("mask, causal", 1, SOFT_MAX_MASK, 0.5f),
    ROPE("normal", 0, SLM_ROPE_NORMAL),
    ROPE("neox", 1, SLM_ROPE_NEOX),
    {"cross_entropy", SLM_OP_CROSS_ENTROPY, SLM_OP_CROSS_ENTROPY_BACK, 0, 0,
     .fwd = {{SHAPE(F32, 5, 3, 1), .lo = -2.0, .hi = 2.0},
             {SHAPE(F32, 5, 3, 1), .fill = FILL_PROB}},
     .fwd_dst = {1, 1, 1},
     .bwd = {{SHAPE(F32, 5, 3, 1), FROM(B_FWD, 0)}, {SHAPE(F32, 5, 3, 1), FROM(B_FWD, 1)},
             {SHAPE(F32, 1, 1, 1), FROM(B_W, 0)}},
     .bwd_dst = {5, 3, 1}},
    /* 12 ids over 3 rows: repeats exercise the scatter-add. */
    {"get_rows", SLM_OP_GET_ROWS, SLM_OP_GET_ROWS_BACK, 0, 0,
     .fwd = {{SHAPE(F32, 4, 3, 1)}, {SHAPE(I32, 6, 2, 1), .fill = FILL_IDS, .range = 3}},
     .fwd_dst = {4, 6, 2},
     .bwd = {{SHAPE(F32, 4, 6, 2), FROM(B_W, 0)}, {SHAPE(I32, 6, 2, 1), FROM(B_FWD, 1)}},
     .bwd_dst = {4, 3, 1}},
    {"add broadcast", SLM_OP_ADD, SLM_OP_REPEAT_BACK, 1, 0,
     .fwd = {{SHAPE(F32, 7, 6, 3)}, {SHAPE(F32, 7, 1, 3)}}, .fwd_dst = {7, 6, 3},
     .bwd = {{SHAPE(F32, 7, 6, 3), FROM(B_W, 0)}}, .bwd_dst = {7, 1, 3}},
    /* dA of dst = A^T B: OUT_PROD(B, dY), batches of B summed onto a broadcast A. */
    {"mul_mat dA", SLM_OP_MUL_MAT, SLM_OP_OUT_PROD, 0, 0,
     .fwd = {{SHAPE(F32, 6, 4, 1)}, {SHAPE(F32, 6, 3, 2)}}, .fwd_dst = {4, 3, 2},
     .bwd = {{SHAPE(F32, 6, 3, 2), FROM(B_FWD, 1)}, {SHAPE(F32, 4, 3, 2), FROM(B_W, 0)}},
     .bwd_dst = {6, 4, 1}},
    /* dB of dst = A^T B: MUL_MAT(cont(A^T), dY). */
    {"mul_mat dB", SLM_OP_MUL_MAT, SLM_OP_MUL_MAT, 1, 0,
     .fwd = {{SHAPE(F32, 6, 4, 1)}, {SHAPE(F32, 6, 3, 2)}}, .fwd_dst = {4, 3, 2},
     .bwd = {{SHAPE(F32, 4, 6, 1), FROM(B_FWD_T, 0)}, {SHAPE(F32, 4, 3, 2), FROM(B_W, 0)}},
     .bwd_dst = {6, 3, 2}},
    /* dx of y = W x with W frozen in any weight type (LoRA on a quantized base):
     * MUL_MAT_T(W, dY) reads W as stored; W broadcast over x's batch. */
    {"mul_mat dB, frozen A", SLM_OP_MUL_MAT, SLM_OP_MUL_MAT_T, 1, 0, true,
     .fwd = {{SHAPE(F32, 0, 3, 1)}, {SHAPE(F32, 0, 4, 2)}}, .fwd_dst = {3, 4, 2},
     .bwd = {{SHAPE(F32, 0, 3, 1), FROM(B_FWD, 0)}, {SHAPE(F32, 3, 4, 2), FROM(B_W, 0)}},
     .bwd_dst = {0, 4, 2}},
};

typedef struct grad_spec {
    const char *label;
    conform_case_t fwd;
    int wrt;                  /* forward operand differentiated */
    conform_case_t bwd;       /* dst shaped like fwd.src[wrt] */
    int bind[SLM_MAX_SRC];    /* B_* per backward operand */
    int bind_idx[SLM_MAX_SRC];
    /* Differences of the reference's forward instead of the backend's: for weights
     * that are not f32, whose product a backend may compute on rounded activations
     * (8-bit blocks, f16), a function that is piecewise constant at the step size. */
    bool ref_forward;
} grad_spec_t;

/* A typed row's dimension 0: whole blocks of the weight type, 16 for float types. */
static int64_t typed_ne0(int type)
{
    if (!slm_conform__is_block_type(type))
        return 16;
    int64_t block = (int64_t)slm_type_get_traits(type)->block;
    return block >= 64 ? block : 64;
}

/* One operand's type and dim 0: the row's, or the weight type's for typed rows. */
static void operand_of(const gc_operand_t *o, bool typed, bool weight, int w_type, int *type,
                       int64_t *ne0)
{
    *type = typed && weight ? w_type : o->type;
    *ne0 = typed && o->ne[0] == 0 ? typed_ne0(w_type) : o->ne[0];
}

static void case_from(conform_case_t *c, int op, const gc_operand_t *src, const int64_t *dst,
                      const int64_t *ip, const float *fp, uint64_t seed, const bool *weight,
                      int w_type)
{
    memset(c, 0, sizeof *c);
    c->op = op;
    c->dst_alias = -1;
    c->seed = seed;
    bool typed = weight != NULL;
    for (int i = 0; i < SLM_MAX_SRC && (src[i].ne[0] || src[i].ne[1]); i++) {
        conform_tensor_t *t = &c->src[i];
        int type;
        int64_t ne0;
        operand_of(&src[i], typed, typed && weight[i], w_type, &type, &ne0);
        slm_conform__layout(t, type, ne0, src[i].ne[1], src[i].ne[2], 1, LAYOUT_CONTIG);
        t->fill = src[i].fill;
        t->range = src[i].range;
        if (src[i].lo != 0 || src[i].hi != 0) {
            t->lo = src[i].lo;
            t->hi = src[i].hi;
        }
        c->n_src = i + 1;
    }
    int64_t dne0 = typed && dst[0] == 0 ? typed_ne0(w_type) : dst[0];
    slm_conform__layout(&c->dst, F32, dne0, dst[1], dst[2], 1, LAYOUT_CONTIG);
    for (int k = 0; k < 2; k++) {
        c->ip[k] = ip[k];
        c->fp[k] = fp[k];
    }
}

/* The spec of a row; w_type is the weight type of a typed row (ignored otherwise). */
static void spec_from(const gc_table_row_t *row, int w_type, grad_spec_t *s)
{
    uint64_t seed = 0x67ad0000ull + (uint64_t)row->bwd_op * 131 + (uint64_t)w_type * 7919;
    bool fwd_w[SLM_MAX_SRC] = {true}, bwd_w[SLM_MAX_SRC] = {false};
    memset(s, 0, sizeof *s);
    s->label = row->label;
    s->wrt = row->wrt;
    for (int k = 0; k < SLM_MAX_SRC; k++) {
        s->bind[k] = row->bwd[k].from;
        s->bind_idx[k] = row->bwd[k].from_idx;
        bwd_w[k] = s->bind[k] == B_FWD && s->bind_idx[k] == 0;
    }
    case_from(&s->fwd, row->fwd_op, row->fwd, row->fwd_dst, row->fwd_ip, row->fwd_fp,
              seed + (uint64_t)row->variant, row->typed ? fwd_w : NULL, w_type);
    case_from(&s->bwd, row->bwd_op, row->bwd, row->bwd_dst, row->bwd_ip, row->bwd_fp, seed + 1,
              row->typed ? bwd_w : NULL, w_type);
    s->ref_forward = row->typed && w_type != F32;
}

bool slm_conform__has_gradcheck(int op, int *forward_op)
{
    for (size_t i = 0; i < sizeof gc_table / sizeof gc_table[0]; i++)
        if (gc_table[i].bwd_op == op) {
            *forward_op = gc_table[i].fwd_op;
            return true;
        }
    return false;
}

static slm_tensor_desc_t desc_in(const conform_tensor_t *t, void *buf)
{
    slm_tensor_desc_t d = {.type = t->type};
    memcpy(d.ne, t->ne, sizeof d.ne);
    memcpy(d.nb, t->nb, sizeof d.nb);
    d.data = (char *)buf + t->offset;
    return d;
}

/* Copy from (shape of `to`, or its transpose) by logical index. */
static void copy_values(const conform_tensor_t *tt, void *to, const conform_tensor_t *ft,
                        void *from, bool transpose)
{
    slm_tensor_desc_t dt = desc_in(tt, to), df = desc_in(ft, from);
    int64_t i[4];
    CONFORM_FOR4(tt->ne, i) {
        int64_t j[4] = {transpose ? i[1] : i[0], transpose ? i[0] : i[1], i[2], i[3]};
        slm_conform_ref_store(&dt, i, slm_conform_ref_load(&df, j));
    }
}

static double loss_of(const grad_spec_t *s, const conform_host_t *fh, const void *w)
{
    const conform_tensor_t *t = &s->fwd.dst;
    slm_tensor_desc_t dy = desc_in(t, fh->buf[CONFORM_DST]), dw = desc_in(t, (void *)w);
    int64_t i[4];
    double l = 0;
    CONFORM_FOR4(t->ne, i)
        l += slm_conform_ref_load(&dy, i) * slm_conform_ref_load(&dw, i);
    return l;
}

typedef struct gc_run {
    const grad_spec_t *s;
    conform_host_t fh, bh;
    conform_dev_t fd, bd;
    conform_quant_t q;        /* the forward's block-type operands, dequantized */
    void *w;
    bool fd_ok, bd_ok;
} gc_run_t;

static void gc_free(gc_run_t *r)
{
    if (r->fd_ok)
        slm_conform__dev_free(&r->fd);
    if (r->bd_ok)
        slm_conform__dev_free(&r->bd);
    slm_conform__host_free(&r->fh);
    slm_conform__host_free(&r->bh);
    slm_conform__quant_free(&r->q);
    free(r->w);
}

/* One forward run into r->fh's dst: on the device, or by the reference. */
static int gc_forward(gc_run_t *r)
{
    if (!r->s->ref_forward)
        return slm_conform__dev_run(&r->fd, &r->s->fwd, &r->fh);
    slm_node_t node;
    slm_conform__host_node(&r->s->fwd, &r->fh, &node);
    slm_conform__quant_node(&r->s->fwd, &r->q, &node);
    return slm_conform_ref_compute(&node);
}

/* The analytic gradient: the backward node fed from the forward run. */
static int gc_backward(gc_run_t *r, const slm_backend_iface_t *be, void *dev, char *why, size_t cap)
{
    const grad_spec_t *s = r->s;
    int rc = slm_conform__host_new(&s->bwd, &r->bh);
    if (rc < 0)
        return rc;
    for (int k = 0; k < s->bwd.n_src; k++) {
        const conform_tensor_t *to = &s->bwd.src[k];
        const conform_tensor_t *from = &s->fwd.src[s->bind_idx[k]];
        if (s->bind[k] == B_FWD && slm_conform__is_block_type(to->type)) {
            /* Blocks have no elements to copy one by one; same type and shape. */
            if (from->type != to->type || from->bytes != to->bytes)
                return SLM_E_INVALID;
            memcpy(r->bh.buf[k], r->fh.buf[s->bind_idx[k]], to->bytes);
            continue;
        }
        switch (s->bind[k]) {
        case B_FWD:
        case B_FWD_T:
            copy_values(to, r->bh.buf[k], &s->fwd.src[s->bind_idx[k]], r->fh.buf[s->bind_idx[k]],
                        s->bind[k] == B_FWD_T);
            break;
        case B_Y:
            copy_values(to, r->bh.buf[k], &s->fwd.dst, r->fh.buf[CONFORM_DST], false);
            break;
        case B_W:
            copy_values(to, r->bh.buf[k], &s->fwd.dst, r->w, false);
            break;
        default:
            break;
        }
    }
    if ((rc = slm_conform__dev_new(be, dev, &s->bwd, &r->bh, &r->bd)) < 0)
        return rc;
    r->bd_ok = true;
    if (!be->supports_node(dev, &r->bd.node)) {
        snprintf(why, cap, "supports_node refused the backward node");
        return SLM_E_UNSUPPORTED;
    }
    return slm_conform__dev_run(&r->bd, &s->bwd, &r->bh);
}

static int gc_setup(gc_run_t *r, slm_registry_t *reg, const slm_backend_iface_t *be, void *dev,
                    char *why, size_t cap)
{
    const grad_spec_t *s = r->s;
    slm_error_t err;
    slm_error_init(&err);
    int rc = slm_conform__host_new(&s->fwd, &r->fh);
    if (rc < 0)
        return rc;
    if ((rc = slm_conform__quant_fill(reg, &s->fwd, &r->fh, &r->q, &err)) < 0) {
        snprintf(why, cap, "quantizing the weights failed: %.90s", err.code ? err.message : "");
        return rc;
    }
    r->w = malloc(s->fwd.dst.bytes);
    if (!r->w)
        return SLM_E_NOMEM;
    uint64_t rng = s->fwd.seed ^ 0x77;
    slm_tensor_desc_t dw = desc_in(&s->fwd.dst, r->w);
    int64_t i[4];
    CONFORM_FOR4(s->fwd.dst.ne, i)
        slm_conform_ref_store(&dw, i, slm_conform__uniform(&rng, 0.5, 1.5) *
                                          (slm_conform__rand(&rng) & 1 ? 1 : -1));
    if (!s->ref_forward) {
        if ((rc = slm_conform__dev_new(be, dev, &s->fwd, &r->fh, &r->fd)) < 0)
            return rc;
        r->fd_ok = true;
        if (!be->supports_node(dev, &r->fd.node)) {
            snprintf(why, cap, "supports_node refused the forward node");
            return SLM_E_UNSUPPORTED;
        }
    }
    if ((rc = gc_forward(r)) < 0)
        return rc;
    return gc_backward(r, be, dev, why, cap);
}

/* Central differences over every element of the differentiated operand. */
static int gc_compare(gc_run_t *r, slm_conform_result_t *res)
{
    const grad_spec_t *s = r->s;
    const conform_tensor_t *xt = &s->fwd.src[s->wrt];
    slm_tensor_desc_t x = desc_in(xt, r->fh.buf[s->wrt]);
    slm_tensor_desc_t g = desc_in(&s->bwd.dst, r->bh.buf[CONFORM_DST]);
    int64_t i[4], worst[4] = {0};
    double scale = 1e-3, err = 0, wg = 0, wf = 0;
    int64_t n = xt->ne[0] * xt->ne[1] * xt->ne[2] * xt->ne[3];
    double *fd = calloc((size_t)n, sizeof *fd);
    if (!fd)
        return SLM_E_NOMEM;
    size_t k = 0;
    CONFORM_FOR4(xt->ne, i) {
        double x0 = slm_conform_ref_load(&x, i), lp, lm, xp, xm;
        slm_conform_ref_store(&x, i, x0 + GC_STEP);
        xp = slm_conform_ref_load(&x, i);
        int rc = gc_forward(r);
        lp = loss_of(s, &r->fh, r->w);
        slm_conform_ref_store(&x, i, x0 - GC_STEP);
        xm = slm_conform_ref_load(&x, i);
        if (rc == 0)
            rc = gc_forward(r);
        lm = loss_of(s, &r->fh, r->w);
        slm_conform_ref_store(&x, i, x0);
        if (rc < 0) {
            free(fd);
            return rc;
        }
        fd[k] = (lp - lm) / (xp - xm);
        scale = fmax(scale, fmax(fabs(fd[k]), fabs(slm_conform_ref_load(&g, i))));
        k++;
    }
    k = 0;
    CONFORM_FOR4(xt->ne, i) {
        double gv = slm_conform_ref_load(&g, i);
        double e = isfinite(gv) ? fabs(gv - fd[k]) / scale : INFINITY;
        if (e > err || k == 0) {
            err = e;
            memcpy(worst, i, sizeof worst);
            wg = gv;
            wf = fd[k];
        }
        k++;
    }
    free(fd);
    res->max_err = err;
    res->status = err <= res->tol ? SLM_CONFORM_PASS : SLM_CONFORM_FAIL;
    snprintf(res->detail, sizeof res->detail,
             "%s: d/ds%d[%lld,%lld,%lld,%lld] backward %.7g, finite difference %.7g (scale %.4g)",
             s->label, s->wrt, (long long)worst[0], (long long)worst[1], (long long)worst[2],
             (long long)worst[3], wg, wf, scale);
    return 0;
}

static int run_spec(slm_registry_t *reg, const slm_backend_iface_t *be, void *dev,
                    const grad_spec_t *s, slm_conform_result_t *res)
{
    gc_run_t r = {.s = s};
    char why[128] = "";
    memset(res, 0, sizeof *res);
    snprintf(res->check, sizeof res->check, "gradcheck");
    slm_conform__describe(&s->bwd, res);
    res->tol = GC_TOL;
    res->status = SLM_CONFORM_FAIL;
    int rc = gc_setup(&r, reg, be, dev, why, sizeof why);
    if (rc == 0)
        rc = gc_compare(&r, res);
    if (rc < 0) {
        res->max_err = INFINITY;
        res->status = rc == SLM_E_UNSUPPORTED ? SLM_CONFORM_REFUSED : SLM_CONFORM_FAIL;
        snprintf(res->detail, sizeof res->detail, "%s: %s", s->label,
                 why[0] ? why : slm_strerror(rc));
    }
    gc_free(&r);
    return 0;
}

int slm_conform__gradcheck(slm_registry_t *reg, const slm_backend_iface_t *be, void *dev,
                           int op, const int *w_types, size_t n_w_types, conform_add_fn add,
                           void *user)
{
    for (size_t i = 0; i < sizeof gc_table / sizeof gc_table[0]; i++) {
        const gc_table_row_t *row = &gc_table[i];
        if (row->bwd_op != op)
            continue;
        size_t n = row->typed ? n_w_types : 1;
        for (size_t t = 0; t < n; t++) {
            grad_spec_t spec;
            slm_conform_result_t res;
            spec_from(row, row->typed ? w_types[t] : F32, &spec);
            run_spec(reg, be, dev, &spec, &res);
            int rc = add(user, &res);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}
