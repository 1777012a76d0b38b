/* The train job's checkpoints (slmops/checkpoint.h folders): the trainable tensors,
 * the optimizer's state, and where the run stands (step, data cursor, dropout
 * stream, curve), so that a resumed run continues bit for bit. */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <slmops/checkpoint.h>
#include <slmops/sched.h>

#include "internal/util.h"
#include "jobs/train.h"

#define PARAMS_FILE "params.safetensors"
#define OPTIM_FILE "optimizer.safetensors"
#define STATE_FILE "state.json"
#define PARAMS_FORMAT "slmops-train-params"
#define STATE_FORMAT "slmops-train-state"

const char *slm__train_checkpoint_root(const slm__train_t *t)
{
    return t->o->checkpoints ? t->o->checkpoints : t->o->checkpoints_default;
}

/* ---- trainable tensors: a safetensors layout of F32 tensors ---- */

static json_t *params_header(const slm__train_t *t, uint64_t *data_bytes)
{
    json_t *h = json_pack("{s:{s:s, s:s}}", "__metadata__", "format", PARAMS_FORMAT,
                          "format_version", "1");
    uint64_t off = 0;
    for (size_t i = 0; h && i < t->n_params; i++) {
        const slm__tparam_t *p = &t->params[i];
        uint64_t bytes = (uint64_t)slm__train_param_count(p) * 4;
        json_t *shape = json_array();
        for (int d = p->n_dims; d-- > 0;)
            json_array_append_new(shape, json_integer(p->ne[d]));
        json_object_set_new(h, p->name, json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32",
                                                  "shape", shape, "data_offsets",
                                                  (json_int_t)off, (json_int_t)(off + bytes)));
        off += bytes;
    }
    *data_bytes = off;
    return h;
}

static int params_blob(slm__train_t *t, char **out, size_t *n)
{
    uint64_t data = 0;
    json_t *h = params_header(t, &data);
    char *text = h ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(h);
    if (!text)
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    size_t hlen = (strlen(text) + 7) & ~(size_t)7;
    size_t total = 8 + hlen + (size_t)data;
    char *blob = malloc(total);
    if (!blob) {
        free(text);
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    }
    uint64_t le = hlen;
    for (int i = 0; i < 8; i++)
        blob[i] = (char)(le >> (8 * i));
    memset(blob + 8, ' ', hlen);
    memcpy(blob + 8, text, strlen(text));
    free(text);
    char *at = blob + 8 + hlen;
    for (size_t i = 0; i < t->n_params; i++) {
        const slm__tparam_t *p = &t->params[i];
        size_t bytes = slm__train_param_count(p) * 4;
        if (slm_buffer_get(slm__train_param_buf(p), 0, at, bytes) != SLM_OK) {
            free(blob);
            return slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: reading %s failed",
                             p->name);
        }
        at += bytes;
    }
    *out = blob;
    *n = total;
    return SLM_OK;
}

static int bad_file(slm__train_t *t, const char *dir, const char *file, const char *why,
                    const char *name)
{
    return slm__fail(t->err, SLM_E_FORMAT, dir, -1, "%s/%s: %s%s%s", dir, file, why,
                     name ? ": " : "", name ? name : "");
}

/* Every trainable tensor from the blob into its storage, after checking them all. */
static int params_load(slm__train_t *t, const char *dir, const char *blob, size_t n)
{
    uint64_t hlen = 0;
    for (int i = 0; n >= 8 && i < 8; i++)
        hlen |= (uint64_t)(unsigned char)blob[i] << (8 * i);
    if (n < 8 || hlen > n - 8)
        return bad_file(t, dir, PARAMS_FILE, "truncated header", NULL);
    json_t *h = json_loadb(blob + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, NULL);
    const json_t *meta = json_object_get(h, "__metadata__");
    const char *fmt = json_string_value(json_object_get(meta, "format"));
    int rc = fmt && strcmp(fmt, PARAMS_FORMAT) == 0 ? SLM_OK
             : bad_file(t, dir, PARAMS_FILE, "not a slmops parameter file", NULL);
    if (rc == SLM_OK && json_object_size(h) != t->n_params + 1)
        rc = slm__fail(t->err, SLM_E_INVALID, dir, -1, "%s/%s holds %zu tensors; this run "
                       "trains %zu (another method or settings?)", dir, PARAMS_FILE,
                       json_object_size(h) - 1, t->n_params);
    const char *data = blob + 8 + hlen;
    uint64_t avail = n - 8 - hlen;
    for (size_t i = 0; rc == SLM_OK && i < t->n_params; i++) {
        const slm__tparam_t *p = &t->params[i];
        const json_t *e = json_object_get(h, p->name), *off = json_object_get(e, "data_offsets");
        const json_t *shape = json_object_get(e, "shape");
        bool ok = json_is_string(json_object_get(e, "dtype")) &&
                  strcmp(json_string_value(json_object_get(e, "dtype")), "F32") == 0 &&
                  json_array_size(shape) == (size_t)p->n_dims && json_array_size(off) == 2;
        for (int d = 0; ok && d < p->n_dims; d++)
            ok = json_integer_value(json_array_get(shape, (size_t)(p->n_dims - 1 - d))) ==
                 p->ne[d];
        uint64_t a = ok ? (uint64_t)json_integer_value(json_array_get(off, 0)) : 0;
        uint64_t b = ok ? (uint64_t)json_integer_value(json_array_get(off, 1)) : 0;
        if (!ok || b < a || b > avail || b - a != slm__train_param_count(p) * 4)
            rc = slm__fail(t->err, SLM_E_INVALID, dir, -1, "%s/%s: tensor %s is missing or "
                           "not f32 of this run's shape", dir, PARAMS_FILE, p->name);
    }
    for (size_t i = 0; rc == SLM_OK && i < t->n_params; i++) {
        const slm__tparam_t *p = &t->params[i];
        const json_t *off = json_object_get(json_object_get(h, p->name), "data_offsets");
        uint64_t a = (uint64_t)json_integer_value(json_array_get(off, 0));
        if (slm_buffer_set(slm__train_param_buf(p), 0, data + a,
                           slm__train_param_count(p) * 4) != SLM_OK)
            rc = slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: setting %s failed", p->name);
    }
    json_decref(h);
    return rc;
}

/* ---- where the run stands ---- */

static json_t *u64_str(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return json_string(buf);
}

static bool str_u64(const json_t *v, uint64_t *out)
{
    const char *s = json_string_value(v);
    if (!s || !*s)
        return false;
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    *out = x;
    return *end == '\0';
}

/* What must match for a run to continue another's batches and updates. */
static json_t *setup_of(const slm__train_t *t)
{
    const slm__train_opts_t *o = t->o;
    json_t *mopts = json_loads(o->method_json ? o->method_json : "{}", 0, NULL);
    return json_pack("{s:s, s:o, s:i, s:i, s:i, s:o, s:I, s:I, s:I, s:I}", "method", o->method,
                     "method_options", mopts ? mopts : json_object(), "ctx", (int)o->ctx,
                     "batch", (int)o->batch, "accum", (int)o->accum, "seed", u64_str(o->seed),
                     "total_steps", (json_int_t)t->total_steps, "train_examples",
                     (json_int_t)slm_dataset_n_examples(t->train_ds), "train_tokens",
                     (json_int_t)slm_dataset_n_tokens(t->train_ds), "val_examples",
                     (json_int_t)(t->val_ds ? slm_dataset_n_examples(t->val_ds) : 0));
}

static char *state_text(const slm__train_t *t)
{
    double seconds = t->seconds_before + (slm__job_now() - t->t0);
    json_t *s = json_pack("{s:s, s:i, s:I, s:o, s:f, s:{s:o, s:I, s:I}, s:o, s:o, s:O, s:O, "
                          "s:o}",
                          "format", STATE_FORMAT, "format_version", 1, "step",
                          (json_int_t)t->step, "tokens", u64_str(t->tokens), "seconds", seconds,
                          "cursor", "seed", u64_str(t->cursor.seed), "epoch",
                          (json_int_t)t->cursor.epoch, "next", (json_int_t)t->cursor.next,
                          "dropout_rng", u64_str(t->drop_rng), "setup", setup_of(t), "curve",
                          t->curve, "evals", t->evals, "val_loss0", slm__json_num(t->val_loss0));
    char *text = s ? json_dumps(s, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(s);
    return text;
}

int slm__train_checkpoint_save(slm__train_t *t)
{
    if (t->rank != 0)
        return SLM_OK;   /* every rank holds the same state: rank 0 writes it */
    slm_checkpoint_writer_t *w = NULL;
    char *params = NULL, *state = NULL, *path = NULL;
    void *optim = NULL;
    size_t n_params = 0, n_optim = 0;
    int rc = slm_checkpoint_begin(slm__train_checkpoint_root(t), (uint64_t)t->step, &w, t->err);
    if (rc == SLM_OK)
        rc = params_blob(t, &params, &n_params);
    if (rc == SLM_OK)
        rc = slm_optim_save_mem(t->tg.optim, &optim, &n_optim, t->err);
    if (rc == SLM_OK && !(state = state_text(t)))
        rc = slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    if (rc == SLM_OK && !(rc = slm_checkpoint_put(w, PARAMS_FILE, params, n_params, t->err)) &&
        !(rc = slm_checkpoint_put(w, OPTIM_FILE, optim, n_optim, t->err)) &&
        !(rc = slm_checkpoint_put(w, STATE_FILE, state, strlen(state), t->err))) {
        rc = slm_checkpoint_commit(w, t->o->keep, &path, t->err);
        w = NULL;
    }
    slm_checkpoint_abort(w);
    free(params);
    free(optim);
    free(state);
    if (rc != SLM_OK)
        return rc;
    free(t->last_checkpoint);
    t->last_checkpoint = path;
    t->n_checkpoints++;
    slm_log(SLM_LOG_INFO, "train", "step %lld: checkpoint %s", (long long)t->step, path);
    return SLM_OK;
}

/* The setting of the checkpoint's run that differs from this run's, or NULL. */
static const char *setup_differs(const json_t *saved, const json_t *now)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)now, key, v) {
        if (!json_equal(v, json_object_get(saved, key)))
            return key;
    }
    return NULL;
}

static int state_load(slm__train_t *t, const char *dir, const char *text, size_t n)
{
    json_error_t je;
    json_t *s = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    const char *fmt = json_string_value(json_object_get(s, "format"));
    if (!s || !fmt || strcmp(fmt, STATE_FORMAT) != 0) {
        json_decref(s);
        return bad_file(t, dir, STATE_FILE, "not a slmops training state", NULL);
    }
    json_t *now = setup_of(t);
    const char *diff = now ? setup_differs(json_object_get(s, "setup"), now) : "setup";
    int rc = SLM_OK;
    if (diff) {
        char *saved = json_dumps(json_object_get(json_object_get(s, "setup"), diff),
                                 JSON_ENCODE_ANY | JSON_COMPACT);
        char *mine = json_dumps(json_object_get(now, diff), JSON_ENCODE_ANY | JSON_COMPACT);
        rc = slm__fail(t->err, SLM_E_INVALID, dir, -1, "%s was written by a run whose %s was "
                       "%s; this run's is %s (resume with the same method, data and "
                       "settings)", dir, diff, saved ? saved : "?", mine ? mine : "?");
        free(saved);
        free(mine);
    }
    json_decref(now);
    const json_t *cur = json_object_get(s, "cursor");
    json_int_t step = json_integer_value(json_object_get(s, "step"));
    if (rc == SLM_OK &&
        (!json_is_integer(json_object_get(s, "step")) || step < 0 ||
         !str_u64(json_object_get(s, "tokens"), &t->tokens) ||
         !str_u64(json_object_get(cur, "seed"), &t->cursor.seed) ||
         !json_is_integer(json_object_get(cur, "epoch")) ||
         !json_is_integer(json_object_get(cur, "next")) ||
         !str_u64(json_object_get(s, "dropout_rng"), &t->drop_rng) ||
         !json_is_array(json_object_get(s, "curve")) || !json_is_array(json_object_get(s, "evals"))))
        rc = bad_file(t, dir, STATE_FILE, "a field is missing or of the wrong type", NULL);
    if (rc == SLM_OK) {
        t->step = t->start_step = (int64_t)step;
        t->cursor.epoch = (uint64_t)json_integer_value(json_object_get(cur, "epoch"));
        t->cursor.next = (uint64_t)json_integer_value(json_object_get(cur, "next"));
        t->seconds_before = json_number_value(json_object_get(s, "seconds"));
        json_decref(t->curve);
        json_decref(t->evals);
        t->curve = json_incref(json_object_get(s, "curve"));
        t->evals = json_incref(json_object_get(s, "evals"));
        const json_t *v0 = json_object_get(s, "val_loss0");
        t->val_loss0 = json_is_number(v0) ? json_number_value(v0) : NAN;
        size_t ne = json_array_size(t->evals);
        const json_t *last = json_object_get(json_array_get(t->evals, ne ? ne - 1 : 0),
                                             "val_loss");
        t->val_loss = json_is_number(last) ? json_number_value(last) : NAN;
    }
    json_decref(s);
    return rc;
}

/* A folder holding checkpoint files but no manifest: one whose manifest was lost
 * (it is written last, so never a complete checkpoint). */
static int manifest_missing(slm__train_t *t, const char *dir)
{
    static const char *const files[] = {STATE_FILE, PARAMS_FILE, OPTIM_FILE};
    char path[1200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, SLM_CHECKPOINT_MANIFEST);
    if (stat(path, &st) == 0)
        return SLM_OK;
    for (size_t i = 0; i < SLM__ARRAY_LEN(files); i++) {
        char f[1200];
        snprintf(f, sizeof f, "%s/%s", dir, files[i]);
        if (stat(f, &st) == 0)
            return slm__fail(t->err, SLM_E_FORMAT, path, -1, "%s: missing: %s is no complete "
                             "checkpoint", path, dir);
    }
    return SLM_OK;
}

int slm__train_checkpoint_load(slm__train_t *t, const char *dir)
{
    char *path = NULL, *state = NULL, *params = NULL, *optim = NULL;
    size_t n_state = 0, n_params = 0, n_optim = 0;
    int rc = manifest_missing(t, dir);
    if (rc == SLM_OK)
        rc = slm_checkpoint_find(dir, &path, t->err);
    if (rc == SLM_OK && (rc = slm_checkpoint_read(path, STATE_FILE, &state, &n_state, t->err)) ==
                            SLM_OK)
        rc = state_load(t, path, state, n_state);
    if (rc == SLM_OK &&
        (rc = slm_checkpoint_read(path, PARAMS_FILE, &params, &n_params, t->err)) == SLM_OK)
        rc = params_load(t, path, params, n_params);
    if (rc == SLM_OK &&
        (rc = slm_checkpoint_read(path, OPTIM_FILE, &optim, &n_optim, t->err)) == SLM_OK) {
        char name[1200];
        snprintf(name, sizeof name, "%s/%s", path, OPTIM_FILE);
        rc = slm_optim_load_mem(t->tg.optim, optim, n_optim, name, t->err);
    }
    if (rc == SLM_OK && slm_optim_n_steps(t->tg.optim) != t->step)
        rc = slm__fail(t->err, SLM_E_FORMAT, path, -1, "%s: the optimizer is at step %lld and "
                       "the run at step %lld", path, (long long)slm_optim_n_steps(t->tg.optim),
                       (long long)t->step);
    free(state);
    free(params);
    free(optim);
    if (rc == SLM_OK) {
        t->resumed_from = path;
        slm_log(SLM_LOG_INFO, "train", "resuming at step %lld from %s", (long long)t->step,
                path);
    } else {
        free(path);
    }
    return rc;
}
