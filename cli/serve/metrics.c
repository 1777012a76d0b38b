/* GET /metrics of `slmops serve`: Prometheus text format, version 0.0.4 (requests by
 * status, tokens, time to first token, inter-token latency, queue, slots, KV cache). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/serve/serve.h"

typedef struct text {
    char *p;
    size_t len, cap;
    bool oom;
} text_t;

static void out(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(text_t *t, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !t->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = true;
            return;
        }
        if (t->p && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? 2 * t->cap : 8192) + (size_t)n;
        char *v = realloc(t->p, cap);
        if (!v) {
            t->oom = true;
            return;
        }
        t->p = v;
        t->cap = cap;
    }
}

static void head(text_t *t, const char *name, const char *type, const char *help)
{
    out(t, "# HELP slmops_%s %s\n# TYPE slmops_%s %s\n", name, help, name, type);
}

static void hist(text_t *t, const char *name, const char *help, const srv_hist_t *h)
{
    static const char *const le[SRV_N_BUCKETS] = {"0.005", "0.01", "0.025", "0.05", "0.075",
                                                  "0.1", "0.25", "0.5", "0.75", "1", "2.5",
                                                  "5", "10", "30"};
    head(t, name, "histogram", help);
    for (int i = 0; i < SRV_N_BUCKETS; i++)
        out(t, "slmops_%s_bucket{le=\"%s\"} %llu\n", name, le[i],
            (unsigned long long)h->bucket[i]);
    out(t, "slmops_%s_bucket{le=\"+Inf\"} %llu\nslmops_%s_sum %.6f\nslmops_%s_count %llu\n",
        name, (unsigned long long)h->count, name, h->sum, name, (unsigned long long)h->count);
}

char *srv_metrics_text(srv_t *srv)
{
    text_t t = {0};
    pthread_mutex_lock(&srv->mu);
    const srv_metrics_t *m = &srv->metrics;
    head(&t, "requests_total", "counter", "HTTP requests answered, by status.");
    for (int s = 100; s < 600; s++)
        if (m->by_status[s])
            out(&t, "slmops_requests_total{status=\"%d\"} %llu\n", s,
                (unsigned long long)m->by_status[s]);
    head(&t, "prompt_tokens_total", "counter", "Prompt tokens of the requests accepted.");
    out(&t, "slmops_prompt_tokens_total %llu\n", (unsigned long long)m->prompt_tokens);
    head(&t, "prompt_tokens_cached_total", "counter",
         "Prompt tokens a slot's kept cells held already (not run again).");
    out(&t, "slmops_prompt_tokens_cached_total %llu\n", (unsigned long long)m->cached_tokens);
    head(&t, "generated_tokens_total", "counter", "Tokens generated.");
    out(&t, "slmops_generated_tokens_total %llu\n", (unsigned long long)m->generated_tokens);
    hist(&t, "time_to_first_token_seconds", "From a request queued to its first token.",
         &m->ttft);
    hist(&t, "inter_token_latency_seconds", "Between a choice's successive tokens.", &m->itl);
    head(&t, "queue_depth", "gauge", "Choices waiting for a free slot.");
    out(&t, "slmops_queue_depth %zu\n", srv->n_queued);
    head(&t, "active_slots", "gauge", "Slots generating.");
    out(&t, "slmops_active_slots %zu\n", srv->n_running);
    head(&t, "slots", "gauge", "Slots in all (--parallel).");
    out(&t, "slmops_slots %u\n", srv->n_slots);
    head(&t, "kv_cache_used_cells", "gauge", "KV-cache cells holding a token.");
    out(&t, "slmops_kv_cache_used_cells %u\n", m->kv_used);
    head(&t, "kv_cache_cells", "gauge", "KV-cache cells in all (--ctx).");
    out(&t, "slmops_kv_cache_cells %u\n", m->kv_cells);
    head(&t, "kv_cache_usage_ratio", "gauge", "Used KV-cache cells over all of them.");
    out(&t, "slmops_kv_cache_usage_ratio %.6f\n",
        m->kv_cells ? (double)m->kv_used / m->kv_cells : 0.0);
    pthread_mutex_unlock(&srv->mu);
    if (t.oom) {
        free(t.p);
        return NULL;
    }
    return t.p;
}
