/* A synth job's remote teacher seam: the prompts written out for a client that asks an
 * HTTP teacher (requests), and the responses it got read back in (one per sample). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/input.h>
#include <slmops/output.h>

#include "internal/util.h"
#include "jobs/synth.h"

#define MAX_RESPONSE_BYTES (1ull << 30)

int slm__synth_requests_write(const char *path, const slm__synth_prompts_t *p,
                              const char *system, const char *const *inputs, size_t n_inputs,
                              slm_error_t *err)
{
    slm_output_params_t op;
    slm_output_params_init(&op);
    op.inputs = inputs;
    op.n_inputs = n_inputs;
    slm_output_t *out = NULL;
    int rc = slm_output_prepare(path, &op, &out, err);
    if (rc)
        return rc;
    FILE *f = fopen(slm_output_path(out), "wb");
    bool ok = f != NULL;
    for (size_t i = 0; ok && i < p->n; i++) {
        const slm__synth_prompt_t *pr = &p->v[i];
        const char *sys = pr->system ? pr->system : system;
        json_t *j = json_pack("{s:I, s:s}", "line", (json_int_t)pr->line, "prompt", pr->prompt);
        if (j && sys)
            json_object_set_new(j, "system", json_string(sys));
        char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        ok = text && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
        free(text);
        json_decref(j);
    }
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok) {
        slm_output_abort(out);
        return slm__fail(err, SLM_E_IO, path, -1, "%s: write failed", path);
    }
    return slm_output_commit(out, err);
}

static int entry(slm__synth_responses_t *r, const char *path, size_t line, json_t *o,
                 slm_error_t *err)
{
    const json_t *ln = json_object_get(o, "line"), *sm = json_object_get(o, "sample");
    const json_t *tx = json_object_get(o, "response"), *er = json_object_get(o, "error");
    if (!json_is_integer(ln) || !json_is_integer(sm) || !!json_is_string(tx) == !!json_is_string(er))
        return slm__fail(err, SLM_E_FORMAT, path, -1, "%s:%zu: a response line has integer "
                         "\"line\" and \"sample\" and a string \"response\" or \"error\"",
                         path, line);
    slm__synth_response_t *v = realloc(r->v, (r->n + 1) * sizeof *v);
    if (!v)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "synth: out of memory");
    r->v = v;
    r->v[r->n++] = (slm__synth_response_t){
        .line = (size_t)json_integer_value(ln), .sample = json_integer_value(sm),
        .text = json_string_value(tx), .len = json_string_length(tx),
        .error = json_string_value(er),
        .finish = json_string_value(json_object_get(o, "finish_reason")),
        .seed = json_integer_value(json_object_get(o, "seed"))};
    return SLM_OK;
}

int slm__synth_responses_load(const char *path, slm__synth_responses_t *r, slm_error_t *err)
{
    *r = (slm__synth_responses_t){0};
    char *text = NULL;
    size_t len = 0;
    int rc = slm_input_read_all(path, MAX_RESPONSE_BYTES, &text, &len, err);
    if (rc == SLM_OK && !(r->lines = json_array()))
        rc = slm__fail(err, SLM_E_NOMEM, NULL, -1, "synth: out of memory");
    size_t line = 0;
    for (char *s = text, *end = text + len; rc == SLM_OK && s < end;) {
        char *nl = memchr(s, '\n', (size_t)(end - s)), *e = nl ? nl : end;
        line++;
        if (e > s) {
            json_error_t je;
            json_t *o = json_loadb(s, (size_t)(e - s), JSON_REJECT_DUPLICATES, &je);
            if (!json_is_object(o))
                rc = slm__fail(err, SLM_E_FORMAT, path, -1, "%s:%zu: not a JSON object",
                               path, line);
            else if (json_array_append_new(r->lines, o) == 0)
                rc = entry(r, path, line, o, err);
            else
                rc = slm__fail(err, SLM_E_NOMEM, NULL, -1, "synth: out of memory");
            if (rc && o && !json_is_object(o))
                json_decref(o);
        }
        s = e + 1;
    }
    free(text);
    if (rc)
        slm__synth_responses_free(r);
    return rc;
}

void slm__synth_responses_free(slm__synth_responses_t *r)
{
    json_decref(r->lines);
    free(r->v);
    *r = (slm__synth_responses_t){0};
}
