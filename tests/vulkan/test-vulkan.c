/* The Vulkan backend on this machine's first Vulkan device (lavapipe in CI): every
 * op x type of its manifest through the conformance suite, on the mapped and the
 * staging memory path and the fp32 and fp16 arithmetic paths, and stories260K decoded on it against the CPU backend. */
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

/* Run the suite on vulkan:0 for `op` (NULL: every op); strict layouts. */
static void conform(const char *op, bool gradcheck)
{
    slm_registry_t *reg = open_registry();
    slm_error_t err;
    slm_error_init(&err);
    slm_device_t *dev = slm_device_open(reg, "vulkan:0", NULL, &err);
    ck_assert_msg(dev != NULL, "open vulkan:0: %s", err.message);
    ck_assert_str_eq(slm_device_get_info(dev)->plugin, "backend-vulkan");
    slm_conform_options_t opts;
    slm_conform_options_default(&opts);
    opts.op = op;
    opts.strict_layouts = true;
    opts.no_gradcheck = !gradcheck;
    slm_conform_report_t rep;
    ck_assert_msg(slm_conform_run(reg, dev, &opts, &rep, &err) == 0, "%s", err.message);
    ck_assert_msg(rep.n_results > 0, "backend-vulkan does not declare op %s", op);
    char line[1024], msg[4096] = "";
    size_t used = 0;
    for (size_t i = 0; i < rep.n_results && used + 2 < sizeof msg; i++) {
        if (rep.results[i].status == SLM_CONFORM_PASS)
            continue;
        slm_conform_result_format(&rep.results[i], line, sizeof line);
        int k = snprintf(msg + used, sizeof msg - used, "\n  %s", line);
        used += k > 0 ? (size_t)k : 0;
    }
    ck_assert_msg(rep.n_fail == 0 && rep.n_skip == 0, "%s on vulkan:0: %zu failed, %zu skipped:%s",
                  op, rep.n_fail, rep.n_skip, msg);
    ck_assert_msg(rep.n_pass > 0, "%s on vulkan:0: nothing passed", op);
    slm_conform_report_free(&rep);
    slm_device_close(dev);
    slm_registry_free(reg);
}

/* Every op of the manifest (the CPU backend's whole op set but the optional fused
 * ones), gradchecks included. */
START_TEST(op_conforms)
{
    if (!dp_op_required(_i))
        return;
    setenv("SLMOPS_VULKAN_FP16", "0", 1);   /* the fp32 path, whatever the default */
    conform(slm_op_name(_i), true);
}
END_TEST

/* The fp16-arithmetic path (products over 16-bit and block weights), forced, on
 * devices that have shaderFloat16 (slmops devices shows it in the description). */
static const char *const fp16_ops[] = {"mul_mat", "mul_mat_t", "get_rows"};

START_TEST(fp16_path_conforms)
{
    slm_registry_t *reg = open_registry();
    slm_device_info_t vk;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_device_resolve(reg, "vulkan:0", &vk, &err) == SLM_OK, "%s", err.message);
    slm_registry_free(reg);
    if (!strstr(vk.description, "shaderFloat16")) {
        printf("fp16 path not tested: %s has no shaderFloat16 (%s)\n", vk.name, vk.description);
        return;
    }
    setenv("SLMOPS_VULKAN_FP16", "1", 1);
    conform(fp16_ops[_i], true);
}
END_TEST

/* The same device with its memory treated as not mappable: every transfer goes
 * through the staging buffer (the path of discrete GPUs). A few ops suffice: the
 * shaders are the same, only the copies differ. */
static const char *const staged_ops[] = {"get_rows", "mul_mat", "cpy", "acc", "adamw_step"};

START_TEST(staging_path_conforms)
{
    setenv("SLMOPS_VULKAN_STAGING", "1", 1);   /* read when the device opens */
    conform(staged_ops[_i], false);
}
END_TEST

/* The row ops with a workgroup per row (how rows longer than VK_ROW_LANES_FROM
 * run) forced on the suite's short rows, gradient checks included. */
static const char *const row_ops[] = {"rms_norm", "rms_norm_back", "soft_max", "soft_max_back",
                                      "cross_entropy", "cross_entropy_back"};

START_TEST(wide_rows_conform)
{
    setenv("SLMOPS_VULKAN_WIDE_ROWS", "1", 1);   /* read when the device opens */
    conform(row_ops[_i], true);
}
END_TEST

/* Row ops over rows longer than one llvmpipe invocation may loop over (a
 * 49152-token vocabulary): a workgroup shares each row. OP picks softmax or
 * rms_norm; out gets the [V, N] result. */
static void row_op_on(slm_registry_t *reg, const char *device, int op, int64_t V, int64_t N,
                      const float *l, float *out)
{
    slm_sched_t *s = tc_sched(reg, device);
    slm_graph_t *g = slm_graph_new(16);
    slm_tensor_t *a = slm_tensor_new_2d(g, SLM_TYPE_F32, V, N);
    slm_tensor_set_flags(a, SLM_TENSOR_INPUT);
    slm_tensor_t *x = op == SLM_OP_SOFT_MAX ? slm_soft_max(g, a, NULL, 0.5f, false, 0)
                                            : slm_rms_norm(g, a, 1e-5f);
    ck_assert_ptr_nonnull(x);
    slm_tensor_set_flags(x, SLM_TENSOR_OUTPUT);
    tc_alloc(s, g);
    tc_set(a, l, (size_t)(V * N) * sizeof *l);
    tc_compute(s, g);
    tc_get(x, out, (size_t)(V * N) * sizeof *out);
    slm_graph_free(g);
    slm_sched_free(s);
}

START_TEST(long_rows_match_cpu)
{
    enum { V = 49152, N = 3 };
    static const int ops[] = {SLM_OP_SOFT_MAX, SLM_OP_RMS_NORM};
    float *l = malloc(sizeof(float) * V * N), *t = calloc(V * N, sizeof(float));
    float *c = malloc(sizeof(float) * V * N), *v = malloc(sizeof(float) * V * N);
    ck_assert(l && t && c && v);
    uint64_t rng = 11;
    tc_fill(l, V * N, &rng, 8.0f);
    for (int n = 0; n < N; n++)
        t[n * V + (n * 7919) % V] = 1.0f;
    slm_registry_t *reg = open_registry();
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        row_op_on(reg, "cpu", ops[k], V, N, l, c);
        row_op_on(reg, "vulkan:0", ops[k], V, N, l, v);
        double worst = 0;
        for (int i = 0; i < V * N; i++)
            worst = fmax(worst, fabs((double)c[i] - v[i]) / (fabs(c[i]) + 1e-6));
        ck_assert_msg(worst <= 1e-3, "op %d over rows of %d: worst relative error %g", ops[k], V,
                      worst);
    }
    float cc = dp_reduce_on(reg, "cpu", SLM_OP_CROSS_ENTROPY, V, N, l, t);
    float vv = dp_reduce_on(reg, "vulkan:0", SLM_OP_CROSS_ENTROPY, V, N, l, t);
    ck_assert_msg(fabsf(cc - vv) <= 1e-5f * fabsf(cc), "cross_entropy [%d,%d]: cpu %g, vulkan %g",
                  V, N, (double)cc, (double)vv);
    slm_registry_free(reg);
    free(l);
    free(t);
    free(c);
    free(v);
}
END_TEST

/* Greedy decoding of stories260K from BOS against the CPU (device-parity.h). */
START_TEST(generation_matches_cpu)
{
    slm_registry_t *reg = open_registry();
    dp_generation_matches_cpu(reg, model_path, N_VOCAB, "vulkan:0");
    slm_registry_free(reg);
}
END_TEST

START_TEST(long_reductions_match_cpu)
{
    slm_registry_t *reg = open_registry();
    dp_long_reductions_match_cpu(reg, "vulkan:0");
    slm_registry_free(reg);
}
END_TEST

/* auto never picks a CPU-emulated Vulkan device: it scores below the CPU backend. */
START_TEST(auto_keeps_the_cpu)
{
    slm_registry_t *reg = open_registry();
    dp_auto_keeps_the_cpu(reg, "vulkan:0");
    slm_registry_free(reg);
}
END_TEST

int main(void)
{
    dp_skip_unless_device("backend-vulkan", "vulkan:0", "configure --enable-vulkan; Debian: "
                          "libvulkan-dev glslc", "Debian: mesa-vulkan-drivers gives lavapipe");
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(model_path, sizeof model_path, "%s/%s", fx && *fx ? fx : "../shared/fixtures",
             MODEL_REL);
    Suite *s = suite_create("vulkan");
    TCase *tc = tcase_create("conform");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, op_conforms, 1, SLM_OP_COUNT);
    tcase_add_loop_test(tc, staging_path_conforms, 0,
                        (int)(sizeof staged_ops / sizeof staged_ops[0]));
    tcase_add_loop_test(tc, wide_rows_conform, 0, (int)(sizeof row_ops / sizeof row_ops[0]));
    tcase_add_loop_test(tc, fp16_path_conforms, 0, (int)(sizeof fp16_ops / sizeof fp16_ops[0]));
    tcase_add_test(tc, long_reductions_match_cpu);
    tcase_add_test(tc, long_rows_match_cpu);
    tcase_add_test(tc, auto_keeps_the_cpu);
    suite_add_tcase(s, tc);
    FILE *f = fopen(model_path, "rb");
    if (f) {
        fclose(f);
        TCase *tg = tcase_create("generate");
        tcase_set_timeout(tg, 600);
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
