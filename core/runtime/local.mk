# Model runtime: Llama-family models on a device, KV-cache contexts that decode
# batches, and perplexity evaluation.
libslmops_la_SOURCES += \
	core/runtime/runtime.h \
	core/runtime/model.c \
	core/runtime/context.c \
	core/runtime/perplexity.c
slmopsinclude_HEADERS += \
	core/include/slmops/model.h \
	core/include/slmops/eval.h
