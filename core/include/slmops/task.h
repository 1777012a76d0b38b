/* Task accuracy (the eval job's "task" option, docs/slmops.1 "TASK FILES"): the
 * answer normalization exact match uses, and the Wilson score interval it reports. */
#ifndef SLMOPS_TASK_H
#define SLMOPS_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The normalized form of an answer, compared by exact match and "contains":
 *   1. ASCII letters to lower case;
 *   2. every run of white space becomes one space; none at either end;
 *   3. ASCII punctuation at either end is removed (then white space again), but
 *      not a sign or decimal point that starts a number ("-5", ".5");
 *   4. each space-separated word that is a number (optional sign, digits with
 *      optional thousands commas, optional decimal part) is written canonically:
 *      no '+', no commas, no leading zeros, no trailing fractional zeros and no
 *      trailing '.', "-0" as "0" ("+1,000.50" -> "1000.5").
 * *out is NUL-terminated, to release with free(). */
int slm_task_normalize(const char *text, size_t len, char **out, slm_error_t *err);

/* The Wilson score interval of k successes in n trials at normal quantile z
 * (1.959964 for 95%); n 0 gives [0, 1]. */
void slm_task_wilson(uint64_t k, uint64_t n, double z, double *lo, double *hi);

#ifdef __cplusplus
}
#endif
#endif
