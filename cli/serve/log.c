/* The access log of `slmops serve`: one JSON line per request (id, status, tokens,
 * timings), never the prompt unless --log-prompts asks. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/common.h"
#include "cli/serve/serve.h"

double srv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static json_t *ms(double from, double to)
{
    return from && to >= from ? json_real((double)(int64_t)((to - from) * 10.0) / 10.0)
                              : json_null();
}

/* The generation fields of a line (the caller holds the server's lock). */
static void add_generation(const srv_t *srv, json_t *line, const srv_req_t *r, double t_end)
{
    size_t n_gen = 0;
    const char *why = srv_req_done(r) ? "" : "unfinished";
    for (size_t i = 0; i < r->n_choices; i++) {
        n_gen += r->choices[i].n_gen;
        if (!*why || !srv_finish_reason(r->choices[i].why))
            why = slm_seq_stop_name(r->choices[i].why);
    }
    json_object_set_new(line, "model", json_string(r->model ? r->model : srv->model_id));
    json_object_set_new(line, "stream", json_boolean(r->stream));
    json_object_set_new(line, "n", json_integer((json_int_t)r->n_choices));
    json_object_set_new(line, "prompt_tokens", json_integer((json_int_t)r->n_prompt));
    json_object_set_new(line, "completion_tokens", json_integer((json_int_t)n_gen));
    json_object_set_new(line, "finish", json_string(why));
    json_object_set_new(line, "queue_ms", ms(r->t_queued, r->t_first ? r->t_first : t_end));
    json_object_set_new(line, "ttft_ms", ms(r->t_queued, r->t_first));
    if (srv->log_prompts && r->prompt_text)
        json_object_set_new(line, "prompt", slm_cli_json_text(r->prompt_text,
                                                              strlen(r->prompt_text)));
}

void srv_log_request(srv_t *srv, const srv_record_t *rec, double t_end)
{
    if (!srv->access_log)
        return;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    json_t *line = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:o}", "time", when, "id",
                             rec->id, "remote", rec->remote, "method", rec->method, "path",
                             rec->path, "status", (int)rec->status, "total_ms",
                             ms(rec->t_start, t_end));
    if (!line)
        return;
    if (rec->req)
        add_generation(srv, line, rec->req, t_end);
    char *text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(line);
    if (text) {
        fprintf(srv->access_log, "%s\n", text);
        fflush(srv->access_log);
    }
    free(text);
}
