/* The synthetic SentencePiece-style vocabulary that `slmops init` writes: valid
 * for slmops and llama.cpp (special ids, 256 byte tokens), deterministic. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/model-file.h>

#include "internal/util.h"
#include "jobs/vocab.h"

/* GGUF token types (llama_token_type). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };

#define SPACE "\xe2\x96\x81"   /* U+2581, SentencePiece's word boundary */

/* Letters in English frequency order, so that short ids go to common pieces. */
static const char letters[] = "etaoinshrdlcumwfgypbvkjxqz";

typedef struct vocab {
    char **text;
    float *score;
    int32_t *type;
    size_t n, cap;
} vocab_t;

static bool push(vocab_t *v, const char *s, int32_t type)
{
    if (v->n == v->cap)
        return false;
    if (!(v->text[v->n] = slm__strdup(s)))
        return false;
    v->type[v->n] = type;
    v->score[v->n] = type == TT_NORMAL ? -(float)v->n : 0.0f;
    v->n++;
    return true;
}

/* Every string of `len` letters, odometer order, each with and without SPACE. */
static bool push_words(vocab_t *v, int len)
{
    int idx[8] = {0};
    char w[8 + sizeof SPACE];
    for (;;) {
        if (v->n == v->cap)
            return true;
        strcpy(w, SPACE);
        for (int i = 0; i < len; i++)
            w[sizeof SPACE - 1 + i] = letters[idx[i]];
        w[sizeof SPACE - 1 + len] = '\0';
        if (!push(v, w, TT_NORMAL) || (v->n < v->cap && !push(v, w + sizeof SPACE - 1, TT_NORMAL)))
            return false;
        int k = len - 1;
        while (k >= 0 && ++idx[k] == 26)
            idx[k--] = 0;
        if (k < 0)
            return true;
    }
}

static bool fill(vocab_t *v)
{
    char s[16];
    if (!push(v, "<unk>", TT_UNKNOWN) || !push(v, "<s>", TT_CONTROL) ||
        !push(v, "</s>", TT_CONTROL))
        return false;
    for (int b = 0; b < 256; b++) {
        snprintf(s, sizeof s, "<0x%02X>", b);
        if (!push(v, s, TT_BYTE))
            return false;
    }
    if (v->n < v->cap && !push(v, SPACE, TT_NORMAL))
        return false;
    for (int c = 0x21; c < 0x7f && v->n < v->cap; c++) {
        snprintf(s, sizeof s, "%s%c", SPACE, c);
        if (!push(v, s, TT_NORMAL) || (v->n < v->cap && !push(v, s + sizeof SPACE - 1, TT_NORMAL)))
            return false;
    }
    for (int len = 2; len <= 6 && v->n < v->cap; len++)
        if (!push_words(v, len))
            return false;
    return v->n == v->cap;
}

static int set_keys(slm_model_file_t *mf, const vocab_t *v, slm_error_t *err)
{
    uint32_t bos = 1, eos = 2, unk = 0;
    uint8_t yes = 1, no = 0;
    int rc;
    if ((rc = slm_model_file_set_string(mf, "tokenizer.ggml.model", "llama", err)) < 0 ||
        (rc = slm_model_file_set_string(mf, "tokenizer.ggml.pre", "default", err)) < 0 ||
        (rc = slm_model_file_set_array(mf, "tokenizer.ggml.tokens", SLM_MF_STRING,
                                       (const void *)v->text, NULL, v->n, err)) < 0 ||
        (rc = slm_model_file_set_array(mf, "tokenizer.ggml.scores", SLM_MF_F32, v->score, NULL,
                                       v->n, err)) < 0 ||
        (rc = slm_model_file_set_array(mf, "tokenizer.ggml.token_type", SLM_MF_I32, v->type,
                                       NULL, v->n, err)) < 0)
        return rc;
    if ((rc = slm_model_file_set_value(mf, "tokenizer.ggml.bos_token_id", SLM_MF_U32, &bos, 0,
                                       err)) < 0 ||
        (rc = slm_model_file_set_value(mf, "tokenizer.ggml.eos_token_id", SLM_MF_U32, &eos, 0,
                                       err)) < 0 ||
        (rc = slm_model_file_set_value(mf, "tokenizer.ggml.unknown_token_id", SLM_MF_U32, &unk,
                                       0, err)) < 0 ||
        (rc = slm_model_file_set_value(mf, "tokenizer.ggml.add_bos_token", SLM_MF_BOOL, &yes, 0,
                                       err)) < 0 ||
        (rc = slm_model_file_set_value(mf, "tokenizer.ggml.add_eos_token", SLM_MF_BOOL, &no, 0,
                                       err)) < 0)
        return rc;
    return SLM_OK;
}

int slm__jobs_write_vocab(slm_model_file_t *mf, size_t n_vocab, slm_error_t *err)
{
    if (n_vocab < 512 || n_vocab > (1u << 24))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "init: a vocabulary of %zu tokens is "
                         "outside [512, 16777216]", n_vocab);
    vocab_t v = {.text = calloc(n_vocab, sizeof *v.text), .score = calloc(n_vocab, sizeof(float)),
                 .type = calloc(n_vocab, sizeof(int32_t)), .cap = n_vocab};
    int rc = v.text && v.score && v.type && fill(&v)
                 ? set_keys(mf, &v, err)
                 : slm__fail(err, SLM_E_NOMEM, NULL, -1, "init: out of memory");
    for (size_t i = 0; v.text && i < v.n; i++)
        free(v.text[i]);
    free(v.text);
    free(v.score);
    free(v.type);
    return rc;
}
