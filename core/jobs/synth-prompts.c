/* The prompt file of the synth job: plain lines or JSONL, checked line by line so
 * that a bad line is reported with its file and line before the teacher runs. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <slmops/input.h>

#include "internal/util.h"
#include "jobs/synth.h"

#define MAX_PROMPT_BYTES (256ull << 20)

static int add(slm__synth_prompts_t *p, slm__synth_prompt_t pr, slm_error_t *err)
{
    slm__synth_prompt_t *v = realloc(p->v, (p->n + 1) * sizeof *v);
    if (!v)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "synth: out of memory");
    p->v = v;
    p->v[p->n++] = pr;
    return SLM_OK;
}

static const char *opt_string(const json_t *o, const char *key, bool *bad)
{
    const json_t *v = json_object_get(o, key);
    if (v && !json_is_string(v))
        *bad = true;
    return json_string_value(v);
}

static int jsonl_line(slm__synth_prompts_t *p, const char *path, size_t line, const char *s,
                      size_t len, slm_error_t *err)
{
    json_error_t je;
    json_t *o = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return slm__fail(err, SLM_E_FORMAT, path, -1, "%s:%zu: not a JSON object%s%s", path,
                         line, o ? "" : ": ", o ? "" : je.text);
    }
    json_array_append_new(p->lines, o);
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
        if (strcmp(key, "prompt") && strcmp(key, "system") && strcmp(key, "answer"))
            return slm__fail(err, SLM_E_FORMAT, path, -1, "%s:%zu: unknown key '%.60s' (a "
                             "prompt line has \"prompt\", \"system\" and \"answer\")", path,
                             line, key);
    bool bad = false;
    slm__synth_prompt_t pr = {.line = line, .prompt = opt_string(o, "prompt", &bad),
                              .system = opt_string(o, "system", &bad),
                              .answer = opt_string(o, "answer", &bad)};
    if (bad || !pr.prompt || !*pr.prompt)
        return slm__fail(err, SLM_E_FORMAT, path, -1, "%s:%zu: \"prompt\" must be a non-empty "
                         "string (and \"system\", \"answer\" strings)", path, line);
    return add(p, pr, err);
}

int slm__synth_prompts_load(const char *path, slm__synth_prompts_t *p, slm_error_t *err)
{
    *p = (slm__synth_prompts_t){0};
    size_t len = 0;
    int rc = slm_input_read_all(path, MAX_PROMPT_BYTES, &p->text, &len, err);
    if (rc == SLM_OK && !(p->lines = json_array()))
        rc = slm__fail(err, SLM_E_NOMEM, NULL, -1, "synth: out of memory");
    const char *first = p->text;
    while (rc == SLM_OK && first < p->text + len && strchr(" \t\r\n", *first))
        first++;
    bool jsonl = rc == SLM_OK && first < p->text + len && *first == '{';
    size_t line = 0;
    for (char *s = p->text, *end = p->text + len; rc == SLM_OK && s < end;) {
        char *nl = memchr(s, '\n', (size_t)(end - s)), *e = nl ? nl : end;
        line++;
        if (memchr(s, '\0', (size_t)(e - s)))
            rc = slm__fail(err, SLM_E_FORMAT, path, -1, "%s:%zu: a NUL byte", path, line);
        size_t n = (size_t)(e - s);
        while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (rc == SLM_OK && n > 0) {
            if (jsonl) {
                rc = jsonl_line(p, path, line, s, n, err);
            } else {
                s[n] = '\0';
                rc = add(p, (slm__synth_prompt_t){.prompt = s, .line = line}, err);
            }
        }
        s = e + 1;
    }
    if (rc == SLM_OK && p->n == 0)
        rc = slm__fail(err, SLM_E_FORMAT, path, -1, "%s: the prompt file holds no prompt", path);
    if (rc)
        slm__synth_prompts_free(p);
    return rc;
}

void slm__synth_prompts_free(slm__synth_prompts_t *p)
{
    json_decref(p->lines);
    free(p->text);
    free(p->v);
    *p = (slm__synth_prompts_t){0};
}
