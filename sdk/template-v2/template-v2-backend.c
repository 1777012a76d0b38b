/* A complete slmops backend plugin to copy, written against interface version 2: a
 * backend context made by init, one host-memory device ("template2:0") running four
 * f32 ops (add, mul, scale, silu) on tensors of any strides, device-to-device copies. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>

#define PLUGIN_NAME "template-v2-backend"
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

/* The backend context: what a GPU backend keeps per process (its instance, the
 * physical devices found). init runs once after loading, cleanup before dlclose. */
typedef struct tb_backend {
    int n_devices;
} tb_backend_t;

static int tb_init(const slm_host_t *h, void **backend)
{
    host = h;
    tb_backend_t *b = calloc(1, sizeof *b);
    if (!b)
        return SLM_E_NOMEM;
    b->n_devices = 1;
    *backend = b;
    return SLM_OK;
}

static void tb_cleanup(void *backend)
{
    free(backend);
}

static int tb_device_count(void *backend)
{
    return ((tb_backend_t *)backend)->n_devices;
}

static int tb_device_props(void *backend, int index, slm_device_props_t *p)
{
    if (index < 0 || index >= tb_device_count(backend) || !p || p->struct_size < sizeof *p)
        return SLM_E_INVALID;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t mem = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    memset((char *)p + sizeof p->struct_size, 0, sizeof *p - sizeof p->struct_size);
    strcpy(p->name, "Template v2 host-memory device");
    p->type = SLM_DEVICE_ACCEL;
    p->memory_total = mem;
    p->memory_free = mem;
    p->score = SLM_DEVICE_SCORE_EMULATED;   /* below the CPU backend: auto keeps the CPU */
    p->host_visible = 1;
    strcpy(p->description, "sdk/template: scalar f32 add, mul, scale, silu");
    return SLM_OK;
}

static int tb_device_open(void *backend, int index, const slm_device_config_t *cfg, void **dev)
{
    (void)cfg;
    if (index < 0 || index >= tb_device_count(backend) || !dev)
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

/* Both buffers are host memory of this backend, so a device-to-device copy is a
 * memmove (the ranges may overlap inside one buffer). */
static int tb_buffer_copy(void *dst_dev, void *dst, uint64_t dst_offset, void *src_dev, void *src,
                          uint64_t src_offset, uint64_t size)
{
    (void)dst_dev;
    (void)src_dev;
    tb_buffer_t *d = dst, *s = src;
    if (!in_range(d, dst_offset, size) || !in_range(s, src_offset, size))
        return SLM_E_INVALID;
    memmove(d->data + dst_offset, s->data + src_offset, (size_t)size);
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
    .init = tb_init,
    .cleanup = tb_cleanup,
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
    .buffer_copy = tb_buffer_copy,
    /* Optional and left out here: get_proc_address, buffer_alloc_ex, the async
     * copies and events, graph_record/replay (see <slmops/plugin-backend.h>). */
};

/* The entry point, the plugin-ABI and interface-version negotiation and the
 * descriptor: name and version must equal the manifest's. */
SLM_PLUGIN_DEFINE(SLM_PLUGIN_KIND_BACKEND, PLUGIN_NAME, PLUGIN_VERSION, NULL, &tb_iface)
