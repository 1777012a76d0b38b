/* The device's repacked weights (repack.h): a table from a weight (its buffer,
 * offset and layout) to its panels, kept until the buffer is written or freed. */
#include "config.h"

#include <stdlib.h>

#include "qgemm.h"
#include "repack.h"

typedef struct repacked {
    const void *buffer;        /* the backend buffer holding the weight */
    uint64_t offset;
    int32_t type;
    int64_t K, M, row_bytes;
    void *panels;
    size_t bytes;
} repacked_t;

struct cpu_repack {
    repacked_t *v;
    size_t n, cap;
    int32_t *slot;             /* open addressing over v: index or -1; n_slots a power of 2 */
    size_t n_slots;
    size_t total;              /* bytes of panels held */
    size_t fresh;              /* weights packed since the last cpu_repack_report */
    bool out_of_memory;        /* an allocation failed: pack no more */
};

cpu_repack_t *cpu_repack_new(void)
{
    return calloc(1, sizeof(cpu_repack_t));
}

void cpu_repack_free(cpu_repack_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].panels);
    free(r->v);
    free(r->slot);
    free(r);
}

const cpu_qtype_t *cpu_repack_takes(const slm_node_t *n)
{
    if (n->op != SLM_OP_MUL_MAT || n->n_src != 2)
        return NULL;
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    const cpu_qtype_t *q = cpu_qtype_get(a->type);
    if (!q || !cpu_qgemm_ok(q) || !a->buffer || a->ne[0] <= 0 || a->ne[1] <= 0 ||
        a->ne[0] % 32 || a->ne[0] % q->block || a->ne[0] % q->s8_group ||
        a->nb[0] != (int64_t)q->block_bytes || a->ne[2] != 1 || a->ne[3] != 1)
        return NULL;
    if (b->type != SLM_TYPE_F32 || b->ne[1] < 2 || b->ne[2] != 1 || b->ne[3] != 1 ||
        !cpu_rows_packed(b) || !cpu_rows_packed(d) || b->nb[1] % (int64_t)sizeof(float) ||
        d->nb[1] % (int64_t)sizeof(float))
        return NULL;
    return q;
}

static size_t hash(const void *buffer, uint64_t offset)
{
    uint64_t h = (uint64_t)(uintptr_t)buffer * 0x9e3779b97f4a7c15ull ^
                 offset * 0xc2b2ae3d27d4eb4full;
    return (size_t)(h ^ h >> 29);
}

static bool same(const repacked_t *e, const slm_tensor_desc_t *a)
{
    return e->buffer == a->buffer && e->offset == a->offset && e->type == a->type &&
           e->K == a->ne[0] && e->M == a->ne[1] && e->row_bytes == a->nb[1];
}

static void reindex(cpu_repack_t *r)
{
    for (size_t s = 0; s < r->n_slots; s++)
        r->slot[s] = -1;
    for (size_t i = 0; i < r->n; i++) {
        size_t s = hash(r->v[i].buffer, r->v[i].offset) & (r->n_slots - 1);
        while (r->slot[s] >= 0)
            s = (s + 1) & (r->n_slots - 1);
        r->slot[s] = (int32_t)i;
    }
}

/* Room for one more entry, the index kept at most half full. */
static bool reserve(cpu_repack_t *r)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        repacked_t *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return false;
        r->v = v;
        r->cap = cap;
    }
    if (2 * (r->n + 1) > r->n_slots) {
        size_t n_slots = r->n_slots ? 2 * r->n_slots : 256;
        int32_t *slot = malloc(n_slots * sizeof *slot);
        if (!slot || n_slots > INT32_MAX) {
            free(slot);
            return false;
        }
        free(r->slot);
        r->slot = slot;
        r->n_slots = n_slots;
        reindex(r);
    }
    return true;
}

static void *pack_all(const cpu_qtype_t *q, const slm_tensor_desc_t *a, size_t *bytes)
{
    int64_t K = a->ne[0], M = a->ne[1], panels = (M + CPU_QGEMM_MR - 1) / CPU_QGEMM_MR;
    size_t pb = cpu_qgemm_panel_bytes(q, K);
    if ((uint64_t)panels > SIZE_MAX / 2 / pb)
        return NULL;
    void *all = NULL, *tmp = NULL;
    if (posix_memalign(&all, 64, (size_t)panels * pb) != 0 ||
        posix_memalign(&tmp, 64, cpu_qgemm_tmp_bytes(K)) != 0) {
        free(all);
        return NULL;
    }
    for (int64_t p = 0; p < panels; p++) {
        int64_t m = p * CPU_QGEMM_MR;
        int rows = (int)(M - m < CPU_QGEMM_MR ? M - m : CPU_QGEMM_MR);
        cpu_qgemm_pack(q, (const char *)a->data + m * a->nb[1], (size_t)a->nb[1], rows, K,
                       (char *)all + (size_t)p * pb, tmp);
    }
    free(tmp);
    *bytes = (size_t)panels * pb;
    return all;
}

const void *cpu_repack_panels(cpu_repack_t *r, const slm_node_t *n, const void *const *busy,
                              size_t n_busy)
{
    const cpu_qtype_t *q = cpu_repack_takes(n);
    if (!r || !q)
        return NULL;
    const slm_tensor_desc_t *a = &n->src[0];
    for (size_t i = 0; i < n_busy; i++)
        if (busy[i] == a->buffer)
            return NULL;
    if (r->n_slots) {
        for (size_t s = hash(a->buffer, a->offset) & (r->n_slots - 1); r->slot[s] >= 0;
             s = (s + 1) & (r->n_slots - 1))
            if (same(&r->v[r->slot[s]], a))
                return r->v[r->slot[s]].panels;
    }
    if (r->out_of_memory)
        return NULL;
    size_t bytes = 0;
    void *panels = reserve(r) ? pack_all(q, a, &bytes) : NULL;
    if (!panels) {
        /* Not worth retrying on every graph: the products pack as they go. */
        r->out_of_memory = true;
        cpu_log(SLM_LOG_WARN, "not enough memory to repack a %lld x %lld %s weight: "
                "batched products unpack the weights as they go", (long long)a->ne[1],
                (long long)a->ne[0], q->name);
        return NULL;
    }
    r->v[r->n] = (repacked_t){.buffer = a->buffer, .offset = a->offset, .type = a->type,
                              .K = a->ne[0], .M = a->ne[1], .row_bytes = a->nb[1],
                              .panels = panels, .bytes = bytes};
    size_t s = hash(a->buffer, a->offset) & (r->n_slots - 1);
    while (r->slot[s] >= 0)
        s = (s + 1) & (r->n_slots - 1);
    r->slot[s] = (int32_t)r->n++;
    r->total += bytes;
    r->fresh++;
    cpu_log(SLM_LOG_DEBUG, "repacked a %lld x %lld %s weight: %.1f MiB of panels, %.1f MiB in all",
            (long long)a->ne[1], (long long)a->ne[0], q->name, bytes / 1048576.0,
            r->total / 1048576.0);
    return panels;
}

void cpu_repack_report(cpu_repack_t *r)
{
    if (!r || !r->fresh)
        return;
    cpu_log(SLM_LOG_INFO, "repacked %zu quantized weights for batched products: %.1f MiB of "
            "panels in all", r->fresh, r->total / 1048576.0);
    r->fresh = 0;
}

void cpu_repack_forget(cpu_repack_t *r, const void *buffer)
{
    if (!cpu_repack_holds(r, buffer))
        return;
    size_t kept = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].buffer == buffer) {
            free(r->v[i].panels);
            r->total -= r->v[i].bytes;
        } else {
            r->v[kept++] = r->v[i];
        }
    }
    r->n = kept;
    reindex(r);
}

bool cpu_repack_holds(const cpu_repack_t *r, const void *buffer)
{
    if (!r || !buffer)
        return false;
    /* A scan: weights each have a buffer of their own (a few hundred). */
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].buffer == buffer)
            return true;
    return false;
}
