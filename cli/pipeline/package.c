/* The package stage: the model, its adapters, chat_template.jinja and a generated
 * model card README.md, written as one folder atomically (slmops/output.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slmops/chat.h>
#include <slmops/model-file.h>
#include <slmops/output.h>

#include "cli/common.h"
#include "cli/pipeline/pipeline.h"
#include "cli/pipeline/run.h"


static int copy_file(slm_pipe_t *p, const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    static char buf[1 << 16];
    ssize_t n = 0;
    bool ok = in >= 0 && out >= 0;
    while (ok && (n = read(in, buf, sizeof buf)) > 0)
        ok = write(out, buf, (size_t)n) == n;
    ok = ok && n == 0;
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "slmops %s: copying %s: %s\n", p->verb, from, strerror(errno));
    return ok ? SLM_CLI_OK : SLM_CLI_FAILED;
}

static const char *base_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    const char *s = path + n;
    while (s > path && s[-1] != '/')
        s--;
    return s;
}

/* The chat template to ship: the stage's (a built-in name, or template text), else the
 * model's own; NULL when there is none. */
static char *chat_template(slm_pipe_stage_t *r, const char *model)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_chat_template_t *t = NULL;
    const char *given = json_string_value(json_object_get(r->s, "chat_template"));
    if (given) {
        if (slm_chat_template_builtin(given, &t, &err) != SLM_OK)
            return strdup(given);
    } else {
        slm_model_file_t *mf = NULL;
        if (slm_model_file_open(r->p->reg, model, NULL, &mf, &err) == SLM_OK)
            slm_chat_template_from_model_file(mf, &t, &err);
        slm_model_file_free(mf);
    }
    char *src = t ? strdup(slm_chat_template_source(t)) : NULL;
    slm_chat_template_free(t);
    return src;
}

static int write_in(slm_pipe_t *p, const char *dir, const char *file, const char *text)
{
    char *path = slm_pipe_path_in(dir, file);
    FILE *f = path ? fopen(path, "wb") : NULL;
    bool ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "slmops %s: %s: %s\n", p->verb, path ? path : file, strerror(errno));
    free(path);
    return ok ? SLM_CLI_OK : SLM_CLI_FAILED;
}

static int fill_package(slm_pipe_stage_t *r, const char *tmp, json_t *files)
{
    const char *model = json_string_value(json_object_get(r->s, "model"));
    int rc = SLM_CLI_OK;
    char *to = slm_pipe_path_in(tmp, base_name(model));
    rc = copy_file(r->p, model, to);
    free(to);
    json_object_set_new(files, "model", json_string(base_name(model)));
    json_t *ads = json_array();
    json_object_set_new(files, "adapters", ads);
    const json_t *a = json_object_get(r->s, "adapters");
    for (size_t i = 0; rc == SLM_CLI_OK && i < json_array_size(a); i++) {
        const char *from = json_string_value(json_array_get(a, i));
        char name[300];
        snprintf(name, sizeof name, "adapter-%zu-%s", i, base_name(from));
        char *dst = slm_pipe_path_in(tmp, name);
        rc = copy_file(r->p, from, dst);
        free(dst);
        json_array_append_new(ads, json_string(name));
    }
    char *tpl = rc == SLM_CLI_OK ? chat_template(r, model) : NULL;
    if (tpl) {
        rc = write_in(r->p, tmp, "chat_template.jinja", tpl);
        json_object_set_new(files, "chat_template", json_string("chat_template.jinja"));
    }
    free(tpl);
    json_t *reports = json_array();
    const json_t *rs = json_object_get(r->s, "reports");
    for (size_t i = 0; i < json_array_size(rs); i++) {
        json_t *doc = json_load_file(json_string_value(json_array_get(rs, i)), 0, NULL);
        if (doc)
            json_array_append_new(reports, doc);
    }
    char *card = rc == SLM_CLI_OK ? slm_pipe_card(r->p, r->s, base_name(model), reports) : NULL;
    json_decref(reports);
    if (rc == SLM_CLI_OK)
        rc = card ? write_in(r->p, tmp, "README.md", card) : SLM_CLI_FAILED;
    free(card);
    json_object_set_new(files, "card", json_string("README.md"));
    return rc;
}

int slm_pipe_stage_package(slm_pipe_stage_t *r)
{
    slm_error_t err;
    slm_error_init(&err);
    char *out = slm_pipe_path_in(r->dir, "package");
    slm_output_params_t op;
    slm_output_params_init(&op);
    op.layout = SLM_OUTPUT_FOLDER;
    slm_output_t *o = NULL;
    if (slm_output_prepare(out, &op, &o, &err) != SLM_OK) {
        free(out);
        return slm_cli_fail(r->p->verb, &err);
    }
    json_t *files = json_object();
    int rc = fill_package(r, slm_output_path(o), files);
    if (rc != SLM_CLI_OK) {
        slm_output_abort(o);
    } else if (slm_output_commit(o, &err) != SLM_OK) {
        rc = slm_cli_fail(r->p->verb, &err);
    }
    if (rc == SLM_CLI_OK) {
        json_object_set_new(r->outputs, "folder", json_string(out));
        slm_pipe_set_path(r->outputs, "card", out, "README.md");
        slm_pipe_set_path(r->outputs, "model", out,
                 json_string_value(json_object_get(files, "model")));
        json_object_set(r->results, "files", files);
    }
    json_decref(files);
    free(out);
    return rc;
}
