/* Persistent buffers and bound tensors: weights shared by graphs, a cache appended
 * by successive graphs, zero-copy host memory on the CPU and the copying fallback. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../compute/common.h"

static slm_registry_t *reg;
static slm_sched_t *sched;

static void setup(void)
{
    reg = tc_registry(NULL);
    sched = tc_sched(reg, "cpu");
}

static void teardown(void)
{
    slm_sched_free(sched);
    slm_registry_free(reg);
}

static void bind_ok(slm_tensor_t *t, slm_buffer_t *b, uint64_t offset)
{
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_tensor_bind(t, b, offset, &err) == SLM_OK, "bind: %s", err.message);
}

static slm_buffer_t *buffer_ok(slm_sched_t *s, uint64_t size)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_buffer_t *b = slm_buffer_new(s, size, &err);
    ck_assert_msg(b != NULL, "buffer_new: %s", err.message);
    return b;
}

START_TEST(new_buffer_is_zeroed_and_bounds_checked)
{
    slm_buffer_t *b = buffer_ok(sched, 64);
    ck_assert_uint_eq(slm_buffer_size(b), 64);
    ck_assert(!slm_buffer_is_zero_copy(b));
    unsigned char out[64];
    memset(out, 0xff, sizeof out);
    ck_assert_int_eq(slm_buffer_get(b, 0, out, sizeof out), SLM_OK);
    for (size_t i = 0; i < sizeof out; i++)
        ck_assert_uint_eq(out[i], 0);
    ck_assert_int_eq(slm_buffer_set(b, 60, out, 8), SLM_E_INVALID);
    ck_assert_int_eq(slm_buffer_get(b, 65, out, 0), SLM_E_INVALID);
    slm_buffer_free(b);
}
END_TEST

/* One weight buffer, two graphs of different shapes reading it. */
START_TEST(bound_weights_shared_by_two_graphs)
{
    const float w[6] = {1, 2, 3, 4, 5, 6};   /* [3, 2]: rows (1,2,3) and (4,5,6) */
    slm_buffer_t *b = buffer_ok(sched, 64 + sizeof w);
    ck_assert_int_eq(slm_buffer_set(b, 64, w, sizeof w), SLM_OK);

    slm_graph_t *g1 = slm_graph_new(0), *g2 = slm_graph_new(0);
    slm_tensor_t *w1 = slm_tensor_new_2d(g1, SLM_TYPE_F32, 3, 2);
    slm_tensor_t *x1 = slm_tensor_new_1d(g1, SLM_TYPE_F32, 3);
    slm_tensor_set_flags(x1, SLM_TENSOR_INPUT);
    slm_tensor_t *y1 = slm_mul_mat(g1, w1, x1);
    slm_tensor_set_flags(y1, SLM_TENSOR_OUTPUT);
    slm_tensor_t *w2 = slm_tensor_new_2d(g2, SLM_TYPE_F32, 3, 2);
    slm_tensor_t *y2 = slm_scale(g2, w2, 2.0f);
    slm_tensor_set_flags(y2, SLM_TENSOR_OUTPUT);
    bind_ok(w1, b, 64);
    bind_ok(w2, b, 64);
    tc_alloc(sched, g1);
    tc_alloc(sched, g2);

    const float x[3] = {1, 0, -1};
    tc_set(x1, x, sizeof x);
    tc_compute(sched, g1);
    tc_compute(sched, g2);
    float o1[2], o2[6];
    tc_get(y1, o1, sizeof o1);
    tc_get(y2, o2, sizeof o2);
    ck_assert_float_eq(o1[0], -2.0f);
    ck_assert_float_eq(o1[1], -2.0f);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(o2[i], 2.0f * w[i]);
    /* The graphs read the buffer itself: a change shows in both, no re-allocation. */
    const float w_new[3] = {10, 0, 0};
    ck_assert_int_eq(slm_buffer_set(b, 64, w_new, sizeof w_new), SLM_OK);
    tc_compute(sched, g1);
    tc_compute(sched, g2);
    tc_get(y1, o1, sizeof o1);
    tc_get(y2, o2, sizeof o2);
    ck_assert_float_eq(o1[0], 10.0f);
    ck_assert_float_eq(o2[0], 20.0f);
    /* The bound tensor's data is reachable through the graph API as well. */
    float back[6];
    tc_get(w2, back, sizeof back);
    ck_assert_float_eq(back[0], 10.0f);
    ck_assert_float_eq(back[5], 6.0f);
    slm_graph_free(g1);
    slm_graph_free(g2);
    slm_buffer_free(b);
}
END_TEST

/* Graph that writes rows [row0, row0 + n) of an f16 cache [4, 8] and returns the
 * sum of every row so far (it reads the whole cache after the append). */
static slm_graph_t *append_graph(slm_buffer_t *cache, int64_t row0, int64_t n, slm_tensor_t **x,
                                 slm_tensor_t **sum)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *c = slm_tensor_new_2d(g, SLM_TYPE_F16, 4, 8);
    bind_ok(c, cache, 0);
    *x = slm_tensor_new_2d(g, SLM_TYPE_F32, 4, n);
    slm_tensor_set_flags(*x, SLM_TENSOR_INPUT);
    const int64_t ne[2] = {4, n}, nb[2] = {2, 8};
    slm_tensor_t *dst = slm_view(g, c, 2, ne, nb, (size_t)row0 * 8);
    slm_cpy(g, *x, dst);
    const int64_t all_ne[2] = {4, row0 + n};
    slm_tensor_t *all = slm_view(g, c, 2, all_ne, nb, 0);
    *sum = slm_sum(g, slm_cast(g, all, SLM_TYPE_F32));
    slm_tensor_set_flags(*sum, SLM_TENSOR_OUTPUT);
    return g;
}

START_TEST(cache_appended_by_successive_graphs)
{
    slm_buffer_t *cache = buffer_ok(sched, 4 * 8 * 2);
    slm_tensor_t *x, *sum;
    float total;
    slm_graph_t *g1 = append_graph(cache, 0, 2, &x, &sum);
    tc_alloc(sched, g1);
    const float a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    tc_set(x, a, sizeof a);
    tc_compute(sched, g1);
    tc_get(sum, &total, sizeof total);
    ck_assert_float_eq(total, 36.0f);

    slm_graph_t *g2 = append_graph(cache, 2, 1, &x, &sum);
    tc_alloc(sched, g2);
    const float b[4] = {-1, -1, 0.5f, 100};
    tc_set(x, b, sizeof b);
    tc_compute(sched, g2);
    tc_get(sum, &total, sizeof total);
    ck_assert_float_eq(total, 134.5f);

    /* The buffer holds both appends as f16; the rows not written stay zero. */
    uint16_t raw[32];
    ck_assert_int_eq(slm_buffer_get(cache, 0, raw, sizeof raw), SLM_OK);
    ck_assert_float_eq(slm_f16_to_f32(raw[0]), 1.0f);
    ck_assert_float_eq(slm_f16_to_f32(raw[7]), 8.0f);
    ck_assert_float_eq(slm_f16_to_f32(raw[10]), 0.5f);
    ck_assert_float_eq(slm_f16_to_f32(raw[11]), 100.0f);
    for (int i = 12; i < 32; i++)
        ck_assert_uint_eq(raw[i], 0);
    /* Re-running the first graph rewrites rows 0..1 only; row 2 survives it. */
    tc_compute(sched, g1);
    ck_assert_int_eq(slm_buffer_get(cache, 0, raw, sizeof raw), SLM_OK);
    ck_assert_float_eq(slm_f16_to_f32(raw[11]), 100.0f);
    slm_graph_free(g1);
    slm_graph_free(g2);
    slm_buffer_free(cache);
}
END_TEST

/* SLMOPS_CPU_WEIGHTS=map: host memory (a file mapping) is read in place. */
START_TEST(host_memory_is_used_in_place_on_cpu)
{
    setenv("SLMOPS_CPU_WEIGHTS", "map", 1);   /* read when the device opens */
    slm_sched_t *cpu = tc_sched(reg, "cpu");
    float *host = aligned_alloc(64, 64);
    for (int i = 0; i < 4; i++)
        host[i] = (float)(i + 1);
    slm_error_t err;
    slm_error_init(&err);
    slm_buffer_t *b = slm_buffer_from_host(cpu, host, 4 * sizeof(float), &err);
    ck_assert_msg(b != NULL, "from_host: %s", err.message);
    ck_assert(slm_buffer_is_zero_copy(b));
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *w = slm_tensor_new_1d(g, SLM_TYPE_F32, 4);
    bind_ok(w, b, 0);
    slm_tensor_t *s = slm_sum(g, w);
    slm_tensor_set_flags(s, SLM_TENSOR_OUTPUT);
    tc_alloc(cpu, g);
    tc_compute(cpu, g);
    float out;
    tc_get(s, &out, sizeof out);
    ck_assert_float_eq(out, 10.0f);
    host[3] = 100.0f;   /* no copy was made: the graph sees the change */
    tc_compute(cpu, g);
    tc_get(s, &out, sizeof out);
    ck_assert_float_eq(out, 106.0f);
    slm_graph_free(g);
    slm_buffer_free(b);
    /* Freeing the wrapper left the caller's memory alone. */
    ck_assert_float_eq(host[3], 100.0f);
    free(host);
    slm_sched_free(cpu);
    unsetenv("SLMOPS_CPU_WEIGHTS");
}
END_TEST

static bool huge_pages_available(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char line[128] = "";
    bool ok = f && fgets(line, sizeof line, f) && !strstr(line, "[never]");
    if (f)
        fclose(f);
    return ok;
}

/* The sum of a buffer's n floats, through a graph. */
static float sum_of(slm_sched_t *s, slm_buffer_t *b, int64_t n)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *w = slm_tensor_new_1d(g, SLM_TYPE_F32, n);
    bind_ok(w, b, 0);
    slm_tensor_t *t = slm_sum(g, w);
    slm_tensor_set_flags(t, SLM_TENSOR_OUTPUT);
    tc_alloc(s, g);
    tc_compute(s, g);
    float out;
    tc_get(t, &out, sizeof out);
    slm_graph_free(g);
    return out;
}

/* By default, where the kernel has huge pages, weights are copied into them (D60):
 * the copy holds the values the host memory had, later changes to that memory do
 * not reach it, and buffers of any size (one larger than the arena's chunks
 * included) come and go in any order. Without huge pages: read in place. */
START_TEST(host_weights_are_copied_on_cpu)
{
    unsetenv("SLMOPS_CPU_WEIGHTS");
    slm_sched_t *s = tc_sched(reg, "cpu");
    const int64_t sizes[3] = {4, (int64_t)3 << 18, (int64_t)20 << 20};   /* 16 B to 80 MiB */
    float *host[3];
    slm_buffer_t *b[3];
    bool huge = huge_pages_available();
    for (int k = 0; k < 3; k++) {
        host[k] = malloc((size_t)sizes[k] * sizeof(float));
        for (int64_t i = 0; i < sizes[k]; i++)
            host[k][i] = (float)((i + k) % 4);   /* small integers: exact sums */
        slm_error_t err;
        slm_error_init(&err);
        b[k] = slm_buffer_from_host(s, host[k], (uint64_t)sizes[k] * sizeof(float), &err);
        ck_assert_msg(b[k] != NULL, "from_host: %s", err.message);
        ck_assert(slm_buffer_is_zero_copy(b[k]) == !huge);
    }
    /* Sums in f32 over up to 20 M values: compared within 1e-4 of the magnitude. The
     * change made to the host memory afterwards is far larger than that. */
    const float bump = 1e6f;
    float want[3];
    for (int k = 0; k < 3; k++) {
        want[k] = sum_of(s, b[k], sizes[k]);
        double exact = 0;
        for (int64_t i = 0; i < sizes[k]; i++)
            exact += host[k][i];
        ck_assert_double_eq_tol(want[k], exact, exact * 1e-4);
        host[k][0] += bump;   /* seen only when read in place */
        ck_assert_double_eq_tol(sum_of(s, b[k], sizes[k]), huge ? exact : exact + bump,
                                (exact + bump) * 1e-4);
        want[k] = (float)exact;
    }
    /* The middle one goes first; a new one takes its place; the others are intact. */
    slm_buffer_free(b[1]);
    b[1] = slm_buffer_from_host(s, host[1], (uint64_t)sizes[1] * sizeof(float), NULL);
    ck_assert(b[1] != NULL);
    ck_assert_double_eq_tol(sum_of(s, b[1], sizes[1]), want[1] + bump, (want[1] + bump) * 1e-4);
    ck_assert_double_eq_tol(sum_of(s, b[0], sizes[0]), huge ? want[0] : want[0] + bump, 1e-3);
    ck_assert_double_eq_tol(sum_of(s, b[2], sizes[2]), huge ? want[2] : want[2] + bump,
                            (want[2] + bump) * 1e-4);
    for (int k = 2; k >= 0; k--) {
        slm_buffer_free(b[k]);
        free(host[k]);
    }
    slm_sched_free(s);
}
END_TEST

START_TEST(bind_refuses_bad_requests)
{
    slm_buffer_t *b = buffer_ok(sched, 16);
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *a = slm_tensor_new_1d(g, SLM_TYPE_F32, 4);
    slm_tensor_t *big = slm_tensor_new_1d(g, SLM_TYPE_F32, 5);
    slm_tensor_t *node = slm_scale(g, a, 2.0f);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_tensor_bind(big, b, 0, &err), SLM_E_INVALID);
    ck_assert_int_eq(slm_tensor_bind(a, b, 4, &err), SLM_E_INVALID);
    ck_assert_int_eq(slm_tensor_bind(node, b, 0, &err), SLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "leaf"));
    bind_ok(a, b, 0);
    slm_tensor_set_flags(node, SLM_TENSOR_OUTPUT);
    tc_alloc(sched, g);
    ck_assert_int_eq(slm_tensor_bind(big, b, 0, &err), SLM_E_STATE);
    /* A buffer of another scheduler cannot back a graph allocated here. */
    slm_sched_t *other = tc_sched(reg, "cpu");
    slm_graph_t *g2 = slm_graph_new(0);
    slm_tensor_t *c = slm_tensor_new_1d(g2, SLM_TYPE_F32, 4);
    slm_tensor_set_flags(slm_scale(g2, c, 1.0f), SLM_TENSOR_OUTPUT);
    bind_ok(c, b, 0);
    ck_assert_int_eq(slm_sched_alloc(other, g2, &err), SLM_E_INVALID);
    slm_graph_free(g2);
    slm_sched_free(other);
    slm_graph_free(g);
    slm_buffer_free(b);
}
END_TEST

/* ---- a backend without buffer_from_host: the host copies ---- */

START_TEST(host_memory_is_copied_without_the_slot)
{
    slm_registry_t *r = tc_registry(tc_testbe_dir());
    slm_sched_t *s = tc_sched(r, "testbe:0");
    float host[6] = {1, 2, 3, 4, 5, 6};
    slm_error_t err;
    slm_error_init(&err);
    slm_buffer_t *b = slm_buffer_from_host(s, host, sizeof host, &err);
    ck_assert_msg(b != NULL, "from_host: %s", err.message);
    ck_assert(!slm_buffer_is_zero_copy(b));
    host[0] = -100.0f;   /* the buffer has its own copy */

    /* scale runs on testbe against the bound buffer; mul_mat falls back to the CPU,
     * which reads the bound weights through a mirror. */
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *w = slm_tensor_new_2d(g, SLM_TYPE_F32, 3, 2);
    bind_ok(w, b, 0);
    slm_tensor_t *x = slm_tensor_new_1d(g, SLM_TYPE_F32, 3);
    slm_tensor_set_flags(x, SLM_TENSOR_INPUT);
    slm_tensor_t *sw = slm_scale(g, w, 3.0f);
    slm_tensor_t *y = slm_mul_mat(g, w, x);
    slm_tensor_set_flags(sw, SLM_TENSOR_OUTPUT);
    slm_tensor_set_flags(y, SLM_TENSOR_OUTPUT);
    tc_alloc(s, g);
    ck_assert_uint_eq(slm_sched_n_fallback(s), 1);
    const float xv[3] = {1, 1, 1};
    tc_set(x, xv, sizeof xv);
    tc_compute(s, g);
    float o[6], yo[2];
    tc_get(sw, o, sizeof o);
    tc_get(y, yo, sizeof yo);
    ck_assert_float_eq(o[0], 3.0f);
    ck_assert_float_eq(o[5], 18.0f);
    ck_assert_float_eq(yo[0], 6.0f);
    ck_assert_float_eq(yo[1], 15.0f);
    slm_graph_free(g);
    slm_buffer_free(b);
    slm_sched_free(s);
    slm_registry_free(r);
    tc_testbe_remove();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("buffer");
    TCase *tc = tcase_create("buffer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, new_buffer_is_zeroed_and_bounds_checked);
    tcase_add_test(tc, bound_weights_shared_by_two_graphs);
    tcase_add_test(tc, cache_appended_by_successive_graphs);
    tcase_add_test(tc, host_memory_is_used_in_place_on_cpu);
    tcase_add_test(tc, host_weights_are_copied_on_cpu);
    tcase_add_test(tc, bind_refuses_bad_requests);
    tcase_add_test(tc, host_memory_is_copied_without_the_slot);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
