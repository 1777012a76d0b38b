/* The CPU backend's matrix-product kernel contract: the op layer (ops-*.c) packs
 * operands into this layout and calls cpu_mul_mat_2d from every pool thread. */
#ifndef SLMOPS_CPU_MATMUL_H
#define SLMOPS_CPU_MATMUL_H

#include <stddef.h>
#include <stdint.h>

/* dst[m,n] = sum_k A[k,m] * B[k,n] for one 2-D slice.
 * A: M rows of K elements of type a_type (f32, f16 or bf16), row m at
 *    (const char *)a + m * a_row_bytes, contiguous along k;
 *    a_trans: A stored transposed instead, K rows of M elements, row k at
 *    (const char *)a + k * a_row_bytes, contiguous along m (MUL_MAT_T's weight).
 * B: N columns of K f32, column n at (const char *)b + n * b_col_bytes, contiguous along k;
 *    b_trans: B stored transposed instead, K rows of N f32, row k at
 *    (const char *)b + k * b_col_bytes, contiguous along n (OUT_PROD's second operand;
 *    always computed by the packed GEMM, whatever the sizes).
 * C: f32, element (m,n) at (char *)c + n * c_col_bytes + m * sizeof(float);
 *    accumulate: C += the product instead of C = the product. */
typedef struct cpu_gemm_args {
    int a_type;
    const void *a;
    size_t a_row_bytes;
    const float *b;
    size_t b_col_bytes;
    float *c;
    size_t c_col_bytes;
    int64_t K, M, N;
    int a_trans;
    int b_trans;
    int accumulate;
} cpu_gemm_args_t;

/* Thread ith of nth computes its share of the slice (the kernel decides the split:
 * along M for matrix-vector, in tiles for matrix-matrix). All nth threads call it. */
void cpu_mul_mat_2d(const cpu_gemm_args_t *args, int ith, int nth);

/* Rows [lo[j], hi[j]) for j < count (1 or MV_STREAMS ranges) of a product with few
 * columns (N < 6, neither operand transposed; otherwise nothing is written); a
 * vector's (N == 1) ranges are read side by side: far-apart streams keep more of the
 * memory's bandwidth busy than one. Each row gets the value cpu_mul_mat_2d gives it,
 * whatever the ranges. */
#define MV_STREAMS 2
void cpu_mul_vec_rows(const cpu_gemm_args_t *args, const int64_t *lo, const int64_t *hi,
                      int count);

/* Name of the kernel family compiled into this variant ("avx512", "avx2", "scalar"). */
const char *cpu_mul_mat_isa(void);

#endif
