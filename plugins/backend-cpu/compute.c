/* Graph execution on the CPU: checks each node against the op table, sizes the
 * shared scratch, then runs all nodes on the pool with a barrier after each. */
#include "config.h"

#include <stdlib.h>

#include "device.h"

static const cpu_op_def_t *const op_table[SLM_OP_COUNT] = {
    [SLM_OP_GET_ROWS] = &cpu_op_get_rows,
    [SLM_OP_GET_ROWS_BACK] = &cpu_op_get_rows_back,
    [SLM_OP_MUL_MAT] = &cpu_op_mul_mat,
    [SLM_OP_OUT_PROD] = &cpu_op_out_prod,
    [SLM_OP_ADD] = &cpu_op_add,
    [SLM_OP_MUL] = &cpu_op_mul,
    [SLM_OP_SCALE] = &cpu_op_scale,
    [SLM_OP_RMS_NORM] = &cpu_op_rms_norm,
    [SLM_OP_RMS_NORM_BACK] = &cpu_op_rms_norm_back,
    [SLM_OP_ROPE] = &cpu_op_rope,
    [SLM_OP_ROPE_BACK] = &cpu_op_rope_back,
    [SLM_OP_SOFT_MAX] = &cpu_op_soft_max,
    [SLM_OP_SOFT_MAX_BACK] = &cpu_op_soft_max_back,
    [SLM_OP_SILU] = &cpu_op_silu,
    [SLM_OP_SILU_BACK] = &cpu_op_silu_back,
    [SLM_OP_GELU] = &cpu_op_gelu,
    [SLM_OP_GELU_BACK] = &cpu_op_gelu_back,
    [SLM_OP_SWIGLU] = &cpu_op_swiglu,
    [SLM_OP_CPY] = &cpu_op_cpy,
    [SLM_OP_CROSS_ENTROPY] = &cpu_op_cross_entropy,
    [SLM_OP_CROSS_ENTROPY_BACK] = &cpu_op_cross_entropy_back,
    [SLM_OP_SUM] = &cpu_op_sum,
    [SLM_OP_REPEAT_BACK] = &cpu_op_repeat_back,
    [SLM_OP_ACC] = &cpu_op_acc,
    [SLM_OP_ADAMW_STEP] = &cpu_op_adamw_step,
};

const cpu_op_def_t *cpu_op_get(int op)
{
    if (op <= SLM_OP_NONE || op >= SLM_OP_COUNT)
        return NULL;
    return op_table[op];
}

bool cpu_supports_node(void *dev, const slm_node_t *node)
{
    if (!node || node->struct_size < sizeof *node)
        return false;
    if (node->n_src < 0 || node->n_src > SLM_MAX_SRC)
        return false;
    if (node->op == SLM_OP_NONE)
        return true;
    const cpu_op_def_t *def = cpu_op_get(node->op);
    return def && def->check(node);
}

/* Bytes from the tensor's first element to one past its last. */
static bool extent(const slm_tensor_desc_t *t, uint64_t *out)
{
    uint64_t end = cpu_type_size(t->type);
    for (int i = 0; i < SLM_MAX_DIMS; i++) {
        if (t->ne[i] == 0) {
            *out = 0;
            return true;
        }
        uint64_t step;
        if (__builtin_mul_overflow((uint64_t)(t->ne[i] - 1), (uint64_t)t->nb[i], &step) ||
            __builtin_add_overflow(end, step, &end))
            return false;
    }
    *out = end;
    return true;
}

/* Point data at the buffer when the host left it NULL, and check the tensor fits. */
static bool resolve(slm_tensor_desc_t *t)
{
    const cpu_buffer_t *b = t->buffer;
    uint64_t bytes;
    if (!extent(t, &bytes))
        return false;
    if (!b)
        return t->data != NULL || bytes == 0;
    if (t->offset > b->size || bytes > b->size - t->offset)
        return false;
    if (!t->data)
        t->data = (char *)b->base + t->offset;
    return true;
}

static int prepare_node(cpu_device_t *d, const slm_node_t *src, slm_node_t *copy, size_t *scratch)
{
    if (!cpu_supports_node(d, src)) {
        cpu_log(SLM_LOG_WARN, "node with op %d: types, shapes or parameters not supported",
                src ? src->op : -1);
        return SLM_E_UNSUPPORTED;
    }
    memcpy(copy, src, sizeof *copy);
    copy->struct_size = sizeof *copy;
    if (copy->op == SLM_OP_NONE)
        return SLM_OK;
    if (!resolve(&copy->dst))
        return SLM_E_INVALID;
    for (int i = 0; i < copy->n_src; i++)
        if (!resolve(&copy->src[i]))
            return SLM_E_INVALID;
    const cpu_op_def_t *def = cpu_op_get(copy->op);
    if (def->scratch) {
        size_t s = def->scratch(copy, cpu_pool_size(d->pool));
        if (s == SIZE_MAX)
            return SLM_E_NOMEM;
        if (s > *scratch)
            *scratch = s;
    }
    return SLM_OK;
}

static int grow(void **p, size_t *cap, size_t need, size_t align)
{
    if (need <= *cap)
        return SLM_OK;
    void *q = NULL;
    if (posix_memalign(&q, align, need) != 0)
        return SLM_E_NOMEM;
    free(*p);
    *p = q;
    *cap = need;
    return SLM_OK;
}

typedef struct graph_job {
    cpu_device_t *dev;
    size_t n_nodes;
    atomic_int status;
} graph_job_t;

static void run_graph(void *arg, int ith, int nth)
{
    graph_job_t *job = arg;
    cpu_device_t *d = job->dev;
    for (size_t i = 0; i < job->n_nodes; i++) {
        const slm_node_t *node = &d->nodes[i];
        if (node->op == SLM_OP_NONE)
            continue;
        cpu_op_ctx_t c = {.node = node, .ith = ith, .nth = nth, .pool = d->pool,
                          .scratch = d->scratch, .status = &job->status};
        cpu_op_get(node->op)->run(&c);
        cpu_pool_barrier(d->pool);
        /* Every thread reads the same value after the barrier, so all stop together. */
        if (atomic_load(&job->status) != 0)
            return;
    }
}

int cpu_graph_compute(void *dev, const slm_node_t *const *nodes, size_t n_nodes)
{
    cpu_device_t *d = dev;
    if (!d || (n_nodes && !nodes) || n_nodes > SIZE_MAX / sizeof(slm_node_t))
        return SLM_E_INVALID;
    if (n_nodes == 0)
        return SLM_OK;
    size_t cap_bytes = d->nodes_cap * sizeof(slm_node_t);
    void *np = d->nodes;
    if (grow(&np, &cap_bytes, n_nodes * sizeof(slm_node_t), 64) != SLM_OK)
        return SLM_E_NOMEM;
    d->nodes = np;
    d->nodes_cap = cap_bytes / sizeof(slm_node_t);
    size_t scratch = 0;
    for (size_t i = 0; i < n_nodes; i++) {
        int rc = prepare_node(d, nodes[i], &d->nodes[i], &scratch);
        if (rc != SLM_OK)
            return rc;
    }
    if (grow(&d->scratch, &d->scratch_size, scratch, 64) != SLM_OK)
        return SLM_E_NOMEM;
    graph_job_t job = {.dev = d, .n_nodes = n_nodes};
    atomic_init(&job.status, 0);
    cpu_pool_run(d->pool, run_graph, &job);
    return atomic_load(&job.status);
}
