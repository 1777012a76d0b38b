/* Generation slots on stories260K: sequences stepped together give the greedy tokens
 * each gives alone (joining mid-way, chunked prefill, different adapters too); stop
 * rules; freed cells. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/adapter.h>
#include <slmops/generation.h>
#include <slmops/registry.h>

#define MODEL_REL "gguf/stories260K.gguf"
#define N_GEN 32
#define N_SEQ 4

static char model_path[1200];
static slm_registry_t *reg;
static slm_model_t *model;
static slm_tokenizer_t *tok;
static slm_sampler_params_t greedy;

static const char *const texts[N_SEQ] = {
    "Once upon a time", "The cat sat on the mat and", "Lily and Tom went to the park. They",
    "One day, a little bird"};

static void setup(void)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(model_path, sizeof model_path, "%s/%s", fx ? fx : ".", MODEL_REL);
    slm_error_t err = {.struct_size = sizeof err};
    reg = slm_registry_new(NULL, &err);
    ck_assert_msg(reg, "registry: %s", err.message);
    slm_model_params_t mp;
    slm_model_params_default(&mp);
    mp.n_threads = 1;
    ck_assert_msg(slm_model_load(reg, model_path, &mp, &model, &err) == SLM_OK, "%s: %s",
                  model_path, err.message);
    ck_assert_msg(slm_tokenizer_from_model_file(slm_model_container(model), &tok, &err) ==
                  SLM_OK, "%s", err.message);
    slm_sampler_params_default(&greedy);
    greedy.temperature = 0;
}

static void teardown(void)
{
    slm_tokenizer_free(tok);
    slm_model_free(model);
    slm_registry_free(reg);
}

static slm_generator_t *generator(uint32_t n_slots, uint32_t n_batch)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm_generator_params_t gp;
    slm_generator_params_default(&gp);
    gp.n_slots = n_slots;
    gp.n_ctx = 256 * n_slots;
    gp.n_batch = n_batch;
    slm_generator_t *g = NULL;
    ck_assert_msg(slm_generator_new(model, tok, &gp, &g, &err) == SLM_OK, "%s", err.message);
    return g;
}

static int32_t *encode(const char *text, size_t *n)
{
    slm_error_t err = {.struct_size = sizeof err};
    int32_t *ids = NULL;
    ck_assert_msg(slm_tokenizer_encode(tok, text, strlen(text), SLM_TOKENIZE_ADD_BOS, &ids, n,
                                       &err) == SLM_OK, "%s", err.message);
    return ids;
}

static slm_seq_t *start(slm_generator_t *g, const char *text, int32_t max_tokens,
                        const char *stop)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm_seq_t *s = NULL;
    ck_assert_msg(slm_seq_new(g, &s, &err) == SLM_OK, "%s", err.message);
    size_t n = 0;
    int32_t *ids = encode(text, &n);
    slm_seq_params_t sp;
    slm_seq_params_default(&sp);
    sp.sampling = &greedy;
    sp.max_tokens = max_tokens;
    sp.stop = &stop;
    sp.n_stop = stop != NULL;
    ck_assert_msg(slm_seq_start(s, &sp, ids, n, &err) == SLM_OK, "%s", err.message);
    free(ids);
    return s;
}

static int step(slm_generator_t *g)
{
    slm_error_t err = {.struct_size = sizeof err};
    int n = slm_generator_step(g, &err);
    ck_assert_msg(n >= 0, "step: %s", err.message);
    return n;
}

static void run(slm_generator_t *g)
{
    for (int i = 0; i < 10000 && step(g) > 0; i++)
        ;
}

/* The greedy tokens and text of text decoded alone in a one-slot generator. */
typedef struct alone {
    int32_t tokens[N_GEN];
    size_t n;
    char text[4096];
} alone_t;

static void decode_alone(const char *text, uint32_t n_batch, int32_t max_tokens, alone_t *out)
{
    slm_generator_t *g = generator(1, n_batch);
    slm_seq_t *s = start(g, text, max_tokens, NULL);
    run(g);
    ck_assert_int_eq(slm_seq_stop_reason(s), SLM_SEQ_LENGTH);
    const int32_t *t = slm_seq_tokens(s, &out->n);
    ck_assert_uint_eq(out->n, (size_t)max_tokens);
    memcpy(out->tokens, t, out->n * sizeof *t);
    snprintf(out->text, sizeof out->text, "%s", slm_seq_text(s, NULL));
    slm_seq_free(s);
    slm_generator_free(g);
}

static void assert_same(slm_seq_t *s, const alone_t *a, const char *what, int i)
{
    size_t n = 0;
    const int32_t *t = slm_seq_tokens(s, &n);
    ck_assert_msg(n == a->n, "%s %d: %zu tokens, alone %zu", what, i, n, a->n);
    for (size_t k = 0; k < n; k++)
        ck_assert_msg(t[k] == a->tokens[k], "%s %d: token %zu is %d, alone %d", what, i, k,
                      t[k], a->tokens[k]);
    ck_assert_str_eq(slm_seq_text(s, NULL), a->text);
}

static void assert_same_tokens(const alone_t *got, const alone_t *a, const char *what)
{
    ck_assert_msg(got->n == a->n && !memcmp(got->tokens, a->tokens, a->n * sizeof *a->tokens),
                  "%s: '%s', alone '%s'", what, got->text, a->text);
}

START_TEST(together_equals_alone)
{
    alone_t a[N_SEQ];
    for (int i = 0; i < N_SEQ; i++)
        decode_alone(texts[i], 512, N_GEN, &a[i]);
    slm_generator_t *g = generator(N_SEQ, 512);
    slm_seq_t *s[N_SEQ];
    for (int i = 0; i < N_SEQ; i++)
        s[i] = start(g, texts[i], N_GEN, NULL);
    /* One step prefills every prompt; each later one decodes every sequence's token. */
    ck_assert_int_eq(step(g), N_SEQ);
    for (int i = 0; i < N_SEQ; i++) {
        size_t n;
        slm_seq_tokens(s[i], &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(slm_seq_state(s[i]), SLM_SEQ_DECODING);
    }
    run(g);
    for (int i = 0; i < N_SEQ; i++) {
        assert_same(s[i], &a[i], "together", i);
        slm_seq_free(s[i]);
    }
    slm_generator_free(g);
}
END_TEST

START_TEST(joining_midway)
{
    alone_t a[N_SEQ];
    for (int i = 0; i < N_SEQ; i++)
        decode_alone(texts[i], 512, N_GEN, &a[i]);
    slm_generator_t *g = generator(N_SEQ, 512);
    slm_seq_t *s[N_SEQ];
    s[0] = start(g, texts[0], N_GEN, NULL);
    for (int k = 0; k < 5; k++)
        step(g);
    s[1] = start(g, texts[1], N_GEN, NULL);
    s[2] = start(g, texts[2], N_GEN, NULL);
    step(g);
    size_t n0 = 0, n1 = 0;
    slm_seq_tokens(s[0], &n0);
    slm_seq_tokens(s[1], &n1);
    ck_assert_uint_eq(n0, 6);   /* the newcomers' prompts did not hold it back */
    ck_assert_uint_eq(n1, 1);
    for (int k = 0; k < 11; k++)
        step(g);
    s[3] = start(g, texts[3], N_GEN, NULL);
    run(g);
    for (int i = 0; i < N_SEQ; i++) {
        assert_same(s[i], &a[i], "joined", i);
        slm_seq_free(s[i]);
    }
    slm_generator_free(g);
}
END_TEST

/* A prompt of about 100 tokens. */
static char *long_text(void)
{
    static const char sentence[] = "The little dog ran to the big tree and saw a bird. ";
    size_t n = 6 * strlen(sentence) + 1;
    char *t = malloc(n);
    ck_assert_ptr_nonnull(t);
    t[0] = '\0';
    for (int i = 0; i < 6; i++)
        strcat(t, sentence);
    return t;
}

START_TEST(chunked_prefill)
{
    char *text = long_text();
    size_t n_prompt = 0;
    free(encode(text, &n_prompt));
    ck_assert_uint_gt(n_prompt, 80);
    ck_assert_uint_lt(n_prompt + N_GEN, 256);
    alone_t one_shot, chunked;
    decode_alone(text, 512, N_GEN, &one_shot);
    decode_alone(text, 16, N_GEN, &chunked);
    ck_assert_uint_eq(chunked.n, one_shot.n);
    ck_assert_mem_eq(chunked.tokens, one_shot.tokens, one_shot.n * sizeof *one_shot.tokens);
    ck_assert_str_eq(chunked.text, one_shot.text);

    /* Interleaved with a running stream: it gets its token every step while the long
     * prompt goes in 16 - 1 tokens at a time. */
    alone_t a;
    decode_alone(texts[0], 512, N_GEN, &a);
    slm_generator_t *g = generator(2, 16);
    slm_seq_t *run0 = start(g, texts[0], N_GEN, NULL);
    step(g);
    slm_seq_t *big = start(g, text, N_GEN, NULL);
    for (int k = 0; k < 5; k++) {
        step(g);
        size_t n = 0;
        slm_seq_tokens(run0, &n);
        ck_assert_uint_eq(n, (size_t)k + 2);
        ck_assert_int_eq(slm_seq_state(big), SLM_SEQ_PREFILL);
        ck_assert_int_eq(slm_seq_pos(big), 15 * (k + 1));
    }
    run(g);
    assert_same(run0, &a, "beside a chunked prompt", 0);
    assert_same(big, &one_shot, "chunked beside a stream", 1);
    slm_seq_free(run0);
    slm_seq_free(big);
    slm_generator_free(g);
    free(text);
}
END_TEST

START_TEST(freeing_frees_cells)
{
    slm_generator_t *g = generator(2, 512);
    ck_assert_uint_eq(slm_generator_kv_used(g), 0);
    slm_seq_t *a = start(g, texts[0], 8, NULL);
    slm_seq_t *b = start(g, texts[1], 8, NULL);
    ck_assert_uint_eq(slm_generator_n_free_slots(g), 0);
    slm_error_t err = {.struct_size = sizeof err};
    slm_seq_t *c = NULL;
    ck_assert_int_eq(slm_seq_new(g, &c, &err), SLM_E_STATE);
    run(g);
    int32_t pa = slm_seq_pos(a), pb = slm_seq_pos(b);
    ck_assert_int_gt(pa, 8);
    ck_assert_uint_eq(slm_generator_kv_used(g), (uint32_t)(pa + pb));
    slm_seq_free(a);
    ck_assert_uint_eq(slm_generator_kv_used(g), (uint32_t)pb);
    ck_assert_uint_eq(slm_generator_n_free_slots(g), 1);
    c = start(g, texts[2], 8, NULL);   /* the freed slot, empty again */
    ck_assert_int_eq(slm_seq_pos(c), 0);
    /* A slot freed while running stops and gives its cells back too. */
    step(g);
    ck_assert_int_gt(slm_seq_pos(c), 0);
    slm_seq_free(c);
    ck_assert_uint_eq(slm_generator_kv_used(g), (uint32_t)pb);
    ck_assert_int_eq(step(g), 0);
    slm_seq_free(b);
    ck_assert_uint_eq(slm_generator_kv_used(g), 0);
    slm_generator_free(g);
}
END_TEST

START_TEST(stop_rules)
{
    alone_t a;
    decode_alone(texts[0], 512, N_GEN, &a);
    ck_assert_uint_gt(strlen(a.text), 20);
    /* A stop string from the middle of the text: the text ends just before it. */
    char stop[8];
    memcpy(stop, a.text + 12, 5);
    stop[5] = '\0';
    const char *at = strstr(a.text, stop);
    slm_generator_t *g = generator(2, 512);
    slm_seq_t *s = start(g, texts[0], N_GEN, stop);
    slm_seq_t *c = start(g, texts[1], -1, NULL);
    step(g);
    step(g);
    slm_seq_cancel(c);
    run(g);
    ck_assert_int_eq(slm_seq_stop_reason(s), SLM_SEQ_STOP_STRING);
    ck_assert_str_eq(slm_seq_stop_name(SLM_SEQ_STOP_STRING), "stop");
    size_t len = 0;
    const char *text = slm_seq_text(s, &len);
    ck_assert_uint_eq(len, (size_t)(at - a.text));
    ck_assert_int_eq(memcmp(text, a.text, len), 0);
    ck_assert_int_eq(slm_seq_stop_reason(c), SLM_SEQ_CANCELLED);
    size_t n = 0;
    slm_seq_tokens(c, &n);
    ck_assert_uint_eq(n, 2);
    /* A finished sequence starts again after what its cells hold. */
    slm_error_t err = {.struct_size = sizeof err};
    int32_t more = a.tokens[0];
    slm_seq_params_t sp;
    slm_seq_params_default(&sp);
    sp.max_tokens = 0;
    int32_t before = slm_seq_pos(c);
    ck_assert_int_eq(slm_seq_start(c, &sp, &more, 1, &err), SLM_OK);
    ck_assert_int_eq(slm_seq_start(c, &sp, &more, 1, &err), SLM_E_STATE);
    run(g);
    ck_assert_int_eq(slm_seq_stop_reason(c), SLM_SEQ_LENGTH);
    ck_assert_int_eq(slm_seq_pos(c), before + 1);
    slm_seq_free(s);
    slm_seq_free(c);
    slm_generator_free(g);
}
END_TEST

/* An adapter on model with B filled from seed (a new adapter's B is zero). */
static void attach(const char *targets, int32_t rank, uint64_t seed, double scale)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm_adapter_params_t p;
    slm_adapter_params_default(&p);
    p.targets = targets;
    p.rank = rank;
    p.alpha = 16;
    p.seed = seed;
    slm_adapter_t *ad = NULL;
    ck_assert_msg(slm_adapter_new(slm_model_container(model), &p, &ad, &err) == SLM_OK, "%s",
                  err.message);
    for (size_t i = 0; i < slm_adapter_n_targets(ad); i++) {
        slm_adapter_target_t t = {.struct_size = sizeof t};
        slm_adapter_target(ad, i, &t);
        for (int64_t k = 0; k < t.n_out * t.rank; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            t.b[k] = (float)(scale * ((double)(seed >> 11) / 4503599627370496.0 - 1.0));
        }
    }
    ck_assert_msg(slm_model_attach_adapter(model, ad, 1.0f, &err) >= 0, "%s", err.message);
    slm_adapter_free(ad);
}

/* Greedy start parameters for N_GEN tokens with these adapters. */
static slm_seq_params_t greedy_params(const int32_t *adapters, size_t n_adapters)
{
    slm_seq_params_t sp;
    slm_seq_params_default(&sp);
    sp.sampling = &greedy;
    sp.max_tokens = N_GEN;
    sp.adapters = adapters;
    sp.n_adapters = n_adapters;
    return sp;
}

static slm_seq_t *start_with(slm_generator_t *g, const char *text, const int32_t *adapters,
                             size_t n_adapters)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm_seq_t *s = NULL;
    ck_assert_msg(slm_seq_new(g, &s, &err) == SLM_OK, "%s", err.message);
    size_t n = 0;
    int32_t *ids = encode(text, &n);
    slm_seq_params_t sp = greedy_params(adapters, n_adapters);
    ck_assert_msg(slm_seq_start(s, &sp, ids, n, &err) == SLM_OK, "%s", err.message);
    free(ids);
    return s;
}

static void keep(slm_seq_t *s, alone_t *out)
{
    const int32_t *t = slm_seq_tokens(s, &out->n);
    memcpy(out->tokens, t, out->n * sizeof *t);
    snprintf(out->text, sizeof out->text, "%s", slm_seq_text(s, NULL));
}

/* Sequences with different adapter sets stepped together: each gives its tokens
 * alone; the empty set gives the base model's tokens exactly. */
START_TEST(adapters_per_sequence)
{
    static const int32_t ids[] = {0, 1};
    static const struct {
        const int32_t *v;
        size_t n;
    } sets[N_SEQ] = {{ids, 0}, {ids, 1}, {ids + 1, 1}, {ids, 2}};
    alone_t base, alone[N_SEQ];
    decode_alone(texts[0], 512, N_GEN, &base);
    attach("q,k,v,o,gate,up,down", 4, 3, 0.03);
    attach("q,v", 8, 4, 0.1);
    for (int i = 0; i < N_SEQ; i++) {
        slm_generator_t *g = generator(1, 512);
        slm_seq_t *s = start_with(g, texts[0], sets[i].v, sets[i].n);
        run(g);
        keep(s, &alone[i]);
        slm_seq_free(s);
        slm_generator_free(g);
    }
    ck_assert_msg(alone[0].n == base.n && !memcmp(alone[0].tokens, base.tokens,
                                                  base.n * sizeof *base.tokens),
                  "no adapter: %s; the base model: %s", alone[0].text, base.text);
    for (int i = 1; i < N_SEQ; i++)
        ck_assert_msg(memcmp(alone[i].tokens, base.tokens, base.n * sizeof *base.tokens),
                      "set %d gives the base's text: the comparison proves nothing", i);
    slm_generator_t *g = generator(N_SEQ, 512);
    slm_seq_t *seq[N_SEQ];
    for (int i = 0; i < N_SEQ; i++)
        seq[i] = start_with(g, texts[0], sets[i].v, sets[i].n);
    run(g);
    for (int i = 0; i < N_SEQ; i++) {
        assert_same(seq[i], &alone[i], "adapter set", i);
        slm_seq_free(seq[i]);
    }
    slm_error_t err = {.struct_size = sizeof err};
    slm_seq_t *s = NULL;
    ck_assert_int_eq(slm_seq_new(g, &s, &err), SLM_OK);
    slm_seq_params_t sp;
    slm_seq_params_default(&sp);
    const int32_t bad = 2;
    sp.adapters = &bad;
    sp.n_adapters = 1;
    int32_t prompt[2] = {1, 2};
    ck_assert_int_eq(slm_seq_start(s, &sp, prompt, 2, &err), SLM_E_INVALID);
    slm_seq_free(s);
    slm_generator_free(g);
}
END_TEST

/* A prompt-cache generator with two slots: start text (its adapters) in the slot that
 * shares the longest start, run it alone, and say how many prompt tokens were kept. */
static size_t cached_run(slm_generator_t *g, const char *text, const int32_t *adapters,
                         size_t n_adapters, alone_t *out)
{
    slm_error_t err = {.struct_size = sizeof err};
    size_t n = 0, kept = 99;
    int32_t *ids = encode(text, &n);
    slm_seq_params_t sp = greedy_params(adapters, n_adapters);
    slm_seq_t *s = NULL;
    ck_assert_msg(slm_seq_new_for(g, &sp, ids, n, &s, &kept, &err) == SLM_OK, "%s", err.message);
    ck_assert_uint_lt(kept, n);
    ck_assert_int_eq(slm_seq_pos(s), (int32_t)kept);
    ck_assert_msg(slm_seq_start(s, &sp, ids + kept, n - kept, &err) == SLM_OK, "%s", err.message);
    run(g);
    keep(s, out);
    slm_seq_free(s);
    free(ids);
    return kept;
}

/* prompt_cache: a repeated prompt keeps all its cells but the last token's, a prompt
 * that extends an earlier one keeps that one's, a different adapter set keeps nothing,
 * and every answer is the one decoded alone without the cache. */
START_TEST(prompt_cache_reuses_cells)
{
    static const int32_t one = 0;
    alone_t want0, want1, want_ad, got;
    char longer[512];
    snprintf(longer, sizeof longer, "%s and then they went home", texts[0]);
    decode_alone(texts[0], 512, N_GEN, &want0);
    decode_alone(longer, 512, N_GEN, &want1);
    attach("q,v", 4, 5, 0.1);
    slm_generator_t *ga = generator(1, 512);
    slm_seq_t *sa = start_with(ga, texts[0], &one, 1);
    run(ga);
    keep(sa, &want_ad);
    slm_seq_free(sa);
    slm_generator_free(ga);
    ck_assert_msg(memcmp(want_ad.tokens, want0.tokens, sizeof want0.tokens), "the adapter "
                  "changes nothing: its check proves nothing");

    slm_error_t err = {.struct_size = sizeof err};
    slm_generator_params_t gp;
    slm_generator_params_default(&gp);
    gp.n_slots = 2;
    gp.n_ctx = 512;
    gp.prompt_cache = true;
    slm_generator_t *g = NULL;
    ck_assert_msg(slm_generator_new(model, tok, &gp, &g, &err) == SLM_OK, "%s", err.message);
    static const int32_t none = -1;
    size_t n0 = 0, n1 = 0;
    free(encode(texts[0], &n0));
    free(encode(longer, &n1));
    ck_assert_uint_eq(cached_run(g, texts[0], &none, 0, &got), 0);
    assert_same_tokens(&got, &want0, "first");
    ck_assert_uint_eq(cached_run(g, texts[0], &none, 0, &got), n0 - 1);
    assert_same_tokens(&got, &want0, "repeated");
    size_t kept = cached_run(g, longer, &none, 0, &got);
    ck_assert_msg(kept + 3 >= n0 && kept < n1, "longer prompt: %zu of %zu kept", kept, n1);
    assert_same_tokens(&got, &want1, "longer");
    ck_assert_uint_eq(cached_run(g, texts[0], &one, 1, &got), 0);
    assert_same_tokens(&got, &want_ad, "adapter");
    slm_generator_free(g);
}
END_TEST

START_TEST(bad_starts)
{
    slm_generator_t *g = generator(1, 512);
    slm_error_t err = {.struct_size = sizeof err};
    slm_seq_t *s = NULL;
    ck_assert_int_eq(slm_seq_new(g, &s, &err), SLM_OK);
    slm_seq_params_t sp;
    slm_seq_params_default(&sp);
    int32_t ids[300] = {0};
    ck_assert_int_eq(slm_seq_start(s, &sp, ids, 0, &err), SLM_E_INVALID);
    ck_assert_int_eq(slm_seq_start(s, &sp, ids, 257, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "do not fit"), "%s", err.message);
    ids[3] = 1 << 20;
    ck_assert_int_eq(slm_seq_start(s, &sp, ids, 10, &err), SLM_E_INVALID);
    sp.max_tokens = -2;
    ids[3] = 1;
    ck_assert_int_eq(slm_seq_start(s, &sp, ids, 10, &err), SLM_E_INVALID);
    ck_assert_int_eq(step(g), 0);
    slm_seq_free(s);
    slm_generator_params_t gp;
    slm_generator_params_default(&gp);
    gp.n_slots = 8;
    gp.n_batch = 4;
    slm_generator_t *bad = NULL;
    ck_assert_int_eq(slm_generator_new(model, tok, &gp, &bad, &err), SLM_E_INVALID);
    ck_assert_ptr_null(bad);
    slm_generator_free(g);
}
END_TEST

int main(void)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", fx ? fx : ".", MODEL_REL);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("SKIP: %s not found\n", path);
        return 77;
    }
    fclose(f);
    Suite *s = suite_create("generator");
    TCase *tc = tcase_create("slots");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, together_equals_alone);
    tcase_add_test(tc, joining_midway);
    tcase_add_test(tc, chunked_prefill);
    tcase_add_test(tc, freeing_frees_cells);
    tcase_add_test(tc, stop_rules);
    tcase_add_test(tc, bad_starts);
    tcase_add_test(tc, adapters_per_sequence);
    tcase_add_test(tc, prompt_cache_reuses_cells);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
