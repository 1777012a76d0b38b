/* The OpenCL backend plugin: the backend context (every usable device of every
 * platform the ICD loader lists), device description and scores, the entry point. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl.h"

#define PLUGIN_VERSION PACKAGE_VERSION

const slm_host_t *ocl_host;

void ocl_log(slm_log_level_t level, const char *fmt, ...)
{
    if (!ocl_host || !ocl_host->log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ocl_host->log(level, OCL_PLUGIN_NAME, "%s", msg);
}

/* "OpenCL X.Y ..." (CL_DEVICE_VERSION) as 10*X+Y, 0 if unreadable. */
static int device_version(cl_device_id dev)
{
    char v[128] = "";
    int major = 0, minor = 0;
    if (clGetDeviceInfo(dev, CL_DEVICE_VERSION, sizeof v - 1, v, NULL) != CL_SUCCESS ||
        sscanf(v, "OpenCL %d.%d", &major, &minor) != 2)
        return 0;
    return major * 10 + minor;
}

/* A device the kernels can run on: available, with a compiler (they are built
 * from source), OpenCL 1.2 (clEnqueueFillBuffer) and work-groups of OCL_GROUP. */
static bool usable(cl_device_id dev)
{
    cl_bool avail = CL_FALSE, compiler = CL_FALSE;
    size_t group = 0;
    clGetDeviceInfo(dev, CL_DEVICE_AVAILABLE, sizeof avail, &avail, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler, &compiler, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof group, &group, NULL);
    char name[128] = "?";
    clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name - 1, name, NULL);
    const char *why = !avail ? "not available"
                      : !compiler ? "no OpenCL C compiler"
                      : device_version(dev) < 12 ? "older than OpenCL 1.2"
                      : group < OCL_GROUP ? "work-groups smaller than 64"
                                          : NULL;
    if (why)
        ocl_log(SLM_LOG_INFO, "OpenCL device %s skipped: %s", name, why);
    return why == NULL;
}

/* No ICD loader, no platform or no device is not an error: the plugin reports 0
 * devices, and `slmops plugins` shows why. */
static int oclb_init(const slm_host_t *host, void **backend)
{
    ocl_host = host;
    ocl_backend_t *b = calloc(1, sizeof *b);
    if (!b)
        return SLM_E_NOMEM;
    pthread_mutex_init(&b->lock, NULL);
    cl_uint n_plat = 0;
    cl_platform_id plat[8];
    cl_int r = clGetPlatformIDs(8, plat, &n_plat);
    if (r != CL_SUCCESS) {
        ocl_log(SLM_LOG_INFO, "no OpenCL platform (error %d): no devices", (int)r);
        n_plat = 0;
    }
    for (cl_uint p = 0; p < n_plat && p < 8; p++) {
        cl_uint n_dev = 0;
        cl_device_id dev[OCL_MAX_DEVICES];
        if (clGetDeviceIDs(plat[p], CL_DEVICE_TYPE_ALL, OCL_MAX_DEVICES, dev, &n_dev) != CL_SUCCESS)
            continue;
        for (cl_uint i = 0; i < n_dev && i < OCL_MAX_DEVICES && b->n < OCL_MAX_DEVICES; i++)
            if (usable(dev[i]))
                b->slot[b->n++] = (ocl_slot_t){.platform = plat[p], .device = dev[i]};
    }
    *backend = b;
    return SLM_OK;
}

static void oclb_cleanup(void *backend)
{
    ocl_backend_t *b = backend;
    if (!b)
        return;
    for (int i = 0; i < b->n; i++)
        ocl_slot_release(&b->slot[i]);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static int oclb_device_count(void *backend)
{
    return backend ? ((ocl_backend_t *)backend)->n : 0;
}

static void device_string(cl_device_id dev, cl_device_info what, char *out, size_t cap)
{
    out[0] = 0;
    if (clGetDeviceInfo(dev, what, cap - 1, out, NULL) != CL_SUCCESS)
        out[0] = 0;
    out[cap - 1] = 0;
}

static int oclb_device_props(void *backend, int index, slm_device_props_t *p)
{
    ocl_backend_t *b = backend;
    if (!b || index < 0 || index >= b->n || !p || p->struct_size < sizeof *p)
        return SLM_E_INVALID;
    cl_device_id dev = b->slot[index].device;
    memset((char *)p + sizeof p->struct_size, 0, sizeof *p - sizeof p->struct_size);
    device_string(dev, CL_DEVICE_NAME, p->name, sizeof p->name);
    char version[96], platform[64] = "";
    device_string(dev, CL_DEVICE_VERSION, version, sizeof version);
    if (clGetPlatformInfo(b->slot[index].platform, CL_PLATFORM_NAME, sizeof platform - 1, platform,
                          NULL) != CL_SUCCESS)
        platform[0] = 0;
    platform[sizeof platform - 1] = 0;
    cl_ulong mem = 0;
    cl_device_type type = 0;
    cl_bool unified = CL_FALSE;
    clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL);
    p->memory_total = mem;
    p->memory_free = mem;
    const char *kind;
    if (type & CL_DEVICE_TYPE_GPU) {
        p->type = unified ? SLM_DEVICE_IGPU : SLM_DEVICE_DGPU;
        p->score = unified ? SLM_DEVICE_SCORE_IGPU : SLM_DEVICE_SCORE_DGPU;
        kind = unified ? "integrated GPU" : "discrete GPU";
    } else if (type & CL_DEVICE_TYPE_CPU) {
        /* PoCL and other CPU implementations: slower than the CPU backend. Not
         * SLM_DEVICE_CPU: the scheduler takes a CPU device for the fallback that runs
         * every op, and this one does not. */
        p->type = SLM_DEVICE_ACCEL;
        p->score = SLM_DEVICE_SCORE_EMULATED;
        kind = "CPU-emulated, ranked below the CPU backend";
    } else {
        /* an accelerator card (FPGA, DSP): ranked with integrated GPUs */
        p->type = SLM_DEVICE_ACCEL;
        p->score = SLM_DEVICE_SCORE_IGPU;
        kind = "accelerator";
    }
    snprintf(p->description, sizeof p->description, "%s, platform %s; %s", version, platform, kind);
    return SLM_OK;
}

static const slm_backend_iface_t ocl_iface = {
    .struct_size = sizeof(slm_backend_iface_t),
    .iface_version = SLM_BACKEND_IFACE_VERSION,
    .init = oclb_init,
    .cleanup = oclb_cleanup,
    .device_count = oclb_device_count,
    .device_props = oclb_device_props,
    .device_open = ocl_device_open,
    .device_close = ocl_device_close,
    .supports_node = ocl_supports_node,
    .buffer_alloc = ocl_buffer_alloc,
    .buffer_free = ocl_buffer_free,
    .buffer_set = ocl_buffer_set,
    .buffer_get = ocl_buffer_get,
    .buffer_clear = ocl_buffer_clear,
    .graph_compute = ocl_graph_compute,
    .synchronize = ocl_synchronize,
    .buffer_copy = ocl_buffer_copy,
};

SLM_PLUGIN_DEFINE(SLM_PLUGIN_KIND_BACKEND, OCL_PLUGIN_NAME, PLUGIN_VERSION, NULL, &ocl_iface)
