/* Scoring a task's examples: answers generated greedily through the generator and
 * compared after normalization, choices ranked by log-likelihood (lm-evaluation-harness's
 * acc and acc_norm), then accuracy with a Wilson 95% interval. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/chat.h>
#include <slmops/generation.h>
#include <slmops/task.h>

#include "internal/util.h"
#include "jobs/task.h"

#define Z95 1.959963984540054

typedef struct tev {
    slm_model_t *m;
    const slm_tokenizer_t *tok;
    const slm__task_t *t;
    const slm__task_run_t *r;
    slm_chat_template_t *tmpl; /* loaded at the first "messages" */
    slm_generator_t *gen;      /* made at the first generated answer */
    slm_seq_t *seq;
    slm_context_t *ctx;        /* made at the first multiple-choice example */
    uint32_t n_ctx;
    uint64_t n[3], ok[3], ok_norm;
    slm_error_t *err;
} tev_t;

static const char *const kind_names[3] = {"exact", "contains", "choice"};

/* The prompt's text: as given, or the messages through the model's chat template. */
static int prompt_text(tev_t *e, const slm__task_ex_t *x, char **out, unsigned *flags)
{
    unsigned bos = slm_tokenizer_add_bos(e->tok) ? SLM_TOKENIZE_ADD_BOS : 0;
    if (x->prompt) {
        *flags = bos;
        return (*out = strdup(x->prompt)) ? SLM_OK
                                          : slm__fail(e->err, SLM_E_NOMEM, NULL, -1, "task: out "
                                                      "of memory");
    }
    int rc = SLM_OK;
    if (!e->tmpl && e->r->chat_template &&
        (rc = slm__job_chat_template("eval", e->r->chat_template, &e->tmpl, e->err)) != SLM_OK)
        return rc;
    if (!e->tmpl && (rc = slm_chat_template_from_model_file(slm_model_container(e->m), &e->tmpl,
                                                            e->err)) != SLM_OK)
        return slm__fail(e->err, rc, e->r->path, -1, "%s:%zu: \"messages\" need a chat "
                         "template (the model's, or chat_template): %s", e->r->path, x->line, e->err->message);
    char *conv = json_dumps(x->messages, JSON_COMPACT);
    slm_chat_params_t cp;
    slm_chat_params_default(&cp);
    rc = conv ? slm_chat_template_render(e->tmpl, conv, &cp, out, e->err)
              : slm__fail(e->err, SLM_E_NOMEM, NULL, -1, "task: out of memory");
    free(conv);
    /* The template writes BOS itself when it wants one; its special tokens are parsed. */
    *flags = SLM_TOKENIZE_PARSE_SPECIAL;
    return rc;
}

static int encode(tev_t *e, const char *text, unsigned flags, int32_t **ids, size_t *n)
{
    return slm_tokenizer_encode(e->tok, text, strlen(text), flags, ids, n, e->err);
}

/* ---- generated answers ---- */

static int open_gen(tev_t *e)
{
    slm_generator_params_t gp;
    slm_generator_params_default(&gp);
    gp.n_ctx = e->n_ctx;
    gp.type_kv = SLM_TYPE_F32;
    int rc = slm_generator_new(e->m, e->tok, &gp, &e->gen, e->err);
    return rc ? rc : slm_seq_new(e->gen, &e->seq, e->err);
}

static int generate(tev_t *e, const slm__task_ex_t *x, const int32_t *ids, size_t n,
                    json_t *row)
{
    if (!e->gen) {
        int rc = open_gen(e);
        if (rc)
            return rc;
    }
    if (n >= slm_generator_n_ctx_slot(e->gen))
        return slm__fail(e->err, SLM_E_INVALID, e->r->path, -1, "%s:%zu: the prompt has %zu "
                         "tokens; the context holds %u: raise --ctx", e->r->path, x->line, n,
                         slm_generator_n_ctx_slot(e->gen));
    slm_sampler_params_t sp;
    slm_sampler_params_default(&sp);
    sp.temperature = 0.0f;     /* greedy: the same answer on every run */
    const char *stops[64];
    size_t n_stop = 0;
    for (size_t i = 0; x->stop && i < json_array_size(x->stop) && n_stop < 64; i++)
        stops[n_stop++] = json_string_value(json_array_get(x->stop, i));
    slm_seq_params_t p;
    slm_seq_params_default(&p);
    p.sampling = &sp;
    p.stop = stops;
    p.n_stop = n_stop;
    p.max_tokens = e->r->max_tokens;
    slm_seq_truncate(e->seq, 0);
    int rc = slm_seq_start(e->seq, &p, ids, n, e->err);
    if (rc)
        return rc;
    while ((rc = slm_generator_step(e->gen, e->err)) > 0)
        if (slm__jobrt_cancelled(e->r->rt))
            slm_seq_cancel(e->seq);
    if (rc < 0)
        return rc;
    if (slm_seq_stop_reason(e->seq) == SLM_SEQ_ERROR)
        return slm__fail(e->err, SLM_E_INVALID, e->r->path, -1, "%s:%zu: sampling failed (the "
                         "logits are not finite)", e->r->path, x->line);
    if (slm_seq_stop_reason(e->seq) == SLM_SEQ_CANCELLED)
        return slm__jobrt_fail_cancelled(e->err, "eval");
    size_t len = 0;
    const char *text = slm_seq_text(e->seq, &len);
    char *got = NULL;
    if ((rc = slm_task_normalize(text, len, &got, e->err)))
        return rc;
    bool correct = false;
    for (size_t i = 0; !correct && i < json_array_size(x->answers); i++) {
        const char *a = json_string_value(json_array_get(x->answers, i));
        char *want = NULL;
        if ((rc = slm_task_normalize(a, strlen(a), &want, e->err))) {
            free(got);
            return rc;
        }
        correct = x->kind == SLM__TASK_EXACT ? strcmp(got, want) == 0
                                             : *want && strstr(got, want) != NULL;
        free(want);
    }
    json_t *o = json_stringn(text, len);
    json_object_set_new(row, "output", o ? o : slm__json_path(text));
    json_object_set_new(row, "normalized", slm__json_path(got));
    json_object_set_new(row, "stop_reason",
                        json_string(slm_seq_stop_name(slm_seq_stop_reason(e->seq))));
    json_object_set_new(row, "correct", json_boolean(correct));
    free(got);
    e->ok[x->kind] += correct;
    return SLM_OK;
}

/* ---- multiple choice ---- */

static int open_ctx(tev_t *e)
{
    slm_context_params_t cp;
    slm_context_params_default(&cp);
    cp.n_ctx = e->n_ctx;
    cp.type_kv = SLM_TYPE_F32;
    return slm_context_new(e->m, &cp, &e->ctx, e->err);
}

/* log p(token) under one row of logits, in double. */
static double logprob(const float *x, int32_t n, int32_t token)
{
    float mx = x[0];
    for (int32_t i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++)
        sum += exp((double)(x[i] - mx));
    return (double)(x[token] - mx) - log(sum);
}

/* The log-likelihood of the continuation: lm-evaluation-harness encodes context +
 * choice whole and takes the tokens past the context's own encoding. */
static int choice_ll(tev_t *e, const char *prompt, unsigned flags, size_t n_c, const float *last, const char *choice, double *ll,
                     size_t *n_cont)
{
    size_t lp = strlen(prompt), lc = strlen(choice);
    char *whole = malloc(lp + lc + 1);
    if (!whole)
        return slm__fail(e->err, SLM_E_NOMEM, NULL, -1, "task: out of memory");
    memcpy(whole, prompt, lp);
    memcpy(whole + lp, choice, lc + 1);
    int32_t *w = NULL;
    size_t n_w = 0;
    int rc = encode(e, whole, flags, &w, &n_w);
    free(whole);
    if (rc)
        return rc;
    int32_t V = slm_model_n_vocab(e->m);
    size_t k = n_w > n_c ? n_w - n_c : 0;
    *n_cont = k;
    *ll = 0.0;
    if (k == 0 || n_c + k > e->n_ctx) {
        free(w);
        return k == 0 ? SLM_OK
                      : slm__fail(e->err, SLM_E_INVALID, e->r->path, -1, "a prompt with a "
                                  "choice has %zu tokens; the context holds %u: raise --ctx",
                                  n_c + k, e->n_ctx);
    }
    const int32_t *cont = w + n_c;
    *ll = logprob(last, V, cont[0]);
    if (k > 1) {
        int8_t *want = malloc(k);
        if (!want) {
            free(w);
            return slm__fail(e->err, SLM_E_NOMEM, NULL, -1, "task: out of memory");
        }
        memset(want, 1, k);
        slm_context_seq_truncate(e->ctx, 0, (int32_t)n_c);
        slm_batch_t b = {.struct_size = sizeof b, .n_tokens = (int32_t)(k - 1), .token = cont,
                         .logits = want};
        rc = slm_context_decode(e->ctx, &b, e->err);
        for (size_t i = 0; rc == SLM_OK && i + 1 < k; i++)
            *ll += logprob(slm_context_logits(e->ctx, (int32_t)i), V, cont[i + 1]);
        free(want);
    }
    free(w);
    return rc;
}

static int choose(tev_t *e, const slm__task_ex_t *x, const char *prompt, unsigned flags,
                  const int32_t *ids, size_t n, json_t *row)
{
    if (!e->ctx) {
        int rc = open_ctx(e);
        if (rc)
            return rc;
    }
    if (n > e->n_ctx)
        return slm__fail(e->err, SLM_E_INVALID, e->r->path, -1, "%s:%zu: the prompt has %zu "
                         "tokens; the context holds %u: raise --ctx", e->r->path, x->line, n,
                         e->n_ctx);
    int32_t V = slm_model_n_vocab(e->m);
    slm_context_seq_clear(e->ctx, -1);
    slm_batch_t b = {.struct_size = sizeof b, .n_tokens = (int32_t)n, .token = ids};
    int rc = slm_context_decode(e->ctx, &b, e->err);
    float *last = rc == SLM_OK ? malloc((size_t)V * sizeof *last) : NULL;
    if (rc == SLM_OK && !last)
        rc = slm__fail(e->err, SLM_E_NOMEM, NULL, -1, "task: out of memory");
    if (rc)
        return rc;
    memcpy(last, slm_context_logits(e->ctx, -1), (size_t)V * sizeof *last);
    size_t nc = json_array_size(x->choices), best = 0, best_norm = 0;
    double best_ll = -INFINITY, best_nl = -INFINITY;
    json_t *lls = json_array(), *ntok = json_array();
    for (size_t i = 0; rc == SLM_OK && i < nc; i++) {
        const char *c = json_string_value(json_array_get(x->choices, i));
        double ll = 0.0;
        size_t k = 0;
        rc = choice_ll(e, prompt, flags, n, last, c, &ll, &k);
        /* acc_norm: the log-likelihood per byte of the choice, as the harness does. */
        double nl = ll / (double)(strlen(c) ? strlen(c) : 1);
        if (k > 0 && ll > best_ll)
            best_ll = ll, best = i;
        if (k > 0 && nl > best_nl)
            best_nl = nl, best_norm = i;
        json_array_append_new(lls, slm__json_num(k ? ll : NAN));
        json_array_append_new(ntok, json_integer((json_int_t)k));
    }
    free(last);
    bool ok = best == (size_t)x->answer_index, ok_n = best_norm == (size_t)x->answer_index;
    json_object_set_new(row, "loglik", lls);
    json_object_set_new(row, "choice_tokens", ntok);
    json_object_set_new(row, "pred", json_integer((json_int_t)best));
    json_object_set_new(row, "pred_norm", json_integer((json_int_t)best_norm));
    json_object_set_new(row, "correct", json_boolean(ok));
    json_object_set_new(row, "correct_norm", json_boolean(ok_n));
    e->ok[SLM__TASK_CHOICE] += ok;
    e->ok_norm += ok_n;
    return rc;
}

static int one(tev_t *e, size_t i, json_t *rows)
{
    const slm__task_ex_t *x = &e->t->ex[i];
    char *prompt = NULL;
    unsigned flags = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = prompt_text(e, x, &prompt, &flags);
    if (rc == SLM_OK)
        rc = encode(e, prompt, flags, &ids, &n);
    if (rc == SLM_OK && n == 0)
        rc = slm__fail(e->err, SLM_E_INVALID, e->r->path, -1, "%s:%zu: the prompt encodes to "
                       "no token", e->r->path, x->line);
    json_t *row = json_pack("{s:I, s:s}", "line", (json_int_t)x->line, "type",
                            kind_names[x->kind]);
    if (x->id)
        json_object_set(row, "id", (json_t *)x->id);
    if (rc == SLM_OK)
        rc = x->kind == SLM__TASK_CHOICE ? choose(e, x, prompt, flags, ids, n, row)
                                         : generate(e, x, ids, n, row);
    e->n[x->kind]++;
    json_array_append_new(rows, row);
    free(prompt);
    free(ids);
    return rc;
}

static json_t *acc(uint64_t k, uint64_t n)
{
    double lo, hi;
    slm_task_wilson(k, n, Z95, &lo, &hi);
    return json_pack("{s:I, s:I, s:o, s:[o,o]}", "n", (json_int_t)n, "correct", (json_int_t)k,
                     "accuracy", slm__json_num(n ? (double)k / (double)n : NAN), "ci95",
                     slm__json_num(lo), slm__json_num(hi));
}

static json_t *summary(const tev_t *e, json_t *rows)
{
    uint64_t n = e->n[0] + e->n[1] + e->n[2], k = e->ok[0] + e->ok[1] + e->ok[2];
    json_t *res = acc(k, n), *by = json_object();
    for (int i = 0; i < 3; i++)
        if (e->n[i])
            json_object_set_new(by, kind_names[i], acc(e->ok[i], e->n[i]));
    if (e->n[SLM__TASK_CHOICE])
        json_object_set_new(by, "choice_norm", acc(e->ok_norm, e->n[SLM__TASK_CHOICE]));
    json_object_set_new(res, "by_type", by);
    json_object_set_new(res, "examples", rows);
    return res;
}

int slm__task_eval(slm_model_t *m, const slm_tokenizer_t *tok, const slm__task_t *t,
                   const slm__task_run_t *r, json_t **results, slm_error_t *err)
{
    tev_t e = {.m = m, .tok = tok, .t = t, .r = r, .err = err};
    int32_t train = slm_model_n_ctx_train(m);
    e.n_ctx = (uint32_t)(r->n_ctx > 0 ? r->n_ctx : train > 0 && train < 4096 ? train : 4096);
    json_t *rows = json_array();
    int rc = rows ? SLM_OK : slm__fail(err, SLM_E_NOMEM, NULL, -1, "task: out of memory");
    for (size_t i = 0; rc == SLM_OK && i < t->n; i++) {
        if (slm__jobrt_cancelled(r->rt)) {
            rc = slm__jobrt_fail_cancelled(err, "eval");
            break;
        }
        rc = one(&e, i, rows);
        uint64_t k = e.ok[0] + e.ok[1] + e.ok[2];
        if (rc == SLM_OK)
            slm__jobrt_progress(r->rt, "task", i + 1, t->n, r->path,
                                (double)k / (double)(i + 1));
    }
    if (rc == SLM_OK)
        *results = summary(&e, rows);
    else
        json_decref(rows);
    slm_seq_free(e.seq);
    slm_generator_free(e.gen);
    slm_context_free(e.ctx);
    slm_chat_template_free(e.tmpl);
    return rc;
}
