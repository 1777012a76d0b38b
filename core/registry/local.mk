# Plugin registry: manifests, discovery, capability table, loading, devices.
# slm_registry_sources is also compiled into tests/registry's internal test.
slm_registry_sources = \
	core/registry/manifest.c \
	core/registry/kinds.c \
	core/registry/kind-backend.c \
	core/registry/kind-quantizer.c \
	core/registry/kind-trainer.c \
	core/registry/trainer-options.c \
	core/registry/kind-format.c \
	core/registry/discover.c \
	core/registry/registry.c \
	core/registry/loader.c \
	core/registry/scan.c \
	core/registry/scan-cache.c \
	core/registry/device.c \
	core/registry/backend-v1.c \
	core/registry/cpu_features.c \
	core/internal/registry.h \
	core/internal/kinds.h \
	core/internal/trainer.h \
	core/internal/plugin-access.h
libslmops_la_SOURCES += $(slm_registry_sources)
