# Compute engine: tensors, graphs, autodiff, the parameter-update ops, scheduler.
libslmops_la_SOURCES += \
	core/internal/graph.h \
	core/compute/tensor.c \
	core/compute/ops.c \
	core/compute/ops-update.c \
	core/compute/autodiff.c \
	core/compute/sched.c \
	core/compute/buffer.c
