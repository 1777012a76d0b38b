# Sampler: turning logits into the next token (penalties, top-k/p, min-p,
# temperature, seeded draw) and stop strings for generation loops.
libslmops_la_SOURCES += \
	core/sampler/sampler.c \
	core/sampler/stop.c
slmopsinclude_HEADERS += core/include/slmops/sampler.h
