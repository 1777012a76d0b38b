/* Internal layout of graphs and tensors, shared by the builders, autodiff and the
 * scheduler (core/compute/). Applications see only the opaque handles of graph.h. */
#ifndef SLMOPS_INTERNAL_GRAPH_H
#define SLMOPS_INTERNAL_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/graph.h>
#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>
#include <slmops/sched.h>

struct slm__plan;

/* Tensors the core itself creates and fills; callers never set their data. */
enum slm__role {
    SLM__ROLE_NONE = 0,
    SLM__ROLE_ONES,     /* constant 1.0 (the loss seed, broadcast helpers): set by the scheduler */
    SLM__ROLE_ZEROS     /* constant 0.0: cleared by the scheduler */
};

/* What kind of metadata op made a view (autodiff inverts each differently). */
enum slm__view_kind {
    SLM__VIEW_NONE = 0,
    SLM__VIEW_GENERAL,  /* slm_view: gradient scattered back with ACC */
    SLM__VIEW_RESHAPE,  /* inverse: reshape */
    SLM__VIEW_PERMUTE,  /* ip[0..3] = axes; inverse: the inverse permutation + cont */
    SLM__VIEW_INPLACE   /* an op writing into its operand's storage (CPY, the updates) */
};

struct slm_tensor {
    slm_graph_t *graph;
    size_t index;                   /* creation order, which is a topological order */
    slm_type_t type;
    int64_t ne[SLM_MAX_DIMS];
    int64_t nb[SLM_MAX_DIMS];
    slm_op_t op;
    int n_src;                      /* graph-level operands (dependencies) */
    int n_src_node;                 /* operands the backend sees (CPY hides its dst) */
    slm_tensor_t *src[SLM_MAX_SRC];
    int64_t ip[SLM_MAX_IPARAMS];
    float fp[SLM_MAX_FPARAMS];
    unsigned flags;                 /* SLM_TENSOR_* */
    int role;                       /* enum slm__role */
    /* Storage: a tensor with view_src shares that tensor's bytes (view_src is
     * always a storage owner itself); metadata views have op NONE, in-place
     * ops (CPY into a view, ADAMW_STEP, SGD_STEP) have their op. */
    slm_tensor_t *view_src;
    size_t view_offs;
    int view_kind;                  /* enum slm__view_kind */
    slm_tensor_t *grad;
    bool needs_grad;
    char name[64];
    /* Persistent storage set by slm_tensor_bind (leaves only): the plan places
     * the tensor there instead of in graph-owned memory. */
    struct slm_buffer *bound;
    uint64_t bound_offset;
    /* Placement, written by the scheduler's plan. */
    int dev;                        /* home device slot of the storage, -1 if none */
    uint64_t data_gen;              /* bumped by every slm_tensor_set_data on this root */
    void *buffer;
    uint64_t offset;
    void *data;
};

struct slm_graph {
    slm_tensor_t **tensors;
    size_t n_tensors;
    size_t max_tensors;
    int status;
    slm_error_t err;
    slm_tensor_t *loss;             /* set by slm_graph_backward */
    slm_tensor_t *seed;             /* d loss / d loss: a ONES leaf */
    struct slm__plan *plan;         /* owned by the scheduler that allocated the graph */
};

/* The storage owner of t. */
static inline slm_tensor_t *slm__tensor_root(slm_tensor_t *t)
{
    return t->view_src ? t->view_src : t;
}

/* Record the first build error (later ones are dropped); returns NULL for `return`. */
slm_tensor_t *slm__graph_fail(slm_graph_t *g, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A new contiguous tensor with no storage yet (op NONE); NULL after recording an error. */
slm_tensor_t *slm__tensor_alloc(slm_graph_t *g, slm_type_t type, const int64_t ne[SLM_MAX_DIMS]);
/* A new tensor describing a view of a's storage with the given shape and strides. */
slm_tensor_t *slm__tensor_view(slm_graph_t *g, slm_tensor_t *a, const int64_t ne[SLM_MAX_DIMS],
                               const int64_t nb[SLM_MAX_DIMS], size_t offset);
/* A constant leaf of the given shape filled by the scheduler (ONES or ZEROS). */
slm_tensor_t *slm__tensor_const(slm_graph_t *g, int role, const int64_t ne[SLM_MAX_DIMS]);
/* OUT_PROD whose batch dims are reduced to (b2, b3). */
slm_tensor_t *slm__out_prod_ex(slm_graph_t *g, slm_tensor_t *x, slm_tensor_t *y, int64_t b2,
                               int64_t b3);
/* ACC: a copy of a with b added into the view (nb1, nb2, nb3, offset) of it. */
slm_tensor_t *slm__acc(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *b, int64_t nb1, int64_t nb2,
                       int64_t nb3, int64_t offset);
/* Operands an op writes in place besides the storage its result views (bit i: src i). */
unsigned slm__op_written_srcs(int op);
/* Storage bytes a tensor spans (last element's end), 0 if empty. */
size_t slm__tensor_span(const slm_tensor_t *t);
/* Fill a backend description of t (placement fields left as they are in t). */
void slm__tensor_desc(const slm_tensor_t *t, slm_tensor_desc_t *d);

/* Persistent device memory outliving graphs (slm_buffer_t of sched.h). */
struct slm_buffer {
    slm_sched_t *sched;
    struct slm_device *dev;         /* the scheduler's primary device */
    void *buffer;                   /* the backend's handle */
    void *base;                     /* its address when host visible, else NULL */
    uint64_t size;
    bool zero_copy;                 /* wraps caller memory (buffer_from_host) */
    uint64_t data_gen;              /* bumped by every slm_buffer_set */
};

/* The primary device of a scheduler. */
struct slm_device *slm__sched_primary(slm_sched_t *s);

/* Whether the primary device runs node t as built (its op, types and layouts): how a
 * caller picks between a fused op and the composite it stands for. */
bool slm__sched_primary_supports(slm_sched_t *s, const slm_tensor_t *t);

/* Point an allocated view (or an in-place op writing into one) at another offset of
 * its storage, keeping the plan: how a reused decode graph writes the next KV cells.
 * SLM_E_INVALID when it would leave its storage or t is no view of an allocated graph. */
int slm__sched_move_view(slm_tensor_t *t, size_t offs);

/* Run only the nodes whose creation index lies in [first, end) (slm_sched_compute
 * runs them all): how an optimizer runs forward and backward without its updates,
 * or its updates alone, on one plan. */
int slm__sched_compute_range(slm_sched_t *s, slm_graph_t *g, size_t first, size_t end,
                             slm_error_t *err);

/* Detach a graph from its scheduler plan (the plan is freed). */
void slm__plan_release(struct slm__plan *plan);

#endif
