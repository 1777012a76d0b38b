/* Entry point of the CPU backend plugin: ABI negotiation and the descriptor. One
 * source, built once per ISA variant; CPU_VARIANT_NAME says which build this is. */
#include "config.h"

#include "cpu.h"
#include "device.h"
#include "probe.h"

const slm_host_t *cpu_host;

static const slm_backend_iface_t cpu_iface = {
    .struct_size = sizeof(slm_backend_iface_t),
    .iface_version = SLM_BACKEND_IFACE_VERSION,
    .device_count = cpu_device_count,
    .device_props = cpu_device_props,
    .device_open = cpu_device_open,
    .device_close = cpu_device_close,
    .supports_node = cpu_supports_node,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .buffer_set = cpu_buffer_set,
    .buffer_get = cpu_buffer_get,
    .buffer_clear = cpu_buffer_clear,
    .graph_compute = cpu_graph_compute,
    .synchronize = NULL,
    .buffer_from_host = cpu_buffer_from_host,
};

static const slm_plugin_descriptor_t cpu_descriptor = {
    .struct_size = sizeof(slm_plugin_descriptor_t),
    .abi_version = SLM_PLUGIN_ABI_VERSION,
    .kind = SLM_PLUGIN_KIND_BACKEND,
    .name = CPU_VARIANT_NAME,
    .version = PACKAGE_VERSION,
    .iface = &cpu_iface,
};

/* The host offers its current version; this plugin speaks only version 1, which
 * every host from version 1 on still accepts. */
static const slm_plugin_descriptor_t *cpu_entry(const slm_host_t *host, uint32_t host_abi)
{
    if (host && host->struct_size >= offsetof(slm_host_t, log) + sizeof host->log)
        cpu_host = host;
    if (host_abi < SLM_PLUGIN_ABI_VERSION) {
        cpu_log(SLM_LOG_ERROR, "host offers plugin ABI %u, this plugin needs %u", host_abi,
                SLM_PLUGIN_ABI_VERSION);
        return NULL;
    }
    const char *missing = cpu_missing_feature();
    if (missing) {
        cpu_log(SLM_LOG_ERROR, "this CPU lacks %s, which this build needs", missing);
        return NULL;
    }
    char why[160];
    const char *fault = cpu_probe_isa(why, sizeof why);
    if (fault) {
        cpu_log(SLM_LOG_WARN, "%s: %s", CPU_VARIANT_NAME, fault);
        return NULL;
    }
    return &cpu_descriptor;
}

SLM_PLUGIN_DEFINE_ENTRY(cpu_entry)
