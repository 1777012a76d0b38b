/* Graphs and tensors: creation, introspection and the metadata-only ops (view,
 * reshape, permute, transpose) that share their source's storage without copying. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/graph.h"
#include "internal/util.h"

#define DEFAULT_MAX_TENSORS 4096
/* Keeps byte sizes far below overflow when multiplied by type sizes and strides. */
#define MAX_ELEMENTS ((int64_t)1 << 48)

slm_graph_t *slm_graph_new(size_t max_tensors)
{
    if (max_tensors == 0)
        max_tensors = DEFAULT_MAX_TENSORS;
    if (max_tensors > ((size_t)1 << 28))
        return NULL;
    slm_graph_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->tensors = calloc(max_tensors, sizeof *g->tensors);
    if (!g->tensors) {
        free(g);
        return NULL;
    }
    g->max_tensors = max_tensors;
    slm_error_init(&g->err);
    return g;
}

void slm_graph_free(slm_graph_t *g)
{
    if (!g)
        return;
    if (g->plan)
        slm__plan_release(g->plan);
    for (size_t i = 0; i < g->n_tensors; i++)
        free(g->tensors[i]);
    free(g->tensors);
    free(g);
}

slm_tensor_t *slm__graph_fail(slm_graph_t *g, int code, const char *fmt, ...)
{
    if (!g || g->status != SLM_OK)
        return NULL;
    char msg[sizeof g->err.message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    g->status = code;
    slm__fail(&g->err, code, NULL, -1, "%s", msg);
    slm_log(SLM_LOG_DEBUG, "graph", "build error: %s", msg);
    return NULL;
}

int slm_graph_status(const slm_graph_t *g, slm_error_t *err)
{
    if (!g)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "graph is NULL");
    if (g->status != SLM_OK)
        return slm__fail(err, g->status, NULL, -1, "%s", g->err.message);
    return SLM_OK;
}

size_t slm_graph_n_tensors(const slm_graph_t *g)
{
    return g ? g->n_tensors : 0;
}

slm_tensor_t *slm_graph_tensor(const slm_graph_t *g, size_t i)
{
    return (g && i < g->n_tensors) ? g->tensors[i] : NULL;
}

slm_tensor_t *slm_graph_find(const slm_graph_t *g, const char *name)
{
    if (!g || !name)
        return NULL;
    for (size_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i]->name, name) == 0)
            return g->tensors[i];
    return NULL;
}

static slm_tensor_t *tensor_push(slm_graph_t *g, slm_type_t type, const int64_t ne[SLM_MAX_DIMS])
{
    if (g->status != SLM_OK)
        return NULL;
    if (g->n_tensors >= g->max_tensors)
        return slm__graph_fail(g, SLM_E_NOMEM, "graph is full (%zu tensors)", g->max_tensors);
    const slm_type_traits_t *tr = slm_type_get_traits(type);
    if (!tr)
        return slm__graph_fail(g, SLM_E_INVALID, "%s is not a tensor type this build knows",
                               slm_type_name(type));
    int64_t n = 1;
    for (int i = 0; i < SLM_MAX_DIMS; i++) {
        if (ne[i] <= 0 || ne[i] > MAX_ELEMENTS)
            return slm__graph_fail(g, SLM_E_INVALID, "dimension %d has size %lld", i,
                                   (long long)ne[i]);
        n *= ne[i];
        if (n > MAX_ELEMENTS)
            return slm__graph_fail(g, SLM_E_INVALID, "tensor has too many elements");
    }
    if (ne[0] % tr->block)
        return slm__graph_fail(g, SLM_E_INVALID, "row of %lld elements is not a multiple of "
                               "the %s block (%u)", (long long)ne[0], tr->name, tr->block);
    slm_tensor_t *t = calloc(1, sizeof *t);
    if (!t)
        return slm__graph_fail(g, SLM_E_NOMEM, "out of memory for a tensor");
    t->graph = g;
    t->index = g->n_tensors;
    t->type = type;
    memcpy(t->ne, ne, sizeof t->ne);
    t->dev = -1;
    g->tensors[g->n_tensors++] = t;
    return t;
}

slm_tensor_t *slm__tensor_alloc(slm_graph_t *g, slm_type_t type, const int64_t ne[SLM_MAX_DIMS])
{
    if (!g)
        return NULL;
    slm_tensor_t *t = tensor_push(g, type, ne);
    if (!t)
        return NULL;
    const slm_type_traits_t *tr = slm_type_get_traits(type);
    t->nb[0] = tr->size;
    t->nb[1] = (int64_t)slm_type_row_size(type, ne[0]);
    for (int i = 2; i < SLM_MAX_DIMS; i++)
        t->nb[i] = t->nb[i - 1] * ne[i - 1];
    return t;
}

size_t slm__tensor_span(const slm_tensor_t *t)
{
    const slm_type_traits_t *tr = slm_type_get_traits(t->type);
    if (!tr)
        return 0;
    size_t end = slm_type_row_size(t->type, t->ne[0]);
    for (int i = 1; i < SLM_MAX_DIMS; i++)
        end += (size_t)(t->ne[i] - 1) * (size_t)t->nb[i];
    return end;
}

slm_tensor_t *slm__tensor_view(slm_graph_t *g, slm_tensor_t *a, const int64_t ne[SLM_MAX_DIMS],
                               const int64_t nb[SLM_MAX_DIMS], size_t offset)
{
    slm_tensor_t *t = tensor_push(g, a->type, ne);
    if (!t)
        return NULL;
    memcpy(t->nb, nb, sizeof t->nb);
    t->view_src = slm__tensor_root(a);
    t->view_offs = a->view_offs + offset;
    t->src[0] = a;
    t->n_src = 1;
    t->view_kind = SLM__VIEW_GENERAL;
    return t;
}

slm_tensor_t *slm__tensor_const(slm_graph_t *g, int role, const int64_t ne[SLM_MAX_DIMS])
{
    slm_tensor_t *t = slm__tensor_alloc(g, SLM_TYPE_F32, ne);
    if (t)
        t->role = role;
    return t;
}

slm_tensor_t *slm_tensor_new(slm_graph_t *g, slm_type_t type, int n_dims, const int64_t *ne)
{
    if (!g)
        return NULL;
    if (n_dims < 1 || n_dims > SLM_MAX_DIMS || !ne)
        return slm__graph_fail(g, SLM_E_INVALID, "tensor needs 1 to %d dimensions, got %d",
                               SLM_MAX_DIMS, n_dims);
    int64_t full[SLM_MAX_DIMS] = {1, 1, 1, 1};
    memcpy(full, ne, (size_t)n_dims * sizeof *ne);
    return slm__tensor_alloc(g, type, full);
}

slm_tensor_t *slm_tensor_new_1d(slm_graph_t *g, slm_type_t type, int64_t ne0)
{
    return slm_tensor_new(g, type, 1, &ne0);
}

slm_tensor_t *slm_tensor_new_2d(slm_graph_t *g, slm_type_t type, int64_t ne0, int64_t ne1)
{
    const int64_t ne[2] = {ne0, ne1};
    return slm_tensor_new(g, type, 2, ne);
}

slm_type_t slm_tensor_type(const slm_tensor_t *t)
{
    return t ? t->type : SLM_TYPE_F32;
}

int slm_tensor_n_dims(const slm_tensor_t *t)
{
    if (!t)
        return 0;
    for (int i = SLM_MAX_DIMS - 1; i > 0; i--)
        if (t->ne[i] > 1)
            return i + 1;
    return 1;
}

int64_t slm_tensor_ne(const slm_tensor_t *t, int dim)
{
    return (t && dim >= 0 && dim < SLM_MAX_DIMS) ? t->ne[dim] : 0;
}

int64_t slm_tensor_nb(const slm_tensor_t *t, int dim)
{
    return (t && dim >= 0 && dim < SLM_MAX_DIMS) ? t->nb[dim] : 0;
}

int64_t slm_tensor_nelements(const slm_tensor_t *t)
{
    return t ? t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3] : 0;
}

size_t slm_tensor_nbytes(const slm_tensor_t *t)
{
    if (!t)
        return 0;
    return slm_type_row_size(t->type, t->ne[0]) * (size_t)(t->ne[1] * t->ne[2] * t->ne[3]);
}

bool slm_tensor_is_contiguous(const slm_tensor_t *t)
{
    if (!t)
        return false;
    const slm_type_traits_t *tr = slm_type_get_traits(t->type);
    if (!tr || t->nb[0] != (int64_t)tr->size)
        return false;
    int64_t expect = (int64_t)slm_type_row_size(t->type, t->ne[0]);
    for (int i = 1; i < SLM_MAX_DIMS; i++) {
        /* A dimension of size 1 is never stepped over: its stride is irrelevant. */
        if (t->ne[i] != 1 && t->nb[i] != expect)
            return false;
        expect *= t->ne[i];
    }
    return true;
}

slm_op_t slm_tensor_op(const slm_tensor_t *t)
{
    return t ? t->op : SLM_OP_NONE;
}

slm_tensor_t *slm_tensor_src(const slm_tensor_t *t, int i)
{
    return (t && i >= 0 && i < t->n_src) ? t->src[i] : NULL;
}

const char *slm_tensor_name(const slm_tensor_t *t)
{
    return t ? t->name : "";
}

void slm_tensor_set_name(slm_tensor_t *t, const char *name)
{
    if (t)
        snprintf(t->name, sizeof t->name, "%s", name ? name : "");
}

void slm_tensor_set_flags(slm_tensor_t *t, unsigned flags)
{
    if (t)
        t->flags |= flags & (SLM_TENSOR_INPUT | SLM_TENSOR_PARAM | SLM_TENSOR_OUTPUT);
}

unsigned slm_tensor_flags(const slm_tensor_t *t)
{
    return t ? t->flags : 0;
}

slm_tensor_t *slm_tensor_grad(const slm_tensor_t *t)
{
    return t ? t->grad : NULL;
}

void slm__tensor_desc(const slm_tensor_t *t, slm_tensor_desc_t *d)
{
    memset(d, 0, sizeof *d);
    d->type = t->type;
    memcpy(d->ne, t->ne, sizeof d->ne);
    memcpy(d->nb, t->nb, sizeof d->nb);
    d->buffer = t->buffer;
    d->offset = t->offset;
    d->data = t->data;
}

/* ---- metadata-only ops ---- */

slm_tensor_t *slm_view(slm_graph_t *g, slm_tensor_t *a, int n_dims, const int64_t *ne,
                       const int64_t *nb, size_t offset)
{
    if (!g || g->status != SLM_OK)
        return NULL;
    if (!a || !ne || !nb || n_dims < 1 || n_dims > SLM_MAX_DIMS)
        return slm__graph_fail(g, SLM_E_INVALID, "view: bad arguments");
    const slm_type_traits_t *tr = slm_type_get_traits(a->type);
    if (nb[0] != (int64_t)tr->size)
        return slm__graph_fail(g, SLM_E_INVALID, "view: nb[0] must be the element size %u of "
                               "%s, got %lld", tr->size, tr->name, (long long)nb[0]);
    slm_tensor_t probe = {.type = a->type, .ne = {1, 1, 1, 1}};
    for (int i = 0; i < n_dims; i++) {
        if (ne[i] <= 0 || ne[i] > MAX_ELEMENTS || nb[i] < 0)
            return slm__graph_fail(g, SLM_E_INVALID, "view: dimension %d has size %lld, "
                                   "stride %lld", i, (long long)ne[i], (long long)nb[i]);
        probe.ne[i] = ne[i];
        probe.nb[i] = nb[i];
    }
    for (int i = n_dims; i < SLM_MAX_DIMS; i++)
        probe.nb[i] = i == 1 ? (int64_t)slm_type_row_size(a->type, probe.ne[0])
                             : probe.nb[i - 1] * probe.ne[i - 1];
    size_t end = slm__tensor_span(&probe);
    size_t avail = slm__tensor_span(a);
    if (end == 0 || offset > avail || end > avail - offset)
        return slm__graph_fail(g, SLM_E_INVALID, "view: %zu bytes at offset %zu exceed the "
                               "%zu bytes of its source", end, offset, avail);
    return slm__tensor_view(g, a, probe.ne, probe.nb, offset);
}

slm_tensor_t *slm_reshape(slm_graph_t *g, slm_tensor_t *a, int n_dims, const int64_t *ne)
{
    if (!g || g->status != SLM_OK)
        return NULL;
    if (!a || !ne || n_dims < 1 || n_dims > SLM_MAX_DIMS)
        return slm__graph_fail(g, SLM_E_INVALID, "reshape: bad arguments");
    if (!slm_tensor_is_contiguous(a))
        return slm__graph_fail(g, SLM_E_INVALID, "reshape: source '%s' is not contiguous "
                               "(use slm_cont first)", a->name);
    int64_t vne[SLM_MAX_DIMS] = {1, 1, 1, 1};
    int64_t n = 1;
    for (int i = 0; i < n_dims; i++) {
        if (ne[i] <= 0)
            return slm__graph_fail(g, SLM_E_INVALID, "reshape: dimension %d is %lld", i,
                                   (long long)ne[i]);
        vne[i] = ne[i];
        n *= ne[i];
        if (n > MAX_ELEMENTS)
            return slm__graph_fail(g, SLM_E_INVALID, "reshape: too many elements");
    }
    if (n != slm_tensor_nelements(a))
        return slm__graph_fail(g, SLM_E_INVALID, "reshape: %lld elements cannot become %lld",
                               (long long)slm_tensor_nelements(a), (long long)n);
    if (vne[0] % slm_type_get_traits(a->type)->block)
        return slm__graph_fail(g, SLM_E_INVALID, "reshape: row splits a quantized block");
    int64_t vnb[SLM_MAX_DIMS];
    vnb[0] = a->nb[0];
    vnb[1] = (int64_t)slm_type_row_size(a->type, vne[0]);
    for (int i = 2; i < SLM_MAX_DIMS; i++)
        vnb[i] = vnb[i - 1] * vne[i - 1];
    slm_tensor_t *t = slm__tensor_view(g, a, vne, vnb, 0);
    if (t)
        t->view_kind = SLM__VIEW_RESHAPE;
    return t;
}

slm_tensor_t *slm_permute(slm_graph_t *g, slm_tensor_t *a, int ax0, int ax1, int ax2, int ax3)
{
    if (!g || g->status != SLM_OK)
        return NULL;
    if (!a)
        return slm__graph_fail(g, SLM_E_INVALID, "permute: NULL source");
    const int ax[SLM_MAX_DIMS] = {ax0, ax1, ax2, ax3};
    unsigned seen = 0;
    for (int i = 0; i < SLM_MAX_DIMS; i++) {
        if (ax[i] < 0 || ax[i] >= SLM_MAX_DIMS || (seen & (1u << ax[i])))
            return slm__graph_fail(g, SLM_E_INVALID, "permute: axes %d,%d,%d,%d are not a "
                                   "permutation of 0..3", ax0, ax1, ax2, ax3);
        seen |= 1u << ax[i];
    }
    if (slm_type_get_traits(a->type)->block != 1 && ax0 != 0)
        return slm__graph_fail(g, SLM_E_INVALID, "permute: cannot move the blocked dimension "
                               "of a quantized tensor");
    /* Source dimension i becomes dimension ax[i] of the result. */
    int64_t ne[SLM_MAX_DIMS], nb[SLM_MAX_DIMS];
    for (int i = 0; i < SLM_MAX_DIMS; i++) {
        ne[ax[i]] = a->ne[i];
        nb[ax[i]] = a->nb[i];
    }
    slm_tensor_t *t = slm__tensor_view(g, a, ne, nb, 0);
    if (!t)
        return NULL;
    t->view_kind = SLM__VIEW_PERMUTE;
    for (int i = 0; i < SLM_MAX_DIMS; i++)
        t->ip[i] = ax[i];
    return t;
}

slm_tensor_t *slm_transpose(slm_graph_t *g, slm_tensor_t *a)
{
    return slm_permute(g, a, 1, 0, 2, 3);
}
