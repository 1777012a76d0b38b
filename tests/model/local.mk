# tests/model: the model-file container and the GGUF format plugin, against the
# shared fixtures, generated malformed files and the `gguf` Python package.
check_PROGRAMS += tests/model/gguf-dump
tests_model_gguf_dump_SOURCES = tests/model/gguf-dump.c
tests_model_gguf_dump_CFLAGS = $(test_cflags) $(JANSSON_CFLAGS)
tests_model_gguf_dump_LDADD = $(test_libs) $(JANSSON_LIBS)

check_PROGRAMS += tests/model/test-model-file
TESTS += tests/model/test-model-file
tests_model_test_model_file_SOURCES = tests/model/test-model-file.c
tests_model_test_model_file_CFLAGS = $(test_cflags)
tests_model_test_model_file_LDADD = $(test_libs)

# Malformed GGUF files through the registry and the dlopen'ed plugin ...
check_PROGRAMS += tests/model/test-gguf-malformed
TESTS += tests/model/test-gguf-malformed
tests_model_test_gguf_malformed_SOURCES = tests/model/test-gguf-malformed.c \
	tests/common/bytebuf.c tests/common/bytebuf.h
tests_model_test_gguf_malformed_CFLAGS = $(test_cflags)
tests_model_test_gguf_malformed_LDADD = $(test_libs)

# ... and again with the plugin compiled in under AddressSanitizer and UBSan, so
# that any read outside a file's mapping is reported (and fails the test).
gguf_asan_flags = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
check_PROGRAMS += tests/model/test-gguf-asan
TESTS += tests/model/test-gguf-asan
tests_model_test_gguf_asan_SOURCES = tests/model/test-gguf-malformed.c \
	tests/common/bytebuf.c tests/common/bytebuf.h \
	$(gguf_plugin_sources) $(plugin_common_sources)
tests_model_test_gguf_asan_CPPFLAGS = $(AM_CPPFLAGS) -DGGUF_DIRECT
tests_model_test_gguf_asan_CFLAGS = $(test_cflags) $(gguf_asan_flags)
tests_model_test_gguf_asan_LDFLAGS = $(gguf_asan_flags)
tests_model_test_gguf_asan_LDADD = $(CHECK_LIBS)

# Interoperability with llama.cpp's gguf-py, both directions (uses gguf-dump).
TESTS += tests/model/gguf-oracle.sh
EXTRA_DIST += tests/model/gguf-oracle.sh tests/model/gguf-oracle.py
