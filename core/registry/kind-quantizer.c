/* The quantizer kind: its manifest's provides.types (layout and quantization
 * policy), its interface's slots, and the type table its manifests fill. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/plugin-quantizer.h>

#include "internal/kinds.h"
#include "internal/registry.h"
#include "internal/types.h"
#include "internal/util.h"

/* An integer member of provides.types[i] within lo..hi; *out keeps its value when
 * the member is optional and absent. */
static int type_integer(slm__mf_t *c, const json_t *t, size_t i, const char *key, bool required,
                        json_int_t lo, json_int_t hi, json_int_t *out)
{
    json_t *v = json_object_get(t, key);
    if (!v && !required)
        return SLM_OK;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return slm__mf_fail(c, SLM_E_FORMAT, "provides.types[%zu].%s must be an integer %lld..%lld",
                            i, key, (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return SLM_OK;
}

/* A type-name member of provides.types[i]; *out stays NULL when optional and absent. */
static int type_name(slm__mf_t *c, const json_t *t, size_t i, const char *key, bool required,
                     const char **out)
{
    json_t *v = json_object_get(t, key);
    if (!v && !required)
        return SLM_OK;
    if (!json_is_string(v) || !slm__mf_valid_name(json_string_value(v)))
        return slm__mf_fail(c, SLM_E_FORMAT, "provides.types[%zu].%s must be a type name", i, key);
    *out = json_string_value(v);
    return SLM_OK;
}

static int quant_type(slm__mf_t *c, const json_t *t, size_t i, slm__quant_type_t *q)
{
    json_int_t id = 0, block = 0, bytes = 0, ftype = -1;
    int rc;
    *q = (slm__quant_type_t){0};
    if (!json_is_object(t))
        return slm__mf_fail(c, SLM_E_FORMAT, "provides.types[%zu] must be an object", i);
    if ((rc = type_name(c, t, i, "name", true, &q->name)) ||
        (rc = type_integer(c, t, i, "id", true, 0, SLM_TYPE_COUNT_MAX - 1, &id)) ||
        (rc = type_integer(c, t, i, "block", true, 1, 65536, &block)) ||
        (rc = type_integer(c, t, i, "bytes", true, 1, 65536, &bytes)) ||
        (rc = type_name(c, t, i, "fallback", false, &q->fallback)) ||
        (rc = type_name(c, t, i, "output_type", false, &q->output_type)) ||
        (rc = type_integer(c, t, i, "gguf_file_type", false, 0, 65535, &ftype)))
        return rc;
    /* A type cannot stand in for itself when its own block does not fit. */
    if (q->fallback && strcmp(q->fallback, q->name) == 0)
        return slm__mf_fail(c, SLM_E_FORMAT, "provides.types[%zu].fallback names the type itself",
                            i);
    q->id = (int32_t)id;
    q->block = (uint32_t)block;
    q->bytes = (uint32_t)bytes;
    q->gguf_file_type = (int32_t)ftype;
    return SLM_OK;
}

static int parse(slm__mf_t *c, const json_t *pv, slm__manifest_t *m)
{
    json_t *types;
    int rc = slm__mf_member(c, pv, "provides.", "types", JSON_ARRAY, true, &types);
    if (rc)
        return rc;
    size_t n = json_array_size(types);
    if (n == 0)
        return slm__mf_fail(c, SLM_E_FORMAT, "field \"provides.types\" is empty");
    if (!(m->types = calloc(n, sizeof *m->types)))
        return slm__mf_fail(c, SLM_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if ((rc = quant_type(c, json_array_get(types, i), i, &m->types[i])))
            return rc;
        m->n_types = i + 1;
    }
    return SLM_OK;
}

static const char *check(const slm__plugin_t *p, const void *iface, char *buf, size_t size)
{
    (void)buf;
    (void)size;
    const slm_quantizer_iface_t *q = iface;
    if (!q->quantize_row || !q->dequantize_row || !q->vec_dot_f32 || !q->type_name)
        return "quantizer interface leaves a required slot NULL";
    for (size_t i = 0; i < p->m.n_types; i++)
        if (p->m.types[i].id == q->type && strcmp(p->m.types[i].name, q->type_name) == 0)
            return NULL;
    return "quantizer interface defines a type the manifest does not list";
}

/* Quantizer manifests teach the core their types so tensors of those types can be
 * sized before the plugin is loaded. Names live as long as the process: the type
 * table is global. */
static void enter(slm_registry_t *reg, slm__plugin_t *p)
{
    for (size_t i = 0; i < p->m.n_types; i++) {
        const slm__quant_type_t *t = &p->m.types[i];
        const slm_type_traits_t *have = slm_type_get_traits(t->id);
        if (have && strcmp(have->name, t->name) == 0 && have->block == t->block &&
            have->size == t->bytes)
            continue;
        char *keep = strdup(t->name);
        if (!keep || slm__type_register(t->id, keep, t->block, t->bytes) != 0) {
            free(keep);
            slm__plugin_disable(reg, p, "type %s (id %d) conflicts with the registered type %s",
                                t->name, t->id, have ? have->name : "?");
            return;
        }
    }
}

const slm__kind_t slm__kind_quantizer = {
    .name = "quantizer",
    .id = SLM_PLUGIN_KIND_QUANTIZER,
    .iface_min = 1,
    .iface_max = SLM_QUANTIZER_IFACE_VERSION,
    .iface_min_size = offsetof(slm_quantizer_iface_t, reserved),
    .parse = parse,
    .check = check,
    .enter = enter,
};

const slm__quant_type_t *slm__registry_quant_type(const slm_registry_t *reg, int32_t type)
{
    for (size_t r = 0; reg && r < reg->n_rows; r++) {
        const slm__plugin_t *p = reg->rows[r];
        if (!p->manifest_ok || p->m.kind_id != SLM_PLUGIN_KIND_QUANTIZER ||
            !slm__plugin_usable(p))
            continue;
        for (size_t i = 0; i < p->m.n_types; i++)
            if (p->m.types[i].id == type)
                return &p->m.types[i];
    }
    return NULL;
}
