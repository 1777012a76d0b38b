/* Check tests of the Jinja engine: the corpus in jinja-cases.json (what Python's
 * jinja2 renders in transformers' environment, written by make-cases.py) and the
 * engine's own promises: errors that name the place, and bounds on hostile input. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <slmops/chat.h>

static json_t *corpus;
static char *conversation;   /* {"messages": ..., "extra": vars} */

static const char *src_path(const char *rel, char *buf, size_t cap)
{
    const char *top = getenv("top_srcdir");
    snprintf(buf, cap, "%s/%s", top ? top : ".", rel);
    return buf;
}

static void load_corpus(void)
{
    char path[1024];
    json_error_t je;
    corpus = json_load_file(src_path("tests/chat/jinja-cases.json", path, sizeof path), 0, &je);
    ck_assert_msg(corpus != NULL, "%s: %s", path, je.text);
    json_t *vars = json_object_get(corpus, "vars");
    json_t *conv = json_pack("{s:O,s:O}", "messages", json_object_get(vars, "messages"),
                             "extra", vars);
    conversation = json_dumps(conv, JSON_ENCODE_ANY);
    json_decref(conv);
}

static int64_t jan15(void)
{
    struct tm tm = {.tm_year = 126, .tm_mon = 0, .tm_mday = 15, .tm_isdst = -1};
    return (int64_t)mktime(&tm);
}

static int render(const char *tmpl, const char *conv, char **out, slm_error_t *err)
{
    slm_chat_params_t p;
    slm_chat_params_default(&p);
    p.bos_token = "<s>";
    p.eos_token = "</s>";
    p.now = jan15();
    slm_error_init(err);
    *out = NULL;
    return slm_chat_render(tmpl, conv, &p, out, err);
}

/* One corpus case: the same text, or an error that carries jinja2's message. */
static int check_case(json_t *c)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *tmpl = json_string_value(json_object_get(c, "template"));
    const char *want = json_string_value(json_object_get(c, "expect"));
    const char *want_err = json_string_value(json_object_get(c, "error"));
    bool syntax = json_is_true(json_object_get(c, "syntax"));
    bool exact = json_is_true(json_object_get(c, "exact"));
    char *got = NULL;
    slm_error_t err;
    int rc = render(tmpl, conversation, &got, &err);
    int bad = 0;
    if (want && (rc != 0 || strcmp(got, want) != 0)) {
        printf("FAIL %s:\n  want [%s]\n  got  [%s]\n", name, want, rc ? err.message : got);
        bad = 1;
    } else if (want_err && rc == 0) {
        printf("FAIL %s: rendered [%s], want the error [%s]\n", name, got, want_err);
        bad = 1;
    } else if (want_err && exact && strcmp(err.message, want_err) != 0) {
        printf("FAIL %s: error [%s], want exactly [%s]\n", name, err.message, want_err);
        bad = 1;
    } else if (want_err && !syntax && !strstr(err.message, want_err)) {
        printf("FAIL %s: error [%s] does not carry jinja2's [%s]\n", name, err.message, want_err);
        bad = 1;
    } else if (want_err && strncmp(err.message, "chat template", 13) != 0 && !exact) {
        printf("FAIL %s: error [%s] does not say where\n", name, err.message);
        bad = 1;
    }
    free(got);
    return bad;
}

START_TEST(corpus_matches_jinja2)
{
    load_corpus();
    json_t *cases = json_object_get(corpus, "cases");
    ck_assert_uint_gt(json_array_size(cases), 150);
    int failed = 0;
    for (size_t i = 0; i < json_array_size(cases); i++)
        failed += check_case(json_array_get(cases, i));
    ck_assert_msg(failed == 0, "%d of %zu cases differ from jinja2", failed,
                  json_array_size(cases));
    free(conversation);
    json_decref(corpus);
}
END_TEST

/* ---- errors name the construct and the place ---- */

static void expect_error(const char *tmpl, int code, const char *want)
{
    char *out = NULL;
    slm_error_t err;
    int rc = render(tmpl, "[]", &out, &err);
    ck_assert_msg(rc == code, "%s: rc %d (want %d): %s", tmpl, rc, code, err.message);
    ck_assert_msg(strstr(err.message, want), "%s: [%s] lacks [%s]", tmpl, err.message, want);
    ck_assert_ptr_null(out);
}

START_TEST(errors_say_where)
{
    expect_error("line 1\n{{ x | xmlattr }}", SLM_E_UNSUPPORTED,
                 "chat template line 2, col 8: unsupported filter 'xmlattr'");
    expect_error("{{ x | nosuchfilter }}", SLM_E_FORMAT, "line 1, col 8: no filter named");
    expect_error("\n\n   {% include 'x' %}", SLM_E_UNSUPPORTED, "line 3, col 7: unsupported tag 'include'");
    expect_error("{% for x in y recursive %}{% endfor %}", SLM_E_UNSUPPORTED,
                 "unsupported recursive for loop");
    expect_error("{{ 'a'.expandtabs() }}", SLM_E_UNSUPPORTED, "unsupported method str.expandtabs()");
    expect_error("{{ x | groupby('a') }}", SLM_E_UNSUPPORTED, "unsupported filter 'groupby'");
    expect_error("{% if x %}", SLM_E_FORMAT, "or '{% endif %}'");
    expect_error("{% break %}", SLM_E_FORMAT, "'break' outside of a for loop");
    expect_error("ab\n  {{ missing.attr }}", SLM_E_INVALID,
                 "chat template line 2, col 13: UndefinedError: 'missing' is undefined");
}
END_TEST

START_TEST(raise_exception_is_verbatim)
{
    char *out = NULL;
    slm_error_t err;
    ck_assert_int_eq(render("x{{ raise_exception('System role not supported') }}", "[]", &out, &err),
                     SLM_E_INVALID);
    ck_assert_str_eq(err.message, "System role not supported");
    ck_assert_int_eq(err.offset, 4);   /* where the call is */
}
END_TEST

/* ---- bounds: hostile templates end with an error, not a hang or a crash ---- */

START_TEST(bounded_output)
{
    expect_error("{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxxxxxxxxxx"
                 "{% endfor %}{% endfor %}", SLM_E_INVALID, "exceed 16 MiB");
    expect_error("{{ 'x' * 100000000 }}", SLM_E_INVALID, "exceed 16 MiB");
}
END_TEST

START_TEST(bounded_steps)
{
    expect_error("{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}"
                 "{% endfor %}", SLM_E_INVALID, "steps");
}
END_TEST

static const char *repeat(char ch)
{
    static char buf[5][5001];
    static const char chars[] = "()[";
    int k = (int)(strchr(chars, ch) - chars);
    memset(buf[k], ch, 5000);
    return buf[k];
}
static const char *parens_open(void) { return repeat('('); }
static const char *parens_close(void) { return repeat(')'); }
static const char *brackets_open(void) { return repeat('['); }

START_TEST(bounded_recursion)
{
    expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", SLM_E_INVALID,
                 "deep");
    /* deep nesting in the source is refused by the parser */
    enum { N = 5000 };
    static char deep[2 * N + 16];
    snprintf(deep, sizeof deep, "{{ %.*s1%.*s }}", N, parens_open(), N, parens_close());
    expect_error(deep, SLM_E_UNSUPPORTED, "nest");
    snprintf(deep, sizeof deep, "{{ %.*s }}", N, brackets_open());
    expect_error(deep, SLM_E_UNSUPPORTED, "nested too deeply");
}
END_TEST

START_TEST(bounded_value_depth)
{
    /* a list nested by a loop, then printed and dumped */
    expect_error("{% set ns = namespace(x=[]) %}{% for i in range(2000) %}{% set ns.x = [ns.x] %}"
                 "{% endfor %}{{ ns.x | tojson }}", SLM_E_INVALID, "nest deeper");
}
END_TEST

START_TEST(namespace_cycle_is_freed)
{
    /* a namespace that holds itself: rendering it stops, nothing leaks (ASan) */
    char *out = NULL;
    slm_error_t err;
    ck_assert_int_eq(render("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me is defined }}",
                            "[]", &out, &err), SLM_OK);
    ck_assert_str_eq(out, "True");
    free(out);
    expect_error("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", SLM_E_INVALID, "deeper");
}
END_TEST

START_TEST(bad_input_is_refused)
{
    char *out = NULL;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_chat_render("{{ x }}", "{not json", NULL, &out, &err), SLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "chat conversation"));
    ck_assert_int_eq(slm_chat_render("{{ x }}", "{\"tools\": []}", NULL, &out, &err), SLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "messages"));
    /* NUL bytes and bytes that are not UTF-8 in the source do not crash it */
    const char src[] = "a\0b{{ 'x\xff' }}\xfe{% if %}";
    slm_chat_template_t *t = NULL;
    ck_assert_int_ne(slm_chat_template_parse(src, sizeof src - 1, &t, &err), SLM_OK);
    ck_assert_int_eq(slm_chat_template_parse(src, 13, &t, &err), SLM_OK);
    ck_assert_int_eq(slm_chat_template_render(t, "[]", NULL, &out, &err), SLM_OK);
    ck_assert_mem_eq(out, "a\0bx\xff", 5);
    free(out);
    slm_chat_template_free(t);
}
END_TEST

/* Every prefix of a real template either parses or fails cleanly (no crash, no
 * leak under ASan): a cheap stand-in for a fuzzer over truncated input. */
START_TEST(truncated_templates_fail_cleanly)
{
    char path[1024];
    json_error_t je;
    json_t *doc = json_load_file(src_path("tests/chat/jinja-cases.json", path, sizeof path), 0, &je);
    ck_assert_ptr_nonnull(doc);
    json_t *cases = json_object_get(doc, "cases");
    for (size_t i = 0; i < json_array_size(cases); i += 7) {
        const char *tmpl = json_string_value(json_object_get(json_array_get(cases, i), "template"));
        size_t len = strlen(tmpl);
        for (size_t k = 0; k <= len; k++) {
            slm_chat_template_t *t = NULL;
            slm_error_t err;
            slm_error_init(&err);
            if (slm_chat_template_parse(tmpl, k, &t, &err) == SLM_OK) {
                char *out = NULL;
                slm_chat_template_render(t, "[{\"role\": \"user\", \"content\": \"x\"}]", NULL,
                                         &out, &err);
                free(out);
            } else {
                ck_assert_msg(err.message[0], "an error without a message");
            }
            slm_chat_template_free(t);
        }
    }
    json_decref(doc);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("jinja");
    TCase *t = tcase_create("corpus");
    tcase_add_test(t, corpus_matches_jinja2);
    suite_add_tcase(s, t);
    t = tcase_create("errors");
    tcase_add_test(t, errors_say_where);
    tcase_add_test(t, raise_exception_is_verbatim);
    tcase_add_test(t, bad_input_is_refused);
    suite_add_tcase(s, t);
    t = tcase_create("bounds");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, bounded_output);
    tcase_add_test(t, bounded_steps);
    tcase_add_test(t, bounded_recursion);
    tcase_add_test(t, bounded_value_depth);
    tcase_add_test(t, namespace_cycle_is_freed);
    tcase_add_test(t, truncated_templates_fail_cleanly);
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
