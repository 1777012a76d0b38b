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

# Helper for the mix oracle: small Llama-shaped GGUFs of chosen depth and shapes.
check_PROGRAMS += tests/qcli/mix-model
tests_qcli_mix_model_SOURCES = tests/qcli/mix-model.c
tests_qcli_mix_model_CFLAGS = $(test_cflags)
tests_qcli_mix_model_LDADD = libslmops.la

# Issue 7, item 18: the mixes against llama-quantize, tensor by tensor; type names
# (any case, llama-quantize's names and numbers, missing types named);
# --allow-requantize; the warning when the output is larger than the input.
TESTS += tests/qcli/quantize-mix-oracle.sh tests/qcli/quantize-type-names.sh \
	tests/qcli/quantize-requantize.sh tests/qcli/quantize-larger.sh
EXTRA_DIST += tests/qcli/quantize-mix-oracle.sh tests/qcli/quantize-type-names.sh \
	tests/qcli/quantize-requantize.sh tests/qcli/quantize-larger.sh

# The job contract (slmops/job.h): progress, cancellation, reports, a chain of
# jobs through their reported outputs, outputs over inputs.
check_PROGRAMS += tests/qcli/test-job-contract
TESTS += tests/qcli/test-job-contract
tests_qcli_test_job_contract_SOURCES = tests/qcli/test-job-contract.c
tests_qcli_test_job_contract_CFLAGS = $(test_cflags) $(JANSSON_CFLAGS)
tests_qcli_test_job_contract_LDADD = $(test_libs) $(JANSSON_LIBS) -lm
