/* The OpenCL backend on this machine's first OpenCL device (PoCL in CI): every op x
 * type of its manifest through the conformance suite in one run (the device's
 * program is built once), and stories260K decoded on it against the CPU backend. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/model.h>
#include <slmops/plugin-backend.h>
#include <slmops/slmops.h>

#include "sdk/conform/conform.h"
#include "tests/compute/common.h"
#include "tests/compute/device-parity.h"

#define MODEL_REL "gguf/stories260K.gguf"
#define N_VOCAB 512

static char model_path[1200];

static slm_registry_t *open_registry(void)
{
    return tc_registry(NULL);
}

/* The whole suite on opencl:0 in one run (one program build: PoCL compiles with
 * LLVM), strict layouts, gradchecks included; every failure is listed. */
START_TEST(every_op_conforms)
{
    slm_registry_t *reg = open_registry();
    slm_error_t err;
    slm_error_init(&err);
    slm_device_t *dev = slm_device_open(reg, "opencl:0", NULL, &err);
    ck_assert_msg(dev != NULL, "open opencl:0: %s", err.message);
    ck_assert_str_eq(slm_device_get_info(dev)->plugin, "backend-opencl");
    slm_conform_options_t opts;
    slm_conform_options_default(&opts);
    opts.strict_layouts = true;
    slm_conform_report_t rep;
    ck_assert_msg(slm_conform_run(reg, dev, &opts, &rep, &err) == 0, "%s", err.message);
    char line[1024], msg[8192] = "";
    size_t used = 0;
    bool seen[SLM_OP_COUNT] = {false};
    for (size_t i = 0; i < rep.n_results; i++) {
        for (int op = 1; op < SLM_OP_COUNT; op++)
            if (strcmp(rep.results[i].op, slm_op_name(op)) == 0)
                seen[op] = true;
        if (rep.results[i].status == SLM_CONFORM_PASS || used + 2 >= sizeof msg)
            continue;
        slm_conform_result_format(&rep.results[i], line, sizeof line);
        int k = snprintf(msg + used, sizeof msg - used, "\n  %s", line);
        used += k > 0 ? (size_t)k : 0;
    }
    ck_assert_msg(rep.n_fail == 0 && rep.n_skip == 0, "opencl:0: %zu failed, %zu skipped:%s",
                  rep.n_fail, rep.n_skip, msg);
    /* the manifest declares the CPU backend's op set (the optional fused ones aside):
     * each op was run */
    for (int op = 1; op < SLM_OP_COUNT; op++)
        ck_assert_msg(seen[op] || !dp_op_required(op), "op %s was not tested on opencl:0",
                      slm_op_name(op));
    slm_conform_report_free(&rep);
    slm_device_close(dev);
    slm_registry_free(reg);
}
END_TEST

/* Greedy decoding of stories260K from BOS against the CPU (device-parity.h). */
START_TEST(generation_matches_cpu)
{
    slm_registry_t *reg = open_registry();
    dp_generation_matches_cpu(reg, model_path, N_VOCAB, "opencl:0");
    slm_registry_free(reg);
}
END_TEST

START_TEST(long_reductions_match_cpu)
{
    slm_registry_t *reg = open_registry();
    dp_long_reductions_match_cpu(reg, "opencl:0");
    slm_registry_free(reg);
}
END_TEST

/* auto never picks a CPU-emulated OpenCL device (PoCL): it scores below the CPU backend. */
START_TEST(auto_keeps_the_cpu)
{
    slm_registry_t *reg = open_registry();
    dp_auto_keeps_the_cpu(reg, "opencl:0");
    slm_registry_free(reg);
}
END_TEST

int main(void)
{
    dp_skip_unless_device("backend-opencl", "opencl:0", "configure --enable-opencl; Debian: "
                          "ocl-icd-opencl-dev opencl-headers", "Debian: pocl-opencl-icd gives PoCL");
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(model_path, sizeof model_path, "%s/%s", fx && *fx ? fx : "../shared/fixtures",
             MODEL_REL);
    Suite *s = suite_create("opencl");
    TCase *tc = tcase_create("conform");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_op_conforms);
    tcase_add_test(tc, long_reductions_match_cpu);
    tcase_add_test(tc, auto_keeps_the_cpu);
    suite_add_tcase(s, tc);
    FILE *f = fopen(model_path, "rb");
    if (f) {
        fclose(f);
        TCase *tg = tcase_create("generate");
        tcase_set_timeout(tg, 300);
        tcase_add_test(tg, generation_matches_cpu);
        suite_add_tcase(s, tg);
    } else {
        /* the conformance part still runs; the missing fixture is named, never hidden */
        printf("SKIP (generation part): fixture %s not found\n", model_path);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
