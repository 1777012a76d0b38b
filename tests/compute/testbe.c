/* A deliberately small backend for the scheduler tests: one "accel" device with
 * host buffers that runs only ADD and SCALE on f32, so everything else falls back. */
#include <stdlib.h>
#include <string.h>

#include <slmops/plugin-backend.h>

static const slm_host_t *host_table;

static int device_count(void)
{
    return 1;
}

static int device_props(int index, slm_device_props_t *props)
{
    if (index != 0 || !props)
        return SLM_E_INVALID;
    memset(props, 0, sizeof *props);
    props->struct_size = sizeof *props;
    strcpy(props->name, "test accelerator (add, scale)");
    props->type = SLM_DEVICE_ACCEL;
    props->memory_total = props->memory_free = 1u << 30;
    props->score = 1;
    props->host_visible = 1;
    strcpy(props->description, "tests/compute fallback backend");
    return 0;
}

static int dummy_ctx;

static int device_open(int index, const slm_device_config_t *cfg, void **dev)
{
    (void)cfg;
    if (index != 0)
        return SLM_E_INVALID;
    *dev = &dummy_ctx;
    return 0;
}

static void device_close(void *dev)
{
    (void)dev;
}

static bool supports_node(void *dev, const slm_node_t *n)
{
    (void)dev;
    if (n->op != SLM_OP_ADD && n->op != SLM_OP_SCALE)
        return false;
    if (n->dst.type != SLM_TYPE_F32)
        return false;
    for (int i = 0; i < n->n_src; i++)
        if (n->src[i].type != SLM_TYPE_F32)
            return false;
    return true;
}

static int buffer_alloc(void *dev, uint64_t size, void **buffer, void **base)
{
    (void)dev;
    void *p = calloc(1, size ? size : 1);
    if (!p)
        return SLM_E_NOMEM;
    *buffer = *base = p;
    return 0;
}

static void buffer_free(void *dev, void *buffer)
{
    (void)dev;
    free(buffer);
}

static int buffer_set(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size)
{
    (void)dev;
    memcpy((char *)buffer + offset, src, size);
    return 0;
}

static int buffer_get(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size)
{
    (void)dev;
    memcpy(dst, (char *)buffer + offset, size);
    return 0;
}

static int buffer_clear(void *dev, void *buffer, uint64_t offset, uint64_t size, uint8_t value)
{
    (void)dev;
    memset((char *)buffer + offset, value, size);
    return 0;
}

static float *at(const slm_tensor_desc_t *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    return (float *)((char *)t->data + i0 * t->nb[0] + i1 * t->nb[1] + i2 * t->nb[2] +
                     i3 * t->nb[3]);
}

static void run(const slm_node_t *n)
{
    const slm_tensor_desc_t *d = &n->dst, *a = &n->src[0], *b = &n->src[1];
    for (int64_t i3 = 0; i3 < d->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < d->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < d->ne[1]; i1++)
                for (int64_t i0 = 0; i0 < d->ne[0]; i0++) {
                    float x = *at(a, i0, i1, i2, i3);
                    float y = n->op == SLM_OP_SCALE
                                  ? x * n->fp[0]
                                  : x + *at(b, i0 % b->ne[0], i1 % b->ne[1], i2 % b->ne[2],
                                            i3 % b->ne[3]);
                    *at(d, i0, i1, i2, i3) = y;
                }
}

static int graph_compute(void *dev, const slm_node_t *const *nodes, size_t n_nodes)
{
    for (size_t i = 0; i < n_nodes; i++) {
        if (!supports_node(dev, nodes[i])) {
            host_table->log(SLM_LOG_ERROR, "testbe", "node %zu (op %d) is not supported", i,
                      (int)nodes[i]->op);
            return SLM_E_UNSUPPORTED;
        }
        run(nodes[i]);
    }
    return 0;
}

static const slm_backend_iface_t iface = {
    .struct_size = sizeof(slm_backend_iface_t),
    .iface_version = SLM_BACKEND_IFACE_VERSION,
    .device_count = device_count,
    .device_props = device_props,
    .device_open = device_open,
    .device_close = device_close,
    .supports_node = supports_node,
    .buffer_alloc = buffer_alloc,
    .buffer_free = buffer_free,
    .buffer_set = buffer_set,
    .buffer_get = buffer_get,
    .buffer_clear = buffer_clear,
    .graph_compute = graph_compute,
};

static const slm_plugin_descriptor_t descriptor = {
    .struct_size = sizeof(slm_plugin_descriptor_t),
    .abi_version = SLM_PLUGIN_ABI_VERSION,
    .kind = SLM_PLUGIN_KIND_BACKEND,
    .name = "testbe",
    .version = "0.1.0",
    .iface = &iface,
};

static const slm_plugin_descriptor_t *entry(const slm_host_t *h, uint32_t host_abi)
{
    if (host_abi < SLM_PLUGIN_ABI_MIN_VERSION)
        return NULL;
    host_table = h;
    return &descriptor;
}

SLM_PLUGIN_DEFINE_ENTRY(entry)
