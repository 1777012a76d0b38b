/* The KV cache of a decoding context: its buffers, the cells saying which sequence
 * and position each row holds, and the memory seam that appends to it and attends over it. */
#ifndef SLMOPS_RUNTIME_KV_CACHE_H
#define SLMOPS_RUNTIME_KV_CACHE_H

#include <stdint.h>

#include "runtime/forward.h"

typedef struct slm__kv_cell {
    int32_t pos;
    int32_t seq;               /* -1: free */
} slm__kv_cell_t;

typedef struct slm__kv_cache {
    const slm_model_t *m;
    uint32_t n_ctx, n_seq;
    slm_type_t type;
    size_t es;                 /* bytes per element */
    uint64_t k_layer, v_layer; /* bytes of one layer's K (V) in its buffer */
    slm_buffer_t *k, *v;
    /* V holds a row per cell like K, for the fused attention op (D53); else it is
     * stored transposed, a row per dimension, for the composite's matmul. */
    bool v_rows;
    slm__kv_cell_t *cells;
    int32_t *seq_next;         /* next position per sequence */
} slm__kv_cache_t;

/* Cells and buffers for n_ctx tokens of n_seq sequences (type f16 or f32). */
int slm__kv_init(slm__kv_cache_t *kv, const slm_model_t *m, uint32_t n_ctx, uint32_t n_seq,
                 slm_type_t type, slm_error_t *err);
void slm__kv_release(slm__kv_cache_t *kv);

void slm__kv_seq_clear(slm__kv_cache_t *kv, int32_t seq);
void slm__kv_seq_truncate(slm__kv_cache_t *kv, int32_t seq, int32_t pos);
int32_t slm__kv_seq_pos(const slm__kv_cache_t *kv, int32_t seq);

/* The first run of *n free cells, or else the longest run, its length in *n (0:
 * the cache is full). */
uint32_t slm__kv_find_run(const slm__kv_cache_t *kv, uint32_t *n);
uint32_t slm__kv_free_cells(const slm__kv_cache_t *kv);
/* Cells attention spans for the cells in use: a multiple of the padding, so that one
 * graph serves many decode steps. */
uint32_t slm__kv_span(const slm__kv_cache_t *kv);
/* Cells [head, head + n) hold these tokens now / are free again. */
void slm__kv_occupy(slm__kv_cache_t *kv, uint32_t head, int32_t n, const int32_t *pos,
                    const int32_t *seq);
void slm__kv_vacate(slm__kv_cache_t *kv, uint32_t head, int32_t n);
/* Additive mask [n_kv, n]: a token sees its own sequence's cells up to its position. */
void slm__kv_fill_mask(const slm__kv_cache_t *kv, uint32_t n_kv, int32_t n, const int32_t *pos,
                       const int32_t *seq, float *mask);

/* The memory seam over the cache: each layer's K and V are copied into cells
 * [head, head + N) and attention spans cells [0, n_kv). writes gets 4 tensors per
 * layer (K copy, K view, V copy, V view) so that a kept graph can be moved to other
 * cells (slm__kv_move_writes). */
typedef struct slm__kv_memory {
    slm__memory_t mem;
    slm__kv_cache_t *kv;
    uint32_t head, n_kv;
    slm_tensor_t **writes;
} slm__kv_memory_t;

void slm__kv_memory_init(slm__kv_memory_t *km, slm__kv_cache_t *kv, uint32_t head,
                         uint32_t n_kv, slm_tensor_t **writes);
/* Point the writes of an allocated graph at cells starting at head. */
int slm__kv_move_writes(const slm__kv_cache_t *kv, slm_tensor_t **writes, uint32_t head);

#endif
