/* Table-driven command lines: the one parser every verb uses, and the help text
 * generated from the same tables so that the two cannot disagree. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/common.h"
#include "cli/options.h"

const slm_cli_opt_t slm_cli_threads_opt[] = {
    {"-t, --threads", "N", SLM_CLI_LONG, 0, 1, 4096,
     "CPU threads (default: all cores; accepted by every verb)"},
    {0},
};

uint64_t slm_cli_fresh_seed(void)
{
    uint64_t s = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &s, sizeof s) != (ssize_t)sizeof s)
            s = 0;
        close(fd);
    }
    if (!s)
        s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return s;
}

/* ---- finding an option ---- */

/* True when the ", "-separated list names holds exactly the spelling s[0..n). */
static bool spelled(const char *names, const char *s, size_t n)
{
    for (const char *p = names; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && memcmp(p, s, n) == 0)
            return true;
        p += len;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return false;
}

typedef struct found {
    const slm_cli_group_t *group;
    const slm_cli_opt_t *opt;
} found_t;

static bool find(const slm_cli_spec_t *spec, const char *s, size_t n, found_t *f)
{
    for (const slm_cli_group_t *g = spec->groups; g->opts; g++)
        for (const slm_cli_opt_t *o = g->opts; o->names; o++)
            if (spelled(o->names, s, n)) {
                f->group = g;
                f->opt = o;
                return true;
            }
    return false;
}

/* Edit distance of two short strings (capped at 64 bytes), for "did you mean". */
static size_t distance(const char *a, size_t na, const char *b, size_t nb)
{
    if (na > 64 || nb > 64)
        return 99;
    size_t row[65];
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* The long spelling closest to s, when it is close enough to be a typo. */
static void suggest(const slm_cli_spec_t *spec, const char *s, size_t n, char *out, size_t cap)
{
    size_t best = 3;
    out[0] = '\0';
    for (const slm_cli_group_t *g = spec->groups; g->opts; g++)
        for (const slm_cli_opt_t *o = g->opts; o->names; o++)
            for (const char *p = o->names; *p;) {
                size_t len = strcspn(p, ",");
                size_t d = distance(s, n, p, len);
                if (len > 2 && d < best) {
                    best = d;
                    snprintf(out, cap, "%.*s", (int)len, p);
                }
                p += len;
                while (*p == ',' || *p == ' ')
                    p++;
            }
}

/* ---- storing a value ---- */

static int bad_number(const slm_cli_spec_t *spec, const char *name, const slm_cli_opt_t *o,
                      const char *v)
{
    if (o->type == SLM_CLI_FLOAT)
        return slm_cli_usage_error(spec->verb, "%s needs a number in [%g, %g], not '%s'", name,
                                   o->lo, o->hi, v);
    return slm_cli_usage_error(spec->verb, "%s needs a whole number in [%.0f, %.0f], not '%s'",
                               name, o->lo, o->hi, v);
}

/* "-1" asks for a fresh seed; anything else must be a whole number that fits 64 bits. */
static bool parse_seed(const char *v, slm_cli_seed_t *seed)
{
    if (strcmp(v, "-1") == 0) {
        seed->given = seed->random = true;
        return true;
    }
    if (*v < '0' || *v > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long s = strtoull(v, &end, 10);
    if (errno || *end)
        return false;
    seed->value = s;
    seed->given = true;
    seed->random = false;
    return true;
}

uint64_t slm_cli_seed_value(const slm_cli_seed_t *s, bool fresh_by_default, uint64_t fallback)
{
    if (s->given && !s->random)
        return s->value;
    return s->random || fresh_by_default ? slm_cli_fresh_seed() : fallback;
}

static int store(const slm_cli_spec_t *spec, const char *name, const found_t *f,
                 const char *v, void *opts)
{
    const slm_cli_opt_t *o = f->opt;
    void *dst = (char *)opts + f->group->base + o->offset;
    long l;
    double d;
    switch (o->type) {
    case SLM_CLI_FLAG:
        *(bool *)dst = true;
        return SLM_CLI_OK;
    case SLM_CLI_STR:
        *(const char **)dst = v;
        return SLM_CLI_OK;
    case SLM_CLI_STRS: {
        slm_cli_strs_t *list = dst;
        if (list->n == SLM_CLI_MAX_STRS)
            return slm_cli_usage_error(spec->verb, "%s may be given at most %d times", name,
                                       SLM_CLI_MAX_STRS);
        list->v[list->n++] = v;
        return SLM_CLI_OK;
    }
    case SLM_CLI_LONG:
    case SLM_CLI_I32:
        if (!slm_cli_parse_int(v, (long)o->lo, (long)o->hi, &l))
            return bad_number(spec, name, o, v);
        if (o->type == SLM_CLI_LONG)
            *(long *)dst = l;
        else
            *(int32_t *)dst = (int32_t)l;
        return SLM_CLI_OK;
    case SLM_CLI_FLOAT:
        if (!slm_cli_parse_float(v, o->lo, o->hi, &d))
            return bad_number(spec, name, o, v);
        *(float *)dst = (float)d;
        return SLM_CLI_OK;
    case SLM_CLI_SEED:
        if (!parse_seed(v, dst))
            return slm_cli_usage_error(spec->verb, "%s needs a whole number in [0, %llu], or -1 "
                                       "for a random seed, not '%s'", name,
                                       (unsigned long long)UINT64_MAX, v);
        return SLM_CLI_OK;
    }
    return SLM_CLI_USAGE;
}

/* ---- the parser ---- */

static int operand(const slm_cli_spec_t *spec, const char *a, void *opts)
{
    if (!spec->max_operands)
        return slm_cli_usage_error(spec->verb, "unexpected argument '%s'", a);
    slm_cli_strs_t *ops = (slm_cli_strs_t *)((char *)opts + spec->operands_offset);
    if (ops->n == spec->max_operands || ops->n == SLM_CLI_MAX_STRS)
        return slm_cli_usage_error(spec->verb, "unexpected argument '%s' (takes %s)", a,
                                   spec->operand_names);
    ops->v[ops->n++] = a;
    return SLM_CLI_OK;
}

static int option(const slm_cli_spec_t *spec, int argc, char **argv, int *i, void *opts)
{
    const char *a = argv[*i];
    const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
    found_t f;
    if (!find(spec, a, n, &f)) {
        char hint[64];
        suggest(spec, a, n, hint, sizeof hint);
        if (hint[0])
            return slm_cli_usage_error(spec->verb, "unknown option '%.*s' (did you mean %s?)",
                                       (int)n, a, hint);
        return slm_cli_usage_error(spec->verb, "unknown option '%.*s'", (int)n, a);
    }
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)n, a);
    if (f.opt->type == SLM_CLI_FLAG) {
        if (eq)
            return slm_cli_usage_error(spec->verb, "%s takes no value", name);
        return store(spec, name, &f, NULL, opts);
    }
    const char *v = eq ? eq + 1 : NULL;
    if (!v && *i + 1 >= argc)
        return slm_cli_usage_error(spec->verb, "%s needs a value (%s)", name, f.opt->arg);
    if (!v)
        v = argv[++*i];
    return store(spec, name, &f, v, opts);
}

int slm_cli_parse(const slm_cli_spec_t *spec, int argc, char **argv, void *opts)
{
    bool operands_only = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc;
        if (operands_only || a[0] != '-' || a[1] == '\0') {
            rc = operand(spec, a, opts);
        } else if (strcmp(a, "--") == 0) {
            operands_only = true;
            continue;
        } else if (slm_cli_is_help(a)) {
            slm_cli_help(spec, stdout);
            return SLM_CLI_HELP_SHOWN;
        } else {
            rc = option(spec, argc, argv, &i, opts);
        }
        if (rc != SLM_CLI_OK)
            return rc;
    }
    if (spec->max_operands) {
        const slm_cli_strs_t *ops =
            (const slm_cli_strs_t *)((const char *)opts + spec->operands_offset);
        if (ops->n < spec->min_operands)
            return slm_cli_usage_error(spec->verb, "needs %s", spec->operand_names);
    }
    return SLM_CLI_OK;
}

/* ---- help ---- */

#define HELP_COLUMN 24

static const slm_cli_opt_t help_opt = {"-h, --help", NULL, SLM_CLI_FLAG, 0, 0, 0,
                                       "print this help and exit"};

static void print_opt(const slm_cli_opt_t *o, FILE *f)
{
    char left[96];
    snprintf(left, sizeof left, "  %s%s%s", o->names, o->arg ? " " : "", o->arg ? o->arg : "");
    fputs(left, f);
    size_t used = strlen(left);
    if (!o->help || !*o->help)
        fputc('\n', f);
    for (const char *line = o->help; line && *line;) {
        size_t len = strcspn(line, "\n");
        if (used + 1 >= HELP_COLUMN) {
            fputc('\n', f);
            used = 0;
        }
        fprintf(f, "%*s%.*s\n", (int)(HELP_COLUMN - used), "", (int)len, line);
        used = 0;
        line += len;
        if (*line == '\n')
            line++;
    }
}

void slm_cli_help(const slm_cli_spec_t *spec, FILE *f)
{
    fprintf(f, "Usage: slmops %s %s\n%s", spec->verb, spec->synopsis, spec->about);
    bool first = true;
    for (const slm_cli_group_t *g = spec->groups; g->opts; g++) {
        if (g->title)
            fprintf(f, "\n%s:\n", g->title);
        for (const slm_cli_opt_t *o = g->opts; o->names; o++)
            print_opt(o, f);
        /* --help ends the first group, however many tables continue it. */
        if (first && !(g[1].opts && !g[1].title)) {
            print_opt(&help_opt, f);
            first = false;
        }
    }
    if (spec->more_help)
        spec->more_help(f);
}
