# GGUF format plugin: reads GGUF v2/v3 through mmap, writes v3 atomically.
# gguf_plugin_sources are also compiled into tests/model's sanitizer build.
gguf_plugin_sources = \
	plugins/format-gguf/gguf.h \
	plugins/format-gguf/plugin.c \
	plugins/format-gguf/read.c \
	plugins/format-gguf/write.c

plugin_LTLIBRARIES += plugins/format-gguf/format-gguf.la
plugins_format_gguf_format_gguf_la_SOURCES = $(gguf_plugin_sources)
plugins_format_gguf_format_gguf_la_CFLAGS = $(plugin_cflags)
plugins_format_gguf_format_gguf_la_LIBADD = plugins/common/libslmplugin_common.la
plugins_format_gguf_format_gguf_la_LDFLAGS = $(plugin_ldflags) \
	-export-symbols-regex '^slm_plugin_entry$$'
# Where manifests/local.mk finds the built library for the uninstalled manifest.
plugin_builddir_format_gguf = plugins/format-gguf
