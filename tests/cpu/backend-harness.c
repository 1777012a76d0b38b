/* Loading a CPU backend variant straight from the build tree and driving its
 * vtable: tensors in its buffers, in any of a few layouts, and single nodes. */
#include "config.h"

#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/types.h>

#include "backend-harness.h"

const slm_plugin_descriptor_t *h_desc;
const slm_backend_iface_t *h_iface;
void *h_backend;
slm_plugin_entry_fn h_entry;
void *h_dev;

#define H_MAX_BUFFERS 4096
static void *buffers[H_MAX_BUFFERS];
static int n_buffers;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

/* Every message of any level, for h_logged; those up to INFO also go to stderr. */
static char logged[16384];
static size_t n_logged;

static void host_log(slm_log_level_t level, const char *category, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(logged + n_logged, sizeof logged - n_logged, fmt, ap);
    va_end(ap);
    if (k > 0)
        n_logged = n_logged + (size_t)k + 1 < sizeof logged ? n_logged + (size_t)k + 1 : 0;
    if (level > SLM_LOG_INFO)
        return;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] ", category);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool h_logged(const char *needle)
{
    for (size_t i = 0; i < n_logged; i += strlen(logged + i) + 1)
        if (strstr(logged + i, needle))
            return true;
    return false;
}

static const slm_host_t host = {
    .struct_size = sizeof(slm_host_t),
    .abi_version = SLM_PLUGIN_ABI_VERSION,
    .log = host_log,
};

const char *h_missing_cpu_feature(const char *features)
{
    static char missing[64];
    char flags[8192] = "";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[8192];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "flags", 5) == 0) {
                snprintf(flags, sizeof flags, " %s ", strchr(line, ':') ? strchr(line, ':') + 1 : "");
                break;
            }
        fclose(f);
    }
    for (char *nl = strchr(flags, '\n'); nl; nl = strchr(nl, '\n'))
        *nl = ' ';
    char want[256];
    snprintf(want, sizeof want, "%s", features);
    for (char *tok = strtok(want, " "); tok; tok = strtok(NULL, " ")) {
        char pat[80];
        snprintf(pat, sizeof pat, " %s ", tok);
        if (!strstr(flags, pat)) {
            snprintf(missing, sizeof missing, "%s", tok);
            return missing;
        }
    }
    return NULL;
}

const char *h_load(const char *variant)
{
    static char why[2200];
    const char *top = getenv("top_builddir");
    char path[1024];
    snprintf(path, sizeof path, "%s/plugins/backend-cpu/.libs/%s.so", top ? top : ".", variant);
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(why, sizeof why, "dlopen %s: %s", path, dlerror());
        return why;
    }
    h_entry = (slm_plugin_entry_fn)dlsym(lib, SLM_PLUGIN_ENTRY_SYMBOL);
    if (!h_entry) {
        snprintf(why, sizeof why, "%s has no %s", path, SLM_PLUGIN_ENTRY_SYMBOL);
        return why;
    }
    h_desc = h_entry(&host, SLM_PLUGIN_ABI_VERSION);
    if (!h_desc) {
        snprintf(why, sizeof why, "%s: entry returned NULL", path);
        return why;
    }
    h_iface = h_desc->iface;
    if (h_iface->init && h_iface->init(&host, &h_backend) != SLM_OK) {
        snprintf(why, sizeof why, "%s: init failed", path);
        return why;
    }
    return NULL;
}

void h_open_flags(int n_threads, uint32_t flags)
{
    slm_device_config_t cfg = {.struct_size = sizeof cfg, .n_threads = n_threads, .flags = flags};
    ck_assert_int_eq(h_iface->device_open(h_backend, 0, &cfg, &h_dev), SLM_OK);
}

void h_open(int n_threads)
{
    h_open_flags(n_threads, 0);
}

void h_close(void)
{
    for (int i = 0; i < n_buffers; i++)
        h_iface->buffer_free(h_dev, buffers[i]);
    n_buffers = 0;
    if (h_dev)
        h_iface->device_close(h_dev);
    h_dev = NULL;
}

static size_t esize(int type)
{
    return type == SLM_TYPE_F16 || type == SLM_TYPE_BF16 ? 2 : 4;
}

slm_tensor_desc_t h_tensor(int type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3,
                           int layout)
{
    slm_tensor_desc_t t = {.type = type, .ne = {ne0, ne1, ne2, ne3}};
    int64_t es = (int64_t)esize(type);
    switch (layout) {
    case H_GAPS:
        t.nb[0] = 2 * es;
        t.nb[1] = t.nb[0] * ne0 + 3 * es;
        t.nb[2] = t.nb[1] * ne1 + 5 * es;
        t.nb[3] = t.nb[2] * ne2 + 7 * es;
        break;
    case H_TRANS:
        t.nb[1] = es;
        t.nb[0] = es * ne1;
        t.nb[2] = es * ne0 * ne1;
        t.nb[3] = t.nb[2] * ne2;
        break;
    default:
        t.nb[0] = es;
        t.nb[1] = es * ne0;
        t.nb[2] = t.nb[1] * ne1;
        t.nb[3] = t.nb[2] * ne2;
        break;
    }
    uint64_t bytes = (uint64_t)(t.nb[3] * ne3) + 64;
    void *base = NULL;
    ck_assert_int_lt(n_buffers, H_MAX_BUFFERS);
    ck_assert_int_eq(h_iface->buffer_alloc(h_dev, bytes, &t.buffer, &base), SLM_OK);
    ck_assert_ptr_nonnull(base);
    /* Poison so that a missed write shows up. */
    ck_assert_int_eq(h_iface->buffer_clear(h_dev, t.buffer, 0, bytes, 0x7f), SLM_OK);
    buffers[n_buffers++] = t.buffer;
    t.data = base;
    t.offset = 0;
    return t;
}

static char *at(const slm_tensor_desc_t *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    return (char *)t->data + i0 * t->nb[0] + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3];
}

void h_set(const slm_tensor_desc_t *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3, float v)
{
    char *p = at(t, i0, i1, i2, i3);
    uint16_t h;
    switch (t->type) {
    case SLM_TYPE_F16:
        h = slm_f32_to_f16(v);
        memcpy(p, &h, 2);
        break;
    case SLM_TYPE_BF16:
        h = slm_f32_to_bf16(v);
        memcpy(p, &h, 2);
        break;
    default:
        memcpy(p, &v, 4);
    }
}

float h_get(const slm_tensor_desc_t *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    const char *p = at(t, i0, i1, i2, i3);
    uint16_t h;
    float f;
    switch (t->type) {
    case SLM_TYPE_F16:
        memcpy(&h, p, 2);
        return slm_f16_to_f32(h);
    case SLM_TYPE_BF16:
        memcpy(&h, p, 2);
        return slm_bf16_to_f32(h);
    default:
        memcpy(&f, p, 4);
        return f;
    }
}

void h_seti(const slm_tensor_desc_t *t, int64_t i0, int64_t i1, int64_t i2, int32_t v)
{
    memcpy(at(t, i0, i1, i2, 0), &v, 4);
}

static float uniform(float lo, float hi)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((rng >> 40) / 16777216.0);
}

void h_fill(const slm_tensor_desc_t *t, float lo, float hi)
{
    H_FOR(*t, i0, i1, i2, i3)
        h_set(t, i0, i1, i2, i3, uniform(lo, hi));
}

slm_node_t h_node(int op, slm_tensor_desc_t dst, int n_src, const slm_tensor_desc_t *src)
{
    slm_node_t n = {.struct_size = sizeof n, .op = op, .n_src = n_src, .dst = dst};
    for (int i = 0; i < n_src; i++)
        n.src[i] = src[i];
    return n;
}

int h_run_n(const slm_node_t *nodes, size_t n)
{
    const slm_node_t *ptrs[16];
    ck_assert_uint_le(n, 16);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(h_iface->supports_node(h_dev, &nodes[i]), "node %zu (op %s) not supported",
                      i, slm_op_name(nodes[i].op));
        ptrs[i] = &nodes[i];
    }
    return h_iface->graph_compute(h_dev, ptrs, n);
}

int h_run(const slm_node_t *node)
{
    return h_run_n(node, 1);
}

void h_expect_close(const char *what, float got, double want, double atol, double rtol)
{
    double err = fabs((double)got - want);
    ck_assert_msg(err <= atol + rtol * fabs(want), "%s: got %.9g, want %.9g (err %.3g)", what,
                  (double)got, want, err);
}
