/* Op names: the stable spelling used in manifests, logs and the CLI. */
#include "config.h"

#include <string.h>

#include <slmops/ops.h>

static const char *const op_names[SLM_OP_COUNT] = {
    [SLM_OP_NONE] = "none",
    [SLM_OP_GET_ROWS] = "get_rows",
    [SLM_OP_GET_ROWS_BACK] = "get_rows_back",
    [SLM_OP_MUL_MAT] = "mul_mat",
    [SLM_OP_OUT_PROD] = "out_prod",
    [SLM_OP_ADD] = "add",
    [SLM_OP_MUL] = "mul",
    [SLM_OP_SCALE] = "scale",
    [SLM_OP_RMS_NORM] = "rms_norm",
    [SLM_OP_RMS_NORM_BACK] = "rms_norm_back",
    [SLM_OP_ROPE] = "rope",
    [SLM_OP_ROPE_BACK] = "rope_back",
    [SLM_OP_SOFT_MAX] = "soft_max",
    [SLM_OP_SOFT_MAX_BACK] = "soft_max_back",
    [SLM_OP_SILU] = "silu",
    [SLM_OP_SILU_BACK] = "silu_back",
    [SLM_OP_GELU] = "gelu",
    [SLM_OP_GELU_BACK] = "gelu_back",
    [SLM_OP_SWIGLU] = "swiglu",
    [SLM_OP_CPY] = "cpy",
    [SLM_OP_CROSS_ENTROPY] = "cross_entropy",
    [SLM_OP_CROSS_ENTROPY_BACK] = "cross_entropy_back",
    [SLM_OP_SUM] = "sum",
    [SLM_OP_REPEAT_BACK] = "repeat_back",
    [SLM_OP_ACC] = "acc",
    [SLM_OP_ADAMW_STEP] = "adamw_step",
    [SLM_OP_SGD_STEP] = "sgd_step",
    [SLM_OP_MUL_MAT_T] = "mul_mat_t",
    [SLM_OP_LOG] = "log",
    [SLM_OP_LOG_BACK] = "log_back",
    [SLM_OP_ATTN] = "attn",
};

const char *slm_op_name(int op)
{
    if (op < 0 || op >= SLM_OP_COUNT)
        return NULL;
    return op_names[op];
}

int slm_op_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < SLM_OP_COUNT; i++)
        if (op_names[i] && strcmp(op_names[i], name) == 0)
            return i;
    return -1;
}
