/* The node set of the generic GPU kernels: one destination element or row per
 * invocation over byte-addressed buffers with 32-bit offsets, as the Vulkan shaders
 * (plugins/backend-vulkan) and the OpenCL kernels (plugins/backend-opencl) both are.
 * Which nodes they run, their dispatches, and the parameter block they read. */
#ifndef SLM_PLUGIN_GPU_NODES_H
#define SLM_PLUGIN_GPU_NODES_H

#include <stdbool.h>
#include <stdint.h>

#include <slmops/plugin-backend.h>

#define GPU_NT 7              /* tensors a kernel sees: dst, src0..src5 */
#define GPU_SUM_CHUNK 1024    /* elements per partial sum of the sum op */

/* The three kernels (shaders) every node runs on. */
enum { GPU_KERNEL_ELEM, GPU_KERNEL_MATMUL, GPU_KERNEL_ROWS, GPU_KERNEL_COUNT };

/* One dispatch's parameters, 32-bit members only so that host and device layouts
 * agree (std430 in the shaders, a by-value struct in OpenCL C). A backend may
 * append members of its own after it. */
typedef struct gpu_params {
    int32_t ne[GPU_NT * 4];
    int32_t nb[GPU_NT * 4];     /* bytes */
    uint32_t off[GPU_NT];       /* bytes */
    int32_t type[GPU_NT];
    int32_t ip[8];
    float fp[8];
    int32_t op;
    int32_t n_src;
    int32_t phase;
    uint32_t n_items;
} gpu_params_t;

/* The node's op, types and layouts are ones the kernels address. */
bool gpu_node_supported(const slm_node_t *n);
/* Dispatches node n needs: 2 for acc and the two-phase reductions, else 1. */
int gpu_node_phases(const slm_node_t *n);
/* f32 partial results n keeps in the device's scratch buffer between its phases. */
uint64_t gpu_node_scratch(const slm_node_t *n);
/* GPU_KERNEL_* of an op. */
int gpu_node_kernel(int op);
/* Fills p for dispatch `phase` of n (the scratch as tensor 3 of the reductions) and
 * returns its kernel. n_items: one per destination element, per row of the row
 * kernel, per partial sum; 1 for a reduction's second phase, which the backend
 * sizes to how its kernel sums (a workgroup, or one work-item). */
int gpu_node_params(const slm_node_t *n, int phase, gpu_params_t *p);

#endif
