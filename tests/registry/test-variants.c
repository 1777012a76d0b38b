/* Variant selection inside a backend family (priority, requires, forcing),
 * capability queries best-first, and CPU feature detection. */
#include "config.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/registry.h>

#include "tests/registry/helpers.h"

START_TEST(unmet_requires_unsupported)
{
    char *dir = th_tmpdir();
    th_good(dir);
    th_backend(dir, "fancy.json", "fake-fancy", "fake-other", "fake", 300,
               "  \"requires\": {\"cpu_features\": [\"nonexistent_feature\"]}");
    slm_registry_t *reg = th_open(dir);
    const slm_plugin_info_t *fancy = th_row(reg, "fake-fancy");
    ck_assert_int_eq(fancy->state, SLM_PLUGIN_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(fancy->reason, "lacks required features: nonexistent_feature"));
    ck_assert_int_eq(th_row(reg, "fake-good")->state, SLM_PLUGIN_AVAILABLE);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_registry_load(reg, "fake-fancy", &err), SLM_E_UNSUPPORTED);
    slm_registry_free(reg);
}
END_TEST

START_TEST(unknown_requirement_unsupported)
{
    char *dir = th_tmpdir();
    th_good(dir);
    th_backend(dir, "fancy.json", "fake-fancy", "fake-other", "fake", 300,
               "  \"requires\": {\"gpu_driver\": \">= 999\"}");
    slm_registry_t *reg = th_open(dir);
    ck_assert_int_eq(th_row(reg, "fake-fancy")->state, SLM_PLUGIN_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(th_row(reg, "fake-fancy")->reason, "gpu_driver"));
    slm_registry_free(reg);
}
END_TEST

START_TEST(highest_priority_wins)
{
    char *dir = th_tmpdir();
    th_backend(dir, "a.json", "fake-good", "fake-good", "fake", 100, "");
    /* sse2 is part of x86-64; elsewhere the feature test is moot. */
    const char *req = slm_cpu_has_feature("sse2") ? "  \"requires\": {\"cpu_features\": [\"sse2\"]}"
                                                  : "";
    th_backend(dir, "b.json", "fake-other", "fake-other", "fake", 200, req);
    slm_registry_t *reg = th_open(dir);
    ck_assert_int_eq(th_row(reg, "fake-other")->state, SLM_PLUGIN_AVAILABLE);
    const slm_plugin_info_t *low = th_row(reg, "fake-good");
    ck_assert_int_eq(low->state, SLM_PLUGIN_SUPERSEDED);
    ck_assert_ptr_nonnull(strstr(low->reason, "fake-other serves backend fake"));
    slm_registry_free(reg);
}
END_TEST

START_TEST(equal_priority_first_found_wins)
{
    char *dir = th_tmpdir();
    th_backend(dir, "a.json", "fake-other", "fake-other", "fake", 100, "");
    th_backend(dir, "b.json", "fake-good", "fake-good", "fake", 100, "");
    slm_registry_t *reg = th_open(dir);
    ck_assert_int_eq(th_row(reg, "fake-other")->state, SLM_PLUGIN_AVAILABLE);
    ck_assert_int_eq(th_row(reg, "fake-good")->state, SLM_PLUGIN_SUPERSEDED);
    slm_registry_free(reg);
}
END_TEST

START_TEST(prefer_forces_variant)
{
    char *dir = th_tmpdir();
    th_backend(dir, "a.json", "fake-good", "fake-good", "fake", 100, "");
    th_backend(dir, "b.json", "fake-other", "fake-other", "fake", 200, "");
    th_backend(dir, "c.json", "fake-fancy", "fake-other", "fake", 300,
               "  \"requires\": {\"cpu_features\": [\"nonexistent_feature\"]}");
    slm_registry_t *reg = th_open(dir);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_registry_prefer(reg, "fake-good", &err), SLM_OK);
    ck_assert_int_eq(th_row(reg, "fake-good")->state, SLM_PLUGIN_AVAILABLE);
    ck_assert_int_eq(th_row(reg, "fake-other")->state, SLM_PLUGIN_SUPERSEDED);
    ck_assert_int_eq(slm_registry_prefer(reg, "fake-fancy", &err), SLM_E_UNSUPPORTED);
    ck_assert_int_eq(slm_registry_prefer(reg, "no-such-plugin", &err), SLM_E_NOT_FOUND);
    ck_assert_int_eq(th_row(reg, "fake-good")->state, SLM_PLUGIN_AVAILABLE);
    ck_assert_int_eq(slm_registry_prefer(reg, NULL, &err), SLM_OK);
    ck_assert_int_eq(th_row(reg, "fake-other")->state, SLM_PLUGIN_AVAILABLE);
    slm_registry_free(reg);
}
END_TEST

START_TEST(variant_env_forces_variant)
{
    char *dir = th_tmpdir();
    th_backend(dir, "a.json", "fake-good", "fake-good", "fake", 100, "");
    th_backend(dir, "b.json", "fake-other", "fake-other", "fake", 200, "");
    setenv("SLMOPS_CPU_VARIANT", "fake-good", 1);
    slm_registry_t *reg = th_open(dir);
    ck_assert_int_eq(th_row(reg, "fake-good")->state, SLM_PLUGIN_AVAILABLE);
    ck_assert_int_eq(th_row(reg, "fake-other")->state, SLM_PLUGIN_SUPERSEDED);
    ck_assert_ptr_nonnull(strstr(th_row(reg, "fake-other")->reason, "SLMOPS_CPU_VARIANT"));
    slm_registry_free(reg);
}
END_TEST

static void ops_manifest(const char *dir, const char *name, const char *family, int priority,
                         const char *ops)
{
    char file[128], text[2048];
    snprintf(file, sizeof file, "%s.json", name);
    snprintf(text, sizeof text,
             "{\"file_format_version\": \"1.0.0\", \"name\": \"%s\", \"kind\": \"backend\","
             " \"version\": \"1.0.0\", \"abi_version\": 1, \"library_path\": \"x.so\","
             " \"description\": \"d\", \"priority\": %d, \"provides\": {\"backend\": \"%s\","
             " \"device_types\": [\"cpu\"], \"ops\": %s}}",
             name, priority, family, ops);
    th_write(dir, file, text);
}

START_TEST(capability_query_best_first)
{
    char *dir = th_tmpdir();
    ops_manifest(dir, "b-low", "low", 0, "{\"mul_mat\": [\"f32\", \"f16\"]}");
    ops_manifest(dir, "a-high", "high", 200, "{\"mul_mat\": [\"f32\"], \"add\": [\"f32\"]}");
    ops_manifest(dir, "c-mid", "mid", 100, "{\"mul_mat\": [\"f32\", \"q4_0\"]}");
    ops_manifest(dir, "d-superseded", "high", 50, "{\"mul_mat\": [\"f16\"]}");
    slm_registry_t *reg = th_open(dir);
    const char *names[8];
    ck_assert_uint_eq(slm_registry_backends_for(reg, "mul_mat", "f32", names, 8), 3);
    ck_assert_str_eq(names[0], "a-high");
    ck_assert_str_eq(names[1], "c-mid");
    ck_assert_str_eq(names[2], "b-low");
    ck_assert_uint_eq(slm_registry_backends_for(reg, "mul_mat", "f16", names, 8), 1);
    ck_assert_str_eq(names[0], "b-low");
    ck_assert_uint_eq(slm_registry_backends_for(reg, "mul_mat", "q4_0", names, 8), 1);
    ck_assert_uint_eq(slm_registry_backends_for(reg, "rope", "f32", names, 8), 0);
    ck_assert_uint_eq(slm_registry_backends_for(reg, "mul_mat", "f32", names, 1), 1);
    ck_assert_str_eq(names[0], "a-high");
    slm_registry_free(reg);
}
END_TEST

/* The flags line of /proc/cpuinfo, or "" where there is none (non-x86). */
static void cpuinfo_flags(char *out, size_t size)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) == 0) {
            const char *colon = strchr(line, ':');
            snprintf(out, size, " %s", colon ? colon + 1 : "");
            out[strcspn(out, "\n")] = ' ';
            break;
        }
    }
    fclose(f);
}

START_TEST(cpu_features_match_cpuinfo)
{
    char flags[8192];
    cpuinfo_flags(flags, sizeof flags);
    static const char *const names[] = {"avx2", "avx512f", "avx512bw", "fma", "f16c", "sse4_2"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char word[64];
        snprintf(word, sizeof word, " %s ", names[i]);
        bool in_cpuinfo = strstr(flags, word) != NULL;
        ck_assert_msg(slm_cpu_has_feature(names[i]) == in_cpuinfo, "%s: detected %d, cpuinfo %d",
                      names[i], slm_cpu_has_feature(names[i]), in_cpuinfo);
    }
    ck_assert(slm_cpu_has_feature("sse4.2") == slm_cpu_has_feature("sse4_2"));
    ck_assert(!slm_cpu_has_feature("nonexistent_feature"));
    ck_assert(!slm_cpu_has_feature(""));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("registry-variants");
    TCase *tc = tcase_create("variants");
    tcase_add_test(tc, unmet_requires_unsupported);
    tcase_add_test(tc, unknown_requirement_unsupported);
    tcase_add_test(tc, highest_priority_wins);
    tcase_add_test(tc, equal_priority_first_found_wins);
    tcase_add_test(tc, prefer_forces_variant);
    tcase_add_test(tc, variant_env_forces_variant);
    tcase_add_test(tc, capability_query_best_first);
    tcase_add_test(tc, cpu_features_match_cpuinfo);
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
