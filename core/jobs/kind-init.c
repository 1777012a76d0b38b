/* The "init" job kind: a random model of a named preset (init.c's work) from JSON
 * options, reported as JSON. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <slmops/types.h>

#include "internal/util.h"
#include "jobs/jobs.h"
#include "jobs/kind.h"

typedef struct istate {
    const char *out;
    slm_init_params_t p;
    uint64_t file_bytes;
    uint32_t n_vocab;
} istate_t;

static const slm__job_opt_t opts[] = {
    {"output", SLM__OPT_STRING},
    {"arch", SLM__OPT_STRING},
    {"preset", SLM__OPT_STRING},
    {"type", SLM__OPT_STRING},
    {"seed", SLM__OPT_SEED},
    {"threads", SLM__OPT_INT},
    {"format", SLM__OPT_STRING},
    {"vocab_from", SLM__OPT_STRING},
    {"vocab_data", SLM__OPT_STRING},
    {"chat_template", SLM__OPT_STRING},
    {NULL, 0},
};
static const char *const inputs[] = {"vocab_from", "vocab_data", NULL};
static const char *const outputs[] = {"output", NULL};

static int prepare(slm_job_t *job, void *state, slm_error_t *err)
{
    istate_t *s = state;
    slm_init_params_default(&s->p);
    if (!(s->out = slm__job_str(job, "output")))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "init job: the option 'output' is "
                         "required");
    const char *type = slm__job_str(job, "type");
    if (type && (s->p.type = slm_type_from_name(type)) < 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "init job: unknown type '%s'", type);
    int64_t threads = slm__job_int(job, "threads", 0);
    if (threads < 0 || threads > 4096)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "init job: threads %lld is out of "
                         "range", (long long)threads);
    s->p.n_threads = (int32_t)threads;
    if (slm__job_str(job, "arch"))
        s->p.arch = slm__job_str(job, "arch");
    if (slm__job_str(job, "preset"))
        s->p.preset = slm__job_str(job, "preset");
    s->p.format = slm__job_str(job, "format");
    s->p.vocab_from = slm__job_str(job, "vocab_from");
    s->p.vocab_data = slm__job_str(job, "vocab_data");
    s->p.vocab_chat_template = slm__job_str(job, "chat_template");
    int rc = slm__job_seed(job, "seed", s->p.seed, &s->p.seed, err);
    /* The preset is judged before the output, as slm_model_init_random does. */
    return rc ? rc : slm__init_check(&s->p, err);
}

static int run(slm_job_t *job, void *state, const slm__jobrt_t *rt, slm_error_t *err)
{
    istate_t *s = state;
    int rc = slm__init_run(slm__job_registry(job), s->out, &s->p, rt, &s->n_vocab, err);
    struct stat st;
    if (rc == SLM_OK && stat(s->out, &st) == 0)
        s->file_bytes = (uint64_t)st.st_size;
    return rc;
}

static json_t *settings(const void *state)
{
    const istate_t *s = state;
    return json_pack("{s:o, s:o, s:o, s:s, s:o, s:i, s:o, s:o, s:o, s:o}", "output",
                     slm__json_path(s->out), "arch", slm__json_path(s->p.arch), "preset",
                     slm__json_path(s->p.preset), "type", slm_type_name(s->p.type), "seed",
                     slm__json_u64(s->p.seed), "threads", s->p.n_threads, "format",
                     slm__json_path(s->p.format), "vocab_from",
                     slm__json_path(s->p.vocab_from), "vocab_data",
                     slm__json_path(s->p.vocab_data), "chat_template",
                     slm__json_path(s->p.vocab_chat_template));
}

static json_t *results(const void *state)
{
    const istate_t *s = state;
    return json_pack("{s:I, s:I}", "file_bytes", (json_int_t)s->file_bytes, "n_vocab",
                     (json_int_t)s->n_vocab);
}

const slm__job_kind_t slm__job_kind_init = {
    .name = "init",
    .opts = opts,
    .input_keys = inputs,
    .output_keys = outputs,
    .state_size = sizeof(istate_t),
    .prepare = prepare,
    .run = run,
    .settings = settings,
    .results = results,
};
