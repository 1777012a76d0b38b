/* The training settings `finetune` and `distill` share: one struct, one option
 * table (each verb offers its part of it, in its help order) and one check. */
#ifndef SLMOPS_CLI_TRAIN_OPTIONS_H
#define SLMOPS_CLI_TRAIN_OPTIONS_H

#include <stdbool.h>

#include "cli/options.h"

typedef struct slm_cli_train {
    const char *schedule, *log, *ckpt, *resume, *val_data, *dump_grads, *device;
    const char *targets, *quant;
    slm_cli_strs_t loras;
    long ctx, batch, accum, epochs, steps, warmup, eval_every, val_batches, save_every, keep;
    long rank;
    float lr, clip, wd, alpha, dropout, val_split, min_lr;
    long threads;             /* the common -t */
    slm_cli_seed_t seed;
    bool rslora, skip_bad;
    bool json;                /* --json: the job's report as JSON */
} slm_cli_train_t;

/* The verbs that take training options: each table entry names those offering it. */
enum { SLM_CLI_TRAIN_FINETUNE = 1, SLM_CLI_TRAIN_DISTILL = 2 };

#define SLM_CLI_TRAIN_MAX_OPTS 40

/* A verb's option groups: its own options, then (under the same title) the training
 * options it offers, then the common options. */
typedef struct slm_cli_train_groups {
    slm_cli_opt_t train[SLM_CLI_TRAIN_MAX_OPTS + 1];
    slm_cli_group_t groups[4];
} slm_cli_train_groups_t;

/* Fill g for verb (SLM_CLI_TRAIN_*): own ends with an empty entry; the verb's
 * options hold their slm_cli_train_t at train_base. */
void slm_cli_train_groups(slm_cli_train_groups_t *g, int verb, const slm_cli_opt_t *own,
                          size_t train_base);

/* The defaults the table's help states; -1 where a plugin's own default applies. */
void slm_cli_train_defaults(slm_cli_train_t *t);

/* The checks every verb's training settings pass: SLM_CLI_OK, or SLM_CLI_USAGE
 * after saying why. */
int slm_cli_train_check(const char *verb, const slm_cli_train_t *t);

/* The --seed as the train job takes it, written in buf; NULL when not given. */
const char *slm_cli_train_seed(const slm_cli_train_t *t, char buf[24]);

#endif
