/* The quantized types this backend has kernels for, one table entry each, and the
 * activation layout the legacy types (q4_0 ... q8_0) share. quant.c lists them. */
#ifndef SLMOPS_CPU_QUANT_TYPES_H
#define SLMOPS_CPU_QUANT_TYPES_H

#include "quant.h"

/* Legacy types: quant-legacy.c. */
extern const cpu_qtype_t cpu_qtype_q8_0, cpu_qtype_q4_0, cpu_qtype_q4_1, cpu_qtype_q5_0,
    cpu_qtype_q5_1;
/* K-quants and NF4: quant-k.c and quant-nf4.c. */
extern const cpu_qtype_t cpu_qtype_q4_k, cpu_qtype_q5_k, cpu_qtype_q6_k, cpu_qtype_nf4;

/* Activation layout private to this backend for the legacy types (act_type below).
 * A row of k elements (nb = k / 32 blocks) is stored as
 *   int8_t qs[k]      round-to-nearest-even(x / d) per element,
 *   float  d[nb]      block scale amax / 127,
 *   float  s[nb]      d * sum(qs of the block),
 * so that SIMD kernels read two blocks of qs with one 64-byte load, and the
 * weight offsets (q4_0's -8, q4_1's min) reduce to one dot product with s. */
#define CPU_ACT_Q8X 4104
#define CPU_ACT_Q8X_BLOCK 32
#define CPU_ACT_Q8X_BYTES 40

/* Bytes to reserve per converted activation row of k elements, rounded so that
 * every row starts on a cache line. */
static inline size_t cpu_qtype_act_row_bytes(const cpu_qtype_t *q, int64_t k)
{
    size_t bytes = (size_t)(k / q->act_block) * q->act_block_bytes;
    return (bytes + 63) & ~(size_t)63;
}

#endif
