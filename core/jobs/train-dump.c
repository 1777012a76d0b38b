/* The train job's gradient dump (option dump_grads): the first batch, its loss and
 * every trainable tensor with its gradient, in one safetensors file, for oracles. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/graph.h>
#include <slmops/output.h>
#include <slmops/sched.h>

#include "internal/util.h"
#include "jobs/train.h"
#include "train/optim-internal.h"

typedef struct entry {
    char name[128];
    const char *dtype;
    int n_dims;
    int64_t ne[2];
    const void *data;
    size_t bytes;
} entry_t;

static json_t *header(const entry_t *e, size_t n, json_t *meta)
{
    json_t *h = json_object();
    json_object_set_new(h, "__metadata__", meta);
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *shape = json_array();
        for (int d = e[i].n_dims; d-- > 0;)
            json_array_append_new(shape, json_integer(e[i].ne[d]));
        json_object_set_new(h, e[i].name, json_pack("{s:s, s:o, s:[I, I]}", "dtype", e[i].dtype,
                                                    "shape", shape, "data_offsets",
                                                    (json_int_t)off,
                                                    (json_int_t)(off + e[i].bytes)));
        off += e[i].bytes;
    }
    return h;
}

static int write_file(slm__train_t *t, const entry_t *e, size_t n, json_t *meta)
{
    const char *path = t->o->dump_grads;
    json_t *h = header(e, n, meta);
    char *text = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    if (!text)
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    slm_output_params_t p;
    slm_output_params_init(&p);
    p.inputs = t->rt->inputs;
    p.n_inputs = t->rt->n_inputs;
    slm_output_t *out = NULL;
    int rc = slm_output_prepare(path, &p, &out, t->err);
    FILE *f = rc == SLM_OK ? fopen(slm_output_path(out), "wb") : NULL;
    if (rc == SLM_OK && !f)
        rc = slm__fail(t->err, SLM_E_IO, path, -1, "%s: cannot write: %m", path);
    if (f) {
        size_t hlen = (strlen(text) + 7) & ~(size_t)7;
        unsigned char le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
        bool ok = fwrite(le, 1, 8, f) == 8 && fputs(text, f) >= 0;
        for (size_t k = strlen(text); ok && k < hlen; k++)
            ok = fputc(' ', f) != EOF;
        for (size_t i = 0; ok && i < n; i++)
            ok = fwrite(e[i].data, 1, e[i].bytes, f) == e[i].bytes;
        if (fclose(f) != 0 || !ok)
            rc = slm__fail(t->err, SLM_E_IO, path, -1, "%s: write failed: %m", path);
    }
    free(text);
    if (rc == SLM_OK)
        rc = slm_output_commit(out, t->err);
    else
        slm_output_abort(out);
    if (rc == SLM_OK)
        slm__jobrt_wrote(t->rt, path);
    return rc;
}

static json_t *adapters_meta(const slm__train_t *t)
{
    json_t *a = json_array();
    for (size_t i = 0; i < t->n_ads; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:i, s:f, s:f}", "target",
                                           t->ads[i].target, "a", t->params[t->ads[i].a].name,
                                           "b", t->params[t->ads[i].b].name, "rank",
                                           (int)t->ads[i].rank, "scale", (double)t->ads[i].scale,
                                           "dropout", (double)t->ads[i].dropout));
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    json_t *s = json_string(text ? text : "[]");
    free(text);
    return s;
}

/* Values of every trainable tensor and of its gradient, read from the graph. */
static int read_params(slm__train_t *t, entry_t *e, float **bufs)
{
    for (size_t i = 0; i < t->n_params; i++) {
        const slm__tparam_t *p = &t->params[i];
        size_t n = slm__train_param_count(p);
        slm_tensor_t *leaf = slm_graph_find(t->tg.g, p->name);
        slm_tensor_t *grad = leaf ? slm__optim_grad_of(t->tg.optim, leaf) : NULL;
        if (!grad)
            return slm__fail(t->err, SLM_E_STATE, NULL, -1, "train: no gradient of %s",
                             p->name);
        if (!(bufs[2 * i] = malloc(n * 4)) || !(bufs[2 * i + 1] = malloc(n * 4)))
            return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
        if (slm_buffer_get(slm__train_param_buf(p), 0, bufs[2 * i], n * 4) != SLM_OK ||
            slm_tensor_get_data(grad, bufs[2 * i + 1], 0, n * 4) != SLM_OK)
            return slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: reading %s failed",
                             p->name);
        int64_t rows = (int64_t)n / p->ne[0];
        for (int k = 0; k < 2; k++) {
            entry_t *x = &e[2 * i + (size_t)k];
            *x = (entry_t){.dtype = "F32", .n_dims = rows > 1 ? 2 : 1, .ne = {p->ne[0], rows},
                           .data = bufs[2 * i + (size_t)k], .bytes = n * 4};
            snprintf(x->name, sizeof x->name, "%s%s", p->name, k ? ".grad" : "");
        }
    }
    return SLM_OK;
}

int slm__train_dump_grads(slm__train_t *t)
{
    const slm__train_opts_t *o = t->o;
    slm_dataset_cursor_t cur = t->cursor;
    slm_dataset_batch_t b;
    int rc = slm_dataset_next_batch(t->train_ds, &cur, o->batch, true, &b, t->err);
    if (rc)
        return rc;
    double loss = 0.0;
    rc = slm__train_micro(t, &b, 1.0f, &loss, NULL);
    size_t n = 2 * t->n_params + 3;
    entry_t *e = calloc(n, sizeof *e);
    float **bufs = calloc(2 * t->n_params + 1, sizeof *bufs);
    if (rc == SLM_OK && (!e || !bufs))
        rc = slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    if (rc == SLM_OK)
        rc = read_params(t, e, bufs);
    if (rc == SLM_OK) {
        const int32_t *rows[3] = {b.tokens, b.targets, b.doc};
        const char *names[3] = {"batch.tokens", "batch.targets", "batch.doc"};
        size_t bytes = (size_t)b.n_rows * (size_t)b.n_ctx * 4;
        for (int k = 0; k < 3; k++) {
            entry_t *x = &e[2 * t->n_params + (size_t)k];
            *x = (entry_t){.dtype = "I32", .n_dims = 2, .ne = {b.n_ctx, b.n_rows},
                           .data = rows[k], .bytes = bytes};
            snprintf(x->name, sizeof x->name, "%s", names[k]);
        }
        char lbuf[40], nbuf[24];
        snprintf(lbuf, sizeof lbuf, "%.9g", loss);
        snprintf(nbuf, sizeof nbuf, "%llu", (unsigned long long)b.n_scored);
        json_t *meta = json_pack("{s:s, s:s, s:s, s:s, s:o}", "format", "slmops-grad-dump",
                                 "method", o->method, "loss", lbuf, "n_scored", nbuf,
                                 "adapters", adapters_meta(t));
        rc = write_file(t, e, n, meta);
    }
    for (size_t i = 0; bufs && i < 2 * t->n_params; i++)
        free(bufs[i]);
    free(bufs);
    free(e);
    slm_dataset_batch_free(&b);
    return rc;
}
