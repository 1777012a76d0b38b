/* The scheduler: places each node of a graph on a device (falling back to the
 * CPU, with a log line, for nodes the device cannot run), inserts the copies
 * between devices, plans memory so that intermediates reuse space, and runs it. */
#ifndef SLMOPS_SCHED_H
#define SLMOPS_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/device.h>
#include <slmops/graph.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_sched slm_sched_t;

/* The most devices one scheduler places nodes on (the CPU fallback included). */
#define SLM_SCHED_MAX_DEVICES 8

typedef struct slm_sched_options {
    uint32_t struct_size;
    /* A spec for slm_device_open, or several separated by commas ("vulkan:0,vulkan:1"):
     * each node goes to the first that runs it, then to the CPU fallback.
     * NULL: $SLMOPS_DEVICE or "auto". */
    const char *device;
    int32_t n_threads;         /* <= 0: backend default */
    /* SLM_DEVICE_* for every device it opens; 64 bits so that the struct grows and
     * struct_size tells callers built before it apart. */
    uint64_t device_flags;
} slm_sched_options_t;

slm_sched_t *slm_sched_new(slm_registry_t *reg, const slm_sched_options_t *opts, slm_error_t *err);
void slm_sched_free(slm_sched_t *s);
/* The primary device chosen for this scheduler. */
const slm_device_info_t *slm_sched_device(const slm_sched_t *s);

/* Assign devices and allocate memory for g. Must precede set/get/compute;
 * may be called again after the graph grows (the data of leaves already set,
 * optimizer moments included, is kept). */
int slm_sched_alloc(slm_sched_t *s, slm_graph_t *g, slm_error_t *err);
/* Copy host data into/out of a tensor (leaves, params, outputs; t must be contiguous). */
int slm_tensor_set_data(slm_tensor_t *t, const void *data, size_t offset, size_t size);
int slm_tensor_get_data(const slm_tensor_t *t, void *data, size_t offset, size_t size);
/* Run the whole graph once. A training graph is run by its optimizer
 * (slm_optim_step, slmops/optim.h), which sets the step's inputs first. */
int slm_sched_compute(slm_sched_t *s, slm_graph_t *g, slm_error_t *err);

/* The devices open now (the ones asked for, then the CPU fallback once a node
 * needed it), and device i of them. */
int slm_sched_n_devices(const slm_sched_t *s);
const slm_device_info_t *slm_sched_device_at(const slm_sched_t *s, int i);
/* Nodes placed on a device other than the primary one (CPU fallbacks). */
size_t slm_sched_n_fallback(const slm_sched_t *s);
/* Bytes of device memory the plan uses for intermediates (after reuse) and in total. */
uint64_t slm_sched_compute_bytes(const slm_sched_t *s);

/* Persistent storage on the scheduler's primary device that outlives graphs:
 * model weights and KV caches, shared by every graph the scheduler runs. */
typedef struct slm_buffer slm_buffer_t;

/* size bytes of device memory, zero-filled. */
slm_buffer_t *slm_buffer_new(slm_sched_t *s, uint64_t size, slm_error_t *err);
/* Host memory (e.g. a read-only file mapping) used in place when the device can
 * (backend buffer_from_host), else copied into a new device buffer. `data` must
 * outlive the buffer. */
slm_buffer_t *slm_buffer_from_host(slm_sched_t *s, const void *data, uint64_t size,
                                   slm_error_t *err);
void slm_buffer_free(slm_buffer_t *b);
uint64_t slm_buffer_size(const slm_buffer_t *b);
/* True when the buffer uses the caller's host memory without a copy. */
bool slm_buffer_is_zero_copy(const slm_buffer_t *b);
int slm_buffer_set(slm_buffer_t *b, uint64_t offset, const void *data, uint64_t size);
int slm_buffer_get(const slm_buffer_t *b, uint64_t offset, void *data, uint64_t size);

/* Make leaf t (of a graph not yet allocated) live in b at offset instead of in
 * graph-owned memory. The scheduler neither allocates nor clears it; slm_cpy into
 * a view of it (e.g. appending to a KV cache) updates b itself. */
int slm_tensor_bind(slm_tensor_t *t, slm_buffer_t *b, uint64_t offset, slm_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
