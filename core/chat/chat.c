/* The public chat-template API: parsing a template (given, a model file's, or a
 * built-in one) and rendering a conversation with the Jinja engine. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <slmops/chat.h>

#include "chat/builtin.h"
#include "chat/jinja.h"
#include "internal/util.h"

struct slm_chat_template {
    jj_template_t t;
    char *source;
    char *bos, *eos;   /* defaults from a model file's vocabulary, or NULL */
};

void slm_chat_params_default(slm_chat_params_t *p)
{
    if (p)
        *p = (slm_chat_params_t){.struct_size = sizeof *p, .add_generation_prompt = true};
}

/* The engine's error as an slm_error_t: raise_exception's message verbatim, every
 * other one with the place in the template. */
static int report(const jj_error_t *e, slm_error_t *err)
{
    int code = e->code ? e->code : SLM_E_INVALID;
    if (e->raised)
        return slm__fail(err, code, NULL, e->pos.line ? (int64_t)e->pos.off : -1, "%s", e->msg);
    if (!e->pos.line)
        return slm__fail(err, code, NULL, -1, "chat template: %s", e->msg);
    return slm__fail(err, code, NULL, (int64_t)e->pos.off, "chat template line %u, col %u: %s",
                     e->pos.line, e->pos.col, e->msg);
}

int slm_chat_template_parse(const char *source, size_t len, slm_chat_template_t **out,
                            slm_error_t *err)
{
    if (!out || (!source && len))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "chat template: NULL argument");
    *out = NULL;
    if (len > JJ_MAX_SOURCE)
        return slm__fail(err, SLM_E_UNSUPPORTED, NULL, -1, "chat template: %zu bytes; the "
                         "engine takes at most %u MiB", len, JJ_MAX_SOURCE >> 20);
    slm_chat_template_t *t = calloc(1, sizeof *t);
    char *copy = malloc(len + 1);
    if (!t || !copy) {
        free(t);
        free(copy);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "chat template: out of memory");
    }
    if (len)
        memcpy(copy, source, len);
    copy[len] = '\0';
    t->source = copy;
    jj_error_t e = {0};
    if (!slm__jj_parse(&t->t, copy, len, &e)) {
        slm_chat_template_free(t);
        return report(&e, err);
    }
    *out = t;
    return SLM_OK;
}

/* The text of token `key`'s id in the vocabulary, or NULL. */
static char *token_text(const slm_model_file_t *mf, const char *key)
{
    int64_t id;
    slm_model_value_t v = {.struct_size = sizeof v};
    if (slm_model_file_get_int(mf, key, &id, NULL) != SLM_OK ||
        slm_model_file_get_array(mf, "tokenizer.ggml.tokens", SLM_MF_STRING, &v, NULL) != SLM_OK ||
        id < 0 || (uint64_t)id >= v.n)
        return NULL;
    return slm__strdup(((const char *const *)v.data)[id]);
}

int slm_chat_template_from_model_file(const slm_model_file_t *mf, slm_chat_template_t **out,
                                      slm_error_t *err)
{
    const char *src = NULL;
    if (!out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "chat template: NULL argument");
    *out = NULL;
    if (!mf || slm_model_file_get_string(mf, "tokenizer.chat_template", &src, NULL) != SLM_OK)
        return slm__fail(err, SLM_E_NOT_FOUND, NULL, -1,
                         "the model has no chat template (tokenizer.chat_template)");
    int rc = slm_chat_template_parse(src, strlen(src), out, err);
    if (rc != SLM_OK)
        return rc;
    (*out)->bos = token_text(mf, "tokenizer.ggml.bos_token_id");
    (*out)->eos = token_text(mf, "tokenizer.ggml.eos_token_id");
    return SLM_OK;
}

const char *slm_chat_template_builtin_name(size_t i)
{
    return slm__chat_builtin_name(i);
}

int slm_chat_template_builtin(const char *name, slm_chat_template_t **out, slm_error_t *err)
{
    const char *src = slm__chat_builtin_source(name);
    if (out)
        *out = NULL;
    if (!src)
        return slm__fail(err, SLM_E_NOT_FOUND, NULL, -1, "unknown chat template '%s'",
                         name ? name : "(null)");
    return slm_chat_template_parse(src, strlen(src), out, err);
}

const char *slm_chat_template_source(const slm_chat_template_t *t)
{
    return t ? t->source : NULL;
}

const char *slm_chat_template_bos_token(const slm_chat_template_t *t)
{
    return t ? t->bos : NULL;
}

const char *slm_chat_template_eos_token(const slm_chat_template_t *t)
{
    return t ? t->eos : NULL;
}

void slm_chat_template_free(slm_chat_template_t *t)
{
    if (!t)
        return;
    slm__jj_template_clear(&t->t);
    free(t->source);
    free(t->bos);
    free(t->eos);
    free(t);
}

/* ---- rendering ---- */

static int set_string(json_t *vars, const char *key, const char *s, slm_error_t *err)
{
    json_t *v = json_stringn_nocheck(s, strlen(s));
    if (!v || json_object_set_new(vars, key, v) != 0)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "chat template: out of memory");
    return SLM_OK;
}

/* Each member of obj (a JSON object) becomes a variable. */
static int merge(json_t *vars, json_t *obj, const char *what, slm_error_t *err)
{
    if (!obj)
        return SLM_OK;
    if (!json_is_object(obj))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "chat template: %s must be a JSON object",
                         what);
    if (json_object_update(vars, obj) != 0)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "chat template: out of memory");
    return SLM_OK;
}

/* The variables of a render: messages and tools (from conv), the parameters, and
 * the extra ones. */
static int build_vars(const slm_chat_template_t *t, json_t *conv, const slm_chat_params_t *p,
                      json_t **vars, slm_error_t *err)
{
    json_t *v = json_object();
    *vars = v;
    if (!v)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "chat template: out of memory");
    json_t *messages = json_is_array(conv) ? conv : json_object_get(conv, "messages");
    if (!json_is_array(messages))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "chat template: the conversation needs "
                         "a \"messages\" array");
    json_t *tools = json_is_object(conv) ? json_object_get(conv, "tools") : NULL;
    const char *bos = p->bos_token ? p->bos_token : t->bos ? t->bos : "";
    const char *eos = p->eos_token ? p->eos_token : t->eos ? t->eos : "";
    int rc = json_object_set(v, "messages", messages) || json_object_set_new(v, "tools",
             tools ? json_incref(tools) : json_null()) ||
             json_object_set_new(v, "add_generation_prompt", json_boolean(p->add_generation_prompt))
             ? slm__fail(err, SLM_E_NOMEM, NULL, -1, "chat template: out of memory") : SLM_OK;
    if (rc == SLM_OK)
        rc = set_string(v, "bos_token", bos, err);
    if (rc == SLM_OK)
        rc = set_string(v, "eos_token", eos, err);
    if (rc == SLM_OK && json_is_object(conv))
        rc = merge(v, json_object_get(conv, "extra"), "\"extra\"", err);
    json_t *more = NULL;
    if (rc == SLM_OK && p->vars_json) {
        json_error_t je;
        more = json_loads(p->vars_json, JSON_DECODE_ANY, &je);
        rc = more ? merge(v, more, "the extra variables", err)
                  : slm__fail(err, SLM_E_INVALID, NULL, -1, "chat template variables: %s (line %d, "
                              "column %d)", je.text, je.line, je.column);
    }
    json_decref(more);
    return rc;
}

static int render(const slm_chat_template_t *t, json_t *conv, const slm_chat_params_t *params,
                  char **out, slm_error_t *err)
{
    slm_chat_params_t p;
    slm_chat_params_default(&p);
    if (params)
        memcpy(&p, params, params->struct_size < sizeof p ? params->struct_size : sizeof p);
    json_t *vars = NULL;
    int rc = build_vars(t, conv, &p, &vars, err);
    json_decref(conv);
    if (rc == SLM_OK) {
        jj_error_t e = {0};
        size_t len;
        if (!slm__jj_render(&t->t, vars, p.now ? p.now : (int64_t)time(NULL), out, &len, &e))
            rc = report(&e, err);
    }
    json_decref(vars);
    return rc;
}

int slm_chat_template_render(const slm_chat_template_t *t, const char *conversation_json,
                             const slm_chat_params_t *p, char **out, slm_error_t *err)
{
    if (!t || !conversation_json || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "chat template: NULL argument");
    *out = NULL;
    json_error_t je;
    json_t *conv = json_loads(conversation_json, 0, &je);
    if (!conv)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "chat conversation: %s (line %d, column %d)",
                         je.text, je.line, je.column);
    return render(t, conv, p, out, err);
}

int slm_chat_template_apply(const slm_chat_template_t *t, const slm_chat_message_t *msgs,
                            size_t n, const slm_chat_params_t *p, char **out, slm_error_t *err)
{
    if (!t || (!msgs && n) || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "chat template: NULL argument");
    *out = NULL;
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        if (!msgs[i].role || !msgs[i].content) {
            json_decref(list);
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "chat message %zu has no %s", i,
                             msgs[i].role ? "content" : "role");
        }
        json_t *m = json_pack("{s:s%,s:s%}", "role", msgs[i].role, strlen(msgs[i].role),
                              "content", msgs[i].content, strlen(msgs[i].content));
        if (!m) {   /* not UTF-8: keep the bytes as they are */
            m = json_object();
            if (m) {
                json_object_set_new(m, "role", json_stringn_nocheck(msgs[i].role, strlen(msgs[i].role)));
                json_object_set_new(m, "content", json_stringn_nocheck(msgs[i].content,
                                                                       strlen(msgs[i].content)));
            }
        }
        if (!m || json_array_append_new(list, m) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (!list)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "chat template: out of memory");
    return render(t, list, p, out, err);
}

int slm_chat_render(const char *source, const char *conversation_json,
                    const slm_chat_params_t *p, char **out, slm_error_t *err)
{
    slm_chat_template_t *t = NULL;
    if (!source)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "chat template: NULL argument");
    int rc = slm_chat_template_parse(source, strlen(source), &t, err);
    if (rc == SLM_OK)
        rc = slm_chat_template_render(t, conversation_json, p, out, err);
    slm_chat_template_free(t);
    return rc;
}
