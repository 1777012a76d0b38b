# tests/runtime: persistent buffers bound into graphs, and the Llama-family model
# runtime against the shared fixtures (skipped, naming the path, when absent).
check_PROGRAMS += tests/runtime/test-buffer
TESTS += tests/runtime/test-buffer
tests_runtime_test_buffer_SOURCES = tests/runtime/test-buffer.c tests/compute/common.c \
	tests/compute/common.h
tests_runtime_test_buffer_CFLAGS = $(test_cflags)
tests_runtime_test_buffer_LDADD = $(test_libs)

# Giving back a copied file mapping's pages (core/util/host-pages.c, internal: its
# source is linked in).
check_PROGRAMS += tests/runtime/test-host-pages
TESTS += tests/runtime/test-host-pages
tests_runtime_test_host_pages_SOURCES = tests/runtime/test-host-pages.c core/util/host-pages.c
tests_runtime_test_host_pages_CFLAGS = $(test_cflags)
tests_runtime_test_host_pages_LDADD = $(test_libs)

# stories260K from GGUF against llama2.c's reference run (greedy ids, logits).
check_PROGRAMS += tests/runtime/test-model
TESTS += tests/runtime/test-model
tests_runtime_test_model_SOURCES = tests/runtime/test-model.c tests/compute/common.c \
	tests/compute/common.h
tests_runtime_test_model_CFLAGS = $(test_cflags) $(JANSSON_CFLAGS)
tests_runtime_test_model_LDADD = $(test_libs) $(JANSSON_LIBS) -lm

# The same run from llama2c/stories260K.bin (skipped until a format plugin reads it).
check_PROGRAMS += tests/runtime/test-model-llama2c
TESTS += tests/runtime/test-model-llama2c
tests_runtime_test_model_llama2c_SOURCES = $(tests_runtime_test_model_SOURCES)
tests_runtime_test_model_llama2c_CPPFLAGS = $(AM_CPPFLAGS) \
	-DMODEL_REL='"llama2c/stories260K.bin"' -DSKIP_UNLESS_READABLE
tests_runtime_test_model_llama2c_CFLAGS = $(tests_runtime_test_model_CFLAGS)
tests_runtime_test_model_llama2c_LDADD = $(tests_runtime_test_model_LDADD)

# The decode fast paths (kept graphs, padded attention, thread counts) against
# plain runs of stories260K.
check_PROGRAMS += tests/runtime/test-decode-reuse
TESTS += tests/runtime/test-decode-reuse
tests_runtime_test_decode_reuse_SOURCES = tests/runtime/test-decode-reuse.c
tests_runtime_test_decode_reuse_CFLAGS = $(test_cflags)
tests_runtime_test_decode_reuse_LDADD = $(test_libs) -lm

# The forward builder's training mode (whole sequences, packed documents, adapters,
# gradients) against decode, merged weights and finite differences. It calls the
# runtime's internal API, so it links the library's objects rather than the
# library, whose exports are the public API only.
check_PROGRAMS += tests/runtime/test-forward
TESTS += tests/runtime/test-forward
tests_runtime_test_forward_SOURCES = tests/runtime/test-forward.c
tests_runtime_test_forward_CFLAGS = $(test_cflags)
tests_runtime_test_forward_LDADD = $(libslmops_la_OBJECTS) $(libslmops_la_LIBADD) \
	$(CHECK_LIBS) -lm
EXTRA_tests_runtime_test_forward_DEPENDENCIES = libslmops.la

# Generation slots (slmops/generation.h) on stories260K: sequences stepped together
# against each alone, joining mid-way, chunked prefill, stop rules, freed cells.
check_PROGRAMS += tests/runtime/test-generator
TESTS += tests/runtime/test-generator
tests_runtime_test_generator_SOURCES = tests/runtime/test-generator.c
tests_runtime_test_generator_CFLAGS = $(test_cflags)
tests_runtime_test_generator_LDADD = $(test_libs)

# The JSON filter of constrained sampling (slmops/json-filter.h): schemas, texts
# judged, greedy generation turned into valid JSON; a sequence's log-probabilities.
check_PROGRAMS += tests/runtime/test-json-filter
TESTS += tests/runtime/test-json-filter
tests_runtime_test_json_filter_SOURCES = tests/runtime/test-json-filter.c
tests_runtime_test_json_filter_CFLAGS = $(test_cflags) $(JANSSON_CFLAGS)
tests_runtime_test_json_filter_LDADD = $(test_libs) $(JANSSON_LIBS) -lm
