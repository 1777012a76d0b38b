/* The job contract: every lifecycle step (quantize, eval, bench, init, and the
 * training jobs to come) is one object made by kind name from JSON options, run
 * once, with a progress callback, a cancel call, atomic outputs and a JSON report
 * that names its inputs and outputs, so a pipeline can chain steps (docs/jobs.md).
 *
 *   slm_job_new(reg, "quantize", "{\"input\": \"a.gguf\", \"output\": \"b.gguf\","
 *                                " \"type\": \"q4_0\"}", &job, &err);
 *   slm_job_set_progress(job, on_progress, user);
 *   slm_job_run(job, &err);            SLM_E_CANCELLED after slm_job_cancel
 *   slm_job_report(job)                {"kind", "status", "settings", "inputs",
 *                                       "outputs", "seconds", "results", ...}
 *   slm_job_output(job, 0)             "b.gguf", the next step's input
 *   slm_job_free(job); */
#ifndef SLMOPS_JOB_H
#define SLMOPS_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/model.h>
#include <slmops/registry.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_job slm_job_t;

/* One progress event. Within a stage `done` never decreases and the stage's last
 * event has done == total; the stages of each kind come in the order docs/jobs.md
 * gives. The strings live until the callback returns. */
typedef struct slm_job_progress {
    uint32_t struct_size;
    const char *stage;         /* "quantize", "eval", "perplexity", "pp", "tg", "init" */
    uint64_t done, total;      /* units of the stage: bytes, chunks, runs */
    const char *item;          /* the tensor, file or test the event is about, or "" */
    double elapsed;            /* seconds since slm_job_run began */
    double value;              /* the stage's running figure (perplexity so far), or NAN */
    /* Since 0.2: the event's other figures as a compact JSON object (train: step, loss,
     * val_loss, lr, tokens_per_s, eta_s, ...), or NULL. */
    const char *figures;
} slm_job_progress_t;

/* Called on the thread that runs the job; it may call slm_job_cancel. */
typedef void (*slm_job_progress_cb)(void *user, const slm_job_progress_t *event);

/* The kinds this library runs, by index: "quantize", "eval", "bench", "init",
 * "train", "synth", "distill"; NULL past the last. */
const char *slm_job_kind_name(size_t i);

/* A job of `kind` with options_json (a JSON object, or NULL for none). Options are
 * checked by name and JSON type here (an unknown option or a wrong type is
 * SLM_E_INVALID naming it); their values are judged by slm_job_run. reg must
 * outlive the job. */
int slm_job_new(slm_registry_t *reg, const char *kind, const char *options_json,
                slm_job_t **out, slm_error_t *err);
void slm_job_free(slm_job_t *job);

/* The job's kind, as given to slm_job_new. */
const char *slm_job_kind(const slm_job_t *job);

/* Merge a JSON object into the options (a null value removes the option). */
int slm_job_set_options(slm_job_t *job, const char *options_json, slm_error_t *err);
/* Set one option; value NULL removes a string option. */
int slm_job_set_string(slm_job_t *job, const char *key, const char *value, slm_error_t *err);
int slm_job_set_int(slm_job_t *job, const char *key, int64_t value, slm_error_t *err);
int slm_job_set_number(slm_job_t *job, const char *key, double value, slm_error_t *err);
int slm_job_set_bool(slm_job_t *job, const char *key, bool value, slm_error_t *err);
/* Append a string to an array option (creating it), e.g. quantize's tensor_types. */
int slm_job_append_string(slm_job_t *job, const char *key, const char *value,
                          slm_error_t *err);

/* A file the job must not write over besides its own inputs (a pipeline's earlier
 * inputs that later steps still read). */
int slm_job_add_input(slm_job_t *job, const char *path, slm_error_t *err);

/* Objects a C caller already opened, borrowed until slm_job_free, in place of the
 * files the options name (the "model" option then only names it in the report).
 * use_model: eval and bench. use_tokens: eval, the perplexity text already
 * tokenized. Other kinds refuse them with SLM_E_INVALID. */
int slm_job_use_model(slm_job_t *job, slm_model_t *model, slm_error_t *err);
int slm_job_use_tokens(slm_job_t *job, const int32_t *tokens, size_t n_tokens,
                       slm_error_t *err);

void slm_job_set_progress(slm_job_t *job, slm_job_progress_cb cb, void *user);

/* Ask the running job to stop: at its next safe point it removes the temporaries
 * it holds and slm_job_run returns SLM_E_CANCELLED. Before the run: the run stops
 * before any work. Async-signal-safe; callable from any thread. Outputs already
 * complete stay (quantize's evaluation runs after its output is written). */
void slm_job_cancel(slm_job_t *job);

/* Run the job, once (again: SLM_E_STATE). Outputs are checked against every input
 * before any work: an output that is an input is refused (SLM_E_INVALID). Every
 * output is written under a temporary name and renamed into place. */
int slm_job_run(slm_job_t *job, slm_error_t *err);

/* The report of the run, a compact JSON object (docs/jobs.md), also after a
 * failure ("status": "failed" or "cancelled", "error"); NULL before the run. It
 * lives as long as the job. */
const char *slm_job_report(const slm_job_t *job);

/* Files the job reads, as its options name them now, then slm_job_add_input's
 * (so a pipeline can hash them before the run); and the outputs the run wrote
 * (complete files only), in order. i past the end: NULL. */
size_t slm_job_n_inputs(const slm_job_t *job);
const char *slm_job_input(const slm_job_t *job, size_t i);
size_t slm_job_n_outputs(const slm_job_t *job);
const char *slm_job_output(const slm_job_t *job, size_t i);

#ifdef __cplusplus
}
#endif
#endif
