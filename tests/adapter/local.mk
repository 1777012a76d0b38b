# tests/adapter: LoRA adapters (issue 8): the canonical container, PEFT folders,
# checks against the base, the in-memory builder and `slmops merge`, against PEFT
# and llama.cpp as oracles.
check_PROGRAMS += tests/adapter/adapter-tool
tests_adapter_adapter_tool_SOURCES = tests/adapter/adapter-tool.c
tests_adapter_adapter_tool_CFLAGS = $(test_cflags)
tests_adapter_adapter_tool_LDADD = $(test_libs)

check_PROGRAMS += tests/adapter/test-adapter
TESTS += tests/adapter/test-adapter
tests_adapter_test_adapter_SOURCES = tests/adapter/test-adapter.c
tests_adapter_test_adapter_CFLAGS = $(test_cflags)
tests_adapter_test_adapter_LDADD = $(test_libs) -lm

# The command line (merge, convert --base), PEFT and transformers as oracles
# (tests/requirements-torch.txt), and llama.cpp's llama-perplexity --lora.
TESTS += tests/adapter/cli-merge.sh tests/adapter/peft-oracle.sh tests/adapter/llama-cpp-lora.sh
EXTRA_DIST += tests/adapter/cli-merge.sh tests/adapter/peft-oracle.sh tests/adapter/peft_oracle.py \
	tests/adapter/llama-cpp-lora.sh

# --lora at run time on generate, chat, eval and bench against slmops merge.
TESTS += tests/adapter/cli-lora.sh
EXTRA_DIST += tests/adapter/cli-lora.sh
