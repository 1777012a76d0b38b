/* Failure isolation: each way a manifest or plugin library can be broken
 * disables that plugin alone, with a reason naming the cause and the file. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <slmops/registry.h>

#include "tests/registry/helpers.h"

/* A valid manifest of a fake backend, as a jansson object to break. */
static json_t *manifest(const char *name, const char *module)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:{s:s, s:[s], s:{s:[s]}}}",
                     "file_format_version", "1.0.0", "name", name, "kind", "backend", "version",
                     "1.0.0", "abi_version", 1, "library_path", th_lib(module), "description",
                     "broken on purpose", "provides", "backend", "other", "device_types", "cpu",
                     "ops", "add", "f32");
}

static void write_json(const char *dir, const char *file, json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2));
    ck_assert_ptr_nonnull(text);
    th_write(dir, file, text);
    free(text);
    json_decref(doc);
}

/* The broken row (known by `name`) is DISABLED with `cause` in its reason and in
 * a warning naming its file; the good plugin beside it is available and loads. */
static void expect_isolated(const char *dir, const char *name, const char *cause, bool at_load)
{
    th_log_capture();
    slm_registry_t *reg = th_open(dir);
    ck_assert_uint_eq(slm_registry_count(reg), 2);
    if (at_load) {
        const slm_plugin_info_t *b = th_row(reg, name);
        ck_assert_ptr_nonnull(b);
        ck_assert_int_ne(b->state, SLM_PLUGIN_DISABLED);
        slm_error_t err;
        slm_error_init(&err);
        ck_assert_int_lt(slm_registry_load(reg, name, &err), 0);
        ck_assert_msg(strstr(err.message, cause), "error '%s' lacks '%s'", err.message, cause);
    }
    const slm_plugin_info_t *b = th_row(reg, name);
    ck_assert_msg(b != NULL, "no row named %s", name);
    ck_assert_int_eq(b->state, SLM_PLUGIN_DISABLED);
    ck_assert_msg(strstr(b->reason, cause), "reason '%s' lacks '%s'", b->reason, cause);
    ck_assert_msg(strstr(th_log_text(), b->manifest_path) && strstr(th_log_text(), cause),
                  "log '%s' lacks the file or '%s'", th_log_text(), cause);
    const slm_plugin_info_t *g = th_row(reg, "fake-good");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->state, SLM_PLUGIN_AVAILABLE);
    ck_assert_int_eq(slm_registry_load(reg, "fake-good", NULL), 0);
    ck_assert_int_eq(g->state, SLM_PLUGIN_LOADED);
    slm_registry_free(reg);
}

/* `row`: the name the broken row is known by (its file name when the manifest
 * could not be trusted far enough to read its name). */
static void broken_field_row(const char *key, json_t *value, const char *row, const char *cause)
{
    char *dir = th_tmpdir();
    th_good(dir);
    json_t *m = manifest("fake-broken", "fake-good");
    if (value)
        json_object_set_new(m, key, value);
    else
        json_object_del(m, key);
    write_json(dir, "broken.json", m);
    expect_isolated(dir, row, cause, false);
}

static void broken_field(const char *key, json_t *value, const char *cause)
{
    broken_field_row(key, value, "fake-broken", cause);
}

START_TEST(not_json)
{
    char *dir = th_tmpdir();
    th_good(dir);
    th_write(dir, "broken.json", "{\n  \"name\": \"x\",\n  oops\n}\n");
    /* Without a trustworthy name the row is known by its file name. */
    expect_isolated(dir, "broken", "not valid JSON at line 3", false);
}
END_TEST

START_TEST(top_level_not_object)
{
    char *dir = th_tmpdir();
    th_good(dir);
    th_write(dir, "broken.json", "[1, 2, 3]\n");
    expect_isolated(dir, "broken", "expected an object", false);
}
END_TEST

START_TEST(missing_field)
{
    broken_field("library_path", NULL, "missing required field \"library_path\"");
}
END_TEST

START_TEST(missing_each_required_field)
{
    static const char *const keys[] = {"file_format_version", "name", "kind", "version",
                                       "abi_version", "library_path", "description",
                                       "provides"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char cause[128];
        snprintf(cause, sizeof cause, "missing required field \"%s\"", keys[i]);
        char *dir = th_tmpdir();
        th_good(dir);
        json_t *m = manifest("fake-broken", "fake-good");
        json_object_del(m, keys[i]);
        write_json(dir, "broken.json", m);
        /* A manifest whose name could not be read is known by its file name. */
        slm_registry_t *reg = th_open(dir);
        const slm_plugin_info_t *b = th_row(reg, "fake-broken");
        if (!b)
            b = th_row(reg, "broken");
        ck_assert_ptr_nonnull(b);
        ck_assert_int_eq(b->state, SLM_PLUGIN_DISABLED);
        ck_assert_msg(strstr(b->reason, cause), "%s: reason '%s'", keys[i], b->reason);
        ck_assert_int_eq(th_row(reg, "fake-good")->state, SLM_PLUGIN_AVAILABLE);
        slm_registry_free(reg);
    }
}
END_TEST

START_TEST(missing_provides_member)
{
    char *dir = th_tmpdir();
    th_good(dir);
    json_t *m = manifest("fake-broken", "fake-good");
    json_object_del(json_object_get(m, "provides"), "device_types");
    write_json(dir, "broken.json", m);
    expect_isolated(dir, "fake-broken", "missing required field \"provides.device_types\"",
                    false);
}
END_TEST

START_TEST(wrong_field_type)
{
    broken_field("abi_version", json_string("1"), "field \"abi_version\" has the wrong type");
}
END_TEST

START_TEST(wrong_type_priority_and_requires)
{
    broken_field("priority", json_real(1.5), "field \"priority\" has the wrong type");
    broken_field("requires", json_pack("{s:s}", "cpu_features", "avx2"),
                 "\"requires.cpu_features\" has the wrong type");
}
END_TEST

START_TEST(bad_kind_and_name)
{
    broken_field("kind", json_string("widget"), "field \"kind\" is \"widget\"");
    char *dir = th_tmpdir();
    th_good(dir);
    json_t *m = manifest("Bad Name", "fake-good");
    write_json(dir, "broken.json", m);
    slm_registry_t *reg = th_open(dir);
    const slm_plugin_info_t *b = th_row(reg, "Bad Name");
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(b->state, SLM_PLUGIN_DISABLED);
    ck_assert_ptr_nonnull(strstr(b->reason, "is not [a-z0-9]"));
    slm_registry_free(reg);
}
END_TEST

START_TEST(bad_provides_for_kind)
{
    char *dir = th_tmpdir();
    th_good(dir);
    json_t *m = manifest("fake-broken", "fake-good");
    json_object_set_new(json_object_get(m, "provides"), "device_types", json_pack("[s]", "toaster"));
    write_json(dir, "broken.json", m);
    expect_isolated(dir, "fake-broken", "\"toaster\"", false);
    broken_field("kind", json_string("quantizer"), "missing required field \"provides.types\"");
    broken_field("kind", json_string("format"), "missing required field \"provides.extensions\"");
}
END_TEST

START_TEST(unknown_major_version)
{
    broken_field_row("file_format_version", json_string("2.0.0"), "broken",
                     "unsupported file_format_version 2.0.0");
    broken_field_row("file_format_version", json_string("1.0"), "broken",
                     "is not MAJOR.MINOR.PATCH");
}
END_TEST

START_TEST(newer_minor_accepted)
{
    char *dir = th_tmpdir();
    th_good(dir);
    json_t *m = manifest("fake-newer", "fake-good");
    json_object_set_new(m, "file_format_version", json_string("1.7.3"));
    json_object_set_new(m, "a_field_from_the_future", json_true());
    write_json(dir, "newer.json", m);
    slm_registry_t *reg = th_open(dir);
    const slm_plugin_info_t *p = th_row(reg, "fake-newer");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->state, SLM_PLUGIN_AVAILABLE);
    ck_assert_str_eq(p->reason, "");
    slm_registry_free(reg);
}
END_TEST

START_TEST(duplicate_keys)
{
    char *dir = th_tmpdir();
    th_good(dir);
    th_write(dir, "broken.json",
             "{\"file_format_version\": \"1.0.0\", \"name\": \"a\", \"name\": \"b\"}\n");
    expect_isolated(dir, "broken", "duplicate object key", false);
}
END_TEST

START_TEST(oversized_manifest)
{
    char *dir = th_tmpdir();
    th_good(dir);
    size_t n = 1024 * 1024 + 16;
    char *big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    th_write(dir, "broken.json", big);
    free(big);
    expect_isolated(dir, "broken", "more than the 1048576 allowed", false);
}
END_TEST

START_TEST(manifest_abi_out_of_range)
{
    broken_field("abi_version", json_integer(99), "abi_version 99 is outside");
}
END_TEST

static void broken_library(const char *module, const char *cause)
{
    char *dir = th_tmpdir();
    th_good(dir);
    write_json(dir, "broken.json", manifest("fake-broken", module));
    expect_isolated(dir, "fake-broken", cause, true);
}

START_TEST(missing_library)
{
    broken_library("fake-does-not-exist", "No such file or directory");
}
END_TEST

START_TEST(missing_entry_symbol)
{
    broken_library("fake-noentry", "has no slm_plugin_entry symbol");
}
END_TEST

START_TEST(abi_too_old)
{
    broken_library("fake-abi0", "speaks ABI version 0, this host accepts 1..");
}
END_TEST

START_TEST(abi_too_new)
{
    broken_library("fake-abi99", "speaks ABI version 99, this host accepts 1..");
}
END_TEST

/* These libraries describe themselves as fake-good-ish plugins: the manifest
 * names them fake-broken, the descriptor must agree. */
static void disagreeing(const char *module, const char *manifest_name, const char *cause)
{
    char *dir = th_tmpdir();
    th_good(dir);
    write_json(dir, "broken.json", manifest(manifest_name, module));
    expect_isolated(dir, manifest_name, cause, true);
}

START_TEST(descriptor_wrong_name)
{
    disagreeing("fake-wrongname", "fake-wrongname",
                "descriptor name \"fake-impostor\" disagrees with the manifest's \"fake-wrongname\"");
}
END_TEST

START_TEST(descriptor_wrong_kind)
{
    disagreeing("fake-wrongkind", "fake-wrongkind",
                "descriptor kind quantizer disagrees with the manifest's backend");
}
END_TEST

START_TEST(descriptor_wrong_version)
{
    disagreeing("fake-wrongversion", "fake-wrongversion",
                "descriptor version \"9.9.9\" disagrees with the manifest's \"1.0.0\"");
}
END_TEST

START_TEST(descriptor_null_iface)
{
    disagreeing("fake-nulliface", "fake-nulliface", "descriptor has a NULL interface");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("registry-isolation");
    TCase *tc = tcase_create("manifest");
    tcase_add_test(tc, not_json);
    tcase_add_test(tc, top_level_not_object);
    tcase_add_test(tc, missing_field);
    tcase_add_test(tc, missing_each_required_field);
    tcase_add_test(tc, missing_provides_member);
    tcase_add_test(tc, wrong_field_type);
    tcase_add_test(tc, wrong_type_priority_and_requires);
    tcase_add_test(tc, bad_kind_and_name);
    tcase_add_test(tc, bad_provides_for_kind);
    tcase_add_test(tc, unknown_major_version);
    tcase_add_test(tc, newer_minor_accepted);
    tcase_add_test(tc, duplicate_keys);
    tcase_add_test(tc, oversized_manifest);
    tcase_add_test(tc, manifest_abi_out_of_range);
    suite_add_tcase(s, tc);
    tc = tcase_create("library");
    tcase_add_test(tc, missing_library);
    tcase_add_test(tc, missing_entry_symbol);
    tcase_add_test(tc, abi_too_old);
    tcase_add_test(tc, abi_too_new);
    tcase_add_test(tc, descriptor_wrong_name);
    tcase_add_test(tc, descriptor_wrong_kind);
    tcase_add_test(tc, descriptor_wrong_version);
    tcase_add_test(tc, descriptor_null_iface);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
