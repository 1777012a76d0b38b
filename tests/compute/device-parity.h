/* Checks every device backend's test runs against the CPU backend (tests/vulkan,
 * tests/opencl, tests/cuda): greedy decoding of a model, the two-phase reductions.
 * Each fails the running Check test with the position or op that differs. */
#ifndef SLMOPS_TESTS_COMPUTE_DEVICE_PARITY_H
#define SLMOPS_TESTS_COMPUTE_DEVICE_PARITY_H

#include <stdbool.h>
#include <stdint.h>
#include <slmops/slmops.h>

#define DP_STEPS 256         /* positions decoded */
#define DP_LOGIT_TOL 1e-3f   /* logits at positions 0, 1, 2 and DP_STEPS - 1 */

/* Greedy decoding of model_path (a vocabulary of n_vocab) from BOS on the CPU,
 * token by token; then on `device` the same tokens, the first 8 one at a time (the
 * decode path), the rest as one prompt in micro-batches: the same argmax at every
 * position, the logits at 0, 1, 2 and 255 within DP_LOGIT_TOL. */
void dp_generation_matches_cpu(slm_registry_t *reg, const char *model_path, int32_t n_vocab,
                               const char *device);

/* One f32 cross-entropy (op SLM_OP_CROSS_ENTROPY, logits l and targets t of [V, N])
 * or sum (SLM_OP_SUM, of l) on `device`. */
float dp_reduce_on(slm_registry_t *reg, const char *device, int op, int64_t V, int64_t N,
                   const float *l, const float *t);

/* Reductions over more than one workgroup's share: the loss over [512, 64] logits
 * and a sum of 70000 elements, on `device` against the CPU. */
void dp_long_reductions_match_cpu(slm_registry_t *reg, const char *device);

/* auto never picks `device` when it is CPU-emulated (scores below the CPU backend). */
void dp_auto_keeps_the_cpu(slm_registry_t *reg, const char *device);

/* Whether every backend must run op: the fused ops are optional (docs/decisions.md
 * D53), a device without them gets the composite they stand for. */
static inline bool dp_op_required(int op)
{
    return op != SLM_OP_ATTN;
}

/* Exits 77 naming what is missing unless `device` of backend `plugin` opens:
 * build_hint says how to build the plugin, device_hint how to get a device. The
 * probe runs in a child process: a driver started here (PoCL's worker threads)
 * would not survive Check's fork into each test. */
void dp_skip_unless_device(const char *plugin, const char *device, const char *build_hint,
                           const char *device_hint);

#endif
