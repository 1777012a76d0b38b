/* Helpers every verb of the `slmops` command shares: the stderr log handler,
 * opening the registry, strict number parsing and usage errors. */
#ifndef SLMOPS_CLI_COMMON_H
#define SLMOPS_CLI_COMMON_H

#include <stdbool.h>
#include <slmops/registry.h>

/* Exit statuses: 0 success, 1 the work failed, 2 the command line is wrong. */
enum { SLM_CLI_OK = 0, SLM_CLI_FAILED = 1, SLM_CLI_USAGE = 2 };

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

#endif
