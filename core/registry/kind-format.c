/* The format kind: its manifest's provides (extensions, magic, folders, read and
 * write), its interface's slots, and which format plugins read or write a file. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <slmops/plugin-format.h>

#include "internal/kinds.h"
#include "internal/plugin-access.h"
#include "internal/registry.h"
#include "internal/util.h"

/* A magic longer than what probing reads could never match. */
#define MAGIC_MAX 64

static int parse(slm__mf_t *c, const json_t *pv, slm__manifest_t *m)
{
    json_t *v;
    int rc;
    if ((rc = slm__mf_member(c, pv, "provides.", "extensions", JSON_ARRAY, true, &v)) ||
        (rc = slm__mf_strings(c, v, "provides.extensions")))
        return rc;
    if ((rc = slm__mf_member(c, pv, "provides.", "magic", JSON_ARRAY, false, &v)) ||
        (v && (rc = slm__mf_strings(c, v, "provides.magic"))))
        return rc;
    size_t i;
    json_t *el;
    json_array_foreach(v, i, el)
        if (json_string_length(el) > MAGIC_MAX)
            return slm__mf_fail(c, SLM_E_FORMAT,
                                "provides.magic element %zu is longer than the %d bytes probed", i,
                                MAGIC_MAX);
    if ((rc = slm__mf_member(c, pv, "provides.", "read", JSON_TRUE, true, &v)) ||
        (rc = slm__mf_member(c, pv, "provides.", "write", JSON_TRUE, true, &v)))
        return rc;
    /* Before 1.2 a manifest could not say which inputs it reads; a key of a later
     * minor in an older manifest is ignored, as any unknown key is (P5). */
    m->declares_inputs = c->minor >= 2;
    if (!m->declares_inputs)
        return SLM_OK;
    if ((rc = slm__mf_member(c, pv, "provides.", "folders", JSON_TRUE, false, &v)))
        return rc;
    m->reads_folders = json_is_true(v);
    return SLM_OK;
}

static const char *check(const slm__plugin_t *p, const void *iface, char *buf, size_t size)
{
    (void)p;
    (void)buf;
    (void)size;
    const slm_format_iface_t *f = iface;
    return f->probe ? NULL : "format interface has no probe";
}

/* Version 2 took layout and write_temp from `reserved`: every version has this size. */
const slm__kind_t slm__kind_format = {
    .name = "format",
    .id = SLM_PLUGIN_KIND_FORMAT,
    .iface_min = 1,
    .iface_max = SLM_FORMAT_IFACE_VERSION,
    .iface_min_size = offsetof(slm_format_iface_t, reserved),
    .parse = parse,
    .check = check,
};

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
    /* The loader checked its size, version and probe (check() below). */
    return slm__plugin_iface(p);
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

static bool ends_with_extension(const slm__plugin_t *p, const char *path)
{
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

bool slm__format_has_extension(const slm_registry_t *reg, const char *name, const char *path)
{
    const slm__plugin_t *p = slm__registry_row(reg, name);
    return is_format(p) && path && ends_with_extension(p, path);
}

static bool starts_with_magic(const slm__plugin_t *p, const uint8_t *head, size_t head_len)
{
    json_t *magic = json_object_get(p->m.provides, "magic");
    size_t i;
    json_t *m;
    json_array_foreach(magic, i, m) {
        size_t n = json_string_length(m);
        if (n && n <= head_len && memcmp(head, json_string_value(m), n) == 0)
            return true;
    }
    return false;
}

static bool might_read(const slm__plugin_t *p, const char *path, bool is_dir, const uint8_t *head,
                       size_t head_len)
{
    if (!p->m.declares_inputs)
        return true;
    if (is_dir)
        return p->m.reads_folders;
    return ends_with_extension(p, path) || starts_with_magic(p, head, head_len);
}

/* Appends to a NUL-terminated buffer, truncating at its end. */
static void cat(char *buf, size_t size, const char *s)
{
    size_t used = strnlen(buf, size);
    if (used + 1 < size)
        snprintf(buf + used, size - used, "%s", s);
}

size_t slm__format_candidates(const slm_registry_t *reg, const char *path, bool is_dir,
                              const uint8_t *head, size_t head_len, const char **names,
                              size_t max, char *skipped, size_t skipped_size)
{
    size_t n = 0;
    skipped[0] = '\0';
    for (size_t i = 0; reg && i < reg->n_rows && n < max; i++) {
        const slm__plugin_t *p = reg->rows[i];
        /* Shadowed rows never serve; the row that shadows them speaks for the name. */
        if (!is_format(p) || p->info.state == SLM_PLUGIN_SHADOWED || !provides_flag(p, "read") ||
            !might_read(p, path, is_dir, head, head_len))
            continue;
        if (slm__plugin_usable(p)) {
            names[n++] = p->m.name;
            continue;
        }
        char who[1024];
        slm__format_describe(reg, p->m.name, who, sizeof who);
        cat(skipped, skipped_size, who);
        cat(skipped, skipped_size, " is ");
        cat(skipped, skipped_size, slm_plugin_state_name(p->info.state));
        cat(skipped, skipped_size, ": ");
        cat(skipped, skipped_size, p->reason);
        cat(skipped, skipped_size, "; ");
    }
    size_t len = strlen(skipped);
    if (len >= 2 && strcmp(skipped + len - 2, "; ") == 0)
        skipped[len - 2] = '\0';
    return n;
}

void slm__format_describe(const slm_registry_t *reg, const char *name, char *buf, size_t size)
{
    const slm__plugin_t *p = slm__registry_row(reg, name);
    snprintf(buf, size, "%s", name ? name : "(null)");
    size_t shadowed = 0;
    for (size_t i = 0; p && i < reg->n_rows; i++) {
        const slm__plugin_t *q = reg->rows[i];
        if (q->info.state != SLM_PLUGIN_SHADOWED || strcmp(q->shadowed_by, p->manifest_path) != 0)
            continue;
        if (shadowed++ == 0) {
            cat(buf, size, " (");
            cat(buf, size, p->manifest_path);
            cat(buf, size, ", which shadows ");
        } else {
            cat(buf, size, " and ");
        }
        cat(buf, size, q->manifest_path);
    }
    if (shadowed)
        cat(buf, size, ")");
}
