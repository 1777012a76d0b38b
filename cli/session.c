/* What `generate`, `chat` and `eval` share: model + tokenizer + context loading,
 * option parsing for them and for the sampler, and the streaming token loop. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/common.h"
#include "cli/session.h"

const char slm_cli_model_help[] =
    "  -m, --model PATH     model file (GGUF, Hugging Face folder, llama2.c checkpoint)\n"
    "  --tokenizer PATH     tokenizer the model file lacks (GGUF, tokenizer.bin,\n"
    "                       tokenizer.model, Hugging Face folder)\n"
    "  --device SPEC        auto (default), cpu, cpu:0, vulkan:1 ... (see 'slmops devices')\n"
    "  --threads N          CPU threads (default: all cores)\n"
    "  --ctx N              context size in tokens (default: the model's, at most 4096)\n";

const char slm_cli_sampler_help[] =
    "  --temp T             temperature; 0 = greedy (default 0.8)\n"
    "  --top-k K            keep the K most likely tokens; 0 = off (default 40)\n"
    "  --top-p P            keep the smallest set with probability >= P (default 0.95)\n"
    "  --min-p P            drop tokens below P x the best one's probability (default 0.05)\n"
    "  --repeat-penalty R   penalise tokens of the last --repeat-last-n (default 1.0 = off)\n"
    "  --repeat-last-n N    history the penalties look at; -1 = all (default 64)\n"
    "  --frequency-penalty F, --presence-penalty P   (default 0)\n"
    "  --seed S             random seed (default: a new one each run, printed)\n";

double slm_cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool is(const char *arg, const char *a, const char *b)
{
    return strcmp(arg, a) == 0 || (b && strcmp(arg, b) == 0);
}

int slm_cli_model_option(int argc, char **argv, int *i, slm_cli_model_opts_t *o,
                         const char *verb)
{
    const char *a = argv[*i], *v;
    if (!is(a, "-m", "--model") && !is(a, "--tokenizer", NULL) && !is(a, "--device", NULL) &&
        !is(a, "--threads", NULL) && !is(a, "--ctx", "-c"))
        return 0;
    if (!(v = slm_cli_value(argc, argv, i, verb)))
        return -1;
    if (is(a, "-m", "--model"))
        o->model = v;
    else if (is(a, "--tokenizer", NULL))
        o->tokenizer = v;
    else if (is(a, "--device", NULL))
        o->device = v;
    else if (is(a, "--threads", NULL) && !slm_cli_parse_int(v, 1, 4096, &o->threads))
        return slm_cli_usage_error(verb, "--threads needs a number 1..4096"), -1;
    else if (is(a, "--ctx", "-c") && !slm_cli_parse_int(v, 1, 1L << 24, &o->n_ctx))
        return slm_cli_usage_error(verb, "--ctx needs a number 1..16777216"), -1;
    return 1;
}

typedef struct float_opt {
    const char *name;
    size_t offset;
    double lo, hi;
} float_opt_t;

#define P_OFF(f) offsetof(slm_sampler_params_t, f)
static const float_opt_t float_opts[] = {
    {"--temp", P_OFF(temperature), 0.0, 1e6},
    {"--top-p", P_OFF(top_p), 0.0, 1.0},
    {"--min-p", P_OFF(min_p), 0.0, 1.0},
    {"--repeat-penalty", P_OFF(repeat_penalty), 1e-6, 1e6},
    {"--frequency-penalty", P_OFF(frequency_penalty), -1e6, 1e6},
    {"--presence-penalty", P_OFF(presence_penalty), -1e6, 1e6},
};

int slm_cli_sampler_option(int argc, char **argv, int *i, slm_sampler_params_t *p,
                           bool *seed_given, const char *verb)
{
    const char *a = argv[*i], *v;
    for (size_t k = 0; k < sizeof float_opts / sizeof float_opts[0]; k++) {
        const float_opt_t *f = &float_opts[k];
        if (strcmp(a, f->name) != 0)
            continue;
        double d;
        if (!(v = slm_cli_value(argc, argv, i, verb)))
            return -1;
        if (!slm_cli_parse_float(v, f->lo, f->hi, &d))
            return slm_cli_usage_error(verb, "%s needs a number in [%g, %g], not '%s'", a, f->lo,
                                       f->hi, v), -1;
        *(float *)((char *)p + f->offset) = (float)d;
        return 1;
    }
    long n;
    if (is(a, "--top-k", NULL) || is(a, "--repeat-last-n", NULL)) {
        if (!(v = slm_cli_value(argc, argv, i, verb)))
            return -1;
        bool top_k = is(a, "--top-k", NULL);
        if (!slm_cli_parse_int(v, top_k ? 0 : -1, INT32_MAX, &n))
            return slm_cli_usage_error(verb, "%s needs a whole number >= %d", a, top_k ? 0 : -1), -1;
        *(top_k ? &p->top_k : &p->repeat_last_n) = (int32_t)n;
        return 1;
    }
    if (is(a, "--seed", "-s")) {
        if (!(v = slm_cli_value(argc, argv, i, verb)))
            return -1;
        char *end;
        unsigned long long s = strtoull(v, &end, 10);
        if (!*v || *end || *v == '-')
            return slm_cli_usage_error(verb, "--seed needs a whole number >= 0"), -1;
        p->seed = s;
        *seed_given = true;
        return 1;
    }
    return 0;
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

int slm_cli_session_open(slm_cli_session_t *s, const slm_cli_model_opts_t *o, bool with_context,
                         const char *verb)
{
    memset(s, 0, sizeof *s);
    s->verb = verb;
    double t0 = slm_cli_now_ms();
    if (!(s->reg = slm_cli_registry_open()))
        return SLM_CLI_FAILED;
    slm_error_t err;
    slm_error_init(&err);
    slm_model_params_t mp;
    slm_model_params_default(&mp);
    mp.device = o->device;
    mp.n_threads = (int32_t)o->threads;
    if (slm_model_load(s->reg, o->model, &mp, &s->model, &err) != SLM_OK)
        return fail(s, &err);
    int rc = load_tokenizer(s, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (with_context) {
        slm_context_params_t cp;
        slm_context_params_default(&cp);
        cp.n_ctx = (uint32_t)o->n_ctx;
        if (slm_context_new(s->model, &cp, &s->ctx, &err) != SLM_OK)
            return fail(s, &err);
    }
    s->load_ms = slm_cli_now_ms() - t0;
    return SLM_CLI_OK;
}

void slm_cli_session_close(slm_cli_session_t *s)
{
    slm_context_free(s->ctx);
    slm_tokenizer_free(s->tok);
    slm_model_free(s->model);
    slm_registry_free(s->reg);
    memset(s, 0, sizeof *s);
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

/* ---- the token loop ---- */

static bool push_token(slm_cli_gen_t *g, int32_t t)
{
    if (g->n_tokens == g->cap_tokens) {
        size_t cap = g->cap_tokens ? 2 * g->cap_tokens : 256;
        int32_t *v = realloc(g->tokens, cap * sizeof *v);
        if (!v)
            return false;
        g->tokens = v;
        g->cap_tokens = cap;
    }
    g->tokens[g->n_tokens++] = t;
    return true;
}

static bool push_text(slm_cli_gen_t *g, const char *t, size_t n)
{
    if (g->len + n + 1 > g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 1024;
        while (cap < g->len + n + 1)
            cap *= 2;
        char *v = realloc(g->text, cap);
        if (!v)
            return false;
        g->text = v;
        g->cap = cap;
    }
    memcpy(g->text + g->len, t, n);
    g->len += n;
    g->text[g->len] = '\0';
    return true;
}

typedef struct loop {
    slm_cli_session_t *s;
    slm_sampler_t *smp;
    slm_stop_t *stop;
    slm_detokenizer_t *dt;
    slm_cli_emit_fn emit;
    void *user;
    slm_cli_gen_t *g;
} loop_t;

static bool show(loop_t *l, const char *t, size_t n)
{
    if (!n)
        return true;
    if (!push_text(l->g, t, n))
        return false;
    if (l->emit)
        l->emit(l->user, t, n);
    return true;
}

/* Hands a token's text through the stop matcher; true when a stop string hit. */
static bool emit_token(loop_t *l, int32_t tok, bool *oom)
{
    const char *t, *e;
    size_t n = 0, en = 0;
    slm_detokenizer_feed(l->dt, tok, &t, &n);
    bool hit = slm_stop_feed(l->stop, t, n, &e, &en);
    *oom = !show(l, e, en);
    return hit;
}

static void finish_text(loop_t *l, bool stopped)
{
    const char *t, *e;
    size_t n = 0, en = 0;
    if (stopped)
        return;
    slm_detokenizer_flush(l->dt, &t, &n);
    if (n)
        slm_stop_feed(l->stop, t, n, &e, &en), show(l, e, en);
    slm_stop_flush(l->stop, &e, &en);
    show(l, e, en);
}

static int decode(slm_cli_session_t *s, const int32_t *ids, size_t n)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_batch_t b = {.struct_size = sizeof b, .n_tokens = (int32_t)n, .token = ids};
    if (slm_context_decode(s->ctx, &b, &err) != SLM_OK)
        return fail(s, &err);
    return SLM_CLI_OK;
}

static int run_loop(loop_t *l, long n_predict)
{
    slm_cli_session_t *s = l->s;
    slm_cli_gen_t *g = l->g;
    int32_t n_vocab = slm_model_n_vocab(s->model);
    uint32_t n_ctx = slm_context_n_ctx(s->ctx);
    slm_error_t err;
    slm_error_init(&err);
    g->stop_reason = "length";
    bool stopped = false;
    for (long i = 0; i < n_predict; i++) {
        if (s->interrupt && *s->interrupt) {
            g->stop_reason = "interrupted";
            break;
        }
        const float *logits = slm_context_logits(s->ctx, -1);
        int32_t tok = slm_sampler_sample(l->smp, logits, n_vocab, &err);
        if (tok < 0)
            return fail(s, &err);
        slm_sampler_accept(l->smp, tok);
        if (slm_tokenizer_is_eog(s->tok, tok)) {
            g->stop_reason = "eos";
            break;
        }
        bool oom = !push_token(g, tok);
        if (!oom && emit_token(l, tok, &oom)) {
            g->stop_reason = "stop";
            stopped = true;
            break;
        }
        if (oom) {
            fprintf(stderr, "slmops %s: out of memory keeping the generated text\n", s->verb);
            return SLM_CLI_FAILED;
        }
        if (i + 1 == n_predict)
            break;   /* the last token needs no forward pass */
        if ((uint32_t)slm_context_seq_pos(s->ctx, 0) >= n_ctx) {
            g->stop_reason = "context";
            break;
        }
        int rc = decode(s, &tok, 1);
        if (rc != SLM_CLI_OK)
            return rc;
    }
    finish_text(l, stopped);
    return SLM_CLI_OK;
}

int slm_cli_session_generate(slm_cli_session_t *s, slm_sampler_t *smp, slm_stop_t *stop,
                     const int32_t *prompt, size_t n_prompt, long n_predict, bool continues,
                     slm_cli_emit_fn emit, void *user, slm_cli_gen_t *out)
{
    memset(out, 0, sizeof *out);
    out->stop_reason = "length";
    out->n_prompt = n_prompt;
    int32_t pos = slm_context_seq_pos(s->ctx, 0);
    uint32_t n_ctx = slm_context_n_ctx(s->ctx);
    if (n_prompt == 0 || (uint64_t)pos + n_prompt > n_ctx) {
        fprintf(stderr, "slmops %s: %zu prompt tokens do not fit: the context holds %u "
                "tokens and %d are used (use --ctx)\n", s->verb, n_prompt, n_ctx, (int)pos);
        return SLM_CLI_FAILED;
    }
    for (size_t i = 0; i < n_prompt; i++)
        slm_sampler_accept(smp, prompt[i]);
    double t0 = slm_cli_now_ms();
    int rc = decode(s, prompt, n_prompt);
    out->prompt_ms = slm_cli_now_ms() - t0;
    if (rc != SLM_CLI_OK || n_predict <= 0)
        return rc;
    loop_t l = {.s = s, .smp = smp, .stop = stop, .emit = emit, .user = user, .g = out};
    if (slm_detokenizer_new(s->tok, continues ? SLM_DECODE_CONTINUE : 0, &l.dt) != SLM_OK) {
        fprintf(stderr, "slmops %s: out of memory for the detokenizer\n", s->verb);
        return SLM_CLI_FAILED;
    }
    t0 = slm_cli_now_ms();
    rc = run_loop(&l, n_predict);
    out->gen_ms = slm_cli_now_ms() - t0;
    slm_detokenizer_free(l.dt);
    return rc;
}

void slm_cli_gen_free(slm_cli_gen_t *g)
{
    free(g->tokens);
    free(g->text);
    memset(g, 0, sizeof *g);
}
