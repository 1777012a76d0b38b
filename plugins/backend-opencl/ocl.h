/* The OpenCL backend's shared state: the backend context (every device of every
 * platform, its context and built program), one opened device and node parameters. */
#ifndef SLMOPS_OCL_H
#define SLMOPS_OCL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>

#include "gpu-nodes.h"

#define OCL_PLUGIN_NAME "backend-opencl"
#define OCL_MAX_DEVICES 32
#define OCL_NT GPU_NT
#define OCL_GROUP 64             /* work-group size of the dispatches (but reduce's) */

extern const slm_host_t *ocl_host;
void ocl_log(slm_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The generic kernels, then the reduction's second phase (one work-item). */
enum { OCL_KERNEL_ELEM = GPU_KERNEL_ELEM, OCL_KERNEL_MATMUL = GPU_KERNEL_MATMUL,
       OCL_KERNEL_ROWS = GPU_KERNEL_ROWS, OCL_KERNEL_REDUCE = GPU_KERNEL_COUNT, OCL_KERNEL_COUNT };

/* One device of one platform, and what is built for it once per process: its
 * context and program (PoCL compiles with LLVM, which is slow; every device_open
 * of the same device reuses them). */
typedef struct ocl_slot {
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;          /* NULL until first opened */
    cl_program program;
} ocl_slot_t;

typedef struct ocl_backend {
    pthread_mutex_t lock;        /* guards the lazy build of the slots */
    int n;
    ocl_slot_t slot[OCL_MAX_DEVICES];
} ocl_backend_t;

typedef struct ocl_buffer {
    cl_mem mem;
    uint64_t size;
} ocl_buffer_t;

typedef struct ocl_device {
    ocl_slot_t *slot;
    cl_command_queue queue;
    cl_kernel kernel[OCL_KERNEL_COUNT];
    uint64_t max_alloc;          /* CL_DEVICE_MAX_MEM_ALLOC_SIZE */
    ocl_buffer_t scratch;        /* partial sums of two-phase reductions */
} ocl_device_t;

/* Parameters of one dispatch, passed by value as the kernels' `P` (kernels/common.cl):
 * the generic block, 32-bit members only, so the host and device layouts agree. */
typedef gpu_params_t ocl_params_t;

/* program.c: the kernels' source (embedded) built for a slot, once */
int ocl_program_get(ocl_backend_t *b, int index, ocl_slot_t **slot);
void ocl_slot_release(ocl_slot_t *s);

/* device.c: the device and buffer slots of the interface */
int ocl_device_open(void *backend, int index, const slm_device_config_t *cfg, void **dev);
void ocl_device_close(void *dev);
int ocl_buffer_make(ocl_device_t *d, uint64_t size, ocl_buffer_t *b);
void ocl_buffer_drop(ocl_buffer_t *b);
int ocl_buffer_alloc(void *dev, uint64_t size, void **buffer, void **base);
void ocl_buffer_free(void *dev, void *buffer);
int ocl_buffer_set(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size);
int ocl_buffer_get(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size);
int ocl_buffer_clear(void *dev, void *buffer, uint64_t offset, uint64_t size, uint8_t value);
int ocl_buffer_copy(void *dst_dev, void *dst, uint64_t dst_offset, void *src_dev, void *src,
                    uint64_t src_offset, uint64_t size);
int ocl_synchronize(void *dev);

/* ops.c (the node set is plugins/common/gpu-nodes.h's) */
bool ocl_supports_node(void *dev, const slm_node_t *n);
/* The kernel, parameters and item count of dispatch `phase` of n. */
int ocl_node_params(const slm_node_t *n, int phase, ocl_params_t *p);

/* compute.c */
int ocl_graph_compute(void *dev, const slm_node_t *const *nodes, size_t n_nodes);

#endif
