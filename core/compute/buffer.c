/* Persistent device buffers (model weights, KV caches) that outlive graphs, and
 * binding graph leaves to them; the scheduler's plan places bound leaves there. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <slmops/sched.h>

#include "internal/device.h"
#include "internal/graph.h"
#include "internal/util.h"

static slm_buffer_t *buffer_shell(slm_sched_t *s, uint64_t size, slm_error_t *err)
{
    if (!s) {
        slm__fail(err, SLM_E_INVALID, NULL, -1, "buffer: scheduler is NULL");
        return NULL;
    }
    slm_buffer_t *b = calloc(1, sizeof *b);
    if (!b) {
        slm__fail(err, SLM_E_NOMEM, NULL, -1, "buffer: out of memory");
        return NULL;
    }
    b->sched = s;
    b->dev = slm__sched_primary(s);
    b->size = size;
    return b;
}

slm_buffer_t *slm_buffer_new(slm_sched_t *s, uint64_t size, slm_error_t *err)
{
    slm_buffer_t *b = buffer_shell(s, size, err);
    if (!b)
        return NULL;
    slm_device_t *dev = b->dev;
    /* A zero-byte request still gets a handle, so that binding logic stays uniform. */
    int rc = slm__device_alloc(dev, size ? size : 1, SLM_BUFFER_RESIDENT, &b->buffer, &b->base);
    if (rc < 0 || !b->buffer) {
        free(b);
        slm__fail(err, SLM_E_DEVICE, NULL, -1, "%s: allocating a %llu-byte buffer failed",
                  dev->info.id, (unsigned long long)size);
        return NULL;
    }
    rc = dev->iface->buffer_clear(dev->ctx, b->buffer, 0, size, 0);
    if (rc < 0) {
        slm_buffer_free(b);
        slm__fail(err, SLM_E_DEVICE, NULL, -1, "%s: clearing a %llu-byte buffer failed",
                  dev->info.id, (unsigned long long)size);
        return NULL;
    }
    return b;
}

/* The optional slot, only when the plugin's vtable is recent enough to have it. */
static int wrap_host(slm_device_t *dev, const void *data, uint64_t size, slm_buffer_t *b)
{
    const slm_backend_iface_t *f = dev->iface;
    size_t need = offsetof(slm_backend_iface_t, buffer_from_host) + sizeof f->buffer_from_host;
    if (f->struct_size < need || !f->buffer_from_host || !dev->props.host_visible)
        return SLM_E_UNSUPPORTED;
    int rc = f->buffer_from_host(dev->ctx, (void *)data, size, &b->buffer, &b->base);
    if (rc < 0 || !b->buffer)
        return rc < 0 ? rc : SLM_E_DEVICE;
    b->zero_copy = true;
    return SLM_OK;
}

slm_buffer_t *slm_buffer_from_host(slm_sched_t *s, const void *data, uint64_t size,
                                   slm_error_t *err)
{
    if (!data && size) {
        slm__fail(err, SLM_E_INVALID, NULL, -1, "buffer_from_host: data is NULL");
        return NULL;
    }
    slm_buffer_t *b = buffer_shell(s, size, err);
    if (!b)
        return NULL;
    if (size && wrap_host(b->dev, data, size, b) == SLM_OK)
        return b;
    /* A copy, written whole at once and then only read: no clearing first, and the
     * backend may place it where reading is fastest (the CPU's huge pages, D60). */
    int rc = slm__device_alloc(b->dev, size ? size : 1, SLM_BUFFER_RESIDENT | SLM_BUFFER_FROM_HOST,
                               &b->buffer, &b->base);
    if (rc == SLM_E_INVALID)   /* a plugin that refuses hints it does not know */
        rc = slm__device_alloc(b->dev, size ? size : 1, SLM_BUFFER_RESIDENT, &b->buffer, &b->base);
    if (rc < 0) {
        slm__fail(err, SLM_E_DEVICE, NULL, -1, "%s: allocating a %llu-byte buffer failed",
                  b->dev->info.id, (unsigned long long)size);
        free(b);
        return NULL;
    }
    if (slm_buffer_set(b, 0, data, size) < 0) {
        slm_buffer_free(b);
        slm__fail(err, SLM_E_DEVICE, NULL, -1, "buffer_from_host: copying %llu bytes failed",
                  (unsigned long long)size);
        return NULL;
    }
    return b;
}

void slm_buffer_free(slm_buffer_t *b)
{
    if (!b)
        return;
    if (b->buffer)
        b->dev->iface->buffer_free(b->dev->ctx, b->buffer);
    free(b);
}

uint64_t slm_buffer_size(const slm_buffer_t *b)
{
    return b ? b->size : 0;
}

bool slm_buffer_is_zero_copy(const slm_buffer_t *b)
{
    return b && b->zero_copy;
}

static bool in_buffer(const slm_buffer_t *b, uint64_t offset, uint64_t size)
{
    return b && offset <= b->size && size <= b->size - offset;
}

int slm_buffer_set(slm_buffer_t *b, uint64_t offset, const void *data, uint64_t size)
{
    if (!in_buffer(b, offset, size) || (size && !data))
        return SLM_E_INVALID;
    if (size == 0)
        return SLM_OK;
    b->data_gen++;
    int rc = b->dev->iface->buffer_set(b->dev->ctx, b->buffer, offset, data, size);
    return rc < 0 ? SLM_E_DEVICE : SLM_OK;
}

int slm_buffer_get(const slm_buffer_t *b, uint64_t offset, void *data, uint64_t size)
{
    if (!in_buffer(b, offset, size) || (size && !data))
        return SLM_E_INVALID;
    if (size == 0)
        return SLM_OK;
    const slm_backend_iface_t *f = b->dev->iface;
    if (f->synchronize)
        f->synchronize(b->dev->ctx);
    int rc = f->buffer_get(b->dev->ctx, b->buffer, offset, data, size);
    return rc < 0 ? SLM_E_DEVICE : SLM_OK;
}

int slm_tensor_bind(slm_tensor_t *t, slm_buffer_t *b, uint64_t offset, slm_error_t *err)
{
    if (!t || !b)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "tensor_bind: NULL argument");
    if (t->op != SLM_OP_NONE || t->view_src || t->role != SLM__ROLE_NONE)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "tensor_bind: '%s' is not a leaf the "
                         "caller owns", t->name);
    if (t->graph->plan)
        return slm__fail(err, SLM_E_STATE, NULL, -1, "tensor_bind: the graph of '%s' is "
                         "already allocated", t->name);
    uint64_t span = slm__tensor_span(t);
    if (offset > b->size || span > b->size - offset)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "tensor_bind: '%s' (%llu bytes at "
                         "offset %llu) does not fit in a %llu-byte buffer", t->name,
                         (unsigned long long)span, (unsigned long long)offset,
                         (unsigned long long)b->size);
    t->bound = b;
    t->bound_offset = offset;
    return SLM_OK;
}
