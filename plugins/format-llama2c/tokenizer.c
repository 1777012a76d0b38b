/* llama2.c's tokenizer.bin (u32 max_token_length, then per token f32 score, i32
 * length, bytes) read into the tokenizer.ggml.* keys of a SentencePiece-style vocab.
 *
 * Token texts and types follow llama.cpp's convert-llama2c-to-ggml: ids 0, 1, 2
 * become <unk> (unknown), <s> and </s> (control) whatever the file says (llama2.c
 * stores "\n<s>\n"), an empty text is a control token, "<0xHH>" a byte token, and
 * spaces turn back into SentencePiece's U+2581 (tokenizer.bin stores them as ' '). */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llama2c.h"

#define TYPE_NORMAL 1
#define TYPE_UNKNOWN 2
#define TYPE_CONTROL 3
#define TYPE_BYTE 6
/* ids llama2.c hard-codes */
#define ID_UNK 0
#define ID_BOS 1
#define ID_EOS 2

/* A record's problem, or NULL; *len is its text length when it is sane. */
static const char *check_record(const l2c_file_t *f, uint64_t at, uint32_t max_len,
                                uint32_t *len)
{
    if (f->size - at < 8)
        return "record header (score, length) runs past the end of the file";
    float score = l2c_f32(f->base + at);
    int32_t n = (int32_t)l2c_u32(f->base + at + 4);
    if (!isfinite(score))
        return "score is not a finite number";
    if (n < 0)
        return "length is negative";
    if ((uint32_t)n > max_len)
        return "length exceeds max_token_length";
    if ((uint64_t)n > f->size - at - 8)
        return "text runs past the end of the file";
    *len = (uint32_t)n;
    return NULL;
}

static const char *check_max_len(const l2c_file_t *f, uint32_t *max_len)
{
    if (f->size < 4)
        return "too short for max_token_length";
    *max_len = l2c_u32(f->base);
    if (*max_len < 1 || *max_len > L2C_MAX_TOKEN_LENGTH)
        return "max_token_length is out of range (1..1048576)";
    return NULL;
}

bool l2c_tokenizer_looks_like(const uint8_t *head, size_t head_len)
{
    if (head_len < 12)
        return false;
    uint32_t max_len = l2c_u32(head);
    float score = l2c_f32(head + 4);
    int32_t len = (int32_t)l2c_u32(head + 8);
    /* Scores are 0 or normal floats; a checkpoint's hidden_dim read as one is not. */
    return max_len >= 1 && max_len <= L2C_MAX_TOKEN_LENGTH &&
           (score == 0.0f || isnormal(score)) && len >= 0 && (uint32_t)len <= max_len;
}

/* Walk every record; NULL when they fill the file exactly, else what is wrong,
 * with *at its offset and *count the records before it. */
static const char *walk(const l2c_file_t *f, uint64_t *at, uint64_t *count, uint64_t *extra)
{
    uint32_t max_len = 0, len = 0;
    const char *why = check_max_len(f, &max_len);
    *at = 0;
    *count = 0;
    *extra = 0;
    if (why)
        return why;
    for (*at = 4; *at < f->size; (*count)++) {
        if ((why = check_record(f, *at, max_len, &len)))
            return why;
        const uint8_t *s = f->base + *at + 8;
        for (uint32_t i = 0; i < len; i++)
            *extra += s[i] == ' ' ? 2 : 0;   /* ' ' becomes 3-byte U+2581 */
        *at += 8 + (uint64_t)len;
    }
    return *count < 3 ? "fewer than 3 tokens (<unk>, <s>, </s> are required)" : NULL;
}

bool l2c_tokenizer_fits(const l2c_file_t *f)
{
    uint64_t at, count, extra;
    return walk(f, &at, &count, &extra) == NULL;
}

static bool is_byte_token(const uint8_t *s, uint32_t len)
{
    static const char hex[] = "0123456789ABCDEFabcdef";
    return len == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>' && s[3] && s[4] &&
           strchr(hex, s[3]) && strchr(hex, s[4]);
}

typedef struct vocab {
    uint64_t n;
    char **text;
    uint64_t *lens;
    float *scores;
    int32_t *types;
    char *pool;
} vocab_t;

static void vocab_free(vocab_t *v)
{
    free(v->text);
    free(v->lens);
    free(v->scores);
    free(v->types);
    free(v->pool);
}

/* Fill v from a file walk() accepted; pool_bytes is enough for every text. */
static void fill(const l2c_file_t *f, vocab_t *v)
{
    static const char *const special[3] = {"<unk>", "<s>", "</s>"};
    static const int32_t special_type[3] = {TYPE_UNKNOWN, TYPE_CONTROL, TYPE_CONTROL};
    char *out = v->pool;
    uint64_t at = 4;
    for (uint64_t id = 0; id < v->n; id++) {
        uint32_t len = l2c_u32(f->base + at + 4);
        const uint8_t *s = f->base + at + 8;
        v->scores[id] = l2c_f32(f->base + at);
        v->text[id] = out;
        if (id <= ID_EOS) {
            size_t n = strlen(special[id]);
            memcpy(out, special[id], n);
            out += n;
            v->types[id] = special_type[id];
        } else {
            v->types[id] = len == 0 ? TYPE_CONTROL
                           : is_byte_token(s, len) ? TYPE_BYTE : TYPE_NORMAL;
            for (uint32_t i = 0; i < len; i++) {
                if (s[i] == ' ') {
                    memcpy(out, "\xe2\x96\x81", 3);
                    out += 3;
                } else {
                    *out++ = (char)s[i];
                }
            }
        }
        v->lens[id] = (uint64_t)(out - v->text[id]);
        at += 8 + (uint64_t)len;
    }
}

static int report(const vocab_t *v, const slm_format_sink_t *s)
{
    const uint32_t unk = ID_UNK, bos = ID_BOS, eos = ID_EOS;
    return s->set_value(s->ctx, "tokenizer.ggml.model", SLM_VALUE_STRING, "llama", 5) ||
           s->set_array(s->ctx, "tokenizer.ggml.tokens", SLM_VALUE_STRING,
                        (const char *const *)v->text, v->lens, v->n) ||
           s->set_array(s->ctx, "tokenizer.ggml.scores", SLM_VALUE_F32, v->scores, NULL,
                        v->n) ||
           s->set_array(s->ctx, "tokenizer.ggml.token_type", SLM_VALUE_I32, v->types, NULL,
                        v->n) ||
           s->set_value(s->ctx, "tokenizer.ggml.unknown_token_id", SLM_VALUE_U32, &unk, 1) ||
           s->set_value(s->ctx, "tokenizer.ggml.bos_token_id", SLM_VALUE_U32, &bos, 1) ||
           s->set_value(s->ctx, "tokenizer.ggml.eos_token_id", SLM_VALUE_U32, &eos, 1);
}

int l2c_tokenizer_check(const l2c_file_t *f, slm_error_t *err)
{
    uint64_t at, count, extra;
    const char *why = walk(f, &at, &count, &extra);
    if (why && at >= 4 && at < f->size)
        return l2c_fail(err, SLM_E_FORMAT, f->path, (int64_t)at, "tokenizer.bin: token %llu: %s",
                        (unsigned long long)count, why);
    if (why)
        return l2c_fail(err, SLM_E_FORMAT, f->path, (int64_t)at, "tokenizer.bin: %s", why);
    return SLM_OK;
}

int l2c_tokenizer_read(const l2c_file_t *f, const slm_format_sink_t *sink, slm_error_t *err)
{
    uint64_t at, count, extra;
    int rc = l2c_tokenizer_check(f, err);
    if (rc)
        return rc;
    walk(f, &at, &count, &extra);
    /* Records are at least 8 bytes, so these sizes are bounded by the file's. */
    vocab_t v = {.n = count};
    uint64_t pool = f->size + extra + 16;
    v.text = calloc((size_t)count, sizeof *v.text);
    v.lens = calloc((size_t)count, sizeof *v.lens);
    v.scores = calloc((size_t)count, sizeof *v.scores);
    v.types = calloc((size_t)count, sizeof *v.types);
    v.pool = malloc((size_t)pool);
    if (!v.text || !v.lens || !v.scores || !v.types || !v.pool) {
        vocab_free(&v);
        return l2c_fail(err, SLM_E_NOMEM, f->path, -1, "out of memory for %llu tokens",
                        (unsigned long long)count);
    }
    fill(f, &v);
    rc = report(&v, sink);
    vocab_free(&v);
    if (rc)
        return l2c_fail(err, SLM_E_PLUGIN, f->path, -1, "the host refused the vocabulary");
    if (l2c_host && l2c_host->log)
        l2c_host->log(SLM_LOG_DEBUG, "format-llama2c", "%s: tokenizer.bin, %llu tokens",
                      f->path, (unsigned long long)count);
    return SLM_OK;
}
