/* Helpers shared by the tokenizer tests: reading fixtures, loading tokenizers and
 * checking llama.cpp's .inp/.out tokenizer test vectors. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/registry.h>

#include "vectors.h"

char *tt_read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

slm_tokenizer_t *tt_load(const char *path)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    ck_assert_msg(reg != NULL, "registry: %s", err.message);
    slm_tokenizer_t *tok = NULL;
    int rc = slm_tokenizer_load(reg, path, &tok, &err);
    ck_assert_msg(rc == SLM_OK, "%s: %s", path, err.message);
    slm_registry_free(reg);
    return tok;
}

void tt_ids_to_string(const int32_t *ids, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && k + 16 < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%d", i ? " " : "", (int)ids[i]);
}

void tt_escape(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        k += (size_t)(c >= 0x20 && c < 0x7f ? snprintf(out + k, cap - k, "%c", c)
                                            : snprintf(out + k, cap - k, "\\x%02x", c));
    }
    out[k] = '\0';
}

/* Check every string of a llama.cpp .inp file: ids equal the .out line when outp is
 * given, and decoding (no GPT-2 space clean-up) gives the string back when round_trip. */
void tt_check_vectors(slm_tokenizer_t *tok, const char *name, const char *inp, const char *outp,
                      bool round_trip)
{
    char *in = tt_read_all(inp, NULL), *out = outp ? tt_read_all(outp, NULL) : NULL;
    ck_assert_msg(in != NULL, "cannot read %s", inp);
    ck_assert_msg(!outp || out, "cannot read %s", outp);
    char *s = in, *line = out;
    int n_cases = 0;
    for (char *sep; (sep = strstr(s, TT_SEPARATOR)) != NULL; s = sep + strlen(TT_SEPARATOR)) {
        int32_t want[512];
        size_t n_want = 0;
        if (out) {
            char *eol = strchr(line, '\n');
            ck_assert_msg(eol != NULL, "%s: fewer lines than strings", outp);
            *eol = '\0';
            for (char *p = line, *end; n_want < 512; p = end) {
                long v = strtol(p, &end, 10);
                if (end == p)
                    break;
                want[n_want++] = (int32_t)v;
            }
            line = eol + 1;
        }
        int32_t *ids = NULL;
        size_t n_ids = 0;
        slm_error_t err;
        slm_error_init(&err);
        size_t len = (size_t)(sep - s);
        ck_assert_msg(slm_tokenizer_encode(tok, s, len, 0, &ids, &n_ids, &err) == SLM_OK,
                      "%s: %s", name, err.message);
        char text[512], got_s[2048], want_s[2048];
        tt_escape(s, len, text, sizeof(text));
        tt_ids_to_string(ids, n_ids, got_s, sizeof(got_s));
        tt_ids_to_string(want, n_want, want_s, sizeof(want_s));
        ck_assert_msg(!out || (n_ids == n_want && (n_ids == 0 || memcmp(ids, want, n_ids * 4) == 0)),
                      "%s: \"%s\" encodes to [%s], llama.cpp gives [%s]", name, text, got_s,
                      want_s);
        if (round_trip) {
            char *dec = NULL;
            size_t dec_len = 0;
            ck_assert(slm_tokenizer_decode(tok, ids, n_ids, SLM_DECODE_KEEP_SPACES, &dec,
                                           &dec_len, &err) == SLM_OK);
            char dtext[512];
            tt_escape(dec, dec_len, dtext, sizeof(dtext));
            ck_assert_msg(dec_len == len && memcmp(dec, s, len) == 0,
                          "%s: \"%s\" [%s] decodes back to \"%s\"", name, text, got_s, dtext);
            free(dec);
        }
        free(ids);
        n_cases++;
    }
    ck_assert_msg(n_cases == 46, "%s: %d test strings, expected 46", inp, n_cases);
    free(in);
    free(out);
}
