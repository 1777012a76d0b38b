/* What the job kinds that run a model share: the "lora" option (adapters and their
 * user scales) and loading the model with them when the caller lent none. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/chat.h>

#include "internal/util.h"
#include "jobs/kind.h"

/* An element: "PATH" (scale 1) or {"path": "PATH", "scale": NUMBER}. */
static int lora_elem(const char *kind, size_t i, const json_t *e, slm__job_lora_t *out,
                     slm_error_t *err)
{
    if (json_is_string(e)) {
        *out = (slm__job_lora_t){.path = json_string_value(e), .scale = 1.0f};
        return SLM_OK;
    }
    const json_t *path = json_object_get(e, "path"), *scale = json_object_get(e, "scale");
    size_t known = (path != NULL) + (scale != NULL);
    if (!json_is_object(e) || !json_is_string(path) || (scale && !json_is_number(scale)) ||
        json_object_size(e) != known)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "%s job: lora[%zu] is neither a path "
                         "nor {\"path\": PATH, \"scale\": NUMBER}", kind, i);
    double s = scale ? json_number_value(scale) : 1.0;
    if (!isfinite(s) || fabs(s) > 1e6)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "%s job: lora[%zu]: scale %g is "
                         "outside [-1e6, 1e6]", kind, i, s);
    *out = (slm__job_lora_t){.path = json_string_value(path), .scale = (float)s};
    return SLM_OK;
}

int slm__job_loras(const slm_job_t *job, const char *kind, slm__job_lora_t **out, size_t *n,
                   slm_error_t *err)
{
    *out = NULL;
    *n = 0;
    const json_t *a = slm__job_get(job, "lora");
    size_t m = json_array_size(a);
    if (!m)
        return SLM_OK;
    slm__job_lora_t *v = calloc(m, sizeof *v);
    if (!v)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "%s job: out of memory", kind);
    for (size_t i = 0; i < m; i++) {
        int rc = lora_elem(kind, i, json_array_get(a, i), &v[i], err);
        if (rc != SLM_OK) {
            free(v);
            return rc;
        }
    }
    *out = v;
    *n = m;
    return SLM_OK;
}

json_t *slm__job_loras_json(const slm__job_lora_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_pack("{s:o, s:o}", "path", slm__json_path(v[i].path),
                                           "scale", slm__json_num(v[i].scale)));
    return a;
}

int slm__job_chat_template(const char *what, const char *tpl, slm_chat_template_t **out,
                           slm_error_t *err)
{
    if (slm_chat_template_builtin(tpl, out, NULL) == SLM_OK)
        return SLM_OK;
    if (!strstr(tpl, "{%") && !strstr(tpl, "{{"))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "%s: chat template '%s' is no "
                         "built-in name (chatml, ...) and no template text", what, tpl);
    return slm_chat_template_parse(tpl, strlen(tpl), out, err);
}

int slm__job_open_model(slm_job_t *job, const char *path, const char *device, int32_t threads,
                        const slm__job_lora_t *loras, size_t n_loras, slm_model_t **own,
                        slm_error_t *err)
{
    slm_model_params_t mp;
    slm_model_params_default(&mp);
    mp.device = device;
    mp.n_threads = threads;
    int rc = slm_model_load(slm__job_registry(job), path, &mp, own, err);
    for (size_t i = 0; rc == SLM_OK && i < n_loras; i++)
        if ((rc = slm_model_load_adapter(*own, loras[i].path, loras[i].scale, err)) > 0)
            rc = SLM_OK;
    if (rc != SLM_OK) {
        slm_model_free(*own);
        *own = NULL;
    }
    return rc;
}
