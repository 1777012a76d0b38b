# Compute engine: tensors, graphs, autodiff, AdamW, scheduler.
libslmops_la_SOURCES +=
