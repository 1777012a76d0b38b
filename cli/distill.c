/* `slmops distill -m TEACHER --prompts FILE (--student M | --student-preset P) -o OUT`:
 * a teacher writes a data set, a student learns it and the teacher's logits (a
 * "distill" job, which runs synth, init and train jobs). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/job.h>
#include <slmops/log.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/remote/remote.h"
#include "cli/train-options.h"
#include "cli/train-progress.h"
#include "cli/verbs.h"

typedef struct opts {
    const char *teacher, *prompts, *system, *data_out, *student, *preset, *student_out;
    const char *student_vocab;
    const char *out, *kd_loss, *check, *check_regex, *chat_template;
    const char *url, *model, *api, *key_env, *key_file, *cache, *logits_cache;
    long concurrency, retries, timeout;
    long samples, max_tokens, s_top_k, min_chars, max_chars, top_k;
    float s_temp, s_top_p, max_repeat, temperature, alpha;
    slm_cli_train_t train;
    slm_cli_strs_t files;
    bool no_dedup;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"-m, --teacher", "MODEL", SLM_CLI_STR, OFF(teacher), 0, 0,
     "the teacher: any model file slmops loads"},
    {"--teacher-url", "URL", SLM_CLI_STR, OFF(url), 0, 0,
     "or a remote teacher: an OpenAI-compatible endpoint's base\n"
     "URL (http://host:port/v1); sequence-level distillation only"},
    {"--teacher-model", "NAME", SLM_CLI_STR, OFF(model), 0, 0,
     "the remote teacher's model name (\"model\" of each request)"},
    {"--teacher-api", "API", SLM_CLI_STR, OFF(api), 0, 0,
     "chat (default: /chat/completions with messages) or\n"
     "completions (/completions with the prompt text)"},
    {"--teacher-api-key-env", "NAME", SLM_CLI_STR, OFF(key_env), 0, 0,
     "the variable holding the API key (default OPENAI_API_KEY;\n"
     "unset: no key is sent)"},
    {"--teacher-api-key-file", "FILE", SLM_CLI_STR, OFF(key_file), 0, 0,
     "or the API key in the first line of FILE"},
    {"--teacher-cache", "FILE", SLM_CLI_STR, OFF(cache), 0, 0,
     "the remote teacher's answers, kept so that a re-run asks\n"
     "only what is missing (default OUT.teacher-cache.jsonl)"},
    {"--concurrency", "N", SLM_CLI_LONG, OFF(concurrency), 1, 1024,
     "requests to the remote teacher in flight (default 4)"},
    {"--teacher-retries", "N", SLM_CLI_LONG, OFF(retries), 0, 100,
     "retries of a request that got 408, 409, 429, 5xx or a\n"
     "broken connection, with backoff (default 4)"},
    {"--teacher-timeout", "S", SLM_CLI_LONG, OFF(timeout), 1, 86400,
     "seconds one request may take (default 600)"},
    {"--prompts", "FILE", SLM_CLI_STR, OFF(prompts), 0, 0,
     "prompts: plain lines, or JSONL of {\"prompt\", \"system\"?,\n"
     "\"answer\"?} (answer: what --check compares)"},
    {"--chat-template", "NAME|TEMPLATE", SLM_CLI_STR, OFF(chat_template), 0, 0,
     "the template the teacher's prompts and the student's\n"
     "{\"messages\"} are rendered with: a built-in name (chatml,\n"
     "...) or its text (default: the teacher's own, if any)"},
    {"--system", "TEXT", SLM_CLI_STR, OFF(system), 0, 0,
     "a system prompt for the prompts that give none"},
    {"--samples-per-prompt", "N", SLM_CLI_LONG, OFF(samples), 1, 65536,
     "responses the teacher writes per prompt (default 1)"},
    {"-n, --max-tokens", "N", SLM_CLI_LONG, OFF(max_tokens), 1, 1 << 20,
     "most tokens of a response (default 128)"},
    {"--sample-temp", "X", SLM_CLI_FLOAT, OFF(s_temp), 0, 100,
     "the teacher's sampling temperature; 0 = greedy (default 0.8)"},
    {"--sample-top-k", "N", SLM_CLI_LONG, OFF(s_top_k), 0, 1 << 24,
     "the teacher's top-k sampling; 0 = off (default 40)"},
    {"--sample-top-p", "X", SLM_CLI_FLOAT, OFF(s_top_p), 0, 1,
     "the teacher's top-p sampling (default 0.95)"},
    {"--min-chars", "N", SLM_CLI_LONG, OFF(min_chars), 0, 1 << 30,
     "drop responses shorter than N characters (default 1)"},
    {"--max-chars", "N", SLM_CLI_LONG, OFF(max_chars), 0, 1 << 30,
     "drop responses longer than N characters; 0 = no bound"},
    {"--max-repeat", "X", SLM_CLI_FLOAT, OFF(max_repeat), 0, 1,
     "drop responses whose share of repeated word 3-grams is\n"
     "above X; 1 = off (default 0.5)"},
    {"--no-dedup", NULL, SLM_CLI_FLAG, OFF(no_dedup), 0, 0,
     "keep responses identical (normalized) to one kept already"},
    {"--check", "MODE", SLM_CLI_STR, OFF(check), 0, 0,
     "keep only verified responses: exact or contains (the\n"
     "prompt's \"answer\", normalized) or regex (--check-regex)"},
    {"--check-regex", "RE", SLM_CLI_STR, OFF(check_regex), 0, 0,
     "a PCRE2 pattern a kept response must match"},
    {"--data-out", "FILE", SLM_CLI_STR, OFF(data_out), 0, 0,
     "where the data set goes (default OUT.data.jsonl)"},
    {"--student", "MODEL", SLM_CLI_STR, OFF(student), 0, 0,
     "the student: a model file with the teacher's vocabulary"},
    {"--student-preset", "NAME", SLM_CLI_STR, OFF(preset), 0, 0,
     "or a new student: an init preset (student-5m, ...) with\n"
     "random weights and the teacher's vocabulary"},
    {"--student-vocab", "WHICH", SLM_CLI_STR, OFF(student_vocab), 0, 0,
     "the preset student's vocabulary: teacher (default, all of\n"
     "it) or data (only the tokens the data set uses, with the\n"
     "byte alphabet and special tokens: a smaller student for a\n"
     "narrow task; byte-level BPE teachers, --kd-loss none)"},
    {"--student-out", "FILE", SLM_CLI_STR, OFF(student_out), 0, 0,
     "where the new student goes (default OUT.init.gguf)"},
    {"-o, --output", "OUT", SLM_CLI_STR, OFF(out), 0, 0, "the trained student"},
    {"--kd-loss", "L", SLM_CLI_STR, OFF(kd_loss), 0, 0,
     "forward-kl (default), reverse-kl or jsd: logit distillation;\n"
     "none: the data set alone (sequence-level distillation)"},
    {"--temperature", "T", SLM_CLI_FLOAT, OFF(temperature), 0.05f, 100,
     "the distillation temperature (default 2)"},
    {"--alpha", "A", SLM_CLI_FLOAT, OFF(alpha), 0, 1,
     "loss = A T^2 KL + (1 - A) cross-entropy (default 0.5)"},
    {"--top-k", "K", SLM_CLI_LONG, OFF(top_k), 0, 1 << 24,
     "the teacher's logits kept per position; 0 = all (default 0)"},
    {"--logits-cache", "DIR", SLM_CLI_STR, OFF(logits_cache), 0, 0,
     "keep the teacher's top-k logits in DIR, computed once and\n"
     "read in later epochs and runs (needs --top-k)"},
    {0},
};

static slm_cli_train_groups_t groups;

static const slm_cli_spec_t spec = {
    .verb = "distill",
    .synopsis = "(-m TEACHER | --teacher-url URL --teacher-model NAME) --prompts FILE\n"
                "                       (--student MODEL | --student-preset NAME)\n"
                "                       -o OUT [--samples-per-prompt N] [--kd-loss L]\n"
                "                       [--temperature T] [--alpha A] [--top-k K] [--steps N] ...",
    .about = "The teacher writes responses to the prompts (filtered, written as JSONL with\n"
             "provenance: {\"messages\"} for a teacher with a chat template, else\n"
             "{\"prompt\",\"completion\"}); the student trains on them with the fine-tuning\n"
             "job, its loss alpha T^2 KL(teacher_T, student_T) + (1 - alpha) cross-entropy\n"
             "on the teacher's logits (method kd) or, with --kd-loss none, the cross-entropy\n"
             "alone. SIGINT or SIGTERM checkpoints the training; --resume continues it.\n"
             "A remote teacher (--teacher-url) is asked over HTTP, each answer kept in\n"
             "--teacher-cache as it comes: an interrupted run continues where it stopped.\n",
    .groups = groups.groups,
    .operands_offset = OFF(files),
};

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->samples = o->max_tokens = o->s_top_k = o->min_chars = -1;
    o->s_temp = o->s_top_p = o->max_repeat = o->temperature = o->alpha = -1.0f;
    o->retries = -1;
    slm_cli_train_defaults(&o->train);
    slm_cli_train_groups(&groups, SLM_CLI_TRAIN_DISTILL, own_opts, OFF(train));
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (!o->teacher && !o->url)
        return slm_cli_usage_error("distill", "missing -m TEACHER (or --teacher-url URL)");
    if (o->teacher && o->url)
        return slm_cli_usage_error("distill", "give -m TEACHER or --teacher-url URL, not both");
    bool remote_opt = o->model || o->api || o->key_env || o->key_file || o->cache ||
                      o->concurrency || o->retries >= 0 || o->timeout;
    if (!o->url && remote_opt)
        return slm_cli_usage_error("distill", "--teacher-model, --teacher-api, "
                                   "--teacher-api-key-*, --teacher-cache, --concurrency, "
                                   "--teacher-retries and --teacher-timeout are for --teacher-url");
    if (o->url && !o->model)
        return slm_cli_usage_error("distill", "--teacher-url needs --teacher-model NAME");
    if (o->api && strcmp(o->api, "chat") && strcmp(o->api, "completions"))
        return slm_cli_usage_error("distill", "--teacher-api '%s': use chat or completions",
                                   o->api);
    if (o->key_env && o->key_file)
        return slm_cli_usage_error("distill", "give --teacher-api-key-env or "
                                   "--teacher-api-key-file, not both");
    if (o->url && o->kd_loss && strcmp(o->kd_loss, "none") != 0)
        return slm_cli_usage_error("distill", "--kd-loss %s needs the teacher's logits, which "
                                   "a remote teacher does not give: use --kd-loss none "
                                   "(the default with --teacher-url)", o->kd_loss);
    if (o->url && o->preset)
        return slm_cli_usage_error("distill", "--student-preset takes the teacher's "
                                   "vocabulary, which a remote teacher does not give: give "
                                   "--student MODEL");
    if (o->url && (o->temperature >= 0 || o->alpha >= 0 || o->top_k > 0 || o->logits_cache))
        return slm_cli_usage_error("distill", "--temperature, --alpha and --top-k are for "
                                   "logit distillation, which a remote teacher does not allow");
    if (!o->prompts && !o->train.resume)
        return slm_cli_usage_error("distill", "missing --prompts FILE");
    if (!o->out)
        return slm_cli_usage_error("distill", "missing -o OUT");
    if (!!o->student == !!o->preset)
        return slm_cli_usage_error("distill", "give --student MODEL or --student-preset NAME, "
                                   "one of them");
    if (o->student_out && !o->preset)
        return slm_cli_usage_error("distill", "--student-out is for --student-preset");
    if (o->student_vocab && strcmp(o->student_vocab, "teacher") != 0 &&
        strcmp(o->student_vocab, "data") != 0)
        return slm_cli_usage_error("distill", "--student-vocab '%s': use teacher or data",
                                   o->student_vocab);
    bool own_vocab = o->student_vocab && strcmp(o->student_vocab, "data") == 0;
    if (own_vocab && !o->preset)
        return slm_cli_usage_error("distill", "--student-vocab data is for --student-preset");
    if (own_vocab && !(o->kd_loss && strcmp(o->kd_loss, "none") == 0))
        return slm_cli_usage_error("distill", "--student-vocab data gives the student its own "
                                   "vocabulary, which logit distillation cannot compare with "
                                   "the teacher's: add --kd-loss none");
    static const char *const losses[] = {"none", "forward-kl", "reverse-kl", "jsd"};
    bool known = !o->kd_loss;
    for (size_t i = 0; !known && i < 4; i++)
        known = strcmp(o->kd_loss, losses[i]) == 0;
    if (!known)
        return slm_cli_usage_error("distill", "--kd-loss '%s': use forward-kl, reverse-kl, jsd "
                                   "or none", o->kd_loss);
    bool kd_opt = o->temperature >= 0 || o->alpha >= 0 || o->top_k > 0;
    bool no_kd = o->kd_loss && strcmp(o->kd_loss, "none") == 0;
    if (kd_opt && no_kd)
        return slm_cli_usage_error("distill", "--temperature, --alpha and --top-k are for "
                                   "logit distillation, not --kd-loss none");
    if (o->logits_cache && no_kd)
        return slm_cli_usage_error("distill", "--logits-cache is for logit distillation, not "
                                   "--kd-loss none");
    if (o->logits_cache && o->top_k <= 0)
        return slm_cli_usage_error("distill", "--logits-cache keeps the teacher's top-k "
                                   "logits: give --top-k K too");
    if (o->check && strcmp(o->check, "exact") && strcmp(o->check, "contains") &&
        strcmp(o->check, "regex"))
        return slm_cli_usage_error("distill", "--check '%s': use exact, contains or regex",
                                   o->check);
    if (o->check && strcmp(o->check, "regex") == 0 && !o->check_regex)
        return slm_cli_usage_error("distill", "--check regex needs --check-regex RE");
    return slm_cli_train_check("distill", &o->train);
}

static void set_long(json_t *o, const char *key, long v, long unset)
{
    if (v != unset)
        json_object_set_new(o, key, json_integer(v));
}

/* A float option as the user wrote it (0.8, not 0.800000011920929). */
static void set_real(json_t *o, const char *key, float v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)v);
    if (v >= 0)
        json_object_set_new(o, key, json_real(strtod(buf, NULL)));
}

static void set_str(json_t *o, const char *key, const char *v)
{
    if (v)
        json_object_set_new(o, key, json_string(v));
}

static json_t *synth_options(const opts_t *o, const char *seed)
{
    json_t *s = json_object();
    set_str(s, "prompts", o->prompts);
    set_str(s, "system", o->system);
    set_long(s, "samples_per_prompt", o->samples, -1);
    set_long(s, "max_tokens", o->max_tokens, -1);
    set_real(s, "temperature", o->s_temp);
    /* A remote teacher is sent top_k only when it is given: 0 (off) in provenance. */
    set_long(s, "top_k", o->url && o->s_top_k < 0 ? 0 : o->s_top_k, -1);
    set_real(s, "top_p", o->s_top_p);
    set_long(s, "min_chars", o->min_chars, -1);
    set_long(s, "max_chars", o->max_chars, 0);
    set_real(s, "max_repeat", o->max_repeat);
    if (o->no_dedup)
        json_object_set_new(s, "dedup", json_false());
    set_str(s, "check", o->check);
    set_str(s, "check_regex", o->check_regex);
    set_str(s, "seed", seed);
    set_str(s, "device", o->train.device);
    set_long(s, "threads", o->train.threads, 0);
    set_str(s, "chat_template", o->chat_template);
    return s;
}

static json_t *train_options(const slm_cli_train_t *o, const char *chat_template,
                             const char *seed)
{
    json_t *t = json_pack("{s:I, s:I, s:I, s:I, s:I}", "ctx", (json_int_t)o->ctx, "batch",
                          (json_int_t)o->batch, "accum", (json_int_t)o->accum, "epochs",
                          (json_int_t)o->epochs, "keep", (json_int_t)o->keep);
    set_real(t, "lr", o->lr);
    set_long(t, "steps", o->steps, 0);
    set_long(t, "warmup", o->warmup, 0);
    set_long(t, "eval_every", o->eval_every, 0);
    set_long(t, "save_every", o->save_every, 0);
    set_long(t, "threads", o->threads, 0);
    if (o->val_split > 0)
        json_object_set_new(t, "val_split", json_real(o->val_split));
    set_str(t, "val_data", o->val_data);
    set_str(t, "schedule", o->schedule);
    set_str(t, "log", o->log);
    set_str(t, "checkpoints", o->ckpt);
    set_str(t, "resume", o->resume);
    set_str(t, "device", o->device);
    set_str(t, "seed", seed);
    set_str(t, "dump_grads", o->dump_grads);
    set_str(t, "chat_template", chat_template);
    return t;
}

/* The remote teacher as provenance names it. */
static char *teacher_name(const opts_t *o)
{
    size_t n = strlen(o->model) + strlen(o->url) + 2;
    char *t = malloc(n);
    if (t)
        snprintf(t, n, "%s@%s", o->model, o->url);
    return t;
}

static char *options_json(const opts_t *o, const char *responses)
{
    char seed[24];
    const char *sd = slm_cli_train_seed(&o->train, seed);
    json_t *d = json_pack("{s:s, s:o, s:o}", "output", o->out, "synth", synth_options(o, sd),
                          "train", train_options(&o->train, o->chat_template, sd));
    set_str(d, "teacher", o->teacher);
    if (o->url) {
        char *name = teacher_name(o);
        set_str(d, "teacher_name", name);
        free(name);
        set_str(d, "responses", responses);
        json_object_set_new(d, "responses_chat",
                            json_boolean(!o->api || strcmp(o->api, "chat") == 0));
    }
    set_str(d, "student", o->student);
    set_str(d, "student_preset", o->preset);
    set_str(d, "student_output", o->student_out);
    set_str(d, "student_vocab", o->student_vocab);
    set_str(d, "data_output", o->data_out);
    set_str(d, "kd_loss", o->kd_loss);
    set_real(d, "temperature", o->temperature);
    set_real(d, "alpha", o->alpha);
    set_long(d, "top_k", o->top_k, 0);
    set_str(d, "logits_cache", o->logits_cache);
    char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    return text;
}

typedef struct progress {
    slm_cli_train_progress_t train;
} progress_t;

/* The synth and init steps in a line of their own; the training as finetune shows it. */
static void on_progress(void *user, const slm_job_progress_t *ev)
{
    progress_t *p = user;
    if (strcmp(ev->stage, "train") == 0) {
        slm_cli_train_on_progress(&p->train, ev);
        return;
    }
    if (strcmp(ev->stage, "synth") != 0)
        return;
    char line[160];
    snprintf(line, sizeof line, "synth: prompt %llu/%llu, %.0f responses kept",
             (unsigned long long)ev->done, (unsigned long long)ev->total, ev->value);
    if (!p->train.tty) {
        slm_log(SLM_LOG_INFO, "distill", "%s", line);
        return;
    }
    fprintf(stderr, "\r%-78s%s", line, ev->done >= ev->total ? "\n" : "");
}

static long long integer(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static void print_text(const void *user, const json_t *r, const json_t *st)
{
    const opts_t *o = user;
    const json_t *s = json_object_get(r, "synth"), *t = json_object_get(r, "train");
    if (s) {
        printf("teacher %s%s%s wrote %lld responses to %lld prompts; kept %lld in %s\n",
               o->teacher ? o->teacher : o->model, o->url ? " at " : "", o->url ? o->url : "",
               integer(s, "generated"), integer(s, "prompts"), integer(s, "kept"),
               json_string_value(json_object_get(st, "data_output")));
        if (integer(s, "teacher_failed"))
            printf("  failed requests     %lld (reported above; a re-run asks them again)\n",
                   integer(s, "teacher_failed"));
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(s, "dropped"), key, v)
            if (json_integer_value(v))
                printf("  dropped %-13s %lld\n", key, (long long)json_integer_value(v));
    }
    const json_t *init = json_object_get(r, "init");
    if (init)
        printf("student %s (%s, %lld tokens: %s)\n",
               json_string_value(json_object_get(st, "student_output")), o->preset,
               integer(init, "n_vocab"),
               o->student_vocab && strcmp(o->student_vocab, "data") == 0
                   ? "the teacher's that the data set uses" : "the teacher's vocabulary");
    if (t && !o->train.dump_grads) {
        printf("trained the student with %s (%s)\n",
               json_string_value(json_object_get(t, "method")),
               json_string_value(json_object_get(t, "plugin")));
        slm_cli_train_print(t, o->out, NULL);
    }
}

/* The distill job (synth, init, train), the remote teacher's responses given. */
static int run_job(const opts_t *o, slm_registry_t *reg, const char *responses)
{
    slm_error_t err;
    slm_error_init(&err);
    progress_t prog = {.train = {.tty = isatty(2), .verb = "distill"}};
    char *text = options_json(o, responses);
    slm_job_t *job = NULL;
    if (!text || slm_job_new(reg, "distill", text, &job, &err) != SLM_OK) {
        free(text);
        slm_job_free(job);
        return text ? slm_cli_fail("distill", &err) : SLM_CLI_FAILED;
    }
    free(text);
    slm_job_set_progress(job, on_progress, &prog);
    int rc = slm_cli_train_run(job, &prog.train, "distill");
    if (rc == SLM_OK)
        rc = slm_cli_train_report("distill", slm_job_report(job), o->train.json, print_text, o);
    slm_job_free(job);
    return rc;
}

/* The synth job alone, writing the prompts (each with its system prompt) for the
 * remote teacher's client. */
static int write_requests(const opts_t *o, slm_registry_t *reg, const char *path)
{
    json_t *so = json_pack("{s:s, s:s}", "prompts", o->prompts, "requests_output", path);
    set_str(so, "system", o->system);
    char *text = so ? json_dumps(so, JSON_COMPACT) : NULL;
    json_decref(so);
    slm_error_t err;
    slm_error_init(&err);
    slm_job_t *job = NULL;
    int rc = text && slm_job_new(reg, "synth", text, &job, &err) == SLM_OK &&
             slm_job_run(job, &err) == SLM_OK ? SLM_CLI_OK
                                              : text ? slm_cli_fail("distill", &err)
                                                     : SLM_CLI_FAILED;
    free(text);
    slm_job_free(job);
    return rc;
}

static char *default_cache(const char *out)
{
    size_t n = strlen(out) + 32;
    char *c = malloc(n);
    if (c)
        snprintf(c, n, "%s.teacher-cache.jsonl", out);
    return c;
}

/* The remote teacher answers into the cache; its responses go to dir/responses.jsonl. */
static int ask_remote(const opts_t *o, slm_registry_t *reg, const char *dir, char *responses,
                      size_t n)
{
    char requests[4096];
    snprintf(requests, sizeof requests, "%s/requests.jsonl", dir);
    snprintf(responses, n, "%s/responses.jsonl", dir);
    int rc = write_requests(o, reg, requests);
    if (rc != SLM_CLI_OK)
        return rc;
    char *cache = o->cache ? NULL : default_cache(o->out);
    slm_cli_remote_t r = {
        .url = o->url, .model = o->model,
        .completions = o->api && strcmp(o->api, "completions") == 0,
        .key_env = o->key_env ? o->key_env : "OPENAI_API_KEY", .key_env_given = o->key_env,
        .key_file = o->key_file, .concurrency = o->concurrency ? o->concurrency : 4,
        .retries = o->retries >= 0 ? o->retries : 4, .timeout_s = o->timeout ? o->timeout : 600,
        .cache = o->cache ? o->cache : cache, .samples = o->samples > 0 ? o->samples : 1,
        .max_tokens = o->max_tokens > 0 ? o->max_tokens : 128,
        .top_k = o->s_top_k >= 0 ? o->s_top_k : -1,
        .temperature = o->s_temp >= 0 ? o->s_temp : 0.8,
        .top_p = o->s_top_p >= 0 ? o->s_top_p : 0.95,
        .seed = slm_cli_seed_value(&o->train.seed, false, 42)};
    rc = r.cache ? slm_cli_remote_run(&r, requests, responses) : SLM_CLI_FAILED;
    free(cache);
    unlink(requests);
    return rc;
}

static int run(const void *opts, slm_registry_t *reg)
{
    const opts_t *o = opts;
    char dir[4096] = "", responses[4200] = "";
    if (o->url && !o->train.resume) {
        const char *tmp = secure_getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/slmops-distill-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            fprintf(stderr, "slmops distill: %s: cannot make a scratch folder: %m\n", dir);
            return SLM_CLI_FAILED;
        }
        int rc = ask_remote(o, reg, dir, responses, sizeof responses);
        if (rc != SLM_CLI_OK) {
            unlink(responses);
            rmdir(dir);
            return rc;
        }
    }
    int rc = run_job(o, reg, responses[0] ? responses : NULL);
    if (dir[0]) {
        unlink(responses);
        rmdir(dir);
    }
    return rc;
}

int slm_cli_distill(int argc, char **argv)
{
    opts_t o;
    return slm_cli_run_with_registry(parse(argc, argv, &o), run, &o);
}
