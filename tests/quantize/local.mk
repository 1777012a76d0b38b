# tests/quantize: the quantizer plugins and the core conversion API (Check), and
# the oracle comparing their bytes with the `gguf` Python package's quantizers.
check_PROGRAMS += tests/quantize/test-quantize
TESTS += tests/quantize/test-quantize
tests_quantize_test_quantize_SOURCES = tests/quantize/test-quantize.c
tests_quantize_test_quantize_CFLAGS = $(test_cflags)
tests_quantize_test_quantize_LDADD = $(test_libs) -lm

# Helper for the oracle: raw f32 rows <-> a block type through slmops.
check_PROGRAMS += tests/quantize/quant-tool
tests_quantize_quant_tool_SOURCES = tests/quantize/quant-tool.c
tests_quantize_quant_tool_CFLAGS = $(test_cflags)
tests_quantize_quant_tool_LDADD = libslmops.la

# Byte equality with the gguf package's quantizers (and with llama.cpp's own
# ggml_quantize_chunk when llama-cpp-python is installed); exit 77 without them.
TESTS += tests/quantize/oracle.sh
EXTRA_DIST += tests/quantize/oracle.sh tests/quantize/oracle.py

# Issue 7, item 14: messages name types ("q8_0", "type 1234 (unknown)"), never ids.
TESTS += tests/quantize/type-names.sh
EXTRA_DIST += tests/quantize/type-names.sh
