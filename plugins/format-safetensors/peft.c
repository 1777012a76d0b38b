/* PEFT LoRA adapter folders: adapter_config.json <-> the canonical adapter keys
 * (llama.cpp's GGUF LoRA layout), refusing the PEFT settings that layout cannot hold. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "st.h"

bool st_peft_is_folder(const char *dir)
{
    return st_exists(dir, ST_PEFT_CONFIG) || st_exists(dir, ST_PEFT_WEIGHTS);
}

/* A setting that changes what the weights mean and has no place in the container. */
static int refuse(const char *path, const char *field, const char *why, slm_error_t *err)
{
    return st_fail(err, SLM_E_UNSUPPORTED, path, -1, "%s: %s is not supported (%s)", ST_PEFT_CONFIG,
                   field, why);
}

static bool is_true(json_t *cfg, const char *field)
{
    return json_is_true(json_object_get(cfg, field));
}

static bool non_empty(json_t *cfg, const char *field)
{
    json_t *v = json_object_get(cfg, field);
    return v && !json_is_null(v) && !(json_is_object(v) && json_object_size(v) == 0) &&
           !(json_is_array(v) && json_array_size(v) == 0);
}

static int check_config(const char *path, json_t *cfg, slm_error_t *err)
{
    const char *type = json_string_value(json_object_get(cfg, "peft_type"));
    if (!type)
        return st_fail(err, SLM_E_FORMAT, path, -1, "%s: no \"peft_type\"", ST_PEFT_CONFIG);
    if (strcmp(type, "LORA") != 0)
        return st_fail(err, SLM_E_UNSUPPORTED, path, -1,
                       "%s: peft_type %s is not supported (LORA only)", ST_PEFT_CONFIG, type);
    if (is_true(cfg, "use_dora"))
        return refuse(path, "use_dora", "DoRA's magnitude vectors have no llama.cpp form", err);
    if (is_true(cfg, "fan_in_fan_out"))
        return refuse(path, "fan_in_fan_out", "Conv1D-style transposed weights", err);
    if (non_empty(cfg, "rank_pattern") || non_empty(cfg, "alpha_pattern"))
        return refuse(path, "a rank_pattern or alpha_pattern",
                      "one rank and one alpha for every module", err);
    if (non_empty(cfg, "modules_to_save"))
        return refuse(path, "modules_to_save", "whole modules trained beside the adapter", err);
    const char *bias = json_string_value(json_object_get(cfg, "bias"));
    if (bias && strcmp(bias, "none") != 0)
        return refuse(path, "bias other than \"none\"", "trained biases", err);
    return SLM_OK;
}

int st_peft_config_read(const char *dir, st_meta_t *m, uint32_t *rank, slm_error_t *err)
{
    char *path = st_join(dir, ST_PEFT_CONFIG);
    json_t *cfg = NULL;
    int rc = path ? st_json_load(path, &cfg, err) : st_fail(err, SLM_E_NOMEM, dir, -1, "out of memory");
    if (!rc && !json_is_object(cfg))
        rc = st_fail(err, SLM_E_FORMAT, dir, -1, "%s is not a JSON object", ST_PEFT_CONFIG);
    if (!rc)
        rc = check_config(dir, cfg, err);
    json_t *r = json_object_get(cfg, "r"), *alpha = json_object_get(cfg, "lora_alpha");
    json_t *dropout = json_object_get(cfg, "lora_dropout");
    if (!rc && (!json_is_integer(r) || json_integer_value(r) < 1 || json_integer_value(r) > 65536))
        rc = st_fail(err, SLM_E_FORMAT, dir, -1, "%s: \"r\" is not an integer in [1, 65536]", ST_PEFT_CONFIG);
    if (!rc && dropout && !json_is_null(dropout) &&
        (!json_is_number(dropout) || !(json_number_value(dropout) >= 0 && json_number_value(dropout) < 1)))
        rc = st_fail(err, SLM_E_FORMAT, dir, -1, "%s: \"lora_dropout\" is not a number in [0, 1)", ST_PEFT_CONFIG);
    if (!rc && alpha && !json_is_number(alpha))
        rc = st_fail(err, SLM_E_FORMAT, dir, -1, "%s: \"lora_alpha\" is not a number", ST_PEFT_CONFIG);
    if (!rc && alpha && json_number_value(alpha) == 0)
        rc = refuse(dir, "lora_alpha 0", "llama.cpp reads alpha 0 as \"no alpha\", a scale of 1", err);
    if (!rc) {
        *rank = (uint32_t)json_integer_value(r);
        bool rslora = is_true(cfg, "use_rslora");
        /* PEFT's default alpha is 8. llama.cpp scales by alpha / r and knows no
         * rsLoRA: alpha / sqrt(r) = alpha' / r, so the container holds alpha'. */
        double a = alpha ? json_number_value(alpha) : 8.0;
        double folded = rslora ? a * sqrt((double)*rank) : a;
        const char *base = json_string_value(json_object_get(cfg, "base_model_name_or_path"));
        if (st_meta_str(m, "general.type", "adapter", 7) || st_meta_str(m, "adapter.type", "lora", 4) ||
            st_meta_f32(m, "adapter.lora.alpha", (float)folded) ||
            st_meta_u32(m, "adapter.lora.rank", *rank) || st_meta_bool(m, "adapter.lora.rslora", rslora) ||
            (json_is_number(dropout) &&
             st_meta_f32(m, "adapter.lora.dropout", (float)json_number_value(dropout))) ||
            (base && *base && !st_meta_has(m, "general.base_model.0.name") &&
             (st_meta_u32(m, "general.base_model.count", 1) ||
              st_meta_str(m, "general.base_model.0.name", base, strlen(base)))))
            rc = st_fail(err, SLM_E_NOMEM, dir, -1, "out of memory");
    }
    json_decref(cfg);
    free(path);
    return rc;
}

json_t *st_peft_config_json(const st_peft_out_t *o)
{
    /* PEFT builds LoraConfig(**json): only keys every PEFT since 0.10 knows. */
    double alpha = o->alpha > 0 ? o->alpha : (double)o->rank;   /* alpha 0: llama.cpp's scale 1 */
    if (o->rslora)
        alpha /= sqrt((double)o->rank);
    json_t *c = json_object();
    json_object_set_new(c, "peft_type", json_string("LORA"));
    json_object_set_new(c, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(c, "base_model_name_or_path", o->base_model ? json_string(o->base_model) : json_null());
    json_object_set_new(c, "revision", json_null());
    json_object_set_new(c, "inference_mode", json_true());
    json_object_set_new(c, "r", json_integer(o->rank));
    json_object_set_new(c, "lora_alpha", json_real(alpha));
    json_object_set_new(c, "lora_dropout", json_real(o->dropout));
    json_object_set_new(c, "target_modules", json_incref(o->modules));
    json_object_set_new(c, "bias", json_string("none"));
    json_object_set_new(c, "fan_in_fan_out", json_false());
    json_object_set_new(c, "use_rslora", json_boolean(o->rslora));
    json_object_set_new(c, "use_dora", json_false());
    json_object_set_new(c, "modules_to_save", json_null());
    json_object_set_new(c, "init_lora_weights", json_true());
    return c;
}
