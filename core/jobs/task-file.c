/* The task file of `eval --task`: one JSON object a line, checked line by line so
 * that a bad example is reported with its file and line before any work. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <slmops/input.h>

#include "internal/util.h"
#include "jobs/task.h"

/* Larger task files are refused: the whole file is read at once. */
#define MAX_TASK_BYTES (256ull << 20)

static int bad(const char *path, size_t line, slm_error_t *err, const char *what)
{
    return slm__fail(err, SLM_E_FORMAT, path, -1, "%s:%zu: %s (see TASK FILES in slmops(1))",
                     path, line, what);
}

static bool strings(const json_t *a, size_t min)
{
    if (!json_is_array(a) || json_array_size(a) < min)
        return false;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!json_is_string(json_array_get(a, i)))
            return false;
    return true;
}

static bool messages_ok(const json_t *a)
{
    if (!json_is_array(a) || json_array_size(a) == 0)
        return false;
    for (size_t i = 0; i < json_array_size(a); i++) {
        const json_t *m = json_array_get(a, i);
        if (!json_is_string(json_object_get(m, "role")) ||
            !json_is_string(json_object_get(m, "content")))
            return false;
    }
    return true;
}

static int example(const char *path, size_t line, json_t *o, int dflt, slm__task_ex_t *e,
                   slm_error_t *err)
{
    static const char *const known[] = {"prompt", "messages", "answer", "choices",
                                        "answer_index", "match", "stop", "id", NULL};
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        size_t k = 0;
        while (known[k] && strcmp(known[k], key) != 0)
            k++;
        if (!known[k]) {
            char msg[160];
            snprintf(msg, sizeof msg, "unknown key '%.60s'", key);
            return bad(path, line, err, msg);
        }
    }
    *e = (slm__task_ex_t){.line = line, .id = json_object_get(o, "id")};
    const json_t *p = json_object_get(o, "prompt"), *msgs = json_object_get(o, "messages");
    if (!!p == !!msgs)
        return bad(path, line, err, "give either \"prompt\" or \"messages\"");
    if (p && !json_is_string(p))
        return bad(path, line, err, "\"prompt\" must be a string");
    if (msgs && !messages_ok(msgs))
        return bad(path, line, err, "\"messages\" must be an array of {\"role\", \"content\"} "
                   "strings");
    e->prompt = json_string_value(p);
    e->messages = msgs;
    const json_t *ans = json_object_get(o, "answer"), *ch = json_object_get(o, "choices"),
                 *idx = json_object_get(o, "answer_index"), *match = json_object_get(o, "match"),
                 *stop = json_object_get(o, "stop");
    if (stop && !strings(stop, 0))
        return bad(path, line, err, "\"stop\" must be an array of strings");
    e->stop = stop;
    if (ch) {
        if (!strings(ch, 2))
            return bad(path, line, err, "\"choices\" must be an array of at least 2 strings");
        if (!json_is_integer(idx) || json_integer_value(idx) < 0 ||
            (size_t)json_integer_value(idx) >= json_array_size(ch))
            return bad(path, line, err, "\"answer_index\" must be the index of one of the "
                       "choices");
        if (ans || match)
            return bad(path, line, err, "a multiple-choice example takes no \"answer\" or "
                       "\"match\"");
        e->kind = SLM__TASK_CHOICE;
        e->choices = ch;
        e->answer_index = (int32_t)json_integer_value(idx);
        return SLM_OK;
    }
    if (idx)
        return bad(path, line, err, "\"answer_index\" needs \"choices\"");
    if (json_is_string(ans)) {
        json_t *a = json_array();
        if (!a || json_array_append(a, (json_t *)ans) || json_object_set_new(o, "answer", a))
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "task: out of memory");
        ans = a;
    }
    if (!strings(ans, 1))
        return bad(path, line, err, "\"answer\" must be a string or an array of strings (or "
                   "give \"choices\" and \"answer_index\")");
    e->answers = ans;
    e->kind = dflt;
    if (match) {
        const char *mv = json_string_value(match);
        if (mv && strcmp(mv, "exact") == 0)
            e->kind = SLM__TASK_EXACT;
        else if (mv && strcmp(mv, "contains") == 0)
            e->kind = SLM__TASK_CONTAINS;
        else
            return bad(path, line, err, "\"match\" must be \"exact\" or \"contains\"");
    }
    return SLM_OK;
}

static int parse(const char *path, char *text, size_t len, int dflt, slm__task_t *t,
                 slm_error_t *err)
{
    size_t line = 0;
    for (char *p = text, *end = text + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        line++;
        char *q = p;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < e) {
            json_error_t je;
            json_t *o = json_loadb(p, (size_t)(e - p), JSON_REJECT_DUPLICATES, &je);
            if (!json_is_object(o)) {
                json_decref(o);
                char msg[200];
                snprintf(msg, sizeof msg, "not a JSON object%s%.150s", o ? "" : ": ",
                         o ? "" : je.text);
                return bad(path, line, err, msg);
            }
            json_array_append_new(t->lines, o);
            slm__task_ex_t *x = realloc(t->ex, (t->n + 1) * sizeof *x);
            if (!x)
                return slm__fail(err, SLM_E_NOMEM, NULL, -1, "task: out of memory");
            t->ex = x;
            int rc = example(path, line, o, dflt, &t->ex[t->n], err);
            if (rc)
                return rc;
            t->n++;
        }
        p = e + 1;
    }
    if (t->n == 0)
        return slm__fail(err, SLM_E_FORMAT, path, -1, "%s: the task file holds no example",
                         path);
    return SLM_OK;
}

int slm__task_load(const char *path, int default_kind, slm__task_t *t, slm_error_t *err)
{
    *t = (slm__task_t){0};
    char *text = NULL;
    size_t len = 0;
    int rc = slm_input_read_all(path, MAX_TASK_BYTES, &text, &len, err);
    if (rc)
        return rc;
    if (!(t->lines = json_array()))
        rc = slm__fail(err, SLM_E_NOMEM, NULL, -1, "task: out of memory");
    if (rc == SLM_OK)
        rc = parse(path, text, len, default_kind, t, err);
    free(text);
    if (rc)
        slm__task_free(t);
    return rc;
}

void slm__task_free(slm__task_t *t)
{
    json_decref(t->lines);
    free(t->ex);
    *t = (slm__task_t){0};
}
