# Plugin registry: manifests, discovery, capability table, loading, devices.
libslmops_la_SOURCES +=
