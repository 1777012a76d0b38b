/* The host side of a trainer plugin's prepare (plugin-trainer.h, version 2): the
 * base model it reads, the plan it fills (trainable weights, new parameters,
 * adapters, frozen types) and the seeded random streams its initial values use. */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/jobs.h>
#include <slmops/model-file.h>
#include <slmops/sched.h>
#include <slmops/types.h>

#include "internal/util.h"
#include "jobs/jobs.h"
#include "jobs/train.h"

/* Elements one new parameter may hold (16 GiB of f32). */
#define MAX_PARAM_ELEMENTS (1ll << 32)

static int planfail(slm__train_t *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int planfail(slm__train_t *t, int code, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return slm__fail(t->err, code, NULL, -1, "train: method %s: %s", t->o->method, msg);
}

/* Grow an array of `size`-byte elements to hold one more. */
static bool grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? 2 * *cap : 16;
    void *p = realloc(*arr, ncap * size);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* ---- the base model, as the plugin sees it ---- */

static const slm_trainer_tensor_info_t *m_tensor(void *ctx, size_t i)
{
    slm__train_t *t = ctx;
    return i < t->n_infos ? &t->infos[i] : NULL;
}

static const slm_trainer_tensor_info_t *m_find(void *ctx, const char *name)
{
    slm__train_t *t = ctx;
    for (size_t i = 0; name && i < t->n_infos; i++)
        if (strcmp(t->infos[i].name, name) == 0)
            return &t->infos[i];
    return NULL;
}

static int m_read_rows(void *ctx, const char *name, int64_t row0, int64_t n_rows, float *dst)
{
    slm__train_t *t = ctx;
    slm_model_tensor_t mt = {.struct_size = sizeof mt};
    const slm_model_file_t *mf = slm_model_container(t->model);
    if (!name || !dst || slm_model_file_find_tensor(mf, name, &mt) < 0)
        return planfail(t, SLM_E_NOT_FOUND, "read_rows: no tensor '%s' in the base",
                        name ? name : "(null)");
    int64_t rows = mt.ne[1] * mt.ne[2] * mt.ne[3];
    if (row0 < 0 || n_rows < 0 || row0 > rows || n_rows > rows - row0)
        return planfail(t, SLM_E_INVALID, "read_rows: rows %lld..%lld of %s, which has %lld",
                        (long long)row0, (long long)(row0 + n_rows), name, (long long)rows);
    size_t row = slm_type_row_size(mt.type, mt.ne[0]);
    return slm__jobs_convert(t->reg, mt.type, (const char *)mt.data + (size_t)row0 * row,
                             SLM_TYPE_F32, dst, n_rows, mt.ne[0], 1, t->err);
}

static int m_hparam(void *ctx, const char *key, double *value)
{
    slm__train_t *t = ctx;
    char full[160];
    snprintf(full, sizeof full, "%s.%s", slm_model_arch(t->model), key ? key : "");
    const slm_model_file_t *mf = slm_model_container(t->model);
    int64_t i;
    if (slm_model_file_get_int(mf, full, &i, NULL) >= 0) {
        *value = (double)i;
        return SLM_OK;
    }
    return slm_model_file_get_float(mf, full, value, NULL) >= 0 ? SLM_OK : SLM_E_NOT_FOUND;
}

static int build_infos(slm__train_t *t)
{
    const slm_model_file_t *mf = slm_model_container(t->model);
    size_t n = slm_model_file_n_tensors(mf);
    t->infos = calloc(n ? n : 1, sizeof *t->infos);
    t->hf_names = calloc(n ? n : 1, sizeof *t->hf_names);
    if (!t->infos || !t->hf_names)
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    for (size_t i = 0; i < n; i++) {
        slm_model_tensor_t mt = {.struct_size = sizeof mt};
        slm_model_file_tensor(mf, i, &mt);
        slm_trainer_tensor_info_t *info = &t->infos[t->n_infos++];
        *info = (slm_trainer_tensor_info_t){.struct_size = sizeof *info, .name = mt.name,
                                            .type = mt.type, .n_dims = mt.n_dims};
        memcpy(info->ne, mt.ne, sizeof info->ne);
        t->hf_names[i] = slm__train_hf_name(slm_model_arch(t->model), mt.name, &info->layer);
        info->hf_name = t->hf_names[i];
    }
    return SLM_OK;
}

/* ---- the plan ---- */

slm__tparam_t *slm__train_param(const slm__train_t *t, const char *name)
{
    for (size_t i = 0; name && i < t->n_params; i++)
        if (strcmp(t->params[i].name, name) == 0)
            return &t->params[i];
    return NULL;
}

size_t slm__train_param_count(const slm__tparam_t *p)
{
    return (size_t)(p->ne[0] * p->ne[1] * p->ne[2] * p->ne[3]);
}

slm_buffer_t *slm__train_param_buf(const slm__tparam_t *p)
{
    return p->base ? p->base->buf : p->w.buf;
}

static slm__tparam_t *add_param(slm__train_t *t, const char *name)
{
    if (!grow((void **)&t->params, &t->cap_params, t->n_params, sizeof *t->params))
        return NULL;
    slm__tparam_t *p = &t->params[t->n_params];
    memset(p, 0, sizeof *p);
    if (!(p->name = strdup(name)))
        return NULL;
    t->n_params++;
    return p;
}

static int p_train_base(void *ctx, const char *name, uint32_t flags)
{
    slm__train_t *t = ctx;
    const slm_trainer_tensor_info_t *info = m_find(t, name);
    slm__weight_t *w = (slm__weight_t *)slm__model_weight(t->model, name);
    if (!info || !w)
        return planfail(t, SLM_E_NOT_FOUND, "train_base: '%s' is no weight of the base",
                        name ? name : "(null)");
    if (slm__train_param(t, name))
        return planfail(t, SLM_E_INVALID, "train_base: '%s' is already trainable", name);
    slm__tparam_t *p = add_param(t, name);
    if (!p)
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    p->n_dims = info->n_dims;
    memcpy(p->ne, w->ne, sizeof p->ne);
    p->flags = flags;
    p->base = w;
    return SLM_OK;
}

static int p_freeze_as(void *ctx, const char *name, const char *type)
{
    slm__train_t *t = ctx;
    if (!m_find(t, name) || !slm__model_weight(t->model, name))
        return planfail(t, SLM_E_NOT_FOUND, "freeze_as: '%s' is no weight of the base",
                        name ? name : "(null)");
    int32_t id = type ? slm_type_from_name(type) : -1;
    if (id < 0 && type && slm_quantize_type_lookup(t->reg, type, &id, NULL) != SLM_OK)
        id = -1;
    if (id < 0 || !slm_type_get_traits(id))
        return planfail(t, SLM_E_INVALID, "freeze_as: '%s' is no type this installation "
                        "has (f16, q8_0, nf4, ...: see `slmops plugins`)", type ? type : "");
    if (!grow((void **)&t->freezes, &t->cap_freezes, t->n_freezes, sizeof *t->freezes))
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    slm__tfreeze_t *f = &t->freezes[t->n_freezes];
    if (!(f->name = strdup(name)))
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    f->type = id;
    t->n_freezes++;
    return SLM_OK;
}

static int p_new_param(void *ctx, const char *name, int32_t n_dims, const int64_t *ne,
                       uint32_t flags, float **init)
{
    slm__train_t *t = ctx;
    if (!name || !*name || strlen(name) >= 60 || !ne || !init)
        return planfail(t, SLM_E_INVALID, "new_param: a name of 1 to 59 bytes, a shape and "
                        "an init pointer are needed");
    if (slm__train_param(t, name) || m_find(t, name))
        return planfail(t, SLM_E_INVALID, "new_param: the name '%s' is taken", name);
    if (n_dims < 1 || n_dims > 4)
        return planfail(t, SLM_E_INVALID, "new_param: %s has %d dimensions (1 to 4)", name,
                        (int)n_dims);
    int64_t full[4] = {1, 1, 1, 1}, count = 1;
    for (int i = 0; i < n_dims; i++) {
        if (ne[i] < 1 || ne[i] > MAX_PARAM_ELEMENTS / count)
            return planfail(t, SLM_E_INVALID, "new_param: %s has a bad shape", name);
        full[i] = ne[i];
        count *= ne[i];
    }
    slm__tparam_t *p = add_param(t, name);
    if (!p || !(p->init = calloc((size_t)count, sizeof *p->init)))
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    p->n_dims = n_dims;
    memcpy(p->ne, full, sizeof p->ne);
    p->flags = flags;
    *init = p->init;
    return SLM_OK;
}

static int p_add_adapter(void *ctx, const slm_trainer_adapter_t *ad)
{
    slm__train_t *t = ctx;
    if (!ad || !ad->target || !ad->a || !ad->b)
        return planfail(t, SLM_E_INVALID, "add_adapter: target, a and b are needed");
    const slm__weight_t *w = slm__model_weight(t->model, ad->target);
    slm__tparam_t *a = slm__train_param(t, ad->a), *b = slm__train_param(t, ad->b);
    if (!w || w->ne[2] != 1 || w->ne[3] != 1 || w->ne[1] < 2)
        return planfail(t, SLM_E_INVALID, "add_adapter: '%s' is no weight matrix of the base",
                        ad->target);
    int64_t in = w->ne[0], out = w->ne[1], r = ad->rank;
    if (!a || !b || a->base || b->base || r < 1 || a->ne[0] != in || a->ne[1] != r ||
        b->ne[0] != r || b->ne[1] != out || a->n_dims != 2 || b->n_dims != 2)
        return planfail(t, SLM_E_INVALID, "add_adapter: on %s, A (%s) must be a new [%lld, %d] "
                        "parameter and B (%s) a new [%d, %lld] one", ad->target, ad->a,
                        (long long)in, (int)r, ad->b, (int)r, (long long)out);
    if (!isfinite(ad->scale) || !(ad->dropout >= 0.0f && ad->dropout < 1.0f))
        return planfail(t, SLM_E_INVALID, "add_adapter: on %s, the scale must be finite and "
                        "the dropout in [0, 1)", ad->target);
    if (!grow((void **)&t->ads, &t->cap_ads, t->n_ads, sizeof *t->ads))
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    slm__tadapter_t *x = &t->ads[t->n_ads];
    if (!(x->target = strdup(ad->target)))
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    x->a = (size_t)(a - t->params);
    x->b = (size_t)(b - t->params);
    x->rank = ad->rank;
    x->scale = ad->scale;
    x->dropout = ad->dropout;
    t->n_ads++;
    return SLM_OK;
}

/* The stream a fill of dst draws from: the parameter whose initial buffer holds it
 * (its own stream: its values do not depend on what else the method draws), or
 * the job's stream for anything else. */
static uint64_t *stream_for(slm__train_t *t, const float *dst, size_t n)
{
    for (size_t i = 0; i < t->n_params; i++) {
        slm__tparam_t *p = &t->params[i];
        if (!p->init || dst < p->init || dst + n > p->init + slm__train_param_count(p))
            continue;
        if (!p->stream_started) {
            p->stream = slm__train_rng_stream(t->o->seed, p->name);
            p->stream_started = true;
        }
        return &p->stream;
    }
    return &t->stream;
}

static int p_uniform(void *ctx, float *dst, size_t n, float lo, float hi)
{
    slm__train_t *t = ctx;
    if (!dst || !isfinite(lo) || !isfinite(hi) || hi < lo)
        return planfail(t, SLM_E_INVALID, "uniform: needs a buffer and finite lo <= hi");
    uint64_t *s = stream_for(t, dst, n);
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)((double)lo + ((double)hi - (double)lo) * slm__train_rng_unit(s));
    return SLM_OK;
}

static int p_normal(void *ctx, float *dst, size_t n, float mean, float std)
{
    slm__train_t *t = ctx;
    if (!dst || !isfinite(mean) || !isfinite(std) || std < 0)
        return planfail(t, SLM_E_INVALID, "normal: needs a buffer, a finite mean and std >= 0");
    uint64_t *s = stream_for(t, dst, n);
    for (size_t i = 0; i < n; i += 2) {   /* Box-Muller: two values per pair of draws */
        double u1 = 1.0 - slm__train_rng_unit(s), u2 = slm__train_rng_unit(s);
        double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
        dst[i] = (float)(mean + std * r * cos(a));
        if (i + 1 < n)
            dst[i + 1] = (float)(mean + std * r * sin(a));
    }
    return SLM_OK;
}

int slm__train_plan(slm__train_t *t)
{
    int rc = build_infos(t);
    if (rc)
        return rc;
    t->method = slm__trainer_method(t->reg, t->o->method, &t->plugin, t->err);
    if (!t->method)
        return t->err && t->err->code ? t->err->code : SLM_E_NOT_FOUND;
    if (!(t->mopts = slm__trainer_options_new(t->method, t->o->method_json, t->err)))
        return t->err && t->err->code ? t->err->code : SLM_E_INVALID;
    t->stream = slm__train_rng_stream(t->o->seed, "");
    slm_trainer_model_t model = {
        .struct_size = sizeof model, .ctx = t, .arch = slm_model_arch(t->model),
        .n_tensors = t->n_infos, .tensor = m_tensor, .find = m_find,
        .read_rows = m_read_rows, .hparam = m_hparam,
    };
    slm_trainer_plan_t plan = {
        .struct_size = sizeof plan, .ctx = t, .train_base = p_train_base,
        .freeze_as = p_freeze_as, .new_param = p_new_param, .add_adapter = p_add_adapter,
        .uniform = p_uniform, .normal = p_normal,
    };
    if (t->err)
        t->err->code = SLM_OK;
    rc = t->method->prepare(&model, slm__trainer_options_table(t->mopts), &plan, &t->mstate,
                            t->err);
    if (rc != SLM_OK) {
        if (!t->err || t->err->code == SLM_OK || !t->err->message[0])
            return planfail(t, rc < 0 ? rc : SLM_E_PLUGIN, "prepare failed (%s)",
                            slm_strerror(rc < 0 ? rc : SLM_E_PLUGIN));
        return rc < 0 ? rc : SLM_E_PLUGIN;
    }
    t->mstate_set = true;
    if (t->n_params == 0)
        return planfail(t, SLM_E_INVALID, "it planned nothing to train");
    return SLM_OK;
}

/* ---- putting the plan in place ---- */

/* Replace w's storage by `type` converted from the file's bytes. */
static int restore_as(slm__train_t *t, slm__weight_t *w, int32_t type)
{
    slm_model_tensor_t mt = {.struct_size = sizeof mt};
    const slm_model_file_t *mf = slm_model_container(t->model);
    if (slm_model_file_find_tensor(mf, w->name, &mt) < 0)
        return planfail(t, SLM_E_NOT_FOUND, "%s is not in the base file", w->name);
    int64_t rows = mt.ne[1] * mt.ne[2] * mt.ne[3];
    size_t bytes = (size_t)rows * slm_type_row_size(type, mt.ne[0]);
    void *host = malloc(bytes ? bytes : 1);
    if (!host)
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: %s: out of memory", w->name);
    int rc = slm__jobs_convert(t->reg, mt.type, mt.data, type, host, rows, mt.ne[0],
                               slm__jobs_threads(t->o->threads), t->err);
    slm_buffer_t *buf = rc == SLM_OK ? slm_buffer_new(slm_model_sched(t->model), bytes, t->err)
                                     : NULL;
    if (rc == SLM_OK && !buf)
        rc = t->err && t->err->code ? t->err->code : SLM_E_DEVICE;
    if (rc == SLM_OK && slm_buffer_set(buf, 0, host, bytes) != SLM_OK)
        rc = slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: %s: setting it failed", w->name);
    free(host);
    if (rc != SLM_OK) {
        slm_buffer_free(buf);
        return rc;
    }
    slm_buffer_free(w->buf);
    w->buf = buf;
    w->type = type;
    return SLM_OK;
}

/* Frozen weights the method wants in another type: quantized once, here. A row
 * the type's block does not divide keeps a type that fits (as quantize does). */
static int place_freezes(slm__train_t *t)
{
    for (size_t i = 0; i < t->n_freezes; i++) {
        slm__tfreeze_t *f = &t->freezes[i];
        slm__weight_t *w = (slm__weight_t *)slm__model_weight(t->model, f->name);
        if (slm__train_param(t, f->name))
            return planfail(t, SLM_E_INVALID, "%s both trains and is frozen as %s", f->name,
                            slm_type_name(f->type));
        char why[160] = "";
        int32_t type = slm__jobs_fit_type(t->reg, f->type, w->ne[0], why, sizeof why);
        if (type != f->type)
            slm_log(SLM_LOG_INFO, "train", "%s stays %s in memory, not %s: %s", f->name,
                    slm_type_name(type), slm_type_name(f->type), why);
        if (type == w->type)
            continue;
        int rc = restore_as(t, w, type);
        if (rc)
            return rc;
    }
    return SLM_OK;
}

static int place_params(slm__train_t *t)
{
    slm_sched_t *s = slm_model_sched(t->model);
    for (size_t i = 0; i < t->n_params; i++) {
        slm__tparam_t *p = &t->params[i];
        int rc;
        if (p->base) {
            /* f32 master weights, in a buffer of their own (the file's mapping is
             * read-only); the originals stay in the file for the save. */
            if ((rc = restore_as(t, p->base, SLM_TYPE_F32)) ||
                (rc = slm__adapters_train_base(t->attach, p->base, t->err)))
                return rc;
            continue;
        }
        size_t bytes = slm__train_param_count(p) * sizeof(float);
        p->w = (slm__weight_t){.name = p->name, .type = SLM_TYPE_F32};
        memcpy(p->w.ne, p->ne, sizeof p->ne);
        if (!(p->w.buf = slm_buffer_new(s, bytes, t->err)))
            return t->err && t->err->code ? t->err->code : SLM_E_DEVICE;
        if (slm_buffer_set(p->w.buf, 0, p->init, bytes) != SLM_OK)
            return slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: setting %s failed",
                             p->name);
        free(p->init);
        p->init = NULL;
    }
    return SLM_OK;
}

/* A frozen adapter's factors, f32 on the device, attached with their scale. */
static int attach_frozen(slm__train_t *t, const slm_adapter_t *ad, float user_scale,
                         uint32_t id)
{
    slm_sched_t *s = slm_model_sched(t->model);
    for (size_t i = 0; i < slm_adapter_n_targets(ad); i++) {
        slm_adapter_target_t at = {.struct_size = sizeof at};
        slm_adapter_target(ad, i, &at);
        const slm__weight_t *w = slm__model_weight(t->model, at.name);
        slm_buffer_t *ba = slm_buffer_new(s, (uint64_t)at.rank * at.n_in * 4, t->err);
        t->frozen_bufs[t->n_frozen_bufs++] = ba;
        slm_buffer_t *bb = ba ? slm_buffer_new(s, (uint64_t)at.rank * at.n_out * 4, t->err)
                              : NULL;
        t->frozen_bufs[t->n_frozen_bufs++] = bb;
        if (!bb)
            return t->err && t->err->code ? t->err->code : SLM_E_DEVICE;
        slm_buffer_set(ba, 0, at.a, (uint64_t)at.rank * at.n_in * 4);
        slm_buffer_set(bb, 0, at.b, (uint64_t)at.rank * at.n_out * 4);
        slm__lora_t l = {
            .a = {.name = at.name, .type = SLM_TYPE_F32, .ne = {at.n_in, at.rank, 1, 1},
                  .buf = ba},
            .b = {.name = at.name, .type = SLM_TYPE_F32, .ne = {at.rank, at.n_out, 1, 1},
                  .buf = bb},
            .scale = slm_adapter_scale(ad, i, user_scale), .adapter = id,
        };
        int rc = slm__adapters_attach(t->attach, w, &l, t->err);
        if (rc)
            return rc;
    }
    return SLM_OK;
}

static int place_frozen_adapters(slm__train_t *t)
{
    const slm__train_opts_t *o = t->o;
    if (!o->n_adapters)
        return SLM_OK;
    size_t n_bufs = 0;
    if (!(t->frozen = calloc(o->n_adapters, sizeof *t->frozen)))
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    for (size_t i = 0; i < o->n_adapters; i++) {
        int rc = slm_adapter_load(t->reg, o->adapters[i], slm_model_container(t->model),
                                  &t->frozen[i], t->err);
        if (rc)
            return rc;
        n_bufs += 2 * slm_adapter_n_targets(t->frozen[i]);
    }
    if (!(t->frozen_bufs = calloc(n_bufs ? n_bufs : 1, sizeof *t->frozen_bufs)))
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    for (size_t i = 0; i < o->n_adapters; i++) {
        int rc = attach_frozen(t, t->frozen[i], o->adapter_scales[i], (uint32_t)(i + 1));
        if (rc)
            return rc;
    }
    return SLM_OK;
}

int slm__train_place(slm__train_t *t)
{
    int rc;
    if (!(t->attach = slm__adapters_new(t->model, t->err)))
        return t->err && t->err->code ? t->err->code : SLM_E_NOMEM;
    if ((rc = place_freezes(t)) || (rc = place_params(t)) || (rc = place_frozen_adapters(t)))
        return rc;
    for (size_t i = 0; i < t->n_ads; i++) {
        const slm__tadapter_t *x = &t->ads[i];
        slm__lora_t l = {.a = t->params[x->a].w, .b = t->params[x->b].w, .scale = x->scale,
                         .dropout = x->dropout, .trainable = true};
        rc = slm__adapters_attach(t->attach, slm__model_weight(t->model, x->target), &l, t->err);
        if (rc)
            return rc;
    }
    return SLM_OK;
}

void slm__train_plan_free(slm__train_t *t)
{
    if (t->method && t->method->release && t->mstate_set)
        t->method->release(t->mstate);
    slm__trainer_options_free(t->mopts);
    slm__adapters_free(t->attach);
    for (size_t i = 0; i < t->n_params; i++) {
        free(t->params[i].name);
        free(t->params[i].init);
        slm_buffer_free(t->params[i].w.buf);
    }
    free(t->params);
    for (size_t i = 0; i < t->n_ads; i++)
        free(t->ads[i].target);
    free(t->ads);
    for (size_t i = 0; i < t->n_freezes; i++)
        free(t->freezes[i].name);
    free(t->freezes);
    for (size_t i = 0; i < t->n_frozen_bufs; i++)
        slm_buffer_free(t->frozen_bufs[i]);
    free(t->frozen_bufs);
    for (size_t i = 0; t->frozen && i < t->o->n_adapters; i++)
        slm_adapter_free(t->frozen[i]);
    free(t->frozen);
    for (size_t i = 0; i < t->n_infos; i++)
        free(t->hf_names[i]);
    free(t->hf_names);
    free(t->infos);
}
