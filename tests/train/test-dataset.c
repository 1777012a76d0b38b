/* Training data (issue 8): plain text cut into windows, JSONL text / prompt+completion
 * / messages with the right tokens learned, bad lines named by file and line or
 * skipped and counted, a deterministic validation split, and batches whose packing
 * never lets a target cross examples and whose cursor resumes exactly. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slmops/slmops.h>

static slm_registry_t *reg;
static slm_tokenizer_t *tok;
static slm_chat_template_t *chatml;
static char dir[] = "/tmp/slmops-dataset-XXXXXX";
static char model_path[1024];

static void setup(void)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(model_path, sizeof model_path, "%s/gguf/stories260K.gguf", fx ? fx : "");
    if (access(model_path, R_OK) != 0) {
        printf("SKIP: fixture %s not found\n", model_path);
        exit(77);
    }
    reg = slm_registry_new(NULL, NULL);
    if (!reg || slm_tokenizer_load(reg, model_path, &tok, NULL) != SLM_OK ||
        slm_chat_template_builtin("chatml", &chatml, NULL) != SLM_OK || !mkdtemp(dir)) {
        fprintf(stderr, "cannot set up: registry, tokenizer of %s, chatml or a folder\n",
                model_path);
        exit(99);
    }
}

static const char *file(const char *name, const char *text, size_t len)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static slm_dataset_params_t params(int32_t n_ctx)
{
    slm_dataset_params_t p;
    slm_dataset_params_default(&p);
    p.tok = tok;
    p.chat = chatml;
    p.n_ctx = n_ctx;
    return p;
}

static int load(const char *path, int32_t n_ctx, bool skip, slm_dataset_t **ds, slm_error_t *err)
{
    slm_dataset_params_t p = params(n_ctx);
    p.skip_bad_lines = skip;
    slm_error_init(err);
    return slm_dataset_load(path, &p, ds, err);
}

/* The text of tokens[from, to) (learned ones only when only_learned). */
static char *text_of(const int32_t *t, const uint8_t *l, size_t n, bool only_learned)
{
    int32_t *keep = malloc((n ? n : 1) * sizeof *keep);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!only_learned || l[i])
            keep[k++] = t[i];
    char *s = NULL;
    size_t len = 0;
    ck_assert_int_eq(slm_tokenizer_decode(tok, keep, k, 0, &s, &len, NULL), SLM_OK);
    free(keep);
    return s;
}

START_TEST(text_is_cut_into_windows)
{
    const char *story = "Once upon a time, there was a little girl named Lily. She loved to play "
                        "outside in the park. One day, she saw a big red ball.";
    char text[4096] = "";
    for (int i = 0; i < 8; i++)
        strcat(text, story);
    slm_dataset_t *ds;
    slm_error_t err;
    ck_assert_int_eq(load(file("story.txt", text, strlen(text)), 32, false, &ds, &err), SLM_OK);
    int32_t *all;
    size_t n_all;
    ck_assert_int_eq(slm_tokenizer_encode(tok, text, strlen(text), SLM_TOKENIZE_ADD_BOS, &all,
                                          &n_all, NULL), SLM_OK);
    ck_assert_uint_eq(slm_dataset_n_tokens(ds), n_all);
    size_t seen = 0;
    for (size_t i = 0; i < slm_dataset_n_examples(ds); i++) {
        const int32_t *t;
        const uint8_t *l;
        size_t n, line;
        ck_assert_int_eq(slm_dataset_example(ds, i, &t, &l, &n, &line), SLM_OK);
        ck_assert_uint_le(n, 32);
        ck_assert_uint_eq(line, 0);
        ck_assert_int_eq(memcmp(t, all + seen, n * sizeof *t), 0);
        for (size_t k = 0; k < n; k++)
            ck_assert_uint_eq(l[k], 1);
        seen += n;
    }
    ck_assert_uint_eq(seen, n_all);
    free(all);
    slm_dataset_free(ds);
}
END_TEST

START_TEST(prompt_completion_learns_the_completion)
{
    const char *jsonl = "{\"prompt\": \"Once upon a time\", \"completion\": \" there was a cat.\"}\n"
                        "\n"
                        "{\"text\": \"Lily saw a big red ball.\", \"id\": 7}\n";
    slm_dataset_t *ds;
    slm_error_t err;
    ck_assert_int_eq(load(file("pc.jsonl", jsonl, strlen(jsonl)), 64, false, &ds, &err), SLM_OK);
    ck_assert_uint_eq(slm_dataset_n_examples(ds), 2);
    const int32_t *t;
    const uint8_t *l;
    size_t n, line;
    ck_assert_int_eq(slm_dataset_example(ds, 0, &t, &l, &n, &line), SLM_OK);
    ck_assert_uint_eq(line, 1);
    ck_assert_int_eq(t[0], slm_tokenizer_bos(tok));
    ck_assert_uint_eq(l[0], 0);
    ck_assert_int_eq(t[n - 1], slm_tokenizer_eos(tok));
    ck_assert_uint_eq(l[n - 1], 1);
    char *learned = text_of(t, l, n, true);
    ck_assert_msg(strstr(learned, "there was a cat.") && !strstr(learned, "Once"),
                  "learned '%s'", learned);
    free(learned);
    ck_assert_int_eq(slm_dataset_example(ds, 1, &t, &l, &n, &line), SLM_OK);
    ck_assert_uint_eq(line, 3);
    for (size_t k = 1; k < n; k++)
        ck_assert_uint_eq(l[k], 1);
    slm_dataset_free(ds);
}
END_TEST

START_TEST(messages_learn_the_assistant_turns_only)
{
    const char *jsonl =
        "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
        " {\"role\": \"user\", \"content\": \"Who saw the ball?\"},"
        " {\"role\": \"assistant\", \"content\": \"Lily did.\"},"
        " {\"role\": \"user\", \"content\": \"And then?\"},"
        " {\"role\": \"assistant\", \"content\": \"She played.\"}]}\n";
    slm_dataset_t *ds;
    slm_error_t err;
    ck_assert_int_eq(load(file("chat.jsonl", jsonl, strlen(jsonl)), 256, false, &ds, &err),
                     SLM_OK);
    const int32_t *t;
    const uint8_t *l;
    size_t n, line;
    ck_assert_int_eq(slm_dataset_example(ds, 0, &t, &l, &n, &line), SLM_OK);
    char *learned = text_of(t, l, n, true), *whole = text_of(t, l, n, false);
    ck_assert_msg(strstr(learned, "Lily did.") && strstr(learned, "She played.") &&
                  strstr(learned, "<|im_end|>"), "learned '%s'", learned);
    ck_assert_msg(!strstr(learned, "Who saw") && !strstr(learned, "Be brief") &&
                  !strstr(learned, "And then"), "learned '%s'", learned);
    ck_assert_msg(strstr(whole, "<|im_start|>user") && strstr(whole, "Who saw the ball?"),
                  "whole '%s'", whole);
    free(learned);
    free(whole);
    slm_dataset_free(ds);
}
END_TEST

/* Each bad line is an error naming FILE:LINE and what is wrong. */
static const struct bad_case {
    const char *text, *why;
} bad_cases[] = {
    {"{\"text\": \"fine\"}\n{\"text\": \"broken\"\n", ":2: not valid JSON"},
    {"{\"text\": 5}\n", ":1: \"text\" must be a string"},
    {"{\"prompt\": \"p\", \"completion\": [1]}\n", ":1: \"completion\" must be a string"},
    {"[1, 2]\n", ":1: each line must be a JSON object"},
    {"{\"other\": \"x\"}\n", ":1: expected \"text\", \"prompt\" and \"completion\", or \"messages\""},
    {"{\"text\": \"ok\"}\n{\"text\": \"caf\xe9\"}\n", ":2: not valid UTF-8"},
    {"{\"messages\": []}\n", ":1: \"messages\" must be a non-empty array"},
    {"{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n",
     ":1: no assistant message to learn from"},
    {"{\"messages\": [{\"content\": \"hi\"}]}\n", ":1: messages[0] needs a \"role\" string"},
    {"{\"text\": \"Once upon a time there was a little girl named Lily who loved to play in "
     "the big green park near her house every single day.\"}\n", ":1: "},
    {"", ": holds no example"},
    {"\n  \n", ": holds no example"},
};

START_TEST(bad_lines_name_file_and_line)
{
    const struct bad_case *c = &bad_cases[_i];
    const char *path = file("bad.jsonl", c->text, strlen(c->text));
    slm_dataset_t *ds = NULL;
    slm_error_t err;
    int rc = load(path, 16, false, &ds, &err);
    ck_assert_int_eq(rc, SLM_E_FORMAT);
    ck_assert_ptr_null(ds);
    char want[1200];
    snprintf(want, sizeof want, "%s%s", path, c->why);
    ck_assert_msg(strstr(err.message, want), "case %d: '%s' lacks '%s'", _i, err.message, want);
    if (_i == 9)
        ck_assert_msg(strstr(err.message, "more than the context of 16"), "%s", err.message);
}
END_TEST

START_TEST(bad_lines_can_be_skipped_and_counted)
{
    const char *jsonl = "{\"text\": \"one\"}\n{\"text\": 5}\nnot json\n{\"text\": \"two\"}\n";
    slm_dataset_t *ds;
    slm_error_t err;
    ck_assert_int_eq(load(file("skip.jsonl", jsonl, strlen(jsonl)), 64, true, &ds, &err), SLM_OK);
    ck_assert_uint_eq(slm_dataset_n_examples(ds), 2);
    ck_assert_uint_eq(slm_dataset_n_skipped(ds), 2);
    ck_assert_msg(strstr(slm_dataset_first_skip(ds), "skip.jsonl:2: \"text\" must be a string"),
                  "%s", slm_dataset_first_skip(ds));
    slm_dataset_free(ds);
    const char *all_bad = "{\"text\": 5}\n";
    ck_assert_int_eq(load(file("allbad.jsonl", all_bad, strlen(all_bad)), 64, true, &ds, &err),
                     SLM_E_FORMAT);
    ck_assert_msg(strstr(err.message, "no example left after skipping 1"), "%s", err.message);
}
END_TEST

static slm_dataset_t *numbered(size_t n)
{
    char *jsonl = malloc(n * 64 + 1), *w = jsonl;
    for (size_t i = 0; i < n; i++)
        w += sprintf(w, "{\"text\": \"story number %zu\"}\n", i);
    slm_dataset_t *ds;
    slm_error_t err;
    ck_assert_int_eq(load(file("many.jsonl", jsonl, strlen(jsonl)), 64, false, &ds, &err), SLM_OK);
    free(jsonl);
    return ds;
}

static size_t line_of(const slm_dataset_t *ds, size_t i)
{
    size_t line;
    ck_assert_int_eq(slm_dataset_example(ds, i, NULL, NULL, NULL, &line), SLM_OK);
    return line;
}

START_TEST(split_is_deterministic_and_disjoint)
{
    slm_dataset_t *ds = numbered(50);
    slm_dataset_t *tr, *va, *tr2, *va2, *tr3, *va3;
    ck_assert_int_eq(slm_dataset_split(ds, 0.1, 7, &tr, &va, NULL), SLM_OK);
    ck_assert_uint_eq(slm_dataset_n_examples(va), 5);
    ck_assert_uint_eq(slm_dataset_n_examples(tr), 45);
    int seen[51] = {0};
    for (size_t i = 0; i < 45; i++)
        seen[line_of(tr, i)]++;
    for (size_t i = 0; i < 5; i++)
        seen[line_of(va, i)]++;
    for (int i = 1; i <= 50; i++)
        ck_assert_int_eq(seen[i], 1);
    ck_assert_int_eq(slm_dataset_split(ds, 0.1, 7, &tr2, &va2, NULL), SLM_OK);
    ck_assert_int_eq(slm_dataset_split(ds, 0.1, 8, &tr3, &va3, NULL), SLM_OK);
    bool same = true, differs = false;
    for (size_t i = 0; i < 5; i++) {
        same &= line_of(va, i) == line_of(va2, i);
        differs |= line_of(va, i) != line_of(va3, i);
    }
    ck_assert(same);
    ck_assert(differs);
    slm_dataset_free(ds);   /* the split sets keep the examples alive */
    ck_assert_uint_eq(line_of(va, 0), line_of(va2, 0));
    slm_dataset_free(tr);
    slm_dataset_free(va);
    slm_dataset_free(tr2);
    slm_dataset_free(va2);
    slm_dataset_free(tr3);
    slm_dataset_free(va3);
}
END_TEST

/* Every learned target is the next token of the same example, positions restart
 * with each example, and padding learns nothing. */
static void check_packing(const slm_dataset_batch_t *b)
{
    uint64_t scored = 0;
    for (int32_t r = 0; r < b->n_rows; r++)
        for (int32_t c = 0; c < b->n_ctx; c++) {
            size_t i = (size_t)r * (size_t)b->n_ctx + (size_t)c;
            if (b->doc[i] < 0) {
                ck_assert_int_eq(b->targets[i], -1);
                continue;
            }
            if (c > 0 && b->doc[i - 1] == b->doc[i])
                ck_assert_int_eq(b->pos[i], b->pos[i - 1] + 1);
            else
                ck_assert_int_eq(b->pos[i], 0);
            if (b->targets[i] >= 0) {
                scored++;
                ck_assert_int_lt(c + 1, b->n_ctx);
                ck_assert_int_eq(b->doc[i + 1], b->doc[i]);
                ck_assert_int_eq(b->targets[i], b->tokens[i + 1]);
            }
        }
    ck_assert_uint_eq(scored, b->n_scored);
}

START_TEST(batches_pack_and_resume_exactly)
{
    slm_dataset_t *ds = numbered(30);
    slm_dataset_cursor_t a = {.seed = 42, .shuffle = true}, saved;
    slm_dataset_batch_t b, again;
    uint64_t examples = 0;
    for (int step = 0; step < 3; step++) {
        ck_assert_int_eq(slm_dataset_next_batch(ds, &a, 2, false, &b, NULL), SLM_OK);
        check_packing(&b);
        ck_assert_uint_ge(b.n_examples, 2);   /* several short examples share a row */
        examples += b.n_examples;
        slm_dataset_batch_free(&b);
    }
    saved = a;
    ck_assert_int_eq(slm_dataset_next_batch(ds, &a, 2, false, &b, NULL), SLM_OK);
    ck_assert_int_eq(slm_dataset_next_batch(ds, &saved, 2, false, &again, NULL), SLM_OK);
    size_t cells = (size_t)b.n_rows * (size_t)b.n_ctx;
    ck_assert_int_eq(memcmp(b.tokens, again.tokens, cells * sizeof *b.tokens), 0);
    ck_assert_int_eq(memcmp(b.targets, again.targets, cells * sizeof *b.targets), 0);
    ck_assert_uint_eq(a.next, saved.next);
    ck_assert_uint_eq(a.epoch, saved.epoch);
    slm_dataset_batch_free(&b);
    slm_dataset_batch_free(&again);
    /* A whole pass ends an epoch; the next pass has another order. */
    slm_dataset_cursor_t v = {.seed = 42, .shuffle = false};
    uint64_t n = 0;
    bool ended = false;
    while (!ended) {
        ck_assert_int_eq(slm_dataset_next_batch(ds, &v, 4, true, &b, NULL), SLM_OK);
        check_packing(&b);
        n += b.n_examples;
        ended = b.epoch_ended;
        slm_dataset_batch_free(&b);
    }
    ck_assert_uint_eq(n, 30);
    ck_assert_uint_eq(v.epoch, 1);
    (void)examples;
    slm_dataset_free(ds);
}
END_TEST

START_TEST(same_seed_same_order_other_seed_other_order)
{
    slm_dataset_t *ds = numbered(40);
    slm_dataset_cursor_t a = {.seed = 1, .shuffle = true}, b = {.seed = 1, .shuffle = true},
                         c = {.seed = 2, .shuffle = true};
    slm_dataset_batch_t x, y, z;
    ck_assert_int_eq(slm_dataset_next_batch(ds, &a, 1, false, &x, NULL), SLM_OK);
    ck_assert_int_eq(slm_dataset_next_batch(ds, &b, 1, false, &y, NULL), SLM_OK);
    ck_assert_int_eq(slm_dataset_next_batch(ds, &c, 1, false, &z, NULL), SLM_OK);
    size_t cells = (size_t)x.n_ctx;
    ck_assert_int_eq(memcmp(x.tokens, y.tokens, cells * sizeof *x.tokens), 0);
    ck_assert_int_ne(memcmp(x.tokens, z.tokens, cells * sizeof *x.tokens), 0);
    slm_dataset_batch_free(&x);
    slm_dataset_batch_free(&y);
    slm_dataset_batch_free(&z);
    slm_dataset_free(ds);
}
END_TEST

int main(void)
{
    setup();
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("dataset");
    tcase_add_test(tc, text_is_cut_into_windows);
    tcase_add_test(tc, prompt_completion_learns_the_completion);
    tcase_add_test(tc, messages_learn_the_assistant_turns_only);
    tcase_add_loop_test(tc, bad_lines_name_file_and_line, 0,
                        (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, bad_lines_can_be_skipped_and_counted);
    tcase_add_test(tc, split_is_deterministic_and_disjoint);
    tcase_add_test(tc, batches_pack_and_resume_exactly);
    tcase_add_test(tc, same_seed_same_order_other_seed_other_order);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char rm[1100];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0)
        fprintf(stderr, "note: could not remove %s\n", dir);
    return failed ? 1 : 0;
}
