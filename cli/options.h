/* Table-driven command lines for every verb: one table per verb says each option's
 * spellings, value, range and help line; the parser and `--help` both read it. */
#ifndef SLMOPS_CLI_OPTIONS_H
#define SLMOPS_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum slm_cli_opt_type {
    SLM_CLI_FLAG,   /* bool, takes no value */
    SLM_CLI_STR,    /* const char * */
    SLM_CLI_STRS,   /* slm_cli_strs_t: the option may be repeated */
    SLM_CLI_LONG,   /* long within [lo, hi] */
    SLM_CLI_I32,    /* int32_t within [lo, hi] */
    SLM_CLI_FLOAT,  /* float within [lo, hi] */
    SLM_CLI_SEED    /* slm_cli_seed_t: 0 .. 2^64-1, or -1 for a fresh random seed */
} slm_cli_opt_type_t;

typedef struct slm_cli_opt {
    const char *names;        /* every spelling, ", "-separated: "-n, --n-predict" */
    const char *arg;          /* the value's name in help ("N"); NULL for a flag */
    slm_cli_opt_type_t type;
    size_t offset;            /* where the value goes, from the group's base */
    double lo, hi;            /* accepted range of a number */
    const char *help;         /* one or more lines ('\n' separates them) */
} slm_cli_opt_t;

/* Options sets several verbs share (model, sampling) are groups of their own. */
typedef struct slm_cli_group {
    const char *title;        /* "Options", ...; NULL continues the group before */
    const slm_cli_opt_t *opts;/* ends with an entry whose names is NULL */
    size_t base;              /* offset of the group's struct in the verb's options */
} slm_cli_group_t;

#define SLM_CLI_MAX_STRS 64
typedef struct slm_cli_strs {
    const char *v[SLM_CLI_MAX_STRS];
    size_t n;
} slm_cli_strs_t;

typedef struct slm_cli_seed {
    uint64_t value;
    bool given;               /* --seed was on the command line */
    bool random;              /* it was -1: draw a fresh seed */
} slm_cli_seed_t;

/* The seed to use: the one given, else a fresh one (random) or fallback. */
uint64_t slm_cli_seed_value(const slm_cli_seed_t *s, bool fresh_by_default, uint64_t fallback);

typedef struct slm_cli_spec {
    const char *verb;
    const char *synopsis;     /* after "Usage: slmops VERB " */
    const char *about;        /* what the verb does, printed under the usage line */
    const slm_cli_group_t *groups;   /* ends with an entry whose opts is NULL */
    const char *operand_names;       /* e.g. "IN OUT", for messages; NULL: none */
    size_t min_operands, max_operands;
    size_t operands_offset;   /* slm_cli_strs_t receiving the operands */
    void (*more_help)(FILE *f);      /* optional: printed after the options */
} slm_cli_spec_t;

/* Returned by slm_cli_parse when --help was printed: the verb exits 0. */
#define SLM_CLI_HELP_SHOWN (-1)

/* Parse argv[1..argc) into opts (already holding the defaults): "--name VALUE",
 * "--name=VALUE", short spellings, "--" ending options, "-" as an operand.
 * Returns SLM_CLI_OK, SLM_CLI_USAGE after printing why, or SLM_CLI_HELP_SHOWN. */
int slm_cli_parse(const slm_cli_spec_t *spec, int argc, char **argv, void *opts);

/* The verb's help, generated from its table. */
void slm_cli_help(const slm_cli_spec_t *spec, FILE *f);

/* "-t, --threads N" into a long, for verbs without the model options (which have
 * their own): every verb takes -t, as llama.cpp's tools do. */
extern const slm_cli_opt_t slm_cli_threads_opt[];

/* --ctx, spelled as llama.cpp's tools spell it; each verb words its default. */
#define SLM_CLI_CTX_OPT(offset, help) \
    {"-c, --ctx, --ctx-size", "N", SLM_CLI_LONG, (offset), 1, 1 << 24, (help)}

/* A fresh 64-bit seed from the system's random source. */
uint64_t slm_cli_fresh_seed(void);

#endif
