/* Prompt-sized fused attention by blocks of queries (attn-blocks.c). */
#ifndef SLMOPS_CPU_ATTN_BLOCKS_H
#define SLMOPS_CPU_ATTN_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu.h"

/* Queries per block, and the fewest queries for which a node goes by blocks. */
#define ATTN_BLOCK 64
#define ATTN_BLOCKS_MIN_N 32

/* Whether node n (a checked SLM_OP_ATTN) goes by blocks with nth threads: queries
 * enough, and (block, head) items for every thread. */
bool cpu_attn_blocks_apply(const slm_node_t *n, int nth);

/* The node's blocks of queries (the last may be partial). */
int64_t cpu_attn_blocks(const slm_node_t *n);

/* Scratch one thread needs for cpu_attn_block: a block's scores. */
size_t cpu_attn_block_bytes(const slm_node_t *n);

/* The cells one block of queries sees. */
typedef struct attn_span {
    int64_t lo, hi;            /* its cells */
    bool ok;                   /* one span, every cell of it seen by some query */
} attn_span_t;

/* spans[b] for the blocks b = ith, ith + nth, ... (every thread its own; the caller
 * meets the others before reading them). */
void cpu_attn_find_spans(const slm_node_t *n, int ith, int nth, attn_span_t *spans);

/* Block b of the node for query head h (spans[b].ok), written to its destination. */
void cpu_attn_block(const slm_node_t *n, int64_t b, int64_t h, const attn_span_t *span,
                    float *scores);

#endif
