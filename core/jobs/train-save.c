/* The train job's outputs: the method's finish says what to save (the whole model,
 * or adapter tensors under their PEFT and GGUF names), the host writes it: a model
 * file of the base's architecture, or a LoRA adapter (PEFT folder, llama.cpp GGUF). */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <slmops/model-file.h>
#include <slmops/output.h>
#include <slmops/sched.h>
#include <slmops/types.h>

#include "internal/adapter.h"
#include "internal/util.h"
#include "jobs/jobs.h"
#include "jobs/train.h"

typedef struct saved_tensor {
    char *param, *gguf;
} saved_tensor_t;

typedef struct saver {
    slm__train_t *t;
    bool model_done;
    saved_tensor_t *tensors;
    size_t n, cap;
    json_t *config;
} saver_t;

static bool ends_with_gguf(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    return n >= 5 && strncasecmp(path + n - 5, ".gguf", 5) == 0;
}

/* The writer of OUT: the one asked for, GGUF for *.gguf, else a Hugging Face (or
 * PEFT) folder. */
static const char *format_for(const slm__train_t *t, const char *path, bool gguf_only)
{
    if (gguf_only)
        return "format-gguf";
    if (t->o->format)
        return t->o->format;
    return ends_with_gguf(path) ? NULL : "format-safetensors";
}

static void output_params(const slm__train_t *t, slm_output_params_t *p)
{
    slm_output_params_init(p);
    p->inputs = t->rt->inputs;
    p->n_inputs = t->rt->n_inputs;
}

/* Write mf to the output and to the GGUF output; each complete one is reported. */
static int write_both(slm__train_t *t, const slm_model_file_t *mf)
{
    const char *paths[2] = {t->o->output, t->o->output_gguf};
    slm_output_params_t p;
    output_params(t, &p);
    for (int i = 0; i < 2; i++) {
        if (!paths[i])
            continue;
        int rc = slm_model_file_save_output(mf, t->reg, paths[i], format_for(t, paths[i], i == 1),
                                            &p, t->err);
        if (rc)
            return rc;
        slm__jobrt_wrote(t->rt, paths[i]);
    }
    return SLM_OK;
}

/* ---- the whole model ---- */

/* A trained weight in the base's type when that is a float type, else f32. */
static int trained_tensor(slm__train_t *t, slm_model_file_t *out, const slm_model_tensor_t *bt,
                          const slm__tparam_t *p, void **keep)
{
    size_t n = slm__train_param_count(p);
    float *f = malloc(n * sizeof *f);
    if (!f)
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    *keep = f;
    if (slm_buffer_get(slm__train_param_buf(p), 0, f, n * sizeof *f) != SLM_OK)
        return slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: reading %s failed", p->name);
    int32_t type = bt->type == SLM_TYPE_F16 || bt->type == SLM_TYPE_BF16 ? bt->type : SLM_TYPE_F32;
    int64_t rows = (int64_t)(n / (size_t)bt->ne[0]);
    size_t bytes = (size_t)rows * slm_type_row_size(type, bt->ne[0]);
    void *data = f;
    if (type != SLM_TYPE_F32) {
        void *conv = malloc(bytes);
        if (!conv)
            return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
        int rc = slm__jobs_convert(t->reg, SLM_TYPE_F32, f, type, conv, rows, bt->ne[0], 1,
                                   t->err);
        free(f);
        *keep = data = conv;
        if (rc)
            return rc;
    }
    int rc = slm_model_file_add_tensor(out, bt->name, type, bt->n_dims, bt->ne, data, bytes,
                                       SLM_MF_BORROW, t->err);
    return rc < 0 ? rc : SLM_OK;
}

static int s_model(void *ctx)
{
    saver_t *sv = ctx;
    slm__train_t *t = sv->t;
    if (sv->model_done)
        return SLM_OK;
    const slm_model_file_t *base = slm_model_container(t->model);
    size_t n = slm_model_file_n_tensors(base);
    slm_model_file_t *out = slm_model_file_new();
    void **keep = calloc(n ? n : 1, sizeof *keep);
    int rc = out && keep ? slm_model_file_copy_values(out, base, "", t->err)
                         : slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    rc = rc < 0 ? rc : SLM_OK;
    for (size_t i = 0; rc == SLM_OK && i < n; i++) {
        slm_model_tensor_t bt = {.struct_size = sizeof bt};
        slm_model_file_tensor(base, i, &bt);
        const slm__tparam_t *p = slm__train_param(t, bt.name);
        if (p && p->base) {
            rc = trained_tensor(t, out, &bt, p, &keep[i]);
            continue;
        }
        rc = slm_model_file_add_tensor(out, bt.name, bt.type, bt.n_dims, bt.ne, bt.data,
                                       bt.nbytes, SLM_MF_BORROW, t->err);
        rc = rc < 0 ? rc : SLM_OK;
    }
    if (rc == SLM_OK)
        rc = write_both(t, out);
    slm_model_file_free(out);
    for (size_t i = 0; keep && i < n; i++)
        free(keep[i]);
    free(keep);
    sv->model_done = rc == SLM_OK;
    return rc;
}

/* ---- adapter tensors ---- */

static int s_tensor(void *ctx, const char *param, const char *rows_of, const char *peft_name,
                    const char *gguf_name)
{
    saver_t *sv = ctx;
    slm__train_t *t = sv->t;
    (void)rows_of;     /* LoRA's B is kept in the base's row order, as slm_adapter wants */
    (void)peft_name;   /* the PEFT writer names tensors from the GGUF names itself */
    const slm__tparam_t *p = slm__train_param(t, param);
    if (!p || p->base)
        return slm__fail(t->err, SLM_E_INVALID, NULL, -1, "train: method %s saves '%s', which "
                         "is no parameter it added", t->o->method, param ? param : "(null)");
    if (!gguf_name)
        return SLM_OK;
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? 2 * sv->cap : 32;
        saved_tensor_t *a = realloc(sv->tensors, cap * sizeof *a);
        if (!a)
            return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
        sv->tensors = a;
        sv->cap = cap;
    }
    saved_tensor_t *e = &sv->tensors[sv->n];
    e->param = strdup(param);
    e->gguf = strdup(gguf_name);
    if (!e->param || !e->gguf) {
        free(e->param);
        free(e->gguf);
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    }
    sv->n++;
    return SLM_OK;
}

static int s_adapter_config(void *ctx, const char *json)
{
    saver_t *sv = ctx;
    json_t *c = json ? json_loads(json, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_object(c)) {
        json_decref(c);
        return slm__fail(sv->t->err, SLM_E_INVALID, NULL, -1, "train: method %s: the adapter "
                         "configuration is not a JSON object", sv->t->o->method);
    }
    json_decref(sv->config);
    sv->config = c;
    return SLM_OK;
}

/* "W.lora_a" -> the index of W.lora_b's entry, or -1. */
static ptrdiff_t partner(const saver_t *sv, const char *gguf_a)
{
    size_t n = strlen(gguf_a);
    for (size_t i = 0; i < sv->n; i++)
        if (strlen(sv->tensors[i].gguf) == n && strncmp(sv->tensors[i].gguf, gguf_a, n - 1) == 0 &&
            sv->tensors[i].gguf[n - 1] == 'b')
            return (ptrdiff_t)i;
    return -1;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n > k && strcmp(s + n - k, suf) == 0;
}

static int add_target(saver_t *sv, slm_adapter_t *ad, const saved_tensor_t *ea,
                      const saved_tensor_t *eb)
{
    slm__train_t *t = sv->t;
    const slm__tparam_t *a = slm__train_param(t, ea->param), *b = slm__train_param(t, eb->param);
    char target[256];
    snprintf(target, sizeof target, "%.*s", (int)(strlen(ea->gguf) - strlen(".lora_a")),
             ea->gguf);
    const slm__weight_t *w = slm__model_weight(t->model, target);
    if (!w || a->ne[0] != w->ne[0] || b->ne[1] != w->ne[1] || a->ne[1] != b->ne[0])
        return slm__fail(t->err, SLM_E_INVALID, NULL, -1, "train: method %s saves %s and %s, "
                         "which are no LoRA pair on a weight of the base", t->o->method,
                         ea->gguf, eb->gguf);
    slm__adapter_target_t *at;
    int rc = slm__adapter_add(ad, target, (int32_t)a->ne[1], w->ne[0], w->ne[1], &at, t->err);
    if (rc == SLM_OK &&
        (slm_buffer_get(slm__train_param_buf(a), 0, at->a, slm__train_param_count(a) * 4) ||
         slm_buffer_get(slm__train_param_buf(b), 0, at->b, slm__train_param_count(b) * 4)))
        rc = slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: reading %s failed", target);
    return rc;
}

static float config_real(const json_t *c, const char *part, const char *key, float dflt)
{
    const json_t *v = json_object_get(json_object_get(c, part), key);
    return json_is_number(v) ? (float)json_number_value(v) : dflt;
}

static int save_adapter(saver_t *sv)
{
    slm__train_t *t = sv->t;
    slm_adapter_t *ad = NULL;
    int rc = slm__adapter_create(slm_model_container(t->model), &ad, t->err);
    for (size_t i = 0; rc == SLM_OK && i < sv->n; i++) {
        const saved_tensor_t *e = &sv->tensors[i];
        if (has_suffix(e->gguf, ".lora_b"))
            continue;
        ptrdiff_t j = has_suffix(e->gguf, ".lora_a") ? partner(sv, e->gguf) : -1;
        rc = j < 0 ? slm__fail(t->err, SLM_E_UNSUPPORTED, NULL, -1, "train: method %s saves "
                               "%s, which is no half of a LoRA pair (W.lora_a, W.lora_b): an "
                               "adapter file holds only those", t->o->method, e->gguf)
                   : add_target(sv, ad, e, &sv->tensors[j]);
    }
    if (rc == SLM_OK) {
        const json_t *rs = json_object_get(json_object_get(sv->config, "peft"), "use_rslora");
        ad->alpha = config_real(sv->config, "gguf", "adapter.lora.alpha", 0.0f);
        ad->rslora = json_is_true(rs);
        ad->dropout = config_real(sv->config, "peft", "lora_dropout", 0.0f);
        const char *paths[2] = {t->o->output, t->o->output_gguf};
        slm_output_params_t p;
        output_params(t, &p);
        for (int i = 0; rc == SLM_OK && i < 2; i++) {
            if (!paths[i])
                continue;
            rc = slm_adapter_save(ad, t->reg, paths[i], format_for(t, paths[i], i == 1), &p,
                                  t->err);
            if (rc == SLM_OK)
                slm__jobrt_wrote(t->rt, paths[i]);
        }
    }
    slm_adapter_free(ad);
    return rc;
}

int slm__train_save(slm__train_t *t)
{
    saver_t sv = {.t = t};
    slm_trainer_save_t save = {.struct_size = sizeof save, .ctx = &sv, .model = s_model,
                               .tensor = s_tensor, .adapter_config = s_adapter_config};
    if (t->err)
        t->err->code = SLM_OK;
    int rc = t->method->finish ? t->method->finish(t->mstate, &save, t->err)
                               : slm__fail(t->err, SLM_E_PLUGIN, NULL, -1, "train: method %s "
                                           "has no finish: it cannot say what to save",
                                           t->o->method);
    if (rc != SLM_OK && (!t->err || t->err->code == SLM_OK))
        rc = slm__fail(t->err, rc < 0 ? rc : SLM_E_PLUGIN, NULL, -1, "train: method %s: "
                       "finish failed (%s)", t->o->method, slm_strerror(rc < 0 ? rc : SLM_E_PLUGIN));
    if (rc == SLM_OK && sv.n)
        rc = save_adapter(&sv);
    if (rc == SLM_OK && !sv.n && !sv.model_done)
        rc = slm__fail(t->err, SLM_E_PLUGIN, NULL, -1, "train: method %s saved nothing",
                       t->o->method);
    for (size_t i = 0; i < sv.n; i++) {
        free(sv.tensors[i].param);
        free(sv.tensors[i].gguf);
    }
    free(sv.tensors);
    json_decref(sv.config);
    return rc;
}
