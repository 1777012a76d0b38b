/* The recipe: read, checked against the schema docs/recipe.schema.json spells out (one
 * table per stage type here), and its references resolved, with JSON pointers in errors. */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/common.h"
#include "cli/pipeline/pipeline.h"

typedef enum kind { K_STR, K_NAME, K_REF, K_REFS, K_STRS, K_INT, K_NUM, K_BOOL, K_OBJ,
                    K_MODELS, K_ENUM, K_CONST, K_ARR } kind_t;

typedef struct key {
    const char *name;
    kind_t kind;
    bool required;
    double lo, hi;          /* numbers; K_ENUM: unused */
    const char *values;     /* K_ENUM: "a|b|c" */
} rkey_t;

#define BIG 1e15
static const rkey_t top_keys[] = {
    {"recipe", K_CONST, true, 1, 1, NULL},
    {"name", K_NAME, true, 0, 0, NULL},
    {"description", K_STR, false, 0, 0, NULL},
    {"workdir", K_STR, false, 0, 0, NULL},
    {"threads", K_INT, false, 1, 4096, NULL},
    {"device", K_STR, false, 0, 0, NULL},
    {"inputs", K_OBJ, false, 0, 0, NULL},
    {"stages", K_ARR, true, 0, 0, NULL},   /* its stages are checked on their own */
    {"compare", K_OBJ, false, 0, 0, NULL},
    {0},
};

static const rkey_t distill_keys[] = {
    {"teacher", K_REF, true, 0, 0, NULL},
    {"prompts", K_REF, true, 0, 0, NULL},
    {"student", K_REF, false, 0, 0, NULL},
    {"student_preset", K_STR, false, 0, 0, NULL},
    {"student_vocab", K_ENUM, false, 0, 0, "teacher|data"},
    {"kd_loss", K_ENUM, false, 0, 0, "none|forward-kl|reverse-kl|jsd"},
    {"temperature", K_NUM, false, 0.05, 100, NULL},
    {"alpha", K_NUM, false, 0, 1, NULL},
    {"top_k", K_INT, false, 0, BIG, NULL},
    {"synth", K_OBJ, false, 0, 0, NULL},
    {"train", K_OBJ, false, 0, 0, NULL},
    {0},
};

static const rkey_t finetune_keys[] = {
    {"model", K_REF, true, 0, 0, NULL},
    {"data", K_REF, true, 0, 0, NULL},
    {"val_data", K_REF, false, 0, 0, NULL},
    {"adapters", K_REFS, false, 0, 0, NULL},
    {"method", K_STR, false, 0, 0, NULL},
    {"method_options", K_OBJ, false, 0, 0, NULL},
    {"ctx", K_INT, false, 2, BIG, NULL},
    {"batch", K_INT, false, 1, 4096, NULL},
    {"accum", K_INT, false, 1, BIG, NULL},
    {"epochs", K_INT, false, 1, BIG, NULL},
    {"steps", K_INT, false, 0, BIG, NULL},
    {"lr", K_NUM, false, 0, 1000, NULL},
    {"warmup", K_INT, false, 0, BIG, NULL},
    {"schedule", K_ENUM, false, 0, 0, "linear|cosine|constant"},
    {"seed", K_INT, false, 0, BIG, NULL},
    {"val_split", K_NUM, false, 0, 0.99, NULL},
    {"val_batches", K_INT, false, 0, BIG, NULL},
    {"eval_every", K_INT, false, 0, BIG, NULL},
    {"save_every", K_INT, false, 0, BIG, NULL},
    {"weight_decay", K_NUM, false, 0, 1000, NULL},
    {"clip", K_NUM, false, 0, BIG, NULL},
    {"chat_template", K_STR, false, 0, 0, NULL},
    {0},
};

static const rkey_t quantize_keys[] = {
    {"model", K_REF, true, 0, 0, NULL},
    {"quant", K_STR, true, 0, 0, NULL},
    {"tensor_types", K_STRS, false, 0, 0, NULL},
    {"pure", K_BOOL, false, 0, 0, NULL},
    {"allow_requantize", K_BOOL, false, 0, 0, NULL},
    {"eval", K_REF, false, 0, 0, NULL},
    {"eval_ctx", K_INT, false, 8, BIG, NULL},
    {0},
};

static const rkey_t eval_keys[] = {
    {"models", K_MODELS, true, 0, 0, NULL},
    {"perplexity", K_REF, false, 0, 0, NULL},
    {"task", K_REF, false, 0, 0, NULL},
    {"ctx", K_INT, false, 3, BIG, NULL},
    {"batch", K_INT, false, 1, BIG, NULL},
    {"match", K_ENUM, false, 0, 0, "exact|contains"},
    {"max_tokens", K_INT, false, 1, BIG, NULL},
    {"chat_template", K_STR, false, 0, 0, NULL},
    {0},
};

static const rkey_t bench_keys[] = {
    {"models", K_MODELS, true, 0, 0, NULL},
    {"n_prompt", K_INT, false, 0, 1 << 20, NULL},
    {"n_gen", K_INT, false, 0, 1 << 20, NULL},
    {"reps", K_INT, false, 1, 1000, NULL},
    {"batch", K_INT, false, 1, 1 << 20, NULL},
    {"seed", K_INT, false, 0, BIG, NULL},
    {"prompt", K_STR, false, 0, 0, NULL},
    {"rss_tokens", K_INT, false, 1, 1 << 20, NULL},
    {0},
};

static const rkey_t package_keys[] = {
    {"model", K_REF, true, 0, 0, NULL},
    {"adapters", K_REFS, false, 0, 0, NULL},
    {"chat_template", K_STR, false, 0, 0, NULL},
    {"reports", K_REFS, false, 0, 0, NULL},
    {"title", K_STR, false, 0, 0, NULL},
    {"description", K_STR, false, 0, 0, NULL},
    {"license", K_STR, false, 0, 0, NULL},
    {0},
};

typedef struct stage_type {
    const char *name;
    const rkey_t *keys;
    const char *const *artifacts;   /* what "@STAGE.NAME" may name */
} stage_type_t;

static const char *const distill_out[] = {"model", "student", "data", "log", NULL};
static const char *const finetune_out[] = {"model", "log", NULL};
static const char *const quantize_out[] = {"model", NULL};
static const char *const report_out[] = {"report", NULL};
static const char *const package_out[] = {"folder", "model", "card", NULL};

static const stage_type_t types[] = {
    {"distill", distill_keys, distill_out},
    {"finetune", finetune_keys, finetune_out},
    {"quantize", quantize_keys, quantize_out},
    {"eval", eval_keys, report_out},
    {"bench", bench_keys, report_out},
    {"package", package_keys, package_out},
};
#define N_TYPES (sizeof types / sizeof types[0])

static const stage_type_t *find_type(const char *name)
{
    for (size_t i = 0; name && i < N_TYPES; i++)
        if (strcmp(types[i].name, name) == 0)
            return &types[i];
    return NULL;
}

const char *const *slm_pipe_stage_artifacts(const char *type)
{
    const stage_type_t *t = find_type(type);
    return t ? t->artifacts : NULL;
}

static bool fail(char *msg, size_t cap, const char *ptr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool fail(char *msg, size_t cap, const char *ptr, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(msg, cap, "%s: %s", ptr[0] ? ptr : "/", what);
    return false;
}

/* [a-z][a-z0-9_-]* of at most 64 characters: stage, input and recipe names. */
static bool is_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] < 'a' || s[0] > 'z')
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

bool slm_pipe_is_ref(const char *s)
{
    if (s[0] != '@')
        return false;
    const char *dot = strchr(s, '.');
    if (!dot || dot == s + 1 || !dot[1] || strchr(dot + 1, '.'))
        return false;
    char head[80];
    if ((size_t)(dot - s - 1) >= sizeof head)
        return false;
    snprintf(head, sizeof head, "%.*s", (int)(dot - s - 1), s + 1);
    return is_name(head) && is_name(dot + 1);
}

/* Model labels in tables: letters, digits, '.', '_', '-', at most 64. */
static bool is_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static bool check_value(const rkey_t *k, const json_t *v, const char *ptr, char *msg, size_t cap)
{
    switch (k->kind) {
    case K_STR:
        return json_is_string(v) ? true : fail(msg, cap, ptr, "must be a string");
    case K_NAME:
        if (!json_is_string(v) || !is_name(json_string_value(v)))
            return fail(msg, cap, ptr, "must be a name: a-z, then a-z, 0-9, '_' or '-' (at "
                        "most 64)");
        return true;
    case K_REF:
        if (!json_is_string(v) || !slm_pipe_is_ref(json_string_value(v)))
            return fail(msg, cap, ptr, "must be a reference \"@inputs.NAME\" or "
                        "\"@STAGE.ARTIFACT\"");
        return true;
    case K_REFS:
    case K_STRS:
        if (!json_is_array(v))
            return fail(msg, cap, ptr, "must be an array of %s",
                        k->kind == K_REFS ? "references" : "strings");
        for (size_t i = 0; i < json_array_size(v); i++) {
            const json_t *e = json_array_get(v, i);
            char sub[300];
            snprintf(sub, sizeof sub, "%s/%zu", ptr, i);
            if (!json_is_string(e) || (k->kind == K_REFS && !slm_pipe_is_ref(json_string_value(e))))
                return fail(msg, cap, sub, "must be a %s", k->kind == K_REFS ?
                            "reference \"@inputs.NAME\" or \"@STAGE.ARTIFACT\"" : "string");
        }
        return true;
    case K_CONST:
    case K_INT:
        if (!json_is_integer(v))
            return fail(msg, cap, ptr, "must be an integer");
        if ((double)json_integer_value(v) < k->lo || (double)json_integer_value(v) > k->hi)
            return k->kind == K_CONST ? fail(msg, cap, ptr, "must be %g (this slmops reads "
                                             "recipe version %d)", k->lo,
                                             SLM_PIPE_RECIPE_VERSION)
                                      : fail(msg, cap, ptr, "must be in [%.15g, %.15g]", k->lo,
                                             k->hi);
        return true;
    case K_NUM:
        if (!json_is_number(v))
            return fail(msg, cap, ptr, "must be a number");
        if (json_number_value(v) < k->lo || json_number_value(v) > k->hi)
            return fail(msg, cap, ptr, "must be in [%.15g, %.15g]", k->lo, k->hi);
        return true;
    case K_BOOL:
        return json_is_boolean(v) ? true : fail(msg, cap, ptr, "must be true or false");
    case K_ARR:
        return json_is_array(v) ? true : fail(msg, cap, ptr, "must be an array");
    case K_OBJ:
        return json_is_object(v) ? true : fail(msg, cap, ptr, "must be an object");
    case K_MODELS: {
        if (!json_is_object(v) || json_object_size(v) == 0)
            return fail(msg, cap, ptr, "must be an object of LABEL: \"@REF\", at least one");
        const char *label;
        json_t *e;
        json_object_foreach((json_t *)v, label, e) {
            char sub[300];
            snprintf(sub, sizeof sub, "%s/%s", ptr, label);
            if (!is_label(label))
                return fail(msg, cap, sub, "a model label is letters, digits, '.', '_' or '-'");
            if (!json_is_string(e) || !slm_pipe_is_ref(json_string_value(e)))
                return fail(msg, cap, sub, "must be a reference \"@inputs.NAME\" or "
                            "\"@STAGE.ARTIFACT\"");
        }
        return true;
    }
    case K_ENUM: {
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            size_t n = strlen(s);
            for (const char *p = k->values; *p;) {
                size_t len = strcspn(p, "|");
                if (len == n && memcmp(p, s, n) == 0)
                    return true;
                p += len + (p[len] == '|');
            }
        }
        return fail(msg, cap, ptr, "must be one of %s", k->values);
    }
    }
    return true;
}

static void known_list(const rkey_t *keys, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (const rkey_t *k = keys; k->name && n < cap; k++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", k->name);
}

/* Every key of obj in keys (a stage's also "name" and "type"), each value valid,
 * the required ones present. */
static bool check_keys(const json_t *obj, const rkey_t *keys, bool stage, const char *ptr,
                       const char *what, char *msg, size_t cap)
{
    const char *key;
    json_t *v;
    char sub[300];
    json_object_foreach((json_t *)obj, key, v) {
        snprintf(sub, sizeof sub, "%s/%s", ptr, key);
        if (stage && (strcmp(key, "name") == 0 || strcmp(key, "type") == 0))
            continue;
        const rkey_t *k = keys;
        while (k->name && strcmp(k->name, key) != 0)
            k++;
        if (!k->name) {
            char known[600];
            known_list(keys, known, sizeof known);
            return fail(msg, cap, sub, "unknown setting of %s (known: %s%s)", what,
                        stage ? "name, type, " : "", known);
        }
        if (!check_value(k, v, sub, msg, cap))
            return false;
    }
    for (const rkey_t *k = keys; k->name; k++)
        if (k->required && !json_object_get(obj, k->name))
            return fail(msg, cap, ptr, "%s needs \"%s\"", what, k->name);
    return true;
}

static bool check_stage(const json_t *s, size_t i, char *msg, size_t cap)
{
    char ptr[64], sub[96];
    snprintf(ptr, sizeof ptr, "/stages/%zu", i);
    if (!json_is_object(s))
        return fail(msg, cap, ptr, "a stage must be an object");
    static const rkey_t name_key = {"name", K_NAME, true, 0, 0, NULL};
    const json_t *name = json_object_get(s, "name"), *type = json_object_get(s, "type");
    snprintf(sub, sizeof sub, "%s/name", ptr);
    if (!name)
        return fail(msg, cap, ptr, "a stage needs \"name\"");
    if (!check_value(&name_key, name, sub, msg, cap))
        return false;
    snprintf(sub, sizeof sub, "%s/type", ptr);
    if (!type)
        return fail(msg, cap, ptr, "a stage needs \"type\"");
    const stage_type_t *t = find_type(json_string_value(type));
    if (!t)
        return fail(msg, cap, sub, "must be one of distill|finetune|quantize|eval|bench|package");
    char what[40];
    snprintf(what, sizeof what, "a %s stage", t->name);
    if (!check_keys(s, t->keys, true, ptr, what, msg, cap))
        return false;
    if (strcmp(t->name, "distill") == 0 &&
        !!json_object_get(s, "student") == !!json_object_get(s, "student_preset"))
        return fail(msg, cap, ptr, "a distill stage needs \"student\" or \"student_preset\", "
                    "one of them");
    const char *sv = json_string_value(json_object_get(s, "student_vocab"));
    const char *kd = json_string_value(json_object_get(s, "kd_loss"));
    if (sv && strcmp(sv, "data") == 0 &&
        (!json_object_get(s, "student_preset") || !kd || strcmp(kd, "none") != 0))
        return fail(msg, cap, ptr, "\"student_vocab\": \"data\" is for a \"student_preset\" "
                    "with \"kd_loss\": \"none\" (the student gets a vocabulary of its own)");
    if (strcmp(t->name, "eval") == 0 && !json_object_get(s, "perplexity") &&
        !json_object_get(s, "task"))
        return fail(msg, cap, ptr, "an eval stage needs \"perplexity\" or \"task\" (or both)");
    return true;
}

bool slm_pipe_recipe_check(const json_t *doc, char *msg, size_t cap)
{
    if (!json_is_object(doc))
        return fail(msg, cap, "", "a recipe is a JSON object");
    if (!check_keys(doc, top_keys, false, "", "a recipe", msg, cap))
        return false;
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(doc, "inputs"), key, v) {
        char sub[300];
        snprintf(sub, sizeof sub, "/inputs/%s", key);
        if (!is_name(key))
            return fail(msg, cap, sub, "an input name is a-z, then a-z, 0-9, '_' or '-'");
        if (!json_is_string(v) || !json_string_length(v))
            return fail(msg, cap, sub, "must be a path (relative to the recipe's folder)");
    }
    const json_t *cmp = json_object_get(doc, "compare");
    static const rkey_t cmp_keys[] = {{"teacher", K_STR, true, 0, 0, NULL},
                                     {"student", K_STR, true, 0, 0, NULL}, {0}};
    if (cmp && !check_keys(cmp, cmp_keys, false, "/compare", "\"compare\"", msg, cap))
        return false;
    const json_t *stages = json_object_get(doc, "stages");
    if (!json_is_array(stages) || json_array_size(stages) == 0)
        return fail(msg, cap, "/stages", "must be an array of stages, at least one");
    for (size_t i = 0; i < json_array_size(stages); i++)
        if (!check_stage(json_array_get(stages, i), i, msg, cap))
            return false;
    return true;
}

/* ---- what the schema cannot say: names unique, references to earlier artifacts ---- */

static bool check_ref(const json_t *doc, size_t before, const char *ref, const char *ptr,
                      char *msg, size_t cap)
{
    const char *dot = strchr(ref, '.');
    char head[80];
    snprintf(head, sizeof head, "%.*s", (int)(dot - ref - 1), ref + 1);
    if (strcmp(head, "inputs") == 0) {
        if (!json_object_get(json_object_get(doc, "inputs"), dot + 1))
            return fail(msg, cap, ptr, "%s: the recipe's \"inputs\" have no \"%s\"", ref,
                        dot + 1);
        return true;
    }
    const json_t *stages = json_object_get(doc, "stages");
    for (size_t i = 0; i < before; i++) {
        const json_t *s = json_array_get(stages, i);
        if (strcmp(json_string_value(json_object_get(s, "name")), head) != 0)
            continue;
        const char *const *a = slm_pipe_stage_artifacts(json_string_value(json_object_get(s,
                                                                                          "type")));
        char list[200] = "";
        size_t n = 0;
        for (; *a; a++) {
            if (strcmp(*a, dot + 1) == 0)
                return true;
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", *a);
        }
        return fail(msg, cap, ptr, "%s: stage \"%s\" makes no \"%s\" (it makes %s)", ref, head,
                    dot + 1, list);
    }
    return fail(msg, cap, ptr, "%s: no stage \"%s\" before this one (a stage uses the "
                "artifacts of the stages above it)", ref, head);
}

/* Every reference string under v (stage settings, nested objects and arrays). */
static bool check_refs_in(const json_t *doc, size_t before, const json_t *v, const char *ptr,
                          char *msg, size_t cap)
{
    char sub[400];
    if (json_is_string(v) && slm_pipe_is_ref(json_string_value(v)))
        return check_ref(doc, before, json_string_value(v), ptr, msg, cap);
    if (json_is_array(v))
        for (size_t i = 0; i < json_array_size(v); i++) {
            snprintf(sub, sizeof sub, "%s/%zu", ptr, i);
            if (!check_refs_in(doc, before, json_array_get(v, i), sub, msg, cap))
                return false;
        }
    if (json_is_object(v)) {
        const char *key;
        json_t *e;
        json_object_foreach((json_t *)v, key, e) {
            snprintf(sub, sizeof sub, "%s/%s", ptr, key);
            if (!check_refs_in(doc, before, e, sub, msg, cap))
                return false;
        }
    }
    return true;
}

static bool check_links(const json_t *doc, char *msg, size_t cap)
{
    const json_t *stages = json_object_get(doc, "stages");
    for (size_t i = 0; i < json_array_size(stages); i++) {
        const json_t *s = json_array_get(stages, i);
        const char *name = json_string_value(json_object_get(s, "name"));
        char ptr[64];
        snprintf(ptr, sizeof ptr, "/stages/%zu/name", i);
        if (strcmp(name, "inputs") == 0)
            return fail(msg, cap, ptr, "\"inputs\" names the recipe's inputs; choose another "
                        "stage name");
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_object_get(json_array_get(stages, j), "name")),
                       name) == 0)
                return fail(msg, cap, ptr, "\"%s\" names stage %zu too; stage names are unique",
                            name, j);
        snprintf(ptr, sizeof ptr, "/stages/%zu", i);
        if (!check_refs_in(doc, i, s, ptr, msg, cap))
            return false;
    }
    return true;
}

int slm_pipe_recipe_load(slm_pipe_t *p, const char *path)
{
    json_error_t je;
    p->recipe_path = strdup(path);
    char *slash = strrchr(p->recipe_path, '/');
    p->recipe_dir = slash ? strndup(p->recipe_path, (size_t)(slash - p->recipe_path + 1))
                          : strdup("");
    size_t len = 0;
    char *text = slm_cli_read_text(p->verb, path, &len);
    if (!text)
        return SLM_CLI_USAGE;
    p->recipe = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!p->recipe) {
        fprintf(stderr, "slmops %s: %s: line %d, column %d: %s\n", p->verb, path, je.line,
                je.column, je.text);
        return SLM_CLI_USAGE;
    }
    char msg[700];
    if (!slm_pipe_recipe_check(p->recipe, msg, sizeof msg) ||
        !check_links(p->recipe, msg, sizeof msg)) {
        fprintf(stderr, "slmops %s: %s: %s\n", p->verb, path, msg);
        return SLM_CLI_USAGE;
    }
    return SLM_CLI_OK;
}
