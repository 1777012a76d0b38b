/* `slmops info MODEL [--json] [--tensors] [--checksums]`: what a model file holds —
 * format, architecture, size, hyper-parameters, tensor types, tokenizer, template. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <slmops/chat.h>
#include <slmops/model-file.h>
#include <slmops/types.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/verbs.h"

typedef struct opts {
    const char *path, *model;
    slm_cli_strs_t operands;
    bool json, tensors, checksums;
    long threads;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"-m, --model", "MODEL", SLM_CLI_STR, OFF(model), 0, 0, "the model (or give it as MODEL)"},
    {"--json", NULL, SLM_CLI_FLAG, OFF(json), 0, 0, "one JSON document"},
    {"--tensors", NULL, SLM_CLI_FLAG, OFF(tensors), 0, 0,
     "list every tensor (name, type, shape, bytes)"},
    {"--checksums", NULL, SLM_CLI_FLAG, OFF(checksums), 0, 0,
     "list every tensor with a 64-bit FNV-1a hash of its bytes"},
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Common options", slm_cli_threads_opt, OFF(threads)},
    {0},
};

static const slm_cli_spec_t spec = {
    .verb = "info",
    .synopsis = "MODEL [--json] [--tensors] [--checksums]",
    .about = "Describe a model file (any format a plugin reads: GGUF, a Hugging Face\n"
             "folder, a llama2.c checkpoint, a tokenizer file): format, architecture,\n"
             "parameter count, hyper-parameters, tensor types and sizes, tokenizer kind,\n"
             "vocabulary size and chat template.\n",
    .groups = groups,
    .operand_names = "MODEL",
    .max_operands = 1,
    .operands_offset = OFF(operands),
};

/* Totals of one tensor type. */
typedef struct by_type {
    int32_t type;
    uint64_t count, elements, bytes;
} by_type_t;

typedef struct summary {
    const char *arch, *name, *tok_model, *tok_pre;
    bool has_template;
    size_t template_bytes;
    char template_error[512];      /* why the template does not parse, or "" */
    uint64_t n_params, n_bytes;
    int64_t n_vocab, bos, eos;
    by_type_t *types;
    size_t n_types;
} summary_t;

static uint64_t n_elements(const slm_model_tensor_t *t)
{
    uint64_t n = 1;
    for (int d = 0; d < t->n_dims && d < SLM_MODEL_FILE_MAX_DIMS; d++)
        n *= (uint64_t)t->ne[d];
    return n;
}

static uint64_t fnv1a(const void *data, uint64_t n)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static const char *str_value(const slm_model_file_t *mf, const char *key)
{
    const char *v = NULL;
    return slm_model_file_get_string(mf, key, &v, NULL) == SLM_OK ? v : NULL;
}

static int64_t int_value(const slm_model_file_t *mf, const char *key)
{
    int64_t v = -1;
    return slm_model_file_get_int(mf, key, &v, NULL) == SLM_OK ? v : -1;
}

static int add_type(summary_t *s, const slm_model_tensor_t *t)
{
    size_t i = 0;
    while (i < s->n_types && s->types[i].type != t->type)
        i++;
    if (i == s->n_types) {
        by_type_t *v = realloc(s->types, (s->n_types + 1) * sizeof *v);
        if (!v)
            return -1;
        s->types = v;
        s->types[s->n_types++] = (by_type_t){.type = t->type};
    }
    s->types[i].count++;
    s->types[i].elements += n_elements(t);
    s->types[i].bytes += t->nbytes;
    return 0;
}

static int summarise(const slm_model_file_t *mf, summary_t *s)
{
    memset(s, 0, sizeof *s);
    s->arch = str_value(mf, "general.architecture");
    s->name = str_value(mf, "general.name");
    s->tok_model = str_value(mf, "tokenizer.ggml.model");
    s->tok_pre = str_value(mf, "tokenizer.ggml.pre");
    slm_model_value_t v = {.struct_size = sizeof v};
    s->n_vocab = slm_model_file_get_array(mf, "tokenizer.ggml.tokens", SLM_MF_STRING, &v, NULL)
                     == SLM_OK ? (int64_t)v.n : -1;
    s->bos = int_value(mf, "tokenizer.ggml.bos_token_id");
    s->eos = int_value(mf, "tokenizer.ggml.eos_token_id");
    slm_error_t err;
    slm_error_init(&err);
    const char *src = NULL;
    s->has_template = slm_model_file_get_string(mf, "tokenizer.chat_template", &src, NULL) == SLM_OK;
    slm_chat_template_t *tmpl = NULL;
    if (s->has_template) {
        s->template_bytes = strlen(src);
        if (slm_chat_template_parse(src, s->template_bytes, &tmpl, &err) != SLM_OK)
            snprintf(s->template_error, sizeof s->template_error, "%s", err.message);
        slm_chat_template_free(tmpl);
    }
    for (size_t i = 0; i < slm_model_file_n_tensors(mf); i++) {
        slm_model_tensor_t t = {.struct_size = sizeof t};
        if (slm_model_file_tensor(mf, i, &t) != SLM_OK || add_type(s, &t) != 0)
            return -1;
        s->n_params += n_elements(&t);
        s->n_bytes += t.nbytes;
    }
    return 0;
}

/* Scalars as text; arrays as their length. */
static void value_text(const slm_model_value_t *v, char *buf, size_t cap)
{
    const void *d = v->data;
    switch (v->type) {
    case SLM_MF_U8: snprintf(buf, cap, "%u", *(const uint8_t *)d); break;
    case SLM_MF_I8: snprintf(buf, cap, "%d", *(const int8_t *)d); break;
    case SLM_MF_U16: snprintf(buf, cap, "%u", *(const uint16_t *)d); break;
    case SLM_MF_I16: snprintf(buf, cap, "%d", *(const int16_t *)d); break;
    case SLM_MF_U32: snprintf(buf, cap, "%" PRIu32, *(const uint32_t *)d); break;
    case SLM_MF_I32: snprintf(buf, cap, "%" PRId32, *(const int32_t *)d); break;
    case SLM_MF_U64: snprintf(buf, cap, "%" PRIu64, *(const uint64_t *)d); break;
    case SLM_MF_I64: snprintf(buf, cap, "%" PRId64, *(const int64_t *)d); break;
    case SLM_MF_F32: snprintf(buf, cap, "%g", (double)*(const float *)d); break;
    case SLM_MF_F64: snprintf(buf, cap, "%g", *(const double *)d); break;
    case SLM_MF_BOOL: snprintf(buf, cap, "%s", *(const uint8_t *)d ? "true" : "false"); break;
    case SLM_MF_STRING: snprintf(buf, cap, "%.200s", (const char *)d); break;
    case SLM_MF_ARRAY: snprintf(buf, cap, "[%" PRIu64 " elements]", v->n); break;
    default: snprintf(buf, cap, "?"); break;
    }
}

static json_t *value_json(const slm_model_value_t *v)
{
    const void *d = v->data;
    switch (v->type) {
    case SLM_MF_U8: return json_integer(*(const uint8_t *)d);
    case SLM_MF_I8: return json_integer(*(const int8_t *)d);
    case SLM_MF_U16: return json_integer(*(const uint16_t *)d);
    case SLM_MF_I16: return json_integer(*(const int16_t *)d);
    case SLM_MF_U32: return json_integer(*(const uint32_t *)d);
    case SLM_MF_I32: return json_integer(*(const int32_t *)d);
    case SLM_MF_U64: return json_integer((json_int_t)*(const uint64_t *)d);
    case SLM_MF_I64: return json_integer(*(const int64_t *)d);
    case SLM_MF_F32: return json_real(*(const float *)d);
    case SLM_MF_F64: return json_real(*(const double *)d);
    case SLM_MF_BOOL: return json_boolean(*(const uint8_t *)d);
    case SLM_MF_STRING: return slm_cli_json_text(d, v->n);
    default: return json_pack("{s:I}", "array_length", (json_int_t)v->n);
    }
}

/* Hyper-parameters are the keys under the architecture's prefix ("llama.", ...). */
static bool is_hparam(const summary_t *s, const char *key)
{
    size_t n = s->arch ? strlen(s->arch) : 0;
    return n && strncmp(key, s->arch, n) == 0 && key[n] == '.';
}

static void shape_text(const slm_model_tensor_t *t, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int d = 0; d < t->n_dims && d < SLM_MODEL_FILE_MAX_DIMS && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRId64, d ? "x" : "", t->ne[d]);
}

static void print_tensors(const slm_model_file_t *mf, bool checksums)
{
    printf("\n%-40s %-8s %-20s %12s%s\n", "TENSOR", "TYPE", "SHAPE", "BYTES",
           checksums ? "  FNV-1A" : "");
    for (size_t i = 0; i < slm_model_file_n_tensors(mf); i++) {
        slm_model_tensor_t t = {.struct_size = sizeof t};
        if (slm_model_file_tensor(mf, i, &t) != SLM_OK)
            continue;
        char shape[96];
        shape_text(&t, shape, sizeof shape);
        printf("%-40s %-8s %-20s %12" PRIu64, t.name, slm_type_name(t.type), shape, t.nbytes);
        if (checksums)
            printf("  %016" PRIx64, fnv1a(t.data, t.nbytes));
        printf("\n");
    }
}

static void print_text(const slm_model_file_t *mf, const summary_t *s, const opts_t *o)
{
    printf("file:           %s\nformat:         %s\n", o->path,
           slm_model_file_format(mf) ? slm_model_file_format(mf) : "-");
    printf("architecture:   %s\nname:           %s\n", s->arch ? s->arch : "-",
           s->name ? s->name : "-");
    printf("parameters:     %" PRIu64 " (%.2f M)\n", s->n_params, (double)s->n_params / 1e6);
    printf("hyper-parameters:\n");
    char buf[256];
    for (size_t i = 0; i < slm_model_file_n_values(mf); i++) {
        slm_model_value_t v = {.struct_size = sizeof v};
        if (slm_model_file_value(mf, i, &v) != SLM_OK || !is_hparam(s, v.key))
            continue;
        value_text(&v, buf, sizeof buf);
        printf("  %-38s %s\n", v.key + strlen(s->arch) + 1, buf);
    }
    printf("tensors:        %zu, %" PRIu64 " bytes (%.2f MiB)\n", slm_model_file_n_tensors(mf),
           s->n_bytes, (double)s->n_bytes / (1024.0 * 1024.0));
    if (s->n_types)
        printf("  %-8s %8s %14s %14s\n", "TYPE", "COUNT", "ELEMENTS", "BYTES");
    for (size_t i = 0; i < s->n_types; i++)
        printf("  %-8s %8" PRIu64 " %14" PRIu64 " %14" PRIu64 "\n", slm_type_name(s->types[i].type),
               s->types[i].count, s->types[i].elements, s->types[i].bytes);
    if (s->tok_model)
        printf("tokenizer:      %s (pre-tokenizer %s), %" PRId64 " tokens, bos %" PRId64
               ", eos %" PRId64 "\n", s->tok_model, s->tok_pre ? s->tok_pre : "default",
               s->n_vocab, s->bos, s->eos);
    else
        printf("tokenizer:      none\n");
    if (!s->has_template)
        printf("chat template:  none\n");
    else if (!s->template_error[0])
        printf("chat template:  Jinja, %zu bytes\n", s->template_bytes);
    else
        printf("chat template:  Jinja, %zu bytes, does not parse: %s\n", s->template_bytes,
               s->template_error);
    if (o->tensors)
        print_tensors(mf, o->checksums);
}

static json_t *tensors_json(const slm_model_file_t *mf, bool checksums)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < slm_model_file_n_tensors(mf); i++) {
        slm_model_tensor_t t = {.struct_size = sizeof t};
        if (slm_model_file_tensor(mf, i, &t) != SLM_OK)
            continue;
        json_t *shape = json_array();
        for (int d = 0; d < t.n_dims && d < SLM_MODEL_FILE_MAX_DIMS; d++)
            json_array_append_new(shape, json_integer(t.ne[d]));
        json_t *row = json_pack("{s:s, s:s, s:o, s:I}", "name", t.name, "type",
                                slm_type_name(t.type), "shape", shape, "bytes",
                                (json_int_t)t.nbytes);
        if (row && checksums) {
            char h[17];
            snprintf(h, sizeof h, "%016" PRIx64, fnv1a(t.data, t.nbytes));
            json_object_set_new(row, "fnv1a", json_string(h));
        }
        json_array_append_new(arr, row);
    }
    return arr;
}

static json_t *nullable(const char *s)
{
    return s ? json_string(s) : json_null();
}

static int print_json(const slm_model_file_t *mf, const summary_t *s, const opts_t *o)
{
    json_t *hp = json_object(), *types = json_array();
    for (size_t i = 0; i < slm_model_file_n_values(mf); i++) {
        slm_model_value_t v = {.struct_size = sizeof v};
        if (slm_model_file_value(mf, i, &v) == SLM_OK && is_hparam(s, v.key))
            json_object_set_new(hp, v.key + strlen(s->arch) + 1, value_json(&v));
    }
    for (size_t i = 0; i < s->n_types; i++)
        json_array_append_new(types, json_pack("{s:s, s:I, s:I, s:I}", "type",
                                               slm_type_name(s->types[i].type), "count",
                                               (json_int_t)s->types[i].count, "elements",
                                               (json_int_t)s->types[i].elements, "bytes",
                                               (json_int_t)s->types[i].bytes));
    json_t *tok = s->tok_model
        ? json_pack("{s:s, s:o, s:I, s:I, s:I}", "model", s->tok_model, "pre",
                    nullable(s->tok_pre), "n_vocab", (json_int_t)s->n_vocab, "bos",
                    (json_int_t)s->bos, "eos", (json_int_t)s->eos)
        : json_null();
    json_t *doc = json_pack("{s:o, s:o, s:o, s:o, s:I, s:o, s:{s:I, s:I, s:o}, s:o, s:o}",
                            "file", slm_cli_json_path(o->path), "format", nullable(slm_model_file_format(mf)),
                            "architecture", nullable(s->arch), "name", nullable(s->name),
                            "parameters", (json_int_t)s->n_params, "hyperparameters", hp,
                            "tensors", "count", (json_int_t)slm_model_file_n_tensors(mf),
                            "bytes", (json_int_t)s->n_bytes, "by_type", types,
                            "tokenizer", tok, "chat_template",
                            !s->has_template ? json_null()
                            : json_pack("{s:I, s:o}", "bytes", (json_int_t)s->template_bytes,
                                        "error", nullable(s->template_error[0] ? s->template_error
                                                                               : NULL)));
    if (doc && o->tensors)
        json_object_set_new(doc, "tensor_list", tensors_json(mf, o->checksums));
    return slm_cli_print_json(doc);
}

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if ((o->operands.n > 0) + !!o->model != 1)
        return slm_cli_usage_error("info", "give one MODEL (as MODEL or -m MODEL)");
    o->path = o->model ? o->model : o->operands.v[0];
    o->tensors |= o->checksums;
    return SLM_CLI_OK;
}

int slm_cli_info(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    slm_registry_t *reg = slm_cli_registry_open();
    if (!reg)
        return SLM_CLI_FAILED;
    slm_error_t err;
    slm_error_init(&err);
    slm_model_file_t *mf = NULL;
    summary_t s = {0};
    if (slm_model_file_open(reg, o.path, NULL, &mf, &err) != SLM_OK) {
        rc = slm_cli_fail("info", &err);
    } else if (summarise(mf, &s) != 0) {
        fprintf(stderr, "slmops info: out of memory summarising %s\n", o.path);
        rc = SLM_CLI_FAILED;
    } else if (o.json) {
        rc = print_json(mf, &s, &o);
    } else {
        print_text(mf, &s, &o);
    }
    free(s.types);
    slm_model_file_free(mf);
    slm_registry_free(reg);
    return rc;
}
