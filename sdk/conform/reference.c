/* Scalar reference of every op, written for obviousness rather than speed: one
 * loop nest per op over logical indices, strides applied on every access. */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/error.h>
#include <slmops/types.h>

#include "reference.h"

#define FOR4(ne, i)                                   \
    for (i[3] = 0; i[3] < (ne)[3]; i[3]++)            \
        for (i[2] = 0; i[2] < (ne)[2]; i[2]++)        \
            for (i[1] = 0; i[1] < (ne)[1]; i[1]++)    \
                for (i[0] = 0; i[0] < (ne)[0]; i[0]++)

size_t slm_conform_type_size(int type)
{
    switch (type) {
    case SLM_TYPE_F32:
    case SLM_TYPE_I32:
        return 4;
    case SLM_TYPE_F16:
    case SLM_TYPE_BF16:
        return 2;
    default:
        return 0;
    }
}

static const char *elem_ptr(const slm_tensor_desc_t *t, const int64_t i[4])
{
    return (const char *)t->data + i[0] * t->nb[0] + i[1] * t->nb[1] + i[2] * t->nb[2] +
           i[3] * t->nb[3];
}

double slm_conform_ref_load(const slm_tensor_desc_t *t, const int64_t i[4])
{
    const char *p = elem_ptr(t, i);
    float f;
    uint16_t h;
    int32_t v;
    switch (t->type) {
    case SLM_TYPE_F32:
        memcpy(&f, p, 4);
        return f;
    case SLM_TYPE_F16:
        memcpy(&h, p, 2);
        return slm_f16_to_f32(h);
    case SLM_TYPE_BF16:
        memcpy(&h, p, 2);
        return slm_bf16_to_f32(h);
    case SLM_TYPE_I32:
        memcpy(&v, p, 4);
        return v;
    default:
        return NAN;
    }
}

void slm_conform_ref_store(const slm_tensor_desc_t *t, const int64_t i[4], double v)
{
    char *p = (char *)elem_ptr(t, i);
    float f = (float)v;
    uint16_t h;
    int32_t iv;
    switch (t->type) {
    case SLM_TYPE_F32:
        memcpy(p, &f, 4);
        break;
    case SLM_TYPE_F16:
        h = slm_f32_to_f16(f);
        memcpy(p, &h, 2);
        break;
    case SLM_TYPE_BF16:
        h = slm_f32_to_bf16(f);
        memcpy(p, &h, 2);
        break;
    case SLM_TYPE_I32:
        iv = (int32_t)v;
        memcpy(p, &iv, 4);
        break;
    default:
        break;
    }
}

#define LD(t, ...) slm_conform_ref_load((t), (const int64_t[4]){__VA_ARGS__})
#define ST(t, v, ...) slm_conform_ref_store((t), (const int64_t[4]){__VA_ARGS__}, (v))

static int64_t nelements(const int64_t ne[4])
{
    return ne[0] * ne[1] * ne[2] * ne[3];
}

static bool same_shape(const slm_tensor_desc_t *a, const slm_tensor_desc_t *b)
{
    return memcmp(a->ne, b->ne, sizeof a->ne) == 0;
}

/* b broadcasts onto a (each dim of b divides a's). */
static bool broadcasts(const slm_tensor_desc_t *b, const slm_tensor_desc_t *a)
{
    for (int d = 0; d < 4; d++)
        if (b->ne[d] <= 0 || a->ne[d] % b->ne[d])
            return false;
    return true;
}

static double silu(double x)
{
    return x / (1.0 + exp(-x));
}

static double silu_grad(double x)
{
    double s = 1.0 / (1.0 + exp(-x));
    return s * (1.0 + x * (1.0 - s));
}

#define GELU_C 0.7978845608028654   /* sqrt(2/pi) */
#define GELU_A 0.044715

static double gelu(double x)
{
    return 0.5 * x * (1.0 + tanh(GELU_C * (x + GELU_A * x * x * x)));
}

static double gelu_grad(double x)
{
    double u = GELU_C * (x + GELU_A * x * x * x);
    double t = tanh(u);
    double du = GELU_C * (1.0 + 3.0 * GELU_A * x * x);
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
}

static int ref_get_rows(const slm_node_t *n)
{
    const slm_tensor_desc_t *tab = &n->src[0], *ids = &n->src[1], *d = &n->dst;
    int64_t i[4];
    FOR4(d->ne, i) {
        int64_t r = (int64_t)LD(ids, i[1], i[2], 0, 0);
        if (r < 0 || r >= tab->ne[1] || tab->ne[2] <= 0)
            return SLM_E_INVALID;
        ST(d, LD(tab, i[0], r, i[2] % tab->ne[2], 0), i[0], i[1], i[2], i[3]);
    }
    return 0;
}

static int ref_get_rows_back(const slm_node_t *n)
{
    const slm_tensor_desc_t *g = &n->src[0], *ids = &n->src[1], *d = &n->dst;
    int64_t i[4];
    double *acc = calloc((size_t)nelements(d->ne), sizeof *acc);
    if (!acc)
        return SLM_E_NOMEM;
    FOR4(g->ne, i) {
        int64_t r = (int64_t)LD(ids, i[1], i[2], 0, 0);
        if (r < 0 || r >= d->ne[1]) {
            free(acc);
            return SLM_E_INVALID;
        }
        acc[r * d->ne[0] + i[0]] += LD(g, i[0], i[1], i[2], i[3]);
    }
    FOR4(d->ne, i)
        ST(d, acc[((i[3] * d->ne[2] + i[2]) * d->ne[1] + i[1]) * d->ne[0] + i[0]], i[0], i[1], i[2], i[3]);
    free(acc);
    return 0;
}

static int ref_mul_mat(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    if (a->ne[0] != b->ne[0] || b->ne[2] % a->ne[2] || b->ne[3] % a->ne[3])
        return SLM_E_INVALID;
    int64_t r2 = b->ne[2] / a->ne[2], r3 = b->ne[3] / a->ne[3], i[4];
    FOR4(d->ne, i) {
        double s = 0;
        for (int64_t k = 0; k < a->ne[0]; k++)
            s += LD(a, k, i[0], i[2] / r2, i[3] / r3) * LD(b, k, i[1], i[2], i[3]);
        ST(d, s, i[0], i[1], i[2], i[3]);
    }
    return 0;
}

/* dst[k,n] = sum_m A[k,m] B[m,n]: mul_mat with A transposed. */
static int ref_mul_mat_t(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    if (a->ne[1] != b->ne[0] || b->ne[2] % a->ne[2] || b->ne[3] % a->ne[3])
        return SLM_E_INVALID;
    int64_t r2 = b->ne[2] / a->ne[2], r3 = b->ne[3] / a->ne[3], i[4];
    FOR4(d->ne, i) {
        double s = 0;
        for (int64_t m = 0; m < a->ne[1]; m++)
            s += LD(a, i[0], m, i[2] / r2, i[3] / r3) * LD(b, m, i[1], i[2], i[3]);
        ST(d, s, i[0], i[1], i[2], i[3]);
    }
    return 0;
}

static int ref_out_prod(const slm_node_t *n)
{
    const slm_tensor_desc_t *x = &n->src[0], *y = &n->src[1], *d = &n->dst;
    if (x->ne[1] != y->ne[1] || x->ne[2] != y->ne[2] || x->ne[3] != y->ne[3] ||
        x->ne[2] % d->ne[2] || x->ne[3] % d->ne[3])
        return SLM_E_INVALID;
    int64_t r2 = x->ne[2] / d->ne[2], r3 = x->ne[3] / d->ne[3], i[4];
    FOR4(d->ne, i) {
        double s = 0;
        for (int64_t c3 = i[3] * r3; c3 < (i[3] + 1) * r3; c3++)
            for (int64_t c2 = i[2] * r2; c2 < (i[2] + 1) * r2; c2++)
                for (int64_t k = 0; k < x->ne[1]; k++)
                    s += LD(x, i[0], k, c2, c3) * LD(y, i[1], k, c2, c3);
        ST(d, s, i[0], i[1], i[2], i[3]);
    }
    return 0;
}

static int ref_binary(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    if (!broadcasts(b, a))
        return SLM_E_INVALID;
    int64_t i[4];
    FOR4(d->ne, i) {
        double x = LD(a, i[0], i[1], i[2], i[3]);
        double y = LD(b, i[0] % b->ne[0], i[1] % b->ne[1], i[2] % b->ne[2], i[3] % b->ne[3]);
        ST(d, n->op == SLM_OP_ADD ? x + y : x * y, i[0], i[1], i[2], i[3]);
    }
    return 0;
}

/* Elementwise ops of one or two same-shaped operands. */
static int ref_unary(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    int64_t i[4];
    FOR4(d->ne, i) {
        double x = LD(a, i[0], i[1], i[2], i[3]);
        double y = n->n_src > 1 ? LD(b, i[0], i[1], i[2], i[3]) : 0.0;
        double v;
        switch (n->op) {
        case SLM_OP_SCALE: v = x * n->fp[0]; break;
        case SLM_OP_SILU: v = silu(x); break;
        case SLM_OP_SILU_BACK: v = y * silu_grad(x); break;
        case SLM_OP_GELU: v = gelu(x); break;
        case SLM_OP_GELU_BACK: v = y * gelu_grad(x); break;
        case SLM_OP_SWIGLU: v = silu(x) * y; break;
        case SLM_OP_LOG: v = log(x > FLT_MIN ? x : FLT_MIN); break;
        case SLM_OP_LOG_BACK: v = x > FLT_MIN ? y / x : 0.0; break;
        default: return SLM_E_UNSUPPORTED;
        }
        ST(d, v, i[0], i[1], i[2], i[3]);
    }
    return 0;
}

static int ref_rms_norm(const slm_node_t *n, bool back)
{
    const slm_tensor_desc_t *x = &n->src[0], *dy = &n->src[1], *d = &n->dst;
    int64_t D = x->ne[0], i[4] = {0};
    for (i[3] = 0; i[3] < x->ne[3]; i[3]++)
        for (i[2] = 0; i[2] < x->ne[2]; i[2]++)
            for (i[1] = 0; i[1] < x->ne[1]; i[1]++) {
                double ss = 0, dot = 0;
                for (int64_t k = 0; k < D; k++) {
                    double v = LD(x, k, i[1], i[2], i[3]);
                    ss += v * v;
                    if (back)
                        dot += v * LD(dy, k, i[1], i[2], i[3]);
                }
                double r = 1.0 / sqrt(ss / (double)D + n->fp[0]);
                for (int64_t k = 0; k < D; k++) {
                    double v = LD(x, k, i[1], i[2], i[3]), out = v * r;
                    if (back)
                        out = r * (LD(dy, k, i[1], i[2], i[3]) - v * r * r * dot / (double)D);
                    ST(d, out, k, i[1], i[2], i[3]);
                }
            }
    return 0;
}

static int ref_rope(const slm_node_t *n, bool back)
{
    const slm_tensor_desc_t *x = &n->src[0], *pos = &n->src[1], *d = &n->dst;
    int64_t nd = n->ip[0], half = nd / 2, i[4] = {0};
    bool neox = n->ip[1] == SLM_ROPE_NEOX;
    if (nd < 0 || nd % 2 || nd > x->ne[0] || pos->ne[0] < x->ne[2])
        return SLM_E_INVALID;
    for (i[3] = 0; i[3] < x->ne[3]; i[3]++)
        for (i[2] = 0; i[2] < x->ne[2]; i[2]++)
            for (i[1] = 0; i[1] < x->ne[1]; i[1]++) {
                double p = LD(pos, i[2], 0, 0, 0);
                for (int64_t k = 0; k < half; k++) {
                    double th = p * n->fp[1] * pow(n->fp[0], -2.0 * (double)k / (double)nd);
                    double c = cos(th), s = back ? -sin(th) : sin(th);
                    int64_t j0 = neox ? k : 2 * k, j1 = neox ? k + half : 2 * k + 1;
                    double x0 = LD(x, j0, i[1], i[2], i[3]), x1 = LD(x, j1, i[1], i[2], i[3]);
                    ST(d, x0 * c - x1 * s, j0, i[1], i[2], i[3]);
                    ST(d, x0 * s + x1 * c, j1, i[1], i[2], i[3]);
                }
                for (int64_t k = nd; k < x->ne[0]; k++)
                    ST(d, LD(x, k, i[1], i[2], i[3]), k, i[1], i[2], i[3]);
            }
    return 0;
}

static int ref_soft_max(const slm_node_t *n)
{
    const slm_tensor_desc_t *x = &n->src[0], *m = n->n_src > 1 ? &n->src[1] : NULL, *d = &n->dst;
    int64_t C = x->ne[0], i[4] = {0};
    double *row = malloc((size_t)C * sizeof *row);
    if (!row)
        return SLM_E_NOMEM;
    for (i[3] = 0; i[3] < x->ne[3]; i[3]++)
        for (i[2] = 0; i[2] < x->ne[2]; i[2]++)
            for (i[1] = 0; i[1] < x->ne[1]; i[1]++) {
                double mx = -INFINITY, sum = 0;
                for (int64_t c = 0; c < C; c++) {
                    double v = LD(x, c, i[1], i[2], i[3]) * n->fp[0];
                    if (m)
                        v += LD(m, c, i[1] % m->ne[1], i[2] % m->ne[2], i[3] % m->ne[3]);
                    if (n->ip[0] && c > n->ip[1] + i[1])
                        v = -INFINITY;
                    row[c] = v;
                    if (v > mx)
                        mx = v;
                }
                for (int64_t c = 0; c < C; c++) {
                    row[c] = row[c] == -INFINITY ? 0.0 : exp(row[c] - mx);
                    sum += row[c];
                }
                for (int64_t c = 0; c < C; c++)
                    ST(d, row[c] / sum, c, i[1], i[2], i[3]);
            }
    free(row);
    return 0;
}

/* ATTN: per query and head, softmax over the cells of scale * q.K + mask, then V. */
static int ref_attn(const slm_node_t *n)
{
    const slm_tensor_desc_t *q = &n->src[0], *k = &n->src[1], *v = &n->src[2], *m = &n->src[3];
    int64_t D = q->ne[0], H = q->ne[1], N = q->ne[2], C = k->ne[1], group = H / k->ne[2];
    double *w = malloc((size_t)C * sizeof *w);
    if (!w)
        return SLM_E_NOMEM;
    for (int64_t t = 0; t < N; t++)
        for (int64_t h = 0; h < H; h++) {
            int64_t hk = h / group;
            double mx = -INFINITY, sum = 0;
            for (int64_t c = 0; c < C; c++) {
                double mk = LD(m, c, t, 0, 0), s = -INFINITY;
                if (mk != -INFINITY) {
                    s = 0;
                    for (int64_t d = 0; d < D; d++)
                        s += LD(q, d, h, t, 0) * LD(k, d, c, hk, 0);
                    s = s * n->fp[0] + mk;
                }
                w[c] = s;
                if (s > mx)
                    mx = s;
            }
            for (int64_t c = 0; c < C; c++) {
                w[c] = w[c] == -INFINITY ? 0.0 : exp(w[c] - mx);
                sum += w[c];
            }
            for (int64_t d = 0; d < D; d++) {
                double o = 0;
                for (int64_t c = 0; c < C; c++)
                    if (w[c] != 0.0)
                        o += w[c] * LD(v, d, c, hk, 0);
                ST(&n->dst, sum > 0 ? o / sum : 0.0, d, h, t, 0);
            }
        }
    free(w);
    return 0;
}

static int ref_soft_max_back(const slm_node_t *n)
{
    const slm_tensor_desc_t *y = &n->src[0], *dy = &n->src[1], *d = &n->dst;
    int64_t i[4] = {0};
    for (i[3] = 0; i[3] < y->ne[3]; i[3]++)
        for (i[2] = 0; i[2] < y->ne[2]; i[2]++)
            for (i[1] = 0; i[1] < y->ne[1]; i[1]++) {
                double dot = 0;
                for (int64_t c = 0; c < y->ne[0]; c++)
                    dot += LD(y, c, i[1], i[2], i[3]) * LD(dy, c, i[1], i[2], i[3]);
                for (int64_t c = 0; c < y->ne[0]; c++) {
                    double yv = LD(y, c, i[1], i[2], i[3]);
                    ST(d, n->fp[0] * yv * (LD(dy, c, i[1], i[2], i[3]) - dot), c, i[1], i[2], i[3]);
                }
            }
    return 0;
}

/* Logical row-major unravel of a flat index, ne[0] fastest. */
static void unravel(int64_t k, const int64_t ne[4], int64_t i[4])
{
    for (int dd = 0; dd < 4; dd++) {
        i[dd] = k % ne[dd];
        k /= ne[dd];
    }
}

static int ref_cpy(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0], *d = &n->dst;
    int64_t cnt = nelements(a->ne), ia[4], id[4];
    if (cnt != nelements(d->ne))
        return SLM_E_INVALID;
    for (int64_t k = 0; k < cnt; k++) {
        unravel(k, a->ne, ia);
        unravel(k, d->ne, id);
        slm_conform_ref_store(d, id, slm_conform_ref_load(a, ia));
    }
    return 0;
}

/* Mean over columns of -sum_v t*log_softmax(l); with back, dlogits instead. */
static int ref_cross_entropy(const slm_node_t *n, bool back)
{
    const slm_tensor_desc_t *l = &n->src[0], *t = &n->src[1], *d = &n->dst;
    int64_t V = l->ne[0], N = nelements(l->ne) / (V ? V : 1), i[4] = {0};
    double loss = 0, scale = back ? LD(&n->src[2], 0, 0, 0, 0) / (double)N : 0;
    if (!same_shape(l, t) || V <= 0)
        return SLM_E_INVALID;
    for (i[3] = 0; i[3] < l->ne[3]; i[3]++)
        for (i[2] = 0; i[2] < l->ne[2]; i[2]++)
            for (i[1] = 0; i[1] < l->ne[1]; i[1]++) {
                double mx = -INFINITY, sum = 0;
                for (int64_t v = 0; v < V; v++)
                    mx = fmax(mx, LD(l, v, i[1], i[2], i[3]));
                for (int64_t v = 0; v < V; v++)
                    sum += exp(LD(l, v, i[1], i[2], i[3]) - mx);
                double lse = mx + log(sum);
                for (int64_t v = 0; v < V; v++) {
                    double lv = LD(l, v, i[1], i[2], i[3]), tv = LD(t, v, i[1], i[2], i[3]);
                    if (back)
                        ST(d, (exp(lv - lse) - tv) * scale, v, i[1], i[2], i[3]);
                    else
                        loss -= tv * (lv - lse);
                }
            }
    if (!back)
        ST(d, loss / (double)N, 0, 0, 0, 0);
    return 0;
}

static int ref_sum(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0];
    int64_t i[4];
    double s = 0;
    FOR4(a->ne, i)
        s += slm_conform_ref_load(a, i);
    ST(&n->dst, s, 0, 0, 0, 0);
    return 0;
}

static int ref_repeat_back(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0], *d = &n->dst;
    if (!broadcasts(d, a))
        return SLM_E_INVALID;
    int64_t i[4], nd = nelements(d->ne);
    double *acc = calloc((size_t)nd, sizeof *acc);
    if (!acc)
        return SLM_E_NOMEM;
    FOR4(a->ne, i) {
        int64_t j = (((i[3] % d->ne[3]) * d->ne[2] + i[2] % d->ne[2]) * d->ne[1] + i[1] % d->ne[1]) *
                        d->ne[0] + i[0] % d->ne[0];
        acc[j] += slm_conform_ref_load(a, i);
    }
    for (int64_t k = 0; k < nd; k++) {
        unravel(k, d->ne, i);
        slm_conform_ref_store(d, i, acc[k]);
    }
    free(acc);
    return 0;
}

static int ref_acc(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    int64_t i[4];
    if (!same_shape(a, d))
        return SLM_E_INVALID;
    FOR4(d->ne, i)
        slm_conform_ref_store(d, i, slm_conform_ref_load(a, i));
    slm_tensor_desc_t v = *d;
    memcpy(v.ne, b->ne, sizeof v.ne);
    v.nb[1] = n->ip[0];
    v.nb[2] = n->ip[1];
    v.nb[3] = n->ip[2];
    v.data = (char *)d->data + n->ip[3];
    FOR4(v.ne, i)
        slm_conform_ref_store(&v, i, slm_conform_ref_load(&v, i) + slm_conform_ref_load(b, i));
    return 0;
}

/* The gradient scale of global-norm clipping: with the optional operand `at` (the sum
 * of squares of all gradients) and max_norm > 0, min(1, max_norm / (norm + 1e-6)). */
static double clip_scale(const slm_node_t *n, int at, double max_norm)
{
    if (n->n_src <= at || !(max_norm > 0.0))
        return 1.0;
    double c = max_norm / (sqrt(LD(&n->src[at], 0, 0, 0, 0)) + 1e-6);
    return c < 1.0 ? c : 1.0;
}

static int ref_adamw(const slm_node_t *n)
{
    const slm_tensor_desc_t *p = &n->src[0], *g = &n->src[1], *m = &n->src[2], *v = &n->src[3];
    double h[8] = {0};
    int64_t i[4];
    for (int k = 0; k < (n->n_src > 5 ? 8 : 7); k++)
        h[k] = LD(&n->src[4], k, 0, 0, 0);
    double c = clip_scale(n, 5, h[7]);
    FOR4(p->ne, i) {
        double gv = c * slm_conform_ref_load(g, i);
        double mv = h[1] * slm_conform_ref_load(m, i) + (1.0 - h[1]) * gv;
        double vv = h[2] * slm_conform_ref_load(v, i) + (1.0 - h[2]) * gv * gv;
        double pv = slm_conform_ref_load(p, i);
        pv = pv * (1.0 - h[0] * h[4]) - h[0] * (mv * h[5]) / (sqrt(vv * h[6]) + h[3]);
        slm_conform_ref_store(m, i, mv);
        slm_conform_ref_store(v, i, vv);
        slm_conform_ref_store(&n->dst, i, pv);
    }
    return 0;
}

static int ref_sgd(const slm_node_t *n)
{
    const slm_tensor_desc_t *p = &n->src[0], *g = &n->src[1];
    double h[3] = {0};
    int64_t i[4];
    for (int k = 0; k < (n->n_src > 3 ? 3 : 2); k++)
        h[k] = LD(&n->src[2], k, 0, 0, 0);
    double c = clip_scale(n, 3, h[2]);
    FOR4(p->ne, i) {
        double pv = slm_conform_ref_load(p, i);
        pv = pv * (1.0 - h[0] * h[1]) - h[0] * c * slm_conform_ref_load(g, i);
        slm_conform_ref_store(&n->dst, i, pv);
    }
    return 0;
}

int slm_conform_ref_compute(const slm_node_t *n)
{
    switch (n->op) {
    case SLM_OP_GET_ROWS: return ref_get_rows(n);
    case SLM_OP_GET_ROWS_BACK: return ref_get_rows_back(n);
    case SLM_OP_MUL_MAT: return ref_mul_mat(n);
    case SLM_OP_OUT_PROD: return ref_out_prod(n);
    case SLM_OP_ADD:
    case SLM_OP_MUL: return ref_binary(n);
    case SLM_OP_SCALE:
    case SLM_OP_SILU:
    case SLM_OP_SILU_BACK:
    case SLM_OP_GELU:
    case SLM_OP_GELU_BACK:
    case SLM_OP_SWIGLU:
    case SLM_OP_LOG:
    case SLM_OP_LOG_BACK: return ref_unary(n);
    case SLM_OP_RMS_NORM: return ref_rms_norm(n, false);
    case SLM_OP_RMS_NORM_BACK: return ref_rms_norm(n, true);
    case SLM_OP_ROPE: return ref_rope(n, false);
    case SLM_OP_ROPE_BACK: return ref_rope(n, true);
    case SLM_OP_SOFT_MAX: return ref_soft_max(n);
    case SLM_OP_SOFT_MAX_BACK: return ref_soft_max_back(n);
    case SLM_OP_ATTN: return ref_attn(n);
    case SLM_OP_CPY: return ref_cpy(n);
    case SLM_OP_CROSS_ENTROPY: return ref_cross_entropy(n, false);
    case SLM_OP_CROSS_ENTROPY_BACK: return ref_cross_entropy(n, true);
    case SLM_OP_SUM: return ref_sum(n);
    case SLM_OP_REPEAT_BACK: return ref_repeat_back(n);
    case SLM_OP_ACC: return ref_acc(n);
    case SLM_OP_ADAMW_STEP: return ref_adamw(n);
    case SLM_OP_SGD_STEP: return ref_sgd(n);
    case SLM_OP_MUL_MAT_T: return ref_mul_mat_t(n);
    default: return SLM_E_UNSUPPORTED;
    }
}
