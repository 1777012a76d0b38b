/* The "bench" job kind: prompt processing and generation speed (bench.c's work)
 * of a model file with its adapters or a loaded model, as llama-bench names it. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/device.h>
#include <slmops/model-file.h>
#include <slmops/sched.h>
#include <slmops/types.h>

#include "internal/util.h"
#include "jobs/jobs.h"
#include "jobs/kind.h"

typedef struct bstate {
    const char *model_path, *device;
    int32_t n_threads;
    slm__job_lora_t *loras;
    size_t n_loras;
    slm_bench_params_t p;
    slm_bench_result_t res;
    /* The model as llama-bench names it. */
    char arch[64], type[32], backend[64];
    uint64_t n_params, tensor_bytes;
} bstate_t;

static const slm__job_opt_t opts[] = {
    {"model", SLM__OPT_STRING},
    {"n_prompt", SLM__OPT_INT},
    {"n_gen", SLM__OPT_INT},
    {"reps", SLM__OPT_INT},
    {"batch", SLM__OPT_INT},
    {"seed", SLM__OPT_SEED},
    {"device", SLM__OPT_STRING},
    {"threads", SLM__OPT_INT},
    {"lora", SLM__OPT_ARRAY},
    {NULL, 0},
};
static const char *const inputs[] = {"model", "lora", NULL};

static int range(const slm_job_t *job, const char *key, int64_t dflt, int64_t lo, int64_t hi,
                 int32_t *out, slm_error_t *err)
{
    int64_t v = slm__job_int(job, key, dflt);
    if (v < lo || v > hi)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "bench job: %s %lld is out of range "
                         "(%lld to %lld)", key, (long long)v, (long long)lo, (long long)hi);
    *out = (int32_t)v;
    return SLM_OK;
}

static int prepare(slm_job_t *job, void *state, slm_error_t *err)
{
    bstate_t *s = state;
    slm_bench_params_default(&s->p);
    s->model_path = slm__job_str(job, "model");
    s->device = slm__job_str(job, "device");
    if (!s->model_path && !slm__job_model(job))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "bench job: the option 'model' is "
                         "required");
    int rc;
    if ((rc = range(job, "n_prompt", s->p.n_prompt, 0, 1 << 20, &s->p.n_prompt, err)) ||
        (rc = range(job, "n_gen", s->p.n_gen, 0, 1 << 20, &s->p.n_gen, err)) ||
        (rc = range(job, "reps", s->p.reps, 1, 100000, &s->p.reps, err)) ||
        (rc = range(job, "batch", s->p.n_batch, 1, 1 << 16, &s->p.n_batch, err)) ||
        (rc = range(job, "threads", 0, 0, 4096, &s->n_threads, err)) ||
        (rc = slm__job_loras(job, "bench", &s->loras, &s->n_loras, err)))
        return rc;
    if (s->p.n_prompt == 0 && s->p.n_gen == 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "bench job: n_prompt 0 and n_gen 0 "
                         "leave nothing to measure");
    return slm__job_seed(job, "seed", s->p.seed, &s->p.seed, err);
}

/* The type most of the weight bytes are in, and every tensor's bytes. */
static void describe(bstate_t *s, const slm_model_t *m)
{
    const slm_model_file_t *mf = slm_model_container(m);
    uint64_t by_type[64] = {0};
    int best = 0;
    slm_model_tensor_t t = {.struct_size = sizeof t};
    for (size_t i = 0; i < slm_model_file_n_tensors(mf); i++) {
        if (slm_model_file_tensor(mf, i, &t) < 0)
            continue;
        s->tensor_bytes += t.nbytes;
        if (t.n_dims >= 2 && t.type >= 0 && t.type < 64 &&
            (by_type[t.type] += t.nbytes) > by_type[best])
            best = t.type;
    }
    snprintf(s->type, sizeof s->type, "%s", slm_type_name(best));
    snprintf(s->arch, sizeof s->arch, "%s", slm_model_arch(m));
    s->n_params = slm_model_n_params(m);
    const slm_device_info_t *di = slm_sched_device(slm_model_sched(m));
    snprintf(s->backend, sizeof s->backend, "%s", di ? di->plugin : "?");
}

static int run(slm_job_t *job, void *state, const slm__jobrt_t *rt, slm_error_t *err)
{
    bstate_t *s = state;
    slm_model_t *m = slm__job_model(job), *own = NULL;
    int rc = SLM_OK;
    /* A lent model runs as it is: "lora" then only names its adapters. */
    if (!m) {
        rc = slm__job_open_model(job, s->model_path, s->device, s->n_threads, s->loras,
                                 s->n_loras, &own, err);
        m = own;
    }
    s->res = (slm_bench_result_t){.struct_size = sizeof s->res};
    if (rc == SLM_OK)
        rc = slm__bench_run(m, &s->p, rt, &s->res, err);
    if (rc == SLM_OK)
        describe(s, m);
    slm_model_free(own);
    return rc;
}

static json_t *settings(const void *state)
{
    const bstate_t *s = state;
    return json_pack("{s:o, s:o, s:i, s:i, s:i, s:i, s:o, s:o, s:i}", "model",
                     slm__json_path(s->model_path), "lora",
                     slm__job_loras_json(s->loras, s->n_loras), "n_prompt", s->p.n_prompt,
                     "n_gen",
                     s->p.n_gen, "reps", s->p.reps, "batch", s->p.n_batch, "seed",
                     slm__json_u64(s->p.seed), "device", slm__json_path(s->device),
                     "threads", s->n_threads);
}

/* One test, or null when it was skipped. */
static json_t *stat_json(const slm_bench_stat_t *st)
{
    if (!st->n_tokens)
        return json_null();
    return json_pack("{s:i, s:i, s:o, s:o, s:o}", "n_tokens", st->n_tokens, "reps", st->reps,
                     "avg_ts", slm__json_num(st->mean), "stddev_ts", slm__json_num(st->stddev),
                     "avg_ms", slm__json_num(st->mean_ms));
}

static json_t *results(const void *state)
{
    const bstate_t *s = state;
    return json_pack("{s:o, s:I, s:s, s:I, s:s, s:o, s:o}", "arch", slm__json_path(s->arch),
                     "n_params",
                     (json_int_t)s->n_params, "type", s->type, "tensor_bytes",
                     (json_int_t)s->tensor_bytes, "backend", s->backend, "pp",
                     stat_json(&s->res.pp), "tg", stat_json(&s->res.tg));
}

static void release(void *state)
{
    bstate_t *s = state;
    free(s->loras);
}

const slm__job_kind_t slm__job_kind_bench = {
    .name = "bench",
    .opts = opts,
    .input_keys = inputs,
    .takes = SLM__JOB_TAKES_MODEL,
    .state_size = sizeof(bstate_t),
    .prepare = prepare,
    .run = run,
    .settings = settings,
    .results = results,
    .release = release,
};
