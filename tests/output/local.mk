# tests/output: atomic outputs (what OUT may be, dead writers' temporaries,
# signals), regular-file inputs, and the verbs that write and read files.
check_LTLIBRARIES += tests/output/fake-format-v1.la
tests_output_fake_format_v1_la_SOURCES = tests/output/fake-format-v1.c
tests_output_fake_format_v1_la_CFLAGS = $(plugin_cflags)
tests_output_fake_format_v1_la_LDFLAGS = -module -avoid-version -shared -no-undefined -rpath /nowhere

check_PROGRAMS += tests/output/test-output
TESTS += tests/output/test-output
tests_output_test_output_SOURCES = tests/output/test-output.c
tests_output_test_output_CFLAGS = $(test_cflags)
tests_output_test_output_LDADD = $(test_libs)

# The verbs on bad outputs and inputs, write errors and signals (shared fixtures).
TESTS += tests/output/cli-output.sh
EXTRA_DIST += tests/output/cli-output.sh
