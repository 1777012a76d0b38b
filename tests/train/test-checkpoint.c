/* Training checkpoints (issue 8, section 3): written atomically with a manifest of
 * SHA-256 sums; every corruption (a flipped byte in any file, a truncated or missing
 * file, a damaged or missing manifest) refused naming the file; the newest intact one
 * found past a damaged newer one; a writer killed mid-write leaves the previous
 * checkpoint loadable and its leftovers are removed by the next writer; --keep N. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slmops/slmops.h>

static char root[256];

static void fresh_root(void)
{
    strcpy(root, "/tmp/slmops-ckpt-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void remove_root(void)
{
    char rm[300];
    snprintf(rm, sizeof rm, "rm -rf '%s'", root);
    if (root[0] && system(rm) != 0)
        fprintf(stderr, "note: could not remove %s\n", root);
}

static char *write_ckpt(uint64_t step, uint32_t keep, const char *weights)
{
    slm_checkpoint_writer_t *w;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_checkpoint_begin(root, step, &w, &err), SLM_OK);
    ck_assert_int_eq(slm_checkpoint_put(w, "weights.bin", weights, strlen(weights), &err), SLM_OK);
    ck_assert_int_eq(slm_checkpoint_put(w, "optimizer.bin", "moments", 7, &err), SLM_OK);
    ck_assert_int_eq(slm_checkpoint_put(w, "state.json", "{\"step\": 1}", 11, &err), SLM_OK);
    char *path = NULL;
    ck_assert_int_eq(slm_checkpoint_commit(w, keep, &path, &err), SLM_OK);
    ck_assert_ptr_nonnull(path);
    return path;
}

static size_t entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

START_TEST(written_verified_and_read_back)
{
    fresh_root();
    char *path = write_ckpt(12, 0, "W1");
    uint64_t step = 0;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_checkpoint_verify(path, &step, &err), SLM_OK);
    ck_assert_uint_eq(step, 12);
    char *data;
    size_t n;
    ck_assert_int_eq(slm_checkpoint_read(path, "weights.bin", &data, &n, &err), SLM_OK);
    ck_assert_str_eq(data, "W1");
    free(data);
    char *found;
    ck_assert_int_eq(slm_checkpoint_find(root, &found, &err), SLM_OK);
    ck_assert_str_eq(found, path);
    free(found);
    ck_assert_uint_eq(entries(root), 1);   /* no temporary left */
    free(path);
}
END_TEST

START_TEST(manifest_holds_standard_sha256_sums)
{
    fresh_root();
    slm_checkpoint_writer_t *w;
    ck_assert_int_eq(slm_checkpoint_begin(root, 1, &w, NULL), SLM_OK);
    ck_assert_int_eq(slm_checkpoint_put(w, "abc", "abc", 3, NULL), SLM_OK);
    char big[1000];
    memset(big, 'a', sizeof big);
    ck_assert_int_eq(slm_checkpoint_put(w, "a1000", big, sizeof big, NULL), SLM_OK);
    char *path;
    ck_assert_int_eq(slm_checkpoint_commit(w, 0, &path, NULL), SLM_OK);
    char *m;
    size_t n;
    ck_assert_int_eq(slm_checkpoint_read(path, SLM_CHECKPOINT_MANIFEST, &m, &n, NULL), SLM_OK);
    /* FIPS 180-2's "abc", and 1000 times 'a' (sha256sum gives the same). */
    ck_assert_msg(strstr(m, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "%s", m);
    ck_assert_msg(strstr(m, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"), "%s", m);
    free(m);
    free(path);
}
END_TEST

START_TEST(keep_bounds_how_many_stay)
{
    fresh_root();
    for (uint64_t s = 1; s <= 5; s++)
        free(write_ckpt(s * 10, 2, "W"));
    ck_assert_uint_eq(entries(root), 2);
    char *found;
    ck_assert_int_eq(slm_checkpoint_find(root, &found, NULL), SLM_OK);
    ck_assert_msg(strstr(found, "step-00000050"), "%s", found);
    free(found);
    /* The same step written again replaces it. */
    free(write_ckpt(50, 2, "W2"));
    char *data;
    size_t n;
    ck_assert_int_eq(slm_checkpoint_find(root, &found, NULL), SLM_OK);
    ck_assert_int_eq(slm_checkpoint_read(found, "weights.bin", &data, &n, NULL), SLM_OK);
    ck_assert_str_eq(data, "W2");
    free(data);
    free(found);
}
END_TEST

static void file_path(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Damage kind k: 0 flip a byte, 1 truncate, 2 remove. */
static void damage(const char *path, int k)
{
    if (k == 2) {
        ck_assert_int_eq(unlink(path), 0);
        return;
    }
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    if (k == 0) {
        int c = fgetc(f);
        fseek(f, 0, SEEK_SET);
        fputc(c ^ 0x01, f);
        fclose(f);
    } else {
        fclose(f);
        ck_assert_int_eq(truncate(path, 1), 0);
    }
}

static const char *files[] = {"weights.bin", "optimizer.bin", "state.json"};

START_TEST(every_corruption_is_refused_naming_the_file)
{
    fresh_root();
    char *path = write_ckpt(7, 0, "WEIGHTS");
    int which = _i / 3, kind = _i % 3;
    char victim[512];
    file_path(victim, sizeof victim, path, files[which]);
    damage(victim, kind);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_checkpoint_verify(path, NULL, &err), SLM_E_FORMAT);
    ck_assert_msg(strstr(err.message, files[which]), "'%s' does not name %s", err.message,
                  files[which]);
    const char *why = kind == 0 ? "SHA-256 differs" : kind == 1 ? "truncated" : "missing";
    ck_assert_msg(strstr(err.message, why), "'%s' lacks '%s'", err.message, why);
    free(path);
}
END_TEST

START_TEST(a_damaged_or_missing_manifest_is_refused)
{
    fresh_root();
    char *path = write_ckpt(3, 0, "W");
    char m[512];
    file_path(m, sizeof m, path, SLM_CHECKPOINT_MANIFEST);
    FILE *f = fopen(m, "wb");
    fputs("{\"files\": ", f);
    fclose(f);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_checkpoint_verify(path, NULL, &err), SLM_E_FORMAT);
    ck_assert_msg(strstr(err.message, "manifest.json: damaged"), "%s", err.message);
    unlink(m);
    ck_assert_int_eq(slm_checkpoint_verify(path, NULL, &err), SLM_E_FORMAT);
    ck_assert_msg(strstr(err.message, "not a complete checkpoint"), "%s", err.message);
    free(path);
}
END_TEST

START_TEST(find_skips_a_damaged_newer_checkpoint)
{
    fresh_root();
    char *older = write_ckpt(1, 0, "OLD"), *newer = write_ckpt(2, 0, "NEW");
    char victim[512];
    file_path(victim, sizeof victim, newer, "weights.bin");
    damage(victim, 0);
    char *found;
    ck_assert_int_eq(slm_checkpoint_find(root, &found, NULL), SLM_OK);
    ck_assert_str_eq(found, older);
    free(found);
    free(older);
    free(newer);
}
END_TEST

START_TEST(a_writer_killed_mid_write_loses_nothing)
{
    fresh_root();
    char *good = write_ckpt(1, 0, "GOOD");
    pid_t pid = fork();
    if (pid == 0) {
        slm_checkpoint_writer_t *w;
        if (slm_checkpoint_begin(root, 2, &w, NULL) != SLM_OK ||
            slm_checkpoint_put(w, "weights.bin", "PARTIAL", 7, NULL) != SLM_OK)
            _exit(3);
        raise(SIGKILL);
        _exit(4);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ck_assert_uint_eq(entries(root), 2);   /* the good one and the dead writer's temporary */
    char *found;
    ck_assert_int_eq(slm_checkpoint_find(root, &found, NULL), SLM_OK);
    ck_assert_str_eq(found, good);
    free(found);
    free(write_ckpt(3, 0, "NEXT"));   /* the next writer removes the leftover */
    ck_assert_uint_eq(entries(root), 2);
    free(good);
}
END_TEST

START_TEST(bad_names_are_refused)
{
    fresh_root();
    slm_checkpoint_writer_t *w;
    ck_assert_int_eq(slm_checkpoint_begin(root, 1, &w, NULL), SLM_OK);
    ck_assert_int_eq(slm_checkpoint_put(w, "../escape", "x", 1, NULL), SLM_E_INVALID);
    ck_assert_int_eq(slm_checkpoint_put(w, SLM_CHECKPOINT_MANIFEST, "x", 1, NULL), SLM_E_INVALID);
    slm_checkpoint_abort(w);
    ck_assert_uint_eq(entries(root), 0);
    char *data;
    size_t n;
    ck_assert_int_eq(slm_checkpoint_read(root, "../x", &data, &n, NULL), SLM_E_INVALID);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_checked_fixture(tc, NULL, remove_root);
    tcase_add_test(tc, written_verified_and_read_back);
    tcase_add_test(tc, manifest_holds_standard_sha256_sums);
    tcase_add_test(tc, keep_bounds_how_many_stay);
    tcase_add_loop_test(tc, every_corruption_is_refused_naming_the_file, 0, 9);
    tcase_add_test(tc, a_damaged_or_missing_manifest_is_refused);
    tcase_add_test(tc, find_skips_a_damaged_newer_checkpoint);
    tcase_add_test(tc, a_writer_killed_mid_write_loses_nothing);
    tcase_add_test(tc, bad_names_are_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
