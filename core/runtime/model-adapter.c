/* LoRA adapters attached to a loaded model for run time: each adapter's factors copied
 * in f32 beside the weights, and the one set every decode context applies. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/adapter.h>
#include <slmops/types.h>

#include "internal/util.h"
#include "runtime/forward.h"
#include "runtime/runtime.h"

/* One attached adapter: per target its factor pair (names and buffers owned here)
 * and the weight it adapts. */
typedef struct attached {
    size_t n;
    slm__lora_t *lora;
    const slm__weight_t **on;
} attached_t;

struct slm__model_adapters {
    attached_t *v;
    size_t n;
    slm__adapters_t *set;      /* every attached adapter: rebuilt at each attach */
    uint64_t gen;
};

static void factor_free(slm__weight_t *f)
{
    slm_buffer_free(f->buf);
    free((char *)f->name);
}

static void attached_free(attached_t *a)
{
    for (size_t i = 0; a->lora && i < a->n; i++) {
        factor_free(&a->lora[i].a);
        factor_free(&a->lora[i].b);
    }
    free(a->lora);
    free(a->on);
    memset(a, 0, sizeof *a);
}

void slm__model_adapters_free(slm_model_t *m)
{
    struct slm__model_adapters *ma = m ? m->adapters : NULL;
    if (!ma)
        return;
    for (size_t i = 0; i < ma->n; i++)
        attached_free(&ma->v[i]);
    free(ma->v);
    slm__adapters_free(ma->set);
    free(ma);
    m->adapters = NULL;
}

const slm__adapters_t *slm__model_adapters(const slm_model_t *m, uint64_t *gen)
{
    const struct slm__model_adapters *ma = m ? m->adapters : NULL;
    if (gen)
        *gen = ma ? ma->gen : 0;
    return ma ? ma->set : NULL;
}

size_t slm_model_n_adapters(const slm_model_t *m)
{
    return m && m->adapters ? m->adapters->n : 0;
}

/* "FILE" or "the adapter", for messages. */
static const char *label(const slm_adapter_t *ad)
{
    const char *p = slm_adapter_path(ad);
    return p ? p : "the adapter";
}

/* Every target adapts a weight the model multiplies by, with the weight's shape. */
static int check(const slm_model_t *m, const slm_adapter_t *ad, float user_scale,
                 slm_error_t *err)
{
    const char *path = slm_adapter_path(ad), *arch = slm_adapter_arch(ad);
    if (!arch || strcmp(arch, m->hp.arch) != 0)
        return slm__fail(err, SLM_E_INVALID, path, -1, "%s: the adapter is for architecture "
                         "'%s', but the model is '%s'", label(ad), arch ? arch : "(none)",
                         m->hp.arch);
    size_t n = slm_adapter_n_targets(ad);
    if (n == 0)
        return slm__fail(err, SLM_E_INVALID, path, -1, "%s: the adapter has no tensors",
                         label(ad));
    for (size_t i = 0; i < n; i++) {
        slm_adapter_target_t t = {.struct_size = sizeof t};
        slm_adapter_target(ad, i, &t);
        const slm__weight_t *w = slm__model_weight(m, t.name);
        if (!w || w == m->tok_embd)
            return slm__fail(err, SLM_E_UNSUPPORTED, path, -1, "%s: the model has no weight "
                             "'%s' that a matrix product uses (is this the adapter's base "
                             "model?)", label(ad), t.name);
        if (w->ne[0] != t.n_in || w->ne[1] != t.n_out || w->ne[2] != 1 || w->ne[3] != 1)
            return slm__fail(err, SLM_E_INVALID, path, -1, "%s: '%s' is [%lld, %lld] in the "
                             "adapter but [%lld, %lld] in the model (is this the adapter's "
                             "base model?)", label(ad), t.name, (long long)t.n_in,
                             (long long)t.n_out, (long long)w->ne[0], (long long)w->ne[1]);
        if (!isfinite(slm_adapter_scale(ad, i, user_scale)))
            return slm__fail(err, SLM_E_INVALID, path, -1, "%s: scale %g x alpha / rank is "
                             "not a finite number", label(ad), (double)user_scale);
    }
    return SLM_OK;
}

/* An f32 factor [ne0, ne1] named NAME.SUFFIX, its values copied to the device. */
static int factor(slm_model_t *m, const char *name, const char *suffix, int64_t ne0,
                  int64_t ne1, const float *src, slm__weight_t *f, slm_error_t *err)
{
    size_t len = strlen(name) + strlen(suffix) + 1;
    char *full = malloc(len);
    uint64_t bytes = (uint64_t)ne0 * (uint64_t)ne1 * sizeof(float);
    *f = (slm__weight_t){.name = full, .type = SLM_TYPE_F32, .ne = {ne0, ne1, 1, 1}};
    if (!full)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "adapter: out of memory");
    snprintf(full, len, "%s%s", name, suffix);
    if (!(f->buf = slm_buffer_new(m->sched, bytes, err)))
        return err ? err->code : SLM_E_NOMEM;
    if (slm_buffer_set(f->buf, 0, src, bytes) != 0)
        return slm__fail(err, SLM_E_DEVICE, NULL, -1, "adapter: copying %s to the device "
                         "failed", full);
    return SLM_OK;
}

/* The factors of ad on the device, as adapter `id` with the scales user_scale gives. */
static int upload(slm_model_t *m, const slm_adapter_t *ad, float user_scale, uint32_t id,
                  attached_t *a, slm_error_t *err)
{
    size_t n = slm_adapter_n_targets(ad);
    a->lora = calloc(n, sizeof *a->lora);
    a->on = calloc(n, sizeof *a->on);
    if (!a->lora || !a->on)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "adapter: out of memory");
    for (size_t i = 0; i < n; i++, a->n++) {
        slm_adapter_target_t t = {.struct_size = sizeof t};
        slm_adapter_target(ad, i, &t);
        slm__lora_t *l = &a->lora[i];
        int rc = factor(m, t.name, ".lora_a", t.n_in, t.rank, t.a, &l->a, err);
        if (rc == SLM_OK)
            rc = factor(m, t.name, ".lora_b", t.rank, t.n_out, t.b, &l->b, err);
        if (rc != SLM_OK) {
            a->n++;   /* its factors are freed with the others */
            return rc;
        }
        l->scale = slm_adapter_scale(ad, i, user_scale);
        l->adapter = id;
        a->on[i] = slm__model_weight(m, t.name);
    }
    return SLM_OK;
}

/* The set of every attached adapter and `extra`, in attach order. */
static slm__adapters_t *build_set(slm_model_t *m, const attached_t *extra, slm_error_t *err)
{
    slm__adapters_t *set = slm__adapters_new(m, err);
    const struct slm__model_adapters *ma = m->adapters;
    size_t n_old = ma ? ma->n : 0;
    for (size_t k = 0; set && k <= n_old; k++) {
        const attached_t *a = k < n_old ? &ma->v[k] : extra;
        for (size_t i = 0; i < a->n; i++)
            if (slm__adapters_attach(set, a->on[i], &a->lora[i], err) != SLM_OK) {
                slm__adapters_free(set);
                return NULL;
            }
    }
    return set;
}

int slm_model_attach_adapter(slm_model_t *m, const slm_adapter_t *ad, float user_scale,
                             slm_error_t *err)
{
    if (!m || !ad)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapter: NULL model or adapter");
    int rc = check(m, ad, user_scale, err);
    if (rc != SLM_OK)
        return rc;
    if (!m->adapters && !(m->adapters = calloc(1, sizeof *m->adapters)))
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "adapter: out of memory");
    struct slm__model_adapters *ma = m->adapters;
    if (ma->n >= INT32_MAX)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapter: too many adapters");
    attached_t a = {0};
    attached_t *v = realloc(ma->v, (ma->n + 1) * sizeof *v);
    if (v)
        ma->v = v;
    rc = v ? upload(m, ad, user_scale, (uint32_t)ma->n, &a, err)
           : slm__fail(err, SLM_E_NOMEM, NULL, -1, "adapter: out of memory");
    slm__adapters_t *set = rc == SLM_OK ? build_set(m, &a, err) : NULL;
    if (!set) {
        attached_free(&a);
        return rc != SLM_OK ? rc : err ? err->code : SLM_E_NOMEM;
    }
    slm__adapters_free(ma->set);
    ma->set = set;
    ma->gen++;
    ma->v[ma->n] = a;
    slm_log(SLM_LOG_INFO, "adapter", "%s: attached as adapter %zu, %zu weights, user scale %g",
            label(ad), ma->n, a.n, (double)user_scale);
    return (int)ma->n++;
}

int slm_model_load_adapter(slm_model_t *m, const char *path, float user_scale,
                           slm_error_t *err)
{
    if (!m || !path)
        return slm__fail(err, SLM_E_INVALID, path, -1, "adapter: NULL model or path");
    slm_adapter_t *ad = NULL;
    int rc = slm_adapter_load(m->reg, path, m->file, &ad, err);
    if (rc == SLM_OK)
        rc = slm_model_attach_adapter(m, ad, user_scale, err);
    slm_adapter_free(ad);
    return rc;
}
