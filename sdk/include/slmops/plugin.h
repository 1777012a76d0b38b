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

#ifdef __cplusplus
}
#endif
#endif
