# Compute engine: tensors, graphs, autodiff, AdamW, scheduler.
libslmops_la_SOURCES += \
	core/internal/graph.h \
	core/compute/tensor.c \
	core/compute/ops.c \
	core/compute/autodiff.c \
	core/compute/sched.c \
	core/compute/buffer.c
