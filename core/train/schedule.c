/* Learning-rate schedules: the rate of each step as a pure function of the step
 * count, so a resumed run recomputes exactly the rates an uninterrupted one used. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "train/optim-internal.h"

#define PI 3.14159265358979323846

static const char *const schedule_names[] = {
    [SLM_LR_CONSTANT] = "constant",
    [SLM_LR_LINEAR] = "linear",
    [SLM_LR_COSINE] = "cosine",
};

const char *slm__lr_schedule_name(int schedule)
{
    if (schedule < 0 || (size_t)schedule >= sizeof schedule_names / sizeof schedule_names[0])
        return NULL;
    return schedule_names[schedule];
}

int slm__lr_schedule_from_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof schedule_names / sizeof schedule_names[0]; i++)
        if (strcmp(schedule_names[i], name) == 0)
            return (int)i;
    return -1;
}

/* The factors of transformers' get_{constant,linear,cosine}_schedule_with_warmup (and
 * its cosine_with_min_lr variant), evaluated in the same order, except that the
 * cosine stays at its floor after total_steps instead of rising again. */
double slm_optim_lr_at(const slm_optim_params_t *p, int64_t step)
{
    if (!p)
        return 0.0;
    double lr = p->lr;
    int64_t warmup = p->warmup_steps > 0 ? p->warmup_steps : 0;
    if (step < 0)
        step = 0;
    if (step < warmup)
        return lr * ((double)step / (double)warmup);
    if (p->schedule != SLM_LR_LINEAR && p->schedule != SLM_LR_COSINE)
        return lr;
    int64_t span = p->total_steps - warmup > 1 ? p->total_steps - warmup : 1;
    double f;
    if (p->schedule == SLM_LR_LINEAR) {
        f = (double)(p->total_steps - step) / (double)span;
        f = f > 0.0 ? f : 0.0;
    } else {
        double progress = (double)(step - warmup) / (double)span;
        f = 0.5 * (1.0 + cos(PI * (progress < 1.0 ? progress : 1.0)));
    }
    double r = p->min_lr_ratio;
    return lr * (f * (1.0 - r) + r);
}
