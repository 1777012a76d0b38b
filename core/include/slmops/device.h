/* Devices offered by the backend plugins, and choosing one by id or "auto".
 * A device id is "family:index" ("cpu:0", "vulkan:1"); a specific plugin variant
 * may be named instead of the family ("cpu-avx2:0"). */
#ifndef SLMOPS_DEVICE_H
#define SLMOPS_DEVICE_H

#include <stdint.h>
#include <slmops/error.h>
#include <slmops/registry.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_device slm_device_t;

typedef struct slm_device_info {
    uint32_t struct_size;
    char id[64];               /* "cpu:0" */
    char plugin[64];           /* plugin serving it: "cpu-avx512" */
    char name[128];
    char type[16];             /* "cpu" | "igpu" | "dgpu" | "accel" */
    uint64_t memory_total;
    uint64_t memory_free;
    int32_t score;
    char description[256];     /* from the backend */
    char why[256];             /* why this plugin variant serves the device */
} slm_device_info_t;

/* Enumerate devices of every usable backend (loads backend plugins). *out is
 * malloc'ed; free with free(). Backends that fail are disabled and skipped. */
int slm_devices_list(slm_registry_t *reg, slm_device_info_t **out, size_t *n, slm_error_t *err);

/* Resolve "auto", "cpu", "cpu:0", "cpu-avx2:0" (or NULL = $SLMOPS_DEVICE or "auto") to a device id. */
int slm_device_resolve(slm_registry_t *reg, const char *spec, slm_device_info_t *out,
                       slm_error_t *err);

/* As slm_device_resolve, and why that device: named by the spec or $SLMOPS_DEVICE,
 * or the highest score of those listed (with the runners-up), in one line. */
int slm_device_choose(slm_registry_t *reg, const char *spec, slm_device_info_t *out, char *why,
                      size_t why_size, slm_error_t *err);

/* slm_device_options flags. */
enum {
    /* Let the backend keep quantized weights a second time in a layout faster for
     * products with several columns (a server's batched decoding, prompts): more
     * memory for throughput (the CPU backend: docs/compute.md, "Repacked weights"). */
    SLM_DEVICE_REPACK = 1u << 0
};

typedef struct slm_device_options {
    uint32_t struct_size;
    int32_t n_threads;         /* <= 0: backend default */
    uint32_t flags;            /* SLM_DEVICE_* */
} slm_device_options_t;

/* Open a device by spec (as slm_device_resolve). */
slm_device_t *slm_device_open(slm_registry_t *reg, const char *spec,
                              const slm_device_options_t *opts, slm_error_t *err);
void slm_device_close(slm_device_t *dev);
const slm_device_info_t *slm_device_get_info(const slm_device_t *dev);

/* The backend interface and device context behind an open device, for tools that
 * drive a backend node by node (slmops-conform). The interface is always version 2
 * (the host adapts version-1 plugins): define SLM_BACKEND_USE_VERSION 2 before
 * including <slmops/plugin-backend.h> to use it. */
struct slm_backend_iface;
const struct slm_backend_iface *slm_device_backend(slm_device_t *dev, void **ctx);
/* The backend context its backend-level slots take (device_count, get_proc_address). */
void *slm_device_backend_context(slm_device_t *dev);

#ifdef __cplusplus
}
#endif
#endif
