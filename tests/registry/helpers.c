/* Helpers of the registry tests: temporary plugin folders, manifests for the
 * fake plugins and a log handler that keeps what the registry reported. */
#include "config.h"

#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/log.h>

#include "tests/registry/helpers.h"

static char log_buf[16384];

static char *tmpdirs[64];
static size_t n_tmpdirs;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Check runs each test in a child that exits normally, so atexit cleans up. */
static void remove_tmpdirs(void)
{
    for (size_t i = 0; i < n_tmpdirs; i++) {
        nftw(tmpdirs[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(tmpdirs[i]);
    }
    n_tmpdirs = 0;
}

char *th_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/slmops-registry-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(path));
    ck_assert_uint_lt(n_tmpdirs, sizeof tmpdirs / sizeof tmpdirs[0]);
    if (n_tmpdirs == 0)
        atexit(remove_tmpdirs);
    tmpdirs[n_tmpdirs] = strdup(path);
    ck_assert_ptr_nonnull(tmpdirs[n_tmpdirs]);
    return tmpdirs[n_tmpdirs++];
}

void th_write(const char *dir, const char *file, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

const char *th_lib(const char *module)
{
    static char path[PATH_MAX];
    const char *top = getenv("top_builddir");
    ck_assert_msg(top != NULL, "top_builddir is not set (run through make check)");
    snprintf(path, sizeof path, "%s/tests/registry/.libs/%s.so", top, module);
    return path;
}

void th_backend(const char *dir, const char *file, const char *name, const char *module,
                const char *family, int priority, const char *extra)
{
    char text[8192];
    snprintf(text, sizeof text,
             "{\n"
             "  \"file_format_version\": \"1.0.0\",\n"
             "  \"name\": \"%s\",\n"
             "  \"kind\": \"backend\",\n"
             "  \"version\": \"1.0.0\",\n"
             "  \"abi_version\": 1,\n"
             "  \"library_path\": \"%s\",\n"
             "  \"description\": \"fake backend for the registry tests\",\n"
             "  \"priority\": %d,\n"
             "%s%s"
             "  \"provides\": {\"backend\": \"%s\", \"device_types\": [\"cpu\"],\n"
             "               \"ops\": {\"mul_mat\": [\"f32\", \"f16\"], \"add\": [\"f32\"]},\n"
             "               \"training\": true}\n"
             "}\n",
             name, th_lib(module), priority, extra, *extra ? ",\n" : "", family);
    th_write(dir, file, text);
}

void th_trainer(const char *dir, const char *file, const char *name, const char *module,
                int priority, const char *methods)
{
    char text[8192];
    if (!methods)
        methods = "[{\"name\": \"fake-full\", \"description\": \"every weight trains\"},\n"
                  " {\"name\": \"fake-lora\", \"description\": \"low-rank adapters\"}]";
    snprintf(text, sizeof text,
             "{\n"
             "  \"file_format_version\": \"1.3.0\",\n"
             "  \"name\": \"%s\",\n"
             "  \"kind\": \"trainer\",\n"
             "  \"version\": \"1.0.0\",\n"
             "  \"abi_version\": 1,\n"
             "  \"library_path\": \"%s\",\n"
             "  \"description\": \"fake trainer for the registry tests\",\n"
             "  \"priority\": %d,\n"
             "  \"provides\": {\"methods\": %s}\n"
             "}\n",
             name, th_lib(module), priority, methods);
    th_write(dir, file, text);
}

void th_good(const char *dir)
{
    th_backend(dir, "good.json", "fake-good", "fake-good", "fake", 0, "");
}

slm_registry_t *th_open(const char *search_path)
{
    slm_registry_options_t opts = {.struct_size = sizeof opts, .search_path = search_path};
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(&opts, &err);
    ck_assert_msg(reg != NULL, "slm_registry_new: %s", err.message);
    return reg;
}

const slm_plugin_info_t *th_row(const slm_registry_t *reg, const char *name)
{
    int i = th_index(reg, name);
    return i < 0 ? NULL : slm_registry_get(reg, (size_t)i);
}

int th_index(const slm_registry_t *reg, const char *name)
{
    for (size_t i = 0; i < slm_registry_count(reg); i++)
        if (strcmp(slm_registry_get(reg, i)->name, name) == 0)
            return (int)i;
    return -1;
}

static void keep_log(slm_log_level_t level, const char *category, const char *msg, void *user)
{
    (void)user;
    size_t len = strlen(log_buf);
    if (level <= SLM_LOG_WARN)
        snprintf(log_buf + len, sizeof log_buf - len, "%s: %s\n", category, msg);
}

void th_log_capture(void)
{
    log_buf[0] = '\0';
    slm_log_set_handler(keep_log, NULL);
}

const char *th_log_text(void)
{
    return log_buf;
}
