/* The engine thread of `slmops serve`: the one owner of the model's generator. It
 * gives queued requests free slots, steps all of them together, and hands out text. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/serve/serve.h"

/* Called from inside a step, on the engine thread. */
static void on_text(void *user, const char *t, size_t n)
{
    srv_req_t *r = user;
    pthread_mutex_lock(&r->srv->mu);
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 1024;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *v = realloc(r->text, cap);
        if (!v) {
            r->why = SLM_SEQ_ERROR;   /* kept by finish */
            pthread_mutex_unlock(&r->srv->mu);
            slm_seq_cancel(r->seq);
            return;
        }
        r->text = v;
        r->cap = cap;
    }
    memcpy(r->text + r->len, t, n);
    r->len += n;
    r->text[r->len] = '\0';
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->srv->mu);
}

/* Under the lock: r is over; its client is told and the engine lets go of it. */
static void finish(srv_req_t *r, slm_seq_stop_t why)
{
    if (r->why != SLM_SEQ_ERROR)
        r->why = why;
    r->done = true;
    pthread_cond_broadcast(&r->cv);
    srv_req_unref(r);
}

static int start(srv_t *srv, srv_req_t *r)
{
    slm_error_t err;
    slm_error_init(&err);
    if (slm_seq_new(srv->s->gen, &r->seq, &err) != SLM_OK)
        return err.code;
    slm_seq_params_t sp;
    slm_seq_params_default(&sp);
    sp.sampling = &r->sampling;
    sp.stop = (const char *const *)r->stop;
    sp.n_stop = r->n_stop;
    sp.max_tokens = r->max_tokens;
    sp.flags = r->kind == SRV_COMPLETION ? SLM_SEQ_CONTINUES : 0;
    sp.on_text = on_text;
    sp.user = r;
    if (slm_seq_start(r->seq, &sp, r->prompt, r->n_prompt, &err) == SLM_OK)
        return SLM_OK;
    fprintf(stderr, "slmops serve: request %s: %s\n", r->id, err.message);
    slm_seq_free(r->seq);
    r->seq = NULL;
    return err.code;
}

/* Under the lock: queued requests into free slots (clients gone are dropped). */
static void admit(srv_t *srv)
{
    while (srv->queue && slm_generator_n_free_slots(srv->s->gen) > 0) {
        srv_req_t *r = srv->queue;
        srv->queue = r->next;
        if (!srv->queue)
            srv->queue_tail = NULL;
        srv->n_queued--;
        r->next = NULL;
        if (r->gone) {
            finish(r, SLM_SEQ_CANCELLED);
            continue;
        }
        if (start(srv, r) != SLM_OK) {
            finish(r, SLM_SEQ_ERROR);
            continue;
        }
        r->next = srv->running;
        srv->running = r;
        srv->n_running++;
    }
    for (srv_req_t *r = srv->running; r; r = r->next)
        if (r->gone)
            slm_seq_cancel(r->seq);
}

/* Under the lock, after a step: when each request's tokens came. */
static void observe(srv_t *srv, double now)
{
    for (srv_req_t *r = srv->running; r; r = r->next) {
        size_t n = 0;
        slm_seq_tokens(r->seq, &n);
        if (n == r->n_seen)
            continue;
        if (!r->t_first)
            r->t_first = now;
        r->t_last = now;
        r->n_seen = n;
    }
}

/* Under the lock: the requests whose sequence has ended. */
static void reap(srv_t *srv, bool all)
{
    for (srv_req_t **p = &srv->running; *p;) {
        srv_req_t *r = *p;
        if (!all && slm_seq_state(r->seq) != SLM_SEQ_IDLE) {
            p = &r->next;
            continue;
        }
        *p = r->next;
        srv->n_running--;
        slm_seq_stop_t why = all && slm_seq_state(r->seq) != SLM_SEQ_IDLE
                                 ? SLM_SEQ_CANCELLED : slm_seq_stop_reason(r->seq);
        r->n_gen = 0;
        slm_seq_tokens(r->seq, &r->n_gen);
        slm_seq_free(r->seq);
        r->seq = NULL;
        if (r->gone)
            fprintf(stderr, "slmops serve: %s: the client left after %zu tokens; its slot "
                    "is free\n", r->id, r->n_gen);
        finish(r, why);
    }
}

static void drain_queue(srv_t *srv)
{
    while (srv->queue) {
        srv_req_t *r = srv->queue;
        srv->queue = r->next;
        finish(r, SLM_SEQ_CANCELLED);
    }
    srv->queue_tail = NULL;
    srv->n_queued = 0;
}

static void *engine(void *arg)
{
    srv_t *srv = arg;
    slm_error_t err;
    pthread_mutex_lock(&srv->mu);
    while (!srv->stopping) {
        admit(srv);
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
    }
    reap(srv, true);
    drain_queue(srv);
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
    srv_submit_t got = srv->stopping || srv->draining ? SRV_DRAINING
                       : srv->n_queued >= srv->limits.max_queue ? SRV_QUEUE_FULL
                                                                : SRV_SUBMITTED;
    if (got == SRV_SUBMITTED) {
        r->t_queued = srv_now_ms();
        srv->n_inflight++;
        r->srv = srv;
        r->refs++;
        r->next = NULL;
        if (srv->queue_tail)
            srv->queue_tail->next = r;
        else
            srv->queue = r;
        srv->queue_tail = r;
        srv->n_queued++;
        pthread_cond_signal(&srv->wake);
    }
    pthread_mutex_unlock(&srv->mu);
    return got;
}
