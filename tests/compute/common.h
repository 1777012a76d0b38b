/* Helpers shared by the compute tests: a registry on the build tree's plugins, a
 * scheduler on a device, seeded random data and captured log lines. */
#ifndef SLMOPS_TESTS_COMPUTE_COMMON_H
#define SLMOPS_TESTS_COMPUTE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <slmops/slmops.h>

/* A registry over extra_dir (may be NULL) followed by $SLMOPS_PLUGIN_PATH. */
slm_registry_t *tc_registry(const char *extra_dir);
/* A scheduler on `device` (NULL: $SLMOPS_TEST_DEVICE, else "cpu"); fails the test
 * when it cannot open. */
slm_sched_t *tc_sched(slm_registry_t *reg, const char *device);
/* Uniform in [-1, 1), deterministic for a given state. */
float tc_rand(uint64_t *state);
void tc_fill(float *x, size_t n, uint64_t *state, float scale);
/* Allocate and run a graph on a scheduler, failing the test with the error message. */
void tc_alloc(slm_sched_t *s, slm_graph_t *g);
void tc_compute(slm_sched_t *s, slm_graph_t *g);
/* A fresh folder holding a manifest for the test backend tests/compute/testbe.la,
 * which runs only add and scale on f32, so that everything else falls back to the
 * CPU; pass it to tc_registry. tc_testbe_remove deletes it. */
const char *tc_testbe_dir(void);
/* Add the version-2 test backend testbe2 (tests/compute/testbe2.c) to that folder. */
void tc_testbe2_add(void);
void tc_testbe_remove(void);
/* Set host data into a tensor, failing the test on error. */
void tc_set(slm_tensor_t *t, const void *data, size_t bytes);
void tc_get(const slm_tensor_t *t, void *data, size_t bytes);
/* Start capturing log lines at info level; tc_log_contains searches them. */
void tc_log_capture(void);
int tc_log_contains(const char *a, const char *b);

#endif
