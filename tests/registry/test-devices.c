/* Devices through the public API: listing, "auto" and explicit specs, opening
 * with options, and a broken winner handing its family to the runner-up. */
#include "config.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/device.h>
#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>

#include "tests/registry/helpers.h"

/* fake-good: family fake, a cpu scoring 10; fake-other: family fakegpu, a dgpu scoring 50. */
static slm_registry_t *two_families(void)
{
    char *dir = th_tmpdir();
    th_good(dir);
    th_backend(dir, "other.json", "fake-other", "fake-other", "fakegpu", 0, "");
    return th_open(dir);
}

START_TEST(list_and_auto)
{
    slm_registry_t *reg = two_families();
    slm_device_info_t *v = NULL;
    size_t n = 0;
    ck_assert_int_eq(slm_devices_list(reg, &v, &n, NULL), SLM_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(v[0].id, "fake:0");
    ck_assert_str_eq(v[0].plugin, "fake-good");
    ck_assert_str_eq(v[0].type, "cpu");
    ck_assert_int_eq(v[0].score, 10);
    ck_assert_uint_eq(v[0].memory_total, 1u << 30);
    ck_assert_str_eq(v[1].id, "fakegpu:0");
    ck_assert_str_eq(v[1].type, "dgpu");
    ck_assert_ptr_nonnull(strstr(v[1].why, "fake-other: highest priority"));
    free(v);
    slm_device_info_t pick;
    ck_assert_int_eq(slm_device_resolve(reg, "auto", &pick, NULL), SLM_OK);
    ck_assert_str_eq(pick.id, "fakegpu:0");
    ck_assert_int_eq(th_row(reg, "fake-good")->state, SLM_PLUGIN_LOADED);
    slm_registry_free(reg);
}
END_TEST

START_TEST(resolve_specs)
{
    slm_registry_t *reg = two_families();
    slm_device_info_t d;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_device_resolve(reg, "fake", &d, &err), SLM_OK);
    ck_assert_str_eq(d.id, "fake:0");
    ck_assert_int_eq(slm_device_resolve(reg, "fakegpu:0", &d, &err), SLM_OK);
    ck_assert_str_eq(d.plugin, "fake-other");
    ck_assert_int_eq(slm_device_resolve(reg, "fake:1", &d, &err), SLM_E_NOT_FOUND);
    ck_assert_int_eq(slm_device_resolve(reg, "vulkan:0", &d, &err), SLM_E_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.message, "vulkan"));
    ck_assert_int_eq(slm_device_resolve(reg, "fake:x", &d, &err), SLM_E_INVALID);
    ck_assert_int_eq(slm_device_resolve(reg, ":0", &d, &err), SLM_E_INVALID);
    setenv("SLMOPS_DEVICE", "fake:0", 1);
    ck_assert_int_eq(slm_device_resolve(reg, NULL, &d, &err), SLM_OK);
    ck_assert_str_eq(d.id, "fake:0");
    slm_registry_free(reg);
}
END_TEST

START_TEST(explicit_variant)
{
    char *dir = th_tmpdir();
    th_good(dir);
    th_backend(dir, "other.json", "fake-other", "fake-other", "fake", 100, "");
    slm_registry_t *reg = th_open(dir);
    slm_device_info_t d;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_device_resolve(reg, "fake:0", &d, &err), SLM_OK);
    ck_assert_str_eq(d.plugin, "fake-other");
    ck_assert_int_eq(slm_device_resolve(reg, "fake-good:0", &d, &err), SLM_OK);
    ck_assert_str_eq(d.id, "fake:0");
    ck_assert_str_eq(d.plugin, "fake-good");
    ck_assert_ptr_nonnull(strstr(d.why, "named explicitly"));
    slm_device_t *dev = slm_device_open(reg, "fake-good:0", NULL, &err);
    ck_assert_msg(dev != NULL, "%s", err.message);
    ck_assert_str_eq(slm_device_get_info(dev)->plugin, "fake-good");
    slm_device_close(dev);
    slm_registry_free(reg);
}
END_TEST

START_TEST(open_with_options)
{
    slm_registry_t *reg = two_families();
    slm_error_t err;
    slm_error_init(&err);
    slm_device_options_t opts = {.struct_size = sizeof opts, .n_threads = 3};
    slm_device_t *dev = slm_device_open(reg, "fake:0", &opts, &err);
    ck_assert_msg(dev != NULL, "%s", err.message);
    ck_assert_str_eq(slm_device_get_info(dev)->id, "fake:0");
    ck_assert_str_eq(slm_device_get_info(dev)->name, "fake-good device");
    void *ctx = NULL;
    const slm_backend_iface_t *b = slm_device_backend(dev, &ctx);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(*(int *)ctx, 3);   /* the fake keeps n_threads as its context */
    ck_assert_int_eq(b->device_count(slm_device_backend_context(dev)), 1);
    slm_device_close(dev);
    slm_registry_free(reg);
}
END_TEST

START_TEST(broken_winner_hands_over)
{
    char *dir = th_tmpdir();
    th_good(dir);
    th_backend(dir, "broken.json", "fake-broken", "fake-abi99", "fake", 100, "");
    th_log_capture();
    slm_registry_t *reg = th_open(dir);
    ck_assert_int_eq(th_row(reg, "fake-good")->state, SLM_PLUGIN_SUPERSEDED);
    slm_device_info_t *v = NULL;
    size_t n = 0;
    ck_assert_int_eq(slm_devices_list(reg, &v, &n, NULL), SLM_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0].plugin, "fake-good");
    free(v);
    ck_assert_int_eq(th_row(reg, "fake-broken")->state, SLM_PLUGIN_DISABLED);
    ck_assert_int_eq(th_row(reg, "fake-good")->state, SLM_PLUGIN_LOADED);
    ck_assert_ptr_nonnull(strstr(th_log_text(), "broken.json: plugin speaks ABI version 99"));
    slm_registry_free(reg);
}
END_TEST

START_TEST(no_devices)
{
    char *dir = th_tmpdir();
    slm_registry_t *reg = th_open(dir);
    slm_device_info_t *v = NULL;
    size_t n = 7;
    ck_assert_int_eq(slm_devices_list(reg, &v, &n, NULL), SLM_OK);
    ck_assert_uint_eq(n, 0);
    free(v);
    slm_device_info_t d;
    ck_assert_int_eq(slm_device_resolve(reg, "auto", &d, NULL), SLM_E_NOT_FOUND);
    ck_assert_ptr_null(slm_device_open(reg, NULL, NULL, NULL));
    slm_registry_free(reg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("registry-devices");
    TCase *tc = tcase_create("devices");
    tcase_add_test(tc, list_and_auto);
    tcase_add_test(tc, resolve_specs);
    tcase_add_test(tc, explicit_variant);
    tcase_add_test(tc, open_with_options);
    tcase_add_test(tc, broken_winner_hands_over);
    tcase_add_test(tc, no_devices);
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
