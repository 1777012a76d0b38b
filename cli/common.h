/* Helpers every verb of the `slmops` command shares: the stderr log handler,
 * opening the registry, strict number parsing and usage errors. */
#ifndef SLMOPS_CLI_COMMON_H
#define SLMOPS_CLI_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <slmops/error.h>
#include <slmops/registry.h>

struct json_t;

/* Exit statuses: 0 success, 1 the work failed, 2 the command line is wrong. */
enum { SLM_CLI_OK = 0, SLM_CLI_FAILED = 1, SLM_CLI_USAGE = 2 };

/* SIGTERM/SIGHUP/SIGINT: remove the temporary outputs in flight and exit 128 +
 * the signal (cli/signals.c). Signals ignored at start stay ignored. */
void slm_cli_signals_init(void);

/* Route library logging to stderr as "slmops: LEVEL: CATEGORY: message". */
void slm_cli_log_init(void);

/* Discover plugins on the default search path; prints why on failure. */
slm_registry_t *slm_cli_registry_open(void);

/* Parse a whole decimal integer in [lo, hi]; false when s is anything else. */
bool slm_cli_parse_int(const char *s, long lo, long hi, long *out);

/* Print "slmops VERB: message" and a hint to --help; returns SLM_CLI_USAGE. */
int slm_cli_usage_error(const char *verb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* True when arg is -h or --help. */
bool slm_cli_is_help(const char *arg);

/* Parse a whole finite decimal number in [lo, hi]; false when s is anything else. */
bool slm_cli_parse_float(const char *s, double lo, double hi, double *out);

/* The value of option argv[*i] (advancing *i), or NULL after a usage message when
 * it is the last argument. */
const char *slm_cli_value(int argc, char **argv, int *i, const char *verb);

/* Print "slmops VERB: message" for a failed library call (err's message names the
 * file, the field and the offset where there is one); returns SLM_CLI_FAILED. */
int slm_cli_fail(const char *verb, const slm_error_t *err);

/* A JSON string of n bytes of text; invalid UTF-8 becomes U+FFFD (jansson
 * refuses it, and generated text may hold any bytes). */
struct json_t *slm_cli_json_text(const char *s, size_t n);

/* Print a JSON document (taking its reference) and a newline on stdout. */
int slm_cli_print_json(struct json_t *doc);

#endif
