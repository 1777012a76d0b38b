/* The backend conformance suite: every op x type x shape a backend declares, run
 * on a device and compared with the scalar reference, plus finite-difference
 * checks of the backward ops. Used by slmops-conform, `slmops selftest` and tests. */
#ifndef SLMOPS_CONFORM_H
#define SLMOPS_CONFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <slmops/device.h>
#include <slmops/error.h>
#include <slmops/registry.h>

typedef enum slm_conform_status {
    SLM_CONFORM_PASS = 0,
    SLM_CONFORM_FAIL = 1,      /* wrong result, or the backend reported an error */
    SLM_CONFORM_REFUSED = 2,   /* declared in the manifest but supports_node said no */
    SLM_CONFORM_SKIP = 3       /* layout the backend may refuse (non-unit innermost stride) */
} slm_conform_status_t;

typedef struct slm_conform_result {
    char check[16];            /* "forward" | "gradcheck" */
    char op[32];
    char types[64];            /* "f16,f32->f32" */
    char shape[384];           /* every operand's ne, nb and offset */
    int status;                /* slm_conform_status_t */
    /* max |got - want| / max |want|; quantized weights: per element, over
     * sum_k |w_k x_k| (mul_mat, mul_mat_t) or one ulp of want (get_rows) */
    double max_err;
    double tol;
    char detail[256];          /* where the worst element is, or why it failed */
} slm_conform_result_t;

typedef struct slm_conform_report {
    size_t n_pass, n_fail, n_skip;
    size_t n_results;
    slm_conform_result_t *results;   /* every case, in run order */
} slm_conform_report_t;

typedef struct slm_conform_options {
    uint32_t struct_size;
    const char *op;            /* only this op ("mul_mat"); NULL: all */
    bool no_gradcheck;         /* skip the finite-difference checks */
    /* Fail (instead of skip) cases with a non-unit innermost stride that the backend
     * refuses: right for a CPU backend, which is every other backend's fallback. */
    bool strict_layouts;
} slm_conform_options_t;

void slm_conform_options_default(slm_conform_options_t *opts);

/* Run the suite on an open device. The op x type pairs tested are those the
 * manifest of the plugin serving it declares in provides.ops. Returns 0 when the
 * suite ran (look at rep->n_fail), or a negative status when it could not. */
int slm_conform_run(slm_registry_t *reg, slm_device_t *dev, const slm_conform_options_t *opts,
                    slm_conform_report_t *rep, slm_error_t *err);

void slm_conform_report_free(slm_conform_report_t *rep);

const char *slm_conform_status_name(int status);

/* One line for a result: "FAIL forward mul_mat f16,f32->f32 s0[..] ...: detail". */
void slm_conform_result_format(const slm_conform_result_t *r, char *buf, size_t cap);

/* The report as {"passed", "failed", "skipped", "results": [...]}; with only_problems,
 * results lists failures, refusals and skips only. NULL when out of memory. */
json_t *slm_conform_report_json(const slm_conform_report_t *rep, bool only_problems);

#endif
