# core/train: what training jobs share: the training data (datasets, batches) and
# checkpoints.
libslmops_la_SOURCES += \
	core/train/checkpoint.c \
	core/train/dataset.c \
	core/train/dataset-chat.c \
	core/train/dataset-batch.c \
	core/train/dataset-internal.h
slmopsinclude_HEADERS += core/include/slmops/dataset.h core/include/slmops/checkpoint.h
