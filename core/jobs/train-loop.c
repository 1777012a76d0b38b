/* The train job's run: load the base and the data, let the method plan, build the
 * graphs, then step (micro-batches accumulated, one update), validate, report,
 * checkpoint, and at the end (or on a cancel) write what the method saves. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slmops/model.h>

#include "internal/util.h"
#include "jobs/train.h"

/* ---- loading ---- */

static int load_data(slm__train_t *t)
{
    const slm__train_opts_t *o = t->o;
    slm_dataset_params_t dp;
    slm_dataset_params_default(&dp);
    dp.tok = t->tok;
    dp.chat = t->chat;
    dp.n_ctx = o->ctx;
    dp.skip_bad_lines = o->skip_bad_lines;
    int rc = slm_dataset_load(o->data, &dp, &t->data, t->err);
    if (rc == SLM_OK && o->val_data) {
        rc = slm_dataset_load(o->val_data, &dp, &t->val_file, t->err);
        t->train_ds = t->data;
        t->val_ds = t->val_file;
    } else if (rc == SLM_OK && o->val_split > 0.0) {
        if (slm_dataset_n_examples(t->data) < 2)
            return slm__fail(t->err, SLM_E_INVALID, o->data, -1, "%s: one example cannot be "
                             "split for validation: give --val-data or more data", o->data);
        rc = slm_dataset_split(t->data, o->val_split, o->seed, &t->train_ds, &t->val_ds, t->err);
    } else if (rc == SLM_OK) {
        t->train_ds = t->data;
    }
    if (rc == SLM_OK && slm_dataset_n_skipped(t->data))
        slm_log(SLM_LOG_WARN, "train", "%s: skipped %zu bad lines (the first: %s)", o->data,
                slm_dataset_n_skipped(t->data), slm_dataset_first_skip(t->data));
    return rc;
}

/* The chat_template option: a built-in template's name, else the template's text. */
static int load_template(slm__train_t *t)
{
    return slm__job_chat_template("train", t->o->chat_template, &t->chat, t->err);
}

static int load(slm__train_t *t)
{
    const slm__train_opts_t *o = t->o;
    slm_model_params_t mp;
    slm_model_params_default(&mp);
    mp.device = o->device;
    mp.n_threads = o->threads;
    int rc = slm_model_load(t->reg, o->model, &mp, &t->model, t->err);
    if (rc == SLM_OK)
        rc = slm_tokenizer_from_model_file(slm_model_container(t->model), &t->tok, t->err);
    if (rc == SLM_OK)
        rc = slm__train_teacher_open(t);
    if (rc == SLM_OK && o->chat_template)
        rc = load_template(t);
    else if (rc == SLM_OK &&
             slm_chat_template_from_model_file(slm_model_container(t->model), &t->chat,
                                               NULL) != SLM_OK)
        t->chat = NULL;   /* {"messages"} lines then say the model has no template */
    return rc == SLM_OK ? load_data(t) : rc;
}

/* Optimizer steps of the run: --steps, or every micro-batch of --epochs passes
 * (packed as the run packs them) in groups of accum. */
static int count_steps(slm__train_t *t)
{
    const slm__train_opts_t *o = t->o;
    if (o->steps > 0) {
        t->total_steps = o->steps;
        return SLM_OK;
    }
    slm_dataset_cursor_t c = {.seed = o->seed, .shuffle = true};
    int64_t micro = 0;
    while (c.epoch < (uint64_t)o->epochs) {
        slm_dataset_batch_t b;
        int rc = slm_dataset_next_batch(t->train_ds, &c, o->batch, true, &b, t->err);
        if (rc)
            return rc;
        micro += b.n_examples > 0;
        slm_dataset_batch_free(&b);
    }
    t->total_steps = (micro + o->accum - 1) / o->accum;
    if (t->total_steps < 1)
        return slm__fail(t->err, SLM_E_INVALID, o->data, -1, "%s: no batch to train on", o->data);
    return SLM_OK;
}

/* ---- one step ---- */

static uint64_t tokens_in(const slm_dataset_batch_t *b)
{
    uint64_t n = 0;
    for (size_t i = 0; i < (size_t)b->n_rows * (size_t)b->n_ctx; i++)
        n += b->doc[i] >= 0;
    return n;
}

/* The next accum micro-batches (fewer when --epochs passes end). */
static int next_batches(slm__train_t *t, slm_dataset_batch_t *bs, int32_t *n)
{
    const slm__train_opts_t *o = t->o;
    bool by_epochs = o->steps <= 0;
    *n = 0;
    while (*n < o->accum && !(by_epochs && t->cursor.epoch >= (uint64_t)o->epochs)) {
        int rc = slm_dataset_next_batch(t->train_ds, &t->cursor, o->batch, by_epochs, &bs[*n],
                                        t->err);
        if (rc)
            return rc;
        if (bs[*n].n_examples == 0)
            slm_dataset_batch_free(&bs[*n]);
        else
            (*n)++;
    }
    return SLM_OK;
}

typedef struct step_result {
    double loss, lr;
    uint64_t tokens;
    double terms[SLM__TRAIN_MAX_TERMS];   /* the method's loss terms, weighted as the loss */
} step_result_t;

/* Dropout draws one number per mask element, the same count for every micro-batch. */
static uint64_t dropout_draws(const slm__train_t *t)
{
    uint64_t n = 0;
    for (size_t i = 0; i < t->tg.n_drop; i++)
        n += (uint64_t)slm_tensor_nelements(t->tg.drop[i]);
    return n;
}

/* The dropout stream as it stands before micro-batch i of a step that started at
 * base: splitmix64 advances by one constant per draw, so a rank that skips the other
 * ranks' micro-batches draws exactly what one process would have. */
static uint64_t dropout_at(uint64_t base, uint64_t draws, int32_t i)
{
    return base + 0x9E3779B97F4A7C15ull * draws * (uint64_t)i;
}

/* Each micro-batch's gradient weighs by its share of the step's scored tokens, so
 * the update sees the mean over every token of the step however it was split. With
 * several ranks, micro-batch i is rank i mod n_ranks's; each rank reads them all (the
 * data order and the weights stay those of one process), and the weighted gradients
 * and losses are summed over the ranks. A rank left without one (the last step of an
 * epoch) runs the first with weight 0, so its accumulators hold zeros. */
static int step_once(slm__train_t *t, step_result_t *r)
{
    const slm__train_opts_t *o = t->o;
    slm_dataset_batch_t *bs = calloc((size_t)o->accum, sizeof *bs);
    if (!bs)
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    int32_t n = 0;
    int rc = next_batches(t, bs, &n);
    if (rc == SLM_OK && n == 0)
        rc = slm__fail(t->err, SLM_E_STATE, NULL, -1, "train: the data ran out at step %lld",
                       (long long)t->step);
    uint64_t scored = 0;
    for (int32_t i = 0; i < n; i++)
        scored += bs[i].n_scored;
    slm_optim_params_t op = {.struct_size = sizeof op};
    slm_optim_get_params(t->tg.optim, &op);
    *r = (step_result_t){.lr = slm_optim_lr_at(&op, t->step)};
    uint64_t base = t->drop_rng, draws = t->n_ranks > 1 ? dropout_draws(t) : 0;
    bool idle = t->rank >= n;
    for (int32_t i = 0; rc == SLM_OK && i < n; i++) {
        r->tokens += tokens_in(&bs[i]);
        bool mine = i % t->n_ranks == t->rank;
        if (!mine && !(idle && i == 0))
            continue;
        float w = !mine ? 0.0f
                  : scored ? (float)((double)bs[i].n_scored / (double)scored) : 1.0f / (float)n;
        if (t->n_ranks > 1)
            t->drop_rng = dropout_at(base, draws, i);
        double l = 0.0, terms[SLM__TRAIN_MAX_TERMS];
        rc = slm__train_micro(t, &bs[i], w, &l, terms);
        r->loss += (double)w * l;
        for (size_t k = 0; rc == SLM_OK && k < t->tg.n_terms; k++)
            r->terms[k] += (double)w * terms[k];
    }
    if (t->n_ranks > 1)
        t->drop_rng = dropout_at(base, draws, n);
    if (rc == SLM_OK && t->n_ranks > 1) {
        double sums[1 + SLM__TRAIN_MAX_TERMS];
        sums[0] = r->loss;
        memcpy(sums + 1, r->terms, t->tg.n_terms * sizeof *sums);
        rc = slm__train_dp_grads(t);
        if (rc == SLM_OK)
            rc = slm__train_dp_sum(t, sums, 1 + t->tg.n_terms);
        r->loss = sums[0];
        memcpy(r->terms, sums + 1, t->tg.n_terms * sizeof *sums);
    }
    if (rc == SLM_OK)
        rc = slm_optim_apply(t->tg.optim, slm_model_sched(t->model), t->err);
    for (int32_t i = 0; i < n; i++)
        slm_dataset_batch_free(&bs[i]);
    free(bs);
    return rc;
}

/* ---- reporting ---- */

static int validate(slm__train_t *t, json_t *point)
{
    if (!t->val_ds)
        return SLM_OK;
    double loss;
    uint64_t scored;
    int rc = slm__train_validate(t, &loss, &scored);
    if (rc)
        return rc;
    t->val_loss = loss;
    if (t->step == 0)
        t->val_loss0 = loss;
    json_array_append_new(t->evals, json_pack("{s:I, s:o, s:o}", "step", (json_int_t)t->step,
                                              "val_loss", slm__json_num(loss), "val_ppl",
                                              slm__json_num(exp(loss))));
    if (point) {
        json_object_set_new(point, "val_loss", slm__json_num(loss));
        json_object_set_new(point, "val_ppl", slm__json_num(exp(loss)));
    }
    return SLM_OK;
}

static double train_seconds(const slm__train_t *t)
{
    return slm__job_now() - t->t0;
}

static void report_step(slm__train_t *t, json_t *point, uint64_t tokens_run)
{
    if (t->rank != 0)
        return;
    double secs = train_seconds(t);
    int64_t done = t->step - t->start_step;
    double eta = done > 0 ? secs / (double)done * (double)(t->total_steps - t->step) : NAN;
    json_t *fig = json_deep_copy(point);
    json_object_set_new(fig, "total_steps", json_integer((json_int_t)t->total_steps));
    json_object_set_new(fig, "tokens_per_s", slm__json_num(secs > 0 ? tokens_run / secs : NAN));
    json_object_set_new(fig, "eta_s", slm__json_num(eta));
    if (!json_object_get(fig, "val_loss"))
        json_object_set_new(fig, "last_val_loss", slm__json_num(t->val_loss));
    char *text = fig ? json_dumps(fig, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    slm__jobrt_progress_figures(t->rt, "train", (uint64_t)t->step, (uint64_t)t->total_steps, "",
                                t->last_loss, text);
    free(text);
    json_decref(fig);
    if (t->log) {
        char *line = json_dumps(point, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (line) {
            fprintf(t->log, "%s\n", line);
            fflush(t->log);
        }
        free(line);
    }
}

/* "seconds" is the step's own time (forward, backward, update), "elapsed" the run's
 * training time so far (runs before a resume included). */
static json_t *point_of(const slm__train_t *t, const step_result_t *r, double step_seconds)
{
    double gn = slm_optim_grad_norm(t->tg.optim);
    json_t *p = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "step", (json_int_t)t->step,
                          "loss", slm__json_num(r->loss), "lr", slm__json_num(r->lr),
                          "grad_norm", gn >= 0 ? slm__json_num(gn) : json_null(), "tokens",
                          slm__json_u64(t->tokens), "seconds", slm__json_num(step_seconds),
                          "elapsed", slm__json_num(t->seconds_before + train_seconds(t)));
    if (p && t->tg.n_terms) {
        json_t *terms = json_object();
        for (size_t k = 0; k < t->tg.n_terms; k++)
            json_object_set_new(terms, t->tg.terms[k].name, slm__json_num(r->terms[k]));
        json_object_set_new(p, "terms", terms);
    }
    return p;
}

/* A resumed run's log keeps the records up to the checkpoint's step (a run killed
 * after its last checkpoint wrote later ones, which the resumed run writes again),
 * so each step has one record. Rewritten beside it and renamed into place. */
static int trim_log(slm__train_t *t)
{
    const char *path = t->o->log;
    FILE *in = fopen(path, "r");
    if (!in)
        return SLM_OK;   /* none yet: the resumed run starts it */
    char *tmp = malloc(strlen(path) + sizeof ".trim");
    FILE *out = tmp ? fopen(strcat(strcpy(tmp, path), ".trim"), "w") : NULL;
    char *line = NULL;
    size_t cap = 0;
    bool ok = out != NULL;
    while (ok && getline(&line, &cap, in) > 0) {
        json_t *rec = json_loads(line, 0, NULL);
        json_int_t step = json_integer_value(json_object_get(rec, "step"));
        json_decref(rec);
        if (step >= 1 && step <= t->step)
            ok = fputs(line, out) >= 0;
    }
    free(line);
    fclose(in);
    if (out && fclose(out) != 0)
        ok = false;
    int rc = ok && rename(tmp, path) == 0 ? SLM_OK
             : slm__fail(t->err, SLM_E_IO, path, -1, "%s: cannot rewrite the log: %m", path);
    if (rc != SLM_OK && tmp)
        unlink(tmp);
    free(tmp);
    return rc;
}

static int open_log(slm__train_t *t)
{
    if (!t->o->log)
        return SLM_OK;
    int rc = t->resumed_from ? trim_log(t) : SLM_OK;
    if (rc)
        return rc;
    t->log = fopen(t->o->log, t->resumed_from ? "a" : "w");
    if (!t->log)
        return slm__fail(t->err, SLM_E_IO, t->o->log, -1, "%s: cannot write the log: %m",
                         t->o->log);
    return SLM_OK;
}

/* ---- the run ---- */

static int interrupted(slm__train_t *t)
{
    if (t->step > t->start_step) {
        int rc = slm__train_checkpoint_save(t);
        if (rc == SLM_OK)
            rc = slm__train_dp_wait_writes(t);
        if (rc)
            return rc;
        if (t->last_checkpoint)
            slm__jobrt_wrote(t->rt, t->last_checkpoint);
    }
    if (!t->last_checkpoint && !t->resumed_from)
        return slm__jobrt_fail_cancelled(t->err, "train");
    return slm__fail(t->err, SLM_E_CANCELLED, NULL, -1, "train: interrupted after step %lld; "
                     "checkpoint %s (continue with the same options and --resume %s)",
                     (long long)t->step, t->last_checkpoint ? t->last_checkpoint
                                                            : t->resumed_from,
                     slm__train_checkpoint_root(t));
}

static int train_loop(slm__train_t *t)
{
    const slm__train_opts_t *o = t->o;
    uint64_t tokens_run = 0;
    while (t->step < t->total_steps) {
        bool stop;
        int crc = slm__train_dp_any(t, slm__jobrt_cancelled(t->rt), &stop);
        if (crc)
            return crc;
        if (stop)
            return interrupted(t);
        step_result_t r = {0};
        double t_step = slm__job_now();
        int rc = step_once(t, &r);
        double step_seconds = slm__job_now() - t_step;
        if (rc)
            return rc;
        t->step++;
        t->tokens += r.tokens;
        tokens_run += r.tokens;
        t->last_loss = r.loss;
        json_t *point = point_of(t, &r, step_seconds);
        bool eval = (o->eval_every > 0 && t->step % o->eval_every == 0) ||
                    t->step == t->total_steps;
        if (eval && (rc = validate(t, point)) != SLM_OK) {
            json_decref(point);
            return rc;
        }
        json_array_append(t->curve, point);
        report_step(t, point, tokens_run);
        json_decref(point);
        bool save = o->save_every > 0 &&
                    (t->step % o->save_every == 0 || t->step == t->total_steps);
        if (save && ((rc = slm__train_checkpoint_save(t)) != SLM_OK ||
                     (rc = slm__train_dp_wait_writes(t)) != SLM_OK))
            return rc;
    }
    return SLM_OK;
}

static int run(slm__train_t *t)
{
    const slm__train_opts_t *o = t->o;
    t->curve = json_array();
    t->evals = json_array();
    t->val_loss0 = t->val_loss = t->last_loss = NAN;
    t->cursor = (slm_dataset_cursor_t){.seed = o->seed, .shuffle = true};
    t->drop_rng = slm__train_rng_stream(o->seed, "dropout");
    if (!t->curve || !t->evals)
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    int rc;
    if ((rc = load(t)) || (rc = count_steps(t)) || (rc = slm__train_plan(t)) ||
        (rc = slm__train_place(t)) || (rc = slm__train_graphs(t)))
        return rc;
    if (o->resume && (rc = slm__train_checkpoint_load(t, o->resume)))
        return rc;
    if ((rc = slm__train_dp_check(t)))
        return rc;
    if (o->dump_grads)
        return slm__train_dump_grads(t);
    if (t->rank == 0 && (rc = open_log(t)))
        return rc;
    if (slm__jobrt_cancelled(t->rt))
        return slm__jobrt_fail_cancelled(t->err, "train");
    t->t0 = slm__job_now();
    if (!o->resume && (rc = validate(t, NULL)))
        return rc;
    if (t->rank == 0)
        slm__jobrt_progress_figures(t->rt, "train", (uint64_t)t->step,
                                    (uint64_t)t->total_steps, "", NAN, NULL);
    if ((rc = train_loop(t)))
        return rc;
    /* Rank 0 alone writes: the teacher's logits cache (the entries it computed; the
     * others' are recomputed by a later run), then the outputs. */
    if (t->rank == 0 && (rc = slm__train_teacher_save(t)) == SLM_OK)
        rc = slm__train_save(t);
    return rc == SLM_OK ? slm__train_dp_wait_writes(t) : rc;
}

/* The run between joining the launched job and leaving it: a failed run leaves
 * without waiting for the other ranks (one may be gone). */
int slm__train_run(slm__train_t *t)
{
    int rc = slm__train_dp_open(t);
    if (rc == SLM_OK)
        rc = run(t);
    t->comm_stats.struct_size = sizeof t->comm_stats;
    slm_comm_get_stats(t->comm, &t->comm_stats);
    t->comm_name = slm_comm_name(t->comm);
    slm__train_dp_close(t, rc != SLM_OK);
    return rc;
}

void slm__train_free(slm__train_t *t)
{
    slm__train_graphs_free(t);
    slm__train_teacher_free(t);
    slm__train_plan_free(t);
    if (t->train_ds != t->data)
        slm_dataset_free(t->train_ds);
    if (t->val_ds != t->val_file)
        slm_dataset_free(t->val_ds);
    slm_dataset_free(t->val_file);
    slm_dataset_free(t->data);
    slm_chat_template_free(t->chat);
    slm_tokenizer_free(t->tok);
    slm_model_free(t->model);
    json_decref(t->curve);
    json_decref(t->evals);
    free(t->resumed_from);
    free(t->last_checkpoint);
    if (t->log)
        fclose(t->log);
    memset(t, 0, sizeof *t);
}
