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

/* Whether node n (a checked SLM_OP_ATTN) has queries enough for blocks. */
bool cpu_attn_blocks_apply(const slm_node_t *n);

/* Scratch one thread needs for cpu_attn_block: a block's scores. */
size_t cpu_attn_block_bytes(const slm_node_t *n);

/* The cells a block of queries sees, kept by a thread for its next head of the same
 * block (finding them reads every mask row of the block). */
typedef struct attn_span {
    int64_t t0;                /* the block's first query; -1: none yet */
    int64_t lo, hi;            /* its cells */
    bool ok;                   /* one span, every cell of it seen by some query */
} attn_span_t;

/* Queries [t0, t1) (at most ATTN_BLOCK) of query head h, written to the node's
 * destination. False, with nothing written, where the cells the block sees are not
 * one span every cell of which some query sees: the caller takes those one by one. */
bool cpu_attn_block(const slm_node_t *n, int64_t t0, int64_t t1, int64_t h, attn_span_t *span,
                    float *scores);

#endif
