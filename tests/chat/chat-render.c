/* The tests' counterpart of fixtures/chat-templates/render.py: renders a template
 * (a file, or a model file's own) with a conversation through the public API.
 *
 * chat-render TEMPLATE CONVERSATION [--no-generation-prompt] [--bos-token S]
 *             [--eos-token S] [--date YYYY-MM-DD]
 * chat-render --model FILE CONVERSATION [...]      the model file's template
 * chat-render --model FILE --print-template|--print-bos|--print-eos
 * Exit 0 with the text on stdout, 1 with the error on stderr, 3 when the model
 * file has no template, 2 for a usage error. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slmops/chat.h>
#include <slmops/registry.h>

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 == cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p)
                free(buf);
            buf = p;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static int usage(void)
{
    fprintf(stderr, "usage: chat-render TEMPLATE|--model FILE CONVERSATION [--no-generation-prompt] "
            "[--bos-token S] [--eos-token S] [--date YYYY-MM-DD]\n"
            "       chat-render --model FILE --print-template|--print-bos|--print-eos\n");
    return 2;
}

/* Local midnight of YYYY-MM-DD, as render.py's datetime.strptime gives. */
static int64_t parse_date(const char *s)
{
    struct tm tm = {0};
    if (sscanf(s, "%d-%d-%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

/* The model file's template, or (print) one of its texts. */
static int from_model(const char *path, const char *print, slm_chat_template_t **t)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    slm_model_file_t *mf = NULL;
    int rc = reg ? slm_model_file_open(reg, path, NULL, &mf, &err) : err.code;
    if (rc == SLM_OK)
        rc = slm_chat_template_from_model_file(mf, t, &err);
    slm_model_file_free(mf);
    slm_registry_free(reg);
    if (rc == SLM_E_NOT_FOUND && mf == NULL)
        rc = SLM_E_IO;
    if (rc != SLM_OK) {
        fprintf(stderr, "%s: %s\n", path, err.message);
        return rc == SLM_E_NOT_FOUND ? 3 : 1;
    }
    if (!print)
        return 0;
    const char *text = !strcmp(print, "--print-template") ? slm_chat_template_source(*t)
                     : !strcmp(print, "--print-bos") ? slm_chat_template_bos_token(*t)
                     : slm_chat_template_eos_token(*t);
    fputs(text ? text : "", stdout);
    return 0;
}

int main(int argc, char **argv)
{
    const char *tmpl = NULL, *conv = NULL, *model = NULL, *print = NULL;
    slm_chat_params_t p;
    slm_chat_params_default(&p);
    p.now = parse_date("2026-01-15");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-generation-prompt"))
            p.add_generation_prompt = false;
        else if (!strcmp(a, "--bos-token") && i + 1 < argc)
            p.bos_token = argv[++i];
        else if (!strcmp(a, "--eos-token") && i + 1 < argc)
            p.eos_token = argv[++i];
        else if (!strcmp(a, "--date") && i + 1 < argc)
            p.now = parse_date(argv[++i]);
        else if (!strcmp(a, "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strncmp(a, "--print-", 8))
            print = a;
        else if (a[0] == '-')
            return usage();
        else if (!tmpl && !model)
            tmpl = a;
        else if (!conv)
            conv = a;
        else
            return usage();
    }
    if ((!tmpl && !model) || (!conv && !print) || p.now < 0)
        return usage();
    if (tmpl && !p.bos_token)   /* render.py's defaults; a model file brings its own */
        p.bos_token = "<s>";
    if (tmpl && !p.eos_token)
        p.eos_token = "</s>";
    slm_error_t err;
    slm_error_init(&err);
    slm_chat_template_t *t = NULL;
    int rc;
    if (model) {
        if ((rc = from_model(model, print, &t)) != 0 || print) {
            slm_chat_template_free(t);
            return rc;
        }
    } else {
        char *src = slurp(tmpl);
        if (!src) {
            fprintf(stderr, "chat-render: cannot read %s\n", tmpl);
            return 1;
        }
        rc = slm_chat_template_parse(src, strlen(src), &t, &err);
        free(src);
        if (rc != SLM_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
    }
    char *json = slurp(conv), *out = NULL;
    if (!json) {
        fprintf(stderr, "chat-render: cannot read %s\n", conv);
        slm_chat_template_free(t);
        return 1;
    }
    rc = slm_chat_template_render(t, json, &p, &out, &err);
    free(json);
    slm_chat_template_free(t);
    if (rc != SLM_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    fputs(out, stdout);
    free(out);
    return 0;
}
