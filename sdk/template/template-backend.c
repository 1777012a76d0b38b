/* A complete slmops backend plugin to copy: one host-memory device ("template:0")
 * running four f32 ops (add, mul, scale, silu) on tensors of any strides. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slmops/plugin-backend.h>

#define PLUGIN_NAME "template-backend"
#define PLUGIN_VERSION "0.1.0"

static const slm_host_t *host;

/* A buffer is plain host memory; the handle remembers its size for bounds checks. */
typedef struct tb_buffer {
    uint64_t size;
    unsigned char *data;
} tb_buffer_t;

typedef struct tb_device {
    int index;
} tb_device_t;

static int tb_device_count(void)
{
    return 1;
}

static int tb_device_props(int index, slm_device_props_t *p)
{
    if (index != 0 || !p || p->struct_size < sizeof *p)
        return SLM_E_INVALID;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t mem = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    memset((char *)p + sizeof p->struct_size, 0, sizeof *p - sizeof p->struct_size);
    strcpy(p->name, "Template host-memory device");
    p->type = SLM_DEVICE_ACCEL;
    p->memory_total = mem;
    p->memory_free = mem;
    p->score = 1;   /* below the CPU backend, so --device auto keeps choosing the CPU */
    p->host_visible = 1;
    strcpy(p->description, "sdk/template: scalar f32 add, mul, scale, silu");
    return SLM_OK;
}

static int tb_device_open(int index, const slm_device_config_t *cfg, void **dev)
{
    (void)cfg;
    if (index != 0 || !dev)
        return SLM_E_INVALID;
    tb_device_t *d = calloc(1, sizeof *d);
    if (!d)
        return SLM_E_NOMEM;
    *dev = d;
    return SLM_OK;
}

static void tb_device_close(void *dev)
{
    free(dev);
}

static int tb_buffer_alloc(void *dev, uint64_t size, void **buffer, void **base)
{
    (void)dev;
    if (!buffer || !base || size > SIZE_MAX - 64)
        return SLM_E_INVALID;
    tb_buffer_t *b = calloc(1, sizeof *b);
    if (!b)
        return SLM_E_NOMEM;
    b->data = malloc(size ? (size_t)size : 1);
    if (!b->data) {
        free(b);
        return SLM_E_NOMEM;
    }
    b->size = size;
    *buffer = b;
    *base = b->data;
    return SLM_OK;
}

static void tb_buffer_free(void *dev, void *buffer)
{
    (void)dev;
    tb_buffer_t *b = buffer;
    if (b)
        free(b->data);
    free(b);
}

static bool in_range(const tb_buffer_t *b, uint64_t offset, uint64_t size)
{
    return b && offset <= b->size && size <= b->size - offset;
}

static int tb_buffer_set(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size)
{
    (void)dev;
    tb_buffer_t *b = buffer;
    if (!in_range(b, offset, size) || (size && !src))
        return SLM_E_INVALID;
    memcpy(b->data + offset, src, (size_t)size);
    return SLM_OK;
}

static int tb_buffer_get(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size)
{
    (void)dev;
    tb_buffer_t *b = buffer;
    if (!in_range(b, offset, size) || (size && !dst))
        return SLM_E_INVALID;
    memcpy(dst, b->data + offset, (size_t)size);
    return SLM_OK;
}

static int tb_buffer_clear(void *dev, void *buffer, uint64_t offset, uint64_t size, uint8_t value)
{
    (void)dev;
    tb_buffer_t *b = buffer;
    if (!in_range(b, offset, size))
        return SLM_E_INVALID;
    memset(b->data + offset, value, (size_t)size);
    return SLM_OK;
}

/* ---- ops ---- */

static bool is_f32(const slm_tensor_desc_t *t)
{
    return t->type == SLM_TYPE_F32 && t->buffer != NULL;
}

static bool same_shape(const slm_tensor_desc_t *a, const slm_tensor_desc_t *b)
{
    return memcmp(a->ne, b->ne, sizeof a->ne) == 0;
}

static bool tb_supports_node(void *dev, const slm_node_t *n)
{
    (void)dev;
    if (!n || n->struct_size < sizeof *n || !is_f32(&n->dst) || !is_f32(&n->src[0]) ||
        !same_shape(&n->dst, &n->src[0]))
        return false;
    switch (n->op) {
    case SLM_OP_SCALE:
    case SLM_OP_SILU:
        return n->n_src == 1;
    case SLM_OP_ADD:
    case SLM_OP_MUL:
        if (n->n_src != 2 || !is_f32(&n->src[1]))
            return false;
        for (int d = 0; d < SLM_MAX_DIMS; d++)   /* src1 broadcasts onto src0 */
            if (n->src[1].ne[d] <= 0 || n->src[0].ne[d] % n->src[1].ne[d])
                return false;
        return true;
    default:
        return false;
    }
}

/* Element (i0,i1,i2,i3) of t, found from the buffer handle so it works even when
 * the host passes no data pointer. */
static float *at(const slm_tensor_desc_t *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    const tb_buffer_t *b = t->buffer;
    return (float *)(b->data + t->offset + i0 * t->nb[0] + i1 * t->nb[1] + i2 * t->nb[2] +
                     i3 * t->nb[3]);
}

static void run_node(const slm_node_t *n)
{
    const slm_tensor_desc_t *d = &n->dst, *a = &n->src[0], *b = &n->src[1];
    for (int64_t i3 = 0; i3 < d->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < d->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < d->ne[1]; i1++)
                for (int64_t i0 = 0; i0 < d->ne[0]; i0++) {
                    float x = *at(a, i0, i1, i2, i3), y = 0.0f, r;
                    if (n->n_src > 1)
                        y = *at(b, i0 % b->ne[0], i1 % b->ne[1], i2 % b->ne[2], i3 % b->ne[3]);
                    switch (n->op) {
                    case SLM_OP_ADD: r = x + y; break;
                    case SLM_OP_MUL: r = x * y; break;
                    case SLM_OP_SCALE: r = x * n->fp[0]; break;
                    default: r = x / (1.0f + expf(-x)); break;   /* SILU */
                    }
                    *at(d, i0, i1, i2, i3) = r;
                }
}

static int tb_graph_compute(void *dev, const slm_node_t *const *nodes, size_t n_nodes)
{
    for (size_t i = 0; i < n_nodes; i++)
        if (!tb_supports_node(dev, nodes[i])) {
            if (host)
                host->log(SLM_LOG_ERROR, PLUGIN_NAME, "node %zu (op %d) is not supported", i,
                          nodes[i] ? nodes[i]->op : -1);
            return SLM_E_UNSUPPORTED;
        }
    for (size_t i = 0; i < n_nodes; i++)
        run_node(nodes[i]);
    return SLM_OK;
}

static const slm_backend_iface_t tb_iface = {
    .struct_size = sizeof(slm_backend_iface_t),
    .iface_version = SLM_BACKEND_IFACE_VERSION,
    .device_count = tb_device_count,
    .device_props = tb_device_props,
    .device_open = tb_device_open,
    .device_close = tb_device_close,
    .supports_node = tb_supports_node,
    .buffer_alloc = tb_buffer_alloc,
    .buffer_free = tb_buffer_free,
    .buffer_set = tb_buffer_set,
    .buffer_get = tb_buffer_get,
    .buffer_clear = tb_buffer_clear,
    .graph_compute = tb_graph_compute,
    .synchronize = NULL,   /* optional: everything completes inside graph_compute */
};

static const slm_plugin_descriptor_t tb_descriptor = {
    .struct_size = sizeof(slm_plugin_descriptor_t),
    .abi_version = 1,
    .kind = SLM_PLUGIN_KIND_BACKEND,
    .name = PLUGIN_NAME,       /* must equal the manifest's "name" */
    .version = PLUGIN_VERSION, /* must equal the manifest's "version" */
    .iface = &tb_iface,
};

/* The host offers its interface version; this plugin speaks version 1, which
 * every host from 1 on accepts, so it answers 1 whatever newer version is offered. */
static const slm_plugin_descriptor_t *tb_entry(const slm_host_t *h, uint32_t host_abi_version)
{
    if (h && h->struct_size >= offsetof(slm_host_t, log) + sizeof h->log)
        host = h;
    if (host_abi_version < 1) {
        if (host)
            host->log(SLM_LOG_ERROR, PLUGIN_NAME, "host offers ABI %u, this plugin needs 1",
                      host_abi_version);
        return NULL;
    }
    return &tb_descriptor;
}

SLM_PLUGIN_DEFINE_ENTRY(tb_entry)
