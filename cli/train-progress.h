/* What `finetune` and `distill` share of a train job: the live progress line, the
 * report (its summary in text, or JSON) and the run that signals stop. */
#ifndef SLMOPS_CLI_TRAIN_PROGRESS_H
#define SLMOPS_CLI_TRAIN_PROGRESS_H

#include <stdbool.h>
#include <jansson.h>
#include <slmops/job.h>

typedef struct slm_cli_train_progress {
    bool tty, open;            /* stderr is a terminal; a line is open on it */
    const char *verb;          /* the log category off a terminal */
} slm_cli_train_progress_t;

/* A slm_job_progress_cb for a train job's events (user: a slm_cli_train_progress_t):
 * one line rewritten in place on a terminal, each step logged at info otherwise. */
void slm_cli_train_on_progress(void *user, const slm_job_progress_t *ev);

/* The train job's results r as text, after the caller's first line (steps, loss,
 * validation, outputs); out and out_gguf may be NULL. */
void slm_cli_train_print(const json_t *r, const char *out, const char *out_gguf);

/* Print a train-like job's report for verb: nothing on a launcher's rank above 0
 * (rank 0 prints; the reports are the same), the results with the settings as JSON
 * when json, else text(user, results, settings). Returns an exit status. */
int slm_cli_train_report(const char *verb, const char *report, bool json,
                         void (*text)(const void *user, const json_t *r, const json_t *settings),
                         const void *user);

/* Run a train-like job whose progress goes to prog: SIGINT and SIGTERM ask it to
 * stop after its step and checkpoint. Returns SLM_OK, or the exit status of a
 * failure (128 + the signal when a signal cancelled it), the error printed for verb. */
int slm_cli_train_run(slm_job_t *job, slm_cli_train_progress_t *prog, const char *verb);

#endif
