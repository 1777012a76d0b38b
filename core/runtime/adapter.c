/* Adapters attached to a model's weights: per weight a list of low-rank factor pairs
 * with their scales, which the forward builder's linear seam applies unmerged. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/types.h>

#include "internal/util.h"
#include "runtime/forward.h"

slm__adapters_t *slm__adapters_new(const slm_model_t *m, slm_error_t *err)
{
    if (!m) {
        slm__fail(err, SLM_E_INVALID, NULL, -1, "adapters: NULL model");
        return NULL;
    }
    slm__adapters_t *ad = calloc(1, sizeof *ad);
    if (ad)
        ad->on = calloc(m->n_weights ? m->n_weights : 1, sizeof *ad->on);
    if (!ad || !ad->on) {
        free(ad);
        slm__fail(err, SLM_E_NOMEM, NULL, -1, "adapters: out of memory");
        return NULL;
    }
    ad->m = m;
    ad->n_weights = m->n_weights;
    return ad;
}

void slm__adapters_free(slm__adapters_t *ad)
{
    if (!ad)
        return;
    for (size_t i = 0; i < ad->n_weights; i++)
        for (slm__lora_t *l = ad->on[i], *next; l; l = next) {
            next = l->next;
            free(l);
        }
    free(ad->on);
    free(ad->trains);
    free(ad);
}

/* w's index in the model's weight table, or -1 for a weight of another model. */
static ptrdiff_t weight_index(const slm__adapters_t *ad, const slm__weight_t *w)
{
    const slm__weight_t *base = ad->m->weights;
    if (!w || w < base || w >= base + ad->n_weights)
        return -1;
    return w - base;
}

/* A float factor of shape [ne0, ne1] whose buffer holds it (f32 when trained). */
static bool is_factor(const slm__weight_t *t, int64_t ne0, int64_t ne1, bool trainable)
{
    bool is_float = t->type == SLM_TYPE_F32 || t->type == SLM_TYPE_F16 ||
                    t->type == SLM_TYPE_BF16;
    if (!is_float || (trainable && t->type != SLM_TYPE_F32) || !t->buf || t->ne[0] != ne0 ||
        t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return false;
    uint64_t row = slm_type_row_size((slm_type_t)t->type, ne0);
    return slm_buffer_size(t->buf) / row >= (uint64_t)ne1;
}

int slm__adapters_attach(slm__adapters_t *ad, const slm__weight_t *w, const slm__lora_t *lora,
                         slm_error_t *err)
{
    if (!ad || !lora)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapters: NULL argument");
    ptrdiff_t i = weight_index(ad, w);
    if (i < 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapters: the weight is not one of "
                         "the model's");
    int64_t in = w->ne[0], out = w->ne[1], r = lora->a.ne[1];
    if (w->ne[2] != 1 || w->ne[3] != 1 || out <= 1)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapters: %s is not a matrix",
                         w->name);
    bool tr = lora->trainable;
    if (r < 1 || !is_factor(&lora->a, in, r, tr) || !is_factor(&lora->b, r, out, tr))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapters: factors for %s must be "
                         "A [%lld, r] and B [r, %lld] of one rank r >= 1, f16, bf16 or f32 "
                         "(f32 when trained), in buffers that hold them", w->name,
                         (long long)in, (long long)out);
    if (!isfinite(lora->scale))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapters: the scale on %s is not "
                         "finite", w->name);
    if (!(lora->dropout >= 0.0f && lora->dropout < 1.0f))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapters: the dropout on %s is not "
                         "in [0, 1)", w->name);
    slm__lora_t *copy = malloc(sizeof *copy);
    if (!copy)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "adapters: out of memory");
    *copy = *lora;
    copy->next = NULL;
    slm__lora_t **tail = &ad->on[i];
    while (*tail)
        tail = &(*tail)->next;
    *tail = copy;
    ad->n_loras++;
    if (lora->adapter + 1 > ad->n_adapters)
        ad->n_adapters = lora->adapter + 1;
    return SLM_OK;
}

int slm__adapters_train_base(slm__adapters_t *ad, const slm__weight_t *w, slm_error_t *err)
{
    if (!ad)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapters: NULL argument");
    ptrdiff_t i = weight_index(ad, w);
    if (i < 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapters: the weight is not one of "
                         "the model's");
    if (w->type != SLM_TYPE_F32 || !w->buf)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapters: %s trains in f32; it is "
                         "stored as %s", w->name, slm_type_name((slm_type_t)w->type));
    if (!ad->trains && !(ad->trains = calloc(ad->n_weights ? ad->n_weights : 1,
                                             sizeof *ad->trains)))
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "adapters: out of memory");
    if (!ad->trains[i])
        ad->n_trains++;
    ad->trains[i] = true;
    return SLM_OK;
}

bool slm__adapters_trains(const slm__adapters_t *ad, const slm__weight_t *w)
{
    if (!ad || !ad->trains)
        return false;
    ptrdiff_t i = weight_index(ad, w);
    return i >= 0 && ad->trains[i];
}

const slm__lora_t *slm__adapters_on(const slm__adapters_t *ad, const slm__weight_t *w)
{
    if (!ad || ad->n_loras == 0)
        return NULL;
    ptrdiff_t i = weight_index(ad, w);
    return i < 0 ? NULL : ad->on[i];
}

const slm__weight_t *slm__model_weight(const slm_model_t *m, const char *name)
{
    if (!m || !name)
        return NULL;
    for (size_t i = 0; i < m->n_weights; i++)
        if (strcmp(m->weights[i].name, name) == 0)
            return &m->weights[i];
    return NULL;
}
