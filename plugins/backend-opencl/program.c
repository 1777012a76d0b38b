/* The OpenCL backend's program: the kernels' OpenCL C source (the kernels folder, embedded
 * by the build as one string), built once per device and process, then shared. */
#include <stdlib.h>
#include <string.h>

#include "ocl.h"

static const char kernel_source[] =
#include "kernels/kernels.cl.h"
    ;

/* The compiler's log, one line of it, into the host's log. */
static void log_build_failure(const ocl_slot_t *s, cl_int r)
{
    char log[400] = "";
    size_t n = 0;
    if (clGetProgramBuildInfo(s->program, s->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log,
                              &n) != CL_SUCCESS)
        log[0] = 0;
    log[sizeof log - 1] = 0;
    for (char *c = log; *c; c++)
        if (*c == '\n')
            *c = ' ';
    ocl_log(SLM_LOG_ERROR, "building the OpenCL kernels failed (error %d): %s", (int)r, log);
}

static int build(ocl_slot_t *s)
{
    cl_int r;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)s->platform, 0};
    s->context = clCreateContext(props, 1, &s->device, NULL, NULL, &r);
    if (!s->context)
        return SLM_E_DEVICE;
    const char *src = kernel_source;
    s->program = clCreateProgramWithSource(s->context, 1, &src, NULL, &r);
    if (!s->program)
        return SLM_E_DEVICE;
    /* no fast-math options: the results are compared with the CPU backend's */
    r = clBuildProgram(s->program, 1, &s->device, "-cl-std=CL1.2", NULL, NULL);
    if (r != CL_SUCCESS) {
        log_build_failure(s, r);
        return SLM_E_DEVICE;
    }
    return SLM_OK;
}

void ocl_slot_release(ocl_slot_t *s)
{
    if (s->program)
        clReleaseProgram(s->program);
    if (s->context)
        clReleaseContext(s->context);
    s->program = NULL;
    s->context = NULL;
}

int ocl_program_get(ocl_backend_t *b, int index, ocl_slot_t **slot)
{
    ocl_slot_t *s = &b->slot[index];
    pthread_mutex_lock(&b->lock);
    int rc = SLM_OK;
    if (!s->program && (rc = build(s)))
        ocl_slot_release(s);   /* the next open tries again */
    pthread_mutex_unlock(&b->lock);
    *slot = s;
    return rc;
}
