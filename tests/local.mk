# Tests: Check suites (tests/*/local.mk add theirs) and scripts.
# Every test runs against the uninstalled plugins of this build tree and nothing
# else (plugins installed on the machine stay out of sight), and keeps its plugin
# scan verdicts in the build tree, never in the user's cache.
AM_TESTS_ENVIRONMENT = \
	SLMOPS_PLUGIN_PATH='$(abs_top_builddir)/manifests/uninstalled'; export SLMOPS_PLUGIN_PATH; \
	SLMOPS_PLUGIN_PATH_ONLY=1; export SLMOPS_PLUGIN_PATH_ONLY; \
	XDG_CACHE_HOME='$(abs_top_builddir)/tests/cache'; export XDG_CACHE_HOME; \
	SLMOPS_FIXTURES='$(SLMOPS_FIXTURES)'; export SLMOPS_FIXTURES; \
	top_builddir='$(abs_top_builddir)'; export top_builddir; \
	top_srcdir='$(abs_top_srcdir)'; export top_srcdir; \
	CK_DEFAULT_TIMEOUT=120; export CK_DEFAULT_TIMEOUT; \
	LLAMA_ARG_REPACK=0; export LLAMA_ARG_REPACK;
# LLAMA_ARG_REPACK=0: the llama.cpp tools the tests use as oracles (llama-perplexity,
# llama-server, llama-cli) keep weights in their plain layout, without the extra
# buffer types. On an Intel Xeon that lists AMX while its kernel does not enable it
# (seen on this machine kind), the native build's AMX kernels die with SIGSEGV at
# ldtilecfg on every quantized model; the oracles' values do not depend on the layout.
test_cflags = $(AM_CFLAGS) $(CHECK_CFLAGS)
test_libs = libslmops.la $(CHECK_LIBS)
EXTRA_DIST += tests/requirements.txt tests/requirements-torch.txt

# The plugin scan verdicts the tests wrote (XDG_CACHE_HOME above).
clean-local: clean-local-tests-cache
clean-local-tests-cache:
	-rm -rf tests/cache
.PHONY: clean-local-tests-cache
