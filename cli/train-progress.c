/* The live progress line of a train job and its summary in text, for `finetune` and
 * `distill`. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <slmops/log.h>

#include "cli/common.h"
#include "cli/train-progress.h"

static double fig(const json_t *f, const char *key)
{
    const json_t *v = json_object_get(f, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void eta_text(double s, char *buf, size_t n)
{
    if (!isfinite(s))
        snprintf(buf, n, "?");
    else if (s >= 3600)
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

/* One line, rewritten in place on a terminal; every step goes to the log at info. */
void slm_cli_train_on_progress(void *user, const slm_job_progress_t *ev)
{
    slm_cli_train_progress_t *p = user;
    json_t *f = ev->figures ? json_loads(ev->figures, 0, NULL) : NULL;
    if (!f) {
        json_decref(f);
        return;
    }
    double vl = fig(f, "val_loss");
    if (!isfinite(vl))
        vl = fig(f, "last_val_loss");
    char eta[32], val[32] = "-";
    eta_text(fig(f, "eta_s"), eta, sizeof eta);
    if (isfinite(vl))
        snprintf(val, sizeof val, "%.4f", vl);
    char line[200];
    snprintf(line, sizeof line, "step %llu/%llu  loss %.4f  val %s  lr %.3g  %.0f tok/s  ETA %s",
             (unsigned long long)ev->done, (unsigned long long)ev->total, ev->value, val,
             fig(f, "lr"), fig(f, "tokens_per_s"), eta);
    json_decref(f);
    if (!p->tty) {
        slm_log(SLM_LOG_INFO, p->verb, "%s", line);
        return;
    }
    fprintf(stderr, "\r%-78s", line);
    p->open = ev->done < ev->total;
    if (!p->open)
        fprintf(stderr, "\n");
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

void slm_cli_train_print(const json_t *r, const char *out, const char *out_gguf)
{
    printf("  steps:      %lld (%lld tokens, %.1f s)\n",
           (long long)json_integer_value(json_object_get(r, "steps")),
           (long long)json_integer_value(json_object_get(r, "tokens")), num(r, "seconds"));
    printf("  trainable:  %lld elements in %zu tensors\n",
           (long long)json_integer_value(json_object_get(r, "trainable_elements")),
           json_array_size(json_object_get(r, "trainable")));
    printf("  loss:       %.4f (last step)\n", num(r, "loss"));
    if (isfinite(num(r, "val_loss")))
        printf("  validation: loss %.4f -> %.4f, perplexity %.3f -> %.3f\n",
               num(r, "val_loss_start"), num(r, "val_loss"), num(r, "val_ppl_start"),
               num(r, "val_ppl"));
    long long skipped = (long long)json_integer_value(json_object_get(r, "skipped_lines"));
    if (skipped)
        printf("  skipped:    %lld bad data lines\n", skipped);
    if (out)
        printf("  output:     %s\n", out);
    if (out_gguf)
        printf("  output:     %s\n", out_gguf);
    const char *ck = json_string_value(json_object_get(r, "checkpoint"));
    if (ck)
        printf("  checkpoint: %s\n", ck);
}


int slm_cli_train_run(slm_job_t *job, slm_cli_train_progress_t *prog, const char *verb)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_cli_signals_cancel_job(job);
    int rc = slm_job_run(job, &err);
    slm_cli_signals_cancel_job(NULL);
    if (prog->open)
        fprintf(stderr, "\n");
    if (rc == SLM_OK)
        return SLM_OK;
    int sig = slm_cli_signals_caught();
    slm_cli_fail(verb, &err);
    return sig && rc == SLM_E_CANCELLED ? 128 + sig : SLM_CLI_FAILED;
}

int slm_cli_train_report(const char *verb, const char *report, bool json,
                         void (*text)(const void *user, const json_t *r, const json_t *settings),
                         const void *user)
{
    json_t *doc = report ? json_loads(report, 0, NULL) : NULL;
    json_t *r = json_object_get(doc, "results");
    int rc = SLM_CLI_OK;
    if (json_integer_value(json_object_get(r, "rank")) > 0 ||
        json_integer_value(json_object_get(json_object_get(r, "train"), "rank")) > 0) {
        json_decref(doc);
        return rc;
    }
    if (!json_is_object(r)) {
        fprintf(stderr, "slmops %s: the job wrote no report (out of memory)\n", verb);
        rc = SLM_CLI_FAILED;
    } else if (json) {
        json_object_set(r, "settings", json_object_get(doc, "settings"));
        rc = slm_cli_print_json(json_incref(r));
    } else {
        text(user, r, json_object_get(doc, "settings"));
    }
    json_decref(doc);
    return rc;
}
