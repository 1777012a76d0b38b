/* The "train" job through the job contract (slmops/job.h), as a pipeline would run
 * it: progress events with the step's figures, a report with the curve and the
 * settings, a cancel from the progress callback that checkpoints the last step and
 * a resumed job that ends where the uninterrupted one does, and options refused by
 * name before any work. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/slmops.h>

static slm_registry_t *reg;
static char dir[] = "/tmp/slmops-train-job-XXXXXX";
static char model_path[1024], data_path[1100];

static void setup(void)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(model_path, sizeof model_path, "%s/gguf/stories260K.gguf", fx ? fx : "");
    if (access(model_path, R_OK) != 0) {
        printf("SKIP: fixture %s not found\n", model_path);
        exit(77);
    }
    reg = slm_registry_new(NULL, NULL);
    snprintf(data_path, sizeof data_path, "%s/d.txt", mkdtemp(dir) ? dir : "");
    FILE *f = fopen(data_path, "w");
    if (!reg || !f) {
        fprintf(stderr, "cannot set up: registry or %s\n", data_path);
        exit(99);
    }
    for (int i = 0; i < 20; i++)
        fprintf(f, "Once upon a time, there was a little cat named Tom number %d. ", i);
    fclose(f);
}

typedef struct seen {
    int events, with_figures, cancel_at;
    uint64_t last_done, total;
    slm_job_t *job;
} seen_t;

static void on_progress(void *user, const slm_job_progress_t *ev)
{
    seen_t *s = user;
    s->events++;
    ck_assert_str_eq(ev->stage, "train");
    ck_assert_uint_ge(ev->done, s->last_done);
    s->last_done = ev->done;
    s->total = ev->total;
    if (ev->figures) {
        json_t *f = json_loads(ev->figures, 0, NULL);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(json_integer_value(json_object_get(f, "step")), (json_int_t)ev->done);
        ck_assert(json_is_number(json_object_get(f, "loss")));
        ck_assert(json_is_number(json_object_get(f, "lr")));
        json_decref(f);
        s->with_figures++;
    }
    if (s->cancel_at && (int)ev->done == s->cancel_at)
        slm_job_cancel(s->job);
}

/* A job writing DIR/out, with method options mopts (NULL: rank 4) and more options. */
static slm_job_t *job_of(const char *out, const char *mopts, const char *more)
{
    char opts[4096];
    snprintf(opts, sizeof opts, "{\"model\": \"%s\", \"data\": \"%s\", \"output\": \"%s/%s\", "
             "\"ctx\": 32, \"steps\": 6, \"lr\": 0.01, \"threads\": 2, \"save_every\": 0, "
             "\"method_options\": %s%s}", model_path, data_path, dir, out,
             mopts ? mopts : "{\"rank\": 4}", more ? more : "");
    slm_job_t *job = NULL;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_job_new(reg, "train", opts, &job, &err) == SLM_OK, "%s", err.message);
    return job;
}

/* The losses of the report's curve. */
static size_t curve(const slm_job_t *job, double *loss, size_t cap)
{
    json_t *r = json_loads(slm_job_report(job), 0, NULL);
    const json_t *c = json_object_get(json_object_get(r, "results"), "curve");
    size_t n = json_array_size(c);
    for (size_t i = 0; i < n && i < cap; i++)
        loss[i] = json_number_value(json_object_get(json_array_get(c, i), "loss"));
    json_decref(r);
    return n;
}

START_TEST(runs_reports_cancels_and_resumes)
{
    slm_error_t err;
    slm_error_init(&err);
    /* Uninterrupted. */
    slm_job_t *a = job_of("a", NULL, NULL);
    seen_t sa = {.job = a};
    slm_job_set_progress(a, on_progress, &sa);
    ck_assert_msg(slm_job_run(a, &err) == SLM_OK, "%s", err.message);
    ck_assert_int_eq(sa.with_figures, 6);
    ck_assert_uint_eq(sa.last_done, 6);
    ck_assert_uint_eq(sa.total, 6);
    double la[8], lb[8];
    ck_assert_uint_eq(curve(a, la, 8), 6);
    json_t *r = json_loads(slm_job_report(a), 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(r, "status")), "ok");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "settings"), "method")),
                     "lora");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "results"), "plugin")),
                     "trainer-lora");
    json_decref(r);
    ck_assert_ptr_nonnull(strstr(slm_job_output(a, 0), "/a"));
    slm_job_free(a);

    /* Cancelled after step 3 from the progress callback: a checkpoint of step 3. */
    slm_job_t *b = job_of("b", NULL, NULL);
    seen_t sb = {.job = b, .cancel_at = 3};
    slm_job_set_progress(b, on_progress, &sb);
    ck_assert_int_eq(slm_job_run(b, &err), SLM_E_CANCELLED);
    ck_assert_msg(strstr(err.message, "interrupted after step 3"), "%s", err.message);
    r = json_loads(slm_job_report(b), 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(r, "status")), "cancelled");
    json_decref(r);
    slm_job_free(b);
    char ck[1200];
    snprintf(ck, sizeof ck, "%s/b.checkpoints/step-00000003/manifest.json", dir);
    ck_assert_msg(access(ck, R_OK) == 0, "no %s", ck);

    /* Resumed: steps 4-6 and the adapter as the uninterrupted run's. */
    char more[1300];
    snprintf(more, sizeof more, ", \"resume\": \"%s/b.checkpoints\"", dir);
    slm_job_t *c = job_of("b", NULL, more);
    ck_assert_msg(slm_job_run(c, &err) == SLM_OK, "%s", err.message);
    ck_assert_uint_eq(curve(c, lb, 8), 6);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(la[i] == lb[i], "step %d: %.9g vs %.9g", i + 1, la[i], lb[i]);
    slm_job_free(c);
}
END_TEST

START_TEST(bad_options_are_refused_by_name)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_job_t *job = NULL;
    ck_assert_int_eq(slm_job_new(reg, "train", "{\"stpes\": 3}", &job, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "'stpes'"), "%s", err.message);
    ck_assert_int_eq(slm_job_new(reg, "train", "{\"method_options\": 3}", &job, &err),
                     SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "method_options"), "%s", err.message);
    job = job_of("x", NULL, ", \"schedule\": \"step\"");
    ck_assert_int_eq(slm_job_run(job, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "schedule 'step'"), "%s", err.message);
    slm_job_free(job);
    job = job_of("x", "{\"rank\": 0}", NULL);
    ck_assert_int_eq(slm_job_run(job, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "rank"), "%s", err.message);
    slm_job_free(job);
    job = job_of("x", "{}", ", \"method\": \"full\", \"warmup\": 6");
    ck_assert_int_eq(slm_job_run(job, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "warmup 6 must be less than steps 6"), "%s", err.message);
    slm_job_free(job);
}
END_TEST

int main(void)
{
    setup();
    Suite *s = suite_create("train job");
    TCase *tc = tcase_create("contract");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, runs_reports_cancels_and_resumes);
    tcase_add_test(tc, bad_options_are_refused_by_name);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    slm_registry_free(reg);
    return failed ? 1 : 0;
}
