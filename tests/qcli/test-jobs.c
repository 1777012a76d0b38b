/* The quantize, init and bench jobs through the library: stories260K quantized to
 * q8_0 and q4_0 (kept rows, perplexity bounds, a re-readable file that generates),
 * overrides and refused requests, random presets, and a benchmark run. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slmops/jobs.h>
#include <slmops/model-file.h>
#include <slmops/model.h>
#include <slmops/slmops.h>
#include <slmops/tokenizer.h>

static char fixtures[1024], model_path[1200], text_path[1200], scratch[512];
static slm_registry_t *reg;

static void setup(void)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_options_t o = {.struct_size = sizeof o,
                                .search_path = getenv("SLMOPS_PLUGIN_PATH"),
                                .ignore_environment = true};
    reg = slm_registry_new(&o, &err);
    ck_assert_msg(reg != NULL, "registry: %s", err.message);
}

static void teardown(void)
{
    slm_registry_free(reg);
}

static const char *out_path(const char *name)
{
    static char buf[4][700];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", scratch, name);
    return buf[k];
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int quantize(const char *out, int type, bool eval, slm_quantize_report_t *rep,
                    slm_error_t *err)
{
    slm_quantize_params_t p;
    slm_quantize_params_default(&p);
    p.type = type;
    p.n_threads = 2;
    if (eval) {
        p.eval_file = text_path;
        p.eval_ctx = 128;
    }
    slm_error_init(err);
    *rep = (slm_quantize_report_t){.struct_size = sizeof *rep};
    return slm_quantize_model(reg, model_path, out, &p, rep, err);
}

static const slm_quantize_tensor_t *find(const slm_quantize_report_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_tensors; i++)
        if (strcmp(r->tensors[i].name, name) == 0)
            return &r->tensors[i];
    return NULL;
}

/* Greedy continuation of a prompt: the quantized file loads, decodes and its
 * tokens turn back into text. */
static void generates_text(const char *path)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_model_t *m = NULL;
    ck_assert_msg(slm_model_load(reg, path, NULL, &m, &err) == SLM_OK, "%s", err.message);
    slm_tokenizer_t *tok = NULL;
    ck_assert_int_eq(slm_tokenizer_from_model_file(slm_model_container(m), &tok, &err), SLM_OK);
    int32_t *ids = NULL;
    size_t n = 0;
    const char *prompt = "Once upon a time";
    ck_assert_int_eq(slm_tokenizer_encode(tok, prompt, strlen(prompt), SLM_TOKENIZE_ADD_BOS,
                                          &ids, &n, &err), SLM_OK);
    slm_context_t *ctx = NULL;
    ck_assert_msg(slm_context_new(m, NULL, &ctx, &err) == SLM_OK, "%s", err.message);
    int32_t out[24];
    slm_batch_t b = {.struct_size = sizeof b, .n_tokens = (int32_t)n, .token = ids};
    for (int i = 0; i < 24; i++) {
        ck_assert_msg(slm_context_decode(ctx, &b, &err) == SLM_OK, "%s", err.message);
        const float *l = slm_context_logits(ctx, -1);
        int32_t best = 0;
        for (int32_t v = 1; v < slm_model_n_vocab(m); v++)
            best = l[v] > l[best] ? v : best;
        ck_assert(isfinite(l[best]));
        out[i] = best;
        b = (slm_batch_t){.struct_size = sizeof b, .n_tokens = 1, .token = &out[i]};
    }
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(slm_tokenizer_decode(tok, out, 24, 0, &text, &len, &err), SLM_OK);
    ck_assert_msg(len > 8, "greedy text too short: '%s'", text);
    free(text);
    free(ids);
    slm_context_free(ctx);
    slm_tokenizer_free(tok);
    slm_model_free(m);
}

/* Acceptance 5: the 172-wide ffn_down rows follow the documented rule, and the
 * perplexity stays within `bound` of the f32 model's. */
static void check_quantized(int type, double bound, const char *name)
{
    slm_quantize_report_t r;
    slm_error_t err;
    const char *out = out_path(name);
    ck_assert_msg(quantize(out, type, true, &r, &err) == SLM_OK, "%s", err.message);
    ck_assert_int_eq(r.n_tensors, 48);
    ck_assert_uint_eq(r.n_kept, type == SLM_TYPE_Q8_0 ? 5 : 6);
    for (int il = 0; il < 5; il++) {
        char n[64];
        snprintf(n, sizeof n, "blk.%d.ffn_down.weight", il);
        const slm_quantize_tensor_t *t = find(&r, n);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(t->type_out, SLM_TYPE_F16);
        ck_assert_ptr_nonnull(t->kept);
        ck_assert_ptr_nonnull(strstr(t->kept, "172"));
    }
    ck_assert_int_eq(find(&r, "blk.2.ffn_up.weight")->type_out, type);
    ck_assert_ptr_null(find(&r, "blk.2.ffn_up.weight")->kept);
    ck_assert_int_eq(find(&r, "blk.2.attn_norm.weight")->type_out, SLM_TYPE_F32);
    /* llama.cpp's output default: q6_k, whose 256 does not divide 64, so q8_0. */
    ck_assert_int_eq(find(&r, "output.weight")->type_out, SLM_TYPE_Q8_0);
    ck_assert(r.file_bytes_out > 0 && r.file_bytes_out < r.file_bytes_in / 2);
    ck_assert(r.bpw_out < r.bpw_in);
    ck_assert(r.has_eval);
    ck_assert_int_eq(r.eval_ctx, 128);
    ck_assert_msg(r.ppl_before > 1 && r.ppl_before < 20, "ppl %g", r.ppl_before);
    ck_assert_msg(fabs(r.ppl_after / r.ppl_before - 1.0) <= bound, "ppl %g -> %g (bound %g)",
                  r.ppl_before, r.ppl_after, bound);
    ck_assert(r.kld_mean >= 0 && r.kld_mean < 0.1 && r.kld_max >= r.kld_mean);
    ck_assert(r.top1_agree > 0.5 && r.top1_agree <= 1.0);
    slm_quantize_report_free(&r);
    generates_text(out);
}

START_TEST(q8_0_within_2_percent)
{
    check_quantized(SLM_TYPE_Q8_0, 0.02, "q8_0.gguf");
}
END_TEST

START_TEST(q4_0_within_10_percent)
{
    check_quantized(SLM_TYPE_Q4_0, 0.10, "q4_0.gguf");
}
END_TEST

/* The written file carries llama.cpp's quantization keys. */
START_TEST(file_type_and_version_are_written)
{
    slm_quantize_report_t r;
    slm_error_t err;
    const char *out = out_path("ft.gguf");
    ck_assert_msg(quantize(out, SLM_TYPE_Q4_0, false, &r, &err) == SLM_OK, "%s", err.message);
    ck_assert(!r.has_eval);
    slm_quantize_report_free(&r);
    slm_model_file_t *mf = NULL;
    ck_assert_int_eq(slm_model_file_open(reg, out, NULL, &mf, &err), SLM_OK);
    int64_t v;
    ck_assert_int_eq(slm_model_file_get_int(mf, "general.file_type", &v, &err), SLM_OK);
    ck_assert_int_eq(v, 2);
    ck_assert_int_eq(slm_model_file_get_int(mf, "general.quantization_version", &v, &err),
                     SLM_OK);
    ck_assert_int_eq(v, 2);
    const char *s;
    ck_assert_int_eq(slm_model_file_get_string(mf, "tokenizer.ggml.model", &s, &err), SLM_OK);
    slm_model_tensor_t t = {.struct_size = sizeof t};
    ck_assert_int_ge(slm_model_file_find_tensor(mf, "blk.0.attn_q.weight", &t), 0);
    ck_assert_int_eq(t.type, SLM_TYPE_Q4_0);
    ck_assert_uint_eq(t.nbytes, 64 * 64 / 32 * 18);
    slm_model_file_free(mf);
}
END_TEST

START_TEST(rules_override_and_pure)
{
    slm_tensor_type_rule_t rules[] = {{"ffn_(gate|up)", SLM_TYPE_Q8_0}, {"attn_q", SLM_TYPE_F16}};
    slm_quantize_params_t p;
    slm_quantize_params_default(&p);
    p.type = SLM_TYPE_Q4_0;
    p.rules = rules;
    p.n_rules = 2;
    p.pure = true;
    slm_quantize_report_t r = {.struct_size = sizeof r};
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_quantize_model(reg, model_path, out_path("rules.gguf"), &p, &r, &err) ==
                  SLM_OK, "%s", err.message);
    ck_assert_int_eq(find(&r, "blk.1.ffn_gate.weight")->type_out, SLM_TYPE_Q8_0);
    ck_assert_int_eq(find(&r, "blk.1.ffn_up.weight")->type_out, SLM_TYPE_Q8_0);
    ck_assert_int_eq(find(&r, "blk.1.attn_q.weight")->type_out, SLM_TYPE_F16);
    ck_assert_int_eq(find(&r, "blk.1.attn_k.weight")->type_out, SLM_TYPE_Q4_0);
    ck_assert_int_eq(find(&r, "output.weight")->type_out, SLM_TYPE_Q4_0);   /* pure */
    ck_assert_int_eq(find(&r, "token_embd.weight")->type_out, SLM_TYPE_Q4_0);
    slm_quantize_report_free(&r);
}
END_TEST

/* K-quants fall back as llama.cpp does: 64-wide rows take q5_0, 172-wide f16. */
START_TEST(k_quant_falls_back_like_llama_cpp)
{
    slm_quantize_report_t r;
    slm_error_t err;
    ck_assert_msg(quantize(out_path("q4k.gguf"), SLM_TYPE_Q4_K, false, &r, &err) == SLM_OK, "%s",
                  err.message);
    ck_assert_int_eq(r.file_type, 14);
    ck_assert_int_eq(find(&r, "blk.0.attn_q.weight")->type_out, SLM_TYPE_Q5_0);
    ck_assert_ptr_nonnull(strstr(find(&r, "blk.0.attn_q.weight")->kept, "q4_k"));
    ck_assert_int_eq(find(&r, "blk.0.ffn_down.weight")->type_out, SLM_TYPE_F16);
    slm_quantize_report_free(&r);
}
END_TEST

static void refused(const char *in, const char *out, int type, const char *pattern,
                    const char *eval, int32_t ctx, int want, const char *msg)
{
    slm_tensor_type_rule_t rule = {pattern, SLM_TYPE_Q8_0};
    slm_quantize_params_t p;
    slm_quantize_params_default(&p);
    p.type = type;
    p.rules = &rule;
    p.n_rules = pattern ? 1 : 0;
    p.eval_file = eval;
    p.eval_ctx = ctx;
    slm_quantize_report_t r = {.struct_size = sizeof r};
    slm_error_t err;
    slm_error_init(&err);
    int rc = slm_quantize_model(reg, in, out, &p, &r, &err);
    ck_assert_msg(rc == want, "%s: got %d (%s), want %d", msg, rc, err.message, want);
    ck_assert_msg(strlen(err.message) > 10, "%s: no message", msg);
    ck_assert_msg(!exists(out) || strcmp(in, out) == 0, "%s: %s was written", msg, out);
}

START_TEST(bad_requests_write_nothing)
{
    const char *out = out_path("never.gguf");
    refused(model_path, out, 12345, NULL, NULL, 0, SLM_E_INVALID, "unknown type");
    refused(model_path, out, SLM_TYPE_I32, NULL, NULL, 0, SLM_E_INVALID, "integer type");
    refused(model_path, out, SLM_TYPE_Q8_0, "ffn_(", NULL, 0, SLM_E_INVALID, "bad regex");
    refused(model_path, model_path, SLM_TYPE_Q8_0, NULL, NULL, 0, SLM_E_INVALID, "out = in");
    refused(out_path("missing.gguf"), out, SLM_TYPE_Q8_0, NULL, NULL, 0, SLM_E_NOT_FOUND,
            "missing input");
    /* A missing file is SLM_E_NOT_FOUND, the evaluation text as the model. */
    refused(model_path, out, SLM_TYPE_Q8_0, NULL, out_path("missing.txt"), 128, SLM_E_NOT_FOUND,
            "missing evaluation text");
    refused(model_path, out, SLM_TYPE_Q8_0, NULL, text_path, 4096, SLM_E_INVALID,
            "evaluation text too short");
}
END_TEST

/* ---- init ---- */

static int64_t get_int(const slm_model_file_t *mf, const char *key)
{
    int64_t v = -1;
    ck_assert_msg(slm_model_file_get_int(mf, key, &v, NULL) == SLM_OK, "%s", key);
    return v;
}

START_TEST(init_stories15m_has_the_preset_shapes)
{
    slm_init_params_t p;
    slm_init_params_default(&p);
    p.preset = "stories15m";
    p.type = SLM_TYPE_F16;
    p.seed = 7;
    slm_error_t err;
    slm_error_init(&err);
    const char *out = out_path("s15.gguf");
    ck_assert_msg(slm_model_init_random(reg, out, &p, &err) == SLM_OK, "%s", err.message);
    slm_model_t *m = NULL;
    ck_assert_msg(slm_model_load(reg, out, NULL, &m, &err) == SLM_OK, "%s", err.message);
    ck_assert_int_eq(slm_model_n_embd(m), 288);
    ck_assert_int_eq(slm_model_n_ff(m), 768);
    ck_assert_int_eq(slm_model_n_layer(m), 6);
    ck_assert_int_eq(slm_model_n_head(m), 6);
    ck_assert_int_eq(slm_model_n_head_kv(m), 6);
    ck_assert_int_eq(slm_model_n_vocab(m), 32000);
    ck_assert_int_eq(slm_model_n_ctx_train(m), 256);
    const slm_model_file_t *mf = slm_model_container(m);
    ck_assert_int_eq(get_int(mf, "general.file_type"), 1);
    ck_assert_int_eq(get_int(mf, "tokenizer.ggml.bos_token_id"), 1);
    ck_assert_int_eq(get_int(mf, "tokenizer.ggml.eos_token_id"), 2);
    slm_model_tensor_t t = {.struct_size = sizeof t};
    ck_assert_int_ge(slm_model_file_find_tensor(mf, "output.weight", &t), 0);   /* untied */
    ck_assert_int_eq(t.type, SLM_TYPE_F16);
    ck_assert_int_ge(slm_model_file_find_tensor(mf, "blk.5.ffn_norm.weight", &t), 0);
    ck_assert_int_eq(t.type, SLM_TYPE_F32);
    ck_assert_float_eq(((const float *)t.data)[3], 1.0f);
    /* N(0, 0.02): the sample deviation of one matrix. */
    ck_assert_int_ge(slm_model_file_find_tensor(mf, "blk.0.attn_q.weight", &t), 0);
    double s2 = 0;
    for (int i = 0; i < 288 * 288; i++) {
        double x = slm_f16_to_f32(((const uint16_t *)t.data)[i]);
        s2 += x * x;
    }
    ck_assert_double_eq_tol(sqrt(s2 / (288 * 288)), 0.02, 0.001);
    /* The vocabulary: specials, byte tokens, and text that round-trips. */
    slm_tokenizer_t *tok = NULL;
    ck_assert_int_eq(slm_tokenizer_from_model_file(mf, &tok, &err), SLM_OK);
    ck_assert_int_eq(slm_tokenizer_n_vocab(tok), 32000);
    ck_assert_str_eq(slm_tokenizer_token_text(tok, 0), "<unk>");
    ck_assert_str_eq(slm_tokenizer_token_text(tok, 3 + 0x41), "<0x41>");
    int32_t *ids = NULL;
    size_t n = 0;
    const char *txt = "hello world, it is a test!";
    ck_assert_int_eq(slm_tokenizer_encode(tok, txt, strlen(txt), 0, &ids, &n, &err), SLM_OK);
    char *back = NULL;
    size_t len = 0;
    ck_assert_int_eq(slm_tokenizer_decode(tok, ids, n, 0, &back, &len, &err), SLM_OK);
    ck_assert_str_eq(back, txt);
    free(back);
    free(ids);
    slm_tokenizer_free(tok);
    slm_model_free(m);
}
END_TEST

/* The same seed gives the same bytes; another seed other weights. */
START_TEST(init_is_deterministic)
{
    slm_init_params_t p;
    slm_init_params_default(&p);
    p.preset = "stories15m";
    p.type = SLM_TYPE_Q8_0;
    slm_error_t err;
    slm_error_init(&err);
    const char *a = out_path("a.gguf"), *b = out_path("b.gguf"), *c = out_path("c.gguf");
    ck_assert_msg(slm_model_init_random(reg, a, &p, &err) == SLM_OK, "%s", err.message);
    p.n_threads = 1;
    ck_assert_int_eq(slm_model_init_random(reg, b, &p, &err), SLM_OK);
    p.seed = 43;
    ck_assert_int_eq(slm_model_init_random(reg, c, &p, &err), SLM_OK);
    slm_model_file_t *mf[3] = {NULL};
    const char *paths[3] = {a, b, c};
    slm_model_tensor_t t[3];
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(slm_model_file_open(reg, paths[i], NULL, &mf[i], &err), SLM_OK);
        t[i] = (slm_model_tensor_t){.struct_size = sizeof t[i]};
        ck_assert_int_ge(slm_model_file_find_tensor(mf[i], "blk.3.ffn_up.weight", &t[i]), 0);
        ck_assert_int_eq(t[i].type, SLM_TYPE_Q8_0);
    }
    ck_assert(memcmp(t[0].data, t[1].data, t[0].nbytes) == 0);
    ck_assert(memcmp(t[0].data, t[2].data, t[0].nbytes) != 0);
    for (int i = 0; i < 3; i++)
        slm_model_file_free(mf[i]);
}
END_TEST

START_TEST(init_refuses_unknown_presets)
{
    slm_init_params_t p;
    slm_init_params_default(&p);
    p.preset = "gpt-5";
    slm_error_t err;
    slm_error_init(&err);
    const char *out = out_path("nope.gguf");
    ck_assert_int_eq(slm_model_init_random(reg, out, &p, &err), SLM_E_NOT_FOUND);
    p.preset = "stories15m";
    p.arch = "gpt2";
    ck_assert_int_eq(slm_model_init_random(reg, out, &p, &err), SLM_E_UNSUPPORTED);
    ck_assert(!exists(out));
    ck_assert_str_eq(slm_init_preset_name(0), "smollm2-135m");
    ck_assert_str_eq(slm_init_preset_name(2), "student-5m");
    ck_assert_str_eq(slm_init_preset_name(4), "student-micro");
    ck_assert_ptr_null(slm_init_preset_name(5));
}
END_TEST

/* ---- bench ---- */

START_TEST(bench_reports_positive_rates)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_model_t *m = NULL;
    ck_assert_int_eq(slm_model_load(reg, model_path, NULL, &m, &err), SLM_OK);
    slm_bench_params_t p;
    slm_bench_params_default(&p);
    p.n_prompt = 32;
    p.n_gen = 8;
    p.reps = 2;
    slm_bench_result_t r = {.struct_size = sizeof r};
    ck_assert_msg(slm_bench_run(m, &p, &r, &err) == SLM_OK, "%s", err.message);
    ck_assert_int_eq(r.pp.n_tokens, 32);
    ck_assert_int_eq(r.tg.n_tokens, 8);
    ck_assert_int_eq(r.pp.reps, 2);
    ck_assert(r.pp.mean > 0 && r.tg.mean > 0 && r.pp.stddev >= 0 && r.tg.mean_ms > 0);
    p.n_prompt = -1;
    ck_assert_int_eq(slm_bench_run(m, &p, &r, &err), SLM_E_INVALID);
    slm_model_free(m);
}
END_TEST

int main(void)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(fixtures, sizeof fixtures, "%s", fx && *fx ? fx : "../shared/fixtures");
    snprintf(model_path, sizeof model_path, "%s/gguf/stories260K.gguf", fixtures);
    snprintf(text_path, sizeof text_path, "%s/text/tinystories_sample.txt", fixtures);
    if (!exists(model_path) || !exists(text_path)) {
        fprintf(stderr, "SKIP: %s or %s is missing\n", model_path, text_path);
        return 77;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/slmops-qcli-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(scratch))
        return 99;
    Suite *s = suite_create("jobs");
    TCase *q = tcase_create("quantize"), *i = tcase_create("init"), *b = tcase_create("bench");
    TCase *all[] = {q, i, b};
    for (int k = 0; k < 3; k++) {
        tcase_set_timeout(all[k], 300);
        tcase_add_checked_fixture(all[k], setup, teardown);
        suite_add_tcase(s, all[k]);
    }
    tcase_add_test(q, q8_0_within_2_percent);
    tcase_add_test(q, q4_0_within_10_percent);
    tcase_add_test(q, file_type_and_version_are_written);
    tcase_add_test(q, rules_override_and_pure);
    tcase_add_test(q, k_quant_falls_back_like_llama_cpp);
    tcase_add_test(q, bad_requests_write_nothing);
    tcase_add_test(i, init_stories15m_has_the_preset_shapes);
    tcase_add_test(i, init_is_deterministic);
    tcase_add_test(i, init_refuses_unknown_presets);
    tcase_add_test(b, bench_reports_positive_rates);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", scratch);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
