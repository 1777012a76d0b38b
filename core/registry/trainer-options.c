/* A trainer method's settings as the user gave them (a JSON object), checked
 * against the options the method declares, and the getters prepare reads them by. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/trainer.h"
#include "internal/util.h"

/* A resolved list setting: strings owned here, NULL-terminated. */
typedef struct list {
    char **items;
    size_t n;
} list_t;

struct slm__trainer_options {
    slm_trainer_options_t table;
    const slm_trainer_method_t *method;
    json_t *values;             /* option name -> the user's value, else its default */
    char *json;                 /* the user's settings, compact */
    size_t n_options;
    list_t *lists;              /* per option index, STRINGS only */
};

static int fail_why(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_why(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return SLM_E_INVALID;
}

/* Splits "q, k,v" at commas, dropping the spaces around each name. */
static int split(const char *s, list_t *out, char *why, size_t size)
{
    size_t cap = 1;
    for (const char *c = s; *c; c++)
        cap += *c == ',';
    if (!(out->items = calloc(cap + 1, sizeof *out->items)))
        return fail_why(why, size, "out of memory");
    for (const char *c = s;; c++) {
        const char *end = strchr(c, ',');
        if (!end)
            end = c + strlen(c);
        while (c < end && *c == ' ')
            c++;
        const char *last = end;
        while (last > c && last[-1] == ' ')
            last--;
        if (last == c)
            return fail_why(why, size, "has an empty name in \"%.64s\"", s);
        if (!(out->items[out->n++] = strndup(c, (size_t)(last - c))))
            return fail_why(why, size, "out of memory");
        if (!*end)
            return SLM_OK;
        c = end;
    }
}

static int to_list(const json_t *v, list_t *out, char *why, size_t size)
{
    memset(out, 0, sizeof *out);
    if (json_is_string(v))
        return split(json_string_value(v), out, why, size);
    if (!(out->items = calloc(json_array_size(v) + 1, sizeof *out->items)))
        return fail_why(why, size, "out of memory");
    size_t i;
    json_t *el;
    json_array_foreach(v, i, el)
        if (!(out->items[out->n++] = strdup(json_string_value(el))))
            return fail_why(why, size, "out of memory");
    return SLM_OK;
}

static void list_clear(list_t *l)
{
    for (size_t i = 0; l->items && i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static int check_number(const slm_trainer_option_t *o, const json_t *v, char *why, size_t size)
{
    bool integer = o->type == SLM_TRAINER_OPT_INT;
    if (integer ? !json_is_integer(v) : !json_is_number(v))
        return fail_why(why, size, "must be %s", integer ? "an integer" : "a number");
    double x = json_number_value(v);
    if (x < o->min || x > o->max)
        return fail_why(why, size, "is %g, outside %g..%g", x, o->min, o->max);
    return SLM_OK;
}

static int check_strings(const json_t *v, char *why, size_t size)
{
    if (json_is_string(v)) {
        list_t l;
        int rc = to_list(v, &l, why, size);
        list_clear(&l);
        return rc;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail_why(why, size, "must be a non-empty list of names or a string \"a,b\"");
    size_t i;
    json_t *el;
    json_array_foreach(v, i, el)
        if (!json_is_string(el) || json_string_length(el) == 0 ||
            strlen(json_string_value(el)) != json_string_length(el))
            return fail_why(why, size, "element %zu must be a non-empty string", i);
    return SLM_OK;
}

int slm__trainer_option_check(const slm_trainer_option_t *o, const json_t *v, char *why,
                              size_t size)
{
    switch (o->type) {
    case SLM_TRAINER_OPT_INT:
    case SLM_TRAINER_OPT_FLOAT: return check_number(o, v, why, size);
    case SLM_TRAINER_OPT_BOOL:
        return json_is_boolean(v) ? SLM_OK : fail_why(why, size, "must be true or false");
    case SLM_TRAINER_OPT_STRING:
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            strlen(json_string_value(v)) != json_string_length(v))
            return fail_why(why, size, "must be a non-empty string");
        return SLM_OK;
    case SLM_TRAINER_OPT_STRINGS: return check_strings(v, why, size);
    default: return fail_why(why, size, "has an unknown type %d", (int)o->type);
    }
}

/* ---- the getters prepare calls ---- */

/* The option named `name` and its value: 1 set, 0 absent, SLM_E_INVALID when the
 * method declares no such option or it is of another type than the getter's. */
static int lookup(const slm__trainer_options_t *o, const char *name, int32_t type, bool or_int,
                  const json_t **v, size_t *index)
{
    for (size_t i = 0; name && i < o->n_options; i++) {
        const slm_trainer_option_t *d = o->method->options[i];
        if (strcmp(d->name, name) != 0)
            continue;
        if (d->type != type && !(or_int && d->type == SLM_TRAINER_OPT_INT))
            return SLM_E_INVALID;
        *v = json_object_get(o->values, name);
        *index = i;
        return *v ? 1 : 0;
    }
    return SLM_E_INVALID;
}

static int get_int(void *ctx, const char *name, int64_t *value)
{
    const json_t *v;
    size_t i;
    int rc = lookup(ctx, name, SLM_TRAINER_OPT_INT, false, &v, &i);
    if (rc == 1 && value)
        *value = (int64_t)json_integer_value(v);
    return rc;
}

static int get_float(void *ctx, const char *name, double *value)
{
    const json_t *v;
    size_t i;
    int rc = lookup(ctx, name, SLM_TRAINER_OPT_FLOAT, true, &v, &i);
    if (rc == 1 && value)
        *value = json_number_value(v);
    return rc;
}

static int get_bool(void *ctx, const char *name, bool *value)
{
    const json_t *v;
    size_t i;
    int rc = lookup(ctx, name, SLM_TRAINER_OPT_BOOL, false, &v, &i);
    if (rc == 1 && value)
        *value = json_is_true(v);
    return rc;
}

static int get_string(void *ctx, const char *name, const char **value)
{
    const json_t *v;
    size_t i;
    int rc = lookup(ctx, name, SLM_TRAINER_OPT_STRING, false, &v, &i);
    if (rc == 1 && value)
        *value = json_string_value(v);
    return rc;
}

static int get_strings(void *ctx, const char *name, const char *const **values, size_t *n)
{
    const slm__trainer_options_t *o = ctx;
    const json_t *v;
    size_t i;
    int rc = lookup(o, name, SLM_TRAINER_OPT_STRINGS, false, &v, &i);
    if (rc == 1 && values)
        *values = (const char *const *)o->lists[i].items;
    if (rc == 1 && n)
        *n = o->lists[i].n;
    return rc;
}

/* ---- resolving the user's settings ---- */

static int unknown_key(const slm__trainer_options_t *o, const char *key, slm_error_t *err)
{
    char known[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < o->n_options && len < sizeof known; i++)
        len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "",
                                o->method->options[i]->name);
    return slm__fail(err, SLM_E_INVALID, NULL, -1, "method %s has no setting \"%s\" (%s%s)",
                     o->method->name, key, o->n_options ? "its settings: " : "it takes none",
                     known);
}

/* The user's value of option i, else its default, checked and entered in values. */
static int resolve(slm__trainer_options_t *o, const json_t *given, size_t i, slm_error_t *err)
{
    const slm_trainer_option_t *d = o->method->options[i];
    json_t *v = json_incref(json_object_get(given, d->name));
    const char *from = "setting";
    if (!v && d->default_json) {
        v = json_loads(d->default_json, JSON_DECODE_ANY, NULL);
        from = "default of setting";
    }
    if (!v)
        return SLM_OK;
    char why[160] = "is not JSON";
    int rc = SLM_E_INVALID;
    if (slm__trainer_option_check(d, v, why, sizeof why) == SLM_OK &&
        (d->type != SLM_TRAINER_OPT_STRINGS || to_list(v, &o->lists[i], why, sizeof why) == 0))
        rc = json_object_set(o->values, d->name, v) == 0 ? SLM_OK : SLM_E_NOMEM;
    json_decref(v);
    if (rc == SLM_E_NOMEM)
        return slm__fail(err, rc, NULL, -1, "out of memory");
    if (rc)
        return slm__fail(err, rc, NULL, -1, "method %s: %s \"%s\" %s", o->method->name, from,
                         d->name, why);
    return SLM_OK;
}

static int parse_given(slm__trainer_options_t *o, const char *json, json_t **given,
                       slm_error_t *err)
{
    json_error_t e;
    if (!json || !*json)
        return (*given = json_object()) ? SLM_OK : slm__fail(err, SLM_E_NOMEM, NULL, -1,
                                                             "out of memory");
    if (!(*given = json_loads(json, JSON_REJECT_DUPLICATES, &e)))
        return slm__fail(err, SLM_E_INVALID, NULL, -1,
                         "method %s: settings are not JSON (column %d: %s)", o->method->name,
                         e.column, e.text);
    if (!json_is_object(*given))
        return slm__fail(err, SLM_E_INVALID, NULL, -1,
                         "method %s: settings must be a JSON object", o->method->name);
    const char *key;
    json_t *v;
    json_object_foreach(*given, key, v) {
        size_t i = 0;
        while (i < o->n_options && strcmp(o->method->options[i]->name, key) != 0)
            i++;
        if (i == o->n_options)
            return unknown_key(o, key, err);
    }
    return SLM_OK;
}

slm__trainer_options_t *slm__trainer_options_new(const slm_trainer_method_t *m, const char *json,
                                                 slm_error_t *err)
{
    slm__trainer_options_t *o = calloc(1, sizeof *o);
    if (!o) {
        slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory");
        return NULL;
    }
    o->method = m;
    while (m->options && m->options[o->n_options])
        o->n_options++;
    json_t *given = NULL;
    o->values = json_object();
    o->lists = calloc(o->n_options + 1, sizeof *o->lists);
    int rc = o->values && o->lists ? parse_given(o, json, &given, err)
                                   : slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory");
    for (size_t i = 0; rc == SLM_OK && i < o->n_options; i++)
        rc = resolve(o, given, i, err);
    if (rc == SLM_OK && !(o->json = json_dumps(given, JSON_COMPACT)))
        rc = slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory");
    json_decref(given);
    if (rc) {
        slm__trainer_options_free(o);
        return NULL;
    }
    o->table = (slm_trainer_options_t){
        .struct_size = sizeof o->table,
        .ctx = o,
        .json = o->json,
        .get_int = get_int,
        .get_float = get_float,
        .get_bool = get_bool,
        .get_string = get_string,
        .get_strings = get_strings,
    };
    return o;
}

const slm_trainer_options_t *slm__trainer_options_table(const slm__trainer_options_t *o)
{
    return o ? &o->table : NULL;
}

void slm__trainer_options_free(slm__trainer_options_t *o)
{
    if (!o)
        return;
    for (size_t i = 0; o->lists && i < o->n_options; i++)
        list_clear(&o->lists[i]);
    free(o->lists);
    json_decref(o->values);
    free(o->json);
    free(o);
}
