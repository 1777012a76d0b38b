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
#include "cli/train-progress.h"
#include "cli/verbs.h"

typedef struct opts {
    const char *model, *data, *method, *out, *out_gguf, *to, *device;
    const char *val_data, *schedule, *log, *ckpt, *resume, *targets, *quant, *dump_grads;
    const char *chat_template;
    slm_cli_strs_t loras, files;
    long ctx, batch, accum, epochs, steps, warmup, eval_every, val_batches, save_every, keep;
    long rank, threads;
    float lr, clip, wd, alpha, dropout, val_split, min_lr;
    slm_cli_seed_t seed;
    bool rslora, skip_bad, json;
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
    SLM_CLI_CTX_OPT(OFF(ctx), "tokens per sequence (default 512)"),
    {"-b, --batch", "N", SLM_CLI_LONG, OFF(batch), 1, 4096, "sequences per micro-batch (default 1)"},
    {"--grad-accum", "N", SLM_CLI_LONG, OFF(accum), 1, 65536,
     "micro-batches per optimizer step (default 1)"},
    {"--epochs", "N", SLM_CLI_LONG, OFF(epochs), 1, 1000000,
     "passes over the data (default 1; --steps wins)"},
    {"--steps", "N", SLM_CLI_LONG, OFF(steps), 1, 1L << 40, "optimizer steps (default: --epochs)"},
    {"--lr", "X", SLM_CLI_FLOAT, OFF(lr), 0, 1000, "peak learning rate (default 1e-4)"},
    {"--warmup", "N", SLM_CLI_LONG, OFF(warmup), 0, 1L << 40,
     "steps of linear warmup (default 0)"},
    {"--schedule", "S", SLM_CLI_STR, OFF(schedule), 0, 0,
     "learning rate after warmup: linear (default), cosine\n"
     "or constant"},
    {"--min-lr-ratio", "X", SLM_CLI_FLOAT, OFF(min_lr), 0, 1,
     "where the schedule ends, as a share of --lr (default 0)"},
    {"--clip", "X", SLM_CLI_FLOAT, OFF(clip), 0, 1e9,
     "clip the global gradient norm to X; 0 = off (default 1)"},
    {"--weight-decay", "X", SLM_CLI_FLOAT, OFF(wd), 0, 1000,
     "AdamW's decoupled weight decay, not on norms and biases\n"
     "(default 0)"},
    {"--seed", "N", SLM_CLI_SEED, OFF(seed), 0, 0,
     "seed of the data order, initial adapters and dropout\n"
     "(default 42)"},
    {"--lora-rank", "R", SLM_CLI_LONG, OFF(rank), 1, 4096, "adapter rank (default 8)"},
    {"--lora-alpha", "A", SLM_CLI_FLOAT, OFF(alpha), 1e-6f, 1e6f,
     "adapter alpha: the scale is A / R (default 8)"},
    {"--lora-dropout", "P", SLM_CLI_FLOAT, OFF(dropout), 0, 0.99f,
     "dropout on the adapter's input while training (default 0)"},
    {"--lora-targets", "LIST", SLM_CLI_STR, OFF(targets), 0, 0,
     "weights that get adapters, comma-separated: q k v o gate\n"
     "up down output, or tensor names (default q,v)"},
    {"--rslora", NULL, SLM_CLI_FLAG, OFF(rslora), 0, 0, "scale A / sqrt(R) (rsLoRA)"},
    {"--quant", "T", SLM_CLI_STR, OFF(quant), 0, 0,
     "qlora: the type frozen weight matrices are kept in\n"
     "(nf4, q4_0, q8_0, ... any quantizer's type; default: nf4\n"
     "for float weights, a quantized base's own types)"},
    {"--lora", "FILE[:SCALE]", SLM_CLI_STRS, OFF(loras), 0, 0,
     "a frozen adapter applied under the one that trains; may\n"
     "be repeated"},
    {"--val-split", "F", SLM_CLI_FLOAT, OFF(val_split), 0, 0.99f,
     "hold out this share of the examples for validation"},
    {"--val-data", "FILE", SLM_CLI_STR, OFF(val_data), 0, 0, "validation data (instead of --val-split)"},
    {"--val-batches", "N", SLM_CLI_LONG, OFF(val_batches), 0, 1L << 30,
     "validate on at most N batches; 0 = all (default 0)"},
    {"--eval-every", "N", SLM_CLI_LONG, OFF(eval_every), 0, 1L << 40,
     "validation loss every N steps, and at the end"},
    {"--log", "FILE", SLM_CLI_STR, OFF(log), 0, 0, "one JSON object per step into FILE"},
    {"--save-every", "N", SLM_CLI_LONG, OFF(save_every), 0, 1L << 40,
     "a checkpoint every N steps, and at the end"},
    {"--checkpoints", "DIR", SLM_CLI_STR, OFF(ckpt), 0, 0,
     "where checkpoints go (default OUT.checkpoints)"},
    {"--resume", "DIR", SLM_CLI_STR, OFF(resume), 0, 0,
     "continue from the newest complete checkpoint in DIR\n"
     "(or from checkpoint folder DIR) with the same settings"},
    {"--keep", "N", SLM_CLI_LONG, OFF(keep), 0, 1 << 20,
     "checkpoints kept; 0 = all (default 3)"},
    {"--skip-bad-lines", NULL, SLM_CLI_FLAG, OFF(skip_bad), 0, 0,
     "skip and count data lines that cannot be used"},
    {"--dump-grads", "FILE", SLM_CLI_STR, OFF(dump_grads), 0, 0,
     "debugging: write the first batch, the loss and every\n"
     "trainable tensor with its gradient to FILE and stop"},
    {"--device", "SPEC", SLM_CLI_STR, OFF(device), 0, 0, "auto (default), cpu, cpu:0, ..."},
    {"--json", NULL, SLM_CLI_FLAG, OFF(json), 0, 0, "print the report (whole loss curve) as JSON"},
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Common options", slm_cli_threads_opt, OFF(threads)},
    {0},
};

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
    .groups = groups,
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
    o->ctx = 512;
    o->batch = o->accum = o->epochs = 1;
    o->keep = 3;
    o->lr = 1e-4f;
    o->clip = 1.0f;
    o->rank = -1;
    o->alpha = o->dropout = -1.0f;
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (!o->method)
        o->method = "lora";
    if (!o->model)
        return slm_cli_usage_error("finetune", "missing -m BASE");
    if (!o->data)
        return slm_cli_usage_error("finetune", "missing --data FILE");
    if (!o->out && !o->dump_grads)
        return slm_cli_usage_error("finetune", "missing -o OUT");
    if (o->ctx < 2)
        return slm_cli_usage_error("finetune", "--ctx %ld holds no next token to learn: use 2 "
                                   "or more", o->ctx);
    if (o->val_data && o->val_split > 0)
        return slm_cli_usage_error("finetune", "give --val-data or --val-split, not both");
    bool lora_opt = o->rank > 0 || o->alpha >= 0 || o->dropout >= 0 || o->targets || o->rslora;
    if (lora_opt && !is_lora_method(o->method))
        return slm_cli_usage_error("finetune", "--lora-* options are for --method lora or "
                                   "qlora, not %s", o->method);
    if (o->quant && strcmp(o->method, "qlora") != 0)
        return slm_cli_usage_error("finetune", "--quant is for --method qlora");
    if (o->schedule && strcmp(o->schedule, "linear") != 0 && strcmp(o->schedule, "cosine") != 0 &&
        strcmp(o->schedule, "constant") != 0)
        return slm_cli_usage_error("finetune", "--schedule '%s': use linear, cosine or "
                                   "constant", o->schedule);
    if (o->steps > 0 && o->warmup >= o->steps && (!o->schedule ||
                                                  strcmp(o->schedule, "constant") != 0))
        return slm_cli_usage_error("finetune", "--warmup %ld must be less than --steps %ld",
                                   o->warmup, o->steps);
    return SLM_CLI_OK;
}

/* The method's settings: only what the user gave, so each plugin's defaults apply. */
static json_t *method_options(const opts_t *o)
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

static int set_more(const opts_t *o, slm_job_t *job, slm_error_t *err)
{
    json_t *extra = json_pack("{s:o}", "method_options", method_options(o));
    char *text = extra ? json_dumps(extra, JSON_COMPACT) : NULL;
    json_decref(extra);
    int rc = text ? slm_job_set_options(job, text, err) : SLM_E_NOMEM;
    free(text);
    for (size_t i = 0; i < o->loras.n && rc == SLM_OK; i++)
        rc = slm_job_append_string(job, "adapters", o->loras.v[i], err);
    if (rc == SLM_OK && o->seed.given) {
        char seed[24];
        snprintf(seed, sizeof seed, "%llu",
                 (unsigned long long)slm_cli_seed_value(&o->seed, false, 42));
        rc = slm_job_set_string(job, "seed", seed, err);
    }
    return rc;
}

static int set_options(const opts_t *o, slm_job_t *job, slm_error_t *err)
{
    int rc;
    if ((rc = slm_job_set_string(job, "model", o->model, err)) ||
        (rc = slm_job_set_string(job, "data", o->data, err)) ||
        (rc = slm_job_set_string(job, "method", o->method, err)) ||
        (rc = slm_job_set_string(job, "output", o->out, err)) ||
        (rc = slm_job_set_string(job, "output_gguf", o->out_gguf, err)) ||
        (rc = slm_job_set_string(job, "format", o->to, err)) ||
        (rc = slm_job_set_string(job, "val_data", o->val_data, err)) ||
        (rc = slm_job_set_string(job, "schedule", o->schedule, err)) ||
        (rc = slm_job_set_string(job, "log", o->log, err)) ||
        (rc = slm_job_set_string(job, "checkpoints", o->ckpt, err)) ||
        (rc = slm_job_set_string(job, "resume", o->resume, err)) ||
        (rc = slm_job_set_string(job, "device", o->device, err)) ||
        (rc = slm_job_set_string(job, "dump_grads", o->dump_grads, err)) ||
        (rc = slm_job_set_string(job, "chat_template", o->chat_template, err)) ||
        (rc = slm_job_set_int(job, "ctx", o->ctx, err)) ||
        (rc = slm_job_set_int(job, "batch", o->batch, err)) ||
        (rc = slm_job_set_int(job, "accum", o->accum, err)) ||
        (rc = slm_job_set_int(job, "epochs", o->epochs, err)) ||
        (rc = slm_job_set_int(job, "steps", o->steps, err)) ||
        (rc = slm_job_set_int(job, "warmup", o->warmup, err)) ||
        (rc = slm_job_set_int(job, "eval_every", o->eval_every, err)) ||
        (rc = slm_job_set_int(job, "val_batches", o->val_batches, err)) ||
        (rc = slm_job_set_int(job, "save_every", o->save_every, err)) ||
        (rc = slm_job_set_int(job, "keep", o->keep, err)) ||
        (rc = slm_job_set_int(job, "threads", o->threads, err)) ||
        (rc = slm_job_set_number(job, "lr", o->lr, err)) ||
        (rc = slm_job_set_number(job, "clip", o->clip, err)) ||
        (rc = slm_job_set_number(job, "weight_decay", o->wd, err)) ||
        (rc = slm_job_set_number(job, "min_lr_ratio", o->min_lr, err)) ||
        (rc = slm_job_set_number(job, "val_split", o->val_split, err)) ||
        (rc = slm_job_set_bool(job, "skip_bad_lines", o->skip_bad, err)))
        return rc;
    return set_more(o, job, err);
}

/* ---- the report ---- */

static int print_report(const opts_t *o, const char *report)
{
    json_t *doc = report ? json_loads(report, 0, NULL) : NULL;
    const json_t *r = json_object_get(doc, "results");
    int rc = SLM_CLI_OK;
    /* Under a launcher rank 0 prints; the other ranks' reports are the same. */
    if (json_integer_value(json_object_get(r, "rank")) > 0 ||
        json_integer_value(json_object_get(json_object_get(r, "train"), "rank")) > 0) {
        json_decref(doc);
        return rc;
    }
    if (!json_is_object(r)) {
        fprintf(stderr, "slmops finetune: the job wrote no report (out of memory)\n");
        rc = SLM_CLI_FAILED;
    } else if (o->json) {
        json_t *copy = json_deep_copy(r);
        json_object_set_new(copy, "settings", json_deep_copy(json_object_get(doc, "settings")));
        rc = slm_cli_print_json(copy);
    } else {
        printf("finetuned %s with %s (%s) on %s\n", o->model,
               json_string_value(json_object_get(r, "method")),
               json_string_value(json_object_get(r, "plugin")), o->data);
        slm_cli_train_print(r, o->out, o->out_gguf);
    }
    json_decref(doc);
    return rc;
}

static int run(const opts_t *o, slm_registry_t *reg)
{
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
    if (rc == SLM_OK)
        rc = o->dump_grads ? SLM_CLI_OK : print_report(o, slm_job_report(job));
    slm_job_free(job);
    return rc;
}

int slm_cli_finetune(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    slm_registry_t *reg = slm_cli_registry_open();
    if (!reg)
        return SLM_CLI_FAILED;
    rc = run(&o, reg);
    slm_registry_free(reg);
    return rc;
}
