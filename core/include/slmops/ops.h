/* Operation ids shared by the graph API and backend plugins. Append only:
 * a value, once released, keeps its meaning (plugins switch on these).
 *
 * Shapes use ne[0] as the innermost (contiguous) dimension, as GGML does.
 * Operand and parameter conventions per op (src = node->src[i], ip/fp =
 * node->ip/fp) are documented next to each id; docs/ops.md has the maths. */
#ifndef SLMOPS_OPS_H
#define SLMOPS_OPS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum slm_op {
    SLM_OP_NONE = 0,        /* leaf tensor or metadata-only op (view, reshape, permute, transpose) */
    /* src0 table [E,R,..] (f32|f16|bf16), src1 ids i32 [N,B]; dst f32 [E,N,B] */
    SLM_OP_GET_ROWS = 1,
    /* src0 grad f32 [E,N,B], src1 ids i32 [N,B]; dst f32 [E,R]: zero, then scatter-add */
    SLM_OP_GET_ROWS_BACK = 2,
    /* src0 A [K,M,b2,b3] (any weight type), src1 B [K,N,c2,c3] f32; dst f32 [M,N,c2,c3];
     * dst[m,n] = sum_k A[k,m]*B[k,n]; A is broadcast over batch (c2 % b2 == 0, c3 % b3 == 0) */
    SLM_OP_MUL_MAT = 3,
    /* src0 X [P,K,c2,c3] f32, src1 Y [Q,K,c2,c3] f32; dst f32 [P,Q,b2,b3];
     * dst[p,q] = sum_k X[p,k]*Y[q,k]; batches c map onto dst batch c/(c2/b2) and are summed */
    SLM_OP_OUT_PROD = 4,
    /* dst = src0 + src1; src1 broadcast onto src0 (src0.ne[i] % src1.ne[i] == 0) */
    SLM_OP_ADD = 5,
    /* dst = src0 * src1 elementwise, broadcast as ADD */
    SLM_OP_MUL = 6,
    /* dst = src0 * fp[0] */
    SLM_OP_SCALE = 7,
    /* dst = x / sqrt(mean(x^2 over ne0) + fp[0]) */
    SLM_OP_RMS_NORM = 8,
    /* src0 x, src1 dy; dst dx of RMS_NORM with eps fp[0] */
    SLM_OP_RMS_NORM_BACK = 9,
    /* src0 x f32 [D,H,T,B], src1 positions i32 [T]; ip[0] n_dims rotated (even, <= D),
     * ip[1] mode (SLM_ROPE_NORMAL | SLM_ROPE_NEOX); fp[0] freq_base, fp[1] freq_scale.
     * theta_i = pos * freq_scale * freq_base^(-2i/n_dims); dims past n_dims copied. */
    SLM_OP_ROPE = 10,
    /* same operands/params as ROPE applied to dy: rotates by -theta */
    SLM_OP_ROPE_BACK = 11,
    /* src0 x f32 [C,R,b2,b3], optional src1 additive mask f32 [C,R',m2,m3] (R' >= R;
     * row r of batch (i2,i3) reads mask row r of batch (i2 % m2, i3 % m3)) (n_src 1 or 2);
     * fp[0] scale; ip[0] causal (1: col c masked when c > ip[1] + r, ip[1] = n_past);
     * dst = softmax(x*scale + mask) along ne0 */
    SLM_OP_SOFT_MAX = 12,
    /* src0 y (softmax output), src1 dy; fp[0] scale; dst dx = scale*y*(dy - sum(y*dy)) */
    SLM_OP_SOFT_MAX_BACK = 13,
    /* dst = x * sigmoid(x) */
    SLM_OP_SILU = 14,
    /* src0 x, src1 dy; dst = dy * d silu(x)/dx */
    SLM_OP_SILU_BACK = 15,
    /* tanh approximation: 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))) */
    SLM_OP_GELU = 16,
    /* src0 x, src1 dy; dst = dy * d gelu(x)/dx */
    SLM_OP_GELU_BACK = 17,
    /* src0 gate a, src1 up b (same shape); dst = silu(a) * b */
    SLM_OP_SWIGLU = 18,
    /* copy src0 into dst (same element count, any layouts), converting f32/f16/bf16 */
    SLM_OP_CPY = 19,
    /* src0 logits f32 [V,N], src1 target probabilities f32 [V,N];
     * dst f32 [1] = -(1/N) sum_n sum_v t[v,n] * log_softmax(logits[:,n])[v] */
    SLM_OP_CROSS_ENTROPY = 20,
    /* src0 logits, src1 targets, src2 dloss f32 [1]; dst dlogits = (softmax - t)*dloss/N */
    SLM_OP_CROSS_ENTROPY_BACK = 21,
    /* dst f32 [1] = sum of every element of src0 */
    SLM_OP_SUM = 22,
    /* dst (smaller shape, dst.ne[i] divides src0.ne[i]) = src0 summed over the repeats */
    SLM_OP_REPEAT_BACK = 23,
    /* dst = copy of src0, then the view of dst given by ip[0..2] = nb1,nb2,nb3 (bytes)
     * and ip[3] = byte offset, with src1's shape, gets src1 added to it */
    SLM_OP_ACC = 24,
    /* in place AdamW: src0 param f32, src1 grad, src2 m, src3 v, src4 hyper f32 [7] =
     * {lr, beta1, beta2, eps, weight_decay, 1/(1-beta1^t), 1/(1-beta2^t)};
     * dst aliases src0 (param), m and v are updated in place.
     * Optional src5 f32 [1] = the sum of squares of every gradient (n_src 6); then
     * hyper has 8 values, hyper[7] = max_norm, and the gradient is scaled by
     * c = min(1, max_norm / (sqrt(src5) + 1e-6)) when max_norm > 0 (global-norm clipping) */
    SLM_OP_ADAMW_STEP = 25,
    /* in place SGD: src0 param f32, src1 grad, src2 hyper f32 [2] = {lr, weight_decay};
     * dst aliases src0: p = p * (1 - lr * weight_decay) - lr * g. Optional src3 as
     * ADAMW_STEP's src5 (n_src 4), with hyper[2] = max_norm */
    SLM_OP_SGD_STEP = 26,
    /* src0 A [K,M,b2,b3] (any weight type), src1 B [M,N,c2,c3] f32; dst f32 [K,N,c2,c3];
     * dst[k,n] = sum_m A[k,m]*B[m,n]: MUL_MAT with A transposed, read from A's rows as
     * stored (quantized blocks included), never from a transposed copy; A is broadcast
     * over batch as in MUL_MAT. The activation gradient of MUL_MAT (docs/decisions.md D28) */
    SLM_OP_MUL_MAT_T = 27,
    /* dst = log(max(x, FLT_MIN)): the natural logarithm, clamped so that a probability
     * that underflowed to 0 gives -87.3, not -inf (0 * log 0 stays 0, not NaN) */
    SLM_OP_LOG = 28,
    /* src0 x, src1 dy; dst = dy / x where x > FLT_MIN, else 0 (the clamp is flat) */
    SLM_OP_LOG_BACK = 29,
    /* Fused attention of decode and prefill over a KV cache (docs/decisions.md D53):
     * src0 q f32 [D,H,N], src1 K [D,C,Hk] and src2 V [D,C,Hk] (f32|f16; a row of D per
     * cell, cells ne1 apart), src3 additive mask f32 [C,N'] (N' >= N; 0 or -inf);
     * fp[0] scale; Hk divides H and query head h reads kv head h / (H / Hk);
     * dst f32 [D,H,N]: dst[:,h,n] = sum_c softmax_c(scale * q[:,h,n].K[:,c,h'] + mask[c,n])
     * * V[:,c,h']. Cells masked -inf for a query are never read for it (their K and V
     * may hold anything); a query with no visible cell gets zeros. No gradient. */
    SLM_OP_ATTN = 30,
    SLM_OP_COUNT
} slm_op_t;

enum { SLM_ROPE_NORMAL = 0, SLM_ROPE_NEOX = 2 };

/* Stable lower-case name ("mul_mat"), or NULL for an unknown id. */
const char *slm_op_name(int op);
/* SLM_OP_* for a name, or -1. */
int slm_op_from_name(const char *name);

#ifdef __cplusplus
}
#endif
#endif
