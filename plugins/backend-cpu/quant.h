/* The CPU backend's contract for quantized weight types: one table entry per
 * block type, holding the kernels this ISA variant compiled for it. ops-matmul.c
 * and ops-getrows.c dispatch through it; each type family lives in its own file. */
#ifndef SLMOPS_CPU_QUANT_H
#define SLMOPS_CPU_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* slmops-only type ids (outside GGUF's range, see docs/quantization.md). */
#define CPU_TYPE_NF4 1024

/* The most columns one dot_cols call takes. */
#define CPU_DOT_COLS 8

typedef struct cpu_qtype {
    int type;                  /* slm_type_t id (GGUF's for GGUF types) */
    const char *name;          /* "q4_0" */
    int block;                 /* elements per block */
    size_t block_bytes;        /* bytes per block, exactly GGUF's layout */
    int act_type;              /* what activations are converted to before the dot:
                                * SLM_TYPE_Q8_0, SLM_TYPE_Q8_K (or another q8 layout
                                * private to the backend), or SLM_TYPE_F32 */
    int act_block;             /* elements per activation block */
    size_t act_block_bytes;    /* bytes per activation block */
    /* Convert k f32 activations (k a multiple of act_block) into act_type blocks. */
    void (*quantize_act)(const float *x, void *y, int64_t k);
    /* Dot product of one weight row and one converted activation row, k elements. */
    float (*vec_dot)(int64_t k, const void *w, const void *a);
    /* Optional (NULL: vec_dot per pair). nr weight rows x nc activation columns:
     * c[j * c_col + i] = dot(w row i, a column j); nr <= 4 and nc <= 4 at most,
     * the op layer tiles the rest. */
    void (*dot_tile)(int64_t k, const void *w, size_t w_row_bytes, const void *a,
                     size_t a_col_bytes, float *c, size_t c_col, int nr, int nc);
    /* Optional (NULL: dot_tile). A few columns (a batch of decoding sequences): nr
     * weight rows, any number, x 2 <= nc <= CPU_DOT_COLS columns, laid out as for
     * dot_tile; each weight row is read once for all the columns. */
    void (*dot_cols)(int64_t k, const void *w, size_t w_row_bytes, const void *a,
                     size_t a_col_bytes, float *c, size_t c_col, int64_t nr, int nc);
    /* Expand one row of k elements to f32 (get_rows, fallbacks). */
    void (*dequantize_row)(const void *w, float *y, int64_t k);
    /* Optional (NULL: no integer GEMM, qgemm.h). One row of k elements as element
     * e = d[e / s8_group] * v[e] + m[e / 32] exactly, v int8; m only when s8_min
     * (the pointer is NULL otherwise). */
    void (*unpack_s8)(const void *w, int64_t k, int8_t *v, float *d, float *m);
    int s8_group;              /* 16 or 32 */
    bool s8_min;
    /* Optional (NULL: the integer GEMM's panels hold unpack_s8's int8 values). A 4-bit
     * type's row of k elements as q in 0..15 and f16 d (and, s8_min, m) per 32, element
     * e = d[e / 32] * (q[e] - u4_offset) (+ m[e / 32]) exactly: panels the size of
     * the blocks. */
    void (*unpack_u4)(const void *w, int64_t k, uint8_t *q, uint16_t *d, uint16_t *m);
    int u4_offset;
} cpu_qtype_t;

/* The entry for `type` in this variant, or NULL when it has none. */
const cpu_qtype_t *cpu_qtype_get(int type);

#endif
