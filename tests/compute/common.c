/* Helpers shared by the compute tests: registry and scheduler set-up against the
 * build tree, seeded data, and a log handler that keeps lines for assertions. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

slm_registry_t *tc_registry(const char *extra_dir)
{
    const char *env = getenv("SLMOPS_PLUGIN_PATH");
    const char *top = getenv("top_builddir");
    char path[4096];
    if (env && *env)
        snprintf(path, sizeof path, "%s%s%s", extra_dir ? extra_dir : "", extra_dir ? ":" : "", env);
    else
        snprintf(path, sizeof path, "%s%s%s/manifests/uninstalled", extra_dir ? extra_dir : "",
                 extra_dir ? ":" : "", top ? top : ".");
    slm_registry_options_t o = {.struct_size = sizeof o, .search_path = path,
                                .ignore_environment = true};
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(&o, &err);
    ck_assert_msg(reg != NULL, "registry on %s: %s", path, err.message);
    return reg;
}

slm_sched_t *tc_sched(slm_registry_t *reg, const char *device)
{
    const char *env = getenv("SLMOPS_TEST_DEVICE");
    if (!device)
        device = env && *env ? env : "cpu";
    slm_sched_options_t o = {.struct_size = sizeof o, .device = device, .n_threads = 2};
    slm_error_t err;
    slm_error_init(&err);
    slm_sched_t *s = slm_sched_new(reg, &o, &err);
    ck_assert_msg(s != NULL, "no device '%s': %s", o.device, err.message);
    return s;
}

void tc_alloc(slm_sched_t *s, slm_graph_t *g)
{
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_sched_alloc(s, g, &err) == SLM_OK, "alloc: %s", err.message);
}

void tc_compute(slm_sched_t *s, slm_graph_t *g)
{
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_sched_compute(s, g, &err) == SLM_OK, "compute: %s", err.message);
}

static char testbe_dir[256];

static void testbe_manifest_path(char *path, size_t size)
{
    snprintf(path, size, "%s/testbe.json", testbe_dir);
}

const char *tc_testbe_dir(void)
{
    const char *top = getenv("top_builddir"), *tmp = getenv("TMPDIR");
    snprintf(testbe_dir, sizeof testbe_dir, "%s/slmops-testbe-XXXXXX", tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(testbe_dir));
    char path[512];
    testbe_manifest_path(path, sizeof path);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"file_format_version\": \"1.0.0\", \"name\": \"testbe\", \"kind\": \"backend\",\n"
               " \"version\": \"0.1.0\", \"abi_version\": 1,\n"
               " \"library_path\": \"%s/tests/compute/.libs/testbe.so\",\n"
               " \"description\": \"add/scale-only test backend\",\n"
               " \"provides\": {\"backend\": \"testbe\", \"device_types\": [\"accel\"],\n"
               "   \"ops\": {\"add\": [\"f32\"], \"scale\": [\"f32\"]}, \"training\": false}}\n",
            top ? top : ".");
    fclose(f);
    return testbe_dir;
}

void tc_testbe2_add(void)
{
    const char *top = getenv("top_builddir");
    char path[512];
    snprintf(path, sizeof path, "%s/testbe2.json", testbe_dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"file_format_version\": \"1.0.0\", \"name\": \"testbe2\", \"kind\": \"backend\",\n"
               " \"version\": \"0.1.0\", \"abi_version\": 1,\n"
               " \"library_path\": \"%s/tests/compute/.libs/testbe2.so\",\n"
               " \"description\": \"version-2 test backend: add on :0, scale on :1\",\n"
               " \"provides\": {\"backend\": \"testbe2\", \"device_types\": [\"dgpu\", \"igpu\"],\n"
               "   \"ops\": {\"add\": [\"f32\"], \"scale\": [\"f32\"]}, \"training\": false}}\n",
            top ? top : ".");
    fclose(f);
}

void tc_testbe_remove(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/testbe2.json", testbe_dir);
    unlink(path);
    testbe_manifest_path(path, sizeof path);
    unlink(path);
    rmdir(testbe_dir);
}

float tc_rand(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*state >> 40) & 0xffffff) / (float)(1 << 23) - 1.0f;
}

void tc_fill(float *x, size_t n, uint64_t *state, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = scale * tc_rand(state);
}

void tc_set(slm_tensor_t *t, const void *data, size_t bytes)
{
    int rc = slm_tensor_set_data(t, data, 0, bytes);
    ck_assert_msg(rc == SLM_OK, "set_data '%s': %s", slm_tensor_name(t), slm_strerror(rc));
}

void tc_get(const slm_tensor_t *t, void *data, size_t bytes)
{
    int rc = slm_tensor_get_data(t, data, 0, bytes);
    ck_assert_msg(rc == SLM_OK, "get_data '%s': %s", slm_tensor_name(t), slm_strerror(rc));
}

static char log_lines[64][512];
static int n_log_lines;

static void keep_line(slm_log_level_t level, const char *category, const char *msg, void *user)
{
    (void)user;
    fprintf(stderr, "[%s] %s: %s\n", slm_log_level_name(level), category, msg);
    if (n_log_lines < 64)
        snprintf(log_lines[n_log_lines++], sizeof log_lines[0], "%s: %s", category, msg);
}

void tc_log_capture(void)
{
    n_log_lines = 0;
    slm_log_set_handler(keep_line, NULL);
    slm_log_set_level(SLM_LOG_INFO);
}

int tc_log_contains(const char *a, const char *b)
{
    int n = 0;
    for (int i = 0; i < n_log_lines; i++)
        if (strstr(log_lines[i], a) && (!b || strstr(log_lines[i], b)))
            n++;
    return n;
}
