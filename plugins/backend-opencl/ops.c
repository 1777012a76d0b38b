/* The OpenCL backend's dispatches: the generic node set (plugins/common/gpu-nodes.c),
 * with the reductions' second phase on the one-work-item reduce kernel. */
#include "ocl.h"

bool ocl_supports_node(void *dev, const slm_node_t *n)
{
    (void)dev;
    return gpu_node_supported(n);
}

/* Fills *p for dispatch `phase` of n; returns its kernel (OCL_KERNEL_*). */
int ocl_node_params(const slm_node_t *n, int phase, ocl_params_t *p)
{
    int kernel = gpu_node_params(n, phase, p);
    return gpu_node_scratch(n) && phase == 1 ? OCL_KERNEL_REDUCE : kernel;
}
