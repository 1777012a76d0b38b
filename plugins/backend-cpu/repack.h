/* Repacked weights (SLM_DEVICE_CONFIG_REPACK, docs/compute.md "Repacked weights"):
 * a quantized weight multiplied by several columns is kept a second time as the
 * integer GEMM's panels (qgemm.h), packed on its first such product, so that later
 * products (a server's batched decode steps, prompts) skip the packing. */
#ifndef SLMOPS_CPU_REPACK_H
#define SLMOPS_CPU_REPACK_H

#include "cpu.h"
#include "quant.h"

typedef struct cpu_repack cpu_repack_t;

cpu_repack_t *cpu_repack_new(void);
void cpu_repack_free(cpu_repack_t *r);

/* The weight type of node n when n is a product that would run on panels: MUL_MAT,
 * a 2-D quantized weight of a type the integer GEMM takes, and 2 or more columns of
 * contiguous activations; NULL otherwise. */
const cpu_qtype_t *cpu_repack_takes(const slm_node_t *n);

/* The panels of n's weight (all ceil(M / CPU_QGEMM_MR) of them, cpu_qgemm_panel_bytes
 * apart), packed now when this is the weight's first product; NULL when n does not
 * take panels, its weight lies in `busy` (a buffer the graph writes) or memory ran
 * out (the product then packs as it goes). n's pointers must be resolved. */
const void *cpu_repack_panels(cpu_repack_t *r, const slm_node_t *n, const void *const *busy,
                              size_t n_busy);

/* One info line for the weights packed since the last report (a graph's worth), if any. */
void cpu_repack_report(cpu_repack_t *r);

/* The contents of `buffer` change (or it is freed): drop the copies made from it. */
void cpu_repack_forget(cpu_repack_t *r, const void *buffer);

/* Whether any copy was made from `buffer`. */
bool cpu_repack_holds(const cpu_repack_t *r, const void *buffer);

#endif
