# tests/compute build fragment: graph building, autodiff, scheduler and training steps.
check_PROGRAMS += tests/compute/test-graph
TESTS += tests/compute/test-graph
tests_compute_test_graph_SOURCES = tests/compute/test-graph.c
tests_compute_test_graph_CFLAGS = $(test_cflags)
tests_compute_test_graph_LDADD = $(test_libs)

check_PROGRAMS += tests/compute/test-autodiff
TESTS += tests/compute/test-autodiff
tests_compute_test_autodiff_SOURCES = tests/compute/test-autodiff.c tests/compute/common.c \
	tests/compute/common.h
tests_compute_test_autodiff_CFLAGS = $(test_cflags)
tests_compute_test_autodiff_LDADD = $(test_libs) -lm

# A backend that runs only add and scale on f32, to exercise the CPU fallback.
check_LTLIBRARIES += tests/compute/testbe.la
tests_compute_testbe_la_SOURCES = tests/compute/testbe.c
tests_compute_testbe_la_CFLAGS = $(plugin_cflags)
tests_compute_testbe_la_LDFLAGS = $(plugin_ldflags)

# A version-2 backend: two devices (add / scale), buffer_copy, record and replay.
check_LTLIBRARIES += tests/compute/testbe2.la
tests_compute_testbe2_la_SOURCES = tests/compute/testbe2.c
tests_compute_testbe2_la_CFLAGS = $(plugin_cflags)
tests_compute_testbe2_la_LDFLAGS = $(plugin_ldflags)

# Device choice over the CPU and testbe2's two devices (slmops devices).
TESTS += tests/compute/devices-choice.sh
EXTRA_DIST += tests/compute/devices-choice.sh

check_PROGRAMS += tests/compute/test-sched
TESTS += tests/compute/test-sched
tests_compute_test_sched_SOURCES = tests/compute/test-sched.c tests/compute/common.c \
	tests/compute/common.h
tests_compute_test_sched_CFLAGS = $(test_cflags)
tests_compute_test_sched_LDADD = $(test_libs) -lm
