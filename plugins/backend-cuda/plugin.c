/* The CUDA backend plugin: the backend context (the devices the CUDA runtime sees),
 * device description and scores, the entry point; init fails, saying why, without one. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu.h"

#define PLUGIN_VERSION PACKAGE_VERSION

const slm_host_t *cu_host;

void cu_log(slm_log_level_t level, const char *fmt, ...)
{
    if (!cu_host || !cu_host->log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cu_host->log(level, CU_PLUGIN_NAME, "%s", msg);
}

int cu_fail(const char *what, cudaError_t e)
{
    cu_log(SLM_LOG_ERROR, "%s: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
    return e == cudaErrorMemoryAllocation ? SLM_E_NOMEM : SLM_E_DEVICE;
}

/* The host makes the last message logged during a failed init the plugin's
 * reason. No device or no driver is SLM_E_NOT_FOUND: a machine without a GPU,
 * reported at info level; a runtime that fails otherwise is SLM_E_DEVICE, a
 * warning. */
static int cub_init(const slm_host_t *host, void **backend)
{
    cu_host = host;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) {
        cu_log(SLM_LOG_INFO, "no CUDA device (%s)", cudaGetErrorString(e));
        return SLM_E_NOT_FOUND;
    }
    if (e != cudaSuccess) {
        cu_log(SLM_LOG_INFO, "CUDA runtime initialisation failed: %s (%s)", cudaGetErrorName(e),
               cudaGetErrorString(e));
        return SLM_E_DEVICE;
    }
    if (n < 1) {
        cu_log(SLM_LOG_INFO, "no CUDA device (the runtime counts none)");
        return SLM_E_NOT_FOUND;
    }
    cu_backend_t *b = calloc(1, sizeof *b);
    if (!b)
        return SLM_E_NOMEM;
    b->n_dev = n;
    *backend = b;
    return SLM_OK;
}

static void cub_cleanup(void *backend)
{
    free(backend);
}

static int cub_device_count(void *backend)
{
    return backend ? ((cu_backend_t *)backend)->n_dev : 0;
}

static int cub_device_props(void *backend, int index, slm_device_props_t *p)
{
    cu_backend_t *b = backend;
    if (!b || index < 0 || index >= b->n_dev || !p || p->struct_size < sizeof *p)
        return SLM_E_INVALID;
    struct cudaDeviceProp pr;
    cudaError_t e = cudaGetDeviceProperties(&pr, index);
    if (e != cudaSuccess)
        return cu_fail("cudaGetDeviceProperties", e);
    memset((char *)p + sizeof p->struct_size, 0, sizeof *p - sizeof p->struct_size);
    size_t len = strnlen(pr.name, sizeof p->name - 1);
    memcpy(p->name, pr.name, len);
    p->name[len] = 0;
    /* Total, not free: asking for free memory would create a context on every
     * device each time devices are listed. */
    p->memory_total = pr.totalGlobalMem;
    p->memory_free = pr.totalGlobalMem;
    p->type = pr.integrated ? SLM_DEVICE_IGPU : SLM_DEVICE_DGPU;
    p->score = pr.integrated ? SLM_DEVICE_SCORE_IGPU : SLM_DEVICE_SCORE_DGPU;
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    snprintf(p->description, sizeof p->description,
             "CUDA compute capability %d.%d, %d SMs, %s GPU; driver %d.%d, runtime %d.%d",
             pr.major, pr.minor, pr.multiProcessorCount, pr.integrated ? "integrated" : "discrete",
             drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
    return SLM_OK;
}

static const slm_backend_iface_t cu_iface = {
    .struct_size = sizeof(slm_backend_iface_t),
    .iface_version = SLM_BACKEND_IFACE_VERSION,
    .init = cub_init,
    .cleanup = cub_cleanup,
    .device_count = cub_device_count,
    .device_props = cub_device_props,
    .device_open = cu_device_open,
    .device_close = cu_device_close,
    .supports_node = cu_supports_node,
    .buffer_alloc = cu_buffer_alloc,
    .buffer_free = cu_buffer_free,
    .buffer_set = cu_buffer_set,
    .buffer_get = cu_buffer_get,
    .buffer_clear = cu_buffer_clear,
    .graph_compute = cu_graph_compute,
    .synchronize = cu_synchronize,
    .buffer_alloc_ex = cu_buffer_alloc_ex,
    .buffer_copy = cu_buffer_copy,
    .buffer_set_async = cu_buffer_set_async,
    .buffer_get_async = cu_buffer_get_async,
    .event_new = cu_event_new,
    .event_free = cu_event_free,
    .event_record = cu_event_record,
    .event_wait = cu_event_wait,
    .event_synchronize = cu_event_synchronize,
    .graph_record = cu_graph_record,
    .graph_replay = cu_graph_replay,
    .graph_release = cu_graph_release,
};

SLM_PLUGIN_DEFINE(SLM_PLUGIN_KIND_BACKEND, CU_PLUGIN_NAME, PLUGIN_VERSION, NULL, &cu_iface)
