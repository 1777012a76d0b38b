/* What `generate`, `chat` and `eval` share: loading a model with its tokenizer and a
 * one-slot generator, the sampling options, and running a generation. */
#ifndef SLMOPS_CLI_SESSION_H
#define SLMOPS_CLI_SESSION_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/generation.h>
#include <slmops/model.h>
#include <slmops/sampler.h>
#include <slmops/tokenizer.h>

#include "cli/catalog.h"
#include "cli/lora.h"
#include "cli/options.h"

typedef struct slm_cli_model_opts {
    const char *model;         /* -m */
    const char *tokenizer;     /* --tokenizer: a file the model lacks */
    const char *device;        /* --device */
    long threads;              /* --threads, 0: backend default */
    long n_ctx;                /* --ctx, 0: the runtime's default */
    slm_cli_strs_t loras;      /* --lora FILE[:SCALE], attached in order */
    bool repack;               /* --repack (serve: unless --no-repack) */
} slm_cli_model_opts_t;

typedef struct slm_cli_session {
    const char *verb;
    slm_registry_t *reg;
    slm_model_t *model;
    slm_tokenizer_t *tok;
    slm_generator_t *gen;      /* only when opened with a context: one slot, */
    slm_seq_t *seq;            /* held by seq */
    slm_merge_adapter_t loras[SLM_CLI_MAX_STRS];   /* --lora, as attached */
    char *lora_paths[SLM_CLI_MAX_STRS];
    size_t n_loras;
    double load_ms;
    slm_cli_alias_t alias;     /* -m named an alias of the catalog: what it stands for */
    const volatile sig_atomic_t *interrupt;   /* nonzero: stop sampling (Ctrl-C) */
} slm_cli_session_t;

/* The model options (-m, --lora, --tokenizer, --device, -t) for a group whose base is a
 * slm_cli_model_opts_t. Each verb states --ctx itself: its default differs. */
extern const struct slm_cli_opt slm_cli_model_opts[];
#define SLM_CLI_CTX_HELP_MODEL "context size in tokens (default: the model's, at most 4096)"

/* Sampling options: the sampler's parameters and the seed as given. */
typedef struct slm_cli_sampling {
    slm_sampler_params_t p;
    slm_cli_seed_t seed;
} slm_cli_sampling_t;
extern const struct slm_cli_opt slm_cli_sampling_opts[];

/* The sampler's defaults, no seed given. */
void slm_cli_sampling_init(slm_cli_sampling_t *s);
/* Settle the seed (the one given, or a fresh one) into s->p and return it. */
uint64_t slm_cli_sampling_seed(slm_cli_sampling_t *s);

/* Load model (-m: a path, or an alias of the catalog), its --lora adapters, tokenizer
 * and (with_context) a context; prints why on failure and returns an exit status.
 * Close even after a failure. */
int slm_cli_session_open(slm_cli_session_t *s, const slm_cli_model_opts_t *o, bool with_context,
                         const char *verb);
void slm_cli_session_close(slm_cli_session_t *s);

/* Name the session's adapters in a job's "lora" option (the job runs the session's
 * model, which has them attached); nothing without --lora. */
struct slm_job;
int slm_cli_lora_job(struct slm_job *job, const slm_cli_session_t *s, slm_error_t *err);

/* Encode text (flags: SLM_TOKENIZE_*); prints why on failure. */
int slm_cli_encode(slm_cli_session_t *s, const char *text, size_t len, unsigned flags,
                   int32_t **ids, size_t *n_ids);

/* What a generation gave; tokens and text belong to the session's sequence (valid
 * until its next start). */
typedef struct slm_cli_gen {
    const int32_t *tokens;     /* generated ids (the EOG token excluded) */
    size_t n_tokens;
    const char *text;          /* the text emitted, stop strings cut */
    size_t len;
    const char *stop_reason;   /* "length", "eos", "stop", "context" or "interrupted" */
    size_t n_prompt;
    double prompt_ms, gen_ms;
} slm_cli_gen_t;

/* Start the session's sequence on the prompt ids (after what its cells hold) with
 * sp, and step the generator until it ends or s->interrupt is raised. Prints why on
 * failure. */
int slm_cli_session_generate(slm_cli_session_t *s, const slm_seq_params_t *sp,
                             const int32_t *prompt, size_t n_prompt, slm_cli_gen_t *out);

/* Milliseconds on a monotonic clock. */
double slm_cli_now_ms(void);

/* Tokens per second, 0 when no time passed. */
double slm_cli_per_s(size_t n, double ms);

/* This process's peak resident memory since it started (VmHWM), in bytes; 0 where
 * /proc does not say. Unlike a parent's wait4 ru_maxrss, it does not include the
 * memory of the process that forked it. */
long long slm_cli_peak_rss_bytes(void);

/* An slm_seq_text_fn that writes to stdout at once (text streams as it comes). */
void slm_cli_emit_stdout(void *user, const char *text, size_t len);

#endif
