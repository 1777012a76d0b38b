/* The JSON filter (slmops/json-filter.h): schemas accepted and refused, texts judged
 * rejected / prefix / complete, and greedy generation on stories260K that it turns
 * into JSON its schema accepts; log-probabilities kept by a sequence. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <slmops/generation.h>
#include <slmops/json-filter.h>
#include <slmops/registry.h>

#define MODEL_REL "gguf/stories260K.gguf"

static char model_path[1200];
static slm_registry_t *reg;
static slm_model_t *model;
static slm_tokenizer_t *tok;

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
}

static void teardown(void)
{
    slm_tokenizer_free(tok);
    slm_model_free(model);
    slm_registry_free(reg);
}

static slm_json_filter_t *filter(const char *schema)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm_json_filter_t *f = NULL;
    ck_assert_msg(slm_json_filter_new(tok, schema, schema ? strlen(schema) : 0, &f, &err) ==
                  SLM_OK, "%s: %s", schema ? schema : "(none)", err.message);
    return f;
}

#define R SLM_JSON_REJECTED
#define P SLM_JSON_PREFIX
#define C SLM_JSON_COMPLETE

static const struct {
    const char *schema, *text;
    int want;
} cases[] = {
    {NULL, "{}", C},
    {NULL, " {\"a\": [1, -2.5e3, true, null, \"x\\u00e9\\n\"]}", C},
    {NULL, "{\"a\":", P},
    {NULL, "[1]", R},                      /* json_object: an object only */
    {NULL, "{\"a\":1,}", R},
    {NULL, "{\"a\":01}", R},
    {NULL, "{\"a\":\"\x01\"}", R},
    {NULL, "{   \"a\":1}", R},             /* three blanks in a row */
    {NULL, "{} x", R},
    {NULL, "{\"a\":tru", P},
    {NULL, "{\"a\":trux", R},
    {"{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
     "\"age\":{\"type\":\"integer\"}},\"required\":[\"name\",\"age\"]}",
     "{\"name\":\"Tom\",\"age\":7}", C},
    {"{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
     "\"age\":{\"type\":\"integer\"}},\"required\":[\"name\",\"age\"]}",
     "{\"name\":\"Tom\"}", R},              /* a required key missing */
    {"{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
     "\"age\":{\"type\":\"integer\"}},\"required\":[\"name\",\"age\"]}",
     "{\"age\":7}", R},                     /* skips the required name */
    {"{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
     "\"age\":{\"type\":\"integer\"}},\"required\":[\"name\",\"age\"]}",
     "{\"name\":\"Tom\",\"age\":7.5}", R},  /* an integer has no fraction */
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\"},"
     "\"b\":{\"type\":\"boolean\"}}}", "{\"b\":false}", C},   /* optional a skipped */
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\"}}}", "{\"c\":1}", R},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"enum\":[\"red\",\"green\",12,1]}}}",
     "{\"a\":\"gr", P},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"enum\":[\"red\",\"green\",12,1]}}}",
     "{\"a\":\"blue\"}", R},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"enum\":[\"red\",\"green\",12,1]}}}",
     "{\"a\":1}", C},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"enum\":[\"red\",\"green\",12,1]}}}",
     "{\"a\":12}", C},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"enum\":[\"red\",\"green\",12,1]}}}",
     "{\"a\":13}", R},
    {"{\"type\":\"array\",\"items\":{\"type\":\"string\"}}", "[\"a\",\"b\"]", C},
    {"{\"type\":\"array\",\"items\":{\"type\":\"string\"}}", "[\"a\",2]", R},
    {"{\"type\":\"array\",\"items\":{\"type\":\"string\"}}", "[]", C},
    {"{\"type\":[\"string\",\"null\"]}", "null", C},
    {"{\"type\":\"number\"}", "-0.5", C},
    {"{\"type\":\"number\"}", "-", P},
    {"{\"const\":{\"k\":[1,2]}}", "{\"k\":[1,2]}", C},
};

START_TEST(texts)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        slm_json_filter_t *f = filter(cases[i].schema);
        int got = slm_json_filter_check(f, cases[i].text, strlen(cases[i].text));
        ck_assert_msg(got == cases[i].want, "case %zu: %s against %s: %d, want %d", i,
                      cases[i].text, cases[i].schema ? cases[i].schema : "(object)", got,
                      cases[i].want);
        slm_json_filter_free(f);
    }
}
END_TEST

START_TEST(refused)
{
    static const char *const bad[] = {
        "{\"type\":\"string\",\"pattern\":\"a+\"}", "{\"anyOf\":[]}", "{\"$ref\":\"#/x\"}",
        "{\"type\":\"object\",\"additionalProperties\":true}", "{\"type\":\"date\"}",
        "{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"b\"]}",
        "{\"type\":[\"object\",\"array\"]}", "[1]", "{\"enum\":[]}", "not json"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        slm_error_t err = {.struct_size = sizeof err};
        slm_json_filter_t *f = NULL;
        int rc = slm_json_filter_new(tok, bad[i], strlen(bad[i]), &f, &err);
        ck_assert_msg(rc != SLM_OK && !f && err.message[0], "%s was accepted", bad[i]);
    }
}
END_TEST

/* Greedy generation under the filter: whatever the model wants, the text is JSON
 * the schema accepts, and it stops when the value is whole. */
static char *constrained(const char *schema, const char *prompt, int32_t max_tokens,
                         slm_seq_stop_t *why)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm_generator_params_t gp;
    slm_generator_params_default(&gp);
    gp.n_ctx = 512;
    slm_generator_t *g = NULL;
    ck_assert_msg(slm_generator_new(model, tok, &gp, &g, &err) == SLM_OK, "%s", err.message);
    slm_json_filter_t *f = filter(schema);
    slm_sampler_params_t sp;
    slm_sampler_params_default(&sp);
    sp.temperature = 0;
    slm_seq_params_t p;
    slm_seq_params_default(&p);
    p.sampling = &sp;
    p.max_tokens = max_tokens;
    p.json = f;
    int32_t *ids = NULL;
    size_t n = 0;
    ck_assert(slm_tokenizer_encode(tok, prompt, strlen(prompt), SLM_TOKENIZE_ADD_BOS, &ids, &n,
                                   &err) == SLM_OK);
    slm_seq_t *s = NULL;
    ck_assert(slm_seq_new(g, &s, &err) == SLM_OK);
    ck_assert_msg(slm_seq_start(s, &p, ids, n, &err) == SLM_OK, "%s", err.message);
    while (slm_generator_step(g, &err) > 0) {
    }
    size_t len = 0;
    char *text = strdup(slm_seq_text(s, &len));
    *why = slm_seq_stop_reason(s);
    slm_seq_free(s);
    slm_generator_free(g);
    slm_json_filter_free(f);
    free(ids);
    return text;
}

START_TEST(generation)
{
    const char *schema = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
                         "\"happy\":{\"type\":\"boolean\"},\"color\":{\"enum\":[\"red\","
                         "\"blue\"]}},\"required\":[\"name\",\"happy\",\"color\"]}";
    slm_seq_stop_t why;
    char *text = constrained(schema, "Once upon a time", 200, &why);
    json_error_t je;
    json_t *doc = json_loads(text, 0, &je);
    ck_assert_msg(doc, "not JSON (%s): %s", je.text, text);
    ck_assert_msg(why == SLM_SEQ_EOS, "stopped by %s: %s", slm_seq_stop_name(why), text);
    ck_assert(json_is_string(json_object_get(doc, "name")));
    ck_assert(json_is_boolean(json_object_get(doc, "happy")));
    const char *color = json_string_value(json_object_get(doc, "color"));
    ck_assert_msg(color && (!strcmp(color, "red") || !strcmp(color, "blue")), "%s", text);
    json_decref(doc);
    free(text);
    text = constrained(NULL, "The cat sat on the mat and", 60, &why);
    ck_assert_msg(text[0] == '{' || text[0] == ' ' || text[0] == '\n', "%s", text);
    slm_json_filter_t *f = filter(NULL);
    int got = slm_json_filter_check(f, text, strlen(text));
    ck_assert_msg(why == SLM_SEQ_EOS ? got == SLM_JSON_COMPLETE : got == SLM_JSON_PREFIX,
                  "%s: %s", slm_seq_stop_name(why), text);
    slm_json_filter_free(f);
    free(text);
}
END_TEST

START_TEST(logprobs)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm_generator_params_t gp;
    slm_generator_params_default(&gp);
    gp.n_ctx = 256;
    slm_generator_t *g = NULL;
    ck_assert(slm_generator_new(model, tok, &gp, &g, &err) == SLM_OK);
    slm_sampler_params_t sp;
    slm_sampler_params_default(&sp);
    sp.temperature = 0;
    slm_seq_params_t p;
    slm_seq_params_default(&p);
    p.sampling = &sp;
    p.max_tokens = 12;
    p.n_logprobs = 5;
    int32_t *ids = NULL;
    size_t n = 0;
    ck_assert(slm_tokenizer_encode(tok, "Once upon", 9, SLM_TOKENIZE_ADD_BOS, &ids, &n,
                                   &err) == SLM_OK);
    slm_seq_t *s = NULL;
    ck_assert(slm_seq_new(g, &s, &err) == SLM_OK);
    ck_assert(slm_seq_start(s, &p, ids, n, &err) == SLM_OK);
    while (slm_generator_step(g, &err) > 0) {
    }
    size_t n_tok = 0;
    const int32_t *toks = slm_seq_tokens(s, &n_tok);
    ck_assert_uint_eq(n_tok, 12);
    for (size_t i = 0; i < n_tok; i++) {
        slm_token_logprob_t c;
        const slm_token_logprob_t *top;
        size_t k;
        ck_assert(slm_seq_logprob(s, i, &c, &top, &k) == SLM_OK);
        ck_assert_uint_eq(k, 5);
        ck_assert_int_eq(c.id, toks[i]);
        ck_assert_int_eq(top[0].id, toks[i]);   /* greedy: the most likely one */
        ck_assert(fabsf(top[0].logprob - c.logprob) < 1e-6f && c.logprob <= 0);
        double mass = 0;
        for (size_t j = 0; j < k; j++) {
            ck_assert(j == 0 || top[j].logprob <= top[j - 1].logprob);
            mass += exp(top[j].logprob);
        }
        ck_assert_msg(mass <= 1.0 + 1e-5 && mass > 0, "mass %g", mass);
    }
    ck_assert(slm_seq_logprob(s, 12, NULL, NULL, NULL) != SLM_OK);
    slm_seq_free(s);
    slm_generator_free(g);
    free(ids);
}
END_TEST

int main(void)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", fx ? fx : ".", MODEL_REL);
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        printf("SKIP: fixture %s not found\n", path);
        return 77;
    }
    fclose(probe);
    Suite *su = suite_create("json-filter");
    TCase *tc = tcase_create("json-filter");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, texts);
    tcase_add_test(tc, refused);
    tcase_add_test(tc, generation);
    tcase_add_test(tc, logprobs);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
