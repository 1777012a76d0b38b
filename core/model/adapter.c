/* The adapter object: its targets, the scale llama.cpp gives each, and the
 * canonical container it is saved as (docs/decisions.md, D27). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/types.h>

#include "internal/adapter.h"
#include "internal/model-file.h"
#include "internal/util.h"

const char *slm__adapter_base_label(const slm_model_file_t *base)
{
    return base && base->origin ? base->origin : "the base model";
}

static int base_int(const slm_model_file_t *base, const char *arch, const char *suffix, int64_t *v)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return slm_model_file_get_int(base, key, v, NULL);
}

int slm__adapter_create(const slm_model_file_t *base, slm_adapter_t **out, slm_error_t *err)
{
    *out = NULL;
    slm_adapter_t *ad = calloc(1, sizeof *ad);
    if (!ad)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "adapter: out of memory");
    const char *arch = NULL, *name = NULL;
    if (slm_model_file_get_string(base, "general.architecture", &arch, NULL) < 0 || !*arch) {
        free(ad);
        return slm__fail(err, SLM_E_FORMAT, slm__adapter_base_label(base), -1,
                         "%s: general.architecture is missing: an adapter needs its base's",
                         slm__adapter_base_label(base));
    }
    snprintf(ad->arch, sizeof ad->arch, "%s", arch);
    if (base_int(base, arch, "attention.head_count", &ad->n_head) < 0)
        ad->n_head = 0;
    if (base_int(base, arch, "attention.head_count_kv", &ad->n_head_kv) < 0)
        ad->n_head_kv = ad->n_head;
    if (slm_model_file_get_string(base, "general.name", &name, NULL) == SLM_OK && *name &&
        !(ad->base_name = strdup(name))) {
        free(ad);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "adapter: out of memory");
    }
    *out = ad;
    return SLM_OK;
}

int slm__adapter_add(slm_adapter_t *ad, const char *name, int32_t rank, int64_t n_in,
                     int64_t n_out, slm__adapter_target_t **out, slm_error_t *err)
{
    uint64_t na = 0, nb = 0;
    bool ok = rank >= 1 && n_in >= 1 && n_out >= 1 &&
              slm__mul_overflow_u64((uint64_t)rank, (uint64_t)n_in, &na) &&
              slm__mul_overflow_u64((uint64_t)rank, (uint64_t)n_out, &nb);
    if (!ok || na > SIZE_MAX / sizeof(float) || nb > SIZE_MAX / sizeof(float))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapter: %s: rank %d of a [%lld, %lld] weight is "
                         "out of range", name, (int)rank, (long long)n_in, (long long)n_out);
    if (ad->n == ad->cap) {
        size_t cap = ad->cap ? ad->cap * 2 : 16;
        slm__adapter_target_t *t = realloc(ad->t, cap * sizeof *t);
        if (!t)
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "adapter: out of memory");
        ad->t = t;
        ad->cap = cap;
    }
    slm__adapter_target_t *t = &ad->t[ad->n];
    *t = (slm__adapter_target_t){.name = strdup(name), .rank = rank, .n_in = n_in, .n_out = n_out,
                                 .a = calloc((size_t)na, sizeof(float)),
                                 .b = calloc((size_t)nb, sizeof(float))};
    if (!t->name || !t->a || !t->b) {
        free(t->name);
        free(t->a);
        free(t->b);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "adapter: out of memory for %s (rank %d)", name,
                         (int)rank);
    }
    ad->n++;
    if (out)
        *out = t;
    return SLM_OK;
}

void slm_adapter_free(slm_adapter_t *ad)
{
    if (!ad)
        return;
    for (size_t i = 0; i < ad->n; i++) {
        free(ad->t[i].name);
        free(ad->t[i].a);
        free(ad->t[i].b);
    }
    free(ad->t);
    free(ad->path);
    free(ad->base_name);
    free(ad);
}

const char *slm_adapter_path(const slm_adapter_t *ad) { return ad ? ad->path : NULL; }
const char *slm_adapter_arch(const slm_adapter_t *ad) { return ad ? ad->arch : NULL; }
float slm_adapter_alpha(const slm_adapter_t *ad) { return ad ? ad->alpha : 0.0f; }
bool slm_adapter_rslora(const slm_adapter_t *ad) { return ad && ad->rslora; }
float slm_adapter_dropout(const slm_adapter_t *ad) { return ad ? ad->dropout : 0.0f; }
size_t slm_adapter_n_targets(const slm_adapter_t *ad) { return ad ? ad->n : 0; }

int slm_adapter_target(const slm_adapter_t *ad, size_t i, slm_adapter_target_t *out)
{
    if (!ad || i >= ad->n)
        return SLM_E_INVALID;
    /* A caller built against this header or a later one; later fields stay theirs. */
    if (!out || out->struct_size < offsetof(slm_adapter_target_t, b) + sizeof out->b)
        return SLM_OK;
    const slm__adapter_target_t *t = &ad->t[i];
    uint32_t size = out->struct_size;
    *out = (slm_adapter_target_t){.struct_size = size, .name = t->name, .rank = t->rank,
                                  .n_in = t->n_in, .n_out = t->n_out, .a = t->a, .b = t->b};
    return SLM_OK;
}

int slm_adapter_find(const slm_adapter_t *ad, const char *name, slm_adapter_target_t *out)
{
    for (size_t i = 0; ad && name && i < ad->n; i++)
        if (strcmp(ad->t[i].name, name) == 0) {
            slm_adapter_target(ad, i, out);
            return (int)i;
        }
    return SLM_E_NOT_FOUND;
}

float slm_adapter_scale(const slm_adapter_t *ad, size_t i, float user_scale)
{
    if (!ad || i >= ad->n)
        return 0.0f;
    return ad->alpha != 0.0f ? user_scale * ad->alpha / (float)ad->t[i].rank : user_scale;
}

/* ---- the container ---- */

static int put_u32(slm_model_file_t *mf, const char *key, uint32_t v, slm_error_t *err)
{
    return slm_model_file_set_value(mf, key, SLM_MF_U32, &v, 0, err);
}

static int put_metadata(const slm_adapter_t *ad, slm_model_file_t *mf, slm_error_t *err)
{
    int32_t rank = ad->n ? ad->t[0].rank : 0;
    for (size_t i = 1; i < ad->n; i++)
        if (ad->t[i].rank != rank)
            rank = 0;
    uint8_t rs = ad->rslora;
    char key[128];
    int rc = slm_model_file_set_string(mf, "general.architecture", ad->arch, err);
    rc = rc < 0 ? rc : slm_model_file_set_string(mf, "general.type", "adapter", err);
    rc = rc < 0 ? rc : slm_model_file_set_string(mf, "adapter.type", "lora", err);
    if (rc >= 0)
        rc = slm_model_file_set_value(mf, "adapter.lora.alpha", SLM_MF_F32, &ad->alpha, 0, err);
    if (rc >= 0 && rank)
        rc = put_u32(mf, "adapter.lora.rank", (uint32_t)rank, err);
    rc = rc < 0 ? rc : slm_model_file_set_value(mf, "adapter.lora.rslora", SLM_MF_BOOL, &rs, 0, err);
    if (rc >= 0 && ad->dropout != 0.0f)
        rc = slm_model_file_set_value(mf, "adapter.lora.dropout", SLM_MF_F32, &ad->dropout, 0, err);
    if (rc >= 0 && ad->n_head > 0 && ad->n_head <= UINT32_MAX) {
        snprintf(key, sizeof key, "%s.attention.head_count", ad->arch);
        rc = put_u32(mf, key, (uint32_t)ad->n_head, err);
    }
    if (rc >= 0 && ad->n_head_kv > 0 && ad->n_head_kv <= UINT32_MAX) {
        snprintf(key, sizeof key, "%s.attention.head_count_kv", ad->arch);
        rc = put_u32(mf, key, (uint32_t)ad->n_head_kv, err);
    }
    if (rc >= 0 && ad->base_name) {
        rc = put_u32(mf, "general.base_model.count", 1, err);
        if (rc >= 0)
            rc = slm_model_file_set_string(mf, "general.base_model.0.name", ad->base_name, err);
    }
    return rc < 0 ? rc : SLM_OK;
}

static int put_tensor(slm_model_file_t *mf, const char *base, const char *suffix, int64_t ne0,
                      int64_t ne1, const float *data, slm_error_t *err)
{
    size_t n = strlen(base) + strlen(suffix) + 1;
    char *name = malloc(n);
    if (!name)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "adapter: out of memory");
    snprintf(name, n, "%s%s", base, suffix);
    int64_t ne[2] = {ne0, ne1};
    uint64_t nbytes = (uint64_t)ne0 * (uint64_t)ne1 * sizeof(float);
    int rc = slm_model_file_add_tensor(mf, name, SLM_TYPE_F32, 2, ne, data, nbytes, SLM_MF_BORROW, err);
    free(name);
    return rc < 0 ? rc : SLM_OK;
}

int slm_adapter_to_model_file(const slm_adapter_t *ad, slm_model_file_t **out, slm_error_t *err)
{
    if (out)
        *out = NULL;
    if (!ad || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "adapter: no adapter or result");
    slm_model_file_t *mf = slm_model_file_new();
    if (!mf)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "adapter: out of memory");
    int rc = put_metadata(ad, mf, err);
    for (size_t i = 0; rc == SLM_OK && i < ad->n; i++) {
        const slm__adapter_target_t *t = &ad->t[i];
        rc = put_tensor(mf, t->name, ".lora_a", t->n_in, t->rank, t->a, err);
        if (rc == SLM_OK)
            rc = put_tensor(mf, t->name, ".lora_b", t->rank, t->n_out, t->b, err);
    }
    if (rc != SLM_OK) {
        slm_model_file_free(mf);
        return rc;
    }
    *out = mf;
    return SLM_OK;
}

int slm_adapter_save(const slm_adapter_t *ad, slm_registry_t *reg, const char *path,
                     const char *format, const slm_output_params_t *out, slm_error_t *err)
{
    slm_model_file_t *mf;
    int rc = slm_adapter_to_model_file(ad, &mf, err);
    if (rc != SLM_OK)
        return rc;
    rc = slm_model_file_save_output(mf, reg, path, format, out, err);
    slm_model_file_free(mf);
    return rc;
}
