/* Entry point of the CPU backend plugin: its version-2 vtable and the checks before
 * it accepts a host. One source, built once per ISA variant (CPU_VARIANT_NAME). */
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
    .buffer_alloc_ex = cpu_buffer_alloc_ex,
    .buffer_copy = cpu_buffer_copy,
};

/* Refuses a CPU without the features this build needs, or whose ISA probe faults;
 * the negotiation itself is SLM_PLUGIN_DEFINE's. */
static bool cpu_accept(const slm_host_t *host)
{
    if (host && host->struct_size >= offsetof(slm_host_t, log) + sizeof host->log)
        cpu_host = host;
    const char *missing = cpu_missing_feature();
    if (missing) {
        cpu_log(SLM_LOG_ERROR, "this CPU lacks %s, which this build needs", missing);
        return false;
    }
    char why[160];
    const char *fault = cpu_probe_isa(why, sizeof why);
    if (fault) {
        cpu_log(SLM_LOG_WARN, "%s: %s", CPU_VARIANT_NAME, fault);
        return false;
    }
    return true;
}

SLM_PLUGIN_DEFINE(SLM_PLUGIN_KIND_BACKEND, CPU_VARIANT_NAME, PACKAGE_VERSION, cpu_accept, &cpu_iface)
