/* CPU feature detection against the kernel's own view: every name the detector
 * knows is reported exactly when /proc/cpuinfo's flags line lists it. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include <slmops/registry.h>

static char flags[16384];

static bool load_flags(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return false;
    char line[sizeof flags - 2];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        if (strncmp(line, "flags", 5) == 0 && strchr(line, ':')) {
            snprintf(flags, sizeof flags, " %s", strchr(line, ':') + 1);
            found = true;
        }
    fclose(f);
    for (char *p = flags; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    strncat(flags, " ", sizeof flags - strlen(flags) - 1);
    return found;
}

static bool listed(const char *name)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s ", name);
    return strstr(flags, pat) != NULL;
}

/* The names added for quantized kernels, AMX among them: the kernel lists AMX
 * only where XCR0 enables tile state, and grants every process the permission. */
static const char *const names[] = {
    "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni",
    "avx512_bf16", "avx512vbmi", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
};

START_TEST(matches_cpuinfo)
{
    const char *name = names[_i];
    ck_assert_msg(slm_cpu_has_feature(name) == listed(name),
                  "%s: detector says %d, /proc/cpuinfo says %d (detected: %s)", name,
                  slm_cpu_has_feature(name), listed(name), slm_cpu_features_string());
}
END_TEST

int main(void)
{
#if !defined(__x86_64__)
    printf("SKIP: feature names are checked on x86-64 only\n");
    return 77;
#endif
    if (!load_flags()) {
        printf("SKIP: no flags line in /proc/cpuinfo\n");
        return 77;
    }
    Suite *s = suite_create("cpu-features");
    TCase *tc = tcase_create("matches_cpuinfo");
    tcase_add_loop_test(tc, matches_cpuinfo, 0, (int)(sizeof names / sizeof names[0]));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
