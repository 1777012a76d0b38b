/* Check tests of the chat-template API (slmops/chat.h): the built-in templates
 * against text written by hand from their model families' definitions, a model
 * file's own template with its vocabulary's BOS/EOS, and the render parameters. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/chat.h>
#include <slmops/registry.h>

static const slm_chat_message_t conv[] = {
    {"system", "You are kind."},
    {"user", "Hi"},
    {"assistant", "Hello!"},
    {"user", "Bye"},
};

static char *apply(const char *name, const slm_chat_message_t *msgs, size_t n, bool add_ass,
                   slm_error_t *err, int *rc)
{
    slm_chat_template_t *t = NULL;
    slm_chat_params_t p;
    slm_chat_params_default(&p);
    p.add_generation_prompt = add_ass;
    p.bos_token = "<s>";
    p.eos_token = "</s>";
    char *out = NULL;
    slm_error_init(err);
    *rc = slm_chat_template_builtin(name, &t, err);
    if (*rc == SLM_OK)
        *rc = slm_chat_template_apply(t, msgs, n, &p, &out, err);
    slm_chat_template_free(t);
    return out;
}

static void expect(const char *name, const slm_chat_message_t *msgs, size_t n, bool add_ass,
                   const char *want)
{
    slm_error_t err;
    int rc;
    char *got = apply(name, msgs, n, add_ass, &err, &rc);
    ck_assert_msg(rc == SLM_OK, "%s: %s", name, err.message);
    ck_assert_msg(strcmp(got, want) == 0, "%s:\n got: [%s]\nwant: [%s]", name, got, want);
    free(got);
}

START_TEST(chatml)
{
    expect("chatml", conv, 4, true,
           "<|im_start|>system\nYou are kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
           "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
           "<|im_start|>assistant\n");
    expect("chatml", conv, 4, false,
           "<|im_start|>system\nYou are kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
           "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n");
}
END_TEST

START_TEST(llama2)
{
    /* Meta's template: the system text in <<SYS>> inside the first [INST] */
    expect("llama2", conv, 4, true,
           "<s>[INST] <<SYS>>\nYou are kind.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]");
}
END_TEST

START_TEST(llama3)
{
    expect("llama3", conv, 4, true,
           "<s><|start_header_id|>system<|end_header_id|>\n\nYou are kind.<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n");
}
END_TEST

START_TEST(phi3_zephyr)
{
    expect("phi3", conv, 4, true,
           "<s><|system|>\nYou are kind.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
           "<|user|>\nBye<|end|>\n<|assistant|>\n");
    expect("zephyr", conv, 4, true,
           "<|system|>\nYou are kind.</s>\n<|user|>\nHi</s>\n"
           "<|assistant|>\nHello!</s>\n<|user|>\nBye</s>\n<|assistant|>\n");
}
END_TEST

START_TEST(gemma)
{
    /* No system role (the template refuses one); "assistant" is "model". */
    expect("gemma", conv + 1, 3, true,
           "<s><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
           "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
    slm_error_t err;
    int rc;
    char *out = apply("gemma", conv, 4, true, &err, &rc);
    ck_assert_int_eq(rc, SLM_E_INVALID);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(err.message, "System role not supported");
}
END_TEST

START_TEST(unknown_name_is_an_error)
{
    slm_chat_template_t *t = (slm_chat_template_t *)1;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_chat_template_builtin("no-such", &t, &err), SLM_E_NOT_FOUND);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(strstr(err.message, "no-such"));
    /* Every listed name parses and renders a user turn. */
    for (size_t i = 0; slm_chat_template_builtin_name(i); i++) {
        int rc;
        char *out = apply(slm_chat_template_builtin_name(i), conv + 1, 1, true, &err, &rc);
        ck_assert_msg(rc == SLM_OK && strstr(out, "Hi"), "%s: %s",
                      slm_chat_template_builtin_name(i), err.message);
        free(out);
    }
}
END_TEST

START_TEST(params)
{
    const char *src = "{{ bos_token }}{% if enable_thinking is defined %}[{{ enable_thinking }}]"
                      "{% endif %}{{ messages | length }}{{ '+' if add_generation_prompt }}"
                      "{{ eos_token }}";
    slm_chat_template_t *t = NULL;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_chat_template_parse(src, strlen(src), &t, &err), SLM_OK);
    char *out = NULL;
    ck_assert_int_eq(slm_chat_template_apply(t, conv, 2, NULL, &out, &err), SLM_OK);
    ck_assert_str_eq(out, "2+");   /* no BOS/EOS known: empty */
    free(out);
    slm_chat_params_t p;
    slm_chat_params_default(&p);
    p.add_generation_prompt = false;
    p.bos_token = "B";
    p.eos_token = "E";
    p.vars_json = "{\"enable_thinking\": false}";
    ck_assert_int_eq(slm_chat_template_apply(t, conv, 4, &p, &out, &err), SLM_OK);
    ck_assert_str_eq(out, "B[False]4E");
    free(out);
    p.vars_json = "[1]";
    ck_assert_int_eq(slm_chat_template_apply(t, conv, 4, &p, &out, &err), SLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "JSON object"));
    ck_assert_int_eq(slm_chat_template_render(t, "{\"messages\": [], \"extra\": {\"enable_thinking\": 1}}",
                                              NULL, &out, &err), SLM_OK);
    ck_assert_str_eq(out, "[1]0+");
    free(out);
    slm_chat_template_free(t);
}
END_TEST

static const char *fixture(const char *rel, char *buf, size_t cap)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(buf, cap, "%s/%s", fx ? fx : "../shared/fixtures", rel);
    return buf;
}

/* A template kept in a model file, with BOS/EOS from its vocabulary. */
START_TEST(template_of_model_file)
{
    slm_model_file_t *mf = slm_model_file_new();
    slm_chat_template_t *t = NULL;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_chat_template_from_model_file(mf, &t, &err), SLM_E_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.message, "no chat template"));
    const char *src = "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}"
                      "{{ eos_token }}{% endfor %}";
    ck_assert_int_eq(slm_model_file_set_string(mf, "tokenizer.chat_template", src, NULL), SLM_OK);
    const char *tokens[] = {"<unk>", "<BOS>", "<EOS>"};
    ck_assert_int_eq(slm_model_file_set_array(mf, "tokenizer.ggml.tokens", SLM_MF_STRING, tokens,
                                              NULL, 3, NULL), SLM_OK);
    uint32_t bos = 1, eos = 2;
    ck_assert_int_eq(slm_model_file_set_value(mf, "tokenizer.ggml.bos_token_id", SLM_MF_U32, &bos, 1, NULL),
                     SLM_OK);
    ck_assert_int_eq(slm_model_file_set_value(mf, "tokenizer.ggml.eos_token_id", SLM_MF_U32, &eos, 1, NULL),
                     SLM_OK);
    ck_assert_int_eq(slm_chat_template_from_model_file(mf, &t, &err), SLM_OK);
    ck_assert_str_eq(slm_chat_template_source(t), src);
    char *out = NULL;
    ck_assert_int_eq(slm_chat_template_apply(t, conv + 1, 1, NULL, &out, &err), SLM_OK);
    ck_assert_str_eq(out, "<BOS><user>Hi<EOS>");
    free(out);
    slm_chat_template_free(t);
    /* a template the engine cannot parse is an error naming the place, not a fallback */
    ck_assert_int_eq(slm_model_file_set_string(mf, "tokenizer.chat_template", "{% for %}", NULL), SLM_OK);
    ck_assert_int_eq(slm_chat_template_from_model_file(mf, &t, &err), SLM_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.message, "chat template line 1, col"));
    slm_model_file_free(mf);
}
END_TEST

/* A real template stored in a GGUF (llama.cpp's phi-3 vocabulary file). */
START_TEST(phi3_gguf)
{
    char path[1024];
    fixture("llama.cpp-vocab/ggml-vocab-phi-3.gguf", path, sizeof path);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "fixture %s not found", path);
    fclose(f);
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    ck_assert_msg(reg != NULL, "%s", err.message);
    slm_model_file_t *mf = NULL;
    ck_assert_msg(slm_model_file_open(reg, path, NULL, &mf, &err) == SLM_OK, "%s", err.message);
    slm_chat_template_t *t = NULL;
    ck_assert_msg(slm_chat_template_from_model_file(mf, &t, &err) == SLM_OK, "%s", err.message);
    ck_assert_str_eq(slm_chat_template_bos_token(t), "<s>");
    ck_assert_str_eq(slm_chat_template_eos_token(t), "<|endoftext|>");
    char *out = NULL;
    ck_assert_int_eq(slm_chat_template_apply(t, conv, 4, NULL, &out, &err), SLM_OK);
    /* phi-3's template skips system messages and ends with <|assistant|> */
    ck_assert_str_eq(out, "<s><|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
                          "<|user|>\nBye<|end|>\n<|assistant|>\n");
    free(out);
    slm_chat_template_free(t);
    slm_model_file_free(mf);
    slm_registry_free(reg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("chat");
    TCase *t = tcase_create("builtin");
    tcase_add_test(t, chatml);
    tcase_add_test(t, llama2);
    tcase_add_test(t, llama3);
    tcase_add_test(t, phi3_zephyr);
    tcase_add_test(t, gemma);
    tcase_add_test(t, unknown_name_is_an_error);
    tcase_add_test(t, params);
    suite_add_tcase(s, t);
    t = tcase_create("model");
    tcase_add_test(t, template_of_model_file);
    tcase_add_test(t, phi3_gguf);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
