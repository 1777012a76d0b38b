/* Devices of the backend plugins: enumeration, resolving "auto"/"cpu"/"cpu:0"/
 * "cpu-avx2:0" to one device, and opening it through the backend's vtable. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/device.h"
#include "internal/registry.h"
#include "internal/util.h"

static const char *type_word(int32_t type)
{
    switch (type) {
    case SLM_DEVICE_CPU: return "cpu";
    case SLM_DEVICE_IGPU: return "igpu";
    case SLM_DEVICE_DGPU: return "dgpu";
    case SLM_DEVICE_ACCEL: return "accel";
    default: return "unknown";
    }
}

static const slm__backend_t *backend_of(slm_registry_t *reg, slm__plugin_t *p,
                                             slm_error_t *err)
{
    if (p->m.kind_id != SLM_PLUGIN_KIND_BACKEND) {
        slm__fail(err, SLM_E_INVALID, p->manifest_path, -1, "%s is a %s plugin, not a backend",
                  p->info.name, p->info.kind);
        return NULL;
    }
    if (slm__plugin_load(reg, p, err) != SLM_OK)
        return NULL;
    return slm__backend_of(p);
}

static int device_count(const slm__backend_t *b)
{
    int n = b->iface.device_count(b->ctx);
    return n < 0 ? 0 : n;
}

/* Describes device `index` of plugin p; `why` explains the variant choice. */
static int fill_info(slm__plugin_t *p, const slm__backend_t *b, int index, const char *why,
                     slm_device_info_t *info, slm_device_props_t *props_out, slm_error_t *err)
{
    slm_device_props_t props;
    memset(&props, 0, sizeof props);
    props.struct_size = sizeof props;
    int rc = b->iface.device_props(b->ctx, index, &props);
    if (rc != 0)
        return slm__fail(err, SLM_E_DEVICE, p->manifest_path, -1,
                         "%s: device %d: the backend cannot describe it (%d)", p->info.name, index,
                         rc);
    props.name[sizeof props.name - 1] = '\0';
    props.description[sizeof props.description - 1] = '\0';
    memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
    snprintf(info->id, sizeof info->id, "%s:%d", p->m.backend, index);
    snprintf(info->plugin, sizeof info->plugin, "%s", p->m.name);
    snprintf(info->name, sizeof info->name, "%s", props.name);
    snprintf(info->type, sizeof info->type, "%s", type_word(props.type));
    info->memory_total = props.memory_total;
    info->memory_free = props.memory_free;
    info->score = props.score;
    snprintf(info->description, sizeof info->description, "%s", props.description);
    snprintf(info->why, sizeof info->why, "%s", why);
    if (props_out)
        *props_out = props;
    return SLM_OK;
}

typedef struct dev_vec {
    slm_device_info_t *v;
    size_t n, cap;
} dev_vec_t;

static int vec_push(dev_vec_t *d, const slm_device_info_t *info)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        slm_device_info_t *v = realloc(d->v, cap * sizeof *v);
        if (!v)
            return SLM_E_NOMEM;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = *info;
    return SLM_OK;
}

/* Loads every family's winner; a failure disables it and may promote a
 * runner-up, so repeat until every winner is loaded. */
static void load_winners(slm_registry_t *reg)
{
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < reg->n_rows; i++) {
            slm__plugin_t *p = reg->rows[i];
            if (p->m.kind_id == SLM_PLUGIN_KIND_BACKEND && p->info.state == SLM_PLUGIN_AVAILABLE &&
                !backend_of(reg, p, NULL))
                changed = true;
        }
    }
}

/* Loads one family's winner only, so naming a device never starts the other
 * backends (a Vulkan or OpenCL driver stack costs tens of MiB and seconds); a
 * winner that fails to load is disabled and hands the family to its runner-up. */
static void load_family(slm_registry_t *reg, const char *family)
{
    slm__plugin_t *p;
    while ((p = slm__registry_family_winner(reg, family)) &&
           p->info.state == SLM_PLUGIN_AVAILABLE && !backend_of(reg, p, NULL))
        ;
}

static int list_plugin(slm__plugin_t *p, dev_vec_t *out)
{
    const slm__backend_t *b = slm__backend_of(p);
    int n = device_count(b);
    for (int i = 0; i < n; i++) {
        slm_device_info_t info;
        slm_error_t e;
        slm_error_init(&e);
        if (fill_info(p, b, i, p->why, &info, NULL, &e) != SLM_OK) {
            slm_log(SLM_LOG_WARN, "registry", "%s", e.message);
            continue;
        }
        if (vec_push(out, &info) != SLM_OK)
            return SLM_E_NOMEM;
    }
    return SLM_OK;
}

int slm_devices_list(slm_registry_t *reg, slm_device_info_t **out, size_t *n, slm_error_t *err)
{
    if (!reg || !out || !n)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "slm_devices_list: NULL argument");
    load_winners(reg);
    dev_vec_t d = {0};
    for (size_t i = 0; i < reg->n_rows; i++) {
        slm__plugin_t *p = reg->rows[i];
        if (p->m.kind_id != SLM_PLUGIN_KIND_BACKEND || p->info.state != SLM_PLUGIN_LOADED)
            continue;
        if (list_plugin(p, &d) != SLM_OK) {
            free(d.v);
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory listing devices");
        }
    }
    *out = d.v;
    *n = d.n;
    return SLM_OK;
}

/* The best-scoring device in list (ties: first); type < 0 means any type. */
static const slm_device_info_t *best_of(const slm_device_info_t *v, size_t n, const char *type)
{
    const slm_device_info_t *best = NULL;
    for (size_t i = 0; i < n; i++) {
        if (type && strcmp(v[i].type, type) != 0)
            continue;
        if (!best || v[i].score > best->score)
            best = &v[i];
    }
    return best;
}

static int resolve_auto(slm_registry_t *reg, const char *type, slm_device_info_t *out,
                        slm_error_t *err)
{
    slm_device_info_t *v;
    size_t n;
    int rc = slm_devices_list(reg, &v, &n, err);
    if (rc)
        return rc;
    const slm_device_info_t *b = best_of(v, n, type);
    if (b)
        *out = *b;
    free(v);
    if (!b)
        return slm__fail(err, SLM_E_NOT_FOUND, NULL, -1, "no usable %s device (search path: %s)",
                         type ? type : "", slm_registry_search_path(reg));
    return SLM_OK;
}

static int parse_index(const char *s, int *index)
{
    if (!*s)
        return -1;
    long v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9' || v > 100000)
            return -1;
        v = v * 10 + (*c - '0');
    }
    *index = (int)v;
    return 0;
}

/* Splits "name[:index]"; index -1 when absent. */
static int split_spec(const char *spec, char *name, size_t size, int *index)
{
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    *index = -1;
    if (len == 0 || len >= size)
        return -1;
    memcpy(name, spec, len);
    name[len] = '\0';
    return colon ? parse_index(colon + 1, index) : 0;
}

/* The plugin a spec names: a family's winning variant, or a variant by name. */
static int spec_plugin(slm_registry_t *reg, const char *name, slm__plugin_t **out,
                       bool *explicit_variant, slm_error_t *err)
{
    *explicit_variant = false;
    *out = slm__registry_family_winner(reg, name);
    if (*out)
        return SLM_OK;
    slm__plugin_t *p = slm__registry_row(reg, name);
    if (!p || p->m.kind_id != SLM_PLUGIN_KIND_BACKEND)
        return slm__fail(err, SLM_E_NOT_FOUND, NULL, -1,
                         "no usable backend or plugin named \"%s\" (see `slmops plugins`)", name);
    if (!slm__plugin_usable(p))
        return slm__fail(err, p->info.state == SLM_PLUGIN_UNSUPPORTED ? SLM_E_UNSUPPORTED
                                                                       : SLM_E_PLUGIN,
                         p->manifest_path, -1, "backend %s is %s: %s", name,
                         slm_plugin_state_name(p->info.state), p->reason);
    *explicit_variant = true;
    *out = p;
    return SLM_OK;
}

static int resolve_named(slm_registry_t *reg, const char *spec, slm_device_info_t *out,
                         slm_error_t *err)
{
    char name[SLM__NAME_MAX + 1];
    int index;
    if (split_spec(spec, name, sizeof name, &index) != 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1,
                         "bad device \"%s\": expected auto, FAMILY, FAMILY:N or PLUGIN:N", spec);
    load_family(reg, name);
    bool explicit_variant;
    slm__plugin_t *p;
    int rc = spec_plugin(reg, name, &p, &explicit_variant, err);
    if (rc != SLM_OK)
        return rc;
    slm_error_t local;
    slm_error_init(&local);
    const slm__backend_t *b = backend_of(reg, p, &local);
    if (!b)
        return slm__fail(err, local.code, local.path, -1, "%s", local.message);
    int n = device_count(b);
    if (index < 0) {   /* a family alone: its best-scoring device */
        index = 0;
        for (int i = 1; i < n; i++) {
            slm_device_props_t a = {.struct_size = sizeof a}, c = {.struct_size = sizeof c};
            if (b->iface.device_props(b->ctx, i, &a) == 0 &&
                b->iface.device_props(b->ctx, index, &c) == 0 &&
                a.score > c.score)
                index = i;
        }
    }
    if (index >= n)
        return slm__fail(err, SLM_E_NOT_FOUND, NULL, -1, "no device %s: %s has %d device(s)",
                         spec, p->m.name, n);
    char why[256];
    if (explicit_variant)
        snprintf(why, sizeof why, "%s: named explicitly by the device spec \"%s\"", p->m.name,
                 spec);
    else
        snprintf(why, sizeof why, "%s", p->why);
    return fill_info(p, b, index, why, out, NULL, err);
}

int slm_device_resolve(slm_registry_t *reg, const char *spec, slm_device_info_t *out,
                       slm_error_t *err)
{
    if (!reg || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "slm_device_resolve: NULL argument");
    if (!spec && reg->use_env)
        spec = slm__getenv("SLMOPS_DEVICE");
    if (!spec || !*spec || strcmp(spec, "auto") == 0)
        return resolve_auto(reg, NULL, out, err);
    return resolve_named(reg, spec, out, err);
}

static int by_score(const void *a, const void *b)
{
    const slm_device_info_t *x = a, *y = b;
    return (y->score > x->score) - (y->score < x->score);
}

/* "highest score ... ; then ID (SCORE), ..." over the listed devices. */
static void explain_auto(slm_registry_t *reg, const slm_device_info_t *pick, char *why,
                         size_t size)
{
    slm_device_info_t *v = NULL;
    size_t n = 0;
    if (slm_devices_list(reg, &v, &n, NULL) != SLM_OK)
        n = 0;
    if (n > 1)
        qsort(v, n, sizeof *v, by_score);
    int len = snprintf(why, size, "auto: the highest score (%d, %s) of %zu device(s)",
                       (int)pick->score, pick->type, n);
    for (size_t i = 0, shown = 0; i < n && len >= 0 && (size_t)len < size && shown < 4; i++) {
        if (strcmp(v[i].id, pick->id) == 0)
            continue;
        len += snprintf(why + len, size - (size_t)len, "%s%s %d%s", shown ? ", " : "; then ",
                        v[i].id, (int)v[i].score,
                        v[i].score < SLM_DEVICE_SCORE_CPU && strcmp(v[i].type, "cpu") != 0
                            ? " (CPU-emulated or slow: only when named)" : "");
        shown++;
    }
    free(v);
}

int slm_device_choose(slm_registry_t *reg, const char *spec, slm_device_info_t *out, char *why,
                      size_t why_size, slm_error_t *err)
{
    if (!reg || !out || (!why && why_size))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "slm_device_choose: NULL argument");
    const char *source = "the device spec";
    if ((!spec || !*spec) && reg->use_env) {
        spec = slm__getenv("SLMOPS_DEVICE");
        source = "SLMOPS_DEVICE";
    }
    int rc = slm_device_resolve(reg, spec && *spec ? spec : "auto", out, err);
    if (rc != SLM_OK || !why_size)
        return rc;
    if (spec && *spec && strcmp(spec, "auto") != 0)
        snprintf(why, why_size, "named by %s \"%s\"", source, spec);
    else
        explain_auto(reg, out, why, why_size);
    return SLM_OK;
}

static slm_device_t *open_info(slm_registry_t *reg, const slm_device_info_t *info,
                               const slm_device_options_t *opts, slm_error_t *err)
{
    slm__plugin_t *p = slm__registry_row(reg, info->plugin);
    const slm__backend_t *b = p ? backend_of(reg, p, err) : NULL;
    if (!b) {
        if (!p)
            slm__fail(err, SLM_E_NOT_FOUND, NULL, -1, "no plugin %s", info->plugin);
        return NULL;
    }
    const char *colon = strrchr(info->id, ':');
    int index = 0;
    if (!colon || parse_index(colon + 1, &index) != 0) {
        slm__fail(err, SLM_E_INVALID, NULL, -1, "bad device id %s", info->id);
        return NULL;
    }
    slm_device_t *dev = calloc(1, sizeof *dev);
    if (!dev) {
        slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory");
        return NULL;
    }
    dev->info = *info;
    if (fill_info(p, b, index, info->why, &dev->info, &dev->props, err) != SLM_OK) {
        free(dev);
        return NULL;
    }
    slm_device_config_t cfg = {.struct_size = sizeof cfg};
    if (opts && opts->struct_size >= offsetof(slm_device_options_t, n_threads) + sizeof(int32_t))
        cfg.n_threads = opts->n_threads;
    if (opts && opts->struct_size >= offsetof(slm_device_options_t, flags) + sizeof(uint32_t) &&
        (opts->flags & SLM_DEVICE_REPACK))
        cfg.flags |= SLM_DEVICE_CONFIG_REPACK;
    int rc = b->iface.device_open(b->ctx, index, &cfg, &dev->ctx);
    if (rc != 0) {
        free(dev);
        slm__fail(err, SLM_E_DEVICE, p->manifest_path, -1, "%s: opening %s failed (%d)",
                  p->m.name, info->id, rc);
        return NULL;
    }
    dev->backend = b;
    dev->iface = &b->iface;
    dev->index = index;
    dev->reg = reg;
    return dev;
}

slm_device_t *slm_device_open(slm_registry_t *reg, const char *spec,
                              const slm_device_options_t *opts, slm_error_t *err)
{
    slm_device_info_t info;
    if (slm_device_resolve(reg, spec, &info, err) != SLM_OK)
        return NULL;
    return open_info(reg, &info, opts, err);
}

slm_device_t *slm__device_open_cpu_fallback(slm_registry_t *reg, const slm_device_options_t *opts,
                                            slm_error_t *err)
{
    if (!reg) {
        slm__fail(err, SLM_E_INVALID, NULL, -1, "no registry");
        return NULL;
    }
    slm_device_info_t info;
    if (resolve_auto(reg, "cpu", &info, err) != SLM_OK)
        return NULL;
    return open_info(reg, &info, opts, err);
}

void slm_device_close(slm_device_t *dev)
{
    if (!dev)
        return;
    if (dev->iface && dev->ctx)
        dev->iface->device_close(dev->ctx);
    free(dev);
}

const slm_device_info_t *slm_device_get_info(const slm_device_t *dev)
{
    return dev ? &dev->info : NULL;
}

const struct slm_backend_iface *slm_device_backend(slm_device_t *dev, void **ctx)
{
    if (!dev)
        return NULL;
    if (ctx)
        *ctx = dev->ctx;
    return dev->iface;
}

void *slm_device_backend_context(slm_device_t *dev)
{
    return dev ? dev->backend->ctx : NULL;
}

int slm__device_alloc(slm_device_t *dev, uint64_t size, uint32_t flags, void **buffer,
                      void **base)
{
    const slm_backend_iface_t *f = dev->iface;
    void *b = NULL, *addr = NULL;
    int rc = SLM_E_UNSUPPORTED;
    if (f->buffer_alloc_ex) {
        slm_buffer_request_t req = {.struct_size = sizeof req, .flags = flags, .size = size};
        rc = f->buffer_alloc_ex(dev->ctx, &req, &b, &addr);
    }
    if (rc == SLM_E_UNSUPPORTED)
        rc = f->buffer_alloc(dev->ctx, size, &b, &addr);
    if (rc < 0 || !b)
        return rc < 0 ? rc : SLM_E_DEVICE;
    if ((flags & (SLM_BUFFER_HOST_VISIBLE | SLM_BUFFER_HOST_PINNED)) && !addr) {
        f->buffer_free(dev->ctx, b);
        return SLM_E_UNSUPPORTED;
    }
    *buffer = b;
    *base = addr;
    return SLM_OK;
}
