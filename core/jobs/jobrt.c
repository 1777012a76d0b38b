/* What a job's work calls to report: progress events (to the contract's callback
 * or an older params callback), the cancel flag, and JSON values for reports. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <utf8proc.h>

#include "internal/util.h"
#include "jobs/kind.h"

double slm__job_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void slm__jobrt_init(slm__jobrt_t *rt, slm_job_progress_fn legacy, void *legacy_user,
                     const volatile int *cancel)
{
    *rt = (slm__jobrt_t){.legacy = legacy, .legacy_user = legacy_user, .cancel = cancel,
                         .t0 = slm__job_now()};
}

void slm__jobrt_progress(const slm__jobrt_t *rt, const char *stage, uint64_t done,
                         uint64_t total, const char *item, double value)
{
    slm__jobrt_progress_figures(rt, stage, done, total, item, value, NULL);
}

void slm__jobrt_progress_figures(const slm__jobrt_t *rt, const char *stage, uint64_t done,
                                 uint64_t total, const char *item, double value,
                                 const char *figures)
{
    if (!rt)
        return;
    if (rt->legacy)
        rt->legacy(rt->legacy_user, stage, done, total, item ? item : "");
    if (!rt->cb)
        return;
    slm_job_progress_t ev = {.struct_size = sizeof ev, .stage = stage, .done = done,
                             .total = total, .item = item ? item : "",
                             .elapsed = slm__job_now() - rt->t0, .value = value,
                             .figures = figures};
    rt->cb(rt->user, &ev);
}

bool slm__jobrt_cancelled(const slm__jobrt_t *rt)
{
    return rt && rt->cancel && *rt->cancel;
}

int slm__jobrt_fail_cancelled(slm_error_t *err, const char *what)
{
    return slm__fail(err, SLM_E_CANCELLED, NULL, -1, "%s: cancelled", what);
}

json_t *slm__json_path(const char *path)
{
    if (!path)
        return json_null();
    size_t n = strlen(path);
    json_t *s = json_stringn(path, n);
    if (s)
        return s;
    /* Not UTF-8: each byte that does not start a valid sequence becomes U+FFFD. */
    char *clean = malloc(3 * n + 1);
    if (!clean)
        return NULL;
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t len = utf8proc_iterate((const utf8proc_uint8_t *)path + i,
                                                (utf8proc_ssize_t)(n - i), &cp);
        if (len <= 0 || cp == 0) {
            memcpy(clean + out, "\xEF\xBF\xBD", 3);
            out += 3;
            i++;
            continue;
        }
        memcpy(clean + out, path + i, (size_t)len);
        out += (size_t)len;
        i += (size_t)len;
    }
    s = json_stringn(clean, out);
    free(clean);
    return s;
}

json_t *slm__json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *slm__json_u64(uint64_t v)
{
    if (v <= INT64_MAX)
        return json_integer((json_int_t)v);
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return json_string(buf);
}
