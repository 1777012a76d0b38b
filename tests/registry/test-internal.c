/* The registry's internal entry points used by other core parts: the CPU
 * fallback device the scheduler opens for ops another device lacks. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "internal/device.h"
#include "internal/registry.h"
#include "tests/registry/helpers.h"

START_TEST(cpu_fallback_picks_cpu_type)
{
    char *dir = th_tmpdir();
    th_good(dir);
    th_backend(dir, "other.json", "fake-other", "fake-other", "fakegpu", 0, "");
    slm_registry_t *reg = th_open(dir);
    slm_device_info_t pick;
    ck_assert_int_eq(slm_device_resolve(reg, "auto", &pick, NULL), SLM_OK);
    ck_assert_str_eq(pick.type, "dgpu");
    slm_device_options_t opts = {.struct_size = sizeof opts, .n_threads = 2};
    slm_error_t err;
    slm_error_init(&err);
    slm_device_t *dev = slm__device_open_cpu_fallback(reg, &opts, &err);
    ck_assert_msg(dev != NULL, "%s", err.message);
    ck_assert_str_eq(dev->info.id, "fake:0");
    ck_assert_int_eq(dev->props.type, SLM_DEVICE_CPU);
    ck_assert_ptr_eq(dev->reg, reg);
    ck_assert_int_eq(dev->index, 0);
    slm_device_close(dev);
    slm_registry_free(reg);
}
END_TEST

START_TEST(cpu_fallback_none)
{
    char *dir = th_tmpdir();
    th_backend(dir, "other.json", "fake-other", "fake-other", "fakegpu", 0, "");
    slm_registry_t *reg = th_open(dir);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_ptr_null(slm__device_open_cpu_fallback(reg, NULL, &err));
    ck_assert_int_eq(err.code, SLM_E_NOT_FOUND);
    slm_registry_free(reg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("registry-internal");
    TCase *tc = tcase_create("internal");
    tcase_add_test(tc, cpu_fallback_picks_cpu_type);
    tcase_add_test(tc, cpu_fallback_none);
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
