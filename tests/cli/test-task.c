/* Check tests of task accuracy's pieces: the answer normalization slmops(1) documents
 * (case, white space, punctuation at the ends, numbers) and the Wilson interval. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/task.h>

static const char *const cases[][2] = {
    {"Hello,  World!", "hello, world"},
    {"  \t\nLILY.\n", "lily"},
    {"...\"quoted\"...", "quoted"},
    {"+1,000.50", "1000.5"},
    {"-0", "0"},
    {"-0.0", "0"},
    {"007 Bond.", "7 bond"},
    {"3.0 apples!!", "3 apples"},
    {"1,00", "1,00"},          /* commas not in groups of three: a word, not a number */
    {"12,345,678", "12345678"},
    {".5", "0.5"},
    {"5.", "5"},
    {"-12.340", "-12.34"},
    {"a-b c", "a-b c"},
    {"$-5", "-5"},
    {"(-.25)", "-0.25"},
    {"!!!", ""},
    {"", ""},
    {"Ünïcode Stays", "Ünïcode stays"},   /* only ASCII letters change case */
};

START_TEST(normalization_follows_the_rules)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        ck_assert_int_eq(slm_task_normalize(cases[i][0], strlen(cases[i][0]), &out, NULL), 0);
        ck_assert_msg(strcmp(out, cases[i][1]) == 0, "normalize(\"%s\") = \"%s\", want \"%s\"",
                      cases[i][0], out, cases[i][1]);
        free(out);
    }
}
END_TEST

START_TEST(wilson_matches_hand_computed_values)
{
    double lo, hi;
    /* k 6, n 11, z 1.96: centre (6/11 + z^2/22)/(1 + z^2/11), worked out by hand. */
    slm_task_wilson(6, 11, 1.959963984540054, &lo, &hi);
    ck_assert_double_eq_tol(lo, 0.2801, 1e-4);
    ck_assert_double_eq_tol(hi, 0.7873, 1e-4);
    slm_task_wilson(0, 10, 1.959963984540054, &lo, &hi);
    ck_assert_double_eq_tol(lo, 0.0, 1e-12);
    ck_assert_double_eq_tol(hi, 0.2775, 1e-4);
    slm_task_wilson(10, 10, 1.959963984540054, &lo, &hi);
    ck_assert_double_eq_tol(lo, 0.7225, 1e-4);
    ck_assert_double_eq_tol(hi, 1.0, 1e-12);
    slm_task_wilson(0, 0, 1.96, &lo, &hi);
    ck_assert(lo == 0.0 && hi == 1.0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("task");
    TCase *t = tcase_create("task");
    tcase_add_test(t, normalization_follows_the_rules);
    tcase_add_test(t, wilson_matches_hand_computed_values);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
