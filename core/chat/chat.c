/* Built-in chat templates: detection of a Jinja chat_template by distinctive
 * substrings (llama.cpp's heuristics, same order) and a C writer for each format. */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/chat.h>

#include "internal/util.h"

/* ---- a growable string ---- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf_t;

static void put_n(sbuf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

/* Appends each string argument, up to a NULL. */
static void put(sbuf_t *b, ...)
{
    va_list ap;
    va_start(ap, b);
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
        put_n(b, s, strlen(s));
    va_end(ap);
}

/* Appends s without leading and trailing ASCII white space (Jinja's trim/strip). */
static void put_trimmed(sbuf_t *b, const char *s)
{
    size_t start = 0, end = strlen(s);
    while (start < end && isspace((unsigned char)s[start]))
        start++;
    while (end > start && isspace((unsigned char)s[end - 1]))
        end--;
    put_n(b, s + start, end - start);
}

static bool is_role(const slm_chat_message_t *m, const char *role)
{
    return strcmp(m->role, role) == 0;
}

typedef struct chat {
    const slm_chat_message_t *m;
    size_t n;
    bool add_ass;
} chat_t;

/* ---- the formats ---- */

static void fmt_chatml(sbuf_t *b, const chat_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        put(b, "<|im_start|>", c->m[i].role, "\n", c->m[i].content, "<|im_end|>\n", NULL);
    if (c->add_ass)
        put(b, "<|im_start|>assistant\n", NULL);
}

static void fmt_phi4(sbuf_t *b, const chat_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        put(b, "<|im_start|>", c->m[i].role, "<|im_sep|>", c->m[i].content, "<|im_end|>", NULL);
    if (c->add_ass)
        put(b, "<|im_start|>assistant<|im_sep|>", NULL);
}

/* [INST] user [/INST]assistant</s>[INST] ...; the variants differ in system
 * messages (<<SYS>> block or a plain line), a BOS inside the history, stripping. */
static void fmt_llama2_common(sbuf_t *b, const chat_t *c, bool sys_block, bool bos_inside,
                              bool strip)
{
    bool inside = true;
    put(b, "[INST] ", NULL);
    for (size_t i = 0; i < c->n; i++) {
        const slm_chat_message_t *m = &c->m[i];
        if (!inside) {
            put(b, bos_inside ? "<s>[INST] " : "[INST] ", NULL);
            inside = true;
        }
        if (is_role(m, "system"))
            put(b, sys_block ? "<<SYS>>\n" : "", NULL);
        if (strip)
            put_trimmed(b, m->content);
        else
            put(b, m->content, NULL);
        if (is_role(m, "system")) {
            put(b, sys_block ? "\n<</SYS>>\n\n" : "\n", NULL);
        } else if (is_role(m, "user")) {
            put(b, " [/INST]", NULL);
        } else {
            put(b, "</s>", NULL);
            inside = false;
        }
    }
}

static void fmt_llama2(sbuf_t *b, const chat_t *c) { fmt_llama2_common(b, c, false, false, false); }
static void fmt_llama2_sys(sbuf_t *b, const chat_t *c) { fmt_llama2_common(b, c, true, false, false); }
static void fmt_llama2_sys_bos(sbuf_t *b, const chat_t *c) { fmt_llama2_common(b, c, true, true, false); }
static void fmt_llama2_sys_strip(sbuf_t *b, const chat_t *c) { fmt_llama2_common(b, c, true, false, true); }

/* Mistral's v1/v3/v3-tekken: spaces around [INST] differ; v3 trims replies. */
static void fmt_mistral_common(sbuf_t *b, const chat_t *c, const char *lead, const char *trail,
                               bool trim_reply)
{
    bool inside = false;
    for (size_t i = 0; i < c->n; i++) {
        const slm_chat_message_t *m = &c->m[i];
        if (!inside) {
            put(b, lead, "[INST]", trail, NULL);
            inside = true;
        }
        if (is_role(m, "system")) {
            put(b, m->content, "\n\n", NULL);
        } else if (is_role(m, "user")) {
            put(b, m->content, lead, "[/INST]", NULL);
        } else {
            put(b, trail, NULL);
            if (trim_reply)
                put_trimmed(b, m->content);
            else
                put(b, m->content, NULL);
            put(b, "</s>", NULL);
            inside = false;
        }
    }
}

static void fmt_mistral_v1(sbuf_t *b, const chat_t *c) { fmt_mistral_common(b, c, " ", " ", false); }
static void fmt_mistral_v3(sbuf_t *b, const chat_t *c) { fmt_mistral_common(b, c, "", " ", true); }
static void fmt_mistral_v3_tekken(sbuf_t *b, const chat_t *c) { fmt_mistral_common(b, c, "", "", false); }

static void fmt_mistral_v7_common(sbuf_t *b, const chat_t *c, const char *sp)
{
    for (size_t i = 0; i < c->n; i++) {
        const slm_chat_message_t *m = &c->m[i];
        if (is_role(m, "system"))
            put(b, "[SYSTEM_PROMPT]", sp, m->content, "[/SYSTEM_PROMPT]", NULL);
        else if (is_role(m, "user"))
            put(b, "[INST]", sp, m->content, "[/INST]", NULL);
        else
            put(b, sp, m->content, "</s>", NULL);
    }
}

static void fmt_mistral_v7(sbuf_t *b, const chat_t *c) { fmt_mistral_v7_common(b, c, " "); }
static void fmt_mistral_v7_tekken(sbuf_t *b, const chat_t *c) { fmt_mistral_v7_common(b, c, ""); }

/* <|role|>\ncontent END, then <|assistant|>\n: phi3, falcon3 and zephyr differ in END. */
static void fmt_tagged(sbuf_t *b, const chat_t *c, const char *end)
{
    for (size_t i = 0; i < c->n; i++)
        put(b, "<|", c->m[i].role, "|>\n", c->m[i].content, end, NULL);
    if (c->add_ass)
        put(b, "<|assistant|>\n", NULL);
}

static void fmt_phi3(sbuf_t *b, const chat_t *c) { fmt_tagged(b, c, "<|end|>\n"); }
static void fmt_falcon3(sbuf_t *b, const chat_t *c) { fmt_tagged(b, c, "\n"); }
static void fmt_zephyr(sbuf_t *b, const chat_t *c) { fmt_tagged(b, c, "<|endoftext|>\n"); }

/* Gemma has no system role: the system text opens the next user turn. */
static void fmt_gemma(sbuf_t *b, const chat_t *c)
{
    sbuf_t sys = {0};
    for (size_t i = 0; i < c->n; i++) {
        const slm_chat_message_t *m = &c->m[i];
        if (is_role(m, "system")) {
            put_trimmed(&sys, m->content);
            continue;
        }
        bool model = is_role(m, "assistant");
        put(b, "<start_of_turn>", model ? "model" : m->role, "\n", NULL);
        if (sys.len && !model) {
            put(b, sys.s, "\n\n", NULL);
            sys.len = 0;
        }
        put_trimmed(b, m->content);
        put(b, "<end_of_turn>\n", NULL);
    }
    b->oom |= sys.oom;
    free(sys.s);
    if (c->add_ass)
        put(b, "<start_of_turn>model\n", NULL);
}

static void fmt_llama3(sbuf_t *b, const chat_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        put(b, "<|start_header_id|>", c->m[i].role, "<|end_header_id|>\n\n", NULL);
        put_trimmed(b, c->m[i].content);
        put(b, "<|eot_id|>", NULL);
    }
    if (c->add_ass)
        put(b, "<|start_header_id|>assistant<|end_header_id|>\n\n", NULL);
}

static void fmt_vicuna_common(sbuf_t *b, const chat_t *c, bool orca)
{
    for (size_t i = 0; i < c->n; i++) {
        const slm_chat_message_t *m = &c->m[i];
        if (is_role(m, "system"))
            put(b, orca ? "SYSTEM: " : "", m->content, orca ? "\n" : "\n\n", NULL);
        else if (is_role(m, "user"))
            put(b, "USER: ", m->content, "\n", NULL);
        else if (is_role(m, "assistant"))
            put(b, "ASSISTANT: ", m->content, "</s>\n", NULL);
    }
    if (c->add_ass)
        put(b, "ASSISTANT:", NULL);
}

static void fmt_vicuna(sbuf_t *b, const chat_t *c) { fmt_vicuna_common(b, c, false); }
static void fmt_vicuna_orca(sbuf_t *b, const chat_t *c) { fmt_vicuna_common(b, c, true); }

static void fmt_deepseek(sbuf_t *b, const chat_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        const slm_chat_message_t *m = &c->m[i];
        if (is_role(m, "system"))
            put(b, m->content, NULL);
        else if (is_role(m, "user"))
            put(b, "### Instruction:\n", m->content, "\n", NULL);
        else if (is_role(m, "assistant"))
            put(b, "### Response:\n", m->content, "\n<|EOT|>\n", NULL);
    }
    if (c->add_ass)
        put(b, "### Response:\n", NULL);
}

static void fmt_command_r(sbuf_t *b, const chat_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        const slm_chat_message_t *m = &c->m[i];
        const char *tok = is_role(m, "system") ? "<|SYSTEM_TOKEN|>"
                          : is_role(m, "user") ? "<|USER_TOKEN|>"
                          : is_role(m, "assistant") ? "<|CHATBOT_TOKEN|>" : NULL;
        if (!tok)
            continue;
        put(b, "<|START_OF_TURN_TOKEN|>", tok, NULL);
        put_trimmed(b, m->content);
        put(b, "<|END_OF_TURN_TOKEN|>", NULL);
    }
    if (c->add_ass)
        put(b, "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>", NULL);
}

typedef struct tmpl {
    const char *name;
    void (*format)(sbuf_t *b, const chat_t *c);
} tmpl_t;

static const tmpl_t templates[] = {
    {"chatml", fmt_chatml},
    {"llama2", fmt_llama2},
    {"llama2-sys", fmt_llama2_sys},
    {"llama2-sys-bos", fmt_llama2_sys_bos},
    {"llama2-sys-strip", fmt_llama2_sys_strip},
    {"mistral-v1", fmt_mistral_v1},
    {"mistral-v3", fmt_mistral_v3},
    {"mistral-v3-tekken", fmt_mistral_v3_tekken},
    {"mistral-v7", fmt_mistral_v7},
    {"mistral-v7-tekken", fmt_mistral_v7_tekken},
    {"phi3", fmt_phi3},
    {"phi4", fmt_phi4},
    {"falcon3", fmt_falcon3},
    {"zephyr", fmt_zephyr},
    {"gemma", fmt_gemma},
    {"llama3", fmt_llama3},
    {"vicuna", fmt_vicuna},
    {"vicuna-orca", fmt_vicuna_orca},
    {"deepseek", fmt_deepseek},
    {"command-r", fmt_command_r},
};

static const tmpl_t *find(const char *name)
{
    for (size_t i = 0; name && i < SLM__ARRAY_LEN(templates); i++)
        if (strcmp(templates[i].name, name) == 0)
            return &templates[i];
    return NULL;
}

const char *slm_chat_template_name(size_t i)
{
    return i < SLM__ARRAY_LEN(templates) ? templates[i].name : NULL;
}

/* ---- detection ---- */

static const char *detect_inst(const char *t)
{
    if (strstr(t, "[SYSTEM_PROMPT]"))
        return "mistral-v7";
    if (strstr(t, "' [INST] ' + system_message") || strstr(t, "[AVAILABLE_TOOLS]")) {
        if (strstr(t, " [INST]"))
            return "mistral-v1";
        if (strstr(t, "\"[INST]\""))
            return "mistral-v3-tekken";
        return "mistral-v3";
    }
    if (strstr(t, "content.strip()"))
        return "llama2-sys-strip";
    if (strstr(t, "bos_token + '[INST]"))
        return "llama2-sys-bos";
    return strstr(t, "<<SYS>>") ? "llama2-sys" : "llama2";
}

/* Order matters: it is llama.cpp's, where a template that contains several
 * markers goes to the first family that matches. Families llama.cpp knows but
 * slmops has no writer for answer NULL rather than a wrong neighbour. */
const char *slm_chat_template_detect(const char *t)
{
    if (!t)
        return NULL;
    const tmpl_t *named = find(t);
    if (named)
        return named->name;
#define HAS(s) (strstr(t, (s)) != NULL)
    if (HAS("<|im_start|>"))
        return HAS("<|im_sep|>") ? "phi4" : HAS("<end_of_utterance>") ? NULL : "chatml";
    if (strncmp(t, "mistral", 7) == 0 || HAS("[INST]"))
        return detect_inst(t);
    if (HAS("<|assistant|>") && HAS("<|end|>"))
        return "phi3";
    if (HAS("[gMASK]<sop>"))
        return NULL;   /* chatglm4 */
    if (HAS("<|assistant|>") && HAS("<|user|>"))
        return HAS("</s>") ? "falcon3" : NULL;   /* else glmedge */
    if (HAS("<|{{ item['role'] }}|>") && HAS("<|begin_of_image|>"))
        return NULL;   /* glmedge */
    if (HAS("<|user|>") && HAS("<|endoftext|>"))
        return "zephyr";
    if (HAS("bos_token + message['role']"))
        return NULL;   /* monarch */
    if (HAS("<start_of_turn>"))
        return "gemma";
    if (HAS("'\\n\\nAssistant: ' + eos_token") || HAS("GPT4 Correct "))
        return NULL;   /* orion, openchat */
    if (HAS("USER: ") && HAS("ASSISTANT: "))
        return HAS("SYSTEM: ") ? "vicuna-orca" : "vicuna";
    if (HAS("### Instruction:") && HAS("<|EOT|>"))
        return "deepseek";
    if (HAS("<|START_OF_TURN_TOKEN|>") && HAS("<|USER_TOKEN|>"))
        return "command-r";
    if (HAS("<|start_header_id|>") && HAS("<|end_header_id|>"))
        return "llama3";
#undef HAS
    return NULL;
}

int slm_chat_template_for(const slm_model_file_t *mf, const char *forced, const char **name,
                          slm_error_t *err)
{
    *name = NULL;
    if (forced) {
        const tmpl_t *t = find(forced);
        if (!t)
            return slm__fail(err, SLM_E_INVALID, NULL, -1,
                             "unknown chat template '%s' (built-in: chatml, llama2, llama3, "
                             "mistral-v7, phi3, zephyr, gemma, ...)", forced);
        *name = t->name;
        return SLM_OK;
    }
    const char *src = NULL;
    if (!mf || slm_model_file_get_string(mf, "tokenizer.chat_template", &src, NULL) != SLM_OK)
        return slm__fail(err, SLM_E_NOT_FOUND, NULL, -1,
                         "the model has no tokenizer.chat_template");
    *name = slm_chat_template_detect(src);
    if (*name)
        return SLM_OK;
    return slm__fail(err, SLM_E_UNSUPPORTED, NULL, -1,
                     "chat template not recognised (starts \"%.60s\"); name one of the "
                     "built-in templates instead", src);
}

int slm_chat_apply(const char *name, const slm_chat_message_t *msgs, size_t n,
                   bool add_generation_prompt, char **out, slm_error_t *err)
{
    if (!out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "chat: NULL output");
    *out = NULL;
    const tmpl_t *t = find(name);
    if (!t)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "unknown chat template '%s'",
                         name ? name : "(null)");
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "chat message %zu has no %s", i,
                             msgs[i].role ? "content" : "role");
    sbuf_t b = {0};
    put_n(&b, "", 0);   /* an empty conversation still gives "" */
    chat_t c = {.m = msgs, .n = n, .add_ass = add_generation_prompt};
    t->format(&b, &c);
    if (b.oom) {
        free(b.s);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory formatting a chat");
    }
    *out = b.s;
    return SLM_OK;
}
