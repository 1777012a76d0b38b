# Model-file container: metadata + tensor tables, read and written through
# format plugins found in the registry.
slm_model_sources = \
	core/internal/model-file.h \
	core/model/model-file.c \
	core/model/io.c
libslmops_la_SOURCES += $(slm_model_sources)
slmopsinclude_HEADERS += core/include/slmops/model-file.h
