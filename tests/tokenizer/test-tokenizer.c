/* Tokenizers against llama.cpp's own test vectors (every vocabulary GGUF with .inp/.out
 * in the fixtures), stories260K's tokenizer, decoding and the streaming decoder. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/model-file.h>
#include <slmops/registry.h>
#include <slmops/tokenizer.h>

#include "vectors.h"

static char fixtures[4096];
static char *vocabs[64];
static int n_vocabs;

/* One vocabulary: its 46 strings encode (no BOS, no special parsing) to exactly the
 * ids llama.cpp produced, and decode back to themselves. Round-trip rule: SentencePiece
 * and byte-level BPE vocabularies can spell every byte, so decoding (leading space of
 * the first piece removed, as for any SentencePiece decode, and no GPT-2 space
 * clean-up) must give the input back; WordPiece lower-cases and strips accents, so
 * it has no round trip to check. */
START_TEST(vocab_matches_llama_cpp)
{
    const char *name = vocabs[_i];
    char path[4200], inp[4300], outp[4300];
    snprintf(path, sizeof(path), "%s/llama.cpp-vocab/%s", fixtures, name);
    snprintf(inp, sizeof(inp), "%s.inp", path);
    snprintf(outp, sizeof(outp), "%s.out", path);
    slm_tokenizer_t *tok = tt_load(path);
    tt_check_vectors(tok, name, inp, outp, strcmp(slm_tokenizer_kind(tok), "wpm") != 0);
    slm_tokenizer_free(tok);
}
END_TEST

static slm_tokenizer_t *stories_tokenizer(void)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/gguf/stories260K.gguf", fixtures);
    return tt_load(path);
}

/* tok512: "Once upon a time" is the start of the reference story, whose ids
 * (greedy_ids in the reference JSON) begin 403 407 261 378. */
START_TEST(stories_encode)
{
    slm_tokenizer_t *tok = stories_tokenizer();
    ck_assert_str_eq(slm_tokenizer_kind(tok), "spm");
    ck_assert_uint_eq(slm_tokenizer_n_vocab(tok), 512);
    ck_assert_int_eq(slm_tokenizer_bos(tok), 1);
    ck_assert_int_eq(slm_tokenizer_eos(tok), 2);
    ck_assert(slm_tokenizer_add_bos(tok));
    int32_t *ids = NULL;
    size_t n = 0;
    const char *text = "Once upon a time";
    ck_assert_int_eq(slm_tokenizer_encode(tok, text, strlen(text), SLM_TOKENIZE_ADD_BOS, &ids,
                                          &n, NULL), SLM_OK);
    int32_t want[] = { 1, 403, 407, 261, 378 };
    char got_s[256];
    tt_ids_to_string(ids, n, got_s, sizeof(got_s));
    ck_assert_msg(n == 5 && memcmp(ids, want, sizeof(want)) == 0, "got [%s]", got_s);
    free(ids);
    /* Without PARSE_SPECIAL, "<s>" is text; with it, the BOS token. */
    ck_assert_int_eq(slm_tokenizer_encode(tok, "<s>", 3, SLM_TOKENIZE_PARSE_SPECIAL, &ids, &n,
                                          NULL), SLM_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ids[0], 1);
    free(ids);
    ck_assert_int_eq(slm_tokenizer_encode(tok, "<s>", 3, 0, &ids, &n, NULL), SLM_OK);
    ck_assert_uint_gt(n, 1);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_ne(ids[i], 1);
    free(ids);
    slm_tokenizer_free(tok);
}
END_TEST

static int32_t *reference_ids(size_t *n)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/reference/stories260K-llama2c-logits.json", fixtures);
    char *json = tt_read_all(path, NULL);
    ck_assert_msg(json != NULL, "cannot read %s", path);
    char *p = strstr(json, "\"greedy_ids\"");
    ck_assert_msg(p && (p = strchr(p, '[')), "%s: no greedy_ids", path);
    int32_t *ids = malloc(1024 * sizeof(*ids));
    *n = 0;
    for (char *end; *n < 1024; p = end) {
        while (*p == '[' || *p == ',' || *p == ' ' || *p == '\n')
            p++;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        ids[(*n)++] = (int32_t)v;
    }
    free(json);
    return ids;
}

/* Decoding llama2.c's greedy ids (which follow BOS) gives its printed story: the
 * first piece loses its leading space, as after BOS in run.c. */
START_TEST(stories_decode_reference)
{
    slm_tokenizer_t *tok = stories_tokenizer();
    size_t n = 0;
    int32_t *ids = reference_ids(&n);
    ck_assert_uint_eq(n, 256);
    char path[4200];
    snprintf(path, sizeof(path), "%s/reference/stories260K-greedy-256.txt", fixtures);
    size_t ref_len = 0;
    char *ref = tt_read_all(path, &ref_len);
    ck_assert_msg(ref != NULL, "cannot read %s", path);
    ck_assert(ref_len > 0 && ref[ref_len - 1] == '\n');  /* run.c ends with a newline */
    ref[--ref_len] = '\0';

    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(slm_tokenizer_decode(tok, ids, n, 0, &text, &len, NULL), SLM_OK);
    ck_assert_str_eq(text, ref);
    free(text);

    /* The same with BOS in front, removed as a special token or not rendered. */
    int32_t *with_bos = malloc((n + 1) * sizeof(*with_bos));
    with_bos[0] = 1;
    memcpy(with_bos + 1, ids, n * sizeof(*ids));
    ck_assert_int_eq(slm_tokenizer_decode(tok, with_bos, n + 1, SLM_DECODE_REMOVE_SPECIAL, &text,
                                          &len, NULL), SLM_OK);
    ck_assert_str_eq(text, ref);
    free(text);

    /* Streaming, one id at a time, from BOS. */
    slm_detokenizer_t *dt = NULL;
    ck_assert_int_eq(slm_detokenizer_new(tok, 0, &dt), SLM_OK);
    char *acc = calloc(ref_len + 64, 1);
    size_t k = 0;
    for (size_t i = 0; i < n + 1; i++) {
        const char *piece;
        size_t pl;
        ck_assert_int_eq(slm_detokenizer_feed(dt, with_bos[i], &piece, &pl), SLM_OK);
        ck_assert_uint_le(k + pl, ref_len);
        memcpy(acc + k, piece, pl);
        k += pl;
    }
    ck_assert_str_eq(acc, ref);
    slm_detokenizer_free(dt);
    free(acc);
    free(with_bos);
    free(ref);
    free(ids);
    slm_tokenizer_free(tok);
}
END_TEST

static bool utf8_whole(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t need = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
        if (need == 0 || i + need > n)
            return false;
        for (size_t j = 1; j < need; j++)
            if (((unsigned char)s[i + j] & 0xc0) != 0x80)
                return false;
        i += need;
    }
    return true;
}

/* Byte-fallback tokens split characters; the stream must never show half of one. */
START_TEST(detokenizer_whole_characters)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/llama.cpp-vocab/ggml-vocab-llama-spm.gguf", fixtures);
    slm_tokenizer_t *tok = tt_load(path);
    const char *text = "Llamas \xf0\x9f\xa6\x99 and \xe1\x9e\x80\xe1\x9e\xb6 caf\xc3\xa9 \xe2\x80\x8d!";
    int32_t *ids = NULL;
    size_t n = 0;
    ck_assert_int_eq(slm_tokenizer_encode(tok, text, strlen(text), SLM_TOKENIZE_ADD_BOS, &ids, &n,
                                          NULL), SLM_OK);
    size_t n_byte_tokens = 0;
    for (size_t i = 0; i < n; i++)
        n_byte_tokens += (slm_tokenizer_token_attr(tok, ids[i]) & SLM_TOKEN_ATTR_BYTE) != 0;
    ck_assert_uint_ge(n_byte_tokens, 4);  /* the llama emoji is spelled in bytes */

    slm_detokenizer_t *dt = NULL;
    ck_assert_int_eq(slm_detokenizer_new(tok, 0, &dt), SLM_OK);
    char acc[256] = "";
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *piece;
        size_t pl;
        ck_assert_int_eq(slm_detokenizer_feed(dt, ids[i], &piece, &pl), SLM_OK);
        ck_assert_msg(utf8_whole(piece, pl), "id %d gave a partial character", (int)ids[i]);
        memcpy(acc + k, piece, pl);
        k += pl;
    }
    const char *rest;
    size_t rl;
    ck_assert_int_eq(slm_detokenizer_flush(dt, &rest, &rl), SLM_OK);
    ck_assert_uint_eq(rl, 0);
    acc[k] = '\0';
    ck_assert_str_eq(acc, text);

    /* A stream cut inside a character hands the bytes over on flush. */
    slm_detokenizer_free(dt);
    ck_assert_int_eq(slm_detokenizer_new(tok, SLM_DECODE_CONTINUE, &dt), SLM_OK);
    int32_t f0 = slm_tokenizer_find_token(tok, "<0xF0>", 6);
    ck_assert_int_ge(f0, 0);
    const char *piece;
    size_t pl;
    ck_assert_int_eq(slm_detokenizer_feed(dt, f0, &piece, &pl), SLM_OK);
    ck_assert_uint_eq(pl, 0);
    ck_assert_int_eq(slm_detokenizer_flush(dt, &piece, &pl), SLM_OK);
    ck_assert_uint_eq(pl, 1);
    ck_assert_int_eq((unsigned char)piece[0], 0xf0);
    slm_detokenizer_free(dt);
    free(ids);
    slm_tokenizer_free(tok);
}
END_TEST

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

/* Arbitrary input never breaks a tokenizer: SentencePiece spells any bytes (even
 * stray continuation bytes) and gives them back; byte-level BPE gives back any valid UTF-8 text
 * (its pre-tokenizer regexes run over every kind of character); WordPiece yields ids
 * inside its vocabulary. */
START_TEST(random_text_round_trip)
{
    static const uint32_t pool[] = { ' ', ' ', '\n', '\t', 'a', 'Z', '7', '\'', '.', '!',
                                     0xa0, 0xe9, 0x416, 0x3000, 0x4e2d, 0x1f999, 0x2028,
                                     0xd55c, 0x0301, 0x85, 0xff0c, 0x2026 };
    static const char *const files[] = { "ggml-vocab-llama-spm.gguf", "ggml-vocab-deepseek-llm.gguf",
                                         "ggml-vocab-falcon.gguf", "ggml-vocab-bert-bge.gguf" };
    for (size_t f = 0; f < sizeof(files) / sizeof(*files); f++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/llama.cpp-vocab/%s", fixtures, files[f]);
        slm_tokenizer_t *tok = tt_load(path);
        const char *kind = slm_tokenizer_kind(tok);
        for (int round = 0; round < 200; round++) {
            char text[400];
            size_t n = 0, want = 1 + rnd(60);
            while (n < want) {
                if (strcmp(kind, "spm") == 0 && rnd(4) == 0) {
                    /* Stray continuation bytes. (A stray lead byte would swallow the
                     * next bytes, breaking a U+2581 apart, in llama.cpp too.) */
                    text[n++] = (char)(0x80 + rnd(0x40));
                    continue;
                }
                uint32_t c = pool[rnd(sizeof(pool) / sizeof(*pool))];
                unsigned char *o = (unsigned char *)text + n;
                if (c < 0x80) {
                    o[0] = (unsigned char)c, n += 1;
                } else if (c < 0x800) {
                    o[0] = (unsigned char)(0xc0 | (c >> 6)), o[1] = (unsigned char)(0x80 | (c & 0x3f));
                    n += 2;
                } else if (c < 0x10000) {
                    o[0] = (unsigned char)(0xe0 | (c >> 12));
                    o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
                    o[2] = (unsigned char)(0x80 | (c & 0x3f));
                    n += 3;
                } else {
                    o[0] = (unsigned char)(0xf0 | (c >> 18));
                    o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
                    o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
                    o[3] = (unsigned char)(0x80 | (c & 0x3f));
                    n += 4;
                }
            }
            int32_t *ids = NULL;
            size_t n_ids = 0;
            ck_assert_int_eq(slm_tokenizer_encode(tok, text, n, 0, &ids, &n_ids, NULL), SLM_OK);
            for (size_t i = 0; i < n_ids; i++)
                ck_assert(ids[i] >= 0 && (size_t)ids[i] < slm_tokenizer_n_vocab(tok));
            if (strcmp(kind, "wpm") != 0) {
                char *dec = NULL, esc[2000];
                size_t dl = 0;
                ck_assert_int_eq(slm_tokenizer_decode(tok, ids, n_ids, SLM_DECODE_KEEP_SPACES,
                                                      &dec, &dl, NULL), SLM_OK);
                tt_escape(text, n, esc, sizeof(esc));
                ck_assert_msg(dl == n && memcmp(dec, text, n) == 0, "%s: \"%s\" does not round-trip",
                              files[f], esc);
                free(dec);
            }
            free(ids);
        }
        slm_tokenizer_free(tok);
    }
}
END_TEST

/* Special ids and end-of-generation detection follow the file. */
START_TEST(special_tokens)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/llama.cpp-vocab/ggml-vocab-phi-3.gguf", fixtures);
    slm_tokenizer_t *tok = tt_load(path);
    ck_assert_int_eq(slm_tokenizer_eos(tok), 32000);
    int32_t end = slm_tokenizer_find_token(tok, "<|end|>", 7);
    ck_assert_int_ge(end, 0);
    /* llama.cpp picks either end marker as EOT (hash order); both end generation. */
    ck_assert(slm_tokenizer_eot(tok) == end || slm_tokenizer_eot(tok) == 32000);
    ck_assert(slm_tokenizer_is_eog(tok, end));
    ck_assert(slm_tokenizer_is_eog(tok, 32000));
    ck_assert(!slm_tokenizer_is_eog(tok, 1));
    /* Phi-3 strips the spaces after its chat markers; the text after a special token
     * gets SentencePiece's space prefix again (llama.cpp does the same). */
    int32_t *ids = NULL;
    size_t n = 0;
    const char *text = "<|user|>\nHi<|end|>";
    ck_assert_int_eq(slm_tokenizer_encode(tok, text, strlen(text), SLM_TOKENIZE_PARSE_SPECIAL,
                                          &ids, &n, NULL), SLM_OK);
    int32_t user = slm_tokenizer_find_token(tok, "<|user|>", 8);
    ck_assert_uint_ge(n, 3);
    ck_assert_int_eq(ids[0], user);
    ck_assert_int_eq(ids[n - 1], end);
    char *dec = NULL;
    ck_assert_int_eq(slm_tokenizer_decode(tok, ids, n, SLM_DECODE_RENDER_SPECIAL, &dec, NULL,
                                          NULL), SLM_OK);
    ck_assert_str_eq(dec, "<|user|> Hi<|end|>");
    free(dec);
    free(ids);
    slm_tokenizer_free(tok);

    snprintf(path, sizeof(path), "%s/llama.cpp-vocab/ggml-vocab-gpt-2.gguf", fixtures);
    tok = tt_load(path);
    ck_assert_str_eq(slm_tokenizer_kind(tok), "bpe");
    ck_assert_str_eq(slm_tokenizer_pre(tok), "gpt-2");
    ck_assert(!slm_tokenizer_add_bos(tok));
    ck_assert(slm_tokenizer_is_eog(tok, 50256));
    /* GPT-2 decoding removes the space before punctuation unless asked not to. */
    ck_assert_int_eq(slm_tokenizer_encode(tok, "Hi , there", 10, 0, &ids, &n, NULL), SLM_OK);
    ck_assert_int_eq(slm_tokenizer_decode(tok, ids, n, 0, &dec, NULL, NULL), SLM_OK);
    ck_assert_str_eq(dec, "Hi, there");
    free(dec);
    ck_assert_int_eq(slm_tokenizer_decode(tok, ids, n, SLM_DECODE_KEEP_SPACES, &dec, NULL, NULL),
                     SLM_OK);
    ck_assert_str_eq(dec, "Hi , there");
    free(dec);
    free(ids);
    slm_tokenizer_free(tok);
}
END_TEST

/* A file without tokenizer keys is refused with a reason, not a crash. */
START_TEST(no_tokenizer)
{
    slm_model_file_t *mf = slm_model_file_new();
    ck_assert_ptr_nonnull(mf);
    slm_tokenizer_t *tok = NULL;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_tokenizer_from_model_file(mf, &tok, &err), SLM_E_NOT_FOUND);
    ck_assert_ptr_null(tok);
    ck_assert_ptr_nonnull(strstr(err.message, "tokenizer"));
    ck_assert_int_eq(slm_model_file_set_string(mf, "tokenizer.ggml.model", "gpt2", NULL), SLM_OK);
    const char *toks[] = { "a", "b", "ab" };
    ck_assert_int_eq(slm_model_file_set_array(mf, "tokenizer.ggml.tokens", SLM_MF_STRING, toks,
                                              NULL, 3, NULL), SLM_OK);
    const char *merges[] = { "a b" };
    ck_assert_int_eq(slm_model_file_set_array(mf, "tokenizer.ggml.merges", SLM_MF_STRING, merges,
                                              NULL, 1, NULL), SLM_OK);
    ck_assert_int_eq(slm_model_file_set_string(mf, "tokenizer.ggml.pre", "no-such-pre", NULL),
                     SLM_OK);
    ck_assert_int_eq(slm_tokenizer_from_model_file(mf, &tok, &err), SLM_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.message, "no-such-pre"));
    ck_assert_int_eq(slm_model_file_set_string(mf, "tokenizer.ggml.pre", "gpt-2", NULL), SLM_OK);
    ck_assert_int_eq(slm_tokenizer_from_model_file(mf, &tok, &err), SLM_OK);
    int32_t *ids = NULL;
    size_t n = 0;
    ck_assert_int_eq(slm_tokenizer_encode(tok, "ab", 2, 0, &ids, &n, NULL), SLM_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ids[0], 2);
    free(ids);
    slm_tokenizer_free(tok);
    /* A duplicated entry is an error naming it. */
    const char *dup[] = { "a", "b", "a" };
    ck_assert_int_eq(slm_model_file_set_array(mf, "tokenizer.ggml.tokens", SLM_MF_STRING, dup,
                                              NULL, 3, NULL), SLM_OK);
    ck_assert_int_eq(slm_tokenizer_from_model_file(mf, &tok, &err), SLM_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.message, "duplicate"));
    slm_model_file_free(mf);
}
END_TEST

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.gguf in llama.cpp-vocab/ that has both .inp and .out. */
static void find_vocabs(void)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/llama.cpp-vocab", fixtures);
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL && n_vocabs < 64;) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".gguf") != 0)
            continue;
        char p[4400];
        snprintf(p, sizeof(p), "%s/%s.inp", dir, e->d_name);
        FILE *f1 = fopen(p, "rb");
        snprintf(p, sizeof(p), "%s/%s.out", dir, e->d_name);
        FILE *f2 = fopen(p, "rb");
        if (f1 && f2)
            vocabs[n_vocabs++] = strdup(e->d_name);
        if (f1)
            fclose(f1);
        if (f2)
            fclose(f2);
    }
    closedir(d);
    qsort(vocabs, (size_t)n_vocabs, sizeof(*vocabs), cmp_str);
}

int main(void)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(fixtures, sizeof(fixtures), "%s", fx && *fx ? fx : "../shared/fixtures");
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/llama.cpp-vocab", fixtures);
    DIR *d = opendir(probe);
    if (!d) {
        printf("SKIP: fixtures not found: %s\n", probe);
        return 77;
    }
    closedir(d);
    find_vocabs();

    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("llama.cpp-vocab");
    tcase_set_timeout(tc, 120);
    /* No vocabulary found in an existing folder is a failure, not a pass. */
    tcase_add_loop_test(tc, vocab_matches_llama_cpp, 0, n_vocabs);
    suite_add_tcase(s, tc);
    TCase *tc2 = tcase_create("api");
    tcase_set_timeout(tc2, 60);
    tcase_add_test(tc2, stories_encode);
    tcase_add_test(tc2, stories_decode_reference);
    tcase_add_test(tc2, detokenizer_whole_characters);
    tcase_add_test(tc2, special_tokens);
    tcase_add_test(tc2, random_text_round_trip);
    tcase_add_test(tc2, no_tokenizer);
    suite_add_tcase(s, tc2);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (n_vocabs == 0) {
        printf("FAIL: no vocabulary with .inp/.out in %s\n", probe);
        failed++;
    }
    for (int i = 0; i < n_vocabs; i++)
        free(vocabs[i]);
    return failed ? 1 : 0;
}
