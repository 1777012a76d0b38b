/* The "eval" job kind: perplexity of a text (slm_eval_perplexity, llama-perplexity's
 * method) or accuracy on a task file (jobs/task.h) for a model file with its adapters,
 * or a model the caller loaded, as JSON. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/eval.h>
#include <slmops/input.h>
#include <slmops/output.h>
#include <slmops/tokenizer.h>

#include "internal/util.h"
#include "jobs/kind.h"
#include "jobs/task.h"

/* Larger texts are refused: the whole text is tokenized at once. */
#define MAX_TEXT_BYTES (1ull << 30)

typedef struct estate {
    const char *model_path, *text, *device, *tokenizer;
    const char *task_path, *output, *match, *chat_template;
    int32_t n_ctx, n_batch, n_threads, max_tokens;
    slm__task_t task;
    json_t *task_res;          /* the task's results, after the run */
    slm__job_lora_t *loras;
    size_t n_loras;
    const slm__jobrt_t *rt;
    size_t n_tokens;
    json_t *running;           /* perplexity after each chunk */
    slm_perplexity_result_t res;
} estate_t;

static const slm__job_opt_t opts[] = {
    {"model", SLM__OPT_STRING},
    {"perplexity", SLM__OPT_STRING},
    {"ctx", SLM__OPT_INT},
    {"batch", SLM__OPT_INT},
    {"tokenizer", SLM__OPT_STRING},
    {"device", SLM__OPT_STRING},
    {"threads", SLM__OPT_INT},
    {"lora", SLM__OPT_ARRAY},
    {"task", SLM__OPT_STRING},
    {"output", SLM__OPT_STRING},
    {"max_tokens", SLM__OPT_INT},
    {"match", SLM__OPT_STRING},
    {"chat_template", SLM__OPT_STRING},
    {NULL, 0},
};
static const char *const inputs[] = {"model", "lora", "tokenizer", "perplexity", "task", NULL};
static const char *const outputs[] = {"output", NULL};

static int range(const slm_job_t *job, const char *key, int64_t dflt, int64_t lo, int64_t hi,
                 int32_t *out, slm_error_t *err)
{
    int64_t v = slm__job_int(job, key, dflt);
    if (v < lo || v > hi)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "eval job: %s %lld is out of range "
                         "(%lld to %lld)", key, (long long)v, (long long)lo, (long long)hi);
    *out = (int32_t)v;
    return SLM_OK;
}

static int prepare(slm_job_t *job, void *state, slm_error_t *err)
{
    estate_t *s = state;
    size_t n;
    s->model_path = slm__job_str(job, "model");
    s->text = slm__job_str(job, "perplexity");
    s->tokenizer = slm__job_str(job, "tokenizer");
    s->device = slm__job_str(job, "device");
    if (!s->model_path && !slm__job_model(job))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "eval job: the option 'model' is "
                         "required");
    s->task_path = slm__job_str(job, "task");
    s->output = slm__job_str(job, "output");
    s->match = slm__job_str(job, "match");
    s->chat_template = slm__job_str(job, "chat_template");
    if (s->task_path && (s->text || slm__job_tokens(job, &n)))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "eval job: 'perplexity' or 'task', "
                         "not both");
    if (!s->text && !s->task_path && !slm__job_tokens(job, &n))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "eval job: the option 'perplexity' "
                         "(the text to score) or 'task' (a task file) is required");
    if (s->output && !s->task_path)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "eval job: 'output' (the per-example "
                         "results) needs 'task'");
    if (s->match && strcmp(s->match, "exact") != 0 && strcmp(s->match, "contains") != 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "eval job: match '%s' is neither "
                         "'exact' nor 'contains'", s->match);
    int rc;
    if ((rc = range(job, "ctx", s->task_path ? 0 : 512, s->task_path ? 0 : 3, 1 << 24,
                    &s->n_ctx, err)) ||
        (rc = range(job, "max_tokens", 32, 1, 1 << 20, &s->max_tokens, err)) ||
        (rc = range(job, "batch", 0, 0, 1 << 24, &s->n_batch, err)) ||
        (rc = range(job, "threads", 0, 0, 4096, &s->n_threads, err)) ||
        (rc = slm__job_loras(job, "eval", &s->loras, &s->n_loras, err)))
        return rc;
    if (!(s->running = json_array()))
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "eval job: out of memory");
    return SLM_OK;
}

static int load_tokens(slm_registry_t *reg, const estate_t *s, const slm_model_t *m,
                       int32_t **ids, size_t *n, slm_error_t *err)
{
    slm_tokenizer_t *tok = NULL;
    int rc = s->tokenizer ? slm_tokenizer_load(reg, s->tokenizer, &tok, err)
                          : slm_tokenizer_from_model_file(slm_model_container(m), &tok, err);
    char *text = NULL;
    size_t len = 0;
    if (rc == SLM_OK)
        rc = slm_input_read_all(s->text, MAX_TEXT_BYTES, &text, &len, err);
    /* llama-perplexity tokenizes with add_special = true, special text not parsed. */
    if (rc == SLM_OK)
        rc = slm_tokenizer_encode(tok, text, len, slm_tokenizer_add_bos(tok) ?
                                  SLM_TOKENIZE_ADD_BOS : 0, ids, n, err);
    free(text);
    slm_tokenizer_free(tok);
    if (rc == SLM_OK && *n < 2 * (size_t)s->n_ctx)
        rc = slm__fail(err, SLM_E_INVALID, s->text, -1, "eval: %s: %zu tokens; a context of "
                       "%d needs at least %zu (two chunks)", s->text, *n, (int)s->n_ctx,
                       2 * (size_t)s->n_ctx);
    return rc;
}

static void on_chunk(void *user, int32_t chunk, int32_t n_chunks, double ppl)
{
    estate_t *s = user;
    json_array_append_new(s->running, slm__json_num(ppl));
    slm__jobrt_progress(s->rt, "perplexity", (uint64_t)chunk + 1, (uint64_t)n_chunks,
                        s->text ? s->text : "", ppl);
}

static int score(estate_t *s, slm_model_t *m, const int32_t *tokens, slm_error_t *err)
{
    slm_perplexity_params_t pp;
    slm_perplexity_params_default(&pp);
    pp.n_ctx = s->n_ctx;
    pp.n_batch = s->n_batch;
    pp.progress = on_chunk;
    pp.user = s;
    pp.cancel = s->rt->cancel;
    s->res = (slm_perplexity_result_t){.struct_size = sizeof s->res};
    return slm_eval_perplexity(m, tokens, s->n_tokens, &pp, &s->res, err);
}

/* The results as one JSON file, written atomically. */
static int write_output(const estate_t *s, slm_error_t *err)
{
    slm_output_params_t p;
    slm_output_params_init(&p);
    p.inputs = s->rt->inputs;
    p.n_inputs = s->rt->n_inputs;
    slm_output_t *out = NULL;
    int rc = slm_output_prepare(s->output, &p, &out, err);
    if (rc == SLM_OK && json_dump_file(s->task_res, slm_output_path(out),
                                       JSON_INDENT(1) | JSON_PRESERVE_ORDER) != 0)
        rc = slm__fail(err, SLM_E_IO, s->output, -1, "%s: cannot write the task results",
                       s->output);
    if (rc == SLM_OK)
        rc = slm_output_commit(out, err);
    else
        slm_output_abort(out);
    if (rc == SLM_OK)
        slm__jobrt_wrote(s->rt, s->output);
    return rc;
}

static int run_task(slm_job_t *job, estate_t *s, slm_model_t *m, slm_error_t *err)
{
    slm_tokenizer_t *tok = NULL;
    int rc = slm__task_load(s->task_path, s->match && strcmp(s->match, "contains") == 0
                                              ? SLM__TASK_CONTAINS : SLM__TASK_EXACT,
                            &s->task, err);
    if (rc == SLM_OK)
        rc = s->tokenizer ? slm_tokenizer_load(slm__job_registry(job), s->tokenizer, &tok, err)
                          : slm_tokenizer_from_model_file(slm_model_container(m), &tok, err);
    slm__task_run_t r = {.path = s->task_path, .max_tokens = s->max_tokens,
                         .n_ctx = s->n_ctx, .chat_template = s->chat_template, .rt = s->rt};
    if (rc == SLM_OK)
        rc = slm__task_eval(m, tok, &s->task, &r, &s->task_res, err);
    if (rc == SLM_OK && s->output)
        rc = write_output(s, err);
    slm_tokenizer_free(tok);
    return rc;
}

static int run(slm_job_t *job, void *state, const slm__jobrt_t *rt, slm_error_t *err)
{
    estate_t *s = state;
    s->rt = rt;
    if (s->task_path) {
        slm_model_t *m = slm__job_model(job), *own = NULL;
        int rc = m ? SLM_OK : slm__job_open_model(job, s->model_path, s->device, s->n_threads,
                                                  s->loras, s->n_loras, &own, err);
        if (rc == SLM_OK)
            rc = run_task(job, s, m ? m : own, err);
        slm_model_free(own);
        return rc;
    }
    slm_model_t *m = slm__job_model(job), *own = NULL;
    int rc = SLM_OK;
    /* A lent model runs as it is: "lora" then only names its adapters. */
    if (!m) {
        rc = slm__job_open_model(job, s->model_path, s->device, s->n_threads, s->loras,
                                 s->n_loras, &own, err);
        m = own;
    }
    int32_t *ids = NULL;
    const int32_t *tokens = slm__job_tokens(job, &s->n_tokens);
    if (rc == SLM_OK && !tokens && (rc = load_tokens(slm__job_registry(job), s, m, &ids,
                                                     &s->n_tokens, err)) == SLM_OK)
        tokens = ids;
    if (rc == SLM_OK && slm__jobrt_cancelled(rt))
        rc = slm__jobrt_fail_cancelled(err, "eval");
    if (rc == SLM_OK)
        rc = score(s, m, tokens, err);
    free(ids);
    slm_model_free(own);
    return rc;
}

static json_t *task_settings(const estate_t *s)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:i, s:s, s:i, s:o, s:o, s:i, s:o}", "model",
                     slm__json_path(s->model_path), "lora",
                     slm__job_loras_json(s->loras, s->n_loras), "task",
                     slm__json_path(s->task_path), "output", slm__json_path(s->output),
                     "max_tokens", s->max_tokens, "match", s->match ? s->match : "exact",
                     "ctx", s->n_ctx, "tokenizer", slm__json_path(s->tokenizer), "device",
                     slm__json_path(s->device), "threads", s->n_threads, "chat_template",
                     slm__json_path(s->chat_template));
}

static json_t *settings(const void *state)
{
    const estate_t *s = state;
    if (s->task_path)
        return task_settings(s);
    return json_pack("{s:o, s:o, s:o, s:i, s:i, s:o, s:o, s:i}", "model",
                     slm__json_path(s->model_path), "lora",
                     slm__job_loras_json(s->loras, s->n_loras), "perplexity",
                     slm__json_path(s->text),
                     "ctx", s->n_ctx, "batch", s->n_batch > 0 && s->n_batch < s->n_ctx ? s->n_batch
                                                                          : s->n_ctx,
                     "tokenizer",
                     slm__json_path(s->tokenizer), "device", slm__json_path(s->device),
                     "threads", s->n_threads);
}

static json_t *results(const void *state)
{
    const estate_t *s = state;
    if (s->task_path)
        return json_incref(s->task_res);
    return json_pack("{s:I, s:I, s:I, s:I, s:o, s:o, s:O}", "n_ctx", (json_int_t)s->n_ctx,
                     "n_tokens", (json_int_t)s->n_tokens, "n_chunks",
                     (json_int_t)s->res.n_chunks, "n_scored", (json_int_t)s->res.n_scored,
                     "nll", slm__json_num(s->res.nll), "ppl", slm__json_num(s->res.ppl),
                     "running", s->running);
}

static void release(void *state)
{
    estate_t *s = state;
    json_decref(s->running);
    json_decref(s->task_res);
    slm__task_free(&s->task);
    free(s->loras);
}

const slm__job_kind_t slm__job_kind_eval = {
    .name = "eval",
    .opts = opts,
    .input_keys = inputs,
    .output_keys = outputs,
    .takes = SLM__JOB_TAKES_MODEL | SLM__JOB_TAKES_TOKENS,
    .state_size = sizeof(estate_t),
    .prepare = prepare,
    .run = run,
    .settings = settings,
    .results = results,
    .release = release,
};
