/* The CUDA backend on this machine's first CUDA device: every op x type of its
 * manifest through the conformance suite, with and without CUDA graphs, and
 * stories260K decoded on it against the CPU backend. Exits 77 without a device
 * (the no-device behaviour is tests/cuda/cuda-plugins.sh's). */
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
/* The device and plugin under test: cuda:0 of backend-cuda, or, from
 * tests/cuda/emu-check.sh, the same sources on the CPU emulator. */
static const char *dev_spec = "cuda:0", *plugin_name = "backend-cuda";

static slm_registry_t *open_registry(void)
{
    return tc_registry(NULL);
}

/* Run the suite on cuda:0 for `op` (NULL: every op); strict layouts. */
static void conform(const char *op, bool gradcheck)
{
    slm_registry_t *reg = open_registry();
    slm_error_t err;
    slm_error_init(&err);
    slm_device_t *dev = slm_device_open(reg, dev_spec, NULL, &err);
    ck_assert_msg(dev != NULL, "open %s: %s", dev_spec, err.message);
    ck_assert_str_eq(slm_device_get_info(dev)->plugin, plugin_name);
    slm_conform_options_t opts;
    slm_conform_options_default(&opts);
    opts.op = op;
    opts.strict_layouts = true;
    opts.no_gradcheck = !gradcheck;
    slm_conform_report_t rep;
    ck_assert_msg(slm_conform_run(reg, dev, &opts, &rep, &err) == 0, "%s", err.message);
    ck_assert_msg(rep.n_results > 0, "%s does not declare op %s", plugin_name, op);
    char line[1024], msg[4096] = "";
    size_t used = 0;
    for (size_t i = 0; i < rep.n_results && used + 2 < sizeof msg; i++) {
        if (rep.results[i].status == SLM_CONFORM_PASS)
            continue;
        slm_conform_result_format(&rep.results[i], line, sizeof line);
        int k = snprintf(msg + used, sizeof msg - used, "\n  %s", line);
        used += k > 0 ? (size_t)k : 0;
    }
    ck_assert_msg(rep.n_fail == 0 && rep.n_skip == 0, "%s on %s: %zu failed, %zu skipped:%s",
                  op, dev_spec, rep.n_fail, rep.n_skip, msg);
    ck_assert_msg(rep.n_pass > 0, "%s on %s: nothing passed", op, dev_spec);
    slm_conform_report_free(&rep);
    slm_device_close(dev);
    slm_registry_free(reg);
}

/* Every op of the manifest (the CPU backend's op set but the optional fused ones),
 * gradchecks included, through CUDA graphs. */
START_TEST(op_conforms)
{
    if (!dp_op_required(_i))
        return;
    setenv("SLMOPS_CUDA_GRAPHS", "1", 1);   /* each recording captured into a CUDA graph */
    conform(slm_op_name(_i), true);
}
END_TEST

/* Node by node, never captured (SLMOPS_CUDA_GRAPHS=0): the same kernels launched
 * outside a capture. (Generation below runs the default: captured after replays.) */
static const char *const direct_ops[] = {"get_rows", "mul_mat", "soft_max", "rope", "cross_entropy"};

START_TEST(without_graphs_conforms)
{
    setenv("SLMOPS_CUDA_GRAPHS", "0", 1);
    conform(direct_ops[_i], false);
}
END_TEST

/* y = soft_max(mul_mat(w, silu(rms_norm(x)))) computed 6 times with new inputs
 * each time on `device`: the scheduler records the segment once and replays it,
 * so the later computes go through a captured CUDA graph. */
static void replays_on(slm_registry_t *reg, const char *device, float out[6][8 * 4])
{
    enum { K = 64, M = 8, N = 4 };
    slm_sched_t *s = tc_sched(reg, device);
    slm_graph_t *g = slm_graph_new(16);
    slm_tensor_t *x = slm_tensor_new_2d(g, SLM_TYPE_F32, K, N);
    slm_tensor_t *w = slm_tensor_new_2d(g, SLM_TYPE_F32, K, M);
    slm_tensor_set_flags(x, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(w, SLM_TENSOR_INPUT);
    slm_tensor_t *y = slm_soft_max(g, slm_mul_mat(g, w, slm_silu(g, slm_rms_norm(g, x, 1e-5f))), NULL,
                                   0.5f, false, 0);
    ck_assert_ptr_nonnull(y);
    slm_tensor_set_flags(y, SLM_TENSOR_OUTPUT);
    tc_alloc(s, g);
    uint64_t rng = 11;
    float xv[K * N], wv[K * M];
    tc_fill(wv, K * M, &rng, 1.0f);
    tc_set(w, wv, sizeof wv);
    for (int step = 0; step < 6; step++) {
        tc_fill(xv, K * N, &rng, 2.0f);
        tc_set(x, xv, sizeof xv);
        tc_compute(s, g);
        tc_get(y, out[step], sizeof out[step]);
    }
    slm_graph_free(g);
    slm_sched_free(s);
}

START_TEST(replays_match_cpu)
{
    static const char *const modes[] = {"1", "3"};   /* captured at once; the default */
    setenv("SLMOPS_CUDA_GRAPHS", modes[_i], 1);
    slm_registry_t *reg = open_registry();
    float c[6][32], d[6][32];
    replays_on(reg, "cpu", c);
    replays_on(reg, dev_spec, d);
    for (int step = 0; step < 6; step++)
        for (int i = 0; i < 32; i++)
            ck_assert_msg(fabsf(c[step][i] - d[step][i]) <= 1e-4f,
                          "SLMOPS_CUDA_GRAPHS=%s, compute %d, y[%d]: cpu %g, %s %g", modes[_i], step,
                          i, (double)c[step][i], dev_spec, (double)d[step][i]);
    slm_registry_free(reg);
}
END_TEST

/* Greedy decoding of stories260K from BOS against the CPU (device-parity.h). */
START_TEST(generation_matches_cpu)
{
    slm_registry_t *reg = open_registry();
    dp_generation_matches_cpu(reg, model_path, N_VOCAB, dev_spec);
    slm_registry_free(reg);
}
END_TEST

START_TEST(long_reductions_match_cpu)
{
    slm_registry_t *reg = open_registry();
    dp_long_reductions_match_cpu(reg, dev_spec);
    slm_registry_free(reg);
}
END_TEST

/* A discrete or integrated GPU outscores the CPU: auto picks cuda:0. */
START_TEST(auto_picks_the_gpu)
{
    slm_registry_t *reg = open_registry();
    slm_error_t err;
    slm_error_init(&err);
    slm_device_info_t cu, au;
    ck_assert_msg(slm_device_resolve(reg, dev_spec, &cu, &err) == SLM_OK, "%s", err.message);
    ck_assert_msg(slm_device_resolve(reg, "auto", &au, &err) == SLM_OK, "%s", err.message);
    ck_assert_int_gt(cu.score, SLM_DEVICE_SCORE_CPU);
    ck_assert_msg(au.score >= cu.score, "auto picked %s (score %d) over %s (%d)", au.id, au.score,
                  dev_spec, cu.score);
    slm_registry_free(reg);
}
END_TEST

/* Exit 77 naming what is missing: the plugin (not configured) or a device. */
static void skip_unless_device(void)
{
    slm_error_t rerr;
    slm_error_init(&rerr);
    slm_registry_options_t o = {.struct_size = sizeof o};
    slm_registry_t *reg = slm_registry_new(&o, &rerr);
    if (!reg) {
        printf("registry: %s\n", rerr.message);
        exit(EXIT_FAILURE);
    }
    const slm_plugin_info_t *p = slm_registry_find(reg, "backend", plugin_name);
    if (!p) {
        printf("SKIP: %s is not built (configure --enable-cuda=yes)\n", plugin_name);
        exit(77);
    }
    slm_registry_load(reg, plugin_name, NULL);   /* init: the state says whether a device is there */
    p = slm_registry_find(reg, "backend", plugin_name);
    if (p->state == SLM_PLUGIN_UNSUPPORTED || p->state == SLM_PLUGIN_DISABLED) {
        printf("SKIP: %s is %s: %s\n", plugin_name, slm_plugin_state_name(p->state), p->reason);
        exit(77);
    }
    slm_error_t err;
    slm_error_init(&err);
    slm_device_t *dev = slm_device_open(reg, dev_spec, NULL, &err);
    if (!dev) {
        printf("SKIP: no CUDA device: %s\n", err.message);
        exit(77);
    }
    slm_device_close(dev);
    slm_registry_free(reg);
}

int main(void)
{
    const char *d = getenv("SLMOPS_TEST_CUDA_DEVICE"), *pl = getenv("SLMOPS_TEST_CUDA_PLUGIN");
    dev_spec = d && *d ? d : dev_spec;
    plugin_name = pl && *pl ? pl : plugin_name;
    skip_unless_device();
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(model_path, sizeof model_path, "%s/%s", fx && *fx ? fx : "../shared/fixtures",
             MODEL_REL);
    Suite *s = suite_create("cuda");
    TCase *tc = tcase_create("conform");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, op_conforms, 1, SLM_OP_COUNT);
    tcase_add_loop_test(tc, without_graphs_conforms, 0,
                        (int)(sizeof direct_ops / sizeof direct_ops[0]));
    tcase_add_test(tc, long_reductions_match_cpu);
    tcase_add_loop_test(tc, replays_match_cpu, 0, 2);
    tcase_add_test(tc, auto_picks_the_gpu);
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
