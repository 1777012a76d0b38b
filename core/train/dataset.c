/* Training data files: plain text cut into context windows, or JSONL lines of
 * {"text"}, {"prompt","completion"} or {"messages"}, each tokenized with its loss mask. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <slmops/dataset.h>
#include <slmops/input.h>

#include "internal/util.h"
#include "train/dataset-internal.h"

/* Training files are read whole; larger ones are refused. */
#define MAX_DATA_BYTES (4ull << 30)

void slm_dataset_params_default(slm_dataset_params_t *p)
{
    if (p)
        *p = (slm_dataset_params_t){.struct_size = sizeof *p, .n_ctx = 512};
}

/* ---- building one example ---- */

void slm__example_append(slm__example_builder_t *b, const int32_t *ids, size_t n, bool learned)
{
    if (b->oom || !n)
        return;
    if (b->ex.n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->ex.n + n)
            cap *= 2;
        int32_t *t = realloc(b->ex.tokens, cap * sizeof *t);
        uint8_t *l = t ? realloc(b->ex.learned, cap) : NULL;
        if (t)
            b->ex.tokens = t;
        if (!l) {
            b->oom = true;
            return;
        }
        b->ex.learned = l;
        b->cap = cap;
    }
    memcpy(b->ex.tokens + b->ex.n, ids, n * sizeof *ids);
    memset(b->ex.learned + b->ex.n, learned ? 1 : 0, n);
    b->ex.n += n;
}

int slm__example_encode(const slm_tokenizer_t *tok, const char *text, size_t len,
                        unsigned flags, bool learned, slm__example_builder_t *b, char *why,
                        size_t why_size)
{
    int32_t *ids = NULL;
    size_t n = 0;
    slm_error_t err;
    slm_error_init(&err);
    if (slm_tokenizer_encode(tok, text, len, flags, &ids, &n, &err) != SLM_OK) {
        snprintf(why, why_size, "cannot tokenize: %s", err.message);
        return SLM_E_FORMAT;
    }
    slm__example_append(b, ids, n, learned);
    free(ids);
    return SLM_OK;
}

static void one_token(slm__example_builder_t *b, int32_t id, bool learned)
{
    if (id >= 0)
        slm__example_append(b, &id, 1, learned);
}

/* ---- the store ---- */

static slm__example_store_t *store_new(int32_t pad, int32_t n_ctx)
{
    slm__example_store_t *s = calloc(1, sizeof *s);
    if (s) {
        s->refs = 1;
        s->pad = pad;
        s->n_ctx = n_ctx;
    }
    return s;
}

static void store_release(slm__example_store_t *s)
{
    if (!s || --s->refs > 0)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->ex[i].tokens);
        free(s->ex[i].learned);
    }
    free(s->ex);
    free(s);
}

static bool store_add(slm__example_store_t *s, slm__example_t *ex)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        slm__example_t *v = realloc(s->ex, cap * sizeof *v);
        if (!v)
            return false;
        s->ex = v;
        s->cap = cap;
    }
    s->ex[s->n++] = *ex;
    return true;
}

/* ---- loading ---- */

typedef struct loader {
    const char *path;
    const slm_dataset_params_t *p;
    slm_dataset_t *ds;
    slm_error_t *err;
} loader_t;

__attribute__((format(printf, 4, 5)))
static int bad(loader_t *L, size_t line, int code, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (line)
        return slm__fail(L->err, code, L->path, -1, "%s:%zu: %s", L->path, line, why);
    return slm__fail(L->err, code, L->path, -1, "%s: %s", L->path, why);
}

/* Offset of the first byte that is not valid UTF-8, or len. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!n || i + n > len || (n == 2 && c < 0xc2))
            return i;
        uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1fu : n == 3 ? c & 0x0fu : c & 0x07u;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3fu);
        }
        if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
            (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return i;
        i += n;
    }
    return len;
}

static int keep(loader_t *L, slm__example_builder_t *b)
{
    slm_dataset_t *ds = L->ds;
    if (b->oom || !store_add(ds->store, &b->ex)) {
        free(b->ex.tokens);
        free(b->ex.learned);
        return slm__fail(L->err, SLM_E_NOMEM, L->path, -1, "%s: out of memory", L->path);
    }
    for (size_t i = 0; i < b->ex.n; i++)
        ds->n_scored += i > 0 && b->ex.learned[i];
    ds->n_tokens += b->ex.n;
    return SLM_OK;
}

/* Plain text: tokenized once (with BOS when the vocabulary wants it) and cut into
 * windows of n_ctx tokens, each an example learned whole. */
static int load_text(loader_t *L, const char *text, size_t len)
{
    size_t ok = utf8_valid_prefix((const unsigned char *)text, len);
    if (ok < len) {
        size_t line = 1;
        for (size_t i = 0; i < ok; i++)
            line += text[i] == '\n';
        return bad(L, line, SLM_E_FORMAT, "not valid UTF-8 (byte %zu of the file)", ok);
    }
    const slm_tokenizer_t *tok = L->p->tok;
    slm__example_builder_t all = {0};
    char why[400];
    unsigned flags = slm_tokenizer_add_bos(tok) ? SLM_TOKENIZE_ADD_BOS : 0;
    if (slm__example_encode(tok, text, len, flags, true, &all, why, sizeof why) != SLM_OK)
        return bad(L, 0, SLM_E_FORMAT, "%s", why);
    int rc = SLM_OK;
    size_t w = (size_t)L->p->n_ctx;
    for (size_t at = 0; rc == SLM_OK && !all.oom && at < all.ex.n; at += w) {
        size_t n = all.ex.n - at < w ? all.ex.n - at : w;
        if (n < 2)
            break;   /* one token teaches nothing */
        slm__example_builder_t b = {0};
        slm__example_append(&b, all.ex.tokens + at, n, true);
        rc = keep(L, &b);
    }
    if (all.oom)
        rc = slm__fail(L->err, SLM_E_NOMEM, L->path, -1, "%s: out of memory", L->path);
    free(all.ex.tokens);
    free(all.ex.learned);
    return rc;
}

static const char *string_field(const json_t *o, const char *key, bool *wrong)
{
    const json_t *v = json_object_get(o, key);
    *wrong = v && !json_is_string(v);
    return json_string_value(v);
}

/* One JSONL object into b; why says what is wrong (the caller adds file and line). */
static int line_example(loader_t *L, const json_t *o, slm__example_builder_t *b, char *why,
                        size_t why_size)
{
    const slm_tokenizer_t *tok = L->p->tok;
    bool bos = slm_tokenizer_add_bos(tok);
    const json_t *messages = json_object_get(o, "messages");
    if (messages) {
        if (!json_is_array(messages) || json_array_size(messages) == 0) {
            snprintf(why, why_size, "\"messages\" must be a non-empty array");
            return SLM_E_FORMAT;
        }
        if (!L->p->chat) {
            snprintf(why, why_size, "\"messages\" needs a chat template, and the model has none");
            return SLM_E_FORMAT;
        }
        char *text = json_dumps(messages, JSON_COMPACT);
        int rc = text ? slm__example_from_messages(L->p, text, json_array_size(messages), b,
                                                   why, why_size)
                      : SLM_E_NOMEM;
        free(text);
        return rc;
    }
    bool wrong_p, wrong_c, wrong_t;
    const char *prompt = string_field(o, "prompt", &wrong_p);
    const char *completion = string_field(o, "completion", &wrong_c);
    const char *text = string_field(o, "text", &wrong_t);
    if (wrong_p || wrong_c || wrong_t) {
        snprintf(why, why_size, "\"%s\" must be a string",
                 wrong_p ? "prompt" : wrong_c ? "completion" : "text");
        return SLM_E_FORMAT;
    }
    if (!text && !(prompt && completion)) {
        snprintf(why, why_size, "expected \"text\", \"prompt\" and \"completion\", or "
                 "\"messages\"");
        return SLM_E_FORMAT;
    }
    if (bos)
        one_token(b, slm_tokenizer_bos(tok), false);
    int rc = text ? slm__example_encode(tok, text, json_string_length(json_object_get(o, "text")),
                                        0, true, b, why, why_size)
                  : slm__example_encode(tok, prompt,
                                        json_string_length(json_object_get(o, "prompt")), 0,
                                        false, b, why, why_size);
    if (rc == SLM_OK && !text)
        rc = slm__example_encode(tok, completion,
                                 json_string_length(json_object_get(o, "completion")), 0, true,
                                 b, why, why_size);
    if (rc == SLM_OK)
        one_token(b, slm_tokenizer_eos(tok), true);   /* so the model learns to stop */
    return rc;
}

static int parse_line(loader_t *L, const char *s, size_t len, size_t line, char *why,
                      size_t why_size, slm__example_builder_t *b)
{
    size_t ok = utf8_valid_prefix((const unsigned char *)s, len);
    if (ok < len) {
        snprintf(why, why_size, "not valid UTF-8 (byte %zu of the line)", ok + 1);
        return SLM_E_FORMAT;
    }
    json_error_t je;
    json_t *o = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        snprintf(why, why_size, "not valid JSON (column %d): %s", je.column, je.text);
        return SLM_E_FORMAT;
    }
    int rc = SLM_E_FORMAT;
    if (!json_is_object(o))
        snprintf(why, why_size, "each line must be a JSON object");
    else
        rc = line_example(L, o, b, why, why_size);
    json_decref(o);
    if (rc == SLM_OK && b->ex.n > (size_t)L->p->n_ctx) {
        snprintf(why, why_size, "%zu tokens, more than the context of %d (raise the context, "
                 "or shorten the example)", b->ex.n, L->p->n_ctx);
        rc = SLM_E_FORMAT;
    }
    return rc;
}

static bool blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

static int load_jsonl(loader_t *L, const char *text, size_t len)
{
    size_t line = 0;
    for (const char *s = text, *end = text + len; s < end;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        line++;
        if (!blank(s, n)) {
            slm__example_builder_t b = {.ex = {.line = line}};
            char why[400] = "";
            int rc = parse_line(L, s, n, line, why, sizeof why, &b);
            if (rc == SLM_OK) {
                if ((rc = keep(L, &b)) != SLM_OK)
                    return rc;
            } else {
                free(b.ex.tokens);
                free(b.ex.learned);
                if (rc == SLM_E_NOMEM || !L->p->skip_bad_lines)
                    return bad(L, line, rc, "%s", why);
                if (!L->ds->n_skipped++)
                    snprintf(L->ds->first_skip, sizeof L->ds->first_skip, "%s:%zu: %s",
                             L->path, line, why);
            }
        }
        s += n + (nl != NULL);
    }
    return SLM_OK;
}

static bool is_jsonl(const char *path)
{
    size_t n = strlen(path);
    return n > 6 && strcmp(path + n - 6, ".jsonl") == 0;
}

static slm_dataset_t *dataset_new(slm__example_store_t *store)
{
    slm_dataset_t *ds = calloc(1, sizeof *ds);
    if (ds)
        ds->store = store;
    return ds;
}

/* Every example of the store, in file order. */
static int index_all(slm_dataset_t *ds)
{
    ds->n = ds->store->n;
    ds->idx = malloc((ds->n ? ds->n : 1) * sizeof *ds->idx);
    if (!ds->idx)
        return SLM_E_NOMEM;
    for (size_t i = 0; i < ds->n; i++)
        ds->idx[i] = i;
    return SLM_OK;
}

int slm_dataset_load(const char *path, const slm_dataset_params_t *p, slm_dataset_t **out,
                     slm_error_t *err)
{
    if (out)
        *out = NULL;
    if (!path || !p || !p->tok || !out || p->n_ctx < 2)
        return slm__fail(err, SLM_E_INVALID, path, -1, "dataset: no path, tokenizer or result, "
                         "or a context under 2 tokens");
    char *text = NULL;
    size_t len = 0;
    int rc = slm_input_read_all(path, MAX_DATA_BYTES, &text, &len, err);
    if (rc != SLM_OK)
        return rc;
    int32_t pad = slm_tokenizer_pad(p->tok);
    if (pad < 0)
        pad = slm_tokenizer_eos(p->tok) >= 0 ? slm_tokenizer_eos(p->tok) : 0;
    slm__example_store_t *store = store_new(pad, p->n_ctx);
    slm_dataset_t *ds = store ? dataset_new(store) : NULL;
    if (!ds) {
        store_release(store);
        free(text);
        return slm__fail(err, SLM_E_NOMEM, path, -1, "%s: out of memory", path);
    }
    loader_t L = {.path = path, .p = p, .ds = ds, .err = err};
    rc = is_jsonl(path) ? load_jsonl(&L, text, len) : load_text(&L, text, len);
    free(text);
    if (rc == SLM_OK && index_all(ds) != SLM_OK)
        rc = slm__fail(err, SLM_E_NOMEM, path, -1, "%s: out of memory", path);
    if (rc == SLM_OK && ds->n == 0)
        rc = ds->n_skipped ? bad(&L, 0, SLM_E_FORMAT, "no example left after skipping %zu bad "
                                 "line(s); the first: %s", ds->n_skipped, ds->first_skip)
                           : bad(&L, 0, SLM_E_FORMAT, "holds no example");
    if (rc != SLM_OK) {
        slm_dataset_free(ds);
        return rc;
    }
    *out = ds;
    return SLM_OK;
}

void slm_dataset_free(slm_dataset_t *ds)
{
    if (!ds)
        return;
    store_release(ds->store);
    free(ds->idx);
    free(ds);
}

size_t slm_dataset_n_examples(const slm_dataset_t *ds)
{
    return ds ? ds->n : 0;
}

uint64_t slm_dataset_n_tokens(const slm_dataset_t *ds)
{
    return ds ? ds->n_tokens : 0;
}

uint64_t slm_dataset_n_scored(const slm_dataset_t *ds)
{
    return ds ? ds->n_scored : 0;
}

size_t slm_dataset_n_skipped(const slm_dataset_t *ds)
{
    return ds ? ds->n_skipped : 0;
}

const char *slm_dataset_first_skip(const slm_dataset_t *ds)
{
    return ds ? ds->first_skip : "";
}

int slm_dataset_example(const slm_dataset_t *ds, size_t i, const int32_t **tokens,
                        const uint8_t **learned, size_t *n, size_t *line)
{
    if (!ds || i >= ds->n)
        return SLM_E_INVALID;
    const slm__example_t *e = &ds->store->ex[ds->idx[i]];
    if (tokens)
        *tokens = e->tokens;
    if (learned)
        *learned = e->learned;
    if (n)
        *n = e->n;
    if (line)
        *line = e->line;
    return SLM_OK;
}

/* ---- validation split ---- */

/* A subset of ds's examples (indices into ds), keeping ds's file order. */
static slm_dataset_t *subset(const slm_dataset_t *ds, const size_t *pick, size_t n)
{
    slm_dataset_t *s = dataset_new(ds->store);
    if (!s)
        return NULL;
    ds->store->refs++;
    s->idx = malloc((n ? n : 1) * sizeof *s->idx);
    if (!s->idx) {
        slm_dataset_free(s);
        return NULL;
    }
    s->n = n;
    for (size_t i = 0; i < n; i++) {
        s->idx[i] = ds->idx[pick[i]];
        const slm__example_t *e = &ds->store->ex[s->idx[i]];
        s->n_tokens += e->n;
        for (size_t k = 1; k < e->n; k++)
            s->n_scored += e->learned[k];
    }
    return s;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int slm_dataset_split(const slm_dataset_t *ds, double fraction, uint64_t seed,
                      slm_dataset_t **train, slm_dataset_t **val, slm_error_t *err)
{
    if (!ds || !train || !val || !(fraction >= 0.0 && fraction < 1.0))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "dataset split: the fraction must be in "
                         "[0, 1)");
    *train = *val = NULL;
    size_t n_val = (size_t)(fraction * (double)ds->n + 0.999999);
    if (fraction > 0.0 && n_val == 0 && ds->n >= 2)
        n_val = 1;
    if (n_val >= ds->n)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "dataset split: %zu example(s) cannot give "
                         "a validation set of %zu and keep one to train on", ds->n, n_val);
    size_t *order = malloc((ds->n ? ds->n : 1) * sizeof *order);
    if (!order || slm__dataset_order(ds->n, seed, 0, order) != SLM_OK) {
        free(order);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "dataset split: out of memory");
    }
    size_t n_train = ds->n - n_val;
    qsort(order, n_train, sizeof *order, cmp_size);   /* each part keeps file order */
    qsort(order + n_train, n_val, sizeof *order, cmp_size);
    *train = subset(ds, order, n_train);
    *val = subset(ds, order + n_train, n_val);
    free(order);
    if (!*train || !*val) {
        slm_dataset_free(*train);
        slm_dataset_free(*val);
        *train = *val = NULL;
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "dataset split: out of memory");
    }
    return SLM_OK;
}
