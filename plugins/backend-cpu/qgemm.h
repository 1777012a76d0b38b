/* Prompt-sized products of quantized weights on integers: activations become u8
 * blocks once per product, weight rows are unpacked to int8 panels, VNNI does the rest. */
#ifndef SLMOPS_CPU_QGEMM_H
#define SLMOPS_CPU_QGEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quant.h"

/* Weight rows per panel: two 16-lane vectors of int32 sums. */
#define CPU_QGEMM_MR 32

/* Whether this variant runs q's products through the integer GEMM (VNNI builds,
 * types that unpack to int8). */
bool cpu_qgemm_ok(const cpu_qtype_t *q);

/* Bytes of one converted activation column of K elements (cache-line rounded). */
size_t cpu_qgemm_act_bytes(int64_t K);

/* Bytes of one packed panel of CPU_QGEMM_MR rows of K elements (cache-line rounded),
 * and of the per-thread row buffer cpu_qgemm_pack needs. */
size_t cpu_qgemm_panel_bytes(const cpu_qtype_t *q, int64_t K);
size_t cpu_qgemm_tmp_bytes(int64_t K);

/* Convert K f32 activations (K a multiple of 32) to one column for q's panels. */
void cpu_qgemm_quantize(const cpu_qtype_t *q, const float *x, void *col, int64_t K);

/* Pack rows [0, rows) (rows <= CPU_QGEMM_MR, row i at w + i * w_row) into a panel;
 * rows past `rows` are zero. */
void cpu_qgemm_pack(const cpu_qtype_t *q, const char *w, size_t w_row, int rows, int64_t K,
                    void *panel, void *tmp);

/* c[j * c_col + i] = dot(panel row i, column j) for i < rows, j < N; column j at
 * act + j * act_col. `streamed`: the panel is one of many read from memory in a row
 * (repacked weights), worth prefetching ahead of. */
void cpu_qgemm_run(const cpu_qtype_t *q, const void *panel, int rows, int64_t K,
                   const char *act, size_t act_col, int64_t N, float *c, size_t c_col,
                   bool streamed);

#endif
