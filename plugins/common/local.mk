# Helpers the in-tree plugins share, as a convenience library linked into each
# plugin module (plugins never link libslmops). The sanitizer test builds that
# compile a plugin's sources compile plugin_common_sources with them.
plugin_common_sources = plugins/common/plugin-util.h plugins/common/plugin-util.c \
	plugins/common/trainer-targets.h plugins/common/trainer-targets.c \
	plugins/common/trainer-plugin.h plugins/common/trainer-plugin.c
noinst_LTLIBRARIES += plugins/common/libslmplugin_common.la
plugins_common_libslmplugin_common_la_SOURCES = $(plugin_common_sources)
plugins_common_libslmplugin_common_la_CFLAGS = $(plugin_cflags)
