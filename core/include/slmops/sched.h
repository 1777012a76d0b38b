/* The scheduler: places each node of a graph on a device (falling back to the
 * CPU, with a log line, for nodes the device cannot run), inserts the copies
 * between devices, plans memory so that intermediates reuse space, and runs it. */
#ifndef SLMOPS_SCHED_H
#define SLMOPS_SCHED_H

#include <stddef.h>
#include <stdint.h>
#include <slmops/device.h>
#include <slmops/graph.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_sched slm_sched_t;

typedef struct slm_sched_options {
    uint32_t struct_size;
    const char *device;        /* spec for slm_device_open; NULL: $SLMOPS_DEVICE or "auto" */
    int32_t n_threads;         /* <= 0: backend default */
} slm_sched_options_t;

slm_sched_t *slm_sched_new(slm_registry_t *reg, const slm_sched_options_t *opts, slm_error_t *err);
void slm_sched_free(slm_sched_t *s);
/* The primary device chosen for this scheduler. */
const slm_device_info_t *slm_sched_device(const slm_sched_t *s);

/* Assign devices and allocate memory for g. Must precede set/get/compute;
 * may be called again after the graph grows. Optimizer moments start at zero. */
int slm_sched_alloc(slm_sched_t *s, slm_graph_t *g, slm_error_t *err);
/* Copy host data into/out of a tensor (leaves, params, outputs; t must be contiguous). */
int slm_tensor_set_data(slm_tensor_t *t, const void *data, size_t offset, size_t size);
int slm_tensor_get_data(const slm_tensor_t *t, void *data, size_t offset, size_t size);
/* Run the whole graph once. For graphs with an AdamW step, this is one training step. */
int slm_sched_compute(slm_sched_t *s, slm_graph_t *g, slm_error_t *err);

/* Nodes placed on a device other than the primary one (CPU fallbacks). */
size_t slm_sched_n_fallback(const slm_sched_t *s);
/* Bytes of device memory the plan uses for intermediates (after reuse) and in total. */
uint64_t slm_sched_compute_bytes(const slm_sched_t *s);

#ifdef __cplusplus
}
#endif
#endif
