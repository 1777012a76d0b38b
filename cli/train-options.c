/* The training options of `finetune` and `distill` in one table: an entry says which
 * verbs offer it, so that an option is written once however many verbs take it. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli/common.h"
#include "cli/train-options.h"

typedef struct train_opt {
    int verbs;                /* SLM_CLI_TRAIN_* of the verbs offering it */
    slm_cli_opt_t opt;
} train_opt_t;

enum { F = SLM_CLI_TRAIN_FINETUNE, D = SLM_CLI_TRAIN_DISTILL, FD = F | D };

#define T(f) offsetof(slm_cli_train_t, f)
/* In help order; where the verbs word an option differently it has one entry each. */
static const train_opt_t all[] = {
    {F, SLM_CLI_CTX_OPT(T(ctx), "tokens per sequence (default 512)")},
    {D, SLM_CLI_CTX_OPT(T(ctx), "tokens per training sequence (default 512)")},
    {FD, {"-b, --batch", "N", SLM_CLI_LONG, T(batch), 1, 4096,
          "sequences per micro-batch (default 1)"}},
    {FD, {"--grad-accum", "N", SLM_CLI_LONG, T(accum), 1, 65536,
          "micro-batches per optimizer step (default 1)"}},
    {FD, {"--epochs", "N", SLM_CLI_LONG, T(epochs), 1, 1000000,
          "passes over the data (default 1; --steps wins)"}},
    {FD, {"--steps", "N", SLM_CLI_LONG, T(steps), 1, 1L << 40,
          "optimizer steps (default: --epochs)"}},
    {FD, {"--lr", "X", SLM_CLI_FLOAT, T(lr), 0, 1000, "peak learning rate (default 1e-4)"}},
    {FD, {"--warmup", "N", SLM_CLI_LONG, T(warmup), 0, 1L << 40,
          "steps of linear warmup (default 0)"}},
    {F, {"--schedule", "S", SLM_CLI_STR, T(schedule), 0, 0,
         "learning rate after warmup: linear (default), cosine\n"
         "or constant"}},
    {D, {"--schedule", "S", SLM_CLI_STR, T(schedule), 0, 0,
         "linear (default), cosine or constant"}},
    {F, {"--min-lr-ratio", "X", SLM_CLI_FLOAT, T(min_lr), 0, 1,
         "where the schedule ends, as a share of --lr (default 0)"}},
    {F, {"--clip", "X", SLM_CLI_FLOAT, T(clip), 0, 1e9,
         "clip the global gradient norm to X; 0 = off (default 1)"}},
    {F, {"--weight-decay", "X", SLM_CLI_FLOAT, T(wd), 0, 1000,
         "AdamW's decoupled weight decay, not on norms and biases\n"
         "(default 0)"}},
    {F, {"--seed", "N", SLM_CLI_SEED, T(seed), 0, 0,
         "seed of the data order, initial adapters and dropout\n"
         "(default 42)"}},
    {D, {"--seed", "N", SLM_CLI_SEED, T(seed), 0, 0,
         "seed of the sampling, the student's weights and the data\n"
         "order (default 42)"}},
    {F, {"--lora-rank", "R", SLM_CLI_LONG, T(rank), 1, 4096, "adapter rank (default 8)"}},
    {F, {"--lora-alpha", "A", SLM_CLI_FLOAT, T(alpha), 1e-6f, 1e6f,
         "adapter alpha: the scale is A / R (default 8)"}},
    {F, {"--lora-dropout", "P", SLM_CLI_FLOAT, T(dropout), 0, 0.99f,
         "dropout on the adapter's input while training (default 0)"}},
    {F, {"--lora-targets", "LIST", SLM_CLI_STR, T(targets), 0, 0,
         "weights that get adapters, comma-separated: q k v o gate\n"
         "up down output, or tensor names (default q,v)"}},
    {F, {"--rslora", NULL, SLM_CLI_FLAG, T(rslora), 0, 0, "scale A / sqrt(R) (rsLoRA)"}},
    {F, {"--quant", "T", SLM_CLI_STR, T(quant), 0, 0,
         "qlora: the type frozen weight matrices are kept in\n"
         "(nf4, q4_0, q8_0, ... any quantizer's type; default: nf4\n"
         "for float weights, a quantized base's own types)"}},
    {F, {"--lora", "FILE[:SCALE]", SLM_CLI_STRS, T(loras), 0, 0,
         "a frozen adapter applied under the one that trains; may\n"
         "be repeated"}},
    {FD, {"--val-split", "F", SLM_CLI_FLOAT, T(val_split), 0, 0.99f,
          "hold out this share of the examples for validation"}},
    {FD, {"--val-data", "FILE", SLM_CLI_STR, T(val_data), 0, 0,
          "validation data (instead of --val-split)"}},
    {F, {"--val-batches", "N", SLM_CLI_LONG, T(val_batches), 0, 1L << 30,
         "validate on at most N batches; 0 = all (default 0)"}},
    {FD, {"--eval-every", "N", SLM_CLI_LONG, T(eval_every), 0, 1L << 40,
          "validation loss every N steps, and at the end"}},
    {F, {"--log", "FILE", SLM_CLI_STR, T(log), 0, 0, "one JSON object per step into FILE"}},
    {D, {"--log", "FILE", SLM_CLI_STR, T(log), 0, 0,
         "one JSON object per training step into FILE"}},
    {FD, {"--save-every", "N", SLM_CLI_LONG, T(save_every), 0, 1L << 40,
          "a checkpoint every N steps, and at the end"}},
    {FD, {"--checkpoints", "DIR", SLM_CLI_STR, T(ckpt), 0, 0,
          "where checkpoints go (default OUT.checkpoints)"}},
    {F, {"--resume", "DIR", SLM_CLI_STR, T(resume), 0, 0,
         "continue from the newest complete checkpoint in DIR\n"
         "(or from checkpoint folder DIR) with the same settings"}},
    {D, {"--resume", "DIR", SLM_CLI_STR, T(resume), 0, 0,
         "continue the training from a checkpoint in DIR, on the\n"
         "data set and student the first run wrote"}},
    {FD, {"--keep", "N", SLM_CLI_LONG, T(keep), 0, 1 << 20,
          "checkpoints kept; 0 = all (default 3)"}},
    {F, {"--skip-bad-lines", NULL, SLM_CLI_FLAG, T(skip_bad), 0, 0,
         "skip and count data lines that cannot be used"}},
    {FD, {"--dump-grads", "FILE", SLM_CLI_STR, T(dump_grads), 0, 0,
          "debugging: write the first batch, the loss and every\n"
          "trainable tensor with its gradient to FILE and stop"}},
    {FD, {"--device", "SPEC", SLM_CLI_STR, T(device), 0, 0, "auto (default), cpu, cpu:0, ..."}},
    {F, {"--json", NULL, SLM_CLI_FLAG, T(json), 0, 0,
         "print the report (whole loss curve) as JSON"}},
    {D, {"--json", NULL, SLM_CLI_FLAG, T(json), 0, 0, "print the report as JSON"}},
};

_Static_assert(sizeof all / sizeof all[0] <= SLM_CLI_TRAIN_MAX_OPTS,
               "SLM_CLI_TRAIN_MAX_OPTS holds every training option");

void slm_cli_train_groups(slm_cli_train_groups_t *g, int verb, const slm_cli_opt_t *own,
                          size_t train_base)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i].verbs & verb)
            g->train[n++] = all[i].opt;
    g->train[n] = (slm_cli_opt_t){0};
    g->groups[0] = (slm_cli_group_t){"Options", own, 0};
    g->groups[1] = (slm_cli_group_t){NULL, g->train, train_base};
    g->groups[2] = (slm_cli_group_t){"Common options", slm_cli_threads_opt,
                                     train_base + T(threads)};
    g->groups[3] = (slm_cli_group_t){0};
}

void slm_cli_train_defaults(slm_cli_train_t *t)
{
    memset(t, 0, sizeof *t);
    t->ctx = 512;
    t->batch = t->accum = t->epochs = 1;
    t->keep = 3;
    t->lr = 1e-4f;
    t->clip = 1.0f;
    t->rank = -1;
    t->alpha = t->dropout = -1.0f;
}

int slm_cli_train_check(const char *verb, const slm_cli_train_t *t)
{
    if (t->ctx < 2)
        return slm_cli_usage_error(verb, "--ctx %ld holds no next token to learn: use 2 or more",
                                   t->ctx);
    if (t->val_data && t->val_split > 0)
        return slm_cli_usage_error(verb, "give --val-data or --val-split, not both");
    return SLM_CLI_OK;
}

const char *slm_cli_train_seed(const slm_cli_train_t *t, char buf[24])
{
    if (!t->seed.given)
        return NULL;
    snprintf(buf, 24, "%llu", (unsigned long long)slm_cli_seed_value(&t->seed, false, 42));
    return buf;
}
