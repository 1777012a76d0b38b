/* llama2.c checkpoints (v0 legacy, v1 fp32, v2 Q8_0 groups) mapped into GGUF's
 * tensor names and llama.* keys, validated entirely before anything is reported.
 *
 * Layouts, as llama2.c's export.py writes them (all little-endian):
 *   v0  7 x int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 *       seq_len; vocab_size < 0: unshared classifier), then fp32 arrays in run.c's
 *       order: token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3,
 *       rms_final, freq_cis_real and freq_cis_imag (seq_len * head_size / 2 each,
 *       skipped), and wcls when unshared.
 *   v1  uint32 magic "ak42", int32 version 1, the 7 params (vocab_size > 0), uint8
 *       shared_classifier, zeros up to byte 256; then fp32 rms_att, rms_ffn,
 *       rms_final, token_embedding, wq, wk, wv, wo, w1, w2, w3 and wcls if unshared.
 *   v2  as v1 with version 2 and an int32 group_size at byte 37 (unaligned); fp32
 *       rms_att, rms_ffn, rms_final, then for each of token_embedding, wq.., wo,
 *       w1, w2, w3, wcls (if unshared), layer by layer: int8 values of the whole
 *       matrix, then one fp32 scale per group of group_size values (flat order).
 * v2 groups become ggml q8_0 blocks when group_size is 32 and a matrix's rows are a
 * multiple of 32 wide (then groups and blocks coincide): the int8 values are kept
 * as they are and each fp32 scale is rounded to half, to nearest even, which moves
 * a dequantized value by at most 127 * scale * 2^-11 (about 1/16 of a step). A
 * tensor whose groups straddle rows, or whose scales a half cannot hold as normal
 * numbers, is dequantized to f32 instead (value * scale, exactly as runq.c does).
 * Matrices are stored row-major as [out][in], which is GGUF's ne = {in, out}; q and
 * k rows are already in GGUF's (interleaved) rope layout, so nothing is permuted. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "llama2c.h"

/* Largest value of any header parameter: far above real models, small enough
 * that products of two of them cannot overflow 64 bits. */
#define PARAM_MAX (1 << 24)
#define Q8_0_BLOCK 32u
#define Q8_0_BYTES 34u
#define TYPE_F32 0
#define TYPE_Q8_0 8
#define CONV_ALIGN 16u

typedef enum kind {
    K_TOK, K_RMS_ATT, K_WQ, K_WK, K_WV, K_WO, K_RMS_FFN, K_W1, K_W2, K_W3,
    K_RMS_FINAL, K_FREQ, K_WCLS, K_COUNT
} kind_t;

static const char *const kind_names[K_COUNT] = {
    "token_embedding_table", "rms_att_weight", "wq", "wk", "wv", "wo", "rms_ffn_weight",
    "w1", "w2", "w3", "rms_final_weight", "freq_cis", "wcls"};

typedef struct config {
    int version;
    int32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    bool shared;
    int32_t group_size;     /* v2 only */
    uint64_t header_bytes;
} config_t;

/* Where each kind of array lives and how one layer's slice is shaped. */
typedef struct array {
    uint64_t layers;
    int64_t ne0, ne1;
    bool quantized;         /* v2: int8 values followed by fp32 scales */
    uint64_t offset;        /* in the file */
    uint64_t layer_bytes;
} array_t;

typedef struct mapping {
    void *addr;
    size_t len;
    void *converted;        /* v2: dequantized or re-blocked tensors */
} mapping_t;

static void mapping_release(void *p)
{
    mapping_t *m = p;
    if (!m)
        return;
    if (m->addr)
        munmap(m->addr, m->len);
    free(m->converted);
    free(m);
}

static bool mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

static bool add_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static bool has_bin_extension(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 4 && strcasecmp(path + n - 4, ".bin") == 0;
}

/* ---- header ---- */

static int32_t i32_at(const uint8_t *p, uint64_t at)
{
    return (int32_t)l2c_u32(p + at);
}

/* Each parameter in 1..PARAM_MAX; names the first bad one (err may be NULL). */
static int check_params(const config_t *c, const char *path, uint64_t at, slm_error_t *err)
{
    const int32_t v[7] = {c->dim, c->hidden, c->n_layers, c->n_heads, c->n_kv_heads,
                          c->vocab, c->seq_len};
    static const char *const names[7] = {"dim", "hidden_dim", "n_layers", "n_heads",
                                         "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; i++)
        if (v[i] < 1 || v[i] > PARAM_MAX)
            return l2c_fail(err, SLM_E_FORMAT, path, (int64_t)(at + 4u * (unsigned)i),
                            "checkpoint header: %s = %ld is out of range (1..%d)", names[i],
                            (long)v[i], PARAM_MAX);
    if (c->dim % c->n_heads)
        return l2c_fail(err, SLM_E_FORMAT, path, (int64_t)at,
                        "checkpoint header: dim %d is not a multiple of n_heads %d", c->dim,
                        c->n_heads);
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        return l2c_fail(err, SLM_E_FORMAT, path, (int64_t)(at + 16),
                        "checkpoint header: n_heads %d is not a multiple of n_kv_heads %d",
                        c->n_heads, c->n_kv_heads);
    if ((c->dim / c->n_heads) % 2)
        return l2c_fail(err, SLM_E_FORMAT, path, (int64_t)(at + 12),
                        "checkpoint header: head size %d (dim / n_heads) is odd; rope needs "
                        "pairs", c->dim / c->n_heads);
    return SLM_OK;
}

static void params_at(config_t *c, const uint8_t *p, uint64_t at)
{
    c->dim = i32_at(p, at);
    c->hidden = i32_at(p, at + 4);
    c->n_layers = i32_at(p, at + 8);
    c->n_heads = i32_at(p, at + 12);
    c->n_kv_heads = i32_at(p, at + 16);
    c->vocab = i32_at(p, at + 20);
    c->seq_len = i32_at(p, at + 24);
}

static int parse_v0(config_t *c, const uint8_t *p, uint64_t size, const char *path,
                    slm_error_t *err)
{
    if (size < L2C_V0_HEADER_BYTES)
        return l2c_fail(err, SLM_E_FORMAT, path, 0,
                        "file is %llu bytes, too short for a llama2.c checkpoint header (%u "
                        "bytes) or a tokenizer.bin", (unsigned long long)size,
                        L2C_V0_HEADER_BYTES);
    *c = (config_t){.version = 0, .header_bytes = L2C_V0_HEADER_BYTES};
    params_at(c, p, 0);
    /* A negative vocab_size is how v0 says the classifier is stored separately. */
    c->shared = c->vocab > 0;
    if (c->vocab < 0 && c->vocab != INT32_MIN)
        c->vocab = -c->vocab;
    return check_params(c, path, 0, err);
}

static int parse_v1v2(config_t *c, const uint8_t *p, uint64_t size, const char *path,
                      slm_error_t *err)
{
    if (size < L2C_HEADER_BYTES)
        return l2c_fail(err, SLM_E_FORMAT, path, 0,
                        "file is %llu bytes, too short for the %u-byte header of a llama2.c "
                        "v1/v2 checkpoint", (unsigned long long)size, L2C_HEADER_BYTES);
    int32_t version = i32_at(p, 4);
    if (version != 1 && version != 2)
        return l2c_fail(err, SLM_E_UNSUPPORTED, path, 4,
                        "llama2.c checkpoint version %ld is not supported (1 and 2 are; the "
                        "legacy format has no magic)", (long)version);
    *c = (config_t){.version = version, .header_bytes = L2C_HEADER_BYTES};
    params_at(c, p, 8);
    if (p[36] > 1)
        return l2c_fail(err, SLM_E_FORMAT, path, 36,
                        "checkpoint header: shared_classifier flag is %u, not 0 or 1", p[36]);
    c->shared = p[36] == 1;
    if (version == 2) {
        c->group_size = i32_at(p, 37);
        if (c->group_size < 1 || c->group_size > PARAM_MAX)
            return l2c_fail(err, SLM_E_FORMAT, path, 37,
                            "checkpoint header: group_size %ld is out of range (1..%d)",
                            (long)c->group_size, PARAM_MAX);
    }
    return check_params(c, path, 8, err);
}

/* ---- layout ---- */

static const kind_t order_v0[] = {K_TOK, K_RMS_ATT, K_WQ, K_WK, K_WV, K_WO, K_RMS_FFN,
                                  K_W1, K_W2, K_W3, K_RMS_FINAL, K_FREQ, K_WCLS};
static const kind_t order_v1[] = {K_RMS_ATT, K_RMS_FFN, K_RMS_FINAL, K_TOK, K_WQ, K_WK,
                                  K_WV, K_WO, K_W1, K_W2, K_W3, K_WCLS};

static void shapes(const config_t *c, array_t a[K_COUNT])
{
    int64_t head = c->dim / c->n_heads, kv = head * c->n_kv_heads;
    uint64_t L = (uint64_t)c->n_layers;
    const struct { uint64_t layers; int64_t ne0, ne1; } s[K_COUNT] = {
        [K_TOK] = {1, c->dim, c->vocab},      [K_RMS_ATT] = {L, c->dim, 1},
        [K_WQ] = {L, c->dim, c->dim},         [K_WK] = {L, c->dim, kv},
        [K_WV] = {L, c->dim, kv},             [K_WO] = {L, c->dim, c->dim},
        [K_RMS_FFN] = {L, c->dim, 1},         [K_W1] = {L, c->dim, c->hidden},
        [K_W2] = {L, c->hidden, c->dim},      [K_W3] = {L, c->dim, c->hidden},
        [K_RMS_FINAL] = {1, c->dim, 1},       [K_FREQ] = {1, (int64_t)c->seq_len * head, 1},
        [K_WCLS] = {1, c->dim, c->vocab},
    };
    for (int k = 0; k < K_COUNT; k++) {
        a[k] = (array_t){.layers = s[k].layers, .ne0 = s[k].ne0, .ne1 = s[k].ne1};
        a[k].quantized = c->version == 2 && s[k].ne1 > 1;
    }
}

/* Offsets of every array in the file's order; the total must equal the file size. */
static int layout(const config_t *c, array_t a[K_COUNT], const char *path, uint64_t size,
                  slm_error_t *err)
{
    shapes(c, a);
    const kind_t *order = c->version == 0 ? order_v0 : order_v1;
    size_t n = c->version == 0 ? sizeof order_v0 / sizeof *order_v0
                               : sizeof order_v1 / sizeof *order_v1;
    uint64_t pos = c->header_bytes;
    for (size_t i = 0; i < n; i++) {
        array_t *x = &a[order[i]];
        if (order[i] == K_WCLS && c->shared)
            continue;
        uint64_t numel = (uint64_t)x->ne0 * (uint64_t)x->ne1, total;
        if (x->quantized && numel % (uint64_t)c->group_size)
            return l2c_fail(err, SLM_E_FORMAT, path, 37,
                            "%s has %llu values per layer, not a multiple of group_size %d",
                            kind_names[order[i]], (unsigned long long)numel, c->group_size);
        x->layer_bytes = x->quantized ? numel + numel / (uint64_t)c->group_size * 4 : numel * 4;
        if (!mul_ok(x->layer_bytes, x->layers, &total) || !add_ok(pos, total, &total))
            return l2c_fail(err, SLM_E_FORMAT, path, 0,
                            "the header's sizes overflow 64 bits (at %s)", kind_names[order[i]]);
        x->offset = pos;
        pos = total;
    }
    if (pos != size)
        return l2c_fail(err, SLM_E_FORMAT, path, (int64_t)(pos < size ? pos : size),
                        "file is %llu bytes but its v%d header (dim %d, hidden_dim %d, "
                        "n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d, %s "
                        "classifier) describes %llu bytes (%s)",
                        (unsigned long long)size, c->version, c->dim, c->hidden, c->n_layers,
                        c->n_heads, c->n_kv_heads, c->vocab, c->seq_len,
                        c->shared ? "shared" : "unshared", (unsigned long long)pos,
                        pos > size ? "truncated?" : "trailing bytes");
    return SLM_OK;
}

static int parse(config_t *c, array_t a[K_COUNT], const uint8_t *p, uint64_t size,
                 const char *path, slm_error_t *err)
{
    bool magic = size >= 4 && l2c_u32(p) == L2C_MAGIC;
    int rc = magic ? parse_v1v2(c, p, size, path, err) : parse_v0(c, p, size, path, err);
    return rc ? rc : layout(c, a, path, size, err);
}

int l2c_checkpoint_check(const l2c_file_t *f, bool *header_ok, slm_error_t *err)
{
    config_t c;
    array_t a[K_COUNT];
    bool magic = f->size >= 4 && l2c_u32(f->base) == L2C_MAGIC;
    int rc = magic ? parse_v1v2(&c, f->base, f->size, f->path, err)
                   : parse_v0(&c, f->base, f->size, f->path, err);
    *header_ok = rc == SLM_OK;
    return rc ? rc : layout(&c, a, f->path, f->size, err);
}

int l2c_checkpoint_probe(const char *path, const uint8_t *head, size_t head_len, uint64_t size)
{
    if (head_len >= 4 && l2c_u32(head) == L2C_MAGIC)
        return 100;
    if (!has_bin_extension(path))
        return 0;
    config_t c;
    array_t a[K_COUNT];
    /* The v0 layout needs only the 28-byte header, which head always holds. */
    if (head_len >= L2C_V0_HEADER_BYTES && parse(&c, a, head, size, path, NULL) == SLM_OK)
        return 80;
    return 3;   /* a damaged .bin still reaches the reader, which says what is wrong */
}

/* ---- v2: int8 groups to q8_0 blocks or f32 ---- */

/* f32 to IEEE half, round to nearest even; only for 0 and normal half values. */
static uint16_t f16_from(float f)
{
    union { float f; uint32_t u; } v = {.f = f};
    uint32_t sign = (v.u >> 16) & 0x8000u, mant = v.u & 0x7fffffu;
    if ((v.u & 0x7fffffffu) == 0)
        return (uint16_t)sign;
    uint32_t h = sign | (((v.u >> 23 & 0xffu) - 112u) << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
        h++;   /* a carry into the exponent is the right result */
    return (uint16_t)h;
}

/* q8_0 needs groups that are ggml's blocks (32 values, never across a row) and
 * scales a half holds without losing range: 0 or normal (2^-14 .. 65504). */
static bool fits_q8_0(const config_t *c, const array_t *x, const uint8_t *scales, uint64_t n)
{
    if (c->group_size != (int32_t)Q8_0_BLOCK || x->ne0 % Q8_0_BLOCK)
        return false;
    for (uint64_t g = 0; g < n; g++) {
        float s = fabsf(l2c_f32(scales + 4 * g));
        if (!(s == 0.0f || (s >= 0x1p-14f && s <= 65504.0f)))
            return false;
    }
    return true;
}

/* Convert one layer; returns its type. out has room for numel * 4 bytes. */
static int32_t convert_layer(const config_t *c, const array_t *x, const uint8_t *src,
                             uint8_t *out, uint64_t *nbytes)
{
    uint64_t numel = (uint64_t)x->ne0 * (uint64_t)x->ne1, gs = (uint64_t)c->group_size;
    const int8_t *q = (const int8_t *)src;
    const uint8_t *scales = src + numel;
    if (fits_q8_0(c, x, scales, numel / gs)) {
        for (uint64_t g = 0; g < numel / gs; g++) {
            uint16_t d = f16_from(l2c_f32(scales + 4 * g));
            out[g * Q8_0_BYTES] = (uint8_t)d;
            out[g * Q8_0_BYTES + 1] = (uint8_t)(d >> 8);
            memcpy(out + g * Q8_0_BYTES + 2, q + g * Q8_0_BLOCK, Q8_0_BLOCK);
        }
        *nbytes = numel / gs * Q8_0_BYTES;
        return TYPE_Q8_0;
    }
    float *f = (float *)out;
    for (uint64_t i = 0; i < numel; i++)
        f[i] = (float)q[i] * l2c_f32(scales + 4 * (i / gs));
    *nbytes = numel * 4;
    return TYPE_F32;
}

/* ---- reporting ---- */

typedef struct tensor_out {
    const void *data;
    uint64_t nbytes;
    int32_t type;
} tensor_out_t;

/* Data of layer l of kind k: borrowed from the file, or converted (v2 matrices). */
typedef struct reporter {
    const config_t *c;
    const array_t *a;
    const uint8_t *base;
    uint8_t *conv;          /* v2: next free byte of the conversion buffer */
    tensor_out_t tok;       /* v2 shared classifier reuses the embedding's bytes */
    const slm_format_sink_t *sink;
} reporter_t;

static int report(reporter_t *r, const char *name, kind_t k, uint64_t layer)
{
    const array_t *x = &r->a[k];
    const uint8_t *src = r->base + x->offset + layer * x->layer_bytes;
    tensor_out_t t = {.data = src, .nbytes = x->layer_bytes, .type = TYPE_F32};
    if (x->quantized) {
        t.type = convert_layer(r->c, x, src, r->conv, &t.nbytes);
        t.data = r->conv;
        r->conv += (t.nbytes + CONV_ALIGN - 1) / CONV_ALIGN * CONV_ALIGN;
    }
    if (k == K_TOK)
        r->tok = t;
    const int64_t ne[2] = {x->ne0, x->ne1};
    return r->sink->add_tensor(r->sink->ctx, name, t.type, x->ne1 > 1 ? 2 : 1, ne, t.data,
                               t.nbytes);
}

static int report_tensors(reporter_t *r)
{
    static const struct { const char *name; kind_t k; } block[] = {
        {"attn_q", K_WQ}, {"attn_k", K_WK}, {"attn_v", K_WV}, {"attn_output", K_WO},
        {"attn_norm", K_RMS_ATT}, {"ffn_gate", K_W1}, {"ffn_down", K_W2}, {"ffn_up", K_W3},
        {"ffn_norm", K_RMS_FFN}};
    if (report(r, "token_embd.weight", K_TOK, 0) || report(r, "output_norm.weight", K_RMS_FINAL, 0))
        return -1;
    /* A shared classifier is reported as its own tensor over the same bytes, as
     * llama.cpp's converter writes it (untied). */
    if (r->c->shared) {
        const int64_t ne[2] = {r->a[K_TOK].ne0, r->a[K_TOK].ne1};
        if (r->sink->add_tensor(r->sink->ctx, "output.weight", r->tok.type, 2, ne, r->tok.data,
                                r->tok.nbytes))
            return -1;
    } else if (report(r, "output.weight", K_WCLS, 0)) {
        return -1;
    }
    for (uint64_t l = 0; l < (uint64_t)r->c->n_layers; l++)
        for (size_t i = 0; i < sizeof block / sizeof *block; i++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%llu.%s.weight", (unsigned long long)l,
                     block[i].name);
            if (report(r, name, block[i].k, l))
                return -1;
        }
    return 0;
}

static int set_u32(const slm_format_sink_t *s, const char *key, int32_t v)
{
    uint32_t u = (uint32_t)v;
    return s->set_value(s->ctx, key, SLM_VALUE_U32, &u, 1);
}

static int set_f32(const slm_format_sink_t *s, const char *key, float v)
{
    return s->set_value(s->ctx, key, SLM_VALUE_F32, &v, 1);
}

static int set_str(const slm_format_sink_t *s, const char *key, const char *v, size_t len)
{
    return s->set_value(s->ctx, key, SLM_VALUE_STRING, v, len);
}

/* Keys as llama.cpp's convert-llama2c-to-ggml writes them (context length is the
 * checkpoint's seq_len, not that tool's default of 2048), plus the two values
 * run.c hard-codes (rope base) or takes from the header (vocabulary size). */
static int report_values(const config_t *c, const char *path, const slm_format_sink_t *s)
{
    const char *slash = strrchr(path, '/'), *stem = slash ? slash + 1 : path;
    const char *dot = strrchr(stem, '.');
    size_t stem_len = dot && dot != stem ? (size_t)(dot - stem) : strlen(stem);
    int32_t head = c->dim / c->n_heads;
    return set_str(s, "general.architecture", "llama", 5) ||
           set_str(s, "general.name", stem, stem_len) ||
           set_u32(s, "llama.context_length", c->seq_len) ||
           set_u32(s, "llama.embedding_length", c->dim) ||
           set_u32(s, "llama.feed_forward_length", c->hidden) ||
           set_u32(s, "llama.attention.head_count", c->n_heads) ||
           set_u32(s, "llama.attention.head_count_kv", c->n_kv_heads) ||
           set_u32(s, "llama.block_count", c->n_layers) ||
           set_u32(s, "llama.rope.dimension_count", head) ||
           set_f32(s, "llama.attention.layer_norm_rms_epsilon", 1e-5f) ||
           set_f32(s, "llama.rope.freq_base", 10000.0f) ||
           set_u32(s, "llama.vocab_size", c->vocab);
}

/* Room for every converted v2 tensor (at most 4 bytes per value, each tensor
 * starting CONV_ALIGN-aligned so that f32 data after a q8_0 one stays aligned). */
static int conversion_size(const config_t *c, const array_t *a, uint64_t *total)
{
    *total = 0;
    for (int k = 0; k < K_COUNT; k++) {
        if (!a[k].quantized || (k == K_WCLS && c->shared))
            continue;
        uint64_t per = (uint64_t)a[k].ne0 * (uint64_t)a[k].ne1 * 4 + CONV_ALIGN, all;
        if (!mul_ok(per, a[k].layers, &all) || !add_ok(*total, all, total))
            return -1;
    }
    return *total < SIZE_MAX ? 0 : -1;
}

int l2c_checkpoint_read(const l2c_file_t *f, const slm_format_sink_t *sink, slm_error_t *err)
{
    config_t c;
    array_t a[K_COUNT];
    l2c_file_t file = *f;
    int rc = parse(&c, a, file.base, file.size, file.path, err);
    uint64_t conv_bytes = 0;
    if (!rc && c.version == 2 && conversion_size(&c, a, &conv_bytes))
        rc = l2c_fail(err, SLM_E_FORMAT, file.path, 0, "dequantized size overflows");
    mapping_t *m = rc ? NULL : calloc(1, sizeof *m);
    if (!rc && (!m || (conv_bytes && !(m->converted = malloc((size_t)conv_bytes))))) {
        free(m);
        rc = l2c_fail(err, SLM_E_NOMEM, file.path, -1, "out of memory converting Q8_0 groups");
    }
    if (rc) {
        l2c_unmap(&file);
        return rc;
    }
    m->addr = (void *)file.base;
    m->len = (size_t)file.size;
    /* From here the host owns the mapping and releases it with the container. */
    if (sink->set_mapping(sink->ctx, m, mapping_release)) {
        mapping_release(m);
        return l2c_fail(err, SLM_E_PLUGIN, file.path, -1, "the host refused the file mapping");
    }
    reporter_t r = {.c = &c, .a = a, .base = file.base, .conv = m->converted, .sink = sink};
    if (report_values(&c, file.path, sink) || report_tensors(&r))
        return l2c_fail(err, SLM_E_PLUGIN, file.path, -1, "the host refused a value or tensor");
    if (l2c_host && l2c_host->log)
        l2c_host->log(SLM_LOG_DEBUG, "format-llama2c",
                      "%s: llama2.c v%d checkpoint, %d layers, %s classifier", file.path,
                      c.version, c.n_layers, c.shared ? "shared" : "unshared");
    return SLM_OK;
}
