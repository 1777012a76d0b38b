/* The contract between the CUDA backend's C host code and its kernels (.cu, built
 * by nvcc): one node's operands and parameters, and the three kernel families. */
#ifndef SLMOPS_CUDA_LAUNCH_H
#define SLMOPS_CUDA_LAUNCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CU_NT 7            /* tensors a kernel sees: dst, src0..src5 */
#define CU_SUM_CHUNK 4096  /* elements one block of SUM's first phase adds */

/* One operand: device address of element 0, shape and byte strides. */
typedef struct cu_tensor {
    char *data;
    int64_t ne[4];
    int64_t nb[4];
    int32_t type;
    int32_t reserved;
} cu_tensor_t;

/* One kernel launch (passed by value: it lives in the kernel's parameter space). */
typedef struct cu_params {
    cu_tensor_t t[CU_NT];  /* 0 dst, 1.. sources; t[3] is the scratch of SUM and CROSS_ENTROPY */
    int64_t ip[8];
    float fp[8];
    int32_t op;
    int32_t n_src;
    int32_t phase;
    int32_t reserved;
    int64_t n_items;       /* what the kernel's threads, warps or blocks cover */
} cu_params_t;

/* Each queues its kernel on `stream` (a cudaStream_t) and returns a cudaError_t
 * (0: queued). */
/* One destination element per thread: elementwise ops, copies, optimizer steps, ACC. */
int cu_launch_elem(const cu_params_t *p, void *stream);
/* Products and row gathers over weights of any type, their backward ops, REPEAT_BACK. */
int cu_launch_matmul(const cu_params_t *p, void *stream);
/* Row ops (one block per row: norms, softmax, cross entropy), rope, sums. */
int cu_launch_rows(const cu_params_t *p, void *stream);

#ifdef __cplusplus
}
#endif
#endif
