/* The conformance suite on one CPU backend variant (CONFORM_VARIANT, set by the
 * build), one test per op; skipped only when this CPU lacks the variant's features. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/slmops.h>

#include "sdk/conform/conform.h"

#ifndef CONFORM_VARIANT
#error "CONFORM_VARIANT names the CPU plugin variant under test"
#endif

static slm_registry_t *open_registry(void)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_options_t o = {.struct_size = sizeof o};
    slm_registry_t *reg = slm_registry_new(&o, &err);
    ck_assert_msg(reg != NULL, "registry: %s", err.message);
    return reg;
}

/* Every op, forward and backward, on the variant named explicitly ("cpu-avx2:0"),
 * with every layout required: the CPU backend is the fallback of all others. */
START_TEST(op_conforms)
{
    const char *op = slm_op_name(_i);
    slm_registry_t *reg = open_registry();
    slm_error_t err;
    slm_error_init(&err);
    slm_device_t *dev = slm_device_open(reg, CONFORM_VARIANT ":0", NULL, &err);
    ck_assert_msg(dev != NULL, "open %s:0: %s", CONFORM_VARIANT, err.message);
    ck_assert_str_eq(slm_device_get_info(dev)->plugin, CONFORM_VARIANT);

    slm_conform_options_t opts;
    slm_conform_options_default(&opts);
    opts.op = op;
    opts.strict_layouts = true;
    slm_conform_report_t rep;
    ck_assert_msg(slm_conform_run(reg, dev, &opts, &rep, &err) == 0, "%s", err.message);
    ck_assert_msg(rep.n_results > 0, "%s does not declare op %s", CONFORM_VARIANT, op);
    char line[1024], msg[4096] = "";
    size_t used = 0;
    for (size_t i = 0; i < rep.n_results && used + 2 < sizeof msg; i++) {
        if (rep.results[i].status == SLM_CONFORM_PASS)
            continue;
        slm_conform_result_format(&rep.results[i], line, sizeof line);
        int k = snprintf(msg + used, sizeof msg - used, "\n  %s", line);
        used += k > 0 ? (size_t)k : 0;
    }
    /* Strict layouts leave nothing to skip but types the suite has no reference for. */
    ck_assert_msg(rep.n_fail == 0, "%s on %s: %zu failed, %zu skipped:%s", op, CONFORM_VARIANT,
                  rep.n_fail, rep.n_skip, msg);
    ck_assert_msg(rep.n_pass > 0, "%s on %s: nothing passed:%s", op, CONFORM_VARIANT, msg);
    slm_conform_report_free(&rep);
    slm_device_close(dev);
    slm_registry_free(reg);
}
END_TEST

/* The block types the CPU manifests declare for mul_mat, each made by a quantizer
 * plugin this tree always builds: none may fall back to "skipped". */
static const char *const quant_types[] = {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
                                          "q4_k", "q5_k", "q6_k", "nf4"};

START_TEST(quantized_mul_mat_runs)
{
    const char *type = quant_types[_i];
    slm_registry_t *reg = open_registry();
    slm_error_t err;
    slm_error_init(&err);
    slm_device_t *dev = slm_device_open(reg, CONFORM_VARIANT ":0", NULL, &err);
    ck_assert_msg(dev != NULL, "open %s:0: %s", CONFORM_VARIANT, err.message);
    slm_conform_options_t opts;
    slm_conform_options_default(&opts);
    opts.op = "mul_mat";
    opts.no_gradcheck = true;
    opts.strict_layouts = true;
    slm_conform_report_t rep;
    ck_assert_msg(slm_conform_run(reg, dev, &opts, &rep, &err) == 0, "%s", err.message);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s,f32->", type);
    size_t passed = 0, other = 0;
    for (size_t i = 0; i < rep.n_results; i++) {
        const slm_conform_result_t *r = &rep.results[i];
        if (strncmp(r->types, prefix, strlen(prefix)) != 0 && strcmp(r->types, type) != 0)
            continue;
        ck_assert_msg(r->status != SLM_CONFORM_SKIP, "mul_mat %s skipped: %s", type, r->detail);
        if (r->status == SLM_CONFORM_PASS)
            passed++;
        else
            other++;
    }
    ck_assert_msg(passed > 0 && other == 0, "mul_mat %s on %s: %zu passed, %zu not", type,
                  CONFORM_VARIANT, passed, other);
    slm_conform_report_free(&rep);
    slm_device_close(dev);
    slm_registry_free(reg);
}
END_TEST

/* The transposed product behind LoRA on a quantized base: every block type runs
 * (never skipped) forward, and its frozen-weight gradcheck passes. */
START_TEST(quantized_mul_mat_t_runs)
{
    const char *type = quant_types[_i];
    slm_registry_t *reg = open_registry();
    slm_error_t err;
    slm_error_init(&err);
    slm_device_t *dev = slm_device_open(reg, CONFORM_VARIANT ":0", NULL, &err);
    ck_assert_msg(dev != NULL, "open %s:0: %s", CONFORM_VARIANT, err.message);
    slm_conform_options_t opts;
    slm_conform_options_default(&opts);
    opts.op = "mul_mat_t";
    opts.strict_layouts = true;
    slm_conform_report_t rep;
    ck_assert_msg(slm_conform_run(reg, dev, &opts, &rep, &err) == 0, "%s", err.message);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s,f32->", type);
    size_t forward = 0, grad = 0, other = 0;
    for (size_t i = 0; i < rep.n_results; i++) {
        const slm_conform_result_t *r = &rep.results[i];
        if (strncmp(r->types, prefix, strlen(prefix)) != 0 && strcmp(r->types, type) != 0)
            continue;
        ck_assert_msg(r->status != SLM_CONFORM_SKIP, "mul_mat_t %s skipped: %s", type, r->detail);
        if (r->status != SLM_CONFORM_PASS)
            other++;
        else if (strcmp(r->check, "gradcheck") == 0)
            grad++;
        else
            forward++;
    }
    ck_assert_msg(forward > 0 && grad == 1 && other == 0,
                  "mul_mat_t %s on %s: %zu forward and %zu gradchecks passed, %zu not", type,
                  CONFORM_VARIANT, forward, grad, other);
    slm_conform_report_free(&rep);
    slm_device_close(dev);
    slm_registry_free(reg);
}
END_TEST

/* Exit 77 (automake's SKIP) naming why, when the variant cannot run here. */
static void skip_if_unusable(void)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_options_t o = {.struct_size = sizeof o};
    slm_registry_t *reg = slm_registry_new(&o, &err);
    if (!reg) {
        printf("registry: %s\n", err.message);
        exit(EXIT_FAILURE);
    }
    const slm_plugin_info_t *p = slm_registry_find(reg, "backend", CONFORM_VARIANT);
    if (!p) {
        printf("SKIP: %s is not built in this configuration\n", CONFORM_VARIANT);
        exit(77);
    }
    if (p->state == SLM_PLUGIN_UNSUPPORTED) {
        printf("SKIP: %s: %s\n", CONFORM_VARIANT, p->reason);
        exit(77);
    }
    slm_registry_free(reg);
}

int main(void)
{
    skip_if_unusable();
    Suite *s = suite_create("conform-" CONFORM_VARIANT);
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, op_conforms, 1, SLM_OP_COUNT);
    suite_add_tcase(s, tc);
    TCase *tq = tcase_create("quantized");
    tcase_set_timeout(tq, 120);
    tcase_add_loop_test(tq, quantized_mul_mat_runs, 0,
                        (int)(sizeof quant_types / sizeof quant_types[0]));
    tcase_add_loop_test(tq, quantized_mul_mat_t_runs, 0,
                        (int)(sizeof quant_types / sizeof quant_types[0]));
    suite_add_tcase(s, tq);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
