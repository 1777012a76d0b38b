# tests/cli: the sampler, chat templates and the model verbs of `slmops`
# (info, tokenize, generate, chat, eval, convert) on the shared fixtures.
check_PROGRAMS += tests/cli/test-sampler
TESTS += tests/cli/test-sampler
tests_cli_test_sampler_SOURCES = tests/cli/test-sampler.c
tests_cli_test_sampler_CFLAGS = $(test_cflags)
tests_cli_test_sampler_LDADD = $(test_libs) -lm

check_PROGRAMS += tests/cli/test-task
TESTS += tests/cli/test-task
tests_cli_test_task_SOURCES = tests/cli/test-task.c
tests_cli_test_task_CFLAGS = $(test_cflags)
tests_cli_test_task_LDADD = $(test_libs) -lm

check_PROGRAMS += tests/cli/test-chat
TESTS += tests/cli/test-chat
tests_cli_test_chat_SOURCES = tests/cli/test-chat.c
tests_cli_test_chat_CFLAGS = $(test_cflags) $(JANSSON_CFLAGS)
tests_cli_test_chat_LDADD = $(test_libs) $(JANSSON_LIBS)

# The verbs on the shared fixtures (acceptance 1, 2, 3, 7) and on bad input.
TESTS += \
	tests/cli/cli-generate.sh \
	tests/cli/cli-roundtrip.sh \
	tests/cli/cli-eval.sh \
	tests/cli/cli-verbs.sh \
	tests/cli/eval-batch-grid.sh \
	tests/cli/help-vs-man.sh \
	tests/cli/selftest-device.sh \
	tests/cli/convert-tokenizer.sh \
	tests/cli/stdout-write-error.sh \
	tests/cli/seeds.sh \
	tests/cli/llama-habits.sh \
	tests/cli/bad-input.sh \
	tests/cli/bad-input-asan.sh \
	tests/cli/readme-first-steps.sh \
	tests/cli/ctx-too-large.sh \
	tests/cli/clear-messages.sh \
	tests/cli/eval-task.sh \
	tests/cli/startup-libraries.sh
EXTRA_DIST += \
	tests/cli/lib.sh \
	tests/cli/cli-generate.sh \
	tests/cli/cli-roundtrip.sh \
	tests/cli/cli-eval.sh \
	tests/cli/cli-verbs.sh \
	tests/cli/eval-batch-grid.sh \
	tests/cli/help-vs-man.sh \
	tests/cli/help_vs_man.py \
	tests/cli/selftest-device.sh \
	tests/cli/convert-tokenizer.sh \
	tests/cli/stdout-write-error.sh \
	tests/cli/seeds.sh \
	tests/cli/llama-habits.sh \
	tests/cli/bad-input.sh \
	tests/cli/bad-input-asan.sh \
	tests/cli/readme-first-steps.sh \
	tests/cli/ctx-too-large.sh \
	tests/cli/clear-messages.sh \
	tests/cli/eval-task.sh \
	tests/cli/startup-libraries.sh \
	tests/cli/eval_task_oracle.py tests/lib/llama2c.py \
	tests/cli/data/task-stories.jsonl \
	tests/cli/bad-input/cases.txt \
	tests/cli/bad-input/gguf-patch.py

# The sanitized copy of the tree bad-input-asan.sh keeps between runs.
clean-local: clean-asan-build
.PHONY: clean-asan-build
clean-asan-build:
	-rm -rf tests/cli/asan-build tests/cli/asan-build.new
