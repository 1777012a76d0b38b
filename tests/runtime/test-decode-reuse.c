/* The decode fast paths against plain runs on stories260K: kept graphs whose cache
 * writes move token after token, padded attention spans, and 1 vs 2 vs 3 threads. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/model.h>
#include <slmops/registry.h>

#define MODEL_REL "gguf/stories260K.gguf"
/* Its 32000-row output projection is the one node big enough to split between
 * threads: decode steps mix pool-wide and thread-0-only nodes. */
#define MIXED_REL "gguf/llama-2-tiny-random.gguf"
#define N_TOK 150                   /* crosses two 64-cell attention pads */
/* The same kernels on the same cells agree to rounding; other summation orders (the
 * matrix-matrix prompt path, attention spans holding another sequence's cells) to
 * a looser bound, which a write into or a read of the wrong cells exceeds by far.
 * The cache is f32: an f16 one rounds each path's K and V on its own (1e-2 from
 * the exact logits either way), which would hide small errors of the paths. */
#define TOL 1e-4f
#define TOL_PATHS 2e-4f

static char model_path[1200], mixed_path[1200];
static const char *cur_path = model_path;
static slm_registry_t *reg;
static int32_t toks[N_TOK];

static void setup(void)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(model_path, sizeof model_path, "%s/%s", fx ? fx : ".", MODEL_REL);
    snprintf(mixed_path, sizeof mixed_path, "%s/%s", fx ? fx : ".", MIXED_REL);
    cur_path = model_path;
    slm_error_t err = {.struct_size = sizeof err};
    reg = slm_registry_new(NULL, &err);
    ck_assert_msg(reg, "registry: %s", err.message);
    unsigned s = 7;
    for (int i = 0; i < N_TOK; i++) {
        s = s * 1664525u + 1013904223u;
        toks[i] = (int32_t)((s >> 8) % 512u);
    }
}

static void teardown(void)
{
    slm_registry_free(reg);
}

static slm_model_t *load(int threads)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm_model_params_t mp;
    slm_model_params_default(&mp);
    mp.n_threads = threads;
    slm_model_t *m = NULL;
    ck_assert_msg(slm_model_load(reg, cur_path, &mp, &m, &err) == SLM_OK, "%s: %s",
                  cur_path, err.message);
    return m;
}

static slm_context_t *context(slm_model_t *m, uint32_t n_seq)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm_context_params_t cp;
    slm_context_params_default(&cp);
    cp.n_ctx = 256;
    cp.n_seq = n_seq;
    cp.type_kv = SLM_TYPE_F32;
    slm_context_t *c = NULL;
    ck_assert_msg(slm_context_new(m, &cp, &c, &err) == SLM_OK, "%s", err.message);
    return c;
}

static void decode_one(slm_context_t *c, int32_t tok, int32_t seq)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm_batch_t b = {.struct_size = sizeof b, .n_tokens = 1, .token = &tok, .seq_id = &seq};
    ck_assert_msg(slm_context_decode(c, &b, &err) == SLM_OK, "%s", err.message);
}

static void assert_close_tol(const float *a, const float *b, int n, const char *what, int pos,
                             float rel)
{
    for (int v = 0; v < n; v++) {
        float tol = rel * (1.0f + fabsf(b[v]));
        ck_assert_msg(fabsf(a[v] - b[v]) <= tol, "%s: position %d, logit %d: %g vs %g", what,
                      pos, v, a[v], b[v]);
    }
}

static void assert_close(const float *a, const float *b, int n, const char *what, int pos)
{
    assert_close_tol(a, b, n, what, pos, TOL);
}

/* Last-token logits of each one-token decode of the sequence in a new context. */
static float *step_logits(slm_model_t *m)
{
    int nv = slm_model_n_vocab(m);
    float *out = malloc((size_t)N_TOK * (size_t)nv * sizeof *out);
    slm_context_t *c = context(m, 1);
    for (int i = 0; i < N_TOK; i++) {
        decode_one(c, toks[i], 0);
        memcpy(out + (size_t)i * nv, slm_context_logits(c, -1), (size_t)nv * sizeof *out);
    }
    slm_context_free(c);
    return out;
}

/* All logits of the sequence as one prompt batch. */
static float *batch_logits(slm_model_t *m)
{
    int nv = slm_model_n_vocab(m);
    float *out = malloc((size_t)N_TOK * (size_t)nv * sizeof *out);
    int8_t want[N_TOK];
    memset(want, 1, sizeof want);
    slm_context_t *c = context(m, 1);
    slm_error_t err = {.struct_size = sizeof err};
    slm_batch_t b = {.struct_size = sizeof b, .n_tokens = N_TOK, .token = toks, .logits = want};
    ck_assert_msg(slm_context_decode(c, &b, &err) == SLM_OK, "%s", err.message);
    for (int i = 0; i < N_TOK; i++)
        memcpy(out + (size_t)i * nv, slm_context_logits(c, i), (size_t)nv * sizeof *out);
    slm_context_free(c);
    return out;
}

/* One token per decode reuses a kept graph, moving its cache writes each step. */
START_TEST(token_by_token_matches_batch)
{
    slm_model_t *m = load(1);
    int nv = slm_model_n_vocab(m);
    float *ref = batch_logits(m), *steps = step_logits(m);
    for (int i = 0; i < N_TOK; i++)
        assert_close_tol(steps + (size_t)i * nv, ref + (size_t)i * nv, nv, "token by token", i,
                         TOL_PATHS);
    /* Cleared and run again: the kept graph goes back to the first cells. */
    slm_context_t *c = context(m, 1);
    for (int round = 0; round < 2; round++) {
        slm_context_seq_clear(c, -1);
        for (int i = 0; i < 70; i++) {
            decode_one(c, toks[i], 0);
            assert_close(slm_context_logits(c, -1), steps + (size_t)i * nv, nv, "after clear",
                         i);
        }
    }
    slm_context_free(c);
    free(ref);
    free(steps);
    slm_model_free(m);
}
END_TEST

/* Truncating a sequence forgets its cells from a position on: decoding from there
 * again gives the logits of a run that never went further (what chat relies on). */
START_TEST(truncate_then_redecode)
{
    slm_model_t *m = load(1);
    int nv = slm_model_n_vocab(m);
    float *steps = step_logits(m);
    slm_context_t *c = context(m, 1);
    for (int i = 0; i < 100; i++)
        decode_one(c, (int32_t)((toks[i] + 7) % 512), 0);   /* other tokens first */
    slm_context_seq_truncate(c, 0, 0);
    ck_assert_int_eq(slm_context_seq_pos(c, 0), 0);
    for (int i = 0; i < 90; i++)
        decode_one(c, toks[i], 0);
    slm_context_seq_truncate(c, 0, 200);   /* past the end: nothing changes */
    ck_assert_int_eq(slm_context_seq_pos(c, 0), 90);
    slm_context_seq_truncate(c, 0, 40);
    ck_assert_int_eq(slm_context_seq_pos(c, 0), 40);
    for (int i = 40; i < 90; i++) {
        decode_one(c, toks[i], 0);
        assert_close(slm_context_logits(c, -1), steps + (size_t)i * nv, nv, "after truncate", i);
    }
    slm_context_free(c);
    free(steps);
    slm_model_free(m);
}
END_TEST

/* Two sequences interleaved in one cache: each sees only its own cells. */
START_TEST(interleaved_sequences)
{
    slm_model_t *m = load(1);
    int nv = slm_model_n_vocab(m);
    float *steps = step_logits(m);
    slm_context_t *c = context(m, 2);
    for (int i = 0; i < 80; i++) {
        decode_one(c, toks[i], 0);
        assert_close_tol(slm_context_logits(c, -1), steps + (size_t)i * nv, nv, "sequence 0", i,
                         TOL_PATHS);
        decode_one(c, toks[i], 1);
        assert_close_tol(slm_context_logits(c, -1), steps + (size_t)i * nv, nv, "sequence 1", i,
                         TOL_PATHS);
    }
    slm_context_free(c);
    free(steps);
    slm_model_free(m);
}
END_TEST

/* The pool runs small nodes on one thread and drops barriers between independent
 * ones: every thread count must give the single-thread logits. */
START_TEST(threads_agree)
{
    slm_model_t *m1 = load(1);
    int nv = slm_model_n_vocab(m1);
    float *ref = batch_logits(m1), *steps = step_logits(m1);
    for (int th = 2; th <= 3; th++) {
        slm_model_t *m = load(th);
        float *got = batch_logits(m), *got_steps = step_logits(m);
        for (int i = 0; i < N_TOK; i++) {
            assert_close(got + (size_t)i * nv, ref + (size_t)i * nv, nv, "batch", i);
            assert_close(got_steps + (size_t)i * nv, steps + (size_t)i * nv, nv, "steps", i);
        }
        free(got);
        free(got_steps);
        slm_model_free(m);
    }
    free(ref);
    free(steps);
    slm_model_free(m1);
}
END_TEST

START_TEST(threads_agree_mixed)
{
    FILE *f = fopen(mixed_path, "rb");
    if (!f)
        return;   /* an optional fixture: the stories260K tests still ran */
    fclose(f);
    cur_path = mixed_path;
    for (int i = 0; i < N_TOK; i++)
        toks[i] = 3 + toks[i];   /* past the control tokens */
    slm_model_t *m1 = load(1);
    int nv = slm_model_n_vocab(m1);
    float *steps = step_logits(m1);
    {
        slm_model_t *m = load(2);
        float *got = step_logits(m);
        for (int i = 0; i < N_TOK; i++)
            assert_close(got + (size_t)i * nv, steps + (size_t)i * nv, nv, "mixed steps", i);
        free(got);
        slm_model_free(m);
    }
    free(steps);
    slm_model_free(m1);
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
    Suite *s = suite_create("decode-reuse");
    TCase *tc = tcase_create("decode");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, token_by_token_matches_batch);
    tcase_add_test(tc, interleaved_sequences);
    tcase_add_test(tc, truncate_then_redecode);
    tcase_add_test(tc, threads_agree);
    tcase_add_test(tc, threads_agree_mixed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
