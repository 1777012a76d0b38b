/* The training loss over target ids: mean cross-entropy of the rows that have a
 * target, built from the cross_entropy op so that autodiff differentiates it. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <slmops/sched.h>
#include <slmops/types.h>

#include "internal/util.h"
#include "runtime/forward.h"

/* cross_entropy averages over all N rows and its gradient assumes each target row sums
 * to 1, so rows without a target are zeroed in the logits (a multiply by keep, whose
 * backward zeroes their gradient too) and given a zero target row (no loss); the
 * average is then rescaled from N rows to the rows scored. */
int slm__xent_build(slm_graph_t *g, slm_tensor_t *logits, slm__xent_t *out, slm_error_t *err)
{
    if (!g || !logits || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "loss: NULL argument");
    memset(out, 0, sizeof *out);
    int64_t V = slm_tensor_ne(logits, 0), N = slm_tensor_ne(logits, 1);
    if (slm_tensor_ne(logits, 2) != 1 || slm_tensor_ne(logits, 3) != 1)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "loss: logits must be [V, N]");
    out->V = V;
    out->N = N;
    out->targets = slm_tensor_new_2d(g, SLM_TYPE_F32, V, N);
    out->keep = slm_tensor_new_2d(g, SLM_TYPE_F32, 1, N);
    out->norm = slm_tensor_new_1d(g, SLM_TYPE_F32, 1);
    slm_tensor_set_name(out->targets, "loss.targets");
    slm_tensor_set_name(out->keep, "loss.keep");
    slm_tensor_set_name(out->norm, "loss.norm");
    slm_tensor_set_flags(out->targets, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(out->keep, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(out->norm, SLM_TENSOR_INPUT);
    slm_tensor_t *kept = slm_mul(g, logits, out->keep);
    out->loss = slm_mul(g, slm_cross_entropy(g, kept, out->targets), out->norm);
    if (!out->loss)
        return slm_graph_status(g, err);
    slm_tensor_set_name(out->loss, "loss");
    slm_tensor_set_flags(out->loss, SLM_TENSOR_OUTPUT);
    return SLM_OK;
}

int64_t slm__xent_feed(const slm__xent_t *x, const int32_t *targets, slm_error_t *err)
{
    if (!x || !x->loss || !targets)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "loss: NULL argument");
    int64_t V = x->V, N = x->N, scored = 0;
    for (int64_t i = 0; i < N; i++) {
        if (targets[i] < -1 || targets[i] >= V)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "loss: target %d (row %lld) is "
                             "outside the vocabulary of %lld", targets[i], (long long)i,
                             (long long)V);
        scored += targets[i] >= 0;
    }
    float *row = calloc((size_t)V, sizeof *row), *keep = malloc((size_t)N * sizeof *keep);
    int rc = row && keep ? SLM_OK : slm__fail(err, SLM_E_NOMEM, NULL, -1, "loss: out of memory");
    for (int64_t i = 0; rc == SLM_OK && i < N; i++) {
        int32_t t = targets[i];
        keep[i] = t >= 0 ? 1.0f : 0.0f;
        if (t >= 0)
            row[t] = 1.0f;
        if (slm_tensor_set_data(x->targets, row, (size_t)(i * V) * sizeof *row,
                                (size_t)V * sizeof *row) < 0)
            rc = slm__fail(err, SLM_E_DEVICE, NULL, -1, "loss: setting the targets failed");
        if (t >= 0)
            row[t] = 0.0f;
    }
    float norm = scored ? (float)((double)N / (double)scored) : 0.0f;
    if (rc == SLM_OK && (slm_tensor_set_data(x->keep, keep, 0, (size_t)N * sizeof *keep) < 0 ||
                         slm_tensor_set_data(x->norm, &norm, 0, sizeof norm) < 0))
        rc = slm__fail(err, SLM_E_DEVICE, NULL, -1, "loss: setting the inputs failed");
    free(row);
    free(keep);
    return rc == SLM_OK ? scored : rc;
}
