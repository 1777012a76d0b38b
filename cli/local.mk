# The `slmops` command: one file per verb over the public library API.
bin_PROGRAMS += slmops
slmops_SOURCES = \
	cli/main.c \
	cli/common.c \
	cli/common.h \
	cli/options.c \
	cli/options.h \
	cli/signals.c \
	cli/verbs.h \
	cli/plugins.c \
	cli/devices.c \
	cli/selftest.c \
	cli/info.c \
	cli/convert.c \
	cli/tokenize.c \
	cli/generate.c \
	cli/chat.c \
	cli/chat.h \
	cli/chat-prompt.c \
	cli/chat-input.c \
	cli/eval.c \
	cli/quantize.c \
	cli/merge.c \
	cli/finetune.c \
	cli/train-progress.h \
	cli/train-progress.c \
	cli/train-options.h \
	cli/train-options.c \
	cli/distill.c \
	cli/remote/remote.h \
	cli/remote/cache.c \
	cli/remote/teacher.c \
	cli/dlopen/table.h \
	cli/dlopen/table.c \
	cli/dlopen/curl.h \
	cli/dlopen/curl.c \
	cli/dlopen/mhd.h \
	cli/dlopen/mhd.c \
	cli/lora.c \
	cli/lora.h \
	cli/init.c \
	cli/bench.c \
	cli/session.c \
	cli/session.h \
	cli/serve.c \
	cli/catalog.h \
	cli/catalog.c \
	cli/models.c \
	cli/serve/serve.h \
	cli/serve/request.c \
	cli/serve/engine.c \
	cli/serve/openai.c \
	cli/serve/stream.c \
	cli/serve/http.c \
	cli/serve/guard.c \
	cli/serve/log.c \
	cli/serve/embed.c \
	cli/serve/metrics.c \
	cli/serve/page.c \
	cli/pipeline.c \
	cli/pipeline/pipeline.h \
	cli/pipeline/recipe.c \
	cli/pipeline/state.c \
	cli/pipeline/run.h \
	cli/pipeline/stages.c \
	cli/pipeline/package.c \
	cli/pipeline/measure.c \
	cli/pipeline/report.c \
	core/util/sha256.c
# core/util/sha256.c: the pipeline's content hashes (an internal of the library, built
# into the program too rather than exported).
slmops_CFLAGS = $(AM_CFLAGS) -I$(top_srcdir)/core $(JANSSON_CFLAGS) $(MHD_CFLAGS) $(CURL_CFLAGS)
slmops_LDADD = sdk/conform/libslmconform.la libslmops.la $(JANSSON_LIBS) \
	$(PTHREAD_LIBS) -lm

# What the uninstalled slmops needs to run: the program, every plugin and the build
# tree's manifests (tests/cli/bad-input-asan.sh builds this much with sanitizers).
.PHONY: cli-deps
cli-deps: slmops $(plugin_LTLIBRARIES) $(noinst_DATA)
