/* Running conformance cases on a device: host and device copies of every
 * operand, one node through the backend, and the comparison with the reference. */
#include "config.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/types.h>

#include "internal.h"
#include "reference.h"

#define MAX_CASES 64
/* Quantized mul_mat, in units of sum_k |w_k x_k|. Rounding activations to 8-bit
 * blocks errs like a random walk, ~3e-4 * sqrt(256 / K) per element; a wrong scale
 * or nibble order errs like ~1 / sqrt(K). This sits 4x above the first and far
 * below the second at every K the cases use. */
#define QUANT_MUL_MAT_TOL(K) (0.08 / sqrt((double)(K)))

static int fail(slm_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(slm_error_t *err, int code, const char *fmt, ...)
{
    if (!err || err->struct_size < sizeof *err)
        return code;
    err->code = code;
    err->path[0] = 0;
    err->offset = -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

const char *slm_conform_status_name(int status)
{
    switch (status) {
    case SLM_CONFORM_PASS: return "pass";
    case SLM_CONFORM_FAIL: return "FAIL";
    case SLM_CONFORM_REFUSED: return "REFUSED";
    case SLM_CONFORM_SKIP: return "skip";
    default: return "?";
    }
}

void slm_conform_options_default(slm_conform_options_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
}

int slm_conform__slot_buffer(const conform_case_t *c, int k)
{
    return k == CONFORM_DST && c->dst_alias >= 0 ? c->dst_alias : k;
}

static slm_tensor_desc_t host_desc(const conform_tensor_t *t, void *buf)
{
    slm_tensor_desc_t d = {.type = t->type, .offset = t->offset};
    memcpy(d.ne, t->ne, sizeof d.ne);
    memcpy(d.nb, t->nb, sizeof d.nb);
    d.data = (char *)buf + t->offset;
    return d;
}

static double fill_value(const conform_tensor_t *t, const conform_case_t *c, const int64_t i[4],
                         size_t k, uint64_t *rng)
{
    switch (t->fill) {
    case FILL_IDS:
        return floor(slm_conform__uniform(rng, 0.0, (double)t->range));
    case FILL_PROB:
        return slm_conform__uniform(rng, 0.05, 1.0);
    case FILL_MASK_GAP:
        if (i[0] == 1)
            return -INFINITY;
        /* fall through */
    case FILL_MASK_CAUSAL:
        if (i[0] > i[1] + (t->ne[0] - t->ne[1]))
            return -INFINITY;
        if (i[0] > 0 && (i[0] + i[1]) % 5 == 3)
            return -INFINITY;
        return slm_conform__uniform(rng, -2.0, 0.0);
    case FILL_MASK_HOLE:
        if (i[1] == 1)
            return -INFINITY;
        /* fall through */
    case FILL_MASK:
        if (i[0] > 0 && (i[0] + i[1]) % 5 == 3)
            return -INFINITY;
        return slm_conform__uniform(rng, -2.0, 0.0);
    case FILL_VALUES:
        return k < sizeof c->values / sizeof c->values[0] ? c->values[k] : 0.0;
    default:
        return slm_conform__uniform(rng, t->lo, t->hi);
    }
}

/* Padding bytes are 0xff (NaN for the float types), so a backend that reads
 * outside the view poisons its result instead of passing by luck. */
static void fill_tensor(const conform_case_t *c, const conform_tensor_t *t, void *buf, uint64_t *rng)
{
    memset(buf, 0xff, t->bytes);
    slm_tensor_desc_t d = host_desc(t, buf);
    int64_t i[4];
    size_t k = 0;
    CONFORM_FOR4(t->ne, i)
        slm_conform_ref_store(&d, i, fill_value(t, c, i, k++, rng));
    if (t->fill != FILL_PROB)
        return;
    for (i[3] = 0; i[3] < t->ne[3]; i[3]++)
        for (i[2] = 0; i[2] < t->ne[2]; i[2]++)
            for (i[1] = 0; i[1] < t->ne[1]; i[1]++) {
                double s = 0;
                for (i[0] = 0; i[0] < t->ne[0]; i[0]++)
                    s += slm_conform_ref_load(&d, i);
                for (i[0] = 0; i[0] < t->ne[0]; i[0]++)
                    slm_conform_ref_store(&d, i, slm_conform_ref_load(&d, i) / s);
            }
}

static const conform_tensor_t *slot_tensor(const conform_case_t *c, int k)
{
    return k == CONFORM_DST ? &c->dst : &c->src[k];
}

int slm_conform__host_new(const conform_case_t *c, conform_host_t *h)
{
    uint64_t rng = c->seed;
    memset(h, 0, sizeof *h);
    for (int k = 0; k <= CONFORM_DST; k++) {
        if ((k < CONFORM_DST && k >= c->n_src) || slm_conform__slot_buffer(c, k) != k)
            continue;
        const conform_tensor_t *t = slot_tensor(c, k);
        h->bytes[k] = t->bytes;
        h->buf[k] = malloc(t->bytes ? t->bytes : 1);
        if (!h->buf[k]) {
            slm_conform__host_free(h);
            return SLM_E_NOMEM;
        }
        if (k == CONFORM_DST)
            memset(h->buf[k], 0xff, t->bytes);
        else
            fill_tensor(c, t, h->buf[k], &rng);
    }
    return 0;
}

int slm_conform__host_copy(const conform_case_t *c, const conform_host_t *from, conform_host_t *to)
{
    (void)c;
    memset(to, 0, sizeof *to);
    for (int k = 0; k <= CONFORM_DST; k++) {
        if (!from->buf[k])
            continue;
        to->bytes[k] = from->bytes[k];
        to->buf[k] = malloc(from->bytes[k] ? from->bytes[k] : 1);
        if (!to->buf[k]) {
            slm_conform__host_free(to);
            return SLM_E_NOMEM;
        }
        memcpy(to->buf[k], from->buf[k], from->bytes[k]);
    }
    return 0;
}

void slm_conform__host_free(conform_host_t *h)
{
    for (int k = 0; k <= CONFORM_DST; k++)
        free(h->buf[k]);
    memset(h, 0, sizeof *h);
}

static void node_init(const conform_case_t *c, slm_node_t *node)
{
    memset(node, 0, sizeof *node);
    node->struct_size = sizeof *node;
    node->op = c->op;
    node->n_src = c->n_src;
    memcpy(node->ip, c->ip, sizeof node->ip);
    memcpy(node->fp, c->fp, sizeof node->fp);
}

void slm_conform__host_node(const conform_case_t *c, const conform_host_t *h, slm_node_t *node)
{
    node_init(c, node);
    for (int i = 0; i < c->n_src; i++)
        node->src[i] = host_desc(&c->src[i], h->buf[i]);
    node->dst = host_desc(&c->dst, h->buf[slm_conform__slot_buffer(c, CONFORM_DST)]);
}

static slm_tensor_desc_t dev_desc(const conform_tensor_t *t, void *buffer, void *base)
{
    slm_tensor_desc_t d = host_desc(t, base);
    d.buffer = buffer;
    d.data = base ? (char *)base + t->offset : NULL;
    return d;
}

int slm_conform__dev_new(const slm_backend_iface_t *be, void *dev, const conform_case_t *c,
                         const conform_host_t *h, conform_dev_t *d)
{
    memset(d, 0, sizeof *d);
    d->be = be;
    d->dev = dev;
    for (int k = 0; k <= CONFORM_DST; k++) {
        if (!h->buf[k])
            continue;
        int rc = be->buffer_alloc(dev, h->bytes[k], &d->buf[k], &d->base[k]);
        if (rc < 0 || !d->buf[k]) {
            slm_conform__dev_free(d);
            return rc < 0 ? rc : SLM_E_DEVICE;
        }
    }
    node_init(c, &d->node);
    for (int i = 0; i < c->n_src; i++)
        d->node.src[i] = dev_desc(&c->src[i], d->buf[i], d->base[i]);
    int b = slm_conform__slot_buffer(c, CONFORM_DST);
    d->node.dst = dev_desc(&c->dst, d->buf[b], d->base[b]);
    return 0;
}

int slm_conform__dev_run(conform_dev_t *d, const conform_case_t *c, conform_host_t *h)
{
    (void)c;
    int rc;
    for (int k = 0; k <= CONFORM_DST; k++)
        if (d->buf[k] && (rc = d->be->buffer_set(d->dev, d->buf[k], 0, h->buf[k], h->bytes[k])) < 0)
            return rc;
    const slm_node_t *np = &d->node;
    if ((rc = d->be->graph_compute(d->dev, &np, 1)) < 0)
        return rc;
    if (d->be->synchronize && (rc = d->be->synchronize(d->dev)) < 0)
        return rc;
    for (int k = 0; k <= CONFORM_DST; k++)
        if (d->buf[k] && (rc = d->be->buffer_get(d->dev, d->buf[k], 0, h->buf[k], h->bytes[k])) < 0)
            return rc;
    return 0;
}

void slm_conform__dev_free(conform_dev_t *d)
{
    for (int k = 0; k <= CONFORM_DST; k++)
        if (d->buf[k])
            d->be->buffer_free(d->dev, d->buf[k]);
    memset(d->buf, 0, sizeof d->buf);
}

/* Precision the backend may lose against the double reference. */
static double tolerance(const conform_case_t *c)
{
    if (slm_conform__is_block_type(c->src[0].type)) {
        if (c->op == SLM_OP_MUL_MAT_T)
            return QUANT_MUL_MAT_TOL(c->src[0].ne[1]);
        return c->op == SLM_OP_MUL_MAT ? QUANT_MUL_MAT_TOL(c->src[0].ne[0]) : 1.0;   /* ulps */
    }
    double tol = 1e-5;
    if (c->op == SLM_OP_ROPE || c->op == SLM_OP_ROPE_BACK)
        tol = 1e-4;   /* theta = pos * base^x evaluated in float */
    bool mm = c->op == SLM_OP_MUL_MAT || c->op == SLM_OP_MUL_MAT_T;
    if (mm && c->src[0].type == SLM_TYPE_F16)
        tol = 2e-3;   /* a backend may round activations to the weight type */
    if (mm && c->src[0].type == SLM_TYPE_BF16)
        tol = 1.6e-2;
    if (c->dst.type == SLM_TYPE_F16 && tol < 1e-3)
        tol = 1e-3;
    if (c->dst.type == SLM_TYPE_BF16 && tol < 8e-3)
        tol = 8e-3;
    if (c->reduce > 16)
        tol *= sqrt((double)c->reduce / 16.0);
    return tol;
}

static double elem_err(double got, double want, double scale)
{
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got) ? 0.0 : INFINITY;
    if (isinf(want) || isinf(got))
        return want == got ? 0.0 : INFINITY;
    return fabs(got - want) / scale;
}

/* Max relative error of t's view in got vs want: against max |want|, or against
 * unit[] per element (logical order) when given; bytes outside the view must be
 * untouched. Returns the error (INFINITY for stray writes), detail says where. */
static double compare_tensor(const conform_tensor_t *t, const char *name, const uint8_t *got,
                             const uint8_t *want, const double *unit, char *detail, size_t cap)
{
    uint8_t *in_view = calloc(t->bytes ? t->bytes : 1, 1);
    if (!in_view) {
        snprintf(detail, cap, "out of memory");
        return INFINITY;
    }
    slm_tensor_desc_t g = host_desc(t, (void *)got), w = host_desc(t, (void *)want);
    size_t es = slm_conform_type_size(t->type);
    int64_t i[4], worst[4] = {0};
    double scale = 0, err = 0, wv = 0, gv = 0;
    CONFORM_FOR4(t->ne, i) {
        uint64_t at = t->offset + (uint64_t)(i[0] * t->nb[0] + i[1] * t->nb[1] + i[2] * t->nb[2] +
                                             i[3] * t->nb[3]);
        memset(in_view + at, 1, es);
        double v = fabs(slm_conform_ref_load(&w, i));
        if (isfinite(v) && v > scale)
            scale = v;
    }
    if (scale < 1e-30)
        scale = 1.0;
    for (uint64_t b = 0; b < t->bytes; b++)
        if (!in_view[b] && got[b] != want[b]) {
            snprintf(detail, cap, "%s: wrote outside its view at byte %llu", name,
                     (unsigned long long)b);
            free(in_view);
            return INFINITY;
        }
    free(in_view);
    size_t at = 0;
    double worst_scale = scale;
    CONFORM_FOR4(t->ne, i) {
        double a = slm_conform_ref_load(&g, i), b = slm_conform_ref_load(&w, i);
        double u = unit ? unit[at] : scale;
        double e = elem_err(a, b, u);
        at++;
        if (e > err || (e == err && err == 0 && i[0] + i[1] + i[2] + i[3] == 0)) {
            err = e;
            memcpy(worst, i, sizeof worst);
            gv = a;
            wv = b;
            worst_scale = u;
        }
    }
    snprintf(detail, cap, "%s[%lld,%lld,%lld,%lld] = %.9g, reference %.9g (%s %.4g)", name,
             (long long)worst[0], (long long)worst[1], (long long)worst[2], (long long)worst[3],
             gv, wv, unit ? "unit" : "scale", worst_scale);
    return err;
}

static void check_outputs(const conform_case_t *c, const conform_host_t *got,
                          const conform_host_t *want, const double *dst_unit,
                          slm_conform_result_t *res)
{
    res->max_err = 0;
    res->status = SLM_CONFORM_PASS;
    for (int k = 0; k <= CONFORM_DST; k++) {
        if (!got->buf[k])
            continue;
        bool is_out = k == CONFORM_DST || (c->outputs & (1u << k)) || c->dst_alias == k;
        char name[16] = "dst", detail[sizeof res->detail];
        if (k != CONFORM_DST)
            snprintf(name, sizeof name, "s%d", k);
        if (!is_out) {
            if (memcmp(got->buf[k], want->buf[k], got->bytes[k])) {
                res->status = SLM_CONFORM_FAIL;
                res->max_err = INFINITY;
                snprintf(res->detail, sizeof res->detail, "the backend modified input %s", name);
                return;
            }
            continue;
        }
        const conform_tensor_t *t = k == CONFORM_DST ? &c->dst : &c->src[k];
        double e = compare_tensor(t, name, got->buf[k], want->buf[k],
                                  k == CONFORM_DST ? dst_unit : NULL, detail, sizeof detail);
        if (e > res->max_err || (k == CONFORM_DST && res->max_err == 0)) {
            res->max_err = e;
            memcpy(res->detail, detail, sizeof detail);
        }
    }
    if (!(res->max_err <= res->tol))
        res->status = SLM_CONFORM_FAIL;
}

/* The backend's half of a case whose host copies and reference are ready. */
static void run_on_device(const slm_backend_iface_t *be, void *dev, const conform_case_t *c,
                          bool strict, conform_host_t *h, const conform_host_t *ref,
                          const double *dst_unit, slm_conform_result_t *res)
{
    conform_dev_t d;
    int rc = slm_conform__dev_new(be, dev, c, h, &d);
    if (rc < 0) {
        snprintf(res->detail, sizeof res->detail, "buffer_alloc failed: %s", slm_strerror(rc));
        return;
    }
    if (!be->supports_node(dev, &d.node)) {
        bool optional = !strict && !slm_conform__unit_strides(c);
        res->status = optional ? SLM_CONFORM_SKIP : SLM_CONFORM_REFUSED;
        snprintf(res->detail, sizeof res->detail, "supports_node refused %s",
                 optional ? "this layout (non-unit innermost stride)" : "a declared op x type");
    } else if ((rc = slm_conform__dev_run(&d, c, h)) < 0) {
        snprintf(res->detail, sizeof res->detail, "the backend failed: %s", slm_strerror(rc));
    } else {
        check_outputs(c, h, ref, dst_unit, res);
    }
    slm_conform__dev_free(&d);
}

/* Host copies (block-type operands quantized through reg) and the reference result. */
static int prepare(slm_registry_t *reg, const conform_case_t *c, conform_host_t *h,
                   conform_host_t *ref, conform_quant_t *q, slm_conform_result_t *res)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_node_t node;
    memset(q, 0, sizeof *q);
    memset(ref, 0, sizeof *ref);
    int rc = slm_conform__host_new(c, h);
    if (rc == 0 && (rc = slm_conform__quant_fill(reg, c, h, q, &err)) < 0) {
        snprintf(res->detail, sizeof res->detail, "quantizing the weights failed: %.200s",
                 err.code ? err.message : slm_strerror(rc));
        return rc;
    }
    if (rc == 0)
        rc = slm_conform__host_copy(c, h, ref);
    if (rc < 0) {
        snprintf(res->detail, sizeof res->detail, "out of memory");
        return rc;
    }
    slm_conform__host_node(c, ref, &node);
    slm_conform__quant_node(c, q, &node);
    if ((rc = slm_conform_ref_compute(&node)) < 0) {
        snprintf(res->detail, sizeof res->detail, "the reference rejects this case: %s",
                 slm_strerror(rc));
        return rc;
    }
    if ((rc = slm_conform__quant_units(c, &node, q)) < 0)
        snprintf(res->detail, sizeof res->detail, "out of memory");
    return rc;
}

static void run_case(slm_registry_t *reg, const slm_backend_iface_t *be, void *dev,
                     const conform_case_t *c, bool strict, slm_conform_result_t *res)
{
    conform_host_t h, ref;
    conform_quant_t q;
    memset(res, 0, sizeof *res);
    snprintf(res->check, sizeof res->check, "forward");
    slm_conform__describe(c, res);
    res->tol = tolerance(c);
    res->status = SLM_CONFORM_FAIL;
    if (prepare(reg, c, &h, &ref, &q, res) == 0)
        run_on_device(be, dev, c, strict, &h, &ref, q.unit, res);
    slm_conform__quant_free(&q);
    slm_conform__host_free(&ref);
    slm_conform__host_free(&h);
}

static int report_add(void *user, const slm_conform_result_t *res)
{
    slm_conform_report_t *rep = user;
    size_t n = rep->n_results;
    if (n == 0 || (n >= 16 && (n & (n - 1)) == 0)) {   /* capacity: 16, then doubling */
        size_t cap = n ? n * 2 : 16;
        slm_conform_result_t *r = realloc(rep->results, cap * sizeof *r);
        if (!r)
            return SLM_E_NOMEM;
        rep->results = r;
    }
    rep->results[rep->n_results++] = *res;
    if (res->status == SLM_CONFORM_PASS)
        rep->n_pass++;
    else if (res->status == SLM_CONFORM_SKIP)
        rep->n_skip++;
    else
        rep->n_fail++;
    return 0;
}

void slm_conform_report_free(slm_conform_report_t *rep)
{
    if (!rep)
        return;
    free(rep->results);
    memset(rep, 0, sizeof *rep);
}

/* Every op x type pair the manifest declares, in op-id order: types[op] is a bit
 * set of declared f32/f16/bf16 types, other[op] the names of the rest. */
#define MAX_OTHER_TYPES 16

typedef struct declared {
    unsigned types[SLM_OP_COUNT];
    size_t n_other[SLM_OP_COUNT];
    char other[SLM_OP_COUNT][MAX_OTHER_TYPES][32];
} declared_t;

enum { T_F32 = 1, T_F16 = 2, T_BF16 = 4, T_OTHER = 8 };

static unsigned type_bit(const char *name)
{
    if (!strcmp(name, "f32"))
        return T_F32;
    if (!strcmp(name, "f16"))
        return T_F16;
    if (!strcmp(name, "bf16"))
        return T_BF16;
    return T_OTHER;
}

static void declare(declared_t *dcl, int op, const char *name)
{
    unsigned bit = type_bit(name);
    dcl->types[op] |= bit;
    if (bit != T_OTHER || dcl->n_other[op] >= MAX_OTHER_TYPES || strlen(name) >= 32)
        return;
    snprintf(dcl->other[op][dcl->n_other[op]++], 32, "%s", name);
}

static int read_declared(const slm_plugin_info_t *p, declared_t *dcl, slm_error_t *err)
{
    memset(dcl, 0, sizeof *dcl);
    json_error_t je;
    json_t *prov = json_loads(p->manifest_json ? p->manifest_json : "", 0, &je);
    json_t *ops = prov ? json_object_get(prov, "ops") : NULL;
    if (!json_is_object(ops)) {
        json_decref(prov);
        return fail(err, SLM_E_FORMAT, "%s: provides.ops is missing: nothing to test",
                    p->manifest_path);
    }
    const char *key;
    json_t *arr;
    json_object_foreach(ops, key, arr) {
        int op = slm_op_from_name(key);
        if (op <= 0 || !json_is_array(arr))
            continue;
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
            if (json_is_string(v))
                declare(dcl, op, json_string_value(v));
    }
    json_decref(prov);
    return 0;
}

typedef struct run_ctx {
    slm_registry_t *reg;
    const slm_backend_iface_t *be;
    void *dev;
    const slm_conform_options_t *o;
    slm_conform_report_t *rep;
} run_ctx_t;

static int run_op_type(const run_ctx_t *r, int op, int type)
{
    conform_case_t *cases = calloc(MAX_CASES, sizeof *cases);
    if (!cases)
        return SLM_E_NOMEM;
    size_t n = slm_conform__cases(op, type, cases, MAX_CASES);
    int rc = 0;
    for (size_t i = 0; i < n && i < MAX_CASES && rc == 0; i++) {
        slm_conform_result_t res;
        run_case(r->reg, r->be, r->dev, &cases[i], r->o->strict_layouts, &res);
        rc = report_add(r->rep, &res);
    }
    free(cases);
    return rc;
}

static int add_skip(const run_ctx_t *r, int op, const char *type, const char *why)
{
    slm_conform_result_t res = {.check = "forward", .status = SLM_CONFORM_SKIP};
    snprintf(res.op, sizeof res.op, "%s", slm_op_name(op));
    snprintf(res.types, sizeof res.types, "%s", type);
    snprintf(res.detail, sizeof res.detail, "%s", why);
    return report_add(r->rep, &res);
}

/* A declared block type: its cases when a quantizer plugin can make its weights,
 * else one skip naming the quantizer that is missing (not the backend's fault). */
static int run_quantized(const run_ctx_t *r, int op, const char *name)
{
    char why[sizeof ((slm_conform_result_t *)0)->detail];
    if (op != SLM_OP_MUL_MAT && op != SLM_OP_MUL_MAT_T && op != SLM_OP_GET_ROWS)
        return add_skip(r, op, name, "the suite has quantized cases for mul_mat, mul_mat_t and "
                        "get_rows only");
    int type = slm_type_from_name(name);
    slm_error_t err;
    slm_error_init(&err);
    int rc = type < 0 ? SLM_E_UNSUPPORTED : slm_conform__quant_probe(r->reg, type, &err);
    if (rc == SLM_E_UNSUPPORTED) {
        snprintf(why, sizeof why, "no quantizer for %s: no usable quantizer plugin provides %s",
                 name, type < 0 ? "this type" : "it");
        return add_skip(r, op, name, why);
    }
    if (rc < 0) {
        slm_conform_result_t res = {.check = "forward", .status = SLM_CONFORM_FAIL};
        snprintf(res.op, sizeof res.op, "%s", slm_op_name(op));
        snprintf(res.types, sizeof res.types, "%s", name);
        snprintf(res.detail, sizeof res.detail, "quantizer for %s: %.200s", name, err.message);
        return report_add(r->rep, &res);
    }
    return run_op_type(r, op, type);
}

static const int scalar_types[] = {SLM_TYPE_F32, SLM_TYPE_F16, SLM_TYPE_BF16};

static int run_declared(const run_ctx_t *r, const declared_t *dcl)
{
    int rc = 0;
    for (int op = 1; op < SLM_OP_COUNT && rc == 0; op++) {
        if (r->o->op && strcmp(r->o->op, slm_op_name(op)) != 0)
            continue;
        for (int t = 0; t < 3 && rc == 0; t++)
            if (dcl->types[op] & (1u << t))
                rc = run_op_type(r, op, scalar_types[t]);
        for (size_t t = 0; t < dcl->n_other[op] && rc == 0; t++)
            rc = run_quantized(r, op, dcl->other[op][t]);
    }
    return rc;
}

/* The weight types declared for both a backward op and its forward op: the types
 * frozen-weight gradchecks run on (block types only when a quantizer makes them). */
static size_t gradcheck_types(slm_registry_t *reg, const declared_t *dcl, int op, int fwd,
                              int *out, size_t max)
{
    size_t n = 0;
    for (int t = 0; t < 3; t++)
        if ((dcl->types[op] & dcl->types[fwd] & (1u << t)) && n < max)
            out[n++] = scalar_types[t];
    for (size_t i = 0; i < dcl->n_other[op]; i++)
        for (size_t j = 0; j < dcl->n_other[fwd]; j++) {
            int type = slm_type_from_name(dcl->other[op][i]);
            slm_error_t err;
            slm_error_init(&err);
            if (strcmp(dcl->other[op][i], dcl->other[fwd][j]) != 0 || type < 0 || n >= max ||
                slm_conform__quant_probe(reg, type, &err) < 0)
                continue;
            out[n++] = type;
        }
    return n;
}

static int run_gradchecks(const run_ctx_t *r, const declared_t *dcl)
{
    int rc = 0;
    for (int op = 1; op < SLM_OP_COUNT && rc == 0; op++) {
        int fwd;
        if (!slm_conform__has_gradcheck(op, &fwd) || !(dcl->types[op] & T_F32) ||
            !(dcl->types[fwd] & T_F32))
            continue;
        if (r->o->op && strcmp(r->o->op, slm_op_name(op)) != 0 &&
            strcmp(r->o->op, slm_op_name(fwd)) != 0)
            continue;
        int types[3 + MAX_OTHER_TYPES];
        size_t n = gradcheck_types(r->reg, dcl, op, fwd, types, sizeof types / sizeof types[0]);
        rc = slm_conform__gradcheck(r->reg, r->be, r->dev, op, types, n, report_add, r->rep);
    }
    return rc;
}

int slm_conform_run(slm_registry_t *reg, slm_device_t *dev, const slm_conform_options_t *opts,
                    slm_conform_report_t *rep, slm_error_t *err)
{
    slm_conform_options_t o;
    slm_conform_options_default(&o);
    if (opts)
        memcpy(&o, opts, opts->struct_size < sizeof o ? opts->struct_size : sizeof o);
    memset(rep, 0, sizeof *rep);
    if (o.op && slm_op_from_name(o.op) <= 0)
        return fail(err, SLM_E_INVALID, "unknown op '%s'", o.op);
    const slm_device_info_t *info = slm_device_get_info(dev);
    const slm_plugin_info_t *p = slm_registry_find(reg, "backend", info->plugin);
    if (!p)
        return fail(err, SLM_E_NOT_FOUND, "no manifest for backend plugin '%s'", info->plugin);
    void *ctx = NULL;
    const slm_backend_iface_t *be = slm_device_backend(dev, &ctx);
    if (!be)
        return fail(err, SLM_E_PLUGIN, "device %s has no backend interface", info->id);
    declared_t dcl;
    int rc = read_declared(p, &dcl, err);
    if (rc < 0)
        return rc;
    run_ctx_t r = {.reg = reg, .be = be, .dev = ctx, .o = &o, .rep = rep};
    if ((rc = run_declared(&r, &dcl)) == 0 && !o.no_gradcheck)
        rc = run_gradchecks(&r, &dcl);
    if (rc < 0) {
        slm_conform_report_free(rep);
        return fail(err, rc, "conformance run on %s aborted: %s", info->id, slm_strerror(rc));
    }
    return 0;
}

void slm_conform_result_format(const slm_conform_result_t *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%-7s %-9s %-18s %-22s err %.3g (tol %.3g)  %s  [%s]",
             slm_conform_status_name(r->status), r->check, r->op, r->types, r->max_err, r->tol,
             r->detail, r->shape);
}

static json_t *result_json(const slm_conform_result_t *r)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:s}", "status",
                          slm_conform_status_name(r->status), "check", r->check, "op", r->op,
                          "types", r->types, "shape", r->shape, "tol", r->tol, "detail", r->detail);
    /* JSON has no infinity: an error that is not finite becomes null. */
    if (o && json_object_set_new(o, "max_err", isfinite(r->max_err) ? json_real(r->max_err)
                                                                       : json_null()) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *slm_conform_report_json(const slm_conform_report_t *rep, bool only_problems)
{
    json_t *arr = json_array();
    json_t *doc = json_pack("{s:I, s:I, s:I, s:o}", "passed", (json_int_t)rep->n_pass, "failed",
                            (json_int_t)rep->n_fail, "skipped", (json_int_t)rep->n_skip,
                            "results", arr);
    if (!doc)
        return NULL;
    for (size_t i = 0; i < rep->n_results; i++) {
        if (only_problems && rep->results[i].status == SLM_CONFORM_PASS)
            continue;
        json_t *r = result_json(&rep->results[i]);
        if (!r || json_array_append_new(arr, r) != 0) {
            json_decref(doc);
            return NULL;
        }
    }
    return doc;
}
