/* A student's own vocabulary, cut from its teacher's: the tokens a data set uses, the
 * byte alphabet and every special token, with the merges that build them.
 *
 * Why it is safe: byte-level BPE applies, at each step, the lowest-ranked merge whose
 * two parts are next to each other. Every merge the teacher's tokenizer applied to the
 * data built a token that is either in the output (kept: the data uses it) or a part of
 * a later merge whose result is kept (kept by the closure below). A dropped merge was
 * never the lowest-ranked candidate while the data was tokenized, so dropping it changes
 * no choice: the student's tokenizer turns the data into the same tokens, renumbered.
 * Text the data never showed still tokenizes (the byte alphabet covers every byte), in
 * more and shorter tokens. SentencePiece vocabularies merge by score over whatever the
 * vocabulary holds, with no such guarantee, and are refused. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/model-file.h>

#include "internal/model-file.h"
#include "internal/util.h"
#include "jobs/vocab.h"
#include "tokenizer/tokenizer-internal.h"

/* GGUF token types (llama_token_type) a trimmed vocabulary always keeps. */
enum { TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4 };

typedef struct trim {
    const slm_model_file_t *from;
    slm_model_value_t tokens, types, merges;
    bool has_types;
    size_t n;
    slm__tok_str_t *text;      /* views of the token strings, for the index */
    slm__tok_index_t index;
    bool *keep;
    int32_t *new_id;           /* old id -> new id, -1 when dropped */
    int32_t (*merge_ids)[3];   /* left, right, result; -1 when a part is no token */
    slm_error_t *err;
} trim_t;

static bool is_id_key(const char *key)
{
    size_t n = strlen(key), suffix = strlen("_token_id");
    return strncmp(key, "tokenizer.", 10) == 0 && n > suffix &&
           strcmp(key + n - suffix, "_token_id") == 0;
}

static bool is_special_type(const trim_t *t, size_t i)
{
    if (!t->has_types)
        return false;
    int32_t type = ((const int32_t *)t->types.data)[i];
    return type == TT_UNKNOWN || type == TT_CONTROL || type == TT_USER_DEFINED;
}

/* One code point: GPT-2's byte alphabet maps every byte to one. */
static bool is_one_char(const slm__tok_str_t *s)
{
    return s->len > 0 && slm__tok_utf8_len((unsigned char)s->s[0]) == s->len;
}

static int32_t find(const trim_t *t, const char *s, size_t len)
{
    return slm__tok_index_find(&t->index, t->text, s, len);
}

static int load(trim_t *t)
{
    const char *model = NULL;
    if (slm_model_file_get_string(t->from, "tokenizer.ggml.model", &model, NULL) != SLM_OK ||
        strcmp(model, "gpt2") != 0)
        return slm__fail(t->err, SLM_E_UNSUPPORTED, NULL, -1, "a vocabulary cut to a data "
                         "set needs a byte-level BPE vocabulary (tokenizer.ggml.model 'gpt2'); "
                         "this one is '%s'", model ? model : "(none)");
    t->tokens.struct_size = t->types.struct_size = t->merges.struct_size =
        sizeof(slm_model_value_t);
    if (slm_model_file_get_array(t->from, "tokenizer.ggml.tokens", SLM_MF_STRING, &t->tokens,
                                 NULL) != SLM_OK ||
        slm_model_file_get_array(t->from, "tokenizer.ggml.merges", SLM_MF_STRING, &t->merges,
                                 NULL) != SLM_OK)
        return slm__fail(t->err, SLM_E_FORMAT, NULL, -1, "the vocabulary lacks "
                         "tokenizer.ggml.tokens or tokenizer.ggml.merges");
    t->n = (size_t)t->tokens.n;
    t->has_types = slm_model_file_get_array(t->from, "tokenizer.ggml.token_type", SLM_MF_I32,
                                            &t->types, NULL) == SLM_OK && t->types.n == t->n;
    t->text = calloc(t->n, sizeof *t->text);
    t->keep = calloc(t->n, sizeof *t->keep);
    t->new_id = malloc(t->n * sizeof *t->new_id);
    t->merge_ids = malloc((t->merges.n ? t->merges.n : 1) * sizeof *t->merge_ids);
    if (!t->text || !t->keep || !t->new_id || !t->merge_ids)
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "out of memory");
    const char *const *s = t->tokens.data;
    for (size_t i = 0; i < t->n; i++)
        t->text[i] = (slm__tok_str_t){s[i], (uint32_t)t->tokens.lens[i]};
    /* A duplicate keeps its first id, as the tokenizer's lookup does. */
    if (slm__tok_index_build(&t->index, t->text, t->n, true, NULL) != SLM_OK)
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "out of memory");
    return SLM_OK;
}

/* Each merge "left right" as token ids; the result is left and right joined. */
static int resolve_merges(trim_t *t)
{
    const char *const *m = t->merges.data;
    size_t longest = 1;
    for (uint64_t i = 0; i < t->merges.n; i++)
        if (t->merges.lens[i] > longest)
            longest = (size_t)t->merges.lens[i];
    char *buf = malloc(longest);
    if (!buf)
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "out of memory");
    for (uint64_t i = 0; i < t->merges.n; i++) {
        int32_t *ids = t->merge_ids[i];
        ids[0] = ids[1] = ids[2] = -1;
        size_t len = (size_t)t->merges.lens[i];
        /* As llama.cpp: the separator is the first space after the first byte. */
        const char *sp = len > 1 ? memchr(m[i] + 1, ' ', len - 1) : NULL;
        if (!sp)
            continue;
        size_t ll = (size_t)(sp - m[i]), rl = len - ll - 1;
        memcpy(buf, m[i], ll);
        memcpy(buf + ll, sp + 1, rl);
        ids[0] = find(t, m[i], ll);
        ids[1] = find(t, sp + 1, rl);
        ids[2] = find(t, buf, ll + rl);
    }
    free(buf);
    return SLM_OK;
}

/* Every *_token_id the file names (BOS, EOS, padding ...) stays. */
static void keep_named_ids(trim_t *t)
{
    for (size_t i = 0; i < slm_model_file_n_values(t->from); i++) {
        slm_model_value_t v = {.struct_size = sizeof v};
        int64_t id;
        if (slm_model_file_value(t->from, i, &v) != SLM_OK ||
            !is_id_key(v.key) ||
            slm_model_file_get_int(t->from, v.key, &id, NULL) != SLM_OK)
            continue;
        if (id >= 0 && (uint64_t)id < t->n)
            t->keep[id] = true;
    }
}

/* The parts of every merge whose result is kept, until nothing changes (ranks need
 * not be in build order in a hand-made file, so one pass is not enough in general). */
static void close_over_merges(trim_t *t)
{
    for (bool changed = true; changed;) {
        changed = false;
        for (uint64_t i = t->merges.n; i-- > 0;) {
            const int32_t *ids = t->merge_ids[i];
            if (ids[0] < 0 || ids[1] < 0 || ids[2] < 0 || !t->keep[ids[2]])
                continue;
            for (int k = 0; k < 2; k++)
                if (!t->keep[ids[k]]) {
                    t->keep[ids[k]] = changed = true;
                }
        }
    }
}

/* Keep the elements of a per-token array (tokens, types, scores, or any other
 * tokenizer.* array as long as the vocabulary) at the kept ids. */
static int cut_array(trim_t *t, slm_model_file_t *to, const slm_model_value_t *v)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += t->keep[i];
    if (v->elem_type == SLM_MF_STRING) {
        const char **s = malloc((n ? n : 1) * sizeof *s);
        uint64_t *lens = malloc((n ? n : 1) * sizeof *lens);
        int rc = s && lens ? SLM_OK : slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "out of memory");
        for (size_t i = 0, k = 0; rc == SLM_OK && i < t->n; i++)
            if (t->keep[i]) {
                s[k] = ((const char *const *)v->data)[i];
                lens[k++] = v->lens[i];
            }
        if (rc == SLM_OK)
            rc = slm_model_file_set_array(to, v->key, SLM_MF_STRING, s, lens, n, t->err);
        free(s);
        free(lens);
        return rc;
    }
    size_t size = slm__mf_scalar_size(v->elem_type);
    unsigned char *out = size ? malloc(n ? n * size : 1) : NULL;
    if (!out)
        return size ? slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "out of memory")
                    : slm__fail(t->err, SLM_E_FORMAT, NULL, -1, "%s: an array of arrays",
                                v->key);
    for (size_t i = 0, k = 0; i < t->n; i++)
        if (t->keep[i])
            memcpy(out + size * k++, (const unsigned char *)v->data + size * i, size);
    int rc = slm_model_file_set_array(to, v->key, v->elem_type, out, NULL, n, t->err);
    free(out);
    return rc;
}

/* The merges among kept tokens, in their rank order. */
static int cut_merges(trim_t *t, slm_model_file_t *to)
{
    uint64_t nm = 0;
    const char **m = malloc((t->merges.n ? t->merges.n : 1) * sizeof *m);
    uint64_t *lens = malloc((t->merges.n ? t->merges.n : 1) * sizeof *lens);
    if (!m || !lens) {
        free(m);
        free(lens);
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "out of memory");
    }
    for (uint64_t i = 0; i < t->merges.n; i++) {
        const int32_t *ids = t->merge_ids[i];
        if (ids[0] >= 0 && ids[1] >= 0 && ids[2] >= 0 && t->keep[ids[0]] && t->keep[ids[1]] &&
            t->keep[ids[2]]) {
            m[nm] = ((const char *const *)t->merges.data)[i];
            lens[nm++] = t->merges.lens[i];
        }
    }
    int rc = slm_model_file_set_array(to, "tokenizer.ggml.merges", SLM_MF_STRING, m, lens, nm,
                                      t->err);
    free(m);
    free(lens);
    return rc;
}

/* Every tokenizer.* entry of the source into `to`: per-token arrays and the merges
 * cut, token ids renumbered, the rest as it is. */
static int write(trim_t *t, slm_model_file_t *to, uint32_t *n_kept)
{
    int rc = slm_model_file_copy_values(to, t->from, "tokenizer.", t->err);
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        t->new_id[i] = t->keep[i] ? (int32_t)n++ : -1;
    if (rc >= 0)
        rc = cut_merges(t, to);
    for (size_t i = 0; rc >= 0 && i < slm_model_file_n_values(t->from); i++) {
        slm_model_value_t v = {.struct_size = sizeof v};
        int64_t id;
        if (slm_model_file_value(t->from, i, &v) != SLM_OK || strncmp(v.key, "tokenizer.", 10))
            continue;
        if (v.type == SLM_MF_ARRAY && v.n == t->n && strcmp(v.key, "tokenizer.ggml.merges"))
            rc = cut_array(t, to, &v);
        else if (strcmp(v.key, "tokenizer.huggingface.json") == 0)
            slm_model_file_remove_value(to, v.key);   /* it describes the whole vocabulary */
        else if (is_id_key(v.key) && slm_model_file_get_int(t->from, v.key, &id, NULL) == SLM_OK &&
                 id >= 0 && (uint64_t)id < t->n) {
            uint32_t nid = (uint32_t)t->new_id[id];
            rc = slm_model_file_set_value(to, v.key, SLM_MF_U32, &nid, sizeof nid, t->err);
        }
    }
    if (rc >= 0)
        *n_kept = (uint32_t)n;
    return rc < 0 ? rc : SLM_OK;
}

int slm__vocab_trim(const slm_model_file_t *from, const bool *used, slm_model_file_t *to,
                    uint32_t *n_kept, slm_error_t *err)
{
    trim_t t = {.from = from, .err = err};
    int rc = load(&t);
    if (rc == SLM_OK)
        rc = resolve_merges(&t);
    if (rc == SLM_OK) {
        for (size_t i = 0; i < t.n; i++)
            t.keep[i] = used[i] || is_special_type(&t, i) || is_one_char(&t.text[i]);
        keep_named_ids(&t);
        close_over_merges(&t);
        rc = write(&t, to, n_kept);
    }
    slm__tok_index_free(&t.index);
    free(t.text);
    free(t.keep);
    free(t.new_id);
    free(t.merge_ids);
    return rc;
}
