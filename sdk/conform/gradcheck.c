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

typedef struct grad_spec {
    const char *label;
    conform_case_t fwd;
    int wrt;                  /* forward operand differentiated */
    conform_case_t bwd;       /* dst shaped like fwd.src[wrt] */
    int bind[SLM_MAX_SRC];    /* B_* per backward operand */
    int bind_idx[SLM_MAX_SRC];
} grad_spec_t;

static conform_tensor_t *gsrc(conform_case_t *c, int i, int type, int64_t ne0, int64_t ne1,
                              int64_t ne2)
{
    slm_conform__layout(&c->src[i], type, ne0, ne1, ne2, 1, LAYOUT_CONTIG);
    if (c->n_src <= i)
        c->n_src = i + 1;
    return &c->src[i];
}

static void gdst(conform_case_t *c, int64_t ne0, int64_t ne1, int64_t ne2)
{
    slm_conform__layout(&c->dst, F32, ne0, ne1, ne2, 1, LAYOUT_CONTIG);
}

static void spec_init(grad_spec_t *s, const char *label, int fwd_op, int bwd_op, int wrt)
{
    memset(s, 0, sizeof *s);
    s->label = label;
    s->fwd.op = fwd_op;
    s->bwd.op = bwd_op;
    s->fwd.dst_alias = s->bwd.dst_alias = -1;
    s->fwd.seed = 0x67ad0000ull + (uint64_t)bwd_op * 131;
    s->bwd.seed = s->fwd.seed + 1;
    s->wrt = wrt;
}

static void bind(grad_spec_t *s, int k, int kind, int idx)
{
    s->bind[k] = kind;
    s->bind_idx[k] = idx;
}

/* Unary forward op f(x) with backward op(x, dy). */
static size_t specs_unary(int op, int fwd_op, grad_spec_t *out)
{
    grad_spec_t *s = &out[0];
    spec_init(s, slm_op_name(fwd_op), fwd_op, op, 0);
    conform_tensor_t *x = gsrc(&s->fwd, 0, F32, 5, 3, 1);
    x->lo = -3.0;
    x->hi = 3.0;
    gdst(&s->fwd, 5, 3, 1);
    s->fwd.fp[0] = 1e-5f;
    s->bwd.fp[0] = 1e-5f;
    gsrc(&s->bwd, 0, F32, 5, 3, 1);
    gsrc(&s->bwd, 1, F32, 5, 3, 1);
    gdst(&s->bwd, 5, 3, 1);
    bind(s, 0, B_FWD, 0);
    bind(s, 1, B_W, 0);
    return 1;
}

static size_t specs_soft_max(grad_spec_t *out)
{
    for (int v = 0; v < 2; v++) {
        grad_spec_t *s = &out[v];
        spec_init(s, v ? "mask, causal" : "plain", SLM_OP_SOFT_MAX, SLM_OP_SOFT_MAX_BACK, 0);
        s->fwd.seed += (uint64_t)v;
        gsrc(&s->fwd, 0, F32, 7, 3, 1);
        if (v)
            gsrc(&s->fwd, 1, F32, 7, 3, 1)->fill = FILL_MASK;
        gdst(&s->fwd, 7, 3, 1);
        s->fwd.fp[0] = s->bwd.fp[0] = v ? 0.5f : 1.0f;
        s->fwd.ip[0] = v;
        s->fwd.ip[1] = 2;
        gsrc(&s->bwd, 0, F32, 7, 3, 1);
        gsrc(&s->bwd, 1, F32, 7, 3, 1);
        gdst(&s->bwd, 7, 3, 1);
        bind(s, 0, B_Y, 0);
        bind(s, 1, B_W, 0);
    }
    return 2;
}

static size_t specs_rope(grad_spec_t *out)
{
    for (int v = 0; v < 2; v++) {
        grad_spec_t *s = &out[v];
        spec_init(s, v ? "neox" : "normal", SLM_OP_ROPE, SLM_OP_ROPE_BACK, 0);
        s->fwd.seed += (uint64_t)v;
        gsrc(&s->fwd, 0, F32, 6, 2, 3);
        conform_tensor_t *pos = gsrc(&s->fwd, 1, I32, 3, 1, 1);
        pos->fill = FILL_IDS;
        pos->range = 20;
        gdst(&s->fwd, 6, 2, 3);
        for (conform_case_t *c = &s->fwd; c; c = c == &s->fwd ? &s->bwd : NULL) {
            c->ip[0] = 4;
            c->ip[1] = v ? SLM_ROPE_NEOX : SLM_ROPE_NORMAL;
            c->fp[0] = 10000.0f;
            c->fp[1] = 1.0f;
        }
        gsrc(&s->bwd, 0, F32, 6, 2, 3);
        gsrc(&s->bwd, 1, I32, 3, 1, 1);
        gdst(&s->bwd, 6, 2, 3);
        bind(s, 0, B_W, 0);
        bind(s, 1, B_FWD, 1);
    }
    return 2;
}

static size_t specs_cross_entropy(grad_spec_t *out)
{
    grad_spec_t *s = &out[0];
    spec_init(s, "cross_entropy", SLM_OP_CROSS_ENTROPY, SLM_OP_CROSS_ENTROPY_BACK, 0);
    conform_tensor_t *l = gsrc(&s->fwd, 0, F32, 5, 3, 1);
    l->lo = -2.0;
    l->hi = 2.0;
    gsrc(&s->fwd, 1, F32, 5, 3, 1)->fill = FILL_PROB;
    gdst(&s->fwd, 1, 1, 1);
    gsrc(&s->bwd, 0, F32, 5, 3, 1);
    gsrc(&s->bwd, 1, F32, 5, 3, 1);
    gsrc(&s->bwd, 2, F32, 1, 1, 1);
    gdst(&s->bwd, 5, 3, 1);
    bind(s, 0, B_FWD, 0);
    bind(s, 1, B_FWD, 1);
    bind(s, 2, B_W, 0);
    return 1;
}

static size_t specs_get_rows_back(grad_spec_t *out)
{
    grad_spec_t *s = &out[0];
    spec_init(s, "get_rows", SLM_OP_GET_ROWS, SLM_OP_GET_ROWS_BACK, 0);
    gsrc(&s->fwd, 0, F32, 4, 3, 1);
    conform_tensor_t *ids = gsrc(&s->fwd, 1, I32, 6, 2, 1);
    ids->fill = FILL_IDS;   /* 12 ids over 3 rows: repeats exercise the scatter-add */
    ids->range = 3;
    gdst(&s->fwd, 4, 6, 2);
    gsrc(&s->bwd, 0, F32, 4, 6, 2);
    gsrc(&s->bwd, 1, I32, 6, 2, 1);
    gdst(&s->bwd, 4, 3, 1);
    bind(s, 0, B_W, 0);
    bind(s, 1, B_FWD, 1);
    return 1;
}

static size_t specs_repeat_back(grad_spec_t *out)
{
    grad_spec_t *s = &out[0];
    spec_init(s, "add broadcast", SLM_OP_ADD, SLM_OP_REPEAT_BACK, 1);
    gsrc(&s->fwd, 0, F32, 7, 6, 3);
    gsrc(&s->fwd, 1, F32, 7, 1, 3);
    gdst(&s->fwd, 7, 6, 3);
    gsrc(&s->bwd, 0, F32, 7, 6, 3);
    gdst(&s->bwd, 7, 1, 3);
    bind(s, 0, B_W, 0);
    return 1;
}

/* dA of dst = A^T B: OUT_PROD(B, dY), batches of B summed onto a broadcast A. */
static size_t specs_out_prod(grad_spec_t *out)
{
    grad_spec_t *s = &out[0];
    spec_init(s, "mul_mat dA", SLM_OP_MUL_MAT, SLM_OP_OUT_PROD, 0);
    gsrc(&s->fwd, 0, F32, 6, 4, 1);
    gsrc(&s->fwd, 1, F32, 6, 3, 2);
    gdst(&s->fwd, 4, 3, 2);
    gsrc(&s->bwd, 0, F32, 6, 3, 2);
    gsrc(&s->bwd, 1, F32, 4, 3, 2);
    gdst(&s->bwd, 6, 4, 1);
    bind(s, 0, B_FWD, 1);
    bind(s, 1, B_W, 0);
    return 1;
}

/* dB of dst = A^T B: MUL_MAT(cont(A^T), dY). */
static size_t specs_mul_mat(grad_spec_t *out)
{
    grad_spec_t *s = &out[0];
    spec_init(s, "mul_mat dB", SLM_OP_MUL_MAT, SLM_OP_MUL_MAT, 1);
    gsrc(&s->fwd, 0, F32, 6, 4, 1);
    gsrc(&s->fwd, 1, F32, 6, 3, 2);
    gdst(&s->fwd, 4, 3, 2);
    gsrc(&s->bwd, 0, F32, 4, 6, 1);
    gsrc(&s->bwd, 1, F32, 4, 3, 2);
    gdst(&s->bwd, 6, 3, 2);
    bind(s, 0, B_FWD_T, 0);
    bind(s, 1, B_W, 0);
    return 1;
}

static size_t specs_for(int op, grad_spec_t *out)
{
    switch (op) {
    case SLM_OP_SILU_BACK: return specs_unary(op, SLM_OP_SILU, out);
    case SLM_OP_GELU_BACK: return specs_unary(op, SLM_OP_GELU, out);
    case SLM_OP_RMS_NORM_BACK: return specs_unary(op, SLM_OP_RMS_NORM, out);
    case SLM_OP_SOFT_MAX_BACK: return specs_soft_max(out);
    case SLM_OP_ROPE_BACK: return specs_rope(out);
    case SLM_OP_CROSS_ENTROPY_BACK: return specs_cross_entropy(out);
    case SLM_OP_GET_ROWS_BACK: return specs_get_rows_back(out);
    case SLM_OP_REPEAT_BACK: return specs_repeat_back(out);
    case SLM_OP_OUT_PROD: return specs_out_prod(out);
    case SLM_OP_MUL_MAT: return specs_mul_mat(out);
    default: return 0;
    }
}

bool slm_conform__has_gradcheck(int op, int *forward_op)
{
    grad_spec_t s[2];
    if (specs_for(op, s) == 0)
        return false;
    *forward_op = s[0].fwd.op;
    return true;
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
    free(r->w);
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

static int gc_setup(gc_run_t *r, const slm_backend_iface_t *be, void *dev, char *why, size_t cap)
{
    const grad_spec_t *s = r->s;
    int rc = slm_conform__host_new(&s->fwd, &r->fh);
    if (rc < 0)
        return rc;
    r->w = malloc(s->fwd.dst.bytes);
    if (!r->w)
        return SLM_E_NOMEM;
    uint64_t rng = s->fwd.seed ^ 0x77;
    slm_tensor_desc_t dw = desc_in(&s->fwd.dst, r->w);
    int64_t i[4];
    CONFORM_FOR4(s->fwd.dst.ne, i)
        slm_conform_ref_store(&dw, i, slm_conform__uniform(&rng, 0.5, 1.5) *
                                          (slm_conform__rand(&rng) & 1 ? 1 : -1));
    if ((rc = slm_conform__dev_new(be, dev, &s->fwd, &r->fh, &r->fd)) < 0)
        return rc;
    r->fd_ok = true;
    if (!be->supports_node(dev, &r->fd.node)) {
        snprintf(why, cap, "supports_node refused the forward node");
        return SLM_E_UNSUPPORTED;
    }
    if ((rc = slm_conform__dev_run(&r->fd, &s->fwd, &r->fh)) < 0)
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
        int rc = slm_conform__dev_run(&r->fd, &s->fwd, &r->fh);
        lp = loss_of(s, &r->fh, r->w);
        slm_conform_ref_store(&x, i, x0 - GC_STEP);
        xm = slm_conform_ref_load(&x, i);
        if (rc == 0)
            rc = slm_conform__dev_run(&r->fd, &s->fwd, &r->fh);
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

static int run_spec(const slm_backend_iface_t *be, void *dev, const grad_spec_t *s,
                    slm_conform_result_t *res)
{
    gc_run_t r = {.s = s};
    char why[128] = "";
    memset(res, 0, sizeof *res);
    snprintf(res->check, sizeof res->check, "gradcheck");
    slm_conform__describe(&s->bwd, res);
    res->tol = GC_TOL;
    res->status = SLM_CONFORM_FAIL;
    int rc = gc_setup(&r, be, dev, why, sizeof why);
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

int slm_conform__gradcheck(const slm_backend_iface_t *be, void *dev, int op, conform_add_fn add,
                           void *user)
{
    grad_spec_t specs[2];
    size_t n = specs_for(op, specs);
    for (size_t i = 0; i < n; i++) {
        slm_conform_result_t res;
        run_spec(be, dev, &specs[i], &res);
        int rc = add(user, &res);
        if (rc < 0)
            return rc;
    }
    return 0;
}
