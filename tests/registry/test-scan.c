/* First loads in a forked child and their verdict cache: a library that crashes or
 * exits while loading, a replaced library, damaged caches, concurrent writers, and
 * manifests or libraries that are not regular files. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/registry.h>

#include "tests/registry/helpers.h"

static char cache_file[PATH_MAX];

/* Each test gets a cache of its own (Check runs tests in separate processes). */
static void fresh_cache(void)
{
    const char *dir = th_tmpdir();
    setenv("XDG_CACHE_HOME", dir, 1);
    snprintf(cache_file, sizeof cache_file, "%s/slmops/plugin-scan.json", dir);
}

static void copy_file(const char *from, const char *to)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.new", to);
    FILE *in = fopen(from, "rb"), *out = fopen(tmp, "wb");
    ck_assert_msg(in && out, "cannot copy %s to %s", from, tmp);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
    /* Replaced as a package manager does: a new file renamed over the old one. */
    ck_assert_int_eq(rename(tmp, to), 0);
}

/* DIR/good.json: backend fake-good whose library is `lib` (a copy of one). */
static void good_manifest(const char *dir, const char *lib)
{
    json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:{s:s, s:[s], s:{s:[s]}}}",
                          "file_format_version", "1.0.0", "name", "fake-good", "kind", "backend",
                          "version", "1.0.0", "abi_version", 1, "library_path", lib,
                          "description", "a copy", "provides", "backend", "fake", "device_types",
                          "cpu", "ops", "add", "f32");
    char *text = json_dumps(m, 0);
    ck_assert_ptr_nonnull(text);
    th_write(dir, "good.json", text);
    free(text);
    json_decref(m);
}

/* Loads `name` from a folder holding it and fake-good; returns its row's reason
 * ("" when it loaded), after checking that fake-good still loads. */
static const char *load_beside_good(const char *dir, const char *name)
{
    static char reason[512];
    slm_registry_t *reg = th_open(dir);
    slm_error_t err;
    slm_error_init(&err);
    int rc = slm_registry_load(reg, name, &err);
    const slm_plugin_info_t *p = th_row(reg, name);
    ck_assert_ptr_nonnull(p);
    snprintf(reason, sizeof reason, "%s", rc == SLM_OK ? "" : p->reason);
    if (rc != SLM_OK) {
        ck_assert_int_eq(p->state, SLM_PLUGIN_DISABLED);
        ck_assert_msg(strstr(err.message, p->manifest_path) && strstr(err.message, reason),
                      "error '%s' lacks the manifest or '%s'", err.message, reason);
    }
    if (strcmp(name, "fake-good") != 0) {
        ck_assert_int_eq(slm_registry_load(reg, "fake-good", NULL), SLM_OK);
        ck_assert_int_eq(th_row(reg, "fake-good")->state, SLM_PLUGIN_LOADED);
    }
    slm_registry_free(reg);
    return reason;
}

/* A folder with fake-good and a backend "fake-broken" whose library is `module`. */
static char *broken_dir(const char *module)
{
    char *dir = th_tmpdir();
    th_good(dir);
    th_backend(dir, "broken.json", "fake-broken", module, "other", 0, "");
    return dir;
}

START_TEST(crash_in_constructor_disables_that_plugin)
{
    fresh_cache();
    const char *why = load_beside_good(broken_dir("fake-ctor-crash"), "fake-broken");
    ck_assert_str_eq(why, "library crashed while loading (SIGSEGV)");
}
END_TEST

START_TEST(exit_in_constructor_disables_that_plugin)
{
    fresh_cache();
    char *dir = broken_dir("fake-ctor-exit");
    const char *why = load_beside_good(dir, "fake-broken");
    ck_assert_str_eq(why, "library exited while loading");
    /* This process's atexit handler removes th_tmpdir() folders: had the child
     * run it when the library called exit(), the folder would be gone. */
    struct stat st;
    ck_assert_int_eq(stat(dir, &st), 0);
}
END_TEST

static bool process_gone(pid_t pid)
{
    for (int i = 0; i < 100; i++) {
        char path[64], stat_line[256] = "";
        snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
        FILE *f = fopen(path, "r");
        if (!f)
            return kill(pid, 0) != 0 && errno == ESRCH;
        bool got = fgets(stat_line, sizeof stat_line, f) != NULL;
        fclose(f);
        const char *state = strrchr(stat_line, ')');
        if (got && state && state[1] == ' ' && state[2] == 'Z')
            return true;   /* killed; reaping it is init's business */
        usleep(10000);
    }
    return false;
}

START_TEST(grandchild_holding_the_pipe_is_killed)
{
    fresh_cache();
    char *dir = broken_dir("fake-ctor-fork-crash");
    char pid_file[PATH_MAX];
    snprintf(pid_file, sizeof pid_file, "%s/grandchild.pid", dir);
    setenv("FAKE_GRANDCHILD_PID_FILE", pid_file, 1);
    time_t start = time(NULL);
    const char *why = load_beside_good(dir, "fake-broken");
    /* The crash is seen at once, not after the timeout the open pipe would cause. */
    ck_assert_int_lt(time(NULL) - start, 4);
    ck_assert_str_eq(why, "library crashed while loading (SIGSEGV)");
    FILE *f = fopen(pid_file, "r");
    ck_assert_ptr_nonnull(f);
    long pid = 0;
    ck_assert_int_eq(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    ck_assert_msg(process_gone((pid_t)pid), "grandchild %ld still runs", pid);
}
END_TEST

static json_t *read_cache(void)
{
    json_error_t jerr;
    json_t *root = json_load_file(cache_file, JSON_REJECT_DUPLICATES, &jerr);
    ck_assert_msg(root != NULL, "%s: %s", cache_file, jerr.text);
    ck_assert_int_eq(json_integer_value(json_object_get(root, "version")), 1);
    return root;
}

static json_t *cache_entry(json_t *root, const char *lib)
{
    json_t *e = json_object_get(json_object_get(root, "libraries"), lib);
    ck_assert_msg(e != NULL, "%s has no verdict for %s", cache_file, lib);
    return e;
}

/* Later registries take the verdict from the cache instead of a child: a
 * verdict edited in the cache is what they report. */
START_TEST(verdicts_are_cached)
{
    fresh_cache();
    char *dir = broken_dir("fake-ctor-crash");
    ck_assert_str_eq(load_beside_good(dir, "fake-broken"), "library crashed while loading (SIGSEGV)");
    json_t *root = read_cache();
    json_t *bad = cache_entry(root, th_lib("fake-ctor-crash"));
    ck_assert(json_is_false(json_object_get(bad, "safe")));
    json_object_set_new(bad, "reason", json_string("library crashed while loading (SIGMARK)"));
    json_t *good = cache_entry(root, th_lib("fake-good"));
    ck_assert(json_is_true(json_object_get(good, "safe")));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(good, "answer"), "name")),
                     "fake-good");
    json_object_set_new(good, "safe", json_false());
    json_object_set_new(good, "reason", json_string("library exited while loading (MARK)"));
    ck_assert_int_eq(json_dump_file(root, cache_file, 0), 0);
    json_decref(root);

    slm_registry_t *reg = th_open(dir);
    ck_assert_int_lt(slm_registry_load(reg, "fake-broken", NULL), 0);
    ck_assert_str_eq(th_row(reg, "fake-broken")->reason, "library crashed while loading (SIGMARK)");
    ck_assert_int_lt(slm_registry_load(reg, "fake-good", NULL), 0);
    ck_assert_str_eq(th_row(reg, "fake-good")->reason, "library exited while loading (MARK)");
    slm_registry_free(reg);
}
END_TEST

/* A "did not answer" verdict stands until its retry_after, then the library is
 * judged again (a first load may only have been slow). */
static const char *reason_with_retry(const char *dir, const char *lib, json_int_t retry_after)
{
    json_t *root = read_cache();
    json_t *e = cache_entry(root, lib);
    json_object_set_new(e, "reason", json_string("library did not answer in 5 s (MARK)"));
    json_object_set_new(e, "retry_after", json_integer(retry_after));
    ck_assert_int_eq(json_dump_file(root, cache_file, 0), 0);
    json_decref(root);
    return load_beside_good(dir, "fake-broken");
}

START_TEST(hang_verdict_is_judged_again_after_its_time)
{
    fresh_cache();
    char *dir = broken_dir("fake-ctor-crash");
    ck_assert_str_eq(load_beside_good(dir, "fake-broken"), "library crashed while loading (SIGSEGV)");
    const char *lib = th_lib("fake-ctor-crash");
    ck_assert_str_eq(reason_with_retry(dir, lib, (json_int_t)time(NULL) + 600),
                     "library did not answer in 5 s (MARK)");
    ck_assert_str_eq(reason_with_retry(dir, lib, (json_int_t)time(NULL) - 1),
                     "library crashed while loading (SIGSEGV)");
}
END_TEST

START_TEST(replaced_library_is_judged_again)
{
    fresh_cache();
    char *dir = th_tmpdir();
    char lib[PATH_MAX];
    snprintf(lib, sizeof lib, "%s/fake.so", dir);
    copy_file(th_lib("fake-good"), lib);
    good_manifest(dir, lib);
    ck_assert_str_eq(load_beside_good(dir, "fake-good"), "");
    copy_file(th_lib("fake-ctor-crash"), lib);
    ck_assert_str_eq(load_beside_good(dir, "fake-good"), "library crashed while loading (SIGSEGV)");
    copy_file(th_lib("fake-good"), lib);
    ck_assert_str_eq(load_beside_good(dir, "fake-good"), "");
    /* The cache keeps the current verdict only. */
    json_t *root = read_cache();
    ck_assert(json_is_true(json_object_get(cache_entry(root, lib), "safe")));
    json_decref(root);
}
END_TEST

/* Whatever the cache file holds, it is never trusted unless whole and valid, and
 * it is valid again once a registry has written it. */
static void damaged_cache(const char *dir, const char *text, size_t len)
{
    FILE *f = fopen(cache_file, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_str_eq(load_beside_good(dir, "fake-broken"), "library crashed while loading (SIGSEGV)");
    json_t *root = read_cache();
    ck_assert(json_is_false(json_object_get(cache_entry(root, th_lib("fake-ctor-crash")), "safe")));
    json_decref(root);
}

START_TEST(damaged_cache_is_rebuilt)
{
    fresh_cache();
    char *dir = broken_dir("fake-ctor-crash");
    load_beside_good(dir, "fake-broken");
    FILE *f = fopen(cache_file, "rb");
    ck_assert_ptr_nonnull(f);
    static char whole[1 << 16];
    size_t n = fread(whole, 1, sizeof whole, f);
    fclose(f);
    ck_assert_uint_gt(n, 100);
    /* A verdict of "safe" for the crashing library, in each damaged form below,
     * would crash this test if it were trusted. */
    json_error_t jerr;
    json_t *root = json_loadb(whole, n, 0, &jerr);
    ck_assert_ptr_nonnull(root);
    json_t *e = cache_entry(root, th_lib("fake-ctor-crash"));
    json_object_set_new(e, "safe", json_true());
    json_object_set_new(e, "reason", json_string(""));
    char *trusting = json_dumps(root, JSON_INDENT(1));
    json_t *host = json_incref(json_object_get(root, "host"));
    size_t tlen = strlen(trusting);

    damaged_cache(dir, "", 0);
    damaged_cache(dir, trusting, tlen / 2);                        /* truncated */
    damaged_cache(dir, "{\"version\": 1}", 14);
    json_object_set_new(root, "version", json_integer(2));
    char *text = json_dumps(root, 0);
    damaged_cache(dir, text, strlen(text));                        /* another version */
    free(text);
    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "host", json_string("slmops 0.0.1 abi 1"));
    text = json_dumps(root, 0);
    damaged_cache(dir, text, strlen(text));                        /* another host */
    free(text);
    json_object_set_new(root, "host", host);
    json_object_set_new(e, "stamp", json_integer(7));
    text = json_dumps(root, 0);
    damaged_cache(dir, text, strlen(text));                        /* a field's type */
    free(text);
    json_object_set_new(e, "extra", json_true());
    text = json_dumps(root, 0);
    damaged_cache(dir, text, strlen(text));                        /* an unknown field */
    free(text);
    free(trusting);
    json_decref(root);
    /* Not a regular file: never opened for reading in a way that blocks. */
    ck_assert_int_eq(unlink(cache_file), 0);
    ck_assert_int_eq(mkfifo(cache_file, 0600), 0);
    ck_assert_str_eq(load_beside_good(dir, "fake-broken"), "library crashed while loading (SIGSEGV)");
}
END_TEST

#define WRITERS 6

/* Processes that judge different libraries at once all keep their verdicts,
 * and no temporary file is left behind. */
START_TEST(concurrent_writers_lose_nothing)
{
    fresh_cache();
    char libs[WRITERS][PATH_MAX];
    char *dirs[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        dirs[i] = th_tmpdir();
        snprintf(libs[i], sizeof libs[i], "%s/fake.so", dirs[i]);
        copy_file(th_lib("fake-good"), libs[i]);
        good_manifest(dirs[i], libs[i]);
    }
    pid_t pids[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            slm_registry_options_t o = {.struct_size = sizeof o, .search_path = dirs[i]};
            slm_registry_t *reg = slm_registry_new(&o, NULL);
            int rc = reg ? slm_registry_load(reg, "fake-good", NULL) : -1;
            slm_registry_free(reg);
            _exit(rc == 0 ? 0 : 1);
        }
    }
    for (int i = 0; i < WRITERS; i++) {
        int st = 0;
        ck_assert_int_eq(waitpid(pids[i], &st, 0), pids[i]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %d failed", i);
    }
    json_t *root = read_cache();
    for (int i = 0; i < WRITERS; i++)
        ck_assert(json_is_true(json_object_get(cache_entry(root, libs[i]), "safe")));
    json_decref(root);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", cache_file);
    *strrchr(dir, '/') = '\0';
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q 'tmp'", dir);
    ck_assert_msg(system(cmd) != 0, "a temporary file was left in %s", dir);
}
END_TEST

/* A registry told not to read the environment writes no cache either. */
START_TEST(no_cache_without_environment)
{
    fresh_cache();
    char *dir = broken_dir("fake-ctor-crash");
    slm_registry_options_t o = {.struct_size = sizeof o, .search_path = dir,
                                .ignore_environment = true};
    slm_registry_t *reg = slm_registry_new(&o, NULL);
    ck_assert_ptr_nonnull(reg);
    ck_assert_int_lt(slm_registry_load(reg, "fake-broken", NULL), 0);
    ck_assert_str_eq(th_row(reg, "fake-broken")->reason, "library crashed while loading (SIGSEGV)");
    slm_registry_free(reg);
    struct stat st;
    ck_assert_int_ne(stat(cache_file, &st), 0);
}
END_TEST

/* Item 5: a FIFO (or a folder) named *.json is reported, never opened in a way
 * that waits for a writer. */
START_TEST(manifest_not_a_regular_file)
{
    char *dir = th_tmpdir();
    th_good(dir);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/fifo.json", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    snprintf(path, sizeof path, "%s/folder.json", dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    th_log_capture();
    slm_registry_t *reg = th_open(dir);
    ck_assert_uint_eq(slm_registry_count(reg), 3);
    const slm_plugin_info_t *p = th_row(reg, "fifo");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->state, SLM_PLUGIN_DISABLED);
    ck_assert_str_eq(p->reason, "is a FIFO, not a regular file");
    p = th_row(reg, "folder");
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->reason, "is a directory, not a regular file");
    ck_assert_ptr_nonnull(strstr(th_log_text(), "fifo.json: is a FIFO, not a regular file"));
    ck_assert_int_eq(slm_registry_load(reg, "fake-good", NULL), SLM_OK);
    slm_registry_free(reg);
}
END_TEST

/* Item 5: dlopen would wait forever on a FIFO named as the library. */
START_TEST(library_not_a_regular_file)
{
    fresh_cache();
    char *dir = th_tmpdir();
    char lib[PATH_MAX];
    snprintf(lib, sizeof lib, "%s/fifo.so", dir);
    ck_assert_int_eq(mkfifo(lib, 0600), 0);
    th_good(dir);
    char text[PATH_MAX + 512];
    snprintf(text, sizeof text,
             "{\"file_format_version\": \"1.0.0\", \"name\": \"fake-fifo\", \"kind\": \"backend\","
             " \"version\": \"1.0.0\", \"abi_version\": 1, \"library_path\": \"fifo.so\","
             " \"description\": \"fifo\", \"provides\": {\"backend\": \"other\","
             " \"device_types\": [\"cpu\"], \"ops\": {\"add\": [\"f32\"]}}}");
    th_write(dir, "fifo.json", text);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "library %s is a FIFO, not a regular file", lib);
    ck_assert_str_eq(load_beside_good(dir, "fake-fifo"), want);
    ck_assert_int_eq(unlink(lib), 0);
    ck_assert_int_eq(mkdir(lib, 0700), 0);
    snprintf(want, sizeof want, "library %s is a directory, not a regular file", lib);
    ck_assert_str_eq(load_beside_good(dir, "fake-fifo"), want);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("registry-scan");
    TCase *tc = tcase_create("first-load");
    /* A hang here is the failure these tests look for: fail fast. */
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, crash_in_constructor_disables_that_plugin);
    tcase_add_test(tc, exit_in_constructor_disables_that_plugin);
    tcase_add_test(tc, grandchild_holding_the_pipe_is_killed);
    tcase_add_test(tc, verdicts_are_cached);
    tcase_add_test(tc, hang_verdict_is_judged_again_after_its_time);
    tcase_add_test(tc, replaced_library_is_judged_again);
    tcase_add_test(tc, damaged_cache_is_rebuilt);
    tcase_add_test(tc, concurrent_writers_lose_nothing);
    tcase_add_test(tc, no_cache_without_environment);
    suite_add_tcase(s, tc);
    tc = tcase_create("not-regular-files");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, manifest_not_a_regular_file);
    tcase_add_test(tc, library_not_a_regular_file);
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
