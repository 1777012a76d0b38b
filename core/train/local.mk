# core/train: what training jobs share: the optimizer (AdamW, SGD, clipping, the
# learning-rate schedule) and its saved state, the training data (datasets,
# batches) and checkpoints.
libslmops_la_SOURCES += \
	core/train/optim-internal.h \
	core/train/optim.c \
	core/train/optim-save.c \
	core/train/optim-load.c \
	core/train/schedule.c \
	core/train/checkpoint.c \
	core/train/dataset.c \
	core/train/dataset-chat.c \
	core/train/dataset-batch.c \
	core/train/dataset-internal.h
slmopsinclude_HEADERS += core/include/slmops/optim.h core/include/slmops/dataset.h \
	core/include/slmops/checkpoint.h
