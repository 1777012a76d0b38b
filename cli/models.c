/* `slmops models add|list|show|rm`: the model catalog, aliases for model files with
 * their adapters and chat template, written atomically under a lock. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/output.h>

#include "cli/catalog.h"
#include "cli/common.h"
#include "cli/lora.h"
#include "cli/options.h"
#include "cli/verbs.h"

typedef struct opts {
    slm_cli_strs_t args;       /* SUBCOMMAND [ALIAS [FILE]] */
    slm_cli_strs_t loras;
    const char *chat_template;
    bool force, json;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"--lora", "[NAME=]FILE[:SCALE]", SLM_CLI_STRS, OFF(loras), 0, 0,
     "add: an adapter of the alias (repeatable); FILE alone is\n"
     "applied wherever the alias is used, NAME=FILE is served by\n"
     "`serve` to requests for ALIAS+NAME"},
    {"--chat-template", "NAME|TEMPLATE", SLM_CLI_STR, OFF(chat_template), 0, 0,
     "add: the chat template `chat` and `serve` use for the alias"},
    {"--force", NULL, SLM_CLI_FLAG, OFF(force), 0, 0, "add: replace an alias that exists"},
    {"--json", NULL, SLM_CLI_FLAG, OFF(json), 0, 0, "list, show: one JSON document"},
    {0},
};

static const slm_cli_group_t groups[] = {{"Options", own_opts, 0}, {0}};

static const slm_cli_spec_t spec = {
    .verb = "models",
    .synopsis = "add ALIAS FILE [--lora [NAME=]FILE[:SCALE]]... [--chat-template T] [--force]\n"
                "       slmops models list|show ALIAS|rm ALIAS [--json]",
    .about = "The model catalog: ALIAS stands for FILE (and its adapters and chat template)\n"
             "wherever a verb takes -m. It is kept in $XDG_DATA_HOME/slmops/models.json\n"
             "(default ~/.local/share/slmops/models.json), rewritten atomically.\n",
    .groups = groups,
    .operand_names = "SUBCOMMAND [ALIAS [FILE]]",
    .min_operands = 1,
    .max_operands = 3,
    .operands_offset = OFF(args),
};

/* ---- writing ---- */

/* Hold the catalog's lock (a file beside it) until *fd is closed. */
static int lock(const char *path, int *fd)
{
    char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL, *lk = NULL;
    if (slash)
        *slash = '\0';
    /* mkdir -p of the folder: its parent ($XDG_DATA_HOME or ~/.local/share) too. */
    for (char *p = dir ? dir + 1 : NULL; p && (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(dir, 0755);
        *p = '/';
    }
    int rc = dir && (mkdir(dir, 0755) == 0 || errno == EEXIST) &&
             asprintf(&lk, "%s.lock", path) >= 0 ? 0 : -1;
    *fd = rc == 0 ? open(lk, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
    if (*fd < 0 || flock(*fd, LOCK_EX) != 0)
        fprintf(stderr, "slmops models: %s: %s\n", lk ? lk : path, strerror(errno));
    free(dir);
    free(lk);
    return *fd < 0 ? -1 : 0;
}

static int save(const char *path, json_t *doc)
{
    slm_output_params_t op;
    slm_output_params_init(&op);
    slm_error_t err;
    slm_error_init(&err);
    slm_output_t *out = NULL;
    if (slm_output_prepare(path, &op, &out, &err) != SLM_OK)
        return slm_cli_fail("models", &err);
    if (json_dump_file(doc, slm_output_path(out), JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
        fprintf(stderr, "slmops models: cannot write %s\n", slm_output_path(out));
        slm_output_abort(out);
        return SLM_CLI_FAILED;
    }
    return slm_output_commit(out, &err) == SLM_OK ? SLM_CLI_OK : slm_cli_fail("models", &err);
}

/* Load, change with fn, save, all under the lock. */
static int update(const opts_t *o, int (*fn)(const opts_t *, json_t *))
{
    char *path = slm_cli_catalog_path();
    int fd = -1, rc = SLM_CLI_FAILED;
    if (!path)
        fprintf(stderr, "slmops models: no folder for the catalog: set XDG_DATA_HOME or HOME\n");
    else if (lock(path, &fd) == 0) {
        json_t *doc = slm_cli_catalog_load("models");
        rc = doc ? fn(o, json_object_get(doc, "models")) : SLM_CLI_FAILED;
        if (rc == SLM_CLI_OK)
            rc = save(path, doc);
        json_decref(doc);
    }
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

/* One --lora of add as the catalog keeps it: {name, path (absolute), scale}. */
static json_t *lora_entry(const char *arg)
{
    const char *eq = strchr(arg, '='), *name = NULL;
    char *nm = eq ? strndup(arg, (size_t)(eq - arg)) : NULL;
    if (nm && slm_cli_alias_valid(nm) && !strchr(nm, '/')) {
        name = nm;
        arg = eq + 1;
    }
    slm_cli_strs_t one = {.v = {arg}, .n = 1};
    slm_merge_adapter_t ad;
    char *p = NULL, real[PATH_MAX];
    json_t *e = NULL;
    if (slm_cli_lora_parse("models", &one, &ad, &p) != SLM_CLI_OK)
        goto out;
    if (!realpath(ad.path, real)) {
        fprintf(stderr, "slmops models: --lora %s: %s\n", ad.path, strerror(errno));
        goto out;
    }
    e = json_pack("{s:s?, s:o, s:f}", "name", name, "path", slm_cli_json_path(real), "scale",
                  (double)ad.scale);
out:
    free(p);
    free(nm);
    return e;
}

static int add(const opts_t *o, json_t *models)
{
    const char *alias = o->args.v[1], *file = o->args.v[2];
    if (json_object_get(models, alias) && !o->force) {
        fprintf(stderr, "slmops models: '%s' is in the catalog already (give --force to "
                "replace it)\n", alias);
        return SLM_CLI_FAILED;
    }
    char real[PATH_MAX];
    if (!realpath(file, real)) {
        fprintf(stderr, "slmops models: %s: %s\n", file, strerror(errno));
        return SLM_CLI_FAILED;
    }
    json_t *loras = json_array();
    for (size_t i = 0; i < o->loras.n; i++) {
        json_t *l = lora_entry(o->loras.v[i]);
        if (!l) {
            json_decref(loras);
            return SLM_CLI_FAILED;
        }
        json_array_append_new(loras, l);
    }
    json_object_set_new(models, alias, json_pack(
        "{s:o, s:o, s:s?, s:I}", "path", slm_cli_json_path(real), "lora", loras,
        "chat_template", o->chat_template, "added", (json_int_t)time(NULL)));
    return SLM_CLI_OK;
}

static int rm(const opts_t *o, json_t *models)
{
    if (json_object_del(models, o->args.v[1]) != 0) {
        fprintf(stderr, "slmops models: '%s' is not in the catalog (see `slmops models "
                "list`)\n", o->args.v[1]);
        return SLM_CLI_FAILED;
    }
    return SLM_CLI_OK;
}

/* ---- reading ---- */

static void print_entry(const char *alias, json_t *e)
{
    printf("%s\n  path: %s\n", alias, json_string_value(json_object_get(e, "path")));
    const char *t = json_string_value(json_object_get(e, "chat_template"));
    if (t)
        printf("  chat template: %s\n", t);
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(e, "lora"), i, l) {
        const char *name = json_string_value(json_object_get(l, "name"));
        printf("  lora: %s%s%s (scale %g)\n", name ? alias : "", name ? "+" : "",
               name ? name : json_string_value(json_object_get(l, "path")),
               json_number_value(json_object_get(l, "scale")));
        if (name)
            printf("        %s\n", json_string_value(json_object_get(l, "path")));
    }
}

static int show(const opts_t *o, bool all)
{
    json_t *doc = slm_cli_catalog_load("models");
    if (!doc)
        return SLM_CLI_FAILED;
    json_t *models = json_object_get(doc, "models");
    json_t *e = all ? NULL : json_object_get(models, o->args.v[1]);
    if (!all && !e) {
        fprintf(stderr, "slmops models: '%s' is not in the catalog (see `slmops models "
                "list`)\n", o->args.v[1]);
        json_decref(doc);
        return SLM_CLI_FAILED;
    }
    if (o->json) {
        json_t *out = all ? json_incref(models) : json_pack("{s:O}", o->args.v[1], e);
        json_decref(doc);
        return slm_cli_print_json(out);
    }
    const char *key;
    json_t *v;
    if (all)
        json_object_foreach(models, key, v) print_entry(key, v);
    else
        print_entry(o->args.v[1], e);
    json_decref(doc);
    return SLM_CLI_OK;
}

static int check_args(const opts_t *o, const char *cmd, size_t want)
{
    if (o->args.n != want)
        return slm_cli_usage_error("models", "'%s' takes %s", cmd,
                                   want == 1 ? "no operand" : want == 2 ? "ALIAS" : "ALIAS FILE");
    if (want >= 2 && !slm_cli_alias_valid(o->args.v[1]))
        return slm_cli_usage_error("models", "alias '%s': use letters, digits, '_', '.' "
                                   "and '-' (at most 128)", o->args.v[1]);
    bool adding = strcmp(cmd, "add") == 0;
    if (!adding && (o->loras.n || o->chat_template || o->force))
        return slm_cli_usage_error("models", "--lora, --chat-template and --force go with "
                                   "'add'");
    if (adding && o->json)
        return slm_cli_usage_error("models", "--json goes with 'list' and 'show'");
    return SLM_CLI_OK;
}

int slm_cli_models(int argc, char **argv)
{
    opts_t o;
    memset(&o, 0, sizeof o);
    int rc = slm_cli_parse(&spec, argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    static const struct {
        const char *name;
        size_t n_args;
    } cmds[] = {{"add", 3}, {"list", 1}, {"show", 2}, {"rm", 2}};
    const char *cmd = o.args.v[0];
    size_t i = 0;
    while (i < 4 && strcmp(cmds[i].name, cmd) != 0)
        i++;
    if (i == 4)
        return slm_cli_usage_error("models", "unknown subcommand '%s' (add, list, show, rm)",
                                   cmd);
    if ((rc = check_args(&o, cmd, cmds[i].n_args)) != SLM_CLI_OK)
        return rc;
    switch (i) {
    case 0:
        return update(&o, add);
    case 1:
        return show(&o, true);
    case 2:
        return show(&o, false);
    default:
        return update(&o, rm);
    }
}
