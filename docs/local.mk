# Documentation: manual pages (installed), the manifest schema and the guides
# (shipped in the tarball; the schema is also installed for plugin authors' tools).
dist_man_MANS += docs/slmops.1 docs/slmops-conform.1
dist_pkgdata_DATA = docs/manifest.schema.json docs/recipe.schema.json
EXTRA_DIST += \
	docs/plugin-authoring.md \
	docs/decisions.md \
	docs/compute.md \
	docs/jobs.md \
	docs/quantization.md \
	recipes/stories260k-tiny.json
