/* What the conformance suite's files share: the description of one case (an op,
 * its operands' layouts and how to fill them), host/device tensor plumbing. */
#ifndef SLMOPS_CONFORM_INTERNAL_H
#define SLMOPS_CONFORM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>

#include "conform.h"

#define CONFORM_FOR4(ne, i)                           \
    for (i[3] = 0; i[3] < (ne)[3]; i[3]++)            \
        for (i[2] = 0; i[2] < (ne)[2]; i[2]++)        \
            for (i[1] = 0; i[1] < (ne)[1]; i[1]++)    \
                for (i[0] = 0; i[0] < (ne)[0]; i[0]++)

enum conform_fill {
    FILL_UNIFORM = 0,   /* uniform in [lo, hi] */
    FILL_IDS,           /* integers in [0, range) */
    FILL_PROB,          /* positive, each ne0-row summing to 1 */
    FILL_MASK,          /* uniform in [-2, 0], some -inf (never in column 0) */
    FILL_MASK_HOLE,     /* as FILL_MASK, but row 1 all -inf: a query that sees nothing */
    FILL_MASK_CAUSAL,   /* as FILL_MASK, and row r sees no cell past r + (cells - rows):
                         * a prompt's causal mask */
    FILL_MASK_GAP,      /* as FILL_MASK_CAUSAL, and no row sees cell 1 */
    FILL_VALUES         /* the case's values[] in order */
};

enum conform_layout {
    LAYOUT_CONTIG = 0,
    LAYOUT_PADDED,      /* rows padded, element 0 at a non-zero, unaligned offset */
    LAYOUT_PERMUTED,    /* dims 1 and 2 swapped in memory: unit innermost stride */
    LAYOUT_TRANSPOSED   /* dims 0 and 1 swapped in memory: nb[0] != element size */
};

typedef struct conform_tensor {
    int type;
    int64_t ne[4];
    int64_t nb[4];
    uint64_t offset;   /* bytes before element 0 in its buffer */
    uint64_t bytes;    /* size of the whole buffer */
    int fill;
    double lo, hi;
    int64_t range;
    int layout;
} conform_tensor_t;

typedef struct conform_case {
    int op;
    int n_src;
    conform_tensor_t src[SLM_MAX_SRC];
    conform_tensor_t dst;
    int dst_alias;     /* -1, or the src whose memory dst is (in-place ops) */
    unsigned outputs;  /* bit i: src i is written too (AdamW's moments) */
    int64_t ip[SLM_MAX_IPARAMS];
    float fp[SLM_MAX_FPARAMS];
    int64_t reduce;    /* length of the longest reduction, loosens the tolerance */
    double values[8];  /* for FILL_VALUES */
    uint64_t seed;
} conform_case_t;

/* Give t a type, shape and memory layout (computes nb, offset, bytes). */
void slm_conform__layout(conform_tensor_t *t, int type, int64_t ne0, int64_t ne1, int64_t ne2,
                         int64_t ne3, int layout);

/* The forward cases of op with src0 of `type`; writes at most max, returns how many exist. */
size_t slm_conform__cases(int op, int type, conform_case_t *out, size_t max);

/* Deterministic generator (splitmix64). */
uint64_t slm_conform__rand(uint64_t *state);
double slm_conform__uniform(uint64_t *state, double lo, double hi);

/* Host memory of a case: one buffer per src (and dst unless aliased), filled. */
typedef struct conform_host {
    void *buf[SLM_MAX_SRC + 1];   /* index SLM_MAX_SRC is dst */
    uint64_t bytes[SLM_MAX_SRC + 1];
} conform_host_t;

#define CONFORM_DST SLM_MAX_SRC

int slm_conform__host_new(const conform_case_t *c, conform_host_t *h);
int slm_conform__host_copy(const conform_case_t *c, const conform_host_t *from, conform_host_t *to);
void slm_conform__host_free(conform_host_t *h);
/* The node of c pointing at host memory (for the reference). */
void slm_conform__host_node(const conform_case_t *c, const conform_host_t *h, slm_node_t *node);
/* Which host buffer tensor slot k (0..n_src-1, CONFORM_DST) lives in. */
int slm_conform__slot_buffer(const conform_case_t *c, int k);

/* The same node on a device. */
typedef struct conform_dev {
    const slm_backend_iface_t *be;
    void *dev;
    void *buf[SLM_MAX_SRC + 1];
    void *base[SLM_MAX_SRC + 1];
    slm_node_t node;
} conform_dev_t;

int slm_conform__dev_new(const slm_backend_iface_t *be, void *dev, const conform_case_t *c,
                         const conform_host_t *h, conform_dev_t *d);
/* Upload every buffer, run the node, download every buffer into h. */
int slm_conform__dev_run(conform_dev_t *d, const conform_case_t *c, conform_host_t *h);
void slm_conform__dev_free(conform_dev_t *d);

/* Describe a case: its types ("f16,f32->f32") and operand layouts. */
void slm_conform__describe(const conform_case_t *c, slm_conform_result_t *res);
/* True when every operand has a unit innermost stride. */
bool slm_conform__unit_strides(const conform_case_t *c);

/* Block-type (quantized) operands. The device gets the quantized bytes; the
 * reference gets them dequantized, so only the backend's kernel is under test. */
typedef struct conform_quant {
    float *deq[SLM_MAX_SRC];   /* contiguous f32 rows of each block-type src, or NULL */
    double *unit;              /* per dst element (logical order): its error unit, or NULL */
} conform_quant_t;

bool slm_conform__is_block_type(int type);
/* 0 when reg can quantize `type`; SLM_E_UNSUPPORTED (err says why) when no usable
 * quantizer plugin provides it. */
int slm_conform__quant_probe(slm_registry_t *reg, int type, slm_error_t *err);
/* Quantize random rows into every block-type src of h (after slm_conform__host_new). */
int slm_conform__quant_fill(slm_registry_t *reg, const conform_case_t *c, conform_host_t *h,
                            conform_quant_t *q, slm_error_t *err);
/* Point the reference node's block-type srcs at their dequantized rows. */
void slm_conform__quant_node(const conform_case_t *c, const conform_quant_t *q, slm_node_t *node);
/* After the reference ran: each dst element's error unit, sum |w*x| for MUL_MAT and
 * MUL_MAT_T (a
 * backend may round activations) and one ulp of the result for GET_ROWS. */
int slm_conform__quant_units(const conform_case_t *c, const slm_node_t *ref, conform_quant_t *q);
void slm_conform__quant_free(conform_quant_t *q);

/* Finite-difference checks of backward op `op` (a *_BACK op, OUT_PROD, MUL_MAT,
 * MUL_MAT_T or REPEAT_BACK); appends results through add. Checks of a frozen weight
 * run once per type of w_types (block types quantized through reg). */
typedef int (*conform_add_fn)(void *user, const slm_conform_result_t *res);
int slm_conform__gradcheck(slm_registry_t *reg, const slm_backend_iface_t *be, void *dev,
                           int op, const int *w_types, size_t n_w_types, conform_add_fn add,
                           void *user);
/* Backward ops with a gradcheck, and the forward op each is checked against. */
bool slm_conform__has_gradcheck(int op, int *forward_op);

#endif
