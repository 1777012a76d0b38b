/* The "synth" job kind: a teacher model writes a distillation data set. Each prompt
 * of a prompt file gets samples_per_prompt responses through the generator (the
 * samples of one prompt decode together, one slot each); the filters of synth.h
 * drop some; the rest go to a JSONL file, with provenance, written atomically. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/chat.h>
#include <slmops/generation.h>
#include <slmops/output.h>

#include "internal/util.h"
#include "jobs/kind.h"
#include "jobs/synth.h"

#define MAX_SLOTS 16

typedef struct sstate {
    const char *teacher, *prompts_path, *output, *system, *check, *regex, *device;
    const char *chat_template, *teacher_name, *requests_out, *responses_path;
    bool responses_chat;         /* the remote teacher answered chat messages */
    slm__job_lora_t *loras;
    size_t n_loras;
    int64_t samples, max_tokens, top_k, min_chars, max_chars, ctx, threads;
    double temperature, top_p, max_repeat;
    bool dedup;
    uint64_t seed;
    /* The run. */
    const slm__jobrt_t *rt;
    slm_model_t *m;
    slm_tokenizer_t *tok;
    slm_chat_template_t *tmpl;
    slm_generator_t *gen;
    slm_seq_t *seq[MAX_SLOTS];
    slm__synth_prompts_t prompts;
    slm__synth_filter_t *filter;
    FILE *out;
    slm__synth_responses_t responses;
    size_t next_response;
    uint64_t n_generated, n_kept, n_tokens, n_failed, dropped[SLM__DROP_N];
    slm_error_t *err;
} sstate_t;

static const slm__job_opt_t opts[] = {
    {"teacher", SLM__OPT_STRING},
    {"lora", SLM__OPT_ARRAY},
    {"prompts", SLM__OPT_STRING},
    {"output", SLM__OPT_STRING},
    {"system", SLM__OPT_STRING},
    {"samples_per_prompt", SLM__OPT_INT},
    {"max_tokens", SLM__OPT_INT},
    {"temperature", SLM__OPT_NUMBER},
    {"top_k", SLM__OPT_INT},
    {"top_p", SLM__OPT_NUMBER},
    {"seed", SLM__OPT_SEED},
    {"min_chars", SLM__OPT_INT},
    {"max_chars", SLM__OPT_INT},
    {"max_repeat", SLM__OPT_NUMBER},
    {"dedup", SLM__OPT_BOOL},
    {"check", SLM__OPT_STRING},
    {"check_regex", SLM__OPT_STRING},
    {"ctx", SLM__OPT_INT},
    {"threads", SLM__OPT_INT},
    {"device", SLM__OPT_STRING},
    {"chat_template", SLM__OPT_STRING},
    {"teacher_name", SLM__OPT_STRING},
    {"requests_output", SLM__OPT_STRING},
    {"responses", SLM__OPT_STRING},
    {"responses_chat", SLM__OPT_BOOL},
    {NULL, 0},
};
static const char *const inputs[] = {"teacher", "lora", "prompts", "responses", NULL};
static const char *const outputs[] = {"output", "requests_output", NULL};

static int int_in(const slm_job_t *job, const char *key, int64_t dflt, int64_t lo, int64_t hi,
                  int64_t *out, slm_error_t *err)
{
    int64_t v = slm__job_int(job, key, dflt);
    if (v < lo || v > hi)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "synth job: %s %lld is out of range "
                         "(%lld to %lld)", key, (long long)v, (long long)lo, (long long)hi);
    *out = v;
    return SLM_OK;
}

static int real_in(const slm_job_t *job, const char *key, double dflt, double lo, double hi,
                   double *out, slm_error_t *err)
{
    const json_t *v = slm__job_get(job, key);
    double x = v ? json_number_value(v) : dflt;
    if (!isfinite(x) || x < lo || x > hi)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "synth job: %s %g is out of range (%g "
                         "to %g)", key, x, lo, hi);
    *out = x;
    return SLM_OK;
}

static int prepare(slm_job_t *job, void *state, slm_error_t *err)
{
    sstate_t *s = state;
    s->teacher = slm__job_str(job, "teacher");
    s->prompts_path = slm__job_str(job, "prompts");
    s->output = slm__job_str(job, "output");
    s->teacher_name = slm__job_str(job, "teacher_name");
    s->requests_out = slm__job_str(job, "requests_output");
    s->responses_path = slm__job_str(job, "responses");
    s->responses_chat = slm__job_bool(job, "responses_chat", false);
    /* A remote teacher: the prompts go out (requests_output) or its responses come in. */
    bool remote = s->requests_out || s->responses_path;
    if (s->requests_out && s->responses_path)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "synth job: give 'requests_output' or "
                         "'responses', not both");
    if (!s->prompts_path || (!s->output && !s->requests_out) || (!s->teacher && !remote))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "synth job: the options 'teacher' (or "
                         "'responses'), 'prompts' and 'output' are required");
    s->system = slm__job_str(job, "system");
    s->check = slm__job_str(job, "check");
    s->regex = slm__job_str(job, "check_regex");
    s->device = slm__job_str(job, "device");
    s->chat_template = slm__job_str(job, "chat_template");
    s->dedup = slm__job_bool(job, "dedup", true);
    if (s->check && strcmp(s->check, "exact") && strcmp(s->check, "contains") &&
        strcmp(s->check, "regex"))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "synth job: check '%s' is not exact, "
                         "contains or regex", s->check);
    if (s->regex && !s->check)
        s->check = "regex";
    if (s->check && strcmp(s->check, "regex") == 0 && !s->regex)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "synth job: check regex needs "
                         "check_regex (the pattern)");
    int rc;
    if ((rc = int_in(job, "samples_per_prompt", 1, 1, 1 << 16, &s->samples, err)) ||
        (rc = int_in(job, "max_tokens", 128, 1, 1 << 20, &s->max_tokens, err)) ||
        (rc = int_in(job, "top_k", 40, 0, 1 << 24, &s->top_k, err)) ||
        (rc = int_in(job, "min_chars", 1, 0, 1 << 30, &s->min_chars, err)) ||
        (rc = int_in(job, "max_chars", 0, 0, 1 << 30, &s->max_chars, err)) ||
        (rc = int_in(job, "ctx", 0, 0, 1 << 20, &s->ctx, err)) ||
        (rc = int_in(job, "threads", 0, 0, 4096, &s->threads, err)) ||
        (rc = real_in(job, "temperature", 0.8, 0.0, 100.0, &s->temperature, err)) ||
        (rc = real_in(job, "top_p", 0.95, 0.0, 1.0, &s->top_p, err)) ||
        (rc = real_in(job, "max_repeat", 0.5, 0.0, 1.0, &s->max_repeat, err)) ||
        (rc = slm__job_seed(job, "seed", 42, &s->seed, err)))
        return rc;
    if (s->max_chars && s->max_chars < s->min_chars)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "synth job: max_chars %lld is below "
                         "min_chars %lld", (long long)s->max_chars, (long long)s->min_chars);
    return slm__job_loras(job, "synth", &s->loras, &s->n_loras, err);
}

/* The prompt as the teacher sees it: through the chat template when there is one
 * (system and user turns, the assistant's opened), else the text itself after the
 * system prompt; *flags says how to tokenize it. */
static int render(sstate_t *s, const slm__synth_prompt_t *pr, char **text, unsigned *flags)
{
    const char *sys = pr->system ? pr->system : s->system;
    if (!s->tmpl) {
        size_t n = strlen(pr->prompt) + (sys ? strlen(sys) + 2 : 0) + 1;
        if (!(*text = malloc(n)))
            return slm__fail(s->err, SLM_E_NOMEM, NULL, -1, "synth: out of memory");
        snprintf(*text, n, "%s%s%s", sys ? sys : "", sys ? "\n\n" : "", pr->prompt);
        *flags = slm_tokenizer_add_bos(s->tok) ? SLM_TOKENIZE_ADD_BOS : 0;
        return SLM_OK;
    }
    slm_chat_message_t msgs[2] = {{.role = "system", .content = sys},
                                  {.role = "user", .content = pr->prompt}};
    slm_chat_params_t cp;
    slm_chat_params_default(&cp);
    *flags = SLM_TOKENIZE_PARSE_SPECIAL;
    return slm_chat_template_apply(s->tmpl, sys ? msgs : msgs + 1, sys ? 2 : 1, &cp, text,
                                   s->err);
}

static json_t *line_json(const sstate_t *s, const slm__synth_prompt_t *pr, const char *prompt,
                         const char *text, size_t len, int64_t sample, uint64_t seed,
                         const char *why)
{
    bool chat = s->tmpl || (s->responses_path && s->responses_chat);
    json_t *resp = json_stringn(text, len);
    if (!resp)
        resp = slm__json_path(text);   /* bytes that are not UTF-8 become U+FFFD */
    json_t *prov = json_pack("{s:o, s:I, s:I, s:o, s:f, s:I, s:f, s:I, s:s}", "teacher",
                             slm__json_path(s->teacher_name ? s->teacher_name : s->teacher), "prompt_line", (json_int_t)pr->line,
                             "sample", (json_int_t)sample, "seed", slm__json_u64(seed),
                             "temperature", s->temperature, "top_k", (json_int_t)s->top_k,
                             "top_p", s->top_p, "max_tokens", (json_int_t)s->max_tokens,
                             "stop_reason", why);
    const char *sys = pr->system ? pr->system : s->system;
    if (!chat)
        return json_pack("{s:s, s:o, s:o}", "prompt", prompt, "completion", resp,
                         "provenance", prov);
    json_t *msgs = json_array();
    if (sys)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", sys));
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", pr->prompt));
    json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", "assistant", "content", resp));
    return json_pack("{s:o, s:o}", "messages", msgs, "provenance", prov);
}

/* The seed of one sample: the job's seed, the prompt's line and the sample's index. */
static uint64_t sample_seed(const sstate_t *s, size_t line, int64_t sample)
{
    uint64_t x = s->seed + 0x9e3779b97f4a7c15ull * ((uint64_t)line * 65599u + (uint64_t)sample + 1);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int emit(sstate_t *s, const slm__synth_prompt_t *pr, const char *prompt, const char *text,
                size_t len, size_t n_tok, const char *why, int64_t sample, uint64_t seed)
{
    s->n_generated++;
    s->n_tokens += n_tok;
    int verdict = -1;
    int rc = slm__synth_filter_judge(s->filter, pr, text, len, &verdict, s->err);
    if (rc)
        return rc;
    if (verdict >= 0) {
        s->dropped[verdict]++;
        return SLM_OK;
    }
    json_t *j = line_json(s, pr, prompt, text, len, sample, seed, why);
    char *line = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    bool ok = line && fputs(line, s->out) >= 0 && fputc('\n', s->out) != EOF;
    free(line);
    if (!ok)
        return slm__fail(s->err, SLM_E_IO, s->output, -1, "%s: write failed", s->output);
    s->n_kept++;
    return SLM_OK;
}

/* Up to n samples of one prompt, one slot each, decoded together. */
static int sample_group(sstate_t *s, const slm__synth_prompt_t *pr, const char *prompt,
                        const int32_t *ids, size_t n_ids, int64_t first, int64_t n)
{
    uint64_t seeds[MAX_SLOTS];
    int rc = SLM_OK;
    for (int64_t i = 0; i < n && rc == SLM_OK; i++) {
        slm_sampler_params_t sp;
        slm_sampler_params_default(&sp);
        sp.temperature = (float)s->temperature;
        sp.top_k = (int32_t)s->top_k;
        sp.top_p = (float)s->top_p;
        sp.seed = seeds[i] = sample_seed(s, pr->line, first + i);
        slm_seq_params_t p;
        slm_seq_params_default(&p);
        p.sampling = &sp;
        p.max_tokens = (int32_t)s->max_tokens;
        /* A base model's continuation keeps its first space: prompt + completion. */
        p.flags = s->tmpl ? 0 : SLM_SEQ_CONTINUES;
        slm_seq_truncate(s->seq[i], 0);
        rc = slm_seq_start(s->seq[i], &p, ids, n_ids, s->err);
    }
    if (rc)
        return rc;
    while ((rc = slm_generator_step(s->gen, s->err)) > 0)
        if (slm__jobrt_cancelled(s->rt))
            for (int64_t i = 0; i < n; i++)
                slm_seq_cancel(s->seq[i]);
    if (rc < 0)
        return rc;
    if (slm__jobrt_cancelled(s->rt))
        return slm__jobrt_fail_cancelled(s->err, "synth");
    for (int64_t i = 0; i < n && rc == SLM_OK; i++) {
        size_t len = 0, n_tok = 0;
        const char *text = slm_seq_text(s->seq[i], &len);
        slm_seq_tokens(s->seq[i], &n_tok);
        rc = emit(s, pr, prompt, text, len, n_tok,
                  slm_seq_stop_name(slm_seq_stop_reason(s->seq[i])), first + i, seeds[i]);
    }
    return rc;
}

/* The remote teacher's responses to one prompt, read in order: each sample's text or
 * the failure its client reported (counted, never a kept line). */
static int remote_prompt(sstate_t *s, const slm__synth_prompt_t *pr)
{
    const char *sys = pr->system ? pr->system : s->system;
    size_t n = strlen(pr->prompt) + (sys ? strlen(sys) + 2 : 0) + 1;
    char *prompt = malloc(n);
    if (!prompt)
        return slm__fail(s->err, SLM_E_NOMEM, NULL, -1, "synth: out of memory");
    snprintf(prompt, n, "%s%s%s", sys ? sys : "", sys ? "\n\n" : "", pr->prompt);
    int rc = SLM_OK;
    for (int64_t i = 0; rc == SLM_OK && i < s->samples; i++) {
        const slm__synth_response_t *r = s->next_response < s->responses.n
                                              ? &s->responses.v[s->next_response++] : NULL;
        if (!r || r->line != pr->line || r->sample != i) {
            rc = slm__fail(s->err, SLM_E_FORMAT, s->responses_path, -1, "%s: no response for "
                           "%s:%zu sample %lld (the responses are of another prompt file)",
                           s->responses_path, s->prompts_path, pr->line, (long long)i);
            break;
        }
        if (r->error) {
            s->n_failed++;
            continue;
        }
        rc = emit(s, pr, prompt, r->text, r->len, 0, r->finish ? r->finish : "stop", i,
                  (uint64_t)r->seed);
    }
    free(prompt);
    return rc;
}

static int one_prompt(sstate_t *s, const slm__synth_prompt_t *pr)
{
    char *prompt = NULL;
    unsigned flags = 0;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int rc = render(s, pr, &prompt, &flags);
    if (rc == SLM_OK)
        rc = slm_tokenizer_encode(s->tok, prompt, strlen(prompt), flags, &ids, &n_ids, s->err);
    if (rc == SLM_OK && (n_ids == 0 || n_ids >= slm_generator_n_ctx_slot(s->gen)))
        rc = slm__fail(s->err, SLM_E_INVALID, s->prompts_path, -1, "%s:%zu: the prompt has "
                       "%zu tokens; a slot holds %u: raise ctx", s->prompts_path, pr->line,
                       n_ids, slm_generator_n_ctx_slot(s->gen));
    uint32_t slots = slm_generator_n_slots(s->gen);
    for (int64_t first = 0; rc == SLM_OK && first < s->samples; first += slots) {
        int64_t n = s->samples - first < slots ? s->samples - first : slots;
        rc = sample_group(s, pr, prompt, ids, n_ids, first, n);
    }
    free(prompt);
    free(ids);
    return rc;
}

static int open_teacher(slm_job_t *job, sstate_t *s)
{
    int rc = slm__job_open_model(job, s->teacher, s->device, (int32_t)s->threads, s->loras,
                                 s->n_loras, &s->m, s->err);
    if (rc == SLM_OK)
        rc = slm_tokenizer_from_model_file(slm_model_container(s->m), &s->tok, s->err);
    if (rc == SLM_OK && s->chat_template)
        rc = slm__job_chat_template("synth", s->chat_template, &s->tmpl, s->err);
    else if (rc == SLM_OK &&
             slm_chat_template_from_model_file(slm_model_container(s->m), &s->tmpl,
                                               NULL) != SLM_OK)
        s->tmpl = NULL;   /* a base model: prompts are continued as they are */
    slm_generator_params_t gp;
    slm_generator_params_default(&gp);
    gp.n_slots = (uint32_t)(s->samples < MAX_SLOTS ? s->samples : MAX_SLOTS);
    int32_t train = slm_model_n_ctx_train(s->m ? s->m : NULL);
    int64_t per = s->ctx ? s->ctx : train > 0 && train < 2048 ? train : 2048;
    gp.n_ctx = (uint32_t)(per * gp.n_slots);
    gp.n_batch = gp.n_ctx < 512 ? gp.n_ctx : 512;
    if (rc == SLM_OK)
        rc = slm_generator_new(s->m, s->tok, &gp, &s->gen, s->err);
    for (uint32_t i = 0; rc == SLM_OK && i < gp.n_slots; i++)
        rc = slm_seq_new(s->gen, &s->seq[i], s->err);
    return rc;
}

static int run(slm_job_t *job, void *state, const slm__jobrt_t *rt, slm_error_t *err)
{
    sstate_t *s = state;
    s->rt = rt;
    s->err = err;
    slm__synth_filter_params_t fp = {.min_chars = (int32_t)s->min_chars,
                                     .max_chars = (int32_t)s->max_chars,
                                     .max_repeat = s->max_repeat, .dedup = s->dedup,
                                     .check = s->check, .regex = s->regex};
    int rc = slm__synth_filter_new(&fp, &s->filter, err);
    if (rc == SLM_OK)
        rc = slm__synth_prompts_load(s->prompts_path, &s->prompts, err);
    if (rc == SLM_OK && s->requests_out) {
        rc = slm__synth_requests_write(s->requests_out, &s->prompts, s->system, rt->inputs,
                                       rt->n_inputs, err);
        if (rc == SLM_OK)
            slm__jobrt_wrote(rt, s->requests_out);
        return rc;
    }
    if (rc == SLM_OK && s->responses_path)
        rc = slm__synth_responses_load(s->responses_path, &s->responses, err);
    else if (rc == SLM_OK)
        rc = open_teacher(job, s);
    slm_output_params_t op;
    slm_output_params_init(&op);
    op.inputs = rt->inputs;
    op.n_inputs = rt->n_inputs;
    slm_output_t *out = NULL;
    if (rc == SLM_OK && (rc = slm_output_prepare(s->output, &op, &out, err)) == SLM_OK &&
        !(s->out = fopen(slm_output_path(out), "wb")))
        rc = slm__fail(err, SLM_E_IO, s->output, -1, "%s: cannot write: %m", s->output);
    for (size_t i = 0; rc == SLM_OK && i < s->prompts.n; i++) {
        rc = s->responses_path ? remote_prompt(s, &s->prompts.v[i])
                               : one_prompt(s, &s->prompts.v[i]);
        if (rc == SLM_OK)
            slm__jobrt_progress(rt, "synth", i + 1, s->prompts.n, s->prompts_path,
                                (double)s->n_kept);
    }
    if (s->out && fclose(s->out) != 0 && rc == SLM_OK)
        rc = slm__fail(err, SLM_E_IO, s->output, -1, "%s: write failed: %m", s->output);
    s->out = NULL;
    if (rc == SLM_OK && s->n_kept == 0)
        rc = slm__fail(err, SLM_E_INVALID, s->output, -1, "synth: the filters kept none of the "
                       "%llu responses (see the report's \"dropped\")%s",
                       (unsigned long long)s->n_generated,
                       s->n_failed ? "; the remote teacher failed the other requests" : "");
    if (rc == SLM_OK && (rc = slm_output_commit(out, err)) == SLM_OK)
        slm__jobrt_wrote(rt, s->output);
    else if (rc != SLM_OK)
        slm_output_abort(out);
    return rc;
}

static json_t *settings(const void *state)
{
    const sstate_t *s = state;
    json_t *j = json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:f, s:I, s:f, s:o}",
                          "teacher", slm__json_path(s->teacher_name ? s->teacher_name : s->teacher),
                          "lora",
                          slm__job_loras_json(s->loras, s->n_loras), "prompts",
                          slm__json_path(s->prompts_path), "output", slm__json_path(s->output),
                          "system", slm__json_path(s->system), "samples_per_prompt",
                          (json_int_t)s->samples, "max_tokens", (json_int_t)s->max_tokens,
                          "temperature", s->temperature, "top_k", (json_int_t)s->top_k,
                          "top_p", s->top_p, "seed", slm__json_u64(s->seed));
    json_t *k = json_pack("{s:I, s:I, s:f, s:b, s:o, s:o, s:I, s:I, s:o, s:o}", "min_chars",
                          (json_int_t)s->min_chars, "max_chars", (json_int_t)s->max_chars,
                          "max_repeat", s->max_repeat, "dedup", s->dedup, "check",
                          slm__json_path(s->check), "check_regex", slm__json_path(s->regex),
                          "ctx", (json_int_t)s->ctx, "threads", (json_int_t)s->threads,
                          "device", slm__json_path(s->device), "chat_template",
                          slm__json_path(s->chat_template));
    if (j && k)
        json_object_update(j, k);
    json_decref(k);
    return j;
}

static json_t *results(const void *state)
{
    const sstate_t *s = state;
    json_t *d = json_object();
    for (int i = 0; i < SLM__DROP_N; i++)
        json_object_set_new(d, slm__synth_drop_names[i], json_integer((json_int_t)s->dropped[i]));
    json_t *r = json_pack("{s:I, s:I, s:I, s:I, s:o, s:s}", "prompts",
                          (json_int_t)s->prompts.n, "generated", (json_int_t)s->n_generated,
                          "kept", (json_int_t)s->n_kept, "tokens", (json_int_t)s->n_tokens,
                          "dropped", d, "form",
                          s->tmpl || (s->responses_path && s->responses_chat)
                              ? "messages" : "prompt-completion");
    if (r && s->responses_path)
        json_object_set_new(r, "teacher_failed", json_integer((json_int_t)s->n_failed));
    return r;
}

static void release(void *state)
{
    sstate_t *s = state;
    if (s->out)
        fclose(s->out);
    for (int i = 0; i < MAX_SLOTS; i++)
        slm_seq_free(s->seq[i]);
    slm_generator_free(s->gen);
    slm_chat_template_free(s->tmpl);
    slm_tokenizer_free(s->tok);
    slm_model_free(s->m);
    slm__synth_filter_free(s->filter);
    slm__synth_prompts_free(&s->prompts);
    slm__synth_responses_free(&s->responses);
    free(s->loras);
}

const slm__job_kind_t slm__job_kind_synth = {
    .name = "synth",
    .opts = opts,
    .input_keys = inputs,
    .output_keys = outputs,
    .state_size = sizeof(sstate_t),
    .prepare = prepare,
    .run = run,
    .settings = settings,
    .results = results,
    .release = release,
};
