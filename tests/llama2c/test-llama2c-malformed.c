/* Broken llama2.c checkpoints, tokenizer.bin and tokenizer.model files built byte
 * by byte: each must be refused with a message naming the problem, never a crash
 * or a read outside the file. Built twice: through the registry (dlopen), and with
 * L2C_DIRECT the readers compiled in under AddressSanitizer and UBSan, with a sink
 * that touches every byte it is handed. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include <slmops/plugin-format.h>
#ifdef L2C_DIRECT
#include "plugins/format-llama2c/llama2c.h"
#include "plugins/format-sentencepiece/sentencepiece.h"
#else
#include <slmops/model-file.h>
#endif

#include "../common/bytebuf.h"

/* ---- byte builder ---- */

static void b_f32(buf_t *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    b_le(b, u, 4);
}

static void b_floats(buf_t *b, size_t n, float seed)
{
    for (size_t i = 0; i < n; i++)
        b_f32(b, seed + 0.001f * (float)(i % 97) - 0.05f);
}

/* ---- reading, through the registry or directly ---- */

static char tmpdir[256];

#ifdef L2C_DIRECT
typedef struct seen {
    unsigned long sum;   /* every byte handed over is read, so ASan sees it */
    size_t n_values, n_tensors;
    void *mapping;
    void (*release)(void *);
} seen_t;

static void touch(seen_t *s, const void *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        s->sum += ((const uint8_t *)p)[i];
}

static int t_set_value(void *ctx, const char *key, int32_t type, const void *v, uint64_t len)
{
    seen_t *s = ctx;
    touch(s, key, strlen(key));
    touch(s, v, type == SLM_VALUE_STRING ? len : type == SLM_VALUE_BOOL ? 1 : 4);
    s->n_values++;
    return 0;
}

static int t_set_array(void *ctx, const char *key, int32_t elem, const void *v,
                       const uint64_t *lens, uint64_t n)
{
    seen_t *s = ctx;
    touch(s, key, strlen(key));
    for (uint64_t i = 0; i < n; i++) {
        if (elem == SLM_VALUE_STRING)
            touch(s, ((const char *const *)v)[i], lens[i]);
        else
            touch(s, (const uint8_t *)v + 4 * i, 4);
    }
    s->n_values++;
    return 0;
}

static int t_add_tensor(void *ctx, const char *name, int32_t type, int32_t n_dims,
                        const int64_t *ne, const void *data, uint64_t nbytes)
{
    seen_t *s = ctx;
    touch(s, name, strlen(name));
    touch(s, data, nbytes);
    ck_assert_int_ge(n_dims, 1);
    s->n_tensors++;
    return 0;
}

static int t_set_mapping(void *ctx, void *mapping, void (*release)(void *))
{
    seen_t *s = ctx;
    s->mapping = mapping;
    s->release = release;
    return 0;
}

static int read_as(const char *path, const char *format, slm_error_t *err, size_t *n_values)
{
    seen_t s = {0};
    slm_format_sink_t sink = {.struct_size = sizeof sink, .ctx = &s, .set_value = t_set_value,
                              .set_array = t_set_array, .add_tensor = t_add_tensor,
                              .set_mapping = t_set_mapping};
    int rc = strcmp(format, "format-sentencepiece") == 0 ? spm_read(path, &sink, err)
                                                         : l2c_read(path, &sink, err);
    if (s.release)
        s.release(s.mapping);
    *n_values = s.n_values;
    return rc;
}
#else
static slm_registry_t *reg;

static int read_as(const char *path, const char *format, slm_error_t *err, size_t *n_values)
{
    slm_model_file_t *mf = NULL;
    int rc = slm_model_file_open(reg, path, format, &mf, err);
    *n_values = slm_model_file_n_values(mf);
    slm_model_file_free(mf);
    return rc;
}
#endif

static void setup(void)
{
#ifndef L2C_DIRECT
    reg = slm_registry_new(NULL, NULL);
    ck_assert_ptr_nonnull(reg);
#endif
    snprintf(tmpdir, sizeof tmpdir, "/tmp/slm-l2c-bad-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
#ifndef L2C_DIRECT
    slm_registry_free(reg);
#endif
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *save(const buf_t *b, size_t n, const char *name)
{
    static char path[400];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(n ? fwrite(b->p, 1, n, f) : 0, n);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* The first n bytes of b must be refused with a message holding `want` and the path. */
static void refused(const buf_t *b, size_t n, const char *name, const char *format,
                    const char *want)
{
    const char *path = save(b, n, name);
    slm_error_t e = {.struct_size = sizeof e, .offset = -1};
    size_t nv = 0;
    int rc = read_as(path, format, &e, &nv);
    ck_assert_msg(rc < 0, "%s (%zu bytes) was accepted", name, n);
    ck_assert_msg(strstr(e.message, path) != NULL, "message lacks the path: %s", e.message);
    ck_assert_msg(!want || strstr(e.message, want), "%s: wanted '%s' in: %s", name, want,
                  e.message);
    unlink(path);
}

static size_t accepted(const buf_t *b, size_t n, const char *name, const char *format)
{
    const char *path = save(b, n, name);
    slm_error_t e = {.struct_size = sizeof e, .offset = -1};
    size_t nv = 0;
    int rc = read_as(path, format, &e, &nv);
    ck_assert_msg(rc == 0, "%s refused: %s", name, e.message);
    unlink(path);
    return nv;
}

/* ---- checkpoints: dim 8, hidden 16, 2 layers, 2 heads, 1 kv head, vocab 32, seq 4 ---- */

enum { DIM, HID, LAY, HEADS, KV, VOCAB, SEQ };
static const int32_t good[7] = {8, 16, 2, 2, 1, 32, 4};

static void params(buf_t *b, const int32_t h[7])
{
    for (int i = 0; i < 7; i++)
        b_le(b, (uint32_t)h[i], 4);
}

static void v0(buf_t *b, const int32_t h[7])
{
    params(b, h);
    size_t d = 8, hid = 16, L = 2, kv = 4, V = 32, head = 4, seq = 4;
    b_floats(b, V * d, 0.1f);
    b_floats(b, L * d, 1.0f);
    b_floats(b, L * d * d, 0.2f);
    b_floats(b, 2 * L * d * kv, 0.3f);
    b_floats(b, L * d * d, 0.4f);
    b_floats(b, L * d, 1.0f);
    b_floats(b, 3 * L * d * hid, 0.5f);
    b_floats(b, d, 1.0f);
    b_floats(b, seq * head, 0.0f);
}

/* The body's shape comes from `shape`, the header's values from h (to lie in it). */
static void v12_shaped(buf_t *b, int32_t version, const int32_t h[7], const int32_t shape[7],
                       uint8_t shared, int32_t gs)
{
    uint8_t head[256] = {0};
    buf_t p = {0};
    b_le(&p, 0x616b3432, 4);
    b_le(&p, (uint32_t)version, 4);
    params(&p, h);
    b_le(&p, shared, 1);
    b_le(&p, (uint32_t)gs, 4);
    memcpy(head, p.p, p.n);
    b_free(&p);
    b_bytes(b, head, 256);
    size_t d = (size_t)shape[DIM], hid = (size_t)shape[HID], L = (size_t)shape[LAY];
    size_t kv = d / (size_t)shape[HEADS] * (size_t)shape[KV], V = (size_t)shape[VOCAB];
    b_floats(b, 2 * L * d + d, 1.0f);
    const size_t mats[] = {V * d, L * d * d, L * d * kv, L * d * kv, L * d * d, L * d * hid,
                           L * hid * d, L * d * hid};
    for (size_t i = 0; i < sizeof mats / sizeof *mats; i++) {
        if (version == 1) {
            b_floats(b, mats[i], 0.1f * (float)i);
            continue;
        }
        /* whole-layer int8 values then scales; layers are equal-sized so the flat
         * stream of a kind is the same as writing it layer by layer */
        size_t n_layers = i == 0 ? 1 : L, per = mats[i] / n_layers;
        for (size_t l = 0; l < n_layers; l++) {
            for (size_t j = 0; j < per; j++)
                b_le(b, (uint8_t)(int8_t)((j * 37) % 255 - 127), 1);
            for (size_t g = 0; g < per / (size_t)(gs > 0 ? gs : 1); g++)
                b_f32(b, 0.01f);
        }
    }
}

static void v12(buf_t *b, int32_t version, const int32_t h[7], uint8_t shared, int32_t gs)
{
    v12_shaped(b, version, h, good, shared, gs);
}

START_TEST(valid_checkpoints_read)
{
    buf_t b = {0};
    v0(&b, good);
    ck_assert_uint_ge(accepted(&b, b.n, "v0.bin", "format-llama2c"), 10);
    b_free(&b);
    v12(&b, 1, good, 1, 0);
    accepted(&b, b.n, "v1.bin", "format-llama2c");
    b_free(&b);
    v12(&b, 2, good, 1, 8);
    accepted(&b, b.n, "v2.bin", "format-llama2c");
    b_free(&b);
    /* rows of 32 and 64 with groups of 32: re-blocked into q8_0 */
    static const int32_t wide[7] = {32, 64, 2, 2, 1, 16, 4};
    v12_shaped(&b, 2, wide, wide, 1, 32);
    accepted(&b, b.n, "v2-q8.bin", "format-llama2c");
    b_free(&b);
}
END_TEST

START_TEST(truncated_checkpoints)
{
    buf_t b = {0};
    v0(&b, good);
    const size_t cuts[] = {0, 1, 11, 12, 27, 28, 29, 100, 1000, b.n / 2, b.n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
        refused(&b, cuts[i], "cut.bin", "format-llama2c", cuts[i] < 28 ? "too short" : "describes");
    b_le(&b, 0, 1);
    refused(&b, b.n, "long.bin", "format-llama2c", "trailing bytes");
    b_free(&b);
    for (int version = 1; version <= 2; version++) {
        v12(&b, version, good, 1, 8);
        const size_t vcuts[] = {4, 40, 255, 256, 300, b.n / 2, b.n - 1};
        for (size_t i = 0; i < sizeof vcuts / sizeof *vcuts; i++)
            refused(&b, vcuts[i], "cut.bin", "format-llama2c",
                    vcuts[i] < 256 ? "too short for the 256-byte header" : "describes");
        b_free(&b);
    }
}
END_TEST

static void bad_params(int field, int32_t value, const char *want)
{
    int32_t h[7];
    memcpy(h, good, sizeof h);
    h[field] = value;
    buf_t b = {0};
    v0(&b, h);
    refused(&b, b.n, "params.bin", "format-llama2c", want);
    b_free(&b);
    v12(&b, 1, h, 1, 0);
    refused(&b, b.n, "params-v1.bin", "format-llama2c", want);
    b_free(&b);
}

START_TEST(bad_header_values)
{
    bad_params(HID, -5, "hidden_dim = -5 is out of range");
    bad_params(DIM, 0, "dim = 0 is out of range");
    bad_params(LAY, INT32_MAX, "n_layers = 2147483647 is out of range");
    bad_params(VOCAB, INT32_MIN, "vocab_size");
    bad_params(SEQ, -1, "seq_len = -1");
    bad_params(HEADS, 3, "not a multiple of n_heads");
    bad_params(KV, 3, "n_kv_heads");
    bad_params(HEADS, 8, "odd");   /* head size 1 */
    /* in range, but describing far more than the file (products of huge dims) */
    int32_t h[7] = {1 << 24, 8, 1, 2, 1, 8, 4};
    buf_t b = {0};
    v0(&b, h);
    refused(&b, b.n, "huge.bin", "format-llama2c", "truncated?");
    b_free(&b);
    int32_t o[7] = {1 << 24, 1 << 24, 1 << 24, 2, 1, 1 << 24, 1 << 24};
    v0(&b, o);
    refused(&b, b.n, "overflow.bin", "format-llama2c", "sizes overflow 64 bits");
    b_free(&b);
    /* v0 says "classifier follows" with a negative vocab_size: then it must be there */
    memcpy(h, good, sizeof h);
    h[VOCAB] = -32;
    v0(&b, h);
    refused(&b, b.n, "unshared.bin", "format-llama2c", "unshared classifier");
    b_free(&b);
}
END_TEST

START_TEST(bad_magic_version_flags)
{
    buf_t b = {0};
    v12(&b, 3, good, 1, 0);
    refused(&b, b.n, "v3.bin", "format-llama2c", "version 3 is not supported");
    b_free(&b);
    v12(&b, 1, good, 7, 0);
    refused(&b, b.n, "flag.bin", "format-llama2c", "shared_classifier flag is 7");
    b_free(&b);
    v12(&b, 2, good, 1, 0);
    refused(&b, b.n, "gs0.bin", "format-llama2c", "group_size 0 is out of range");
    b_free(&b);
    v12(&b, 2, good, 1, 5);
    refused(&b, b.n, "gs5.bin", "format-llama2c", "not a multiple of group_size 5");
    b_free(&b);
    v12(&b, 1, good, 1, 0);
    memcpy(b.p, "42ka", 4);   /* magic bytes in the wrong order: read as a v0 header */
    refused(&b, b.n, "magic.bin", "format-llama2c", "neither a llama2.c checkpoint (");
    b_free(&b);
}
END_TEST

/* ---- tokenizer.bin ---- */

static void record(buf_t *b, float score, int32_t len, const char *text)
{
    b_f32(b, score);
    b_le(b, (uint32_t)len, 4);
    b_bytes(b, text, strlen(text));
}

/* Five tokens; ends[] gets the offset after each record. */
static void tokenizer(buf_t *b, size_t ends[5])
{
    static const char *const t[5] = {"<unk>", "\n<s>\n", "\n</s>\n", " a", "<0x0A>"};
    b_le(b, 6, 4);
    for (int i = 0; i < 5; i++) {
        record(b, -(float)i, (int32_t)strlen(t[i]), t[i]);
        ends[i] = b->n;
    }
}

START_TEST(tokenizer_cuts)
{
    buf_t b = {0};
    size_t ends[5];
    tokenizer(&b, ends);
    ck_assert_uint_eq(accepted(&b, b.n, "tok.bin", "format-llama2c"), 7);
    /* Cut anywhere: refused, unless the cut falls after a whole record (3 or more). */
    for (size_t cut = 0; cut < b.n; cut++) {
        if (cut == ends[2] || cut == ends[3])
            accepted(&b, cut, "tok.bin", "format-llama2c");
        else
            refused(&b, cut, "tok.bin", "format-llama2c", NULL);
    }
    refused(&b, ends[1], "tok.bin", "format-llama2c", "fewer than 3 tokens");
    refused(&b, ends[3] + 9, "tok.bin", "format-llama2c", "token 4: text runs past the end");
    refused(&b, ends[3] + 3, "tok.bin", "format-llama2c", "token 4: record header");
    b_free(&b);
}
END_TEST

START_TEST(tokenizer_bad_records)
{
    buf_t b = {0};
    b_le(&b, 6, 4);
    record(&b, 0, 5, "<unk>");
    record(&b, 0, -3, "abc");
    refused(&b, b.n, "neg.bin", "format-llama2c", "token 1: length is negative");
    b_free(&b);
    b_le(&b, 6, 4);
    record(&b, 0, 5, "<unk>");
    record(&b, 0, 7, "toolong");
    refused(&b, b.n, "long.bin", "format-llama2c", "token 1: length exceeds max_token_length");
    b_free(&b);
    b_le(&b, 1u << 20, 4);
    record(&b, 0, 5, "<unk>");
    record(&b, 0, (1 << 20) - 1, "huge");
    refused(&b, b.n, "huge.bin", "format-llama2c", "token 1: text runs past the end");
    b_free(&b);
    b_le(&b, 0xffffffffu, 4);
    record(&b, 0, 5, "<unk>");
    refused(&b, b.n, "maxlen.bin", "format-llama2c", "max_token_length is out of range");
    b_free(&b);
    b_le(&b, 0, 4);
    record(&b, 0, 0, "");
    refused(&b, b.n, "maxlen0.bin", "format-llama2c", "max_token_length is out of range");
    b_free(&b);
    b_le(&b, 6, 4);
    record(&b, 0, 5, "<unk>");
    record(&b, NAN, 3, "<s>");
    record(&b, 0, 4, "</s>");
    refused(&b, b.n, "nan.bin", "format-llama2c", "token 1: score is not a finite number");
    b_free(&b);
}
END_TEST

/* ---- tokenizer.model (protobuf) ---- */

static void pb_varint(buf_t *b, uint64_t v)
{
    do {
        uint8_t x = (uint8_t)(v & 0x7f);
        v >>= 7;
        b_le(b, x | (v ? 0x80 : 0), 1);
    } while (v);
}

static void pb_tag(buf_t *b, uint32_t field, unsigned wire)
{
    pb_varint(b, (uint64_t)field << 3 | wire);
}

static void pb_msg(buf_t *b, uint32_t field, const buf_t *m)
{
    pb_tag(b, field, 2);
    pb_varint(b, m->n);
    b_bytes(b, m->p, m->n);
}

static void piece(buf_t *b, const char *text, float score, int type)
{
    buf_t m = {0};
    if (text) {
        pb_tag(&m, 1, 2);
        pb_varint(&m, strlen(text));
        b_bytes(&m, text, strlen(text));
    }
    pb_tag(&m, 2, 5);
    b_f32(&m, score);
    if (type) {
        pb_tag(&m, 3, 0);
        pb_varint(&m, (uint64_t)type);
    }
    pb_msg(b, 1, &m);
    b_free(&m);
}

static void trainer(buf_t *b, int model_type, int64_t bos)
{
    buf_t m = {0};
    pb_tag(&m, 1, 2);   /* input: a field the reader skips */
    pb_varint(&m, 3);
    b_bytes(&m, "x.t", 3);
    if (model_type) {
        pb_tag(&m, 3, 0);
        pb_varint(&m, (uint64_t)model_type);
    }
    pb_tag(&m, 41, 0);
    pb_varint(&m, (uint64_t)bos);   /* negative: sign-extended, 10 bytes */
    pb_msg(b, 2, &m);
    b_free(&m);
}

/* trainer_spec first, then five pieces; ends[] gets the offset after each piece. */
static void spm(buf_t *b, size_t ends[5])
{
    trainer(b, 2, 1);
    static const char *const t[5] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81" "a", "<0x41>"};
    static const int types[5] = {2, 3, 3, 0, 6};
    for (int i = 0; i < 5; i++) {
        piece(b, t[i], -(float)i, types[i]);
        ends[i] = b->n;
    }
}

START_TEST(model_cuts)
{
    buf_t b = {0};
    size_t ends[5];
    spm(&b, ends);
    ck_assert_uint_ge(accepted(&b, b.n, "t.model", "format-sentencepiece"), 7);
    for (size_t cut = 0; cut < b.n; cut++) {
        /* whole pieces, enough of them for bos_id 1 and eos_id 2 */
        if (cut == ends[2] || cut == ends[3])
            accepted(&b, cut, "t.model", "format-sentencepiece");
        else
            refused(&b, cut, "t.model", "format-sentencepiece", NULL);
    }
    b_free(&b);
}
END_TEST

static void model_with(void (*add)(buf_t *), const char *want)
{
    buf_t b = {0};
    size_t ends[5];
    spm(&b, ends);
    add(&b);
    refused(&b, b.n, "bad.model", "format-sentencepiece", want);
    b_free(&b);
}

static void add_long_varint(buf_t *b)
{
    for (int i = 0; i < 11; i++)
        b_le(b, 0xff, 1);
}

static void add_overflow_varint(buf_t *b)
{
    for (int i = 0; i < 9; i++)
        b_le(b, 0xff, 1);
    b_le(b, 0x7f, 1);
}

static void add_length_past_end(buf_t *b)
{
    pb_tag(b, 1, 2);
    pb_varint(b, 1000);
    b_bytes(b, "abc", 3);
}

static void add_inner_past_parent(buf_t *b)
{
    buf_t m = {0};
    pb_tag(&m, 1, 2);
    pb_varint(&m, 50);   /* the piece text claims more than its message holds */
    b_bytes(&m, "ab", 2);
    pb_msg(b, 1, &m);
    b_free(&m);
}

static void add_group(buf_t *b)
{
    pb_tag(b, 7, 3);
}

static void add_wire7(buf_t *b)
{
    pb_tag(b, 7, 7);
}

static void add_wrong_wire(buf_t *b)
{
    pb_tag(b, 1, 0);
    pb_varint(b, 5);
}

static void add_bad_type(buf_t *b)
{
    piece(b, "zz", 0, 9);
}

static void add_no_text(buf_t *b)
{
    piece(b, NULL, 0, 1);
}

static void add_nul_text(buf_t *b)
{
    buf_t m = {0};
    pb_tag(&m, 1, 2);
    pb_varint(&m, 3);
    b_bytes(&m, "a\0b", 3);
    pb_msg(b, 1, &m);
    b_free(&m);
}

static void add_field0(buf_t *b)
{
    pb_varint(b, 0 << 3 | 0);
    pb_varint(b, 1);
}

static void add_bad_bos(buf_t *b)
{
    trainer(b, 2, 99);
}

static void add_word_model(buf_t *b)
{
    trainer(b, 3, 1);
}

START_TEST(model_bad_wire)
{
    model_with(add_long_varint, "overflows 64 bits or is longer than 10 bytes");
    model_with(add_overflow_varint, "varint (field tag) overflows 64 bits");
    model_with(add_length_past_end, "length 1000 of pieces runs past the end");
    model_with(add_inner_past_parent, "length 50 of piece text runs past the end");
    model_with(add_group, "groups are not supported");
    model_with(add_wire7, "no such wire type");
    model_with(add_wrong_wire, "field 1 has wire type 0, expected 2");
    model_with(add_bad_type, "unknown type 9");
    model_with(add_no_text, "piece 5 has no text");
    model_with(add_nul_text, "piece 5 contains a NUL byte");
    model_with(add_field0, "invalid field number 0");
    model_with(add_bad_bos, "bos_id 99 is not a piece");
    model_with(add_word_model, "model type WORD (3) is not supported");
}
END_TEST

START_TEST(model_without_type_is_unigram)
{
    buf_t b = {0};
    trainer(&b, 0, -1);
    piece(&b, "<unk>", 0, 2);
    refused(&b, b.n, "uni.model", "format-sentencepiece", "UNIGRAM (1, the default) is not supported");
    b_free(&b);
    refused(&b, 0, "empty.model", "format-sentencepiece", "empty file");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("llama2c-malformed");
    TCase *tc = tcase_create("malformed");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, valid_checkpoints_read);
    tcase_add_test(tc, truncated_checkpoints);
    tcase_add_test(tc, bad_header_values);
    tcase_add_test(tc, bad_magic_version_flags);
    tcase_add_test(tc, tokenizer_cuts);
    tcase_add_test(tc, tokenizer_bad_records);
    tcase_add_test(tc, model_cuts);
    tcase_add_test(tc, model_bad_wire);
    tcase_add_test(tc, model_without_type_is_unigram);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
