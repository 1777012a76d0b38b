/* The engine thread of `slmops serve`: the one owner of the model's generator. It
 * gives queued choices free slots, steps all of them together, and hands out text. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/serve/serve.h"

/* Called from inside a step, on the engine thread. */
static void on_text(void *user, const char *t, size_t n)
{
    srv_choice_t *c = user;
    srv_t *srv = c->req->srv;
    pthread_mutex_lock(&srv->mu);
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1024;
        while (cap < c->len + n + 1)
            cap *= 2;
        char *v = realloc(c->text, cap);
        if (!v) {
            c->why = SLM_SEQ_ERROR;   /* kept by finish */
            pthread_mutex_unlock(&srv->mu);
            slm_seq_cancel(c->seq);
            return;
        }
        c->text = v;
        c->cap = cap;
    }
    memcpy(c->text + c->len, t, n);
    c->len += n;
    c->text[c->len] = '\0';
    pthread_cond_broadcast(&c->req->cv);
    pthread_mutex_unlock(&srv->mu);
}

/* Under the lock: c is over; its client is told and the engine lets go of it. */
static void finish(srv_choice_t *c, slm_seq_stop_t why)
{
    srv_req_t *r = c->req;
    if (c->why != SLM_SEQ_ERROR)
        c->why = why;
    c->done = true;
    r->n_done++;
    pthread_cond_broadcast(&r->cv);
    srv_req_unref(r);
}

static int start(srv_t *srv, srv_choice_t *c)
{
    srv_req_t *r = c->req;
    slm_error_t err;
    slm_error_init(&err);
    slm_sampler_params_t sampling = r->sampling;
    sampling.seed += c->index;   /* n choices: n random streams */
    slm_seq_params_t sp;
    slm_seq_params_default(&sp);
    sp.sampling = &sampling;
    sp.stop = (const char *const *)r->stop;
    sp.n_stop = r->n_stop;
    sp.max_tokens = r->max_tokens;
    sp.flags = r->kind == SRV_COMPLETION ? SLM_SEQ_CONTINUES : 0;
    sp.on_text = on_text;
    sp.user = c;
    sp.n_logprobs = r->top_logprobs;
    sp.json = r->json;
    static const int32_t none = -1;
    sp.adapters = r->adapter >= 0 ? &r->adapter : &none;   /* exactly its one, or none */
    sp.n_adapters = r->adapter >= 0;
    /* The slot whose kept cells start as this prompt does: only the rest runs. */
    size_t kept = 0;
    if (slm_seq_new_for(srv->s->gen, &sp, r->prompt, r->n_prompt, &c->seq, &kept, &err) != SLM_OK)
        return err.code;
    c->n_cached = kept;
    srv->metrics.cached_tokens += kept;
    if (slm_seq_start(c->seq, &sp, r->prompt + kept, r->n_prompt - kept, &err) == SLM_OK)
        return SLM_OK;
    fprintf(stderr, "slmops serve: request %s: %s\n", r->id, err.message);
    slm_seq_free(c->seq);
    c->seq = NULL;
    return err.code;
}

/* Under the lock: queued choices into free slots (clients gone are dropped). */
static void admit(srv_t *srv)
{
    while (srv->queue && slm_generator_n_free_slots(srv->s->gen) > 0) {
        srv_choice_t *c = srv->queue;
        srv->queue = c->next;
        if (!srv->queue)
            srv->queue_tail = NULL;
        srv->n_queued--;
        c->next = NULL;
        if (c->req->gone) {
            finish(c, SLM_SEQ_CANCELLED);
            continue;
        }
        if (start(srv, c) != SLM_OK) {
            finish(c, SLM_SEQ_ERROR);
            continue;
        }
        c->next = srv->running;
        srv->running = c;
        srv->n_running++;
    }
    for (srv_choice_t *c = srv->running; c; c = c->next)
        if (c->req->gone)
            slm_seq_cancel(c->seq);
}

static void observe_hist(srv_hist_t *h, double seconds)
{
    static const double le[SRV_N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                             0.5, 0.75, 1, 2.5, 5, 10, 30};
    h->count++;
    h->sum += seconds;
    for (int i = 0; i < SRV_N_BUCKETS; i++)
        if (seconds <= le[i])
            h->bucket[i]++;
}

/* Under the lock: token i's log-probabilities into c. */
static void copy_logprobs(srv_choice_t *c, size_t i)
{
    size_t w = (size_t)c->req->top_logprobs + 1;
    if (c->n_lp == c->cap_lp) {
        size_t cap = c->cap_lp ? 2 * c->cap_lp : 64;
        srv_lp_t *v = realloc(c->lp, cap * w * sizeof *v);
        if (!v)
            return;
        c->lp = v;
        c->cap_lp = cap;
    }
    slm_token_logprob_t chosen;
    const slm_token_logprob_t *top;
    size_t k;
    if (slm_seq_logprob(c->seq, i, &chosen, &top, &k) != SLM_OK)
        return;
    srv_lp_t *row = c->lp + c->n_lp * w;
    row[0] = chosen;
    memcpy(row + 1, top, (w - 1) * sizeof *row);
    c->n_lp++;
}

/* Under the lock, after a step: when each choice's tokens came, and their
 * log-probabilities. */
static void observe(srv_t *srv, double now)
{
    srv_metrics_t *m = &srv->metrics;
    for (srv_choice_t *c = srv->running; c; c = c->next) {
        size_t n = 0;
        slm_seq_tokens(c->seq, &n);
        if (n == c->n_seen)
            continue;
        srv_req_t *r = c->req;
        if (!c->t_first) {
            c->t_first = now;
            if (!r->t_first) {
                r->t_first = now;
                observe_hist(&m->ttft, (now - r->t_queued) / 1e3);
            }
        } else {
            observe_hist(&m->itl, (now - c->t_last) / 1e3 / (double)(n - c->n_seen));
        }
        if (r->top_logprobs >= 0)
            for (size_t i = c->n_seen; i < n; i++)
                copy_logprobs(c, i);
        m->generated_tokens += n - c->n_seen;
        c->t_last = now;
        c->n_seen = n;
        pthread_cond_broadcast(&r->cv);
    }
}

/* Under the lock: the choices whose sequence has ended. */
static void reap(srv_t *srv, bool all)
{
    for (srv_choice_t **p = &srv->running; *p;) {
        srv_choice_t *c = *p;
        if (!all && slm_seq_state(c->seq) != SLM_SEQ_IDLE) {
            p = &c->next;
            continue;
        }
        *p = c->next;
        srv->n_running--;
        slm_seq_stop_t why = all && slm_seq_state(c->seq) != SLM_SEQ_IDLE
                                 ? SLM_SEQ_CANCELLED : slm_seq_stop_reason(c->seq);
        c->n_gen = 0;
        slm_seq_tokens(c->seq, &c->n_gen);
        slm_seq_free(c->seq);
        c->seq = NULL;
        if (c->req->gone)
            fprintf(stderr, "slmops serve: %s: the client left after %zu tokens; its slot "
                    "is free\n", c->req->id, c->n_gen);
        finish(c, why);
    }
}

static void drain_queue(srv_t *srv)
{
    while (srv->queue) {
        srv_choice_t *c = srv->queue;
        srv->queue = c->next;
        finish(c, SLM_SEQ_CANCELLED);
    }
    srv->queue_tail = NULL;
    srv->n_queued = 0;
}

static void *engine(void *arg)
{
    srv_t *srv = arg;
    slm_error_t err;
    pthread_mutex_lock(&srv->mu);
    srv->metrics.kv_cells = slm_generator_n_ctx(srv->s->gen);
    while (!srv->stopping) {
        admit(srv);
        if (srv_engine_embed_pending(srv)) {
            srv_engine_embed(srv);   /* unlocks while it runs */
            continue;
        }
        if (!srv->running) {
            pthread_cond_wait(&srv->wake, &srv->mu);
            continue;
        }
        pthread_mutex_unlock(&srv->mu);
        slm_error_init(&err);
        if (slm_generator_step(srv->s->gen, &err) < 0)
            fprintf(stderr, "slmops serve: a decode step failed: %s\n", err.message);
        pthread_mutex_lock(&srv->mu);
        observe(srv, srv_now_ms());
        reap(srv, false);
        srv->metrics.kv_used = slm_generator_kv_used(srv->s->gen);
    }
    reap(srv, true);
    drain_queue(srv);
    srv_engine_embed_cancel(srv);
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

int srv_engine_start(srv_t *srv)
{
    return pthread_create(&srv->thread, NULL, engine, srv) == 0 ? 0 : -1;
}

void srv_engine_stop(srv_t *srv)
{
    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    pthread_cond_signal(&srv->wake);
    pthread_mutex_unlock(&srv->mu);
    pthread_join(srv->thread, NULL);
}

srv_submit_t srv_engine_submit(srv_t *srv, srv_req_t *r)
{
    pthread_mutex_lock(&srv->mu);
    /* A request of more choices than the queue holds waits alone. */
    bool full = srv->n_queued > 0 && srv->n_queued + r->n_choices > srv->limits.max_queue;
    srv_submit_t got = srv->stopping || srv->draining ? SRV_DRAINING
                       : full                         ? SRV_QUEUE_FULL
                                                      : SRV_SUBMITTED;
    if (got == SRV_SUBMITTED) {
        r->t_queued = srv_now_ms();
        r->srv = srv;
        srv->n_inflight++;
        srv->metrics.prompt_tokens += r->n_prompt * r->n_choices;
        for (size_t i = 0; i < r->n_choices; i++) {
            srv_choice_t *c = &r->choices[i];
            r->refs++;
            c->next = NULL;
            if (srv->queue_tail)
                srv->queue_tail->next = c;
            else
                srv->queue = c;
            srv->queue_tail = c;
            srv->n_queued++;
        }
        pthread_cond_signal(&srv->wake);
    }
    pthread_mutex_unlock(&srv->mu);
    return got;
}
