/* Helpers every verb of the `slmops` command shares: the stderr log handler,
 * opening the registry, strict number parsing and usage errors. */
#ifndef SLMOPS_CLI_COMMON_H
#define SLMOPS_CLI_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/registry.h>

struct json_t;

/* Exit statuses: 0 success, 1 the work failed, 2 the command line is wrong. */
enum { SLM_CLI_OK = 0, SLM_CLI_FAILED = 1, SLM_CLI_USAGE = 2 };

/* SIGTERM/SIGHUP/SIGINT: remove the temporary outputs in flight and exit 128 +
 * the signal (cli/signals.c). Signals ignored at start stay ignored. */
void slm_cli_signals_init(void);
/* From now on the first SIGTERM, SIGHUP or SIGINT cancels job (slm_job_cancel)
 * instead of ending the command; NULL: back to ending it. */
struct slm_job;
void slm_cli_signals_cancel_job(struct slm_job *job);
/* The signal that cancelled the routed job, or 0. */
int slm_cli_signals_caught(void);

/* Route library logging to stderr as "slmops: LEVEL: CATEGORY: message". */
void slm_cli_log_init(void);

/* Discover plugins on the default search path; prints why on failure. */
slm_registry_t *slm_cli_registry_open(void);

/* The rest of a verb whose parse answered parse_rc: its exit status for a usage
 * error or shown help, else run(opts) on an open registry's. */
int slm_cli_run_with_registry(int parse_rc, int (*run)(const void *opts, slm_registry_t *reg),
                              const void *opts);

/* Parse a whole decimal integer in [lo, hi]; false when s is anything else. */
bool slm_cli_parse_int(const char *s, long lo, long hi, long *out);

/* Print "slmops VERB: message" and a hint to --help; returns SLM_CLI_USAGE. */
int slm_cli_usage_error(const char *verb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* True when arg is -h or --help. */
bool slm_cli_is_help(const char *arg);

/* Parse a whole finite decimal number in [lo, hi]; false when s is anything else. */
bool slm_cli_parse_float(const char *s, double lo, double hi, double *out);

/* Print "slmops VERB: message" for a failed library call (err's message names the
 * file, the field and the offset where there is one); returns SLM_CLI_FAILED. */
int slm_cli_fail(const char *verb, const slm_error_t *err);

/* A JSON string of n bytes of text; invalid UTF-8 becomes U+FFFD (jansson
 * refuses it, and generated text may hold any bytes). */
struct json_t *slm_cli_json_text(const char *s, size_t n);
/* The same for a NUL-terminated path (file names need not be UTF-8). */
struct json_t *slm_cli_json_path(const char *path);

/* Print a JSON document (taking its reference) and a newline on stdout. */
int slm_cli_print_json(struct json_t *doc);

/* A JSON number for any unsigned 64-bit value (jansson's integers are signed:
 * larger values are written exactly by slm_cli_print_json). */
struct json_t *slm_cli_json_u64(uint64_t v);

/* The whole contents of a text file, or of standard input for "-", NUL-terminated;
 * anything but a regular file (a folder, a FIFO, a device) is refused, as is a file
 * over 1 GiB. Prints "slmops VERB: PATH: why" and returns NULL on failure. */
char *slm_cli_read_text(const char *verb, const char *path, size_t *len);

/* The prompt a verb was given: -p TEXT (TEXT "-" reads standard input), -f FILE, or
 * none (*text NULL). Returns an exit status; *text is owned by the caller. */
int slm_cli_prompt_text(const char *verb, const char *arg, const char *file, char **text,
                        size_t *len);

/* Route standard output through a stream that remembers why its first write failed. */
void slm_cli_stdout_init(void);

/* Flush and close standard output and report a failure the way coreutils does
 * ("slmops: write error: No space left on device"): the exit status to use. */
int slm_cli_close_stdout(int status);

#endif
