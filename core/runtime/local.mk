# Model runtime: Llama-family models on a device, the one forward builder (with its
# memory and linear seams), KV-cache contexts that decode batches, training-mode
# sequences and their loss, perplexity evaluation, and generation slots stepped
# together by a generator.
libslmops_la_SOURCES += \
	core/runtime/runtime.h \
	core/runtime/model.c \
	core/runtime/forward.h \
	core/runtime/forward.c \
	core/runtime/adapter.c \
	core/runtime/model-adapter.c \
	core/runtime/forward-seq.c \
	core/runtime/loss.c \
	core/runtime/kv-cache.h \
	core/runtime/kv-cache.c \
	core/runtime/context.c \
	core/runtime/generation.h \
	core/runtime/generator.c \
	core/runtime/sequence.c \
	core/runtime/json-filter.c \
	core/runtime/perplexity.c
slmopsinclude_HEADERS += \
	core/include/slmops/model.h \
	core/include/slmops/generation.h \
	core/include/slmops/json-filter.h \
	core/include/slmops/eval.h \
	core/include/slmops/task.h
