# Model-file container: metadata + tensor tables, read and written through
# format plugins found in the registry; LoRA adapters read, checked against
# their base, built and saved through it.
slm_model_sources = \
	core/internal/model-file.h \
	core/model/model-file.c \
	core/model/io.c \
	core/internal/adapter.h \
	core/model/adapter.c \
	core/model/adapter-load.c \
	core/model/adapter-new.c
libslmops_la_SOURCES += $(slm_model_sources)
slmopsinclude_HEADERS += core/include/slmops/model-file.h core/include/slmops/adapter.h
