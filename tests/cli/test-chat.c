/* Check tests of the chat templates: each built-in format against text written by
 * hand from the template's definition, and detection of real templates. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <slmops/chat.h>

static const slm_chat_message_t conv[] = {
    {"system", "You are kind."},
    {"user", "Hi"},
    {"assistant", "Hello!"},
    {"user", "Bye"},
};

static void expect(const char *name, bool add_ass, const char *want)
{
    char *got = NULL;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_chat_apply(name, conv, 4, add_ass, &got, &err), SLM_OK);
    ck_assert_msg(strcmp(got, want) == 0, "%s:\n got: [%s]\nwant: [%s]", name, got, want);
    free(got);
}

START_TEST(chatml)
{
    expect("chatml", true,
           "<|im_start|>system\nYou are kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
           "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
           "<|im_start|>assistant\n");
    expect("chatml", false,
           "<|im_start|>system\nYou are kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
           "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n");
}
END_TEST

START_TEST(llama2)
{
    expect("llama2-sys", true,
           "[INST] <<SYS>>\nYou are kind.\n<</SYS>>\n\nHi [/INST]Hello!</s>[INST] Bye [/INST]");
    expect("llama2", true, "[INST] You are kind.\nHi [/INST]Hello!</s>[INST] Bye [/INST]");
    expect("llama2-sys-bos", true,
           "[INST] <<SYS>>\nYou are kind.\n<</SYS>>\n\nHi [/INST]Hello!</s><s>[INST] Bye [/INST]");
}
END_TEST

START_TEST(llama3)
{
    expect("llama3", true,
           "<|start_header_id|>system<|end_header_id|>\n\nYou are kind.<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n");
}
END_TEST

START_TEST(phi3_zephyr)
{
    expect("phi3", true,
           "<|system|>\nYou are kind.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
           "<|user|>\nBye<|end|>\n<|assistant|>\n");
    expect("zephyr", true,
           "<|system|>\nYou are kind.<|endoftext|>\n<|user|>\nHi<|endoftext|>\n"
           "<|assistant|>\nHello!<|endoftext|>\n<|user|>\nBye<|endoftext|>\n<|assistant|>\n");
}
END_TEST

START_TEST(gemma)
{
    /* No system role: its text opens the first user turn; "assistant" is "model". */
    expect("gemma", true,
           "<start_of_turn>user\nYou are kind.\n\nHi<end_of_turn>\n"
           "<start_of_turn>model\nHello!<end_of_turn>\n"
           "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
}
END_TEST

START_TEST(mistral)
{
    expect("mistral-v1", true, " [INST] You are kind.\n\nHi [/INST] Hello!</s> [INST] Bye [/INST]");
    expect("mistral-v3", true, "[INST] You are kind.\n\nHi[/INST] Hello!</s>[INST] Bye[/INST]");
    expect("mistral-v3-tekken", true, "[INST]You are kind.\n\nHi[/INST]Hello!</s>[INST]Bye[/INST]");
    expect("mistral-v7", true,
           "[SYSTEM_PROMPT] You are kind.[/SYSTEM_PROMPT][INST] Hi[/INST] Hello!</s>[INST] Bye[/INST]");
}
END_TEST

START_TEST(unknown_name_is_an_error)
{
    char *out = (char *)1;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_chat_apply("no-such", conv, 4, true, &out, &err), SLM_E_INVALID);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(err.message, "no-such"));
    /* Every listed name applies. */
    for (size_t i = 0; slm_chat_template_name(i); i++) {
        ck_assert_int_eq(slm_chat_apply(slm_chat_template_name(i), conv, 4, true, &out, NULL),
                         SLM_OK);
        free(out);
    }
}
END_TEST

static const char *fixture(const char *rel, char *buf, size_t cap)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(buf, cap, "%s/%s", fx ? fx : "../shared/fixtures", rel);
    return buf;
}

/* The fixture's tokenizer_config.json may lack "chat_template" (this copy of
 * Qwen2.5's does); then the template as Qwen2.5 publishes it, abridged, stands in. */
static const char qwen25_abridged[] =
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "    {%- else %}\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba "
    "Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n"
    "{%- for message in messages %}\n    {{- '<|im_start|>' + message.role + '\\n' + "
    "message.content + '<|im_end|>' + '\\n' }}\n{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n";

START_TEST(detect_qwen25_is_chatml)
{
    char path[1024];
    fixture("hf/qwen2.5-tokenizer/tokenizer_config.json", path, sizeof path);
    json_t *doc = json_load_file(path, 0, NULL);
    const char *t = json_string_value(json_object_get(doc, "chat_template"));
    if (!doc)
        printf("SKIP (fixture part): %s not found\n", path);
    else if (!t)
        printf("NOTE: %s has no chat_template; using Qwen2.5's published one\n", path);
    ck_assert_str_eq(slm_chat_template_detect(t ? t : qwen25_abridged), "chatml");
    json_decref(doc);
}
END_TEST

/* A real template stored in a GGUF (llama.cpp's phi-3 vocabulary file). */
START_TEST(detect_phi3_gguf)
{
    char path[1024];
    fixture("llama.cpp-vocab/ggml-vocab-phi-3.gguf", path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("SKIP detect_phi3_gguf: %s not found\n", path);
        return;
    }
    fclose(f);
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    ck_assert_msg(reg != NULL, "%s", err.message);
    slm_model_file_t *mf = NULL;
    ck_assert_msg(slm_model_file_open(reg, path, NULL, &mf, &err) == SLM_OK, "%s", err.message);
    const char *name = NULL;
    ck_assert_msg(slm_chat_template_for(mf, NULL, &name, &err) == SLM_OK, "%s", err.message);
    ck_assert_str_eq(name, "phi3");
    slm_model_file_free(mf);
    slm_registry_free(reg);
}
END_TEST

START_TEST(detect_by_markers)
{
    ck_assert_str_eq(slm_chat_template_detect("{% for m in messages %}<|start_header_id|>"
                                              "{{ m['role'] }}<|end_header_id|>{% endfor %}"),
                     "llama3");
    ck_assert_str_eq(slm_chat_template_detect("{{ '<|user|>\n' }}<|end|><|assistant|>"), "phi3");
    ck_assert_str_eq(slm_chat_template_detect("<|user|>{{ eos }}<|endoftext|>"), "zephyr");
    ck_assert_str_eq(slm_chat_template_detect("<start_of_turn>user"), "gemma");
    ck_assert_str_eq(slm_chat_template_detect("[INST] <<SYS>>\\n' + system"), "llama2-sys");
    ck_assert_str_eq(slm_chat_template_detect("{{ bos_token + '[INST] ' }} <<SYS>>"),
                     "llama2-sys-bos");
    ck_assert_str_eq(slm_chat_template_detect("[SYSTEM_PROMPT] [INST]"), "mistral-v7");
    ck_assert_str_eq(slm_chat_template_detect("{{ ' [INST] ' + system_message }}"), "mistral-v1");
    ck_assert_str_eq(slm_chat_template_detect("llama3"), "llama3");   /* a name is itself */
    ck_assert_ptr_null(slm_chat_template_detect("{{ messages | tojson }}"));
}
END_TEST

START_TEST(template_of_model_file)
{
    slm_model_file_t *mf = slm_model_file_new();
    const char *name = NULL;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_chat_template_for(mf, NULL, &name, &err), SLM_E_NOT_FOUND);
    ck_assert_str_eq(slm_chat_template_for(mf, "gemma", &name, NULL) == SLM_OK ? name : "", "gemma");
    ck_assert_int_eq(slm_chat_template_for(mf, "gemmaa", &name, &err), SLM_E_INVALID);
    ck_assert_int_eq(slm_model_file_set_string(mf, "tokenizer.chat_template",
                                               "{% for m in messages %}<|im_start|>", NULL), SLM_OK);
    ck_assert_int_eq(slm_chat_template_for(mf, NULL, &name, NULL), SLM_OK);
    ck_assert_str_eq(name, "chatml");
    ck_assert_int_eq(slm_model_file_set_string(mf, "tokenizer.chat_template", "{{ odd }}", NULL),
                     SLM_OK);
    ck_assert_int_eq(slm_chat_template_for(mf, NULL, &name, &err), SLM_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.message, "{{ odd }}"));
    slm_model_file_free(mf);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("chat");
    TCase *t = tcase_create("apply");
    tcase_add_test(t, chatml);
    tcase_add_test(t, llama2);
    tcase_add_test(t, llama3);
    tcase_add_test(t, phi3_zephyr);
    tcase_add_test(t, gemma);
    tcase_add_test(t, mistral);
    tcase_add_test(t, unknown_name_is_an_error);
    suite_add_tcase(s, t);
    t = tcase_create("detect");
    tcase_add_test(t, detect_qwen25_is_chatml);
    tcase_add_test(t, detect_phi3_gguf);
    tcase_add_test(t, detect_by_markers);
    tcase_add_test(t, template_of_model_file);
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
