# Manifests of in-tree plugins: manifests/NAME.json.in -> installed with the
# library directory substituted, and an uninstalled copy for the build tree's tests
# (tests point SLMOPS_PLUGIN_PATH at manifests/uninstalled).
