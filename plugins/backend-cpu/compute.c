/* Graph execution on the CPU: checks each node against the op table, sizes the
 * shared scratch, then runs the nodes on the pool with barriers only where needed. */
#include "config.h"

#include <stdlib.h>

#include "device.h"
#include "quant.h"
#include "repack.h"

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
    [SLM_OP_LOG] = &cpu_op_log,
    [SLM_OP_LOG_BACK] = &cpu_op_log_back,
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
    [SLM_OP_SGD_STEP] = &cpu_op_sgd_step,
    [SLM_OP_MUL_MAT_T] = &cpu_op_mul_mat_t,
    [SLM_OP_ATTN] = &cpu_op_attn,
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

/* Bytes from the tensor's first element to one past its last. A block type's
 * first dimension counts as one packed row of blocks. */
static bool extent(const slm_tensor_desc_t *t, uint64_t *out)
{
    uint64_t end = cpu_type_size(t->type);
    int first = 0;
    const cpu_qtype_t *q = cpu_qtype_get(t->type);
    if (q && q->block > 0 && t->ne[0] > 0) {
        end = (uint64_t)(t->ne[0] / q->block) * q->block_bytes;
        first = 1;
    }
    for (int i = first; i < SLM_MAX_DIMS; i++) {
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
static bool resolve(slm_tensor_desc_t *t, uintptr_t *lo, uintptr_t *hi)
{
    cpu_buffer_t *b = t->buffer;
    uint64_t bytes;
    if (!extent(t, &bytes))
        return false;
    if (!b && !t->data && bytes != 0)
        return false;
    if (b && (t->offset > b->size || bytes > b->size - t->offset))
        return false;
    if (b && !t->data)
        t->data = (char *)b->base + t->offset;
    if (b)   /* ops may write any operand (in-place copies, optimizer moments) */
        b->pristine = false;
    *lo = (uintptr_t)t->data;
    *hi = *lo + (uintptr_t)bytes;
    return true;
}

/* What the run loop needs besides the node: whether one thread runs it alone, whether
 * every thread must meet before it, and the byte ranges it reads and writes. */
typedef struct node_plan {
    bool serial;
    bool barrier;
    size_t scratch, scratch_off;   /* bytes it needs; where its slice starts */
    uintptr_t lo[SLM_MAX_SRC + 1], hi[SLM_MAX_SRC + 1];   /* [0]: dst */
    atomic_long claimed;           /* work units its threads have taken (cpu_claim) */
    atomic_ullong shares[CPU_SHARE_WORDS];   /* cpu_claim_streams' */
    const void *panels;            /* its weight repacked (repack.h), or NULL */
} node_plan_t;

static int prepare_node(cpu_device_t *d, const slm_node_t *src, slm_node_t *copy,
                        node_plan_t *np, size_t n_busy)
{
    if (!cpu_supports_node(d, src)) {
        cpu_log(SLM_LOG_WARN, "node with op %d: types, shapes or parameters not supported",
                src ? src->op : -1);
        return SLM_E_UNSUPPORTED;
    }
    memcpy(copy, src, sizeof *copy);
    copy->struct_size = sizeof *copy;
    memset(np, 0, sizeof *np);
    atomic_init(&np->claimed, 0);
    for (int t = 0; t < CPU_SHARES_MAX; t++)   /* the words cpu_claim_streams uses */
        for (int s = 0; s < CPU_STREAMS_MAX; s++)
            atomic_init(&np->shares[t * CPU_SHARE_STRIDE + s], 0);
    if (copy->op == SLM_OP_NONE)
        return SLM_OK;
    if (!resolve(&copy->dst, &np->lo[0], &np->hi[0]))
        return SLM_E_INVALID;
    for (int i = 0; i < copy->n_src; i++)
        if (!resolve(&copy->src[i], &np->lo[i + 1], &np->hi[i + 1]))
            return SLM_E_INVALID;
    if (d->repack && copy->op == SLM_OP_MUL_MAT)
        np->panels = cpu_repack_panels(d->repack, copy, d->busy, n_busy);
    const cpu_op_def_t *def = cpu_op_get(copy->op);
    if (def->scratch) {
        size_t s = def->scratch(copy, cpu_pool_size(d->pool));
        if (s == SIZE_MAX || s > SIZE_MAX / 4)
            return SLM_E_NOMEM;
        np->scratch = s;
    }
    return SLM_OK;
}

/* Rough work of a node in multiply-adds; below CPU_SERIAL_WORK one thread does it
 * faster than the pool can split it and meet again. */
#define CPU_SERIAL_WORK 65536

static uint64_t node_work(const slm_node_t *n)
{
    const slm_tensor_desc_t *d = &n->dst;
    uint64_t out = (uint64_t)cpu_nelements(d);
    switch (n->op) {
    case SLM_OP_MUL_MAT:
        return out * (uint64_t)n->src[0].ne[0];
    case SLM_OP_MUL_MAT_T:
        return out * (uint64_t)n->src[0].ne[1];
    case SLM_OP_OUT_PROD:
        return out * (uint64_t)n->src[0].ne[1];
    case SLM_OP_ATTN:   /* as if every cell were visible: a bound, not the work */
        return out * (uint64_t)n->src[1].ne[1] * 2;
    case SLM_OP_SOFT_MAX:
    case SLM_OP_ROPE:
    case SLM_OP_SILU:
    case SLM_OP_GELU:
    case SLM_OP_SWIGLU:
        return out * 8;
    case SLM_OP_CPY:
        /* A strided copy (the transposed V cache) walks element by element. */
        return cpu_rows_packed(&n->src[0]) && cpu_rows_packed(d) ? out : out * 8;
    default:
        return out * 2;
    }
}

/* Ops whose per-thread results are combined by thread 0 after an internal barrier
 * read every thread's scratch; they are never worth running alone anyway. */
static bool must_split(int op)
{
    return op == SLM_OP_SUM || op == SLM_OP_CROSS_ENTROPY || op == SLM_OP_ADAMW_STEP ||
           op == SLM_OP_SGD_STEP;
}

static bool overlap(uintptr_t alo, uintptr_t ahi, uintptr_t blo, uintptr_t bhi)
{
    return alo < bhi && blo < ahi;
}

/* Whether node b (later) must wait for node a (earlier, since the last barrier):
 * one writes what the other touches, and they may run on different threads. */
static bool conflicts(const slm_node_t *na, const node_plan_t *a, const slm_node_t *nb,
                      const node_plan_t *b)
{
    if (a->serial && b->serial)
        return false;   /* both on thread 0, in order; scratch slices never overlap */
    for (int i = 0; i <= nb->n_src; i++)
        if (overlap(a->lo[0], a->hi[0], b->lo[i], b->hi[i]))
            return true;
    for (int i = 1; i <= na->n_src; i++)
        if (overlap(b->lo[0], b->hi[0], a->lo[i], a->hi[i]))
            return true;
    return false;
}

/* Barriers only where a dependency crosses threads: independent nodes (the q, k, v
 * projections; gate and up) run back to back, and small ones stay on thread 0.
 * Nodes between two barriers get disjoint slices of the scratch (q, k and v each
 * quantize their input without waiting for each other); *scratch is the total.
 * Returns whether any node uses the other threads at all. */
static bool plan_barriers(cpu_device_t *d, size_t n_nodes, size_t *scratch)
{
    int nth = cpu_pool_size(d->pool);
    size_t group = 0;   /* first node since the last barrier */
    size_t used = 0;    /* scratch taken since the last barrier */
    bool parallel = false;
    *scratch = 0;
    for (size_t i = 0; i < n_nodes; i++) {
        const slm_node_t *n = &d->nodes[i];
        node_plan_t *p = &d->plans[i];
        p->barrier = false;
        if (n->op == SLM_OP_NONE)
            continue;
        p->serial = nth > 1 && !must_split(n->op) && node_work(n) < CPU_SERIAL_WORK;
        parallel = parallel || !p->serial;
        for (size_t j = group; j < i; j++) {
            if (d->nodes[j].op != SLM_OP_NONE && conflicts(&d->nodes[j], &d->plans[j], n, p)) {
                p->barrier = true;
                group = i;
                used = 0;
                break;
            }
        }
        p->scratch_off = used;
        used = cpu_align64(p->scratch) > SIZE_MAX / 2 - used ? SIZE_MAX / 2
                                                             : used + cpu_align64(p->scratch);
        if (used > *scratch)
            *scratch = used;   /* SIZE_MAX / 2: more than grow() can give */
    }
    return parallel;
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

/* Contention (docs/decisions.md D54). When a thread of the pool waited at the
 * barriers for more than this share of a graph's time, a partner was off its core
 * (a busy neighbour holds it): every barrier then waits for the OS to run it again,
 * and one thread alone, which the OS moves to the free core, goes faster. After two
 * such graphs in a row (one is noise: a page fault, an interrupt) the next
 * CPU_SOLO_GRAPHS graphs run on thread 0 alone; then the pool tries again, and one
 * contended graph sends it back. A stretch alone clearly slower (CPU_SOLO_MARGIN)
 * than the pooled graphs' recent mean (many threads that only looked idle) turns the
 * watch off for CPU_SOLO_BACKOFF graphs: a mean, since one pooled graph, which the
 * neighbour may have happened to leave alone, says too little (with D57's stealing
 * one contended graph in a few runs as fast as a lone one). Graphs shorter than
 * CPU_SOLO_MIN_NS say too little too. */
#define CPU_SOLO_WAIT_SHARE 0.35
#define CPU_SOLO_GRAPHS 32
#define CPU_SOLO_BACKOFF 1024
#define CPU_SOLO_MIN_NS 1000000
#define CPU_SOLO_MARGIN 1.1

static void watch_contention(cpu_device_t *d, int64_t graph_ns)
{
    int64_t waited = cpu_pool_take_wait(d->pool);
    /* The newest pooled graph weighs 1/8 in the mean. */
    if (graph_ns >= CPU_SOLO_MIN_NS)
        d->pooled_avg_ns = d->pooled_avg_ns
                               ? d->pooled_avg_ns + (graph_ns - d->pooled_avg_ns) / 8
                               : graph_ns;
    if (d->solo_backoff > 0) {
        d->solo_backoff--;
        return;
    }
    if (graph_ns < CPU_SOLO_MIN_NS)
        return;
    double share = (double)waited / (double)graph_ns;
    if (share < CPU_SOLO_WAIT_SHARE) {
        d->strikes = 0;
        return;
    }
    if (++d->strikes < 2)
        return;
    d->solo_left = CPU_SOLO_GRAPHS;
    d->strikes = 1;
    d->solo_ns = 0;
    cpu_log(SLM_LOG_DEBUG, "a pool thread waited %.0f%% of a graph: the next %d graphs run "
            "on one thread", 100.0 * share, CPU_SOLO_GRAPHS);
}

/* After a graph run alone in a contended stretch: was it worth it? (The pooled mean
 * stands still while the pool is alone.) */
static void judge_solo(cpu_device_t *d, int64_t graph_ns)
{
    d->solo_ns += graph_ns;
    if (d->solo_left > 0 ||
        (double)d->solo_ns <= CPU_SOLO_MARGIN * (double)d->pooled_avg_ns * CPU_SOLO_GRAPHS)
        return;
    d->solo_backoff = CPU_SOLO_BACKOFF;
    d->strikes = 0;
    cpu_log(SLM_LOG_DEBUG, "graphs on one thread were slower than on the pool: the pool "
            "stays whole for the next %d graphs", CPU_SOLO_BACKOFF);
}

typedef struct graph_job {
    cpu_device_t *dev;
    size_t n_nodes;
    bool alone;                /* every node is serial: thread 0 runs the graph alone */
    atomic_int status;
} graph_job_t;

/* Every thread walks the same nodes and meets at the same barriers; a failure is
 * recorded and reported, never a reason to leave early (the others would wait). */
static void run_graph(void *arg, int ith, int nth)
{
    graph_job_t *job = arg;
    cpu_device_t *d = job->dev;
    for (size_t i = 0; i < job->n_nodes; i++) {
        const slm_node_t *node = &d->nodes[i];
        node_plan_t *p = &d->plans[i];
        if (node->op == SLM_OP_NONE)
            continue;
        if (p->barrier && !job->alone)
            cpu_pool_barrier(d->pool);
        if (p->serial && ith != 0)
            continue;
        cpu_op_ctx_t c = {.node = node, .ith = p->serial ? 0 : ith, .nth = p->serial ? 1 : nth,
                          .pool = p->serial || nth == 1 ? NULL : d->pool,
                          .scratch = (char *)d->scratch + p->scratch_off, .status = &job->status,
                          .claimed = &p->claimed, .shares = p->shares, .panels = p->panels};
        cpu_op_get(node->op)->run(&c);
    }
}

static int reserve(cpu_device_t *d, size_t n_nodes)
{
    if (n_nodes <= d->nodes_cap)
        return SLM_OK;
    size_t nb = d->nodes_cap * sizeof(slm_node_t), pb = d->nodes_cap * sizeof(node_plan_t);
    void *np = d->nodes, *pp = d->plans;
    int rc = grow(&np, &nb, n_nodes * sizeof(slm_node_t), 64);
    d->nodes = np;
    if (rc == SLM_OK)
        rc = grow(&pp, &pb, n_nodes * sizeof(node_plan_t), 64);
    d->plans = pp;
    d->nodes_cap = rc == SLM_OK ? n_nodes : 0;
    return rc;
}

/* With repacked weights: the buffers this graph's nodes write (d->busy). Copies made
 * from them are dropped, and none is made while the graph runs (a weight a node
 * updates, as training does, is read as it is). */
static int note_writes(cpu_device_t *d, const slm_node_t *const *nodes, size_t n_nodes,
                       size_t *n_busy)
{
    const void *last = NULL;
    for (size_t i = 0; i < n_nodes; i++) {
        const void *b = nodes[i] && nodes[i]->op != SLM_OP_NONE ? nodes[i]->dst.buffer : NULL;
        if (!b || b == last)
            continue;
        last = b;
        bool seen = false;
        for (size_t j = 0; j < *n_busy && !seen; j++)
            seen = d->busy[j] == b;
        if (seen)
            continue;
        if (*n_busy == d->busy_cap) {
            size_t cap = d->busy_cap ? 2 * d->busy_cap : 16;
            const void **v = realloc(d->busy, cap * sizeof *v);
            if (!v)
                return SLM_E_NOMEM;
            d->busy = v;
            d->busy_cap = cap;
        }
        d->busy[(*n_busy)++] = b;
        cpu_repack_forget(d->repack, b);
    }
    return SLM_OK;
}

int cpu_graph_compute(void *dev, const slm_node_t *const *nodes, size_t n_nodes)
{
    cpu_device_t *d = dev;
    if (!d || (n_nodes && !nodes) || n_nodes > SIZE_MAX / sizeof(slm_node_t))
        return SLM_E_INVALID;
    if (n_nodes == 0)
        return SLM_OK;
    if (reserve(d, n_nodes) != SLM_OK)
        return SLM_E_NOMEM;
    size_t n_busy = 0;
    if (d->repack && note_writes(d, nodes, n_nodes, &n_busy) != SLM_OK)
        return SLM_E_NOMEM;
    for (size_t i = 0; i < n_nodes; i++) {
        int rc = prepare_node(d, nodes[i], &d->nodes[i], &d->plans[i], n_busy);
        if (rc != SLM_OK)
            return rc;
    }
    cpu_repack_report(d->repack);
    size_t scratch;
    bool parallel = plan_barriers(d, n_nodes, &scratch);
    if (grow(&d->scratch, &d->scratch_size, scratch, 64) != SLM_OK)
        return SLM_E_NOMEM;
    graph_job_t job = {.dev = d, .n_nodes = n_nodes, .alone = !parallel || d->solo_left > 0};
    atomic_init(&job.status, 0);
    /* A graph of small nodes (a tiny model's decode step) need not wake anyone; nor
     * does one run while the pool is contended. */
    if (job.alone && !parallel) {
        run_graph(&job, 0, 1);
    } else if (job.alone) {
        d->solo_left--;
        int64_t t0 = cpu_now_ns();
        run_graph(&job, 0, 1);
        judge_solo(d, cpu_now_ns() - t0);
    } else {
        cpu_pool_take_wait(d->pool);   /* the last run's late waits are not this one's */
        int64_t t0 = cpu_now_ns();
        cpu_pool_run(d->pool, run_graph, &job);
        watch_contention(d, cpu_now_ns() - t0);
    }
    return atomic_load(&job.status);
}
