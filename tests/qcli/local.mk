# tests/qcli: the quantize, init and bench jobs (library and CLI), including
# acceptance 5 (stories260K to q8_0/q4_0: kept rows and perplexity bounds), and
# GGUF files in both directions between slmops and llama.cpp's own binaries (the
# peer ../shared/peers/llama-cpp.sh builds).
check_PROGRAMS += tests/qcli/test-jobs
TESTS += tests/qcli/test-jobs tests/qcli/cli-qcli.sh tests/qcli/llama-cpp-compat.sh \
	tests/qcli/llama-cpp-quantized.sh
tests_qcli_test_jobs_SOURCES = tests/qcli/test-jobs.c
tests_qcli_test_jobs_CFLAGS = $(test_cflags)
tests_qcli_test_jobs_LDADD = $(test_libs) -lm
EXTRA_DIST += tests/qcli/cli-qcli.sh tests/qcli/llama-cpp-compat.sh tests/qcli/peer.sh \
	tests/qcli/llama-cpp-quantized.sh
