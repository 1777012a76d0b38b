/* A version-2 test backend: two devices, "testbe2:0" (a discrete GPU by its score)
 * running only f32 add and "testbe2:1" (CPU-emulated) only f32 scale, with
 * init/cleanup, buffer_copy, graph_record/replay and an extension ("testbe2.stats")
 * that reports the calls. For the scheduler and device-choice tests. */
#include <stdlib.h>
#include <string.h>

#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>

/* What the tests read back through get_proc_address("testbe2.stats"). */
typedef struct tb2_stats {
    int inits, cleanups, copies, records, replays, computes;
} tb2_stats_t;

static tb2_stats_t stats;
static const slm_host_t *host_table;
static int devs[2] = {0, 1};

/* TESTBE2_INIT_FAIL set: init fails and says why (the reason `slmops plugins`
 * shows); "nodev" as a backend without its hardware (SLM_E_NOT_FOUND), anything
 * else as one whose driver failed. */
static int tb2_init(const slm_host_t *host, void **backend)
{
    host_table = host;
    if (getenv("TESTBE2_INIT_FAIL")) {
        host->log(SLM_LOG_DEBUG, "testbe2", "looking for devices");
        host->log(SLM_LOG_INFO, "testbe2", "no testbe2 device (TESTBE2_INIT_FAIL is set)");
        host->log(SLM_LOG_DEBUG, "testbe2", "giving up");
        return strcmp(getenv("TESTBE2_INIT_FAIL"), "nodev") == 0 ? SLM_E_NOT_FOUND : SLM_E_DEVICE;
    }
    stats.inits++;
    *backend = &stats;
    return SLM_OK;
}

static void tb2_cleanup(void *backend)
{
    ((tb2_stats_t *)backend)->cleanups++;
}

static void tb2_read_stats(tb2_stats_t *out)
{
    *out = stats;
}

static void *tb2_proc(void *backend, const char *name)
{
    (void)backend;
    return name && strcmp(name, "testbe2.stats") == 0 ? (void *)tb2_read_stats : NULL;
}

static int tb2_count(void *backend)
{
    return backend == &stats ? 2 : 0;
}

static int tb2_props(void *backend, int index, slm_device_props_t *p)
{
    if (backend != &stats || index < 0 || index > 1 || !p)
        return SLM_E_INVALID;
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    strcpy(p->name, index == 0 ? "testbe2 adder" : "testbe2 scaler");
    p->type = index == 0 ? SLM_DEVICE_DGPU : SLM_DEVICE_IGPU;
    p->memory_total = p->memory_free = 1u << 30;
    p->score = index == 0 ? SLM_DEVICE_SCORE_DGPU : SLM_DEVICE_SCORE_EMULATED;
    p->host_visible = 1;
    strcpy(p->description, "tests/compute version-2 backend");
    return SLM_OK;
}

static int tb2_open(void *backend, int index, const slm_device_config_t *cfg, void **dev)
{
    (void)cfg;
    if (backend != &stats || index < 0 || index > 1)
        return SLM_E_INVALID;
    *dev = &devs[index];
    return SLM_OK;
}

static void tb2_close(void *dev)
{
    (void)dev;
}

static bool tb2_supports(void *dev, const slm_node_t *n)
{
    int want = *(int *)dev == 0 ? SLM_OP_ADD : SLM_OP_SCALE;
    if (n->op != want || n->dst.type != SLM_TYPE_F32)
        return false;
    for (int i = 0; i < n->n_src; i++)
        if (n->src[i].type != SLM_TYPE_F32)
            return false;
    return true;
}

static int tb2_alloc(void *dev, uint64_t size, void **buffer, void **base)
{
    (void)dev;
    void *p = calloc(1, size ? size : 1);
    if (!p)
        return SLM_E_NOMEM;
    *buffer = *base = p;
    return SLM_OK;
}

static void tb2_free(void *dev, void *buffer)
{
    (void)dev;
    free(buffer);
}

static int tb2_set(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size)
{
    (void)dev;
    memcpy((char *)buffer + offset, src, size);
    return SLM_OK;
}

static int tb2_get(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size)
{
    (void)dev;
    memcpy(dst, (char *)buffer + offset, size);
    return SLM_OK;
}

static int tb2_clear(void *dev, void *buffer, uint64_t offset, uint64_t size, uint8_t value)
{
    (void)dev;
    memset((char *)buffer + offset, value, size);
    return SLM_OK;
}

static int tb2_copy(void *dst_dev, void *dst, uint64_t dst_offset, void *src_dev, void *src,
                    uint64_t src_offset, uint64_t size)
{
    (void)dst_dev;
    (void)src_dev;
    stats.copies++;
    memmove((char *)dst + dst_offset, (const char *)src + src_offset, size);
    return SLM_OK;
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
                    *at(d, i0, i1, i2, i3) =
                        n->op == SLM_OP_SCALE
                            ? x * n->fp[0]
                            : x + *at(b, i0 % b->ne[0], i1 % b->ne[1], i2 % b->ne[2],
                                      i3 % b->ne[3]);
                }
}

static int tb2_compute(void *dev, const slm_node_t *const *nodes, size_t n_nodes)
{
    stats.computes++;
    for (size_t i = 0; i < n_nodes; i++)
        if (!tb2_supports(dev, nodes[i]))
            return SLM_E_UNSUPPORTED;
    for (size_t i = 0; i < n_nodes; i++)
        run(nodes[i]);
    return SLM_OK;
}

/* A recording is a private copy of the node descriptions, as a command buffer
 * would hold them: a replay must not read the host's nodes. */
typedef struct tb2_graph {
    size_t n;
    slm_node_t *nodes;
} tb2_graph_t;

static int tb2_record(void *dev, const slm_node_t *const *nodes, size_t n_nodes, void **graph)
{
    for (size_t i = 0; i < n_nodes; i++)
        if (!tb2_supports(dev, nodes[i]))
            return SLM_E_UNSUPPORTED;
    tb2_graph_t *g = calloc(1, sizeof *g);
    if (!g || !(g->nodes = calloc(n_nodes ? n_nodes : 1, sizeof *g->nodes))) {
        free(g);
        return SLM_E_NOMEM;
    }
    for (size_t i = 0; i < n_nodes; i++)
        g->nodes[i] = *nodes[i];
    g->n = n_nodes;
    stats.records++;
    *graph = g;
    return SLM_OK;
}

static int tb2_replay(void *dev, void *graph)
{
    (void)dev;
    tb2_graph_t *g = graph;
    stats.replays++;
    for (size_t i = 0; i < g->n; i++)
        run(&g->nodes[i]);
    return SLM_OK;
}

static void tb2_release(void *dev, void *graph)
{
    (void)dev;
    tb2_graph_t *g = graph;
    if (g)
        free(g->nodes);
    free(g);
}

static const slm_backend_iface_t iface = {
    .struct_size = sizeof(slm_backend_iface_t),
    .iface_version = SLM_BACKEND_IFACE_VERSION,
    .init = tb2_init,
    .cleanup = tb2_cleanup,
    .device_count = tb2_count,
    .device_props = tb2_props,
    .device_open = tb2_open,
    .device_close = tb2_close,
    .get_proc_address = tb2_proc,
    .supports_node = tb2_supports,
    .buffer_alloc = tb2_alloc,
    .buffer_free = tb2_free,
    .buffer_set = tb2_set,
    .buffer_get = tb2_get,
    .buffer_clear = tb2_clear,
    .graph_compute = tb2_compute,
    .buffer_copy = tb2_copy,
    .graph_record = tb2_record,
    .graph_replay = tb2_replay,
    .graph_release = tb2_release,
};

SLM_PLUGIN_DEFINE(SLM_PLUGIN_KIND_BACKEND, "testbe2", "0.1.0", NULL, &iface)
