# Training support in the core library: the optimizer (AdamW, SGD, clipping, the
# learning-rate schedule) and its saved state.
libslmops_la_SOURCES += \
	core/train/optim-internal.h \
	core/train/optim.c \
	core/train/optim-save.c \
	core/train/optim-load.c \
	core/train/schedule.c
slmopsinclude_HEADERS += core/include/slmops/optim.h
