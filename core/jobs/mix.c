/* The mixes' rule interpreter: for each quantizable tensor in llama.cpp's order,
 * its category, its position there, and the first rule whose conditions hold. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/util.h"
#include "jobs/mix-data.h"

struct slm__mix_run {
    const slm__mix_t *mix;
    slm__mix_model_t model;
    uint32_t block;
    int64_t *n_of, *i_of;   /* per category: how many, and how many went through */
    bool *present;
};

static int category_of(const mix_file_t *f, const char *name)
{
    for (size_t c = 0; c < f->n_cats; c++) {
        size_t i;
        json_t *s;
        json_array_foreach(f->cats[c].names, i, s)
            if (strcmp(name, json_string_value(s)) == 0)
                return (int)c;
        json_array_foreach(f->cats[c].contains, i, s)
            if (strstr(name, json_string_value(s)))
                return (int)c;
    }
    return -1;
}

slm__mix_run_t *slm__mix_run_new(const slm__mix_t *m, const slm__mix_model_t *model,
                                 const char *const *names, size_t n, uint32_t default_block)
{
    const mix_file_t *f = m->file;
    slm__mix_run_t *r = calloc(1, sizeof *r);
    if (!r || !(r->n_of = calloc(f->n_cats + 1, sizeof *r->n_of)) ||
        !(r->i_of = calloc(f->n_cats + 1, sizeof *r->i_of)) ||
        !(r->present = calloc(f->n_cats + 1, sizeof *r->present))) {
        slm__mix_run_free(r);
        return NULL;
    }
    *r = (slm__mix_run_t){.mix = m, .model = *model, .block = default_block ? default_block : 1,
                          .n_of = r->n_of, .i_of = r->i_of, .present = r->present};
    for (size_t i = 0; i < n; i++) {
        int c = category_of(f, names[i]);
        if (c >= 0) {
            r->present[c] = true;
            r->n_of[c]++;
        }
    }
    for (size_t c = 0; c < f->n_cats; c++)
        if (f->cats[c].count == COUNT_LAYERS)
            r->n_of[c] = model->n_layer;
    return r;
}

void slm__mix_run_free(slm__mix_run_t *r)
{
    if (!r)
        return;
    free(r->n_of);
    free(r->i_of);
    free(r->present);
    free(r);
}

/* llama.cpp's use_more_bits(): the first and last eighth, and every third layer
 * between them. */
static bool layer_holds(int layer, int64_t i, int64_t n)
{
    switch (layer) {
    case LAYER_USE_MORE_BITS:
        return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
    case LAYER_FIRST_EIGHTH:
        return i < n / 8;
    case LAYER_FIRST_SIXTEENTH:
        return i < n / 16;
    case LAYER_MIDDLE:
        return i >= n / 8 && i < 7 * n / 8;
    default:
        return true;
    }
}

static bool rule_holds(const slm__mix_run_t *r, const rule_t *u, int64_t ne0, int64_t i,
                       int64_t n)
{
    const slm__mix_model_t *m = &r->model;
    return (u->rows_fit < 0 || u->rows_fit == (ne0 % r->block == 0)) &&
           (u->imatrix < 0 || u->imatrix == m->imatrix) && layer_holds(u->layer, i, n) &&
           (u->index_below < 0 || i < u->index_below) &&
           (u->n_gqa_min < 0 || m->n_gqa >= u->n_gqa_min) &&
           (u->n_expert < 0 || m->n_expert == u->n_expert) &&
           (u->n_expert_min < 0 || m->n_expert >= u->n_expert_min) &&
           (u->n_layer < 0 || m->n_layer == u->n_layer);
}

/* With experts, llama.cpp takes a layered tensor's position from its name, since
 * expert tensors need not come one per block in order. */
static int layer_of(const slm__mix_run_t *r, const char *name, int c, int64_t *i,
                    slm_error_t *err)
{
    const category_t *cat = &r->mix->file->cats[c];
    *i = r->i_of[c];
    if (cat->count != COUNT_LAYERS || r->model.n_expert <= 1)
        return SLM_OK;
    long long blk;
    int used = 0;
    if (sscanf(name, "blk.%lld.%n", &blk, &used) != 1 || used == 0 || blk < 0 ||
        blk >= r->model.n_layer)
        return slm__fail(err, SLM_E_FORMAT, NULL, -1, "quantize: %s: mix %s needs the "
                         "tensor's block number (blk.N. below %lld) in its name", name,
                         r->mix->name, (long long)r->model.n_layer);
    *i = blk;
    return SLM_OK;
}

int slm__mix_run_type(slm__mix_run_t *r, const char *name, int64_t ne0, const char **type,
                      slm_error_t *err)
{
    const mix_file_t *f = r->mix->file;
    *type = NULL;
    int c = category_of(f, name);
    if (c < 0)
        return SLM_OK;
    if (f->cats[c].tied_to >= 0 && !r->present[f->cats[c].tied_to])
        c = f->cats[c].tied_to;
    int64_t i;
    int rc = layer_of(r, name, c, &i, err);
    if (rc)
        return rc;
    for (size_t k = 0; k < r->mix->n_rules; k++) {
        const rule_t *u = &r->mix->rules[k];
        if (u->category == c && rule_holds(r, u, ne0, i, r->n_of[c])) {
            *type = u->type;
            break;
        }
    }
    r->i_of[c]++;
    return SLM_OK;
}
