/* The trainer kind: its manifest's provides.methods, the checks of a trainer
 * interface (version 1 or 2) against it, and which trainer serves a method. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/plugin-trainer.h>

#include "internal/kinds.h"
#include "internal/registry.h"
#include "internal/trainer.h"
#include "internal/util.h"

/* Characters in a method's short description in a manifest (file format 1.3). */
#define DESCRIPTION_MAX 200
/* Where a list the plugin hands over is taken as unterminated. */
#define LIST_MAX 256

/* [a-z0-9][a-z0-9_-]*: method names are also command-line values and file names. */
static bool valid_method_name(const char *s)
{
    return s && slm__mf_valid_name(s) && !strchr(s, '.');
}

/* The name of provides.methods[i]: a string, or since 1.3 {"name", "description"}. */
static const char *method_name(const json_t *el)
{
    return json_is_object(el) ? json_string_value(json_object_get(el, "name"))
                              : json_string_value(el);
}

/* Characters, as JSON Schema's maxLength counts them (jansson checked the UTF-8). */
static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int parse_method_object(slm__mf_t *c, const json_t *el, size_t i)
{
    if (c->minor < 3)
        return slm__mf_fail(c, SLM_E_FORMAT,
                            "provides.methods[%zu] is an object, which needs file_format_version "
                            "1.3 (before it, a method is a name)", i);
    json_t *d = json_object_get(el, "description");
    if (!json_is_string(json_object_get(el, "name")))
        return slm__mf_fail(c, SLM_E_FORMAT, "provides.methods[%zu] has no \"name\" string", i);
    if (!json_is_string(d) || json_string_length(d) == 0 ||
        strlen(json_string_value(d)) != json_string_length(d) ||
        utf8_length(json_string_value(d)) > DESCRIPTION_MAX)
        return slm__mf_fail(c, SLM_E_FORMAT,
                            "provides.methods[%zu].description must be a string of 1 to %d "
                            "characters", i, DESCRIPTION_MAX);
    return SLM_OK;
}

static int parse(slm__mf_t *c, const json_t *pv, slm__manifest_t *m)
{
    (void)m;
    json_t *v;
    int rc = slm__mf_member(c, pv, "provides.", "methods", JSON_ARRAY, true, &v);
    if (rc)
        return rc;
    if (json_array_size(v) == 0)
        return slm__mf_fail(c, SLM_E_FORMAT, "field \"provides.methods\" is empty");
    size_t i;
    json_t *el;
    json_array_foreach(v, i, el) {
        if (json_is_object(el) && (rc = parse_method_object(c, el, i)))
            return rc;
        const char *name = method_name(el);
        if (!valid_method_name(name))
            return slm__mf_fail(c, SLM_E_FORMAT,
                                "provides.methods[%zu] is not a method name "
                                "([a-z0-9][a-z0-9_-]* of at most %d characters)", i,
                                SLM__NAME_MAX);
        for (size_t k = 0; k < i; k++)
            if (strcmp(method_name(json_array_get(v, k)), name) == 0)
                return slm__mf_fail(c, SLM_E_FORMAT, "provides.methods names \"%s\" twice",
                                    name);
    }
    return SLM_OK;
}

static bool manifest_lists(const slm__manifest_t *m, const char *name)
{
    size_t i;
    json_t *el;
    json_array_foreach(json_object_get(m->provides, "methods"), i, el)
        if (name && strcmp(method_name(el), name) == 0)
            return true;
    return false;
}

/* P21: the interface's method names are exactly the manifest's. */
static const char *check_names(const slm__plugin_t *p, const slm_trainer_iface_t *t, char *buf,
                               size_t size)
{
    size_t n = 0;
    for (; n < LIST_MAX && t->methods[n]; n++) {
        if (!manifest_lists(&p->m, t->methods[n])) {
            snprintf(buf, size, "trainer interface lists method \"%.64s\", which the manifest does "
                     "not", t->methods[n]);
            return buf;
        }
        for (size_t k = 0; k < n; k++)
            if (strcmp(t->methods[k], t->methods[n]) == 0) {
                snprintf(buf, size, "trainer interface lists method \"%.64s\" twice",
                         t->methods[n]);
                return buf;
            }
    }
    if (n == LIST_MAX)
        return "trainer interface's methods list is not NULL-terminated";
    size_t i;
    json_t *el;
    json_array_foreach(json_object_get(p->m.provides, "methods"), i, el) {
        size_t k = 0;
        while (k < n && strcmp(t->methods[k], method_name(el)) != 0)
            k++;
        if (k == n) {
            snprintf(buf, size, "the manifest's method \"%s\" is missing from the trainer "
                     "interface", method_name(el));
            return buf;
        }
    }
    return NULL;
}

static bool option_type_known(int32_t type)
{
    return type >= SLM_TRAINER_OPT_INT && type <= SLM_TRAINER_OPT_STRINGS;
}

/* One declared option: a known type, a sane name and range, a default of its type. */
static const char *check_option(const slm_trainer_method_t *m, const slm_trainer_option_t *o,
                                char *buf, size_t size)
{
    if (o->struct_size < offsetof(slm_trainer_option_t, reserved) || !o->name ||
        !slm__mf_valid_name(o->name) || !option_type_known(o->type) || !o->description) {
        snprintf(buf, size, "trainer method \"%s\" declares an option without a valid size, "
                 "name, type or description", m->name);
        return buf;
    }
    bool number = o->type == SLM_TRAINER_OPT_INT || o->type == SLM_TRAINER_OPT_FLOAT;
    if (number && !(o->min <= o->max)) {
        snprintf(buf, size, "trainer method \"%s\" option \"%.64s\" has min > max", m->name,
                 o->name);
        return buf;
    }
    if (!o->default_json)
        return NULL;
    char why[160];
    json_error_t e;
    json_t *d = json_loads(o->default_json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (!d)
        snprintf(why, sizeof why, "not JSON: %.120s", e.text);
    int rc = d ? slm__trainer_option_check(o, d, why, sizeof why) : SLM_E_FORMAT;
    json_decref(d);
    if (rc == SLM_OK)
        return NULL;
    snprintf(buf, size, "trainer method \"%s\" option \"%.64s\" has a bad default: %s", m->name,
             o->name, why);
    return buf;
}

static const char *check_method(const slm_trainer_method_t *m, const char *name, char *buf,
                                size_t size)
{
    if (m->struct_size < offsetof(slm_trainer_method_t, reserved) || !m->name ||
        strcmp(m->name, name) != 0) {
        snprintf(buf, size, "trainer method table entry for \"%s\" is too small or has another "
                 "name", name);
        return buf;
    }
    if (!m->prepare || !m->finish) {
        snprintf(buf, size, "trainer method \"%s\" leaves %s NULL", name,
                 m->prepare ? "finish" : "prepare");
        return buf;
    }
    size_t n = 0;
    for (; m->options && n < LIST_MAX && m->options[n]; n++) {
        const char *bad = check_option(m, m->options[n], buf, size);
        if (bad)
            return bad;
        for (size_t k = 0; k < n; k++)
            if (strcmp(m->options[k]->name, m->options[n]->name) == 0) {
                snprintf(buf, size, "trainer method \"%s\" declares option \"%.64s\" twice",
                         name, m->options[n]->name);
                return buf;
            }
    }
    if (n == LIST_MAX)
        return "trainer method's options list is not NULL-terminated";
    return NULL;
}

static const char *check(const slm__plugin_t *p, const void *iface, char *buf, size_t size)
{
    const slm_trainer_iface_t *t = iface;
    if (!t->methods)
        return "trainer interface lists no methods";
    const char *bad = check_names(p, t, buf, size);
    if (bad || t->iface_version < 2)
        return bad;
    if (!t->method_table)
        return "trainer interface version 2 has no method_table";
    size_t i = 0;
    for (; t->methods[i]; i++) {
        if (!t->method_table[i]) {
            snprintf(buf, size, "trainer method table has no entry for \"%s\"", t->methods[i]);
            return buf;
        }
        if ((bad = check_method(t->method_table[i], t->methods[i], buf, size)))
            return bad;
    }
    return t->method_table[i] ? "trainer method table has more entries than methods" : NULL;
}

static void summary(const slm__manifest_t *m, char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "methods:");
    size_t i;
    json_t *el;
    json_array_foreach(json_object_get(m->provides, "methods"), i, el) {
        const char *d = json_string_value(json_object_get(el, "description"));
        if (len < size)
            len += (size_t)snprintf(buf + len, size - len, "%s %s%s%s%s", i ? "," : "",
                                    method_name(el), d ? " (" : "", d ? d : "", d ? ")" : "");
    }
}

/* Version 2 took method_table from `reserved`: every version has this size. */
const slm__kind_t slm__kind_trainer = {
    .name = "trainer",
    .id = SLM_PLUGIN_KIND_TRAINER,
    .iface_min = 1,
    .iface_max = SLM_TRAINER_IFACE_VERSION,
    .iface_min_size = offsetof(slm_trainer_iface_t, reserved),
    .parse = parse,
    .check = check,
    .summary = summary,
};

/* Usable trainer rows whose manifest lists `method`, best first (priority, then
 * discovery order). Returns the count; *rows is allocated (free it). */
static size_t serving(const slm_registry_t *reg, const char *method, const slm__plugin_t ***rows)
{
    *rows = calloc(reg->n_rows + 1, sizeof **rows);
    size_t n = 0;
    for (size_t i = 0; *rows && i < reg->n_rows; i++) {
        const slm__plugin_t *p = reg->rows[i];
        if (!p->manifest_ok || p->m.kind_id != SLM_PLUGIN_KIND_TRAINER ||
            !slm__plugin_usable(p) || !manifest_lists(&p->m, method))
            continue;
        size_t at = n++;
        for (; at > 0 && (*rows)[at - 1]->m.priority < p->m.priority; at--)
            (*rows)[at] = (*rows)[at - 1];
        (*rows)[at] = p;
    }
    return n;
}

size_t slm_registry_trainers_for(const slm_registry_t *reg, const char *method,
                                 const char **names, size_t max)
{
    if (!reg || !method || !names || max == 0)
        return 0;
    const slm__plugin_t **rows;
    size_t n = serving(reg, method, &rows);
    for (size_t i = 0; i < n && i < max; i++)
        names[i] = rows[i]->m.name;
    free(rows);
    return n < max ? n : max;
}

/* The method struct of a loaded version-2 trainer, or why there is none. */
static const slm_trainer_method_t *method_of(slm__plugin_t *p, const char *method,
                                             slm_error_t *err)
{
    const slm_trainer_iface_t *t = slm__plugin_iface(p);
    if (t->iface_version < 2) {
        slm__fail(err, SLM_E_ABI, p->manifest_path, -1,
                  "trainer plugin %s speaks trainer interface version %u, which cannot train: "
                  "method \"%s\" needs version 2", p->m.name, t->iface_version, method);
        return NULL;
    }
    for (size_t i = 0; t->methods[i]; i++)
        if (strcmp(t->methods[i], method) == 0)
            return t->method_table[i];
    /* Not reached: the loader checked the names against the manifest. */
    slm__fail(err, SLM_E_PLUGIN, p->manifest_path, -1, "trainer plugin %s has no method %s",
              p->m.name, method);
    return NULL;
}

const slm_trainer_method_t *slm__trainer_method(slm_registry_t *reg, const char *method,
                                                const char **plugin, slm_error_t *err)
{
    const slm__plugin_t **rows = NULL;
    size_t n = reg && method ? serving(reg, method, &rows) : 0;
    const slm_trainer_method_t *m = NULL;
    slm_error_t why;
    slm_error_init(&why);
    slm__fail(&why, SLM_E_NOT_FOUND, NULL, -1,
              "no usable trainer plugin provides method \"%s\" (see `slmops plugins`)",
              method ? method : "(null)");
    /* One that fails to load is disabled with its reason; the next may serve. */
    for (size_t i = 0; i < n && !m; i++) {
        slm__plugin_t *p = (slm__plugin_t *)rows[i];
        if (slm__plugin_load(reg, p, &why) == SLM_OK && (m = method_of(p, method, &why)) &&
            plugin)
            *plugin = p->m.name;
    }
    free(rows);
    if (!m)
        slm__fail(err, why.code, why.path[0] ? why.path : NULL, -1, "%s", why.message);
    return m;
}
