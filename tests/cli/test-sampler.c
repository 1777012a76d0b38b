/* Check tests of the sampler: each transform on hand-made logits, llama.cpp's
 * penalty rule, seed determinism, and stop strings split across tokens. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/sampler.h>

/* A sampler with every filter off: only what a test turns on acts. */
static slm_sampler_t *plain(float temp, void (*tweak)(slm_sampler_params_t *))
{
    slm_sampler_params_t p;
    slm_sampler_params_default(&p);
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    if (tweak)
        tweak(&p);
    slm_sampler_t *s = slm_sampler_new(&p, NULL);
    ck_assert_ptr_nonnull(s);
    return s;
}

static int32_t survivors(slm_sampler_t *s, const float *logits, int32_t n, slm_candidate_t *out)
{
    int32_t k = -1;
    ck_assert_int_eq(slm_sampler_candidates(s, logits, n, out, &k, NULL), SLM_OK);
    return k;
}

/* Natural logs of these probabilities, so that softmax gives them back. */
static void log_probs(float *l, const double *p, int n)
{
    for (int i = 0; i < n; i++)
        l[i] = (float)log(p[i]);
}

START_TEST(greedy_takes_max_lowest_id_on_tie)
{
    slm_sampler_t *s = plain(0.0f, NULL);
    const float l1[] = {0.5f, 3.0f, -1.0f, 2.9f};
    ck_assert_int_eq(slm_sampler_sample(s, l1, 4, NULL), 1);
    const float l2[] = {1.0f, 7.0f, 7.0f, NAN};
    ck_assert_int_eq(slm_sampler_sample(s, l2, 4, NULL), 1);
    slm_sampler_free(s);
}
END_TEST

START_TEST(temperature_scales_logits)
{
    slm_sampler_t *s = plain(0.5f, NULL);
    const float l[] = {1.0f, 2.0f, 0.0f};
    slm_candidate_t c[3];
    ck_assert_int_eq(survivors(s, l, 3, c), 3);
    ck_assert_int_eq(c[0].id, 1);
    ck_assert_int_eq(c[1].id, 0);
    ck_assert_int_eq(c[2].id, 2);
    ck_assert_float_eq_tol(c[0].logit, 4.0f, 1e-6f);
    double z = exp(4.0) + exp(2.0) + exp(0.0);
    ck_assert_double_eq_tol(c[0].p, exp(4.0) / z, 1e-6);
    ck_assert_double_eq_tol(c[2].p, 1.0 / z, 1e-6);
    slm_sampler_free(s);
}
END_TEST

static void k2(slm_sampler_params_t *p) { p->top_k = 2; }
START_TEST(top_k_keeps_k_best)
{
    slm_sampler_t *s = plain(1.0f, k2);
    const float l[] = {1.0f, 3.0f, 2.0f, 0.0f, -5.0f};
    slm_candidate_t c[5];
    ck_assert_int_eq(survivors(s, l, 5, c), 2);
    ck_assert_int_eq(c[0].id, 1);
    ck_assert_int_eq(c[1].id, 2);
    ck_assert_double_eq_tol(c[0].p + c[1].p, 1.0, 1e-6);
    slm_sampler_free(s);
}
END_TEST

static void p075(slm_sampler_params_t *p) { p->top_p = 0.75f; }
static void p085(slm_sampler_params_t *p) { p->top_p = 0.85f; }
START_TEST(top_p_keeps_smallest_set_reaching_p)
{
    const double probs[] = {0.05, 0.5, 0.15, 0.3};
    float l[4];
    log_probs(l, probs, 4);
    slm_candidate_t c[4];
    slm_sampler_t *s = plain(1.0f, p075);
    ck_assert_int_eq(survivors(s, l, 4, c), 2);   /* 0.5 + 0.3 >= 0.75 */
    ck_assert_int_eq(c[0].id, 1);
    ck_assert_int_eq(c[1].id, 3);
    ck_assert_double_eq_tol(c[0].p, 0.5 / 0.8, 1e-5);
    slm_sampler_free(s);
    s = plain(1.0f, p085);
    ck_assert_int_eq(survivors(s, l, 4, c), 3);   /* needs 0.15 too */
    ck_assert_int_eq(c[2].id, 2);
    slm_sampler_free(s);
}
END_TEST

static void m02(slm_sampler_params_t *p) { p->min_p = 0.2f; }
START_TEST(min_p_keeps_relative_to_best)
{
    const double probs[] = {0.05, 0.5, 0.15, 0.3};
    float l[4];
    log_probs(l, probs, 4);
    slm_candidate_t c[4];
    slm_sampler_t *s = plain(1.0f, m02);
    /* 0.2 * 0.5 = 0.1: 0.5, 0.3 and 0.15 stay, 0.05 goes. */
    ck_assert_int_eq(survivors(s, l, 4, c), 3);
    ck_assert_int_eq(c[0].id, 1);
    ck_assert_int_eq(c[1].id, 3);
    ck_assert_int_eq(c[2].id, 2);
    slm_sampler_free(s);
}
END_TEST

static float logit_of(const slm_candidate_t *c, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (c[i].id == id)
            return c[i].logit;
    ck_abort_msg("token %d not among the candidates", (int)id);
    return 0.0f;
}

static void rep2(slm_sampler_params_t *p) { p->repeat_penalty = 2.0f; }
START_TEST(repeat_penalty_divides_positive_multiplies_negative)
{
    slm_sampler_t *s = plain(1.0f, rep2);
    slm_sampler_accept(s, 0);
    slm_sampler_accept(s, 1);
    slm_sampler_accept(s, 1);   /* counted once: the penalty is not per occurrence */
    const float l[] = {2.0f, -2.0f, 1.0f};
    slm_candidate_t c[3];
    ck_assert_int_eq(survivors(s, l, 3, c), 3);
    ck_assert_float_eq_tol(logit_of(c, 3, 0), 1.0f, 1e-6f);
    ck_assert_float_eq_tol(logit_of(c, 3, 1), -4.0f, 1e-6f);
    ck_assert_float_eq_tol(logit_of(c, 3, 2), 1.0f, 1e-6f);
    slm_sampler_free(s);
    /* Greedy decides on penalised logits too: token 0 drops from 2 to 1 < 1.5. */
    slm_sampler_params_t p;
    slm_sampler_params_default(&p);
    p.temperature = 0.0f;
    p.repeat_penalty = 2.0f;
    s = slm_sampler_new(&p, NULL);
    slm_sampler_accept(s, 0);
    const float g[] = {2.0f, -2.0f, 1.5f};
    ck_assert_int_eq(slm_sampler_sample(s, g, 3, NULL), 2);
    slm_sampler_free(s);
}
END_TEST

static void rep2_last1(slm_sampler_params_t *p) { p->repeat_penalty = 2.0f; p->repeat_last_n = 1; }
START_TEST(repeat_last_n_limits_window)
{
    slm_sampler_t *s = plain(1.0f, rep2_last1);
    slm_sampler_accept(s, 0);
    slm_sampler_accept(s, 2);
    const float l[] = {2.0f, -2.0f, 1.0f};
    slm_candidate_t c[3];
    survivors(s, l, 3, c);
    ck_assert_float_eq_tol(logit_of(c, 3, 0), 2.0f, 1e-6f);   /* out of the window */
    ck_assert_float_eq_tol(logit_of(c, 3, 2), 0.5f, 1e-6f);
    slm_sampler_reset(s);
    survivors(s, l, 3, c);
    ck_assert_float_eq_tol(logit_of(c, 3, 2), 1.0f, 1e-6f);   /* history forgotten */
    slm_sampler_free(s);
}
END_TEST

static void freq_pres(slm_sampler_params_t *p)
{
    p->frequency_penalty = 0.5f;
    p->presence_penalty = 1.0f;
}
START_TEST(frequency_and_presence_subtract)
{
    slm_sampler_t *s = plain(1.0f, freq_pres);
    slm_sampler_accept(s, 0);
    slm_sampler_accept(s, 0);
    slm_sampler_accept(s, 1);
    const float l[] = {3.0f, 3.0f, 3.0f};
    slm_candidate_t c[3];
    survivors(s, l, 3, c);
    ck_assert_float_eq_tol(logit_of(c, 3, 0), 3.0f - 2 * 0.5f - 1.0f, 1e-6f);
    ck_assert_float_eq_tol(logit_of(c, 3, 1), 3.0f - 0.5f - 1.0f, 1e-6f);
    ck_assert_float_eq_tol(logit_of(c, 3, 2), 3.0f, 1e-6f);
    ck_assert_int_eq(c[0].id, 2);
    slm_sampler_free(s);
}
END_TEST

static void seed42(slm_sampler_params_t *p) { p->seed = 42; }
static void seed43(slm_sampler_params_t *p) { p->seed = 43; }
static void draw(slm_sampler_t *s, int32_t *out, int n)
{
    const double probs[] = {0.1, 0.2, 0.3, 0.25, 0.15};
    float l[5];
    log_probs(l, probs, 5);
    for (int i = 0; i < n; i++) {
        out[i] = slm_sampler_sample(s, l, 5, NULL);
        ck_assert_int_ge(out[i], 0);
        ck_assert_int_lt(out[i], 5);
    }
}

START_TEST(same_seed_same_tokens)
{
    enum { N = 200 };
    int32_t a[N], b[N], c[N], d[N];
    slm_sampler_t *s1 = plain(1.0f, seed42), *s2 = plain(1.0f, seed42), *s3 = plain(1.0f, seed43);
    draw(s1, a, N);
    draw(s2, b, N);
    draw(s3, c, N);
    ck_assert_mem_eq(a, b, sizeof a);
    ck_assert_msg(memcmp(a, c, sizeof a) != 0, "seeds 42 and 43 drew the same 200 tokens");
    slm_sampler_reset(s1);
    draw(s1, d, N);
    ck_assert_mem_eq(a, d, sizeof a);
    slm_sampler_free(s1);
    slm_sampler_free(s2);
    slm_sampler_free(s3);
}
END_TEST

START_TEST(draws_follow_probabilities)
{
    enum { N = 20000 };
    static int32_t t[N];
    slm_sampler_t *s = plain(1.0f, seed42);
    draw(s, t, N);
    int count[5] = {0};
    for (int i = 0; i < N; i++)
        count[t[i]]++;
    const double probs[] = {0.1, 0.2, 0.3, 0.25, 0.15};
    for (int i = 0; i < 5; i++)   /* > 6 standard deviations would be a broken draw */
        ck_assert_double_eq_tol(count[i] / (double)N, probs[i], 0.02);
    slm_sampler_free(s);
}
END_TEST

START_TEST(bad_input_is_an_error)
{
    slm_sampler_t *s = plain(1.0f, NULL);
    const float l[] = {-INFINITY, NAN};
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_sampler_sample(s, l, 2, &err), SLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "NaN or -inf"));
    ck_assert_int_eq(slm_sampler_sample(s, l, 0, NULL), SLM_E_INVALID);
    slm_sampler_free(s);
    slm_sampler_params_t p;
    slm_sampler_params_default(&p);
    p.top_p = NAN;
    ck_assert_ptr_null(slm_sampler_new(&p, NULL));
    slm_sampler_params_default(&p);
    p.struct_size = 4;
    ck_assert_ptr_null(slm_sampler_new(&p, NULL));
}
END_TEST

/* Feeds pieces, concatenating what is handed out; returns whether a stop hit. */
static bool feed_all(slm_stop_t *st, const char *const *pieces, char *got, size_t cap)
{
    got[0] = '\0';
    for (size_t i = 0; pieces[i]; i++) {
        const char *e;
        size_t n;
        bool hit = slm_stop_feed(st, pieces[i], strlen(pieces[i]), &e, &n);
        ck_assert_uint_lt(strlen(got) + n, cap);
        strncat(got, e, n);
        if (hit)
            return true;
    }
    const char *e;
    size_t n;
    slm_stop_flush(st, &e, &n);
    strncat(got, e, n);
    return false;
}

START_TEST(stop_string_across_tokens)
{
    const char *stops[] = {"STOP", "\n\n"};
    slm_stop_t *st = slm_stop_new(stops, 2, NULL);
    ck_assert_ptr_nonnull(st);
    char got[128];
    const char *p1[] = {"Hello wo", "rld! ST", "O", "P more", NULL};
    ck_assert(feed_all(st, p1, got, sizeof got));
    ck_assert_str_eq(got, "Hello world! ");
    slm_stop_free(st);

    st = slm_stop_new(stops, 2, NULL);
    const char *p2[] = {"a\n", "b ST", "ART", NULL};   /* near misses come out whole */
    ck_assert(!feed_all(st, p2, got, sizeof got));
    ck_assert_str_eq(got, "a\nb START");
    slm_stop_free(st);

    st = slm_stop_new(stops, 2, NULL);
    const char *e;
    size_t n;
    ck_assert(!slm_stop_feed(st, "x\n", 2, &e, &n));
    ck_assert_uint_eq(n, 1);   /* the "\n" is held: it may begin "\n\n" */
    ck_assert(slm_stop_feed(st, "\ny", 2, &e, &n));
    ck_assert_uint_eq(n, 0);
    slm_stop_free(st);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sampler");
    TCase *t = tcase_create("transforms");
    tcase_add_test(t, greedy_takes_max_lowest_id_on_tie);
    tcase_add_test(t, temperature_scales_logits);
    tcase_add_test(t, top_k_keeps_k_best);
    tcase_add_test(t, top_p_keeps_smallest_set_reaching_p);
    tcase_add_test(t, min_p_keeps_relative_to_best);
    tcase_add_test(t, repeat_penalty_divides_positive_multiplies_negative);
    tcase_add_test(t, repeat_last_n_limits_window);
    tcase_add_test(t, frequency_and_presence_subtract);
    tcase_add_test(t, bad_input_is_an_error);
    suite_add_tcase(s, t);
    t = tcase_create("seed");
    tcase_add_test(t, same_seed_same_tokens);
    tcase_add_test(t, draws_follow_probabilities);
    suite_add_tcase(s, t);
    t = tcase_create("stop");
    tcase_add_test(t, stop_string_across_tokens);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
