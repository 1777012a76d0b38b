/* SentencePiece tokenizer.model (a protobuf ModelProto) parsed by hand from its
 * wire format into tokenizer.ggml.* keys, as llama.cpp's converters map it.
 *
 * What is read (sentencepiece_model.proto): ModelProto.pieces (1) with piece (1,
 * string), score (2, float) and type (3, enum: 1 normal, 2 unknown, 3 control,
 * 4 user-defined, 5 unused, 6 byte; the same numbers as GGUF's token types);
 * trainer_spec (2): model_type (3; default 1 UNIGRAM), unk/bos/eos/pad ids
 * (40..43); normalizer_spec (3): add_dummy_prefix (3), remove_extra_whitespaces
 * (4), both true by default. Everything else is skipped by wire type. Only BPE
 * models are accepted: a unigram model's scores are log-probabilities for Viterbi
 * segmentation, and reading them as merge priorities would tokenize wrongly. */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/plugin-util.h"
#include "sentencepiece.h"

const slm_host_t *spm_host;

#define WIRE_VARINT 0
#define WIRE_I64 1
#define WIRE_LEN 2
#define WIRE_I32 5
#define MODEL_BPE 2
#define TYPE_NORMAL 1
#define TYPE_BYTE 6

typedef struct reader {
    const char *path;
    const uint8_t *base;
    uint64_t size;
    slm_error_t *err;   /* NULL while probing */
} reader_t;

/* A message being read: [pos, end) inside the file. */
typedef struct msg {
    uint64_t pos, end;
    const char *name;
} msg_t;

typedef struct piece {
    const uint8_t *text;
    uint64_t len;
    float score;
    int32_t type;
} piece_t;

typedef struct spec {
    int64_t model_type;
    int64_t model_type_at;       /* -1: absent (the default applies) */
    int64_t id[4];               /* unk, bos, eos, pad */
    int64_t id_at[4];
    bool add_dummy_prefix, remove_extra_whitespaces;
    uint64_t n_pieces;
} spec_t;

static const char *const id_names[4] = {"unk_id", "bos_id", "eos_id", "pad_id"};
static const char *const id_keys[4] = {
    "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id"};

__attribute__((format(printf, 4, 5)))
static int fail(const reader_t *r, int code, int64_t offset, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = plugin_vfail(r->err, code, r->path, offset, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- wire format ---- */

static int varint(const reader_t *r, msg_t *m, uint64_t *v, const char *what)
{
    uint64_t at = m->pos;
    *v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (m->pos >= m->end)
            return fail(r, SLM_E_FORMAT, (int64_t)at, "%s: varint (%s) runs past the end of "
                        "the message", m->name, what);
        uint8_t b = r->base[m->pos++];
        /* The 10th byte holds bit 63 only; anything else overflows or runs longer. */
        if (i == 9 && b > 1)
            break;
        *v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80))
            return 0;
    }
    return fail(r, SLM_E_FORMAT, (int64_t)at, "%s: varint (%s) overflows 64 bits or is "
                "longer than 10 bytes", m->name, what);
}

static int tag(const reader_t *r, msg_t *m, uint32_t *field, unsigned *wire, uint64_t *at)
{
    uint64_t v;
    *at = m->pos;
    if (varint(r, m, &v, "field tag"))
        return -1;
    *wire = (unsigned)(v & 7);
    if (v >> 3 == 0 || v >> 3 > 0x1fffffff)
        return fail(r, SLM_E_FORMAT, (int64_t)*at, "%s: invalid field number %llu", m->name,
                    (unsigned long long)(v >> 3));
    *field = (uint32_t)(v >> 3);
    return 0;
}

/* A length-delimited field's payload as a sub-message. */
static int sub(const reader_t *r, msg_t *m, msg_t *out, const char *name)
{
    uint64_t at = m->pos, len;
    if (varint(r, m, &len, "length"))
        return -1;
    if (len > m->end - m->pos)
        return fail(r, SLM_E_FORMAT, (int64_t)at, "%s: length %llu of %s runs past the end "
                    "of the message (%llu bytes left)", m->name, (unsigned long long)len, name,
                    (unsigned long long)(m->end - m->pos));
    *out = (msg_t){.pos = m->pos, .end = m->pos + len, .name = name};
    m->pos += len;
    return 0;
}

static int fixed(const reader_t *r, msg_t *m, unsigned n, uint64_t *v, const char *what)
{
    *v = 0;
    if (m->end - m->pos < n)
        return fail(r, SLM_E_FORMAT, (int64_t)m->pos, "%s: %u-byte %s runs past the end of "
                    "the message", m->name, n, what);
    for (unsigned i = 0; i < n; i++)
        *v |= (uint64_t)r->base[m->pos + i] << (8 * i);
    m->pos += n;
    return 0;
}

static int skip(const reader_t *r, msg_t *m, unsigned wire, uint32_t field, uint64_t at)
{
    uint64_t v;
    msg_t ignored;
    switch (wire) {
    case WIRE_VARINT: return varint(r, m, &v, "skipped field");
    case WIRE_I64: return fixed(r, m, 8, &v, "skipped field");
    case WIRE_LEN: return sub(r, m, &ignored, "skipped field");
    case WIRE_I32: return fixed(r, m, 4, &v, "skipped field");
    default:
        return fail(r, SLM_E_FORMAT, (int64_t)at, "%s: field %u has wire type %u (%s)",
                    m->name, field, wire, wire == 3 || wire == 4 ? "groups are not supported"
                                                               : "no such wire type");
    }
}

static int expect(const reader_t *r, const msg_t *m, uint32_t field, unsigned wire,
                  unsigned want, uint64_t at)
{
    if (wire == want)
        return 0;
    return fail(r, SLM_E_FORMAT, (int64_t)at, "%s: field %u has wire type %u, expected %u",
                m->name, field, wire, want);
}

/* ---- messages ---- */

static int parse_piece(const reader_t *r, msg_t m, uint64_t index, piece_t *p)
{
    uint64_t start = m.pos;
    *p = (piece_t){.type = TYPE_NORMAL};
    bool has_text = false;
    while (m.pos < m.end) {
        uint32_t field;
        unsigned wire;
        uint64_t at = 0, v = 0;
        msg_t s;
        if (tag(r, &m, &field, &wire, &at))
            return -1;
        if (field == 1) {
            if (expect(r, &m, field, wire, WIRE_LEN, at) || sub(r, &m, &s, "piece text"))
                return -1;
            p->text = r->base + s.pos;
            p->len = s.end - s.pos;
            has_text = true;
        } else if (field == 2) {
            if (expect(r, &m, field, wire, WIRE_I32, at) || fixed(r, &m, 4, &v, "score"))
                return -1;
            union { uint32_t u; float f; } f = {.u = (uint32_t)v};
            p->score = f.f;
        } else if (field == 3) {
            if (expect(r, &m, field, wire, WIRE_VARINT, at) || varint(r, &m, &v, "type"))
                return -1;
            if (v < 1 || v > 6)
                return fail(r, SLM_E_FORMAT, (int64_t)at, "piece %llu: unknown type %llu "
                            "(1..6 exist)", (unsigned long long)index, (unsigned long long)v);
            p->type = (int32_t)v;
        } else if (skip(r, &m, wire, field, at)) {
            return -1;
        }
    }
    if (!has_text || !p->len)
        return fail(r, SLM_E_FORMAT, (int64_t)start, "piece %llu has no text",
                    (unsigned long long)index);
    if (memchr(p->text, 0, (size_t)p->len))
        return fail(r, SLM_E_FORMAT, (int64_t)start, "piece %llu contains a NUL byte",
                    (unsigned long long)index);
    return 0;
}

static int parse_trainer(const reader_t *r, msg_t m, spec_t *s)
{
    while (m.pos < m.end) {
        uint32_t field;
        unsigned wire;
        uint64_t at = 0, v = 0;
        if (tag(r, &m, &field, &wire, &at))
            return -1;
        bool is_id = field >= 40 && field <= 43;
        if (field != 3 && !is_id) {
            if (skip(r, &m, wire, field, at))
                return -1;
            continue;
        }
        if (expect(r, &m, field, wire, WIRE_VARINT, at) ||
            varint(r, &m, &v, field == 3 ? "model_type" : id_names[field - 40]))
            return -1;
        if (field == 3) {
            s->model_type = (int64_t)v;
            s->model_type_at = (int64_t)at;
        } else {
            /* int32 fields: negative values arrive sign-extended to 64 bits */
            s->id[field - 40] = (int64_t)(int32_t)(uint32_t)v;
            s->id_at[field - 40] = (int64_t)at;
        }
    }
    return 0;
}

static int parse_normalizer(const reader_t *r, msg_t m, spec_t *s)
{
    while (m.pos < m.end) {
        uint32_t field;
        unsigned wire;
        uint64_t at = 0, v = 0;
        if (tag(r, &m, &field, &wire, &at))
            return -1;
        if (field != 3 && field != 4) {
            if (skip(r, &m, wire, field, at))
                return -1;
            continue;
        }
        if (expect(r, &m, field, wire, WIRE_VARINT, at) ||
            varint(r, &m, &v, field == 3 ? "add_dummy_prefix" : "remove_extra_whitespaces"))
            return -1;
        if (field == 3)
            s->add_dummy_prefix = v != 0;
        else
            s->remove_extra_whitespaces = v != 0;
    }
    return 0;
}

/* Walk the whole ModelProto. pieces == NULL: count and validate; otherwise fill. */
static int parse_model(const reader_t *r, spec_t *s, piece_t *pieces)
{
    msg_t m = {.pos = 0, .end = r->size, .name = "ModelProto"};
    *s = (spec_t){.model_type = 1, .model_type_at = -1, .id = {0, 1, 2, -1},
                  .id_at = {-1, -1, -1, -1}, .add_dummy_prefix = true,
                  .remove_extra_whitespaces = true};
    while (m.pos < m.end) {
        uint32_t field;
        unsigned wire;
        uint64_t at;
        msg_t sm;
        if (tag(r, &m, &field, &wire, &at))
            return -1;
        if (field < 1 || field > 3) {
            if (skip(r, &m, wire, field, at))
                return -1;
            continue;
        }
        static const char *const names[4] = {"", "pieces", "trainer_spec", "normalizer_spec"};
        if (expect(r, &m, field, wire, WIRE_LEN, at) || sub(r, &m, &sm, names[field]))
            return -1;
        int rc = field == 1 ? parse_piece(r, sm, s->n_pieces,
                                          pieces ? &pieces[s->n_pieces] : &(piece_t){0})
                 : field == 2 ? parse_trainer(r, sm, s)
                              : parse_normalizer(r, sm, s);
        if (rc)
            return -1;
        s->n_pieces += field == 1;
    }
    return 0;
}

static int check_spec(const reader_t *r, const spec_t *s)
{
    static const char *const types[] = {"", "UNIGRAM", "BPE", "WORD", "CHAR"};
    if (s->model_type != MODEL_BPE)
        return fail(r, SLM_E_UNSUPPORTED, s->model_type_at,
                    "sentencepiece model type %s (%lld%s) is not supported: only BPE models "
                    "(model_type 2, as Llama's tokenizer.model) can be read",
                    s->model_type >= 1 && s->model_type <= 4 ? types[s->model_type] : "unknown",
                    (long long)s->model_type, s->model_type_at < 0 ? ", the default" : "");
    if (s->n_pieces == 0)
        return fail(r, SLM_E_FORMAT, -1, "the model has no pieces");
    for (int i = 0; i < 4; i++)
        if (s->id[i] < -1 || s->id[i] >= (int64_t)s->n_pieces)
            return fail(r, SLM_E_FORMAT, s->id_at[i], "trainer_spec: %s %lld is not a piece id "
                        "(the model has %llu pieces)", id_names[i], (long long)s->id[i],
                        (unsigned long long)s->n_pieces);
    return 0;
}

/* ---- file and sink ---- */

static int map_file(reader_t *r, const char *path, slm_error_t *err)
{
    plugin_map_t m;
    int rc = plugin_map_file(path, &m, err);
    *r = (reader_t){.path = path, .base = m.base, .size = m.size, .err = err};
    return rc;
}

static void unmap_file(reader_t *r)
{
    plugin_unmap_file(&(plugin_map_t){.base = r->base, .size = r->size});
    r->base = NULL;
}

static bool has_model_extension(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 6 && strcasecmp(path + n - 6, ".model") == 0;
}

int spm_probe(const char *path, const uint8_t *head, size_t head_len)
{
    /* A ModelProto has no magic; it starts with its first piece (field 1, bytes). */
    if (!has_model_extension(path))
        return 0;
    reader_t r;
    spec_t s;
    if (head_len < 1 || head[0] != 0x0a || map_file(&r, path, NULL))
        return 5;   /* a damaged .model still reaches the reader, which says why */
    int score = parse_model(&r, &s, NULL) == 0 ? 80 : 5;
    unmap_file(&r);
    return score;
}

static int report(const reader_t *r, const spec_t *s, const piece_t *p,
                  const slm_format_sink_t *sink)
{
    uint64_t n = s->n_pieces;
    const char **text = calloc((size_t)n, sizeof *text);
    uint64_t *lens = calloc((size_t)n, sizeof *lens);
    float *scores = calloc((size_t)n, sizeof *scores);
    int32_t *types = calloc((size_t)n, sizeof *types);
    int rc = -1;
    if (!text || !lens || !scores || !types) {
        rc = fail(r, SLM_E_NOMEM, -1, "out of memory for %llu pieces", (unsigned long long)n);
        goto out;
    }
    for (uint64_t i = 0; i < n; i++) {
        text[i] = (const char *)p[i].text;
        lens[i] = p[i].len;
        scores[i] = p[i].score;
        types[i] = p[i].type;
    }
    const uint8_t prefix = s->add_dummy_prefix, remove_ws = s->remove_extra_whitespaces;
    void *ctx = sink->ctx;
    if (sink->set_value(ctx, "tokenizer.ggml.model", SLM_VALUE_STRING, "llama", 5) ||
        sink->set_array(ctx, "tokenizer.ggml.tokens", SLM_VALUE_STRING, text, lens, n) ||
        sink->set_array(ctx, "tokenizer.ggml.scores", SLM_VALUE_F32, scores, NULL, n) ||
        sink->set_array(ctx, "tokenizer.ggml.token_type", SLM_VALUE_I32, types, NULL, n))
        goto refused;
    for (int i = 0; i < 4; i++) {
        uint32_t id = (uint32_t)s->id[i];
        if (s->id[i] >= 0 && sink->set_value(ctx, id_keys[i], SLM_VALUE_U32, &id, 1))
            goto refused;
    }
    if (sink->set_value(ctx, "tokenizer.ggml.add_space_prefix", SLM_VALUE_BOOL, &prefix, 1) ||
        sink->set_value(ctx, "tokenizer.ggml.remove_extra_whitespaces", SLM_VALUE_BOOL,
                        &remove_ws, 1))
        goto refused;
    rc = 0;
    goto out;
refused:
    rc = fail(r, SLM_E_PLUGIN, -1, "the host refused the vocabulary");
out:
    free(text);
    free(lens);
    free(scores);
    free(types);
    return rc;
}

int spm_read(const char *path, const slm_format_sink_t *sink, slm_error_t *err)
{
    reader_t r;
    spec_t s;
    int rc = map_file(&r, path, err);
    if (rc)
        return rc;
    if (r.size == 0) {
        rc = fail(&r, SLM_E_FORMAT, 0, "empty file: not a sentencepiece model");
        goto out;
    }
    /* The parse functions fill err and answer non-zero; all their failures are FORMAT. */
    if (parse_model(&r, &s, NULL)) {
        rc = SLM_E_FORMAT;
        goto out;
    }
    if ((rc = check_spec(&r, &s)))
        goto out;
    /* Each piece takes at least 2 bytes of the file, so n is bounded by its size. */
    piece_t *pieces = calloc((size_t)s.n_pieces, sizeof *pieces);
    if (!pieces) {
        rc = fail(&r, SLM_E_NOMEM, -1, "out of memory for %llu pieces",
                  (unsigned long long)s.n_pieces);
        goto out;
    }
    rc = parse_model(&r, &s, pieces) ? SLM_E_FORMAT : report(&r, &s, pieces, sink);
    free(pieces);
    if (!rc && spm_host && spm_host->log)
        spm_host->log(SLM_LOG_DEBUG, "format-sentencepiece", "%s: BPE model, %llu pieces", path,
                      (unsigned long long)s.n_pieces);
out:
    unmap_file(&r);
    return rc;
}
