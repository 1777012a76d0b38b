/* `slmops finetune -m BASE --data FILE [--method full|lora|qlora] -o OUT`: train a
 * model or an adapter (a "train" job, slmops/job.h) with a live progress line. */
#include "config.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/job.h>
#include <slmops/log.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/train-options.h"
#include "cli/train-progress.h"
#include "cli/verbs.h"

typedef struct opts {
    const char *model, *data, *method, *out, *out_gguf, *to, *chat_template;
    slm_cli_train_t train;
    slm_cli_strs_t files;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"-m, --model", "BASE", SLM_CLI_STR, OFF(model), 0, 0,
     "the base model (GGUF file, Hugging Face folder, llama2.c)"},
    {"--data", "FILE", SLM_CLI_STR, OFF(data), 0, 0,
     "training data: plain text, or JSONL lines of {\"text\"},\n"
     "{\"prompt\",\"completion\"} or {\"messages\":[...]}"},
    {"--chat-template", "NAME|TEMPLATE", SLM_CLI_STR, OFF(chat_template), 0, 0,
     "the chat template {\"messages\"} lines are rendered with:\n"
     "a built-in name (chatml, ...) or the template's text\n"
     "(default: the model's own)"},
    {"--method", "M", SLM_CLI_STR, OFF(method), 0, 0,
     "full, lora or qlora, or any method a trainer plugin\n"
     "provides (default lora; see 'slmops plugins')"},
    {"-o, --output", "OUT", SLM_CLI_STR, OFF(out), 0, 0,
     "the trained model (full) or adapter: a PEFT folder, or a\n"
     "llama.cpp adapter GGUF when OUT ends in .gguf"},
    {"--output-gguf", "FILE", SLM_CLI_STR, OFF(out_gguf), 0, 0,
     "also write the result as GGUF (lora: a llama.cpp adapter)"},
    {"--to", "FORMAT", SLM_CLI_STR, OFF(to), 0, 0,
     "format plugin of OUT (default: by OUT's extension)"},
    {0},
};

static slm_cli_train_groups_t groups;

static void more_help(FILE *f)
{
    fprintf(f, "\nSIGINT or SIGTERM ends the current step, writes a checkpoint and exits\n"
               "130 or 143; --resume continues bit for bit.\n");
}

static const slm_cli_spec_t spec = {
    .verb = "finetune",
    .synopsis = "-m BASE --data FILE [--method full|lora|qlora] -o OUT\n"
                "                        [--ctx N] [--batch N] [--grad-accum N]\n"
                "                        [--epochs N | --steps N] [--lr X] [--json] ...",
    .about = "Fine-tune BASE on FILE with a trainer plugin's method: full (every weight,\n"
             "written as a model of BASE's architecture), lora (low-rank adapters on a\n"
             "frozen base, written as a PEFT folder or a llama.cpp adapter GGUF) or qlora\n"
             "(lora with the frozen weights kept quantized). AdamW, warmup and a linear\n"
             "or cosine schedule, gradient clipping, f32 master weights; the same seed and\n"
             "thread count give the same losses bit for bit.\n",
    .groups = groups.groups,
    .operand_names = NULL,
    .min_operands = 0,
    .max_operands = 0,
    .operands_offset = OFF(files),
    .more_help = more_help,
};

static bool is_lora_method(const char *m)
{
    return strcmp(m, "lora") == 0 || strcmp(m, "qlora") == 0;
}

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    slm_cli_train_defaults(&o->train);
    slm_cli_train_groups(&groups, SLM_CLI_TRAIN_FINETUNE, own_opts, OFF(train));
    const slm_cli_train_t *t = &o->train;
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (!o->method)
        o->method = "lora";
    if (!o->model)
        return slm_cli_usage_error("finetune", "missing -m BASE");
    if (!o->data)
        return slm_cli_usage_error("finetune", "missing --data FILE");
    if (!o->out && !t->dump_grads)
        return slm_cli_usage_error("finetune", "missing -o OUT");
    if ((rc = slm_cli_train_check("finetune", t)) != SLM_CLI_OK)
        return rc;
    bool lora_opt = t->rank > 0 || t->alpha >= 0 || t->dropout >= 0 || t->targets || t->rslora;
    if (lora_opt && !is_lora_method(o->method))
        return slm_cli_usage_error("finetune", "--lora-* options are for --method lora or "
                                   "qlora, not %s", o->method);
    if (t->quant && strcmp(o->method, "qlora") != 0)
        return slm_cli_usage_error("finetune", "--quant is for --method qlora");
    if (t->schedule && strcmp(t->schedule, "linear") != 0 && strcmp(t->schedule, "cosine") != 0 &&
        strcmp(t->schedule, "constant") != 0)
        return slm_cli_usage_error("finetune", "--schedule '%s': use linear, cosine or "
                                   "constant", t->schedule);
    if (t->steps > 0 && t->warmup >= t->steps && (!t->schedule ||
                                                  strcmp(t->schedule, "constant") != 0))
        return slm_cli_usage_error("finetune", "--warmup %ld must be less than --steps %ld",
                                   t->warmup, t->steps);
    return SLM_CLI_OK;
}

/* The method's settings: only what the user gave, so each plugin's defaults apply. */
static json_t *method_options(const slm_cli_train_t *o)
{
    json_t *m = json_object();
    if (o->rank > 0)
        json_object_set_new(m, "rank", json_integer(o->rank));
    if (o->alpha >= 0)
        json_object_set_new(m, "alpha", json_real(o->alpha));
    if (o->dropout >= 0)
        json_object_set_new(m, "dropout", json_real(o->dropout));
    if (o->targets)
        json_object_set_new(m, "targets", json_string(o->targets));
    if (o->rslora)
        json_object_set_new(m, "rslora", json_true());
    if (o->quant)
        json_object_set_new(m, "quant", json_string(o->quant));
    return m;
}

static int set_more(const slm_cli_train_t *t, slm_job_t *job, slm_error_t *err)
{
    json_t *extra = json_pack("{s:o}", "method_options", method_options(t));
    char *text = extra ? json_dumps(extra, JSON_COMPACT) : NULL;
    json_decref(extra);
    int rc = text ? slm_job_set_options(job, text, err) : SLM_E_NOMEM;
    free(text);
    for (size_t i = 0; i < t->loras.n && rc == SLM_OK; i++)
        rc = slm_job_append_string(job, "adapters", t->loras.v[i], err);
    char seed[24];
    if (rc == SLM_OK && slm_cli_train_seed(t, seed))
        rc = slm_job_set_string(job, "seed", seed, err);
    return rc;
}

static int set_options(const opts_t *o, slm_job_t *job, slm_error_t *err)
{
    const slm_cli_train_t *t = &o->train;
    int rc;
    if ((rc = slm_job_set_string(job, "model", o->model, err)) ||
        (rc = slm_job_set_string(job, "data", o->data, err)) ||
        (rc = slm_job_set_string(job, "method", o->method, err)) ||
        (rc = slm_job_set_string(job, "output", o->out, err)) ||
        (rc = slm_job_set_string(job, "output_gguf", o->out_gguf, err)) ||
        (rc = slm_job_set_string(job, "format", o->to, err)) ||
        (rc = slm_job_set_string(job, "val_data", t->val_data, err)) ||
        (rc = slm_job_set_string(job, "schedule", t->schedule, err)) ||
        (rc = slm_job_set_string(job, "log", t->log, err)) ||
        (rc = slm_job_set_string(job, "checkpoints", t->ckpt, err)) ||
        (rc = slm_job_set_string(job, "resume", t->resume, err)) ||
        (rc = slm_job_set_string(job, "device", t->device, err)) ||
        (rc = slm_job_set_string(job, "dump_grads", t->dump_grads, err)) ||
        (rc = slm_job_set_string(job, "chat_template", o->chat_template, err)) ||
        (rc = slm_job_set_int(job, "ctx", t->ctx, err)) ||
        (rc = slm_job_set_int(job, "batch", t->batch, err)) ||
        (rc = slm_job_set_int(job, "accum", t->accum, err)) ||
        (rc = slm_job_set_int(job, "epochs", t->epochs, err)) ||
        (rc = slm_job_set_int(job, "steps", t->steps, err)) ||
        (rc = slm_job_set_int(job, "warmup", t->warmup, err)) ||
        (rc = slm_job_set_int(job, "eval_every", t->eval_every, err)) ||
        (rc = slm_job_set_int(job, "val_batches", t->val_batches, err)) ||
        (rc = slm_job_set_int(job, "save_every", t->save_every, err)) ||
        (rc = slm_job_set_int(job, "keep", t->keep, err)) ||
        (rc = slm_job_set_int(job, "threads", o->train.threads, err)) ||
        (rc = slm_job_set_number(job, "lr", t->lr, err)) ||
        (rc = slm_job_set_number(job, "clip", t->clip, err)) ||
        (rc = slm_job_set_number(job, "weight_decay", t->wd, err)) ||
        (rc = slm_job_set_number(job, "min_lr_ratio", t->min_lr, err)) ||
        (rc = slm_job_set_number(job, "val_split", t->val_split, err)) ||
        (rc = slm_job_set_bool(job, "skip_bad_lines", t->skip_bad, err)))
        return rc;
    return set_more(t, job, err);
}

/* ---- the report ---- */

static void print_text(const void *user, const json_t *r, const json_t *settings)
{
    const opts_t *o = user;
    (void)settings;
    printf("finetuned %s with %s (%s) on %s\n", o->model,
           json_string_value(json_object_get(r, "method")),
           json_string_value(json_object_get(r, "plugin")), o->data);
    slm_cli_train_print(r, o->out, o->out_gguf);
}

static int run(const void *opts, slm_registry_t *reg)
{
    const opts_t *o = opts;
    slm_error_t err;
    slm_error_init(&err);
    slm_cli_train_progress_t prog = {.tty = isatty(2), .verb = "finetune"};
    slm_job_t *job = NULL;
    if (slm_job_new(reg, "train", NULL, &job, &err) != SLM_OK ||
        set_options(o, job, &err) != SLM_OK) {
        slm_job_free(job);
        return slm_cli_fail("finetune", &err);
    }
    slm_job_set_progress(job, slm_cli_train_on_progress, &prog);
    int rc = slm_cli_train_run(job, &prog, "finetune");
    if (rc == SLM_OK && !o->train.dump_grads)
        rc = slm_cli_train_report("finetune", slm_job_report(job), o->train.json, print_text, o);
    slm_job_free(job);
    return rc;
}

int slm_cli_finetune(int argc, char **argv)
{
    opts_t o;
    return slm_cli_run_with_registry(parse(argc, argv, &o), run, &o);
}
