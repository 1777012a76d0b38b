/* `slmops pipeline RECIPE`: run a JSON recipe of stages (distill, finetune, quantize,
 * eval, bench, package), each cached by content, and write report.json and report.html. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/pipeline/pipeline.h"
#include "cli/verbs.h"

typedef struct opts {
    const char *work, *device;
    long threads;
    bool check, force;
    slm_cli_strs_t inputs, files;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"-w, --work-dir", "DIR", SLM_CLI_STR, OFF(work), 0, 0,
     "where stage outputs, state.json and the report go\n"
     "(default: the recipe's \"workdir\", relative to the recipe,\n"
     "else NAME.pipeline in the current folder)"},
    {"-i, --input", "NAME=PATH", SLM_CLI_STRS, OFF(inputs), 0, 0,
     "use PATH for the recipe's input NAME (relative to the\n"
     "current folder); may be repeated"},
    {"--check", NULL, SLM_CLI_FLAG, OFF(check), 0, 0,
     "check the recipe against its schema and exit (0 valid, 2 not)"},
    {"--force", NULL, SLM_CLI_FLAG, OFF(force), 0, 0, "run every stage, cached or not"},
    {"--device", "SPEC", SLM_CLI_STR, OFF(device), 0, 0,
     "run every stage on SPEC (auto, cpu, vulkan:0, ...; default: the\n"
     "recipe's \"device\", else auto)"},
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Common options", slm_cli_threads_opt, OFF(threads)},
    {0},
};

static void more_help(FILE *f)
{
    fputs("\nA recipe (docs/recipe.schema.json, slmops(1) RECIPES) lists stages that pass\n"
          "files by name (\"@distill.student\", \"@inputs.teacher\"). A stage whose settings\n"
          "and input contents are unchanged since its last run is not run again; a killed\n"
          "run resumes at the stage it was in (a training stage from its checkpoint).\n", f);
}

static const slm_cli_spec_t spec = {
    .verb = "pipeline",
    .synopsis = "RECIPE [-w DIR] [-i NAME=PATH]... [--check] [--force] [--device SPEC] [-t N]",
    .about = "Run a recipe: distill -> finetune -> quantize -> eval -> bench -> package, and\n"
             "write WORK/report.json and a self-contained WORK/report.html (loss curves,\n"
             "every model's size, memory, speed and quality, teacher against student).\n",
    .groups = groups,
    .operand_names = "RECIPE",
    .min_operands = 1,
    .max_operands = 1,
    .operands_offset = OFF(files),
    .more_help = more_help,
};

static char *join(const char *dir, const char *rel)
{
    if (rel[0] == '/' || !dir[0])
        return strdup(rel);
    size_t n = strlen(dir) + strlen(rel) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s", dir, rel);
    return s;
}

/* -i NAME=PATH: an input the recipe names, from elsewhere (a test's fixture). */
static int override_inputs(slm_pipe_t *p, const opts_t *o)
{
    for (size_t i = 0; i < o->inputs.n; i++) {
        const char *eq = strchr(o->inputs.v[i], '=');
        char key[100];
        if (!eq || eq == o->inputs.v[i] || (size_t)(eq - o->inputs.v[i]) > 64)
            return slm_cli_usage_error("pipeline", "--input '%s': use NAME=PATH",
                                       o->inputs.v[i]);
        snprintf(key, sizeof key, "inputs.%.*s", (int)(eq - o->inputs.v[i]), o->inputs.v[i]);
        if (!json_object_get(p->artifacts, key))
            return slm_cli_usage_error("pipeline", "--input '%s': the recipe has no input "
                                       "\"%s\"", o->inputs.v[i], key + 7);
        struct stat st;
        if (stat(eq + 1, &st) != 0)
            return slm_cli_usage_error("pipeline", "--input '%s': %s: %s", o->inputs.v[i],
                                       eq + 1, strerror(errno));
        json_object_set_new(p->artifacts, key, json_string(eq + 1));
    }
    return SLM_CLI_OK;
}

static int setup(slm_pipe_t *p, const opts_t *o)
{
    const char *wd = json_string_value(json_object_get(p->recipe, "workdir"));
    if (o->work) {
        p->work = strdup(o->work);
    } else if (wd) {
        p->work = join(p->recipe_dir, wd);
    } else {
        const char *name = json_string_value(json_object_get(p->recipe, "name"));
        size_t n = strlen(name) + 16;
        p->work = malloc(n);
        if (p->work)
            snprintf(p->work, n, "%s.pipeline", name);
    }
    if (!p->work)
        return SLM_CLI_FAILED;
    if (mkdir(p->work, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "slmops pipeline: %s: %s\n", p->work, strerror(errno));
        return SLM_CLI_FAILED;
    }
    p->threads = o->threads ? o->threads
                            : (long)json_integer_value(json_object_get(p->recipe, "threads"));
    p->device = o->device ? o->device
                          : json_string_value(json_object_get(p->recipe, "device"));
    p->force = o->force;
    p->artifacts = json_object();
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(p->recipe, "inputs"), name, v) {
        char key[100];
        snprintf(key, sizeof key, "inputs.%s", name);
        char *path = join(p->recipe_dir, json_string_value(v));
        if (!path)
            return SLM_CLI_FAILED;
        json_object_set_new(p->artifacts, key, json_string(path));
        free(path);
    }
    if (override_inputs(p, o) != SLM_CLI_OK)
        return SLM_CLI_USAGE;
    json_object_foreach(p->artifacts, name, v) {
        struct stat st;
        if (stat(json_string_value(v), &st) != 0) {
            fprintf(stderr, "slmops pipeline: %s: input \"%s\": %s: %s (give it with -i "
                    "%s=PATH)\n", p->recipe_path, name + 7, json_string_value(v),
                    strerror(errno), name + 7);
            return SLM_CLI_USAGE;
        }
    }
    return slm_pipe_state_load(p);
}

static void done(slm_pipe_t *p)
{
    free(p->recipe_path);
    free(p->recipe_dir);
    free(p->work);
    json_decref(p->recipe);
    json_decref(p->state);
    json_decref(p->artifacts);
    slm_registry_free(p->reg);
}

int slm_cli_pipeline(int argc, char **argv)
{
    opts_t o = {0};
    int rc = slm_cli_parse(&spec, argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    slm_pipe_t p = {.verb = "pipeline"};
    rc = slm_pipe_recipe_load(&p, o.files.v[0]);
    if (rc == SLM_CLI_OK && o.check) {
        printf("%s: a valid recipe (%zu stages)\n", o.files.v[0],
               json_array_size(json_object_get(p.recipe, "stages")));
        done(&p);
        return SLM_CLI_OK;
    }
    if (rc == SLM_CLI_OK)
        rc = setup(&p, &o);
    if (rc == SLM_CLI_OK && !(p.reg = slm_cli_registry_open()))
        rc = SLM_CLI_FAILED;
    if (rc == SLM_CLI_OK)
        rc = slm_pipe_run(&p);
    if (rc == SLM_CLI_OK)
        rc = slm_pipe_report(&p);
    if (rc == SLM_CLI_OK)
        printf("pipeline %s: %d stage(s) run, %d cached\nreport: %s/report.html\n",
               json_string_value(json_object_get(p.recipe, "name")), p.ran, p.cached, p.work);
    done(&p);
    return rc;
}
