/* Inside the job contract: the runtime a job's work reports through (progress,
 * cancel flag, the inputs OUT may not be, the outputs written) and the table entry
 * each job kind fills (its options, how to run it, what its report holds). */
#ifndef SLMOPS_JOBS_KIND_H
#define SLMOPS_JOBS_KIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <slmops/error.h>
#include <slmops/job.h>
#include <slmops/jobs.h>

/* What the work of one job sees of its caller. The old entry points
 * (slm_quantize_model, ...) fill it from their params; slm_job_run from the job. */
typedef struct slm__jobrt {
    slm_job_progress_cb cb;            /* the contract's callback, or NULL */
    void *user;
    slm_job_progress_fn legacy;        /* the params' older callback, or NULL */
    void *legacy_user;
    const volatile int *cancel;        /* nonzero: stop at the next safe point */
    double t0;                         /* monotonic seconds when the run began */
    const char *const *inputs;         /* what no output may be */
    size_t n_inputs;
    slm_job_t *job;                    /* to record outputs; NULL for the old calls */
} slm__jobrt_t;

/* A runtime with only a cancel flag and an older-style callback. */
void slm__jobrt_init(slm__jobrt_t *rt, slm_job_progress_fn legacy, void *legacy_user,
                     const volatile int *cancel);
void slm__jobrt_progress(const slm__jobrt_t *rt, const char *stage, uint64_t done,
                         uint64_t total, const char *item, double value);
/* The same with the event's other figures (a JSON object's text, or NULL). */
void slm__jobrt_progress_figures(const slm__jobrt_t *rt, const char *stage, uint64_t done,
                                 uint64_t total, const char *item, double value,
                                 const char *figures);
bool slm__jobrt_cancelled(const slm__jobrt_t *rt);
/* SLM_E_CANCELLED with "WHAT: cancelled". */
int slm__jobrt_fail_cancelled(slm_error_t *err, const char *what);
/* A complete output is in place: it goes into the report. */
void slm__jobrt_wrote(const slm__jobrt_t *rt, const char *path);

/* Monotonic clock in seconds. */
double slm__job_now(void);

/* JSON types of options (slm__job_opt_t.type). */
enum {
    SLM__OPT_STRING,
    SLM__OPT_INT,      /* a JSON integer */
    SLM__OPT_NUMBER,   /* an integer or a real */
    SLM__OPT_BOOL,
    SLM__OPT_SEED,     /* an integer >= 0 or a string of decimal digits (for >= 2^63) */
    SLM__OPT_ARRAY,    /* the kind checks the elements */
    SLM__OPT_OBJECT,   /* a JSON object; the kind checks its members */
};

typedef struct slm__job_opt {
    const char *key;
    int type;
} slm__job_opt_t;

/* What slm_job_use_* a kind accepts (slm__job_kind_t.takes). */
#define SLM__JOB_TAKES_MODEL 1u
#define SLM__JOB_TAKES_TOKENS 2u

typedef struct slm__job_kind {
    const char *name;
    const slm__job_opt_t *opts;        /* {NULL} ends the list */
    const char *const *input_keys;     /* options naming files it reads: a string, or
                                        * an array of strings or {"path"} objects */
    const char *const *output_keys;    /* string options naming files it writes */
    unsigned takes;
    size_t state_size;                 /* zeroed state handed to the slots below */
    /* Read the options into the state; no file is touched. */
    int (*prepare)(slm_job_t *job, void *state, slm_error_t *err);
    int (*run)(slm_job_t *job, void *state, const slm__jobrt_t *rt, slm_error_t *err);
    /* The settings the run used (after prepare) and its results (after a run that
     * succeeded), as new JSON objects. */
    json_t *(*settings)(const void *state);
    json_t *(*results)(const void *state);
    void (*release)(void *state);      /* optional */
} slm__job_kind_t;

extern const slm__job_kind_t slm__job_kind_quantize;
extern const slm__job_kind_t slm__job_kind_eval;
extern const slm__job_kind_t slm__job_kind_bench;
extern const slm__job_kind_t slm__job_kind_init;
extern const slm__job_kind_t slm__job_kind_train;
extern const slm__job_kind_t slm__job_kind_synth;
extern const slm__job_kind_t slm__job_kind_distill;

/* What a kind reads of its job. Options have the JSON type their table gives. */
slm_registry_t *slm__job_registry(const slm_job_t *job);
const char *slm__job_str(const slm_job_t *job, const char *key);   /* NULL: not set */
int64_t slm__job_int(const slm_job_t *job, const char *key, int64_t dflt);
bool slm__job_bool(const slm_job_t *job, const char *key, bool dflt);
const json_t *slm__job_get(const slm_job_t *job, const char *key);
/* A SLM__OPT_SEED option; SLM_E_INVALID naming it when a string is not a u64. */
int slm__job_seed(const slm_job_t *job, const char *key, uint64_t dflt, uint64_t *out,
                  slm_error_t *err);
slm_model_t *slm__job_model(const slm_job_t *job);
const int32_t *slm__job_tokens(const slm_job_t *job, size_t *n);

/* The "lora" option of the kinds that run a model: an array of "PATH" (scale 1) or
 * {"path": PATH, "scale": NUMBER}; paths borrowed from the job. *out is NULL and
 * *n 0 when it is not set; free(*out) otherwise. */
typedef struct slm__job_lora {
    const char *path;
    float scale;
} slm__job_lora_t;
int slm__job_loras(const slm_job_t *job, const char *kind, slm__job_lora_t **out, size_t *n,
                   slm_error_t *err);
json_t *slm__job_loras_json(const slm__job_lora_t *v, size_t n);
/* Load the model at path (any format) and attach the adapters in order
 * (slm_model_load_adapter); *own is NULL after a failure. */
int slm__job_open_model(slm_job_t *job, const char *path, const char *device, int32_t threads,
                        const slm__job_lora_t *loras, size_t n_loras, slm_model_t **own,
                        slm_error_t *err);

/* The chat_template option of a job: a built-in template's name, else the template's
 * text; `what` names the job in the message. */
typedef struct slm_chat_template slm_chat_template_t;
int slm__job_chat_template(const char *what, const char *tpl, slm_chat_template_t **out,
                           slm_error_t *err);

/* JSON values for reports: a path or name as a JSON string (bytes that are not
 * UTF-8 become U+FFFD), a number (null when not finite), a u64 (a string of
 * digits above 2^63 - 1). */
json_t *slm__json_path(const char *path);
json_t *slm__json_num(double v);
json_t *slm__json_u64(uint64_t v);

#endif
