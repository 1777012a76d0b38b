# tests/tokenizer: tokenizers against llama.cpp's vocabulary test vectors and the
# shared fixtures (skipped, naming the path, when the fixtures are absent).
tokenizer_test_helpers = tests/tokenizer/vectors.c tests/tokenizer/vectors.h

check_PROGRAMS += tests/tokenizer/test-tokenizer
TESTS += tests/tokenizer/test-tokenizer
tests_tokenizer_test_tokenizer_SOURCES = tests/tokenizer/test-tokenizer.c $(tokenizer_test_helpers)
tests_tokenizer_test_tokenizer_CFLAGS = $(test_cflags)
tests_tokenizer_test_tokenizer_LDADD = $(test_libs)

check_PROGRAMS += tests/tokenizer/test-tokenizer-hf
TESTS += tests/tokenizer/test-tokenizer-hf
tests_tokenizer_test_tokenizer_hf_SOURCES = tests/tokenizer/test-tokenizer-hf.c \
	$(tokenizer_test_helpers)
tests_tokenizer_test_tokenizer_hf_CFLAGS = $(test_cflags)
tests_tokenizer_test_tokenizer_hf_LDADD = $(test_libs)
