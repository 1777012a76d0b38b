/* Reading an adapter through whichever format plugin reads it and checking it against
 * its base model, as llama.cpp's loader does, before any of it is used. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/quantize.h>
#include <slmops/types.h>

#include "internal/adapter.h"
#include "internal/util.h"

typedef struct loader {
    slm_registry_t *reg;
    const char *path;
    const slm_model_file_t *base;
    const char *base_label;
    slm_model_file_t *mf;
    slm_adapter_t *ad;
    slm_error_t *err;
} loader_t;

/* Every refusal names the adapter file first. */
__attribute__((format(printf, 3, 4)))
static int refuse(const loader_t *L, int code, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return slm__fail(L->err, code, L->path, -1, "%s: %s", L->path, msg);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0;
}

/* "'x'" or "missing", for messages about a key. */
static const char *quoted(const char *v, char *buf, size_t cap)
{
    if (!v)
        return "missing";
    snprintf(buf, cap, "'%s'", v);
    return buf;
}

static int check_kind(loader_t *L)
{
    const char *type = NULL, *kind = NULL, *arch = NULL;
    char q[80];
    slm_model_file_get_string(L->mf, "general.type", &type, NULL);
    if (!type || strcmp(type, "adapter") != 0)
        return refuse(L, SLM_E_FORMAT, "not an adapter (general.type is %s)",
                      quoted(type, q, sizeof q));
    slm_model_file_get_string(L->mf, "adapter.type", &kind, NULL);
    if (!kind || strcmp(kind, "lora") != 0)
        return refuse(L, SLM_E_UNSUPPORTED, "adapter.type is %s, not 'lora'",
                      quoted(kind, q, sizeof q));
    slm_model_file_get_string(L->mf, "general.architecture", &arch, NULL);
    if (!arch)
        return refuse(L, SLM_E_FORMAT, "the adapter names no general.architecture");
    if (strcmp(arch, L->ad->arch) != 0)
        return refuse(L, SLM_E_INVALID, "the adapter is for architecture '%s', but %s is '%s'", arch,
                      L->base_label, L->ad->arch);
    double alpha = 0, dropout = 0;
    bool rslora = false;
    int rc = slm_model_file_get_float(L->mf, "adapter.lora.alpha", &alpha, NULL);
    if (rc < 0 && rc != SLM_E_NOT_FOUND)
        return refuse(L, SLM_E_FORMAT, "adapter.lora.alpha is not a number");
    rc = slm_model_file_get_bool(L->mf, "adapter.lora.rslora", &rslora, NULL);
    if (rc < 0 && rc != SLM_E_NOT_FOUND)
        return refuse(L, SLM_E_FORMAT, "adapter.lora.rslora is not a boolean");
    rc = slm_model_file_get_float(L->mf, "adapter.lora.dropout", &dropout, NULL);
    if ((rc < 0 && rc != SLM_E_NOT_FOUND) || !(dropout >= 0 && dropout < 1))
        return refuse(L, SLM_E_FORMAT, "adapter.lora.dropout is not a number in [0, 1)");
    L->ad->alpha = (float)alpha;
    L->ad->rslora = rslora;
    L->ad->dropout = (float)dropout;
    return SLM_OK;
}

/* The partner of "W.lora_a" / "W.lora_b". */
static int partner(loader_t *L, const char *weight, const char *suffix, slm_model_tensor_t *t)
{
    size_t n = strlen(weight) + strlen(suffix) + 1;
    char *name = malloc(n);
    if (!name)
        return refuse(L, SLM_E_NOMEM, "out of memory");
    snprintf(name, n, "%s%s", weight, suffix);
    int rc = slm_model_file_find_tensor(L->mf, name, t);
    free(name);
    return rc;
}

static int to_f32(loader_t *L, const slm_model_tensor_t *t, float *dst)
{
    int rc = slm_dequantize_rows(L->reg, t->type, t->data, dst, t->ne[1], t->ne[0], L->err);
    if (rc == SLM_OK)
        return SLM_OK;
    char why[sizeof L->err->message] = "cannot convert it to f32";
    if (L->err && L->err->message[0])
        snprintf(why, sizeof why, "%s", L->err->message);
    return refuse(L, rc, "tensor '%s' (%s): %s", t->name, slm_type_name(t->type), why);
}

/* lora_a [n_in, r] and lora_b [r, n_out] of one r, for the base's W [n_in, n_out]. */
static int check_shapes(loader_t *L, const char *weight, const slm_model_tensor_t *a,
                        const slm_model_tensor_t *b, const slm_model_tensor_t *w)
{
    if (w->n_dims != 2)
        return refuse(L, SLM_E_INVALID, "tensor '%s': '%s' of %s is not a matrix", a->name, weight,
                      L->base_label);
    if (a->n_dims != 2 || b->n_dims != 2)
        return refuse(L, SLM_E_FORMAT, "tensor '%s' has %d dimensions, not 2",
                      a->n_dims != 2 ? a->name : b->name, a->n_dims != 2 ? a->n_dims : b->n_dims);
    if (a->ne[1] != b->ne[0])
        return refuse(L, SLM_E_FORMAT, "tensor '%s' has rank %lld but '%s' rank %lld", a->name,
                      (long long)a->ne[1], b->name, (long long)b->ne[0]);
    if (a->ne[1] < 1 || a->ne[1] > INT32_MAX)
        return refuse(L, SLM_E_FORMAT, "tensor '%s' has rank %lld", a->name, (long long)a->ne[1]);
    if (a->ne[0] != w->ne[0] || b->ne[1] != w->ne[1])
        return refuse(L, SLM_E_INVALID, "tensor '%s' is [%lld, %lld] and '%s' [%lld, %lld], which "
                      "do not fit '%s' [%lld, %lld] of %s (is this the adapter's base model?)",
                      a->name, (long long)a->ne[0], (long long)a->ne[1], b->name,
                      (long long)b->ne[0], (long long)b->ne[1], weight, (long long)w->ne[0],
                      (long long)w->ne[1], L->base_label);
    return SLM_OK;
}

static int add_pair(loader_t *L, const char *weight, const slm_model_tensor_t *a)
{
    slm_model_tensor_t b = {.struct_size = sizeof b}, w = {.struct_size = sizeof w};
    if (partner(L, weight, ".lora_b", &b) < 0)
        return refuse(L, SLM_E_FORMAT, "tensor '%s' has no '%s.lora_b'", a->name, weight);
    if (strcmp(weight, "token_embd.weight") == 0)
        return refuse(L, SLM_E_UNSUPPORTED, "tensor '%s': adapters of the token embedding are not "
                      "supported", a->name);
    if (slm_model_file_find_tensor(L->base, weight, &w) < 0)
        return refuse(L, SLM_E_NOT_FOUND, "tensor '%s': %s has no weight '%s' (is this the adapter's "
                      "base model?)", a->name, L->base_label, weight);
    int rc = check_shapes(L, weight, a, &b, &w);
    slm__adapter_target_t *t;
    if (rc == SLM_OK)
        rc = slm__adapter_add(L->ad, weight, (int32_t)a->ne[1], w.ne[0], w.ne[1], &t, L->err);
    if (rc == SLM_OK)
        rc = to_f32(L, a, t->a);
    if (rc == SLM_OK)
        rc = to_f32(L, &b, t->b);
    return rc;
}

/* Every tensor is one half of a pair; pairs are added in the order of their lora_a. */
static int read_pairs(loader_t *L)
{
    size_t n = slm_model_file_n_tensors(L->mf);
    for (size_t i = 0; i < n; i++) {
        slm_model_tensor_t t = {.struct_size = sizeof t}, other = {.struct_size = sizeof other};
        slm_model_file_tensor(L->mf, i, &t);
        bool is_a = has_suffix(t.name, ".lora_a"), is_b = has_suffix(t.name, ".lora_b");
        if (!is_a && !is_b)
            return refuse(L, SLM_E_UNSUPPORTED, "tensor '%s' is neither a lora_a nor a lora_b (norms "
                          "and other tensors in adapters are not supported)", t.name);
        char *weight = strndup(t.name, strlen(t.name) - 7);
        if (!weight)
            return refuse(L, SLM_E_NOMEM, "out of memory");
        int rc = SLM_OK;
        if (is_a)
            rc = add_pair(L, weight, &t);
        else if (partner(L, weight, ".lora_a", &other) < 0)
            rc = refuse(L, SLM_E_FORMAT, "tensor '%s' has no '%s.lora_a'", t.name, weight);
        free(weight);
        if (rc != SLM_OK)
            return rc;
    }
    if (!L->ad->n)
        return refuse(L, SLM_E_FORMAT, "the adapter has no tensors");
    return SLM_OK;
}

int slm_adapter_load(slm_registry_t *reg, const char *path, const slm_model_file_t *base,
                     slm_adapter_t **out, slm_error_t *err)
{
    if (out)
        *out = NULL;
    if (!reg || !path || !base || !out)
        return slm__fail(err, SLM_E_INVALID, path, -1,
                         "adapter load: no registry, path, base or result");
    loader_t L = {.reg = reg, .path = path, .base = base, .base_label = slm__adapter_base_label(base),
                  .err = err};
    int rc = slm__adapter_create(base, &L.ad, err);
    if (rc == SLM_OK)
        rc = slm_model_file_open_for(reg, path, NULL, base, &L.mf, err);
    if (rc == SLM_OK)
        rc = check_kind(&L);
    if (rc == SLM_OK)
        rc = read_pairs(&L);
    if (rc == SLM_OK && !(L.ad->path = strdup(path)))
        rc = slm__fail(err, SLM_E_NOMEM, path, -1, "%s: out of memory", path);
    slm_model_file_free(L.mf);
    if (rc != SLM_OK) {
        slm_adapter_free(L.ad);
        return rc;
    }
    slm_log(SLM_LOG_INFO, "adapter", "%s: %zu weights adapted, alpha %g%s", path, L.ad->n,
            (double)L.ad->alpha, L.ad->rslora ? " (rsLoRA, folded)" : "");
    *out = L.ad;
    return SLM_OK;
}
