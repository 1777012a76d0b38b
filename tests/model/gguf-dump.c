/* Test tool: prints what slmops reads from a model file as JSON (metadata, tensor
 * shapes and types, SHA-256 of tensor bytes), or copies a file through slmops. */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <slmops/model-file.h>

/* ---- SHA-256 (FIPS 180-4), so the oracle can compare bytes with hashlib ---- */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64], a[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(a, h, sizeof a);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = a[7] + (ROR(a[4], 6) ^ ROR(a[4], 11) ^ ROR(a[4], 25)) +
                      ((a[4] & a[5]) ^ (~a[4] & a[6])) + K[i] + w[i];
        uint32_t t2 = (ROR(a[0], 2) ^ ROR(a[0], 13) ^ ROR(a[0], 22)) +
                      ((a[0] & a[1]) ^ (a[0] & a[2]) ^ (a[1] & a[2]));
        memmove(a + 1, a, 7 * sizeof *a);
        a[4] += t1;
        a[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        h[i] += a[i];
}

static void sha256_hex(const uint8_t *data, uint64_t n, char out[65])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    uint64_t i = 0;
    for (; i + 64 <= n; i += 64)
        sha256_block(h, data + i);
    uint8_t tail[128] = {0};
    size_t rest = (size_t)(n - i);
    if (rest)
        memcpy(tail, data + i, rest);
    tail[rest] = 0x80;
    size_t len = rest + 9 <= 64 ? 64 : 128;
    for (int b = 0; b < 8; b++)
        tail[len - 1 - b] = (uint8_t)((n * 8) >> (8 * b));
    for (size_t o = 0; o < len; o += 64)
        sha256_block(h, tail + o);
    for (int k = 0; k < 8; k++)
        snprintf(out + 8 * k, 9, "%08" PRIx32, h[k]);
}

/* ---- JSON output: integers as decimal strings (u64 does not fit JSON numbers
 * safely), strings as hex (bytes need not be UTF-8), floats as numbers ---- */

static json_t *hex(const char *s, uint64_t n)
{
    char *buf = malloc(2 * n + 1);
    for (uint64_t i = 0; i < n; i++)
        snprintf(buf + 2 * i, 3, "%02x", (uint8_t)s[i]);
    buf[2 * n] = '\0';
    json_t *j = json_string(buf);
    free(buf);
    return j;
}

static json_t *scalar(int32_t type, const void *p)
{
    char num[32];
    switch (type) {
    case SLM_MF_U8: snprintf(num, sizeof num, "%u", *(const uint8_t *)p); break;
    case SLM_MF_I8: snprintf(num, sizeof num, "%d", *(const int8_t *)p); break;
    case SLM_MF_U16: snprintf(num, sizeof num, "%u", *(const uint16_t *)p); break;
    case SLM_MF_I16: snprintf(num, sizeof num, "%d", *(const int16_t *)p); break;
    case SLM_MF_U32: snprintf(num, sizeof num, "%" PRIu32, *(const uint32_t *)p); break;
    case SLM_MF_I32: snprintf(num, sizeof num, "%" PRId32, *(const int32_t *)p); break;
    case SLM_MF_U64: snprintf(num, sizeof num, "%" PRIu64, *(const uint64_t *)p); break;
    case SLM_MF_I64: snprintf(num, sizeof num, "%" PRId64, *(const int64_t *)p); break;
    case SLM_MF_BOOL: return json_boolean(*(const uint8_t *)p);
    case SLM_MF_F32: return json_real(*(const float *)p);
    case SLM_MF_F64: return json_real(*(const double *)p);
    default: return json_null();
    }
    return json_string(num);
}

static size_t elem_size(int32_t t)
{
    static const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t >= 0 && t < 13 ? sizes[t] : 0;
}

static json_t *value_json(const slm_model_value_t *v)
{
    json_t *o = json_object();
    json_object_set_new(o, "key", json_string(v->key));
    json_object_set_new(o, "type", json_integer(v->type));
    if (v->type == SLM_MF_STRING) {
        json_object_set_new(o, "value", hex(v->data, v->n));
    } else if (v->type != SLM_MF_ARRAY) {
        json_object_set_new(o, "value", scalar(v->type, v->data));
    } else {
        json_t *a = json_array();
        json_object_set_new(o, "elem_type", json_integer(v->elem_type));
        for (uint64_t i = 0; i < v->n; i++) {
            if (v->elem_type == SLM_MF_STRING)
                json_array_append_new(a, hex(((const char *const *)v->data)[i], v->lens[i]));
            else
                json_array_append_new(a, scalar(v->elem_type, (const uint8_t *)v->data +
                                                                  i * elem_size(v->elem_type)));
        }
        json_object_set_new(o, "value", a);
    }
    return o;
}

static json_t *tensor_json(const slm_model_tensor_t *t)
{
    json_t *o = json_object(), *ne = json_array();
    char sum[65];
    for (int d = 0; d < t->n_dims; d++)
        json_array_append_new(ne, json_integer(t->ne[d]));
    sha256_hex(t->data, t->nbytes, sum);
    json_object_set_new(o, "name", json_string(t->name));
    json_object_set_new(o, "type", json_integer(t->type));
    json_object_set_new(o, "ne", ne);
    json_object_set_new(o, "nbytes", json_integer((json_int_t)t->nbytes));
    json_object_set_new(o, "sha256", json_string(sum));
    return o;
}

static int dump(const slm_model_file_t *mf)
{
    json_t *root = json_object(), *kv = json_array(), *ts = json_array();
    for (size_t i = 0; i < slm_model_file_n_values(mf); i++) {
        slm_model_value_t v = {.struct_size = sizeof v};
        slm_model_file_value(mf, i, &v);
        json_array_append_new(kv, value_json(&v));
    }
    for (size_t i = 0; i < slm_model_file_n_tensors(mf); i++) {
        slm_model_tensor_t t = {.struct_size = sizeof t};
        slm_model_file_tensor(mf, i, &t);
        json_array_append_new(ts, tensor_json(&t));
    }
    json_object_set_new(root, "format", json_string(slm_model_file_format(mf)));
    json_object_set_new(root, "kv", kv);
    json_object_set_new(root, "tensors", ts);
    int rc = json_dumpf(root, stdout, JSON_INDENT(1)) == 0 ? 0 : 1;
    putchar('\n');
    json_decref(root);
    return rc;
}

int main(int argc, char **argv)
{
    bool copy = argc == 4 && strcmp(argv[1], "--copy") == 0;
    if (!copy && argc != 2) {
        fprintf(stderr, "usage: gguf-dump FILE | gguf-dump --copy IN OUT\n");
        return 2;
    }
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    slm_model_file_t *mf = NULL;
    int rc = 1;
    if (reg && slm_model_file_open(reg, argv[copy ? 2 : 1], NULL, &mf, &err) == SLM_OK)
        rc = copy ? (slm_model_file_save(mf, reg, argv[3], NULL, &err) != SLM_OK) : dump(mf);
    if (rc)
        fprintf(stderr, "gguf-dump: %s\n", err.message);
    slm_model_file_free(mf);
    slm_registry_free(reg);
    return rc;
}
