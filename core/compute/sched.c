/* The scheduler: places graph nodes over its devices (the ones asked for, in order,
 * then the CPU fallback), plans memory (persistent leaves, one reusable arena per
 * device, mirrors), runs segments (recorded once where the backend can replay). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/sched.h>

#include "internal/device.h"
#include "internal/graph.h"
#include "internal/registry.h"
#include "internal/util.h"

#define MAX_DEVS SLM_SCHED_MAX_DEVICES
#define DEV_PRIMARY 0
#define ALIGN 64u
#define GEN_NEVER UINT64_MAX

typedef struct region {
    void *buffer;
    void *base;
    uint64_t size;
} region_t;

/* A copy of a storage root on a device other than its home. */
typedef struct mirror {
    slm_tensor_t *root;
    int dev;
    uint64_t offset;            /* inside that device's persistent region */
    /* A leaf no node writes (a weight): copied again only when its data changed
     * (slm_tensor_set_data, slm_buffer_set), not before every compute. */
    bool resident;
    uint64_t gen_copied;        /* the data generation the mirror holds; GEN_NEVER */
} mirror_t;

/* Host-staged transfer: home -> mirror before a segment, mirror -> home after. */
typedef struct xfer {
    size_t mirror;
    bool to_home;
} xfer_t;

typedef struct segment {
    int dev;
    size_t first, n;            /* nodes [first, first + n) of the plan */
    xfer_t *xfers;              /* copy-ins, then write-backs */
    size_t n_in, n_out;
    void *recorded;             /* graph_record's handle, replayed while the nodes hold */
    bool no_record;             /* the backend declined to record this segment */
} segment_t;

/* Per-root planning state, indexed by tensor index. */
typedef struct root_plan {
    bool is_root;
    bool persistent;
    bool bound;                 /* lives in a slm_buffer_t: never allocated nor cleared */
    int home;                   /* device slot, -1 until known */
    size_t producer;            /* plan node position producing it, or SIZE_MAX for leaves */
    size_t last_use;            /* last plan node position reading or writing it */
    uint64_t size;
    uint64_t offset;            /* in the home's persistent region or arena */
} root_plan_t;

struct slm__plan {
    slm_sched_t *sched;
    slm_graph_t *graph;
    struct slm__plan *next;
    size_t n_tensors;           /* graph size when planned */
    size_t n_nodes;
    slm_tensor_t **node_t;
    int *node_dev;
    slm_node_t *nodes;
    const slm_node_t **node_ptrs;
    segment_t *segs;
    size_t n_segs;
    mirror_t *mirrors;
    size_t n_mirrors;
    root_plan_t *roots;
    region_t persist[MAX_DEVS];
    region_t arena[MAX_DEVS];
    void *staging;
    uint64_t staging_size;
    /* Built on the first slm__sched_move_view: plan positions of the nodes reading
     * or being each tensor, users[user_at[i] .. user_at[i + 1]) for tensor index i. */
    size_t *user_at, *users;
    /* Roots some node writes in place (indexed by tensor index), and the bound
     * buffers among them: their generation moves after every compute, since a
     * mirror elsewhere (of this plan or another) no longer holds their data. */
    bool *written;
    struct slm_buffer **written_bound;
    size_t n_written_bound;
};

struct slm_sched {
    slm_registry_t *reg;
    slm_device_t *dev[MAX_DEVS];   /* the devices asked for, in order, then the CPU fallback */
    int n_dev;
    slm_device_options_t dopts;
    struct slm__plan *plans;
    size_t n_fallback;
    uint64_t compute_bytes;
    /* (op, types, device) placements off the first device already reported: each
     * fallback is logged once per scheduler, not once per graph or allocation. */
    uint64_t reported[64];
    size_t n_reported;
};

static uint64_t align_up(uint64_t x)
{
    return (x + ALIGN - 1) / ALIGN * ALIGN;
}

static int open_devices(slm_sched_t *s, const char *spec, slm_error_t *err);
static void forget_recording(slm_sched_t *s, struct slm__plan *p, size_t k);

slm_sched_t *slm_sched_new(slm_registry_t *reg, const slm_sched_options_t *opts, slm_error_t *err)
{
    if (!reg) {
        slm__fail(err, SLM_E_INVALID, NULL, -1, "scheduler: registry is NULL");
        return NULL;
    }
    slm_sched_options_t o = {.struct_size = sizeof o};
    if (opts) {
        size_t n = opts->struct_size < sizeof o ? opts->struct_size : sizeof o;
        memcpy(&o, opts, n);
    }
    slm_sched_t *s = calloc(1, sizeof *s);
    if (!s) {
        slm__fail(err, SLM_E_NOMEM, NULL, -1, "scheduler: out of memory");
        return NULL;
    }
    s->reg = reg;
    s->dopts = (slm_device_options_t){.struct_size = sizeof s->dopts, .n_threads = o.n_threads,
                                        .flags = (uint32_t)o.device_flags};
    if (open_devices(s, o.device, err) != SLM_OK) {
        slm_sched_free(s);
        return NULL;
    }
    slm_log(SLM_LOG_DEBUG, "sched", "primary device %s (%s)", s->dev[DEV_PRIMARY]->info.id,
            s->dev[DEV_PRIMARY]->info.plugin);
    return s;
}

/* spec is one device spec or several separated by commas, first preferred. */
static int open_devices(slm_sched_t *s, const char *spec, slm_error_t *err)
{
    if (!spec || !strchr(spec, ',')) {
        s->dev[0] = slm_device_open(s->reg, spec, &s->dopts, err);
        s->n_dev = s->dev[0] ? 1 : 0;
        return s->dev[0] ? SLM_OK : (err ? err->code : SLM_E_DEVICE);
    }
    char *copy = strdup(spec);
    if (!copy)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "scheduler: out of memory");
    int rc = SLM_OK;
    char *save = NULL;
    for (char *one = strtok_r(copy, ",", &save); one && rc == SLM_OK;
         one = strtok_r(NULL, ",", &save)) {
        if (s->n_dev == MAX_DEVS - 1) {
            rc = slm__fail(err, SLM_E_INVALID, NULL, -1, "device list \"%s\" names more than %d "
                           "devices", spec, MAX_DEVS - 1);
            break;
        }
        slm_device_t *d = slm_device_open(s->reg, one, &s->dopts, err);
        if (!d)
            rc = err ? err->code : SLM_E_DEVICE;
        else
            s->dev[s->n_dev++] = d;
    }
    free(copy);
    if (rc == SLM_OK && s->n_dev == 0)
        rc = slm__fail(err, SLM_E_INVALID, NULL, -1, "device list \"%s\" names no device", spec);
    return rc;
}

void slm_sched_free(slm_sched_t *s)
{
    if (!s)
        return;
    while (s->plans)
        slm__plan_release(s->plans);
    for (int i = MAX_DEVS - 1; i >= 0; i--)
        slm_device_close(s->dev[i]);
    free(s);
}

slm_device_t *slm__sched_primary(slm_sched_t *s)
{
    return s->dev[DEV_PRIMARY];
}

const slm_device_info_t *slm_sched_device(const slm_sched_t *s)
{
    return s ? slm_device_get_info(s->dev[DEV_PRIMARY]) : NULL;
}

int slm_sched_n_devices(const slm_sched_t *s)
{
    return s ? s->n_dev : 0;
}

const slm_device_info_t *slm_sched_device_at(const slm_sched_t *s, int i)
{
    return s && i >= 0 && i < s->n_dev ? slm_device_get_info(s->dev[i]) : NULL;
}

size_t slm_sched_n_fallback(const slm_sched_t *s)
{
    return s ? s->n_fallback : 0;
}

uint64_t slm_sched_compute_bytes(const slm_sched_t *s)
{
    return s ? s->compute_bytes : 0;
}

/* ---- releasing a plan ---- */

static void region_free(slm_device_t *dev, region_t *r)
{
    if (dev && r->buffer)
        dev->iface->buffer_free(dev->ctx, r->buffer);
    *r = (region_t){0};
}

void slm__plan_release(struct slm__plan *plan)
{
    if (!plan)
        return;
    slm_sched_t *s = plan->sched;
    for (struct slm__plan **pp = &s->plans; *pp; pp = &(*pp)->next) {
        if (*pp == plan) {
            *pp = plan->next;
            break;
        }
    }
    for (int d = 0; d < MAX_DEVS; d++) {
        region_free(s->dev[d], &plan->persist[d]);
        region_free(s->dev[d], &plan->arena[d]);
    }
    for (size_t i = 0; i < plan->n_segs; i++) {
        segment_t *sg = &plan->segs[i];
        if (sg->recorded)
            s->dev[sg->dev]->iface->graph_release(s->dev[sg->dev]->ctx, sg->recorded);
    }
    if (plan->graph) {
        slm_graph_t *g = plan->graph;
        for (size_t i = 0; i < plan->n_tensors && i < g->n_tensors; i++) {
            slm_tensor_t *t = g->tensors[i];
            t->dev = -1;
            t->buffer = t->data = NULL;
            t->offset = 0;
        }
        g->plan = NULL;
    }
    for (size_t i = 0; i < plan->n_segs; i++)
        free(plan->segs[i].xfers);
    free(plan->segs);
    free(plan->mirrors);
    free(plan->roots);
    free(plan->node_t);
    free(plan->node_dev);
    free(plan->nodes);
    free(plan->node_ptrs);
    free(plan->staging);
    free(plan->user_at);
    free(plan->users);
    free(plan->written);
    free(plan->written_bound);
    free(plan);
}

/* ---- placement ---- */

static bool is_node(const slm_tensor_t *t)
{
    return t->op != SLM_OP_NONE;
}

static void node_describe(const slm_tensor_t *t, slm_node_t *n)
{
    memset(n, 0, sizeof *n);
    n->struct_size = sizeof *n;
    n->op = t->op;
    n->n_src = t->n_src_node;
    slm__tensor_desc(t, &n->dst);
    for (int i = 0; i < t->n_src_node; i++)
        slm__tensor_desc(t->src[i], &n->src[i]);
    memcpy(n->ip, t->ip, sizeof n->ip);
    memcpy(n->fp, t->fp, sizeof n->fp);
}

static void node_types(const slm_node_t *n, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < n->n_src && len < size; i++) {
        int w = snprintf(out + len, size - len, "%s%s", i ? " x " : "", slm_type_name(n->src[i].type));
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

static bool device_supports(slm_device_t *dev, const slm_node_t *n)
{
    return dev && dev->iface->supports_node && dev->iface->supports_node(dev->ctx, n);
}

bool slm__sched_primary_supports(slm_sched_t *s, const slm_tensor_t *t)
{
    if (!s || !t || s->n_dev == 0)
        return false;
    slm_node_t n;
    node_describe(t, &n);
    return device_supports(s->dev[DEV_PRIMARY], &n);
}

/* Log each (op, types, device) fallback once per scheduler. */
static void log_fallback(slm_sched_t *s, const slm_node_t *n, int dev)
{
    uint64_t key = (uint64_t)n->op * 31u + (uint64_t)dev;
    for (int i = 0; i < n->n_src; i++)
        key = key * 4099u + (uint64_t)n->src[i].type + 1u;
    for (size_t i = 0; i < s->n_reported; i++)
        if (s->reported[i] == key)
            return;
    if (s->n_reported < SLM__ARRAY_LEN(s->reported))
        s->reported[s->n_reported++] = key;
    char types[128];
    node_types(n, types, sizeof types);
    slm_log(SLM_LOG_INFO, "sched", "%s (%s) is not supported by %s; running it on %s",
            slm_op_name(n->op), types, s->dev[DEV_PRIMARY]->info.id, s->dev[dev]->info.id);
}

static bool has_cpu(const slm_sched_t *s)
{
    for (int d = 0; d < s->n_dev; d++)
        if (s->dev[d]->props.type == SLM_DEVICE_CPU)
            return true;
    return false;
}

/* The first open device that runs the node, opening the CPU fallback when none
 * does and it is not open yet; -1 when nothing can. */
static int place_node(slm_sched_t *s, const slm_node_t *n, slm_error_t *err)
{
    for (int d = 0; d < s->n_dev; d++)
        if (device_supports(s->dev[d], n))
            return d;
    if (has_cpu(s) || s->n_dev == MAX_DEVS)
        return -1;
    slm_device_t *cpu = slm__device_open_cpu_fallback(s->reg, &s->dopts, err);
    if (!cpu)
        return -2;
    s->dev[s->n_dev++] = cpu;
    return device_supports(cpu, n) ? s->n_dev - 1 : -1;
}

static int assign_devices(slm_sched_t *s, struct slm__plan *p, slm_error_t *err)
{
    s->n_fallback = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        slm_node_t n;
        node_describe(p->node_t[i], &n);
        if (device_supports(s->dev[DEV_PRIMARY], &n)) {
            p->node_dev[i] = DEV_PRIMARY;
            continue;
        }
        char types[128];
        node_types(&n, types, sizeof types);
        int d = place_node(s, &n, err);
        if (d == -2)
            return slm__fail(err, SLM_E_UNSUPPORTED, NULL, -1, "%s (%s) is not supported "
                             "by %s and no CPU fallback device could be opened",
                             slm_op_name(n.op), types, s->dev[DEV_PRIMARY]->info.id);
        if (d < 0)
            return slm__fail(err, SLM_E_UNSUPPORTED, NULL, -1, "%s (%s) of '%s' is not "
                             "supported by any open device", slm_op_name(n.op), types,
                             p->node_t[i]->name);
        p->node_dev[i] = d;
        s->n_fallback++;
        log_fallback(s, &n, d);
    }
    return SLM_OK;
}

/* ---- memory plan ---- */

static root_plan_t *rp_of(struct slm__plan *p, slm_tensor_t *t)
{
    return &p->roots[slm__tensor_root(t)->index];
}

/* Roots a node writes in place (besides a fresh output of its own); out has room
 * for SLM_MAX_SRC + 1. */
static int written_roots(const slm_tensor_t *t, slm_tensor_t **out)
{
    int n = 0;
    if (t->view_src)
        out[n++] = t->view_src;
    unsigned w = slm__op_written_srcs(t->op);
    for (int i = 0; i < t->n_src; i++)
        if (w & (1u << i))
            out[n++] = slm__tensor_root(t->src[i]);
    return n;
}

static void mark_persistent(struct slm__plan *p, slm_tensor_t *t)
{
    if (t)
        rp_of(p, t)->persistent = true;
}

static void liveness(struct slm__plan *p)
{
    slm_graph_t *g = p->graph;
    for (size_t i = 0; i < g->n_tensors; i++) {
        slm_tensor_t *t = g->tensors[i];
        root_plan_t *r = &p->roots[i];
        r->is_root = t->view_src == NULL;
        r->home = -1;
        r->producer = SIZE_MAX;
        r->last_use = SIZE_MAX;
        r->size = align_up(slm_tensor_nbytes(t));
        /* Leaves (caller data, constants, optimizer state) and what the caller reads stay. */
        r->persistent = !is_node(t) || (t->flags & (SLM_TENSOR_OUTPUT | SLM_TENSOR_INPUT |
                                                    SLM_TENSOR_PARAM));
        r->bound = r->is_root && t->bound != NULL;
    }
    for (size_t k = 0; k < p->n_nodes; k++) {
        slm_tensor_t *t = p->node_t[k];
        if (!t->view_src)
            p->roots[t->index].producer = k;
        for (int i = 0; i < t->n_src; i++)
            rp_of(p, t->src[i])->last_use = k;
        slm_tensor_t *w[SLM_MAX_SRC + 1];
        int nw = written_roots(t, w);
        for (int i = 0; i < nw; i++)
            rp_of(p, w[i])->last_use = k;
        if (!t->view_src && rp_of(p, t)->last_use == SIZE_MAX)
            rp_of(p, t)->last_use = k;
    }
    mark_persistent(p, g->loss);
    for (size_t i = 0; i < g->n_tensors; i++) {
        slm_tensor_t *t = g->tensors[i];
        if ((t->flags & SLM_TENSOR_PARAM) && t->grad)
            mark_persistent(p, t->grad);
        if (t->flags & SLM_TENSOR_OUTPUT)
            mark_persistent(p, t);
    }
    /* A result nobody consumes is there to be read: its storage must survive. One
     * read through a view (a reshape, a permute) consumes the storage it views. */
    bool *consumed = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *consumed);
    for (size_t k = 0; consumed && k < p->n_nodes; k++)
        for (int j = 0; j < p->node_t[k]->n_src; j++)
            consumed[slm__tensor_root(p->node_t[k]->src[j])->index] = true;
    for (size_t k = 0; k < p->n_nodes; k++)
        if (!consumed || !consumed[p->node_t[k]->index])
            mark_persistent(p, p->node_t[k]);
    free(consumed);
}

static void assign_homes(struct slm__plan *p)
{
    for (size_t k = 0; k < p->n_nodes; k++) {
        slm_tensor_t *t = p->node_t[k];
        if (!t->view_src)
            p->roots[t->index].home = p->node_dev[k];
    }
    /* Leaves live on the primary device unless only fallback nodes touch them. */
    for (size_t k = 0; k < p->n_nodes; k++) {
        slm_tensor_t *t = p->node_t[k];
        for (int i = 0; i < t->n_src; i++) {
            root_plan_t *r = rp_of(p, t->src[i]);
            if (r->producer != SIZE_MAX)
                continue;
            if (r->home == -1 || p->node_dev[k] == DEV_PRIMARY)
                r->home = p->node_dev[k];
        }
    }
    /* Bound storage is on the primary device whoever reads it; others get mirrors. */
    for (size_t i = 0; i < p->graph->n_tensors; i++)
        if (p->roots[i].is_root && (p->roots[i].home == -1 || p->roots[i].bound))
            p->roots[i].home = DEV_PRIMARY;
}

/* Greedy first-fit over the execution order; blocks are kept sorted by offset. */
typedef struct block {
    uint64_t offset, size;
    size_t root;
} block_t;

static int arena_plan(struct slm__plan *p, int dev, uint64_t *arena_size, uint64_t *naive)
{
    size_t n = p->graph->n_tensors;
    block_t *live = malloc((n ? n : 1) * sizeof *live);
    if (!live)
        return SLM_E_NOMEM;
    size_t n_live = 0;
    *arena_size = 0;
    *naive = 0;
    for (size_t k = 0; k < p->n_nodes; k++) {
        slm_tensor_t *t = p->node_t[k];
        root_plan_t *r = &p->roots[t->index];
        if (p->node_dev[k] == dev && !t->view_src && !r->persistent) {
            uint64_t at = 0;
            size_t pos = 0;
            for (; pos < n_live; pos++) {
                if (live[pos].offset - at >= r->size)
                    break;
                at = live[pos].offset + live[pos].size;
            }
            memmove(&live[pos + 1], &live[pos], (n_live - pos) * sizeof *live);
            live[pos] = (block_t){.offset = at, .size = r->size, .root = t->index};
            n_live++;
            r->offset = at;
            *naive += r->size;
            if (at + r->size > *arena_size)
                *arena_size = at + r->size;
        }
        for (size_t j = 0; j < n_live;) {
            if (p->roots[live[j].root].last_use <= k) {
                memmove(&live[j], &live[j + 1], (n_live - j - 1) * sizeof *live);
                n_live--;
            } else {
                j++;
            }
        }
    }
    free(live);
    return SLM_OK;
}

static int add_mirror(struct slm__plan *p, slm_tensor_t *root, int dev, size_t *out)
{
    for (size_t i = 0; i < p->n_mirrors; i++) {
        if (p->mirrors[i].root == root && p->mirrors[i].dev == dev) {
            *out = i;
            return SLM_OK;
        }
    }
    mirror_t *m = realloc(p->mirrors, (p->n_mirrors + 1) * sizeof *m);
    if (!m)
        return SLM_E_NOMEM;
    p->mirrors = m;
    const root_plan_t *r = &p->roots[root->index];
    m[p->n_mirrors] = (mirror_t){.root = root, .dev = dev, .gen_copied = GEN_NEVER,
                                 .resident = r->producer == SIZE_MAX && !p->written[root->index]};
    *out = p->n_mirrors++;
    return SLM_OK;
}

static int seg_add_xfer(segment_t *sg, size_t mirror, bool to_home)
{
    size_t n = sg->n_in + sg->n_out;
    for (size_t i = 0; i < n; i++)
        if (sg->xfers[i].mirror == mirror && sg->xfers[i].to_home == to_home)
            return SLM_OK;
    xfer_t *x = realloc(sg->xfers, (n + 1) * sizeof *x);
    if (!x)
        return SLM_E_NOMEM;
    sg->xfers = x;
    x[n] = (xfer_t){.mirror = mirror, .to_home = to_home};
    if (to_home) {
        sg->n_out++;
    } else {
        /* Copy-ins stay before write-backs. */
        memmove(&x[sg->n_in + 1], &x[sg->n_in], sg->n_out * sizeof *x);
        x[sg->n_in] = (xfer_t){.mirror = mirror, .to_home = false};
        sg->n_in++;
    }
    return SLM_OK;
}

static int mark_written(struct slm__plan *p)
{
    p->written = calloc(p->graph->n_tensors ? p->graph->n_tensors : 1, sizeof *p->written);
    if (!p->written)
        return SLM_E_NOMEM;
    for (size_t k = 0; k < p->n_nodes; k++) {
        slm_tensor_t *w[SLM_MAX_SRC + 1];
        int nw = written_roots(p->node_t[k], w);
        for (int i = 0; i < nw; i++) {
            if (p->written[w[i]->index])
                continue;
            p->written[w[i]->index] = true;
            if (!w[i]->bound)
                continue;
            struct slm_buffer **v = realloc(p->written_bound,
                                            (p->n_written_bound + 1) * sizeof *v);
            if (!v)
                return SLM_E_NOMEM;
            p->written_bound = v;
            v[p->n_written_bound++] = w[i]->bound;
        }
    }
    return SLM_OK;
}

static int build_segments(struct slm__plan *p)
{
    if (mark_written(p))
        return SLM_E_NOMEM;
    p->segs = calloc(p->n_nodes ? p->n_nodes : 1, sizeof *p->segs);
    if (!p->segs)
        return SLM_E_NOMEM;
    for (size_t k = 0; k < p->n_nodes; k++) {
        int dev = p->node_dev[k];
        if (p->n_segs == 0 || p->segs[p->n_segs - 1].dev != dev)
            p->segs[p->n_segs++] = (segment_t){.dev = dev, .first = k};
        segment_t *sg = &p->segs[p->n_segs - 1];
        sg->n++;
        slm_tensor_t *t = p->node_t[k];
        for (int i = 0; i < t->n_src; i++) {
            slm_tensor_t *root = slm__tensor_root(t->src[i]);
            if (p->roots[root->index].home == dev)
                continue;
            size_t m;
            if (add_mirror(p, root, dev, &m) || seg_add_xfer(sg, m, false))
                return SLM_E_NOMEM;
        }
        slm_tensor_t *w[SLM_MAX_SRC + 1];
        int nw = written_roots(t, w);
        for (int i = 0; i < nw; i++) {
            if (p->roots[w[i]->index].home == dev)
                continue;
            size_t m;
            if (add_mirror(p, w[i], dev, &m) || seg_add_xfer(sg, m, false) ||
                seg_add_xfer(sg, m, true))
                return SLM_E_NOMEM;
        }
    }
    return SLM_OK;
}

static int region_alloc(slm_device_t *dev, region_t *r, uint64_t size, uint32_t flags,
                        slm_error_t *err)
{
    if (size == 0)
        return SLM_OK;
    int rc = slm__device_alloc(dev, size, flags, &r->buffer, &r->base);
    if (rc < 0 || !r->buffer)
        return slm__fail(err, SLM_E_DEVICE, NULL, -1, "%s: allocating %llu bytes failed",
                         dev->info.id, (unsigned long long)size);
    r->size = size;
    return SLM_OK;
}

/* The region holding a root at its home; r->offset is relative to it. */
static region_t home_region(struct slm__plan *p, slm_tensor_t *root)
{
    root_plan_t *r = &p->roots[root->index];
    if (r->bound) {
        r->offset = root->bound_offset;
        return (region_t){root->bound->buffer, root->bound->base, root->bound->size};
    }
    return r->persistent ? p->persist[r->home] : p->arena[r->home];
}

static void place(region_t *r, uint64_t offset, void **buffer, uint64_t *off, void **data)
{
    *buffer = r->buffer;
    *off = offset;
    *data = r->base ? (char *)r->base + offset : NULL;
}

/* Where tensor t is seen from device dev (its home, or a mirror there). */
static void desc_on(struct slm__plan *p, const slm_tensor_t *t, int dev, slm_tensor_desc_t *d)
{
    slm_tensor_t *root = slm__tensor_root((slm_tensor_t *)t);
    root_plan_t *r = &p->roots[root->index];
    slm__tensor_desc(t, d);
    if (r->home == dev)
        return;
    for (size_t i = 0; i < p->n_mirrors; i++) {
        if (p->mirrors[i].root == root && p->mirrors[i].dev == dev) {
            place(&p->persist[dev], p->mirrors[i].offset + t->view_offs, &d->buffer, &d->offset,
                  &d->data);
            return;
        }
    }
}

static int allocate(slm_sched_t *s, struct slm__plan *p, slm_error_t *err)
{
    slm_graph_t *g = p->graph;
    uint64_t persist_size[MAX_DEVS] = {0};
    uint64_t naive_total = 0;
    s->compute_bytes = 0;
    for (int d = 0; d < MAX_DEVS; d++) {
        if (!s->dev[d])
            continue;
        uint64_t size, naive;
        if (arena_plan(p, d, &size, &naive))
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "scheduler: out of memory");
        s->compute_bytes += size;
        naive_total += naive;
        int rc = region_alloc(s->dev[d], &p->arena[d], size, 0, err);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < g->n_tensors; i++) {
        root_plan_t *r = &p->roots[i];
        if (!r->is_root || !r->persistent || r->bound)
            continue;
        r->offset = persist_size[r->home];
        persist_size[r->home] += r->size;
    }
    for (size_t i = 0; i < p->n_mirrors; i++) {
        mirror_t *m = &p->mirrors[i];
        m->offset = persist_size[m->dev];
        persist_size[m->dev] += p->roots[m->root->index].size;
        if (p->roots[m->root->index].size > p->staging_size)
            p->staging_size = p->roots[m->root->index].size;
    }
    for (int d = 0; d < MAX_DEVS; d++) {
        if (!s->dev[d])
            continue;
        int rc = region_alloc(s->dev[d], &p->persist[d], persist_size[d], SLM_BUFFER_RESIDENT,
                              err);
        if (rc)
            return rc;
    }
    if (p->staging_size && !(p->staging = malloc(p->staging_size)))
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "scheduler: out of memory");
    for (size_t i = 0; i < g->n_tensors; i++) {
        slm_tensor_t *t = g->tensors[i];
        slm_tensor_t *root = slm__tensor_root(t);
        root_plan_t *r = &p->roots[root->index];
        region_t reg = home_region(p, root);
        t->dev = r->home;
        place(&reg, r->offset + t->view_offs, &t->buffer, &t->offset, &t->data);
    }
    uint64_t persist_other = 0;
    for (int d = 1; d < MAX_DEVS; d++)
        persist_other += persist_size[d];
    slm_log(SLM_LOG_DEBUG, "sched", "plan: %zu nodes in %zu segments on %d device(s), "
            "intermediates %llu bytes (%llu without reuse), persistent %llu + %llu bytes",
            p->n_nodes, p->n_segs, s->n_dev, (unsigned long long)s->compute_bytes,
            (unsigned long long)naive_total, (unsigned long long)persist_size[0],
            (unsigned long long)persist_other);
    return SLM_OK;
}

static void build_nodes(struct slm__plan *p)
{
    for (size_t k = 0; k < p->n_nodes; k++) {
        slm_tensor_t *t = p->node_t[k];
        slm_node_t *n = &p->nodes[k];
        int dev = p->node_dev[k];
        node_describe(t, n);
        desc_on(p, t, dev, &n->dst);
        for (int i = 0; i < t->n_src_node; i++)
            desc_on(p, t->src[i], dev, &n->src[i]);
        p->node_ptrs[k] = n;
    }
}

static bool index_users(struct slm__plan *p)
{
    size_t n = p->n_tensors, total = 0;
    p->user_at = calloc(n + 1, sizeof *p->user_at);
    if (!p->user_at)
        return false;
    for (size_t k = 0; k < p->n_nodes; k++) {
        slm_tensor_t *t = p->node_t[k];
        p->user_at[t->index + 1]++;
        for (int i = 0; i < t->n_src_node; i++)
            p->user_at[t->src[i]->index + 1]++;
    }
    for (size_t i = 0; i < n; i++)
        p->user_at[i + 1] += p->user_at[i];
    total = p->user_at[n];
    size_t *fill = calloc(n + 1, sizeof *fill);
    p->users = malloc((total ? total : 1) * sizeof *p->users);
    if (!fill || !p->users) {
        free(fill);
        free(p->user_at);
        free(p->users);
        p->user_at = p->users = NULL;
        return false;
    }
    for (size_t k = 0; k < p->n_nodes; k++) {
        slm_tensor_t *t = p->node_t[k];
        size_t i = t->index;
        p->users[p->user_at[i] + fill[i]++] = k;
        for (int j = 0; j < t->n_src_node; j++) {
            i = t->src[j]->index;
            p->users[p->user_at[i] + fill[i]++] = k;
        }
    }
    free(fill);
    return true;
}

int slm__sched_move_view(slm_tensor_t *t, size_t offs)
{
    if (!t || !t->view_src || !t->graph || !t->graph->plan)
        return SLM_E_INVALID;
    struct slm__plan *p = t->graph->plan;
    slm_tensor_t *root = t->view_src;
    size_t span = slm__tensor_span(t), avail = slm__tensor_span(root);
    if (offs > avail || span > avail - offs || t->index >= p->n_tensors)
        return SLM_E_INVALID;
    if (!p->user_at && !index_users(p))
        return SLM_E_NOMEM;
    t->view_offs = offs;
    t->offset = root->offset + offs;
    t->data = root->data ? (char *)root->data + offs : NULL;
    for (size_t u = p->user_at[t->index]; u < p->user_at[t->index + 1]; u++) {
        size_t k = p->users[u];
        slm_tensor_t *n = p->node_t[k];
        slm_node_t *d = &p->nodes[k];
        desc_on(p, n, p->node_dev[k], &d->dst);
        for (int i = 0; i < n->n_src_node; i++)
            desc_on(p, n->src[i], p->node_dev[k], &d->src[i]);
        forget_recording(p->sched, p, k);
    }
    return SLM_OK;
}

static int fill_role(slm_sched_t *s, slm_tensor_t *t, float value)
{
    slm_device_t *dev = s->dev[t->dev];
    size_t n = (size_t)slm_tensor_nelements(t);
    if (value == 0.0f)
        return dev->iface->buffer_clear(dev->ctx, t->buffer, t->offset, n * sizeof(float), 0);
    float *tmp = malloc(n * sizeof *tmp);
    if (!tmp)
        return SLM_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        tmp[i] = value;
    int rc = dev->iface->buffer_set(dev->ctx, t->buffer, t->offset, tmp, n * sizeof *tmp);
    free(tmp);
    return rc;
}

static int init_constants(slm_sched_t *s, slm_graph_t *g, slm_error_t *err)
{
    for (size_t i = 0; i < g->n_tensors; i++) {
        slm_tensor_t *t = g->tensors[i];
        int rc = SLM_OK;
        if (t->role == SLM__ROLE_ONES)
            rc = fill_role(s, t, 1.0f);
        else if (t->role == SLM__ROLE_ZEROS)
            rc = fill_role(s, t, 0.0f);
        if (rc < 0)
            return slm__fail(err, SLM_E_DEVICE, NULL, -1, "%s: initialising '%s' failed",
                             s->dev[t->dev]->info.id, t->name);
    }
    return SLM_OK;
}

/* Caller data of leaves survives a re-allocation (the graph grew). */
typedef struct saved {
    size_t index;
    void *data;
} saved_t;

static saved_t *save_leaves(slm_graph_t *g, size_t *n_saved)
{
    *n_saved = 0;
    if (!g->plan)
        return NULL;
    saved_t *sv = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *sv);
    if (!sv)
        return NULL;
    for (size_t i = 0; i < g->n_tensors; i++) {
        slm_tensor_t *t = g->tensors[i];
        if (is_node(t) || t->view_src || t->role != SLM__ROLE_NONE || t->dev < 0 || t->bound)
            continue;
        void *buf = malloc(slm_tensor_nbytes(t) ? slm_tensor_nbytes(t) : 1);
        if (!buf || slm_tensor_get_data(t, buf, 0, slm_tensor_nbytes(t)) < 0) {
            free(buf);
            continue;
        }
        sv[(*n_saved)++] = (saved_t){.index = i, .data = buf};
    }
    return sv;
}

static void restore_leaves(slm_graph_t *g, saved_t *sv, size_t n, bool apply)
{
    for (size_t i = 0; i < n; i++) {
        slm_tensor_t *t = g->tensors[sv[i].index];
        if (apply)
            slm_tensor_set_data(t, sv[i].data, 0, slm_tensor_nbytes(t));
        free(sv[i].data);
    }
    free(sv);
}

static struct slm__plan *plan_new(slm_sched_t *s, slm_graph_t *g)
{
    struct slm__plan *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->sched = s;
    p->graph = g;
    p->n_tensors = g->n_tensors;
    size_t n = g->n_tensors ? g->n_tensors : 1;
    p->roots = calloc(n, sizeof *p->roots);
    p->node_t = calloc(n, sizeof *p->node_t);
    p->node_dev = calloc(n, sizeof *p->node_dev);
    p->nodes = calloc(n, sizeof *p->nodes);
    p->node_ptrs = calloc(n, sizeof *p->node_ptrs);
    p->next = s->plans;
    s->plans = p;
    if (!p->roots || !p->node_t || !p->node_dev || !p->nodes || !p->node_ptrs) {
        slm__plan_release(p);
        return NULL;
    }
    for (size_t i = 0; i < g->n_tensors; i++)
        if (is_node(g->tensors[i]))
            p->node_t[p->n_nodes++] = g->tensors[i];
    return p;
}

int slm_sched_alloc(slm_sched_t *s, slm_graph_t *g, slm_error_t *err)
{
    if (!s || !g)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "sched_alloc: NULL argument");
    if (g->status != SLM_OK)
        return slm_graph_status(g, err);
    for (size_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i]->bound && g->tensors[i]->bound->sched != s)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "sched_alloc: '%s' is bound to a "
                             "buffer of another scheduler", g->tensors[i]->name);
    size_t n_saved = 0;
    saved_t *saved = save_leaves(g, &n_saved);
    if (g->plan)
        slm__plan_release(g->plan);
    struct slm__plan *p = plan_new(s, g);
    if (!p) {
        restore_leaves(g, saved, n_saved, false);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "sched_alloc: out of memory");
    }
    int rc = assign_devices(s, p, err);
    if (rc == SLM_OK) {
        liveness(p);
        assign_homes(p);
        rc = build_segments(p);
        if (rc)
            slm__fail(err, rc, NULL, -1, "sched_alloc: out of memory");
    }
    if (rc == SLM_OK)
        rc = allocate(s, p, err);
    if (rc == SLM_OK) {
        g->plan = p;
        build_nodes(p);
        rc = init_constants(s, g, err);
    }
    if (rc != SLM_OK) {
        p->graph = g;
        slm__plan_release(p);
        restore_leaves(g, saved, n_saved, false);
        return rc;
    }
    restore_leaves(g, saved, n_saved, true);
    return SLM_OK;
}

/* ---- data access and running ---- */

static slm_device_t *tensor_device(const slm_tensor_t *t)
{
    if (!t || !t->graph || !t->graph->plan || t->dev < 0)
        return NULL;
    return t->graph->plan->sched->dev[t->dev];
}

static int check_range(const slm_tensor_t *t, size_t offset, size_t size)
{
    if (!slm_tensor_is_contiguous(t))
        return SLM_E_INVALID;
    size_t nbytes = slm_tensor_nbytes(t);
    if (offset > nbytes || size > nbytes - offset)
        return SLM_E_INVALID;
    return SLM_OK;
}

int slm_tensor_set_data(slm_tensor_t *t, const void *data, size_t offset, size_t size)
{
    slm_device_t *dev = tensor_device(t);
    if (!dev)
        return SLM_E_STATE;
    if ((!data && size) || check_range(t, offset, size))
        return SLM_E_INVALID;
    if (size == 0)
        return SLM_OK;
    slm_tensor_t *root = slm__tensor_root(t);
    if (root->bound)
        root->bound->data_gen++;
    else
        root->data_gen++;
    int rc = dev->iface->buffer_set(dev->ctx, t->buffer, t->offset + offset, data, size);
    return rc < 0 ? SLM_E_DEVICE : SLM_OK;
}

int slm_tensor_get_data(const slm_tensor_t *t, void *data, size_t offset, size_t size)
{
    slm_device_t *dev = tensor_device(t);
    if (!dev)
        return SLM_E_STATE;
    if ((!data && size) || check_range(t, offset, size))
        return SLM_E_INVALID;
    if (size == 0)
        return SLM_OK;
    if (dev->iface->synchronize)
        dev->iface->synchronize(dev->ctx);
    int rc = dev->iface->buffer_get(dev->ctx, t->buffer, t->offset + offset, data, size);
    return rc < 0 ? SLM_E_DEVICE : SLM_OK;
}

static uint64_t data_gen(const slm_tensor_t *root)
{
    return root->bound ? root->bound->data_gen : root->data_gen;
}

/* Buffer to buffer: directly when both devices belong to one backend that copies,
 * else staged through host memory. */
static int copy_bytes(struct slm__plan *p, slm_device_t *from, void *from_buf, uint64_t from_off,
                      slm_device_t *to, void *to_buf, uint64_t to_off, uint64_t size,
                      bool *direct)
{
    *direct = from->backend == to->backend && to->iface->buffer_copy;
    if (*direct) {
        int rc = to->iface->buffer_copy(to->ctx, to_buf, to_off, from->ctx, from_buf, from_off,
                                        size);
        if (rc != SLM_E_UNSUPPORTED)
            return rc;
        *direct = false;
    }
    if (from->iface->synchronize)
        from->iface->synchronize(from->ctx);
    if (from->iface->buffer_get(from->ctx, from_buf, from_off, p->staging, size) < 0)
        return SLM_E_DEVICE;
    return to->iface->buffer_set(to->ctx, to_buf, to_off, p->staging, size);
}

static int transfer(slm_sched_t *s, struct slm__plan *p, const xfer_t *x, slm_error_t *err)
{
    mirror_t *m = &p->mirrors[x->mirror];
    const root_plan_t *r = &p->roots[m->root->index];
    if (!x->to_home && m->resident && m->gen_copied == data_gen(m->root))
        return SLM_OK;
    slm_device_t *home = s->dev[r->home], *other = s->dev[m->dev];
    region_t home_reg = home_region(p, m->root);
    region_t *mir_reg = &p->persist[m->dev];
    slm_device_t *from = x->to_home ? other : home, *to = x->to_home ? home : other;
    void *from_buf = x->to_home ? mir_reg->buffer : home_reg.buffer;
    void *to_buf = x->to_home ? home_reg.buffer : mir_reg->buffer;
    uint64_t from_off = x->to_home ? m->offset : r->offset;
    uint64_t to_off = x->to_home ? r->offset : m->offset;
    uint64_t size = slm_tensor_nbytes(m->root);
    bool direct;
    if (copy_bytes(p, from, from_buf, from_off, to, to_buf, to_off, size, &direct) < 0)
        return slm__fail(err, SLM_E_DEVICE, NULL, -1, "copying '%s' from %s to %s failed",
                         m->root->name, from->info.id, to->info.id);
    slm_log(SLM_LOG_DEBUG, "sched", "copied '%s' (%llu bytes) from %s to %s (%s)", m->root->name,
            (unsigned long long)size, from->info.id, to->info.id, direct ? "direct" : "staged");
    if (!x->to_home)
        m->gen_copied = data_gen(m->root);
    return SLM_OK;
}

/* The nodes of segment sg whose tensor index lies in [first, end): sg's positions
 * [*a, *b) (empty when *a == *b). Creation order is execution order, so they are
 * one run of consecutive nodes. */
static void seg_window(const struct slm__plan *p, const segment_t *sg, size_t first, size_t end,
                       size_t *a, size_t *b)
{
    *a = sg->first;
    *b = sg->first + sg->n;
    while (*a < *b && p->node_t[*a]->index < first)
        (*a)++;
    while (*b > *a && p->node_t[*b - 1]->index >= end)
        (*b)--;
}

/* Nodes [a, b) of segment sg: a whole segment is recorded once and replayed where
 * the backend can; a part of one (compute_range) runs as it is. */
static int run_segment(slm_device_t *dev, struct slm__plan *p, segment_t *sg, size_t a, size_t b)
{
    const slm_backend_iface_t *f = dev->iface;
    bool whole = a == sg->first && b == sg->first + sg->n;
    if (!whole || !f->graph_record || sg->no_record)
        return f->graph_compute(dev->ctx, p->node_ptrs + a, b - a);
    if (!sg->recorded) {
        int rc = f->graph_record(dev->ctx, p->node_ptrs + a, b - a, &sg->recorded);
        if (rc < 0 || !sg->recorded) {
            sg->recorded = NULL;
            sg->no_record = true;
            return f->graph_compute(dev->ctx, p->node_ptrs + a, b - a);
        }
    }
    return f->graph_replay(dev->ctx, sg->recorded);
}

/* The recording of the segment holding plan node k, whose description changed. */
static void forget_recording(slm_sched_t *s, struct slm__plan *p, size_t k)
{
    for (size_t i = 0; i < p->n_segs; i++) {
        segment_t *sg = &p->segs[i];
        if (k < sg->first || k >= sg->first + sg->n)
            continue;
        if (sg->recorded)
            s->dev[sg->dev]->iface->graph_release(s->dev[sg->dev]->ctx, sg->recorded);
        sg->recorded = NULL;
        return;
    }
}

int slm__sched_compute_range(slm_sched_t *s, slm_graph_t *g, size_t first, size_t end,
                             slm_error_t *err)
{
    if (!s || !g)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "sched_compute: NULL argument");
    struct slm__plan *p = g->plan;
    if (!p || p->sched != s)
        return slm__fail(err, SLM_E_STATE, NULL, -1, "sched_compute: call slm_sched_alloc "
                         "with this scheduler first");
    if (p->n_tensors != g->n_tensors)
        return slm__fail(err, SLM_E_STATE, NULL, -1, "sched_compute: the graph grew since "
                         "slm_sched_alloc; allocate it again");
    const float one = 1.0f;
    if (g->seed && slm_tensor_set_data(g->seed, &one, 0, sizeof one) < 0)
        return slm__fail(err, SLM_E_DEVICE, NULL, -1, "sched_compute: setting the loss seed "
                         "failed");
    for (size_t i = 0; i < p->n_segs; i++) {
        segment_t *sg = &p->segs[i];
        slm_device_t *dev = s->dev[sg->dev];
        size_t a, b;
        seg_window(p, sg, first, end, &a, &b);
        if (a == b)
            continue;
        int rc;
        for (size_t j = 0; j < sg->n_in; j++) {
            rc = transfer(s, p, &sg->xfers[j], err);
            if (rc)
                return rc;
        }
        rc = run_segment(dev, p, sg, a, b);
        if (rc < 0)
            return slm__fail(err, SLM_E_DEVICE, NULL, -1, "%s: graph_compute failed (%d) in "
                             "the segment starting at '%s' (%s)", dev->info.id, rc,
                             p->node_t[a]->name, slm_op_name(p->node_t[a]->op));
        for (size_t j = sg->n_in; j < sg->n_in + sg->n_out; j++) {
            rc = transfer(s, p, &sg->xfers[j], err);
            if (rc)
                return rc;
        }
    }
    /* Bound storage written in place (a KV cache, trained weights) holds new data:
     * mirrors of it, in any plan, must copy again. */
    for (size_t i = 0; i < p->n_written_bound; i++)
        p->written_bound[i]->data_gen++;
    if (s->dev[DEV_PRIMARY]->iface->synchronize)
        s->dev[DEV_PRIMARY]->iface->synchronize(s->dev[DEV_PRIMARY]->ctx);
    return SLM_OK;
}

int slm_sched_compute(slm_sched_t *s, slm_graph_t *g, slm_error_t *err)
{
    return slm__sched_compute_range(s, g, 0, SIZE_MAX, err);
}
