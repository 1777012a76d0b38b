# Tests: Check suites (tests/*/local.mk add theirs) and scripts.
# Every test runs against the uninstalled plugins of this build tree.
AM_TESTS_ENVIRONMENT = \
	SLMOPS_PLUGIN_PATH='$(abs_top_builddir)/manifests/uninstalled'; export SLMOPS_PLUGIN_PATH; \
	SLMOPS_FIXTURES='$(SLMOPS_FIXTURES)'; export SLMOPS_FIXTURES; \
	top_builddir='$(abs_top_builddir)'; export top_builddir; \
	top_srcdir='$(abs_top_srcdir)'; export top_srcdir; \
	CK_DEFAULT_TIMEOUT=120; export CK_DEFAULT_TIMEOUT;
test_cflags = $(AM_CFLAGS) $(CHECK_CFLAGS)
test_libs = libslmops.la $(CHECK_LIBS)
EXTRA_DIST += tests/requirements.txt
