/* Reading the *.mixes files on the plugin search path: strict parsing (untrusted
 * input, one-line reasons naming the file) and lookup by name, alias or number. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/input.h>
#include <slmops/log.h>

#include "internal/util.h"
#include "jobs/mix-data.h"

#define MIX_MAJOR 1
#define MIX_MAX_BYTES (1024 * 1024)
#define MIX_SUFFIX ".mixes"

static const struct { const char *name; int id; } layer_words[] = {
    {"use_more_bits", LAYER_USE_MORE_BITS},
    {"first_eighth", LAYER_FIRST_EIGHTH},
    {"first_sixteenth", LAYER_FIRST_SIXTEENTH},
    {"middle", LAYER_MIDDLE},
};

typedef struct parse {
    const char *path;
    char reason[256];
} parse_t;

__attribute__((format(printf, 2, 3)))
static bool bad(parse_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof c->reason, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- parsing ---- */

static bool version_ok(parse_t *c, const json_t *v)
{
    unsigned major, minor, patch;
    char end;
    if (!json_is_string(v) ||
        sscanf(json_string_value(v), "%u.%u.%u%c", &major, &minor, &patch, &end) != 3)
        return bad(c, "\"file_format_version\" must be a MAJOR.MINOR.PATCH string");
    if (major != MIX_MAJOR)
        return bad(c, "file_format_version %s: this host reads major version %d",
                   json_string_value(v), MIX_MAJOR);
    return true;
}

static bool string_list(parse_t *c, json_t *v, const char *where)
{
    size_t i;
    json_t *s;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return bad(c, "%s must be a non-empty array of strings", where);
    json_array_foreach(v, i, s)
        if (!json_is_string(s) || json_string_length(s) == 0)
            return bad(c, "%s[%zu] must be a non-empty string", where, i);
    return true;
}

static int category_index(const mix_file_t *f, const char *name)
{
    for (size_t i = 0; i < f->n_cats; i++)
        if (strcmp(f->cats[i].name, name) == 0)
            return (int)i;
    return -1;
}

static bool parse_category(parse_t *c, mix_file_t *f, json_t *o, size_t k)
{
    category_t *cat = &f->cats[k];
    *cat = (category_t){.tied_to = -1};
    const char *key;
    json_t *v;
    if (!json_is_object(o))
        return bad(c, "categories[%zu] must be an object", k);
    json_object_foreach(o, key, v) {
        if (strcmp(key, "name") == 0 && json_is_string(v) && json_string_length(v))
            cat->name = json_string_value(v);
        else if (strcmp(key, "names") == 0 || strcmp(key, "contains") == 0) {
            if (!string_list(c, v, key))
                return false;
            *(key[0] == 'n' ? &cat->names : &cat->contains) = v;
        } else if (strcmp(key, "count") == 0 && json_is_string(v) &&
                   (strcmp(json_string_value(v), "tensors") == 0 ||
                    strcmp(json_string_value(v), "layers") == 0))
            cat->count = json_string_value(v)[0] == 't' ? COUNT_TENSORS : COUNT_LAYERS;
        else if (strcmp(key, "tied_to") == 0 && json_is_string(v) &&
                 (cat->tied_to = category_index(f, json_string_value(v))) >= 0)
            continue;
        else
            return bad(c, "categories[%zu]: \"%s\" is not a valid key here (name, names, "
                       "contains, count \"tensors\"|\"layers\", tied_to an earlier category)",
                       k, key);
    }
    if (!cat->name || (!cat->names && !cat->contains))
        return bad(c, "categories[%zu] needs a \"name\" and \"names\" or \"contains\"", k);
    if (category_index(f, cat->name) >= 0)
        return bad(c, "categories[%zu]: \"%s\" is defined twice", k, cat->name);
    return true;
}

static bool bool_cond(parse_t *c, json_t *v, const char *key, int *out)
{
    if (!json_is_boolean(v))
        return bad(c, "condition \"%s\" must be true or false", key);
    *out = json_is_true(v);
    return true;
}

static bool parse_condition(parse_t *c, const mix_file_t *f, rule_t *r, const char *key, json_t *v)
{
    static const struct { const char *key; size_t off; } ints[] = {
        {"index_below", offsetof(rule_t, index_below)},
        {"n_gqa_min", offsetof(rule_t, n_gqa_min)},
        {"n_expert", offsetof(rule_t, n_expert)},
        {"n_expert_min", offsetof(rule_t, n_expert_min)},
        {"n_layer", offsetof(rule_t, n_layer)},
    };
    if (strcmp(key, "rows_fit") == 0)
        return bool_cond(c, v, key, &r->rows_fit);
    if (strcmp(key, "imatrix") == 0)
        return bool_cond(c, v, key, &r->imatrix);
    bool counted = f->cats[r->category].count != COUNT_NONE;
    if (strcmp(key, "layer") == 0) {
        for (size_t i = 0; json_is_string(v) && i < SLM__ARRAY_LEN(layer_words); i++)
            if (strcmp(json_string_value(v), layer_words[i].name) == 0)
                r->layer = layer_words[i].id;
        if (r->layer < 0)
            return bad(c, "condition \"layer\" must be use_more_bits, first_eighth, "
                       "first_sixteenth or middle");
        return counted || bad(c, "condition \"layer\" on category %s, which has no \"count\"",
                              f->cats[r->category].name);
    }
    for (size_t i = 0; i < SLM__ARRAY_LEN(ints); i++) {
        if (strcmp(key, ints[i].key) != 0)
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000)
            return bad(c, "condition \"%s\" must be an integer 0..1000000", key);
        *(int64_t *)((char *)r + ints[i].off) = json_integer_value(v);
        return i > 0 || counted ||
               bad(c, "condition \"index_below\" on category %s, which has no \"count\"",
                   f->cats[r->category].name);
    }
    /* A test this host cannot make must not be taken as passed. */
    return bad(c, "unknown condition \"%s\"", key);
}

static bool parse_rule(parse_t *c, const mix_file_t *f, const char *mix, json_t *o, size_t k,
                       rule_t *r)
{
    *r = (rule_t){.category = -1, .rows_fit = -1, .imatrix = -1, .layer = -1,
                  .index_below = -1, .n_gqa_min = -1, .n_expert = -1, .n_expert_min = -1,
                  .n_layer = -1};
    json_t *cat = json_object_get(o, "category"), *type = json_object_get(o, "type");
    json_t *when = json_object_get(o, "when");
    if (!json_is_object(o) || !json_is_string(cat) || !json_is_string(type) ||
        json_object_size(o) != 2u + (when != NULL) || (when && !json_is_object(when)))
        return bad(c, "mix %s, rule %zu: expected {\"category\", \"type\"[, \"when\": {...}]}",
                   mix, k + 1);
    if ((r->category = category_index(f, json_string_value(cat))) < 0)
        return bad(c, "mix %s, rule %zu: no category \"%s\"", mix, k + 1, json_string_value(cat));
    r->type = json_string_value(type);
    const char *key;
    json_t *v;
    json_object_foreach(when, key, v) {
        if (!parse_condition(c, f, r, key, v)) {
            char why[sizeof c->reason];
            snprintf(why, sizeof why, "%s", c->reason);
            return bad(c, "mix %s, rule %zu: %s", mix, k + 1, why);
        }
    }
    if (r->layer < 0)
        r->layer = LAYER_ANY;
    return true;
}

static bool parse_mix(parse_t *c, mix_file_t *f, json_t *o, size_t k, slm__mix_t *m)
{
    static const char *const keys[] = {"name", "aliases", "file_type", "type", "rules",
                                       "requires_imatrix"};
    *m = (slm__mix_t){.file = f};
    const char *key;
    json_t *v;
    if (!json_is_object(o))
        return bad(c, "mixes[%zu] must be an object", k);
    json_object_foreach(o, key, v) {
        bool known = false;
        for (size_t i = 0; i < SLM__ARRAY_LEN(keys); i++)
            known = known || strcmp(key, keys[i]) == 0;
        if (!known)
            return bad(c, "mixes[%zu]: unknown key \"%s\"", k, key);
    }
    json_t *name = json_object_get(o, "name"), *ft = json_object_get(o, "file_type");
    json_t *type = json_object_get(o, "type"), *rules = json_object_get(o, "rules");
    json_t *im = json_object_get(o, "requires_imatrix");
    if (!json_is_string(name) || json_string_length(name) == 0 || !json_is_string(type) ||
        !json_is_integer(ft) || json_integer_value(ft) < 0 || json_integer_value(ft) > 65535)
        return bad(c, "mixes[%zu] needs \"name\", \"type\" and \"file_type\" (0..65535)", k);
    m->name = json_string_value(name);
    m->type = json_string_value(type);
    m->file_type = (int32_t)json_integer_value(ft);
    if ((m->aliases = json_object_get(o, "aliases")) && !string_list(c, m->aliases, "aliases"))
        return false;
    if (im && !json_is_boolean(im))
        return bad(c, "mix %s: \"requires_imatrix\" must be true or false", m->name);
    m->needs_imatrix = json_is_true(im);
    if (!rules)
        return true;
    if (!json_is_array(rules))
        return bad(c, "mix %s: \"rules\" must be an array", m->name);
    m->has_rules = true;
    m->rules = calloc(json_array_size(rules) + 1, sizeof *m->rules);
    if (!m->rules)
        return bad(c, "out of memory");
    for (size_t i = 0; i < json_array_size(rules); i++, m->n_rules++)
        if (!parse_rule(c, f, m->name, json_array_get(rules, i), i, &m->rules[i]))
            return false;
    return true;
}

static bool parse_root(parse_t *c, mix_file_t *f)
{
    const char *key;
    json_t *v, *cats = NULL, *mixes = NULL;
    if (!json_is_object(f->root))
        return bad(c, "the top level must be an object");
    json_object_foreach(f->root, key, v) {
        if (strcmp(key, "file_format_version") == 0) {
            if (!version_ok(c, v))
                return false;
        } else if (strcmp(key, "categories") == 0 && json_is_array(v)) {
            cats = v;
        } else if (strcmp(key, "mixes") == 0 && json_is_array(v)) {
            mixes = v;
        } else if (strcmp(key, "description") != 0 || !json_is_string(v)) {
            return bad(c, "top level: \"%s\" is not a valid key here (file_format_version, "
                       "description, categories, mixes)", key);
        }
    }
    if (!json_object_get(f->root, "file_format_version") || !cats || !mixes)
        return bad(c, "needs \"file_format_version\", \"categories\" and \"mixes\"");
    f->cats = calloc(json_array_size(cats) + 1, sizeof *f->cats);
    f->mixes = calloc(json_array_size(mixes) + 1, sizeof *f->mixes);
    if (!f->cats || !f->mixes)
        return bad(c, "out of memory");
    for (size_t i = 0; i < json_array_size(cats); i++, f->n_cats++)
        if (!parse_category(c, f, json_array_get(cats, i), i))
            return false;
    for (size_t i = 0; i < json_array_size(mixes); i++, f->n_mixes++)
        if (!parse_mix(c, f, json_array_get(mixes, i), i, &f->mixes[i]))
            return false;
    return true;
}

static void file_clear(mix_file_t *f)
{
    for (size_t i = 0; i < f->n_mixes; i++)
        free(f->mixes[i].rules);
    free(f->mixes);
    free(f->cats);
    json_decref(f->root);
    free(f->path);
    memset(f, 0, sizeof *f);
}

/* Only a regular file under the cap is read: a FIFO must not block discovery. */
static bool read_file(parse_t *c, mix_file_t *f)
{
    char *text = NULL;
    size_t len = 0;
    slm_error_t err;
    slm_error_init(&err);
    if (slm_input_read_all(c->path, MIX_MAX_BYTES, &text, &len, &err) != SLM_OK) {
        /* The message starts with the path, which the caller's log line names. */
        const char *why = strncmp(err.message, c->path, strlen(c->path)) == 0
                              ? err.message + strlen(c->path) + 2 : err.message;
        return bad(c, "%s", why);
    }
    json_error_t je;
    f->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!f->root)
        return bad(c, "not valid JSON at line %d, column %d: %s", je.line, je.column, je.text);
    return true;
}

static void load_file(slm__mix_set_t *s, const char *path)
{
    mix_file_t *f = &s->files[s->n_files];
    parse_t c = {.path = path};
    *f = (mix_file_t){.path = slm__strdup(path)};
    if (!f->path || !read_file(&c, f) || !parse_root(&c, f)) {
        slm_log(SLM_LOG_WARN, "quantize", "%s: ignored: %s", path,
                f->path ? c.reason : "out of memory");
        file_clear(f);
        return;
    }
    s->n_files++;
    for (size_t i = 0; i < f->n_mixes; i++) {
        const slm__mix_t *m = &f->mixes[i];
        const slm__mix_t *first = slm__mix_find(s, m->name);
        if (first != m)
            slm_log(SLM_LOG_INFO, "quantize", "%s: mix %s is shadowed by %s", path, m->name,
                    first->file->path);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.mixes names of one folder, sorted so that the order is reproducible. */
static size_t list_folder(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    *out = NULL;
    if (!d)
        return 0;
    size_t n = 0, cap = 0, sl = strlen(MIX_SUFFIX);
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len <= sl || strcmp(e->d_name + len - sl, MIX_SUFFIX) != 0)
            continue;
        if (n == cap) {
            char **nv = realloc(v, (cap = cap ? 2 * cap : 8) * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        if (!(v[n] = slm__strdup(e->d_name)))
            break;
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

static void load_folder(slm__mix_set_t *s, const char *dir, size_t len)
{
    char folder[4096];
    if (len == 0 || len >= sizeof folder)
        return;
    memcpy(folder, dir, len);
    folder[len] = '\0';
    char **names;
    size_t n = list_folder(folder, &names);
    mix_file_t *grown = n ? realloc(s->files, (s->n_files + n) * sizeof *grown) : s->files;
    if (grown)
        s->files = grown;
    for (size_t i = 0; i < n; i++) {
        char path[4096 + 256];
        if (grown && snprintf(path, sizeof path, "%s/%s", folder, names[i]) < (int)sizeof path)
            load_file(s, path);
        free(names[i]);
    }
    free(names);
}

slm__mix_set_t *slm__mix_set_load(slm_registry_t *reg)
{
    slm__mix_set_t *s = calloc(1, sizeof *s);
    const char *p = slm_registry_search_path(reg);
    while (s && p && *p) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        load_folder(s, p, len);
        p = end ? end + 1 : NULL;
    }
    return s;
}

void slm__mix_set_free(slm__mix_set_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_files; i++)
        file_clear(&s->files[i]);
    free(s->files);
    free(s);
}

/* ---- lookup ---- */

static bool named(const slm__mix_t *m, const char *name)
{
    size_t i;
    json_t *a;
    if (strcasecmp(m->name, name) == 0)
        return true;
    json_array_foreach(m->aliases, i, a)
        if (strcasecmp(json_string_value(a), name) == 0)
            return true;
    return false;
}

const slm__mix_t *slm__mix_find(const slm__mix_set_t *s, const char *name)
{
    if (!s || !name || !*name)
        return NULL;
    char *end;
    errno = 0;
    long ft = strtol(name, &end, 10);
    bool number = *end == '\0' && errno == 0 && name[0] >= '0' && name[0] <= '9';
    for (size_t f = 0; f < s->n_files; f++)
        for (size_t i = 0; i < s->files[f].n_mixes; i++) {
            const slm__mix_t *m = &s->files[f].mixes[i];
            if (number ? m->file_type == ft : named(m, name))
                return m;
        }
    return NULL;
}

const char *slm__mix_name(const slm__mix_t *m) { return m->name; }
const char *slm__mix_type(const slm__mix_t *m) { return m->type; }
int32_t slm__mix_file_type(const slm__mix_t *m) { return m->file_type; }
bool slm__mix_has_rules(const slm__mix_t *m) { return m->has_rules; }
bool slm__mix_needs_imatrix(const slm__mix_t *m) { return m->needs_imatrix; }

