/* Discovery: the documented search order, sorted folder entries, shadowing,
 * library paths relative to the manifest, and quantizer types from manifests. */
#include "config.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slmops/registry.h>
#include <slmops/types.h>

#include "tests/registry/helpers.h"

static slm_registry_t *open_env(void)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    ck_assert_msg(reg != NULL, "%s", err.message);
    return reg;
}

START_TEST(shadowing)
{
    char *a = strdup(th_tmpdir()), *b = th_tmpdir();
    th_good(a);
    th_good(b);
    char path[2 * PATH_MAX];
    snprintf(path, sizeof path, "%s:%s", a, b);
    slm_registry_t *reg = th_open(path);
    ck_assert_uint_eq(slm_registry_count(reg), 2);
    const slm_plugin_info_t *first = slm_registry_get(reg, 0), *second = slm_registry_get(reg, 1);
    ck_assert_str_eq(first->name, "fake-good");
    ck_assert_int_eq(first->state, SLM_PLUGIN_AVAILABLE);
    ck_assert_ptr_nonnull(strstr(first->manifest_path, a));
    ck_assert_int_eq(second->state, SLM_PLUGIN_SHADOWED);
    ck_assert_str_eq(second->shadowed_by, first->manifest_path);
    ck_assert_ptr_eq(slm_registry_find(reg, "backend", "fake-good"), first);
    slm_registry_free(reg);
    free(a);
}
END_TEST

START_TEST(sorted_order)
{
    char *dir = th_tmpdir();
    static const char *const files[] = {"b.json", "a.json", "B.json", "a-2.json"};
    static const char *const names[] = {"fake-b", "fake-a", "fake-upper-b", "fake-a-2"};
    for (int i = 0; i < 4; i++)
        th_backend(dir, files[i], names[i], "fake-good", names[i], 0, "");
    th_write(dir, "notes.txt", "not a manifest");
    th_write(dir, ".hidden.json", "{ broken");
    slm_registry_t *reg = th_open(dir);
    ck_assert_uint_eq(slm_registry_count(reg), 4);
    /* Byte-wise: 'B' < 'a', and "a-2" < "a." since '-' < '.' */
    ck_assert_str_eq(slm_registry_get(reg, 0)->name, "fake-upper-b");
    ck_assert_str_eq(slm_registry_get(reg, 1)->name, "fake-a-2");
    ck_assert_str_eq(slm_registry_get(reg, 2)->name, "fake-a");
    ck_assert_str_eq(slm_registry_get(reg, 3)->name, "fake-b");
    slm_registry_free(reg);
}
END_TEST

START_TEST(search_path_order_with_xdg)
{
    char *root = th_tmpdir();
    char p1[PATH_MAX], p2[PATH_MAX], home[PATH_MAX], d1[PATH_MAX], d2[PATH_MAX], env[4 * PATH_MAX];
    snprintf(p1, sizeof p1, "%s/p1", root);
    snprintf(p2, sizeof p2, "%s/p2", root);
    snprintf(home, sizeof home, "%s/home", root);
    snprintf(d1, sizeof d1, "%s/d1", root);
    snprintf(d2, sizeof d2, "%s/d2", root);
    snprintf(env, sizeof env, "%s:%s", p1, p2);
    /* make check limits discovery to SLMOPS_PLUGIN_PATH; this test wants it all. */
    unsetenv("SLMOPS_PLUGIN_PATH_ONLY");
    setenv("SLMOPS_PLUGIN_PATH", env, 1);
    setenv("XDG_DATA_HOME", home, 1);
    /* Relative XDG entries are invalid per the XDG spec and skipped. */
    snprintf(env, sizeof env, "%s:relative/dir:%s", d1, d2);
    setenv("XDG_DATA_DIRS", env, 1);
    char expect[8 * PATH_MAX];
    snprintf(expect, sizeof expect,
             "%s:%s:%s/slmops/plugins:%s/slmops/plugins:%s/slmops/plugins:%s", p1, p2, home, d1,
             d2, SLM_MANIFEST_DIR);
    /* The same plugin in XDG_DATA_DIRS and XDG_DATA_HOME: the home one wins. */
    char dir[2 * PATH_MAX];
    snprintf(dir, sizeof dir, "%s/slmops", home);
    ck_assert_int_eq(mkdir(home, 0700), 0);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof dir, "%s/slmops/plugins", home);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    th_good(dir);
    snprintf(dir, sizeof dir, "%s/slmops", d1);
    ck_assert_int_eq(mkdir(d1, 0700), 0);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof dir, "%s/slmops/plugins", d1);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    th_good(dir);

    slm_registry_t *reg = open_env();
    ck_assert_str_eq(slm_registry_search_path(reg), expect);
    const slm_plugin_info_t *win = slm_registry_find(reg, NULL, "fake-good");
    ck_assert_ptr_nonnull(win);
    ck_assert_ptr_nonnull(strstr(win->manifest_path, "/home/slmops/plugins/"));
    ck_assert_int_eq(slm_registry_get(reg, 1)->state, SLM_PLUGIN_SHADOWED);
    slm_registry_free(reg);
}
END_TEST

START_TEST(xdg_defaults)
{
    unsetenv("SLMOPS_PLUGIN_PATH_ONLY");
    unsetenv("SLMOPS_PLUGIN_PATH");
    unsetenv("XDG_DATA_HOME");
    unsetenv("XDG_DATA_DIRS");
    setenv("HOME", "/nonexistent-home", 1);
    slm_registry_t *reg = open_env();
    char expect[PATH_MAX];
    snprintf(expect, sizeof expect, "/nonexistent-home/.local/share/slmops/plugins:"
             "/usr/local/share/slmops/plugins:/usr/share/slmops/plugins");
    ck_assert_msg(strncmp(slm_registry_search_path(reg), expect, strlen(expect)) == 0,
                  "search path %s", slm_registry_search_path(reg));
    ck_assert_ptr_nonnull(strstr(slm_registry_search_path(reg), SLM_MANIFEST_DIR));
    slm_registry_free(reg);
}
END_TEST

START_TEST(plugin_path_env_honoured)
{
    char *dir = th_tmpdir();
    th_good(dir);
    setenv("SLMOPS_PLUGIN_PATH", dir, 1);
    slm_registry_t *reg = open_env();
    const slm_plugin_info_t *p = slm_registry_find(reg, "backend", "fake-good");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->state, SLM_PLUGIN_AVAILABLE);
    ck_assert_ptr_nonnull(strstr(p->manifest_path, dir));
    slm_registry_free(reg);

    slm_registry_options_t opts = {.struct_size = sizeof opts, .ignore_environment = true};
    reg = slm_registry_new(&opts, NULL);
    ck_assert_ptr_nonnull(reg);
    ck_assert_ptr_null(strstr(slm_registry_search_path(reg), dir));
    ck_assert_ptr_null(slm_registry_find(reg, NULL, "fake-good"));
    slm_registry_free(reg);
}
END_TEST

/* Item 22: SLMOPS_PLUGIN_PATH_ONLY=1 hides every folder but SLMOPS_PLUGIN_PATH's,
 * so that tests never see plugins installed on the machine. */
START_TEST(plugin_path_only_limits_discovery)
{
    char *root = th_tmpdir();
    char mine[PATH_MAX], home[PATH_MAX], dir[2 * PATH_MAX];
    snprintf(mine, sizeof mine, "%s/mine", root);
    snprintf(home, sizeof home, "%s/home", root);
    ck_assert_int_eq(mkdir(mine, 0700), 0);
    th_good(mine);
    snprintf(dir, sizeof dir, "%s/slmops/plugins", home);
    ck_assert_int_eq(mkdir(home, 0700), 0);
    snprintf(dir, sizeof dir, "%s/slmops", home);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof dir, "%s/slmops/plugins", home);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    th_backend(dir, "installed.json", "fake-installed", "fake-good", "fake2", 0, "");
    setenv("SLMOPS_PLUGIN_PATH", mine, 1);
    setenv("XDG_DATA_HOME", home, 1);
    setenv("XDG_DATA_DIRS", root, 1);

    setenv("SLMOPS_PLUGIN_PATH_ONLY", "1", 1);
    slm_registry_t *reg = open_env();
    ck_assert_str_eq(slm_registry_search_path(reg), mine);
    ck_assert_uint_eq(slm_registry_count(reg), 1);
    ck_assert_ptr_null(slm_registry_find(reg, NULL, "fake-installed"));
    slm_registry_free(reg);

    /* Unset, empty and "0" leave the whole search order. */
    static const char *const off[] = {NULL, "", "0"};
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        if (off[i])
            setenv("SLMOPS_PLUGIN_PATH_ONLY", off[i], 1);
        else
            unsetenv("SLMOPS_PLUGIN_PATH_ONLY");
        reg = open_env();
        ck_assert_ptr_nonnull(slm_registry_find(reg, NULL, "fake-installed"));
        ck_assert_ptr_nonnull(strstr(slm_registry_search_path(reg), SLM_MANIFEST_DIR));
        slm_registry_free(reg);
    }

    /* Without SLMOPS_PLUGIN_PATH nothing is searched at all. */
    setenv("SLMOPS_PLUGIN_PATH_ONLY", "1", 1);
    unsetenv("SLMOPS_PLUGIN_PATH");
    reg = open_env();
    ck_assert_str_eq(slm_registry_search_path(reg), "");
    ck_assert_uint_eq(slm_registry_count(reg), 0);
    slm_registry_free(reg);
}
END_TEST

START_TEST(missing_folder_skipped_silently)
{
    char *dir = th_tmpdir();
    th_good(dir);
    char path[2 * PATH_MAX];
    snprintf(path, sizeof path, "%s/does-not-exist:%s", dir, dir);
    th_log_capture();
    slm_registry_t *reg = th_open(path);
    ck_assert_uint_eq(slm_registry_count(reg), 1);
    ck_assert_str_eq(th_log_text(), "");
    slm_registry_free(reg);
}
END_TEST

START_TEST(library_path_relative_to_manifest)
{
    char *dir = th_tmpdir();
    char sub[PATH_MAX], link[PATH_MAX], text[2048];
    snprintf(sub, sizeof sub, "%s/lib", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    snprintf(link, sizeof link, "%s/lib/fake-good.so", dir);
    ck_assert_int_eq(symlink(th_lib("fake-good"), link), 0);
    snprintf(text, sizeof text,
             "{\"file_format_version\": \"1.0.0\", \"name\": \"fake-good\", \"kind\": \"backend\","
             " \"version\": \"1.0.0\", \"abi_version\": 1, \"library_path\": \"lib/fake-good.so\","
             " \"description\": \"relative\", \"provides\": {\"backend\": \"fake\","
             " \"device_types\": [\"cpu\"], \"ops\": {}}}");
    th_write(dir, "good.json", text);
    /* Opened from another working directory: the path must not depend on it. */
    ck_assert_int_eq(chdir("/"), 0);
    slm_registry_t *reg = th_open(dir);
    const slm_plugin_info_t *p = slm_registry_find(reg, NULL, "fake-good");
    ck_assert_ptr_nonnull(p);
    char real[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(dir, real));
    char expect[PATH_MAX + 32];
    snprintf(expect, sizeof expect, "%s/lib/fake-good.so", real);
    ck_assert_str_eq(p->library_path, expect);
    ck_assert_int_eq(slm_registry_load(reg, "fake-good", NULL), 0);
    slm_registry_free(reg);
}
END_TEST

static void quantizer(const char *dir, const char *file, const char *name, const char *types)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"file_format_version\": \"1.0.0\", \"name\": \"%s\", \"kind\": \"quantizer\","
             " \"version\": \"1.0.0\", \"abi_version\": 1, \"library_path\": \"q.so\","
             " \"description\": \"test quantizer\", \"provides\": {\"types\": %s}}",
             name, types);
    th_write(dir, file, text);
}

START_TEST(quantizer_types_registered)
{
    char *dir = th_tmpdir();
    quantizer(dir, "q1.json", "q-test",
              "[{\"name\": \"q9_test\", \"id\": 1500, \"block\": 32, \"bytes\": 20}]");
    quantizer(dir, "q2.json", "q-clash",
              "[{\"name\": \"f32_clash\", \"id\": 0, \"block\": 1, \"bytes\": 4}]");
    ck_assert_int_eq(slm_type_from_name("q9_test"), -1);
    slm_registry_t *reg = th_open(dir);
    ck_assert_int_eq(slm_type_from_name("q9_test"), 1500);
    ck_assert_uint_eq(slm_type_row_size(1500, 64), 40);
    ck_assert_int_eq(slm_registry_find(reg, "quantizer", "q-test")->state, SLM_PLUGIN_AVAILABLE);
    const slm_plugin_info_t *clash = slm_registry_find(reg, "quantizer", "q-clash");
    ck_assert_int_eq(clash->state, SLM_PLUGIN_DISABLED);
    ck_assert_ptr_nonnull(strstr(clash->reason, "conflicts with the registered type f32"));
    ck_assert_str_eq(slm_type_name(0), "f32");
    ck_assert_ptr_null(slm_registry_find(reg, "backend", "q-test"));
    ck_assert_ptr_nonnull(strstr(slm_registry_find(reg, NULL, "q-test")->manifest_json, "q9_test"));
    slm_registry_free(reg);
}
END_TEST

/* Manifest 1.1's policy keys are checked like every other field: a bad one
 * disables that quantizer with a reason naming the key. */
START_TEST(quantizer_policy_keys_validated)
{
    static const struct { const char *extra, *cause; } cases[] = {
        {"\"fallback\": \"q9_self\"", "fallback names the type itself"},
        {"\"fallback\": \"Q5_0\"", "provides.types[0].fallback must be a type name"},
        {"\"output_type\": 6", "provides.types[0].output_type must be a type name"},
        {"\"gguf_file_type\": -1", "provides.types[0].gguf_file_type must be an integer"},
    };
    char *dir = th_tmpdir();
    char name[32], file[32], types[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(name, sizeof name, "q-bad%zu", i);
        snprintf(file, sizeof file, "bad%zu.json", i);
        snprintf(types, sizeof types,
                 "[{\"name\": \"q9_self\", \"id\": 1501, \"block\": 32, \"bytes\": 20, %s}]",
                 cases[i].extra);
        quantizer(dir, file, name, types);
    }
    quantizer(dir, "good.json", "q-good",
              "[{\"name\": \"q9_good\", \"id\": 1502, \"block\": 32, \"bytes\": 20,"
              " \"fallback\": \"q8_0\", \"output_type\": \"q6_k\", \"gguf_file_type\": 7}]");
    slm_registry_t *reg = th_open(dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(name, sizeof name, "q-bad%zu", i);
        const slm_plugin_info_t *p = th_row(reg, name);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(p->state, SLM_PLUGIN_DISABLED);
        ck_assert_msg(strstr(p->reason, cases[i].cause), "reason '%s' lacks '%s'", p->reason,
                      cases[i].cause);
    }
    ck_assert_int_eq(slm_registry_find(reg, "quantizer", "q-good")->state, SLM_PLUGIN_AVAILABLE);
    slm_registry_free(reg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("registry-discovery");
    TCase *tc = tcase_create("discovery");
    tcase_add_test(tc, shadowing);
    tcase_add_test(tc, sorted_order);
    tcase_add_test(tc, search_path_order_with_xdg);
    tcase_add_test(tc, xdg_defaults);
    tcase_add_test(tc, plugin_path_env_honoured);
    tcase_add_test(tc, plugin_path_only_limits_discovery);
    tcase_add_test(tc, missing_folder_skipped_silently);
    tcase_add_test(tc, library_path_relative_to_manifest);
    tcase_add_test(tc, quantizer_types_registered);
    tcase_add_test(tc, quantizer_policy_keys_validated);
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
