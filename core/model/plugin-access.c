/* Format plugins as the model-file container sees them: found by name, by
 * capability or by extension in their manifests, loaded only when used. */
#include "config.h"

#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "internal/plugin-access.h"
#include "internal/registry.h"
#include "internal/util.h"

static bool is_format(const slm__plugin_t *p)
{
    return p && p->manifest_ok && p->m.kind_id == SLM_PLUGIN_KIND_FORMAT;
}

const slm_format_iface_t *slm__format_iface(slm_registry_t *reg, const char *name,
                                            slm_error_t *err)
{
    slm__plugin_t *p = slm__registry_row(reg, name);
    if (!p || !p->manifest_ok) {
        slm__fail(err, SLM_E_NOT_FOUND, NULL, -1, "no format plugin named %s",
                  name ? name : "(null)");
        return NULL;
    }
    if (!is_format(p)) {
        slm__fail(err, SLM_E_INVALID, NULL, -1, "plugin %s is a %s plugin, not a format plugin",
                  name, p->m.kind);
        return NULL;
    }
    if (slm__plugin_load(reg, p, err) != SLM_OK)
        return NULL;
    const slm_format_iface_t *f = slm__plugin_iface(p);
    /* The loader checked the fixed part; read/write sit inside it for version 1. */
    if (!f || f->iface_version < 1 || f->struct_size < offsetof(slm_format_iface_t, reserved)) {
        slm__fail(err, SLM_E_ABI, NULL, -1, "format plugin %s has no usable interface", name);
        return NULL;
    }
    return f;
}

static bool provides_flag(const slm__plugin_t *p, const char *key)
{
    return json_is_true(json_object_get(p->m.provides, key));
}

size_t slm__format_plugins(const slm_registry_t *reg, bool want_write, const char **names,
                           size_t max)
{
    size_t n = 0;
    for (size_t i = 0; reg && i < reg->n_rows && n < max; i++) {
        const slm__plugin_t *p = reg->rows[i];
        if (is_format(p) && slm__plugin_usable(p) &&
            provides_flag(p, want_write ? "write" : "read"))
            names[n++] = p->m.name;
    }
    return n;
}

bool slm__format_has_extension(const slm_registry_t *reg, const char *name, const char *path)
{
    const slm__plugin_t *p = slm__registry_row(reg, name);
    if (!is_format(p) || !path)
        return false;
    size_t plen = strlen(path);
    json_t *exts = json_object_get(p->m.provides, "extensions");
    size_t i;
    json_t *e;
    json_array_foreach(exts, i, e) {
        const char *ext = json_string_value(e);
        size_t elen = ext ? strlen(ext) : 0;
        if (elen && elen < plen && strcasecmp(path + plen - elen, ext) == 0)
            return true;
    }
    return false;
}
