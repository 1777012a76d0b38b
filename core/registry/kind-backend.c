/* The backend kind: its manifest's provides (family, device types, ops x types),
 * its interface's required slots, and the capability queries over backends. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/device.h"
#include "internal/kinds.h"
#include "internal/registry.h"
#include "internal/util.h"

static int parse_device_types(slm__mf_t *c, const json_t *v)
{
    static const char *const dev_types[] = {"cpu", "igpu", "dgpu", "accel"};
    size_t i;
    json_t *el;
    json_array_foreach(v, i, el) {
        bool known = false;
        for (size_t k = 0; k < SLM__ARRAY_LEN(dev_types); k++)
            known = known || strcmp(json_string_value(el), dev_types[k]) == 0;
        if (!known)
            return slm__mf_fail(
                c, SLM_E_FORMAT,
                "provides.device_types has \"%s\", expected cpu, igpu, dgpu or accel",
                json_string_value(el));
    }
    return SLM_OK;
}

static int parse_ops(slm__mf_t *c, const json_t *ops)
{
    const char *op;
    json_t *el;
    json_object_foreach((json_t *)ops, op, el) {
        char field[128];
        snprintf(field, sizeof field, "provides.ops.%s", op);
        if (!json_is_array(el))
            return slm__mf_fail(c, SLM_E_FORMAT,
                                "field \"%s\" has the wrong type: %s, expected an array", field,
                                slm__mf_type_word(el));
        int rc = slm__mf_strings(c, el, field);
        if (rc)
            return rc;
    }
    return SLM_OK;
}

static int parse(slm__mf_t *c, const json_t *pv, slm__manifest_t *m)
{
    json_t *v;
    int rc = slm__mf_member(c, pv, "provides.", "backend", JSON_STRING, true, &v);
    if (rc)
        return rc;
    if (!slm__mf_valid_name(json_string_value(v)) || strchr(json_string_value(v), ':'))
        return slm__mf_fail(c, SLM_E_FORMAT,
                            "field \"provides.backend\" is not a valid family name");
    if (!(m->backend = strdup(json_string_value(v))))
        return slm__mf_fail(c, SLM_E_NOMEM, "out of memory");
    if ((rc = slm__mf_member(c, pv, "provides.", "device_types", JSON_ARRAY, true, &v)) ||
        (rc = slm__mf_strings(c, v, "provides.device_types")) || (rc = parse_device_types(c, v)))
        return rc;
    if ((rc = slm__mf_member(c, pv, "provides.", "ops", JSON_OBJECT, true, &v)) ||
        (rc = parse_ops(c, v)))
        return rc;
    return slm__mf_member(c, pv, "provides.", "training", JSON_TRUE, false, &v);
}

/* The slots each version cannot do without; version 2 must also be long enough
 * to hold every version-2 slot the host may look at. */
static const char *check(const slm__plugin_t *p, const void *iface, char *buf, size_t size)
{
    (void)p;
    const uint32_t *head = iface;
    if (head[1] == 1) {
        const slm_backend_iface_v1_t *b = iface;
        if (!b->device_count || !b->device_props || !b->device_open || !b->device_close ||
            !b->supports_node || !b->buffer_alloc || !b->buffer_free || !b->buffer_set ||
            !b->buffer_get || !b->buffer_clear || !b->graph_compute)
            return "backend interface leaves a required slot NULL";
        return NULL;
    }
    const slm_backend_iface_v2_t *b = iface;
    if (b->struct_size < offsetof(slm_backend_iface_v2_t, reserved)) {
        snprintf(buf, size, "backend interface version 2 has struct_size %u, less than the "
                 "%zu bytes of its slots", b->struct_size, offsetof(slm_backend_iface_v2_t, reserved));
        return buf;
    }
    if (!b->device_count || !b->device_props || !b->device_open || !b->device_close ||
        !b->supports_node || !b->buffer_alloc || !b->buffer_free || !b->buffer_set ||
        !b->buffer_get || !b->buffer_clear || !b->graph_compute)
        return "backend interface leaves a required slot NULL";
    bool ev = b->event_new || b->event_free || b->event_record || b->event_wait ||
              b->event_synchronize;
    if (ev && !(b->event_new && b->event_free && b->event_record && b->event_wait &&
                b->event_synchronize))
        return "backend interface fills some event slots but not all five";
    if ((b->graph_record || b->graph_replay || b->graph_release) &&
        !(b->graph_record && b->graph_replay && b->graph_release))
        return "backend interface fills some graph_record/replay/release slots but not all";
    if (!b->init != !b->cleanup)
        return "backend interface fills only one of init and cleanup";
    return NULL;
}

/* The host drives every backend through a version-2 table of its own: a copy of
 * the plugin's, or adapters over a version-1 one; init makes the backend context. */
static int attach(slm__plugin_t *p, const slm_host_t *host, char *buf, size_t size)
{
    slm__backend_t *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(buf, size, "out of memory");
        return SLM_E_NOMEM;
    }
    const uint32_t *head = p->desc->iface;
    if (head[1] == 1) {
        slm__backend_adapt_v1(b, p->desc->iface);
        p->kind_state = b;
        return SLM_OK;
    }
    const slm_backend_iface_v2_t *v2 = p->desc->iface;
    size_t n = v2->struct_size < sizeof b->iface ? v2->struct_size : sizeof b->iface;
    memcpy(&b->iface, v2, n);
    b->iface.struct_size = sizeof b->iface;
    b->plugin_version = 2;
    if (b->iface.init) {
        slm__plugin_said_reset();
        int rc = b->iface.init(host, &b->ctx);
        if (rc != 0) {
            /* the plugin's own word for why ("no CUDA device (...)"), if it logged one */
            if (*slm__plugin_said())
                snprintf(buf, size, "%s", slm__plugin_said());
            else
                snprintf(buf, size, "backend init failed (%d)", rc);
            free(b);
            return rc < 0 ? rc : SLM_E_PLUGIN;
        }
        b->initialized = true;
    }
    p->kind_state = b;
    return SLM_OK;
}

static void detach(slm__plugin_t *p)
{
    slm__backend_t *b = p->kind_state;
    if (b && b->initialized && b->iface.cleanup)
        b->iface.cleanup(b->ctx);
    free(b);
    p->kind_state = NULL;
}

const slm__backend_t *slm__backend_of(const slm__plugin_t *p)
{
    return p && p->m.kind_id == SLM_PLUGIN_KIND_BACKEND ? p->kind_state : NULL;
}

const slm__kind_t slm__kind_backend = {
    .name = "backend",
    .id = SLM_PLUGIN_KIND_BACKEND,
    .iface_min = 1,
    .iface_max = SLM_BACKEND_IFACE_LATEST,
    .iface_min_size = offsetof(slm_backend_iface_v1_t, synchronize),
    .parse = parse,
    .check = check,
    .attach = attach,
    .detach = detach,
    .variants = true,
};

bool slm__manifest_has_op(const slm__manifest_t *m, const char *op, const char *type)
{
    json_t *ops = json_object_get(m->provides, "ops");
    if (!json_is_object(ops))
        return false;
    if (!op)
        return true;
    json_t *types = json_object_get(ops, op);
    if (!json_is_array(types))
        return false;
    if (!type)
        return json_array_size(types) > 0;
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
        if (json_is_string(t) && strcmp(json_string_value(t), type) == 0)
            return true;
    return false;
}

slm__plugin_t *slm__registry_family_winner(const slm_registry_t *reg, const char *family)
{
    for (size_t i = 0; reg && family && i < reg->n_rows; i++) {
        slm__plugin_t *p = reg->rows[i];
        int s = p->info.state;
        if ((s == SLM_PLUGIN_AVAILABLE || s == SLM_PLUGIN_LOADED) &&
            p->m.kind_id == SLM_PLUGIN_KIND_BACKEND && strcmp(p->m.backend, family) == 0)
            return p;
    }
    return NULL;
}

size_t slm_registry_backends_for(const slm_registry_t *reg, const char *op, const char *type,
                                 const char **names, size_t max)
{
    if (!reg || !names || max == 0)
        return 0;
    const slm__plugin_t **hit = calloc(reg->n_rows + 1, sizeof *hit);
    if (!hit)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < reg->n_rows; i++) {
        const slm__plugin_t *p = reg->rows[i];
        int s = p->info.state;
        if ((s != SLM_PLUGIN_AVAILABLE && s != SLM_PLUGIN_LOADED) ||
            p->m.kind_id != SLM_PLUGIN_KIND_BACKEND || !slm__manifest_has_op(&p->m, op, type))
            continue;
        /* Insertion keeps discovery order among equal priorities. */
        size_t at = n;
        while (at > 0 && hit[at - 1]->m.priority < p->m.priority) {
            hit[at] = hit[at - 1];
            at--;
        }
        hit[at] = p;
        n++;
    }
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        names[i] = hit[i]->m.name;
    free(hit);
    return n;
}
