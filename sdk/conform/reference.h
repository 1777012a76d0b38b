/* The conformance oracle: a scalar, double-accumulating implementation of every
 * op in slmops/ops.h that reads and writes host memory through arbitrary strides. */
#ifndef SLMOPS_CONFORM_REFERENCE_H
#define SLMOPS_CONFORM_REFERENCE_H

#include <stdint.h>
#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>

/* Compute node on host memory: every src[i].data and dst.data must point at
 * element 0 of that tensor. Returns 0, or SLM_E_UNSUPPORTED / SLM_E_INVALID. */
int slm_conform_ref_compute(const slm_node_t *node);

/* Element i of t as a double (f32, f16, bf16, i32), and the converse store. */
double slm_conform_ref_load(const slm_tensor_desc_t *t, const int64_t i[4]);
void slm_conform_ref_store(const slm_tensor_desc_t *t, const int64_t i[4], double v);

/* Size in bytes of one element of the scalar types the reference handles (0: other). */
size_t slm_conform_type_size(int type);

#endif
