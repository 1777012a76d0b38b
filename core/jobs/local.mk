# Model jobs in the core library: quantize (with its evaluation), init (random
# models of a named shape) and bench.
libslmops_la_SOURCES += \
	core/jobs/jobs.h \
	core/jobs/policy.c \
	core/jobs/quantize.c \
	core/jobs/eval.c \
	core/jobs/vocab.h \
	core/jobs/vocab.c \
	core/jobs/init.c \
	core/jobs/bench.c
slmopsinclude_HEADERS += core/include/slmops/jobs.h
