/* Whole-row half and bfloat16 conversions for the CPU backend, over the SDK's
 * scalar ones (<slmops/fp16.h>: hardware F16C when the variant has it). */
#ifndef SLMOPS_CPU_CONVERT_H
#define SLMOPS_CPU_CONVERT_H

#include <stdint.h>

#include <slmops/fp16.h>

/* Whole rows: the loops stay simple so the compiler can vectorise them. */
static inline void cpu_row_f16_to_f32(const uint16_t *restrict src, float *restrict dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = slm_half_to_float(src[i]);
}

static inline void cpu_row_bf16_to_f32(const uint16_t *restrict src, float *restrict dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = slm_bf16_to_float(src[i]);
}

#endif
