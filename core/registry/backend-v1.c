/* Version-1 backend plugins behind the version-2 vtable: the backend-level slots
 * gain a context (the v1 table itself); the device-level ones are the plugin's own. */
#include "config.h"

#include <string.h>

#include "internal/device.h"

static int v1_device_count(void *backend)
{
    const slm_backend_iface_v1_t *v1 = backend;
    return v1->device_count();
}

static int v1_device_props(void *backend, int index, slm_device_props_t *props)
{
    const slm_backend_iface_v1_t *v1 = backend;
    return v1->device_props(index, props);
}

static int v1_device_open(void *backend, int index, const slm_device_config_t *cfg, void **dev)
{
    const slm_backend_iface_v1_t *v1 = backend;
    return v1->device_open(index, cfg, dev);
}

/* An optional v1 slot, or NULL when the plugin's table is too short to hold it. */
#define V1_SLOT(v1, slot)                                                                 \
    ((v1)->struct_size >= offsetof(slm_backend_iface_v1_t, slot) + sizeof (v1)->slot     \
         ? (v1)->slot : NULL)

void slm__backend_adapt_v1(slm__backend_t *b, const slm_backend_iface_v1_t *v1)
{
    memset(&b->iface, 0, sizeof b->iface);
    b->iface.struct_size = sizeof b->iface;
    b->iface.iface_version = 2;
    b->iface.device_count = v1_device_count;
    b->iface.device_props = v1_device_props;
    b->iface.device_open = v1_device_open;
    b->iface.device_close = v1->device_close;
    b->iface.supports_node = v1->supports_node;
    b->iface.buffer_alloc = v1->buffer_alloc;
    b->iface.buffer_free = v1->buffer_free;
    b->iface.buffer_set = v1->buffer_set;
    b->iface.buffer_get = v1->buffer_get;
    b->iface.buffer_clear = v1->buffer_clear;
    b->iface.graph_compute = v1->graph_compute;
    b->iface.synchronize = V1_SLOT(v1, synchronize);
    b->iface.buffer_from_host = V1_SLOT(v1, buffer_from_host);
    b->ctx = (void *)v1;
    b->plugin_version = 1;
}
