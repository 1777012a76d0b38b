/* The contract between the slmops host and every plugin: the one exported entry
 * symbol, interface-version negotiation, and the services the host lends.
 *
 * Interface versions (SLM_PLUGIN_ABI_VERSION):
 *   1  first release: descriptor, host table (log), backend/quantizer/trainer/format
 *      interfaces version 1. Later version-1 hosts also fill host->type_name and
 *      then host->iface_version (former reserved slots, NULL from older hosts).
 * Policy: the host offers its current version; the plugin answers the highest
 * version it speaks that is <= the offer; the host refuses answers below
 * SLM_PLUGIN_ABI_MIN_VERSION or above its current one. Each kind's interface
 * version is negotiated the same way, offered by host->iface_version(kind).
 * Structs crossing the boundary start with struct_size; a side reads only fields
 * inside that size. */
#ifndef SLMOPS_PLUGIN_H
#define SLMOPS_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/log.h>
#include <slmops/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLM_PLUGIN_ABI_VERSION 1u
#define SLM_PLUGIN_ABI_MIN_VERSION 1u

/* The only symbol a plugin library must export. */
#define SLM_PLUGIN_ENTRY_SYMBOL "slm_plugin_entry"

typedef enum slm_plugin_kind {
    SLM_PLUGIN_KIND_BACKEND = 1,
    SLM_PLUGIN_KIND_QUANTIZER = 2,
    SLM_PLUGIN_KIND_TRAINER = 3,
    SLM_PLUGIN_KIND_FORMAT = 4
} slm_plugin_kind_t;

/* Services the host lends to plugins; valid until the plugin is unloaded. */
typedef struct slm_host {
    uint32_t struct_size;
    uint32_t abi_version;  /* the host's current interface version */
    /* Log through the host's handler; category is usually the plugin name. */
    void (*log)(slm_log_level_t level, const char *category, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* Name of a tensor type ("q8_0"; "type 1234 (unknown)" for an id nothing
     * registered), for messages. May be NULL (older hosts): name it yourself. */
    const char *(*type_name)(int type);
    /* The newest version of `kind`'s interface (slm_plugin_kind_t) this host reads,
     * 0 for a kind it does not know. Fill iface_version with the highest version
     * you speak that is <= this one; the host refuses a newer one. May be NULL
     * (older hosts, which read any version by its struct_size): answer your own. */
    uint32_t (*iface_version)(int32_t kind);
    void *reserved[6];
} slm_host_t;

/* Returned by the entry point; must stay valid while the library is loaded. */
typedef struct slm_plugin_descriptor {
    uint32_t struct_size;      /* sizeof(slm_plugin_descriptor_t) as the plugin saw it */
    uint32_t abi_version;      /* the version the plugin speaks (<= host's offer) */
    int32_t kind;              /* slm_plugin_kind_t; must match the manifest */
    const char *name;          /* must match the manifest's "name" */
    const char *version;       /* the plugin's own version; must match the manifest */
    const void *iface;         /* kind-specific interface: slm_backend_iface_t, ... */
    void *reserved[4];
} slm_plugin_descriptor_t;

/* Type of the entry point. Returns NULL when the plugin cannot work with this
 * host (it should log why through host->log). */
typedef const slm_plugin_descriptor_t *(*slm_plugin_entry_fn)(const slm_host_t *host,
                                                               uint32_t host_abi_version);

#if defined(__GNUC__)
#define SLM_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define SLM_PLUGIN_EXPORT
#endif

/* Declare the entry point in a plugin source file:
 *   SLM_PLUGIN_DEFINE_ENTRY(my_entry_impl)   // defines slm_plugin_entry */
#define SLM_PLUGIN_DEFINE_ENTRY(impl)                                                  \
    SLM_PLUGIN_EXPORT const slm_plugin_descriptor_t *slm_plugin_entry(                  \
        const slm_host_t *host, uint32_t host_abi_version);                            \
    const slm_plugin_descriptor_t *slm_plugin_entry(const slm_host_t *host,            \
                                                    uint32_t host_abi_version)         \
    {                                                                                  \
        return impl(host, host_abi_version);                                           \
    }

/* Write the whole entry point and its negotiation (as GST_PLUGIN_DEFINE does):
 *   SLM_PLUGIN_DEFINE(SLM_PLUGIN_KIND_BACKEND, "my-backend", "1.0.0", my_accept,
 *                     &my_iface_v2, &my_iface_v1)
 * The interface tables follow newest first; each starts with struct_size and
 * iface_version. The entry answers the newest plugin ABI both sides speak, picks
 * the newest table whose version the host reads (host->iface_version; a host
 * without it gets the oldest table) and refuses, with a log line, a host older
 * than every table. `accept` (or NULL) is called first with the host table and
 * returns false to refuse this host or machine (it logs why). */
#define SLM_PLUGIN_DEFINE(kind, name, version, accept, ...)                             \
    static const void *const slm__plugin_ifaces[] = {__VA_ARGS__, NULL};                \
    static slm_plugin_descriptor_t slm__plugin_descriptor;                              \
    static const slm_plugin_descriptor_t *slm__plugin_entry_impl(const slm_host_t *host,\
                                                                 uint32_t host_abi)     \
    {                                                                                   \
        return slm_plugin_negotiate(host, host_abi, (kind), (name), (version), (accept),\
                                    slm__plugin_ifaces, &slm__plugin_descriptor);       \
    }                                                                                   \
    SLM_PLUGIN_DEFINE_ENTRY(slm__plugin_entry_impl)

typedef bool (*slm_plugin_accept_fn)(const slm_host_t *host);

/* The negotiation SLM_PLUGIN_DEFINE expands to (header-only: plugins do not link
 * the core). Fills *out and returns it, or NULL when this host cannot be served. */
static inline const slm_plugin_descriptor_t *
slm_plugin_negotiate(const slm_host_t *host, uint32_t host_abi, int32_t kind, const char *name,
                     const char *version, slm_plugin_accept_fn accept,
                     const void *const *ifaces, slm_plugin_descriptor_t *out)
{
    bool has_log = host && host->struct_size >= offsetof(slm_host_t, log) + sizeof host->log &&
                   host->log;
    if (host_abi < SLM_PLUGIN_ABI_MIN_VERSION) {
        if (has_log)
            host->log(SLM_LOG_ERROR, name, "host offers plugin ABI %u, this plugin needs %u..%u",
                      host_abi, SLM_PLUGIN_ABI_MIN_VERSION, SLM_PLUGIN_ABI_VERSION);
        return NULL;
    }
    if (accept && !accept(host))
        return NULL;
    uint32_t offer = 0;
    if (host && host->struct_size >= offsetof(slm_host_t, iface_version) +
                                         sizeof host->iface_version && host->iface_version)
        offer = host->iface_version(kind);
    const void *chosen = NULL;
    uint32_t oldest = 0;
    for (size_t i = 0; ifaces[i]; i++) {
        uint32_t v = ((const uint32_t *)ifaces[i])[1];
        oldest = v;
        if (!chosen && (offer == 0 || v <= offer))
            chosen = ifaces[i];
    }
    if (offer == 0 && chosen) {
        /* A host that cannot say reads at least the first version: the oldest table. */
        for (size_t i = 0; ifaces[i]; i++)
            chosen = ifaces[i];
    }
    if (!chosen) {
        if (has_log)
            host->log(SLM_LOG_ERROR, name, "host reads interface version %u, this plugin needs "
                      "%u or newer", offer, oldest);
        return NULL;
    }
    *out = (slm_plugin_descriptor_t){
        .struct_size = sizeof *out,
        .abi_version = host_abi < SLM_PLUGIN_ABI_VERSION ? host_abi : SLM_PLUGIN_ABI_VERSION,
        .kind = kind,
        .name = name,
        .version = version,
        .iface = chosen,
    };
    return out;
}

#ifdef __cplusplus
}
#endif
#endif
