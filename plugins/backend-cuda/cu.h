/* The CUDA backend's shared state: the backend context (devices the runtime
 * sees), one opened device (its stream and scratch), buffers, recorded graphs. */
#ifndef SLMOPS_CU_H
#define SLMOPS_CU_H

#include <stdbool.h>
#include <stdint.h>
#include <cuda_runtime_api.h>

#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>

#include "kernels/launch.h"

#ifndef CU_PLUGIN_NAME   /* tests/cuda/emu builds these sources under another name */
#define CU_PLUGIN_NAME "backend-cuda"
#endif

extern const slm_host_t *cu_host;
void cu_log(slm_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Log a failed runtime call (what, and the runtime's name and text) and map it to SLM_E_*. */
int cu_fail(const char *what, cudaError_t e);

typedef struct cu_backend {
    int n_dev;
} cu_backend_t;

typedef struct cu_buffer {
    char *ptr;                   /* device memory, or pinned host memory when host */
    uint64_t size;
    bool host;                   /* cudaMallocHost: the CPU may use ptr too */
} cu_buffer_t;

typedef struct cu_device {
    int ordinal;
    cudaStream_t stream;
    char *scratch;               /* partial sums of graph_compute's two-phase reductions */
    uint64_t scratch_size;
} cu_device_t;

/* device.c: the device, buffer and event slots of the interface */
int cu_device_open(void *backend, int index, const slm_device_config_t *cfg, void **dev);
void cu_device_close(void *dev);
/* Make dev's GPU current for this thread's runtime calls. */
int cu_use(const cu_device_t *d);
int cu_scratch_reserve(char **scratch, uint64_t *have, uint64_t bytes);
int cu_buffer_alloc(void *dev, uint64_t size, void **buffer, void **base);
int cu_buffer_alloc_ex(void *dev, const slm_buffer_request_t *req, void **buffer, void **base);
void cu_buffer_free(void *dev, void *buffer);
int cu_buffer_set(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size);
int cu_buffer_get(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size);
int cu_buffer_set_async(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size);
int cu_buffer_get_async(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size);
int cu_buffer_clear(void *dev, void *buffer, uint64_t offset, uint64_t size, uint8_t value);
int cu_buffer_copy(void *dst_dev, void *dst, uint64_t dst_offset, void *src_dev, void *src,
                   uint64_t src_offset, uint64_t size);
int cu_synchronize(void *dev);
int cu_event_new(void *dev, void **event);
void cu_event_free(void *dev, void *event);
int cu_event_record(void *dev, void *event);
int cu_event_wait(void *dev, void *event);
int cu_event_synchronize(void *dev, void *event);

/* ops.c */
bool cu_supports_node(void *dev, const slm_node_t *n);
/* Launches node n needs (1 or 2). */
int cu_node_phases(const slm_node_t *n);
/* f32 partial results node n keeps in the scratch between its phases (0: none). */
uint64_t cu_node_scratch(const slm_node_t *n);
/* Queue launch `phase` of node n on `stream`, its partials in `scratch`. */
int cu_node_launch(const slm_node_t *n, int phase, char *scratch, cudaStream_t stream);

/* compute.c */
int cu_graph_compute(void *dev, const slm_node_t *const *nodes, size_t n_nodes);
int cu_graph_record(void *dev, const slm_node_t *const *nodes, size_t n_nodes, void **graph);
int cu_graph_replay(void *dev, void *graph);
void cu_graph_release(void *dev, void *graph);

#endif
