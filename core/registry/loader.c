/* Lazy loading of a plugin library: dlopen, the entry symbol, interface-version
 * negotiation and the checks that the descriptor agrees with the manifest. */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <slmops/input.h>

#include "internal/kinds.h"
#include "internal/registry.h"
#include "internal/util.h"

static _Thread_local char said[256];

void slm__plugin_said_reset(void)
{
    said[0] = '\0';
}

const char *slm__plugin_said(void)
{
    return said;
}

/* The host table's log slot: plugins format, the core's handler filters. */
__attribute__((format(printf, 3, 4)))
static void host_log(slm_log_level_t level, const char *category, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (level <= SLM_LOG_INFO) {   /* cut to the reason's length */
        size_t n = strnlen(msg, sizeof said - 1);
        memcpy(said, msg, n);
        said[n] = '\0';
    }
    slm_log(level, category, "%s", msg);
}

static const slm_host_t host_table = {
    .struct_size = sizeof(slm_host_t),
    .abi_version = SLM_PLUGIN_ABI_VERSION,
    .log = host_log,
    .type_name = slm_type_name,
    .iface_version = slm__kind_iface_version,
};

/* The interface head every kind shares, the version and size its kind's entry
 * accepts, then the kind's own checks. */
static const char *check_iface(const slm__plugin_t *p, const void *iface, char *buf, size_t size,
                               int *code)
{
    const slm__kind_t *k = slm__kind_by_id(p->m.kind_id);
    const uint32_t *head = iface;   /* every interface starts with struct_size, iface_version */
    if (head[0] < 2 * sizeof(uint32_t) || head[1] == 0)
        return "interface has no struct_size or iface_version";
    if (head[1] < k->iface_min || head[1] > k->iface_max) {
        *code = SLM_E_ABI;
        snprintf(buf, size, "%s interface version %u is %s than this host reads (%u..%u)",
                 k->name, head[1], head[1] < k->iface_min ? "older" : "newer", k->iface_min,
                 k->iface_max);
        return buf;
    }
    if (head[0] < k->iface_min_size) {
        snprintf(buf, size, "%s interface struct_size %u is smaller than the %zu bytes of its "
                 "first version", k->name, head[0], k->iface_min_size);
        return buf;
    }
    return k->check(p, iface, buf, size);
}

static void kind_word(int32_t kind, char *buf, size_t size)
{
    const slm__kind_t *k = slm__kind_by_id(kind);
    if (k)
        snprintf(buf, size, "%s", k->name);
    else
        snprintf(buf, size, "%d (unknown)", (int)kind);
}

/* Returns NULL when the descriptor is acceptable, else why not (into buf). */
static const char *check_descriptor(const slm__plugin_t *p, const slm_plugin_descriptor_t *d,
                                    char *buf, size_t size, int *code)
{
    *code = SLM_E_PLUGIN;
    if (d->struct_size < offsetof(slm_plugin_descriptor_t, reserved))
        return "descriptor struct_size is too small";
    if (d->abi_version < SLM_PLUGIN_ABI_MIN_VERSION || d->abi_version > SLM_PLUGIN_ABI_VERSION) {
        *code = SLM_E_ABI;
        snprintf(buf, size, "plugin speaks ABI version %u, this host accepts %u..%u",
                 d->abi_version, SLM_PLUGIN_ABI_MIN_VERSION, SLM_PLUGIN_ABI_VERSION);
        return buf;
    }
    if (d->abi_version != p->m.abi_version) {
        snprintf(buf, size, "descriptor abi_version %u disagrees with the manifest's %u",
                 d->abi_version, p->m.abi_version);
        return buf;
    }
    if (d->kind != p->m.kind_id) {
        char kind[32];
        kind_word(d->kind, kind, sizeof kind);
        snprintf(buf, size, "descriptor kind %s disagrees with the manifest's %s", kind,
                 p->m.kind);
        return buf;
    }
    if (!d->name || strcmp(d->name, p->m.name) != 0) {
        snprintf(buf, size, "descriptor name \"%.64s\" disagrees with the manifest's \"%s\"",
                 d->name ? d->name : "(null)", p->m.name);
        return buf;
    }
    if (!d->version || strcmp(d->version, p->m.version) != 0) {
        snprintf(buf, size, "descriptor version \"%.64s\" disagrees with the manifest's \"%s\"",
                 d->version ? d->version : "(null)", p->m.version);
        return buf;
    }
    if (!d->iface)
        return "descriptor has a NULL interface";
    return check_iface(p, d->iface, buf, size, code);
}

static int fail_load(slm_registry_t *reg, slm__plugin_t *p, void *dl, int code, slm_error_t *err,
                     const char *why)
{
    if (dl)
        dlclose(dl);
    slm__plugin_disable(reg, p, "%s", why);
    return slm__fail(err, code, p->manifest_path, -1, "%s: %s", p->manifest_path, p->reason);
}

static int refuse_state(slm__plugin_t *p, slm_error_t *err)
{
    int code = p->info.state == SLM_PLUGIN_UNSUPPORTED ? SLM_E_UNSUPPORTED : SLM_E_PLUGIN;
    return slm__fail(err, code, p->manifest_path, -1, "%s: plugin %s is %s: %s",
                     p->manifest_path, p->info.name, slm_plugin_state_name(p->info.state),
                     p->reason);
}

int slm__plugin_load(slm_registry_t *reg, slm__plugin_t *p, slm_error_t *err)
{
    if (p->dl)
        return SLM_OK;
    if (p->fixed_state >= 0)
        return refuse_state(p, err);
    char why[600];
    struct stat st;
    if (stat(p->m.library_path, &st) != 0) {
        snprintf(why, sizeof why, "library %s: %s", p->m.library_path, strerror(errno));
        return fail_load(reg, p, NULL, SLM_E_NOT_FOUND, err, why);
    }
    /* dlopen would block forever on a FIFO and read a device. */
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, sizeof why, "library %s is %s, not a regular file", p->m.library_path,
                 slm_input_kind(st.st_mode));
        return fail_load(reg, p, NULL, SLM_E_PLUGIN, err, why);
    }
    if (slm__scan_library(reg, p->m.library_path, &st, why, sizeof why) != SLM_OK)
        return fail_load(reg, p, NULL, SLM_E_PLUGIN, err, why);
    dlerror();
    void *dl = dlopen(p->m.library_path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *e = dlerror();
        snprintf(why, sizeof why, "cannot load library: %s", e ? e : "unknown dlopen error");
        return fail_load(reg, p, NULL, SLM_E_PLUGIN, err, why);
    }
    slm_plugin_entry_fn entry;
    /* POSIX sanctions this object-to-function pointer conversion for dlsym. */
    *(void **)&entry = dlsym(dl, SLM_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        snprintf(why, sizeof why, "library %s has no %s symbol", p->m.library_path,
                 SLM_PLUGIN_ENTRY_SYMBOL);
        return fail_load(reg, p, dl, SLM_E_PLUGIN, err, why);
    }
    const slm_plugin_descriptor_t *d = entry(&host_table, SLM_PLUGIN_ABI_VERSION);
    if (!d) {
        snprintf(why, sizeof why, "%s refused this host (ABI version %u)",
                 SLM_PLUGIN_ENTRY_SYMBOL, SLM_PLUGIN_ABI_VERSION);
        return fail_load(reg, p, dl, SLM_E_ABI, err, why);
    }
    int code;
    const char *bad = check_descriptor(p, d, why, sizeof why, &code);
    if (bad) {
        if (bad != why)
            snprintf(why, sizeof why, "%s", bad);
        return fail_load(reg, p, dl, code, err, why);
    }
    const slm__kind_t *k = slm__kind_by_id(p->m.kind_id);
    p->desc = d;
    int rc = k->attach ? k->attach(p, &host_table, why, sizeof why) : SLM_OK;
    if (rc == SLM_E_NOT_FOUND) {   /* a backend without its hardware: disabled, quietly */
        p->desc = NULL;
        dlclose(dl);
        slm__plugin_disable_at(reg, p, SLM_LOG_INFO, "%s", why);
        return slm__fail(err, SLM_E_NOT_FOUND, p->manifest_path, -1, "%s: %s", p->manifest_path,
                         p->reason);
    }
    if (rc != SLM_OK) {
        p->desc = NULL;
        return fail_load(reg, p, dl, SLM_E_PLUGIN, err, why);
    }
    p->dl = dl;
    slm__registry_select(reg);
    slm_log(SLM_LOG_DEBUG, "registry", "%s: loaded %s", p->manifest_path, p->m.library_path);
    return SLM_OK;
}

void slm__plugin_unload(slm__plugin_t *p)
{
    if (!p->dl)
        return;
    const slm__kind_t *k = slm__kind_by_id(p->m.kind_id);
    if (k && k->detach)
        k->detach(p);
    dlclose(p->dl);
    p->dl = NULL;
    p->desc = NULL;
}

const void *slm__plugin_iface(const slm__plugin_t *p)
{
    return p->desc ? p->desc->iface : NULL;
}
