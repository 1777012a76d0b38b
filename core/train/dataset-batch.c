/* Batches of training rows: each pass over the examples in an order drawn from the
 * seed and the pass number, whole examples packed greedily into rows, targets that
 * never cross from one example into the next. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal/util.h"
#include "train/dataset-internal.h"

/* splitmix64: seeds the order's generator from (seed, epoch). */
static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A uniform draw in [0, n) without modulo bias. */
static uint64_t below(uint64_t *s, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do
        r = splitmix(s);
    while (r >= limit);
    return r % n;
}

int slm__dataset_order(size_t n, uint64_t seed, uint64_t epoch, size_t *order)
{
    uint64_t s = seed ^ (epoch * 0xd1b54a32d192ed03ull);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n; i > 1; i--) {   /* Fisher-Yates */
        size_t j = (size_t)below(&s, i);
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    return SLM_OK;
}

void slm_dataset_batch_free(slm_dataset_batch_t *b)
{
    if (!b)
        return;
    free(b->tokens);
    free(b->targets);
    free(b->doc);
    free(b->pos);
    memset(b, 0, sizeof *b);
}

static int batch_alloc(slm_dataset_batch_t *b, int32_t n_rows, int32_t n_ctx, int32_t pad)
{
    size_t n = (size_t)n_rows * (size_t)n_ctx;
    memset(b, 0, sizeof *b);
    b->n_rows = n_rows;
    b->n_ctx = n_ctx;
    b->tokens = malloc(n * sizeof *b->tokens);
    b->targets = malloc(n * sizeof *b->targets);
    b->doc = malloc(n * sizeof *b->doc);
    b->pos = malloc(n * sizeof *b->pos);
    if (!b->tokens || !b->targets || !b->doc || !b->pos)
        return SLM_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        b->tokens[i] = pad;
        b->targets[i] = -1;
        b->doc[i] = -1;
        b->pos[i] = 0;
    }
    return SLM_OK;
}

/* Example e at column `at` of row r, as example number `id` of that row. */
static void place(slm_dataset_batch_t *b, int32_t r, int32_t at, int32_t id,
                  const slm__example_t *e)
{
    size_t base = (size_t)r * (size_t)b->n_ctx + (size_t)at;
    for (size_t i = 0; i < e->n; i++) {
        b->tokens[base + i] = e->tokens[i];
        b->doc[base + i] = id;
        b->pos[base + i] = (int32_t)i;
        bool learn = i + 1 < e->n && e->learned[i + 1];
        b->targets[base + i] = learn ? e->tokens[i + 1] : -1;
        b->n_scored += learn;
    }
    b->n_examples++;
}

/* The store index of the example the cursor points at, in this pass's order. */
typedef struct pass {
    uint64_t epoch;
    size_t *order;             /* NULL: file order */
} pass_t;

static int pass_for(const slm_dataset_t *ds, const slm_dataset_cursor_t *cur, pass_t *p)
{
    if (p->order && p->epoch == cur->epoch)
        return SLM_OK;
    p->epoch = cur->epoch;
    if (!cur->shuffle) {
        free(p->order);
        p->order = NULL;
        return SLM_OK;
    }
    if (!p->order && !(p->order = malloc((ds->n ? ds->n : 1) * sizeof *p->order)))
        return SLM_E_NOMEM;
    return slm__dataset_order(ds->n, cur->seed, cur->epoch, p->order);
}

int slm_dataset_next_batch(const slm_dataset_t *ds, slm_dataset_cursor_t *cur, int32_t n_rows,
                           bool stop_at_epoch_end, slm_dataset_batch_t *out, slm_error_t *err)
{
    if (!ds || !cur || !out || n_rows < 1 || ds->n == 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "dataset batch: no dataset, cursor, rows "
                         "or examples");
    int32_t width = ds->store->n_ctx;
    if (batch_alloc(out, n_rows, width, ds->store->pad) != SLM_OK) {
        slm_dataset_batch_free(out);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "dataset batch: out of memory");
    }
    pass_t pass = {.epoch = UINT64_MAX};
    int rc = SLM_OK;
    for (int32_t r = 0, at = 0, id = 0; rc == SLM_OK && r < n_rows;) {
        if (cur->next >= ds->n) {
            out->epoch_ended = true;
            cur->epoch++;
            cur->next = 0;
            if (stop_at_epoch_end)
                break;
        }
        if ((rc = pass_for(ds, cur, &pass)) != SLM_OK)
            break;
        size_t k = pass.order ? pass.order[cur->next] : (size_t)cur->next;
        const slm__example_t *e = &ds->store->ex[ds->idx[k]];
        if ((size_t)(width - at) < e->n) {   /* does not fit: the row is full */
            r++;
            at = id = 0;
            continue;
        }
        place(out, r, at, id++, e);
        at += (int32_t)e->n;
        cur->next++;
    }
    free(pass.order);
    if (rc != SLM_OK) {
        slm_dataset_batch_free(out);
        return slm__fail(err, rc, NULL, -1, "dataset batch: out of memory");
    }
    return SLM_OK;
}
