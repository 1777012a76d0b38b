/* What `generate`, `chat` and `eval` share: model + tokenizer + generator loading,
 * option parsing for them and for the sampler, and running one generation. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <slmops/job.h>

#include "cli/common.h"
#include "cli/lora.h"
#include "cli/options.h"
#include "cli/session.h"

#define MODEL_OFF(f) offsetof(slm_cli_model_opts_t, f)
const slm_cli_opt_t slm_cli_model_opts[] = {
    {"-m, --model", "PATH", SLM_CLI_STR, MODEL_OFF(model), 0, 0,
     "model: GGUF file, Hugging Face folder, llama2.c checkpoint"},
    {"--lora", "FILE[:SCALE]", SLM_CLI_STRS, MODEL_OFF(loras), 0, 0,
     "a LoRA adapter (GGUF adapter or PEFT folder) applied at\n"
     "run time, unmerged, with its user scale (default 1; as\n"
     "llama.cpp does: SCALE * alpha / rank); may be repeated"},
    {"--tokenizer", "PATH", SLM_CLI_STR, MODEL_OFF(tokenizer), 0, 0,
     "tokenizer the model file lacks (GGUF, tokenizer.bin,\n"
     "tokenizer.model, Hugging Face folder)"},
    {"--device", "SPEC", SLM_CLI_STR, MODEL_OFF(device), 0, 0,
     "auto (default), cpu, cpu:0, vulkan:1 ... (see 'slmops devices')"},
    {"-t, --threads", "N", SLM_CLI_LONG, MODEL_OFF(threads), 1, 4096,
     "CPU threads (default: all cores)"},
    {"--repack", NULL, SLM_CLI_FLAG, MODEL_OFF(repack), 0, 0,
     "keep quantized weights a second time as integer-GEMM\n"
     "panels (CPU): faster prompts and batches for as much\n"
     "memory again (q8_0: 1.2x; serve does it by default)"},
    {0},
};

#define SAMPLE_OFF(f) offsetof(slm_cli_sampling_t, p.f)
const slm_cli_opt_t slm_cli_sampling_opts[] = {
    {"--temp", "T", SLM_CLI_FLOAT, SAMPLE_OFF(temperature), 0, 1e6,
     "temperature; 0 = greedy (default 0.8)"},
    {"--top-k", "K", SLM_CLI_I32, SAMPLE_OFF(top_k), 0, INT32_MAX,
     "keep the K most likely tokens; 0 = off (default 40)"},
    {"--top-p", "P", SLM_CLI_FLOAT, SAMPLE_OFF(top_p), 0, 1,
     "keep the smallest set with probability >= P (default 0.95)"},
    {"--min-p", "P", SLM_CLI_FLOAT, SAMPLE_OFF(min_p), 0, 1,
     "drop tokens below P x the best one's probability (default 0.05)"},
    {"--repeat-penalty", "R", SLM_CLI_FLOAT, SAMPLE_OFF(repeat_penalty), 1e-6, 1e6,
     "penalise tokens of the last --repeat-last-n (default 1.0 = off)"},
    {"--repeat-last-n", "N", SLM_CLI_I32, SAMPLE_OFF(repeat_last_n), -1, INT32_MAX,
     "history the penalties look at; -1 = all (default 64)"},
    {"--frequency-penalty", "F", SLM_CLI_FLOAT, SAMPLE_OFF(frequency_penalty), -1e6, 1e6,
     "subtracted once per earlier occurrence (default 0)"},
    {"--presence-penalty", "P", SLM_CLI_FLOAT, SAMPLE_OFF(presence_penalty), -1e6, 1e6,
     "subtracted once if the token occurred (default 0)"},
    {"-s, --seed", "S", SLM_CLI_SEED, offsetof(slm_cli_sampling_t, seed), 0, 0,
     "random seed, 0..2^64-1; -1 = a new one each run (default; printed)"},
    {0},
};

void slm_cli_sampling_init(slm_cli_sampling_t *s)
{
    memset(s, 0, sizeof *s);
    slm_sampler_params_default(&s->p);
}

uint64_t slm_cli_sampling_seed(slm_cli_sampling_t *s)
{
    s->p.seed = slm_cli_seed_value(&s->seed, true, 0);
    return s->p.seed;
}

double slm_cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

long long slm_cli_peak_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    long long kib = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lld kB", &kib) == 1)
            break;
    fclose(f);
    return kib > 0 ? kib * 1024 : 0;
}

double slm_cli_per_s(size_t n, double ms)
{
    return ms > 0 ? (double)n * 1e3 / ms : 0.0;
}

void slm_cli_emit_stdout(void *user, const char *text, size_t len)
{
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

static int fail(slm_cli_session_t *s, const slm_error_t *err)
{
    return slm_cli_fail(s->verb, err);
}

static int load_tokenizer(slm_cli_session_t *s, const slm_cli_model_opts_t *o)
{
    slm_error_t err;
    slm_error_init(&err);
    int rc = o->tokenizer ? slm_tokenizer_load(s->reg, o->tokenizer, &s->tok, &err)
                          : slm_tokenizer_from_model_file(slm_model_container(s->model), &s->tok, &err);
    if (rc == SLM_E_NOT_FOUND && !o->tokenizer) {
        fprintf(stderr, "slmops %s: %s has no tokenizer; give one with --tokenizer PATH\n",
                s->verb, o->model);
        return SLM_CLI_FAILED;
    }
    if (rc != SLM_OK)
        return fail(s, &err);
    size_t nt = slm_tokenizer_n_vocab(s->tok);
    int32_t nm = slm_model_n_vocab(s->model);
    if (nm > 0 && nt > (size_t)nm) {
        fprintf(stderr, "slmops %s: the tokenizer has %zu tokens but the model only %d: "
                "they do not belong together\n", s->verb, nt, (int)nm);
        return SLM_CLI_FAILED;
    }
    return SLM_CLI_OK;
}

/* Each --lora, checked against the model and attached in the order given. */
static int attach_loras(slm_cli_session_t *s, const slm_merge_adapter_t *ads, size_t n)
{
    slm_error_t err;
    slm_error_init(&err);
    for (size_t i = 0; i < n; i++)
        if (slm_model_load_adapter(s->model, ads[i].path, ads[i].scale, &err) < 0)
            return fail(s, &err);
    return SLM_CLI_OK;
}

static int load_model(slm_cli_session_t *s, const slm_cli_model_opts_t *o)
{
    /* Usage errors in --lora come before anything is loaded. */
    s->n_loras = o->loras.n;
    int rc = slm_cli_lora_parse(s->verb, &o->loras, s->loras, s->lora_paths);
    if (rc == SLM_CLI_OK && !(s->reg = slm_cli_registry_open()))
        rc = SLM_CLI_FAILED;
    slm_error_t err;
    slm_error_init(&err);
    slm_model_params_t mp;
    slm_model_params_default(&mp);
    mp.device = o->device;
    mp.n_threads = (int32_t)o->threads;
    mp.device_flags = o->repack ? SLM_DEVICE_REPACK : 0;
    if (rc == SLM_CLI_OK && slm_model_load(s->reg, o->model, &mp, &s->model, &err) != SLM_OK)
        rc = fail(s, &err);
    if (rc == SLM_CLI_OK)
        rc = attach_loras(s, s->loras, s->n_loras);
    return rc;
}

int slm_cli_session_open(slm_cli_session_t *s, const slm_cli_model_opts_t *o, bool with_context,
                         const char *verb)
{
    memset(s, 0, sizeof *s);
    s->verb = verb;
    double t0 = slm_cli_now_ms();
    slm_cli_model_opts_t resolved = *o;   /* an alias gives the path and adapters */
    int rc = slm_cli_alias_resolve(verb, &resolved, false, &s->alias);
    o = &resolved;
    if (rc == SLM_CLI_OK)
        rc = load_model(s, o);
    if (rc != SLM_CLI_OK)
        return rc;
    slm_error_t err;
    slm_error_init(&err);
    rc = load_tokenizer(s, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (with_context) {
        slm_generator_params_t gp;
        slm_generator_params_default(&gp);
        gp.n_ctx = (uint32_t)o->n_ctx;
        if (slm_generator_new(s->model, s->tok, &gp, &s->gen, &err) != SLM_OK ||
            slm_seq_new(s->gen, &s->seq, &err) != SLM_OK)
            return fail(s, &err);
    }
    /* Only once the context exists: a refused one says enough on its own. */
    int32_t trained = slm_model_n_ctx_train(s->model);
    if (trained > 0 && o->n_ctx > trained)
        fprintf(stderr, "slmops %s: warning: --ctx %ld is more than the %d tokens %s was "
                "trained on; expect worse text past them\n", verb, o->n_ctx, (int)trained,
                o->model);
    s->load_ms = slm_cli_now_ms() - t0;
    return SLM_CLI_OK;
}

void slm_cli_session_close(slm_cli_session_t *s)
{
    slm_seq_free(s->seq);
    slm_generator_free(s->gen);
    slm_tokenizer_free(s->tok);
    slm_model_free(s->model);
    slm_registry_free(s->reg);
    for (size_t i = 0; i < s->n_loras; i++)
        free(s->lora_paths[i]);
    slm_cli_alias_free(&s->alias);
    memset(s, 0, sizeof *s);
}

int slm_cli_lora_job(slm_job_t *job, const slm_cli_session_t *s, slm_error_t *err)
{
    if (!s->n_loras)
        return SLM_OK;
    json_t *opts = json_pack("{s:o}", "lora", slm_cli_lora_json(s->loras, s->n_loras));
    char *text = opts ? json_dumps(opts, JSON_COMPACT) : NULL;
    int rc = text ? slm_job_set_options(job, text, err) : SLM_E_NOMEM;
    if (!text && err) {
        err->code = SLM_E_NOMEM;
        snprintf(err->message, sizeof err->message, "out of memory");
    }
    free(text);
    json_decref(opts);
    return rc;
}

int slm_cli_encode(slm_cli_session_t *s, const char *text, size_t len, unsigned flags,
                   int32_t **ids, size_t *n_ids)
{
    slm_error_t err;
    slm_error_init(&err);
    if (slm_tokenizer_encode(s->tok, text, len, flags, ids, n_ids, &err) != SLM_OK)
        return fail(s, &err);
    return SLM_CLI_OK;
}

/* ---- generating: the library's sequence slot does the work ---- */

int slm_cli_session_generate(slm_cli_session_t *s, const slm_seq_params_t *sp,
                             const int32_t *prompt, size_t n_prompt, slm_cli_gen_t *out)
{
    memset(out, 0, sizeof *out);
    out->stop_reason = "length";
    out->n_prompt = n_prompt;
    int32_t pos = slm_seq_pos(s->seq);
    uint32_t n_ctx = slm_generator_n_ctx_slot(s->gen);
    if (n_prompt == 0 || (uint64_t)pos + n_prompt > n_ctx) {
        fprintf(stderr, "slmops %s: %zu prompt tokens do not fit: the context holds %u "
                "tokens and %d are used (use --ctx)\n", s->verb, n_prompt, n_ctx, (int)pos);
        return SLM_CLI_FAILED;
    }
    slm_error_t err;
    slm_error_init(&err);
    if (slm_seq_start(s->seq, sp, prompt, n_prompt, &err) != SLM_OK)
        return fail(s, &err);
    int rc;
    while ((rc = slm_generator_step(s->gen, &err)) > 0)
        if (s->interrupt && *s->interrupt)
            slm_seq_cancel(s->seq);
    if (rc < 0)
        return fail(s, &err);
    slm_seq_stop_t why = slm_seq_stop_reason(s->seq);
    if (why == SLM_SEQ_ERROR) {
        fprintf(stderr, "slmops %s: sampling failed (the logits are not finite)\n", s->verb);
        return SLM_CLI_FAILED;
    }
    out->stop_reason = why == SLM_SEQ_CANCELLED ? "interrupted" : slm_seq_stop_name(why);
    out->tokens = slm_seq_tokens(s->seq, &out->n_tokens);
    out->text = slm_seq_text(s->seq, &out->len);
    slm_seq_stats_t st = {.struct_size = sizeof st};
    slm_seq_stats(s->seq, &st);
    out->prompt_ms = st.prompt_ms;
    out->gen_ms = st.gen_ms;
    return SLM_CLI_OK;
}
