# tests/safetensors: the safetensors format plugin against the shared fixtures,
# generated malformed files (also under AddressSanitizer) and the `safetensors`
# Python package.
check_PROGRAMS += tests/safetensors/test-safetensors
TESTS += tests/safetensors/test-safetensors
tests_safetensors_test_safetensors_SOURCES = tests/safetensors/test-safetensors.c
tests_safetensors_test_safetensors_CFLAGS = $(test_cflags)
tests_safetensors_test_safetensors_LDADD = $(test_libs)

# Malformed files and folders through the registry and the dlopen'ed plugin ...
check_PROGRAMS += tests/safetensors/test-st-malformed
TESTS += tests/safetensors/test-st-malformed
tests_safetensors_test_st_malformed_SOURCES = tests/safetensors/test-st-malformed.c
tests_safetensors_test_st_malformed_CFLAGS = $(test_cflags)
tests_safetensors_test_st_malformed_LDADD = $(test_libs)

# ... and again with the plugin compiled in under AddressSanitizer and UBSan, so
# that any read outside a file's mapping is reported (and fails the test).
st_asan_flags = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
check_PROGRAMS += tests/safetensors/test-st-asan
TESTS += tests/safetensors/test-st-asan
tests_safetensors_test_st_asan_SOURCES = tests/safetensors/test-st-malformed.c $(safetensors_plugin_sources) \
	$(plugin_common_sources)
tests_safetensors_test_st_asan_CPPFLAGS = $(AM_CPPFLAGS) -DST_DIRECT
tests_safetensors_test_st_asan_CFLAGS = $(test_cflags) $(JANSSON_CFLAGS) $(st_asan_flags)
tests_safetensors_test_st_asan_LDFLAGS = $(st_asan_flags)
tests_safetensors_test_st_asan_LDADD = $(CHECK_LIBS) $(JANSSON_LIBS)

# Interoperability with the `safetensors` Python package, both directions.
check_PROGRAMS += tests/safetensors/st-convert
tests_safetensors_st_convert_SOURCES = tests/safetensors/st-convert.c
tests_safetensors_st_convert_CFLAGS = $(test_cflags)
tests_safetensors_st_convert_LDADD = $(test_libs)
TESTS += tests/safetensors/oracle.sh
EXTRA_DIST += tests/safetensors/oracle.sh tests/safetensors/oracle.py

# A lone .safetensors file written by slmops loads and generates again (CLI).
TESTS += tests/safetensors/single-file.sh
EXTRA_DIST += tests/safetensors/single-file.sh
